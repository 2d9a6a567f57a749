"""``tracked_run()``: one MLflow run around a block of code, and the handle to log into it.

Every ``log_*`` call maps its values (``_mapping``), appends them to the run's spool entry
(``_spool``) and returns; the entry is shipped (``_writer``) at ``flush()`` and at the end, or by
the background thread in background mode. No method of a run ever raises into the caller unless
``EMSTRACK_STRICT=1``: what could not be logged is kept in ``config.json`` and named in one
:class:`~emstrack.EmstrackWarning` when the run ends.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import os
import sys
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from .. import _guard, _settings
from .._delivery.quiet import quiet
from .._delivery.shipping import done_with, note_waiting, open_runs, ship
from .._delivery.spool import CREATES_NOTED, ShipState, SpoolEntry, now_ms
from .._delivery.store import get_store, is_rejection, root_cause
from .._errors import ConfigurationError, TrackingError, describe
from .._uris import redact_uri, unsupported_scheme
from .._version import __version__
from . import hooks as _hooks
from .artifact_paths import ArtifactPaths
from .mapping import (
    MAX_TAG_VALUE_LENGTH,
    NONFINITE_TAG_PREFIX,
    REDACTED,
    Mapped,
    Redactor,
    clean_text,
    dumps_json,
    fit_value,
    map_outputs,
    map_params,
    map_series,
    mlflow_key,
    safe_artifact_path,
    secret_values,
    to_jsonable,
)

Status = Literal["FINISHED", "FAILED", "KILLED"]
#: The longest experiment name MLflow's stores accept.
MAX_EXPERIMENT_NAME_LENGTH = 500

#: Longest run name stored as it is (the width of MLflow's ``runs.name`` column).
MAX_RUN_NAME_LENGTH = 250

_current: ContextVar[Run | None] = ContextVar("emstrack_current_run", default=None)


def active_run() -> Run | None:
    """The innermost run open in this context (thread or asyncio task), if any."""
    return _current.get()


class Run:
    """Handle of one tracked run, yielded by :func:`tracked_run`.

    Params, metrics and tags are buffered in the run's spool entry and written with batched
    ``log_batch`` calls at :meth:`flush` and when the run ends.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        experiment: str | None = None,
        params: object = None,
        tags: Mapping[str, object] | None = None,
        nested: bool | None = None,
        tracking_uri: str | None = None,
        secret_pattern: str | None = None,
        background: bool | None = None,
        source: str | None = None,
        log_model: Literal["lp", "mps"] | None = None,
        known_secrets: Iterable[str] = (),
    ) -> None:
        if experiment is not None and not (isinstance(experiment, str) and experiment.strip()):
            raise ConfigurationError(
                f"experiment={experiment!r}: an experiment needs a name; leave it out (None) "
                "to use MLFLOW_EXPERIMENT_NAME, else 'Default'"
            )
        parent = _current.get() if nested is not False else None
        if parent is not None and tracking_uri is not None and tracking_uri != parent.tracking_uri:
            parent = None
        self.parent = parent
        self.key = uuid.uuid4().hex
        self.name = name
        self.tracking_uri: str = (
            parent.tracking_uri if parent else _settings.tracking_uri(tracking_uri)
        )
        self.experiment: str = experiment or (
            parent.experiment if parent else _settings.experiment_name()
        )
        self.status: Status | None = None
        self._delivery = (
            _settings.delivery() if background is None else ("thread" if background else "sync")
        )
        self._background = self._delivery == "thread"
        self._redactor = Redactor.from_environ(
            _settings.secret_pattern(secret_pattern), os.environ
        ).learn(known_secrets)
        if params is not None:
            self._redactor = self._redactor.learn(secret_values(params, self._redactor))
        self._lock = threading.RLock()
        self._params: dict[str, str] = {}
        self._conflicts: dict[str, list[str]] = {}
        self._notes = Mapped()
        self._problems = _guard.Problems()
        self._artifact_paths = ArtifactPaths()
        self._config: Any = None
        self._config_set = False
        self._config_sections: dict[str, Any] = {}
        self._entry: SpoolEntry | None = None
        self._state = ShipState()
        self._kept_in_spool = False
        self._rejected = False
        self._delivered_lookup_done = False
        self._not_params: dict[str, str] = {}
        self._closed = False
        self._token: Token[Run | None] | None = None
        self._initial_params = params
        self._initial_tags = dict(tags or {})
        self._source = source
        #: Write each captured PuLP model as an ``.lp`` or ``.mps`` artifact.
        self._log_model = log_model
        self._hook_states: dict[str, tuple[_hooks.RunHook, object]] = {}

    # ------------------------------------------------------------------ identity

    @property
    def run_id(self) -> str | None:
        """The MLflow run id, once the run reached the store.

        In the default (process) delivery a run reaches the store after it ends: asking an
        ended run for its id waits for that delivery, as :func:`emstrack.flush` does (bounded
        by ``EMSTRACK_FLUSH_TIMEOUT``), and finds the run by its key. ``None`` while the run
        is open and not yet flushed, in thread mode before the thread shipped it, and for a
        run that could not be delivered.
        """
        if (
            self._state.run_id is None
            and self._closed
            and self._delivery in ("process", "spool")
            and not self._rejected
            and not self._delivered_lookup_done
        ):
            self._delivered_lookup_done = True
            self._state.run_id = _delivered_run_id(self.tracking_uri, self.experiment, self.key)
        return self._state.run_id

    @property
    def spool_path(self) -> Path | None:
        """The run's spool folder while it exists."""
        return self._entry.folder if self._entry is not None else None

    @property
    def log_model_format(self) -> Literal["lp", "mps"] | None:
        """Whether each solved PuLP model is also logged, as ``.lp`` or ``.mps`` (else ``None``)."""
        return self._log_model

    def hook_state(self, hook: _hooks.RunHook) -> Any:
        """The state ``hook`` keeps for this run (``None`` when it stayed out of it)."""
        found = self._hook_states.get(hook.name)
        return found[1] if found is not None and found[0] is hook else None

    def note_not_params(self, described: Mapping[str, str]) -> None:
        """Name inputs left out of the params (a DataFrame, a 2-D array) in ``config.json``.

        For wrappers that log a call's arguments; the values themselves are in the config's
        ``inputs`` when it is logged.
        """
        self._not_params.update(described)

    def record_problem(self, message: str) -> None:
        """Add ``message`` to the run's single warning (raised at once in strict mode).

        For code that extends a run (hooks, wrappers); pipelines never need it.
        """
        self._problems.record(message)

    def __repr__(self) -> str:
        return f"<emstrack.Run name={self.name!r} key={self.key} run_id={self.run_id}>"

    def _repr_html_(self) -> str:
        from .._display import run_html

        return run_html(self)

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> Run:
        self._start()
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            self._finish(_status_for(exc), exc)
        finally:
            if self._token is not None:
                _current.reset(self._token)
                self._token = None
        return False

    # ------------------------------------------------------------------ logging API

    def log_params(self, params: object) -> None:
        """Log a pydantic model, dataclass or mapping as params (nested keys dotted)."""
        self._guard("log_params", self._log_params, params)

    def log_metrics(self, metrics: object, step: int | None = None) -> None:
        """Log numbers as metrics, bools as 0/1 and strings as tags.

        ``metrics`` may be a pydantic model, mapping, dataclass, NamedTuple, pandas Series (one
        metric per label) or DataFrame (one step per row). ``step`` applies to scalar values.
        """
        self._guard("log_metrics", self._log_outputs, metrics, step)

    def log_series(self, name: str, values: Iterable[object], start_step: int = 0) -> None:
        """Log ``values`` as metric ``name`` at consecutive steps, in one batched write."""
        self._guard(
            "log_series",
            lambda: self._add_mapped(map_series(name, values, self._redactor, start_step)),
        )

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set tags; values are formatted like params."""
        self._guard("set_tags", self._set_tags, tags)

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Log one file (copied now, so later changes to it do not matter)."""
        self._guard("log_artifact", self._log_artifact, Path(path), artifact_path)

    def log_artifacts(
        self, folder: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Log every file under ``folder`` (copied now)."""
        self._guard("log_artifacts", self._log_artifacts, Path(folder), artifact_path)

    def log_config(self, config: object, name: str = "config.json") -> None:
        """Log ``config`` as JSON, secrets redacted.

        Under the default name it becomes the ``inputs`` of the run's ``config.json``, written
        when the run ends next to what the mapping changed (renamed keys, cut values, values
        that are not metrics); under another name it is written as it is.
        """
        self._guard("log_config", self._log_config, config, name)

    def log_text(self, text: str, name: str) -> None:
        """Log ``text`` as a UTF-8 file artifact called ``name``."""
        self._guard(
            "log_text",
            lambda: self._store_bytes(self._redactor.scrub(text).encode("utf-8", "replace"), name),
        )

    def log_frame(self, frame: Any, name: str) -> None:
        """Log a pandas DataFrame as a CSV artifact (``.csv`` is added when missing)."""
        name = name if name.lower().endswith(".csv") else name + ".csv"
        self._guard("log_frame", self._log_frame, frame, name)

    def log_figure(self, figure: Any, name: str) -> None:
        """Log a matplotlib figure as an image (PNG unless ``name`` says otherwise)."""
        if "." not in Path(name).name:
            name += ".png"
        self._guard("log_figure", self._log_figure, figure, name)

    def log_dataset(
        self,
        frame: Any,
        name: str,
        source: str | None = None,
        context: str | None = None,
        *,
        digest: str | None = None,
    ) -> None:
        """Record a pandas DataFrame as an MLflow dataset input of the run.

        The digest is SHA-256 over the whole frame, its index included (MLflow's own hashes
        only the first 10,000 rows); the profile holds the row count and the time range.
        ``source`` defaults to ``"user DataFrame"``; ``context`` (e.g. ``"training"``) becomes
        the input's ``mlflow.data.context`` tag. ``digest``: the frame's
        :func:`~emstrack._capture.digest.frame_digest` when the caller computed it already.
        """
        from .._capture.dataset_event import dataset_event

        self._guard(
            "log_dataset",
            lambda: self._append(dataset_event(frame, name, source, context, digest=digest)),
        )

    def flush(self) -> None:
        """Write everything logged so far to the store now."""
        self._guard("flush", self._ship_now)

    # ------------------------------------------------------------------ lifecycle

    def _start(self) -> None:
        try:
            start = {
                "key": self.key,
                "uri": redact_uri(self.tracking_uri),
                "experiment": self.experiment,
                "name": self._stored_name(),
                "parent": self.parent.key if self.parent else None,
                "start_ms": now_ms(),
                # Tags known at the start travel with create_run: no extra write for them.
                "tags": {**self._system_tags(), **self._tag_values(self._initial_tags)},
            }
            if self._delivery in ("process", "spool"):
                # Another process delivers it: every create_run is noted first, so a replay
                # needs no search for a run that may already be in the store.
                start[CREATES_NOTED] = True
            self._entry = _create_entry(self.key, start)
            open_runs.add(self._entry, self._state)
        except Exception as error:
            self._problems.record(f"spool unavailable, run not tracked: {describe(error)}")
            return
        if self._initial_params is not None:
            self.log_params(self._initial_params)
            self.log_config(self._initial_params)
        for hook in _hooks.registered():
            self._guard(f"starting {hook.name}", self._start_hook, hook)
        if self._delivery == "sync":
            self._ship_now(create_only=True)
        else:
            self._reject_what_no_store_takes()

    def _reject_what_no_store_takes(self) -> None:
        """Without a write at the start, still refuse at once what no store would ever take."""
        reason = unsupported_scheme(self.tracking_uri)
        if reason is None and len(self.experiment) > MAX_EXPERIMENT_NAME_LENGTH:
            reason = (
                f"experiment name of {len(self.experiment)} characters is over MLflow's "
                f"{MAX_EXPERIMENT_NAME_LENGTH}"
            )
        if reason is not None:
            self._reject(ValueError(reason), at_start=True)

    def _stored_name(self) -> str | None:
        if not self.name:
            return self.name
        name = clean_text(self._redactor.scrub(self.name))
        if len(name) > MAX_RUN_NAME_LENGTH:
            self._notes.cut["mlflow.runName"] = name
            name = fit_value(name, MAX_RUN_NAME_LENGTH)
        return name

    def _finish(self, status: Status, exc: BaseException | None) -> None:
        if self.status is not None:
            return
        self.status = status
        propagating = exc is not None
        # Each step on its own: whatever fails (in strict mode too), the run still ends, is
        # delivered or kept, and releases its spool entry.
        for hook, state in reversed(list(self._hook_states.values())):
            self._step(f"ending {hook.name}", hook.end, self, state)
        self._hook_states.clear()
        if exc is not None and status != "FINISHED":
            self._step("recording the exception", self._record_exception, exc)
        self._step("config.json", self._write_config)
        if self._entry is not None:
            self._step(
                "ending the run",
                self._entry.append,
                {"e": "end", "status": status, "end_ms": now_ms()},
            )
            self._step("delivering the run", self._deliver)
        self._closed = True
        self._report(propagating)

    def _step(self, what: str, action: Callable[..., object], *args: object) -> None:
        try:
            with self._lock:
                action(*args)
        except Exception as error:
            message = describe(error)
            if not (isinstance(error, TrackingError) and message in self._problems):
                self._problems.keep(f"{what} failed: {message}")

    def _deliver(self) -> None:
        assert self._entry is not None
        entry = self._entry
        if self._background:
            from .._delivery.background import shipper

            entry.close()
            shipper().submit(entry, self._state, self.tracking_uri)
            return
        # Records the full disk could not take live only in this process: ship them from here.
        if self._delivery == "spool" and entry.disk_error is None:
            _leave(entry)
            note_waiting(entry.folder.parent, self.tracking_uri)
            return
        if (
            self._delivery == "process"
            and entry.disk_error is None
            and _hand_over(entry, self.tracking_uri)
        ):
            return
        try:
            with quiet():
                done = ship(entry, self._state, uri=self.tracking_uri)
        except Exception as error:
            done = False
            if self._note_failure(error, at_start=False):
                return
        if done:
            self._note_spool_trouble(entry, delivered=True)
            entry.remove()
            done_with(entry.key)
        else:
            self._keep(entry)
            open_runs.discard(entry.key)

    def _keep(self, entry: SpoolEntry) -> None:
        try:
            entry.make_durable()  # first: writes what the disk could not take before
            entry.save_state(self._state)
            self._kept_in_spool = True
        except OSError:
            self._kept_in_spool = entry.exists()
            self._note_spool_trouble(entry, delivered=False)
        finally:
            entry.close()
            entry.release()

    def _note_spool_trouble(self, entry: SpoolEntry, *, delivered: bool) -> None:
        """Name a spool that could not take the run's records (a full disk), and what followed."""
        error = entry.disk_error
        if error is None:
            return
        where = entry.folder.parent
        if delivered:
            self._problems.keep(
                f"the spool at {where} cannot take records ({describe(error)}): check its "
                "free space or set EMSTRACK_SPOOL_DIR; this run went straight to the store "
                "from memory, nothing was lost"
            )
        else:
            self._problems.keep(
                f"the spool at {where} cannot take records ({describe(error)}) and the store "
                "is unreachable: what the spool could not hold is lost"
                + ("" if entry.exists() else "; nothing of the run is kept")
            )

    def _report(self, propagating: bool) -> None:
        extra = [
            f"{key!r} not logged ({why}); kept in config.json"
            for key, why in self._notes.unlogged.items()
        ]
        if self._conflicts:
            extra.append(
                "params logged again with other values (first value kept, later ones in tags "
                "emstrack.param_conflict.*): " + ", ".join(sorted(self._conflicts))
            )
        where = ""
        if self._kept_in_spool and self._entry is not None:
            where = (
                f". The run is kept in the spool at {self._entry.folder}; "
                "replay it with `emstrack sync`"
            )
        subject = f"emstrack run {self.name or self.key!r}"
        self._problems.report(subject, extra, where, propagating=propagating)

    # ------------------------------------------------------------------ internals

    def _guard(self, what: str, action: Callable[..., object], *args: object) -> None:
        if self._rejected:
            return  # the store refused the run for good; the user has been told
        if self._closed:
            _guard.fail(
                f"emstrack run {self.name or self.key!r}: {what} after the run ended is ignored"
            )
            return
        with self._lock:
            self._problems.guard(what, action, *args)

    def _start_hook(self, hook: _hooks.RunHook) -> None:
        state = hook.start(self)
        if state is not None:
            self._hook_states[hook.name] = (hook, state)

    def _append(self, event: dict[str, Any]) -> None:
        if self._entry is None:
            raise TrackingError("the run has no spool entry")
        self._entry.append(event)

    def _log_params(self, params: object) -> None:
        self._add_mapped(map_params(params, self._redactor))

    def _log_outputs(self, value: object, step: int | None) -> None:
        self._add_mapped(map_outputs(value, self._redactor, step=step))

    def _add_mapped(self, mapped: Mapped) -> None:
        if mapped.secrets:
            self._redactor = self._redactor.learn(mapped.secrets)
        if mapped.unlogged:
            key, why = next(iter(mapped.unlogged.items()))
            _guard.raise_if_strict(f"{key!r} not logged: {why}")
        new_params = {}
        conflict_tags = {}
        for key, value in mapped.params.items():
            known = self._params.get(key)
            if known is None:
                self._params[key] = new_params[key] = value
            elif known != value:
                self._conflicts.setdefault(key, []).append(value)
                conflict_tags[mlflow_key(f"emstrack.param_conflict.{key}")] = fit_value(
                    value, MAX_TAG_VALUE_LENGTH
                )
        nonfinite_tags = {}
        self._notes.merge(
            Mapped(
                renamed=mapped.renamed,
                cut=mapped.cut,
                unlogged=mapped.unlogged,
                unlogged_values=mapped.unlogged_values,
            )
        )
        for key, points in mapped.nonfinite.items():
            known_points = self._notes.nonfinite.setdefault(key, [])
            known_points.extend(points)
            text = ",".join(f"{value}@{step}" for step, value in known_points)
            nonfinite_tags[mlflow_key(NONFINITE_TAG_PREFIX + key)] = fit_value(
                text, MAX_TAG_VALUE_LENGTH
            )
        if new_params:
            self._append({"e": "params", "params": new_params})
        if mapped.metrics:
            timestamp = now_ms()
            self._append(
                {"e": "metrics", "metrics": [[k, v, s, timestamp] for k, v, s in mapped.metrics]}
            )
        tags = {**mapped.tags, **conflict_tags, **nonfinite_tags}
        if tags:
            self._append({"e": "tags", "tags": tags})

    def _set_tags(self, tags: Mapping[str, object]) -> None:
        values = self._tag_values(tags)
        if values:
            self._append({"e": "tags", "tags": values})

    def _tag_values(self, tags: Mapping[str, object]) -> dict[str, str]:
        """Tags formatted like params, but cut at the tag limit (8,000 characters)."""
        mapped = map_params(dict(tags), self._redactor)
        if mapped.secrets:
            self._redactor = self._redactor.learn(mapped.secrets)
        self._notes.merge(
            Mapped(
                renamed=mapped.renamed,
                unlogged=mapped.unlogged,
                unlogged_values=mapped.unlogged_values,
            )
        )
        return {
            key: fit_value(mapped.cut.get(key, value), MAX_TAG_VALUE_LENGTH)
            for key, value in mapped.params.items()
        }

    def _log_artifact(self, path: Path, artifact_path: str | None) -> None:
        if self._entry is None:
            raise TrackingError("the run has no spool entry")
        if not path.is_file():
            raise FileNotFoundError(f"no file at {path}")
        folder = _artifact_dir(artifact_path)
        name = safe_artifact_path(path.name)
        relative = self._claim_artifact(f"{folder}/{name}" if folder else name)
        folder, _, name = relative.rpartition("/")
        stored = self._entry.store_file(path, name)
        self._append({"e": "artifact", "file": stored, "dir": folder or None})

    def _log_artifacts(self, folder: Path, artifact_path: str | None) -> None:
        if self._entry is None:
            raise TrackingError("the run has no spool entry")
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder at {folder}")
        stored = self._entry.store_tree(folder)
        base = _artifact_dir(artifact_path)
        copy = self._entry.folder / stored
        for file in copy.rglob("*"):
            if file.is_file():
                relative = file.relative_to(copy).as_posix()
                self._artifact_paths.add(f"{base}/{relative}" if base else relative)
        self._append({"e": "artifact_dir", "folder": stored, "dir": base})

    def _store_bytes(self, data: bytes, name: str) -> None:
        if self._entry is None:
            raise TrackingError("the run has no spool entry")
        relative = self._claim_artifact(safe_artifact_path(name))
        folder, _, filename = relative.rpartition("/")
        stored = self._entry.store_bytes(data, filename)
        self._append({"e": "artifact", "file": stored, "dir": folder or None})

    def _claim_artifact(self, relative: str) -> str:
        claimed = self._artifact_paths.claim(relative)
        if claimed != relative:
            self._problems.keep(
                f"artifact {relative!r} logged as {claimed!r}: a file and a folder of the run "
                "cannot share a path"
            )
        return claimed

    def _log_config(self, config: object, name: str) -> None:
        document = to_jsonable(config, self._redactor)
        if name == "config.json":
            self._config = document
            self._config_set = True
        else:
            self._store_bytes(dumps_json(document).encode("ascii"), name)

    def record_call(self, arguments: Mapping[str, object]) -> None:
        """Keep a decorated call's arguments as config.json's ``call`` (for ``emstrack rerun``)."""
        from .._reproduce.recording import call_section

        self._guard(
            "recording the call",
            lambda: self._config_sections.update(call=call_section(arguments, self._redactor)),
        )

    def _log_frame(self, frame: Any, name: str) -> None:
        secret_columns = [
            column for column in frame.columns if self._redactor.is_secret_key(str(column))
        ]
        if secret_columns:
            frame = frame.copy()
            for column in secret_columns:
                self._redactor = self._redactor.learn(
                    str(value) for value in frame[column].tolist() if value is not None
                )
                frame[column] = REDACTED
        text = self._redactor.scrub(frame.to_csv())
        self._store_bytes(text.encode("utf-8"), name)

    def _log_figure(self, figure: Any, name: str) -> None:
        buffer = io.BytesIO()
        suffix = Path(name).suffix.lstrip(".").lower() or "png"
        figure.savefig(buffer, format=suffix)
        self._store_bytes(buffer.getvalue(), name)

    def _write_config(self) -> None:
        notes = self._notes
        mapping = {
            section: content
            for section, content in {
                "renamed_keys": notes.renamed,
                "cut_values": notes.cut,
                "nonfinite_metrics": {
                    key: [{"step": step, "value": value} for step, value in points]
                    for key, points in notes.nonfinite.items()
                },
                "not_logged": notes.unlogged,
                "not_logged_values": notes.unlogged_values,
                "not_params": self._not_params,
                "param_conflicts": self._conflicts,
            }.items()
            if content
        }
        if not self._config_set and not mapping and not self._config_sections:
            return
        document: dict[str, Any] = {"inputs": self._config, **self._config_sections}
        if mapping:
            document["mapping"] = mapping
        # Secrets learned after a value was noted (a password logged later) are scrubbed too.
        document = self._redactor.scrub_tree(document)
        self._guard(
            "config.json",
            lambda: self._store_bytes(dumps_json(document).encode("ascii"), "config.json"),
        )

    def _record_exception(self, exc: BaseException) -> None:
        cls = type(exc)
        qualified = (
            cls.__qualname__
            if cls.__module__ == "builtins"
            else (f"{cls.__module__}.{cls.__qualname__}")
        )
        try:
            text = str(exc)
        except Exception as error:
            text = f"<str() of the exception raised {type(error).__name__}>"
        message = clean_text(self._redactor.scrub(text))
        self._guard(
            "recording the exception",
            self._set_tags,
            {
                "emstrack.exception.type": qualified,
                "emstrack.exception.message": fit_value(message, MAX_TAG_VALUE_LENGTH),
            },
        )
        text = "".join(traceback.format_exception(cls, exc, exc.__traceback__))
        self._guard(
            "writing traceback.txt",
            lambda: self._store_bytes(
                clean_text(self._redactor.scrub(text)).encode("utf-8"), "traceback.txt"
            ),
        )

    def _ship_now(self, *, create_only: bool = False) -> None:
        if self._entry is None:
            return
        try:
            if self._delivery in ("process", "spool"):
                from .._delivery.orphans import ship_open

                with quiet():
                    ship_open(self._entry, self._state, self.tracking_uri)
                return
            with quiet():
                ship(self._entry, self._state, uri=self.tracking_uri, create_only=create_only)
        except Exception as error:
            self._note_failure(error, at_start=create_only)

    def _note_failure(self, error: Exception, *, at_start: bool) -> bool:
        """Keep a failed write for the warning; whether the store rejected the run for good."""
        if not is_rejection(error):
            self._problems.keep_once(error, root_cause(error))
            return False
        self._reject(error, at_start=at_start)
        return True

    def _reject(self, error: Exception, *, at_start: bool) -> None:
        """The store refuses the run for good: keep nothing, say why once, log nothing more."""
        entry = self._entry
        if entry is None:
            return
        self._rejected = True
        self._entry = None
        if self._state.run_id is not None:  # partly stored: do not leave it RUNNING
            with contextlib.suppress(Exception), quiet():
                get_store(self.tracking_uri).terminate(self._state.run_id, "FAILED", now_ms())
        entry.remove()
        done_with(entry.key)
        message = (
            f"emstrack run {self.name or self.key!r} is not tracked: the tracking store "
            f"{redact_uri(self.tracking_uri)} rejects it ({root_cause(error)}). Nothing is "
            "kept in the spool: replaying it would fail the same way"
        )
        if at_start:
            self._problems.now(message)
        else:
            self._problems.keep(message)

    def _system_tags(self) -> dict[str, str]:
        tags = {
            "mlflow.source.type": "LOCAL",
            "mlflow.source.name": self._source
            or (sys.argv[0] if sys.argv and sys.argv[0] else "python"),
            "emstrack.version": __version__,
        }
        with contextlib.suppress(Exception):  # no user name in some containers
            tags["mlflow.user"] = getpass.getuser()
        return {key: clean_text(value) for key, value in tags.items()}


def tracked_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    params: object = None,
    tags: Mapping[str, object] | None = None,
    nested: bool | None = None,
    tracking_uri: str | None = None,
    log_model: Literal["lp", "mps"] | None = None,
) -> Run:
    """Track a block of code as one MLflow run.

    Use it as a context manager; it yields the :class:`Run` to log into::

        with emstrack.tracked_run("day-ahead", experiment="ems", params=config) as run:
            result = optimize(config)
            run.log_metrics(result)

    The run ends FINISHED, FAILED (exception type and message as tags, the traceback as
    ``traceback.txt``) or KILLED (``KeyboardInterrupt``); the block's exception propagates
    unchanged. A ``tracked_run`` inside another becomes its child unless ``nested=False``.

    Args:
        name: Run name shown in the MLflow UI.
        experiment: Experiment name, created on first use; default: the parent's, else
            ``MLFLOW_EXPERIMENT_NAME``, else ``Default``.
        params: Params logged at the start (a pydantic model, dataclass or mapping).
        tags: Tags set at the start.
        nested: ``None`` nests inside an open run; ``False`` never nests.
        tracking_uri: Store to write to; default ``MLFLOW_TRACKING_URI``, else
            ``sqlite:///mlflow.db`` in the working directory.
        log_model: Also log every PuLP model solved in the run as an ``.lp`` or ``.mps`` file
            under ``models/``.

    """
    return Run(
        name,
        experiment=experiment,
        params=params,
        tags=tags,
        nested=nested,
        tracking_uri=tracking_uri,
        log_model=log_model,
    )


