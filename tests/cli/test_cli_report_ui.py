"""``emstrack report`` and ``emstrack ui --experiment``: real subprocesses on a real store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emstrack import tracked_run


def _emstrack() -> list[str]:
    found = shutil.which("emstrack", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "emstrack"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [*_emstrack(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def runs(store):
    for building, scenario, savings, cost in (
        ("B1", "baseline", 0.0, 5.0),
        ("B1", "battery_only", 30.0, 3.5),
        ("B2", "battery_only", 20.0, 4.0),
    ):
        with tracked_run(f"{building}_{scenario}", experiment="cli-report") as run:
            run.log_params({"building_id": building, "scenario": scenario})
            run.log_metrics({"savings_pct": savings, "total_cost": cost})
    return store


def test_report_command_writes_the_file(runs, tmp_path):
    target = tmp_path / "share" / "report.html"
    result = _cli("report", "--experiment", "cli-report", "-o", str(target), cwd=runs.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {target} (")
    text = target.read_text(encoding="utf-8")
    assert "B1_battery_only" in text
    assert text.count('src="data:image/png;base64,') >= 2


def test_report_command_errors_are_one_line(runs, tmp_path):
    result = _cli("report", "-e", "cli-report", "-m", "nope", "-o", "x.html", cwd=runs.root)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: no run of 'cli-report' logged metric 'nope'; "
        "known metrics: 'savings_pct', 'total_cost'"
    ]
    assert not (runs.root / "x.html").exists()


def test_ui_unknown_experiment_is_one_line(runs):
    """An unknown --experiment is an error before any server starts."""
    result = _cli("ui", "--experiment", "nope", "--port", "1", cwd=runs.root)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: no experiment 'nope' in {runs.uri}; known experiments: 'Default', 'cli-report'"
    ]
