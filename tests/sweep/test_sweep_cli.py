"""``emstrack sweep`` from the command line: dry runs, and user errors as one ``Error:`` line."""

from __future__ import annotations

from pathlib import Path

from emstrack._sweep import scenario_key
from helpers.servers import emstrack_cli

GRID = """
function = "emstrack.ems:compare_modes"
experiment = "cli-sweep"
[grid]
building_id = ["DE_KN_residential1"]
scenario = ["battery_only", "self_consumption"]
[fixed]
n_days = 1
[tracking]
params = "emstrack.ems:scenario_inputs"
metrics = "emstrack.ems:ModeComparison.figures"
"""


def test_dry_run_lists_every_scenario_and_runs_nothing(store: object, tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    result = emstrack_cli(
        "sweep", str(grid), "--dry-run", "--tracking-uri", store.uri,  # type: ignore[attr-defined]
        spool=tmp_path / "spool", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    keys = [
        scenario_key(
            "emstrack.ems:compare_modes",
            {"n_days": 1, "building_id": "DE_KN_residential1", "scenario": scenario},
        )
        for scenario in ("battery_only", "self_consumption")
    ]
    assert [line.split()[:3] for line in lines[:2]] == [["run", key, "new"] for key in keys]
    assert lines[-1] == "dry run: 2 to run, 0 finished, 0 failed not retried (--retry-failed)"
    assert store.runs("cli-sweep") == []  # type: ignore[attr-defined]


def test_a_bad_grid_file_is_one_error_line(store: object, tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.replace("[fixed]", "[fixed]\nbatery = 1"))
    result = emstrack_cli("sweep", str(grid), spool=tmp_path / "spool", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {grid}: fixed.batery: emstrack.ems:compare_modes has no parameter 'batery'"
    )
    missing = emstrack_cli("sweep", "nope.toml", spool=tmp_path / "spool", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: nope.toml: no such grid file"
    usage = emstrack_cli(
        "sweep", str(grid), "--scheduler", "tcp://127.0.0.1:1", spool=tmp_path / "spool",
        cwd=tmp_path,
    )  # fmt: skip
    assert usage.returncode == 2
    assert "--scheduler needs --executor dask" in usage.stderr
