"""A real ``mlflow server`` over HTTP: a decorated pipeline writes, REST and emstrack read back."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

import emstrack
from emstrack import analysis
from helpers.servers import MlflowServer, server_environment

pytestmark = pytest.mark.slow

CASES = [
    ("B1", "cost", 12.0),
    ("B1", "self_consumption", 14.5),
    ("B2", "cost", 20.0),
    ("B2", "cost", 18.0),
    ("B2", "self_consumption", 21.25),
]


@pytest.fixture
def server(tmp_path: Path, template_database: Path) -> Iterator[MlflowServer]:
    """One mlflow server (own SQLite backend, own artifact destination), always stopped."""
    with MlflowServer(tmp_path / "server", template_database) as running:
        yield running


def _pipeline(uri: str) -> Any:
    @emstrack.tracked_optimization(
        experiment="http-ems", run_name="{building_id}-{optimization_mode}", tracking_uri=uri
    )
    def optimize(building_id: str, optimization_mode: str, cost: float, n_days: int = 2) -> Any:
        return {"total_cost": cost, "savings_eur": 30.0 - cost, "solver_status": "Optimal"}

    return optimize


def _write_cases(uri: str, spool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Call the decorated pipeline once per case of CASES, strict, spooling to ``spool``."""
    monkeypatch.setenv("EMSTRACK_SPOOL_DIR", str(spool))
    monkeypatch.setenv("EMSTRACK_STRICT", "1")
    monkeypatch.setenv("EMSTRACK_DELIVERY", "sync")  # each run is on the server on return
    optimize = _pipeline(uri)
    for building, mode, cost in CASES:
        optimize(building, mode, cost)


class TestPipelineOverHttp:
    """Runs written through the server are read back identically by REST and by emstrack."""

    def test_runs_params_metrics_and_artifacts_round_trip(
        self, server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """REST sees every run with its params, metrics and config.json artifact."""
        _write_cases(server.url, tmp_path / "spool", monkeypatch)

        experiment = requests.get(
            f"{server.url}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "http-ems"},
            timeout=10,
        ).json()["experiment"]
        found = requests.post(
            f"{server.url}/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [experiment["experiment_id"]], "max_results": 100},
            timeout=10,
        ).json()["runs"]
        assert len(found) == len(CASES)
        seen = []
        for run in found:
            params = {p["key"]: p["value"] for p in run["data"]["params"]}
            metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
            tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
            assert run["info"]["status"] == "FINISHED"
            assert (
                run["info"]["run_name"] == f"{params['building_id']}-{params['optimization_mode']}"
            )
            assert params["n_days"] == "2"
            assert metrics["savings_eur"] == 30.0 - metrics["total_cost"]
            assert tags["solver_status"] == "Optimal"
            seen.append((params["building_id"], params["optimization_mode"], metrics["total_cost"]))
            artifact = requests.get(
                f"{server.url}/api/2.0/mlflow-artifacts/artifacts/"
                f"{experiment['experiment_id']}/{run['info']['run_id']}/artifacts/config.json",
                timeout=10,
            )
            assert artifact.status_code == 200
            assert json.loads(artifact.content)["inputs"]["building_id"] == params["building_id"]
        assert sorted(seen) == sorted(CASES)
        assert list(server.artifacts.rglob("config.json"))  # stored at the server's destination

    def test_ending_runs_writes_nothing_to_stdout(
        self,
        server: MlflowServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        """MLflow's "View run" links stay out of the pipeline's and ``sync``'s output."""
        monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
        capfd.readouterr()
        _write_cases(server.url, tmp_path / "spool", monkeypatch)  # each run ended in the call
        monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
        _pipeline(server.url)("B3", "cost", 9.0)
        assert emstrack.sync(tmp_path / "spool", tracking_uri=server.url).sent

        out = capfd.readouterr().out
        assert "View run" not in out, out
        assert server.url not in out, out
        client = MlflowClient(server.url)
        experiment = client.get_experiment_by_name("http-ems")
        assert experiment is not None
        ended = client.search_runs([experiment.experiment_id])
        assert len(ended) == len(CASES) + 1
        assert {run.info.status for run in ended} == {"FINISHED"}
        assert all(run.info.end_time >= run.info.start_time for run in ended)

    def test_compare_over_http_equals_compare_on_the_servers_database(
        self, server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """search_runs over REST (client path) and SQL on the backend give the same frames."""
        _write_cases(server.url, tmp_path / "spool", monkeypatch)

        over_http = analysis.compare("http-ems", "total_cost", tracking_uri=server.url)
        on_database = analysis.compare("http-ems", "total_cost", tracking_uri=server.backend_uri)
        pd.testing.assert_frame_equal(over_http, on_database)
        assert over_http[["building_id", "optimization_mode", "count", "min"]].values.tolist() == [
            ["B1", "cost", 1, 12.0],
            ["B1", "self_consumption", 1, 14.5],
            ["B2", "cost", 2, 18.0],
            ["B2", "self_consumption", 1, 21.25],
        ]
        runs_http = analysis.runs("http-ems", tracking_uri=server.url)
        runs_sql = analysis.runs("http-ems", tracking_uri=server.backend_uri)
        pd.testing.assert_frame_equal(runs_http, runs_sql)

        emstrack_script = shutil.which("emstrack")
        assert emstrack_script is not None
        env = {**server_environment(), "EMSTRACK_SPOOL_DIR": str(tmp_path / "spool")}
        result = subprocess.run(
            [
                emstrack_script,
                "compare",
                "--tracking-uri",
                server.url,
                "-e",
                "http-ems",
                "-m",
                "total_cost",
                "--csv",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        printed = pd.read_csv(io.StringIO(result.stdout))
        assert printed["best_run_id"].tolist() == on_database["best_run_id"].tolist()
        assert printed["mean"].tolist() == on_database["mean"].tolist()
        assert not os.path.exists(tmp_path / "mlflow.db")  # nothing was created locally
