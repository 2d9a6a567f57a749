"""Fixtures of the pytest plugin's tests: a pytester project with the reference EMS model.

Registered for the whole suite by ``tests/conftest.py`` (``pytest_plugins``), next to
``pytester``; nothing here is imported or run unless a test asks for ``project``.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

INI = """
[pytest]
# hypothesis and pytest-benchmark are not used here; they cost seconds per run (and
# pytest-benchmark warns under xdist, an error with filterwarnings = error)
addopts = -p no:cacheprovider -p no:hypothesispytest -p no:benchmark
filterwarnings =
    error
    ignore::sqlalchemy.exc.SADeprecationWarning
    ignore:PULP_CBC_CMD is deprecated:DeprecationWarning
"""

KPI_TESTS = """
import os

import pytest

from emstrack.ems import optimize_building
from emstrack.schemas import BatterySettings, OptimizationParams


def kpis():
    efficiency = float(os.environ["EMS_EFFICIENCY"])
    params = OptimizationParams(
        building_id="DE_KN_residential1",
        battery_enabled=True,
        n_days=1,
        battery=BatterySettings(
            charge_efficiency=efficiency, discharge_efficiency=efficiency
        ),
    )
    metrics = optimize_building(params).metrics
    return {
        "total_cost": metrics.total_cost,
        "savings_pct": metrics.savings_pct,
        "solver_status": metrics.solver_status,
    }


def test_tight(ems_regression):
    ems_regression.check(kpis())


@pytest.mark.emstrack(rtol=1e-3)
def test_loose(ems_regression):
    ems_regression.check(kpis())
"""


@dataclass
class Project:
    """A pytester project whose tests check the EMS model's KPIs against baselines."""

    pytester: pytest.Pytester

    @property
    def path(self) -> Path:
        return self.pytester.path

    def efficiency(self, value: float) -> None:
        os.environ["EMS_EFFICIENCY"] = repr(value)

    def run(self, *args: str, subprocess: bool = False) -> pytest.RunResult:
        if subprocess:
            return self.pytester.runpytest_subprocess(*args, timeout=240)
        return self.pytester.runpytest(*args)

    def baseline(self, test: str) -> Path:
        return self.path / "emstrack_baselines" / "test_kpis" / f"{test}.json"

    def baselines(self) -> dict[str, str]:
        """The baseline files of ``test_kpis.py`` by name."""
        return {p.name: p.read_text() for p in self.baseline("x").parent.glob("*.json")}

    def with_baselines(self) -> None:
        """Baselines of the unchanged model, made by ``--emstrack-update-baseline`` once."""
        if not _BASELINES:
            self.run("--emstrack-update-baseline").assert_outcomes(passed=2)
            _BASELINES.update(self.baselines())
            return
        self.baseline("x").parent.mkdir(parents=True)
        for name, text in _BASELINES.items():
            (self.baseline("x").parent / name).write_text(text)


_BASELINES: dict[str, str] = {}


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by the session's runs (the temporary store's template lives here)."""
    return tmp_path_factory.mktemp("cache-home")


@pytest.fixture
def project(
    preloaded_modules: None,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    cache_home: Path,
) -> Project:
    """A project with ``test_kpis.py`` (a strict and a loose check), strict tracking, no store."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "EMSTRACK_BACKGROUND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMSTRACK_STRICT", "1")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("EMSTRACK_SPOOL_DIR", str(pytester.path / "spool"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setenv("EMS_EFFICIENCY", "0.95")
    pytester.makefile(".ini", pytest=textwrap.dedent(INI))
    pytester.makepyfile(test_kpis=KPI_TESTS)
    return Project(pytester)


@pytest.fixture(scope="session")
def preloaded_modules(template_database: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import the EMS model and MLflow's SQL store code before any pytester snapshot.

    In-process pytester runs remove the modules imported after their snapshot (taken when the
    ``pytester`` fixture is made; session fixtures such as this one come first). numpy cannot
    be imported twice in a process, and MLflow's store modules imported again re-register
    SQLAlchemy functions and warn (an error here).
    """
    import shutil

    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    database = tmp_path_factory.mktemp("preload") / "mlflow.db"
    shutil.copyfile(template_database, database)
    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")
