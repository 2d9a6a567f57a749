"""Calls mypy must reject: each line below carries the error code mypy reports for it."""

from __future__ import annotations

import emstrack
from emstrack import analysis


def wrong_uses() -> None:
    emstrack.tracked_optimization(run_name=3)  # type: ignore[call-overload]
    with emstrack.tracked_run(nested="yes") as run:  # type: ignore[arg-type]
        run.log_series(1, [1.0])  # type: ignore[arg-type]
    analysis.compare("ems")  # type: ignore[call-arg]
