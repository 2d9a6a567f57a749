"""The ``emstrack`` command: one click group, its subcommands registered from their own modules."""

from __future__ import annotations

import click

from .._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="emstrack")
def cli() -> None:
    """Experiment tracking for EMS optimization pipelines, on MLflow."""


def _register() -> None:
    from . import analysis, demo, report, reproduce, run, spool, sweep, ui

    for module in (demo, analysis, report, spool, ui, run, sweep, reproduce):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Entry point of the ``emstrack`` console script and ``python -m emstrack``."""
    cli(prog_name="emstrack")
