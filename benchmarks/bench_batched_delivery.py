"""Delivering finished runs to a SQLite store (or a server): one by one against batched.

Usage::

    python benchmarks/bench_batched_delivery.py [--runs 200] [--rounds 3] [--store-runs 0] [--http]

Each round writes ``--runs`` runs shaped like a sweep scenario's (26 params, 49 metrics, 13
tags, a ``config.json`` and a dataset input) into the spool without delivering them
(``EMSTRACK_DELIVERY=spool``), copies the spool once per way and delivers the copies, each into
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

``--http`` serves each store with its own ``mlflow server`` (``--workers 1``, on 127.0.0.1 and a
free port, ``tests/helpers/servers.py``) and delivers over HTTP: only the one-by-one ways, the
only ones an HTTP store has (``emstrack sync`` and a batch fall back to them there), plus
one that ends each run with ``MlflowClient.set_terminated`` as emstrack 0.1 did (over HTTP it
fetches the run again to print links to stdout). The search then runs in the server, so this
prints the server's CPU milliseconds per run too (every process of its group, from
``/proc``); wall time is what a sweep's driver waits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from emstrack._delivery.orphans import Outcome

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


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
    "linked": "one by one, set_terminated",
    "one": "one by one",
    "lone": "batches of one",
    "batch": "batched",
    "sync": "emstrack sync",
}
SQLITE_KINDS = ("searched", "one", "lone", "batch", "sync")
HTTP_KINDS = ("searched", "linked", "one")  # an HTTP store has no batched way


def measure(spool: Path, uri: str, kind: str, server_pid: int = 0) -> tuple[float, float, float]:
    import emstrack
    from emstrack._delivery import batched as batched_delivery
    from emstrack._delivery.orphans import deliver

    folders = sorted(path for path in spool.iterdir() if not path.name.startswith("."))
    cpu, wall, server_cpu = time.process_time(), time.perf_counter(), group_cpu(server_pid)
    if kind == "batch":
        sent = list(batched_delivery.deliver_many(folders, uri).values()).count(Outcome.SENT)
    elif kind == "lone":  # as a shipper handed one run at a time delivers it
        sent = sum(
            list(batched_delivery.deliver_many([folder], uri).values()).count(Outcome.SENT)
            for folder in folders
        )
    elif kind == "sync":
        sent = len(emstrack.sync(spool, tracking_uri=uri).sent)
    elif kind == "linked":
        with mlflows_set_terminated():
            sent = [deliver(folder, uri) for folder in folders].count(Outcome.SENT)
    else:  # "one" and "searched"
        sent = [deliver(folder, uri) for folder in folders].count(Outcome.SENT)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server_cpu = group_cpu(server_pid) - server_cpu
    count = len(folders)
    assert sent == count, f"{sent} of {count} sent"
    return 1000 * cpu / count, 1000 * wall / count, 1000 * server_cpu / count


@contextmanager
def mlflows_set_terminated() -> Iterator[None]:
    """End runs with ``MlflowClient.set_terminated`` (emstrack 0.1's way), which over HTTP
    fetches each run again to print its links."""
    from emstrack._delivery import store

    quiet = store.terminate_quietly
    store.terminate_quietly = lambda client, run_id, status, end_ms: client.set_terminated(
        run_id, status, end_ms
    )
    try:
        yield
    finally:
        store.terminate_quietly = quiet


def group_cpu(group: int) -> float:
    """CPU seconds of every live process in process group ``group`` (0: none), children
    they have reaped included."""
    if not group:
        return 0.0
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ...
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / tick


@contextmanager
def served(stores: dict[str, str], folder: Path) -> Iterator[dict[str, tuple[str, int]]]:
    """An ``mlflow server`` for each SQLite store: ``{kind: (url, process group)}``."""
    from helpers.servers import MlflowServer

    with ExitStack() as stack:
        found = {}
        for kind, uri in stores.items():
            server = MlflowServer(folder / f"server-{kind}", Path(uri.removeprefix("sqlite:///")))
            stack.enter_context(server)
            assert server.process is not None
            found[kind] = (server.url, server.process.pid)
        yield found


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


def migrate(uri: str) -> None:
    """Create and migrate the SQLite store at ``uri`` (a server started on a new file would
    migrate it while the first request waits)."""
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).search_experiments(max_results=1)


def run_rounds(
    args: argparse.Namespace, folder: Path, source: Path, servers: dict[str, tuple[str, int]]
) -> dict[str, list[tuple[float, float, float]]]:
    """Warm every store, then deliver ``args.rounds`` copies of the same runs side by side."""
    for kind, (uri, pid) in servers.items():  # schema and experiment: only delivery is measured
        write_runs(source, uri, 2)
        spool = folder / f"warm-{kind}"
        shutil.move(str(source), spool)
        if kind == "searched":
            unnote(spool)
        measure(spool, uri, kind, pid)
    results: dict[str, list[tuple[float, float, float]]] = {kind: [] for kind in servers}
    for _ in range(args.rounds):
        write_runs(source, "sqlite:///unused.db", args.runs)
        copies = {kind: folder / f"round-{kind}" for kind in servers}
        for copy in copies.values():
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(source, copy)
        if "searched" in copies:
            unnote(copies["searched"])
        shutil.rmtree(source)
        for kind, (uri, pid) in servers.items():  # side by side, same runs
            results[kind].append(measure(copies[kind], uri, kind, pid))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store-runs", type=int, default=0, help="runs already in each store")
    parser.add_argument("--http", action="store_true", help="deliver to an mlflow server")
    args = parser.parse_args()
    kinds = {kind: KINDS[kind] for kind in (HTTP_KINDS if args.http else SQLITE_KINDS)}
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # one line a run
    os.environ["EMSTRACK_DELIVERY"] = "spool"
    folder = Path(tempfile.mkdtemp(prefix="bench-batched-"))
    os.chdir(folder)  # MLflow puts a new experiment's artifacts under ./mlruns: keep them here
    source = folder / "source"
    os.environ["EMSTRACK_SPOOL_DIR"] = str(source)
    uris = {kind: f"sqlite:///{folder / kind}.db" for kind in kinds}
    if args.store_runs:
        fill(folder, uris, args.store_runs)
    with ExitStack() as stack:
        servers = {kind: (uri, 0) for kind, uri in uris.items()}
        if args.http:
            for uri in uris.values():  # each server gets a migrated copy of its store
                migrate(uri)
            servers = stack.enter_context(served(uris, folder))
        results = run_rounds(args, folder, source, servers)
    cpu, wall, server = (
        {kind: statistics.median(figures[column] for figures in results[kind]) for kind in kinds}
        for column in range(3)
    )
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores)")
    where = "mlflow servers over HTTP, backed by stores" if args.http else "stores"
    print(
        f"{args.runs} runs x {args.rounds} rounds into {where} of {args.store_runs} runs; "
        "medians per run"
    )
    extra = f" {'server CPU ms':>14}" if args.http else ""
    print(f"{'delivery':<26} {'CPU ms':>8} {'wall ms':>8}{extra} {'CPU vs one by one':>18}")
    for kind, label in kinds.items():
        ratio = cpu[kind] / cpu["one"]
        extra = f" {server[kind]:14.2f}" if args.http else ""
        print(f"{label:<26} {cpu[kind]:8.2f} {wall[kind]:8.2f}{extra} {ratio:17.3f}x")
    if args.http:
        print(f"wall per run, key searched vs noted: {wall['searched'] / wall['one']:.2f}x")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
