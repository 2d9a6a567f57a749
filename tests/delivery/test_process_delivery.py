"""The default delivery: a shipper process ships finished runs; reads and other processes see them.

Every test here runs in the default mode (``EMSTRACK_DELIVERY`` unset) and ends with no shipper
process left: each one must exit by itself once its pipeline process is gone.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import emstrack
from emstrack import analysis, tracked_optimization, tracked_run
from emstrack._delivery import courier as courier_module
from helpers.locks import holding_sqlite_lock
from helpers.servers import all_runs, server_environment, snapshot, spool_entries
from helpers.shippers import kill_shippers, shipper_processes, wait_for_shippers


@tracked_optimization(experiment="shipped")
def pipeline(building_id: str, n_days: int) -> dict[str, Any]:
    """A tiny pipeline with a scalar and a per-day series."""
    return {"cost": 1.5 * n_days, "daily": [float(day) for day in range(n_days)]}


@pytest.fixture
def default_mode(store, monkeypatch) -> Iterator[Any]:
    """The default delivery mode; afterwards every shipper of the test's spool has exited."""
    monkeypatch.delenv("EMSTRACK_DELIVERY")
    yield store
    assert courier_module.close_all(timeout=120)
    assert wait_for_shippers(store.spool) == []


def environment(store, **extra: str) -> dict[str, str]:
    """A subprocess's environment: the test's store and spool, the default delivery mode."""
    return {
        **server_environment(),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "MLFLOW_TRACKING_URI": store.uri,
        "EMSTRACK_SPOOL_DIR": str(store.spool),
        "EMSTRACK_STRICT": "1",
        "EMSTRACK_SHIPPER_LOG": str(store.root / "shipper.log"),
        **extra,
    }


