"""``emstrack ui``: the MLflow UI on the store emstrack writes to, until Ctrl-C."""

from __future__ import annotations

import os
import signal
from types import FrameType

import click

from .options import one_line, uri_option


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
@click.option(
    "--experiment",
    "-e",
    default=None,
    help="Experiment whose runs the printed URL shows (default: the one with the latest run).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the URL in a web browser.")
@uri_option
def ui_command(
    host: str,
    port: int,
    workers: int,
    artifact_root: str | None,
    timeout: float,
    experiment: str | None,
    open_browser: bool,
    tracking_uri: str | None,
) -> None:
    """Open the MLflow UI on the store emstrack writes to; Ctrl-C stops it.

    Runs `mlflow server` with one worker and without MLflow's background job runner (enough
    for browsing runs; MLflow's defaults start a dozen processes) until Ctrl-C or SIGTERM,
    then stops it and every process it started. Prints the URL of an experiment's runs table
    (MLflow's model-training view): the most recently used experiment, or --experiment.
    """
    from .. import _settings
    from .._ui_links import (
        UnknownExperimentError,
        choose_experiment,
        clear_ui_state,
        experiment_url,
        write_ui_state,
    )
    from .._uris import redact_uri, sqlite_path
    from .ui_server import ServerError, UiServer, is_loopback, port_in_use

    uri = _settings.tracking_uri(tracking_uri)
    try:
        chosen = choose_experiment(uri, experiment)
    except UnknownExperimentError as error:
        raise click.ClickException(one_line(error)) from None
    if not is_loopback(host):
        click.echo(
            f"warning: --host {host} makes the MLflow UI (and the runs' data) reachable from "
            "other machines, without authentication",
            err=True,
        )
    if port_in_use(host, port):
        raise click.ClickException(f"port {port} on {host} is already in use; pass --port")
    database = sqlite_path(uri)
    if database is not None and not database.exists():
        raise click.ClickException(
            f"no MLflow store at {redact_uri(uri)}: {database} does not exist"
        )
    if artifact_root is None and database is not None:
        artifact_root = str(database.resolve().parent / "mlruns")
    from .._delivery.replay import flush

    # Runs finished moments ago may still be on their way (another process's shipper).
    flush()  # waits at most EMSTRACK_FLUSH_TIMEOUT
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
        url = experiment_url(server.url, chosen.experiment_id if chosen else None)
        shown = f"experiment {chosen.name!r}" if chosen else "no experiments yet"
        click.echo(f"MLflow UI on {redact_uri(uri)} ({shown}): {url}")
        write_ui_state(uri, server.url, os.getpid())
        if open_browser:
            _open(url)
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
        clear_ui_state(uri, os.getpid())
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if clean and server.log_path is not None:
            server.log_path.unlink(missing_ok=True)
    click.echo("stopped")


def _open(url: str) -> None:
    """Hand ``url`` to the user's web browser ($BROWSER or the platform's default)."""
    import webbrowser

    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        click.echo("warning: no web browser could be opened; open the URL above", err=True)


COMMANDS: list[click.Command] = [ui_command]
