"""Pipeline A: compare EMS scenarios for several buildings, every call an MLflow run.

`emstrack.ems.compare_modes` is a plain pipeline function: it solves one scenario (battery,
smart EV charging, self-consumption) day by day against the no-EMS baseline, writes
`results.csv` and `schedule.png` into `output_dir`, and returns its figures. It contains no
tracking code. Tracking is attached here, from outside, without touching it:

    python examples/pipeline_a_comparison.py --buildings DE_KN_residential1 DE_KN_residential4
    emstrack compare --experiment pipeline-a --metric savings_pct --by building_id,scenario
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from emstrack import ems, tracked_optimization


def track(experiment: str, tracking_uri: str | None = None):
    """compare_modes with each call tracked: params, per-day steps, solver stats, artifacts."""
    return tracked_optimization(
        experiment=experiment,
        run_name="{building_id}_{scenario}_{timestamp}",
        params=ems.scenario_inputs,  # the scenario's full settings, not just its name
        metrics=ems.ModeComparison.figures,  # summary metrics + `daily.*` one step per day
        artifacts=["{output_dir}"],  # results.csv, schedule.png, schedule.csv
        tracking_uri=tracking_uri,
    )(ems.compare_modes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--buildings", nargs="+", default=["DE_KN_residential1", "DE_KN_residential4"]
    )
    parser.add_argument(
        "--scenarios", nargs="+", default=list(ems.SCENARIOS), choices=ems.SCENARIOS
    )
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--solver", default="cbc", choices=ems.SOLVER_NAMES)
    parser.add_argument("--experiment", default="pipeline-a")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)

    compare_modes = track(args.experiment, args.tracking_uri)
    with tempfile.TemporaryDirectory() as scratch:
        for building in args.buildings:
            for scenario in args.scenarios:
                result = compare_modes(
                    building,
                    scenario,
                    n_days=args.days,
                    solver=args.solver,
                    output_dir=Path(scratch) / f"{building}_{scenario}",
                )
                print(
                    f"{building:<19} {scenario:<17} cost {result.summary.total_cost:7.2f} EUR"
                    f"  saves {result.summary.savings_pct:6.2f} %  ({result.summary.solver_status})"
                )


if __name__ == "__main__":
    main()
