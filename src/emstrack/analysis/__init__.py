"""Read tracked runs back as pandas DataFrames: list, compare, pick the best, export.

Every function takes ``tracking_uri`` (default: like the rest of emstrack, an explicit URI,
else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``) and names experiments by
name (one name or a list). Deleted runs and experiments are never read.

**Speed.** On SQL stores (``sqlite:///``, ``postgresql://``, ``mysql://``) MLflow's tables are
read directly with read-only ``SELECT`` statements: on 10,000 runs with 5 params and 15
metrics, ``compare``, ``best_run`` and ``export`` each take well under a second, where
``mlflow.search_runs`` takes about 9 s. Other stores (an ``http(s)://`` tracking server, a
``file:`` store) are read through ``MlflowClient.search_runs``, page by page.

**Filters** use MLflow's search syntax. The SQL path evaluates this subset itself, clauses
joined by ``AND``::

    params.<key> / tags.<key>   =, !=, LIKE, ILIKE '<text>';  IS NULL, IS NOT NULL
    metrics.<key>               =, !=, <, <=, >, >= <number>   (the latest value)
    attributes.<run_id | run_name | status | user_id | artifact_uri>  =, !=, LIKE, ILIKE '<text>'
    attributes.run_id           IN, NOT IN ('<id>', ...)
    attributes.<start_time | end_time | created>  =, !=, <, <=, >, >= <ms since the epoch>

Keys may be quoted with backticks or double quotes (``tags.`solver.status` = 'Optimal'``).
Any other filter (and any filter on MySQL) is handed to ``search_runs``, so it means exactly
what it means in MLflow; an invalid one raises :class:`InvalidFilterError`.

**Params are typed back** from the text MLflow stores: a column whose values are all
``true``/``false`` becomes ``bool``, all integers ``int64``, all numbers ``float64``; other
columns stay text. Columns with missing values use pandas' nullable ``boolean`` and ``Int64``.
A ``schema`` (a pydantic model such as :class:`emstrack.schemas.OptimizationParams`) decides for
the fields it declares, so a ``float`` field logged as ``10`` stays a float.

**Which direction is better** is read from the metric's name (see :func:`metric_direction`);
pass ``higher_is_better=`` to decide yourself:

1. higher is better when the name contains the word ``savings``/``saving``, or the words
   ``self consumption`` or ``convergence achieved`` (``cost_savings`` is a saving);
2. otherwise lower is better when it contains ``cost``, ``time``, ``violations``, ``import`` or
   ``divergence`` (singular or plural; words are split at ``_``, ``.``, ``/``, ``-`` ...);
3. otherwise :class:`DirectionUnknownError`.

**Run status.** ``compare`` and ``best_run`` consider FINISHED runs only; with
``include_failed=True`` also FAILED and KILLED runs. Runs still RUNNING are never compared.
Runs that did not log the metric are counted in ``missing`` and left out of the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .. import _settings
from . import _direction
from ._errors import (
    AnalysisError,
    DirectionUnknownError,
    ExperimentNotFoundError,
    InvalidFilterError,
    KeyNotFoundError,
    MetricNotFoundError,
    NoRunsError,
    NotFoundError,
    RunNotFoundError,
    StoreError,
    listing,
)
from ._export import format_for, write_frame
from ._frame import BASE_COLUMNS, tidy
from ._groups import best_row, summarize
from ._reader import Reader, Selection
from ._selection import (
    Experiments,
    by_status,
    compared_statuses,
    declared_types,
    direction_of,
    experiment_names,
    filter_note,
    key_tuple,
    metric_by_group,
    metric_values,
    names_by_id,
    open_store,
    quoted,
    require_metric,
    require_runs,
    shown,
)

__all__ = [
    "BASE_COLUMNS",
    "DEFAULT_BY",
    "AnalysisError",
    "DirectionUnknownError",
    "ExperimentNotFoundError",
    "InvalidFilterError",
    "KeyNotFoundError",
    "MetricNotFoundError",
    "NoRunsError",
    "NotFoundError",
    "RunNotFoundError",
    "StoreError",
    "best_run",
    "compare",
    "diff",
    "export",
    "metric_direction",
    "report",
    "runs",
    "series",
]

Tags = Literal["all"] | Sequence[str] | None


def _deliver_pending(tracking_uri: str | None) -> None:
    """Read what this process tracked: wait for its runs still on their way to the store.

    Costs a folder listing when nothing waits. Runs that cannot be delivered now (store down)
    are named in one warning; the read goes on without them.
    """
    from .. import _guard, _settings
    from .._delivery.replay import flush_for, pending

    if flush_for(tracking_uri, _settings.flush_timeout()):
        return
    waiting = [run for run in pending() if run.status is not None]
    if waiting:
        _guard.warn(
            f"{len(waiting)} finished run(s) are not in the tracking store yet and are not "
            f"part of this result (`emstrack status` lists them; spool {_settings.spool_dir()})"
        )


DEFAULT_BY = ("building_id", "optimization_mode")
"""Default grouping of :func:`compare`: one group per building and optimization mode."""


def metric_direction(metric: str) -> bool | None:
    """Whether higher values of ``metric`` are better, as read from its name.

    Args:
        metric: Metric name, e.g. ``savings_eur`` or ``peak_import_kw``.

    Returns:
        ``True`` (higher is better), ``False`` (lower is better) or ``None`` (the name does not
        say; see the rule in the module docstring).

    """
    return _direction.infer(metric)


def runs(
    experiments: Experiments,
    filter: str | None = None,
    *,
    params: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    tags: Tags = None,
    schema: type[Any] | None = None,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """The runs of one or more experiments as a tidy DataFrame, one row per run.

    Columns: ``run_id``, ``run_name``, ``experiment``, ``status``, ``start_time`` and
    ``end_time`` (UTC timestamps; ``end_time`` is NaT while running), ``duration_s``,
    ``parent_run_id`` (of nested runs), then ``params.<key>`` (typed back), ``metrics.<key>``
    (the latest value; NaN when not logged) and ``tags.<key>`` (text). Rows are ordered like
    MLflow's: newest start first, then run id.

    Args:
        experiments: Experiment name, or a list of names.
        filter: MLflow search filter, e.g. ``"params.battery_enabled = 'true'"``.
        params: Param keys to include (default: all).
        metrics: Metric keys to include (default: all).
        tags: Tag keys to include; default: all but MLflow's own ``mlflow.*`` tags and
            emstrack's bookkeeping tags (``emstrack.run_key``, ``emstrack.parent_key`` and what
            ``emstrack rerun`` reads: ``emstrack.function_path``, ``emstrack.function_file``,
            ``emstrack.tracking_options``);
            ``"all"`` for every tag.
        schema: A pydantic model whose field types decide the params' dtypes.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        The runs; no rows (but the base columns) when none matches.

    Raises:
        ExperimentNotFoundError: An experiment does not exist (the message lists those that do).
        InvalidFilterError: MLflow rejects the filter.
        StoreError: The store does not exist or cannot be read.

    """
    _deliver_pending(tracking_uri)
    names = experiment_names(experiments)
    selection = Selection(
        params=key_tuple(params),
        metrics=key_tuple(metrics),
        tags=None if tags is None or tags == "all" else key_tuple(tags),
        user_tags_only=tags is None,
    )
    with open_store(tracking_uri) as reader:
        ids = reader.experiment_ids(names)
        table = reader.read(list(ids.values()), filter, selection)
    return tidy(table, names_by_id(ids), declared_types(schema))


def compare(
    experiments: Experiments,
    metric: str,
    by: str | Sequence[str] = DEFAULT_BY,
    *,
    filter: str | None = None,
    higher_is_better: bool | None = None,
    include_failed: bool = False,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Statistics of ``metric`` per group of runs, and each group's best run.

    Args:
        experiments: Experiment name, or a list of names.
        metric: Metric to compare, e.g. ``total_cost``.
        by: Keys to group by: param or tag keys (a param wins over a tag of the same name;
            ``params.x``/``tags.x`` choose), ``experiment`` or ``status``. One string may list
            several, comma-separated.
        filter: MLflow search filter applied before grouping.
        higher_is_better: Direction of ``metric``; default: read from its name.
        include_failed: Also compare FAILED and KILLED runs (default: FINISHED only).
        tracking_uri: Store to read; default as for tracking.

    Returns:
        One row per group, sorted by the group keys (runs without a key value form their own
        group, last): the key columns (params typed back), ``count`` (runs that logged the
        metric), ``missing`` (runs that did not; left out of the statistics), ``mean``,
        ``min``, ``max``, ``best_run_id`` and ``best_run_name`` (ties: the earlier run). The
        frame's ``attrs`` hold ``metric``, ``higher_is_better``, ``excluded`` (runs left out
        per status) and ``experiments``.

    Raises:
        DirectionUnknownError: The name does not tell the direction and none was given.
        ExperimentNotFoundError: An experiment does not exist.
        NoRunsError: No run matches, or none has a compared status.
        MetricNotFoundError: No run of the experiments logged ``metric``.
        KeyNotFoundError: A ``by`` key is neither a param nor a tag of the runs.
        InvalidFilterError: MLflow rejects the filter.
        StoreError: The store does not exist or cannot be read.

    """
    _deliver_pending(tracking_uri)
    grouped = metric_by_group(
        experiments,
        metric,
        by,
        filter=filter,
        include_failed=include_failed,
        tracking_uri=tracking_uri,
    )
    direction = direction_of(metric, higher_is_better)
    out = summarize(grouped.data, grouped.keys, direction)
    out.attrs.update(
        metric=metric,
        higher_is_better=direction,
        excluded=grouped.excluded,
        experiments=grouped.experiments,
    )
    return out


