"""Options and error handling shared by the commands: one spelling for each, one ``Error:`` line.

Errors that the user can act on (a missing experiment, an unknown metric, an empty store, a bad
filter) end a command with one line on stderr (``Error: ...``) and exit status 1, never a
traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._errors import describe

F = TypeVar("F", bound=Callable[..., Any])


def experiments_option(function: F) -> F:
    return click.option(
        "--experiment",
        "-e",
        "experiments",
        multiple=True,
        required=True,
        help="Experiment name (repeat for several).",
    )(function)


def filter_option(function: F) -> F:
    return click.option(
        "--filter",
        "-f",
        "filter_",
        default=None,
        help="MLflow search filter, e.g. \"params.battery_enabled = 'true'\".",
    )(function)


def uri_option(function: F) -> F:
    return click.option(
        "--tracking-uri",
        default=None,
        help="Store to read (default: MLFLOW_TRACKING_URI, else ./mlflow.db).",
    )(function)


def output_options(function: F) -> F:
    function = click.option("--json", "as_json", is_flag=True, help="Print JSON records.")(function)
    return click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")(function)


def friendly(function: F) -> F:
    """Turn the errors a user can act on into one ``Error:`` line and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..analysis._errors import AnalysisError

        try:
            return function(*args, **kwargs)
        except (AnalysisError, ValueError, OSError) as error:
            raise click.ClickException(
                describe(error, with_type=False, whole=True, limit=None)
            ) from None

    return wrapper  # type: ignore[return-value]


def one_line(error: BaseException) -> str:
    """The text of an ``Error:`` line: the whole message on one line, without the class name."""
    return describe(error, with_type=False, whole=True, limit=None)


def emit(frame: Any, as_csv: bool, as_json: bool, table: Callable[[], list[str]]) -> None:
    if as_csv and as_json:
        raise click.UsageError("--csv and --json exclude each other")
    if as_csv:
        click.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
    elif as_json:
        click.echo(frame.to_json(orient="records", date_format="iso"))
    else:
        for line in table():
            click.echo(line)
