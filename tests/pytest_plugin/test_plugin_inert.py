"""Installed but unused, the plugin costs nothing heavy and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")

HEAVY = ("mlflow", "pandas", "pydantic", "numpy", "pulp", "sqlalchemy")


def test_importing_the_plugin_loads_nothing_heavy():
    code = (
        "import sys, emstrack.pytest_plugin; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"


PLAIN_TESTS = """
import sys

import pytest

HEAVY = ("mlflow", "pandas", "pydantic", "numpy", "pulp")


def test_plain():
    assert 1 + 1 == 2


@pytest.mark.emstrack(rtol=1e-3, tolerances={"total_cost": {"rtol": 1e-2}}, experiment="x")
def test_marked_and_checked(ems_regression):
    ems_regression.check({"total_cost": 10.0, "solver_status": "Optimal"})
    assert [m for m in HEAVY if m in sys.modules] == []
"""


def test_unused_plugin_is_inert_under_strict_markers_and_warnings_as_errors(project):
    project.pytester.makepyfile(test_plain=PLAIN_TESTS)
    folder = project.path / "emstrack_baselines" / "test_plain"
    folder.mkdir(parents=True)
    update = project.run(
        "test_plain.py", "--strict-markers", "--emstrack-update-baseline", subprocess=True
    )
    update.assert_outcomes(passed=2)
    result = project.run("test_plain.py", "--strict-markers", "-W", "error", subprocess=True)
    result.assert_outcomes(passed=2)
    assert "= emstrack =" not in result.stdout.str()  # nothing to report: no section
    assert not list(project.path.rglob("*.db"))
    assert not (project.path / "mlruns").exists()


def test_contradicting_options_are_a_usage_error(project):
    result = project.run("--emstrack-update-baseline", "--emstrack-baseline-from=latest")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot be combined with --emstrack-baseline-from*"])
    bad = project.run("--emstrack-baseline-from=yesterday")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*expected run:<run id>, tag:<key>=<value> or latest*"])
