"""Figures of tracked runs: savings per building and mode, cost distributions, per-day series.

Each function reads the runs like :mod:`emstrack.analysis` (same ``experiments``, ``filter``,
``include_failed`` and ``tracking_uri`` arguments, same errors), draws one matplotlib
:class:`~matplotlib.figure.Figure` and returns it, so it shows inline in a notebook; with
``path=`` it is also saved as a PNG. Figures are created without ``pyplot``: nothing is
registered globally, nothing is shown, and a figure that is no longer referenced is freed.
matplotlib is imported on the first call, not with this module.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import analysis
from ._tracking.mapping import format_float
from .analysis._errors import KeyNotFoundError, listing
from .analysis._selection import COMPARED_STATUSES, FAILED_STATUSES, Grouped, metric_by_group

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_cost_distribution", "plot_savings", "plot_series"]

_WIDTH_IN = 8.0
_HEIGHT_IN = 4.8
_DPI = 100


def plot_savings(
    experiments: str | Sequence[str],
    *,
    metric: str = "savings_eur",
    by: str | Sequence[str] = analysis.DEFAULT_BY,
    filter: str | None = None,
    include_failed: bool = False,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> Figure:
    """Mean savings per group as bars, the whiskers spanning each group's min to max.

    The first ``by`` key gives the groups along the x axis (e.g. buildings); the other keys give
    one bar per value within each group, in the legend (e.g. optimization modes).

    Args:
        experiments: Experiment name, or a list of names.
        metric: Metric to draw (default ``savings_eur``).
        by: Grouping keys, as for :func:`emstrack.analysis.compare`.
        filter: MLflow search filter.
        include_failed: Also draw FAILED and KILLED runs.
        title: Figure title (default: names the metric).
        path: Also save the figure as a PNG here.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        The figure: one bar (with a min-max whisker) per group that logged the metric.

    """
    grouped = metric_by_group(
        experiments,
        metric,
        by,
        filter=filter,
        include_failed=include_failed,
        tracking_uri=tracking_uri,
    )
    stats = (
        grouped.data.groupby(grouped.keys, dropna=False, sort=True)["value"]
        .agg(["mean", "min", "max"])
        .dropna(subset=["mean"])
        .reset_index()
    )
    if stats.empty:
        raise _nothing_to_draw(grouped, metric)
    outer, inner = grouped.keys[0], grouped.keys[1:]
    positions = _labels(stats[outer])
    series_labels = (
        stats[inner].apply(lambda row: " / ".join(_text(v) for v in row), axis=1)
        if inner
        else pd.Series([metric] * len(stats))
    )
    hues = list(dict.fromkeys(series_labels))
    figure, axes = _new_figure()
    width = 0.8 / max(1, len(hues))
    x_values = list(dict.fromkeys(positions))
    for hue_index, hue in enumerate(hues):
        rows = stats[(series_labels == hue).to_numpy()]
        xs = np.array([x_values.index(label) for label in _labels(rows[outer])], dtype=float)
        xs += (hue_index - (len(hues) - 1) / 2) * width
        means = rows["mean"].to_numpy(dtype=float)
        below = means - rows["min"].to_numpy(dtype=float)
        above = rows["max"].to_numpy(dtype=float) - means
        axes.bar(xs, means, width=width, label=hue, yerr=np.vstack([below, above]), capsize=3)
    axes.set_xticks(range(len(x_values)), x_values)
    axes.set_xlabel(outer)
    axes.set_ylabel(f"{metric} (mean; whiskers: min to max)")
    axes.axhline(0.0, color="black", linewidth=0.8)
    if inner:
        axes.legend(title=" / ".join(inner))
    axes.set_title(title or f"{metric} by {', '.join(grouped.keys)}")
    _rotate_if_long(axes, x_values)
    return _finish(figure, path)


def plot_cost_distribution(
    experiments: str | Sequence[str],
    *,
    metric: str = "total_cost",
    by: str | Sequence[str] = "optimization_mode",
    filter: str | None = None,
    include_failed: bool = False,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> Figure:
    """The distribution of a cost metric over runs, one box per group.

    Args:
        experiments: Experiment name, or a list of names.
        metric: Metric to draw (default ``total_cost``).
        by: Grouping keys, as for :func:`emstrack.analysis.compare` (default: the mode).
        filter: MLflow search filter.
        include_failed: Also draw FAILED and KILLED runs.
        title: Figure title (default: names the metric).
        path: Also save the figure as a PNG here.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        The figure: one box (quartiles, whiskers at 1.5 IQR, outliers as points) per group that
        logged the metric, labelled with the group and its number of runs.

    """
    grouped = metric_by_group(
        experiments,
        metric,
        by,
        filter=filter,
        include_failed=include_failed,
        tracking_uri=tracking_uri,
    )
    present = grouped.data[grouped.data["value"].notna()]
    if present.empty:
        raise _nothing_to_draw(grouped, metric)
    boxes: list[np.ndarray[Any, Any]] = []
    labels: list[str] = []
    for key, rows in present.groupby(grouped.keys, dropna=False, sort=True):
        parts = key if isinstance(key, tuple) else (key,)
        labels.append(f"{' / '.join(_text(p) for p in parts)}\n(n={len(rows)})")
        boxes.append(rows["value"].to_numpy(dtype=float))
    figure, axes = _new_figure()
    axes.boxplot(boxes, tick_labels=labels)
    axes.set_xlabel(" / ".join(grouped.keys))
    axes.set_ylabel(metric)
    axes.set_title(title or f"{metric} per run by {', '.join(grouped.keys)}")
    _rotate_if_long(axes, labels)
    return _finish(figure, path)


def plot_series(
    experiments: str | Sequence[str],
    metric: str,
    *,
    filter: str | None = None,
    label_by: str | None = None,
    include_failed: bool = False,
    max_runs: int = 20,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
) -> Figure:
    """A per-step (e.g. per-day) metric as one line per run.

    Args:
        experiments: Experiment name, or a list of names.
        metric: A metric logged at several steps (``log_series``, a DataFrame per day).
        filter: MLflow search filter.
        label_by: Param or tag whose value labels each line (default: the run name).
        include_failed: Also draw FAILED and KILLED runs (default: FINISHED only).
        max_runs: Draw at most this many runs, the newest that logged the metric (the title
            then says so). A run whose last logged value is NaN counts as not having it.
        title: Figure title (default: names the metric).
        path: Also save the figure as a PNG here.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        The figure: one line per run that logged the metric, x = step, y = value.

    Raises:
        NoRunsError: No run matches with a drawn status.
        MetricNotFoundError: None of those runs logged ``metric``.
        KeyNotFoundError: ``label_by`` is neither a param nor a tag of the runs.

    """
    if max_runs < 1:
        raise ValueError(f"max_runs must be at least 1, not {max_runs}")
    frame = analysis.runs(
        experiments, filter, metrics=(metric,), tags="all", tracking_uri=tracking_uri
    )
    allowed = COMPARED_STATUSES + (FAILED_STATUSES if include_failed else ())
    frame = frame[frame["status"].isin(allowed)]
    if frame.empty:
        raise analysis.NoRunsError(
            f"no {' or '.join(allowed)} runs in {experiments!r}"
            + (f" matching {filter!r}" if filter else "")
        )
    column = f"metrics.{metric}"
    if column in frame.columns and frame[column].notna().any():
        frame = frame[frame[column].notna()]
    labels = _line_labels(frame, label_by)
    chosen = frame.head(max_runs)
    history = analysis.series(list(chosen["run_id"]), metric, tracking_uri=tracking_uri)
    figure, axes = _new_figure()
    drawn = 0
    for run_id in chosen["run_id"]:
        points = history[history["run_id"] == run_id]
        if points.empty:
            continue
        axes.plot(points["step"], points["value"], marker="o", label=labels[run_id])
        drawn += 1
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    note = f" ({len(chosen)} newest of {len(frame)} runs)" if len(frame) > len(chosen) else ""
    axes.set_title((title or f"{metric} per step") + note)
    if drawn <= 12:
        axes.legend(title=label_by or "run")
    return _finish(figure, path)


# ---------------------------------------------------------------------- helpers


def _nothing_to_draw(grouped: Grouped, metric: str) -> analysis.NoRunsError:
    names = ", ".join(repr(name) for name in grouped.experiments)
    return analysis.NoRunsError(
        f"none of the {len(grouped.data)} compared runs of {names} logged {metric!r}"
    )


def _line_labels(frame: pd.DataFrame, label_by: str | None) -> dict[str, str]:
    names = frame["run_name"].fillna(frame["run_id"])
    if label_by is None:
        return dict(zip(frame["run_id"], names.astype(str), strict=True))
    for column in (f"params.{label_by}", f"tags.{label_by}", label_by):
        if column in frame.columns:
            values = [_text(v) for v in frame[column]]
            return dict(zip(frame["run_id"], values, strict=True))
    params = [c.removeprefix("params.") for c in frame.columns if c.startswith("params.")]
    tags = [c.removeprefix("tags.") for c in frame.columns if c.startswith("tags.")]
    raise KeyNotFoundError(
        f"cannot label by {label_by!r}: no param or tag of that name; "
        f"{listing(params, 'params')}; {listing(tags, 'tags')}"
    )


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "(none)"
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return format_float(float(value))
    return str(value)


def _labels(values: pd.Series) -> list[str]:
    return [_text(value) for value in values]


def _rotate_if_long(axes: Axes, labels: Sequence[str]) -> None:
    if sum(len(label) for label in labels) > 60:
        for tick in axes.get_xticklabels():
            tick.set_rotation(30)
            tick.set_horizontalalignment("right")


@functools.cache
def _figure_class() -> type[Figure]:
    from matplotlib.figure import Figure

    class InlineFigure(Figure):
        """A figure that renders itself as a PNG in notebooks, with or without pyplot."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=_DPI)
            return buffer.getvalue()

    return InlineFigure


def _new_figure() -> tuple[Figure, Axes]:
    figure = _figure_class()(figsize=(_WIDTH_IN, _HEIGHT_IN), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.grid(axis="y", alpha=0.3)
    return figure, axes


def _finish(figure: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, format="png", dpi=_DPI)
    return figure
