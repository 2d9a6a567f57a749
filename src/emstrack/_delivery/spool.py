"""The write-ahead spool: every run's records on local disk before anything is sent.

One folder per run under the spool root (default ``.emstrack/spool``)::

    <start-ms>-<run-key>/
        run.jsonl     one JSON event per line, appended with a single write each
        artifacts/    copies of the run's artifact files, taken when they were logged (made
                      with the first one)
        state.json    how far shipping got (MLflow run id, byte offset), replaced atomically
        .lock         held while the run is open or being shipped

Events, in order: ``start`` (run key, tracking URI without credentials, experiment, run name,
parent run key, start time, tags, and ``creates_noted`` when another process delivers the run:
see :data:`CREATES_NOTED`), then any number of ``params``, ``metrics`` (key, value, step,
timestamp), ``tags``, ``artifact``, ``artifact_dir`` and ``dataset`` (a dataset input: name,
digest, source, schema, profile, context), and finally ``end`` (status, end time).
A run whose every event reached the store is deleted; a run that did not is fsync'ed and stays
for ``emstrack sync``, which replays it through the same shipping code.

A reader only takes lines that end in a newline, so a line being written, or torn by a crash, is
never half-read. A line that does not parse as an event (garbage written by something else, a
damaged disk) is skipped and kept in :attr:`SpoolEntry.unreadable`; an entry without a readable
``start`` event cannot be replayed at all and is moved to the ``quarantine/`` folder beside the
spool by ``emstrack sync``.

When the spool's disk is full (or the folder becomes unwritable) while a run is open, an append
is rolled back to the last whole line and the event is kept in memory instead, after the events
on disk: readers of the entry see both, so the run is shipped straight to a reachable store and
nothing it logged is lost. Artifact copies that do not fit go to the temp folder instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .locks import EntryLock

FORMAT_VERSION = 1
EVENTS_FILE = "run.jsonl"
STATE_FILE = "state.json"
CREATES_NOTED = "creates_noted"
"""Start-event flag: every ``create_run`` for this run is preceded by saving ``state.json``
with ``create_attempted``.

