"""Household data: the shipped demo sample, OPSD parquet files, or a user's own DataFrame.

Every source ends up as one :class:`HouseholdData` per building: an hourly frame with the columns

* ``inflexible_load_kwh`` - consumption the EMS cannot move [kWh per hour, >= 0];
* ``pv_kwh`` - PV generation [kWh per hour, >= 0; 0 without PV];
* ``wholesale_price_eur_per_kwh`` - day-ahead wholesale price [EUR/kWh, may be negative];
* optional ``dishwasher_kwh``, ``washing_machine_kwh``, ``ev_kwh`` - sub-metered flexible loads
  [kWh per hour, >= 0], present only where the building has them;

indexed by the start of each hour in local time (Europe/Berlin). Days are **local calendar days**
(so an EV's plug-in hours and an appliance's start hour mean what a resident means by them); only
complete local days are kept (23, 24 or 25 hours across daylight-saving changes).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd

from emstrack.ems._columns import (
    BUILDING_ID,
    DEVICES,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TIMESTAMP_UTC,
    TIMEZONE,
    WHOLESALE_PRICE,
    device_column,
)
from emstrack.ems._opsd import derive_household_frame, is_opsd_frame

SAMPLE_FILE = "households.csv.gz"
PROBABILITY_FILE = "device_start_probabilities.csv"
CUSTOM_BUILDING_ID = "custom"
HOURS_PER_DAY = 24


@dataclass(frozen=True)
class HouseholdData:
    """One building's hourly feeds, cut to complete local days.

    Attributes:
        building_id: Identifier, e.g. ``"DE_KN_residential4"``.
        hourly: Hourly frame on a Europe/Berlin index (see the module docstring for columns).

    """

    building_id: str
    hourly: pd.DataFrame

    @property
    def devices(self) -> tuple[str, ...]:
        """Flexible devices this building has a feed for, e.g. ``("dishwasher", "ev")``."""
        return tuple(d for d in DEVICES if device_column(d) in self.hourly.columns)

    @cached_property
    def days(self) -> tuple[date, ...]:
        """The local calendar days in the data, in order."""
        return tuple(sorted(set(_local_dates(self.hourly.index))))

    @property
    def n_days(self) -> int:
        """Number of complete local days."""
        return len(self.days)

    def day(self, position: int) -> pd.DataFrame:
        """Hourly rows of the ``position``-th day (0-based)."""
        return self.days_frame(position, 1)

    def days_frame(self, start: int, count: int) -> pd.DataFrame:
        """Hourly rows of ``count`` consecutive days from the ``start``-th day (0-based).

        Raises:
            ValueError: If the days are not all in the data.

        """
        days = self.days
        if count < 1 or start < 0 or start + count > len(days):
            raise ValueError(
                f"{self.building_id}: days {start}..{start + count - 1} requested, but the data "
                f"has {len(days)} days (0..{len(days) - 1})"
            )
        dates = _local_dates(self.hourly.index)
        return self.hourly[(dates >= days[start]) & (dates <= days[start + count - 1])]


HouseholdSource: TypeAlias = HouseholdData | pd.DataFrame | str | Path | None
"""Where household data comes from; see :func:`load_household_data`."""


def load_household_data(source: HouseholdSource = None) -> dict[str, HouseholdData]:
    """Load every building of a source.

    Args:
        source: One of

            * ``None`` - the demo sample shipped with emstrack (six Konstanz households, 28 days
              each, see ``emstrack/ems/data/ATTRIBUTION.md``);
            * a path to an OPSD per-building ``.parquet`` file (as in the shared
              ``opsd-household`` folder; needs pyarrow) or to a folder of them;
            * a path to a ``.csv`` / ``.csv.gz`` file in the sample's format;
            * a DataFrame, either an OPSD per-building frame or one with the documented columns
              (a timezone-aware DatetimeIndex or a ``timestamp_utc`` column, and optionally a
              ``building_id`` column; without it the building is called ``"custom"``);
            * a :class:`HouseholdData`, returned as is.

    Returns:
        Building id -> its data.

    Raises:
        ValueError: If a column or value is missing or invalid; the message names it.
        ImportError: If a parquet file is given and pyarrow is not installed.
        FileNotFoundError: If a path does not exist.

    """
    if source is None:
        return {b: _own_copy(d) for b, d in _shipped_sample().items()}
    if isinstance(source, HouseholdData):
        return {source.building_id: source}
    if isinstance(source, pd.DataFrame):
        return _from_opsd([source]) if is_opsd_frame(source) else _from_table(source)
    return _from_path(Path(source))


def available_buildings(source: HouseholdSource = None) -> list[str]:
    """Sorted building ids of a source (the shipped sample by default)."""
    return sorted(load_household_data(source))


def load_building(building_id: str, source: HouseholdSource = None) -> HouseholdData:
    """Load one building of a source.

    Args:
        building_id: Its id, e.g. ``"DE_KN_residential4"``; the suffix after ``DE_KN_``
            (``"residential4"``) also matches when unambiguous.
        source: As for :func:`load_household_data`.

    Raises:
        ValueError: If the building is not in the source (the message lists those that are).

    """
    buildings = _shipped_sample() if source is None else load_household_data(source)
    if building_id not in buildings:
        matches = [b for b in buildings if b.endswith(f"_{building_id}")]
        if len(matches) != 1:
            raise ValueError(f"building {building_id!r} not found; available: {sorted(buildings)}")
        building_id = matches[0]
    found = buildings[building_id]
    return _own_copy(found) if source is None else found


def load_start_probabilities(source: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
    """Load the device start-hour probability table.

    Args:
        source: ``None`` for the shipped table, a ``.csv``/``.parquet`` path, or a DataFrame with
            one row per device type and 24 columns for the hours 0..23.

    Returns:
        Device type rows x integer hour columns 0..23; each row sums to 1.

    Raises:
        ValueError: If the table does not have 24 non-negative hour columns with positive sums.

    """
    if source is None:
        with (
            resources.files("emstrack.ems")
            .joinpath("data")
            .joinpath(PROBABILITY_FILE)
            .open("rb") as f
        ):
            table = pd.read_csv(f, index_col=0)
    elif isinstance(source, pd.DataFrame):
        table = source
    else:
        path = Path(source)
        if path.suffix == ".parquet":
            _require_pyarrow(path)
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, index_col=0)
    try:
        hours = [int(h) for h in table.columns]
    except (TypeError, ValueError):
        hours = []
    if sorted(hours) != list(range(HOURS_PER_DAY)):
        raise ValueError(
            f"start-hour table: columns must be the hours 0..23, got {list(table.columns)}"
        )
    table = table.set_axis(hours, axis=1)[list(range(HOURS_PER_DAY))].astype(float)
    values = table.to_numpy()
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("start-hour table: probabilities must be finite and non-negative")
    sums = values.sum(axis=1)
    if (sums <= 0).any():
        empty = [str(d) for d, s in zip(table.index, sums, strict=True) if s <= 0]
        raise ValueError(f"start-hour table: rows {empty} sum to zero")
    normalised = table.div(sums, axis=0)
    normalised.index = normalised.index.astype(str)
    normalised.index.name = "device_type"
    return normalised


@cache
def _shipped_sample() -> dict[str, HouseholdData]:
    """The shipped sample, read and validated once a process.

    It is package data, so it never changes. Parsing and checking its six buildings took about
    60 % of a one-day scenario's CPU when every call did it.
    """
    with resources.files("emstrack.ems").joinpath("data").joinpath(SAMPLE_FILE).open("rb") as f:
        return _from_table(pd.read_csv(f, compression="gzip"))


def _own_copy(building: HouseholdData) -> HouseholdData:
    """A shipped building with a frame of its own: a caller's changes stay out of the next load."""
    return HouseholdData(building.building_id, building.hourly.copy())


