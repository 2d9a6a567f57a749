"""Per-group statistics of one metric and the best run of each group, for ``compare``."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["STAT_COLUMNS", "best_row", "summarize"]

STAT_COLUMNS = ("count", "missing", "mean", "min", "max", "best_run_id", "best_run_name")


def _ranked(data: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """Rows with a value, best first; ties go to the earlier start, then the smaller run id."""
    present = data[data["value"].notna()]
    return present.sort_values(
        ["value", "start_ms", "run_id"], ascending=[not higher_is_better, True, True], kind="stable"
    )


def _best_valued(data: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """The rows holding their group's best value: the only candidates for its best run.

    Ranking these few rows picks the run that ranking every row picks (the best run has the best
    value), without sorting 100,000 run ids.
    """
    present = data[data["value"].notna()]
    best = present.groupby("_group")["value"].transform("max" if higher_is_better else "min")
    return present[present["value"] == best]


def summarize(data: pd.DataFrame, keys: Sequence[str], higher_is_better: bool) -> pd.DataFrame:
    """Group ``data`` by ``keys``: count, missing, mean, min, max and the best run.

    ``data`` has the key columns plus ``value`` (NaN when the run did not log the metric),
    ``run_id``, ``run_name`` and ``start_ms``. Missing key values form their own group, sorted
    last; groups are sorted by their keys.
    """
    keys = list(keys)
    data = data.reset_index(drop=True)
    data["_group"] = data.groupby(keys, dropna=False, sort=True).ngroup()
    groups = data.drop_duplicates("_group").set_index("_group")[keys].sort_index()
    grouped = data.groupby("_group")["value"]
    stats = pd.DataFrame(
        {
            "count": grouped.count().astype("int64"),
            "missing": (grouped.size() - grouped.count()).astype("int64"),
            "mean": grouped.mean(),
            "min": grouped.min(),
            "max": grouped.max(),
        }
    )
    best = (
        _ranked(_best_valued(data, higher_is_better), higher_is_better)
        .drop_duplicates("_group")
        .set_index("_group")[["run_id", "run_name"]]
        .rename(columns={"run_id": "best_run_id", "run_name": "best_run_name"})
    )
    out = groups.join(stats).join(best)
    out["best_run_id"] = out["best_run_id"].astype("object")
    out["best_run_name"] = out["best_run_name"].astype("object")
    return out.reset_index(drop=True)


def best_row(data: pd.DataFrame, higher_is_better: bool) -> pd.Series | None:
    """The best row of ``data`` (columns as for :func:`summarize`); ``None`` if none has a value."""
    ranked = _ranked(data, higher_is_better)
    return None if ranked.empty else ranked.iloc[0]
