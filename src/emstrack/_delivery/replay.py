"""Replaying the spool into its stores (``emstrack sync``) and listing it (``emstrack status``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import _settings
from .._errors import describe
from .._uris import is_sql_uri
from . import background as _background
from .quiet import quiet
from .shipping import done_with, ship
from .spool import EVENTS_FILE, SpoolEntry, close_if_abandoned, entries
from .store import is_rejection, root_cause


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
    problem: str | None = None
    """Why (part of) the entry cannot be replayed: unreadable lines, no start event."""


@dataclass(slots=True)
class SyncReport:
    """What a :func:`sync` did."""

    sent: list[PendingRun] = field(default_factory=list)
    failed: list[tuple[PendingRun, str]] = field(default_factory=list)
    skipped: list[PendingRun] = field(default_factory=list)
    """Runs another process still writes; left alone."""
    quarantined: list[tuple[PendingRun, Path]] = field(default_factory=list)
    """Entries (or their unreadable lines) moved to ``quarantine/`` beside the spool."""


def _describe(entry: SpoolEntry, in_progress: bool) -> PendingRun:
    """What the entry holds, as far as it can be read; never raises."""
    started_ms = _leading_ms(entry.folder.name)
    try:
        start = entry.start_event()
    except (OSError, ValueError) as error:
        return PendingRun(
            key=entry.key,
            name=None,
            experiment="?",
            tracking_uri="?",
            started=dt.datetime.fromtimestamp(started_ms / 1000, tz=dt.UTC),
            status=None,
            in_progress=in_progress,
            run_id=None,
            folder=entry.folder,
            problem=None if in_progress else f"unreadable: {describe(error, with_type=False)}",
        )
    try:
        events, _ = entry.read_events()
    except OSError:
        events = []
    end = next((event for event in reversed(events) if event["e"] == "end"), None)
    problem = None
    if entry.unreadable:
        problem = f"{len(entry.unreadable)} unreadable line(s) in {EVENTS_FILE}"
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
        problem=problem,
    )


def _leading_ms(name: str) -> int:
    digits = name.partition("-")[0]
    return int(digits) if digits.isdigit() and len(digits) <= 15 else 0


def pending(spool_dir: str | Path | None = None) -> list[PendingRun]:
    """Runs waiting in the spool, oldest first (unreadable entries too, with their problem)."""
    root = Path(spool_dir) if spool_dir is not None else _settings.spool_dir()
    found = []
    for entry in entries(root):
        free = entry.acquire(timeout=0)
        if not free and not entry.exists():
            continue  # replayed and removed meanwhile
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
    with the tag ``emstrack.incomplete=true``. Safe to run in several processes at once: each
    entry is replayed by one of them.

    What cannot be replayed is moved to the ``quarantine/`` folder beside the spool and listed
    in :attr:`SyncReport.quarantined`: an entry without a readable start event, the unreadable
    lines of an entry (its readable events are replayed), and a run the store rejects for good
    (an invalid experiment name, an unsupported store URI), which would fail the same way on
    every attempt.

    Args:
        spool_dir: The spool to replay; default ``EMSTRACK_SPOOL_DIR`` or ``.emstrack/spool``.
        tracking_uri: Send every run here instead of the store it was logged for.

    """
    root = Path(spool_dir) if spool_dir is not None else _settings.spool_dir()
    report = SyncReport()
    with quiet():
        found = list(entries(root))
        sent = _sync_together(found, tracking_uri, report)
        for entry in _parents_first([entry for entry in found if entry.folder not in sent]):
            if not entry.acquire(timeout=0):
                if entry.exists():
                    report.skipped.append(_describe(entry, in_progress=True))
                continue
            try:
                _replay(entry, tracking_uri, report)
            finally:
                entry.release()
                entry.close()
    return report