def _from_path(path: Path) -> dict[str, HouseholdData]:
    if not path.exists():
        raise FileNotFoundError(f"household data not found: {path}")
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if files:
            _require_pyarrow(files[0])
        frames = [pd.read_parquet(f) for f in files]
        opsd = [f for f in frames if is_opsd_frame(f)]
        if not opsd:
            raise ValueError(f"{path}: no OPSD per-building parquet files in this folder")
        return _from_opsd(opsd)
    if path.suffix == ".parquet":
        _require_pyarrow(path)
        return _from_opsd([pd.read_parquet(path)])
    if path.name.endswith((".csv", ".csv.gz")):
        return _from_table(pd.read_csv(path))
    raise ValueError(f"{path}: expected a .parquet, .csv or .csv.gz file or a folder")


def _require_pyarrow(path: Path) -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError(
            f"reading {path.name} needs pyarrow; install it with `pip install 'emstrack[parquet]'` "
            "or pass the data as a DataFrame or CSV"
        )


def _from_opsd(frames: Iterable[pd.DataFrame]) -> dict[str, HouseholdData]:
    buildings = {}
    for raw in frames:
        derived = derive_household_frame(raw)
        buildings[derived.building_id] = HouseholdData(
            derived.building_id, _validated(derived.frame, derived.building_id)
        )
    return buildings


