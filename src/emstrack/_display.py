"""How a :class:`~emstrack.Run` shows itself in Jupyter: name, status, run id, UI link, metrics.

The run's final status and latest metrics are read back from the store (one ``get_run``), so
what the notebook shows is what MLflow holds. A display never raises: if the store cannot be
read, the run is shown with what the handle knows and a note saying why metrics are missing.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import _html


class Run(Protocol):
    """What a display reads of a run (the tracking API's ``Run`` has it)."""

    @property
    def name(self) -> str | None:
        """The run name."""
        ...

    @property
    def status(self) -> str | None:
        """FINISHED, FAILED or KILLED once ended; ``None`` while open."""
        ...

    @property
    def tracking_uri(self) -> str:
        """The store the run writes to."""
        ...

    @property
    def experiment(self) -> str:
        """The run's experiment name."""
        ...

    @property
    def run_id(self) -> str | None:
        """The MLflow run id, once the run reached the store."""
        ...


__all__ = ["MAX_METRICS", "main_metrics", "run_html"]

MAX_METRICS = 12


def main_metrics(metrics: dict[str, float], limit: int = MAX_METRICS) -> dict[str, float]:
    """The metrics worth a glance, at most ``limit``.

    Top-level keys (``total_cost``) first, then dotted ones (``solver.solves``), each sorted.
    """
    ordered = sorted(metrics, key=lambda key: ("." in key, key))
    return {key: metrics[key] for key in ordered[:limit]}


def run_html(run: Run) -> str:
    """The HTML a notebook shows for ``run``."""
    try:
        return _run_html(run)
    except Exception as error:  # a display must never break a notebook cell
        return _html.escape(f"{run!r} (display failed: {type(error).__name__}: {error})")


def _run_html(run: Run) -> str:
    run_id = run.run_id
    status = run.status or "RUNNING"
    experiment_id: str | None = None
    metrics: dict[str, float] = {}
    note = ""
    if run_id is None:
        note = "not in the store yet (background mode: call run.flush())"
    else:
        try:
            stored = _stored_run(run.tracking_uri, run_id)
        except Exception as error:
            note = f"store not readable: {type(error).__name__}"
        else:
            status = stored.info.status
            experiment_id = stored.info.experiment_id
            metrics = dict(stored.data.metrics)
    items: dict[str, object] = {
        "name": run.name or "(unnamed)",
        "status": status,
        "run id": run_id or "-",
        "experiment": run.experiment,
    }
    raw: list[str] = []
    ui = _ui_link(run.tracking_uri, experiment_id, run_id)
    if ui is not None:
        items["MLflow UI"] = _html.link(ui, "open run")
        raw.append("MLflow UI")
    shown = main_metrics(metrics)
    for key, value in shown.items():
        items[key] = value
    if len(metrics) > len(shown):
        items["more metrics"] = f"{len(metrics) - len(shown)} more in the store"
    if note:
        items["note"] = note
    return _html.key_value_table("emstrack run", items, raw_keys=raw)


def _stored_run(tracking_uri: str, run_id: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri).get_run(run_id)


def _ui_link(tracking_uri: str, experiment_id: str | None, run_id: str | None) -> str | None:
    from ._ui_links import run_url, ui_base_url

    if experiment_id is None or run_id is None:
        return None
    base = ui_base_url(tracking_uri)
    return run_url(base, experiment_id, run_id) if base else None
