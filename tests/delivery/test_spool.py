"""The write-ahead spool: one folder per run, events as JSON lines, atomic state, a lock."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from emstrack._delivery.spool import (
    ARTIFACTS_DIR,
    EVENTS_FILE,
    FORMAT_VERSION,
    STATE_FILE,
    ShipState,
    SpoolEntry,
    entries,
)
from helpers.locks import holding_file_lock


def start_event(key: str = "k" * 32, start_ms: int = 1_700_000_000_000) -> dict:
    return {
        "key": key,
        "uri": "sqlite:////nowhere/mlflow.db",
        "experiment": "Default",
        "name": "spooled",
        "parent": None,
        "start_ms": start_ms,
        "tags": {"emstrack.version": "test"},
    }


@pytest.fixture
def entry(tmp_path: Path):
    created = SpoolEntry.create(tmp_path / "spool", "k" * 32, start_event())
    yield created
    created.close()
    created.release()


class TestEvents:
    def test_folder_layout_and_start_event(self, entry, tmp_path):
        """An entry is <start-ms>-<key>/ with run.jsonl (the start event first); artifacts/
        is made with the first artifact."""
        assert entry.folder == tmp_path / "spool" / f"1700000000000-{'k' * 32}"
        assert entry.key == "k" * 32
        assert not (entry.folder / ARTIFACTS_DIR).exists()
        assert entry.store_bytes(b"{}", "config.json") == f"{ARTIFACTS_DIR}/1/config.json"
        assert (entry.folder / ARTIFACTS_DIR / "1" / "config.json").read_bytes() == b"{}"
        lines = (entry.folder / EVENTS_FILE).read_bytes().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0]) == {"e": "start", "v": FORMAT_VERSION, **start_event()}
        assert entry.start_event()["key"] == "k" * 32

    def test_each_event_is_one_ascii_line(self, entry):
        """Events are appended as single lines; non-ASCII text is escaped, not lost."""
        entry.append({"e": "params", "params": {"ort": "Zürich\n日本", "nul": "a\x00b"}})
        data = (entry.folder / EVENTS_FILE).read_bytes()
        data.decode("ascii")
        assert data.count(b"\n") == 2
        events, _ = entry.read_events()
        assert events[1]["params"] == {"ort": "Zürich\n日本", "nul": "a\x00b"}

    def test_reading_from_an_offset_returns_only_later_events(self, entry):
        """read_events(offset) resumes exactly where the last read stopped."""
        entry.append({"e": "tags", "tags": {"a": "1"}})
        first, offset = entry.read_events()
        assert [event["e"] for event in first] == ["start", "tags"]
        entry.append({"e": "tags", "tags": {"b": "2"}})
        later, end = entry.read_events(offset)
        assert later == [{"e": "tags", "tags": {"b": "2"}}]
        assert end == (entry.folder / EVENTS_FILE).stat().st_size
        assert entry.read_events(end) == ([], end)

    def test_torn_last_line_is_ignored(self, entry):
        """A last line without its newline (a crash mid-write) is never half-read."""
        entry.append({"e": "tags", "tags": {"a": "1"}})
        with open(entry.folder / EVENTS_FILE, "ab") as handle:
            handle.write(b'{"e":"metrics","metrics":[["x",1.0')
        events, offset = entry.read_events()
        assert [event["e"] for event in events] == ["start", "tags"]
        assert offset < (entry.folder / EVENTS_FILE).stat().st_size

    def test_appending_after_a_torn_line_keeps_the_file_readable(self, entry):
        """Reopened after a crash, the entry drops the torn tail before appending."""
        entry.append({"e": "tags", "tags": {"a": "1"}})
        entry.close()
        with open(entry.folder / EVENTS_FILE, "ab") as handle:
            handle.write(b'{"e":"metrics","metr')
        reopened = SpoolEntry(entry.folder)
        reopened.append({"e": "end", "status": "KILLED", "end_ms": 1})
        reopened.close()
        events, offset = reopened.read_events()
        assert [event["e"] for event in events] == ["start", "tags", "end"]
        assert offset == (entry.folder / EVENTS_FILE).stat().st_size

    def test_missing_events_file_reads_as_nothing(self, tmp_path):
        """A folder without run.jsonl has no events."""
        assert SpoolEntry(tmp_path / "0-gone").read_events(5) == ([], 5)


class TestState:
    def test_fresh_state_when_none_saved(self, entry):
        """Without state.json shipping starts from the beginning."""
        assert entry.load_state() == ShipState()

    def test_state_round_trips(self, entry):
        """save_state then load_state gives the same state."""
        state = ShipState(run_id="abc", offset=123, create_attempted=True)
        entry.save_state(state)
        assert entry.load_state() == state
        assert json.loads((entry.folder / STATE_FILE).read_text()) == {
            "run_id": "abc",
            "offset": 123,
            "create_attempted": True,
        }

    def test_state_is_replaced_atomically(self, entry):
        """state.json is a new file renamed over the old one; no temporary file is left."""
        entry.save_state(ShipState(run_id="one"))
        before = (entry.folder / STATE_FILE).stat().st_ino
        entry.save_state(ShipState(run_id="two"))
        assert (entry.folder / STATE_FILE).stat().st_ino != before
        assert entry.load_state().run_id == "two"
        assert sorted(p.name for p in entry.folder.iterdir()) == sorted(
            [EVENTS_FILE, STATE_FILE, ".lock"]
        )

    def test_failed_replace_keeps_the_old_state(self, entry, monkeypatch):
        """If the rename fails the old state stays whole and the temporary file goes."""
        entry.save_state(ShipState(run_id="old", offset=7))

        def refuse(*args: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", refuse)
        with pytest.raises(OSError, match="disk full"):
            entry.save_state(ShipState(run_id="new"))
        monkeypatch.undo()
        assert entry.load_state() == ShipState(run_id="old", offset=7)
        assert not [p for p in entry.folder.iterdir() if p.name.startswith(".tmp-")]

    def test_unreadable_state_means_start_over(self, entry):
        """A damaged state.json is treated as no state (replay finds the run by its key)."""
        (entry.folder / STATE_FILE).write_text("{not json")
        assert entry.load_state() == ShipState()


class TestLock:
    def test_writer_holds_the_lock_until_released(self, entry):
        """While a run is open nobody else can take its entry."""
        other = SpoolEntry(entry.folder)
        assert other.acquire(timeout=0) is False
        entry.release()
        assert other.acquire(timeout=0) is True
        other.release()

    def test_lock_of_a_process_that_died_is_free(self, entry):
        """A writer killed with SIGKILL leaves the entry free for sync."""
        entry.release()
        with holding_file_lock(entry.folder / ".lock") as holder:
            probe = SpoolEntry(entry.folder)
            assert probe.acquire(timeout=0) is False
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
            assert probe.acquire(timeout=0) is True
            probe.release()

    def test_release_without_lock_is_harmless(self, tmp_path):
        """Releasing an entry never locked does nothing."""
        SpoolEntry(tmp_path / "0-x").release()


class TestArtifacts:
    def test_files_bytes_and_trees_get_their_own_slots(self, entry, tmp_path):
        """Every stored artifact gets a new numbered slot; copies are taken at once."""
        source = tmp_path / "result.csv"
        source.write_text("before")
        tree = tmp_path / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "a.txt").write_text("a")
        first = entry.store_file(source, "result.csv")
        second = entry.store_bytes(b"bytes", "result.csv")
        third = entry.store_tree(tree)
        source.write_text("after")
        assert [first, second, third] == [
            f"{ARTIFACTS_DIR}/1/result.csv",
            f"{ARTIFACTS_DIR}/2/result.csv",
            f"{ARTIFACTS_DIR}/3",
        ]
        assert (entry.folder / first).read_text() == "before"
        assert (entry.folder / second).read_bytes() == b"bytes"
        assert (entry.folder / third / "sub" / "a.txt").read_text() == "a"

    def test_durable_then_removed(self, entry):
        """make_durable keeps everything; remove deletes the entry and frees its lock."""
        entry.store_bytes(b"x", "x.txt")
        entry.make_durable()
        assert (entry.folder / ARTIFACTS_DIR / "1" / "x.txt").read_bytes() == b"x"
        folder = entry.folder
        entry.remove()
        assert not folder.exists()


class TestEntries:
    def test_oldest_first_and_only_real_entries(self, tmp_path):
        """entries() lists run folders by start time and skips anything else."""
        root = tmp_path / "spool"
        late = SpoolEntry.create(root, "b" * 32, start_event("b" * 32, 1_700_000_000_002))
        early = SpoolEntry.create(root, "a" * 32, start_event("a" * 32, 1_700_000_000_001))
        (root / "stray-folder").mkdir()
        (root / "stray-file").write_text("x")
        for created in (late, early):
            created.close()
            created.release()
        assert [found.key for found in entries(root)] == ["a" * 32, "b" * 32]

    def test_missing_spool_has_no_entries(self, tmp_path):
        """A spool folder that does not exist yet is empty."""
        assert list(entries(tmp_path / "absent")) == []
