"""The plugin end to end: baselines created, kept, broken by a worse battery, and reported."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")


def test_help_lists_the_options_in_their_own_group(pytester):
    # pytest-benchmark, where installed, warns under xdist (an error here): not part of the check.
    result = pytester.runpytest("-p", "no:benchmark", "--help")
    text = result.stdout.str()
    group = text[text.index("emstrack: regression checks of optimization KPIs") :]
    group = group[: group.index("\n\n")]
    for flag in (
        "--emstrack ",
        "--emstrack-experiment=NAME",
        "--emstrack-tracking-uri=URI",
        "--emstrack-update-baseline",
        "--emstrack-baseline-dir=DIR",
        "--emstrack-baseline-from=SOURCE",
    ):
        assert flag in group, flag
    assert "run:<run id>" in group


def test_missing_baseline_fails_with_the_command_that_creates_it(project):
    result = project.run()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*no baseline for test_kpis.py::test_tight in "
            "emstrack_baselines/test_kpis/test_tight.json. Create it with:",
            "*python -m pytest test_kpis.py::test_tight --emstrack-update-baseline",
        ]
    )
    assert not project.baseline("test_tight").exists()


def test_baselines_are_created_then_an_unchanged_run_passes(project):
    result = project.run("--emstrack-update-baseline")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= emstrack =*",
            "baseline files written (2):",
            "  emstrack_baselines/test_kpis/test_loose.json: created (3 metrics)",
            "  emstrack_baselines/test_kpis/test_tight.json: created (3 metrics)",
        ]
    )
    document = json.loads(project.baseline("test_tight").read_text())
    assert document["test"] == "test_kpis.py::test_tight"
    metrics = document["checks"]["default"]["metrics"]
    assert metrics["solver_status"] == "Optimal"
    assert metrics["total_cost"] == pytest.approx(-3.5352596, abs=1e-6)
    assert project.baseline("test_tight").read_text().count("\n") > 5  # indented, reviewable

    again = project.run()
    again.assert_outcomes(passed=2)
    assert "emstrack" not in again.stdout.str().split("passed")[-1]


def test_worse_battery_efficiency_fails_with_a_table(project):
    project.with_baselines()
    project.efficiency(0.80)
    result = project.run()
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    header = re.search(r"metric +baseline +current +abs diff +rel diff +tolerance +verdict", text)
    assert header, text
    row = re.search(
        r"total_cost +(-3\.535\d+) +(-3\.383\d+) +(0\.15\d+) +\+4\.\d+ % +"
        r"rtol=1e-06 atol=1e-09 +regressed",
        text,
    )
    assert row, text
    assert re.search(r"total_cost .* rtol=0\.001 atol=1e-09 +regressed", text)  # the marker's
    # regressed rows come first, the unchanged text metric last
    table = text[header.start() : text.index("AssertionError", header.start())]
    assert table.index("regressed") < table.index("solver_status")
    result.stdout.fnmatch_lines(
        [
            "failed checks (2 tests):",
            "  test_kpis.py::test_tight: total_cost -3.535* -> -3.383* (+4.* %) regressed*",
        ]
    )


def test_change_within_tolerance_passes_and_improvement_is_reported(project):
    project.with_baselines()
    project.efficiency(0.9499)  # total_cost moves by 2e-5 relative
    within = project.run()
    within.assert_outcomes(passed=1, failed=1)  # rtol 1e-3 passes, 1e-6 does not
    assert "test_kpis.py::test_loose PASSED" in within.stdout.str() or re.search(
        r"FAILED test_kpis.py::test_tight", within.stdout.str()
    )
    assert not re.search(r"FAILED test_kpis.py::test_loose", within.stdout.str())

    project.efficiency(1.0)
    better = project.run()
    better.assert_outcomes(passed=2)
    better.stdout.fnmatch_lines(
        [
            "improved (2 tests):",
            "  test_kpis.py::test_tight: total_cost -3.535* -> -3.571* (-1.* %) improved*",
        ]
    )


def test_updating_lists_what_changed(project):
    project.with_baselines()
    before = project.baseline("test_tight").read_text()
    project.efficiency(0.80)
    result = project.run("--emstrack-update-baseline", "-k", "tight")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "  emstrack_baselines/test_kpis/test_tight.json: "
            "total_cost -3.535* -> -3.383*; savings_pct 67.95* -> 54.80*",
        ]
    )
    assert project.baseline("test_tight").read_text() != before
    assert not list(project.baseline("test_tight").parent.glob(".*"))  # no temporary left
    unchanged = project.run("--emstrack-update-baseline", "-k", "tight")
    unchanged.stdout.fnmatch_lines(["*test_tight.json: unchanged"])


def test_baseline_dir_moves_the_files(project):
    result = project.run("--emstrack-update-baseline", "--emstrack-baseline-dir=kpi-baselines")
    result.assert_outcomes(passed=2)
    assert (project.path / "kpi-baselines" / "test_kpis" / "test_tight.json").is_file()
    assert not project.baseline("test_tight").exists()
    assert (project.path / "kpi-baselines" / "test_kpis" / "test_loose.json").is_file()


def test_parallel_workers_give_the_same_verdicts(project):
    pytest.importorskip("xdist")
    project.with_baselines()
    files = project.baselines()
    for path in project.baseline("x").parent.glob("*.json"):
        path.unlink()
    parallel_update = project.run("-n", "2", "--emstrack-update-baseline", subprocess=True)
    parallel_update.assert_outcomes(passed=2)
    parallel_update.stdout.fnmatch_lines(["baseline files written (2):"])
    assert project.baselines() == files

    project.efficiency(0.9499)
    serial = project.run("-rA")
    parallel = project.run("-n", "2", "-rA", subprocess=True)
    serial.assert_outcomes(passed=1, failed=1)
    parallel.assert_outcomes(passed=1, failed=1)
    for result in (serial, parallel):
        result.stdout.fnmatch_lines(["failed checks (1 test):", "  test_kpis.py::test_tight: *"])
        assert re.search(r"PASSED test_kpis.py::test_loose", result.stdout.str())
        assert re.search(r"FAILED test_kpis.py::test_tight", result.stdout.str())
