"""``compare``, ``best_run`` and ``runs`` on 1k, 10k and 100k runs, on SQLite and PostgreSQL.

Usage::

    python benchmarks/bench_analysis_scale.py [--sizes 1000 10000 100000] \
        [--backends sqlite postgresql] [--calls compare best_run runs] [--reuse DIR]

**The stores are synthetic, built with bulk SQL.** Writing 100,000 runs through MLflow would take
hours here, so each store gets one experiment and 20 real *seed* runs written by
``MlflowClient`` (5 params, 15 metrics, the tags emstrack writes), which MLflow's own code
lays out in its tables; those rows are then copied inside the database (one ``INSERT ...
SELECT`` per table, joined to a table of new run ids) until the store holds the wanted number
of runs, with every metric value scaled by a random factor so that groups and best runs differ.
Each copy has every row MLflow writes for a run: ``runs``, ``params``, ``tags``, ``metrics`` and
``latest_metrics`` (its name in ``runs.name`` and the ``mlflow.runName`` tag, its id in the
artifact URI and the ``emstrack.run_key`` tag).

``--reuse DIR`` keeps the stores in ``DIR`` (SQLite files and the PostgreSQL cluster's data
folder) and reuses those already built, so that repeated measurements skip the build.

PostgreSQL is a throwaway cluster started for the benchmark (``tests/helpers/postgres.py``: as
root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` user). Every call is timed in a fresh
process, after a warm-up call in that process: wall time, CPU time of the process (SQLite runs
inside it, so on SQLite this is the whole cost), CPU time of the PostgreSQL server during the
call (``srv CPU``: its processes' times read from ``/proc``, ended workers included) and peak RSS
of the process (``VmHWM``, imports included). Goal at 100k runs: each call <= 1.5 s and
<= 1 GB. On a shared machine wall time is inflated; CPU + server CPU is what the call would take
alone on an idle one (minus the overlap of client and server). The goal column judges wall
time, CPU + server CPU and memory separately.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from scratch import scratch_folder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

EXPERIMENT = "bench-scale"
SEEDS = 20
BUILDINGS = [f"DE_KN_residential{i}" for i in range(1, 7)]
MODES = ["cost", "self_consumption"]
METRICS = [
    "total_cost", "savings_eur", "savings_pct", "cost_per_kwh", "baseline_cost",
    "optimization_time_seconds", "variables_count", "constraints_count",
    "total_consumption_kwh", "battery_cycles", "ev_charging_kwh", "self_consumption_pct",
    "peak_import_kw", "convergence_achieved", "constraint_violations",
]  # fmt: skip
GOAL_S = 1.5
GOAL_RSS_MB = 1024
BY = "['building_id', 'optimization_mode']"
CALLS = {
    "compare": f"analysis.compare(E, 'total_cost', by={BY}, tracking_uri=U)",
    "best_run": "analysis.best_run(E, 'total_cost', tracking_uri=U)",
    "runs": "analysis.runs(E, tracking_uri=U)",
}
CHILD = """
import json, os, resource, sys, time
from emstrack import analysis
E, U, SERVER = sys.argv[1], sys.argv[2], int(sys.argv[3])
TICK = os.sysconf("SC_CLK_TCK")

