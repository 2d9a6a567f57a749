"""The baseline: what the household does without an EMS.

No battery; appliances run when they really ran; the EV (when its charging is part of the
scenario) charges at full power from arrival until it has its energy; the grid takes whatever is
left, PV surplus is exported up to the export limit and curtailed beyond it.
"""

from __future__ import annotations

import numpy as np

from emstrack.ems._day import DayInput
from emstrack.ems._plan import DayPlan, FloatArray, device_energy
from emstrack.schemas import GridSettings


def baseline_plan(day: DayInput, grid: GridSettings) -> DayPlan:
    """Evaluate the no-EMS plan of a day (no solver involved).

    If the EV cannot get its energy within its window even at full power, it gets what fits;
    the shortfall shows up in the plan's physical checks. Imports above the grid limit are not
    cut (the baseline is what would happen, limits or not).
    """
    starts = tuple(job.actual_start for job in day.jobs)
    devices = device_energy(day, starts)
    ev = _charge_on_arrival(day)
    load = day.inflexible_kwh + ev + sum((e for e in devices.values()), np.zeros(day.n_steps))
    net = load - day.pv_kwh
    surplus = np.clip(-net, 0.0, None)
    export = np.minimum(surplus, grid.max_export_kw * day.step_hours)
    zeros = np.zeros(day.n_steps)
    return DayPlan(
        device_kwh=devices,
        job_starts=starts,
        ev_charge_kwh=ev,
        battery_charge_kwh=zeros,
        battery_discharge_kwh=zeros.copy(),
        battery_soc_kwh=np.full(day.n_steps, np.nan),
        grid_import_kwh=np.clip(net, 0.0, None),
        grid_export_kwh=export,
        pv_curtailed_kwh=surplus - export,
    )


def _charge_on_arrival(day: DayInput) -> FloatArray:
    charge = np.zeros(day.n_steps)
    if day.ev is None:
        return charge
    remaining = day.ev.energy_needed_kwh / day.ev.charge_efficiency  # grid side
    step_limit = day.ev.max_charge_kw * day.step_hours
    for step in day.ev_order:
        if remaining <= 0:
            break
        charge[step] = min(step_limit, remaining)
        remaining -= charge[step]
    return charge
