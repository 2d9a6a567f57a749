"""Detection of appliance runs and their start hours."""

from __future__ import annotations

import pandas as pd

from emstrack.ems._jobs import find_runs, run_blocks, start_hours


def hourly(values: list[float], start: str = "2016-06-01 00:00") -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq="h", tz="Europe/Berlin")
    return pd.Series(values, index=index)


class TestRunBlocks:
    def test_run_starts_above_threshold_and_ends_at_standby(self) -> None:
        """0.3 kWh starts a run, a 0.04 kWh quiet phase continues it, 3 Wh standby ends it."""
        assert run_blocks([0.003, 0.3, 0.04, 0.4, 0.003, 0.0], 0.05) == [(1, 4)]

    def test_values_below_the_start_threshold_do_not_start_a_run(self) -> None:
        """0.04 kWh alone is not a start; 0.06 kWh is."""
        assert run_blocks([0.04, 0.0, 0.06, 0.0], 0.05) == [(2, 3)]

    def test_run_at_the_end_of_the_series_is_closed(self) -> None:
        """A run still going in the last hour ends with the series."""
        assert run_blocks([0.0, 0.5, 0.5], 0.05) == [(1, 3)]


class TestFindRuns:
    def test_runs_carry_start_time_and_profile(self) -> None:
        """A two-hour run at 19:00 keeps its energies."""
        runs = find_runs(hourly([0.0] * 19 + [0.7, 0.2] + [0.0] * 3), "dishwasher")
        assert len(runs) == 1
        assert runs[0].start.hour == 19
        assert runs[0].energy_kwh == (0.7, 0.2)
        assert runs[0].within_one_day

    def test_run_across_midnight_is_flagged(self) -> None:
        """A run from 23:00 to 00:59 does not lie within one day."""
        runs = find_runs(hourly([0.0] * 23 + [0.5, 0.5, 0.0]), "washing_machine")
        assert not runs[0].within_one_day

    def test_gap_in_the_index_splits_runs(self) -> None:
        """Hours missing between two active hours separate two runs."""
        series = hourly([0.5] * 48)
        series = series.drop(series.index[10:20])
        assert len(find_runs(series, "dishwasher")) == 2

    def test_start_hours_are_local_clock_hours(self) -> None:
        """Starts at 07:00 and 20:00 local time are reported as 7 and 20."""
        values = [0.0] * 24
        values[7], values[20] = 0.6, 0.6
        assert start_hours(hourly(values)) == [7, 20]
