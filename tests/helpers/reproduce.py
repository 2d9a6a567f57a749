"""Shared by the reproduce tests: a Pipeline A run tracked like the example, the CLI, a CSV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import emstrack
from emstrack import ems, tracked_optimization

EXPERIMENT = "pipeline-a"
BUILDING = "DE_KN_residential1"


def pipeline_a(experiment: str = EXPERIMENT) -> Any:
    """compare_modes tracked exactly like examples/pipeline_a_comparison.py."""
    return tracked_optimization(
        experiment=experiment,
        run_name="{building_id}_{scenario}_{timestamp}",
        params=ems.scenario_inputs,
        metrics=ems.ModeComparison.figures,
        artifacts=["{output_dir}"],
    )(ems.compare_modes)


def run_pipeline_a(folder: Path, scenario: str = "battery_only", **kwargs: Any) -> str:
    """One tracked Pipeline A run (1 building, 1 day); its run id."""

    pipeline_a()(BUILDING, scenario, n_days=1, output_dir=folder / scenario, **kwargs)
    emstrack.flush()
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    newest = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1
    )
    return str(newest[0].info.run_id)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The emstrack command in a fresh process, against the test's store."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [sys.executable, "-m", "emstrack", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def rows(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The records printed by ``--json``."""
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def write_household_csv(path: Path) -> Path:
    """The sample's residential1 data as a CSV in the documented format (timestamp_utc)."""
    hourly = ems.load_building(BUILDING).hourly
    table = hourly.reset_index(drop=True)
    stamps = hourly.index.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    table.insert(0, "timestamp_utc", stamps)
    table.to_csv(path, index=False)
    return path
