"""ship(): the one path from a spool entry to MLflow, incremental and idempotent."""

from __future__ import annotations

import uuid

import pytest

from emstrack import StoreUnavailableError
from emstrack._delivery.shipping import UnsentRecords, ship
from emstrack._delivery.spool import ShipState, SpoolEntry, now_ms
from helpers.servers import free_port


def make_entry(store, *, experiment="writer", parent=None, name="shipped", uri=None):
    key = uuid.uuid4().hex
    start = {
        "key": key,
        "uri": uri or store.uri,
        "experiment": experiment,
        "name": name,
        "parent": parent,
        "start_ms": now_ms(),
        "tags": {"emstrack.version": "test", "mlflow.source.type": "LOCAL"},
    }
    return SpoolEntry.create(store.spool, key, start)


def fill(entry, *, ts=1_700_000_000_000, end=True, tmp_path=None):
    entry.append({"e": "params", "params": {"alpha": "0.5", "mode": "cost"}})
    entry.append(
        {
            "e": "metrics",
            "metrics": [["cost", 1.5, 0, ts], ["cost", 2.5, 1, ts + 1], ["ok", 1.0, 0, ts]],
        }
    )
    entry.append({"e": "tags", "tags": {"solver": "highs"}})
    stored = entry.store_bytes(b"hour,kw\n0,1\n", "schedule.csv")
    entry.append({"e": "artifact", "file": stored, "dir": "plans"})
    if end:
        entry.append({"e": "end", "status": "FINISHED", "end_ms": ts + 5})


def contents(store, run_id):
    client = store.client
    run = client.get_run(run_id)
    history = {
        key: sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }
    return run.info.status, run.info.end_time, dict(run.data.params), dict(run.data.tags), history


@pytest.fixture
def entry(store):
    created = make_entry(store)
    yield created
    created.close()
    created.release()


class TestGather:
    def test_pending_events_are_merged(self):
        """First param value wins, metrics add up, the last tag value wins, files keep order."""
        pending = UnsentRecords.gather(
            [
                {"e": "params", "params": {"a": "1"}},
                {"e": "params", "params": {"a": "2", "b": "3"}},
                {"e": "metrics", "metrics": [["m", 1.0, 0, 5]]},
                {"e": "metrics", "metrics": [["m", 2.0, 1, 6]]},
                {"e": "tags", "tags": {"t": "x"}},
                {"e": "tags", "tags": {"t": "y"}},
                {"e": "artifact", "file": "artifacts/1/a", "dir": None},
                {"e": "artifact_dir", "folder": "artifacts/2", "dir": "d"},
                {"e": "end", "status": "FAILED", "end_ms": 9},
            ]
        )
        assert pending.params == {"a": "1", "b": "3"}
        assert pending.metrics == [("m", 1.0, 0, 5), ("m", 2.0, 1, 6)]
        assert pending.tags == {"t": "y"}
        assert pending.files == [("file", "artifacts/1/a", None), ("dir", "artifacts/2", "d")]
        assert pending.end == {"e": "end", "status": "FAILED", "end_ms": 9}


class TestShip:
    def test_a_complete_entry_becomes_one_run(self, store, entry):
        """Params, metrics with steps and timestamps, tags, artifacts, status and end time."""
        fill(entry)
        state = ShipState()
        assert ship(entry, state) is True
        status, end, params, tags, history = contents(store, state.run_id)
        assert status == "FINISHED"
        assert end == 1_700_000_000_005
        assert params == {"alpha": "0.5", "mode": "cost"}
        assert tags["solver"] == "highs"
        assert tags["emstrack.run_key"] == entry.key
        assert history == {
            "cost": [(0, 1.5, 1_700_000_000_000), (1, 2.5, 1_700_000_000_001)],
            "ok": [(0, 1.0, 1_700_000_000_000)],
        }
        artifact = store.artifact_root(state.run_id) / "plans" / "schedule.csv"
        assert artifact.read_bytes() == b"hour,kw\n0,1\n"
        assert state.offset == (entry.folder / "run.jsonl").stat().st_size

    def test_shipping_twice_makes_no_duplicates(self, store, entry):
        """The same entry shipped again with no saved state finds its run and adds nothing."""
        fill(entry)
        first = ShipState()
        ship(entry, first)
        before = contents(store, first.run_id)
        again = ShipState()
        assert ship(entry, again, replay=True) is True
        assert again.run_id == first.run_id
        assert contents(store, first.run_id) == before
        assert len(store.runs("writer")) == 1

    def test_a_create_that_may_have_happened_is_looked_up(self, store, entry):
        """After a create_run whose answer was lost, the next attempt finds the run by its key."""
        fill(entry)
        first = ShipState()
        ship(entry, first)
        retry = ShipState(create_attempted=True)
        ship(entry, retry)
        assert retry.run_id == first.run_id
        assert len(store.runs("writer")) == 1

    def test_incremental_shipping_sends_only_new_events(self, store, entry):
        """A flush mid-run ships what is there; the end ships the rest, nothing twice."""
        fill(entry, end=False)
        state = ShipState()
        assert ship(entry, state) is False
        assert contents(store, state.run_id)[0] == "RUNNING"
        entry.append({"e": "metrics", "metrics": [["cost", 3.5, 2, 1_700_000_000_002]]})
        entry.append({"e": "end", "status": "FAILED", "end_ms": 1_700_000_000_009})
        assert ship(entry, state) is True
        status, end, _, _, history = contents(store, state.run_id)
        assert (status, end) == ("FAILED", 1_700_000_000_009)
        assert [step for step, _, _ in history["cost"]] == [0, 1, 2]

    def test_create_only_creates_a_running_run_with_start_tags(self, store, entry):
        """create_only makes the run visible as RUNNING and sends nothing else."""
        fill(entry)
        state = ShipState()
        assert ship(entry, state, create_only=True) is False
        status, _, params, tags, history = contents(store, state.run_id)
        assert status == "RUNNING"
        assert params == {}
        assert history == {}
        assert tags["emstrack.version"] == "test"
        assert state.offset == 0
        assert ship(entry, state) is True

    def test_child_finds_its_parent_by_key(self, store):
        """A child shipped in another process links to its parent found by run key."""
        parent = make_entry(store, name="parent")
        parent.append({"e": "end", "status": "FINISHED", "end_ms": now_ms()})
        parent_state = ShipState()
        ship(parent, parent_state)
        child = make_entry(store, name="child", parent=parent.key)
        child.append({"e": "end", "status": "FINISHED", "end_ms": now_ms()})
        child_state = ShipState()
        ship(child, child_state)
        tags = contents(store, child_state.run_id)[3]
        assert tags["mlflow.parentRunId"] == parent_state.run_id
        assert tags["emstrack.parent_key"] == parent.key
        for created in (parent, child):
            created.close()
            created.release()

    def test_unreachable_store_changes_no_state(self, store):
        """An outage raises StoreUnavailableError and leaves the state as it was."""
        entry = make_entry(store, uri=f"http://127.0.0.1:{free_port()}")
        fill(entry)
        state = ShipState()
        with pytest.raises(StoreUnavailableError):
            ship(entry, state)
        assert state == ShipState()
        entry.close()
        entry.release()

    def test_uri_argument_overrides_the_recorded_store(self, store):
        """ship(uri=...) sends the run to another store than the one in the entry."""
        entry = make_entry(store, uri="http://127.0.0.1:9")
        fill(entry)
        state = ShipState()
        assert ship(entry, state, uri=store.uri) is True
        assert contents(store, state.run_id)[0] == "FINISHED"
        entry.close()
        entry.release()