def best_run(
    experiments: Experiments,
    metric: str,
    *,
    filter: str | None = None,
    higher_is_better: bool | None = None,
    include_failed: bool = False,
    schema: type[Any] | None = None,
    tracking_uri: str | None = None,
) -> pd.Series:
    """The run with the best value of ``metric``, as one row of :func:`runs`.

    Args:
        experiments: Experiment name, or a list of names.
        metric: Metric to rank by.
        filter: MLflow search filter.
        higher_is_better: Direction of ``metric``; default: read from its name.
        include_failed: Also consider FAILED and KILLED runs (default: FINISHED only).
        schema: A pydantic model whose field types decide the params' dtypes.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        The run's row (named by its run id) with every column :func:`runs` gives it. Ties go to
        the run that started first, then to the smaller run id.

    Raises:
        DirectionUnknownError: The name does not tell the direction and none was given.
        ExperimentNotFoundError: An experiment does not exist.
        NoRunsError: No run matches, none has a considered status, or none of those logged
            ``metric``.
        MetricNotFoundError: No run of the experiments logged ``metric``.
        InvalidFilterError: MLflow rejects the filter.
        StoreError: The store does not exist or cannot be read.

    """
    _deliver_pending(tracking_uri)
    names = experiment_names(experiments)
    with open_store(tracking_uri) as reader:
        ids = reader.experiment_ids(names)
        best_id = _best_in_store(reader, ids, metric, filter, higher_is_better, include_failed)
        if best_id is None:
            best_id = _best_read(
                reader, ids, names, metric, filter, higher_is_better, include_failed
            )
        full = reader.read(
            list(ids.values()), None, Selection(user_tags_only=True), run_ids=[best_id]
        )
    row = tidy(full, names_by_id(ids), declared_types(schema)).iloc[0]
    row.name = best_id
    return row


