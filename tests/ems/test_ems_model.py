"""The reference EMS model: physics of the plans, optimality, solver agreement, infeasibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pulp
import pytest

from emstrack.ems import (
    HouseholdData,
    OptimizationResult,
    load_building,
    load_household_data,
    optimize_building,
    savings_pct,
)
from emstrack.schemas import (
    BatterySettings,
    EVSettings,
    OptimizationMode,
    OptimizationParams,
    TariffSettings,
)

TOLERANCE_KWH = 1e-6
PV_BUILDINGS = ["DE_KN_residential1", "DE_KN_residential3", "DE_KN_residential4"]
SHIFT_HOURS = 3
# First of two sample days with appliance runs on both, per building.
RUN_DAYS = {
    "DE_KN_residential1": 5,
    "DE_KN_residential2": 3,
    "DE_KN_residential3": 3,
    "DE_KN_residential4": 7,
    "DE_KN_residential5": 2,
}


@pytest.fixture(scope="module")
def sample() -> dict[str, HouseholdData]:
    return load_household_data()


def full_params(
    building: str, mode: OptimizationMode = OptimizationMode.COST
) -> OptimizationParams:
    return OptimizationParams(
        building_id=building,
        optimization_mode=mode,
        battery_enabled=True,
        ev_enabled=True,
        n_days=2,
        battery=BatterySettings(soc_initial=0.4),
    )


def solve(
    data: HouseholdData,
    params: OptimizationParams,
    *,
    solver: str = "cbc",
    resolution: int = 60,
    start_day: int | None = None,
) -> OptimizationResult:
    return optimize_building(
        params,
        data=data,
        start_day=RUN_DAYS[params.building_id] if start_day is None else start_day,
        solver=solver,
        resolution_minutes=resolution,
        appliance_shift_hours=SHIFT_HOURS,
    )


def step_hours(result: OptimizationResult) -> float:
    return result.resolution_minutes / 60


@pytest.fixture(
    scope="module",
    params=[(b, r) for b in [*PV_BUILDINGS, "DE_KN_residential5"] for r in (60, 15)],
    ids=lambda p: f"{p[0][-12:]}-{p[1]}min",
)
def result(request: pytest.FixtureRequest, sample: dict[str, HouseholdData]) -> OptimizationResult:
    building, resolution = request.param
    return solve(sample[building], full_params(building), resolution=resolution)


class TestPhysics:
    """Checked on the schedule frame itself, independently of the model's own checks."""

    def test_all_days_solve_to_optimality(self, result: OptimizationResult) -> None:
        """Every day is Optimal and the plan passes the model's own checks."""
        assert result.statuses == ("Optimal", "Optimal")
        assert result.metrics.convergence_achieved
        assert result.metrics.constraint_violations == 0

    def test_energy_balance_closes_every_step(self, result: OptimizationResult) -> None:
        """Import + PV - curtailment + discharge = load + charge + export within 1e-6 kWh."""
        s = result.schedule
        supply = s.grid_import_kwh + s.pv_kwh - s.pv_curtailed_kwh + s.battery_discharge_kwh
        demand = s.load_kwh + s.battery_charge_kwh + s.grid_export_kwh
        assert (supply - demand).abs().max() <= TOLERANCE_KWH
        load = s.inflexible_load_kwh + s.appliance_load_kwh + s.ev_charge_kwh
        assert (s.load_kwh - load).abs().max() <= TOLERANCE_KWH

    def test_soc_stays_within_bounds_and_returns_to_start(self, result: OptimizationResult) -> None:
        """SOC stays in its bounds, follows the losses and ends each day where it started."""
        battery = result.params.battery
        capacity = battery.capacity_kwh
        for _, day in result.schedule.groupby("day"):
            soc = day.battery_soc_kwh.to_numpy()
            assert soc.min() >= battery.soc_min * capacity - TOLERANCE_KWH
            assert soc.max() <= battery.soc_max * capacity + TOLERANCE_KWH
            previous = np.concatenate(([battery.soc_initial * capacity], soc[:-1]))
            expected = (
                previous
                + battery.charge_efficiency * day.battery_charge_kwh.to_numpy()
                - day.battery_discharge_kwh.to_numpy() / battery.discharge_efficiency
            )
            np.testing.assert_allclose(soc, expected, atol=TOLERANCE_KWH)
            assert soc[-1] == pytest.approx(battery.soc_initial * capacity, abs=TOLERANCE_KWH)

    def test_battery_power_limits_hold(self, result: OptimizationResult) -> None:
        """Charge and discharge never exceed the battery's power x step length."""
        battery, dt = result.params.battery, step_hours(result)
        assert result.schedule.battery_charge_kwh.max() <= battery.max_charge_kw * dt + 1e-9
        assert result.schedule.battery_discharge_kwh.max() <= battery.max_discharge_kw * dt + 1e-9

    def test_ev_gets_its_energy_inside_its_window_only(self, result: OptimizationResult) -> None:
        """Each day the EV gets exactly its need, only while plugged in, within wallbox power."""
        ev, dt = result.params.ev, step_hours(result)
        s = result.schedule
        hours = pd.DatetimeIndex(s.index).hour
        plugged = (hours >= ev.arrival_hour) | (hours < ev.departure_hour)
        assert (s.ev_plugged.astype(bool) == plugged).all()
        assert s.ev_charge_kwh[~plugged].abs().max() <= TOLERANCE_KWH
        assert s.ev_charge_kwh.max() <= ev.max_charge_kw * dt + 1e-9
        delivered = s.groupby("day").ev_charge_kwh.sum() * ev.charge_efficiency
        np.testing.assert_allclose(delivered, ev.energy_needed_kwh, atol=TOLERANCE_KWH)

    def test_appliances_run_their_full_profile_inside_their_window(
        self, result: OptimizationResult, sample: dict[str, HouseholdData]
    ) -> None:
        """Each device's schedule = measured feed with every run moved whole by <= 3 h."""
        per_hour = 60 // result.resolution_minutes
        measured = sample[result.params.building_id].days_frame(
            RUN_DAYS[result.params.building_id], 2
        )
        jobs = result.jobs
        assert (jobs.shift_minutes != 0).any()
        assert (jobs.shift_minutes.abs() <= SHIFT_HOURS * 60).all()
        for device in ("dishwasher", "washing_machine"):
            steps = pd.DatetimeIndex(result.schedule.index)
            expected = pd.Series(
                np.repeat(measured[f"{device}_kwh"].to_numpy() / per_hour, per_hour), index=steps
            )
            for job in jobs[jobs.device == device].itertuples():
                run_hours = measured[f"{device}_kwh"].loc[job.actual_start :]
                profile = _run_profile(run_hours)
                shift = pd.Timedelta(minutes=job.shift_minutes)
                for offset, energy in enumerate(profile):
                    for quarter in range(per_hour):
                        step = pd.Timedelta(
                            minutes=60 * offset + quarter * result.resolution_minutes
                        )
                        expected[job.actual_start + step] -= energy / per_hour
                        expected[job.actual_start + shift + step] += energy / per_hour
                assert job.chosen_start.date() == job.actual_start.date()
            np.testing.assert_allclose(
                result.schedule[f"{device}_kwh"], expected, atol=TOLERANCE_KWH
            )

    def test_grid_limits_hold(self, result: OptimizationResult) -> None:
        """Import and export stay within the connection's limits; export is PV energy only."""
        grid, dt, s = result.params.grid, step_hours(result), result.schedule
        assert s.grid_import_kwh.max() <= grid.max_import_kw * dt + 1e-9
        assert s.grid_export_kwh.max() <= grid.max_export_kw * dt + 1e-9
        assert (s.grid_export_kwh + s.pv_curtailed_kwh - s.pv_kwh).max() <= TOLERANCE_KWH
        assert result.metrics.peak_import_kw <= grid.max_import_kw + 1e-6


