"""Other processes holding a lock for the length of a ``with`` block: SQLite or a lock file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SQLITE_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute('BEGIN EXCLUSIVE')
print('held', flush=True)
sys.stdin.readline()
db.execute('ROLLBACK')
"""

_FILE_HOLDER = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1], thread_local=False)
lock.acquire()
print('held', flush=True)
sys.stdin.readline()
"""


@contextmanager
def _holding(script: str, path: Path) -> Iterator[subprocess.Popen[str]]:
    """Run ``script`` on ``path``; yield once it says it holds the lock; then release and reap."""
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        try:
            holder.communicate("release\n" if holder.poll() is None else None, timeout=30)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.communicate()


@contextmanager
def holding_sqlite_lock(database: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``BEGIN EXCLUSIVE`` on the SQLite ``database`` inside the block."""
    with _holding(_SQLITE_HOLDER, database) as holder:
        yield holder


@contextmanager
def holding_file_lock(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the ``filelock`` lock file ``path`` inside the block."""
    with _holding(_FILE_HOLDER, path) as holder:
        yield holder
