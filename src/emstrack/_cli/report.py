"""``emstrack report``: one self-contained HTML file of experiments, to share with anyone."""

from __future__ import annotations

from collections.abc import Sequence

import click

from .options import experiments_option, filter_option, friendly, uri_option


@click.command("report")
@experiments_option
@click.option(
    "--output",
    "-o",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="HTML file to write.",
)
@click.option("--metric", "-m", default=None, help="Metric to compare (default: savings_pct...).")
@click.option(
    "--by",
    "-b",
    multiple=True,
    help="Grouping key: param or tag (repeat or comma-separate; default building_id,scenario).",
)
@click.option(
    "--higher-is-better/--lower-is-better",
    "higher_is_better",
    default=None,
    help="Direction of the metric (default: read from its name).",
)
@click.option("--title", default=None, help="Heading of the report.")
@filter_option
@uri_option
@friendly
def report_command(
    experiments: Sequence[str],
    output: str,
    metric: str | None,
    by: Sequence[str],
    higher_is_better: bool | None,
    title: str | None,
    filter_: str | None,
    tracking_uri: str | None,
) -> None:
    """Write a self-contained HTML report: comparison, best/worst runs, figures, every run.

    No server, no network, no scripts: the file opens from disk in any browser.
    """
    from .. import analysis

    path = analysis.report(
        list(experiments),
        output,
        metric=metric,
        by=list(by) or None,
        higher_is_better=higher_is_better,
        filter=filter_,
        title=title,
        tracking_uri=tracking_uri,
    )
    size = path.stat().st_size
    click.echo(f"wrote {path} ({size / 1024:.0f} kB)")


COMMANDS: list[click.Command] = [report_command]
