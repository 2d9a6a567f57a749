"""Shipping spool entries to their stores: the one path from records to MLflow.

A live run (synchronous or background) and ``emstrack sync`` both call :func:`ship`, which reads
the entry's events after the last shipped byte and writes them with as few store calls as the
limits allow. Shipping is idempotent: a run already in the store is found by its run key (as
its run id, else by its ``emstrack.run_key`` tag), params repeat with the same values, metrics
carry their original timestamps (MLflow drops exact duplicates), tags and artifacts overwrite
themselves.

The tag search reads every run's key tag, so it runs only when a create may have reached the
store unnoticed: a create attempted, or a replay of an entry whose writer sent its run itself
(no ``creates_noted`` in its start event, see :data:`~.spool.CREATES_NOTED`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._tags import PARENT_KEY_TAG, RUN_KEY_TAG
from .spool import CREATES_NOTED, Event, ShipState, SpoolEntry
from .store import Store, get_store


@dataclass(slots=True)
class UnsentRecords:
    """Events of an entry gathered for shipping."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(kind, path relative to the entry, artifact folder); kind is "file" or "dir"."""
    end: Event | None = None
    datasets: list[Event] = field(default_factory=list)
    """``dataset`` events: dataset inputs (see :meth:`Store.log_inputs`)."""

    @classmethod
    def gather(cls, events: Iterable[Event]) -> UnsentRecords:
        pending = cls()
        for event in events:
            kind = event["e"]
            if kind == "params":
                for key, value in event["params"].items():
                    pending.params.setdefault(key, value)
            elif kind == "metrics":
                pending.metrics.extend(tuple(point) for point in event["metrics"])
            elif kind == "tags":
                pending.tags.update(event["tags"])
            elif kind == "artifact":
                pending.files.append(("file", event["file"], event.get("dir")))
            elif kind == "artifact_dir":
                pending.files.append(("dir", event["folder"], event.get("dir")))
            elif kind == "dataset":
                pending.datasets.append(event)
            elif kind == "end":
                pending.end = event
        return pending


class _Registry:
    """Runs open in this process, so a child can find its parent's entry without a search."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[SpoolEntry, ShipState]] = {}

    def add(self, entry: SpoolEntry, state: ShipState) -> None:
        with self._lock:
            self._open[entry.key] = (entry, state)

    def discard(self, key: str) -> None:
        with self._lock:
            self._open.pop(key, None)

    def get(self, key: str) -> tuple[SpoolEntry, ShipState] | None:
        with self._lock:
            return self._open.get(key)


open_runs = _Registry()
_waiting_targets: set[tuple[Path, str]] = set()


def note_waiting(root: Path, uri: str) -> None:
    """A run of this process waits in spool ``root`` for store ``uri`` (spool delivery)."""
    _waiting_targets.add((root, uri))


def forget_waiting(root: Path, uri: str) -> None:
    """Nothing of this process waits in spool ``root`` for ``uri`` any more."""
    _waiting_targets.discard((root, uri))


def waiting_targets() -> set[tuple[Path, str]]:
    """Every (spool, store) this process left runs in: what :func:`emstrack.flush` covers."""
    return set(_waiting_targets)


_ship_locks: dict[str, threading.Lock] = {}
_ship_locks_guard = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    with _ship_locks_guard:
        return _ship_locks.setdefault(key, threading.Lock())


def done_with(key: str) -> None:
    """Forget a run that reached its store: its registry entry and its shipping lock."""
    open_runs.discard(key)
    with _ship_locks_guard:
        _ship_locks.pop(key, None)


def ship(
    entry: SpoolEntry,
    state: ShipState,
    *,
    uri: str | None = None,
    replay: bool = False,
    create_only: bool = False,
) -> bool:
    """Send the entry's unshipped events; return whether the run's end has reached the store.

    ``uri`` overrides the store recorded in the entry (which carries no credentials).
    ``create_only`` creates the run (so it shows as RUNNING) and leaves the rest for later, so
    that a short run costs no more store calls than the fewest raw MLflow calls would. Raises
    whatever the store raised; ``state`` then still describes what did reach it.
    """
    with _lock_for(entry.key):
        if create_only and state.run_id is not None:
            return False
        events, offset = entry.read_events(state.offset)
        if not events and state.run_id is not None:
            return False
        start = entry.start_event()
        store = get_store(uri or start["uri"])
        store.ensure_available()
        if state.run_id is None:
            state.run_id = _open_run(store, entry, state, start, replay)
        if create_only:
            return False
        pending = UnsentRecords.gather(event for event in events if event["e"] != "start")
        store.log_batch(
            state.run_id,
            list(pending.params.items()),
            pending.metrics,
            list(pending.tags.items()),
        )
        if pending.datasets:
            store.log_inputs(state.run_id, pending.datasets)
        for kind, relative, artifact_dir in pending.files:
            local = entry.folder / relative
            if kind == "dir":
                store.log_artifacts(state.run_id, local, artifact_dir)
            else:
                store.log_artifact(state.run_id, local, artifact_dir)
        if pending.end is not None:
            store.terminate(state.run_id, pending.end["status"], pending.end["end_ms"])
        store.mark_up()
        state.offset = offset
        return pending.end is not None


def _open_run(store: Store, entry: SpoolEntry, state: ShipState, start: Event, replay: bool) -> str:
    experiment_id = store.experiment_id(start["experiment"])
    noted = bool(start.get(CREATES_NOTED))
    # Search the key tag only where a create_run may have reached the store without its answer
    # being kept. A noted run with no create attempted can only have been stored by a batch,
    # under its key as its id. The writer itself, before its first create_run, looks nothing up.
    by_tag = state.create_attempted or (replay and not noted)
    if by_tag or replay or noted:
        existing = store.find_run(experiment_id, entry.key, by_tag=by_tag)
        if existing is not None:
            return existing
    tags = {RUN_KEY_TAG: entry.key, **start.get("tags", {})}
    parent_key = start.get("parent")
    if parent_key:
        tags[PARENT_KEY_TAG] = parent_key
        parent_run_id = _parent_run_id(store, experiment_id, parent_key)
        if parent_run_id is not None:
            tags["mlflow.parentRunId"] = parent_run_id
    state.create_attempted = True
    if noted:
        _note_create(entry, state)
    return store.create_run(experiment_id, start.get("name"), start["start_ms"], tags)


def _note_create(entry: SpoolEntry, state: ShipState) -> None:
    """Save ``create_attempted`` before the create_run, as the entry's start event promises.

    A spool that cannot take it (a full disk) does not stop the delivery: the run's records
    reach the store. What is left is the entry's disk copy, which could then be delivered a
    second time if this process died between the create and the entry's removal.
    """
    with contextlib.suppress(OSError):
        entry.save_state(state)


def _parent_run_id(store: Store, experiment_id: str, parent_key: str) -> str | None:
    """The parent's MLflow id: known in this process, else shipped first, else looked up."""
    found = open_runs.get(parent_key)
    if found is not None:
        parent_entry, parent_state = found
        if parent_state.run_id is None:
            ship(parent_entry, parent_state, uri=store.uri)
        return parent_state.run_id
    return store.find_run(experiment_id, parent_key)


def shipped_run_id(key: str) -> str | None:
    """The MLflow id of a run open in this process, once it reached the store."""
    found = open_runs.get(key)
    return found[1].run_id if found is not None else None
