"""The two EMS pipelines as plain functions, without any tracking.

* Pipeline A, :func:`compare_modes`: one scenario (battery, smart EV, self-consumption) against
  the no-EMS baseline over a few days.
* Pipeline B, :func:`learn_and_schedule`: learn each appliance's start-hour distribution from
  training days (:func:`learn_device_usage`), then move the appliances' runs on the following days
  only to hours the household plausibly uses (:func:`schedule_learned_devices`).

Inputs are plain values so that a decorator can log them as parameters; results carry pydantic
metrics (``summary``, ``learning.metrics``) and numeric per-day frames for step-wise logging.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pulp
from pydantic import Field

from emstrack.ems._columns import SHIFTABLE_DEVICES
from emstrack.ems._data import (
    HouseholdData,
    HouseholdSource,
    load_building,
    load_start_probabilities,
)
from emstrack.ems._jobs import DEFAULT_RUN_THRESHOLD_KWH
from emstrack.ems._learning import (
    DEFAULT_PRIOR_STRENGTH,
    HOURS,
    StartHourPosterior,
    daily_start_hours,
    learn_start_hours,
    learning_metrics,
    updates_frame,
)
from emstrack.ems._optimize import OptimizationResult, optimize_building
from emstrack.ems._plots import plot_schedule
from emstrack.schemas import (
    BatterySettings,
    LearningMetrics,
    OptimizationMetrics,
    OptimizationMode,
    OptimizationParams,
)

SCENARIOS = ("baseline", "battery_only", "battery_smart_ev", "self_consumption")
"""Scenario names of :func:`compare_modes`."""

DEFAULT_SHIFT_HOURS = 6
DEFAULT_MIN_PROBABILITY = 1.0 / HOURS


class ModeComparisonSummary(OptimizationMetrics):
    """The run's :class:`OptimizationMetrics` plus per-day averages."""

    avg_savings_pct: float = Field(description="Mean of the days' savings_pct [%].")
    n_days: int = Field(ge=0, description="Days optimized [d].")


class LearnedScheduleSummary(ModeComparisonSummary):
    """Figures of scheduling appliances with learned start hours."""

    jobs: int = Field(ge=0, description="Appliance runs on the optimization days.")
    jobs_moved: int = Field(ge=0, description="Runs the optimizer started at another time.")


class _DayByDay:
    """What the day-by-day results share: a summary and one row of figures per day."""

    params: OptimizationParams
    summary: ModeComparisonSummary
    daily: pd.DataFrame

    def figures(self) -> dict[str, object]:
        """The run's figures: summary fields, and ``daily`` with one row per day."""
        return {**dict(self.summary), "daily": self.daily}

    def _repr_html_(self) -> str:
        """The summary as a table (how Jupyter shows the result)."""
        return _summary_html(self, self.params.building_id, self.summary.model_dump(mode="json"))


@dataclass(frozen=True)
class ModeComparison(_DayByDay):
    """Result of :func:`compare_modes`.

    Attributes:
        params: The scenario's optimization inputs.
        summary: Metrics of the whole run.
        daily: One row per day (index ``day``), numeric columns only.
        schedule: Per-step plan adopted (see :class:`OptimizationResult`).
        baseline_schedule: Per-step baseline plan.
        problems: The PuLP problem of each day.
        statuses: Solver status text of each day.
        artifacts: Files written to ``output_dir`` (empty without one).

    """

    params: OptimizationParams
    summary: ModeComparisonSummary
    daily: pd.DataFrame
    schedule: pd.DataFrame
    baseline_schedule: pd.DataFrame
    problems: list[pulp.LpProblem]
    statuses: tuple[str, ...]
    artifacts: tuple[Path, ...] = ()


