"""One local day as the optimizer sees it: per-step energies, prices, jobs and the EV window.

Resolution: hourly data is used as is at 60 minutes; at a finer resolution (15 minutes: 4 steps
per hour) every hour's energy is split evenly across its steps, and the hour's price applies to
each of them. All energies are per step [kWh]; powers are energy / step length.

Days are solved independently and treated as **cyclic**: the battery ends the day at the state of
charge it started with, and an overnight EV window (arrival in the evening, departure next
morning) is represented by the same day's evening and early-morning hours - the morning hours
stand in for the next morning's. This keeps every day a self-contained model whose results do not
depend on the neighbouring days.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from emstrack.ems._columns import (
    EV_DEVICE,
    INFLEXIBLE_LOAD,
    PV,
    SHIFTABLE_DEVICES,
    TIMEZONE,
    WHOLESALE_PRICE,
    device_column,
)
from emstrack.ems._data import HouseholdData
from emstrack.ems._jobs import DEFAULT_RUN_THRESHOLD_KWH, ApplianceRun, find_runs
from emstrack.ems._tariff import feed_in_price, import_prices
from emstrack.schemas import EVSettings, OptimizationParams

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
MINUTES_PER_HOUR = 60


@dataclass(frozen=True)
class ApplianceFlexibility:
    """Where the optimizer may move each real appliance run.

    A run may start at any step within ``shift_hours`` of its real start (earlier or later) at
    which it still ends within the day; with ``allowed_start_hours`` only at steps whose local
    clock hour is allowed for that device. The real start is always allowed, so the real
    behaviour stays feasible. Runs that cross local midnight stay where they ran.

    Attributes:
        shift_hours: Largest move of a run [h]; 0 keeps every run where it happened.
        allowed_start_hours: Per device, the local clock hours a run may start in; devices not
            listed may start at any hour within the shift window.
        run_threshold_kwh: Energy per hour above which a device counts as running.

    """

    shift_hours: int = 0
    allowed_start_hours: Mapping[str, Collection[int]] = field(default_factory=dict)
    run_threshold_kwh: float = DEFAULT_RUN_THRESHOLD_KWH

    def __post_init__(self) -> None:
        if self.shift_hours < 0:
            raise ValueError(f"shift_hours must be >= 0, got {self.shift_hours}")
        for device, hours in self.allowed_start_hours.items():
            bad = [h for h in hours if not 0 <= h <= 23]
            if bad:
                raise ValueError(f"allowed_start_hours[{device!r}]: hours {bad} not in 0..23")


@dataclass(frozen=True)
class Job:
    """One appliance run as a block the optimizer places.

    Attributes:
        device: Device type.
        profile_kwh: Energy of each step of the run [kWh].
        actual_start: Step at which it really started.
        allowed_starts: Steps at which it may start (always contains ``actual_start``).

    """

    device: str
    profile_kwh: FloatArray
    actual_start: int
    allowed_starts: tuple[int, ...]

    @property
    def is_movable(self) -> bool:
        """Whether the optimizer has more than one start to choose from."""
        return len(self.allowed_starts) > 1

    def placed(self, start: int, n_steps: int) -> FloatArray:
        """Return the run's energy per step of the day when it starts at ``start``."""
        energy = np.zeros(n_steps)
        energy[start : start + len(self.profile_kwh)] = self.profile_kwh
        return energy


