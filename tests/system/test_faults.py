"""Faults: the store absent, killed mid-run, locked, hanging, or unable to take artifacts.

In every case the pipeline gets its own result (the same object) or its own exception, each run
gives one EmstrackWarning naming the cause and the run's spool folder, and once the fault is
gone the real ``emstrack sync`` command puts exactly the expected runs into the store (params,
metrics with steps and timestamps, tags, status, start and end times, artifact bytes), leaves
the spool empty, and changes nothing when run a second time.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import emstrack
from conftest import _ISOLATED_VARIABLES
from emstrack import EmstrackWarning, TrackingError, __version__, tracked_optimization
from emstrack._delivery import store as store_module
from emstrack._delivery.store import HTTP_MAX_RETRIES, get_store
from helpers.locks import holding_sqlite_lock
from helpers.servers import (
    MlflowServer,
    all_runs,
    emstrack_cli,
    snapshot,
    spool_entries,
    sync_counts,
    unwritable_folder,
    writes_are_refused,
)

_ISOLATED = (*_ISOLATED_VARIABLES, "EMSTRACK_STRICT")

# --------------------------------------------------------------------------- the summary

SUMMARY: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def _fault_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print, after the module, what happened to the runs of every fault case."""
    yield
    if not SUMMARY:
        return
    lines = [
        "",
        "fault case                               attempted  direct  spooled  synced  lost  "
        "first-run s  later-runs s",
    ]
    for case, row in SUMMARY.items():
        lines.append(
            f"{case:<40} {row['attempted']:>9} {row['direct']:>7} {row['spooled']:>8} "
            f"{row['synced']:>7} {row['lost']:>5} {row['first_s']:>12.2f} {row['later_s']:>13.3f}"
        )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n".join(lines))


# --------------------------------------------------------------------------- the pipeline


class SolverCrashedError(RuntimeError):
    """The pipeline's own failure."""


@dataclass
class Pipeline:
    """A decorated pipeline and everything it handed back, to check identity."""

    function: Callable[..., Any]
    experiment: str = "Default"
    returned: list[Any] = field(default_factory=list)
    raised: list[BaseException] = field(default_factory=list)


def make_pipeline(
    experiment: str,
    fail_on: frozenset[str] = frozenset(),
    during: Callable[[str], None] | None = None,
) -> Pipeline:
    """A pipeline writing a schedule file and returning metrics, a tag and a 24-step series."""
    pipeline = Pipeline(function=lambda: None, experiment=experiment)

    @tracked_optimization(experiment=experiment, artifacts=["out/{building_id}.csv"])
    def optimize_building(building_id: str, n_days: int, capacity_kwh: float = 10.0) -> Any:
        if during is not None:
            during(building_id)
        out = Path("out")
        out.mkdir(exist_ok=True)
        (out / f"{building_id}.csv").write_text(schedule_csv(building_id, n_days))
        if building_id in fail_on:
            error = SolverCrashedError(f"solver crashed on {building_id}")
            pipeline.raised.append(error)
            raise error
        result = {
            "total_cost": 10.5 + n_days,
            "converged": True,
            "solver_status": "Optimal",
            "soc": soc_series(n_days),
        }
        pipeline.returned.append(result)
        return result

    pipeline.function = optimize_building
    return pipeline


def schedule_csv(building_id: str, n_days: int) -> str:
    return "hour,charge_kw\n" + "".join(f"{h},{(h * n_days) % 7 / 2}\n" for h in range(24))


