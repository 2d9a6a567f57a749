"""Resumable scenario sweeps: every combination of a grid as one tracked run, on many workers.

:func:`sweep` (and ``emstrack sweep grid.toml``) reads a grid (:mod:`.spec`), gives each
scenario a stable key (:mod:`.keys`), asks the store which keys already finished
(:mod:`.plan`), leaves those another sweep on this machine is running to it (:mod:`.claims`),
and runs the rest on local processes or a Dask cluster (:mod:`.executors`),
each through ``tracked_optimization`` on its worker (:mod:`.worker`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from .. import _settings
from .._errors import ConfigurationError, StoreUnavailableError
from .._uris import redact_uri
from .claims import Claim, Claims, claims_folder
from .delivery import Closing, DriverDelivery, usable_cores
from .keys import SCENARIO_KEY_TAG, scenario_key
from .plan import describe, experiment_id, make_plan, open_client, stored_runs, supersede, tidy
from .progress import Progress, SweepReport
from .spec import SweepSpec, load_spec
from .worker import (
    CREDENTIAL_VARIABLES,
    SWITCH_VARIABLES,
    ScenarioTask,
    SweepContext,
    done_folder,
    scenario_tasks,
)

__all__ = ["SCENARIO_KEY_TAG", "SweepReport", "SweepSpec", "load_spec", "scenario_key", "sweep"]

Executor = Literal["local", "dask"]
PLANNING_HTTP_RETRIES = "2"


def sweep(
    grid: str | os.PathLike[str] | Mapping[str, Any] | SweepSpec,
    *,
    workers: int = 1,
    executor: Executor = "local",
    scheduler: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    retry_failed: bool = False,
    dry_run: bool = False,
    progress: bool = True,
    sync_first: bool = True,
) -> SweepReport:
    """Run every scenario of a grid that has not finished yet, each as one tracked run.

    Args:
        grid: A grid file (TOML), or a mapping of the same shape: ``function`` (import path),
            ``experiment``, ``grid`` (name -> list of values), ``fixed`` and ``tracking``
            (options of ``tracked_optimization``, callables by import path).
        workers: Worker processes (local, or of the Dask ``LocalCluster``).
        executor: ``"local"`` (spawned processes) or ``"dask"``.
        scheduler: Address of a Dask scheduler (``tcp://host:8786``); default: a LocalCluster.
        tracking_uri: Store; default ``MLFLOW_TRACKING_URI``, else ``mlflow.db`` here.
        experiment: Overrides the grid's experiment (default ``MLFLOW_EXPERIMENT_NAME``).
        retry_failed: Also run scenarios whose runs all FAILED or were KILLED.
        dry_run: Only plan; ``report.lines`` lists what would run and what is skipped.
        progress: Show a progress bar on stderr.
        sync_first: Replay this machine's spool (``emstrack sync``) before planning.

    Returns:
        A :class:`SweepReport`; a scenario that raised is FAILED in it, and in the store.
        Scenarios that another sweep running on this machine claimed were left to it
        (:attr:`SweepReport.running_elsewhere`).

    Raises:
        ConfigurationError: For a bad grid or bad options, before anything runs; also when
            called by a worker process as it starts (a script without a ``__main__`` guard).
        StoreUnavailableError: If the store cannot be read to plan the sweep.
        WorkerStartError: If a local worker process exits before it could run a scenario, or
            the sweep's own Dask ``LocalCluster`` cannot start.

    """
    _refuse_in_starting_worker()
    spec = load_spec(grid)
    if workers < 1:
        raise ConfigurationError(f"workers must be at least 1, not {workers}")
    if executor not in ("local", "dask"):
        raise ConfigurationError(f"executor must be 'local' or 'dask', not {executor!r}")
    if scheduler is not None and executor != "dask":
        raise ConfigurationError("a scheduler address needs executor='dask'")
    if not dry_run and (executor == "local" or scheduler is None):
        _refuse_unimportable_main()
    uri = _settings.tracking_uri(tracking_uri)
    name = experiment or spec.experiment or _settings.experiment_name()
    tasks = scenario_tasks(spec.function, spec.scenarios())
    report = SweepReport(experiment=name, tracking_uri=redact_uri(uri), dry_run=dry_run)
    if sync_first and not dry_run:
        # Runs kept in this machine's spool (an outage, a dead worker) reach the store first,
        # so that planning sees them and no scenario runs twice.
        from .. import sync

        synced = sync()
        report.synced = len(synced.sent)
        report.unsynced = len(synced.failed)
    sweep_id = uuid.uuid4().hex
    with _store_calls(uri):
        client = open_client(uri)
        exp_id = experiment_id(client, name, create=not dry_run)
        claims = Claims(claims_folder(uri, exp_id), sweep_id) if exp_id is not None else None
        # No experiment yet (a dry run of a new one): no sweep can hold any of its scenarios.
        planning: contextlib.AbstractContextManager[dict[str, Claim]] = (
            claims.planning() if claims is not None else contextlib.nullcontext({})
        )
        with planning as claimed:
            stored = stored_runs(client, exp_id, uri)
            plan = make_plan(tasks, stored, retry_failed=retry_failed, claimed=claimed)
            if claims is not None and plan.to_run and not dry_run:
                claims.hold(planned.task.key for planned in plan.to_run)
    report.planned = len(plan.to_run)
    report.skipped = len(plan.finished)
    report.failed_kept = len(plan.failed)
    report.repeated = plan.repeated
    report.running_elsewhere = len(plan.elsewhere)
    report.elsewhere_pids = sorted({claim.pid for _, claim in plan.elsewhere})
    if dry_run:
        report.lines = describe(plan)
        return report
    try:
        with _store_calls(uri):
            stale = [run for planned in plan.to_run for run in planned.stale]
            report.superseded = supersede(client, [*plan.duplicates, *stale])
        context = _context(spec, uri, name, exp_id, executor, scheduler, sweep_id)
        report.workers = min(workers, len(plan.to_run)) if scheduler is None else workers
        started = time.perf_counter()
        bar = Progress(len(plan.to_run), progress)
        delivery = (
            DriverDelivery(_settings.spool_dir(), uri)
            if context.driver_delivers and plan.to_run
            else None
        )
        closing = Closing()
        try:
            for outcome in _execute(
                context, [p.task for p in plan.to_run], executor, workers, scheduler, closing
            ):
                report.outcomes.append(outcome)
                if delivery is not None:
                    delivery.hand(outcome.entry)
                bar.update(outcome)
        finally:
            bar.close()
            if delivery is not None:
                report.delivery_seconds, report.kept = delivery.finish(_settings.flush_timeout())
                report.driver_cpu_seconds = delivery.cpu_seconds
                report.cores = usable_cores()
            else:
                report.delivery_seconds, report.kept = closing.delivery_seconds, closing.kept
            report.wall_seconds = time.perf_counter() - started
            markers = done_folder(context)
            if markers is not None:
                shutil.rmtree(markers, ignore_errors=True)
        if plan.to_run:
            ran = {planned.task.key for planned in plan.to_run}
            try:
                with _store_calls(uri, "to tidy up after the sweep"):
                    report.superseded += tidy(client, exp_id, uri, ran)
            except StoreUnavailableError as error:
                # Every scenario ran and its run is stored or kept: the report matters more. The
                # next sweep's planning supersedes any extra attempt instead.
                report.untidy = str(error)
    finally:
        if claims is not None:
            claims.release()  # once the runs reached the store (or wait in the spool)
    return report


def _refuse_in_starting_worker() -> None:
    """Stop a spawned worker that runs the driver's script again before it touches the store.

    A spawned process (local workers, Dask's) first imports the script that started it as
    ``__mp_main__``; without a ``__main__`` guard that calls ``sweep()`` again, which would plan
    a second sweep and write to the store before multiprocessing itself refuses to spawn.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigurationError(
            "emstrack.sweep() was called by a worker process as it started: workers are spawned "
            "and run the top level of the script that started the sweep again. Call "
            'emstrack.sweep() under `if __name__ == "__main__":` in that script'
        )


def _refuse_unimportable_main() -> None:
    """Stop before planning when spawned workers could not start: ``__main__`` is no file.

    A spawned process runs the driver's ``__main__`` again from its file. A program read from
    standard input (``python -``) has ``__file__ == "<stdin>"``, so every worker would die.
    """
    from .executors import driver_script

    path = driver_script()
    if path is not None and not Path(path).is_file():
        raise ConfigurationError(
            "emstrack.sweep() starts spawned worker processes, and each runs the program that "
            f"started the sweep again from its file; {path!r} is not a file (a program read from "
            "standard input?). Save the program as a script, or start the sweep from "
            "`python -c`, a notebook or `emstrack sweep grid.toml`"
        )


def _execute(
    context: SweepContext,
    tasks: list[ScenarioTask],
    executor: Executor,
    workers: int,
    scheduler: str | None,
    closing: Closing,
) -> Iterator[Any]:
    if not tasks:
        return iter(())
    from . import executors

    if executor == "dask":
        return executors.run_dask(context, tasks, workers, scheduler, closing)
    return executors.run_local(context, tasks, workers)


def _context(
    spec: SweepSpec,
    uri: str,
    experiment: str,
    exp_id: str | None,
    executor: Executor,
    scheduler: str | None,
    sweep_id: str,
) -> SweepContext:
    # Workers on this machine share its spool; remote Dask workers keep their own.
    local = executor == "local" or scheduler is None
    return SweepContext(
        function=spec.function,
        tracking_uri=uri,
        experiment=experiment,
        experiment_id=exp_id,
        # Dask may run a task again whose worker died after it finished: a worker first asks
        # the store (remote) or the sweep's done-markers beside the shared spool (this machine,
        # where the run may still wait in the spool for the driver).
        check_finished=executor == "dask",
        sweep_id=sweep_id,
        params=spec.tracking.params,
        metrics=spec.tracking.metrics,
        run_name=spec.run_name,
        tags=dict(spec.tracking.tags),
        artifacts=tuple(spec.tracking.artifacts),
        log_inputs=spec.tracking.log_inputs,
        log_model=spec.tracking.log_model,
        spool_dir=str(_settings.spool_dir()) if local else None,
        switches={name: os.environ[name] for name in SWITCH_VARIABLES if name in os.environ},
        credentials={name: os.environ[name] for name in CREDENTIAL_VARIABLES if name in os.environ},
    )


@contextlib.contextmanager
def _store_calls(uri: str, purpose: str = "to plan the sweep") -> Iterator[None]:
    """The driver's own store calls: MLflow's HTTP retries capped, errors made one line."""
    variable = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
    previous = os.environ.get(variable)
    if previous is None:
        os.environ[variable] = PLANNING_HTTP_RETRIES
    try:
        yield
    except (ConfigurationError, KeyboardInterrupt):
        raise
    except Exception as error:
        lines = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
        raise StoreUnavailableError(
            f"tracking store {redact_uri(uri)} could not be read {purpose} ({reason})"
        ) from None
    finally:
        if previous is None:
            os.environ.pop(variable, None)
