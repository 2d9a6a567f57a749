"""The reference EMS model of one day as a PuLP (MI)LP.

Decision variables, all energies per step [kWh]:

* grid import and export (export only at steps with PV, and never more than the PV energy used:
  the feed-in tariff pays for PV energy, so the battery cannot export grid energy);
* PV curtailment (needed only when PV exceeds load, battery and export limit);
* battery charge, discharge and state of charge, with charge/discharge efficiencies, power
  limits, SOC bounds and the cyclic condition SOC(end of day) = SOC(start);
* EV charging at the plugged-in steps up to the wallbox power, delivering exactly the energy the
  car needs after charging losses;
* one binary per allowed start of each movable appliance run (exactly one chosen); the run's real
  energy profile is placed from there.

The energy balance closes at every step: import + PV - curtailment + discharge = inflexible load
+ appliances + EV + charge + export. Where the import price is below the feed-in tariff (only with
unrealistically low markups), a binary per such step forbids importing and exporting at once, so
the plan cannot trade with itself.

Objectives: ``cost`` minimises import cost minus feed-in revenue; ``self_consumption`` minimises
imported energy plus 0.01 kWh per EUR of that net cost, a tie-breaker too small to trade any
import for money at household prices (which stay far below 100 EUR/kWh).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp

from emstrack.ems._day import DayInput
from emstrack.ems._plan import DayPlan, FloatArray, device_energy
from emstrack.ems._solvers import make_solver
from emstrack.schemas import OptimizationMode, OptimizationParams

SELF_CONSUMPTION_COST_WEIGHT = 0.01
"""kWh of objective per EUR of net cost in self-consumption mode (tie-breaker)."""


@dataclass(frozen=True)
class DaySolution:
    """The outcome of solving one day.

    Attributes:
        problem: The solved PuLP problem (solver statistics live on it).
        status: ``pulp.LpStatus`` text, e.g. ``"Optimal"`` or ``"Infeasible"``.
        status_code: The matching ``pulp`` status number.
        optimal: Whether the solver proved optimality.
        solve_seconds: Wall time of the solve call [s].
        plan: The optimal plan; ``None`` unless ``optimal``.

    """

    problem: pulp.LpProblem
    status: str
    status_code: int
    optimal: bool
    solve_seconds: float
    plan: DayPlan | None


def solve_day(day: DayInput, params: OptimizationParams, solver: str, name: str) -> DaySolution:
    """Build and solve one day's model.

    A non-optimal outcome (e.g. an EV that cannot get its energy in its window) is returned as
    such - status and no plan - rather than raised, so that the caller can record it.

    Args:
        day: The day's inputs.
        params: Mode, battery, EV and grid settings.
        solver: ``"cbc"`` or ``"highs"``.
        name: Problem name (letters, digits and underscores).

    Raises:
        ValueError: If the solver name is unknown.

    """
    backend = make_solver(solver)
    model = _DayModel(day, params, name)
    started = time.perf_counter()
    try:
        model.problem.solve(backend)
    except pulp.PulpSolverError:
        model.problem.status = pulp.LpStatusNotSolved
        model.problem.sol_status = pulp.LpSolutionNoSolutionFound
    elapsed = time.perf_counter() - started
    status_code = int(model.problem.status)
    optimal = (
        status_code == pulp.LpStatusOptimal and model.problem.sol_status == pulp.LpSolutionOptimal
    )
    status = pulp.LpStatus[status_code]
    if status_code == pulp.LpStatusOptimal and not optimal:
        status = pulp.LpSolution[model.problem.sol_status]
    return DaySolution(
        problem=model.problem,
        status=status,
        status_code=status_code,
        optimal=optimal,
        solve_seconds=elapsed,
        plan=model.plan() if optimal else None,
    )


class _DayModel:
    """Variables and constraints of one day; reads the plan back after solving."""

    def __init__(self, day: DayInput, params: OptimizationParams, name: str) -> None:
        self.day = day
        self.params = params
        self.problem = pulp.LpProblem(name, pulp.LpMinimize)
        n, dt, grid = day.n_steps, day.step_hours, params.grid
        add = self.problem.add_variable

        self.grid_import = [add(f"imp_{t}", 0, grid.max_import_kw * dt) for t in range(n)]
        pv_steps = [t for t in range(n) if day.pv_kwh[t] > 0]
        self.grid_export = {t: add(f"exp_{t}", 0, grid.max_export_kw * dt) for t in pv_steps}
        self.curtailed = {t: add(f"cur_{t}", 0, float(day.pv_kwh[t])) for t in pv_steps}
        for t in pv_steps:  # only PV energy is exported (and paid the feed-in tariff)
            self.problem += self.grid_export[t] + self.curtailed[t] <= float(day.pv_kwh[t])
        self._forbid_self_trading(pv_steps)

        self.charge: list[Any] = []
        self.discharge: list[Any] = []
        self.soc: list[Any] = []
        if params.battery_enabled:
            self._add_battery()
        self.ev: dict[int, Any] = {}
        if day.ev is not None:
            self._add_ev()
        self.starts: list[dict[int, Any]] = []
        appliances = self._add_jobs()

        fixed = day.fixed_load_kwh()
        for t in range(n):
            supply = self.grid_import[t] + float(day.pv_kwh[t])
            demand = appliances[t] + float(fixed[t])
            if t in self.curtailed:
                supply -= self.curtailed[t]
                demand += self.grid_export[t]
            if self.charge:
                supply += self.discharge[t]
                demand += self.charge[t]
            if t in self.ev:
                demand += self.ev[t]
            self.problem += supply == demand, f"balance_{t}"

        cost = pulp.lpSum(
            float(day.import_eur_per_kwh[t]) * self.grid_import[t] for t in range(n)
        ) - day.feed_in_eur_per_kwh * pulp.lpSum(self.grid_export.values())
        if params.optimization_mode is OptimizationMode.SELF_CONSUMPTION:
            self.problem += pulp.lpSum(self.grid_import) + SELF_CONSUMPTION_COST_WEIGHT * cost
        else:
            self.problem += cost

    def _forbid_self_trading(self, pv_steps: Sequence[int]) -> None:
        day, grid, dt = self.day, self.params.grid, self.day.step_hours
        for t in pv_steps:
            if day.import_eur_per_kwh[t] < day.feed_in_eur_per_kwh:
                importing = self.problem.add_variable(f"dir_{t}", cat=pulp.LpBinary)
                self.problem += self.grid_import[t] <= grid.max_import_kw * dt * importing
                self.problem += self.grid_export[t] <= grid.max_export_kw * dt * (1 - importing)

    def _add_battery(self) -> None:
        battery, dt, add = self.params.battery, self.day.step_hours, self.problem.add_variable
        capacity = battery.capacity_kwh
        initial = battery.soc_initial * capacity
        previous: Any = initial
        for t in range(self.day.n_steps):
            charge = add(f"chg_{t}", 0, battery.max_charge_kw * dt)
            discharge = add(f"dis_{t}", 0, battery.max_discharge_kw * dt)
            soc = add(f"soc_{t}", battery.soc_min * capacity, battery.soc_max * capacity)
            self.problem += (
                (
                    soc
                    == previous
                    + battery.charge_efficiency * charge
                    - (1.0 / battery.discharge_efficiency) * discharge
                ),
                f"soc_{t}",
            )
            self.charge.append(charge)
            self.discharge.append(discharge)
            self.soc.append(soc)
            previous = soc
        self.problem += self.soc[-1] == initial, "soc_cyclic"

    def _add_ev(self) -> None:
        ev, dt = self.day.ev, self.day.step_hours
        assert ev is not None
        for t in self.day.ev_order:
            self.ev[t] = self.problem.add_variable(f"ev_{t}", 0, ev.max_charge_kw * dt)
        self.problem += (
            ev.charge_efficiency * pulp.lpSum(self.ev.values()) == ev.energy_needed_kwh,
            "ev_energy",
        )

    def _add_jobs(self) -> list[Any]:
        """Binaries for movable runs; returns each step's appliance energy of movable runs."""
        appliances: list[Any] = [0.0] * self.day.n_steps
        for j, job in enumerate(self.day.jobs):
            if not job.is_movable:
                self.starts.append({})
                continue
            choices = {
                s: self.problem.add_variable(f"start_{j}_{s}", cat=pulp.LpBinary)
                for s in job.allowed_starts
            }
            self.problem += pulp.lpSum(choices.values()) == 1, f"job_{j}"
            for start, chosen in choices.items():
                for offset, energy in enumerate(job.profile_kwh):
                    appliances[start + offset] += float(energy) * chosen
            self.starts.append(choices)
        for job, choices in zip(self.day.jobs, self.starts, strict=True):
            if not choices:  # immovable runs are constants of the balance
                for offset, energy in enumerate(job.profile_kwh):
                    appliances[job.actual_start + offset] += float(energy)
        return appliances

    def plan(self) -> DayPlan:
        """Read the solved plan back (call only after an optimal solve)."""
        n = self.day.n_steps

        def values(variables: Sequence[Any]) -> FloatArray:
            return np.array([float(v.varValue or 0.0) for v in variables])

        def sparse(variables: dict[int, Any]) -> FloatArray:
            out = np.zeros(n)
            for t, v in variables.items():
                out[t] = float(v.varValue or 0.0)
            return out

        starts = tuple(
            max(choices, key=lambda s: float(choices[s].varValue or 0.0))
            if choices
            else job.actual_start
            for job, choices in zip(self.day.jobs, self.starts, strict=True)
        )
        battery = bool(self.charge)
        return DayPlan(
            device_kwh=device_energy(self.day, starts),
            job_starts=starts,
            ev_charge_kwh=sparse(self.ev),
            battery_charge_kwh=values(self.charge) if battery else np.zeros(n),
            battery_discharge_kwh=values(self.discharge) if battery else np.zeros(n),
            battery_soc_kwh=values(self.soc) if battery else np.full(n, np.nan),
            grid_import_kwh=values(self.grid_import),
            grid_export_kwh=sparse(self.grid_export),
            pv_curtailed_kwh=sparse(self.curtailed),
        )
