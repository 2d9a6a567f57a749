"""Background mode: the pipeline only appends to the spool; a thread ships; exit drains."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

import emstrack
from emstrack import tracked_optimization
from emstrack._delivery import store as store_module
from emstrack._delivery.background import shipper
from emstrack._delivery.store import get_store
from helpers.locks import holding_sqlite_lock
from helpers.servers import emstrack_cli, free_port, server_environment, sync_counts, wait_until


@tracked_optimization(experiment="background")
def pipeline(building_id: str, n_days: int) -> dict[str, float]:
    """A tiny pipeline."""
    if n_days < 0:
        raise ValueError("negative horizon")
    return {"cost": 1.5 * n_days, "days": float(n_days)}


@pytest.fixture
def background(store, monkeypatch):
    """Background mode on; nothing left queued or parked afterwards."""
    monkeypatch.setenv("EMSTRACK_BACKGROUND", "1")
    yield store
    assert emstrack.flush(timeout=60)
    assert shipper().pending() == 0


class TestShipping:
    def test_runs_reach_the_store_after_flush(self, background):
        """Every call is in the store, exactly, once flush() returns; the spool is empty."""
        results = [pipeline(f"b{day}", day) for day in range(5)]
        assert results == [{"cost": 1.5 * day, "days": float(day)} for day in range(5)]
        assert emstrack.flush(timeout=60) is True
        runs = background.runs("background")
        assert sorted((r.data.params["building_id"], r.data.metrics["cost"]) for r in runs) == [
            (f"b{day}", 1.5 * day) for day in range(5)
        ]
        assert {r.info.status for r in runs} == {"FINISHED"}
        assert background.spooled() == []

    def test_exception_passes_through_and_the_run_fails(self, background):
        """The pipeline's exception reaches the caller; the shipped run is FAILED."""
        with pytest.raises(ValueError, match="negative horizon"):
            pipeline("b1", -1)
        assert emstrack.flush(timeout=60)
        (run,) = background.runs("background")
        assert run.info.status == "FAILED"
        assert run.data.tags["emstrack.exception.message"] == "negative horizon"

    def test_run_id_is_known_after_flush(self, background):
        """In background mode the run id arrives with the shipment."""
        with emstrack.tracked_run("handle", experiment="background") as run:
            run.log_metrics({"x": 1.0})
        assert emstrack.flush(timeout=60)
        assert run.run_id == background.runs("background")[0].info.run_id


class TestStoreDown:
    def test_runs_park_while_the_store_is_locked_and_ship_later(self, background, monkeypatch):
        """A store locked past the budget parks the run; flush() says so; afterwards it ships it."""
        monkeypatch.setattr(store_module, "RETRY_AFTER_S", 0.3)
        monkeypatch.setattr(store_module, "LOCK_BUDGET_S", 0.5)
        monkeypatch.delenv("EMSTRACK_STRICT")
        with holding_sqlite_lock(background.path):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert pipeline("parked", 2) == {"cost": 3.0, "days": 2.0}
            assert caught == []  # the pipeline thread met no store at all
            assert emstrack.flush(timeout=60) is False  # tried, parked: reported as pending
            assert shipper().pending() == 1
            (waiting,) = emstrack.pending()
            assert (waiting.name, waiting.status, waiting.in_progress) == (
                "pipeline",
                "FINISHED",
                True,
            )
        store = get_store(background.uri)
        wait_until(lambda: not store.is_down(), 10, what="retry window over")
        assert emstrack.flush(timeout=60) is True
        assert shipper().pending() == 0
        (run,) = background.runs("background")
        assert run.data.metrics == {"cost": 3.0, "days": 2.0}
        assert background.spooled() == []


EXITING = """
import sys
import emstrack

@emstrack.tracked_optimization(experiment="drained")
def pipeline(index: int) -> dict:
    return {"index": float(index)}

for index in range(int(sys.argv[1])):
    pipeline(index)
print("done", flush=True)
"""


def run_and_exit(store, uri: str, runs: int, **env: str) -> subprocess.CompletedProcess[str]:
    """A process that tracks ``runs`` calls in background mode and exits without flushing."""
    environment = {
        **server_environment(),
        "MLFLOW_TRACKING_URI": uri,
        "EMSTRACK_SPOOL_DIR": str(store.spool),
        "EMSTRACK_BACKGROUND": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", EXITING, str(runs)],
        env=environment,
        cwd=store.root,
        capture_output=True,
        text=True,
        timeout=180,
    )


class TestDrainAtExit:
    def test_exit_drains_the_queue_into_the_store(self, store):
        """Runs still queued when the interpreter exits are shipped before it ends."""
        # A drain budget for a loaded machine: MLflow's first import alone can take seconds.
        result = run_and_exit(store, store.uri, 20, EMSTRACK_DRAIN_TIMEOUT="120")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "done"
        runs = store.runs("drained")
        assert sorted(r.data.metrics["index"] for r in runs) == [float(i) for i in range(20)]
        assert store.spooled() == []
        assert "emstrack sync" not in result.stderr

    def test_exit_with_the_store_down_keeps_every_run(self, store):
        """Store unreachable at exit: every run stays in the spool, none lost, sync replays."""
        result = run_and_exit(
            store, f"http://127.0.0.1:{free_port()}", 6, EMSTRACK_DRAIN_TIMEOUT="5"
        )
        assert result.returncode == 0, result.stderr
        assert "6 run(s) not yet in the tracking store" in result.stderr
        assert "emstrack sync" in result.stderr
        assert len(store.spooled()) == 6
        synced = emstrack_cli(
            "sync", "--tracking-uri", store.uri, spool=store.spool, cwd=store.root
        )
        assert sync_counts(synced) == (6, 0, 0)
        runs = store.runs("drained")
        assert sorted(r.data.metrics["index"] for r in runs) == [float(i) for i in range(6)]
