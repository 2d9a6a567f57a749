"""``emstrack sweep grid.toml``: every scenario of a grid as one tracked run, resumable."""

from __future__ import annotations

from pathlib import Path

import click

from .options import friendly, one_line


@click.command("sweep")
@click.argument("grid", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (local, or of the Dask LocalCluster).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Local processes or Dask distributed.",
)
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster).",
)
@click.option("--experiment", "-e", default=None, help="Overrides the grid file's experiment.")
@click.option(
    "--retry-failed", is_flag=True, help="Also re-run scenarios that FAILED or were KILLED."
)
@click.option(
    "--dry-run", is_flag=True, help="List what would run and what is skipped; run nothing."
)
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@click.option(
    "--sync/--no-sync",
    "sync_first",
    default=True,
    help="Replay this machine's spool (emstrack sync) before planning (default: yes).",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="Store to write to and plan against (default: MLFLOW_TRACKING_URI, else ./mlflow.db).",
)
@friendly
def sweep_command(
    grid: Path,
    workers: int,
    executor: str,
    scheduler: str | None,
    experiment: str | None,
    retry_failed: bool,
    dry_run: bool,
    progress: bool,
    sync_first: bool,
    tracking_uri: str | None,
) -> None:
    """Run every scenario of GRID that has not finished in the store yet.

    Scenarios already FINISHED are skipped; interrupted ones (RUNNING, or KILLED because their
    process died) run again; FAILED ones and ones KILLED by the user only with --retry-failed.
    Exit status 1 if a scenario failed.
    """
    from .._errors import EmstrackError
    from .._sweep import sweep

    if scheduler is not None and executor != "dask":
        raise click.UsageError("--scheduler needs --executor dask")
    try:
        report = sweep(
            grid,
            workers=workers,
            executor="dask" if executor == "dask" else "local",
            scheduler=scheduler,
            tracking_uri=tracking_uri,
            experiment=experiment,
            retry_failed=retry_failed,
            dry_run=dry_run,
            progress=progress,
            sync_first=sync_first,
        )
    except EmstrackError as error:
        raise click.ClickException(one_line(error)) from None
    for line in report.lines:
        click.echo(line)
    click.echo(report.summary())
    if report.failed:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [sweep_command]
