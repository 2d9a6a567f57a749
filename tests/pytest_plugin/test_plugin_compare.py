"""Comparison rules, flattening and baseline files, without a pytest run around them."""

from __future__ import annotations

import dataclasses
import enum
import json
import math

import pandas as pd
import pytest

from emstrack import ConfigurationError
from emstrack.pytest_plugin._baseline import (
    BaselineFile,
    Check,
    changes,
    file_name,
    path_for,
    read,
    write,
)
from emstrack.pytest_plugin._compare import Rules, Verdict, compare
from emstrack.pytest_plugin._flatten import flatten
from emstrack.pytest_plugin._table import render
from emstrack.schemas import BatterySettings


def verdicts(baseline, current, rules=None, gap=None):
    rows = compare(baseline, current, rules or Rules.layered(), gap)
    return {row.metric: row.verdict for row in rows}


def test_default_tolerances_and_directions():
    base = {"total_cost": 100.0, "savings_pct": 10.0, "peak_kw": 3.0}
    assert verdicts(base, {"total_cost": 100.00005, "savings_pct": 10.0, "peak_kw": 3.0}) == {
        "total_cost": Verdict.OK,  # 5e-7 relative < rtol 1e-6
        "savings_pct": Verdict.OK,
        "peak_kw": Verdict.OK,
    }
    found = verdicts(base, {"total_cost": 101.0, "savings_pct": 11.0, "peak_kw": 3.5})
    assert found == {
        "total_cost": Verdict.REGRESSED,  # cost: lower is better
        "savings_pct": Verdict.IMPROVED,  # savings: higher is better
        "peak_kw": Verdict.CHANGED,  # the name tells no direction
    }
    assert verdicts({"x": 0.0}, {"x": 5e-10}) == {"x": Verdict.OK}  # atol 1e-9


def test_per_metric_tolerances_patterns_and_directions():
    rules = Rules.layered(
        {"rtol": 1e-3, "tolerances": {"daily.*": {"atol": 0.5}}},
        {"tolerances": {"total_cost": {"rtol": 1e-1}}, "directions": {"peak_kw": "lower"}},
    )
    assert rules.tolerance("total_cost").rtol == 0.1
    assert rules.tolerance("other").rtol == 1e-3
    assert rules.tolerance("daily.cost").atol == 0.5
    found = verdicts(
        {"total_cost": 100.0, "peak_kw": 3.0, "daily.cost": 1.0},
        {"total_cost": 105.0, "peak_kw": 2.0, "daily.cost": 1.4},
        rules,
    )
    assert found == {
        "total_cost": Verdict.OK,
        "peak_kw": Verdict.IMPROVED,
        "daily.cost": Verdict.OK,
    }


def test_text_nan_and_metrics_that_appear_or_disappear():
    found = verdicts(
        {"solver_status": "Optimal", "a": math.nan, "gone": 1.0, "n": 3},
        {"solver_status": "Infeasible", "a": math.nan, "new": 2.0, "n": 3.0},
    )
    assert found == {
        "solver_status": Verdict.CHANGED,
        "a": Verdict.OK,
        "new": Verdict.NEW,
        "gone": Verdict.MISSING,
        "n": Verdict.OK,
    }
    assert all(v.fails for k, v in found.items() if k in ("solver_status", "new", "gone"))


def test_mip_gap_widens_only_objective_metrics():
    base = {"total_cost": 100.0, "solver.objective": 100.0, "savings_pct": 10.0}
    now = {"total_cost": 103.0, "solver.objective": 103.0, "savings_pct": 9.7}
    found = verdicts(base, now, gap=0.05)
    assert found["total_cost"] is Verdict.WITHIN_GAP
    assert found["solver.objective"] is Verdict.WITHIN_GAP
    assert found["savings_pct"] is Verdict.REGRESSED
    assert verdicts(base, {**now, "total_cost": 106.0}, gap=0.05)["total_cost"] is Verdict.REGRESSED
    chosen = Rules.layered({"objective_metrics": ["savings_*"]})
    assert verdicts(base, now, chosen, gap=0.05)["savings_pct"] is Verdict.WITHIN_GAP


