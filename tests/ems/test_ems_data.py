"""Household data loading: shipped sample, OPSD parquet files and user DataFrames."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emstrack.ems import (
    HouseholdData,
    available_buildings,
    load_building,
    load_household_data,
    load_start_probabilities,
)

OPSD_FOLDER = Path("/work/shared/data/opsd-household")
RESIDENTIAL = [f"DE_KN_residential{i}" for i in range(1, 7)]
ENERGY_COLUMNS = ["inflexible_load_kwh", "pv_kwh"]


def user_frame(days: int = 2, start: str = "2016-06-01", tz: str = "Europe/Berlin") -> pd.DataFrame:
    index = pd.date_range(start, periods=24 * days, freq="h", tz=tz)
    hours = np.asarray(index.hour)
    return pd.DataFrame(
        {
            "inflexible_load_kwh": 0.4 + 0.1 * (hours >= 18),
            "pv_kwh": np.where((hours >= 8) & (hours < 17), 2.0, 0.0),
            "dishwasher_kwh": np.where(hours == 19, 0.9, 0.0),
            "wholesale_price_eur_per_kwh": 0.03,
        },
        index=index,
    )


@pytest.fixture(scope="module")
def sample() -> dict[str, HouseholdData]:
    return load_household_data()


class TestShippedSample:
    def test_has_all_six_residential_buildings(self, sample: dict[str, HouseholdData]) -> None:
        """The sample holds residential1..6 and available_buildings lists them sorted."""
        assert sorted(sample) == RESIDENTIAL
        assert available_buildings() == RESIDENTIAL

    def test_every_building_has_28_complete_local_days(
        self, sample: dict[str, HouseholdData]
    ) -> None:
        """Each building covers 28 local days of 24 hours on a Europe/Berlin index."""
        for data in sample.values():
            assert data.n_days == 28
            assert len(data.hourly) == 28 * 24
            assert str(pd.DatetimeIndex(data.hourly.index).tz) == "Europe/Berlin"
            assert data.day(0).index[0].hour == 0

    def test_columns_and_devices_match_the_buildings_feeds(
        self, sample: dict[str, HouseholdData]
    ) -> None:
        """Only residential4 has an EV; all have dishwasher and washing machine."""
        for building, data in sample.items():
            expected = ("dishwasher", "washing_machine") + (
                ("ev",) if building == "DE_KN_residential4" else ()
            )
            assert data.devices == expected
            assert {*ENERGY_COLUMNS, "wholesale_price_eur_per_kwh"} <= set(data.hourly.columns)

    def test_energies_are_never_negative(self, sample: dict[str, HouseholdData]) -> None:
        """Loads, PV and device feeds are >= 0 (inflexible load was clipped, not negative)."""
        for data in sample.values():
            energy = data.hourly.drop(columns="wholesale_price_eur_per_kwh")
            assert (energy.to_numpy() >= 0).all()

    def test_pv_only_where_the_building_has_pv(self, sample: dict[str, HouseholdData]) -> None:
        """residential2 and 5 have no PV; the others generate several kWh a day."""
        for building, data in sample.items():
            daily_pv = data.hourly["pv_kwh"].sum() / data.n_days
            if building in ("DE_KN_residential2", "DE_KN_residential5"):
                assert daily_pv == 0
            else:
                assert daily_pv > 10

    def test_sample_files_are_at_most_one_megabyte(self) -> None:
        """All files of the shipped data folder together stay within 1 MB."""
        folder = resources.files("emstrack.ems").joinpath("data")
        files = [f for f in folder.iterdir() if f.is_file()]
        assert {f.name for f in files} >= {
            "households.csv.gz",
            "device_start_probabilities.csv",
            "ATTRIBUTION.md",
        }
        assert sum(len(f.read_bytes()) for f in files) <= 1_000_000

    def test_attribution_carries_the_exact_citation(self) -> None:
        """ATTRIBUTION.md contains the required CC-BY attribution text."""
        text = resources.files("emstrack.ems").joinpath("data").joinpath("ATTRIBUTION.md")
        content = " ".join(text.read_text(encoding="utf-8").split())
        assert (
            "Open Power System Data. 2020. Data Package Household Data. Version 2020-04-15. "
            "https://doi.org/10.25832/household_data/2020-04-15"
        ) in content
        assert "CC-BY 4.0" in content

    def test_days_frame_selects_consecutive_local_days(
        self, sample: dict[str, HouseholdData]
    ) -> None:
        """days_frame(2, 3) returns the 72 hours of the third to fifth day."""
        data = sample["DE_KN_residential4"]
        frame = data.days_frame(2, 3)
        assert len(frame) == 72
        assert frame.index[0].date() == data.days[2]
        assert frame.index[-1].date() == data.days[4]

    def test_days_outside_the_data_are_rejected(self, sample: dict[str, HouseholdData]) -> None:
        """Asking for days beyond the 28th names the available range."""
        with pytest.raises(ValueError, match=r"has 28 days"):
            sample["DE_KN_residential1"].days_frame(27, 2)

    def test_a_changed_copy_does_not_reach_the_next_load(self) -> None:
        """The sample is read once a process; each call still gets frames of its own."""
        first = load_building("residential4")
        pristine = first.hourly.copy()
        first.hourly.loc[:, "inflexible_load_kwh"] = -1.0
        del load_household_data()["DE_KN_residential4"].hourly["pv_kwh"]
        again = load_building("residential4")
        pd.testing.assert_frame_equal(again.hourly, pristine)
        assert again.hourly is not first.hourly


class TestStartProbabilities:
    def test_shipped_table_has_normalised_rows_per_device(self) -> None:
        """The table has 24 hour columns and each device row sums to 1."""
        table = load_start_probabilities()
        assert list(table.columns) == list(range(24))
        assert {"dishwasher", "washing_machine", "ev"} <= set(table.index)
        np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-12)

    def test_table_without_24_hours_is_rejected(self) -> None:
        """A table with 23 hour columns is an error naming the columns."""
        with pytest.raises(ValueError, match=r"hours 0\.\.23"):
            load_start_probabilities(pd.DataFrame([[1.0] * 23], index=["dishwasher"]))


@pytest.mark.skipif(
    not OPSD_FOLDER.exists() or importlib.util.find_spec("pyarrow") is None,
    reason=f"needs the shared OPSD folder {OPSD_FOLDER} and pyarrow",
)
class TestOpsdParquet:
    def test_full_building_file_loads_with_derived_columns(self) -> None:
        """residential4's parquet file yields all its complete days, EV included, no negatives."""
        data = load_building("residential4", OPSD_FOLDER / "DE_KN_residential4.parquet")
        assert data.building_id == "DE_KN_residential4"
        assert data.devices == ("dishwasher", "washing_machine", "ev")
        assert data.n_days > 800
        assert (data.hourly.drop(columns="wholesale_price_eur_per_kwh").to_numpy() >= 0).all()

    def test_derived_consumption_closes_with_the_meters(self) -> None:
        """Inflexible + flexible loads equal import + PV - export wherever nothing was clipped."""
        raw = pd.read_parquet(OPSD_FOLDER / "DE_KN_residential4.parquet")
        data = load_household_data(raw)["DE_KN_residential4"]
        prefix = "DE_KN_residential4_"
        meters = (
            raw[prefix + "grid_import"] - raw[prefix + "pv"] + raw[prefix + "grid_export"]
        ).tz_convert("Europe/Berlin")
        derived = data.hourly[
            ["inflexible_load_kwh", "dishwasher_kwh", "washing_machine_kwh", "ev_kwh"]
        ].sum(axis=1)
        unclipped = data.hourly["inflexible_load_kwh"] > 0
        np.testing.assert_allclose(derived[unclipped], meters.loc[derived.index][unclipped])

    def test_sample_window_matches_the_source_file(self, sample: dict[str, HouseholdData]) -> None:
        """The shipped residential3 hours equal the same hours derived from its parquet file."""
        full = load_building("DE_KN_residential3", OPSD_FOLDER / "DE_KN_residential3.parquet")
        shipped = sample["DE_KN_residential3"].hourly
        pd.testing.assert_frame_equal(
            full.hourly.loc[shipped.index, shipped.columns].round(3),
            shipped.round(3),
            atol=1e-5,
        )


