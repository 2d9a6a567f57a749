"""Delivering spool entries that no live run writes any more, each exactly once.

Used by the shipper process (runs handed over by their process, and orphans found in the spool
at its start) and by :func:`emstrack.flush` (finished runs still waiting). Exactly once rests on
two things: the entry's lock (one deliverer at a time; a deliverer that finds the folder gone
after taking it does nothing) and the ``emstrack.run_key`` tag (every delivery looks the run up
before creating it, so a deliverer killed between ``create_run`` and saving its state is
completed, not duplicated).

An entry's *create lock* (``.create.lock``) serialises creating its MLflow run: a child run
shipped while its parent is still open creates the parent's run first (so the child can link to
it) without the parent's entry lock, which the live parent holds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path

from .._uris import redact_uri
from .locks import EntryLock
from .shipping import done_with, open_runs, ship
from .spool import EVENTS_FILE, LOCK_FILE, ShipState, SpoolEntry, close_if_abandoned, entries

CREATE_LOCK_FILE = ".create.lock"


class Outcome(Enum):
    """What :func:`deliver` did with one entry."""

    SENT = "sent"
    """Every event reached the store; the entry is deleted."""
    GONE = "gone"
    """Someone else delivered it first."""
    BUSY = "busy"
    """Another process holds the entry (a live run, or another deliverer)."""
    OPEN = "open"
    """Its run has not ended and abandoned entries were not to be closed."""
    KEPT = "kept"
    """The store did not take it (down, busy past the budget, refused): it stays in the spool."""


def _create_lock(folder: Path) -> EntryLock:
    return EntryLock(folder / CREATE_LOCK_FILE)


def deliver(
    folder: Path,
    uri: str,
    *,
    wait: float = 0.0,
    close_abandoned: bool = True,
    on_error: Callable[[Path, BaseException], None] | None = None,
) -> Outcome:
    """Ship the entry at ``folder`` to ``uri`` if nobody else holds it; delete it when done.

    ``wait`` is how long to wait for the entry's lock. An entry whose run never ended (its
    process died) is closed as ``KILLED`` with ``emstrack.incomplete=true`` first, like
    ``emstrack sync`` does, unless ``close_abandoned`` is false.
    """
    if not (folder / EVENTS_FILE).is_file():
        return Outcome.GONE
    entry = SpoolEntry(folder)
    try:
        acquired = entry.acquire(timeout=wait)
    except OSError:
        # The holder deleted the folder (delivered it) while this waited for its lock.
        return Outcome.BUSY if (folder / EVENTS_FILE).is_file() else Outcome.GONE
    if not acquired:
        # False also means "taken, but delivered and removed meanwhile" (the lock can be
        # taken in a folder another deliverer is deleting): that run is in the store.
        return Outcome.BUSY if entry.exists() else Outcome.GONE
    try:
        if not (folder / EVENTS_FILE).is_file():
            _remove_if_only_locks(folder)
            return Outcome.GONE
        events, _ = entry.read_events()
        if not any(event["e"] == "end" for event in events):
            if not close_abandoned:
                return Outcome.OPEN

            close_if_abandoned(entry)
        with _create_lock(folder):
            state = entry.load_state()
            try:
                done = _ship_with_parent(entry, state, uri)
            except Exception as error:
                done = False
                if on_error is not None:
                    on_error(folder, error)
            if not done:
                with contextlib.suppress(OSError):
                    entry.save_state(state)
                return Outcome.KEPT
        entry.remove()
        done_with(entry.key)
        return Outcome.SENT
    finally:
        entry.release()
        entry.close()


def ship_open(entry: SpoolEntry, state: ShipState, uri: str) -> None:
    """Ship what a still-open run logged so far (``Run.flush()`` when a shipper process delivers).

    Under the create lock, with the state a shipper may have saved (it creates a parent's run
    for its children), and saved again so that the shipper continues where this left off.
    """
    with _create_lock(entry.folder):
        if state.run_id is None:
            saved = entry.load_state()
            state.run_id, state.offset = saved.run_id, saved.offset
            state.create_attempted = saved.create_attempted
        _ensure_parent(entry, uri)
        try:
            ship(entry, state, uri=uri, replay=True)
        finally:
            entry.save_state(state)


def _ship_with_parent(entry: SpoolEntry, state: ShipState, uri: str) -> bool:
    parent = _ensure_parent(entry, uri)
    try:
        return ship(entry, state, uri=uri, replay=True)
    finally:
        if parent is not None:
            open_runs.discard(parent)


def _ensure_parent(entry: SpoolEntry, uri: str) -> str | None:
    """Make sure a parent still in the spool has its MLflow run, so the child links to it.

    The parent's entry is registered as open for :func:`ship`'s parent lookup; returns its key
    (to forget afterwards), or ``None`` when the parent is not in the spool (then ``ship`` finds
    it in the store by its run key).
    """
    parent_key = entry.start_event().get("parent")
    if not parent_key:
        return None
    folder = _folder_of(entry.folder.parent, parent_key)
    if folder is None:
        return None
    parent = SpoolEntry(folder)
    with _create_lock(folder):
        state = parent.load_state()
        if state.run_id is None:
            grandparent = _ensure_parent(parent, uri)
            try:
                ship(parent, state, uri=uri, replay=True, create_only=True)
            finally:
                if grandparent is not None:
                    open_runs.discard(grandparent)
            parent.save_state(state)
    open_runs.add(parent, state)
    return parent.key


def _folder_of(root: Path, key: str) -> Path | None:
    for folder in root.glob(f"*-{key}"):
        if (folder / EVENTS_FILE).is_file():
            return folder
    return None


def _remove_if_only_locks(folder: Path) -> None:
    """Remove a folder that taking its lock re-created after the entry was deleted."""
    with contextlib.suppress(OSError):
        if {path.name for path in folder.iterdir()} <= {LOCK_FILE, CREATE_LOCK_FILE}:
            shutil.rmtree(folder, ignore_errors=True)


def for_store(root: Path, uri: str) -> Iterator[SpoolEntry]:
    """Entries of ``root`` whose run goes to ``uri`` (compared without credentials)."""
    shown = redact_uri(uri)
    for entry in entries(root):
        try:
            if entry.start_event().get("uri") == shown:
                yield entry
        except (OSError, ValueError, IndexError):
            continue


def has_ended(entry: SpoolEntry) -> bool:
    """Whether the entry holds its run's ``end`` event (its last line, when present)."""
    try:
        with open(entry.folder / EVENTS_FILE, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - 256))
            tail = handle.read()
    except OSError:
        return False
    return b'{"e":"end"' in tail