@dataclass(frozen=True)
class UsageLearning:
    """Result of :func:`learn_device_usage`.

    Attributes:
        building_id: The building learned from.
        metrics: Per-device and overall learning figures.
        updates: One row per training day (index ``day``), numeric columns per device:
            ``<device>_starts``, ``<device>_observations`` (cumulative),
            ``<device>_js_to_prior_bits`` and ``<device>_js_change_bits``.
        prior: Prior start-hour distribution per device (rows) and hour 0..23 (columns).
        posterior: Learned (posterior mean) distribution, same shape.
        observed_starts: Starts observed per device and hour, same shape.
        start_day: Position of the first training day.
        training_days: Number of training days.
        prior_strength: Pseudo-counts of the prior.
        artifacts: Files written to ``output_dir`` (empty without one).

    """

    building_id: str
    metrics: LearningMetrics
    updates: pd.DataFrame
    prior: pd.DataFrame
    posterior: pd.DataFrame
    observed_starts: pd.DataFrame
    start_day: int
    training_days: int
    prior_strength: float
    artifacts: tuple[Path, ...] = ()

    def figures(self) -> dict[str, object]:
        """The learning figures, and ``updates`` with one row per training day."""
        return {**dict(self.metrics), "updates": self.updates}

    def _repr_html_(self) -> str:
        """The learning figures as a table (how Jupyter shows the result)."""
        return _summary_html(self, self.building_id, self.metrics.model_dump(mode="json"))

    def likely_start_hours(
        self, min_probability: float = DEFAULT_MIN_PROBABILITY
    ) -> dict[str, tuple[int, ...]]:
        """Return, per device, the local hours with a learned start probability >= the minimum."""
        return {
            str(device): tuple(int(h) for h in row.index[row.to_numpy() >= min_probability])
            for device, row in self.posterior.iterrows()
        }


@dataclass(frozen=True)
class LearnedSchedule(_DayByDay):
    """Result of :func:`schedule_learned_devices`.

    Attributes:
        params: Optimization inputs (cost mode, no battery, EV as measured).
        allowed_start_hours: Per device, the learned hours runs may be moved to.
        shift_hours: Largest move of a run [h].
        min_probability: Learned probability an hour needs to be allowed.
        summary: Metrics against run-when-ready, plus job counts.
        daily: One row per day (index ``day``), numeric columns only.
        jobs: One row per appliance run: day, device, real and chosen start, move, energy.
        schedule: Per-step plan adopted.
        problems: The PuLP problem of each day.
        statuses: Solver status text of each day.
        artifacts: Files written to ``output_dir`` (empty without one).

    """

    params: OptimizationParams
    allowed_start_hours: dict[str, tuple[int, ...]]
    shift_hours: int
    min_probability: float
    summary: LearnedScheduleSummary
    daily: pd.DataFrame
    jobs: pd.DataFrame
    schedule: pd.DataFrame
    problems: list[pulp.LpProblem]
    statuses: tuple[str, ...]
    artifacts: tuple[Path, ...] = ()


@dataclass(frozen=True)
class LearningOutcome:
    """Result of :func:`learn_and_schedule`: the learning half and the scheduling half."""

    learning: UsageLearning
    scheduling: LearnedSchedule


def _summary_html(result: object, building_id: str, figures: dict[str, object]) -> str:
    from emstrack._html import key_value_table

    shown = {k: v for k, v in figures.items() if not isinstance(v, dict | list)}
    return key_value_table(f"{type(result).__name__} - {building_id}", shown)


def scenario_params(
    building_id: str, scenario: str, n_days: int = 3, battery_kwh: float | None = None
) -> OptimizationParams:
    """Return the optimization inputs of a Pipeline A scenario (other settings default).

    ============== ================ ======= ==============
    scenario       mode             battery EV optimized
    ============== ================ ======= ==============
    baseline       cost             no      no
    battery_only   cost             yes     no
    battery_smart_ev cost           yes     yes
    self_consumption self_consumption yes   yes
    ============== ================ ======= ==============

    With the EV optimized, the building gets the EV of ``EVSettings`` (10 kWh a day, plugged in
    17:00-07:00) - for residential4 it replaces the measured EV, for the others it is an added
    car; otherwise residential4's measured EV charging stays as it happened. ``baseline``
    optimizes nothing and reproduces the baseline plan (a control run with 0 savings).

    ``battery_kwh`` sizes the battery of a scenario that has one: its usable capacity, with the
    charge and discharge power scaled to keep the default battery's rate (0.5 kW per kWh, so
    5 kW for the default 10 kWh). ``None`` keeps the default battery.

    Raises:
        ValueError: If the scenario is unknown (the message lists the valid ones), or
            ``battery_kwh`` is not a positive number or is given for a scenario without battery.

    """
    settings = {
        "baseline": (OptimizationMode.COST, False, False),
        "battery_only": (OptimizationMode.COST, True, False),
        "battery_smart_ev": (OptimizationMode.COST, True, True),
        "self_consumption": (OptimizationMode.SELF_CONSUMPTION, True, True),
    }
    if scenario not in settings:
        raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    mode, battery, ev = settings[scenario]
    sized = (
        {} if battery_kwh is None else {"battery": _sized_battery(scenario, battery, battery_kwh)}
    )
    return OptimizationParams(
        building_id=building_id,
        optimization_mode=mode,
        battery_enabled=battery,
        ev_enabled=ev,
        n_days=n_days,
        **sized,
    )


