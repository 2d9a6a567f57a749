"""Sweep throughput on this machine: 1 and 2 local workers, and a Dask LocalCluster of 2.

Usage::

    python benchmarks/bench_sweep.py [--buildings 6] [--days 28] [--n-days 1] [--rounds 3]

Each executor runs the same grid (buildings x the 4 scenarios x days, real ``compare_modes``
optimizations of ``--n-days`` days each; 672 scenarios by default, every day of the shipped
sample, so that the workers' start-up weighs as little as the sample allows) into its own fresh
SQLite store, through ``emstrack.sweep``, then the same grid again with tracking switched off
(``EMSTRACK_DISABLED=1``), side by side. A round runs every executor this way, in an order that
turns from round to round, tracked first in even rounds and untracked first in odd ones.

Printed per executor, each the median of ``--rounds`` rounds: wall time (worker start-up
included), scenarios per second, the speed-up over the first executor (the median of each
round's own ratio, tracked and untracked: the machine's speed drifts between rounds by more
than the goal's margin, and a ratio of two sweeps minutes apart measures that drift), the
sweep's own estimate of tracking's share of the wall time (tracking's time in the scenarios
spread over the workers, the driver's delivery CPU when the workers fill every core, and the
wait for the last deliveries) and the measured one: 1 - untracked wall / tracked wall, and
tracking's share of the CPU time of the sweep and all its processes (1 - untracked CPU /
tracked CPU), which a neighbour's load does not distort: with both cores busy it is the wall
share an idle machine would show. Every round's speed-up and measured share are printed below
the table. ``bench_sweep_cost.py`` measures the share from each scenario run tracked and
untracked side by side.
Goals: 2 workers >= 1.7x one; tracking <= 3 %.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
from pathlib import Path
from typing import Any

from scratch import scratch_folder

import emstrack
from emstrack.ems import SCENARIOS

BUILDINGS = [f"DE_KN_residential{i}" for i in range(1, 7)]


def grid(buildings: int, days: int, n_days: int) -> dict[str, Any]:
    return {
        "function": "emstrack.ems:compare_modes",
        "experiment": "bench-sweep",
        "grid": {
            "building_id": BUILDINGS[:buildings],
            "scenario": list(SCENARIOS),
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
    before = cpu_seconds()
    report = emstrack.sweep(
        spec,
        workers=workers,
        executor=executor,  # type: ignore[arg-type]
        tracking_uri=uri,
        progress=False,
    )
    report.cpu_seconds = cpu_seconds() - before  # type: ignore[attr-defined]
    print(f"{label}: {report.summary()}; CPU {report.cpu_seconds:.1f} s", flush=True)  # type: ignore[attr-defined]
    return report


def cpu_seconds() -> float:
    """CPU time of this process and of every finished descendant (workers, CBC, shippers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buildings", type=int, default=6)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--n-days", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executors", nargs="+", default=["local-1", "local-2", "dask-2"])
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    spec = grid(args.buildings, args.days, args.n_days)
    folder = scratch_folder("bench-sweep-")
    os.chdir(folder)  # MLflow puts a new experiment's artifacts under ./mlruns: keep them here
    executors = [(name.split("-")[0], int(name.split("-")[1])) for name in args.executors]
    labels = [f"{executor} x{workers}" for executor, workers in executors]
    named = list(zip(executors, labels, strict=True))
    tracked: dict[str, list[Any]] = {label: [] for label in labels}
    untracked: dict[str, list[Any]] = {label: [] for label in labels}
    for round_ in range(args.rounds):
        # Every executor in every round, in an order turning round by round, and each tracked
        # and untracked back to back, in turn tracked first and untracked first: a neighbour's
        # load, and the machine speeding up or slowing down, hit every sweep of a round alike.
        turned = round_ % len(executors)
        for (executor, workers), label in named[turned:] + named[:turned]:
            for off in (False, True) if round_ % 2 == 0 else (True, False):
                if off:
                    os.environ["EMSTRACK_DISABLED"] = "1"
                try:
                    report = run(
                        spec, folder, f"{label} r{round_}{' off' if off else ''}", executor, workers
                    )
                finally:
                    os.environ.pop("EMSTRACK_DISABLED", None)
                (untracked if off else tracked)[label].append(report)
    print_table(args.rounds, labels, tracked, untracked)


def print_table(
    rounds: int, labels: list[str], tracked: dict[str, list[Any]], untracked: dict[str, list[Any]]
) -> None:
    """Medians over the rounds; a speed-up is the median of each round's ratio to the first."""
    first = labels[0]

    def round_ratios(reports: dict[str, list[Any]], label: str) -> list[float]:
        """Each round's rate of ``label`` over the first executor's in the same round."""
        pairs = zip(reports[label], reports[first], strict=True)
        return [report.rate / base.rate for report, base in pairs]

    def speed_up(reports: dict[str, list[Any]], label: str) -> float:
        return statistics.median(round_ratios(reports, label))

    print()
    print(f"load average now: {os.getloadavg()[0]:.1f} (2 cores, shared with other jobs)")
    print(f"medians of {rounds} rounds; speed-ups are the median of each round's own ratio")
    print(
        f"{'executor':<10} {'scenarios':>9} {'failed':>6} {'wall s':>7} {'per s':>6} "
        f"{'speed-up':>8} {'untracked s':>11} {'(speed-up)':>10} {'tracking % (measured)':>21} "
        f"{'(estimate)':>10} {'CPU %':>6} {'start-up s':>10}"
    )
    for label in labels:
        done, off_reports = tracked[label], untracked[label]
        wall = statistics.median(report.wall_seconds for report in done)
        rate = statistics.median(report.rate for report in done)
        off = statistics.median(report.wall_seconds for report in off_reports)
        pairs = list(zip(done, off_reports, strict=True))
        measured = statistics.median(1 - u.wall_seconds / t.wall_seconds for t, u in pairs)
        estimate = statistics.median(report.tracking_share for report in done)
        cpu = statistics.median(1 - u.cpu_seconds / t.cpu_seconds for t, u in pairs)
        startup = statistics.median(report.startup_seconds for report in done)
        print(
            f"{label:<10} {len(done[0].outcomes):>9} {len(done[0].failed):>6} "
            f"{wall:7.1f} {rate:6.2f} {speed_up(tracked, label):7.2f}x "
            f"{off:11.1f} {speed_up(untracked, label):9.2f}x {100 * measured:20.1f}% "
            f"{100 * estimate:9.1f}% {100 * cpu:5.1f}% {startup:10.1f}"
        )
    print()
    print("each round, to show the spread: tracked speed-up over the first; tracking % (measured)")
    for label in labels:
        ratios = round_ratios(tracked, label)
        pairs = zip(tracked[label], untracked[label], strict=True)
        shares = [100 * (1 - u.wall_seconds / t.wall_seconds) for t, u in pairs]
        print(
            f"  {label:<10} "
            + "  ".join(f"{ratio:4.2f}x" for ratio in ratios)
            + "   "
            + "  ".join(f"{share:5.1f}" for share in shares)
        )
    print("goals: local x2 >= 1.70x local x1; tracking <= 3 %")


if __name__ == "__main__":
    main()