def server_cpu():
    # CPU seconds of the PostgreSQL server: postmaster (own + reaped children) and live children.
    if not SERVER:
        return 0.0
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = open("/proc/" + name + "/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(name), int(fields[1])
        if pid == SERVER:
            total += sum(int(v) for v in fields[11:15])
        elif ppid == SERVER:
            total += int(fields[11]) + int(fields[12])
    return total / TICK

def peak_rss_mb():
    # VmHWM: this process's own peak. ru_maxrss would also count the parent's RSS at the fork
    # (Linux carries it over exec), which is the benchmark's, not the call's.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

result = {CALL}
began, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
result = {CALL}
took, cpu = time.perf_counter() - began, time.process_time() - cpu
print(json.dumps({{"s": took, "cpu": cpu, "server_cpu": server_cpu() - server,
                   "rows": len(result),
                   "rss_mb": peak_rss_mb()}}))
"""


def seed(uri: str) -> None:
    """The seed runs, written by MLflow itself."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(EXPERIMENT)
    rng = random.Random(7)
    now = int(time.time() * 1000)
    for index in range(SEEDS):
        run = client.create_run(
            experiment, start_time=now + index, run_name=f"seed-{index}",
            tags={"emstrack.version": "bench", "emstrack.run_key": uuid.uuid4().hex},
        )  # fmt: skip
        params = {
            "building_id": BUILDINGS[index % len(BUILDINGS)],
            "optimization_mode": MODES[index % len(MODES)],
            "battery_enabled": str(index % 3 != 0).lower(),
            "n_days": str(1 + index % 7),
            "battery.capacity_kwh": str([5.0, 10.0, 13.5][index % 3]),
        }
        metrics = [Metric(name, rng.uniform(1, 100), now + index, 0) for name in METRICS]
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("solver.status", "Optimal")],
        )
        client.set_terminated(run.info.run_id, "FINISHED", now + index + 1000)


TABLES = ("runs", "params", "tags", "metrics", "latest_metrics")


def replicate(connection: Any, size: int, dialect: str) -> None:
    """Copy the seed runs' rows under new ids, inside the database, until it holds ``size`` runs.

    A table ``bench_copies`` (copy number, seed run, new run id, metric factor) is filled from
    Python; then one ``INSERT ... SELECT`` per MLflow table joins the seed rows to it, in copy
    order (so the rows of a run lie together, as when MLflow writes them run by run).
    """
    cursor = connection.cursor()
    cursor.execute("SELECT run_uuid FROM runs ORDER BY start_time, run_uuid")
    seeds = [row[0] for row in cursor.fetchall()]
    rng = random.Random(11)
    copies = [
        (copy, seeds[copy % len(seeds)], uuid.uuid4().hex, rng.uniform(0.5, 1.5))
        for copy in range(size - len(seeds))
    ]
    mark = "?" if dialect == "sqlite" else "%s"
    cursor.execute(
        "CREATE TEMPORARY TABLE bench_copies "
        "(n INTEGER, source VARCHAR(32), new_id VARCHAR(32), factor FLOAT)"
    )
    cursor.executemany(f"INSERT INTO bench_copies VALUES ({mark}, {mark}, {mark}, {mark})", copies)
    name = "'copy-' || CAST(c.n AS VARCHAR(12))"
    for table in TABLES:
        cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        columns = [d[0] for d in cursor.description]
        exprs = []
        for column in columns:
            expr = f"s.{column}"
            if column == "run_uuid":
                expr = "c.new_id"
            elif table == "runs" and column == "name":
                expr = name
            elif table == "runs" and column == "artifact_uri":
                expr = "replace(s.artifact_uri, s.run_uuid, c.new_id)"
            elif table == "tags" and column == "value":
                expr = (
                    f"CASE s.key WHEN 'mlflow.runName' THEN {name} "
                    "WHEN 'emstrack.run_key' THEN c.new_id ELSE s.value END"
                )
            elif table in ("metrics", "latest_metrics") and column == "value":
                expr = "s.value * c.factor"
            exprs.append(expr)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)} "
            f"FROM {table} s JOIN bench_copies c ON c.source = s.run_uuid ORDER BY c.n"
        )
    cursor.execute("DROP TABLE bench_copies")
    connection.commit()
    if dialect == "postgresql":
        connection.autocommit = True
        connection.cursor().execute("VACUUM ANALYZE")
    else:
        cursor.execute("ANALYZE")
        connection.commit()


def measure(uri: str, calls: list[str], server_pid: int = 0) -> dict[str, dict[str, float]]:
    env_path = str(ROOT / "src")
    figures = {}
    for name in calls:
        call = CALLS[name]
        code = CHILD.format(CALL=call)
        result = subprocess.run(
            [sys.executable, "-c", code, EXPERIMENT, uri, str(server_pid)],
            capture_output=True, text=True, check=False,
            env={**_env(), "PYTHONPATH": env_path},
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
        figures[name] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "EMSTRACK_"))} | {
        "MLFLOW_DISABLE_TELEMETRY": "true"
    }


