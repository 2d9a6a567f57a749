"""What the data-lineage digest costs: a year of 15-minute household data, side by side.

A 35,040-row frame (a year at 15 minutes, Europe/Berlin index, five float columns like the
household feeds), medians over ``--repeat`` calls:

* ``frame_digest`` - emstrack's SHA-256 over the full frame and its time index (goal <= 50 ms);
* ``dataset_event`` - the whole record a run spools (digest, profile, schema);
* MLflow's own pandas dataset digest (``mlflow.data.from_pandas``), for comparison: it hashes
  only the first 10,000 rows and drops datetime columns;
* ``load_building`` of the bundled sample inside a run (captured) and outside (not).

Run: ``python benchmarks/bench_digest.py [--repeat 30]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

ROWS = 35_040
GOAL_MS = 50.0


def year_frame() -> pd.DataFrame:
    index = pd.date_range("2016-01-01", periods=ROWS, freq="15min", tz="Europe/Berlin")
    rng = np.random.default_rng(1)
    columns = ("inflexible_load_kwh", "pv_kwh", "wholesale_price_eur_per_kwh", "ev_kwh", "dish")
    return pd.DataFrame({c: rng.random(ROWS) for c in columns}, index=index)


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from emstrack._capture.datasets import dataset_event
    from emstrack._capture.digest import frame_digest

    frame = year_frame()
    figures = {
        "frame_digest (35,040 rows, full)": median_ms(lambda: frame_digest(frame), args.repeat),
        "dataset_event (digest+profile+schema)": median_ms(
            lambda: dataset_event(frame, "bench"), args.repeat
        ),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.data

        figures["mlflow.data.from_pandas (10,000 rows)"] = median_ms(
            lambda: mlflow.data.from_pandas(frame.reset_index()).digest, args.repeat
        )

    with tempfile.TemporaryDirectory() as folder:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/bench.db"
        os.environ["EMSTRACK_SPOOL_DIR"] = f"{folder}/spool"
        import emstrack
        from emstrack import ems

        ems.load_building("DE_KN_residential1")
        figures["load_building (sample), no run"] = median_ms(
            lambda: ems.load_building("DE_KN_residential1"), args.repeat
        )
        with emstrack.tracked_run("bench", experiment="bench-digest"):
            figures["load_building (sample), in a run"] = median_ms(
                lambda: ems.load_building("DE_KN_residential1"), args.repeat
            )

    width = max(len(name) for name in figures)
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:8.2f} ms")
    digest_ms = figures["frame_digest (35,040 rows, full)"]
    verdict = "meets" if digest_ms <= GOAL_MS else "MISSES"
    print(f"\nfull-frame digest {digest_ms:.2f} ms {verdict} the goal of <= {GOAL_MS:.0f} ms")


if __name__ == "__main__":
    main()
