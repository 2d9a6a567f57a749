"""The closing summary's tracking share: what it counts, and when the driver's CPU counts."""

from __future__ import annotations

import pytest

from emstrack._sweep.progress import SweepReport
from emstrack._sweep.worker import Outcome


def report(workers: int, cores: int, driver_cpu: float) -> SweepReport:
    # Ten scenarios of 1.0 s each, 0.9 s of it the function: 1.0 s of tracking in all.
    outcomes = [
        Outcome(n, f"k{n}", "FINISHED", seconds=1.0, function_seconds=0.9) for n in range(10)
    ]
    return SweepReport(
        experiment="e",
        tracking_uri="sqlite:///x.db",
        outcomes=outcomes,
        wall_seconds=10.0,
        workers=workers,
        delivery_seconds=0.2,
        driver_cpu_seconds=driver_cpu,
        cores=cores,
    )


def test_the_drivers_delivery_counts_when_the_workers_fill_every_core() -> None:
    """Two workers on two cores: the driver's 0.6 s of delivery CPU took 0.3 s of wall time."""
    filled = report(workers=2, cores=2, driver_cpu=0.6)
    assert filled.driver_shares_cores
    assert filled.tracking_share == pytest.approx((1.0 / 2 + 0.2 + 0.6 / 2) / 10.0)
    assert "0.60 s of the driver's CPU delivering (sharing the workers' 2 core(s))" in (
        filled.summary()
    )
    assert "tracking 10.0 % of it" in filled.summary()


def test_the_drivers_delivery_on_a_spare_core_is_shown_not_counted() -> None:
    spare = report(workers=1, cores=2, driver_cpu=0.6)
    assert not spare.driver_shares_cores
    assert spare.tracking_share == pytest.approx((1.0 + 0.2) / 10.0)
    assert "(on a spare core, not counted)" in spare.summary()


def test_no_driver_delivery_and_unknown_cores_leave_the_driver_out() -> None:
    """Remote workers deliver their own runs (inside their scenarios); cores may be unknown."""
    remote = report(workers=4, cores=2, driver_cpu=0.0)
    assert remote.tracking_share == pytest.approx((1.0 / 4 + 0.2) / 10.0)
    assert "driver's CPU" not in remote.summary()
    unknown = report(workers=2, cores=0, driver_cpu=0.6)
    assert not unknown.driver_shares_cores
    assert unknown.tracking_share == pytest.approx((1.0 / 2 + 0.2) / 10.0)
