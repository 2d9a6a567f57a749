"""sync(), pending() and flush(): replaying the spool into the store."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import emstrack
from emstrack import tracked_run
from emstrack._delivery.spool import SpoolEntry
from helpers.locks import holding_file_lock
from helpers.servers import free_port, server_environment, spool_entries

CRASH = """
import os, signal, sys
import emstrack
with emstrack.tracked_run("crashed", experiment="crash", params={"a": 1}) as run:
    run.log_metrics({"m": 1.0}, step=0)
    run.log_metrics({"m": 2.0}, step=1)
    print(run.run_id or "-", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def crash_a_run(store, uri: str) -> str:
    """A process that dies by SIGKILL inside a tracked block; return the run id it printed."""
    env = {
        **server_environment(),
        "MLFLOW_TRACKING_URI": uri,
        "EMSTRACK_SPOOL_DIR": str(store.spool),
        "EMSTRACK_DELIVERY": "sync",  # the run is in the store (RUNNING) before the crash
    }
    result = subprocess.run(
        [sys.executable, "-c", CRASH],
        env=env,
        cwd=store.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -9, result.stderr
    return result.stdout.strip()


def spool_while_down(store, monkeypatch, *names: str) -> None:
    """Track runs while the store is unreachable, so they stay in the spool."""
    monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        for name in names:
            with tracked_run(name, experiment="synced") as run:
                run.log_metrics({"value": float(len(name))})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)


class TestReplay:
    def test_spooled_runs_reach_the_store(self, store, monkeypatch):
        """sync() sends every waiting run and empties the spool."""
        spool_while_down(store, monkeypatch, "one", "three")
        report = emstrack.sync(tracking_uri=store.uri)
        assert sorted(run.name for run in report.sent) == ["one", "three"]
        assert report.failed == []
        assert report.skipped == []
        assert store.spooled() == []
        metrics = {r.info.run_name: r.data.metrics["value"] for r in store.runs("synced")}
        assert metrics == {"one": 3.0, "three": 5.0}

    def test_failed_replay_keeps_the_run(self, store, monkeypatch):
        """A store still down: the run is reported failed and stays for the next sync."""
        spool_while_down(store, monkeypatch, "later")
        report = emstrack.sync(tracking_uri=f"http://127.0.0.1:{free_port()}")
        assert report.sent == []
        ((run, reason),) = report.failed
        assert run.name == "later"
        assert "unavailable" in reason
        assert len(store.spooled()) == 1
        assert emstrack.sync(tracking_uri=store.uri).sent[0].name == "later"

    def test_child_replayed_before_its_parent_still_links_to_it(self, store, monkeypatch):
        """A child whose folder sorts first (same millisecond, clock step) still gets its parent."""
        monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            with (
                tracked_run("parent", experiment="nested") as parent,
                tracked_run("child") as child,
            ):
                pass
        entries = spool_entries(store.spool)
        child_folder = entries[child.key]["folder"]
        parent_start = entries[parent.key]["start"]["start_ms"]
        child_folder.rename(child_folder.with_name(f"{parent_start - 1:013d}-{child.key}"))
        report = emstrack.sync(tracking_uri=store.uri)
        assert [run.name for run in report.sent] == ["parent", "child"]
        runs = {run.info.run_name: run for run in store.runs("nested")}
        assert runs["child"].data.tags["mlflow.parentRunId"] == runs["parent"].info.run_id


class TestLiveAndAbandoned:
    def test_entry_locked_by_a_live_writer_is_skipped(self, store, monkeypatch):
        """An entry whose lock another process holds is left alone and reported skipped."""
        spool_while_down(store, monkeypatch, "busy")
        (folder,) = store.spooled()
        with holding_file_lock(folder / ".lock"):
            (waiting,) = emstrack.pending()
            assert waiting.in_progress is True
            report = emstrack.sync(tracking_uri=store.uri)
            assert [run.name for run in report.skipped] == ["busy"]
            assert report.sent == []
            assert store.runs("synced") == []
        assert [run.name for run in emstrack.sync(tracking_uri=store.uri).sent] == ["busy"]

    def test_abandoned_run_is_completed_as_killed(self, store):
        """A process killed mid-run: sync finishes its run (same id) as KILLED, incomplete."""
        run_id = crash_a_run(store, store.uri)
        (entry,) = spool_entries(store.spool).values()
        assert entry["end"] is None
        (waiting,) = emstrack.pending()
        assert (waiting.name, waiting.status, waiting.in_progress) == ("crashed", None, False)
        running = store.runs("crash")
        assert [(r.info.run_id, r.info.status) for r in running] == [(run_id, "RUNNING")]
        report = emstrack.sync()
        assert [run.status for run in report.sent] == ["KILLED"]
        (run,) = store.runs("crash")
        assert run.info.run_id == run_id
        assert run.info.status == "KILLED"
        assert run.data.tags["emstrack.incomplete"] == "true"
        assert run.data.params == {"a": "1"}
        history = store.client.get_metric_history(run_id, "m")
        assert sorted((p.step, p.value) for p in history) == [(0, 1.0), (1, 2.0)]
        assert run.info.end_time == max(point[3] for point in entry["metrics"])
        assert store.spooled() == []

    def test_finished_runs_are_sent_together_beside_an_abandoned_one(self, store, monkeypatch):
        """A killed run and five finished ones: one sync stores each exactly once."""
        run_id = crash_a_run(store, store.uri)
        monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
        for index in range(5):
            with tracked_run(f"r{index}", experiment="crash", params={"i": index}) as run:
                run.log_metrics({"m": float(index)})
        assert len(store.spooled()) == 6

        report = emstrack.sync()

        assert sorted(run.name for run in report.sent) == ["crashed", "r0", "r1", "r2", "r3", "r4"]
        assert report.failed == []
        assert store.spooled() == []
        runs = {run.info.run_name: run for run in store.runs("crash")}
        assert len(runs) == 6
        assert (runs["crashed"].info.run_id, runs["crashed"].info.status) == (run_id, "KILLED")
        for index in range(5):
            finished = runs[f"r{index}"]
            assert finished.info.status == "FINISHED"
            assert finished.data.params == {"i": str(index)}
            assert finished.data.metrics == {"m": float(index)}
        assert emstrack.sync().sent == []
        assert len(store.runs("crash")) == 6

    def test_abandoned_run_with_a_torn_last_line(self, store):
        """A crash in the middle of writing an event: sync still closes and ships the run."""
        crash_a_run(store, f"http://127.0.0.1:{free_port()}")
        (folder,) = store.spooled()
        with open(folder / "run.jsonl", "ab") as handle:
            handle.write(b'{"e":"metrics","metrics":[["m",3.0,2,17')
        report = emstrack.sync(tracking_uri=store.uri)
        assert len(report.sent) == 1, report.failed
        (run,) = store.runs("crash")
        assert run.info.status == "KILLED"
        assert run.data.metrics == {"m": 2.0}
        assert store.spooled() == []


class TestPendingAndFlush:
    def test_pending_describes_waiting_runs(self, store, monkeypatch):
        """pending() lists waiting runs oldest first, with where they go and how they ended."""
        spool_while_down(store, monkeypatch, "first", "second")
        waiting = emstrack.pending()
        assert [run.name for run in waiting] == ["first", "second"]
        assert all(run.status == "FINISHED" and not run.in_progress for run in waiting)
        assert all(run.experiment == "synced" and run.run_id is None for run in waiting)
        assert all(run.tracking_uri.startswith("http://127.0.0.1:") for run in waiting)
        assert emstrack.pending(store.root / "elsewhere") == []

    def test_spool_dir_argument(self, store, monkeypatch, tmp_path):
        """sync(spool_dir) replays that spool, not the configured one."""
        spool_while_down(store, monkeypatch, "moved")
        moved = tmp_path / "moved-spool"
        store.spool.rename(moved)
        report = emstrack.sync(moved, tracking_uri=store.uri)
        assert [run.name for run in report.sent] == ["moved"]
        assert list(moved.iterdir()) == []

    def test_state_json_is_valid_after_a_failed_replay(self, store, monkeypatch):
        """A failed replay leaves a readable state.json behind for the next attempt."""
        spool_while_down(store, monkeypatch, "state")
        emstrack.sync(tracking_uri=f"http://127.0.0.1:{free_port()}")
        (folder,) = store.spooled()
        assert json.loads((folder / "state.json").read_text())["run_id"] is None
        assert SpoolEntry(folder).load_state().offset == 0
        emstrack.sync(tracking_uri=store.uri)
        assert store.spooled() == []

    def test_flush_is_a_no_op_in_synchronous_mode(self, store):
        """flush() returns True at once when nothing is shipped in the background."""
        assert emstrack.flush(timeout=0) is True
