"""Delivering finished runs to a SQLite store: one by one (MLflow's calls) against batched.

Usage::

    python benchmarks/bench_batched_delivery.py [--runs 200] [--rounds 3]

Each round writes ``--runs`` runs shaped like a sweep scenario's (26 params, 49 metrics, 13
tags, a ``config.json`` and a dataset input) into the spool without delivering them
(``EMSTRACK_DELIVERY=spool``), copies the spool, and delivers one copy with
:func:`emstrack._delivery.orphans.deliver` per run and the other with
:func:`emstrack._delivery.batched.deliver_many`, each into its own warm store. Printed: CPU
milliseconds per run of this process for both (the database work is in-process for SQLite),
wall milliseconds, and the ratio. Goal: a run's delivery costs a few percent of a one-day
optimization (about 70 ms here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def write_runs(spool: Path, uri: str, count: int) -> None:
    import pandas as pd

    import emstrack

    frame = pd.DataFrame({"load_kw": [0.5 + 0.01 * i for i in range(96)]})
    for index in range(count):
        with emstrack.tracked_run(f"scenario-{index}", experiment="bench", tracking_uri=uri) as run:
            run.log_params({f"param_{i}": f"value-{i}-{index}" for i in range(26)})
            run.log_metrics({f"metric_{i}": i * 0.5 + index for i in range(49)})
            run.set_tags({f"tag_{i}": "x" for i in range(4)})
            run.log_config({"index": index, "nested": {"a": 1}})
            run.log_dataset(frame, name="household", context="optimization")


def measure(spool: Path, uri: str, batched: bool) -> tuple[float, float]:
    from emstrack._delivery import batched as batched_delivery
    from emstrack._delivery.orphans import deliver

    folders = sorted(path for path in spool.iterdir() if not path.name.startswith("."))
    cpu, wall = time.process_time(), time.perf_counter()
    if batched:
        outcomes = batched_delivery.deliver_many(folders, uri)
    else:
        outcomes = {folder: deliver(folder, uri) for folder in folders}
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sent = sum(outcome.value == "sent" for outcome in outcomes.values())
    assert sent == len(folders), f"{sent} of {len(folders)} sent"
    return 1000 * cpu / len(folders), 1000 * wall / len(folders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ["EMSTRACK_DELIVERY"] = "spool"
    folder = Path(tempfile.mkdtemp(prefix="bench-batched-"))
    source = folder / "source"
    os.environ["EMSTRACK_SPOOL_DIR"] = str(source)
    uris = {kind: f"sqlite:///{folder / kind}.db" for kind in ("one", "batch")}
    # Warm both stores (schema, experiment) so that only delivery is measured.
    for kind, uri in uris.items():
        write_runs(source, uri, 2)
        spool = folder / f"warm-{kind}"
        shutil.move(str(source), spool)
        measure(spool, uri, batched=kind == "batch")
    results: dict[str, list[tuple[float, float]]] = {"one": [], "batch": []}
    for _ in range(args.rounds):
        write_runs(source, "sqlite:///unused.db", args.runs)
        copies = {kind: folder / f"round-{kind}" for kind in uris}
        for copy in copies.values():
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(source, copy)
        shutil.rmtree(source)
        for kind in ("one", "batch"):  # side by side, same runs
            results[kind].append(measure(copies[kind], uris[kind], batched=kind == "batch"))
    one_cpu = statistics.median(cpu for cpu, _ in results["one"])
    batch_cpu = statistics.median(cpu for cpu, _ in results["batch"])
    one_wall = statistics.median(wall for _, wall in results["one"])
    batch_wall = statistics.median(wall for _, wall in results["batch"])
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"{args.runs} runs x {args.rounds} rounds; medians per run")
    print(f"{'delivery':<12} {'CPU ms':>8} {'wall ms':>8}")
    print(f"{'one by one':<12} {one_cpu:8.2f} {one_wall:8.2f}")
    print(f"{'batched':<12} {batch_cpu:8.2f} {batch_wall:8.2f}")
    print(
        f"batched / one by one: CPU {batch_cpu / one_cpu:.3f}x, wall {batch_wall / one_wall:.3f}x"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