def _drop(port: int, database: str) -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    connection.autocommit = True
    try:
        connection.cursor().execute(f'DROP DATABASE "{database}"')
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument(
        "--reuse",
        "--folder",
        type=Path,
        default=None,
        metavar="DIR",
        help="Keep the stores in DIR and reuse those already built there.",
    )
    parser.add_argument("--calls", nargs="+", default=list(CALLS), choices=list(CALLS))
    args = parser.parse_args()
    folder = args.reuse.resolve() if args.reuse else scratch_folder("bench-scale-")
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)  # MLflow puts a new experiment's artifacts under ./mlruns: keep them here
    table: list[tuple[str, int, str, float, float, float, float]] = []
    for backend in args.backends:
        cluster = None
        try:
            if backend == "postgresql":
                from helpers.postgres import PostgresCluster

                cluster = PostgresCluster(folder / "pg" if args.reuse else None)
                cluster.start()
            for size in args.sizes:
                built = time.perf_counter()
                done = folder / f"{backend}-{size}.built"
                connection: Any = None
                if backend == "sqlite":
                    path = folder / f"scale-{size}.db"
                    uri = f"sqlite:///{path}"
                    if not done.exists():
                        path.unlink(missing_ok=True)
                        seed(uri)
                        connection = sqlite3.connect(path)
                else:
                    assert cluster is not None
                    database = f"scale{size}"
                    uri = cluster.uri(database)
                    if not done.exists() or not cluster.has_database(database):
                        if cluster.has_database(database):
                            _drop(cluster.port, database)
                        cluster.create_database(database)
                        seed(uri)
                        import psycopg2

                        connection = psycopg2.connect(
                            host="127.0.0.1", port=cluster.port, user="postgres", dbname=database
                        )
                if connection is not None:
                    replicate(connection, size, backend)
                    connection.close()
                    done.touch()
                print(
                    f"built {backend} {size} runs in {time.perf_counter() - built:.1f} s",
                    flush=True,
                )
                server_pid = _postmaster(cluster) if cluster is not None else 0
                for name, figures in measure(uri, args.calls, server_pid).items():
                    assert figures["rows"] > 0
                    row = (
                        backend, size, name, figures["s"], figures["cpu"],
                        figures["server_cpu"], figures["rss_mb"],
                    )  # fmt: skip
                    table.append(row)
                    print(
                        f"  {name:<9} {row[3]:7.3f} s {row[4]:7.3f} s CPU "
                        f"{row[5]:7.3f} s server CPU {row[6]:6.0f} MB"
                    )
        finally:
            if cluster is not None:
                cluster.stop()
    print()
    print(f"load average now: {os.getloadavg()[0]:.1f} (2 cores, shared with other jobs)")
    print(
        f"{'backend':<11} {'runs':>7} {'call':<9} {'wall s':>8} {'CPU s':>7} {'srv CPU':>8} "
        f"{'peak MB':>8}  goal (wall / CPU+server / memory)"
    )
    for backend, size, name, seconds, cpu, server, rss in table:
        goal = ""
        if size >= 100_000:
            goal = " / ".join(
                "met" if ok else "UNMET"
                for ok in (seconds <= GOAL_S, cpu + server <= GOAL_S, rss <= GOAL_RSS_MB)
            )
        print(
            f"{backend:<11} {size:>7} {name:<9} {seconds:8.3f} {cpu:7.3f} {server:8.3f} "
            f"{rss:8.0f}  {goal}"
        )


def _postmaster(cluster: Any) -> int:
    """The PostgreSQL server's process id (first line of ``postmaster.pid``)."""
    text = (cluster.data / "postmaster.pid").read_text()
    return int(text.splitlines()[0])


if __name__ == "__main__":
    main()
