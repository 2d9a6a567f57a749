"""``emstrack demo``: both EMS pipelines on the shipped sample, tracked from outside.

The pipeline functions in :mod:`emstrack.ems` contain no tracking code; this module attaches it
with ``tracked_optimization(...)(ems.compare_modes)`` and friends, exactly as a user would,
writes to the embedded default store and reads the results back for a comparison table.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._progress import Progress
from .._tracking.decorator import tracked_optimization
from .._tracking.run import tracked_run

F = TypeVar("F", bound=Callable[..., Any])

COMPARISON_EXPERIMENT = "ems-demo-pipeline-a"
LEARNING_EXPERIMENT = "ems-demo-pipeline-b"
DEMO_BUILDINGS = ("DE_KN_residential1", "DE_KN_residential3", "DE_KN_residential4")
DEMO_DAYS = 3
TRAINING_DAYS = 14


@dataclass(frozen=True)
class DemoResult:
    """What the demo did."""

    tracking_uri: str
    runs: int
    seconds: float
    table: list[str]


def run_demo(
    *,
    tracking_uri: str,
    buildings: Sequence[str] = DEMO_BUILDINGS,
    n_days: int = DEMO_DAYS,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run Pipeline A (every scenario) and Pipeline B for ``buildings``, tracked into a store."""
    from .. import ems

    started = time.perf_counter()
    compare = tracked_optimization(
        experiment=COMPARISON_EXPERIMENT,
        run_name="{building_id}_{scenario}",
        params=ems.scenario_inputs,
        metrics=ems.ModeComparison.figures,
        artifacts=["{output_dir}"],
        tracking_uri=tracking_uri,
    )(ems.compare_modes)
    # Pipeline B's halves run inside a parent run, whose experiment and store they inherit.
    learn = _child("learning_{building_id}", ems.UsageLearning.figures)(ems.learn_device_usage)
    schedule = _child("scheduling_{building_id}", ems.LearnedSchedule.figures)(
        ems.schedule_learned_devices
    )

    total = len(buildings) * (len(ems.SCENARIOS) + 1)
    progress = Progress(total, echo, description="emstrack demo")
    with progress, tempfile.TemporaryDirectory(prefix="emstrack-demo-") as scratch:
        output = Path(scratch)
        for building in buildings:
            for scenario in ems.SCENARIOS:
                result = compare(
                    building, scenario, n_days=n_days, output_dir=output / f"{building}_{scenario}"
                )
                progress.step(
                    1,
                    f"pipeline A  {building:<19} {scenario:<17} "
                    f"saves {result.summary.savings_pct:6.2f} %",
                )
        for building in buildings:
            folder = output / f"{building}_learning"
            inputs = {
                "building_id": building,
                "training_days": TRAINING_DAYS,
                "optimization_days": n_days,
            }
            with tracked_run(
                f"learn_and_schedule_{building}",
                experiment=LEARNING_EXPERIMENT,
                params=inputs,
                tracking_uri=tracking_uri,
            ) as parent:
                learning = learn(building, TRAINING_DAYS, output_dir=folder / "learning")
                scheduled = schedule(building, learning, n_days, output_dir=folder / "scheduling")
                summary = scheduled.summary
                parent.log_metrics(
                    {
                        "savings_pct": summary.savings_pct,
                        "savings_eur": summary.savings_eur,
                        "jobs_moved": summary.jobs_moved,
                        "avg_convergence": learning.metrics.avg_convergence,
                        "devices_trained": learning.metrics.devices_trained,
                    }
                )
            progress.step(
                3,
                f"pipeline B  {building:<19} learned {learning.metrics.devices_trained} devices, "
                f"moved {summary.jobs_moved}/{summary.jobs} runs, "
                f"saves {summary.savings_pct:.2f} %",
            )
    table = comparison_table(tracking_uri)
    return DemoResult(tracking_uri, progress.runs, time.perf_counter() - started, table)


def _child(run_name: str, metrics: Callable[[Any], Any]) -> Callable[[F], F]:
    return tracked_optimization(run_name=run_name, metrics=metrics, artifacts=["{output_dir}"])


def comparison_table(tracking_uri: str) -> list[str]:
    """Savings per building and scenario, read back from the store."""
    from .. import analysis
    from .table import render

    frame = analysis.compare(
        COMPARISON_EXPERIMENT,
        "savings_pct",
        by=("building_id", "scenario"),
        tracking_uri=tracking_uri,
    )
    pivot = frame.pivot(index="building_id", columns="scenario", values="mean")
    pivot = pivot.reindex(columns=[c for c in _scenario_order() if c in pivot.columns])
    pivot = pivot.reset_index()
    title = "savings_pct by building and scenario (higher is better)"
    return [title, *render(pivot, fixed=pivot.columns[1:])]


def _scenario_order() -> tuple[str, ...]:
    from ..ems import SCENARIOS

    return SCENARIOS
