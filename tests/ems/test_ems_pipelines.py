"""Pipelines A (compare_modes) and B (learn_and_schedule) as plain functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emstrack.ems import (
    SCENARIOS,
    LearnedScheduleSummary,
    LearningOutcome,
    ModeComparisonSummary,
    compare_modes,
    learn_and_schedule,
    learn_device_usage,
    load_building,
    scenario_inputs,
    scenario_params,
    schedule_learned_devices,
)
from emstrack.schemas import LearningMetrics, OptimizationMetrics, OptimizationMode

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_numeric(frame: pd.DataFrame) -> bool:
    return all(np.issubdtype(dtype, np.number) for dtype in frame.dtypes)


class TestScenarioParams:
    def test_scenarios_map_to_mode_battery_and_ev(self) -> None:
        """Each scenario sets mode, battery and EV as documented."""
        expected = {
            "baseline": (OptimizationMode.COST, False, False),
            "battery_only": (OptimizationMode.COST, True, False),
            "battery_smart_ev": (OptimizationMode.COST, True, True),
            "self_consumption": (OptimizationMode.SELF_CONSUMPTION, True, True),
        }
        assert tuple(expected) == SCENARIOS
        for scenario, (mode, battery, ev) in expected.items():
            params = scenario_params("DE_KN_residential1", scenario, n_days=2)
            assert (params.optimization_mode, params.battery_enabled, params.ev_enabled) == (
                mode,
                battery,
                ev,
            )
            assert params.n_days == 2

    def test_unknown_scenario_lists_the_valid_ones(self) -> None:
        """An unknown scenario name is an error listing all four."""
        with pytest.raises(ValueError, match="valid scenarios: baseline, battery_only"):
            compare_modes("DE_KN_residential1", "peak_shaving")

    def test_battery_kwh_sizes_capacity_and_power_at_the_default_rate(self) -> None:
        """battery_kwh sets the capacity; power follows at 0.5 kW per kWh; the rest default."""
        default = scenario_params("DE_KN_residential1", "battery_only").battery
        battery = scenario_params("DE_KN_residential1", "battery_only", battery_kwh=24).battery
        assert (battery.capacity_kwh, battery.max_charge_kw, battery.max_discharge_kw) == (
            24.0,
            12.0,
            12.0,
        )
        assert battery.model_dump(
            exclude={"capacity_kwh", "max_charge_kw", "max_discharge_kw"}
        ) == (default.model_dump(exclude={"capacity_kwh", "max_charge_kw", "max_discharge_kw"}))
        inputs = scenario_inputs("DE_KN_residential1", "battery_only", battery_kwh=24)
        assert inputs["battery"] == battery.model_dump()

    def test_scenario_inputs_tell_the_days_apart(self) -> None:
        """Two windows of one scenario have different inputs: start_day is one of them."""
        first = scenario_inputs("DE_KN_residential1", "battery_only", n_days=1)
        later = scenario_inputs("DE_KN_residential1", "battery_only", n_days=1, start_day=5)
        assert (first["start_day"], later["start_day"]) == (0, 5)
        assert {k: v for k, v in first.items() if k != "start_day"} == {
            k: v for k, v in later.items() if k != "start_day"
        }

    @pytest.mark.parametrize(
        ("scenario", "battery_kwh", "expected"),
        [
            ("battery_only", 0, "battery_kwh=0: must be a positive, finite number of kWh"),
            ("battery_only", -5.0, "battery_kwh=-5.0: must be a positive, finite number"),
            ("battery_only", float("inf"), "battery_kwh=inf: must be a positive, finite number"),
            ("battery_only", "10", "battery_kwh='10': must be a number of kWh"),
            ("baseline", 10.0, "battery_kwh=10.0: scenario 'baseline' has no battery"),
        ],
    )
    def test_bad_battery_kwh_names_the_argument(
        self, scenario: str, battery_kwh: object, expected: str
    ) -> None:
        """A size that is not a positive number, or given to a scenario without one, is refused."""
        with pytest.raises(ValueError, match=r"^battery_kwh=") as raised:
            compare_modes("DE_KN_residential1", scenario, n_days=1, battery_kwh=battery_kwh)  # type: ignore[arg-type]
        assert str(raised.value).startswith(expected)


class TestCompareModes:
    @pytest.mark.parametrize("scenario", SCENARIOS)
    def test_result_shapes(self, scenario: str) -> None:
        """Three hourly days give 3 numeric daily rows, 72 schedule rows and 3 problems."""
        result = compare_modes("DE_KN_residential4", scenario, n_days=3)
        assert isinstance(result.summary, ModeComparisonSummary)
        assert isinstance(result.summary, OptimizationMetrics)
        assert result.summary.n_days == 3
        assert result.summary.avg_savings_pct == pytest.approx(result.daily.savings_pct.mean())
        assert len(result.daily) == 3
        assert list(result.daily.index) == [0, 1, 2]
        assert is_numeric(result.daily)
        assert len(result.schedule) == len(result.baseline_schedule) == 72
        assert len(result.problems) == 3
        assert result.statuses == ("Optimal",) * 3
        assert result.artifacts == ()

    def test_baseline_scenario_saves_nothing(self) -> None:
        """The control scenario reproduces the baseline: zero savings."""
        summary = compare_modes("DE_KN_residential3", "baseline", n_days=2).summary
        assert summary.savings_eur == pytest.approx(0.0, abs=1e-9)
        assert summary.total_cost == pytest.approx(summary.baseline_cost)

    def test_battery_saves_money_on_a_pv_building(self) -> None:
        """A battery on residential1 (large PV) saves a positive, bounded share."""
        summary = compare_modes("DE_KN_residential1", "battery_only", n_days=3).summary
        assert summary.savings_eur > 0
        assert 0 < summary.savings_pct <= 100
        assert summary.battery_cycles > 0

    def test_a_bigger_battery_is_used_within_its_limits_and_saves_more(self) -> None:
        """Each size bounds the plan's state of charge and power; 10 kWh saves more than 2.5."""
        savings = {}
        for battery_kwh in (2.5, 10.0):
            result = compare_modes(
                "DE_KN_residential1", "self_consumption", n_days=2, battery_kwh=battery_kwh
            )
            battery = result.params.battery
            schedule = result.schedule
            assert schedule.battery_soc_kwh.max() <= battery.soc_max * battery_kwh + 1e-6
            assert schedule.battery_soc_kwh.max() > battery.soc_min * battery_kwh
            assert schedule.battery_charge_kwh.max() <= battery.max_charge_kw + 1e-6
            savings[battery_kwh] = result.summary.savings_eur
        assert savings[10.0] > savings[2.5] > 0

    def test_quarter_hour_resolution_and_highs(self) -> None:
        """At 15 minutes with HiGHS the schedule has 96 steps a day."""
        result = compare_modes(
            "DE_KN_residential6",
            "battery_smart_ev",
            n_days=2,
            solver="highs",
            resolution_minutes=15,
        )
        assert len(result.schedule) == 192
        assert result.summary.solver_status == "Optimal"

    def test_files_are_written_to_output_dir(self, tmp_path: Path) -> None:
        """results.csv (one row per day), schedule.csv and schedule.png land in output_dir."""
        out = tmp_path / "run"
        result = compare_modes("DE_KN_residential2", "battery_only", n_days=2, output_dir=out)
        assert {p.name for p in result.artifacts} == {"results.csv", "schedule.csv", "schedule.png"}
        assert all(p.parent == out for p in result.artifacts)
        table = pd.read_csv(out / "results.csv")
        assert list(table["date"]) == ["2016-05-17", "2016-05-18"]
        np.testing.assert_allclose(table["savings_eur"], result.daily["savings_eur"])
        assert len(pd.read_csv(out / "schedule.csv")) == 48
        assert (out / "schedule.png").read_bytes()[:8] == PNG_MAGIC

    def test_user_data_is_used(self) -> None:
        """data= takes a user's DataFrame instead of the sample."""
        index = pd.date_range("2016-06-01", periods=48, freq="h", tz="Europe/Berlin")
        frame = pd.DataFrame(
            {"inflexible_load_kwh": 0.5, "pv_kwh": 0.0, "wholesale_price_eur_per_kwh": 0.03},
            index=index,
        )
        result = compare_modes("custom", "battery_only", n_days=2, data=frame)
        # flat price and no PV: the battery has nothing to gain
        assert result.summary.savings_eur == pytest.approx(0.0, abs=1e-9)
        assert result.summary.total_consumption_kwh == pytest.approx(24.0)

    def test_start_day_beyond_the_data_is_rejected(self) -> None:
        """Days past the end of the sample are an error, before any solve."""
        with pytest.raises(ValueError, match="has 28 days"):
            compare_modes("DE_KN_residential1", "battery_only", n_days=3, start_day=26)


