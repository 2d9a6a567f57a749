"""A shared server: PostgreSQL 15 + ``mlflow server --app-name basic-auth`` + a Dask sweep.

The test starts a throwaway PostgreSQL cluster and a basic-auth MLflow server with proxied
artifacts on it, then runs a 4-building x 3-scenario x 2-day grid (24 real optimizations) with
``emstrack sweep --executor dask`` (a LocalCluster of 2 workers) as an authenticated client.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emstrack import ems
from emstrack._sweep import SCENARIO_KEY_TAG, scenario_key
from emstrack._sweep.keys import SCENARIO_TAG
from helpers.postgres import AuthMlflowServer, PostgresCluster
from helpers.servers import (
    EMSTRACK,
    all_runs,
    checkout_pythonpath,
    server_environment,
    sync_counts,
)
from helpers.sweep_pipelines import doom, grid_toml
from helpers.sweep_pipelines import grid as sweep_grid

pytestmark = pytest.mark.slow

BUILDINGS = ["DE_KN_residential1", "DE_KN_residential2", "DE_KN_residential3", "DE_KN_residential4"]
SCENARIOS = ["battery_only", "battery_smart_ev", "self_consumption"]
DAYS = [0, 1]
FUNCTION = "helpers.sweep_pipelines:compare_modes"


class Shared:
    """The running cluster and server, the team's password, and the client's folders."""

    def __init__(self, pg: PostgresCluster, server: AuthMlflowServer, password: str, root: Path):
        self.pg = pg
        self.server = server
        self.password = password
        self.root = root
        self.spool = root / "spool"
        self.admin_auth: tuple[str, str] = ("admin", password)

    def env(self, password: str | None = None, **extra: str) -> dict[str, str]:
        return {
            **server_environment(),
            "PYTHONPATH": checkout_pythonpath(),
            "MLFLOW_TRACKING_URI": self.server.url,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": password or self.password,
            "EMSTRACK_SPOOL_DIR": str(self.spool),
            "EMSTRACK_STRICT": "1",
            **extra,
        }

    def sweep(self, experiment: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        grid = self.root / f"{experiment}.toml"
        grid.write_text(grid_toml(sweep_grid(BUILDINGS, SCENARIOS, DAYS, experiment, FUNCTION)))
        return subprocess.run(
            [str(EMSTRACK), "sweep", str(grid), "--executor", "dask", "--workers", "2",
             "--no-progress", *args],
            cwd=self.root, env=self.env(**extra), capture_output=True, text=True, timeout=900,
            check=False,
        )  # fmt: skip

    def runs(self, experiment: str) -> list[Any]:
        os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
        os.environ["MLFLOW_TRACKING_PASSWORD"] = self.password
        try:
            return all_runs(self.server.url, experiment)
        finally:
            del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("shared-server")
    password = secrets.token_urlsafe(18)
    with PostgresCluster() as pg:
        backend = pg.create_database("mlflow")
        auth = pg.create_database("mlflow_auth")
        with AuthMlflowServer(root / "server", backend, auth, password) as server:
            yield Shared(pg, server, password, root)


def expected_scenarios() -> dict[str, dict[str, Any]]:
    found = {}
    for building in BUILDINGS:
        for scenario in SCENARIOS:
            for day in DAYS:
                arguments = {
                    "n_days": 1, "building_id": building, "scenario": scenario, "start_day": day,
                }  # fmt: skip
                found[scenario_key(FUNCTION, arguments)] = arguments
    return found


def check_grid(runs: list[Any]) -> None:
    """Exactly one FINISHED run per scenario, with the scenario's params."""
    expected = expected_scenarios()
    finished = [run for run in runs if run.info.status == "FINISHED"]
    keyed = Counter(run.data.tags.get(SCENARIO_KEY_TAG) for run in runs)
    keyed.pop(None, None)
    assert len(finished) == 24
    assert keyed == Counter(dict.fromkeys(expected, 1))  # no duplicate scenario keys
    for run in finished:
        key = run.data.tags[SCENARIO_KEY_TAG]
        arguments = expected[key]
        assert json.loads(run.data.tags[SCENARIO_TAG]) == arguments
        inputs = ems.scenario_inputs(
            arguments["building_id"],
            arguments["scenario"],
            n_days=1,
            start_day=arguments["start_day"],
        )
        params = run.data.params
        names = ("building_id", "scenario", "start_day", "n_days", "solver", "resolution_minutes")
        for name in names:
            assert params[name] == str(inputs[name]), name
        assert params["optimization_mode"] == inputs["optimization_mode"].value
        assert params["battery_enabled"] == str(inputs["battery_enabled"]).lower()
        assert params["ev_enabled"] == str(inputs["ev_enabled"]).lower()
        assert "total_cost" in run.data.metrics


