"""Optimize a building over several days and compare with the baseline."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pulp

from emstrack.ems._baseline import baseline_plan
from emstrack.ems._checks import failed_checks
from emstrack.ems._columns import EV_DEVICE, SHIFTABLE_DEVICES, WHOLESALE_PRICE, device_column
from emstrack.ems._data import HouseholdSource, load_building
from emstrack.ems._day import ApplianceFlexibility, DayInput, build_days
from emstrack.ems._jobs import DEFAULT_RUN_THRESHOLD_KWH
from emstrack.ems._model import solve_day
from emstrack.ems._plan import DayPlan
from emstrack.ems._solvers import make_solver
from emstrack.schemas import OptimizationMetrics, OptimizationParams

_MIN_DENOMINATOR_EUR = 1e-9


@dataclass(frozen=True)
class OptimizationResult:
    """The optimized and baseline plans of a building over a horizon, with their figures.

    ``schedule`` and ``baseline_schedule`` have one row per step (local-time index) with the
    columns ``day`` (0, 1, ...), ``step_hours``, ``inflexible_load_kwh``, ``dishwasher_kwh`` and
    ``washing_machine_kwh`` (where the building has them), ``appliance_load_kwh``,
    ``ev_charge_kwh`` (optimized charging, or the measured EV feed when the EV is not optimized),
    ``ev_plugged`` (1/0), ``load_kwh`` (inflexible + appliances + EV), ``pv_kwh``,
    ``pv_curtailed_kwh``, ``battery_charge_kwh``, ``battery_discharge_kwh``, ``battery_soc_kwh``
    (end of step; NaN without battery), ``grid_import_kwh``, ``grid_export_kwh``,
    ``wholesale_price_eur_per_kwh``, ``import_price_eur_per_kwh`` and
    ``feed_in_price_eur_per_kwh``. Energies are per step [kWh].

    ``daily`` has one row per day (index ``day``) and only numeric columns: ``cost_eur``,
    ``baseline_cost_eur``, ``savings_eur``, ``savings_pct`` (see :func:`savings_pct`),
    ``baseline_import_cost_eur``, ``import_kwh``, ``baseline_import_kwh``, ``export_kwh``,
    ``consumption_kwh``, ``pv_kwh``, ``self_consumption_pct`` (NaN without PV),
    ``battery_discharge_kwh``, ``battery_cycles``, ``ev_charge_kwh``, ``peak_import_kw``,
    ``cost_per_kwh``, ``constraint_violations``, ``solve_seconds``, ``optimal`` (1/0),
    ``solver_status_code`` (PuLP's number), ``variables`` and ``constraints``.

    In ``metrics``, ``variables_count`` and ``constraints_count`` add up the days' problems,
    ``optimization_time_seconds`` adds up the solve calls (model building excluded),
    ``ev_charging_kwh`` is grid-side (wallbox) energy, and ``constraint_violations`` counts the
    failed physical checks (see ``emstrack.ems._checks``) over all days.

    Attributes:
        params: The run's inputs.
        solver: Solver name used.
        resolution_minutes: Step length [min].
        dates: The local days optimized, in order.
        schedule: Per step: the plan actually adopted - the optimized one, or the baseline on a
            day whose solve was not optimal.
        baseline_schedule: Per step: the baseline plan.
        daily: One row per day.
        jobs: One row per appliance run: ``day``, ``device``, ``actual_start`` and
            ``chosen_start`` (local timestamps), ``shift_minutes``, ``energy_kwh``,
            ``allowed_starts`` (how many starts the optimizer could choose from).
        problems: The PuLP problem solved for each day, in day order.
        statuses: The solver status text of each day.
        metrics: The run's figures.

    """

    params: OptimizationParams
    solver: str
    resolution_minutes: int
    dates: tuple[date, ...]
    schedule: pd.DataFrame
    baseline_schedule: pd.DataFrame
    daily: pd.DataFrame
    jobs: pd.DataFrame
    problems: list[pulp.LpProblem]
    statuses: tuple[str, ...]
    metrics: OptimizationMetrics


def savings_pct(savings_eur: float, baseline_import_cost_eur: float) -> float:
    """Express savings as a share of what the baseline's grid imports cost before feed-in [%].

    The baseline's *net* cost is a poor denominator: with PV it approaches zero or turns negative
    on sunny days, and any saving divided by it explodes or flips sign. The gross import cost is
    positive for any household that draws energy from the grid (the baseline has no battery, so
    every night's load is imported). It is 0 only if the baseline imports nothing, and then the
    result is 0.

    Args:
        savings_eur: Baseline net cost minus optimized net cost [EUR].
        baseline_import_cost_eur: The baseline's import cost before feed-in revenue [EUR].

    """
    if baseline_import_cost_eur <= _MIN_DENOMINATOR_EUR:
        return 0.0
    return 100.0 * savings_eur / baseline_import_cost_eur


def optimize_building(
    params: OptimizationParams,
    *,
    data: HouseholdSource = None,
    start_day: int = 0,
    solver: str = "cbc",
    resolution_minutes: int = 60,
    appliance_shift_hours: int = 0,
    allowed_start_hours: Mapping[str, Collection[int]] | None = None,
    run_threshold_kwh: float = DEFAULT_RUN_THRESHOLD_KWH,
) -> OptimizationResult:
    """Optimize ``params.n_days`` days of a building, one model per day, against the baseline.

    Each day is solved on its own (battery and EV windows are cyclic within the day, see
    ``emstrack.ems._day``). A day whose solve is not optimal (infeasible, unbounded, not solved)
    keeps the baseline plan - what the household does without an EMS - so its saving is 0; its
    status is reported in ``statuses``, ``daily.optimal`` is 0, the run's ``solver_status`` is the
    first non-optimal status and ``convergence_achieved`` is False. Nothing is raised for it.

    Args:
        params: Building, mode, battery/EV/grid/tariff settings and ``n_days``.
        data: Household data source (see :func:`load_household_data`); the shipped sample by
            default.
        start_day: Position of the first day to optimize in the building's days.
        solver: ``"cbc"`` or ``"highs"``.
        resolution_minutes: Step length, dividing 60 (60 = hourly, 15 = quarter-hourly; each
            hour's energy is split evenly over its steps).
        appliance_shift_hours: How far each real appliance run may move from its real start
            [h]; 0 keeps them where they ran.
        allowed_start_hours: Per device, the local hours runs may start in (see
            :class:`ApplianceFlexibility`).
        run_threshold_kwh: Energy per hour above which an appliance counts as running.

    Returns:
        Plans, per-day figures, the solved problems and the run's metrics.

    Raises:
        ValueError: For an unknown building or solver, days outside the data or an invalid
            resolution - before anything is solved.

    """
    make_solver(solver)  # fail fast on an unknown name
    household = load_building(params.building_id, data)
    flexibility = ApplianceFlexibility(
        shift_hours=appliance_shift_hours,
        allowed_start_hours=dict(allowed_start_hours or {}),
        run_threshold_kwh=run_threshold_kwh,
    )
    days = build_days(
        household,
        params,
        start_day=start_day,
        resolution_minutes=resolution_minutes,
        flexibility=flexibility,
    )
    stem = re.sub(r"\W", "_", f"ems_{household.building_id}")
    adopted: list[DayPlan] = []
    baselines: list[DayPlan] = []
    problems: list[pulp.LpProblem] = []
    statuses: list[str] = []
    rows: list[dict[str, float]] = []
    for day in days:
        solution = solve_day(day, params, solver, f"{stem}_{day.day:%Y%m%d}")
        baseline = baseline_plan(day, params.grid)
        plan = solution.plan if solution.plan is not None else baseline
        adopted.append(plan)
        baselines.append(baseline)
        problems.append(solution.problem)
        statuses.append(solution.status)
        rows.append(
            _day_row(day, plan, baseline, params)
            | {
                "solve_seconds": solution.solve_seconds,
                "optimal": float(solution.optimal),
                "solver_status_code": float(solution.status_code),
                "variables": float(solution.problem.numVariables()),
                "constraints": float(solution.problem.numConstraints()),
            }
        )
    daily = pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="day"))
    schedule = _schedule_frame(days, adopted)
    return OptimizationResult(
        params=params,
        solver=solver,
        resolution_minutes=resolution_minutes,
        dates=tuple(day.day for day in days),
        schedule=schedule,
        baseline_schedule=_schedule_frame(days, baselines),
        daily=daily,
        jobs=_jobs_frame(days, adopted),
        problems=problems,
        statuses=tuple(statuses),
        metrics=_metrics(daily, schedule, statuses, params),
    )


def _day_row(
    day: DayInput, plan: DayPlan, baseline: DayPlan, params: OptimizationParams
) -> dict[str, float]:
    cost, baseline_cost = plan.net_cost_eur(day), baseline.net_cost_eur(day)
    baseline_import_cost = baseline.import_cost_eur(day)
    pv = float(day.pv_kwh.sum())
    # Solvers return flows within their tolerance: an idle battery may read -1e-17 kWh.
    discharged = max(0.0, float(plan.battery_discharge_kwh.sum()))
    consumption = float(plan.load_kwh(day).sum())
    return {
        "cost_eur": cost,
        "baseline_cost_eur": baseline_cost,
        "savings_eur": baseline_cost - cost,
        "savings_pct": savings_pct(baseline_cost - cost, baseline_import_cost),
        "baseline_import_cost_eur": baseline_import_cost,
        "import_kwh": float(plan.grid_import_kwh.sum()),
        "baseline_import_kwh": float(baseline.grid_import_kwh.sum()),
        "export_kwh": float(plan.grid_export_kwh.sum()),
        "consumption_kwh": consumption,
        "pv_kwh": pv,
        "self_consumption_pct": _self_consumption_pct(plan, pv),
        "battery_discharge_kwh": discharged,
        "battery_cycles": discharged / params.battery.capacity_kwh
        if params.battery_enabled
        else 0.0,
        "ev_charge_kwh": float(_ev_energy(plan).sum()),
        "peak_import_kw": float(plan.grid_import_kwh.max()) / day.step_hours,
        "cost_per_kwh": cost / consumption if consumption > 0 else 0.0,
        "constraint_violations": float(len(failed_checks(day, plan, params))),
    }


def _jobs_frame(days: list[DayInput], plans: list[DayPlan]) -> pd.DataFrame:
    rows = [
        {
            "day": position,
            "device": job.device,
            "actual_start": day.timestamps[job.actual_start],
            "chosen_start": day.timestamps[start],
            "shift_minutes": round((start - job.actual_start) * day.step_hours * 60),
            "energy_kwh": float(job.profile_kwh.sum()),
            "allowed_starts": len(job.allowed_starts),
        }
        for position, (day, plan) in enumerate(zip(days, plans, strict=True))
        for job, start in zip(day.jobs, plan.job_starts, strict=True)
    ]
    columns = ["day", "device", "actual_start", "chosen_start", "shift_minutes", "energy_kwh"]
    return pd.DataFrame(rows, columns=[*columns, "allowed_starts"])


def _self_consumption_pct(plan: DayPlan, pv_kwh: float) -> float:
    if pv_kwh <= 0:
        return float("nan")
    used = pv_kwh - float(plan.pv_curtailed_kwh.sum()) - float(plan.grid_export_kwh.sum())
    return 100.0 * used / pv_kwh


def _ev_energy(plan: DayPlan) -> np.ndarray:
    """EV charging per step: the optimized/baseline charging, or the measured feed."""
    measured = plan.device_kwh.get(EV_DEVICE)
    return plan.ev_charge_kwh + measured if measured is not None else plan.ev_charge_kwh


def _schedule_frame(days: list[DayInput], plans: list[DayPlan]) -> pd.DataFrame:
    frames = []
    for position, (day, plan) in enumerate(zip(days, plans, strict=True)):
        columns: dict[str, object] = {
            "day": position,
            "step_hours": day.step_hours,
            "inflexible_load_kwh": day.inflexible_kwh,
        }
        appliance = np.zeros(day.n_steps)
        for device in SHIFTABLE_DEVICES:
            if device in plan.device_kwh:
                columns[device_column(device)] = plan.device_kwh[device]
                appliance = appliance + plan.device_kwh[device]
        ev = _ev_energy(plan)
        columns |= {
            "appliance_load_kwh": appliance,
            "ev_charge_kwh": ev,
            "ev_plugged": day.ev_plugged.astype(int),
            "load_kwh": day.inflexible_kwh + appliance + ev,
            "pv_kwh": day.pv_kwh,
            "pv_curtailed_kwh": plan.pv_curtailed_kwh,
            "battery_charge_kwh": plan.battery_charge_kwh,
            "battery_discharge_kwh": plan.battery_discharge_kwh,
            "battery_soc_kwh": plan.battery_soc_kwh,
            "grid_import_kwh": plan.grid_import_kwh,
            "grid_export_kwh": plan.grid_export_kwh,
            WHOLESALE_PRICE: day.wholesale_eur_per_kwh,
            "import_price_eur_per_kwh": day.import_eur_per_kwh,
            "feed_in_price_eur_per_kwh": day.feed_in_eur_per_kwh,
        }
        frames.append(pd.DataFrame(columns, index=day.timestamps))
    schedule = pd.concat(frames)
    schedule.index.name = "timestamp"
    return schedule


def _metrics(
    daily: pd.DataFrame,
    schedule: pd.DataFrame,
    statuses: list[str],
    params: OptimizationParams,
) -> OptimizationMetrics:
    total_cost = float(daily["cost_eur"].sum())
    baseline_cost = float(daily["baseline_cost_eur"].sum())
    consumption = float(daily["consumption_kwh"].sum())
    pv = float(daily["pv_kwh"].sum())
    exported = float(schedule["grid_export_kwh"].sum())
    curtailed = float(schedule["pv_curtailed_kwh"].sum())
    not_optimal = [status for status in statuses if status != "Optimal"]
    return OptimizationMetrics(
        total_cost=total_cost,
        savings_eur=baseline_cost - total_cost,
        savings_pct=savings_pct(
            baseline_cost - total_cost, float(daily["baseline_import_cost_eur"].sum())
        ),
        cost_per_kwh=total_cost / consumption if consumption > 0 else 0.0,
        baseline_cost=baseline_cost,
        optimization_time_seconds=float(daily["solve_seconds"].sum()),
        solver_status=not_optimal[0] if not_optimal else "Optimal",
        variables_count=int(daily["variables"].sum()),
        constraints_count=int(daily["constraints"].sum()),
        total_consumption_kwh=consumption,
        battery_cycles=max(0.0, float(daily["battery_discharge_kwh"].sum()))
        / params.battery.capacity_kwh
        if params.battery_enabled
        else 0.0,
        ev_charging_kwh=float(daily["ev_charge_kwh"].sum()),
        self_consumption_pct=100.0 * (pv - exported - curtailed) / pv if pv > 0 else None,
        peak_import_kw=float((schedule["grid_import_kwh"] / schedule["step_hours"]).max()),
        convergence_achieved=not not_optimal,
        constraint_violations=int(daily["constraint_violations"].sum()),
    )
