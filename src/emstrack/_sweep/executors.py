"""Where scenarios run: local processes or a Dask cluster; each yields outcomes as they come.

* :func:`run_local` starts ``workers`` spawned processes (``spawn`` on every platform: no
  fork of a process holding MLflow clients, threads or locks) and hands each one scenario at a
  time over its own pipe. A worker that dies (killed, out of memory) costs the scenario it held:
  that scenario is reported FAILED and a fresh worker takes its place.
* :func:`run_dask` hands the scenarios to a ``distributed`` cluster: the scheduler at
  ``scheduler``, else a ``LocalCluster`` of ``workers`` single-threaded processes. Short
  scenarios travel several to a task (:func:`chunk_size`): Dask's own cost per task, on the
  scheduler, the client and the worker, is a few milliseconds, as much as a one-day
  optimization. A task whose worker died is rescheduled by Dask, and its scenarios that had
  finished return their kept outcome instead of running again; when Dask gives up on a task
  (``KilledWorker``), its unfinished scenarios are tried again one to a task, and those that
  only waited on a dying worker again after that (:func:`_after_give_up`), so that only the
  scenario that kills its workers is FAILED.
  The ``LocalCluster`` has no dashboard, so its workers run without Dask's statistical
  profiler (:data:`LOCAL_WORKER_CONFIG`); a scheduler of the user's keeps its own settings.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import math
import multiprocessing
import multiprocessing.connection
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from .._errors import ConfigurationError, WorkerStartError, describe
from .delivery import Closing, flush_worker
from .worker import (
    Outcome,
    ScenarioTask,
    SweepContext,
    has_started,
    kept_outcome,
    run_scenario,
    run_scenarios,
)

LOCAL_WORKER_CONFIG = {"distributed": {"worker": {"profile": {"enabled": False}}}}
"""Dask settings of the workers of the ``LocalCluster`` a sweep starts itself.

Dask's profiler samples the running task's stack every 10 ms for the dashboard's profile page,
which this cluster does not serve. Measured on 2 cores, a one-worker cluster, 60 untracked
one-day scenarios a cluster, four alternating rounds each in a fresh process: 110 ms of the
worker's CPU a scenario with the profiler, 101 ms without (in-process: 92 ms). Dask's
``MALLOC_TRIM_THRESHOLD_`` made no difference there (110 ms with and without) and stays."""


def local_worker_config() -> dict[str, Any]:
    """The Dask configuration of this process with :data:`LOCAL_WORKER_CONFIG` over it (a copy).

    A Nanny merges the ``config`` it is given over the global one section by section (a shallow
    merge), and keeps it for every restart of its worker: the sections given must be whole, and
    no one else's to change later.
    """
    dask: Any = importlib.import_module("dask")
    merged: dict[str, Any] = dask.config.merge(dask.config.config, LOCAL_WORKER_CONFIG)
    return merged


def local_cluster(distributed: Any, workers: int) -> Any:
    """The ``LocalCluster`` a sweep with no scheduler runs on: one thread per worker process."""
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        # The scheduler serves its health and metrics pages whatever the dashboard: on a free
        # loopback port, not 0.0.0.0:8787, where a second sweep's cluster would clash.
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=40,
        config=local_worker_config(),
    )


def lost(task: ScenarioTask, why: str) -> Outcome:
    """The outcome of a scenario whose worker went away."""
    return Outcome(task.index, task.key, "FAILED", error=why)


READY = "ready"
"""A local worker's first message: it started, and what dies after this costs a scenario."""


def _worker_main(context: SweepContext, connection: multiprocessing.connection.Connection) -> None:
    """A local worker: say it is ready, then run the scenarios it is sent until sent ``None``."""
    context.apply()
    connection.send(READY)
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        connection.send(run_scenario(context, task))


IN_FLIGHT = 2
"""Scenarios handed to a local worker at a time: the next one waits in its pipe, so the worker
never idles while the driver (busy delivering runs) gets round to sending it."""


class _Worker:
    def __init__(self, context: SweepContext, spawn: Any) -> None:
        self.connection, child = spawn.Pipe()
        self.process = spawn.Process(
            target=_worker_main, args=(context, child), name="emstrack-sweep", daemon=True
        )
        self.process.start()
        child.close()
        self.tasks: collections.deque[ScenarioTask] = collections.deque()
        """Handed and not reported yet, in the order the worker runs them."""
        self.broken = False
        self.ready = False
        """Whether it said :data:`READY`: one that dies before did not run a scenario."""

    def give(self, task: ScenarioTask) -> bool:
        """Send ``task``; ``False`` if the worker is gone (its pipe broke)."""
        try:
            self.connection.send(task)
        except OSError:
            self.broken = True
            return False
        self.tasks.append(task)
        return True

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


