"""Regression test of Pipeline A's KPIs with emstrack's pytest plugin.

Each scenario of `emstrack.ems.compare_modes` is run for one building and one day and its
summary (cost, savings, self-consumption, solver figures) is compared with the baseline file
committed beside this file, in `emstrack_baselines/test_pipeline_a_kpis/`:

    python -m pytest examples/test_pipeline_a_kpis.py                            # compare
    python -m pytest examples/test_pipeline_a_kpis.py --emstrack-update-baseline # re-baseline
    python -m pytest examples/test_pipeline_a_kpis.py --emstrack                 # + MLflow history

A change to the tariff, the battery model or the solver that moves a KPI beyond its tolerance
fails the test with a table of every metric; an improvement passes and is reported.
"""

from __future__ import annotations

import pytest

from emstrack import ems

BUILDING = "DE_KN_residential1"


@pytest.mark.emstrack(
    rtol=1e-6,
    # savings are a share of a small gross cost: allow CBC's last digits to move
    tolerances={"savings_pct": {"atol": 1e-4}, "avg_savings_pct": {"atol": 1e-4}},
)
@pytest.mark.parametrize("scenario", ems.SCENARIOS)
def test_pipeline_a_kpis(ems_regression, scenario):
    result = ems.compare_modes(BUILDING, scenario, n_days=1)
    kpis = result.summary.model_dump(exclude={"optimization_time_seconds"})  # wall time varies
    ems_regression.check(kpis, directions={"battery_cycles": "lower"})