@pytest.fixture(scope="module")
def outcome_and_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[LearningOutcome, Path]:
    folder = tmp_path_factory.mktemp("pipeline-b")
    return learn_and_schedule("DE_KN_residential3", output_dir=folder), folder


class TestLearnAndSchedule:
    def test_learning_half_shapes(self, outcome_and_folder: tuple[LearningOutcome, Path]) -> None:
        """Learning reports LearningMetrics and one numeric update row per training day."""
        outcome, _ = outcome_and_folder
        learning = outcome.learning
        assert isinstance(learning.metrics, LearningMetrics)
        assert learning.metrics.training_days == 14
        assert len(learning.updates) == 14
        assert is_numeric(learning.updates)

    def test_scheduling_half_shapes_and_savings(
        self, outcome_and_folder: tuple[LearningOutcome, Path]
    ) -> None:
        """Scheduling covers the 3 days after training and never costs more than run-when-ready."""
        outcome, _ = outcome_and_folder
        scheduling = outcome.scheduling
        assert isinstance(scheduling.summary, LearnedScheduleSummary)
        assert len(scheduling.daily) == 3
        assert is_numeric(scheduling.daily)
        first_day = load_building("DE_KN_residential3").days[14]
        assert scheduling.schedule.index[0].date() == first_day
        assert (scheduling.daily.savings_eur >= -1e-9).all()
        assert scheduling.summary.jobs == len(scheduling.jobs) > 0
        assert not scheduling.params.battery_enabled
        assert not scheduling.params.ev_enabled

    def test_runs_move_only_to_learned_hours(
        self, outcome_and_folder: tuple[LearningOutcome, Path]
    ) -> None:
        """Every moved run starts at an hour the learned distribution allows, within 6 h."""
        outcome, _ = outcome_and_folder
        scheduling = outcome.scheduling
        moved = scheduling.jobs[scheduling.jobs.shift_minutes != 0]
        assert len(moved) == scheduling.summary.jobs_moved
        for job in moved.itertuples():
            assert job.chosen_start.hour in scheduling.allowed_start_hours[job.device]
            assert abs(job.shift_minutes) <= 6 * 60

    def test_both_halves_write_their_files(
        self, outcome_and_folder: tuple[LearningOutcome, Path]
    ) -> None:
        """The output folder holds the learning tables, results, jobs and the plot."""
        _, folder = outcome_and_folder
        assert {p.name for p in folder.iterdir()} == {
            "learning_updates.csv",
            "start_hour_posterior.csv",
            "results.csv",
            "schedule.csv",
            "jobs.csv",
            "schedule.png",
        }

    def test_halves_called_separately_give_the_same_result(
        self, outcome_and_folder: tuple[LearningOutcome, Path]
    ) -> None:
        """learn_device_usage + schedule_learned_devices reproduce learn_and_schedule."""
        outcome, _ = outcome_and_folder
        learning = learn_device_usage("DE_KN_residential3", training_days=14)
        scheduling = schedule_learned_devices("DE_KN_residential3", learning, 3)
        combined = outcome.scheduling
        pd.testing.assert_frame_equal(learning.posterior, outcome.learning.posterior)
        assert scheduling.summary.total_cost == pytest.approx(combined.summary.total_cost)

    def test_learning_of_another_building_is_rejected(self) -> None:
        """Scheduling residential2 with residential1's learned hours is an error."""
        learning = learn_device_usage("DE_KN_residential1", training_days=3)
        with pytest.raises(ValueError, match="learning is of 'DE_KN_residential1'"):
            schedule_learned_devices("DE_KN_residential2", learning)

    def test_stricter_threshold_allows_fewer_starts(self) -> None:
        """Raising min_probability cannot add allowed start hours or lower the cost."""
        learning = learn_device_usage("DE_KN_residential1", training_days=14)
        loose = schedule_learned_devices("DE_KN_residential1", learning, min_probability=0.02)
        strict = schedule_learned_devices("DE_KN_residential1", learning, min_probability=0.08)
        for device, hours in strict.allowed_start_hours.items():
            assert set(hours) <= set(loose.allowed_start_hours[device])
        assert strict.summary.total_cost >= loose.summary.total_cost - 1e-9
