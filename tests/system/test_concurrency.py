"""Concurrency: many threads and spawned processes tracking into one store at once.

Every call's params, metrics and tags derive from a unique call id, so a run holding another
call's values (mixed up between threads or processes) is caught value by value. Workers run in
strict mode: a run that could not reach the store (``database is locked`` past the retries)
raises there and fails the test, even though it would be kept in the spool.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emstrack import tracked_optimization
from helpers.servers import MlflowServer, all_runs, spool_entries

THREADS = 8
PROCESSES = 4
CALLS_EACH = 25


def make_pipeline(experiment: str) -> Any:
    """A pipeline whose every tracked value is a function of ``call_id``."""

    @tracked_optimization(experiment=experiment, run_name="call-{call_id}")
    def pipeline(call_id: int, label: str, weight: float) -> dict[str, Any]:
        return {
            "double": 2 * call_id + 0.5,
            "negated": -call_id,
            "label_out": f"out-{call_id}",
            "trace": [call_id + step for step in range(3)],
        }

    return pipeline


def arguments(call_id: int) -> dict[str, Any]:
    return {"call_id": call_id, "label": f"call-{call_id}", "weight": call_id / 8}


def call_ids(workers: int) -> list[int]:
    return [worker * 1000 + index for worker in range(workers) for index in range(CALLS_EACH)]


def check_runs(uri: str, experiment: str, expected_ids: list[int]) -> int:
    """Exactly one run per call id, each holding only its own call's values; return the count."""
    runs = all_runs(uri, experiment)
    ids = sorted(int(run.data.params["call_id"]) for run in runs)
    assert ids == sorted(expected_ids)
    for run in runs:
        call_id = int(run.data.params["call_id"])
        assert run.data.params == {
            "call_id": str(call_id),
            "label": f"call-{call_id}",
            "weight": repr(call_id / 8) if call_id % 8 else str(call_id // 8),
        }
        assert run.data.metrics == {
            "double": 2 * call_id + 0.5,
            "negated": float(-call_id),
            "trace": float(call_id + 2),
        }
        assert run.data.tags["label_out"] == f"out-{call_id}"
        assert run.info.run_name == f"call-{call_id}"
        assert run.info.status == "FINISHED"
    assert len({run.data.tags["emstrack.run_key"] for run in runs}) == len(runs)
    return len(runs)


def run_threads(experiment: str) -> list[str]:
    """THREADS threads each making CALLS_EACH calls; return the errors they met."""
    pipeline = make_pipeline(experiment)
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        barrier.wait()
        for call_id in range(index * 1000, index * 1000 + CALLS_EACH):
            try:
                pipeline(**arguments(call_id))
            except Exception as error:
                errors.append(f"{call_id}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def process_worker(
    uri: str, spool: str, experiment: str, index: int, gate: Any
) -> None:  # pragma: no cover - runs in a spawned process
    """One spawned process: wait for the others, then make CALLS_EACH tracked calls (strict)."""
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["EMSTRACK_SPOOL_DIR"] = spool
    os.environ["EMSTRACK_STRICT"] = "1"
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    pipeline = make_pipeline(experiment)
    gate.wait(timeout=120)
    for call_id in range(index * 1000, index * 1000 + CALLS_EACH):
        pipeline(**arguments(call_id))


def run_processes(uri: str, spool: Path, experiment: str) -> list[int | None]:
    """PROCESSES spawned processes released together; return their exit codes."""
    context = multiprocessing.get_context("spawn")
    gate = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=process_worker, args=(uri, str(spool), experiment, index, gate))
        for index in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    # The default delivery ships from a shipper process after each worker's calls returned:
    # wait for the runs of this spool bound for this store, as every emstrack read does.
    from emstrack._delivery.replay import flush_for

    assert flush_for(uri, 300)
    return [process.exitcode for process in processes]


class TestSqliteStore:
    def test_threads_each_get_their_own_runs(self, store):
        """8 threads x 25 calls on one SQLite store: 200 runs, none mixed, none lost."""
        errors = run_threads("threads")
        assert errors == []
        assert check_runs(store.uri, "threads", call_ids(THREADS)) == THREADS * CALLS_EACH
        assert spool_entries(store.spool) == {}

    @pytest.mark.slow
    def test_spawned_processes_each_get_their_own_runs(self, store):
        """4 spawned processes x 25 calls on one SQLite store: 100 runs, none mixed, none lost."""
        exit_codes = run_processes(store.uri, store.spool, "processes")
        assert exit_codes == [0] * PROCESSES
        assert check_runs(store.uri, "processes", call_ids(PROCESSES)) == PROCESSES * CALLS_EACH
        assert spool_entries(store.spool) == {}

    @pytest.mark.slow
    def test_processes_creating_a_new_store_at_once(self, store, tmp_path):
        """4 processes opening one not-yet-existing SQLite store together: all runs, a sound DB."""
        database = tmp_path / "fresh" / "new.db"
        uri = f"sqlite:///{database}"
        exit_codes = run_processes(uri, store.spool, "brand-new")
        assert exit_codes == [0] * PROCESSES
        assert check_runs(uri, "brand-new", call_ids(PROCESSES)) == PROCESSES * CALLS_EACH
        import sqlite3

        connection = sqlite3.connect(database)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            (versions,) = connection.execute("SELECT COUNT(*) FROM alembic_version").fetchone()
            assert versions == 1
        finally:
            connection.close()
        assert spool_entries(store.spool) == {}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, template_database: Path
) -> Iterator[MlflowServer]:
    """One real ``mlflow server`` shared by the module's tests."""
    with MlflowServer(tmp_path_factory.mktemp("server"), template_database) as running:
        yield running


@pytest.mark.slow
class TestServer:
    def test_threads_each_get_their_own_runs(self, server, store, monkeypatch):
        """8 threads x 25 calls on the real server: 200 runs, none mixed, none lost."""
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        errors = run_threads("threads-http")
        assert errors == []
        assert check_runs(server.url, "threads-http", call_ids(THREADS)) == THREADS * CALLS_EACH
        assert spool_entries(store.spool) == {}

    def test_spawned_processes_each_get_their_own_runs(self, server, store):
        """4 spawned processes x 25 calls on the real server: 100 runs, none mixed, none lost."""
        exit_codes = run_processes(server.url, store.spool, "processes-http")
        assert exit_codes == [0] * PROCESSES
        expected = call_ids(PROCESSES)
        assert check_runs(server.url, "processes-http", expected) == PROCESSES * CALLS_EACH
        assert spool_entries(store.spool) == {}
