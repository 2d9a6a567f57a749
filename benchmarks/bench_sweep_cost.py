"""Tracking's share of a sweep, from CPU time measured in pairs: each scenario tracked and not.

Usage::

    python benchmarks/bench_sweep_cost.py [--scenarios 240] [--batch 40]

``bench_sweep.py`` measures the share as 1 - untracked wall / tracked wall of whole sweeps, and
on a shared 2-core machine the speed of the machine changes by 20-30 % between two sweeps of
ten seconds. This benchmark removes that drift. In one process, each scenario of the
``bench_sweep`` grid runs twice in a row, through the sweep worker's own code
(:func:`emstrack._sweep.worker.run_scenario`): tracked (the worker's spool writes, as in a
sweep) and untracked (``EMSTRACK_DISABLED=1``), in turn first and second. Each call's CPU time
is measured, with its CBC child's. The spool entries are then delivered the way the sweep's
driver does (:func:`emstrack._delivery.batched.deliver_many`, ``--batch`` runs at a time),
and the CPU time of that is measured per run.

Printed: the median untracked scenario, the median of the paired differences (the worker's part
of tracking, PuLP and dataset capture included) with a 95 % interval and its quartiles, the
driver's part per run, and tracking's share = (worker + driver) / (untracked scenario + worker +
driver). When the sweep keeps every core busy, that CPU share is its wall-time share.
Goal: tracking <= 3 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_sweep import cpu_seconds, grid
from scratch import scratch_folder


def _median_interval(values: list[float]) -> tuple[float, float]:
    """A distribution-free 95 % confidence interval of the median (order statistics)."""
    ordered = sorted(values)
    half_width = 0.98 * len(ordered) ** 0.5  # 1.96 * sqrt(n) / 2 ranks either side
    low = max(0, int(len(ordered) / 2 - half_width))
    high = min(len(ordered) - 1, int(len(ordered) / 2 + half_width))
    return ordered[low], ordered[high]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=240)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--n-days", type=int, default=1, help="days per scenario")
    parser.add_argument("--warm-up", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = scratch_folder("bench-sweep-cost-")
    os.chdir(folder)  # MLflow puts a new experiment's artifacts under ./mlruns: keep them here

    from emstrack._delivery.batched import deliver_many
    from emstrack._delivery.orphans import Outcome
    from emstrack._sweep.spec import load_spec
    from emstrack._sweep.worker import ScenarioTask, SweepContext, run_scenario, scenario_tasks

    spec = load_spec(grid(6, min(20, 28 // args.n_days), args.n_days))  # 28 days of data
    uri = f"sqlite:///{folder / 'store.db'}"
    spool = folder / "spool"
    context = SweepContext(
        function=spec.function,
        tracking_uri=uri,
        experiment="bench-sweep-cost",
        sweep_id="bench",
        params=spec.tracking.params,
        metrics=spec.tracking.metrics,
        spool_dir=str(spool),
    )
    scenarios = list(spec.scenarios())
    total = args.warm_up + args.scenarios
    cycled = [scenarios[number % len(scenarios)] for number in range(total)]
    tasks = scenario_tasks(spec.function, cycled)

    def timed(task: ScenarioTask, tracked: bool) -> tuple[float, str | None]:
        if tracked:
            os.environ.pop("EMSTRACK_DISABLED", None)
        else:
            os.environ["EMSTRACK_DISABLED"] = "1"
        began = cpu_seconds()
        outcome = run_scenario(context, task)
        spent = cpu_seconds() - began
        assert outcome.status == "FINISHED", outcome.error
        return spent, outcome.entry

    untracked: list[float] = []
    differences: list[float] = []
    entries: list[str] = []
    for number, task in enumerate(tasks):
        order = (True, False) if number % 2 == 0 else (False, True)
        spent = {}
        for tracked in order:
            spent[tracked], entry = timed(task, tracked)
            if tracked and entry is not None and number >= args.warm_up:
                entries.append(entry)
        if number >= args.warm_up:
            untracked.append(spent[False])
            differences.append(spent[True] - spent[False])
    os.environ.pop("EMSTRACK_DISABLED", None)

    # Warm the store (schema, experiment) first, as the sweep's planning does.
    measured = set(entries)
    warm = [
        path
        for path in spool.iterdir()
        if not path.name.startswith(".") and path.name not in measured
    ]
    deliver_many(warm, uri)
    driver = 0.0
    for start in range(0, len(entries), args.batch):
        batch = [spool / name for name in entries[start : start + args.batch]]
        began = time.process_time()
        outcomes = deliver_many(batch, uri)
        driver += time.process_time() - began
        assert list(outcomes.values()).count(Outcome.SENT) == len(batch), outcomes
    driver /= len(entries)

    base = statistics.median(untracked)
    quartiles = statistics.quantiles(differences, n=4)
    worker = quartiles[1]
    low, high = _median_interval(differences)
    share = (worker + driver) / (base + worker + driver)
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores, shared with other jobs)")
    print(
        f"{args.scenarios} compare_modes scenarios of {args.n_days} day(s), each tracked and "
        "untracked in turn"
    )
    print(f"untracked scenario, CPU (median)        {1000 * base:7.2f} ms")
    print(
        f"worker's tracking, CPU (median of pairs) {1000 * worker:7.2f} ms "
        f"(95 % interval {1000 * low:.2f} - {1000 * high:.2f}; "
        f"quartiles {1000 * quartiles[0]:.2f} / {1000 * quartiles[2]:.2f})"
    )
    print(
        f"driver's delivery, CPU per run          {1000 * driver:7.2f} ms (batches of {args.batch})"
    )
    print(f"tracking's share of the sweep           {100 * share:7.2f} %  (goal <= 3 %)")


if __name__ == "__main__":
    main()