def _best_in_store(
    reader: Reader,
    ids: dict[str, str],
    metric: str,
    filter: str | None,
    higher_is_better: bool | None,
    include_failed: bool,
) -> str | None:
    """The best run's id as the store ranks it; ``None`` to rank in pandas (and raise there).

    Only when the direction is known: otherwise :func:`_best_read` raises the errors in their
    usual order (no runs, no metric, then the unknown direction).
    """
    direction = higher_is_better if higher_is_better is not None else metric_direction(metric)
    if direction is None:
        return None
    return reader.best_run_id(
        list(ids.values()), filter, metric, compared_statuses(include_failed), bool(direction)
    )


def _best_read(
    reader: Reader,
    ids: dict[str, str],
    names: list[str],
    metric: str,
    filter: str | None,
    higher_is_better: bool | None,
    include_failed: bool,
) -> str:
    """The best run's id, ranked in pandas; raises why there is none."""
    table = reader.read(
        list(ids.values()), filter, Selection(params=(), metrics=(metric,), tags=())
    )
    require_runs(table, names, filter)
    require_metric(reader, table, ids, metric)
    direction = direction_of(metric, higher_is_better)
    data = pd.DataFrame(
        {
            "value": metric_values(table, metric),
            "run_id": table.info["run_id"].to_numpy(),
            "run_name": table.info["run_name"].to_numpy(),
            "start_ms": table.info["start_ms"].to_numpy(),
        }
    )
    kept, _ = by_status(data, table, include_failed, names, filter)
    best = best_row(kept, direction)
    if best is None:
        raise NoRunsError(
            f"none of the {len(kept)} compared runs of {quoted(names)} logged {metric!r}"
            + filter_note(filter)
        )
    return str(best["run_id"])


