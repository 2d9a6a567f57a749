"""Process delivery (the default): hand finished runs to a shipper process, and wait for it.

The pipeline's process only appends to the spool. When a run ends, its entry is complete on
disk (written to the OS, so a SIGKILL right after the call keeps it), its lock is released and
its folder name is written, as one line, to the stdin of the shipper process of its spool and
store (:mod:`emstrack._delivery.shipper`), started on first use::

    python -m emstrack._delivery.shipper --spool <spool folder>     (store URI in its environment)

The shipper runs in its own session (a Ctrl-C in the terminal does not stop it mid-run) and
ships each entry under the entry's lock, so SQLAlchemy never competes with the pipeline for the
GIL. When this process ends, however it ends, the pipe closes: the shipper delivers what it was
handed and exits. :meth:`Courier.flush` asks it, through the same pipe, to report once every
run handed so far was tried; it answers on its stdout with how many stay in the spool.

A child made by ``fork`` (``multiprocessing`` workers) forgets the parent's shipper and starts
its own on first use; its runs outlive it the same way.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from .spool import SpoolEntry

SHIPPER_MODULE = "emstrack._delivery.shipper"
URI_VARIABLE = "EMSTRACK_SHIPPER_URI"


class Courier:
    """The link from this process to the shipper process of one spool and store."""

    def __init__(self, root: Path, uri: str) -> None:
        self.root = root
        self.uri = uri
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._unconfirmed = 0
        self._token = 0
        self._buffer = b""

    def submit(self, entry: SpoolEntry) -> bool:
        """Hand a finished, unlocked entry to the shipper; ``False`` if no shipper could take it."""
        line = f"ship {entry.folder.name}\n".encode()
        with self._lock:
            for _ in range(2):
                try:
                    process = self._ensure()
                    assert process.stdin is not None
                    process.stdin.write(line)
                except OSError:
                    self._forget()
                    continue
                self._unconfirmed += 1
                return True
        return False

    def flush(self, timeout: float | None) -> int:
        """Wait until every run handed over was tried; return how many stay in the spool.

        Returns at once when nothing was handed over since the last complete flush. A shipper
        that died or did not answer in time counts every unconfirmed run as waiting.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            process = self._process
            if not self._unconfirmed or process is None:
                return 0
            self._token += 1
            token = str(self._token).encode()
            try:
                assert process.stdin is not None
                process.stdin.write(b"flush " + token + b"\n")
                while True:
                    line = self._read_line(process, deadline)
                    if line is None:
                        return self._unconfirmed
                    words = line.split()
                    if len(words) == 3 and words[0] == b"flushed" and words[1] == token:
                        left = int(words[2])
                        if not left:
                            self._unconfirmed = 0
                        return left
            except (OSError, ValueError):
                self._forget()
                return self._unconfirmed

    def close(self, timeout: float | None = None) -> bool:
        """Close the pipe (the shipper delivers what it has and exits); wait for it to end."""
        with self._lock:
            process, self._process = self._process, None
            self._unconfirmed = 0
        if process is None:
            return True
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        finally:
            if process.stdout is not None:
                process.stdout.close()
        return True

    @property
    def pid(self) -> int | None:
        """The shipper's process id while one runs for this process."""
        return self._process.pid if self._process is not None else None

    def _ensure(self) -> subprocess.Popen[bytes]:
        process = self._process
        if process is not None and process.poll() is None:
            return process
        self._forget()
        environment = {**os.environ, URI_VARIABLE: self.uri}
        environment.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        log = os.environ.get("EMSTRACK_SHIPPER_LOG", "").strip()
        # Not this process's stderr: a caller reading it to its end would wait for the shipper.
        errors = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", SHIPPER_MODULE, "--spool", str(self.root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                bufsize=0,
                env=environment,
                start_new_session=True,
            )
        finally:
            if not isinstance(errors, int):
                errors.close()
        self._process = process
        self._buffer = b""
        return process

    def _read_line(self, process: subprocess.Popen[bytes], deadline: float | None) -> bytes | None:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                self._forget()
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _forget(self) -> None:
        """Drop a shipper that died (its runs stay in the spool for the next one)."""
        process, self._process = self._process, None
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
            with contextlib.suppress(OSError):
                process.poll()

    def _after_fork(self) -> None:
        """In a forked child: let go of the parent's shipper without touching it."""
        self._lock = threading.Lock()
        process, self._process = self._process, None
        self._unconfirmed = 0
        self._buffer = b""
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
            # The parent reaps it; this child must never wait for it.
            process.returncode = 0


_couriers: dict[tuple[Path, str], Courier] = {}
_couriers_lock = threading.Lock()


def courier(root: Path, uri: str) -> Courier:
    """The process's courier for a spool and store, created on first use."""
    key = (root, uri)
    found = _couriers.get(key)
    if found is None:
        with _couriers_lock:
            found = _couriers.setdefault(key, Courier(root, uri))
    return found


def couriers() -> list[Courier]:
    """Every courier this process made."""
    with _couriers_lock:
        return list(_couriers.values())


def flush_all(timeout: float | None) -> int:
    """Flush every courier; return how many runs stay in the spool."""
    deadline = None if timeout is None else time.monotonic() + timeout
    left = 0
    for found in couriers():
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        left += found.flush(remaining)
    return left


def close_all(timeout: float | None = None) -> bool:
    """Let every shipper of this process finish and wait for them (tests, embedding hosts)."""
    closed = [found.close(timeout) for found in couriers()]  # every one, not just until False
    return all(closed)


def _reset_after_fork() -> None:
    global _couriers_lock
    _couriers_lock = threading.Lock()
    for found in _couriers.values():
        found._after_fork()


def _let_go_at_exit() -> None:
    """At interpreter exit: close the pipes (each shipper finishes on its own), never wait."""
    for found in couriers():
        found._after_fork()  # same letting go: close this side, never reap or wait


os.register_at_fork(after_in_child=_reset_after_fork)
atexit.register(_let_go_at_exit)
