"""How :mod:`emstrack.analysis` selects runs: experiments, keys, statuses and grouped metric values.

The named internal API shared by :mod:`emstrack.analysis` and :mod:`emstrack.plots`: each
function validates one part of a request and raises the analysis error that names the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import _settings
from . import _direction
from ._coerce import schema_types, type_column
from ._errors import (
    DirectionUnknownError,
    KeyNotFoundError,
    MetricNotFoundError,
    NoRunsError,
    listing,
)
from ._open import open_reader
from ._reader import Reader, RunTable, Selection

Experiments = str | Sequence[str]

COMPARED_STATUSES = ("FINISHED",)
FAILED_STATUSES = ("FAILED", "KILLED")
_INFO_KEYS = ("experiment", "status")
"""Grouping keys read from the run itself, never from a param or tag."""


@dataclass(frozen=True)
class Grouped:
    """One metric's value per compared run, with the run's grouping keys."""

    experiments: list[str]
    keys: list[str]
    data: pd.DataFrame
    """Key columns, ``value``, ``run_id``, ``run_name``, ``start_ms``."""
    excluded: dict[str, int]


def metric_by_group(
    experiments: Experiments,
    metric: str,
    by: str | Sequence[str],
    *,
    filter: str | None,
    include_failed: bool,
    tracking_uri: str | None,
) -> Grouped:
    """Read ``metric`` and the ``by`` keys of the runs to compare (shared with the plots)."""
    names = experiment_names(experiments)
    keys = by_keys(by)
    param_keys = tuple(k.removeprefix("params.") for k in keys if not k.startswith("tags."))
    tag_keys = tuple(k[5:] for k in keys if k.startswith("tags."))
    # A plain key is a tag only where no run has the param (see _group_column).
    plain = tuple(k for k in keys if not k.startswith(("params.", "tags.")) and k not in _INFO_KEYS)
    with open_store(tracking_uri) as reader:
        ids = reader.experiment_ids(names)
        table = reader.read(
            list(ids.values()),
            filter,
            Selection(
                params=param_keys, metrics=(metric,), tags=tag_keys, tags_unless_params=plain
            ),
        )
        require_runs(table, names, filter)
        require_metric(reader, table, ids, metric)
        columns = _group_columns(reader, table, ids, keys)
    data = pd.DataFrame(columns)
    data.columns = pd.Index(keys)
    data["value"] = metric_values(table, metric)
    data["run_id"] = table.info["run_id"].to_numpy()
    data["run_name"] = table.info["run_name"].to_numpy()
    data["start_ms"] = table.info["start_ms"].to_numpy()
    kept, excluded = by_status(data, table, include_failed, names, filter)
    return Grouped(names, keys, kept, excluded)


def open_store(tracking_uri: str | None) -> AbstractContextManager[Reader]:
    return open_reader(_settings.tracking_uri(tracking_uri))


def shown(reader: Reader) -> str:
    from .._uris import redact_uri

    return redact_uri(reader.uri)


def experiment_names(experiments: Experiments) -> list[str]:
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"experiments must be a name or a list of names, not {experiments!r}")
    return list(dict.fromkeys(names))


def key_tuple(keys: Sequence[str] | None) -> tuple[str, ...] | None:
    if keys is None:
        return None
    if isinstance(keys, str):
        return (keys,)
    return tuple(keys)


def by_keys(by: str | Sequence[str]) -> list[str]:
    items = [by] if isinstance(by, str) else list(by)
    keys = [part.strip() for item in items for part in item.split(",") if part.strip()]
    if not keys:
        raise ValueError("by needs at least one key")
    return list(dict.fromkeys(keys))


def names_by_id(ids: dict[str, str]) -> dict[str, str]:
    return {experiment_id: name for name, experiment_id in ids.items()}


def declared_types(schema: type[Any] | None) -> dict[str, type] | None:
    return schema_types(schema) if schema is not None else None


def direction_of(metric: str, higher_is_better: bool | None) -> bool:
    if higher_is_better is not None:
        return bool(higher_is_better)
    inferred = _direction.infer(metric)
    if inferred is None:
        raise DirectionUnknownError(
            f"cannot tell from its name whether higher or lower {metric!r} is better; "
            "pass higher_is_better=True or False (--higher-is-better or --lower-is-better)"
        )
    return inferred


def quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def filter_note(filter: str | None) -> str:
    return f" matching {filter!r}" if filter and filter.strip() else ""


def require_runs(table: RunTable, names: Sequence[str], filter: str | None) -> None:
    if len(table) == 0:
        where = "matching " + repr(filter) + " in" if filter and filter.strip() else "in"
        raise NoRunsError(
            f"no runs {where} experiment{'s' if len(names) > 1 else ''} {quoted(names)}"
        )


def require_metric(reader: Reader, table: RunTable, ids: dict[str, str], metric: str) -> None:
    if metric in table.metrics.columns:
        return
    known = reader.keys(list(ids.values()), "metrics")
    if metric not in known:
        raise MetricNotFoundError(
            f"no run of {quoted(list(ids))} logged metric {metric!r}; {listing(known, 'metrics')}"
        )


def metric_values(table: RunTable, metric: str) -> Any:
    if metric in table.metrics.columns:
        return table.metrics[metric].to_numpy(dtype="float64")
    return [float("nan")] * len(table)


def _group_columns(
    reader: Reader, table: RunTable, ids: dict[str, str], keys: Sequence[str]
) -> dict[str, pd.Series]:
    """The typed values of each grouping key, one per run of ``table``."""
    columns: dict[str, pd.Series] = {}
    unknown: list[str] = []
    for key in keys:
        column = _group_column(table, ids, key)
        if column is None:
            unknown.append(key)
        else:
            columns[key] = column
    if unknown:
        experiment_ids = list(ids.values())
        params = reader.keys(experiment_ids, "params")
        tags = [t for t in reader.keys(experiment_ids, "tags") if not t.startswith("mlflow.")]
        still = [k for k in unknown if not _known_key(k, params, tags)]
        if still:
            raise KeyNotFoundError(
                f"cannot group by {quoted(still)}: no param or tag of that name in "
                f"{quoted(list(ids))}; {listing(params, 'params')}; {listing(tags, 'tags')}"
            )
        for key in unknown:  # known in the experiments, but not among the matching runs
            columns[key] = pd.Series([None] * len(table), dtype="object")
    return {key: columns[key].reset_index(drop=True) for key in keys}


def _known_key(key: str, params: list[str], tags: list[str]) -> bool:
    if key.startswith("params."):
        return key[7:] in params
    if key.startswith("tags."):
        return key[5:] in tags
    return key in params or key in tags


def _group_column(table: RunTable, ids: dict[str, str], key: str) -> pd.Series | None:
    if key == "experiment":
        return table.info["experiment_id"].map(names_by_id(ids)).astype("object")
    if key == "status":
        return table.info["status"].astype("object")
    if key.startswith("tags."):
        name = key[5:]
        return table.tags[name].infer_objects() if name in table.tags.columns else None
    name = key.removeprefix("params.")
    if name in table.params.columns:
        return type_column(table.params[name])
    if not key.startswith("params.") and name in table.tags.columns:
        return table.tags[name].infer_objects()
    return None


def compared_statuses(include_failed: bool) -> tuple[str, ...]:
    return COMPARED_STATUSES + (FAILED_STATUSES if include_failed else ())


def by_status(
    data: pd.DataFrame,
    table: RunTable,
    include_failed: bool,
    names: Sequence[str],
    filter: str | None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows whose run status is compared, and how many runs were left out per status."""
    allowed = compared_statuses(include_failed)
    status = table.info["status"].to_numpy()
    keep = pd.Series(status).isin(allowed).to_numpy()
    excluded = pd.Series(status[~keep]).value_counts().sort_index()
    counts = {str(k): int(v) for k, v in excluded.items()}
    if not keep.any():
        found = ", ".join(f"{n} {s}" for s, n in counts.items())
        hint = "" if include_failed else "; include_failed=True also compares FAILED and KILLED"
        raise NoRunsError(
            f"no {' or '.join(allowed)} runs in {quoted(names)}{filter_note(filter)} "
            f"(found {found}){hint}"
        )
    return data[keep].reset_index(drop=True), counts
