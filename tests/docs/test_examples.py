"""Every example runs as a script against a real store and leaves the runs it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(store, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=store.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_every_example_is_tested():
    """Each file in examples/ has a test here."""
    tested = {
        "pipeline_a_comparison.py",
        "pipeline_b_learning.py",
        "quickstart.py",
        "test_pipeline_a_kpis.py",  # run by tests/pytest_plugin/test_plugin_example.py
    }
    assert {path.name for path in EXAMPLES.glob("*.py")} == tested


def test_pipeline_a(store):
    """Pipeline A tracks one run per building and scenario with per-day steps and artifacts."""
    result = _run(
        store, "pipeline_a_comparison.py", "--buildings", "DE_KN_residential2", "--days", "2"
    )
    assert len(result.stdout.splitlines()) == 4
    runs = store.runs("pipeline-a")
    assert sorted(r.data.params["scenario"] for r in runs) == sorted(
        ["baseline", "battery_only", "battery_smart_ev", "self_consumption"]
    )
    for run in runs:
        assert run.data.params["building_id"] == "DE_KN_residential2"
        assert run.data.params["battery.capacity_kwh"] == "10"
        assert run.info.run_name.startswith(f"DE_KN_residential2_{run.data.params['scenario']}_")
        history = store.client.get_metric_history(run.info.run_id, "daily.cost_eur")
        assert sorted(p.step for p in history) == [0, 1]
        artifacts = {a.path for a in store.client.list_artifacts(run.info.run_id)}
        assert {"results.csv", "schedule.png", "config.json"} <= artifacts


def test_pipeline_b(store):
    """Pipeline B nests a learning and a scheduling run under one parent per building."""
    _run(
        store,
        "pipeline_b_learning.py",
        "--buildings",
        "DE_KN_residential3",
        "--optimization-days",
        "2",
    )
    runs = {r.info.run_name: r for r in store.runs("pipeline-b")}
    assert set(runs) == {"learn_and_schedule_DE_KN_residential3", "learning", "scheduling"}
    parent_id = runs["learn_and_schedule_DE_KN_residential3"].info.run_id
    assert runs["learning"].data.tags["mlflow.parentRunId"] == parent_id
    assert runs["scheduling"].data.tags["mlflow.parentRunId"] == parent_id
    updates = store.client.get_metric_history(
        runs["learning"].info.run_id, "updates.dishwasher_js_to_prior_bits"
    )
    assert sorted(p.step for p in updates) == list(range(14))


@pytest.mark.parametrize("script", ["quickstart.py"])
def test_quickstart(store, script):
    """The quickstart example runs and tracks its runs."""
    result = _run(store, script)
    assert "runs in experiment 'quickstart'" in result.stdout
    assert len(store.runs("quickstart")) >= 3
