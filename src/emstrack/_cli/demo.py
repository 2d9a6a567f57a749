"""``emstrack demo``: both EMS pipelines on the shipped sample, into a local store."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--tracking-uri",
    default=None,
    help="Store to write to (default: sqlite:///mlflow.db in the working directory).",
)
def demo(tracking_uri: str | None) -> None:
    """Run Pipelines A and B on real household data and compare the results."""
    from .demo_run import COMPARISON_EXPERIMENT, LEARNING_EXPERIMENT, run_demo

    uri = tracking_uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    click.echo(f"emstrack demo: 3 Konstanz households (OPSD, CC-BY 4.0) -> {uri}")
    result = run_demo(tracking_uri=uri, echo=click.echo)
    click.echo("")
    for line in result.table:
        click.echo(line)
    click.echo("")
    click.echo(
        f"{result.runs} runs in experiments {COMPARISON_EXPERIMENT!r} and "
        f"{LEARNING_EXPERIMENT!r}, {result.seconds:.1f} s."
    )
    click.echo(f"Browse them in the MLflow UI:  {ui_hint(uri, explicit=tracking_uri is not None)}")


def ui_hint(uri: str, *, explicit: bool) -> str:
    """The ``emstrack ui`` command for Pipeline A's runs and the URL it prints."""
    from .._ui_links import choose_experiment, experiment_url
    from .demo_run import COMPARISON_EXPERIMENT

    command = f"emstrack ui --experiment {COMPARISON_EXPERIMENT}"
    if explicit:
        command += f" --tracking-uri {uri}"
    chosen = choose_experiment(uri, COMPARISON_EXPERIMENT)
    url = experiment_url("http://127.0.0.1:5000", chosen.experiment_id if chosen else None)
    return f"{command}   (then open {url})"


COMMANDS: list[click.Command] = [demo]
