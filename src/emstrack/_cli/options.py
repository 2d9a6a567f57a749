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


_PROBE_TIMEOUT_S = (2.0, 5.0)


def check_store_uri(uri: str) -> None:
    """Fail fast, in one line, on a store the commands cannot read.

    An unknown scheme (``bogus://x``) is named at once; an HTTP server is asked for
    ``/health`` with a short timeout, instead of waiting minutes on MLflow's retries.
    """
    import urllib.parse

    from .._uris import redact_uri, unsupported_scheme

    reason = unsupported_scheme(uri)
    if reason is not None:
        raise click.ClickException(reason)
    scheme = urllib.parse.urlsplit(uri).scheme.lower().partition("+")[0]
    if scheme in {"http", "https"}:
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=_PROBE_TIMEOUT_S)
        except requests.RequestException as error:
            from .._errors import describe

            text = str(error)
            if "Connection refused" in text:
                reason = "connection refused"
            elif isinstance(error, requests.Timeout):
                reason = f"no answer within {_PROBE_TIMEOUT_S[1]:.0f} s"
            else:
                reason = describe(error, limit=160)
            raise click.ClickException(
                f"tracking server {redact_uri(uri)} is not reachable ({reason})"
            ) from None


def friendly(function: F) -> F:
    """Turn the errors a user can act on into one ``Error:`` line and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..analysis._errors import AnalysisError

        if "tracking_uri" in kwargs:
            from .. import _settings

            check_store_uri(_settings.tracking_uri(kwargs["tracking_uri"]))
        try:
            return function(*args, **kwargs)
        except (AnalysisError, ValueError, OSError) as error:
            raise click.ClickException(
                describe(error, with_type=False, whole=True, limit=None)
            ) from None
        except Exception as error:
            if not type(error).__module__.startswith(("mlflow", "requests", "urllib3")):
                raise
            raise click.ClickException(describe(error, limit=300)) from None

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