def _sized_battery(scenario: str, has_battery: bool, battery_kwh: object) -> BatterySettings:
    """The default battery with ``battery_kwh`` of capacity and power at the default rate."""
    if isinstance(battery_kwh, bool) or not isinstance(battery_kwh, int | float):
        raise ValueError(f"battery_kwh={battery_kwh!r}: must be a number of kWh")
    if not math.isfinite(battery_kwh) or battery_kwh <= 0:
        raise ValueError(f"battery_kwh={battery_kwh!r}: must be a positive, finite number of kWh")
    if not has_battery:
        raise ValueError(
            f"battery_kwh={battery_kwh!r}: scenario {scenario!r} has no battery; "
            "leave battery_kwh out (sweep such scenarios in a grid of their own)"
        )
    default = BatterySettings()
    kw_per_kwh = default.max_charge_kw / default.capacity_kwh
    power_kw = kw_per_kwh * battery_kwh
    return default.model_copy(
        update={
            "capacity_kwh": float(battery_kwh),
            "max_charge_kw": power_kw,
            "max_discharge_kw": power_kw,
        }
    )


def scenario_inputs(
    building_id: str,
    scenario: str,
    n_days: int = 3,
    solver: str = "cbc",
    resolution_minutes: int = 60,
    start_day: int = 0,
    battery_kwh: float | None = None,
) -> dict[str, object]:
    """Everything a :func:`compare_modes` run depends on, as one flat-able mapping.

    The scenario's :class:`OptimizationParams` plus the scenario name, the first day, solver
    and resolution - what a tracker should log as the run's params (``params=scenario_inputs``).
    With ``start_day``, runs of the same scenario on different days differ in their params too.
    """
    return {
        "scenario": scenario,
        "start_day": start_day,
        "solver": solver,
        "resolution_minutes": resolution_minutes,
        **scenario_params(building_id, scenario, n_days, battery_kwh).model_dump(),
    }


def compare_modes(
    building_id: str,
    scenario: str,
    n_days: int = 3,
    start_day: int = 0,
    solver: str = "cbc",
    resolution_minutes: int = 60,
    output_dir: str | Path | None = None,
    data: HouseholdSource = None,
    battery_kwh: float | None = None,
) -> ModeComparison:
    """Pipeline A: optimize a scenario day by day and compare it with the no-EMS baseline.

    Args:
        building_id: E.g. ``"DE_KN_residential4"`` (see :func:`available_buildings`).
        scenario: One of :data:`SCENARIOS` (see :func:`scenario_params`).
        n_days: Days to optimize.
        start_day: Position of the first day in the building's data.
        solver: ``"cbc"`` or ``"highs"``.
        resolution_minutes: 60 (hourly) or a finer divisor of 60, e.g. 15.
        output_dir: If given, ``results.csv`` (per-day table), ``schedule.csv`` and
            ``schedule.png`` are written into it (created if needed).
        data: Household data source; the shipped sample by default.
        battery_kwh: Battery size [kWh] of a scenario with a battery, power scaled with it
            (see :func:`scenario_params`); ``None`` keeps the default 10 kWh, 5 kW battery.

    Returns:
        Summary metrics, per-day table, schedules and the solved problems. Days whose solve is
        not optimal keep the baseline plan and show in ``statuses`` / ``summary.solver_status``.

    Raises:
        ValueError: For an unknown scenario, building or solver, days outside the data, or a
            ``battery_kwh`` that is not a positive number or that the scenario has no use for.

    """
    params = scenario_params(building_id, scenario, n_days, battery_kwh)
    result = optimize_building(
        params,
        data=data,
        start_day=start_day,
        solver=solver,
        resolution_minutes=resolution_minutes,
    )
    artifacts: tuple[Path, ...] = ()
    if output_dir is not None:
        title = f"{building_id} - {scenario} ({solver}, {resolution_minutes} min)"
        artifacts = _write_run_files(Path(output_dir), result, title)
    return ModeComparison(
        params=params,
        summary=_summary(result, ModeComparisonSummary),
        daily=result.daily,
        schedule=result.schedule,
        baseline_schedule=result.baseline_schedule,
        problems=result.problems,
        statuses=result.statuses,
        artifacts=artifacts,
    )


