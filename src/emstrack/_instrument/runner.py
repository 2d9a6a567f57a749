"""``emstrack run``: an unmodified script or module as one parent run, its tracked calls children.

Order of events, chosen so the script sees exactly what ``python`` would give it:

1. the ``--track`` specs and settings are checked (bad ones end here, before the script runs);
2. the parent run opens (``nested=False``), named after the script, with its command line;
3. ``__main__``, ``sys.argv`` and ``sys.path[0]`` become the script's; the argparse and module
   load hooks go in; targets in modules already loaded are instrumented;
4. the script runs statement by statement (see :mod:`.program`); after each statement, bare
   ``--track`` names bound in ``__main__`` are wrapped; modules loaded later are instrumented
   as soon as their code ran;
5. the outcome is mapped: normal end or ``SystemExit(0)``/``None`` -> FINISHED; another
   ``SystemExit`` or an exception -> FAILED (exception and exit status recorded); Ctrl-C ->
   KILLED. The script's traceback is printed as ``python`` prints it (emstrack's and wrapt's
   frames left out); non-daemon threads are waited for as at interpreter exit;
6. the hooks come out, ``--artifacts`` folders and captured output are logged, the run ends;
7. the process exits with the script's status (dying by SIGINT after Ctrl-C, as ``python``).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .. import _guard, _settings
from .._errors import ConfigurationError, EmstrackWarning, TrackingError
from . import patching, program
from .api import wrapper_factory
from .hooks import ModuleLoads, ParsedArguments, PathRuns
from .settings import RunSettings
from .targets import Target, module_file, parse_target
from .values import clean_params

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_STORE_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")


@dataclass
class _Tracked:
    target: Target
    make: Callable[[Any], Any]
    calls_wrapped: int = 0
    problem: str | None = None
    places: set[int] = field(default_factory=set)


class ScriptRunner:
    """One ``emstrack run`` invocation."""

    def __init__(
        self,
        settings: RunSettings,
        arguments: list[str],
        *,
        as_module: bool = False,
        command_line: list[str] | None = None,
    ) -> None:
        if not arguments:
            raise ConfigurationError("nothing to run: give a script (or -m module) after --")
        self.settings = settings
        self.as_module = as_module
        self.cwd = Path.cwd()
        self.command_line = command_line or arguments
        self.tracked = self._tracked(settings)
        self.bare = [t for t in self.tracked if t.target.is_bare]
        self.elsewhere = [t for t in self.tracked if not t.target.is_bare]
        self.artifacts = [self._artifact_folder(text) for text in settings.artifacts]
        first, rest = arguments[0], list(arguments[1:])
        self.program = program.module(first, rest) if as_module else program.script(first, rest)
        self.args: dict[str, Any] = {}
        self.run: Any = None
        self.capture_dir: Path | None = None
        self._files: dict[int, tuple[object, Path | None]] = {}
        self.failures: list[str] = []

    # ------------------------------------------------------------------ set-up checks

    def _tracked(self, settings: RunSettings) -> list[_Tracked]:
        targets = [parse_target(spec, allow_bare=True, base=self.cwd) for spec in settings.track]
        for function in settings.returns:
            if not any(function in (t.text, t.name, t.dotted) for t in targets):
                raise ConfigurationError(
                    f"--returns {function}=...: {function!r} is not among the --track specs "
                    f"({', '.join(t.text for t in targets) or 'none given'})"
                )
        tracked = []
        for target in targets:
            names = next(
                (
                    names
                    for function, names in settings.returns.items()
                    if function in (target.text, target.name, target.dotted)
                ),
                None,
            )
            make = wrapper_factory(
                label=f"--track {target.text}",
                experiment=settings.experiment,
                returns=names,
            )
            tracked.append(_Tracked(target, make))
        return tracked

    def _artifact_folder(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.cwd / path

    # ------------------------------------------------------------------ the run

    def execute(self) -> NoReturn:
        """Run the program under tracking and exit as it would have exited."""
        from .._tracking.run import tracked_run

        program_ = self.program
        if program_.file.resolve() in {t.target.path for t in self.elsewhere}:
            self._fold_script_targets()
        self.run = tracked_run(
            Path(program_.display).name if not self.as_module else program_.display[3:],
            experiment=self.settings.experiment,
            tracking_uri=_settings.tracking_uri(self.settings.tracking_uri),
            nested=False,
            tags={
                "mlflow.source.name": str(program_.file),
                "emstrack.script": program_.display,
                "emstrack.command": shlex.join(self.command_line),
                "emstrack.cwd": str(self.cwd),
            },
        )
        if self.settings.quiet:
            warnings.filterwarnings("ignore", category=EmstrackWarning)
            for name in _STORE_LOGGERS:  # "Creating initial MLflow database tables..."
                logging.getLogger(name).setLevel(logging.WARNING)
        self.run.__enter__()
        outcome: BaseException | None = None
        arguments_hook = ParsedArguments(self._parsed)
        loads_hook = ModuleLoads(self._loaded)
        path_runs_hook = PathRuns(self._path_ran)
        tees: list[Any] = []
        try:
            if self.settings.capture_output:
                tees = self._start_capture()
            program_.install()
            arguments_hook.install()
            loads_hook.install()
            path_runs_hook.install()
            self._guarded(self._instrument_loaded)
            try:
                program_.execute(self._after_statement)
            except BaseException as error:
                outcome = error
            self._wait_for_threads(outcome)
            if outcome is not None and not isinstance(outcome, SystemExit):
                _trim(outcome)
                sys.excepthook(type(outcome), outcome, outcome.__traceback__)
            elif isinstance(outcome, SystemExit):
                _trim(outcome)
        except BaseException as error:  # emstrack's own set-up failed, or Ctrl-C in it
            outcome = outcome or error
        finally:
            path_runs_hook.remove()
            loads_hook.remove()
            arguments_hook.remove()
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            for tee in tees:
                tee.stop()
        status = _exit_status(outcome)
        failure = self._finish(outcome, status)
        if failure is not None and status == 0:
            status = 1
        self._exit(outcome, status)

    def _fold_script_targets(self) -> None:
        """``--track script.py:f`` for the script being run is the bare name ``f``."""
        for tracked in self.elsewhere:
            if tracked.target.path == self.program.file.resolve():
                tracked.target = Target(tracked.target.text, None, None, tracked.target.attribute)
        self.bare = [t for t in self.tracked if t.target.is_bare]
        self.elsewhere = [t for t in self.tracked if not t.target.is_bare]

    # ------------------------------------------------------------------ hooks

    def _after_statement(self) -> None:
        self._guarded(self._wrap_bound_names)

    def _loaded(self, module: types.ModuleType) -> None:
        self._guarded(self._wrap_in_loaded, module)

    def _path_ran(self, path: Path, namespace: dict[str, Any]) -> None:
        self._guarded(self._wrap_in_namespace, path, namespace)

    def _wrap_in_namespace(self, path: Path, namespace: dict[str, Any]) -> None:
        """``runpy.run_path`` returns a plain dict: its entry is replaced, nothing to restore."""
        for tracked in self.elsewhere:
            target = tracked.target
            if tracked.problem is not None or target.path != path:
                continue
            head = namespace.get(target.attribute[0])
            if head is None:
                continue
            label = f"--track {target.text}"
            try:
                if len(target.attribute) == 1:
                    namespace[target.name] = patching.wrap(head, tracked.make, label)
                else:
                    holder = types.SimpleNamespace(**{target.attribute[0]: head})
                    owner = patching.owner_of_object(holder, target.attribute, label)
                    patching.patch(owner, target.name, tracked.make, label)
            except ConfigurationError as error:
                tracked.problem = str(error)
                continue
            tracked.calls_wrapped += 1

    def _guarded(self, action: Callable[..., None], *args: Any) -> None:
        """A hook runs inside the script's own statements and imports: it never raises there."""
        try:
            action(*args)
        except Exception as error:
            self.failures.append(f"instrumenting failed: {type(error).__name__}: {error}")

    def _wrap_bound_names(self) -> None:
        for tracked in self.bare:
            if tracked.problem is None:
                self._try_patch(tracked, self.program.module, quiet_missing=True)
        if self.elsewhere:
            self._instrument_loaded(files=False)  # source files are reported by ModuleLoads

    def _wrap_in_loaded(self, module: types.ModuleType) -> None:
        if module is self.program.module:
            return
        file = self._file(module) if any(t.target.path for t in self.elsewhere) else None
        for tracked in self.elsewhere:
            target = tracked.target
            if tracked.problem is None and (
                (target.path is not None and file == target.path)
                or (target.module is not None and module.__name__ == target.module)
            ):
                self._try_patch(tracked, module, quiet_missing=False)

    def _instrument_loaded(self, *, files: bool = True) -> None:
        for tracked in self.elsewhere:
            target = tracked.target
            if tracked.problem is not None:
                continue
            if target.module is not None:
                found = sys.modules.get(target.module)
                if isinstance(found, types.ModuleType) and id(found) not in tracked.places:
                    self._try_patch(tracked, found, quiet_missing=False)
            elif target.path is not None and files:
                for module in list(sys.modules.values()):
                    if id(module) not in tracked.places and self._file(module) == target.path:
                        self._try_patch(tracked, module, quiet_missing=False)

    def _file(self, module: object) -> Path | None:
        key = id(module)
        known = self._files.get(key)
        if known is None or known[0] is not module:
            known = self._files[key] = (module, module_file(module))
        return known[1]

    def _try_patch(
        self, tracked: _Tracked, module: types.ModuleType, *, quiet_missing: bool
    ) -> None:
        target = tracked.target
        label = f"--track {target.text}"
        head = module.__dict__.get(target.attribute[0], None)
        if head is None or (quiet_missing and not callable(head)):
            return  # not bound (yet): defined by a later statement, or never
        try:
            owner = patching.owner_of(module, target.attribute, label)
            known = patching.instrumented(owner, target.name)
            if known is not None and vars(owner).get(target.name) is known.wrapper:
                return
            patching.patch(owner, target.name, tracked.make, label)
        except ConfigurationError as error:
            tracked.problem = str(error)
            return
        tracked.calls_wrapped += 1
        tracked.places.add(id(module))

    def _parsed(self, namespace: argparse.Namespace) -> None:
        values = vars(namespace) if hasattr(namespace, "__dict__") else {}
        new = {k: v for k, v in values.items() if k not in self.args}
        if not new:
            return
        self.args.update(new)
        try:
            self.run.log_params(clean_params(new))
        except Exception as error:  # strict mode: reported at the end, never into the script
            self.failures.append(f"logging the parsed arguments failed: {error}")

    def _wait_for_threads(self, outcome: BaseException | None) -> None:
        """Non-daemon threads end before the run does, as ``python`` waits for them at exit."""
        if isinstance(outcome, KeyboardInterrupt):
            return
        current = threading.current_thread()
        for thread in threading.enumerate():
            if thread is not current and not thread.daemon and thread.is_alive():
                thread.join()

    def _start_capture(self) -> list[Any]:
        from .tee import start_capture

        self.capture_dir = Path(tempfile.mkdtemp(prefix="emstrack-output-"))
        return start_capture(self.capture_dir)

    # ------------------------------------------------------------------ the end

    def _finish(self, outcome: BaseException | None, status: int) -> TrackingError | None:
        """Log what the run gathered, end it; the first tracking failure (strict mode) returned."""
        failures: list[TrackingError] = []
        try:
            self._log_end(status)
        except TrackingError as error:
            failures.append(error)
        try:
            self._close(outcome)
        except TrackingError as error:
            failures.append(error)
        finally:
            if self.capture_dir is not None:
                shutil.rmtree(self.capture_dir, ignore_errors=True)
        if self.failures:
            failures.append(TrackingError("; ".join(self.failures)))
        first = _guard.settle(
            failures, strict_report=self._report_failure, lenient_report=self._say
        )
        for tracked in self.tracked:
            if tracked.problem is not None:
                self._say(f"not tracked: {tracked.problem}")
            elif not tracked.calls_wrapped:
                where = "__main__" if tracked.target.is_bare else "any loaded module"
                self._say(f"--track {tracked.target.text}: never defined in {where}")
        run = self.run
        self._say(
            f"run {run.run_id or run.key} {run.status} in experiment {run.experiment!r} "
            f"(exit status {status})"
        )
        return first

    def _log_end(self, status: int) -> None:
        run = self.run
        run.set_tags({"emstrack.exit_status": status})
        run.log_config(
            {
                "program": self.program.display,
                "argv": list(self.program.argv),
                "command": list(self.command_line),
                "args": self.args,
                "tracked": {t.target.text: _state(t) for t in self.tracked},
            }
        )
        for folder in self.artifacts:
            if folder.is_dir():
                run.log_artifacts(folder, _artifact_dir(folder, self.cwd))
            else:
                self._say(f"--artifacts {folder}: no such folder after the run, not logged")
        if self.capture_dir is not None:
            for name in ("stdout.txt", "stderr.txt"):
                path = self.capture_dir / name
                if path.is_file():
                    run.log_artifact(path, "output")

    def _close(self, outcome: BaseException | None) -> None:
        run = self.run
        if outcome is None or (isinstance(outcome, SystemExit) and _exit_status(outcome) == 0):
            run.__exit__(None, None, None)
        else:
            run.__exit__(type(outcome), outcome, outcome.__traceback__)

    def _report_failure(self, error: TrackingError) -> TrackingError:
        print(f"emstrack: TrackingError: {error}", file=sys.stderr)
        return error

    def _say(self, message: str) -> None:
        if not self.settings.quiet:
            print(f"emstrack: {message}", file=sys.stderr, flush=True)

    def _exit(self, outcome: BaseException | None, status: int) -> NoReturn:
        if isinstance(outcome, KeyboardInterrupt):
            _die_by_sigint()
        if isinstance(outcome, SystemExit) and status == _exit_status(outcome):
            raise SystemExit(outcome.code)  # a text code is printed by Python, as for the script
        raise SystemExit(status)


