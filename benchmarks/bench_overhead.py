"""What tracking costs a pipeline: emstrack against raw MLflow, side by side, on one store.

Each run carries the same data: 10 params, 20 metrics, a 96-step series and a ``config.json``.
Measured in one process on one fresh SQLite store, interleaved run by run (so store growth and
machine noise hit every variant alike), medians after a warm-up:

* emstrack synchronous (``EMSTRACK_DELIVERY=sync``): a decorated no-op pipeline, per-call time
  minus the bare call;
* emstrack process (the default): the time the pipeline sees per call, a shipper process
  delivering;
* emstrack background (``EMSTRACK_BACKGROUND=1``): the time the pipeline sees per call; every
  run must be in the store after ``emstrack.flush()``;
* raw MLflow client, fewest calls: ``create_run``, one ``log_batch``, ``log_artifact``,
  ``set_terminated``;
* MLflow fluent API, one call per value;
* MLflow fluent API with async logging (``mlflow.config.enable_async_logging``);
* ``import emstrack`` in a fresh interpreter;
* ``EMSTRACK_DISABLED=1``: decorated call against a bare call.

Run: ``python benchmarks/bench_overhead.py [--runs 200] [--warmup 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

N_PARAMS = 10
N_METRICS = 20
SERIES = 96

TARGETS = {
    "sync/raw": 1.10,
    "background_ms": 2.0,
    "import_ms": 100.0,
    "disabled_us": 1.0,
}


def params_for(index: int) -> dict[str, Any]:
    return {f"p{i}": (index * 10 + i) / 4 for i in range(N_PARAMS)}


def outputs_for(index: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {f"m{i}": index + i / 7 for i in range(N_METRICS)}
    metrics["soc"] = [0.5 + (step % 24) / 48 for step in range(SERIES)]
    return metrics


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def setup_store(folder: Path) -> str:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    uri = f"sqlite:///{folder / 'bench.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["EMSTRACK_SPOOL_DIR"] = str(folder / "spool")
    for name in (
        "EMSTRACK_BACKGROUND",
        "EMSTRACK_DISABLED",
        "EMSTRACK_STRICT",
        "EMSTRACK_DELIVERY",
    ):
        os.environ.pop(name, None)
    return uri


def make_variants(uri: str, scratch: Path) -> dict[str, Callable[[int], None]]:
    """One callable per variant, each logging run ``index``'s data once."""
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    import emstrack

    client = MlflowClient(tracking_uri=uri)
    raw_experiment = client.create_experiment("raw-client")
    fluent_experiment = client.create_experiment("fluent")
    async_experiment = client.create_experiment("fluent-async")
    mlflow.set_tracking_uri(uri)

    def bare(**kwargs: Any) -> dict[str, Any]:
        return outputs_for(int(kwargs["p0"] * 4) // 10)

    sync_pipeline = emstrack.tracked_optimization(experiment="emstrack-sync")(bare)
    background_pipeline = emstrack.tracked_optimization(experiment="emstrack-background")(bare)
    process_pipeline = emstrack.tracked_optimization(experiment="emstrack-process")(bare)

    def run_bare(index: int) -> None:
        bare(**params_for(index))

    def run_sync(index: int) -> None:
        os.environ["EMSTRACK_DELIVERY"] = "sync"
        try:
            sync_pipeline(**params_for(index))
        finally:
            del os.environ["EMSTRACK_DELIVERY"]

    def run_process(index: int) -> None:
        process_pipeline(**params_for(index))  # the default: a shipper process delivers

    def run_background(index: int) -> None:
        os.environ["EMSTRACK_BACKGROUND"] = "1"
        try:
            background_pipeline(**params_for(index))
        finally:
            del os.environ["EMSTRACK_BACKGROUND"]

    def run_raw(index: int) -> None:
        params = params_for(index)
        outputs = bare(**params)
        now = int(time.time() * 1000)
        run = client.create_run(raw_experiment, start_time=now, run_name="raw")
        run_id = run.info.run_id
        metrics = [Metric(k, v, now, 0) for k, v in outputs.items() if k != "soc"]
        metrics += [Metric("soc", v, now, step) for step, v in enumerate(outputs["soc"])]
        client.log_batch(
            run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()]
        )
        config = scratch / "config.json"
        config.write_text(json.dumps({"inputs": params}, indent=2))
        client.log_artifact(run_id, str(config))
        client.set_terminated(run_id, "FINISHED", int(time.time() * 1000))

    def run_fluent(index: int) -> None:
        params = params_for(index)
        outputs = bare(**params)
        with mlflow.start_run(experiment_id=fluent_experiment, run_name="fluent"):
            for key, value in params.items():
                mlflow.log_param(key, value)
            for key, value in outputs.items():
                if key == "soc":
                    for step, point in enumerate(value):
                        mlflow.log_metric("soc", point, step=step)
                else:
                    mlflow.log_metric(key, value)
            mlflow.log_dict({"inputs": params}, "config.json")

    def run_async(index: int) -> None:
        params = params_for(index)
        outputs = bare(**params)
        with mlflow.start_run(experiment_id=async_experiment, run_name="async") as run:
            mlflow.log_params(params, synchronous=False)
            scalars = {k: v for k, v in outputs.items() if k != "soc"}
            mlflow.log_metrics(scalars, synchronous=False)
            now = int(time.time() * 1000)
            series = [Metric("soc", v, now, step) for step, v in enumerate(outputs["soc"])]
            client.log_batch(run.info.run_id, metrics=series, synchronous=False)
            mlflow.log_dict({"inputs": params}, "config.json")

    return {
        "bare": run_bare,
        "sync": run_sync,
        "background": run_background,
        "process": run_process,
        "raw": run_raw,
        "fluent": run_fluent,
        "async": run_async,
    }


