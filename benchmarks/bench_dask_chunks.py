"""Dask's cost per task, side by side: scenarios one to a task against several to a task.

Usage::

    python benchmarks/bench_dask_chunks.py [--workers 2] [--rounds 3] [--chunk 16]

One warm ``LocalCluster`` (the sweep's own settings) runs the ``bench_sweep`` grid (672 one-day
``compare_modes`` scenarios, untracked, so that only Dask's share differs) through the sweep
worker's code, in alternating rounds: every scenario its own task (``run_scenario``, as sweeps
did before they chunked), and ``--chunk`` scenarios a task (``run_scenarios``; 16 is what
:func:`emstrack._sweep.executors.chunk_size` picks for 15 ms scenarios). Printed per round:
the wall time and the driver's CPU (its client and the cluster's scheduler run in this
process), then the medians and their ratio. Whole sweeps (``bench_sweep.py``) add the cluster's
start-up and each worker's first scenario, about 2.4 s here, to both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_sweep import grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory(prefix="bench-dask-chunks-") as name:
        run(args, Path(name))


def run(args: argparse.Namespace, folder: Path) -> None:
    """Alternate the two task sizes on one warm cluster whose store and spool are in ``folder``."""
    import distributed

    from emstrack._sweep.executors import local_cluster
    from emstrack._sweep.spec import load_spec
    from emstrack._sweep.worker import SweepContext, run_scenario, run_scenarios, scenario_tasks

    spec = load_spec(grid(6, 28, 1))
    context = SweepContext(
        function=spec.function,
        tracking_uri=f"sqlite:///{folder / 'store.db'}",
        experiment="bench-dask-chunks",
        sweep_id="bench",
        params=spec.tracking.params,
        metrics=spec.tracking.metrics,
        spool_dir=str(folder / "spool"),
        switches={"EMSTRACK_DISABLED": "1", "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    tasks = scenario_tasks(spec.function, spec.scenarios())
    cluster = local_cluster(distributed, args.workers)
    client = distributed.Client(cluster)

    def timed(size: int) -> tuple[float, float]:
        began, cpu = time.perf_counter(), time.process_time()
        if size == 1:
            futures: list[Any] = [
                client.submit(run_scenario, context, t, pure=False) for t in tasks
            ]
        else:
            futures = [
                client.submit(run_scenarios, context, tasks[i : i + size], pure=False)
                for i in range(0, len(tasks), size)
            ]
        client.gather(futures)
        return time.perf_counter() - began, time.process_time() - cpu

    try:
        client.gather([client.submit(run_scenario, context, t, pure=False) for t in tasks[:8]])
        results: dict[int, list[tuple[float, float]]] = {1: [], args.chunk: []}
        for round_ in range(args.rounds):
            for size in (1, args.chunk) if round_ % 2 == 0 else (args.chunk, 1):
                wall, cpu = timed(size)
                results[size].append((wall, cpu))
                print(
                    f"round {round_}: {size:>2} a task  wall {wall:5.2f} s  driver CPU {cpu:5.2f} s"
                )
    finally:
        client.close()
        cluster.close()
    single = statistics.median(wall for wall, _ in results[1])
    chunked = statistics.median(wall for wall, _ in results[args.chunk])
    print(f"load average now: {os.getloadavg()[0]:.1f} (2 cores, shared with other jobs)")
    print(f"{len(tasks)} untracked one-day scenarios on {args.workers} Dask workers, medians:")
    for size, label in ((1, "one a task"), (args.chunk, f"{args.chunk} a task")):
        wall = statistics.median(wall for wall, _ in results[size])
        cpu = statistics.median(cpu for _, cpu in results[size])
        print(
            f"  {label:<12} wall {wall:5.2f} s ({len(tasks) / wall:6.1f}/s), driver CPU {cpu:.2f} s"
        )
    print(f"chunked / one a task: {single / chunked:.2f}x the throughput")


if __name__ == "__main__":
    main()