def _status_for(exc: BaseException | None) -> Status:
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt | GeneratorExit):
        return "KILLED"
    if type(exc).__name__ == "CancelledError":
        return "KILLED"
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return "FINISHED"
    return "FAILED"


def _create_entry(key: str, start: dict[str, Any]) -> SpoolEntry:
    root = _settings.spool_dir()
    try:
        return SpoolEntry.create(root, key, start)
    except OSError:
        # An unwritable working directory must not stop tracking: use the temp folder.
        fallback = Path(tempfile.gettempdir()) / "emstrack-spool"
        return SpoolEntry.create(fallback, key, start)


def _leave(entry: SpoolEntry) -> None:
    """Let go of the finished entry: it waits in the spool for whoever delivers it."""
    entry.close()
    entry.release()
    open_runs.discard(entry.key)


def _hand_over(entry: SpoolEntry, uri: str) -> bool:
    """Process delivery: release the finished entry to this spool's shipper process."""
    from .._delivery.courier import courier

    _leave(entry)
    if courier(entry.folder.parent, uri).submit(entry):
        return True
    # No shipper could start (an embedded interpreter): ship here, as in synchronous mode.
    return not entry.acquire(timeout=0)


def _artifact_dir(artifact_path: str | None) -> str | None:
    return safe_artifact_path(artifact_path) if artifact_path else None


def _delivered_run_id(tracking_uri: str, experiment: str, key: str) -> str | None:
    """The id of a run the shipper delivered, once delivered (``None`` if it was not)."""
    try:
        from .._delivery.replay import flush_for
        from .._delivery.store import get_store

        flush_for(tracking_uri, _settings.flush_timeout())
        store = get_store(tracking_uri)
        return store.find_run(store.experiment_id(experiment), key)
    except Exception:  # an id is a convenience: never an error for the pipeline
        return None
