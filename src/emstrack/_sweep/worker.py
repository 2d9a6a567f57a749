"""What runs on a worker: one scenario through ``tracked_optimization``, reported back.

Everything a worker needs travels in a :class:`SweepContext` (the store, the experiment, the
credentials, the spool folder, emstrack's switches); a worker never relies on globals inherited
from the process that started it, because spawned processes and remote Dask workers do not
inherit them. The credentials are never logged: they are set as MLflow's environment variables
in the worker process, where emstrack's redaction already hides their values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .delivery import SPOOL_DELIVERY
from .keys import SCENARIO_KEY_TAG, SCENARIO_TAG, SWEEP_ID_TAG, canonical_arguments, scenario_key

CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_INSECURE_TLS",
)
"""MLflow's client authentication settings, passed to every worker."""

SWITCH_VARIABLES = (
    "EMSTRACK_STRICT",
    "EMSTRACK_BACKGROUND",
    "EMSTRACK_DISABLED",
    "EMSTRACK_SECRET_PATTERN",
    "EMSTRACK_DRAIN_TIMEOUT",
    "EMSTRACK_DELIVERY",
    "EMSTRACK_FLUSH_TIMEOUT",
    "EMSTRACK_SHIPPER_LOG",
    "MLFLOW_DISABLE_TELEMETRY",
    "MLFLOW_SQLALCHEMYSTORE_POOLCLASS",
)
"""emstrack's and MLflow's behaviour switches, passed to every worker."""

Status = Literal["FINISHED", "FAILED", "SKIPPED"]


@dataclass(frozen=True)
class SweepContext:
    """What every scenario of one sweep shares."""

    function: str
    tracking_uri: str
    experiment: str
    sweep_id: str
    params: str | None = None
    metrics: str | None = None
    run_name: str | None = None
    tags: Mapping[str, object] = field(default_factory=dict)
    artifacts: tuple[str, ...] = ()
    log_inputs: bool = True
    log_model: Literal["lp", "mps"] | None = None
    experiment_id: str | None = None
    check_finished: bool = False
    """Ask the store first and skip a scenario that FINISHED meanwhile (Dask may recompute a
    task whose worker died after it finished)."""
    spool_dir: str | None = None
    """The driver's spool folder for workers on its machine; ``None``: the worker's own.

    Workers on the driver's machine only write the spool; the driver delivers (see
    :mod:`.delivery`). Workers elsewhere deliver from their own spool."""
    switches: Mapping[str, str] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)

    def apply(self) -> None:
        """Set this sweep's store, experiment, credentials and switches in the worker process."""
        os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri
        os.environ["MLFLOW_EXPERIMENT_NAME"] = self.experiment
        for name in CREDENTIAL_VARIABLES:
            if name in self.credentials:
                os.environ[name] = self.credentials[name]
            else:
                os.environ.pop(name, None)
        os.environ.update(self.switches)
        if self.spool_dir is not None:
            os.environ["EMSTRACK_SPOOL_DIR"] = self.spool_dir
            os.environ.update(SPOOL_DELIVERY)

    @property
    def driver_delivers(self) -> bool:
        """Whether the driver delivers the runs (workers share its spool)."""
        return self.spool_dir is not None


@dataclass(frozen=True)
class ScenarioTask:
    """One scenario to run."""

    index: int
    key: str
    arguments: Mapping[str, Any]


def scenario_tasks(function: str, scenarios: Iterable[Mapping[str, Any]]) -> list[ScenarioTask]:
    """The tasks of ``scenarios`` of ``function``, numbered in order, each with its stable key."""
    return [
        ScenarioTask(index, scenario_key(function, arguments), arguments)
        for index, arguments in enumerate(scenarios)
    ]


@dataclass(frozen=True)
class Outcome:
    """How one scenario ended on its worker."""

    index: int
    key: str
    status: Status
    seconds: float = 0.0
    """The tracked call, delivery included."""
    function_seconds: float = 0.0
    """The function alone."""
    error: str | None = None
    worker: str = ""
    startup_seconds: float = 0.0
    """Imports on the worker's first scenario (MLflow, the function's module), not counted above."""
    entry: str | None = None
    """The run's spool folder (its name), for the driver to deliver."""

    @property
    def tracking_seconds(self) -> float:
        """What tracking added to the scenario."""
        return max(0.0, self.seconds - self.function_seconds)


def run_scenario(context: SweepContext, task: ScenarioTask) -> Outcome:
    """Run one scenario as one tracked run; an exception ends it FAILED, never the sweep."""
    context.apply()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    startup = warm_up(context.function, None if context.driver_delivers else context.tracking_uri)
    clock: list[float] = []
    entries: list[str] = []
    began = time.perf_counter()
    if context.check_finished:
        earlier = kept_outcome(context, task)
        if earlier is not None:
            return earlier
        if _finished_in_store(context, task.key):
            return Outcome(
                task.index,
                task.key,
                "SKIPPED",
                seconds=time.perf_counter() - began,
                worker=worker,
                startup_seconds=startup,
            )
    if context.check_finished:
        _mark(context, f"{task.key}{STARTED_SUFFIX}", "")
    try:
        tracked = _tracked(context, task.key, canonical_arguments(task.arguments), clock, entries)
        tracked(**task.arguments)
    except Exception as error:
        status: Status = "FAILED"
        message: str | None = _describe(error)
    else:
        status, message = "FINISHED", None
    outcome = Outcome(
        task.index,
        task.key,
        status,
        seconds=time.perf_counter() - began,
        function_seconds=sum(clock),
        error=message,
        worker=worker,
        startup_seconds=startup,
        entry=entries[0] if entries else None,
    )
    if status == "FINISHED" and context.check_finished:
        _mark_done(context, outcome)
    return outcome


