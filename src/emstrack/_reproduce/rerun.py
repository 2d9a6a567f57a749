"""``emstrack.rerun(run_id)``: make a recorded run again, tracked, and compare it with the original.

1. Read the original run: its ``emstrack.function_path`` (and ``emstrack.function_file`` for a
   script), ``emstrack.tracking_options`` and ``config.json``.
2. Import the function (unwrapped) and rebuild its arguments from ``config.json``'s ``call``
   (:mod:`.inputs`).
3. Call it through ``tracked_optimization`` with the recorded options (run-name template,
   params and metrics callables or models, artifacts, ``log_inputs``, ``log_model``) into a new
   top-level run in the original's experiment (or ``experiment=``), tagged
   ``emstrack.rerun_of=<run_id>``.
4. Compare the two runs (:func:`emstrack.analysis.diff`'s table, columns ``original`` / ``new``).

Anything that prevents the re-creation raises :class:`RerunError` naming it; the CLI exits 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import _settings
from .._tags import FUNCTION_FILE_TAG, FUNCTION_PATH_TAG
from .._tags import TRACKING_OPTIONS_TAG as OPTIONS_TAG
from ..analysis._errors import AnalysisError
from .errors import RerunError
from .inputs import rebuild
from .locate import locate
from .recording import RERUN_OF_TAG

NAMES = ("original", "new")


@dataclass(frozen=True)
class RerunResult:
    """What :func:`rerun` did.

    Attributes:
        original_run_id: The run that was made again.
        new_run_id: The new run (tagged ``emstrack.rerun_of``).
        table: One row per status, param, metric, tag and dataset: ``kind``, ``key``,
            ``original``, ``new``, ``abs_diff``, ``rel_diff``, ``result``.
        changed_metrics: Metrics that do not agree within the tolerance.
        datasets: ``"same"``, ``"changed"`` or ``"none recorded"`` (the input data digests).

    """

    original_run_id: str
    new_run_id: str
    table: pd.DataFrame
    changed_metrics: tuple[str, ...]
    datasets: str

    @property
    def same(self) -> bool:
        """Whether every metric agrees within the tolerance."""
        return not self.changed_metrics


def rerun(
    run_id: str,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    rtol: float = 1e-9,
    atol: float = 0.0,
) -> RerunResult:
    """Call the function a run tracked again with the same inputs and compare the two runs.

    Args:
        run_id: The run to make again (made by ``@tracked_optimization``).
        tracking_uri: Store of the run, and of the new one; default as for tracking.
        experiment: Experiment of the new run; default: the original's.
        rtol: Relative tolerance of metric comparisons.
        atol: Absolute tolerance of metric comparisons.

    Returns:
        The new run's id and the comparison table.

    Raises:
        RerunError: The run cannot be re-created (not found, no recorded function, an input
            that config.json does not keep - the message names the argument -, the function
            raised, or the new run did not reach the store).

    """
    from mlflow.tracking import MlflowClient

    from ..analysis._diff import Tolerance, client_history, compare_runs, fetch_run

    uri = _settings.tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        original = fetch_run(client, run_id, uri)
    except AnalysisError as error:
        raise RerunError(str(error)) from None
    tags = original.data.tags
    path = tags.get(FUNCTION_PATH_TAG)
    if not path:
        raise RerunError(
            f"run {run_id} records no function to call again (tag {FUNCTION_PATH_TAG}): only "
            "runs of @tracked_optimization functions can be rerun"
        )
    function = locate(path, tags.get(FUNCTION_FILE_TAG))
    options = _options(tags.get(OPTIONS_TAG), run_id)
    section = _call_section(client, run_id)
    call = rebuild(function, section, run_id)
    name = experiment or client.get_experiment(original.info.experiment_id).name
    opened: list[Any] = []
    # The function's recorded location, not the one it was loaded under (a script's alias).
    recorded = {key: tags[key] for key in (FUNCTION_PATH_TAG, FUNCTION_FILE_TAG) if key in tags}
    tracked = _tracked(function, options, name, uri, run_id, opened, recorded)
    try:
        tracked(*call.args, **call.kwargs)
    except Exception as error:
        raise RerunError(f"calling {path} again raised {type(error).__name__}: {error}") from error
    finally:
        from .._delivery.replay import flush

        flush()
    new_id = opened[0].run_id if opened else None
    if new_id is None:
        raise RerunError("the new run did not reach the store (it waits in the spool)")
    table = compare_runs(
        original,
        fetch_run(client, new_id, uri),
        Tolerance(rtol, atol),
        NAMES,
        history=client_history(client),
    )
    return RerunResult(
        original_run_id=run_id,
        new_run_id=new_id,
        table=table,
        changed_metrics=tuple(table.attrs["changed_metrics"]),
        datasets=str(table.attrs["datasets"]),
    )


def _options(text: str | None, run_id: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        options: dict[str, Any] = json.loads(text)
    except ValueError:
        raise RerunError(f"run {run_id}: tag {OPTIONS_TAG} is not JSON") from None
    for option in ("run_name", "params", "metrics"):
        value = options.get(option)
        if isinstance(value, dict):
            if "path" not in value:
                raise RerunError(
                    f"run {run_id}: the tracking option {option}={value.get('unimportable')} "
                    "(a lambda or a local function) cannot be imported again"
                )
            options[option] = locate(value["path"])
    return options


def _call_section(client: Any, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="emstrack-rerun-") as folder, _no_progress_bar():
        try:
            local = client.download_artifacts(run_id, "config.json", folder)
            document = json.loads(Path(local).read_text(encoding="utf-8"))
        except Exception:
            raise RerunError(
                f"run {run_id} has no readable config.json (tracked with log_inputs=False?)"
            ) from None
    section = document.get("call") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise RerunError(
            f"run {run_id}: config.json has no 'call' section (tracked by an older emstrack)"
        )
    return section


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar on stderr for every download; not for one small file."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _tracked(
    function: Callable[..., Any],
    options: dict[str, Any],
    experiment: str,
    uri: str,
    run_id: str,
    opened: list[Any],
    recorded: dict[str, str],
) -> Callable[..., Any]:
    from .._tracking.decorator import tracked_optimization
    from .._tracking.run import active_run

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        opened.append(active_run())
        return function(*args, **kwargs)

    result: Callable[..., Any] = tracked_optimization(
        experiment=experiment,
        run_name=options.get("run_name"),
        params=options.get("params"),
        metrics=options.get("metrics"),
        artifacts=options.get("artifacts") or (),
        tags={RERUN_OF_TAG: run_id, **recorded},
        nested=False,
        tracking_uri=uri,
        log_inputs=bool(options.get("log_inputs", True)),
        log_model=options.get("log_model"),
    )(call)
    return result