def soc_series(n_days: int) -> list[float]:
    return [round(0.5 + 0.01 * n_days * step, 6) for step in range(24)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Outcome:
    """One pipeline call: its arguments, what came back, its warnings and its time window."""

    call: dict[str, Any]
    failed: bool
    warnings: list[str]
    window: tuple[int, int]
    seconds: float


def attempt(pipeline: Pipeline, call: dict[str, Any]) -> Outcome:
    """Call the pipeline, check that its result or exception came back untouched."""
    returned, raised = len(pipeline.returned), len(pipeline.raised)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, began = now_ms(), time.perf_counter()
        error: BaseException | None = None
        try:
            result = pipeline.function(**call)
        except SolverCrashedError as raised_error:
            error = raised_error
        failed = error is not None
        if failed:
            assert error is pipeline.raised[raised]
        else:
            assert result is pipeline.returned[returned]
        seconds, end = time.perf_counter() - began, now_ms()
    messages = [str(w.message) for w in caught if issubclass(w.category, EmstrackWarning)]
    return Outcome(call, failed, messages, (start, end), seconds)


# --------------------------------------------------------------------------- expectations


def expected_run(pipeline: Pipeline, outcome: Outcome, run_key: str) -> dict[str, Any]:
    """Exactly what the store must hold for one call (times and timestamps checked apart)."""
    call = outcome.call
    building, n_days = call["building_id"], call["n_days"]
    capacity = call.get("capacity_kwh", 10.0)
    qualname = pipeline.function.__qualname__
    tags = {
        "emstrack.function": qualname,
        "emstrack.run_key": run_key,
        "emstrack.version": __version__,
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": qualname,
        "mlflow.user": getpass.getuser(),
        "mlflow.runName": "optimize_building",
        # What `emstrack rerun` reads back: where the function lives, and how it was tracked.
        "emstrack.tracking_options": json.dumps(
            {
                "artifacts": ["out/{building_id}.csv"],
                "log_inputs": True,
                "log_model": None,
                "metrics": None,
                "params": None,
                "run_name": None,
            },
            sort_keys=True,
        ),
    }
    metrics: dict[str, list[tuple[int, float]]] = {}
    if outcome.failed:
        tags["emstrack.exception.type"] = "test_faults.SolverCrashedError"
        tags["emstrack.exception.message"] = f"solver crashed on {building}"
    else:
        tags["solver_status"] = "Optimal"
        metrics = {
            "total_cost": [(0, 10.5 + n_days)],
            "converged": [(0, 1.0)],
            "soc": list(enumerate(soc_series(n_days))),
        }
    inputs = {"building_id": building, "n_days": n_days, "capacity_kwh": capacity}
    return {
        "name": "optimize_building",
        "status": "FAILED" if outcome.failed else "FINISHED",
        "params": {
            "building_id": building,
            "n_days": str(n_days),
            "capacity_kwh": format(capacity, "g") if capacity % 1 else str(int(capacity)),
        },
        "tags": tags,
        "metrics": metrics,
        "artifacts": {
            "config.json": {
                "inputs": inputs,
                # The bound arguments, as `emstrack rerun` rebuilds the call from them.
                "call": {"arguments": {**inputs, "capacity_kwh": capacity}, "not_kept": {}},
            },
            f"{building}.csv": schedule_csv(building, n_days).encode(),
        },
    }


def check_store(
    uri: str,
    experiment: str,
    pipeline: Pipeline,
    outcomes: list[Outcome],
    spooled: dict[str, dict[str, Any]],
    scratch: Path,
) -> dict[str, dict[str, Any]]:
    """Assert the store holds exactly one exact run per call; return their snapshots."""
    runs = all_runs(uri, experiment)
    by_building = {run.data.params.get("building_id"): run for run in runs}
    assert len(runs) == len(outcomes), [run.data.params for run in runs]
    assert len(by_building) == len(outcomes)
    spooled_by_building = {entry["params"]["building_id"]: entry for entry in spooled.values()}
    snapshots = {}
    for outcome in outcomes:
        building = outcome.call["building_id"]
        got = snapshot(uri, by_building[building].info.run_id, scratch)
        key = got["tags"].get("emstrack.run_key", "")
        want = expected_run(pipeline, outcome, key)
        assert re.fullmatch(r"[0-9a-f]{32}", key)
        assert {k: got[k] for k in ("name", "status", "params", "tags")} == {
            k: want[k] for k in ("name", "status", "params", "tags")
        }
        assert {k: [(s, v) for s, v, _ in h] for k, h in got["metrics"].items()} == want["metrics"]
        artifacts = dict(got["artifacts"])
        if outcome.failed:
            traceback_text = artifacts.pop("traceback.txt").decode()
            assert traceback_text.startswith("Traceback (most recent call last)")
            assert f"SolverCrashedError: solver crashed on {building}" in traceback_text
        assert json.loads(artifacts.pop("config.json")) == want["artifacts"].pop("config.json")
        assert artifacts == want["artifacts"]
        low, high = outcome.window
        assert low <= got["start_time"] <= got["end_time"] <= high
        for history in got["metrics"].values():
            assert all(low <= timestamp <= high for _, _, timestamp in history)
        entry = spooled_by_building.get(building)
        if entry is not None:
            # A replayed run keeps its own times and its metrics their original timestamps.
            assert key == entry["start"]["key"]
            assert got["start_time"] == entry["start"]["start_ms"]
            assert got["end_time"] == entry["end"]["end_ms"]
            assert got["status"] == entry["end"]["status"]
            replayed = sorted((k, s, v, ts) for k, h in got["metrics"].items() for s, v, ts in h)
            assert replayed == sorted((k, s, v, ts) for k, v, s, ts in entry["metrics"])
        snapshots[building] = got
    return snapshots


def assert_warned(outcome: Outcome, spooled: dict[str, dict[str, Any]], *causes: str) -> Path:
    """One EmstrackWarning for the call, naming every cause and the run's spool folder."""
    assert len(outcome.warnings) == 1, outcome.warnings
    message = outcome.warnings[0]
    for cause in causes:
        assert cause in message, (cause, message)
    folders = [entry["folder"] for entry in spooled.values() if str(entry["folder"]) in message]
    assert len(folders) == 1, message
    assert "emstrack sync" in message
    return folders[0]


def sync_twice(
    uri: str,
    experiment: str,
    pipeline: Pipeline,
    outcomes: list[Outcome],
    spool: Path,
    workdir: Path,
) -> tuple[int, int]:
    """Run ``emstrack sync``, check the store exactly, run it again and check nothing changed."""
    spooled = spool_entries(spool)
    first = emstrack_cli("sync", spool=spool, cwd=workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    sent, failed, skipped = sync_counts(first)
    assert (sent, failed, skipped) == (len(spooled), 0, 0), first.stdout
    assert spool_entries(spool) == {}
    before = check_store(uri, experiment, pipeline, outcomes, spooled, workdir / "read-back-1")
    second = emstrack_cli("sync", spool=spool, cwd=workdir)
    assert second.returncode == 0, second.stdout + second.stderr
    assert sync_counts(second) == (0, 0, 0)
    after = check_store(uri, experiment, pipeline, outcomes, {}, workdir / "read-back-2")
    assert after == before
    return sent, len(after)


def record(case: str, outcomes: list[Outcome], spooled: int, synced: int, stored: int) -> None:
    attempted = len(outcomes)
    SUMMARY[case] = {
        "attempted": attempted,
        "direct": attempted - spooled,
        "spooled": spooled,
        "synced": synced,
        "lost": attempted - stored,
        "first_s": outcomes[0].seconds,
        "later_s": max(outcome.seconds for outcome in outcomes[1:]),
    }
    assert attempted - stored == 0


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No emstrack or MLflow settings from outside, a private spool, non-strict; the spool."""
    for name in _ISOLATED:
        monkeypatch.delenv(name, raising=False)
    spool = tmp_path / "spool"
    monkeypatch.setenv("EMSTRACK_SPOOL_DIR", str(spool))
    # These cases test what the pipeline's own process does when the store fails; the default
    # process delivery meets the same faults in its shipper (tests/delivery/).
    monkeypatch.setenv("EMSTRACK_DELIVERY", "sync")
    monkeypatch.chdir(tmp_path)
    return spool


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, template_database: Path
) -> Iterator[MlflowServer]:
    """One real ``mlflow server`` for the module; tests may stop, kill and restart it."""
    with MlflowServer(tmp_path_factory.mktemp("server"), template_database) as running:
        yield running


@pytest.fixture
def on_server(
    server: MlflowServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Runs go to the shared server, which starts each test up and with no outage remembered."""
    if server.process is None:
        server.start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    get_store(server.url).mark_up()
    yield isolated
    if server.process is None:
        server.start()


class Hanging:
    """A TCP listener that accepts connections and never answers, counting them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=10)
        self.sock.close()
        for connection in self.connections:
            connection.close()


CALLS = [
    {"building_id": "b1", "n_days": 1},
    {"building_id": "b2", "n_days": 2, "capacity_kwh": 12.5},
    {"building_id": "b3", "n_days": 3},
]


# --------------------------------------------------------------------------- SQLite store


class TestSqliteStoreLocked:
    def test_runs_spool_while_another_writer_holds_the_database(self, store, monkeypatch):
        """A database held by another process's BEGIN EXCLUSIVE: runs spool, sync stores them."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        # Busy is not down: a lock is waited for within the budget; held past it, the store is
        # down. A short budget keeps the test short.
        monkeypatch.setattr(store_module, "LOCK_BUDGET_S", 1.0)
        pipeline = make_pipeline("locked", fail_on=frozenset({"b3"}))
        with holding_sqlite_lock(store.path):
            outcomes = [attempt(pipeline, call) for call in CALLS]
        spooled = spool_entries(store.spool)
        assert len(spooled) == 3
        for outcome in outcomes:
            assert_warned(outcome, spooled, "database is locked", store.uri)
        assert "not retried" in outcomes[1].warnings[0]
        synced, stored = sync_twice(
            store.uri, "locked", pipeline, outcomes, store.spool, store.root
        )
        record("sqlite store locked by another writer", outcomes, 3, synced, stored)

    def test_strict_mode_raises_but_keeps_the_run(self, store, monkeypatch):
        """EMSTRACK_STRICT=1: the outage is a TrackingError naming the spool; the run is kept."""
        monkeypatch.setattr(store_module, "LOCK_BUDGET_S", 1.0)
        pipeline = make_pipeline("locked-strict")
        with (
            holding_sqlite_lock(store.path),
            pytest.raises(TrackingError, match="replay it with `emstrack sync`") as raised,
        ):
            pipeline.function("b1", 1)
        (entry,) = spool_entries(store.spool).values()
        assert str(entry["folder"]) in str(raised.value)
        get_store(store.uri).mark_up()  # this process's retry window is over
        assert len(emstrack.sync().sent) == 1
        (run,) = all_runs(store.uri, "locked-strict")
        assert run.info.status == "FINISHED"
        assert run.data.metrics["total_cost"] == 11.5


class TestArtifactFolderNotWritable:
    def test_partial_run_resumes_without_a_duplicate(self, store, monkeypatch, tmp_path):
        """Run created, params and metrics sent, artifacts refused: sync resumes the same run."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        blocked = unwritable_folder(tmp_path / "artifact-store")
        store.client.create_experiment("no-artifacts", artifact_location=str(blocked))
        pipeline = make_pipeline("no-artifacts")
        outcomes = [attempt(pipeline, call) for call in CALLS[:2]]
        spooled = spool_entries(store.spool)
        assert len(spooled) == 2
        for outcome in outcomes:
            assert_warned(outcome, spooled, "Error")
            assert any(
                cause in outcome.warnings[0]
                for cause in ("NotADirectoryError", "PermissionError", "Not a directory")
            )
        # The partial runs are in the store, RUNNING, with their params and metrics.
        partial = {run.info.run_id: run for run in all_runs(store.uri, "no-artifacts")}
        assert sorted(partial) == sorted(entry["state"]["run_id"] for entry in spooled.values())
        assert {run.info.status for run in partial.values()} == {"RUNNING"}
        assert all(run.data.metrics["total_cost"] > 0 for run in partial.values())
        # A sync while the fault lasts fails, keeps both runs and creates nothing.
        failing = emstrack_cli("sync", spool=store.spool, cwd=store.root)
        assert failing.returncode == 1
        assert sync_counts(failing) == (0, 2, 0)
        assert "failed" in failing.stderr
        assert len(spool_entries(store.spool)) == 2
        assert len(all_runs(store.uri, "no-artifacts")) == 2
        make_writable(blocked)
        synced, stored = sync_twice(
            store.uri, "no-artifacts", pipeline, outcomes, store.spool, store.root
        )
        assert {run.info.run_id for run in all_runs(store.uri, "no-artifacts")} == set(partial)
        record("artifact folder not writable (sqlite)", outcomes, 2, synced, stored)


def make_writable(blocked: Path) -> None:
    """Undo :func:`unwritable_folder`."""
    if blocked.parent.is_file():
        blocked.parent.unlink()
        blocked.parent.mkdir()
    else:
        blocked.chmod(0o700)
    assert not writes_are_refused(blocked.parent)


class TestHangingStore:
    def test_outage_costs_one_probe_then_nothing(self, store, monkeypatch):
        """A server that accepts and never answers costs one probe; later runs never connect."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        hanging = Hanging()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", hanging.url)
        try:
            pipeline = make_pipeline("hanging")
            first = attempt(pipeline, CALLS[0])
            assert len(hanging.connections) == 1
            assert get_store(hanging.url).is_down()
            later = [attempt(pipeline, call) for call in CALLS[1:]]
            assert len(hanging.connections) == 1
        finally:
            hanging.close()
        outcomes = [first, *later]
        spooled = spool_entries(store.spool)
        for outcome in outcomes:
            assert_warned(outcome, spooled, "unavailable", hanging.url)
        assert "timed out" in first.warnings[0].lower()
        print(
            f"hanging store: first run {first.seconds:.2f} s, "
            f"later runs {[round(o.seconds, 4) for o in later]} s"
        )
        result = emstrack_cli(
            "sync", "--tracking-uri", store.uri, spool=store.spool, cwd=store.root
        )
        assert result.returncode == 0, result.stderr
        assert sync_counts(result) == (3, 0, 0)
        assert spool_entries(store.spool) == {}
        stored = check_store(store.uri, "hanging", pipeline, outcomes, spooled, store.root / "back")
        record("store hangs (accepts, never answers)", outcomes, 3, 3, len(stored))


# --------------------------------------------------------------------------- real server


@pytest.mark.slow
class TestServerAbsent:
    def test_runs_spool_and_sync_once_the_server_is_up(self, server, on_server, tmp_path):
        """No server at all: every run spools fast; sync after the start stores them exactly."""
        server.stop()
        pipeline = make_pipeline("server-absent", fail_on=frozenset({"b3"}))
        outcomes = [attempt(pipeline, call) for call in CALLS]
        spooled = spool_entries(on_server)
        assert len(spooled) == 3
        for outcome in outcomes:
            assert_warned(outcome, spooled, "unavailable", server.url, "ConnectionError")
        server.start()
        synced, stored = sync_twice(
            server.url, "server-absent", pipeline, outcomes, on_server, tmp_path
        )
        record("server absent before the run", outcomes, 3, synced, stored)


@pytest.mark.slow
class TestServerKilledMidRun:
    def test_run_created_before_the_kill_is_completed_not_duplicated(
        self, server, on_server, tmp_path
    ):
        """SIGKILL inside the tracked block: that run and the next spool; sync completes both."""
        created: dict[str, str] = {}

        def kill_during_b2(building_id: str) -> None:
            if building_id == "b2":
                from emstrack import active_run

                run = active_run()
                assert run is not None
                assert run.run_id is not None
                created[building_id] = run.run_id
                server.kill()

        pipeline = make_pipeline("server-killed", during=kill_during_b2)
        outcomes = [attempt(pipeline, call) for call in CALLS]
        assert outcomes[0].warnings == []
        spooled = spool_entries(on_server)
        assert len(spooled) == 2
        for outcome in outcomes[1:]:
            assert_warned(outcome, spooled, "unavailable", server.url)
        (b2_entry,) = (e for e in spooled.values() if e["params"]["building_id"] == "b2")
        assert b2_entry["state"]["run_id"] == created["b2"]
        server.start()
        statuses = {
            run.data.params.get("building_id", run.info.run_id): run.info.status
            for run in all_runs(server.url, "server-killed")
        }
        assert statuses == {"b1": "FINISHED", created["b2"]: "RUNNING"}
        synced, stored = sync_twice(
            server.url, "server-killed", pipeline, outcomes, on_server, tmp_path
        )
        runs = {r.data.params["building_id"]: r for r in all_runs(server.url, "server-killed")}
        assert runs["b2"].info.run_id == created["b2"]
        record("server SIGKILLed mid-run, restarted", outcomes, 2, synced, stored)


@pytest.fixture(scope="module")
def artifactless_server(
    tmp_path_factory: pytest.TempPathFactory, template_database: Path
) -> Iterator[MlflowServer]:
    """A server whose ``--artifacts-destination`` cannot be written (even by root)."""
    folder = tmp_path_factory.mktemp("artifactless")
    destination = unwritable_folder(folder)
    with MlflowServer(folder, template_database, artifacts_destination=destination) as running:
        yield running


@pytest.mark.slow
class TestServerArtifactsNotWritable:
    def test_artifact_refusal_costs_seconds_and_sync_completes(
        self, artifactless_server, isolated, monkeypatch, tmp_path
    ):
        """The server refuses artifacts: the run costs seconds, not MLflow's minutes of retries."""
        server = artifactless_server
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        pipeline = make_pipeline("server-no-artifacts")
        outcomes = [attempt(pipeline, call) for call in CALLS[:2]]
        spooled = spool_entries(isolated)
        assert len(spooled) == 2
        for outcome in outcomes:
            assert_warned(outcome, spooled, server.url)
        assert "artifacts" in outcomes[0].warnings[0]
        # MLflow alone would retry the refused upload 7 times over about 4 minutes; inside
        # emstrack it tries at most HTTP_MAX_RETRIES more times, and the second run not at all.
        refused = [line for line in server.log.read_text().splitlines() if '"PUT ' in line]
        assert 1 <= len(refused) <= 1 + HTTP_MAX_RETRIES, refused
        assert all(" 500 " in line for line in refused)
        print(f"artifact refusal: first run {outcomes[0].seconds:.2f} s, {len(refused)} uploads")
        make_writable(server.artifacts)
        synced, stored = sync_twice(
            server.url, "server-no-artifacts", pipeline, outcomes, isolated, tmp_path
        )
        record("artifact folder not writable (server)", outcomes, 2, synced, stored)
