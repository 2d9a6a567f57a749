"""Quickstart: one decorator turns every call of an optimization pipeline into an MLflow run."""

from __future__ import annotations

import pulp

from emstrack import tracked_optimization
from emstrack.ems import make_solver

PRICES = (0.31, 0.29, 0.27, 0.35, 0.42, 0.38)  # EUR/kWh, one per hour
LOAD_KWH = (0.6, 0.5, 0.7, 1.2, 1.5, 1.1)


@tracked_optimization(experiment="quickstart", run_name="battery_{capacity_kwh}kWh")
def plan_battery(capacity_kwh: float, max_power_kw: float = 2.0, solver: str = "cbc") -> dict:
    """Buy the household's energy as cheaply as possible with a battery (a plain PuLP model)."""
    hours = range(len(PRICES))
    problem = pulp.LpProblem("battery", pulp.LpMinimize)
    charge = [problem.add_variable(f"charge_{h}", 0, max_power_kw) for h in hours]
    discharge = [problem.add_variable(f"discharge_{h}", 0, max_power_kw) for h in hours]
    soc = [problem.add_variable(f"soc_{h}", 0, capacity_kwh) for h in hours]
    grid = [problem.add_variable(f"grid_{h}", 0) for h in hours]
    problem += pulp.lpSum(PRICES[h] * grid[h] for h in hours)
    for h in hours:
        problem += grid[h] + discharge[h] - charge[h] == LOAD_KWH[h]
        problem += soc[h] == (soc[h - 1] if h else 0) + charge[h] - discharge[h]
    problem.solve(make_solver(solver))
    return {  # numbers become metrics, strings tags
        "total_cost": pulp.value(problem.objective),
        "grid_kwh": sum(g.value() for g in grid),
        "solver_status": pulp.LpStatus[problem.status],
    }


if __name__ == "__main__":
    for capacity in (0.0, 2.5, 5.0):
        result = plan_battery(capacity)
        print(f"{capacity:3} kWh battery: {result['total_cost']:.3f} EUR")
    print("3 runs in experiment 'quickstart'; compare them with:")
    print("  emstrack compare --experiment quickstart --metric total_cost --by capacity_kwh")
