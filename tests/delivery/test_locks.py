"""The spool's entry lock: exclusive across objects, processes and FileLock on the same file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from filelock import FileLock, Timeout

from emstrack._delivery.locks import EntryLock


def test_a_held_lock_is_not_taken_by_another_object_until_released(tmp_path):
    path = tmp_path / ".lock"
    first, second = EntryLock(path), EntryLock(path)
    assert first.acquire(0)
    assert first.is_locked
    assert first.acquire(0)  # taking a lock it holds is a no-op
    assert not second.acquire(0)
    assert not second.is_locked
    first.release()
    assert not first.is_locked
    assert second.acquire(0)
    second.release()
    second.release()  # releasing twice is harmless


def test_it_and_filelock_exclude_each_other(tmp_path):
    path = tmp_path / ".lock"
    ours, theirs = EntryLock(path), FileLock(path, thread_local=False)
    assert ours.acquire(0)
    with pytest.raises(Timeout):
        theirs.acquire(timeout=0)
    ours.release()
    theirs.acquire(timeout=0)
    assert not ours.acquire(0)
    theirs.release(force=True)
    with ours:
        assert ours.is_locked
    assert not ours.is_locked


def test_a_lock_held_by_another_process_is_waited_for(tmp_path):
    path = tmp_path / ".lock"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from emstrack._delivery.locks import EntryLock
                lock = EntryLock(__import__("pathlib").Path({str(path)!r}))
                assert lock.acquire(0)
                print("held", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        lock = EntryLock(path)
        assert not lock.acquire(0)
        assert not lock.acquire(0.1)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert lock.acquire(60)  # taken once the holder exits
        lock.release()


def test_a_lock_in_a_deleted_folder_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        EntryLock(tmp_path / "gone" / ".lock").acquire(0)


def test_a_lock_knows_when_its_file_was_deleted_or_replaced(tmp_path):
    path = tmp_path / ".lock"
    lock = EntryLock(path)
    assert not lock.holds_current_file()  # not held
    assert lock.acquire(0)
    assert lock.is_flock
    assert lock.holds_current_file()
    path.unlink()
    assert not lock.holds_current_file()
    path.write_text("")  # a new file at the same path: another lock may hold it now
    assert not lock.holds_current_file()
    other = EntryLock(path)
    assert other.acquire(0)  # the deleted file's lock does not exclude the new file's
    assert other.holds_current_file()
    other.release()
    lock.release()