def run_local(
    context: SweepContext, tasks: Sequence[ScenarioTask], workers: int
) -> Iterator[Outcome]:
    """Run ``tasks`` on ``workers`` local processes; yield each outcome when it arrives.

    Each worker holds up to :data:`IN_FLIGHT` scenarios. One that dies costs the scenario it
    was running (reported FAILED); those still waiting in its pipe go to the other workers.

    Raises:
        WorkerStartError: A worker exited before it was ready (say, a script calling
            ``emstrack.sweep()`` without a ``__main__`` guard, which every spawned worker runs
            again). Its scenarios did not run and are not reported; a new worker would fail
            the same way, once for every scenario.

    """
    spawn = multiprocessing.get_context("spawn")
    queue = collections.deque(tasks)
    pool = [_Worker(context, spawn) for _ in range(min(workers, len(tasks)))]

    def fill(worker: _Worker, up_to: int = IN_FLIGHT) -> None:
        while queue and len(worker.tasks) < up_to and worker.give(queue[0]):
            queue.popleft()

    try:
        for worker in pool:  # one each first: a short grid still spreads over every worker
            fill(worker, 1)
        for worker in pool:
            fill(worker)
        while any(worker.tasks or worker.broken for worker in pool):
            busy = [worker for worker in pool if worker.tasks or worker.broken]
            ready = multiprocessing.connection.wait(
                [w.connection for w in busy if w.tasks] + [w.process.sentinel for w in busy]
            )
            for index, worker in enumerate(pool):
                if not (worker.tasks or worker.broken):
                    continue
                dead = worker.process.sentinel in ready
                if worker.tasks and worker.connection in ready:
                    try:
                        message: Outcome | str = worker.connection.recv()
                    except (EOFError, OSError):
                        dead = True
                    else:
                        if message == READY:
                            worker.ready = True
                            continue
                        assert isinstance(message, Outcome)
                        worker.tasks.popleft()
                        fill(worker)
                        yield message
                        continue
                if dead:
                    worker.process.join()
                    code = worker.process.exitcode
                    worker.connection.close()
                    if not worker.ready:
                        raise WorkerStartError(
                            _could_not_start(
                                f"a sweep worker process exited (exit code {code}) before it "
                                "could run a scenario"
                            )
                        )
                    why = f"worker process died (exit code {code})"
                    if worker.tasks:
                        running, *waiting = worker.tasks
                        yield lost(running, why)
                        queue.extendleft(reversed(waiting))
                    elif queue:  # died as it was handed one: that one, so a sweep always ends
                        yield lost(queue.popleft(), why)
                    pool[index] = _Worker(context, spawn)
                    fill(pool[index])
    finally:
        for worker in pool:
            worker.stop()


def driver_script() -> str | None:
    """The file a spawned worker runs again as the driver's ``__main__`` (``python script.py``).

    ``None`` when the driver has no such file to run: ``python -m`` (run by module name),
    ``python -c``, a notebook.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is None and isinstance(path, str) and path:
        return path
    return None


def _could_not_start(what: str) -> str:
    why = (
        f"{what}; its error is on stderr above. The sweep stopped: the scenarios not run yet "
        "run next time"
    )
    if driver_script() is not None:
        # A script run as ``python script.py``: each spawned worker runs its top level again.
        why += (
            ". If a script of yours called emstrack.sweep(), call it under "
            '`if __name__ == "__main__":` (see "Safe importing of main module" in Python\'s '
            "multiprocessing documentation)"
        )
    return why


def run_dask(
    context: SweepContext,
    tasks: Sequence[ScenarioTask],
    workers: int,
    scheduler: str | None,
    closing: Closing,
) -> Iterator[Outcome]:
    """Run ``tasks`` on a Dask cluster; yield each outcome when it arrives.

    Workers that deliver their own runs (a remote scheduler) are asked to flush at the end;
    what that took and how many runs their spools keep go into ``closing``.
    """
    try:
        # Typed as Any: distributed's own annotations are partial.
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise ConfigurationError(
            "--executor dask needs Dask distributed: pip install 'emstrack[scale]'"
        ) from None
    cluster: Any = None
    if scheduler is None:
        try:
            cluster = local_cluster(distributed, workers)
        except Exception as error:
            what = f"the sweep's Dask LocalCluster could not start ({describe(error)})"
            raise WorkerStartError(_could_not_start(what)) from error
        client = distributed.Client(cluster)
    else:
        client = distributed.Client(scheduler)
    try:
        yield from _dask_outcomes(distributed, client, context, tasks, workers)
        if not context.driver_delivers:
            began = time.perf_counter()
            with contextlib.suppress(Exception):  # a worker gone keeps its runs in its spool
                closing.kept = sum(client.run(flush_worker).values())
            closing.delivery_seconds = time.perf_counter() - began
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


CHUNK_SECONDS = 0.25
"""Scenario time a Dask task should hold: Dask's guidance is tasks of 100 ms or more."""
MAX_CHUNK = 32
"""Scenarios in one Dask task at most."""
TASKS_PER_THREAD = 2
"""Dask tasks in flight per worker thread: the next one is queued on the worker when one ends."""
_SLOTS_EVERY_S = 5.0


