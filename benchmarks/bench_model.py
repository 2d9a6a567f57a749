"""What the MLflow model costs over calling the optimization directly, side by side.

* ``predict`` of a loaded model (``mlflow.pyfunc.load_model``) for 1 row of 1 day against
  ``emstrack.ems.optimize_building`` called directly, both the way a script calls it (household
  data read from the bundled sample on each call) and with the data loaded once (the solve
  alone). Interleaved call by call (the order rotating each round) after a warm-up;
  medians. Goal: predict <= 1.1x direct.
* The served round trip: ``mlflow models serve --env-manager local`` on 127.0.0.1, a 1-row
  ``dataframe_split`` POST per call, interleaved with direct solves; overhead = median round
  trip - median direct solve. Goal: <= 50 ms.
* ``log_optimization_model`` inside a run (explicit pinned requirements, no inference).

Run: ``python benchmarks/bench_model.py [--calls 40] [--warmup 5] [--no-serve]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BUILDING = "DE_KN_residential1"
ROW = {"building_id": BUILDING, "n_days": 1, "mode": "cost"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def bench_predict(model_path: Path, calls: int, warmup: int) -> dict[str, float]:
    import mlflow
    import pandas as pd

    from emstrack.ems import load_building, optimize_building
    from emstrack.schemas import OptimizationParams

    model = mlflow.pyfunc.load_model(str(model_path))
    frame = pd.DataFrame([ROW])
    params = OptimizationParams(building_id=BUILDING)
    household = load_building(BUILDING)
    no_solve = pd.DataFrame([{**ROW, "building_id": "nowhere"}])
    variants = {
        "predict": lambda: model.predict(frame),
        "predict_no_solve": lambda: model.predict(no_solve),
        "direct": lambda: optimize_building(params),
        "direct_preloaded": lambda: optimize_building(params, data=household),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for index in range(warmup + calls):
        # Rotate the order every round so that no variant always follows the same one.
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            call = variants[name]
            began = time.perf_counter()
            call()
            took = time.perf_counter() - began
            if index >= warmup:
                times[name].append(took)
    assert model.predict(frame)["predicted_cost"][0] == optimize_building(params).metrics.total_cost
    return {name: median_ms(values) for name, values in times.items()}


def bench_serve(model_path: Path, calls: int, warmup: int, folder: Path) -> dict[str, float]:
    from emstrack.ems import load_building, optimize_building
    from emstrack.schemas import OptimizationParams

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_path)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = open(folder / "serve.log", "wb")  # noqa: SIM115
    began = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    body = json.dumps(
        {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}}
    ).encode()
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/ping", timeout=1):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError((folder / "serve.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        ready_s = time.perf_counter() - began
        params = OptimizationParams(building_id=BUILDING)
        household = load_building(BUILDING)
        trips: list[float] = []
        solves: list[float] = []
        server_solves: list[float] = []
        for index in range(warmup + calls):
            request = urllib.request.Request(
                url + "/invocations", data=body, headers={"Content-Type": "application/json"}
            )
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
            trip = time.perf_counter() - start
            start = time.perf_counter()
            optimize_building(params, data=household)
            solve = time.perf_counter() - start
            if index >= warmup:
                trips.append(trip)
                solves.append(solve)
                server_solves.append(answer["predictions"][0]["solve_time_s"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    return {
        "ready_s": ready_s,
        "round_trip": median_ms(trips),
        "direct_solve": median_ms(solves),
        "overhead": median_ms(trips) - median_ms(solves),
        "cbc_time_in_server": median_ms(server_solves),
    }


def bench_log(folder: Path, repeats: int = 3) -> list[float]:
    import emstrack
    from emstrack.model import log_optimization_model

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["EMSTRACK_SPOOL_DIR"] = str(folder / "spool")
    took = []
    for index in range(repeats + 1):
        with emstrack.tracked_run(f"log-{index}"):
            began = time.perf_counter()
            log_optimization_model()
            if index:  # the first one pays for MLflow's lazy imports and the schema
                took.append(time.perf_counter() - began)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from emstrack.model import save_optimization_model

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        model_path = save_optimization_model(None, folder / "model")
        figures = bench_predict(model_path, args.calls, args.warmup)
        print(f"1 row, 1 day, {args.calls} calls interleaved, medians (ms):")
        print(f"  predict (loaded model)            {figures['predict']:8.2f}")
        print(f"  optimize_building (data per call) {figures['direct']:8.2f}")
        print(f"  optimize_building (data loaded)   {figures['direct_preloaded']:8.2f}")
        print(f"  predict / direct                  {figures['predict'] / figures['direct']:8.2f}x")
        share = 100 * figures["predict_no_solve"] / figures["direct_preloaded"]
        print(
            f"  predict, invalid row (no solve)   {figures['predict_no_solve']:8.2f}"
            f"   (MLflow + row checks: {share:.1f} % of a solve)"
        )
        ratio = figures["predict"] / figures["direct_preloaded"]
        print(f"  predict / direct (data loaded)    {ratio:8.2f}x   (goal <= 1.10x)")
        if not args.no_serve:
            served = bench_serve(model_path, args.calls, args.warmup, folder)
            print(f"served (mlflow models serve, ready after {served['ready_s']:.1f} s), ms:")
            print(f"  round trip, 1 row                 {served['round_trip']:8.2f}")
            print(f"  direct solve                      {served['direct_solve']:8.2f}")
            print(f"  CBC time reported by the server   {served['cbc_time_in_server']:8.2f}")
            print(f"  overhead over the solve           {served['overhead']:8.2f}   (goal <= 50)")
        logged = bench_log(folder)
        shown = ", ".join(f"{t:.2f}" for t in logged)
        print(f"log_optimization_model in a run: {statistics.median(logged):.2f} s ({shown})")


if __name__ == "__main__":
    main()
