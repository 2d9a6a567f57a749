"""examples/test_pipeline_a_kpis.py passes against its committed baselines, run on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "test_pipeline_a_kpis.py"


def test_the_suite_does_not_collect_the_example():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]


def test_pipeline_a_kpis_example_passes_against_its_baselines():
    folder = ROOT / "examples" / "emstrack_baselines" / "test_pipeline_a_kpis"
    assert sorted(p.name for p in folder.glob("*.json")) == [
        "test_pipeline_a_kpis[baseline].json",
        "test_pipeline_a_kpis[battery_only].json",
        "test_pipeline_a_kpis[battery_smart_ev].json",
        "test_pipeline_a_kpis[self_consumption].json",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "EMSTRACK_STRICT": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLE),
            "-q",
            *("-p", "no:cacheprovider"),
            *("-p", "no:hypothesispytest"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
