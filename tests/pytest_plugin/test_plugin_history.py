"""--emstrack: one MLflow run per test, read back through MlflowClient; baselines from the store."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")


def _git_commit(path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    git(
        "-c",
        "user.email=ci@example.org",
        "-c",
        "user.name=ci",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    return git("rev-parse", "HEAD")


def test_emstrack_records_one_run_per_test(store, project):
    commit = _git_commit(project.path)
    project.with_baselines()
    project.efficiency(0.9499)
    uri = f"--emstrack-tracking-uri={store.uri}"
    result = project.run("--emstrack", uri, subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["recorded 2 runs in sqlite:///*"])

    runs = {run.info.run_name: run for run in store.runs("pytest")}
    assert sorted(runs) == ["test_kpis.py::test_loose", "test_kpis.py::test_tight"]
    tight, loose = runs["test_kpis.py::test_tight"], runs["test_kpis.py::test_loose"]
    assert tight.data.tags["pytest.outcome"] == "failed"
    assert tight.info.status == "FAILED"
    assert tight.data.tags["pytest.verdict"] == "regressed"
    assert loose.data.tags["pytest.outcome"] == "passed"
    assert loose.info.status == "FINISHED"
    for run in (tight, loose):
        assert run.data.tags["git.commit"] == commit
        assert run.data.tags["git.branch"] == "main"
        assert run.data.metrics["total_cost"] == pytest.approx(-3.5351816, abs=1e-6)
        assert run.data.metrics["baseline.total_cost"] == pytest.approx(-3.5352596, abs=1e-6)
        assert run.data.tags["solver_status"] == run.data.tags["baseline.solver_status"]
        keys = json.loads(run.data.tags["pytest.checks"])
        assert keys == {"default": ["total_cost", "savings_pct", "solver_status"]}
        assert "solver.objective" in run.data.metrics  # the solve, captured inside the test run


@pytest.mark.slow
def test_baselines_come_back_from_the_store(store, project):
    project.with_baselines()
    project.efficiency(0.9499)
    uri = f"--emstrack-tracking-uri={store.uri}"
    project.run("--emstrack", uri, subprocess=True).assert_outcomes(passed=1, failed=1)
    runs = {run.info.run_name: run for run in store.runs("pytest")}
    loose = runs["test_kpis.py::test_loose"]

    # Baselines from the store: the latest passing run of the same test
    for path in project.baseline("x").parent.glob("*.json"):
        path.unlink()
    latest = project.run("--emstrack-baseline-from=latest", uri, "-rA", subprocess=True)
    latest.assert_outcomes(passed=1, failed=1)
    latest.stdout.fnmatch_lines(
        [
            "*no baseline for test_kpis.py::test_tight from --emstrack-baseline-from=latest: "
            "no finished passing run of this test in experiment 'pytest' at sqlite:*",
            "*python -m pytest test_kpis.py::test_tight --emstrack",
        ]
    )
    assert "PASSED test_kpis.py::test_loose" in latest.stdout.str()

    # ... or a given run (the passing one, at the same efficiency: both tests match it)
    by_id = project.run(f"--emstrack-baseline-from=run:{loose.info.run_id}", uri, subprocess=True)
    by_id.assert_outcomes(passed=2)
    # ... or the latest run of the same test with a tag (here: the failed one)
    tagged = project.run(
        "--emstrack-baseline-from=tag:pytest.outcome=failed", uri, "-rA", subprocess=True
    )
    tagged.assert_outcomes(passed=1, failed=1)
    assert "PASSED test_kpis.py::test_tight" in tagged.stdout.str()
    tagged.stdout.fnmatch_lines(["*no finished run tagged pytest.outcome=failed of this test*"])
    assert len(store.runs("pytest")) == 2  # reading baselines records nothing


GAP_TESTS = """
def test_within_gap(emstrack_run, ems_regression):
    emstrack_run.log_metrics({"solver.gap_rel": 0.05}, step=0)  # what a captured MIP solve logs
    ems_regression.check({"total_cost": 103.0, "solver_status": "Optimal"})


def test_beyond_gap(emstrack_run, ems_regression):
    emstrack_run.log_metrics({"solver.gap_rel": 0.05}, step=0)
    ems_regression.check({"total_cost": 106.0, "solver_status": "Optimal"})


def test_without_gap(ems_regression):
    ems_regression.check({"total_cost": 103.0, "solver_status": "Optimal"})


def test_given_gap(ems_regression):
    ems_regression.check({"total_cost": 103.0, "solver_status": "Optimal"}, mip_gap=0.05)
"""


def test_mip_gap_of_the_solves_excuses_objective_differences(project):
    project.pytester.makepyfile(test_gap=GAP_TESTS)
    folder = project.path / "emstrack_baselines" / "test_gap"
    folder.mkdir(parents=True)
    for name in ("test_within_gap", "test_beyond_gap", "test_without_gap", "test_given_gap"):
        baseline = {
            "emstrack_baseline": 1,
            "test": f"test_gap.py::{name}",
            "checks": {"default": {"metrics": {"total_cost": 100.0, "solver_status": "Optimal"}}},
        }
        (folder / f"{name}.json").write_text(json.dumps(baseline))
    result = project.run("test_gap.py", "-rA", subprocess=True)
    result.assert_outcomes(passed=2, failed=2)
    text = result.stdout.str()
    assert "PASSED test_gap.py::test_within_gap" in text
    assert "PASSED test_gap.py::test_given_gap" in text
    assert "FAILED test_gap.py::test_beyond_gap" in text
    assert "FAILED test_gap.py::test_without_gap" in text
    result.stdout.fnmatch_lines(
        ["within the MIP gap (2 tests):", "  test_gap.py::test_within_gap: total_cost 100 -> 103 *"]
    )
    # without --emstrack, emstrack_run used a temporary store: nothing in the project, no db left
    assert not list(project.path.rglob("*.db"))
