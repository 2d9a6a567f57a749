"""Scenarios that sweeps running now on this machine hold, so that a second sweep skips them.

A local sweep's runs reach the store only as they finish. Two sweeps of one grid started side
by side would therefore both run every scenario the store does not have FINISHED yet, and the
second's runs would be superseded at the end: the store stays right, the work is done twice.

So a sweep *claims* the scenarios it plans to run, in a claim file it holds an ``flock`` on for
as long as it runs, in one folder per store and experiment under the user's temp folder::

    <temp>/emstrack-sweeps-<uid>/<digest of store and experiment id>/
        .planning.lock     held while a sweep reads the claims, plans and writes its own
        <sweep id>.claim   the sweep's pid and scenario keys (JSON), locked by it

A sweep plans under ``.planning.lock``: it reads the live claims of the others and leaves their
scenarios to them. A claim nobody holds the lock of belongs to a sweep that died (the lock went
with its process): it is removed, and its scenarios are planned as usual. The last sweep out
removes the folder, and each sweep's planning also removes what dead sweeps left on other
stores. Whoever locks ``.planning.lock`` checks that the file is still the one at its path, so
a sweep that waited on a file the last one deleted takes the new one instead.

Only sweeps on this machine see each other's claims: two machines sweeping one grid into a
shared server both run it (and the later runs are superseded). Claims are a saving, not a
safeguard: a claim that cannot be written or read (a read-only temp folder) is a warning, and
the sweep plans as if no one else ran.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .._delivery.locks import EntryLock
from .._errors import EmstrackWarning, describe
from .._settings import user_temp_folder
from .._uris import redact_uri, sqlite_path

PLANNING_LOCK = ".planning.lock"
CLAIM_SUFFIX = ".claim"


@dataclass(frozen=True)
class Claim:
    """What another sweep running on this machine holds."""

    pid: int
    keys: frozenset[str]


def claims_folder(uri: str, experiment_id: str) -> Path:
    """The folder of the claims on ``uri``'s experiment ``experiment_id``, on this machine."""
    database = sqlite_path(uri)
    store = f"sqlite:{database.resolve()}" if database is not None else redact_uri(uri)
    digest = hashlib.sha256(f"{store}\0{experiment_id}".encode()).hexdigest()[:24]
    return user_temp_folder("sweeps") / digest


class Claims:
    """A sweep's view of the claims on one store's experiment; its own claim once it holds one.

    Use :meth:`planning` around reading the store and planning, and :meth:`hold` inside it;
    :meth:`release` when the sweep's runs are delivered.
    """

    def __init__(self, folder: Path, sweep_id: str) -> None:
        self.folder = folder
        self.sweep_id = sweep_id
        self._own: EntryLock | None = None
        self._planned_without = False
        """The claims could not be read (warned): none is written either."""

    @contextlib.contextmanager
    def planning(self) -> Iterator[dict[str, Claim]]:
        """Hold the folder's planning lock; yield the other live sweeps' claims, by key.

        Gives an empty mapping (and warns) if the claims cannot be read.
        """
        try:
            lock = _lock_planning(self.folder)
        except OSError as error:
            _warn("read the scenarios other sweeps on this machine run", error)
            self._planned_without = True
            yield {}
            return
        try:
            yield _live_claims(self.folder)
        finally:
            _let_go(self.folder, lock)
        _collect_stale(self.folder)

    def hold(self, keys: Iterable[str]) -> None:
        """Claim ``keys`` for this sweep (call inside :meth:`planning`)."""
        if self._planned_without:
            return
        path = self.folder / f"{self.sweep_id}{CLAIM_SUFFIX}"
        own = EntryLock(path)
        text = json.dumps({"pid": os.getpid(), "keys": sorted(keys)})
        try:
            if not own.acquire(0):
                return  # not ours (a sweep id is a fresh uuid): claim nothing
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            own.release()
            with contextlib.suppress(OSError):
                path.unlink()
            _warn("claim its scenarios", error)
            return
        self._own = own

    def release(self) -> None:
        """Drop this sweep's claim; the last sweep out removes the folder (with ``flock``)."""
        if self._own is None:
            return
        own, self._own = self._own, None
        try:
            lock = _lock_planning(self.folder)
        except OSError:
            # No planning lock: delete nothing another sweep might be reading. The claim's own
            # lock goes with this process anyway, which makes the claim stale.
            own.release()
            return
        with contextlib.suppress(OSError):
            own.path.unlink()
        own.release()
        _let_go(self.folder, lock)


def _lock_planning(folder: Path) -> EntryLock:
    """The folder's planning lock, taken (waits for the sweep planning now, if any)."""
    while True:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_owner(folder.parent)
        lock = EntryLock(folder / PLANNING_LOCK)
        try:
            lock.acquire(-1)
        except FileNotFoundError:
            continue  # the last sweep out removed the folder meanwhile
        if lock.holds_current_file():
            return lock
        lock.release()  # the last sweep out deleted the file this one waited on


def _let_go(folder: Path, planning: EntryLock) -> None:
    """Let the planning lock go; with no claim left, remove it and the folder first."""
    try:
        if planning.is_flock and not any(folder.glob(f"*{CLAIM_SUFFIX}")):
            with contextlib.suppress(OSError):
                planning.path.unlink()  # held: a sweep waiting on it will find it replaced
    finally:
        planning.release()
    with contextlib.suppress(OSError):
        folder.rmdir()  # fails when another sweep created its lock meanwhile


def _collect_stale(folder: Path) -> None:
    """Remove the claims of dead sweeps on other stores, and their folders, when free now.

    A sweep killed on a store nobody sweeps again would leave its claim in the temp folder.
    """
    with contextlib.suppress(OSError):
        for other in folder.parent.iterdir():
            if other == folder or not other.is_dir():
                continue
            lock = EntryLock(other / PLANNING_LOCK)
            try:
                taken = lock.acquire(0)
            except OSError:
                continue  # gone meanwhile, or not a folder this user may write
            if not taken:
                continue  # a sweep plans there now
            if not lock.holds_current_file():
                lock.release()
                continue
            _live_claims(other, read=False)  # removes the dead sweeps' claims
            _let_go(other, lock)


def _check_owner(root: Path) -> None:
    """Refuse a claims root another user made: their claims would hold this user's scenarios."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return
    owner = root.stat().st_uid
    if owner != getuid():
        raise PermissionError(f"{root} belongs to another user (uid {owner})")


def _live_claims(folder: Path, *, read: bool = True) -> dict[str, Claim]:
    """The claims in ``folder`` whose sweep lives (read if ``read``); removes the others."""
    found: dict[str, Claim] = {}
    for path in sorted(folder.glob(f"*{CLAIM_SUFFIX}")):
        probe = EntryLock(path)
        try:
            stale = probe.acquire(0)
        except OSError:
            continue
        if stale:  # no process holds it: its sweep died
            with contextlib.suppress(OSError):
                path.unlink()
            probe.release()
            continue
        claim = _read_claim(path) if read else None
        if claim is not None:
            found.update(dict.fromkeys(claim.keys, claim))
    return found


def _read_claim(path: Path) -> Claim | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Claim(pid=int(data["pid"]), keys=frozenset(str(key) for key in data["keys"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not a claim emstrack wrote: it holds nothing


def _warn(what: str, error: OSError) -> None:
    warnings.warn(
        f"emstrack: this sweep could not {what} ({describe(error)}): a sweep of the same "
        "grid running on this machine at the same time would run them too",
        EmstrackWarning,
        stacklevel=4,
    )