def _run_profile(hours_from_start: pd.Series) -> list[float]:
    """The run's hourly energies from its start (start threshold 0.05, continue level 0.02)."""
    profile = []
    for energy in hours_from_start:
        if energy <= 0.02:
            break
        profile.append(float(energy))
    return profile


class TestOptimality:
    @pytest.mark.parametrize("building", [*PV_BUILDINGS, "DE_KN_residential2"])
    def test_optimized_cost_never_exceeds_baseline(
        self, building: str, sample: dict[str, HouseholdData]
    ) -> None:
        """In cost mode each day's optimized net cost is at most the baseline's."""
        result = solve(sample[building], full_params(building))
        daily = result.daily
        assert (daily.cost_eur <= daily.baseline_cost_eur + 1e-9).all()
        assert result.metrics.savings_eur >= 0
        assert result.metrics.total_cost == pytest.approx(daily.cost_eur.sum())

    def test_nothing_to_optimize_reproduces_the_baseline(
        self, sample: dict[str, HouseholdData]
    ) -> None:
        """Without battery, EV or appliance shifting the optimum is the baseline itself."""
        params = OptimizationParams(
            building_id="DE_KN_residential4", battery_enabled=False, ev_enabled=False, n_days=2
        )
        result = optimize_building(params, data=sample["DE_KN_residential4"])
        np.testing.assert_allclose(result.daily.cost_eur, result.daily.baseline_cost_eur, atol=1e-9)
        np.testing.assert_allclose(
            result.schedule.grid_import_kwh, result.baseline_schedule.grid_import_kwh, atol=1e-7
        )

    def test_self_consumption_mode_imports_no_more_than_cost_mode(
        self, sample: dict[str, HouseholdData]
    ) -> None:
        """Minimising import yields at most the cost optimum's import, at no lower cost."""
        data = sample["DE_KN_residential3"]
        cost = solve(data, full_params("DE_KN_residential3"))
        own = solve(data, full_params("DE_KN_residential3", OptimizationMode.SELF_CONSUMPTION))
        assert own.daily.import_kwh.sum() <= cost.daily.import_kwh.sum() + 1e-6
        assert own.metrics.total_cost >= cost.metrics.total_cost - 1e-6

    def test_cheap_imports_never_flow_both_ways(self, sample: dict[str, HouseholdData]) -> None:
        """With imports cheaper than feed-in, no step imports and exports at once."""
        params = full_params("DE_KN_residential4").model_copy(
            update={"tariff": TariffSettings(markup_eur_per_kwh=0.0)}
        )
        result = solve(sample["DE_KN_residential4"], params)
        s = result.schedule
        assert result.metrics.convergence_achieved
        assert (np.minimum(s.grid_import_kwh, s.grid_export_kwh) <= TOLERANCE_KWH).all()
        assert any(p.isMIP() for p in result.problems)

    def test_metrics_summarise_the_daily_table(self, sample: dict[str, HouseholdData]) -> None:
        """Run metrics are consistent with the per-day figures and the schedule."""
        result = solve(sample["DE_KN_residential1"], full_params("DE_KN_residential1"))
        m, daily, s = result.metrics, result.daily, result.schedule
        assert m.baseline_cost == pytest.approx(daily.baseline_cost_eur.sum())
        assert m.savings_eur == pytest.approx(m.baseline_cost - m.total_cost)
        assert m.savings_pct == pytest.approx(
            100 * m.savings_eur / daily.baseline_import_cost_eur.sum()
        )
        assert m.battery_cycles == pytest.approx(s.battery_discharge_kwh.sum() / 10.0)
        assert m.ev_charging_kwh == pytest.approx(s.ev_charge_kwh.sum())
        assert m.total_consumption_kwh == pytest.approx(s.load_kwh.sum())
        assert m.variables_count == sum(p.numVariables() for p in result.problems)
        assert m.constraints_count == sum(p.numConstraints() for p in result.problems)
        assert m.solver_status == "Optimal"
        assert 0 < m.self_consumption_pct <= 100