def diff(
    run_a: str,
    run_b: str,
    *,
    only_changed: bool = False,
    rtol: float = 1e-9,
    atol: float = 0.0,
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Two runs side by side: status, params, metrics, tags that matter and dataset digests.

    Args:
        run_a: The first run's id.
        run_b: The second run's id.
        only_changed: Keep only the rows that differ.
        rtol: Relative tolerance of metric comparisons.
        atol: Absolute tolerance of metric comparisons.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        One row per compared item: ``kind`` (``status``, ``param``, ``metric``, ``tag``,
        ``dataset``), ``key``, ``a``, ``b``, ``abs_diff`` and ``rel_diff`` (metrics), and
        ``result``: ``same``, ``changed``, ``same (within MIP gap)`` (an objective inside the
        recorded relative MIP gap), ``not compared (timing)`` (wall-clock figures), ``only in
        a`` or ``only in b``. Metrics are the same when ``|a - b| <= atol + rtol * max(|a|,
        |b|)`` at their latest value and at every step (``changed (step N)`` names the first
        step that differs); datasets compare digests, matched by name
        and context. ``attrs`` hold ``run_a``, ``run_b``, ``changed_metrics`` and
        ``datasets`` (``same``, ``changed`` or ``none recorded``).

    Raises:
        RunNotFoundError: A run id is not in the store.
        StoreError: The store cannot be read.

    """
    from mlflow.tracking import MlflowClient

    from .. import _settings
    from . import _diff

    uri = _settings.tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    first = _diff.fetch_run(client, run_a, uri)
    second = _diff.fetch_run(client, run_b, uri)
    table = _diff.compare_runs(
        first, second, _diff.Tolerance(rtol, atol), history=_diff.client_history(client)
    )
    return _diff.only_changed(table) if only_changed else table


def series(
    run_ids: str | Sequence[str], metric: str, *, tracking_uri: str | None = None
) -> pd.DataFrame:
    """Every logged point of ``metric`` in one or more runs: the per-step history.

    Args:
        run_ids: One run id or several.
        metric: Metric key, e.g. a per-day series logged with ``log_series`` or a DataFrame.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        Columns ``run_id``, ``step`` (int), ``value`` (float; NaN where NaN was logged) and
        ``timestamp`` (UTC), ordered by the given runs, then step and time. A run that did not
        log the metric has no rows.

    Raises:
        RunNotFoundError: A run id is not an active run of the store.
        MetricNotFoundError: None of the runs logged ``metric`` (the message lists what they
            logged).
        StoreError: The store does not exist or cannot be read.

    """
    _deliver_pending(tracking_uri)
    ids = list(dict.fromkeys([run_ids] if isinstance(run_ids, str) else run_ids))
    if not ids:
        raise ValueError("series() needs at least one run id")
    with open_store(tracking_uri) as reader:
        existing = set(reader.existing_runs(ids))
        missing = [run_id for run_id in ids if run_id not in existing]
        if missing:
            raise RunNotFoundError(
                f"no active run {', '.join(repr(m) for m in missing)} in {shown(reader)}"
            )
        history = reader.history(ids, metric)
        if history.empty:
            known = reader.run_metric_keys(ids)
            if metric not in known:
                raise MetricNotFoundError(
                    f"metric {metric!r} was not logged by run{'s' if len(ids) > 1 else ''} "
                    f"{', '.join(ids)}; {listing(known, 'metrics')}"
                )
    history["timestamp"] = pd.to_datetime(history.pop("timestamp_ms"), unit="ms", utc=True)
    out: pd.DataFrame = history[["run_id", "step", "value", "timestamp"]]
    return out.reset_index(drop=True)


def export(
    experiments: Experiments,
    path: str | Path,
    *,
    filter: str | None = None,
    format: Literal["csv", "parquet"] | None = None,
    params: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    tags: Tags = None,
    schema: type[Any] | None = None,
    tracking_uri: str | None = None,
) -> Path:
    """Write :func:`runs` to a CSV or Parquet file.

    The file is written under a temporary name and renamed into place, so a reader never sees
    half of it. Parquet keeps the dtypes; CSV writes timestamps in ISO 8601.

    Args:
        experiments: Experiment name, or a list of names.
        path: Target file; its suffix (``.csv``, ``.parquet``, ``.pq``) gives the format.
        filter: MLflow search filter.
        format: ``"csv"`` or ``"parquet"``, overriding the suffix.
        params: Param keys to include (default: all).
        metrics: Metric keys to include (default: all).
        tags: Tag keys to include (default and ``"all"`` as for :func:`runs`).
        schema: A pydantic model whose field types decide the params' dtypes.
        tracking_uri: Store to read; default as for tracking.

    Returns:
        The path written.

    Raises:
        ValueError: The format is neither given nor known from the suffix.
        AnalysisError: Parquet was asked for and pyarrow is not installed; or any error of
            :func:`runs`.

    """
    _deliver_pending(tracking_uri)
    written, _ = export_counted(
        experiments,
        path,
        filter=filter,
        format=format,
        params=params,
        metrics=metrics,
        tags=tags,
        schema=schema,
        tracking_uri=tracking_uri,
    )
    return written


def export_counted(
    experiments: Experiments,
    path: str | Path,
    *,
    filter: str | None = None,
    format: Literal["csv", "parquet"] | None = None,
    params: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    tags: Tags = None,
    schema: type[Any] | None = None,
    tracking_uri: str | None = None,
) -> tuple[Path, int]:
    """:func:`export`, also returning how many runs were written (for ``emstrack export``)."""
    _deliver_pending(tracking_uri)
    target = Path(path)
    kind = format_for(target, format)
    frame = runs(
        experiments,
        filter,
        params=params,
        metrics=metrics,
        tags=tags,
        schema=schema,
        tracking_uri=tracking_uri,
    )
    return write_frame(frame, target, kind), len(frame)


def report(
    experiments: Experiments,
    path: str | Path = "report.html",
    *,
    metric: str | None = None,
    by: str | Sequence[str] | None = None,
    higher_is_better: bool | None = None,
    filter: str | None = None,
    title: str | None = None,
    tracking_uri: str | None = None,
) -> Path:
    """Write a self-contained HTML report of experiments, for readers who never use MLflow.

    One file, no server, no network, no scripts: inline CSS and the figures of
    :mod:`emstrack.plots` as embedded PNG images. It explains what a run is, then shows the
    best and worst run, the metric by the first two grouping keys (e.g. savings by building and
    scenario), the :func:`compare` table, the best and worst five runs, the figures and every
    run. All values read from the store are HTML-escaped.

    Args:
        experiments: Experiment name, or a list of names.
        path: File to write (parent folders are created; written atomically).
        metric: Metric compared throughout; default the first logged of ``savings_pct``,
            ``savings_eur``, ``total_cost``, else the first metric whose direction its name tells.
        by: Grouping keys as for :func:`compare`; default those of ``building_id``,
            ``scenario`` (else ``optimization_mode``) that the runs logged.
        higher_is_better: Direction of ``metric``; default: read from its name.
        filter: MLflow search filter selecting the runs.
        title: Heading of the report (default names the experiments).
        tracking_uri: Store to read; default as for tracking.

    Returns:
        The path written.

    Raises:
        ExperimentNotFoundError: An experiment does not exist.
        NoRunsError: The experiments have no (matching) runs.
        MetricNotFoundError: No run logged ``metric``.
        DirectionUnknownError: The metric's name does not tell its direction and none was given.

    """
    from ._report import build_report, write_report

    text = build_report(
        experiment_names(experiments),
        metric=metric,
        by=by,
        higher_is_better=higher_is_better,
        filter=filter,
        title=title,
        tracking_uri=_settings.tracking_uri(tracking_uri),
    )
    return write_report(path, text)