def test_rows_fail_first_and_the_table_names_everything():
    rows = compare({"a_cost": 1.0, "b_cost": 1.0}, {"a_cost": 1.0, "b_cost": 2.0}, Rules.layered())
    assert [row.metric for row in rows] == ["b_cost", "a_cost"]
    table = render(rows)
    lines = table.splitlines()
    assert lines[0].split() == [
        "metric",
        "baseline",
        "current",
        "abs",
        "diff",
        "rel",
        "diff",
        "tolerance",
        "verdict",
    ]
    assert lines[2].split() == [
        "b_cost",
        "1",
        "2",
        "1",
        "+100",
        "%",
        "rtol=1e-06",
        "atol=1e-09",
        "regressed",
    ]


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"rtol": -1}, "rtol must be a number >= 0"),
        ({"tolerances": {"x": {"rel": 1}}}, "tolerances['x']: unknown key 'rel'"),
        ({"directions": {"x": "up"}}, "directions['x'] must be 'lower' or 'higher'"),
        ({"tolerances": ["x"]}, "tolerances must be a mapping"),
    ],
)
def test_malformed_options_name_the_field(layer, message):
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Rules.layered(layer)


class Mode(enum.Enum):
    COST = "cost"


@dataclasses.dataclass
class Summary:
    total_cost: float
    mode: Mode
    battery: BatterySettings
    skipped: float | None = None


def test_flatten_accepts_what_run_metrics_accept():
    flat = flatten(Summary(1.5, Mode.COST, BatterySettings()))
    assert flat["total_cost"] == 1.5
    assert flat["mode"] == "cost"
    assert flat["battery.capacity_kwh"] == 10.0
    assert "skipped" not in flat
    assert flatten(pd.Series({"a": 1.0, "b": 2})) == {"a": 1.0, "b": 2}
    assert flatten({"ok": True, "nested": {"x": 1}}) == {"ok": True, "nested.x": 1}
    with pytest.raises(ConfigurationError, match="metric 'daily'"):
        flatten({"daily": [1, 2, 3]})
    with pytest.raises(ConfigurationError, match="not int"):
        flatten(3)


def test_baseline_files_round_trip_atomically(tmp_path):
    path = tmp_path / "emstrack_baselines" / "test_x" / "test_a.json"
    baseline = BaselineFile(
        "test_x.py::test_a",
        {"default": Check({"cost": -3.5, "status": "Optimal", "n": 3, "bad": math.inf}, 0.01)},
    )
    write(path, baseline)
    assert json.loads(path.read_text())["checks"]["default"]["metrics"]["bad"] == {"float": "inf"}
    again = read(path)
    assert again is not None
    assert again.checks["default"].metrics == baseline.checks["default"].metrics
    assert again.checks["default"].gap_rel == 0.01
    assert [p.name for p in path.parent.iterdir()] == ["test_a.json"]
    assert read(tmp_path / "none.json") is None
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigurationError, match=r"broken\.json cannot be read"):
        read(tmp_path / "broken.json")


def test_changes_and_paths(tmp_path):
    old = BaselineFile("t", {"default": Check({"cost": 1.0, "gone": 2.0})})
    new = BaselineFile("t", {"default": Check({"cost": 1.5, "new": 3.0})})
    assert changes(None, new) == "created (2 metrics)"
    assert changes(old, new) == "cost 1 -> 1.5; new new (3); gone removed (was 2)"
    assert changes(new, new) == "unchanged"
    assert file_name("tests/test_x.py::TestA::test_b[0.8-cbc]") == "TestA.test_b[0.8-cbc].json"
    test_file = tmp_path / "tests" / "test_x.py"
    assert path_for(test_file, "tests/test_x.py::test_b", rootdir=tmp_path) == (
        tmp_path / "tests" / "emstrack_baselines" / "test_x" / "test_b.json"
    )
    moved = path_for(
        test_file, "tests/test_x.py::test_b", rootdir=tmp_path, baseline_dir=tmp_path / "b"
    )
    assert moved == tmp_path / "b" / "tests" / "test_x" / "test_b.json"