class TestSolverAgreement:
    @pytest.mark.parametrize("resolution", [60, 15])
    @pytest.mark.parametrize("mode", list(OptimizationMode))
    @pytest.mark.parametrize("building", [*PV_BUILDINGS, "DE_KN_residential5"])
    def test_cbc_and_highs_agree_on_the_optimum(
        self,
        building: str,
        mode: OptimizationMode,
        resolution: int,
        sample: dict[str, HouseholdData],
    ) -> None:
        """Both solvers reach the same objective and net cost to a relative 1e-6."""
        params = full_params(building, mode)
        cbc = solve(sample[building], params, solver="cbc", resolution=resolution)
        highs = solve(sample[building], params, solver="highs", resolution=resolution)
        assert cbc.statuses == highs.statuses == ("Optimal", "Optimal")
        for a, b in zip(cbc.problems, highs.problems, strict=True):
            assert pulp.value(a.objective) == pytest.approx(pulp.value(b.objective), rel=1e-6)
        assert cbc.metrics.total_cost == pytest.approx(highs.metrics.total_cost, rel=1e-6)


class TestInfeasibleInput:
    @pytest.mark.parametrize("solver", ["cbc", "highs"])
    def test_impossible_ev_need_returns_infeasible_status(
        self, solver: str, sample: dict[str, HouseholdData]
    ) -> None:
        """An EV needing more than its window can deliver yields 'Infeasible', not an exception."""
        params = full_params("DE_KN_residential2").model_copy(
            update={"ev": EVSettings(energy_needed_kwh=500.0)}
        )
        result = solve(sample["DE_KN_residential2"], params, solver=solver)
        assert result.statuses == ("Infeasible", "Infeasible")
        assert [p.status for p in result.problems] == [pulp.LpStatusInfeasible] * 2
        m = result.metrics
        assert m.solver_status == "Infeasible"
        assert not m.convergence_achieved
        assert m.savings_eur == 0.0
        assert m.constraint_violations >= 2  # the baseline kept cannot deliver the EV's need
        assert (result.daily.optimal == 0).all()
        pd.testing.assert_frame_equal(result.schedule, result.baseline_schedule)