def measure(
    variants: dict[str, Callable[[int], None]], runs: int, warmup: int, slow_runs: int
) -> dict[str, list[float]]:
    """Interleaved timings; the per-value fluent variants (10-30x slower) get ``slow_runs``."""
    import mlflow

    import emstrack

    samples: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(warmup + runs):
        for name, variant in variants.items():
            if name in {"fluent", "async"} and index >= warmup + slow_runs:
                continue
            if name == "async":
                mlflow.config.enable_async_logging(True)
            began = time.perf_counter()
            variant(index)
            took = time.perf_counter() - began
            if name == "async":
                mlflow.config.enable_async_logging(False)
            if name in {"background", "process"}:
                # Untimed: the shipper must not compete with the next variant's measurement.
                assert emstrack.flush(timeout=120)
            if index >= warmup:
                samples[name].append(took)
    return samples


def background_flush_check(uri: str, expected: int) -> tuple[float, int]:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    import emstrack

    began = time.perf_counter()
    assert emstrack.flush(timeout=600), "background shipping did not finish"
    flushed = time.perf_counter() - began
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("emstrack-background")
    stored = client.search_runs(
        [experiment.experiment_id], run_view_type=ViewType.ALL, max_results=50_000
    )
    complete = [r for r in stored if r.info.status == "FINISHED" and len(r.data.metrics) == 21]
    assert len(complete) == expected, f"{len(complete)} of {expected} background runs stored"
    return flushed, len(complete)


def import_time(repeats: int) -> float:
    code = "import time; t = time.perf_counter(); import emstrack; print(time.perf_counter() - t)"
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return median_ms(samples)


