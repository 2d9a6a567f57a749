"""Links into the MLflow UI: which experiment to show, the URL that lands on its runs table.

MLflow 3.17's UI opens an experiment in its GenAI view (traces, token usage) unless the URL
says ``workflowType=machine_learning``; the experiment tag ``mlflow.experimentKind`` no longer
changes that (the UI derives the kind from the workflow type). So every link emstrack prints
names the runs view and the model-training workflow explicitly.

A running ``emstrack ui`` records its URL in a small state file (one per store, in the temp
folder, removed when it stops), so a notebook's run display can link to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ._settings import user_temp_folder

__all__ = [
    "ExperimentChoice",
    "UnknownExperimentError",
    "choose_experiment",
    "clear_ui_state",
    "experiment_url",
    "run_url",
    "runs_url",
    "ui_base_url",
    "write_ui_state",
]

RUNS_QUERY = "workflowType=machine_learning"
UI_URL_VARIABLE = "EMSTRACK_UI_URL"


class UnknownExperimentError(ValueError):
    """No active experiment of that name in the store."""


@dataclass(frozen=True)
class ExperimentChoice:
    """The experiment a UI link shows."""

    experiment_id: str
    name: str


def runs_url(base: str, experiment_id: str) -> str:
    """The URL of an experiment's runs table in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{_quote(experiment_id)}/runs?{RUNS_QUERY}"


def experiment_url(base: str, experiment_id: str | None) -> str:
    """:func:`runs_url` for an experiment, the UI's start page without one."""
    if experiment_id is None:
        return f"{base.rstrip('/')}/#/experiments?{RUNS_QUERY}"
    return runs_url(base, experiment_id)


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    """The URL of one run's page (overview: params, metrics, tags; artifacts one tab away)."""
    return (
        f"{base.rstrip('/')}/#/experiments/{_quote(experiment_id)}/runs/{_quote(run_id)}"
        f"?{RUNS_QUERY}"
    )


def choose_experiment(tracking_uri: str, name: str | None = None) -> ExperimentChoice | None:
    """The experiment named ``name``, else the most recently used one (latest run start).

    Without runs anywhere, the most recently created experiment; ``None`` for a store without
    experiments (or without a database file yet).

    Raises:
        UnknownExperimentError: ``name`` is not an active experiment (the message lists them).

    """
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    from ._uris import sqlite_path

    database = sqlite_path(tracking_uri)
    if database is not None and not database.exists():
        if name is not None:
            raise UnknownExperimentError(
                f"no experiment {name!r}: the store {database} does not exist yet"
            )
        return None
    client = MlflowClient(tracking_uri=tracking_uri)
    experiments = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=50_000)
    if name is not None:
        for experiment in experiments:
            if experiment.name == name:
                return ExperimentChoice(experiment.experiment_id, experiment.name)
        from ._uris import redact_uri

        known = ", ".join(sorted(repr(e.name) for e in experiments)) or "none"
        raise UnknownExperimentError(
            f"no experiment {name!r} in {redact_uri(tracking_uri)}; known experiments: {known}"
        )
    if not experiments:
        return None
    latest = client.search_runs(
        [e.experiment_id for e in experiments],
        run_view_type=ViewType.ACTIVE_ONLY,
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    by_id = {e.experiment_id: e for e in experiments}
    if latest and latest[0].info.experiment_id in by_id:
        chosen = by_id[latest[0].info.experiment_id]
    else:
        chosen = max(experiments, key=lambda e: (e.creation_time or 0, e.experiment_id))
    return ExperimentChoice(chosen.experiment_id, chosen.name)


# ---------------------------------------------------------------------- known servers


def ui_base_url(tracking_uri: str) -> str | None:
    """The MLflow UI that shows ``tracking_uri``'s runs, if one is known.

    ``EMSTRACK_UI_URL``, else the tracking URI itself when it is an ``http(s)`` server, else an
    ``emstrack ui`` running on that store (its state file, if its process is alive).
    """
    configured = os.environ.get(UI_URL_VARIABLE, "").strip()
    if configured:
        return configured.rstrip("/")
    scheme = urllib.parse.urlsplit(tracking_uri).scheme.lower()
    if scheme in {"http", "https"}:
        from ._uris import redact_uri

        return redact_uri(tracking_uri).rstrip("/")
    state = _read_state(_state_path(tracking_uri))
    if state is None:
        return None
    url, pid = state
    return url if _alive(pid) else None


def write_ui_state(tracking_uri: str, url: str, pid: int) -> Path:
    """Record that an ``emstrack ui`` process ``pid`` serves ``tracking_uri`` at ``url``."""
    path = _state_path(tracking_uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"url": url, "pid": pid}), encoding="utf-8")
    os.replace(temporary, path)
    return path


def clear_ui_state(tracking_uri: str, pid: int) -> None:
    """Remove the state file if it is still the one process ``pid`` wrote."""
    path = _state_path(tracking_uri)
    state = _read_state(path)
    if state is not None and state[1] == pid:
        with contextlib.suppress(OSError):
            path.unlink()


def _state_path(tracking_uri: str) -> Path:
    digest = hashlib.sha256(tracking_uri.encode("utf-8")).hexdigest()[:16]
    return user_temp_folder("ui") / f"{digest}.json"


def _read_state(path: Path) -> tuple[str, int] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        url, pid = data["url"], data["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(url, str) or not isinstance(pid, int):
        return None
    return url, pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")