def learn_device_usage(
    building_id: str,
    training_days: int = 14,
    start_day: int = 0,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    run_threshold_kwh: float = DEFAULT_RUN_THRESHOLD_KWH,
    output_dir: str | Path | None = None,
    data: HouseholdSource = None,
    probabilities: pd.DataFrame | str | Path | None = None,
) -> UsageLearning:
    """Pipeline B, first half: learn each appliance's start-hour distribution.

    For every shiftable appliance the building has (dishwasher, washing machine), starts are
    detected on each training day (see ``emstrack.ems._jobs``) and applied as Bayesian Dirichlet
    updates to a prior made from the start-hour table (see ``emstrack.ems._learning``).

    Args:
        building_id: The building.
        training_days: Days to learn from.
        start_day: Position of the first training day.
        prior_strength: Pseudo-counts of the prior (how many starts it weighs like).
        run_threshold_kwh: Energy per hour above which an appliance counts as running.
        output_dir: If given, ``learning_updates.csv`` and ``start_hour_posterior.csv`` are
            written into it.
        data: Household data source; the shipped sample by default.
        probabilities: Start-hour table; the shipped one by default.

    Returns:
        :class:`LearningMetrics`, a per-day update table, and prior/posterior distributions.

    Raises:
        ValueError: For an unknown building, days outside the data or a non-positive strength.

    """
    household = load_building(building_id, data)
    table = load_start_probabilities(probabilities)
    days = household.days[start_day : start_day + training_days]
    if training_days < 1 or start_day < 0 or len(days) < training_days:
        raise ValueError(
            f"{household.building_id}: {training_days} training days from day {start_day} "
            f"requested, but the data has {household.n_days} days"
        )
    learned = []
    for device in (d for d in SHIFTABLE_DEVICES if d in household.devices):
        prior_probabilities = (
            table.loc[device].to_numpy() if device in table.index else np.ones(HOURS)
        )
        prior = StartHourPosterior.from_prior(prior_probabilities, prior_strength)
        starts = daily_start_hours(household, device, days, run_threshold_kwh)
        learned.append(learn_start_hours(device, prior, starts))

    def by_hour(rows: dict[str, np.ndarray]) -> pd.DataFrame:
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(range(HOURS)))
        frame.index.name = "device_type"
        return frame

    result = UsageLearning(
        building_id=household.building_id,
        metrics=learning_metrics(learned, training_days),
        updates=updates_frame(learned, training_days),
        prior=by_hour({d.device: d.posterior.prior_mean for d in learned}),
        posterior=by_hour({d.device: d.posterior.mean for d in learned}),
        observed_starts=by_hour({d.device: d.posterior.counts for d in learned}),
        start_day=start_day,
        training_days=training_days,
        prior_strength=prior_strength,
    )
    if output_dir is None:
        return result
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = (folder / "learning_updates.csv", folder / "start_hour_posterior.csv")
    result.updates.to_csv(files[0])
    result.posterior.to_csv(files[1])
    return replace(result, artifacts=files)


