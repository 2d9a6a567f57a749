"""Physical checks of a day's plan; each failed check counts as one constraint violation."""

from __future__ import annotations

import numpy as np

from emstrack.ems._day import DayInput
from emstrack.ems._plan import DayPlan
from emstrack.schemas import OptimizationParams

TOLERANCE_KWH = 1e-6


def failed_checks(
    day: DayInput, plan: DayPlan, params: OptimizationParams, tolerance: float = TOLERANCE_KWH
) -> list[str]:
    """Names of the physical checks the plan fails (empty when it is physically sound).

    Checks: energy balance at every step, non-negative flows, grid import and export limits,
    export only of PV energy, battery power limits, SOC bounds, SOC dynamics and the cyclic end
    state, EV energy and window, and that every appliance run is placed whole at an allowed start.
    """
    dt, grid = day.step_hours, params.grid
    flows = (
        plan.grid_import_kwh,
        plan.grid_export_kwh,
        plan.pv_curtailed_kwh,
        plan.battery_charge_kwh,
        plan.battery_discharge_kwh,
        plan.ev_charge_kwh,
    )
    checks = {
        "energy_balance": bool(np.all(np.abs(plan.balance_residual_kwh(day)) <= tolerance)),
        "non_negative_flows": all(bool(np.all(f >= -tolerance)) for f in flows),
        "grid_import_limit": _at_most(plan.grid_import_kwh, grid.max_import_kw * dt, tolerance),
        "grid_export_limit": _at_most(plan.grid_export_kwh, grid.max_export_kw * dt, tolerance),
        "export_from_pv_only": _at_most(
            plan.grid_export_kwh + plan.pv_curtailed_kwh, day.pv_kwh, tolerance
        ),
        "appliance_runs": _runs_placed_whole(day, plan, tolerance),
    }
    if not np.isnan(plan.battery_soc_kwh).all():
        checks.update(_battery_checks(day, plan, params, tolerance))
    if day.ev is not None:
        delivered = day.ev.charge_efficiency * float(plan.ev_charge_kwh.sum())
        checks["ev_energy"] = abs(delivered - day.ev.energy_needed_kwh) <= tolerance
        checks["ev_window"] = bool(
            np.all(np.abs(plan.ev_charge_kwh[~day.ev_plugged]) <= tolerance)
        ) and _at_most(plan.ev_charge_kwh, day.ev.max_charge_kw * dt, tolerance)
    return [name for name, passed in checks.items() if not passed]


def _at_most(values: np.ndarray, limit: float | np.ndarray, tolerance: float) -> bool:
    return bool(np.all(values <= np.asarray(limit) + tolerance))


def _battery_checks(
    day: DayInput, plan: DayPlan, params: OptimizationParams, tolerance: float
) -> dict[str, bool]:
    battery, dt = params.battery, day.step_hours
    capacity = battery.capacity_kwh
    soc = plan.battery_soc_kwh
    initial = battery.soc_initial * capacity
    previous = np.concatenate(([initial], soc[:-1]))
    expected = (
        previous
        + battery.charge_efficiency * plan.battery_charge_kwh
        - plan.battery_discharge_kwh / battery.discharge_efficiency
    )
    return {
        "battery_power": _at_most(plan.battery_charge_kwh, battery.max_charge_kw * dt, tolerance)
        and _at_most(plan.battery_discharge_kwh, battery.max_discharge_kw * dt, tolerance),
        "battery_soc_bounds": bool(
            np.all(soc >= battery.soc_min * capacity - tolerance)
            and np.all(soc <= battery.soc_max * capacity + tolerance)
        ),
        "battery_soc_dynamics": bool(np.all(np.abs(soc - expected) <= tolerance)),
        "battery_cyclic": abs(float(soc[-1]) - initial) <= tolerance,
    }


def _runs_placed_whole(day: DayInput, plan: DayPlan, tolerance: float) -> bool:
    """Every job starts at an allowed step and each device's energy is its fixed part + jobs."""
    if any(s not in job.allowed_starts for job, s in zip(day.jobs, plan.job_starts, strict=True)):
        return False
    for device, energy in plan.device_kwh.items():
        expected = day.device_fixed_kwh.get(device, np.zeros(day.n_steps)).copy()
        for job, start in zip(day.jobs, plan.job_starts, strict=True):
            if job.device == device:
                expected += job.placed(start, day.n_steps)
        if not np.all(np.abs(energy - expected) <= tolerance):
            return False
    return True
