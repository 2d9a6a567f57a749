"""Where scenarios run: local processes or a Dask cluster; each yields outcomes as they come.

* :func:`run_local` starts ``workers`` spawned processes (``spawn`` on every platform: no
  fork of a process holding MLflow clients, threads or locks) and hands each one scenario at a
  time over its own pipe. A worker that dies (killed, out of memory) costs the scenario it held:
  that scenario is reported FAILED and a fresh worker takes its place.
* :func:`run_dask` maps the scenarios onto a ``distributed`` cluster: the scheduler at
  ``scheduler``, else a ``LocalCluster`` of ``workers`` single-threaded processes. A scenario
  whose worker died is rescheduled by Dask; when Dask gives up (``KilledWorker``) it is FAILED.
  The ``LocalCluster`` has no dashboard, so its workers run without Dask's statistical
  profiler (:data:`LOCAL_WORKER_CONFIG`); a scheduler of the user's keeps its own settings.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .delivery import Closing, flush_worker
from .worker import Outcome, ScenarioTask, SweepContext, run_scenario

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


def lost(task: ScenarioTask, why: str) -> Outcome:
    """The outcome of a scenario whose worker went away."""
    return Outcome(task.index, task.key, "FAILED", error=why)


def _worker_main(context: SweepContext, connection: multiprocessing.connection.Connection) -> None:
    """A local worker: run the scenarios it is sent until it is sent ``None``."""
    context.apply()
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
                        outcome: Outcome = worker.connection.recv()
                    except (EOFError, OSError):
                        dead = True
                    else:
                        worker.tasks.popleft()
                        fill(worker)
                        yield outcome
                        continue
                if dead:
                    worker.process.join()
                    code = worker.process.exitcode
                    worker.connection.close()
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
        from .._errors import ConfigurationError

        raise ConfigurationError(
            "--executor dask needs Dask distributed: pip install 'emstrack[scale]'"
        ) from None
    cluster: Any = None
    if scheduler is None:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
            config=local_worker_config(),
        )
        client = distributed.Client(cluster)
    else:
        client = distributed.Client(scheduler)
    try:
        # The context travels in each task (a few hundred bytes), not scattered once: scattered
        # data lives only on the workers holding it, and when the last of them dies Dask
        # cancels every task still needing it ("lost scattered data").
        futures = {
            client.submit(run_scenario, context, task, pure=False, key=f"scenario-{task.key}"): task
            for task in tasks
        }
        for future in distributed.as_completed(futures):
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as error:
                outcome = lost(task, f"worker lost ({type(error).__name__}: {error})"[:500])
            # Forget the result at once: Dask recomputes a held result whose worker dies.
            future.release()
            yield outcome
        if not context.driver_delivers:
            began = time.perf_counter()
            with contextlib.suppress(Exception):  # a worker gone keeps its runs in its spool
                closing.kept = sum(client.run(flush_worker).values())
            closing.delivery_seconds = time.perf_counter() - began
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
