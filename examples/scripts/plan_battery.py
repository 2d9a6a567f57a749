"""Plan a household battery day by day: an ordinary script with no tracking code in it.

    python examples/scripts/plan_battery.py --building DE_KN_residential1 --mode cost --n_days 2

Tracked from outside, unchanged (see notes/instrument-readme.md):

    emstrack run -e battery-plans --track optimize_day --returns optimize_day=cost_eur,_ \
        -- examples/scripts/plan_battery.py --building DE_KN_residential1 --n_days 2
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pulp

from emstrack.ems import make_solver

parser = argparse.ArgumentParser(description="Plan a household battery day by day.")
parser.add_argument("--building", default="DE_KN_residential1")
parser.add_argument("--mode", choices=("cost", "self_consumption"), default="cost")
parser.add_argument("--n_days", type=int, default=2)
parser.add_argument("--capacity_kwh", type=float, default=5.0)
parser.add_argument("--max_cost", type=float, default=None, help="exit 3 if a day costs more")
parser.add_argument("--output_dir", default=None, help="write <building>_plan.csv there")
args = parser.parse_args()

_spec = importlib.util.spec_from_file_location("steps", Path(__file__).with_name("01_steps.py"))
steps = importlib.util.module_from_spec(_spec)
sys.modules["steps"] = steps
_spec.loader.exec_module(steps)


def optimize_day(day, capacity_kwh, mode):
    """Battery schedule of one day; returns (cost in EUR as np.float64, [Device, ...])."""
    hours = range(len(day.load_kwh))
    power = capacity_kwh / 2
    problem = pulp.LpProblem("battery_day", pulp.LpMinimize)
    charge = [pulp.LpVariable(f"charge_{h}", 0, power) for h in hours]
    discharge = [pulp.LpVariable(f"discharge_{h}", 0, power) for h in hours]
    bought = [pulp.LpVariable(f"import_{h}", 0) for h in hours]
    sold = [pulp.LpVariable(f"export_{h}", 0) for h in hours]
    soc = [pulp.LpVariable(f"soc_{h}", 0, capacity_kwh) for h in hours]
    for h in hours:
        problem += bought[h] - sold[h] == day.load_kwh[h] - day.pv_kwh[h] + charge[h] - discharge[h]
        previous = soc[h - 1] if h else capacity_kwh / 2
        problem += soc[h] == previous + 0.95 * charge[h] - discharge[h] / 0.95
    problem += soc[-1] >= capacity_kwh / 2
    cost = pulp.lpSum(
        day.price_eur_per_kwh[h] * bought[h] - steps.FEED_IN_EUR_PER_KWH * sold[h] for h in hours
    )
    problem += cost if mode == "cost" else pulp.lpSum(bought) + 1e-3 * cost
    problem.solve(make_solver("cbc"))
    if pulp.LpStatus[problem.status] != "Optimal":
        raise RuntimeError(f"{day.date}: {pulp.LpStatus[problem.status]}")
    devices = [
        steps.Device(
            "battery", [round(charge[h].value() - discharge[h].value(), 4) for h in hours]
        ),
        steps.Device("grid", [round(bought[h].value() - sold[h].value(), 4) for h in hours]),
    ]
    return np.float64(round(pulp.value(cost), 6)), devices


def main():
    total = 0.0
    rows = ["date,hour,battery_kwh,grid_kwh"]
    for day_index in range(args.n_days):
        day = steps.load_day(args.building, day_index)
        cost, devices = optimize_day(day, args.capacity_kwh, args.mode)
        total += cost
        battery, grid = devices
        rows += [
            f"{day.date},{h},{b},{g}"
            for h, (b, g) in enumerate(zip(battery.energy_kwh, grid.energy_kwh, strict=True))
        ]
        print(f"{day.date}  cost {cost:8.3f} EUR  " + "  ".join(d.summary() for d in devices))
        if args.max_cost is not None and cost > args.max_cost:
            print(f"{day.date} costs {cost:.3f} EUR, more than --max_cost", file=sys.stderr)
            sys.exit(3)
    if args.output_dir is not None:
        output = Path(args.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        (output / f"{args.building}_plan.csv").write_text("\n".join(rows) + "\n")
    print(f"{args.building} {args.mode}: {args.n_days} days, total {total:.3f} EUR")


if __name__ == "__main__":
    main()