@dataclass(frozen=True)
class DayInput:
    """Everything the model and the baseline need for one day.

    Attributes:
        day: The local date.
        timestamps: Local start of each step.
        step_hours: Length of a step [h].
        inflexible_kwh: Inflexible load per step [kWh].
        device_fixed_kwh: Per device, energy that is not in a movable job (standby, runs across
            midnight; for the EV the measured charging when the EV is not optimized) [kWh].
        jobs: Appliance runs the optimizer places.
        pv_kwh: PV generation per step [kWh].
        wholesale_eur_per_kwh: Wholesale price per step.
        import_eur_per_kwh: Household import price per step.
        feed_in_eur_per_kwh: Feed-in tariff.
        ev: The EV's settings when its charging is optimized, else ``None``.
        ev_plugged: Whether the EV is plugged in at each step (all False without an EV).
        ev_order: Plugged-in steps in the order the car sees them (from arrival on).

    """

    day: date
    timestamps: pd.DatetimeIndex
    step_hours: float
    inflexible_kwh: FloatArray
    device_fixed_kwh: dict[str, FloatArray]
    jobs: tuple[Job, ...]
    pv_kwh: FloatArray
    wholesale_eur_per_kwh: FloatArray
    import_eur_per_kwh: FloatArray
    feed_in_eur_per_kwh: float
    ev: EVSettings | None
    ev_plugged: BoolArray
    ev_order: tuple[int, ...]

    @property
    def n_steps(self) -> int:
        """Steps in the day."""
        return len(self.timestamps)

    def fixed_load_kwh(self) -> FloatArray:
        """Load per step that no decision changes: inflexible plus fixed device energy."""
        total = self.inflexible_kwh.copy()
        for energy in self.device_fixed_kwh.values():
            total += energy
        return total


def steps_per_hour(resolution_minutes: int) -> int:
    """Return the steps per hour of a resolution that divides the hour.

    Raises:
        ValueError: If ``resolution_minutes`` does not divide 60.

    """
    if resolution_minutes <= 0 or MINUTES_PER_HOUR % resolution_minutes:
        raise ValueError(
            f"resolution_minutes must divide 60 (e.g. 60 or 15), got {resolution_minutes}"
        )
    return MINUTES_PER_HOUR // resolution_minutes


def build_days(
    data: HouseholdData,
    params: OptimizationParams,
    *,
    start_day: int = 0,
    resolution_minutes: int = 60,
    flexibility: ApplianceFlexibility | None = None,
) -> list[DayInput]:
    """Build the model inputs of ``params.n_days`` days from ``start_day`` on.

    Args:
        data: The building's data.
        params: Tariff, EV and horizon settings.
        start_day: Position of the first day in ``data.days``.
        resolution_minutes: Step length; must divide 60.
        flexibility: Where appliance runs may move; ``None`` keeps them where they ran.

    Raises:
        ValueError: If the days are not in the data or the resolution is invalid.

    """
    per_hour = steps_per_hour(resolution_minutes)
    flexibility = flexibility or ApplianceFlexibility()
    hourly = data.days_frame(start_day, params.n_days)
    runs = _runs_by_day(data, hourly, flexibility.run_threshold_kwh)
    dates = pd.DatetimeIndex(hourly.index).date
    return [
        _build_day(
            day,
            hourly[dates == day],
            runs.get(day, []),
            params,
            per_hour,
            flexibility,
            has_ev_feed=device_column(EV_DEVICE) in hourly.columns,
        )
        for day in sorted(set(dates))
    ]


def _runs_by_day(
    data: HouseholdData, hourly: pd.DataFrame, threshold_kwh: float
) -> dict[date, list[ApplianceRun]]:
    """Group runs within one local day by day (detected on all data, so edges are right)."""
    by_day: dict[date, list[ApplianceRun]] = {}
    wanted = set(pd.DatetimeIndex(hourly.index).date)
    for device in SHIFTABLE_DEVICES:
        column = device_column(device)
        if column not in data.hourly.columns:
            continue
        for run in find_runs(data.hourly[column], device, threshold_kwh):
            day = run.start.tz_convert(TIMEZONE).date()
            if run.within_one_day and day in wanted:
                by_day.setdefault(day, []).append(run)
    return by_day


