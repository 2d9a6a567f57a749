"""The shipper process: ``python -m emstrack._delivery.shipper --spool <folder>``.

Started by :mod:`emstrack._delivery.courier`, one per pipeline process, spool and store (the
store URI, with its credentials, comes in ``EMSTRACK_SHIPPER_URI``, never on the command line).
It reads one command per line on stdin:

* ``ship <entry folder name>``: deliver that finished run (under the entry's lock);
* ``flush <token>``: once every run handed before it was tried, answer
  ``flushed <token> <runs still in the spool>`` on stdout.

At its start it also delivers the orphans of its store found in the spool: runs whose process
died before they were delivered (closed as ``KILLED`` and ``emstrack.incomplete`` when they
never ended). A run the store did not take (down, locked past the budget) is parked and tried
again after :data:`~emstrack._delivery.store.RETRY_AFTER_S` and at each flush. When stdin
closes (the pipeline's process ended) it tries what it holds once more and exits; what is left
stays in the spool for the next process or ``emstrack sync``.

Entries handed over are locked at once (up to :data:`MAX_HELD_LOCKS`), so that a reader in
another process (``emstrack runs`` right after the pipeline) sees them in flight and waits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO

from .spool import EVENTS_FILE, SpoolEntry

MAX_HELD_LOCKS = 256
POLL_MIN_S = 0.02
POLL_MAX_S = 0.25
SHIPPER_NICENESS = 10


class Shipper:
    """The shipper's queue, fed by a reader thread, drained by the main thread."""

    def __init__(self, root: Path, uri: str) -> None:
        self.root = root
        self.uri = uri
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, str]] = deque()
        self._queued: set[str] = set()
        self._parked: list[str] = []
        self._held: dict[str, SpoolEntry] = {}
        self._retried: set[str] = set()
        self._closed = False

    # ------------------------------------------------------------------ input

    def read_commands(self, fd: int) -> None:
        """Reader thread: queue every command until stdin closes.

        The pipe is polled (every :data:`POLL_MIN_S`, backing off to :data:`POLL_MAX_S` while
        idle) rather than waited on: a reader blocked on the pipe is woken by each write, and
        on a busy machine that wake-up costs the *writer* - the pipeline - a context switch
        (measured: ~1.5 ms per run at load 6). A write into a pipe nobody waits on costs
        microseconds.
        """
        os.set_blocking(fd, False)
        pending = b""
        interval = POLL_MIN_S
        while True:
            time.sleep(interval)
            try:
                chunks = []
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                ended = True
            except BlockingIOError:
                ended = False
            except OSError:
                chunks, ended = [], True
            data = pending + b"".join(chunks)
            *lines, pending = data.split(b"\n")
            interval = POLL_MIN_S if lines else min(interval * 2, POLL_MAX_S)
            for raw in lines:
                self._command(raw)
            if ended:
                break
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _command(self, raw: bytes) -> None:
        command, _, argument = raw.decode("utf-8", "replace").strip().partition(" ")
        if command == "ship" and argument and "/" not in argument:
            # One step with the main thread's hand-over (:meth:`_take`): an entry this locks
            # is either let go by a hand-over still to come or queued again, never stranded.
            with self._cond:
                self._hold(argument)
                self._put("ship", argument)
        elif command == "flush" and argument:
            self._put("flush", argument)

    def _put(self, command: str, argument: str) -> None:
        with self._cond:
            if command == "ship":
                if argument in self._queued:
                    return
                self._queued.add(argument)
            self._queue.append((command, argument))
            self._cond.notify_all()

    def _hold(self, name: str) -> None:
        """Lock a handed-over entry at once: readers elsewhere then wait for its delivery.

        Called under ``self._cond``, like :meth:`_let_go`.
        """
        if len(self._held) >= MAX_HELD_LOCKS or name in self._held:
            return
        entry = SpoolEntry(self.root / name)
        with contextlib.suppress(OSError):
            if (entry.folder / EVENTS_FILE).is_file() and entry.acquire(timeout=0):
                self._held[name] = entry

    def _let_go(self, name: str) -> None:
        entry = self._held.pop(name, None)
        if entry is not None:
            with contextlib.suppress(OSError):
                entry.release()

    # ------------------------------------------------------------------ work

    def adopt_orphans(self) -> None:
        """Queue the entries of this store that nobody holds: left by processes that died."""
        from .orphans import for_store

        with contextlib.suppress(OSError):
            for entry in for_store(self.root, self.uri):
                with contextlib.suppress(OSError):
                    if entry.acquire(timeout=0):
                        entry.release()
                        self._put("ship", entry.folder.name)

    def run(self, out: BinaryIO) -> None:
        """Main loop: deliver, answer flushes, retry parked runs; return when stdin closed."""
        while True:
            with self._cond:
                step = self._wait_for_command()
                if step is None:
                    break
                command, argument = step
                names = self._take([argument, *self._more_ships()]) if command == "ship" else []
            if names:
                self._ship(names)
            else:
                self._answer(out, argument)
        with self._cond:
            self._retry_parked()
            names = self._take([name for command, name in self._queue if command == "ship"])
            self._queue.clear()
        if names:
            self._ship(names, last_try=True)

    def _wait_for_command(self) -> tuple[str, str] | None:
        """Under ``self._cond``: the next command, off the queue; ``None`` once stdin closed."""
        from .store import RETRY_AFTER_S

        while True:
            while not self._queue and not self._closed:
                if self._parked:
                    if not self._cond.wait(RETRY_AFTER_S) and not self._queue:
                        self._retry_parked()
                else:
                    self._cond.wait()
            if not self._queue:
                return None
            command, argument = self._queue.popleft()
            if command == "flush" and self._parked and argument not in self._retried:
                # Try the parked runs once more before answering.
                self._retried.add(argument)
                self._queue.appendleft((command, argument))
                self._retry_parked(first=True)
                continue
            return command, argument

    def _take(self, names: list[str]) -> list[str]:
        """Under ``self._cond``: hand these runs over to delivery (let go of their locks).

        From here on a ``ship`` command for one of them queues it again (a reader thread may
        have locked it meanwhile): one step with :meth:`_command`, or such an entry would stay
        locked by this process and never be delivered.
        """
        for name in names:
            self._let_go(name)
        self._queued.difference_update(names)
        return names

    def _more_ships(self) -> list[str]:
        """The ``ship`` commands next in the queue (under the lock): delivered together."""
        from .batched import MAX_BATCH_RUNS

        names: list[str] = []
        while self._queue and self._queue[0][0] == "ship" and len(names) < MAX_BATCH_RUNS - 1:
            names.append(self._queue.popleft()[1])
        return names

    def _retry_parked(self, first: bool = False) -> None:
        """Queue parked runs again: at the front when ``first``, else at the back."""
        parked, self._parked = self._parked, []
        for name in reversed(parked) if first else parked:
            self._queued.add(name)
            if first:
                self._queue.appendleft(("ship", name))
            else:
                self._queue.append(("ship", name))

    def _ship(self, names: list[str], last_try: bool = False) -> None:
        """Deliver runs handed over by :meth:`_take`; park what the store did not take."""
        from .batched import deliver_many
        from .orphans import Outcome

        folders = [self.root / name for name in names]
        try:
            outcomes = deliver_many(folders, self.uri, on_error=_log_error)
        except Exception:
            outcomes = {}
        kept = [f.name for f in folders if outcomes.get(f, Outcome.KEPT) is Outcome.KEPT]
        if kept and not last_try:
            with self._cond:
                self._parked.extend(kept)

    def _answer(self, out: BinaryIO, token: str) -> None:
        with self._cond:
            left = len(self._parked)
            self._retried.discard(token)
        with contextlib.suppress(OSError, ValueError):
            out.write(f"flushed {token} {left}\n".encode())
            out.flush()


def _log_error(folder: Path, error: BaseException) -> None:
    """Say on stderr why a run stays in the spool (``EMSTRACK_SHIPPER_LOG`` names the file)."""
    with contextlib.suppress(Exception):
        print(f"emstrack shipper: {folder.name}: {type(error).__name__}: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the shipper process."""
    parser = argparse.ArgumentParser(prog="python -m " + __spec__.name)
    parser.add_argument("--spool", required=True, type=Path)
    arguments = parser.parse_args(argv)
    uri = os.environ.pop("EMSTRACK_SHIPPER_URI", "")
    if not uri:
        print("EMSTRACK_SHIPPER_URI is not set", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        # Behind the pipeline: a woken shipper must not preempt it on a busy machine.
        os.nice(SHIPPER_NICENESS)
    shipper = Shipper(arguments.spool, uri)
    reader = threading.Thread(
        target=shipper.read_commands, args=(sys.stdin.fileno(),), name="commands", daemon=True
    )
    reader.start()
    shipper.adopt_orphans()
    shipper.run(sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
