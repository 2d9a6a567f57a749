"""Background mode: the pipeline thread only appends to the spool, this thread ships.

Runs that could not be shipped (store down) stay in the spool and are tried again after the
store's retry interval while the process lives. At interpreter exit the queue is drained for at
most ``EMSTRACK_DRAIN_TIMEOUT`` seconds (default 10); whatever is left stays in the spool for
``emstrack sync``.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import time
from collections import deque

from .. import _settings
from .shipping import done_with, ship
from .spool import ShipState, SpoolEntry
from .store import RETRY_AFTER_S

_Item = tuple[SpoolEntry, ShipState, str]


class BackgroundShipper:
    """A daemon thread shipping finished runs in the order they finished."""

    def __init__(self) -> None:
        self._queue: deque[_Item] = deque()
        self._parked: list[_Item] = []
        self._busy = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, entry: SpoolEntry, state: ShipState, uri: str) -> None:
        """Queue a finished run for shipping."""
        with self._cond:
            self._queue.append((entry, state, uri))
            self._ensure_thread()
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued run was shipped or parked; ``False`` if ``timeout`` passed first.

        Parked runs (their store was down) are tried once more first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._queue.extend(self._parked)
            self._parked.clear()
            if self._queue:
                self._ensure_thread()
                self._cond.notify_all()
            while self._queue or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def pending(self) -> int:
        """Runs queued, in flight or parked."""
        with self._cond:
            return len(self._queue) + self._busy + len(self._parked)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="emstrack-shipper", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    if self._parked:
                        self._cond.wait(RETRY_AFTER_S)
                        if not self._queue:
                            self._queue.extend(self._parked)
                            self._parked.clear()
                    else:
                        self._cond.wait()
                if self._stopping and not self._queue:
                    return
                item = self._queue.popleft()
                self._busy += 1
            try:
                self._ship(item)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _ship(self, item: _Item) -> None:
        entry, state, uri = item
        try:
            done = ship(entry, state, uri=uri)
        except Exception:
            done = False
        if done:
            entry.remove()
            done_with(entry.key)
            return
        if entry.folder.exists():
            with contextlib.suppress(OSError):
                entry.save_state(state)
                entry.make_durable()
        with self._cond:
            self._parked.append(item)

    def stop(self, timeout: float) -> int:
        """Drain for at most ``timeout`` seconds; return how many runs stay in the spool."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            left = [*self._queue, *self._parked]
            self._queue.clear()
            self._parked.clear()
        for entry, state, _ in left:
            try:
                entry.save_state(state)
                entry.make_durable()
                entry.release()
            except OSError:
                pass
        return len(left)


_shipper: BackgroundShipper | None = None
_shipper_lock = threading.Lock()


def shipper() -> BackgroundShipper:
    """The process's background shipper, started on first use and drained at exit."""
    global _shipper
    if _shipper is None:
        with _shipper_lock:
            if _shipper is None:
                # MLflow's first import (in the shipper thread) imports concurrent.futures, which
                # registers a threading atexit hook: that raises once the interpreter is shutting
                # down, and a short script ends before MLflow finished loading, so the drain at
                # exit would ship nothing. Imported here, it is done before any shutdown.
                import concurrent.futures.thread  # noqa: F401

                _shipper = BackgroundShipper()
                atexit.register(_drain_at_exit)
    return _shipper


def parked() -> int:
    """Runs the background thread still holds (queued, in flight or parked after an outage)."""
    return _shipper.pending() if _shipper is not None else 0


def wait_idle(timeout: float | None = None) -> bool:
    """Wait for background shipping; ``True`` when nothing is left queued or in flight."""
    if _shipper is None:
        return True
    return _shipper.flush(timeout)


def _drain_at_exit() -> None:
    if _shipper is None:
        return
    left = _shipper.stop(_settings.drain_timeout())
    if left:
        spool = _settings.spool_dir()
        print(
            f"emstrack: {left} run(s) not yet in the tracking store stay in {spool}; "
            "replay them with `emstrack sync`",
            file=sys.stderr,
        )
