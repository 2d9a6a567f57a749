"""Replaying the spool into its stores (``emstrack sync``) and listing it (``emstrack status``)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import _settings
from . import background as _background
from .shipping import done_with, ship
from .spool import SpoolEntry, entries


@dataclass(frozen=True, slots=True)
class PendingRun:
    """A run in the spool that has not fully reached its store."""

    key: str
    """emstrack's run key (the ``emstrack.run_key`` tag)."""
    name: str | None
    experiment: str
    tracking_uri: str
    started: dt.datetime
    status: str | None
    """Final status, or ``None`` while the run is open or if its process died first."""
    in_progress: bool
    """Another process (or thread) still writes or ships it."""
    run_id: str | None
    """The MLflow run id, if part of it already reached the store."""
    folder: Path


@dataclass(slots=True)
class SyncReport:
    """What a :func:`sync` did."""

    sent: list[PendingRun] = field(default_factory=list)
    failed: list[tuple[PendingRun, str]] = field(default_factory=list)
    skipped: list[PendingRun] = field(default_factory=list)
    """Runs another process still writes; left alone."""


def _describe(entry: SpoolEntry, in_progress: bool) -> PendingRun:
    start = entry.start_event()
    events, _ = entry.read_events()
    end = next((event for event in reversed(events) if event["e"] == "end"), None)
    return PendingRun(
        key=entry.key,
        name=start.get("name"),
        experiment=start["experiment"],
        tracking_uri=start["uri"],
        started=dt.datetime.fromtimestamp(start["start_ms"] / 1000, tz=dt.UTC),
        status=end["status"] if end else None,
        in_progress=in_progress,
        run_id=entry.load_state().run_id,
        folder=entry.folder,
    )


def pending(spool_dir: str | Path | None = None) -> list[PendingRun]:
    """Runs waiting in the spool, oldest first."""
    root = Path(spool_dir) if spool_dir is not None else _settings.spool_dir()
    found = []
    for entry in entries(root):
        free = entry.acquire(timeout=0)
        try:
            found.append(_describe(entry, in_progress=not free))
        finally:
            if free:
                entry.release()
    return found


def sync(spool_dir: str | Path | None = None, *, tracking_uri: str | None = None) -> SyncReport:
    """Replay every run in the spool into its store, oldest first.

    Idempotent and resumable: a run already (partly) in the store is found by its run key and
    completed, never duplicated; metrics keep their original timestamps and runs their original
    start, end and status. A run whose process died before it ended is closed as ``KILLED``
    with the tag ``emstrack.incomplete=true``.

    Args:
        spool_dir: The spool to replay; default ``EMSTRACK_SPOOL_DIR`` or ``.emstrack/spool``.
        tracking_uri: Send every run here instead of the store it was logged for.

    """
    root = Path(spool_dir) if spool_dir is not None else _settings.spool_dir()
    report = SyncReport()
    for entry in _parents_first(list(entries(root))):
        if not entry.acquire(timeout=0):
            report.skipped.append(_describe(entry, in_progress=True))
            continue
        try:
            _close_if_abandoned(entry)
            described = _describe(entry, in_progress=False)
            state = entry.load_state()
            try:
                done = ship(entry, state, uri=tracking_uri, replay=True)
            except Exception as error:
                entry.save_state(state)
                report.failed.append((described, f"{type(error).__name__}: {error}"[:500]))
                continue
            if done:
                entry.remove()
                done_with(entry.key)
                report.sent.append(described)
            else:
                entry.save_state(state)
        finally:
            entry.release()
            entry.close()
    return report


def _parents_first(found: list[SpoolEntry]) -> list[SpoolEntry]:
    """``found`` in start order, except that a run waiting for its parent comes after it.

    A child replayed before its parent would not find it in the store and lose its link. Start
    times alone do not guarantee the order: parent and child often start in the same
    millisecond, and the wall clock can step back.
    """
    parents: dict[str, str | None] = {}
    for entry in found:
        try:
            parents[entry.key] = entry.start_event().get("parent")
        except (OSError, ValueError):
            parents[entry.key] = None

    def depth(key: str) -> int:
        levels, seen = 0, {key}
        parent = parents.get(key)
        while parent in parents and parent not in seen:
            levels, seen = levels + 1, seen | {parent}
            parent = parents.get(parent)
        return levels

    return sorted(found, key=lambda entry: depth(entry.key))


def _close_if_abandoned(entry: SpoolEntry) -> None:
    events, _ = entry.read_events()
    if any(event["e"] == "end" for event in events):
        return
    last_ms = max(
        [events[0]["start_ms"]]
        + [point[3] for event in events if event["e"] == "metrics" for point in event["metrics"]]
    )
    entry.append({"e": "tags", "tags": {"emstrack.incomplete": "true"}})
    entry.append({"e": "end", "status": "KILLED", "end_ms": last_ms})


def flush(timeout: float | None = None) -> bool:
    """Wait until this process's finished runs are in their stores; ``False`` if some are not.

    Covers every delivery mode: the background thread, this process's shipper processes, and
    finished runs of the same spool and store still waiting (handed to a shipper that has not
    reached them yet, or to one of a ``multiprocessing`` worker), which are delivered here or
    waited for while another process delivers them. Runs the store did not take stay in the
    spool (listed by :func:`pending`). Returns ``False`` when ``timeout`` seconds passed first
    or some runs stay in the spool; costs a folder listing when nothing waits.
    """
    return flush_for(None, timeout)


def flush_for(tracking_uri: str | None, timeout: float | None) -> bool:
    """:func:`flush`, also covering the spool's finished runs bound for ``tracking_uri``."""
    from . import courier as _courier
    from .orphans import sweep

    deadline = None if timeout is None else time.monotonic() + timeout

    def remaining() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    idle = _background.wait_idle(timeout)
    left = _courier.flush_all(remaining())
    targets = {(found.root, found.uri) for found in _courier.couriers()}
    targets.add((_settings.spool_dir(), _settings.tracking_uri(tracking_uri)))
    waiting = sweep(sorted(targets), remaining())
    return idle and not left and not waiting and not _background_parked()


def _background_parked() -> int:
    shipper = _background._shipper
    return shipper.pending() if shipper is not None else 0
