"""Time ``emstrack.analysis`` against ``mlflow.search_runs`` on a large SQLite store.

Usage::

    python benchmarks/bench_analysis.py [--runs 10000] [--store PATH] [--workers 2] [--build-only]

The store (default ``.bench/analysis-<runs>.db``) is built once, realistically: every run goes
through ``emstrack.tracked_run`` (5 params, 15 metrics, the tags emstrack writes, 1 % FAILED
runs), in ``--workers`` processes writing to the same database. A store that exists is reused
as it is. Then each analysis call and ``mlflow.search_runs`` (to a DataFrame) is timed on the
same store in this process, and the table of times and ratios is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from scratch import scratch_folder

EXPERIMENT = "bench-analysis"
BUILDINGS = [f"DE_KN_residential{i}" for i in range(1, 11)]
MODES = ["cost", "self_consumption"]
CAPACITIES = [5.0, 10.0, 13.5]
METRIC_NAMES = [
    "total_cost",
    "savings_eur",
    "savings_pct",
    "cost_per_kwh",
    "baseline_cost",
    "optimization_time_seconds",
    "variables_count",
    "constraints_count",
    "total_consumption_kwh",
    "battery_cycles",
    "ev_charging_kwh",
    "self_consumption_pct",
    "peak_import_kw",
    "convergence_achieved",
    "constraint_violations",
]
TARGET_S = 1.0


class _Failure(RuntimeError):
    """Raised inside a run to end it FAILED."""


def _write_runs(uri: str, spool: str, first: int, count: int, seed: int) -> int:
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["EMSTRACK_SPOOL_DIR"] = spool
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import emstrack

    rng = random.Random(seed)
    for index in range(first, first + count):
        building = BUILDINGS[index % len(BUILDINGS)]
        mode = MODES[(index // len(BUILDINGS)) % len(MODES)]
        params = {
            "building_id": building,
            "optimization_mode": mode,
            "battery_enabled": rng.random() < 0.8,
            "n_days": rng.randint(1, 7),
            "battery": {"capacity_kwh": rng.choice(CAPACITIES)},
        }
        baseline = rng.uniform(20, 60)
        cost = baseline * rng.uniform(0.6, 0.95)
        metrics = {
            "total_cost": cost,
            "savings_eur": baseline - cost,
            "savings_pct": 100 * (baseline - cost) / baseline,
            "cost_per_kwh": cost / rng.uniform(80, 160),
            "baseline_cost": baseline,
            "optimization_time_seconds": rng.uniform(0.05, 3.0),
            "variables_count": rng.randint(500, 5000),
            "constraints_count": rng.randint(800, 8000),
            "total_consumption_kwh": rng.uniform(80, 160),
            "battery_cycles": rng.uniform(0, 2),
            "ev_charging_kwh": rng.uniform(0, 30),
            "self_consumption_pct": rng.uniform(20, 90),
            "peak_import_kw": rng.uniform(2, 12),
            "convergence_achieved": rng.random() < 0.98,
            "constraint_violations": rng.choice([0, 0, 0, 1]),
        }
        try:
            with emstrack.tracked_run(
                f"{building}-{mode}-{index}", experiment=EXPERIMENT, params=params
            ) as run:
                run.set_tags({"solver.status": "Optimal"})
                if index % 100 == 99:
                    raise _Failure("solver crashed")
                run.log_metrics(metrics)
        except _Failure:
            pass
    # Runs reach the store through a shipper process: wait for it, or the store is timed
    # (and kept for reuse) with runs still on their way.
    if not emstrack.flush():
        raise RuntimeError(f"runs left in the spool {spool}: {emstrack.pending()}")
    return count


def build_store(path: Path, runs: int, workers: int) -> None:
    """Write ``runs`` runs into a new SQLite store at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{path.resolve()}"
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments()  # creates and migrates the schema
    spool = str(scratch_folder("bench-spool-"))
    shares = [runs // workers + (1 if i < runs % workers else 0) for i in range(workers)]
    starts = [sum(shares[:i]) for i in range(workers)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = sum(
            pool.map(_write_runs, [uri] * workers, [spool] * workers, starts, shares, starts)
        )
    print(f"built {done} runs in {time.perf_counter() - started:.0f} s: {path}", flush=True)


def _best_of(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def time_calls(path: Path, repeat: int) -> list[tuple[str, float]]:
    """Seconds of each analysis call and of ``mlflow.search_runs`` on the store."""
    import mlflow

    from emstrack import analysis

    uri = f"sqlite:///{path.resolve()}"
    out = scratch_folder("bench-export-")
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("compare", lambda: analysis.compare(EXPERIMENT, "total_cost", tracking_uri=uri)),
        ("best_run", lambda: analysis.best_run(EXPERIMENT, "savings_eur", tracking_uri=uri)),
        ("export csv", lambda: analysis.export(EXPERIMENT, out / "runs.csv", tracking_uri=uri)),
        (
            "export parquet",
            lambda: analysis.export(EXPERIMENT, out / "runs.parquet", tracking_uri=uri),
        ),
        ("runs", lambda: analysis.runs(EXPERIMENT, tracking_uri=uri)),
        (
            "compare (filtered)",
            lambda: analysis.compare(
                EXPERIMENT,
                "total_cost",
                filter="params.battery_enabled = 'true' AND metrics.savings_pct > 10",
                tracking_uri=uri,
            ),
        ),
    ]
    results = [(name, _best_of(action, repeat)) for name, action in calls]
    mlflow.set_tracking_uri(uri)
    reference = _best_of(
        lambda: mlflow.search_runs(experiment_names=[EXPERIMENT], max_results=100_000), 1
    )
    results.append(("mlflow.search_runs", reference))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each analysis call")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    path: Path = args.store or Path(".bench") / f"analysis-{args.runs}.db"
    if path.exists():
        print(f"reusing {path}", flush=True)
    else:
        build_store(path, args.runs, max(1, args.workers))
    if args.build_only:
        return 0
    results = time_calls(path, args.repeat)
    reference = results[-1][1]
    print(f"\n{'call':<20} {'seconds':>8} {'vs search_runs':>15} {'<= 1 s':>7}")
    for name, seconds in results:
        ratio = f"{reference / seconds:.1f}x faster" if name != "mlflow.search_runs" else "1.0x"
        within = ("yes" if seconds <= TARGET_S else "NO") if name != "mlflow.search_runs" else ""
        print(f"{name:<20} {seconds:>8.3f} {ratio:>15} {within:>7}")
    slow = [name for name, seconds in results[:-1] if seconds > TARGET_S]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
