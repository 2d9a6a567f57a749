"""``emstrack rerun`` and ``emstrack diff``: make a run again, or put two runs side by side."""

from __future__ import annotations

import sys
from typing import Any

import click

from .options import emit, friendly, output_options, uri_option

EXIT_CHANGED = 1
EXIT_NOT_RECREATED = 2


def _tolerance_options(function: Any) -> Any:
    function = click.option(
        "--atol", type=float, default=0.0, show_default=True, help="Absolute tolerance."
    )(function)
    return click.option(
        "--rtol", type=float, default=1e-9, show_default=True, help="Relative tolerance."
    )(function)


MAX_CELL = 48


def _show(frame: Any, as_csv: bool, as_json: bool) -> None:
    """The table; in the terminal, long texts (e.g. option JSON) are cut to 48 characters."""
    from .table import render

    def shortened() -> list[str]:
        shown = frame.copy()
        for column in shown.columns[2:4]:
            shown[column] = [_cut(value) for value in shown[column]]
        return render(shown)

    emit(frame, as_csv, as_json, shortened)


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_CELL:
        return value[: MAX_CELL - 1] + "…"
    return value


@click.command()
@click.argument("run_id")
@uri_option
@click.option("--experiment", "-e", default=None, help="Experiment of the new run.")
@_tolerance_options
@click.option("--only-changed", is_flag=True, help="Show only what differs.")
@output_options
def rerun(
    run_id: str,
    tracking_uri: str | None,
    experiment: str | None,
    rtol: float,
    atol: float,
    only_changed: bool,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Call the function of RUN_ID again with its inputs, tracked, and compare the two runs.

    Exit status 0 when every metric agrees within --rtol/--atol, 1 when one does not, 2 when
    the run cannot be re-created (the message says why, e.g. which input was a DataFrame).
    """
    from .._reproduce.errors import RerunError
    from .._reproduce.rerun import rerun as run_again
    from ..analysis._diff import only_changed as changed_rows
    from ..analysis._errors import AnalysisError

    if as_csv and as_json:
        raise click.UsageError("--csv and --json exclude each other")
    try:
        result = run_again(
            run_id, tracking_uri=tracking_uri, experiment=experiment, rtol=rtol, atol=atol
        )
    except (RerunError, AnalysisError, OSError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_NOT_RECREATED)
    table = changed_rows(result.table) if only_changed else result.table
    _show(table, as_csv, as_json)
    if not (as_csv or as_json):
        click.echo("")
        click.echo(f"dataset digest: {result.datasets}")
        verdict = (
            "every metric the same"
            if result.same
            else f"{len(result.changed_metrics)} metric(s) changed: "
            + ", ".join(result.changed_metrics)
        )
        click.echo(
            f"rerun {result.new_run_id} of {run_id}: {verdict} (rtol={rtol:g}, atol={atol:g})"
        )
    sys.exit(0 if result.same else EXIT_CHANGED)


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@uri_option
@_tolerance_options
@click.option("--only-changed", is_flag=True, help="Show only what differs.")
@output_options
@friendly
def diff(
    run_a: str,
    run_b: str,
    tracking_uri: str | None,
    rtol: float,
    atol: float,
    only_changed: bool,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Compare two runs: params, metrics, tags, dataset digests and status, side by side."""
    from .. import analysis

    frame = analysis.diff(
        run_a, run_b, only_changed=only_changed, rtol=rtol, atol=atol, tracking_uri=tracking_uri
    )
    _show(frame, as_csv, as_json)


COMMANDS: list[click.Command] = [rerun, diff]