Without it (the writer sends its run itself, in synchronous or thread delivery, or an entry of
emstrack 0.1), the writer may have created the run and died before saving any state, so a
replay looks the run up by its key tag, which no index serves: 117 ms a run in a SQLite store
of 100,000 runs, on the server for an HTTP store. With it, a replay whose state says no create
was attempted only checks the run id equal to the key (what a batch stores)."""
LOCK_FILE = ".lock"
ARTIFACTS_DIR = "artifacts"
QUARANTINE_DIR = "quarantine"
STATUSES = frozenset({"FINISHED", "FAILED", "KILLED", "RUNNING"})

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
        self._lock: EntryLock | None = None
        self._artifact_count = 0
        self._artifacts_made = False
        self._start: Event | None = None
        # Events that did not fit on disk, in order after the first ``_memory_base`` bytes.
        self._memory = bytearray()
        self._memory_base = 0
        self._outside: list[Path] = []
        #: Why the spool could not take the run's records (disk full, unwritable), if it failed.
        self.disk_error: OSError | None = None
        #: Lines of ``run.jsonl`` that are not events (read, never shipped).
        self.unreadable: list[bytes] = []

    # ------------------------------------------------------------------ writing

    @classmethod
    def create(cls, root: Path, key: str, start: Event) -> SpoolEntry:
        """Make the run's folder, take its lock and write the ``start`` event."""
        folder = root / f"{start['start_ms']:013d}-{key}"
        folder.mkdir(parents=True, exist_ok=False)
        entry = cls(folder)
        try:
            if not entry._take_lock(timeout=0):
                raise OSError(f"spool entry {folder} is locked by another process")
            entry._fd = os.open(folder / EVENTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except BaseException:
            entry.release()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        entry._start = {"e": "start", "v": FORMAT_VERSION, **start}
        entry.append(entry._start)
        return entry

    @property
    def in_memory(self) -> bool:
        """Whether some of the run's events are held in memory only (the spool disk failed)."""
        return bool(self._memory)

    def append(self, event: Event) -> None:
        """Append one event as one line, in one write; in memory if the disk cannot take it."""
        line = (json.dumps(event, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")
        if self._memory:
            self._memory += line
            return
        try:
            if self._fd is None:
                self._fd = os.open(self.folder / EVENTS_FILE, os.O_RDWR | os.O_APPEND)
                _drop_torn_tail(self._fd)
            _write_whole(self._fd, line)
        except OSError as error:
            self.disk_error = self.disk_error or error
            self._memory_base = self._disk_size()
            self._memory += line

    def _disk_size(self) -> int:
        try:
            return (self.folder / EVENTS_FILE).stat().st_size
        except OSError:
            return 0

    def spill(self) -> bool:
        """Write the events held in memory to disk; whether none is left in memory."""
        if not self._memory:
            return True
        try:
            if self._fd is None:
                self._fd = os.open(
                    self.folder / EVENTS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600
                )
            os.ftruncate(self._fd, self._memory_base)
            _write_whole(self._fd, bytes(self._memory))
        except OSError as error:
            self.disk_error = self.disk_error or error
            return False
        self._memory.clear()
        return True

    def store_file(self, source: Path, name: str) -> str:
        """Copy ``source`` into the entry; return its path relative to the entry."""
        return self._store(name, lambda target: shutil.copyfile(source, target))

    def store_bytes(self, data: bytes, name: str) -> str:
        """Write ``data`` as a file in the entry; return its path relative to the entry."""
        return self._store(name, lambda target: target.write_bytes(data))

    def store_tree(self, source: Path) -> str:
        """Copy the folder ``source`` into the entry; return its path relative to the entry.

        Never copies a spool into itself: a ``source`` holding the spool (the working
        directory, say) is copied without the spool's folders.
        """
        relative = self._next_artifact_slot()
        target = self.folder / relative
        ignore = _ignore_spools(source, self.folder)
        try:
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=ignore)
        except (OSError, shutil.Error) as error:
            shutil.rmtree(target, ignore_errors=True)
            if not _is_disk_error(error):
                raise
            self.disk_error = self.disk_error or _as_os_error(error)
            outside = self._outside_path(relative)
            shutil.copytree(source, outside, dirs_exist_ok=True, ignore=ignore)
            return str(outside)
        return relative.as_posix()

    def _store(self, name: str, write: Callable[[Path], object]) -> str:
        relative = self._next_artifact_slot() / name
        target = self.folder / relative
        try:
            self._make_slot(target.parent)
            write(target)
        except OSError as error:
            with contextlib.suppress(OSError):
                target.unlink()
            if not _is_disk_error(error):
                raise
            # The spool's disk is full: the copy goes to the temp folder (an absolute path,
            # which shipping joins onto the entry's folder unchanged).
            self.disk_error = self.disk_error or error
            outside = self._outside_path(relative)
            outside.parent.mkdir(parents=True, exist_ok=True)
            write(outside)
            return str(outside)
        return relative.as_posix()

    def _outside_path(self, relative: Path) -> Path:
        path = Path(tempfile.gettempdir()) / "emstrack-spool-overflow" / self.folder.name / relative
        self._outside.append(path)
        return path

    def _make_slot(self, slot: Path) -> None:
        # Two mkdir calls for the first artifact and one for each later one; ``parents=True``
        # would try the slot first and fail (a third call) while ``artifacts/`` does not exist.
        if not self._artifacts_made:
            (self.folder / ARTIFACTS_DIR).mkdir(exist_ok=True)
            self._artifacts_made = True
        slot.mkdir(exist_ok=True)

    def _next_artifact_slot(self) -> Path:
        self._artifact_count += 1
        return Path(ARTIFACTS_DIR) / str(self._artifact_count)

    def make_durable(self) -> None:
        """Fsync the events, the artifact copies and the folder, so a power cut keeps them.

        Events held in memory are written first; raises ``OSError`` if the disk still cannot
        take them.
        """
        if not self.spill():
            assert self.disk_error is not None
            raise self.disk_error
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
        """Delete the entry: every event reached the store.

        ``run.jsonl`` goes first, so that another process that takes the lock afterwards sees
        that the entry is gone (:meth:`acquire` answers ``False``) instead of replaying it.
        """
        self.close()
        # The events file goes first: whoever takes the lock next (even a new lock file in a
        # half-deleted folder) finds no events and knows the run was delivered.
        with contextlib.suppress(OSError):
            os.unlink(self.folder / EVENTS_FILE)
        shutil.rmtree(self.folder, ignore_errors=True)
        for path in self._outside:
            with contextlib.suppress(OSError):
                path.unlink() if path.is_file() else shutil.rmtree(path)
        self._memory.clear()
        self.release()

    def quarantine(self, reason: str) -> Path:
        """Move the entry beside the spool into ``quarantine/``, with ``reason.txt``; its path."""
        self.close()
        target_root = self.folder.parent.parent / QUARANTINE_DIR
        target_root.mkdir(parents=True, exist_ok=True)
        target = target_root / self.folder.name
        if target.exists():
            target = target_root / f"{self.folder.name}-{time.time_ns()}"
        with contextlib.suppress(OSError):
            (self.folder / LOCK_FILE).unlink()
        shutil.move(str(self.folder), str(target))
        with contextlib.suppress(OSError):
            (target / "reason.txt").write_text(reason + "\n", "utf-8")
        self.release()
        return target

    def quarantine_lines(self, reason: str) -> Path | None:
        """Keep the unreadable lines in ``quarantine/<entry>/unreadable.jsonl``; its path."""
        if not self.unreadable:
            return None
        target = self.folder.parent.parent / QUARANTINE_DIR / self.folder.name
        target.mkdir(parents=True, exist_ok=True)
        (target / "unreadable.jsonl").write_bytes(b"\n".join(self.unreadable) + b"\n")
        (target / "reason.txt").write_text(reason + "\n", "utf-8")
        return target

    # ------------------------------------------------------------------ reading

    def read_events(self, offset: int = 0) -> tuple[list[Event], int]:
        """Complete events after byte ``offset``, and the offset after the last one.

        Lines that are not events are skipped (and kept in :attr:`unreadable`); events held
        in memory follow those on disk.
        """
        data = b""
        if not self._memory or offset < self._memory_base:
            try:
                with open(self.folder / EVENTS_FILE, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
            except FileNotFoundError:
                if not self._memory:
                    return [], offset
        if self._memory:
            data = data[: max(0, self._memory_base - offset)]
            data += bytes(self._memory[max(0, offset - self._memory_base) :])
        end = data.rfind(b"\n") + 1
        events = []
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            event = parse_event(line)
            if event is None:
                if line not in self.unreadable:
                    self.unreadable.append(line)
                continue
            events.append(event)
        return events, offset + end

    def start_event(self) -> Event:
        """The ``start`` event: who the run is and where it goes.

        Raises :class:`UnreadableEntry` if the entry has none that can be read.
        """
        if self._start is not None:
            return self._start
        try:
            with open(self.folder / EVENTS_FILE, "rb") as handle:
                first = handle.readline()
        except FileNotFoundError as error:
            raise UnreadableEntry(f"{self.folder} has no {EVENTS_FILE}") from error
        if not first.endswith(b"\n"):
            # No whole line on disk: the start event is in memory, or the entry is empty.
            held = self._memory if self._memory_base == 0 else b""
            first = bytes(held).partition(b"\n")[0]
        event = parse_event(first.strip()) if first.strip() else None
        if event is None or event["e"] != "start":
            what = "is empty" if not first.strip() else "does not start with a readable start event"
            raise UnreadableEntry(f"{self.folder / EVENTS_FILE} {what}")
        self._start = event
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
        """Take the entry's lock; ``False`` if another writer or shipper holds it, or it is gone.

        An entry removed by another process (``emstrack sync`` running twice) is never
        re-created: its folder is left as it was, or removed if only the lock remains.
        """
        if not (self.folder / EVENTS_FILE).is_file():
            return False
        if not self._take_lock(timeout):
            return False
        if not (self.folder / EVENTS_FILE).is_file():
            self.release()
            with contextlib.suppress(OSError):
                (self.folder / LOCK_FILE).unlink()
            with contextlib.suppress(OSError):
                (self.folder / ARTIFACTS_DIR).rmdir()
            with contextlib.suppress(OSError):
                self.folder.rmdir()
            return False
        return True

    def exists(self) -> bool:
        """Whether the entry is still in the spool."""
        return (self.folder / EVENTS_FILE).is_file()

    def _take_lock(self, timeout: float) -> bool:
        if self._lock is None:
            self._lock = EntryLock(self.folder / LOCK_FILE)
        return self._lock.acquire(timeout)

    def release(self) -> None:
        """Let others ship the entry."""
        if self._lock is not None:
            self._lock.release()


class UnreadableEntry(ValueError):
    """A spool entry without a readable ``start`` event: it cannot be replayed."""


def parse_event(line: bytes) -> Event | None:
    """The event on one line of ``run.jsonl``, or ``None`` if the line is not a valid event."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and _valid(event) else None


def _is_text_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_point(point: object) -> bool:
    return (
        isinstance(point, list)
        and len(point) == 4
        and isinstance(point[0], str)
        and isinstance(point[1], int | float)
        and _is_int(point[2])
        and _is_int(point[3])
    )


def _optional_text(event: Event, name: str) -> bool:
    return event.get(name) is None or isinstance(event.get(name), str)


_CHECKS: dict[str, Callable[[Event], bool]] = {
    "start": lambda e: (
        isinstance(e.get("key"), str)
        and isinstance(e.get("experiment"), str)
        and isinstance(e.get("uri"), str)
        and _is_int(e.get("start_ms"))
        and _is_text_map(e.get("tags", {}))
        and _optional_text(e, "name")
        and _optional_text(e, "parent")
    ),
    "params": lambda e: _is_text_map(e.get("params")),
    "tags": lambda e: _is_text_map(e.get("tags")),
    "metrics": lambda e: isinstance(e.get("metrics"), list) and all(map(_is_point, e["metrics"])),
    "artifact": lambda e: isinstance(e.get("file"), str) and _optional_text(e, "dir"),
    "artifact_dir": lambda e: isinstance(e.get("folder"), str) and _optional_text(e, "dir"),
    "end": lambda e: e.get("status") in STATUSES and _is_int(e.get("end_ms")),
    "dataset": lambda e: (
        all(isinstance(e.get(name), str) for name in ("name", "digest", "source_type", "source"))
        and _optional_text(e, "schema")
        and _optional_text(e, "profile")
        and _optional_text(e, "context")
    ),
}


def _valid(event: Event) -> bool:
    check = _CHECKS.get(event.get("e"))  # type: ignore[arg-type]
    return check is not None and check(event)


def close_if_abandoned(entry: SpoolEntry) -> None:
    """Close a run whose process died before its end: KILLED, tagged ``emstrack.incomplete``."""
    events, _ = entry.read_events()
    if any(event["e"] == "end" for event in events):
        return
    start_ms = entry.start_event()["start_ms"]
    last_ms = max(
        [start_ms]
        + [point[3] for event in events if event["e"] == "metrics" for point in event["metrics"]]
    )
    entry.append({"e": "tags", "tags": {"emstrack.incomplete": "true"}})
    entry.append({"e": "end", "status": "KILLED", "end_ms": last_ms})


def entries(root: Path) -> Iterator[SpoolEntry]:
    """The spool's entries, oldest first (so parents come before their children)."""
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and (folder / EVENTS_FILE).is_file():
            yield SpoolEntry(folder)


def _write_whole(fd: int, data: bytes) -> None:
    """Write all of ``data`` or nothing: a short write (a full disk) is rolled back."""
    size = os.fstat(fd).st_size
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(28, "No space left on device (short write)")
            view = view[written:]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def _is_disk_error(error: BaseException) -> bool:
    """A full or unwritable spool disk, as opposed to a missing source file."""
    if isinstance(error, shutil.Error):
        return any(
            "No space" in str(item) or "Read-only" in str(item) or "Permission" in str(item)
            for item in error.args[0]
        )
    import errno

    return isinstance(error, OSError) and error.errno in {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EIO,
    }


def _as_os_error(error: BaseException) -> OSError:
    return error if isinstance(error, OSError) else OSError(str(error))


def _ignore_spools(source: Path, target: Path) -> Callable[[str, list[str]], list[str]]:
    """A ``copytree`` filter leaving out spool folders, when ``source`` holds the spool."""
    spool_root = target.parent.resolve()
    protected = {spool_root, spool_root.parent / QUARANTINE_DIR}
    if not any(_inside(path, source.resolve()) for path in protected):
        return lambda folder, names: []

    def ignore(folder: str, names: list[str]) -> list[str]:
        here = Path(folder).resolve()
        return [name for name in names if here / name in protected]

    return ignore


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


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
