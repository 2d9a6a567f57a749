"""``emstrack sync`` and ``emstrack status``: the spool from the command line."""

from __future__ import annotations

from pathlib import Path

import click

_SPOOL_OPTION = click.option(
    "--spool",
    "spool_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Spool folder (default: EMSTRACK_SPOOL_DIR, else .emstrack/spool).",
)


@click.command()
@_SPOOL_OPTION
@click.option(
    "--tracking-uri",
    default=None,
    help="Send every run here instead of the store it was logged for.",
)
def sync(spool_dir: Path | None, tracking_uri: str | None) -> None:
    """Replay runs kept in the spool into their tracking store."""
    from .._delivery.replay import sync as replay

    report = replay(spool_dir, tracking_uri=tracking_uri)
    for run in report.sent:
        click.echo(f"sent     {run.key}  {run.status or 'KILLED':<8}  {run.name or ''}")
    for run in report.skipped:
        click.echo(f"skipped  {run.key}  still being written by another process")
    for run, reason in report.failed:
        click.echo(f"failed   {run.key}  {reason}", err=True)
    for run, where in report.quarantined:
        click.echo(
            f"quarantined  {run.key}  {run.problem or 'see reason.txt'} -> {where}", err=True
        )
    summary = f"{len(report.sent)} sent, {len(report.failed)} failed, {len(report.skipped)} skipped"
    if report.quarantined:
        summary += f", {len(report.quarantined)} quarantined"
    click.echo(summary)
    if report.failed:
        raise SystemExit(1)


@click.command()
@_SPOOL_OPTION
def status(spool_dir: Path | None) -> None:
    """List runs waiting in the spool."""
    from .._delivery.replay import pending

    waiting = pending(spool_dir)
    for run in waiting:
        state = "writing" if run.in_progress else (run.status or "unfinished")
        note = f"  ({run.problem}; `emstrack sync` quarantines it)" if run.problem else ""
        click.echo(
            f"{run.started:%Y-%m-%d %H:%M:%S}  {run.key}  {state:<10}  "
            f"{run.experiment} / {run.name or '-'}  -> {run.tracking_uri}{note}"
        )
    click.echo(f"{len(waiting)} run(s) waiting")


COMMANDS: list[click.Command] = [sync, status]