def _build_day(
    day: date,
    hourly: pd.DataFrame,
    runs: list[ApplianceRun],
    params: OptimizationParams,
    per_hour: int,
    flexibility: ApplianceFlexibility,
    *,
    has_ev_feed: bool,
) -> DayInput:
    def split(values: pd.Series) -> FloatArray:
        return np.repeat(values.to_numpy(dtype=float) / per_hour, per_hour)

    hour_starts = pd.DatetimeIndex(hourly.index)
    offsets = pd.to_timedelta(
        np.tile(np.arange(per_hour) * (60 // per_hour), len(hour_starts)), "m"
    )
    timestamps = pd.DatetimeIndex(np.repeat(hour_starts, per_hour) + offsets)
    n_steps = len(timestamps)
    local_hours = np.asarray(timestamps.hour)

    fixed: dict[str, FloatArray] = {}
    jobs: list[Job] = []
    for device in SHIFTABLE_DEVICES:
        column = device_column(device)
        if column not in hourly.columns:
            continue
        device_energy = split(hourly[column])
        for run in (r for r in runs if r.device == device):
            first = int(hour_starts.searchsorted(run.start)) * per_hour
            profile = np.repeat(np.asarray(run.energy_kwh) / per_hour, per_hour)
            device_energy[first : first + len(profile)] -= profile
            starts = _allowed_starts(
                first, len(profile), n_steps, per_hour, local_hours,
                flexibility.shift_hours, flexibility.allowed_start_hours.get(device),
            )  # fmt: skip
            jobs.append(Job(device, profile, first, starts))
        fixed[device] = np.clip(device_energy, 0.0, None)  # float noise of the subtraction

    ev = params.ev if params.ev_enabled else None
    if ev is None and has_ev_feed:
        fixed[EV_DEVICE] = split(hourly[device_column(EV_DEVICE)])
    plugged, order = _ev_window(local_hours, ev)
    wholesale = np.repeat(hourly[WHOLESALE_PRICE].to_numpy(dtype=float), per_hour)
    return DayInput(
        day=day,
        timestamps=timestamps,
        step_hours=1.0 / per_hour,
        inflexible_kwh=split(hourly[INFLEXIBLE_LOAD]),
        device_fixed_kwh=fixed,
        jobs=tuple(jobs),
        pv_kwh=split(hourly[PV]),
        wholesale_eur_per_kwh=wholesale,
        import_eur_per_kwh=import_prices(wholesale, params.tariff),
        feed_in_eur_per_kwh=feed_in_price(params.tariff),
        ev=ev,
        ev_plugged=plugged,
        ev_order=order,
    )


def _allowed_starts(
    actual: int,
    length: int,
    n_steps: int,
    per_hour: int,
    local_hours: npt.NDArray[np.int_],
    shift_hours: int,
    allowed_hours: Collection[int] | None,
) -> tuple[int, ...]:
    reach = shift_hours * per_hour
    candidates = range(max(0, actual - reach), min(n_steps - length, actual + reach) + 1)
    hours = None if allowed_hours is None else set(allowed_hours)
    starts = {s for s in candidates if hours is None or int(local_hours[s]) in hours}
    starts.add(actual)
    return tuple(sorted(starts))


def _ev_window(
    local_hours: npt.NDArray[np.int_], ev: EVSettings | None
) -> tuple[BoolArray, tuple[int, ...]]:
    """Plugged-in steps and their order from arrival on (see the module docstring)."""
    if ev is None:
        return np.zeros(len(local_hours), dtype=bool), ()
    arrival, departure = ev.arrival_hour, ev.departure_hour
    after_arrival = local_hours >= arrival
    if arrival < departure:
        plugged = after_arrival & (local_hours < departure)
        before_departure = np.zeros_like(plugged)
    else:  # overnight (or all day when equal): evening part, then the morning part
        before_departure = local_hours < departure if arrival > departure else ~after_arrival
        plugged = after_arrival | before_departure
    order = (*np.flatnonzero(after_arrival & plugged), *np.flatnonzero(before_departure))
    return plugged, tuple(int(step) for step in order)
