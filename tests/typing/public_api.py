"""Caller-side use of emstrack's public API; type-checked with mypy --strict by test_typing.py.

Never run: it only has to type-check (``reveal_type`` lines are checked against mypy's output).
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

import pandas as pd

import emstrack
from emstrack import analysis
from emstrack.schemas import OptimizationParams


@emstrack.tracked_optimization
def bare(capacity_kwh: float) -> dict[str, float]:
    return {"total_cost": capacity_kwh}


@emstrack.tracked_optimization(experiment="typing", run_name="{building_id}")
def with_options(building_id: str, n_days: int = 1) -> float:
    return float(n_days)


@emstrack.tracked_optimization(params=OptimizationParams, log_model="lp")
async def asynchronous(params: OptimizationParams) -> str:
    return params.building_id


def calls() -> None:
    assert_type(bare(1.0), dict[str, float])
    assert_type(with_options("DE_KN_residential1", n_days=2), float)
    with emstrack.tracked_run("block", experiment="typing", params={"a": 1}) as run:
        assert_type(run, emstrack.Run)
        run.log_metrics({"total_cost": 1.0}, step=0)
        run.log_series("soc_kwh", [0.1, 0.2])
        run.set_tags({"solver": "cbc"})
        run.log_artifact(Path("plan.csv"))
        run.flush()
        assert_type(run.run_id, str | None)
    assert_type(emstrack.active_run(), emstrack.Run | None)
    assert_type(emstrack.flush(timeout=1.0), bool)
    report = emstrack.sync()
    assert_type(report, emstrack.SyncReport)
    assert_type(emstrack.pending(), list[emstrack.PendingRun])


def reads() -> None:
    assert_type(analysis.runs("ems", "params.n_days = '1'", tags="all"), pd.DataFrame)
    assert_type(analysis.compare(["a", "b"], "total_cost", by="building_id"), pd.DataFrame)
    assert_type(analysis.best_run("ems", "savings_eur", higher_is_better=True), pd.Series)
    assert_type(analysis.series("0" * 32, "daily_cost"), pd.DataFrame)
    assert_type(analysis.export("ems", "runs.parquet", format="parquet"), Path)
    assert_type(analysis.metric_direction("total_cost"), bool | None)
