"""EMS workload: household data, a reference EMS model and two pipelines - without any tracking.

The public API is pure computation; emstrack's tracking attaches to it from outside.

Data
    :func:`load_household_data`, :func:`load_building`, :func:`available_buildings`,
    :func:`load_start_probabilities`, :class:`HouseholdData` - the shipped demo sample (six
    Konstanz households from Open Power System Data, CC-BY 4.0; see ``data/ATTRIBUTION.md``),
    OPSD parquet files, or a user's own DataFrame.
Model
    :func:`optimize_building` -> :class:`OptimizationResult`; :func:`import_prices`,
    :func:`savings_pct`, :data:`SOLVER_NAMES`, :func:`make_solver`.
Learning
    :func:`jensen_shannon_bits`, :class:`StartHourPosterior`.
Pipelines
    A: :func:`compare_modes` -> :class:`ModeComparison`; B: :func:`learn_and_schedule` ->
    :class:`LearningOutcome`, with its halves :func:`learn_device_usage` ->
    :class:`UsageLearning` and :func:`schedule_learned_devices` -> :class:`LearnedSchedule`.
Plot
    :func:`plot_schedule`.
"""

from __future__ import annotations

from emstrack.ems._data import (
    HouseholdData,
    HouseholdSource,
    available_buildings,
    load_building,
    load_household_data,
    load_start_probabilities,
)
from emstrack.ems._learning import StartHourPosterior, jensen_shannon_bits
from emstrack.ems._optimize import OptimizationResult, optimize_building, savings_pct
from emstrack.ems._pipelines import (
    SCENARIOS,
    LearnedSchedule,
    LearnedScheduleSummary,
    LearningOutcome,
    ModeComparison,
    ModeComparisonSummary,
    UsageLearning,
    compare_modes,
    learn_and_schedule,
    learn_device_usage,
    scenario_inputs,
    scenario_params,
    schedule_learned_devices,
)
from emstrack.ems._plots import plot_schedule
from emstrack.ems._solvers import SOLVER_NAMES, make_solver
from emstrack.ems._tariff import feed_in_price, import_prices

__all__ = [
    "SCENARIOS",
    "SOLVER_NAMES",
    "HouseholdData",
    "HouseholdSource",
    "LearnedSchedule",
    "LearnedScheduleSummary",
    "LearningOutcome",
    "ModeComparison",
    "ModeComparisonSummary",
    "OptimizationResult",
    "StartHourPosterior",
    "UsageLearning",
    "available_buildings",
    "compare_modes",
    "feed_in_price",
    "import_prices",
    "jensen_shannon_bits",
    "learn_and_schedule",
    "learn_device_usage",
    "load_building",
    "load_household_data",
    "load_start_probabilities",
    "make_solver",
    "optimize_building",
    "plot_schedule",
    "savings_pct",
    "scenario_inputs",
    "scenario_params",
    "schedule_learned_devices",
]
