"""What a worker is given: everything explicit, credentials never in a repr, the plan's rules."""

from __future__ import annotations

import os

import pytest

from emstrack._sweep import _context, load_spec
from emstrack._sweep.plan import StoredRun, make_plan
from emstrack._sweep.worker import ScenarioTask

SPEC = {
    "function": "emstrack.ems:compare_modes",
    "grid": {"building_id": ["DE_KN_residential1"], "scenario": ["battery_only"]},
}


def test_credentials_travel_explicitly_and_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-value-42")
    monkeypatch.setenv("EMSTRACK_STRICT", "1")
    context = _context(load_spec(SPEC), "http://127.0.0.1:1", "exp", "7", "dask", None, "s1")
    assert context.credentials == {
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": "s3cret-value-42",
    }
    assert "s3cret" not in repr(context)
    assert context.switches["EMSTRACK_STRICT"] == "1"
    assert context.spool_dir is not None  # a LocalCluster shares this machine's spool
    remote = _context(load_spec(SPEC), "http://h:1", "exp", "7", "dask", "tcp://h:8786", "s2")
    assert remote.spool_dir is None  # a remote worker keeps its own

    # A worker process whose environment says otherwise gets the sweep's values.
    for name in ("MLFLOW_EXPERIMENT_NAME", "EMSTRACK_SPOOL_DIR"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "stale")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    context.apply()
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:1"
    assert os.environ["MLFLOW_EXPERIMENT_NAME"] == "exp"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret-value-42"


def run(key: str, status: str, start: int, incomplete: bool = False) -> StoredRun:
    return StoredRun(f"run-{key}-{start}", key, status, start, incomplete)


def test_plan_rules() -> None:
    tasks = [ScenarioTask(i, key, {"i": i}) for i, key in enumerate("abcdef")]
    tasks.append(ScenarioTask(9, "a", {"i": 0}))  # a repeated combination
    stored = [
        run("a", "FINISHED", 1),
        run("a", "RUNNING", 2),  # an orphan next to a finished run: superseded
        run("b", "FAILED", 1),
        run("c", "RUNNING", 1),
        run("d", "KILLED", 1, incomplete=True),  # closed by sync after its process died
        run("e", "KILLED", 1),  # killed by the user
    ]
    plan = make_plan(tasks, stored, retry_failed=False)
    assert [(p.task.key, p.reason) for p in plan.to_run] == [
        ("c", "interrupted"),
        ("d", "interrupted"),
        ("f", "new"),
    ]
    assert [t.key for t in plan.finished] == ["a"]
    assert [(t.key, status) for t, status in plan.failed] == [("b", "FAILED"), ("e", "KILLED")]
    assert [r.run_id for r in plan.duplicates] == ["run-a-2"]
    assert plan.repeated == 1
    retry = make_plan(tasks, stored, retry_failed=True)
    assert [(p.task.key, p.reason) for p in retry.to_run] == [
        ("b", "retry"),
        ("c", "interrupted"),
        ("d", "interrupted"),
        ("e", "retry"),
        ("f", "new"),
    ]
    assert [r.run_id for r in retry.to_run[0].stale] == ["run-b-1"]
