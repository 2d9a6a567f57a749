"""Delivering finished runs to a SQLite store: one by one (MLflow's calls) against batched.

Usage::

    python benchmarks/bench_batched_delivery.py [--runs 200] [--rounds 3] [--store-runs 0]

Each round writes ``--runs`` runs shaped like a sweep scenario's (26 params, 49 metrics, 13
tags, a ``config.json`` and a dataset input) into the spool without delivering them
(``EMSTRACK_DELIVERY=spool``), copies the spool five times and delivers the copies, each into
its own warm store: with :func:`emstrack._delivery.orphans.deliver` run by run (MLflow's calls),
twice: as written (the start event's ``creates_noted`` spares the key search) and with the flag
dropped (entries of emstrack 0.1 or of a writer that sends its run itself: each run's key is
searched by tag, which no index serves); with :func:`emstrack._delivery.batched.deliver_many`
run by run (batches of one, as a shipper handed one run delivers it) and all at once, and with
``emstrack.sync`` (which sends the finished runs it finds together). Printed per way: CPU
milliseconds per run of this process (the database work is in-process for SQLite), wall
milliseconds, and the CPU ratio to one by one. Goal: a run's delivery costs a few percent of a
one-day optimization (about 70 ms here).

``--store-runs N`` first fills each store with ``N`` synthetic runs, the way
``bench_analysis_scale.py`` builds its stores (20 runs written by MLflow, copied with bulk SQL),
to show what the store's size costs each delivery (a shared server holds years of runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from emstrack._delivery.orphans import Outcome


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


KINDS = {
    "searched": "one by one, key searched",
    "one": "one by one",
    "lone": "batches of one",
    "batch": "batched",
    "sync": "emstrack sync",
}


def measure(spool: Path, uri: str, kind: str) -> tuple[float, float]:
    import emstrack
    from emstrack._delivery import batched as batched_delivery
    from emstrack._delivery.orphans import deliver

    folders = sorted(path for path in spool.iterdir() if not path.name.startswith("."))
    cpu, wall = time.process_time(), time.perf_counter()
    if kind == "batch":
        sent = list(batched_delivery.deliver_many(folders, uri).values()).count(Outcome.SENT)
    elif kind == "lone":  # as a shipper handed one run at a time delivers it
        sent = sum(
            list(batched_delivery.deliver_many([folder], uri).values()).count(Outcome.SENT)
            for folder in folders
        )
    elif kind == "sync":
        sent = len(emstrack.sync(spool, tracking_uri=uri).sent)
    else:  # "one" and "searched"
        sent = [deliver(folder, uri) for folder in folders].count(Outcome.SENT)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert sent == len(folders), f"{sent} of {len(folders)} sent"
    return 1000 * cpu / len(folders), 1000 * wall / len(folders)


def unnote(spool: Path) -> None:
    """Drop ``creates_noted`` from every start event: entries as emstrack 0.1 (or a writer that
    sends its run itself) left them, which a replay must look up by their key tag."""
    import json

    from emstrack._delivery.spool import CREATES_NOTED

    for events in spool.glob("*/run.jsonl"):
        first, _, rest = events.read_bytes().partition(b"\n")
        start = json.loads(first)
        start.pop(CREATES_NOTED, None)
        events.write_bytes(json.dumps(start, separators=(",", ":")).encode() + b"\n" + rest)


def fill(folder: Path, uris: dict[str, str], size: int) -> None:
    """Give every store ``size`` synthetic runs (built once, then copied)."""
    import sqlite3

    from bench_analysis_scale import replicate, seed

    built = folder / "filled.db"
    seed(f"sqlite:///{built}")
    connection = sqlite3.connect(built)
    replicate(connection, size, "sqlite")
    connection.close()
    for uri in uris.values():
        shutil.copyfile(built, uri.removeprefix("sqlite:///"))
    built.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-runs", type=int, default=0, help="runs already in each store")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ["EMSTRACK_DELIVERY"] = "spool"
    folder = Path(tempfile.mkdtemp(prefix="bench-batched-"))
    os.chdir(folder)  # MLflow puts a new experiment's artifacts under ./mlruns: keep them here
    source = folder / "source"
    os.environ["EMSTRACK_SPOOL_DIR"] = str(source)
    uris = {kind: f"sqlite:///{folder / kind}.db" for kind in KINDS}
    if args.store_runs:
        fill(folder, uris, args.store_runs)
    # Warm every store (schema, experiment) so that only delivery is measured.
    for kind, uri in uris.items():
        write_runs(source, uri, 2)
        spool = folder / f"warm-{kind}"
        shutil.move(str(source), spool)
        if kind == "searched":
            unnote(spool)
        measure(spool, uri, kind)
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    for _ in range(args.rounds):
        write_runs(source, "sqlite:///unused.db", args.runs)
        copies = {kind: folder / f"round-{kind}" for kind in uris}
        for copy in copies.values():
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(source, copy)
        unnote(copies["searched"])
        shutil.rmtree(source)
        for kind in KINDS:  # side by side, same runs
            results[kind].append(measure(copies[kind], uris[kind], kind))
    cpu = {kind: statistics.median(c for c, _ in results[kind]) for kind in KINDS}
    wall = {kind: statistics.median(w for _, w in results[kind]) for kind in KINDS}
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores)")
    print(
        f"{args.runs} runs x {args.rounds} rounds into stores of {args.store_runs} runs; "
        "medians per run"
    )
    print(f"{'delivery':<26} {'CPU ms':>8} {'wall ms':>8} {'CPU vs one by one':>18}")
    for kind, label in KINDS.items():
        ratio = cpu[kind] / cpu["one"]
        print(f"{label:<26} {cpu[kind]:8.2f} {wall[kind]:8.2f} {ratio:17.3f}x")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
