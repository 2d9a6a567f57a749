"""How a sweep's runs reach the store: its workers only write the spool, the driver delivers.

A scenario's run costs its worker only the spool writes (``EMSTRACK_DELIVERY=spool`` on the
worker): the worker never opens the store, and no worker waits for a delivery. The driver, idle
between outcomes, hands each finished entry to one shipper process for the whole sweep; while
the shipper writes, entries queue up, and it writes them together, one transaction for many
runs (:mod:`emstrack._delivery.batched`). At the end the driver waits for the last runs.

Workers on other machines (a remote Dask scheduler) cannot share this machine's spool: each
keeps the default delivery (its own shipper, batching the same way), and the sweep asks every
worker to flush at the end (:func:`flush_worker`, run on each Dask worker).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

SPOOL_DELIVERY = {"EMSTRACK_DELIVERY": "spool"}
"""The switch a worker on the driver's machine runs with."""


@dataclass
class Closing:
    """What the end of a sweep's delivery took (filled by whoever delivers)."""

    delivery_seconds: float = 0.0
    """Waiting, after the last scenario, for the last runs to reach the store."""
    kept: int = 0
    """Finished runs still in a spool (the store did not take them): `emstrack sync`."""


class DriverDelivery:
    """The driver's side: hand each finished run to the shipper, wait for all at the end."""

    def __init__(self, spool: Path, uri: str) -> None:
        from .._delivery.courier import courier

        self.spool = spool
        self.uri = uri
        self._courier = courier(spool, uri)
        self.handed = 0

    def hand(self, entry: str | None) -> None:
        """Queue a finished scenario's spool entry (a folder name) for delivery."""
        if not entry or "/" in entry:
            return
        from .._delivery.spool import SpoolEntry

        if self._courier.submit(SpoolEntry(self.spool / entry)):
            self.handed += 1

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
        flush_for(self.uri, timeout)
        for entry in list(for_store(self.spool, self.uri)):
            if not has_ended(entry):
                with contextlib.suppress(Exception):  # kept: `emstrack sync` tries again
                    deliver(entry.folder, self.uri)
        shown = _shown(self.uri)
        kept = sum(1 for run in pending(self.spool) if run.tracking_uri == shown)
        return time.perf_counter() - began, kept


def _shown(uri: str) -> str:
    from .._uris import redact_uri

    return redact_uri(uri)


def flush_worker() -> int:
    """On a worker with its own spool: wait for its runs; return how many stay in its spool."""
    from .. import _settings
    from .._delivery.replay import flush, pending

    flush(_settings.flush_timeout())
    return sum(1 for run in pending() if run.status is not None)
