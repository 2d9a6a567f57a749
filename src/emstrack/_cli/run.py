"""``emstrack run [options] -- script.py args...`` (or ``-m package.module args...``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .._errors import TrackingError
from .options import friendly, one_line


@click.command(
    "run",
    context_settings={"allow_interspersed_args": False},
    short_help="Run an unmodified script or module as a tracked run.",
)
@click.option("--experiment", "-e", default=None, help="Experiment of the runs.")
@click.option(
    "--tracking-uri",
    default=None,
    help="Store to write to (default: MLFLOW_TRACKING_URI, else ./mlflow.db).",
)
@click.option(
    "--track",
    multiple=True,
    metavar="SPEC",
    help="Track each call: a function of the script by name, 'module:function', "
    "'module:Class.method' or 'file.py:function' (repeatable).",
)
@click.option(
    "--returns",
    multiple=True,
    metavar="FUNCTION=NAMES",
    help="Names for the positions of a returned tuple, e.g. 'optimize=total_cost,_' "
    "('_' skips; repeatable).",
)
@click.option(
    "--artifacts",
    multiple=True,
    metavar="DIR",
    help="Folder logged into the parent run at the end (repeatable).",
)
@click.option(
    "--capture-output/--no-capture-output",
    default=None,
    help="Also keep stdout and stderr as artifacts (output/stdout.txt, output/stderr.txt).",
)
@click.option("--quiet/--no-quiet", "-q", default=None, help="No emstrack lines on stderr.")
@click.option("-m", "as_module", is_flag=True, help="Run a module, as python -m does.")
@click.argument("program", nargs=-1, type=click.UNPROCESSED, metavar="-- SCRIPT [ARGS]...")
@friendly
def run_command(
    experiment: str | None,
    tracking_uri: str | None,
    track: tuple[str, ...],
    returns: tuple[str, ...],
    artifacts: tuple[str, ...],
    capture_output: bool | None,
    quiet: bool | None,
    as_module: bool,
    program: tuple[str, ...],
) -> None:
    """Run an unmodified script (or -m module) as one parent run.

    Each call of a --track'ed function becomes a child run (its arguments as params, its
    return values and PuLP solves as metrics). The script's own output, exit status, sys.argv,
    __name__ and sys.path[0] are those of a plain python run. Settings can be committed in
    [tool.emstrack.run] of pyproject.toml (or [run] of emstrack.toml); options given here
    override them.
    """
    from .._instrument import settings as run_settings
    from .._instrument.runner import ScriptRunner

    arguments = list(program)
    if arguments and arguments[0] == "-m":
        as_module, arguments = True, arguments[1:]
    if not arguments:
        raise click.UsageError("give the script to run: emstrack run [options] -- script.py")
    settings = run_settings.load(Path.cwd()).override(
        experiment=experiment,
        tracking_uri=tracking_uri,
        track=track or None,
        returns=run_settings.parse_returns(returns, "--returns") if returns else None,
        artifacts=artifacts or None,
        capture_output=capture_output,
        quiet=quiet,
    )
    runner = ScriptRunner(
        settings, arguments, as_module=as_module, command_line=["emstrack", *sys.argv[1:]]
    )
    try:
        runner.execute()
    except TrackingError as error:  # strict mode, before the script ran: the store is unusable
        raise click.ClickException(one_line(error)) from None


COMMANDS: list[click.Command] = [run_command]
