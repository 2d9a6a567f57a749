"""Building a day's model inputs, its baseline plan, and the physical checks on a plan.

Covers ``_day`` (steps, resolutions), ``_baseline`` (what the household does without an EMS),
``_plan`` (energies per device and step) and ``_checks`` (each failed check is a violation).
"""

from __future__ import annotations

import numpy as np
import pytest

from emstrack.ems import load_building
from emstrack.ems._baseline import baseline_plan
from emstrack.ems._checks import failed_checks
from emstrack.ems._day import build_days, steps_per_hour
from emstrack.ems._plan import device_energy
from emstrack.schemas import OptimizationParams

BUILDING = "DE_KN_residential4"


@pytest.fixture(scope="module")
def params() -> OptimizationParams:
    return OptimizationParams(building_id=BUILDING, n_days=2, ev_enabled=False)


@pytest.mark.parametrize(("minutes", "steps"), [(60, 1), (15, 4), (30, 2)])
def test_steps_per_hour(minutes: int, steps: int) -> None:
    assert steps_per_hour(minutes) == steps


@pytest.mark.parametrize("minutes", [0, -15, 7, 90])
def test_steps_per_hour_rejects_what_does_not_divide_the_hour(minutes: int) -> None:
    with pytest.raises(ValueError, match="resolution_minutes must divide 60"):
        steps_per_hour(minutes)


def test_days_keep_the_energy_at_every_resolution(params: OptimizationParams) -> None:
    data = load_building(BUILDING)
    hourly = build_days(data, params, resolution_minutes=60)
    quarter = build_days(data, params, resolution_minutes=15)
    assert [day.n_steps for day in hourly] == [24, 24]
    assert [day.n_steps for day in quarter] == [96, 96]
    for coarse, fine in zip(hourly, quarter, strict=True):
        assert fine.pv_kwh.sum() == pytest.approx(coarse.pv_kwh.sum(), abs=1e-9)
        assert fine.inflexible_kwh.sum() == pytest.approx(coarse.inflexible_kwh.sum(), abs=1e-9)


def test_days_outside_the_data_are_an_error(params: OptimizationParams) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the days, tested elsewhere
        build_days(load_building(BUILDING), params, start_day=10_000)


def test_baseline_plan_is_physically_sound(params: OptimizationParams) -> None:
    for day in build_days(load_building(BUILDING), params):
        plan = baseline_plan(day, params.grid)
        assert failed_checks(day, plan, params) == []
        assert np.all(plan.battery_charge_kwh == 0)
        assert plan.import_cost_eur(day) >= plan.net_cost_eur(day)


def test_a_broken_plan_fails_the_energy_balance(params: OptimizationParams) -> None:
    day = build_days(load_building(BUILDING), params)[0]
    plan = baseline_plan(day, params.grid)
    plan.grid_import_kwh[3] += 0.5
    assert "energy_balance" in failed_checks(day, plan, params)


def test_device_energy_places_each_job_whole(params: OptimizationParams) -> None:
    days = build_days(load_building(BUILDING), params)
    day = next((d for d in days if d.jobs), None)
    if day is None:
        pytest.skip("no appliance run in these sample days")
    fixed = sum(float(v.sum()) for v in day.device_fixed_kwh.values())
    starts = tuple(0 for _ in day.jobs)
    placed = device_energy(day, starts)
    total = sum(float(v.sum()) for v in placed.values())
    assert total == pytest.approx(
        fixed + sum(float(job.placed(0, day.n_steps).sum()) for job in day.jobs)
    )