class TestSavingsPercentage:
    def test_zero_denominator_gives_zero(self) -> None:
        """A baseline that imports nothing has nothing to save relative to: 0 %."""
        assert savings_pct(1.0, 0.0) == 0.0

    def test_near_zero_net_cost_day_gives_a_bounded_percentage(self) -> None:
        """A day whose baseline net cost is ~0 reports savings relative to its import cost."""
        index = pd.date_range("2016-06-01", periods=24, freq="h", tz="Europe/Berlin")
        hours = np.asarray(index.hour)
        sunny = (hours >= 8) & (hours <= 16)
        import_price = (0.03 + 0.22) * 1.19
        night_cost = 15 * 0.5 * import_price  # 15 dark hours of 0.5 kWh
        pv = np.where(sunny, 0.5 + night_cost / (9 * 0.08), 0.0)  # export revenue = night cost
        frame = pd.DataFrame(
            {"inflexible_load_kwh": 0.5, "pv_kwh": pv, "wholesale_price_eur_per_kwh": 0.03},
            index=index,
        )
        data = load_building("custom", frame)
        params = OptimizationParams(building_id="custom", battery_enabled=True, n_days=1)
        result = optimize_building(params, data=data)
        day = result.daily.iloc[0]
        assert abs(day.baseline_cost_eur) < 1e-9
        assert day.baseline_import_cost_eur == pytest.approx(night_cost)
        assert day.savings_eur > 0.5
        assert day.savings_pct == pytest.approx(100 * day.savings_eur / night_cost)
        assert 0 < day.savings_pct <= 100


class TestResolutionAndDays:
    def test_quarter_hours_split_each_hour_evenly(self, sample: dict[str, HouseholdData]) -> None:
        """At 15 minutes there are 96 steps a day and each hour's load is split in four."""
        result = solve(
            sample["DE_KN_residential4"], full_params("DE_KN_residential4"), resolution=15
        )
        s = result.schedule
        assert len(s) == 2 * 96
        hourly = sample["DE_KN_residential4"].days_frame(7, 2).inflexible_load_kwh
        np.testing.assert_allclose(s.inflexible_load_kwh.to_numpy(), np.repeat(hourly / 4, 4))

    def test_daylight_saving_day_is_solved_with_23_steps(self) -> None:
        """The 23-hour spring-forward day solves with the EV window on local hours."""
        index = pd.date_range("2016-03-26 23:00", periods=23, freq="h", tz="UTC")
        frame = pd.DataFrame(
            {"inflexible_load_kwh": 0.4, "pv_kwh": 0.0, "wholesale_price_eur_per_kwh": 0.03},
            index=index,
        )
        params = OptimizationParams(building_id="custom", ev_enabled=True, n_days=1)
        result = optimize_building(params, data=load_building("custom", frame))
        assert len(result.schedule) == 23
        assert result.statuses == ("Optimal",)
        assert result.metrics.constraint_violations == 0

    def test_invalid_resolution_is_rejected(self, sample: dict[str, HouseholdData]) -> None:
        """A step length that does not divide the hour is an error."""
        with pytest.raises(ValueError, match="must divide 60"):
            solve(sample["DE_KN_residential1"], full_params("DE_KN_residential1"), resolution=45)

    def test_unknown_solver_is_rejected_before_solving(
        self, sample: dict[str, HouseholdData]
    ) -> None:
        """An unknown solver name fails fast, listing the valid ones."""
        with pytest.raises(ValueError, match="valid solvers: cbc, highs"):
            solve(sample["DE_KN_residential1"], full_params("DE_KN_residential1"), solver="glpk")
