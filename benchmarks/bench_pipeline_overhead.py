"""What tracking costs a real pipeline, per delivery mode, side by side.

Two workloads, each tracked and untracked in one process on one warm SQLite store:

* Pipeline A: ``emstrack.ems.compare_modes("DE_KN_residential4", "battery_smart_ev",
  n_days=2, output_dir=...)``, tracked the way ``examples/pipeline_a_comparison.py`` tracks it
  (scenario params, summary and per-day metrics, the output folder as artifacts);
* pure Python: building a large PuLP model without solving it (no solver subprocess: every
  millisecond is the interpreter's, so a shipping thread competes with it for the GIL).

Two measurements per mode (``sync``, ``thread``, ``process``, the default):

* *interleaved*: rounds of one untracked call and one tracked call per mode (order rotated each
  round), medians; asynchronous modes are flushed, untimed, after their call, so each call sees
  what the pipeline sees (as the issue measured it). ``ratio`` is median over median;
  ``paired`` is 1 + the median of each round's tracked-minus-untracked difference over the
  untracked median (robust to a shared machine's drifting load);
* *sweep*: ``--sweep`` tracked calls back to back, then ``emstrack.flush()``, timed as a whole,
  against the same number of untracked calls: shipping overlaps the next calls, as in a real
  scenario sweep, and the final flush is paid.

Run: ``python benchmarks/bench_pipeline_overhead.py [--rounds 15] [--sweep 8] [--no-wal]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODES = ("sync", "thread", "process")
TARGET = 1.05


def setup_store(folder: Path, wal: bool) -> str:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    uri = f"sqlite:///{folder / 'bench.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["EMSTRACK_SPOOL_DIR"] = str(folder / "spool")
    os.environ["EMSTRACK_SQLITE_WAL"] = "1" if wal else "0"
    for name in (
        "EMSTRACK_BACKGROUND",
        "EMSTRACK_DISABLED",
        "EMSTRACK_STRICT",
        "EMSTRACK_DELIVERY",
    ):
        os.environ.pop(name, None)
    return uri


def pipeline_a(scratch: Path) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    """(untracked, tracked) Pipeline A calls; ``index`` picks a fresh output folder."""
    from emstrack import ems, tracked_optimization

    tracked = tracked_optimization(
        experiment="bench-pipeline-a",
        run_name="{building_id}_{scenario}_{timestamp}",
        params=ems.scenario_inputs,
        metrics=ems.ModeComparison.figures,
        artifacts=["{output_dir}"],
    )(ems.compare_modes)

    def call(function: Callable[..., Any], index: int) -> Any:
        return function(
            "DE_KN_residential4", "battery_smart_ev", n_days=2, output_dir=scratch / f"a{index}"
        )

    return (lambda i: call(ems.compare_modes, i)), (lambda i: call(tracked, i))


def build_model(size: int, seed: int) -> dict[str, Any]:
    """A large LP built in pure Python (not solved); returns figures worth tracking."""
    import pulp

    problem = pulp.LpProblem(f"big_{seed}", pulp.LpMinimize)
    steps = range(96)
    units = range(size)
    charge = {(u, t): pulp.LpVariable(f"c_{u}_{t}", 0, 5) for u in units for t in steps}
    level = {(u, t): pulp.LpVariable(f"s_{u}_{t}", 0, 20) for u in units for t in steps}
    problem += pulp.lpSum((1 + ((t + seed) % 24) / 24) * charge[u, t] for u in units for t in steps)
    for u in units:
        for t in steps[1:]:
            problem += level[u, t] == level[u, t - 1] + 0.95 * charge[u, t] - 0.5
    return {
        "variables": float(len(problem.variables())),
        "constraints": float(len(problem.constraints)),
        "per_step": [float(len(units)) * (1 + t % 3) for t in steps],
    }


def pulp_build(size: int) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    from emstrack import tracked_optimization

    tracked = tracked_optimization(experiment="bench-pulp-build")(build_model)
    return (lambda i: build_model(size, i)), (lambda i: tracked(size, i))


def timed(function: Callable[[int], Any], index: int) -> float:
    began = time.perf_counter()
    function(index)
    return time.perf_counter() - began


def flush() -> None:
    import emstrack

    assert emstrack.flush(timeout=600), "runs still pending after flush"


def interleaved(
    untracked: Callable[[int], Any], tracked: Callable[[int], Any], rounds: int, warmup: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"untracked": [], **{mode: [] for mode in MODES}}
    index = 0
    for round_ in range(warmup + rounds):
        order = ["untracked", *MODES]
        shift = round_ % len(order)
        for variant in order[shift:] + order[:shift]:
            index += 1
            if variant == "untracked":
                took = timed(untracked, index)
            else:
                os.environ["EMSTRACK_DELIVERY"] = variant
                took = timed(tracked, index)
                flush()  # untimed: nothing ships during the next measurement
            if round_ >= warmup:
                samples[variant].append(took)
    os.environ.pop("EMSTRACK_DELIVERY", None)
    return samples


def sweeps(
    untracked: Callable[[int], Any], tracked: Callable[[int], Any], calls: int, repeats: int
) -> dict[str, list[float]]:
    """Whole sweeps of ``calls`` calls (plus the final flush for tracked ones), ``repeats`` each."""
    totals: dict[str, list[float]] = {"untracked": [], **{mode: [] for mode in MODES}}
    index = 10_000
    for _ in range(repeats):
        for variant in ["untracked", *MODES]:
            if variant != "untracked":
                os.environ["EMSTRACK_DELIVERY"] = variant
            function = untracked if variant == "untracked" else tracked
            began = time.perf_counter()
            for _ in range(calls):
                index += 1
                function(index)
            if variant != "untracked":
                flush()
            totals[variant].append(time.perf_counter() - began)
    os.environ.pop("EMSTRACK_DELIVERY", None)
    return totals


def paired_ratio(samples: dict[str, list[float]], mode: str) -> float:
    """1 + median of (tracked - untracked) within each round / median untracked.

    Each round's pair ran back to back, so slow drifts of a shared machine's load cancel.
    """
    differences = [t - u for t, u in zip(samples[mode], samples["untracked"], strict=True)]
    return 1 + statistics.median(differences) / statistics.median(samples["untracked"])


def report(title: str, samples: dict[str, list[float]], totals: dict[str, list[float]]) -> None:
    base = statistics.median(samples["untracked"]) * 1000
    sweep_base = statistics.median(totals["untracked"]) * 1000
    print(f"\n{title}")
    print(
        f"  {'mode':<10} {'untracked ms':>12} {'tracked ms':>11} {'ratio':>7} {'paired':>7}   "
        f"{'sweep untracked ms':>18} {'sweep tracked ms':>16} {'ratio':>7}"
    )
    for mode in MODES:
        value = statistics.median(samples[mode]) * 1000
        sweep = statistics.median(totals[mode]) * 1000
        flag = "" if mode != "process" else f"  (default; target <= {TARGET})"
        print(
            f"  {mode:<10} {base:>12.1f} {value:>11.1f} {value / base:>6.2f}x "
            f"{paired_ratio(samples, mode):>6.2f}x   "
            f"{sweep_base:>18.1f} {sweep:>16.1f} {sweep / sweep_base:>6.2f}x{flag}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="measured interleaved rounds")
    parser.add_argument("--warmup", type=int, default=3, help="interleaved rounds not measured")
    parser.add_argument("--sweep", type=int, default=8, help="calls per sweep")
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps per mode (median)")
    parser.add_argument("--size", type=int, default=25, help="PuLP model: units x 96 steps")
    parser.add_argument("--no-wal", action="store_true", help="leave SQLite in rollback mode")
    parser.add_argument("--only", choices=["a", "pulp"], default=None)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="emstrack-bench-pipeline-") as folder:
        scratch = Path(folder)
        setup_store(scratch, wal=not arguments.no_wal)
        print(
            f"{arguments.rounds} interleaved rounds after {arguments.warmup} warm-up, medians; "
            f"sweeps of {arguments.sweep} calls x {arguments.sweeps}; "
            f"SQLite {'rollback journal' if arguments.no_wal else 'WAL'}; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        workloads = []
        if arguments.only in (None, "a"):
            workloads.append(("Pipeline A (compare_modes, 2 days, CBC)", pipeline_a(scratch)))
        if arguments.only in (None, "pulp"):
            workloads.append(
                (
                    f"pure Python (PuLP model, {arguments.size}x96, not solved)",
                    pulp_build(arguments.size),
                )
            )
        for title, (untracked, tracked) in workloads:
            samples = interleaved(untracked, tracked, arguments.rounds, arguments.warmup)
            totals = sweeps(untracked, tracked, arguments.sweep, arguments.sweeps)
            report(title, samples, totals)
        from emstrack._delivery import courier

        courier.close_all(timeout=120)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