def schedule_learned_devices(
    building_id: str,
    learning: UsageLearning,
    optimization_days: int = 3,
    start_day: int | None = None,
    solver: str = "cbc",
    shift_hours: int = DEFAULT_SHIFT_HOURS,
    min_probability: float = DEFAULT_MIN_PROBABILITY,
    resolution_minutes: int = 60,
    output_dir: str | Path | None = None,
    data: HouseholdSource = None,
) -> LearnedSchedule:
    """Pipeline B, second half: move appliance runs only to hours the household plausibly uses.

    Each real run may start up to ``shift_hours`` earlier or later, but only at local hours whose
    learned start probability is at least ``min_probability`` (default 1/24: at least as likely as
    under a uniform distribution); its real start always stays allowed. The optimizer (cost mode,
    no battery, EV charging as measured) picks the cheapest starts; the comparison is with
    run-when-ready - every run where it really happened - so savings come from shifting alone and
    are reported as they are, however small.

    Args:
        building_id: The building.
        learning: Result of :func:`learn_device_usage` for it.
        optimization_days: Days to schedule.
        start_day: Position of the first day; by default the day after the training days.
        solver: ``"cbc"`` or ``"highs"``.
        shift_hours: Largest move of a run [h].
        min_probability: Learned probability an hour needs for runs to move there.
        resolution_minutes: Step length, dividing 60.
        output_dir: If given, ``results.csv``, ``schedule.csv``, ``jobs.csv`` and
            ``schedule.png`` are written into it.
        data: Household data source; the shipped sample by default.

    Raises:
        ValueError: For an unknown building or solver, days outside the data, or a learning
            result of another building.

    """
    household = load_building(building_id, data)
    if learning.building_id != household.building_id:
        raise ValueError(
            f"learning is of {learning.building_id!r}, not of {household.building_id!r}"
        )
    first = learning.start_day + learning.training_days if start_day is None else start_day
    allowed = learning.likely_start_hours(min_probability)
    params = OptimizationParams(
        building_id=household.building_id,
        optimization_mode=OptimizationMode.COST,
        battery_enabled=False,
        ev_enabled=False,
        n_days=optimization_days,
    )
    result = optimize_building(
        params,
        data=household,
        start_day=first,
        solver=solver,
        resolution_minutes=resolution_minutes,
        appliance_shift_hours=shift_hours,
        allowed_start_hours=allowed,
    )
    jobs = result.jobs
    summary = _summary(
        result,
        LearnedScheduleSummary,
        jobs=len(jobs),
        jobs_moved=int((jobs["shift_minutes"] != 0).sum()) if len(jobs) else 0,
    )
    artifacts: tuple[Path, ...] = ()
    if output_dir is not None:
        title = f"{household.building_id} - learned appliance schedule ({solver})"
        artifacts = _write_run_files(Path(output_dir), result, title)
        jobs_file = Path(output_dir) / "jobs.csv"
        jobs.to_csv(jobs_file, index=False)
        artifacts = (*artifacts, jobs_file)
    return LearnedSchedule(
        params=params,
        allowed_start_hours=allowed,
        shift_hours=shift_hours,
        min_probability=min_probability,
        summary=summary,
        daily=result.daily,
        jobs=jobs,
        schedule=result.schedule,
        problems=result.problems,
        statuses=result.statuses,
        artifacts=artifacts,
    )


def learn_and_schedule(
    building_id: str,
    training_days: int = 14,
    optimization_days: int = 3,
    solver: str = "cbc",
    output_dir: str | Path | None = None,
    data: HouseholdSource = None,
) -> LearningOutcome:
    """Pipeline B: learn start hours on the first ``training_days``, schedule the next days.

    Runs :func:`learn_device_usage` on days ``0 .. training_days - 1`` and
    :func:`schedule_learned_devices` on the ``optimization_days`` after them, with their default
    settings; call the two halves directly to change those (or to track them as nested runs).

    Args:
        building_id: The building.
        training_days: Days to learn from.
        optimization_days: Days to schedule after them.
        solver: ``"cbc"`` or ``"highs"``.
        output_dir: If given, both halves write their files into it.
        data: Household data source; the shipped sample by default.

    """
    household: HouseholdData = load_building(building_id, data)
    learning = learn_device_usage(
        household.building_id, training_days, output_dir=output_dir, data=household
    )
    scheduling = schedule_learned_devices(
        household.building_id,
        learning,
        optimization_days,
        solver=solver,
        output_dir=output_dir,
        data=household,
    )
    return LearningOutcome(learning=learning, scheduling=scheduling)


_Summary = TypeVar("_Summary", bound=ModeComparisonSummary)


def _summary(result: OptimizationResult, kind: type[_Summary], **extra: int) -> _Summary:
    return kind(
        **result.metrics.model_dump(),
        avg_savings_pct=float(result.daily["savings_pct"].mean()),
        n_days=len(result.daily),
        **extra,
    )


def _write_run_files(folder: Path, result: OptimizationResult, title: str) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    results, schedule, plot = (
        folder / "results.csv",
        folder / "schedule.csv",
        folder / "schedule.png",
    )
    daily = result.daily.copy()
    daily.insert(0, "date", [d.isoformat() for d in result.dates])
    daily.to_csv(results)
    result.schedule.to_csv(schedule)
    plot_schedule(result.schedule, title=title).savefig(plot, dpi=80)
    return results, schedule, plot
