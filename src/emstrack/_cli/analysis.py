"""``emstrack compare``, ``runs`` and ``export``: reading runs back from the command line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .options import emit, experiments_option, filter_option, friendly, output_options, uri_option

_DEFAULT_BY = "building_id,optimization_mode"
_RUN_COLUMNS = ("run_id", "run_name", "status", "start_time", "duration_s")


# ---------------------------------------------------------------------- compare


@click.command("compare")
@experiments_option
@click.option("--metric", "-m", required=True, help="Metric to compare, e.g. total_cost.")
@click.option(
    "--by",
    "-b",
    multiple=True,
    help=f"Grouping key: param or tag (repeat or comma-separate; default {_DEFAULT_BY}).",
)
@filter_option
@click.option(
    "--higher-is-better/--lower-is-better",
    "higher_is_better",
    default=None,
    help="Direction of the metric (default: read from its name).",
)
@click.option("--include-failed", is_flag=True, help="Also compare FAILED and KILLED runs.")
@output_options
@uri_option
@friendly
def compare_command(
    experiments: Sequence[str],
    metric: str,
    by: Sequence[str],
    filter_: str | None,
    higher_is_better: bool | None,
    include_failed: bool,
    as_csv: bool,
    as_json: bool,
    tracking_uri: str | None,
) -> None:
    """Statistics of a metric per group of runs, and each group's best run."""
    from .. import analysis

    keys = [key.strip() for item in (by or (_DEFAULT_BY,)) for key in item.split(",")]
    keys = [key for key in keys if key]
    frame = analysis.compare(
        list(experiments),
        metric,
        by=keys,
        filter=filter_,
        higher_is_better=higher_is_better,
        include_failed=include_failed,
        tracking_uri=tracking_uri,
    )
    emit(frame, as_csv, as_json, lambda: _compare_lines(frame, keys))


def _compare_lines(frame: Any, keys: Sequence[str]) -> list[str]:
    from .table import render

    attrs = frame.attrs
    direction = "higher" if attrs["higher_is_better"] else "lower"
    lines = [f"{attrs['metric']} ({direction} is better) by {', '.join(keys)}"]
    lines += render(frame, fixed=("mean", "min", "max"))
    excluded = attrs.get("excluded") or {}
    if excluded:
        parts = ", ".join(f"{count} {status}" for status, count in excluded.items())
        total = sum(excluded.values())
        lines.append(f"left out: {parts} run{'s' if total != 1 else ''}")
    return lines


# ---------------------------------------------------------------------- runs


@click.command("runs")
@experiments_option
@filter_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show the newest N.")
@output_options
@uri_option
@friendly
def runs_command(
    experiments: Sequence[str],
    filter_: str | None,
    limit: int | None,
    as_csv: bool,
    as_json: bool,
    tracking_uri: str | None,
) -> None:
    """The runs of experiments: one line per run with its params and metrics.

    The table shows run id, name, status, start (UTC), duration, params and metrics; --csv and
    --json give every column, tags included.
    """
    from .. import analysis

    frame = analysis.runs(list(experiments), filter_, tracking_uri=tracking_uri)
    if limit is not None:
        frame = frame.head(limit)
    emit(frame, as_csv, as_json, lambda: _runs_lines(frame, len(experiments) > 1))


def _runs_lines(frame: Any, several: bool) -> list[str]:
    from .table import render

    base = list(_RUN_COLUMNS)
    if several:
        base.insert(2, "experiment")
    shown = base + [c for c in frame.columns if c.startswith(("params.", "metrics."))]
    return render(frame[shown], fixed=[c for c in shown if c.startswith("metrics.")])


# ---------------------------------------------------------------------- export


@click.command("export")
@experiments_option
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write: .csv, .parquet or .pq.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    help="Overrides the format the suffix names.",
)
@filter_option
@uri_option
@friendly
def export_command(
    experiments: Sequence[str],
    output: Path,
    format_: str | None,
    filter_: str | None,
    tracking_uri: str | None,
) -> None:
    """Write the runs of experiments (params, metrics, tags) to CSV or Parquet."""
    from .. import analysis

    kind: Any = format_
    _, count = analysis.export_counted(
        list(experiments), output, filter=filter_, format=kind, tracking_uri=tracking_uri
    )
    click.echo(f"wrote {count} run{'s' if count != 1 else ''} to {output}")


COMMANDS: list[click.Command] = [compare_command, runs_command, export_command]
