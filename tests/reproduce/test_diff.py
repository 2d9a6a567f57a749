"""``emstrack diff`` / ``emstrack.analysis.diff``: two runs side by side."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from emstrack import analysis, tracked_run
from helpers.reproduce import BUILDING, cli, rows, run_pipeline_a


def test_two_scenarios_differ_in_exactly_their_params(store, tmp_path):
    baseline = run_pipeline_a(tmp_path, scenario="baseline")
    battery = run_pipeline_a(tmp_path, scenario="battery_only")
    result = cli("diff", baseline, battery, "--only-changed", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = rows(result)
    params = {row["key"]: (row["a"], row["b"]) for row in table if row["kind"] == "param"}
    assert params == {
        "scenario": ("baseline", "battery_only"),
        "battery_enabled": ("false", "true"),
    }
    assert all(row["result"] != "same" for row in table)
    # Same building, same data: the dataset digest is not among the differences.
    assert not [row for row in table if row["kind"] == "dataset"]
    metrics = {row["key"] for row in table if row["kind"] == "metric"}
    assert "total_cost" in metrics
    assert "optimization_time_seconds" not in metrics  # timings are not differences

    full = analysis.diff(baseline, battery)
    [dataset] = full[full["kind"] == "dataset"].to_dict("records")
    assert dataset["key"] == f"{BUILDING} (bundled sample) [optimization]"
    assert dataset["result"] == "same"
    assert full.attrs["datasets"] == "same"
    assert set(full[full["kind"] == "param"]["key"]) >= {"building_id", "solver", "n_days"}

    as_csv = cli("diff", baseline, battery, "--csv", cwd=tmp_path)
    frame = pd.read_csv(io.StringIO(as_csv.stdout))
    assert list(frame.columns) == ["kind", "key", "a", "b", "abs_diff", "rel_diff", "result"]
    assert len(frame) == len(full)


def test_objective_inside_the_recorded_mip_gap(store):
    ids = []
    for objective in (100.0, 100.004):
        with tracked_run(f"objective {objective}") as run:
            run.log_metrics({"solver.objective": objective, "solver.gap_rel": 1e-4, "cost": 1.0})
        ids.append(run.run_id)
    table = analysis.diff(*ids).set_index("key")
    assert table.loc["solver.objective", "result"] == "same (within MIP gap)"
    assert table.loc["solver.objective", "abs_diff"] == pytest.approx(0.004)
    assert table.loc["cost", "result"] == "same"
    assert table.attrs["changed_metrics"] == []
    # Outside the gap (tighter gap recorded): changed.
    with tracked_run("tight") as run:
        run.log_metrics({"solver.objective": 100.004, "solver.gap_rel": 1e-6})
    with tracked_run("tight-ref") as reference:
        reference.log_metrics({"solver.objective": 100.0, "solver.gap_rel": 1e-6})
    tight = analysis.diff(reference.run_id, run.run_id, only_changed=True)
    assert tight["key"].tolist() == ["solver.objective"]
    assert tight.attrs["changed_metrics"] == ["solver.objective"]


def test_metric_in_one_run_only_and_tolerances(store):
    with tracked_run("a") as a:
        a.log_metrics({"x": 1.0, "only_a": 2.0})
        a.log_params({"p": 1})
    with tracked_run("b") as b:
        b.log_metrics({"x": 1.0 + 1e-7})
        b.log_params({"p": 1})
    table = analysis.diff(a.run_id, b.run_id).set_index("key")
    assert table.loc["only_a", "result"] == "only in a"
    assert table.loc["x", "result"] == "changed"
    assert table.loc["p", "result"] == "same"
    loose = analysis.diff(a.run_id, b.run_id, rtol=1e-6).set_index("key")
    assert loose.loc["x", "result"] == "same"


def test_unknown_run_is_one_error_line(store, tmp_path):
    with tracked_run("a") as a:
        a.log_metrics({"x": 1.0})
    result = cli("diff", a.run_id, "0123456789abcdef", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"Error: no run '0123456789abcdef' in {store.uri}"
    ]


def test_a_difference_before_the_last_step_is_found(store):
    ids = []
    for middle in (2.0, 2.5):
        with tracked_run(f"series {middle}") as run:
            run.log_series("daily.cost_eur", [1.0, middle, 3.0])
        ids.append(run.run_id)
    table = analysis.diff(*ids).set_index("key")
    assert table.loc["daily.cost_eur", "result"] == "changed (step 1)"
    assert table.attrs["changed_metrics"] == ["daily.cost_eur"]