def _exit_status(outcome: BaseException | None) -> int:
    if outcome is None:
        return 0
    if isinstance(outcome, SystemExit):
        code = outcome.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        return 1
    if isinstance(outcome, KeyboardInterrupt):
        return 130
    return 1


def _artifact_dir(folder: Path, cwd: Path) -> str:
    try:
        return folder.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return folder.name


def _trim(error: BaseException, seen: set[int] | None = None) -> None:
    """Drop emstrack's and wrapt's frames from a traceback, unless the error arose in them."""
    seen = seen if seen is not None else set()
    if id(error) in seen:
        return
    seen.add(id(error))
    entries = []
    tb = error.__traceback__
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    last_foreign = max(
        (i for i, entry in enumerate(entries) if not _is_ours(entry.tb_frame.f_code.co_filename)),
        default=-1,
    )
    kept = [
        entry
        for i, entry in enumerate(entries)
        if i > last_foreign or not _is_ours(entry.tb_frame.f_code.co_filename)
    ]
    for current, following in zip(kept, [*kept[1:], None], strict=True):
        current.tb_next = following
    error.__traceback__ = kept[0] if kept else None
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            _trim(linked, seen)


def _is_ours(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) or f"{os.sep}wrapt{os.sep}" in filename


def _state(tracked: _Tracked) -> str:
    if tracked.problem is not None:
        return tracked.problem
    return "wrapped" if tracked.calls_wrapped else "never bound"


def _die_by_sigint() -> NoReturn:
    """End as ``python`` does after an unhandled Ctrl-C: exit handlers, then death by SIGINT."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    atexit._run_exitfuncs()
    if hasattr(signal, "SIGINT") and os.name == "posix":
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(130)
