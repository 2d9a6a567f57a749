"""`emstrack demo`: run in an empty folder, then check what it left in the store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emstrack._cli.demo_run import COMPARISON_EXPERIMENT, DEMO_BUILDINGS, LEARNING_EXPERIMENT


def _emstrack() -> list[str]:
    found = shutil.which("emstrack", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "emstrack"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The demo, run once in an empty folder with nothing configured."""
    folder = tmp_path_factory.mktemp("empty")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "EMSTRACK_"))
    }
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    result = subprocess.run(
        [*_emstrack(), "demo"], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    return folder, result


@pytest.fixture(scope="module")
def runs(demo):
    from mlflow.tracking import MlflowClient

    folder, _ = demo
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    found = {}
    for name in (COMPARISON_EXPERIMENT, LEARNING_EXPERIMENT):
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None, name
        found[name] = client.search_runs([experiment.experiment_id], max_results=1000)
    return client, found


class TestDemo:
    def test_exits_cleanly_with_progress_table_and_ui_hint(self, demo):
        """The demo succeeds, reports each run, ends with a table and how to open the UI."""
        _, result = demo
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("emstrack demo: 3 Konstanz households")
        assert sum(line.startswith("[") for line in lines) == 15
        assert "savings_pct by building and scenario (higher is better)" in lines
        header = next(line for line in lines if line.startswith("building_id"))
        assert header.split() == [
            "building_id",
            "baseline",
            "battery_only",
            "battery_smart_ev",
            "self_consumption",
        ]
        assert lines[-1].startswith("Browse them in the MLflow UI:  emstrack ui")
        assert "Traceback" not in result.stderr
        assert "EmstrackWarning" not in result.stderr

    def test_last_line_gives_the_runs_view_url(self, demo, runs):
        """The last line names the command and the URL of Pipeline A's runs table."""
        _, result = demo
        client, _ = runs
        experiment = client.get_experiment_by_name(COMPARISON_EXPERIMENT)
        url = (
            f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs"
            "?workflowType=machine_learning"
        )
        last = result.stdout.splitlines()[-1]
        assert last == (
            f"Browse them in the MLflow UI:  emstrack ui --experiment {COMPARISON_EXPERIMENT}"
            f"   (then open {url})"
        )

    def test_experiments_carry_mlflow_conventions(self, runs):
        """Experiments the demo created are marked as classic ML work and carry a description."""
        client, _ = runs
        for name in (COMPARISON_EXPERIMENT, LEARNING_EXPERIMENT):
            tags = client.get_experiment_by_name(name).tags
            assert tags["mlflow.experimentKind"] == "custom_model_development"
            assert "emstrack" in tags["mlflow.note.content"]

    def test_store_lives_in_the_working_directory(self, demo):
        """The embedded default store is mlflow.db in the folder the demo ran in; no spool left."""
        folder, _ = demo
        assert (folder / "mlflow.db").is_file()
        assert not any((folder / ".emstrack" / "spool").glob("*"))

    def test_runs_buildings_modes_and_experiments(self, runs):
        """At least 12 runs, 3 buildings, 2 modes, in two experiments, all finished."""
        _, found = runs
        comparison = found[COMPARISON_EXPERIMENT]
        learning = found[LEARNING_EXPERIMENT]
        assert len(comparison) + len(learning) >= 12
        assert {r.data.params["building_id"] for r in comparison} == set(DEMO_BUILDINGS)
        assert {r.data.params["optimization_mode"] for r in comparison} == {
            "cost",
            "self_consumption",
        }
        assert {r.info.status for r in comparison + learning} == {"FINISHED"}

    def test_every_optimization_run_has_solver_metrics(self, runs):
        """Each optimizing run carries solver metrics, one step per day solved."""
        client, found = runs
        optimizing = [
            r for r in found[COMPARISON_EXPERIMENT] if r.data.params["scenario"] != "baseline"
        ]
        optimizing += [
            r for r in found[LEARNING_EXPERIMENT] if r.info.run_name.startswith("scheduling")
        ]
        assert optimizing
        for run in optimizing:
            assert run.data.metrics["solver.solves"] >= 3, run.info.run_name
            assert run.data.tags["solver.worst_status"] == "Optimal"
            history = client.get_metric_history(run.info.run_id, "solver.objective")
            assert len(history) == run.data.metrics["solver.solves"]

    def test_per_day_metrics_are_steps(self, runs):
        """Pipeline A logs one step per day."""
        client, found = runs
        run = found[COMPARISON_EXPERIMENT][0]
        history = client.get_metric_history(run.info.run_id, "daily.savings_eur")
        assert sorted(p.step for p in history) == [0, 1, 2]

    def test_artifacts_are_present(self, runs):
        """Pipeline A runs carry results.csv, schedule.png and config.json."""
        client, found = runs
        for run in found[COMPARISON_EXPERIMENT]:
            names = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"results.csv", "schedule.png", "config.json"} <= names, run.info.run_name

    def test_pipeline_b_nests_learning_and_scheduling(self, runs):
        """Each Pipeline B parent has a learning and a scheduling child."""
        _, found = runs
        learning = found[LEARNING_EXPERIMENT]
        parents = {r.info.run_id: r for r in learning if "mlflow.parentRunId" not in r.data.tags}
        assert len(parents) == len(DEMO_BUILDINGS)
        for parent_id in parents:
            children = sorted(
                r.info.run_name.split("_")[0]
                for r in learning
                if r.data.tags.get("mlflow.parentRunId") == parent_id
            )
            assert children == ["learning", "scheduling"]
        learning_run = next(r for r in learning if r.info.run_name.startswith("learning"))
        divergences = [k for k in learning_run.data.metrics if k.endswith(".js_divergence")]
        assert divergences
        for key in divergences:
            assert 0.0 <= learning_run.data.metrics[key] <= 1.0