def disabled_overhead() -> tuple[float, float, float]:
    """Per-call µs: bare call, decorated call with EMSTRACK_DISABLED=1, their difference."""
    import emstrack

    def bare(x: int) -> int:
        return x

    tracked = emstrack.tracked_optimization(bare)
    os.environ["EMSTRACK_DISABLED"] = "1"
    try:
        number = 200_000
        bare_runs, tracked_runs = [], []
        for _ in range(7):
            bare_runs.append(timeit.timeit(lambda: bare(1), number=number) / number)
            tracked_runs.append(timeit.timeit(lambda: tracked(1), number=number) / number)
    finally:
        del os.environ["EMSTRACK_DISABLED"]
    bare_us = statistics.median(bare_runs) * 1e6
    tracked_us = statistics.median(tracked_runs) * 1e6
    return bare_us, tracked_us, tracked_us - bare_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="measured runs per variant")
    parser.add_argument("--warmup", type=int, default=20, help="runs per variant not measured")
    parser.add_argument(
        "--slow-runs", type=int, default=30, help="measured runs of the per-value fluent variants"
    )
    parser.add_argument("--imports", type=int, default=15, help="fresh interpreters timed")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="emstrack-bench-") as folder:
        scratch = Path(folder)
        uri = setup_store(scratch)
        variants = make_variants(uri, scratch)
        samples = measure(variants, arguments.runs, arguments.warmup, arguments.slow_runs)
        flushed, stored = background_flush_check(uri, arguments.runs + arguments.warmup)
        spool_left = list((scratch / "spool").glob("*")) if (scratch / "spool").exists() else []

    bare_ms = median_ms(samples["bare"])
    medians = {name: median_ms(values) for name, values in samples.items()}
    sync_overhead = medians["sync"] - bare_ms
    background_overhead = medians["background"] - bare_ms
    raw = medians["raw"]
    import_ms = import_time(arguments.imports)
    bare_us, disabled_us, disabled_delta = disabled_overhead()

    rows = [
        ("bare pipeline call (no tracking)", medians["bare"], ""),
        ("emstrack synchronous, per run", medians["sync"], f"overhead {sync_overhead:.2f} ms"),
        (
            "emstrack background, pipeline-visible",
            medians["background"],
            f"overhead {background_overhead:.3f} ms (target <= 2 ms)",
        ),
        (
            "emstrack process (default), pipeline-visible",
            medians["process"],
            f"overhead {medians['process'] - bare_ms:.3f} ms",
        ),
        (
            "raw MlflowClient, fewest calls",
            raw,
            "create_run, log_batch, log_artifact, set_terminated",
        ),
        ("MLflow fluent, one call per value", medians["fluent"], "126 log calls + log_dict"),
        ("MLflow fluent, async logging", medians["async"], "includes end_run's wait"),
    ]
    print(
        f"\n{arguments.runs} runs per variant ({arguments.slow_runs} for the fluent ones) after "
        f"{arguments.warmup} warm-up, medians, one SQLite store"
    )
    print(f"{'variant':<42} {'ms/run':>9}  notes")
    for name, value, note in rows:
        print(f"{name:<42} {value:>9.2f}  {note}")
    print(f"{'import emstrack (fresh interpreter)':<42} {import_ms:>9.2f}  target <= 100 ms")
    print(
        f"{'EMSTRACK_DISABLED=1 decorated call':<42} {disabled_us * 1000 / 1000:>8.3f}µs  "
        f"bare {bare_us:.3f} µs, overhead {disabled_delta:.3f} µs (target <= 1 µs)"
    )
    print("\nratios")
    ratio = (medians["sync"] - bare_ms) / raw
    print(f"  emstrack sync / raw client      {ratio:.2f}x  (target <= {TARGETS['sync/raw']}x)")
    print(f"  fluent per-value / raw client   {medians['fluent'] / raw:.2f}x")
    print(f"  fluent async / raw client       {medians['async'] / raw:.2f}x")
    print(f"  emstrack sync / fluent          {medians['sync'] / medians['fluent']:.2f}x")
    print(
        f"\nbackground: flush() took {flushed:.2f} s; {stored} runs in the store, "
        f"{len(spool_left)} left in the spool"
    )
    verdicts = {
        "sync/raw <= 1.1x": ratio <= TARGETS["sync/raw"],
        "background <= 2 ms": background_overhead <= TARGETS["background_ms"],
        "import <= 100 ms": import_ms <= TARGETS["import_ms"],
        "disabled <= 1 µs": disabled_delta <= TARGETS["disabled_us"],
    }
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in verdicts.items()))


if __name__ == "__main__":
    main()
