"""Pipelines for the sweep tests: the reference EMS pipeline, and one that kills its worker.

:func:`compare_modes` is ``emstrack.ems.compare_modes`` with one addition for fault tests:
when ``SWEEP_TEST_DIE_AT`` is ``"<building_id>/<scenario>/<start_day>|<marker file>"`` and the
marker file does not exist yet, the call for that scenario writes the marker and SIGKILLs its own
process in the middle of the scenario (its run is open in the store) - a worker crash, exactly
once per marker.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from emstrack import ems

DIE_AT = "SWEEP_TEST_DIE_AT"


def doom(building_id: str, scenario: str, start_day: int, marker: Path) -> dict[str, str]:
    """The environment that makes one scenario kill its worker once."""
    return {DIE_AT: f"{building_id}/{scenario}/{start_day}|{marker}"}


def compare_modes(
    building_id: str, scenario: str, n_days: int = 3, start_day: int = 0
) -> ems.ModeComparison:
    """``emstrack.ems.compare_modes``, killing its own process once for the doomed scenario."""
    doomed = os.environ.get(DIE_AT, "")
    if doomed:
        target, _, marker = doomed.partition("|")
        if target == f"{building_id}/{scenario}/{start_day}" and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return ems.compare_modes(building_id, scenario, n_days=n_days, start_day=start_day)


def grid(
    buildings: list[str],
    scenarios: list[str],
    days: list[int],
    experiment: str,
    function: str = "helpers.sweep_pipelines:compare_modes",
) -> dict[str, Any]:
    """A grid of 1-day ``compare_modes`` scenarios, tracked with the reference options."""
    return {
        "function": function,
        "experiment": experiment,
        "grid": {"building_id": buildings, "scenario": scenarios, "start_day": days},
        "fixed": {"n_days": 1},
        "tracking": {
            "params": "emstrack.ems:scenario_inputs",
            "metrics": "emstrack.ems:ModeComparison.figures",
        },
    }
