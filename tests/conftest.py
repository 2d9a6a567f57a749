"""Fixtures shared by the whole suite: every test gets its own real SQLite MLflow store.

Creating a SQLite store runs MLflow's schema migrations (about 2 s here), so the suite migrates
one template database per session and copies it for each test: each test still has a store of
its own in ``tmp_path``, read back through ``MlflowClient``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# The pytest plugin's tests run pytest on generated projects (tests/pytest_plugin/).
pytest_plugins = ["pytester", "helpers.plugin_project"]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

_ISOLATED_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "EMSTRACK_DISABLED",
    "EMSTRACK_BACKGROUND",
    "EMSTRACK_SPOOL_DIR",
    "EMSTRACK_SECRET_PATTERN",
    "EMSTRACK_DRAIN_TIMEOUT",
    "EMSTRACK_DELIVERY",
    "EMSTRACK_SQLITE_WAL",
    "EMSTRACK_FLUSH_TIMEOUT",
)


@dataclass
class Store:
    """A real MLflow SQLite store in the test's own folder."""

    uri: str
    path: Path
    spool: Path
    root: Path

    @property
    def client(self) -> MlflowClient:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def runs(self, experiment: str = "Default", **kwargs: Any) -> list[Any]:
        """Every run of ``experiment``, oldest first."""
        client = self.client
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return []
        from mlflow.entities import ViewType

        runs = client.search_runs(
            [found.experiment_id], run_view_type=ViewType.ALL, max_results=50_000, **kwargs
        )
        return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))

    def artifact_root(self, run_id: str) -> Path:
        """The local folder holding a run's artifacts."""
        from urllib.parse import urlsplit

        uri = self.client.get_run(run_id).info.artifact_uri
        return Path(urlsplit(uri).path)

    def spooled(self) -> list[Path]:
        """Run folders waiting in the spool."""
        return sorted(p for p in self.spool.glob("*") if p.is_dir()) if self.spool.exists() else []


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty SQLite MLflow database, copied by each test."""
    folder = tmp_path_factory.mktemp("template-store")
    database = folder / "mlflow.db"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mlflow.tracking import MlflowClient; "
            "MlflowClient(tracking_uri='sqlite:///' + sys.argv[1]).search_experiments()",
            str(database),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        cwd=folder,  # MLflow roots the Default experiment's artifacts in the working directory
    )
    return database


@pytest.fixture(scope="session", autouse=True)
def _outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run the session in a temporary working directory.

    MLflow puts the artifacts of an experiment it creates in a SQLite store under ``./mlruns``
    of the working directory; without this, stores of module fixtures and benchmarks-like tests
    would leave them in the checkout.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture
def store(
    tmp_path: Path, template_database: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """A fresh store as the default for emstrack, a private spool, strict mode, synchronous
    delivery, and no leaks."""
    for name in _ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    database = tmp_path / "mlflow.db"
    shutil.copyfile(template_database, database)
    uri = f"sqlite:///{database}"
    spool = tmp_path / "spool"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("EMSTRACK_SPOOL_DIR", str(spool))
    monkeypatch.setenv("EMSTRACK_STRICT", "1")
    # The suite reads the store right after each call: synchronous delivery, the mode kept for
    # exactly that. The default (a shipper process) has its own tests in tests/delivery.
    monkeypatch.setenv("EMSTRACK_DELIVERY", "sync")
    monkeypatch.chdir(tmp_path)
    yield Store(uri=uri, path=database, spool=spool, root=tmp_path)
    _assert_no_run_left_open(uri)


def _assert_no_run_left_open(uri: str) -> None:
    import mlflow

    from emstrack import active_run

    assert active_run() is None, "an emstrack run is still open after the test"
    assert mlflow.active_run() is None, "an MLflow run is still active after the test"
    client_runs = _running_runs(uri)
    assert not client_runs, f"runs left RUNNING in the store: {client_runs}"


def _running_runs(uri: str) -> list[str]:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    runs = client.search_runs(
        experiments, filter_string="attributes.status = 'RUNNING'", run_view_type=ViewType.ALL
    )
    return [run.info.run_name for run in runs]