def run_scenarios(context: SweepContext, tasks: Sequence[ScenarioTask]) -> list[Outcome]:
    """Run ``tasks`` one after another (one Dask task holding several scenarios).

    Each scenario that finishes is marked done as it ends (with ``check_finished``): when the
    worker dies halfway and Dask runs the task again elsewhere, the scenarios already done
    return the outcome they had and only the rest run.
    """
    return [run_scenario(context, task) for task in tasks]


def done_folder(context: SweepContext) -> Path | None:
    """Where workers sharing the driver's spool mark the scenarios they finished."""
    if context.spool_dir is None:
        return None
    return Path(context.spool_dir).parent / "sweeps" / context.sweep_id


STARTED_SUFFIX = ".started"


def _mark_done(context: SweepContext, outcome: Outcome) -> None:
    """Keep a finished scenario's outcome beside the shared spool, for a re-run of its task."""
    _mark(context, outcome.key, json.dumps(dataclasses.asdict(outcome), separators=(",", ":")))


def _mark(context: SweepContext, name: str, text: str) -> None:
    folder = done_folder(context)
    if folder is None:
        return  # remote workers: a re-run asks the store
    with contextlib.suppress(OSError):  # a missing marker costs a recompute, nothing more
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def kept_outcome(context: SweepContext, task: ScenarioTask) -> Outcome | None:
    """The outcome a worker of this sweep kept when it finished ``task`` (:func:`_mark_done`)."""
    folder = done_folder(context)
    if folder is None:
        return None
    try:
        kept = json.loads((folder / task.key).read_text(encoding="utf-8"))
        outcome = Outcome(**kept)
    except (OSError, ValueError, TypeError):
        return None  # none, or torn by a worker killed as it wrote it: run the scenario
    return outcome if (outcome.index, outcome.key) == (task.index, task.key) else None


def has_started(context: SweepContext, task: ScenarioTask) -> bool | None:
    """Whether a worker of this sweep started ``task``; ``None``: unknown (remote workers).

    A worker runs one scenario at a time, so a worker that died was running the one scenario
    it started and did not finish; the others Dask held on it never started.
    """
    folder = done_folder(context)
    if folder is None:
        return None
    return (folder / f"{task.key}{STARTED_SUFFIX}").exists()


def _finished_in_store(context: SweepContext, key: str) -> bool:
    """Whether the store has the scenario FINISHED (remote workers, which deliver their own)."""
    from mlflow.tracking import MlflowClient

    if context.driver_delivers or context.experiment_id is None:
        return False  # the run may still wait in the shared spool: the done-markers tell
    try:
        found = MlflowClient(tracking_uri=context.tracking_uri).search_runs(
            [context.experiment_id],
            filter_string=f"tags.`{SCENARIO_KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
            max_results=1,
        )
    except Exception:
        return False  # the scenario's own run will meet (and report) the same problem
    return bool(found)


_warm: set[tuple[str, str | None]] = set()


def warm_up(function: str, tracking_uri: str | None) -> float:
    """Import what every scenario needs once per worker process; return the seconds it took.

    emstrack's tracking and the function's module are imported and, for a worker that delivers
    its own runs (``tracking_uri`` given), MLflow's store for the URI is opened (MLflow keeps one
    per URI and process), so that the first scenario's timing is like every other's.
    """
    if (function, tracking_uri) in _warm:
        return 0.0
    began = time.perf_counter()
    _warm.add((function, tracking_uri))
    from .._tracking import decorator  # noqa: F401

    if tracking_uri is not None:
        from mlflow.tracking import MlflowClient

        with contextlib.suppress(Exception):  # an unreachable store is the scenario's to report
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)

    try:
        _resolved(function)
    except Exception:
        return time.perf_counter() - began  # reported by the scenario itself
    return time.perf_counter() - began


def _tracked(
    context: SweepContext, key: str, scenario: str, clock: list[float], entries: list[str]
) -> Callable[..., Any]:
    from .. import active_run, tracked_optimization

    function = _resolved(context.function)

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        run = active_run()
        if run is not None and run.spool_path is not None:
            entries.append(run.spool_path.name)
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock.append(time.perf_counter() - start)

    tracked: Callable[..., Any] = tracked_optimization(
        experiment=context.experiment,
        tracking_uri=context.tracking_uri,
        params=_resolved(context.params, "tracking.params") if context.params else None,
        metrics=_resolved(context.metrics, "tracking.metrics") if context.metrics else None,
        run_name=context.run_name,
        tags={
            **context.tags,
            SCENARIO_KEY_TAG: key,
            SCENARIO_TAG: scenario,
            SWEEP_ID_TAG: context.sweep_id,
        },
        artifacts=context.artifacts,
        log_inputs=context.log_inputs,
        log_model=context.log_model,
        nested=False,
    )(timed)
    return tracked


@functools.lru_cache(maxsize=16)
def _resolved(path: str, what: str = "function") -> Callable[..., Any]:
    from .spec import resolve

    return resolve(path, what)


def _describe(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    text = " ".join(" ".join(lines).split())
    return text[:500]
