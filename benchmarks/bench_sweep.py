"""Sweep throughput on this machine: 1 and 2 local workers, and a Dask LocalCluster of 2.

Usage::

    python benchmarks/bench_sweep.py [--buildings 6] [--days 20] [--n-days 1]

Each executor runs the same grid (buildings x 2 scenarios x days, real ``compare_modes``
optimizations of ``--n-days`` days each; 240 scenarios by default) into its own fresh SQLite
store, through ``emstrack.sweep``, then the same grid again with tracking switched off
(``EMSTRACK_DISABLED=1``), side by side. Printed per executor: wall time (worker start-up
included), scenarios per second, the speed-up over one worker, the sweep's own estimate of
tracking's share of the wall time (tracking's time in the scenarios spread over the workers,
plus the wait for the last deliveries) and the measured one: 1 - untracked wall / tracked wall.
Goals: 2 workers >= 1.7x one; tracking <= 3 %.
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


def run(spec: dict[str, Any], folder: Path, label: str, executor: str, workers: int) -> Any:
    slug = label.replace(" ", "-")
    uri = f"sqlite:///{folder / slug}.db"
    os.environ["EMSTRACK_SPOOL_DIR"] = str(folder / f"spool-{slug}")
    report = emstrack.sweep(
        spec,
        workers=workers,
        executor=executor,  # type: ignore[arg-type]
        tracking_uri=uri,
        progress=False,
    )
    print(f"{label}: {report.summary()}", flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buildings", type=int, default=6)
    parser.add_argument("--days", type=int, default=20)
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
        tracked = run(spec, folder, label, executor, workers)
        os.environ["EMSTRACK_DISABLED"] = "1"
        try:
            untracked = run(spec, folder, f"{label} untracked", executor, workers)
        finally:
            del os.environ["EMSTRACK_DISABLED"]
        rows.append((label, tracked, untracked))
    base = rows[0][1].rate
    print()
    print(f"load average now: {os.getloadavg()[0]:.1f} (2 cores, shared with other jobs)")
    print(
        f"{'executor':<10} {'scenarios':>9} {'failed':>6} {'wall s':>7} {'per s':>6} "
        f"{'speed-up':>8} {'untracked s':>11} {'tracking % (measured)':>21} "
        f"{'(estimate)':>10} {'start-up s':>10}"
    )
    for label, report, untracked in rows:
        measured = 1 - untracked.wall_seconds / report.wall_seconds
        print(
            f"{label:<10} {len(report.outcomes):>9} {len(report.failed):>6} "
            f"{report.wall_seconds:7.1f} {report.rate:6.2f} {report.rate / base:7.2f}x "
            f"{untracked.wall_seconds:11.1f} {100 * measured:20.1f}% "
            f"{100 * report.tracking_share:9.1f}% {report.startup_seconds:10.1f}"
        )
    print("goals: local x2 >= 1.70x local x1; tracking <= 3 %")


if __name__ == "__main__":
    main()
