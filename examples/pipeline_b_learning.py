"""Pipeline B: learn when appliances run, then schedule them - as nested MLflow runs.

For each building a parent run holds two children: `learning` (Dirichlet updates of each
appliance's start-hour distribution, one step per training day, Jensen-Shannon divergence to
the prior in bits) and `scheduling` (the following days optimized with the learned hours,
compared with "run when ready"). The pipeline functions in `emstrack.ems` have no tracking code.

    python examples/pipeline_b_learning.py --buildings DE_KN_residential3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from emstrack import ems, tracked_optimization, tracked_run

EXPERIMENT = "pipeline-b"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--buildings", nargs="+", default=["DE_KN_residential3", "DE_KN_residential4"]
    )
    parser.add_argument("--training-days", type=int, default=14)
    parser.add_argument("--optimization-days", type=int, default=3)
    parser.add_argument("--experiment", default=EXPERIMENT)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)

    learn = tracked_optimization(
        run_name="learning", metrics=ems.UsageLearning.figures, artifacts=["{output_dir}"]
    )(ems.learn_device_usage)
    schedule = tracked_optimization(
        run_name="scheduling", metrics=ems.LearnedSchedule.figures, artifacts=["{output_dir}"]
    )(ems.schedule_learned_devices)

    with tempfile.TemporaryDirectory() as scratch:
        for building in args.buildings:
            out = Path(scratch) / building
            inputs = {
                "building_id": building,
                "training_days": args.training_days,
                "optimization_days": args.optimization_days,
            }
            # The parent run groups the two halves in the MLflow UI; children inherit its
            # experiment and store.
            with tracked_run(
                f"learn_and_schedule_{building}",
                experiment=args.experiment,
                params=inputs,
                tracking_uri=args.tracking_uri,
            ) as parent:
                learning = learn(building, args.training_days, output_dir=out / "learning")
                scheduled = schedule(
                    building, learning, args.optimization_days, output_dir=out / "scheduling"
                )
                parent.log_metrics(
                    {
                        "savings_pct": scheduled.summary.savings_pct,
                        "savings_eur": scheduled.summary.savings_eur,
                        "avg_convergence": learning.metrics.avg_convergence,
                    }
                )
            print(
                f"{building:<19} learned {learning.metrics.devices_trained} devices over "
                f"{learning.metrics.training_days} days; moved {scheduled.summary.jobs_moved} of "
                f"{scheduled.summary.jobs} runs; saves {scheduled.summary.savings_eur:.2f} EUR "
                f"({scheduled.summary.savings_pct:.2f} %)"
            )


if __name__ == "__main__":
    main()
