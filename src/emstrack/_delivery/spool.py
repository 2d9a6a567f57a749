"""The write-ahead spool: every run's records on local disk before anything is sent.

One folder per run under the spool root (default ``.emstrack/spool``)::

    <start-ms>-<run-key>/
        run.jsonl     one JSON event per line, appended with a single write each
        artifacts/    copies of the run's artifact files, taken when they were logged
        state.json    how far shipping got (MLflow run id, byte offset), replaced atomically
        .lock         held while the run is open or being shipped

Events, in order: ``start`` (run key, tracking URI without credentials, experiment, run name,
parent run key, start time, tags), then any number of ``params``, ``metrics`` (key, value, step,
timestamp), ``tags``, ``artifact`` and ``artifact_dir``, and finally ``end`` (status, end time).
A run whose every event reached the store is deleted; a run that did not is fsync'ed and stays
for ``emstrack sync``, which replays it through the same shipping code.

A reader only takes lines that end in a newline, so a line being written, or torn by a crash, is
never half-read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

FORMAT_VERSION = 1
EVENTS_FILE = "run.jsonl"
STATE_FILE = "state.json"
LOCK_FILE = ".lock"
ARTIFACTS_DIR = "artifacts"

Event = dict[str, Any]


@dataclass(slots=True)
class ShipState:
    """How far a run's events have been shipped to its store."""

    run_id: str | None = None
    offset: int = 0
    """Bytes of ``run.jsonl`` already in the store."""
    create_attempted: bool = False
    """A create_run may have reached the store: look the run up before creating another."""


class SpoolEntry:
    """One run's folder in the spool."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.key = folder.name.partition("-")[2] or folder.name
        self._fd: int | None = None
        self._lock: FileLock | None = None
        self._artifact_count = 0

    # ------------------------------------------------------------------ writing

    @classmethod
    def create(cls, root: Path, key: str, start: Event) -> SpoolEntry:
        """Make the run's folder, take its lock and write the ``start`` event."""
        folder = root / f"{start['start_ms']:013d}-{key}"
        (folder / ARTIFACTS_DIR).mkdir(parents=True, exist_ok=False)
        entry = cls(folder)
        entry.acquire(timeout=0)
        entry._fd = os.open(folder / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        entry.append({"e": "start", "v": FORMAT_VERSION, **start})
        return entry

    def append(self, event: Event) -> None:
        """Append one event as one line, in one write."""
        if self._fd is None:
            self._fd = os.open(self.folder / EVENTS_FILE, os.O_RDWR | os.O_APPEND)
            _drop_torn_tail(self._fd)
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=True) + "\n"
        os.write(self._fd, line.encode("ascii"))

    def store_file(self, source: Path, name: str) -> str:
        """Copy ``source`` into the entry; return its path relative to the entry."""
        relative = self._next_artifact_slot() / name
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return relative.as_posix()

    def store_bytes(self, data: bytes, name: str) -> str:
        """Write ``data`` as a file in the entry; return its path relative to the entry."""
        relative = self._next_artifact_slot() / name
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return relative.as_posix()

    def store_tree(self, source: Path) -> str:
        """Copy the folder ``source`` into the entry; return its path relative to the entry."""
        relative = self._next_artifact_slot()
        shutil.copytree(source, self.folder / relative, dirs_exist_ok=True)
        return relative.as_posix()

    def _next_artifact_slot(self) -> Path:
        self._artifact_count += 1
        return Path(ARTIFACTS_DIR) / str(self._artifact_count)

    def make_durable(self) -> None:
        """Fsync the events, the artifact copies and the folder, so a power cut keeps them."""
        if self._fd is not None:
            os.fsync(self._fd)
        for path in self.folder.rglob("*"):
            if path.is_file() and path.name != LOCK_FILE:
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        _fsync_dir(self.folder)
        _fsync_dir(self.folder.parent)

    def close(self) -> None:
        """Stop writing; the events file stays."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Delete the entry: every event reached the store."""
        self.close()
        # The events file goes first: whoever takes the lock next (even a new lock file in a
        # half-deleted folder) finds no events and knows the run was delivered.
        with contextlib.suppress(OSError):
            os.unlink(self.folder / EVENTS_FILE)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.release()

    # ------------------------------------------------------------------ reading

    def read_events(self, offset: int = 0) -> tuple[list[Event], int]:
        """Complete events after byte ``offset``, and the offset after the last one."""
        try:
            with open(self.folder / EVENTS_FILE, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        events = []
        for line in data[:end].splitlines():
            if line.strip():
                events.append(json.loads(line))
        return events, offset + end

    def start_event(self) -> Event:
        """The ``start`` event: who the run is and where it goes."""
        with open(self.folder / EVENTS_FILE, "rb") as handle:
            first = handle.readline()
        event: Event = json.loads(first)
        return event

    def load_state(self) -> ShipState:
        """The saved shipping state, or a fresh one."""
        try:
            data = json.loads((self.folder / STATE_FILE).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return ShipState()
        return ShipState(
            **{k: data[k] for k in ("run_id", "offset", "create_attempted") if k in data}
        )

    def save_state(self, state: ShipState) -> None:
        """Replace ``state.json`` atomically."""
        _atomic_write(self.folder / STATE_FILE, json.dumps(asdict(state)).encode("utf-8"))

    # ------------------------------------------------------------------ locking

    def acquire(self, timeout: float) -> bool:
        """Take the entry's lock; ``False`` if another writer or shipper holds it."""
        if self._lock is None:
            self._lock = FileLock(self.folder / LOCK_FILE, thread_local=False)
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        """Let others ship the entry."""
        if self._lock is not None and self._lock.is_locked:
            self._lock.release(force=True)


def entries(root: Path) -> Iterator[SpoolEntry]:
    """The spool's entries, oldest first (so parents come before their children)."""
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and (folder / EVENTS_FILE).is_file():
            yield SpoolEntry(folder)


def _drop_torn_tail(fd: int) -> None:
    """Cut a last line without its newline (a write torn by a crash) before appending after it.

    Readers already ignore such a line; appending to it would glue the next event onto it and
    make both unreadable.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    data = os.pread(fd, size, 0)
    os.ftruncate(fd, data.rfind(b"\n") + 1)


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def now_ms() -> int:
    """Wall-clock time in milliseconds, as MLflow stores it."""
    return time.time_ns() // 1_000_000