def chunk_size(typical_seconds: float | None, remaining: int, slots: int) -> int:
    """How many scenarios the next Dask task takes.

    One while no scenario has reported its duration (``typical_seconds`` ``None``); then enough
    for :data:`CHUNK_SECONDS`, at most :data:`MAX_CHUNK`, and never so many that the last
    scenarios leave a worker thread idle (``remaining`` spread over ``TASKS_PER_THREAD`` tasks
    for each of the ``slots`` threads).
    """
    if typical_seconds is None or remaining <= 0:
        return 1
    wanted = MAX_CHUNK if typical_seconds <= 0 else int(CHUNK_SECONDS / typical_seconds)
    spread = math.ceil(remaining / (TASKS_PER_THREAD * max(1, slots)))
    return max(1, min(wanted, MAX_CHUNK, spread))


def _dask_outcomes(
    distributed: Any,
    client: Any,
    context: SweepContext,
    tasks: Sequence[ScenarioTask],
    workers: int,
) -> Iterator[Outcome]:
    """Submit ``tasks`` in chunks as earlier ones end; yield each scenario's outcome."""
    queue = collections.deque(tasks)
    finished = distributed.as_completed()
    chunks: dict[Any, list[ScenarioTask]] = {}
    durations: list[float] = []
    tries: Counter[str] = collections.Counter()
    slots, checked = _slots(client, workers), time.monotonic()

    def submit(chunk: list[ScenarioTask]) -> None:
        # The context travels in each task (a few hundred bytes), not scattered once: scattered
        # data lives only on the workers holding it, and when the last of them dies Dask
        # cancels every task still needing it ("lost scattered data").
        if len(chunk) == 1:
            # A new key for each try: Dask answers a key it gave up on with the same error.
            again = f"-{tries[chunk[0].key]}" if tries[chunk[0].key] else ""
            key = f"scenario-{chunk[0].key}{again}"
            future = client.submit(run_scenario, context, chunk[0], pure=False, key=key)
        else:
            key = f"scenarios-{chunk[0].key}-{len(chunk)}"
            future = client.submit(run_scenarios, context, chunk, pure=False, key=key)
        chunks[future] = chunk
        finished.add(future)

    def top_up() -> None:
        nonlocal slots, checked
        if queue and time.monotonic() - checked > _SLOTS_EVERY_S:
            slots, checked = _slots(client, slots), time.monotonic()  # the cluster may scale
        # The median: a worker's first scenario (its imports, its caches) takes 50x the others.
        typical = statistics.median(durations) if durations else None
        while queue and len(chunks) < TASKS_PER_THREAD * slots:
            size = chunk_size(typical, len(queue), slots)
            submit([queue.popleft() for _ in range(min(size, len(queue)))])

    top_up()
    for future in finished:
        chunk = chunks.pop(future)
        try:
            result = future.result()
        except Exception as error:
            why = f"worker lost ({type(error).__name__}: {error})"[:500]
            outcomes = []
            for task in chunk:
                outcome = _after_give_up(context, task, why, alone=len(chunk) == 1, tries=tries)
                if outcome is None:
                    submit([task])
                else:
                    outcomes.append(outcome)
        else:
            outcomes = result if isinstance(result, list) else [result]
        # Forget the result at once: Dask recomputes a held result whose worker dies.
        future.release()
        durations.extend(outcome.seconds for outcome in outcomes if outcome.seconds > 0)
        del durations[:-100]
        top_up()
        yield from outcomes


MAX_BYSTANDER_TRIES = 3
"""Times a scenario that never started is tried again after Dask gave up on its task."""


def _after_give_up(
    context: SweepContext, task: ScenarioTask, why: str, *, alone: bool, tries: Counter[str]
) -> Outcome | None:
    """A scenario of a task Dask gave up on (``KilledWorker``): its outcome, or ``None``: again.

    A scenario that had finished gives back its kept outcome. One of a chunk is tried again
    alone. One alone that a worker of this machine's cluster never started (it only waited on
    the worker that died) is tried again, :data:`MAX_BYSTANDER_TRIES` times at most; the one
    the worker was running, or any on a remote cluster, where that is unknown, is FAILED.
    """
    kept = kept_outcome(context, task)
    if kept is not None:
        return kept
    if not alone or (has_started(context, task) is False and tries[task.key] < MAX_BYSTANDER_TRIES):
        tries[task.key] += 1
        return None
    return lost(task, why)


def _slots(client: Any, fallback: int) -> int:
    """Worker threads of the cluster now (``fallback`` while it has none or cannot say)."""
    try:
        return sum(client.nthreads().values()) or fallback
    except Exception:
        return fallback