def _sync_together(
    found: list[SpoolEntry], tracking_uri: str | None, report: SyncReport
) -> set[Path]:
    """Deliver the finished top-level runs in one transaction per store; return their folders.

    After an outage the spool holds many finished runs; one by one, each costs MLflow's five
    to seven sessions. What the batch does not take (an open or partly shipped run, a nested
    one, a run the store or MLflow's validators refuse, an HTTP store) is left to
    :func:`_replay`, with its errors, retries and quarantine.
    """
    from .batched import deliver_together
    from .orphans import Outcome, has_ended

    by_store: dict[str, list[SpoolEntry]] = {}
    for entry in found:
        try:
            start = entry.start_event()
        except (OSError, ValueError):
            continue
        uri = tracking_uri or start["uri"]
        if is_sql_uri(uri) and not start.get("parent") and has_ended(entry):
            by_store.setdefault(uri, []).append(entry)
    sent: set[Path] = set()
    for uri, group in by_store.items():
        described = {entry.folder: _describe(entry, in_progress=False) for entry in group}
        try:
            outcomes, _ = deliver_together(list(described), uri)
        except Exception:
            continue  # each run meets (and reports) the problem one by one
        for folder, outcome in outcomes.items():
            if outcome is Outcome.SENT:
                report.sent.append(described[folder])
                sent.add(folder)
    return sent


def _replay(entry: SpoolEntry, tracking_uri: str | None, report: SyncReport) -> None:
    try:
        entry.start_event()
    except (OSError, ValueError) as error:
        described = _describe(entry, in_progress=False)
        _quarantine(
            entry, described, f"cannot be replayed: {describe(error, with_type=False)}", report
        )
        return
    state = entry.load_state()
    try:
        close_if_abandoned(entry)
    except OSError as error:
        report.failed.append((_describe(entry, in_progress=False), describe(error)))
        return
    described = _describe(entry, in_progress=False)
    try:
        done = ship(entry, state, uri=tracking_uri, replay=True)
    except Exception as error:
        if is_rejection(error):
            reason = f"the store rejects this run for good: {root_cause(error)}"
            _quarantine(entry, described, reason, report)
            return
        with contextlib.suppress(OSError):
            entry.save_state(state)
        report.failed.append((described, root_cause(error)[:500]))
        return
    if done:
        if entry.unreadable:
            kept = entry.quarantine_lines(
                f"{len(entry.unreadable)} line(s) of {EVENTS_FILE} are not events; the rest "
                f"of run {entry.key} was replayed"
            )
            if kept is not None:
                report.quarantined.append((described, kept))
        entry.remove()
        done_with(entry.key)
        report.sent.append(described)
    else:
        entry.save_state(state)


def _quarantine(entry: SpoolEntry, described: PendingRun, reason: str, report: SyncReport) -> None:
    try:
        report.quarantined.append((described, entry.quarantine(reason)))
    except OSError as error:
        report.failed.append((described, f"{reason}; moving it to quarantine failed: {error}"))


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


def flush(timeout: float | None = None) -> bool:
    """Wait until this process's finished runs are in their stores; ``False`` if some are not.

    Covers every delivery mode: the background thread, this process's shipper processes, and
    finished runs of the same spool and store still waiting (handed to a shipper that has not
    reached them yet, or to one of a ``multiprocessing`` worker), which are delivered here or
    waited for while another process delivers them. Runs the store did not take stay in the
    spool (listed by :func:`pending`). Returns ``False`` when ``timeout`` seconds passed first
    or some runs stay in the spool; costs a folder listing when nothing waits.

    ``timeout`` defaults to ``EMSTRACK_FLUSH_TIMEOUT`` (60 s), the reads' own wait, so that a
    stuck deliverer in another process cannot hang the caller; ``math.inf`` waits for as long
    as it takes. Runs not delivered in time are not lost: they are still on their way.
    """
    if timeout is None:
        timeout = _settings.flush_timeout()
    return flush_for(None, None if timeout == math.inf else timeout)


def flush_for(tracking_uri: str | None, timeout: float | None) -> bool:
    """:func:`flush`, also covering the spool's finished runs bound for ``tracking_uri``."""
    from . import courier as _courier
    from .batched import sweep
    from .shipping import waiting_targets

    deadline = None if timeout is None else time.monotonic() + timeout

    def remaining() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    idle = _background.wait_idle(timeout)
    left = _courier.flush_all(remaining())
    targets = {(found.root, found.uri) for found in _courier.couriers()} | waiting_targets()
    targets.add((_settings.spool_dir(), _settings.tracking_uri(tracking_uri)))
    waiting = sweep(sorted(targets), remaining())
    return idle and not left and not waiting and not _background_parked()


def _background_parked() -> int:
    return _background.parked()
