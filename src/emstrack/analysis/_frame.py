"""The tidy run frame of :func:`emstrack.analysis.runs`, built from a run table."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ._coerce import type_frame
from ._reader import RunTable

__all__ = ["BASE_COLUMNS", "tidy"]

BASE_COLUMNS = (
    "run_id",
    "run_name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "duration_s",
    "parent_run_id",
)


def tidy(
    table: RunTable,
    experiment_names: Mapping[str, str],
    declared: dict[str, type] | None = None,
) -> pd.DataFrame:
    """One row per run: :data:`BASE_COLUMNS`, then ``params.*`` (typed), ``metrics.*``, ``tags.*``.

    ``experiment_names`` maps experiment ids to names; ``declared`` maps param keys to the types
    a schema gives them.
    """
    info = table.info
    start = pd.to_datetime(info["start_ms"].astype("float64"), unit="ms", utc=True)
    end = pd.to_datetime(info["end_ms"].astype("float64"), unit="ms", utc=True)
    base = pd.DataFrame(
        {
            "run_id": info["run_id"].astype("object"),
            "run_name": info["run_name"].astype("object"),
            "experiment": info["experiment_id"].map(dict(experiment_names)).astype("object"),
            "status": info["status"].astype("object"),
            "start_time": start,
            "end_time": end,
            "duration_s": (info["end_ms"] - info["start_ms"]).astype("float64") / 1000.0,
            "parent_run_id": info["parent_run_id"].astype("object"),
        }
    )
    base = base.infer_objects()
    parts = [base]
    for prefix, frame in (
        ("params.", type_frame(table.params, declared) if len(table.params.columns) else None),
        ("metrics.", table.metrics.astype("float64") if len(table.metrics.columns) else None),
        ("tags.", table.tags.infer_objects() if len(table.tags.columns) else None),
    ):
        if frame is not None:
            aligned = frame.reset_index(drop=True).add_prefix(prefix)
            parts.append(aligned)
    out = pd.concat(parts, axis=1) if len(parts) > 1 else base
    return out.reset_index(drop=True)