def _from_table(table: pd.DataFrame) -> dict[str, HouseholdData]:
    table = _with_utc_index(table)
    if BUILDING_ID not in table.columns:
        groups: Mapping[str, pd.DataFrame] = {CUSTOM_BUILDING_ID: table}
    else:
        if table[BUILDING_ID].isna().any():
            raise ValueError(f"column '{BUILDING_ID}' has empty values")
        groups = {str(b): g.drop(columns=BUILDING_ID) for b, g in table.groupby(BUILDING_ID)}
    return {b: HouseholdData(b, _validated(g, b)) for b, g in groups.items()}


def _with_utc_index(table: pd.DataFrame) -> pd.DataFrame:
    if TIMESTAMP_UTC in table.columns:
        try:
            stamps = pd.to_datetime(table[TIMESTAMP_UTC], utc=True, format="ISO8601")
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"column '{TIMESTAMP_UTC}': unparseable timestamps ({error})"
            ) from None
        return table.drop(columns=TIMESTAMP_UTC).set_index(pd.DatetimeIndex(stamps))
    if not isinstance(table.index, pd.DatetimeIndex):
        raise ValueError(
            f"household data needs a '{TIMESTAMP_UTC}' column or a DatetimeIndex, "
            f"got a {type(table.index).__name__}"
        )
    if table.index.tz is None:
        raise ValueError(
            "household data: the DatetimeIndex is timezone-naive; localise it "
            "(e.g. df.tz_localize('UTC')) so that local days are unambiguous"
        )
    return table


def _validated(frame: pd.DataFrame, building: str) -> pd.DataFrame:
    """Check columns and values, convert to local time, keep complete local days."""
    where = f"building {building!r}"
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{where}: required column(s) {missing} missing; need {list(REQUIRED_COLUMNS)}"
            f" and optionally {list(OPTIONAL_COLUMNS)}"
        )
    index = pd.DatetimeIndex(frame.index)
    if index.tz is None:
        raise ValueError(f"{where}: timestamps are timezone-naive")
    if index.has_duplicates:
        raise ValueError(f"{where}: duplicate timestamp {index[index.duplicated()][0]}")
    if ((index - index.floor("h")) != pd.Timedelta(0)).any():
        raise ValueError(f"{where}: timestamps must be whole hours (hourly energy per hour)")
    columns = list(REQUIRED_COLUMNS)
    for column in OPTIONAL_COLUMNS:
        if column in frame.columns and frame[column].notna().any():
            columns.append(column)
    data = frame[columns].copy()
    for column in columns:
        data[column] = _numeric_column(data[column], column, where)
    data.index = index.tz_convert(TIMEZONE)
    data = data.sort_index()
    complete = _complete_day_mask(pd.DatetimeIndex(data.index))
    if not complete.any():
        raise ValueError(f"{where}: no complete local ({TIMEZONE}) day of hourly data")
    data = data[complete]
    data.index.name = "timestamp"
    return data


def _numeric_column(values: pd.Series, column: str, where: str) -> pd.Series:
    try:
        numbers = pd.to_numeric(values).astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: column '{column}' must be numeric") from None
    invalid = ~np.isfinite(numbers.to_numpy())
    if invalid.any():
        raise ValueError(
            f"{where}: column '{column}' has a missing or infinite value at "
            f"{numbers.index[invalid][0]}"
        )
    if column != WHOLESALE_PRICE and (numbers < 0).any():
        first = numbers.index[numbers.to_numpy() < 0][0]
        raise ValueError(
            f"{where}: column '{column}' must be >= 0 kWh, got {numbers[first]} at {first}"
        )
    return numbers


def _complete_day_mask(local: pd.DatetimeIndex) -> np.ndarray:
    """Mark the rows whose local day has all of its hours."""
    midnights = local.normalize()
    counts = pd.Series(1, index=midnights).groupby(level=0).size()
    starts = pd.DatetimeIndex(counts.index)
    expected_hours = (starts + pd.DateOffset(days=1) - starts) / pd.Timedelta(hours=1)
    complete_days = starts[counts.to_numpy() == np.asarray(expected_hours)]
    return np.asarray(midnights.isin(complete_days))


def _local_dates(index: pd.Index) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(index).tz_convert(TIMEZONE).date)
