"""The exclusive lock on a spool entry's lock file: ``flock`` itself where the platform has it.

Every run takes its entry's lock when it opens, and every deliverer takes it (and the entry's
create lock) before writing the run to the store. ``filelock.FileLock`` costs about 0.17 ms an
acquisition (its soft-lock fallback and fork bookkeeping), ten times a bare ``flock``; a sweep
pays it three times a run. On POSIX this takes the same ``flock`` FileLock would, on the same
file, so both kinds of lock exclude each other; elsewhere, or on a file system without
``flock``, it is FileLock.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

POLL_S = 0.05
"""How often a waiting acquisition tries again (FileLock's default)."""
_CONTENDED = frozenset({errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK})


class EntryLock:
    """An exclusive lock on ``path``, held by this object until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._fallback: FileLock | None = None if fcntl is not None else self._file_lock()

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock."""
        if self._fallback is not None:
            return self._fallback.is_locked
        return self._fd is not None

    def acquire(self, timeout: float) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds (for ever if negative).

        Returns whether it was taken; raises ``OSError`` if the lock file cannot be opened
        (its folder was deleted, say). Taking a lock this object holds is a no-op.
        """
        if self.is_locked:
            return True
        if self._fallback is not None:
            return self._acquire_fallback(timeout)
        deadline = None if timeout < 0 else time.monotonic() + timeout
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while not self._try(fd):
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(POLL_S)
        except _NoFlock:
            os.close(fd)
            self._fallback = self._file_lock()
            return self._acquire_fallback(timeout)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the lock go (nothing happens if this object does not hold it)."""
        if self._fallback is not None:
            if self._fallback.is_locked:
                self._fallback.release(force=True)
            return
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    @property
    def is_flock(self) -> bool:
        """Whether this object holds a bare ``flock`` (which :meth:`holds_current_file` checks)."""
        return self._fd is not None

    def holds_current_file(self) -> bool:
        """Whether the file this lock holds is still the one at :attr:`path`.

        ``False`` once someone deleted (and perhaps created again) the file while this object
        waited on it or held it. With FileLock (no ``flock``): ``True`` while held.
        """
        if self._fd is None:
            return self._fallback is not None and self._fallback.is_locked
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(self._fd)
        return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)

    def __enter__(self) -> EntryLock:
        self.acquire(-1)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    @staticmethod
    def _try(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in _CONTENDED:
                return False
            if error.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
                raise _NoFlock from error
            raise
        return True

    def _file_lock(self) -> FileLock:
        return FileLock(self.path, thread_local=False)

    def _acquire_fallback(self, timeout: float) -> bool:
        assert self._fallback is not None
        try:
            self._fallback.acquire(timeout=timeout)
        except Timeout:
            return False
        return True


class _NoFlock(Exception):
    """The file system does not support ``flock``."""
