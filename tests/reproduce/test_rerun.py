"""``emstrack rerun`` / ``emstrack.rerun``: a run made again from what it recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import emstrack
from emstrack import ems
from emstrack.schemas import OptimizationParams
from helpers.reproduce import (
    BUILDING,
    EXPERIMENT,
    cli,
    pipeline_a,
    rows,
    run_pipeline_a,
    write_household_csv,
)

TIMING = {
    "optimization_time_seconds",
    "daily.solve_seconds",
    "solver.solve_time_s",
    "solver.total_solve_time_s",
}

SCRIPT = '''
"""A user's own pipeline: reads a household CSV into a DataFrame and optimizes it."""
import sys

import pandas as pd

from emstrack import ems, tracked_optimization


@tracked_optimization(experiment="household-csv", metrics=ems.ModeComparison.figures)
def plan_from_csv(csv_path: str, scenario: str = "battery_only", n_days: int = 1):
    frame = pd.read_csv(csv_path)
    return ems.compare_modes("custom", scenario, n_days=n_days, data=frame)


if __name__ == "__main__":
    plan_from_csv(sys.argv[1])
'''


def test_pipeline_a_rerun_agrees_on_every_metric(store, tmp_path):
    run_id = run_pipeline_a(tmp_path)
    result = cli("rerun", run_id, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = rows(result)
    metrics = {row["key"]: row for row in table if row["kind"] == "metric"}
    assert len(metrics) > 40
    for key, row in metrics.items():
        expected = "not compared (timing)" if key in TIMING else "same"
        assert row["result"] == expected, row
    assert {
        row["kind"] for row in table if row["result"] not in {"same", "not compared (timing)"}
    } == set()
    [dataset] = [row for row in table if row["kind"] == "dataset"]
    assert dataset["key"] == f"{BUILDING} (bundled sample) [optimization]"
    assert dataset["original"] == dataset["new"]
    # The new run: same experiment, tagged, with the same params.
    runs = store.runs(EXPERIMENT)
    [new] = [run for run in runs if run.info.run_id != run_id]
    assert new.data.tags["emstrack.rerun_of"] == run_id
    assert new.data.params == store.client.get_run(run_id).data.params


def test_python_api_and_text_table(store, tmp_path):
    run_id = run_pipeline_a(tmp_path, scenario="baseline")
    result = emstrack.rerun(run_id)
    assert result.same
    assert result.datasets == "same"
    assert result.original_run_id == run_id
    assert list(result.table.columns) == [
        "kind",
        "key",
        "original",
        "new",
        "abs_diff",
        "rel_diff",
        "result",
    ]
    new = store.client.get_run(result.new_run_id)
    assert new.data.tags["emstrack.rerun_of"] == run_id
    assert new.data.tags["emstrack.function_path"] == "emstrack.ems._pipelines:compare_modes"
    elsewhere = emstrack.rerun(run_id, experiment="reruns")
    [moved] = store.runs("reruns")
    assert moved.info.run_id == elsewhere.new_run_id
    assert elsewhere.same


def test_changed_household_data_is_named(store, tmp_path):
    script = tmp_path / "plan_from_csv.py"
    script.write_text(textwrap.dedent(SCRIPT))
    csv = write_household_csv(tmp_path / "household.csv")
    made = subprocess.run(
        [sys.executable, str(script), str(csv)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    [original] = store.runs("household-csv")
    assert original.data.tags["emstrack.function_path"] == "__main__:plan_from_csv"
    assert original.data.tags["emstrack.function_file"] == str(script.resolve())

    table = pd.read_csv(csv)
    table.loc[12, "pv_kwh"] += 1.5  # one value: 1.5 kWh more PV at noon of the optimized day
    table.to_csv(csv, index=False)

    result = cli("rerun", original.info.run_id, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "dataset digest: changed" in lines
    [dataset_line] = [line for line in lines if line.startswith("dataset  ")]
    assert "custom (user DataFrame) [optimization]" in dataset_line
    assert dataset_line.rstrip().endswith("changed")
    verdict = lines[-1]
    assert "metric(s) changed:" in verdict
    changed = verdict.split("metric(s) changed: ", 1)[1].split(" (rtol=")[0].split(", ")
    assert "total_cost" in changed
    assert "daily.pv_kwh" in changed
    assert not set(changed) & TIMING
    for key in changed:
        [line] = [line for line in lines if line.startswith("metric ") and f" {key} " in line]
        assert line.rstrip().endswith("changed")


def test_a_dataframe_input_cannot_be_recreated(store, tmp_path):
    frame = ems.load_building(BUILDING).hourly
    pipeline_a()("custom", "battery_only", n_days=1, output_dir=tmp_path / "out", data=frame)
    emstrack.flush()
    [run] = store.runs(EXPERIMENT)
    result = cli("rerun", run.info.run_id, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    assert "argument 'data'" in line
    assert "pandas.DataFrame" in line
    assert len(store.runs(EXPERIMENT)) == 1  # no new run


def test_unknown_run_and_untracked_function(store, tmp_path):
    with pytest.raises(emstrack.RerunError, match="no run 'nope'"):
        emstrack.rerun("nope")
    with emstrack.tracked_run("plain block") as run:
        run.log_metrics({"x": 1.0})
    with pytest.raises(emstrack.RerunError, match=r"emstrack\.function_path"):
        emstrack.rerun(run.run_id)


def test_a_pydantic_model_argument_is_revalidated(store, tmp_path):
    @emstrack.tracked_optimization(experiment="model-input")
    def plan(params: OptimizationParams, start_day: int = 0) -> dict[str, float]:
        return {"capacity": params.battery.capacity_kwh, "mode": float(params.n_days)}

    params = OptimizationParams(building_id=BUILDING, n_days=2, battery={"capacity_kwh": 7.5})
    plan(params, start_day=1)
    emstrack.flush()
    [run] = store.runs("model-input")
    config = json.loads(
        (store.artifact_root(run.info.run_id) / "config.json").read_text(encoding="utf-8")
    )
    assert config["call"]["arguments"]["params"]["battery"]["capacity_kwh"] == 7.5
    from emstrack._reproduce.inputs import rebuild

    call = rebuild(plan.__wrapped__, config["call"], run.info.run_id)
    assert call.kwargs["params"] == params
    assert isinstance(call.kwargs["params"], OptimizationParams)
    assert call.kwargs["start_day"] == 1
