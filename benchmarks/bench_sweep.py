"""Sweep throughput on this machine: 1 and 2 local workers, and a Dask LocalCluster of 2.

Usage::

    python benchmarks/bench_sweep.py [--buildings 6] [--days 4] [--n-days 1]

Each executor runs the same grid (buildings x 2 scenarios x days, real ``compare_modes``
optimizations of ``--n-days`` days each) into its own fresh SQLite store, through
``emstrack.sweep``. Printed per executor: wall time (worker start-up included), scenarios per
second, the speed-up over one worker, and tracking's share of the workers' time in scenarios
(the tracked call minus the function itself, delivery to the store included). Goals: 2 workers
>= 1.7x one; tracking <= 3 %.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import emstrack

BUILDINGS = [f"DE_KN_residential{i}" for i in range(1, 7)]


def grid(buildings: int, days: int, n_days: int) -> dict[str, Any]:
    return {
        "function": "emstrack.ems:compare_modes",
        "experiment": "bench-sweep",
        "grid": {
            "building_id": BUILDINGS[:buildings],
            "scenario": ["battery_only", "self_consumption"],
            "start_day": [n_days * day for day in range(days)],
        },
        "fixed": {"n_days": n_days},
        "tracking": {
            "params": "emstrack.ems:scenario_inputs",
            "metrics": "emstrack.ems:ModeComparison.figures",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buildings", type=int, default=6)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--n-days", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    spec = grid(args.buildings, args.days, args.n_days)
    folder = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    rows = []
    for label, executor, workers in (
        ("local x1", "local", 1),
        ("local x2", "local", 2),
        ("dask x2", "dask", 2),
    ):
        uri = f"sqlite:///{folder / label.replace(' ', '-')}.db"
        os.environ["EMSTRACK_SPOOL_DIR"] = str(folder / f"spool-{label.replace(' ', '-')}")
        report = emstrack.sweep(
            spec, workers=workers, executor=executor, tracking_uri=uri, progress=False
        )  # type: ignore[arg-type]
        rows.append((label, report))
        print(report.summary(), flush=True)
    base = rows[0][1].rate
    print()
    print(f"load average now: {os.getloadavg()[0]:.1f} (2 cores, shared with other jobs)")
    print(
        f"{'executor':<10} {'scenarios':>9} {'failed':>6} {'wall s':>7} {'per s':>6} "
        f"{'speed-up':>8} "
        f"{'function s':>10} {'tracking s':>10} {'tracking %':>10} {'start-up s':>10}"
    )
    for label, report in rows:
        function = report.worker_seconds - report.tracking_seconds
        print(
            f"{label:<10} {len(report.outcomes):>9} {len(report.failed):>6} "
            f"{report.wall_seconds:7.1f} "
            f"{report.rate:6.2f} {report.rate / base:7.2f}x {function:10.2f} "
            f"{report.tracking_seconds:10.2f} {100 * report.tracking_share:9.1f}% "
            f"{report.startup_seconds:10.1f}"
        )
    print("goals: local x2 >= 1.70x local x1; tracking <= 3 %")


if __name__ == "__main__":
    main()
