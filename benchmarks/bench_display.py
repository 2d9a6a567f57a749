"""Time what people look at: the HTML report, a run's notebook display, the progress display.

Usage::

    python benchmarks/bench_display.py [--repeat 3]

Runs ``emstrack demo``'s pipelines once into a temporary SQLite store (21 runs), then times
``analysis.report`` on Pipeline A (12 runs, 3 embedded figures), ``Run._repr_html_`` (one
``get_run`` read back), ``choose_experiment`` (what ``emstrack ui`` does before starting the
server) and ``Progress.step`` with and without a tqdm bar, and prints them side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _best(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory(prefix="bench-display-") as scratch:
        folder = Path(scratch)
        os.environ["EMSTRACK_SPOOL_DIR"] = str(folder / "spool")
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        from emstrack import analysis, tracked_run
        from emstrack._cli.demo_run import COMPARISON_EXPERIMENT, run_demo
        from emstrack._progress import Progress
        from emstrack._ui_links import choose_experiment

        began = time.perf_counter()
        run_demo(tracking_uri=uri, echo=lambda line: None)
        demo_s = time.perf_counter() - began

        target = folder / "report.html"
        report_s = _best(
            lambda: analysis.report(COMPARISON_EXPERIMENT, target, tracking_uri=uri), repeat
        )
        size_kb = target.stat().st_size / 1024

        with tracked_run("bench", experiment="bench-display", tracking_uri=uri) as run:
            run.log_metrics({f"metric_{i}": float(i) for i in range(30)})
        run._repr_html_()  # warm: the client and its engine
        display_s = _best(run._repr_html_, max(repeat, 10))
        choose_s = _best(lambda: choose_experiment(uri), max(repeat, 10))

        steps = 500
        plain = _best(lambda: _steps(Progress(steps, lambda line: None, bar=False), steps), repeat)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):  # the bar prints each step's line above itself
            bar = _best(
                lambda: _steps(Progress(steps, sink.write, bar=True, file=sink), steps), repeat
            )

    rows = [
        ("demo pipelines (21 runs, setup)", f"{demo_s:.1f} s"),
        (f"analysis.report, Pipeline A (12 runs) -> {size_kb:.0f} kB", f"{report_s:.2f} s"),
        ("Run._repr_html_ (get_run + HTML)", f"{display_s * 1000:.1f} ms"),
        ("choose_experiment (emstrack ui's pick)", f"{choose_s * 1000:.1f} ms"),
        ("Progress.step, plain lines", f"{plain / steps * 1e6:.1f} us"),
        ("Progress.step, tqdm bar", f"{bar / steps * 1e6:.1f} us"),
    ]
    width = max(len(name) for name, _ in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"best of {repeat} (display, choice: of {max(repeat, 10)}); load average {load:.1f}")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")


def _steps(progress: object, steps: int) -> None:
    for index in range(steps):
        progress.step(1, f"step {index}")  # type: ignore[attr-defined]
    progress.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