def test_grid_of_24_on_dask_lands_once_and_a_second_invocation_starts_none(shared: Shared) -> None:
    first = shared.sweep("shared-grid")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith("24 run (24 finished, 0 failed)")
    check_grid(shared.runs("shared-grid"))

    second = shared.sweep("shared-grid")
    assert second.returncode == 0, second.stdout + second.stderr
    assert (
        second.stdout.strip()
        .splitlines()[-1]
        .startswith("0 run (0 finished, 0 failed), 24 skipped")
    )
    assert len(shared.runs("shared-grid")) == 24


def test_a_worker_killed_mid_grid_then_a_rerun_ends_with_24(shared: Shared) -> None:
    marker = shared.root / "worker-died"
    first = shared.sweep(
        "shared-faults", **doom("DE_KN_residential2", "self_consumption", 1, marker)
    )
    assert marker.exists(), first.stdout + first.stderr  # a worker really died mid-scenario
    rerun = shared.sweep("shared-faults")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    runs = shared.runs("shared-faults")
    check_grid(runs)
    # The dead worker's attempt is kept as history, its key moved aside (not a duplicate).
    others = [run for run in runs if run.info.status != "FINISHED"]
    assert [run.data.tags.get("emstrack.superseded_scenario_key") for run in others] == [
        scenario_key(FUNCTION, {"n_days": 1, "building_id": "DE_KN_residential2",
                                "scenario": "self_consumption", "start_day": 1})
    ]  # fmt: skip


CLIENT = """
import emstrack, emstrack.ems as ems
optimize = emstrack.tracked_optimization(
    experiment="shared-auth", params=ems.scenario_inputs, metrics=ems.ModeComparison.figures
)(ems.compare_modes)
result = optimize("DE_KN_residential1", "battery_only", n_days=1)
print("savings", result.summary.savings_eur)
"""


def test_a_wrong_password_loses_nothing_and_no_password_is_stored(shared: Shared) -> None:
    wrong = "not-the-" + secrets.token_urlsafe(12)
    # Synchronous delivery: the refusal is met in the pipeline's own process, which warns. (In
    # the default process delivery the shipper keeps the run and reads report it waiting.)
    env = shared.env(password=wrong, EMSTRACK_DELIVERY="sync")
    del env["EMSTRACK_STRICT"]  # the pipeline itself must go on; tracking warns
    client = subprocess.run(
        [sys.executable, "-c", CLIENT], cwd=shared.root, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert client.returncode == 0, client.stderr
    assert client.stdout.startswith("savings ")
    warnings = [line for line in client.stderr.splitlines() if "EmstrackWarning" in line]
    assert len(warnings) == 1, client.stderr
    assert "401" in warnings[0]
    assert "kept in the spool" in warnings[0]
    assert shared.runs("shared-auth") == []

    refused = subprocess.run(
        [str(EMSTRACK), "sync"], cwd=shared.root, env=shared.env(password=wrong),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert sync_counts(refused)[0] == 0
    synced = subprocess.run(
        [str(EMSTRACK), "sync"], cwd=shared.root, env=shared.env(),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert sync_counts(synced)[1] == 0
    [run] = shared.runs("shared-auth")
    assert run.info.status == "FINISHED"
    assert run.data.params["building_id"] == "DE_KN_residential1"

    # The sweep's planning with a wrong password is one clear error, and nothing runs.
    denied = shared.sweep("shared-denied", MLFLOW_TRACKING_PASSWORD=wrong)
    assert denied.returncode == 1
    assert denied.stderr.strip().startswith("Error: tracking store")
    assert "401" in denied.stderr
    assert "Traceback" not in denied.stderr

    # Neither password anywhere: spool, database dump, artifact folder, outputs, server log.
    places: list[tuple[str, bytes]] = [
        (str(path), path.read_bytes())
        for folder in (shared.spool, shared.server.artifacts, shared.root)
        for path in folder.rglob("*")
        if path.is_file() and path.suffix != ".ini"
    ]
    places += [
        ("pg_dump mlflow", shared.pg.dump("mlflow")),
        ("pg_dump auth", shared.pg.dump("mlflow_auth")),
    ]
    places += [("client output", (client.stdout + client.stderr).encode())]
    assert any(name.endswith("config.json") for name, _ in places)  # artifacts were searched
    for secret in (shared.password, wrong):
        leaks = [name for name, data in places if secret.encode() in data]
        assert leaks == [], leaks