class TestUserDataFrame:
    def test_dataframe_without_building_id_becomes_custom(self) -> None:
        """A frame with the documented columns loads as building 'custom' with its device."""
        data = load_building("custom", user_frame())
        assert data.n_days == 2
        assert data.devices == ("dishwasher",)

    def test_timestamp_column_and_building_id_column_are_read(self) -> None:
        """A long table with timestamp_utc and building_id splits into buildings."""
        frame = user_frame().tz_convert("UTC")
        table = pd.concat(
            [
                frame.assign(building_id=b, timestamp_utc=frame.index.strftime("%Y-%m-%dT%H:%MZ"))
                for b in ("a", "b")
            ]
        ).reset_index(drop=True)
        assert available_buildings(table) == ["a", "b"]

    def test_incomplete_local_days_are_dropped(self) -> None:
        """Two UTC days starting at UTC midnight keep only the one complete local day."""
        data = load_building("custom", user_frame(start="2016-06-01", tz="UTC"))
        assert data.n_days == 1

    def test_daylight_saving_day_keeps_its_23_hours(self) -> None:
        """The spring-forward day 2016-03-27 is one complete day of 23 hours."""
        index = pd.date_range("2016-03-26 23:00", periods=23, freq="h", tz="UTC")
        frame = pd.DataFrame(
            {"inflexible_load_kwh": 0.3, "pv_kwh": 0.0, "wholesale_price_eur_per_kwh": 0.03},
            index=index,
        )
        data = load_building("custom", frame)
        assert data.n_days == 1
        assert len(data.day(0)) == 23

    def test_absent_device_column_means_no_such_device(self) -> None:
        """An all-empty ev_kwh column is treated as 'no EV', not as an error."""
        data = load_building("custom", user_frame().assign(ev_kwh=np.nan))
        assert "ev" not in data.devices


