"""``emstrack compare``, ``runs``, ``export`` and ``ui``: reading runs back from the command line.

Errors that the user can act on (a missing experiment, an unknown metric, an empty store, a bad
filter) end the command with one line on stderr (``Error: ...``) and exit status 1, never a
traceback.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_DEFAULT_BY = "building_id,optimization_mode"
_RUN_COLUMNS = ("run_id", "run_name", "status", "start_time", "duration_s")


def _experiments_option(function: F) -> F:
    return click.option(
        "--experiment",
        "-e",
        "experiments",
        multiple=True,
        required=True,
        help="Experiment name (repeat for several).",
    )(function)


def _filter_option(function: F) -> F:
    return click.option(
        "--filter",
        "-f",
        "filter_",
        default=None,
        help="MLflow search filter, e.g. \"params.battery_enabled = 'true'\".",
    )(function)


def _uri_option(function: F) -> F:
    return click.option(
        "--tracking-uri",
        default=None,
        help="Store to read (default: MLFLOW_TRACKING_URI, else ./mlflow.db).",
    )(function)


def _output_options(function: F) -> F:
    function = click.option("--json", "as_json", is_flag=True, help="Print JSON records.")(function)
    return click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")(function)


def _friendly(function: F) -> F:
    """Turn the errors a user can act on into one ``Error:`` line and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..analysis._errors import AnalysisError

        try:
            return function(*args, **kwargs)
        except (AnalysisError, ValueError, OSError) as error:
            raise click.ClickException(_one_line(error)) from None

    return wrapper  # type: ignore[return-value]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _emit(frame: Any, as_csv: bool, as_json: bool, table: Callable[[], list[str]]) -> None:
    if as_csv and as_json:
        raise click.UsageError("--csv and --json exclude each other")
    if as_csv:
        click.echo(frame.to_csv(index=False, lineterminator="\n"), nl=False)
    elif as_json:
        click.echo(frame.to_json(orient="records", date_format="iso"))
    else:
        for line in table():
            click.echo(line)


# ---------------------------------------------------------------------- compare


@click.command("compare")
@_experiments_option
@click.option("--metric", "-m", required=True, help="Metric to compare, e.g. total_cost.")
@click.option(
    "--by",
    "-b",
    multiple=True,
    help=f"Grouping key: param or tag (repeat or comma-separate; default {_DEFAULT_BY}).",
)
@_filter_option
@click.option(
    "--higher-is-better/--lower-is-better",
    "higher_is_better",
    default=None,
    help="Direction of the metric (default: read from its name).",
)
@click.option("--include-failed", is_flag=True, help="Also compare FAILED and KILLED runs.")
@_output_options
@_uri_option
@_friendly
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
    _emit(frame, as_csv, as_json, lambda: _compare_lines(frame, keys))


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
@_experiments_option
@_filter_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show the newest N.")
@_output_options
@_uri_option
@_friendly
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
    _emit(frame, as_csv, as_json, lambda: _runs_lines(frame, len(experiments) > 1))


def _runs_lines(frame: Any, several: bool) -> list[str]:
    from .table import render

    base = list(_RUN_COLUMNS)
    if several:
        base.insert(2, "experiment")
    shown = base + [c for c in frame.columns if c.startswith(("params.", "metrics."))]
    return render(frame[shown], fixed=[c for c in shown if c.startswith("metrics.")])


# ---------------------------------------------------------------------- export


@click.command("export")
@_experiments_option
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
@_filter_option
@_uri_option
@_friendly
def export_command(
    experiments: Sequence[str],
    output: Path,
    format_: str | None,
    filter_: str | None,
    tracking_uri: str | None,
) -> None:
    """Write the runs of experiments (params, metrics, tags) to CSV or Parquet."""
    from .. import analysis
    from ..analysis._export import format_for, write_frame

    kind = format_for(output, format_)
    frame = analysis.runs(list(experiments), filter_, tracking_uri=tracking_uri)
    write_frame(frame, output, kind)
    click.echo(f"wrote {len(frame)} run{'s' if len(frame) != 1 else ''} to {output}")


# ---------------------------------------------------------------------- ui


class _Stop(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: stop the server and exit with status 0."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Server workers."
)
@click.option(
    "--artifact-root",
    default=None,
    help="Artifact root of experiments created in the UI (default for SQLite stores: "
    "mlruns beside the database, where emstrack's own runs put theirs).",
)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds to wait for the server to answer.",
)
@_uri_option
def ui_command(
    host: str,
    port: int,
    workers: int,
    artifact_root: str | None,
    timeout: float,
    tracking_uri: str | None,
) -> None:
    """Open the MLflow UI on the store emstrack writes to; Ctrl-C stops it.

    Runs `mlflow server` with one worker and without MLflow's background job runner (enough
    for browsing runs; MLflow's defaults start a dozen processes) until Ctrl-C or SIGTERM,
    then stops it and every process it started.
    """
    from .. import _settings
    from .ui_server import ServerError, UiServer, is_loopback, port_in_use
    from .._delivery.store import redact_uri, sqlite_path

    uri = _settings.tracking_uri(tracking_uri)
    if not is_loopback(host):
        click.echo(
            f"warning: --host {host} makes the MLflow UI (and the runs' data) reachable from "
            "other machines, without authentication",
            err=True,
        )
    if port_in_use(host, port):
        raise click.ClickException(f"port {port} on {host} is already in use; pass --port")
    database = sqlite_path(uri)
    if artifact_root is None and database is not None:
        artifact_root = str(database.resolve().parent / "mlruns")
    server = UiServer(uri, host=host, port=port, workers=workers, artifact_root=artifact_root)
    previous = {
        signum: signal.signal(signum, _raise_stop)
        # SIGINT too: a shell starting `emstrack ui &` lets it inherit SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    clean = False
    try:
        server.start()
        server.wait_ready(timeout)
        assert server.process is not None
        click.echo(f"MLflow UI on {redact_uri(uri)}: {server.url}")
        click.echo(f"(mlflow server pid {server.process.pid}; Ctrl-C stops it)")
        code = server.process.wait()
        raise click.ClickException(
            f"mlflow server exited with status {code}: {server.last_log_line()} "
            f"(log: {server.log_path})"
        )
    except ServerError as error:
        raise click.ClickException(str(error)) from None
    except (KeyboardInterrupt, _Stop):
        clean = True
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if clean and server.log_path is not None:
            server.log_path.unlink(missing_ok=True)
    click.echo("stopped")


COMMANDS: list[click.Command] = [compare_command, runs_command, export_command, ui_command]