@pytest.mark.parametrize(
    ("delivery", "background", "expected"),
    [
        (None, None, "process"),
        ("sync", None, "sync"),
        ("THREAD", None, "thread"),
        (" spool ", None, "spool"),
        ("bogus", None, "sync"),
        (None, "1", "thread"),
        ("process", "1", "thread"),
    ],
)
def test_delivery_mode_from_the_environment(monkeypatch, delivery, background, expected):
    """EMSTRACK_DELIVERY picks the mode; EMSTRACK_BACKGROUND=1 keeps meaning the thread."""
    from emstrack import _settings

    for name, value in (("EMSTRACK_DELIVERY", delivery), ("EMSTRACK_BACKGROUND", background)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert _settings.delivery() == expected


class TestInProcess:
    def test_read_right_after_a_call_sees_the_run(self, default_mode):
        """analysis.runs() right after the call: the run is there, shipped by another process."""
        assert pipeline("b1", 3) == {"cost": 4.5, "daily": [0.0, 1.0, 2.0]}
        (found,) = courier_module.couriers()
        assert found.pid is not None
        assert found.pid != os.getpid()
        frame = analysis.runs("shipped")
        assert len(frame) == 1
        row = frame.iloc[0]
        assert (row["status"], row["params.building_id"], row["metrics.cost"]) == (
            "FINISHED",
            "b1",
            4.5,
        )
        (run,) = default_mode.runs("shipped")
        history = default_mode.client.get_metric_history(run.info.run_id, "daily")
        assert sorted((m.step, m.value) for m in history) == [(0, 0.0), (1, 1.0), (2, 2.0)]
        assert default_mode.spooled() == []

    def test_flush_reports_nothing_pending_and_is_cheap_when_idle(self, default_mode):
        """flush() is True after delivery, and True at once when nothing was handed over."""
        for day in range(3):
            pipeline(f"b{day}", day + 1)
        assert emstrack.flush(timeout=120) is True
        assert len(default_mode.runs("shipped")) == 3
        assert emstrack.flush(timeout=0) is True

    def test_run_flush_gives_the_run_id_and_the_shipper_completes_the_run(self, default_mode):
        """run.flush() ships what is logged so far; the shipper adds the rest to the same run."""
        with tracked_run("handle", experiment="shipped") as run:
            run.log_metrics({"early": 1.0})
            run.flush()
            run_id = run.run_id
            assert run_id is not None
            run.log_metrics({"late": 2.0})
        assert emstrack.flush(timeout=120) is True
        (stored,) = default_mode.runs("shipped")
        assert stored.info.run_id == run_id
        assert stored.info.status == "FINISHED"
        assert stored.data.metrics == {"early": 1.0, "late": 2.0}

    def test_child_of_an_open_parent_links_to_it(self, default_mode):
        """A child shipped while its parent is open: the parent's run is created for it, once."""
        with tracked_run("sweep", experiment="shipped") as parent:
            pipeline("b1", 1)
            assert emstrack.flush(timeout=120) is True
            (child,) = default_mode.runs(
                "shipped", filter_string="attributes.run_name = 'pipeline'"
            )
            (running,) = default_mode.runs("shipped", filter_string="attributes.status = 'RUNNING'")
            assert running.info.run_name == "sweep"
            assert child.data.tags["mlflow.parentRunId"] == running.info.run_id
            parent.log_metrics({"best": 1.5})
        assert emstrack.flush(timeout=120) is True
        runs = {run.info.run_name: run for run in default_mode.runs("shipped")}
        assert sorted(runs) == ["pipeline", "sweep"]
        assert runs["sweep"].info.run_id == running.info.run_id
        assert runs["sweep"].info.status == "FINISHED"
        assert runs["sweep"].data.metrics == {"best": 1.5}


# --------------------------------------------------------------------------- other processes

TRACKED_CALL = """
import pathlib, sys
import emstrack

@emstrack.tracked_optimization(experiment=sys.argv[1], artifacts=["{output}"])
def optimize(building_id: str, n_days: int, output: str) -> dict:
    pathlib.Path(output).write_text(f"schedule of {building_id}\\n")
    return {"cost": 2.5 * n_days, "daily": [0.5 * day for day in range(n_days)], "label": "ok"}

sys.stdin.readline()  # released by the test
optimize(sys.argv[2], int(sys.argv[3]), sys.argv[4])
print("returned", flush=True)
if sys.argv[5] == "wait":
    sys.stdin.readline()  # killed here
else:
    if emstrack.flush(timeout=300):
        print("flushed", flush=True)
    else:
        print("pending", [(r.name, r.status, r.in_progress) for r in emstrack.pending()])
        print(emstrack.sync().failed, flush=True)
"""


def start_call(
    store, experiment: str, building: str, days: int, then: str
) -> subprocess.Popen[str]:
    """A process that makes one tracked call once its stdin gets a line."""
    output = store.root / f"{building}.txt"
    return subprocess.Popen(
        [sys.executable, "-c", TRACKED_CALL, experiment, building, str(days), str(output), then],
        env=environment(store),
        cwd=store.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    """Release a started call, let it end, return its output."""
    out, err = process.communicate("go\n", timeout=300)
    assert process.returncode == 0, err
    log = Path(process.args[-2]).parent / "shipper.log"  # type: ignore[index]
    assert "flushed" in out, (out, log.read_text() if log.exists() else "")
    return out


def orphan_a_run(store) -> dict[str, Any]:
    """A process SIGKILLed (with its shipper) right after a tracked call returned.

    The store is held locked meanwhile, so nothing of the run can reach it: the run is left in
    the spool for the next process. Returns its spool entry.
    """
    with holding_sqlite_lock(store.path):
        victim = start_call(store, "orphan", "victim", 4, then="wait")
        assert victim.stdin is not None
        assert victim.stdout is not None
        victim.stdin.write("go\n")
        victim.stdin.flush()
        assert victim.stdout.readline().strip() == "returned"
        kill_shippers(store.spool)
        victim.kill()
        victim.communicate(timeout=60)
        assert victim.returncode == -9
    (entry,) = spool_entries(store.spool).values()
    assert entry["end"] is not None
    assert entry["end"]["status"] == "FINISHED"
    assert all_runs(store.uri, "orphan") == []
    return entry


def assert_orphan_delivered_once(store, entry: dict[str, Any]) -> None:
    """The orphaned run is in the store exactly once, value by value as it was spooled."""
    (run,) = all_runs(store.uri, "orphan")
    assert run.data.tags["emstrack.run_key"] == entry["start"]["key"]
    got = snapshot(store.uri, run.info.run_id, store.root / "snapshots")
    assert got["status"] == "FINISHED"
    assert (got["start_time"], got["end_time"]) == (
        entry["start"]["start_ms"],
        entry["end"]["end_ms"],
    )
    assert got["params"] == {
        "building_id": "victim",
        "n_days": "4",
        "output": str(store.root / "victim.txt"),
    }
    assert got["metrics"] == {
        "cost": [(0, 10.0, entry["metrics"][0][3])],
        "daily": [(step, 0.5 * step, entry["metrics"][0][3]) for step in range(4)],
    }
    assert got["tags"]["label"] == "ok"
    assert got["artifacts"]["victim.txt"] == b"schedule of victim\n"
    config = json.loads(got["artifacts"]["config.json"])
    assert config["inputs"]["building_id"] == "victim"


class TestOrphans:
    @pytest.mark.slow  # ~20-60 s: in the slow suite (CI runs it), keeping the default under 10 min
    def test_next_process_delivers_a_killed_processs_run_exactly_once(self, default_mode):
        """SIGKILL right after the call returned: the next writing process delivers it, once."""
        entry = orphan_a_run(default_mode)
        assert finish(start_call(default_mode, "next", "next", 1, then="flush")).split() == [
            "returned",
            "flushed",
        ]
        assert wait_for_shippers(default_mode.spool) == []
        assert_orphan_delivered_once(default_mode, entry)
        assert [run.data.params["building_id"] for run in all_runs(default_mode.uri, "next")] == [
            "next"
        ]
        assert default_mode.spooled() == []

    @pytest.mark.slow  # ~20-60 s: in the slow suite (CI runs it), keeping the default under 10 min
    def test_two_processes_starting_together_deliver_it_once(self, default_mode):
        """Two processes released at the same moment on an orphaned spool: one delivery."""
        entry = orphan_a_run(default_mode)
        first = start_call(default_mode, "next", "first", 1, then="flush")
        second = start_call(default_mode, "next", "second", 1, then="flush")
        for process in (first, second):
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [finish(process) for process in (first, second)]
        assert all(output.split() == ["returned", "flushed"] for output in outputs)
        assert wait_for_shippers(default_mode.spool) == []
        assert_orphan_delivered_once(default_mode, entry)
        names = sorted(run.data.params["building_id"] for run in all_runs(default_mode.uri, "next"))
        assert names == ["first", "second"]
        assert default_mode.spooled() == []

    def test_runs_of_a_process_that_exits_at_once_are_delivered(self, default_mode):
        """A process ends right after its calls: its shipper finishes the job, then exits."""
        script = (
            "import emstrack\n"
            "@emstrack.tracked_optimization(experiment='quick')\n"
            "def f(i: int) -> dict:\n"
            "    return {'i': float(i)}\n"
            "for i in range(5):\n"
            "    f(i)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=environment(default_mode),
            cwd=default_mode.root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert wait_for_shippers(default_mode.spool) == []
        runs = all_runs(default_mode.uri, "quick")
        assert sorted(run.data.metrics["i"] for run in runs) == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert default_mode.spooled() == []


# --------------------------------------------------------------------------- multiprocessing

POOL_CALLS = 6


@tracked_optimization(experiment="pool")
def pooled(index: int) -> dict[str, float]:
    """A pipeline run by pool workers."""
    return {"index": float(index), "square": float(index * index)}


def pooled_call(index: int) -> dict[str, float]:
    """What a pool runs: a plain function calling the tracked one (a decorated one won't pickle)."""
    result: dict[str, float] = pooled(index)
    return result


@pytest.mark.parametrize("method", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
@pytest.mark.parametrize("ending", ["with", "close-join"])
def test_pool_workers_runs_are_delivered(default_mode, method: str, ending: str) -> None:
    """multiprocessing.Pool workers (which skip exit handlers): every run reaches the store."""
    context = multiprocessing.get_context(method)
    if ending == "with":
        with context.Pool(2) as pool:
            results = pool.map(pooled_call, range(POOL_CALLS))
    else:
        pool = context.Pool(2)
        results = pool.map(pooled_call, range(POOL_CALLS))
        pool.close()
        pool.join()
    assert results == [{"index": float(i), "square": float(i * i)} for i in range(POOL_CALLS)]
    assert emstrack.flush(timeout=300) is True
    runs = default_mode.runs("pool")
    assert sorted(run.data.metrics["index"] for run in runs) == [
        float(i) for i in range(POOL_CALLS)
    ]
    assert len({run.data.tags["emstrack.run_key"] for run in runs}) == POOL_CALLS
    assert default_mode.spooled() == []
    assert wait_for_shippers(default_mode.spool) == []
    assert shipper_processes(default_mode.spool) == []
