"""The varied store shared by the analysis tests: runs with varied, missing and NaN values.

It holds FAILED, KILLED and deleted runs, a nested run, a deleted experiment and an empty one,
written with emstrack itself; ``search`` is MLflow's own answer to compare against.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BUILDINGS = ("B0", "B1", "B2", "B3")
MODES = ("cost", "self_consumption")


class _Interrupted(Exception):
    """Ends a run FAILED on purpose."""


@dataclass
class Varied:
    """The module store: its URI and what was written into it."""

    uri: str
    path: Path
    ids: dict[str, str] = field(default_factory=dict)
    """Run name -> run id of every run written (deleted ones included)."""
    deleted: set[str] = field(default_factory=set)


def _cost(i: int) -> float:
    return 10.0 + (i * 7) % 13 + 0.25


def build_varied_store(folder: Path, template: Path) -> Varied:
    """Write the varied store (see the module docstring) with emstrack itself."""
    from mlflow.tracking import MlflowClient

    import emstrack

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "varied.db"
    shutil.copyfile(template, path)
    varied = Varied(uri=f"sqlite:///{path}", path=path)
    uri = varied.uri
    for i in range(40):
        params: dict[str, Any] = {
            "building_id": BUILDINGS[i % 4],
            "optimization_mode": MODES[(i // 4) % 2],
            "battery_enabled": i % 3 != 0,
            "n_days": 1 + i % 7,
            "site_code": f"{i % 3:04d}",
        }
        if i < 30:
            params["battery"] = {"capacity_kwh": (10.0, 13.5)[i % 2]}
        name = f"run-{i:02d}"
        try:
            with emstrack.tracked_run(
                name, experiment="ems", params=params, tracking_uri=uri
            ) as run:
                run.set_tags({"solver.status": "Infeasible" if i % 10 == 9 else "Optimal"})
                metrics: dict[str, float] = {
                    "total_cost": _cost(i),
                    "savings_eur": (i * 5) % 9 - 2.0,
                }
                if i == 3:
                    metrics["total_cost"] = math.nan
                if i == 5:
                    del metrics["savings_eur"]
                if i < 4:
                    metrics["jobs_moved"] = float(i % 2)
                run.log_metrics(metrics)
                if i < 6:
                    run.log_series("daily_cost", [1.0 + i, math.nan if i == 2 else 2.0 + i, 3.0])
                if i == 0:
                    with emstrack.tracked_run("child-00", params={"building_id": "B0"}) as child:
                        child.log_metrics({"total_cost": 1.0})
                    varied.ids["child-00"] = str(child.run_id)
                if i == 11:
                    raise _Interrupted("solver crashed")
                if i == 13:
                    raise KeyboardInterrupt
        except (_Interrupted, KeyboardInterrupt):
            pass
        varied.ids[name] = str(run.run_id)
    for i in range(4):
        name = f"b-{i}"
        with emstrack.tracked_run(
            name,
            experiment="ems-b",
            params={"building_id": "B9", "optimization_mode": MODES[i % 2]},
            tracking_uri=uri,
        ) as run:
            run.log_metrics({"total_cost": 20.0 + i, "savings_eur": float(i)})
        varied.ids[name] = str(run.run_id)
    for i in range(2):
        with emstrack.tracked_run(f"gone-{i}", experiment="gone", tracking_uri=uri) as run:
            run.log_metrics({"total_cost": 1.0})
    client = MlflowClient(tracking_uri=uri)
    client.delete_run(varied.ids["run-17"])
    varied.deleted.add(varied.ids["run-17"])
    gone = client.get_experiment_by_name("gone")
    assert gone is not None
    client.delete_experiment(gone.experiment_id)
    client.create_experiment("empty")
    return varied


def varied_store(
    tmp_path_factory: pytest.TempPathFactory, template_database: Path
) -> Iterator[Varied]:
    """Build the varied store with a private spool in strict mode (body of the fixtures)."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("varied")
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "EMSTRACK_BACKGROUND"):
            patch.delenv(name, raising=False)
        patch.setenv("EMSTRACK_SPOOL_DIR", str(folder / "spool"))
        patch.setenv("EMSTRACK_STRICT", "1")
        patch.setenv("EMSTRACK_DELIVERY", "sync")  # run ids read right after each run
        yield build_varied_store(folder, template_database)


def search(uri: str, experiments: list[str], filter_string: str = "") -> list[Any]:
    """MLflow's own answer: every active run of the experiments matching the filter."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    ids = []
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        ids.append(experiment.experiment_id)
    return list(
        client.search_runs(
            ids, filter_string, run_view_type=ViewType.ACTIVE_ONLY, max_results=50_000
        )
    )