class TestBadInput:
    @pytest.mark.parametrize(
        "column", ["inflexible_load_kwh", "pv_kwh", "wholesale_price_eur_per_kwh"]
    )
    def test_missing_required_column_is_named(self, column: str) -> None:
        """Dropping a required column raises an error that names it."""
        with pytest.raises(ValueError, match=column):
            load_household_data(user_frame().drop(columns=column))

    def test_negative_energy_is_named_with_its_timestamp(self) -> None:
        """A negative PV value raises an error naming pv_kwh and the value."""
        frame = user_frame()
        frame.iloc[5, frame.columns.get_loc("pv_kwh")] = -1.0
        with pytest.raises(ValueError, match=r"'pv_kwh' must be >= 0 kWh, got -1\.0"):
            load_household_data(frame)

    def test_missing_value_in_a_device_column_is_named(self) -> None:
        """A NaN inside a present device feed is an error naming the column."""
        frame = user_frame()
        frame.iloc[3, frame.columns.get_loc("dishwasher_kwh")] = np.nan
        with pytest.raises(ValueError, match="'dishwasher_kwh' has a missing or infinite value"):
            load_household_data(frame)

    def test_non_numeric_column_is_named(self) -> None:
        """Text in the price column is an error naming it."""
        frame = user_frame().astype({"wholesale_price_eur_per_kwh": object})
        frame.iloc[0, frame.columns.get_loc("wholesale_price_eur_per_kwh")] = "cheap"
        with pytest.raises(ValueError, match="'wholesale_price_eur_per_kwh' must be numeric"):
            load_household_data(frame)

    def test_naive_timestamps_are_rejected(self) -> None:
        """A timezone-naive index is an error asking to localise it."""
        with pytest.raises(ValueError, match="timezone-naive"):
            load_household_data(user_frame().tz_localize(None))

    def test_sub_hourly_timestamps_are_rejected(self) -> None:
        """Timestamps off the full hour are an error about hourly data."""
        frame = user_frame()
        frame.index = frame.index + pd.Timedelta(minutes=15)
        with pytest.raises(ValueError, match="whole hours"):
            load_household_data(frame)

    def test_unknown_building_lists_the_available_ones(self) -> None:
        """An unknown id names the buildings that exist."""
        with pytest.raises(ValueError, match=r"not found; available: \['DE_KN_residential1'"):
            load_building("DE_KN_residential9")

    def test_unknown_file_type_is_rejected(self, tmp_path: Path) -> None:
        """A path that is neither parquet nor CSV is an error naming the accepted kinds."""
        path = tmp_path / "data.xlsx"
        path.write_bytes(b"")
        with pytest.raises(ValueError, match=r"expected a \.parquet, \.csv"):
            load_household_data(path)

    def test_missing_path_is_reported(self, tmp_path: Path) -> None:
        """A path that does not exist raises FileNotFoundError."""
        with pytest.raises(FileNotFoundError):
            load_household_data(tmp_path / "nowhere.csv")
