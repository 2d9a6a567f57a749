"""How a sweep's runs reach the store: its workers only write the spool, the driver delivers.

A scenario's run costs its worker only the spool writes (``EMSTRACK_DELIVERY=spool`` on the
worker): the worker never opens the store, and no worker waits for a delivery. The driver, idle
between outcomes, delivers the finished runs from a thread, those that finished close together
in one transaction (:mod:`emstrack._delivery.batched`). At the end it waits for the last runs.

Workers on other machines (a remote Dask scheduler) cannot share this machine's spool: each
keeps the default delivery (its own shipper, batching the same way), and the sweep asks every
worker to flush at the end (:func:`flush_worker`, run on each Dask worker).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .._uris import redact_uri

SPOOL_DELIVERY = {"EMSTRACK_DELIVERY": "spool"}
"""The switch a worker on the driver's machine runs with."""
GATHER_S = 2.0
"""How long the driver's delivery waits for more runs before writing what it holds.

Each write has a fixed cost (looking up the batch's run keys, a transaction). On 2 workers and
2 cores, 240 one-day scenarios: 2 s took 2.1-2.3 ms of the driver's CPU a run, where 0.5 s took
2.6-2.9 ms and 1 s 2.4-2.5 ms; 5 s saved little more (2.0-2.1 ms) and left more runs for the
end (0.13 s of waiting instead of 0-0.03 s). A run reaches the store at most this long after
it finished; nothing waits for it meanwhile."""
MAX_GATHERED = 200
"""Runs written in one go at most (see :data:`emstrack._delivery.batched.MAX_BATCH_RUNS`)."""


@dataclass
class Closing:
    """What the end of a sweep's delivery took (filled by whoever delivers)."""

    delivery_seconds: float = 0.0
    """Waiting, after the last scenario, for the last runs to reach the store."""
    kept: int = 0
    """Finished runs still in a spool (the store did not take them): `emstrack sync`."""


class DriverDelivery:
    """The driver's side: a thread delivers finished runs in batches; wait for all at the end.

    A thread, not a shipper process: the driver has MLflow loaded already (it planned the
    sweep) and spends its time waiting for outcomes, so the thread costs no start-up and takes
    no CPU from the workers beyond the writes themselves, which :attr:`cpu_seconds` counts
    (when the workers fill every core, those writes take their CPU). Runs handed within
    :data:`GATHER_S` of each other are written in one transaction.
    """

    def __init__(self, spool: Path, uri: str) -> None:
        self.spool = spool
        self.uri = uri
        self._cond = threading.Condition()
        self._waiting: list[Path] = []
        self._closed = False
        #: CPU time the delivery thread spent writing runs while the scenarios ran.
        self.cpu_seconds = 0.0
        self._thread = threading.Thread(
            target=self._deliver, name="emstrack-sweep-delivery", daemon=True
        )
        self._thread.start()

    def hand(self, entry: str | None) -> None:
        """Queue a finished scenario's spool entry (a folder name) for delivery."""
        if not entry or "/" in entry:
            return
        with self._cond:
            self._waiting.append(self.spool / entry)
            self._cond.notify_all()

    def _deliver(self) -> None:
        from .._delivery.batched import deliver_many

        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                deadline = time.monotonic() + GATHER_S
                while not self._closed and len(self._waiting) < MAX_GATHERED:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._waiting = self._waiting, []
            # What the store did not take stays in the spool; finish() tries once more.
            began = time.thread_time()
            with contextlib.suppress(Exception):
                deliver_many(batch, self.uri)
            self.cpu_seconds += time.thread_time() - began

    def finish(self, timeout: float | None) -> tuple[float, int]:
        """Wait until every handed run was tried; return (seconds waited, runs kept in the spool).

        Runs of the store left in the spool without being handed are delivered here too: those
        that ended (as :func:`emstrack.flush` does) and those of workers that died mid-scenario
        (closed ``KILLED`` with ``emstrack.incomplete``, as ``emstrack sync`` closes them). Every
        worker has stopped by now; a run another live process writes holds its lock and is left.
        """
        from .._delivery.orphans import deliver, for_store, has_ended
        from .._delivery.replay import flush_for, pending

        began = time.perf_counter()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        flush_for(self.uri, None if timeout is None else max(0.0, timeout - _since(began)))
        for entry in list(for_store(self.spool, self.uri)):
            if not has_ended(entry):
                with contextlib.suppress(Exception):  # kept: `emstrack sync` tries again
                    deliver(entry.folder, self.uri)
        shown = redact_uri(self.uri)
        kept = sum(1 for run in pending(self.spool) if run.tracking_uri == shown)
        return _since(began), kept


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the system has one); 0: unknown."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        with contextlib.suppress(OSError):
            return len(affinity(0))
    return os.cpu_count() or 0


def _since(began: float) -> float:
    return time.perf_counter() - began


def flush_worker() -> int:
    """On a worker with its own spool: wait for its runs; return how many stay in its spool."""
    from .._delivery.replay import flush, pending

    flush()  # waits at most EMSTRACK_FLUSH_TIMEOUT
    return sum(1 for run in pending() if run.status is not None)
