"""Schedule plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from emstrack.ems import OptimizationResult, optimize_building, plot_schedule
from emstrack.schemas import OptimizationParams


@pytest.fixture(scope="module")
def result() -> OptimizationResult:
    params = OptimizationParams(
        building_id="DE_KN_residential4", battery_enabled=True, ev_enabled=True, n_days=2
    )
    return optimize_building(params)


class TestPlotSchedule:
    def test_figure_has_power_and_storage_panels(self, result: OptimizationResult) -> None:
        """The figure has two axes: power flows with title, and SOC/EV charging."""
        figure = plot_schedule(result.schedule, title="res4")
        power, storage = figure.axes
        assert power.get_title() == "res4"
        labels = {line.get_label() for line in storage.get_lines()}
        assert {"battery SOC [kWh]", "EV charging [kW]"} <= labels

    def test_figure_is_not_registered_with_pyplot(self, result: OptimizationResult) -> None:
        """Plotting leaves pyplot's figure list unchanged, so nothing needs closing."""
        before = plt.get_fignums()
        for _ in range(25):
            plot_schedule(result.schedule)
        assert plt.get_fignums() == before

    def test_saves_a_png(self, result: OptimizationResult, tmp_path: Path) -> None:
        """savefig writes a PNG file."""
        path = tmp_path / "schedule.png"
        plot_schedule(result.schedule).savefig(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_schedule_without_battery_omits_the_soc_line(self) -> None:
        """Without a battery (SOC all NaN) only the EV line is drawn in the lower panel."""
        params = OptimizationParams(building_id="DE_KN_residential2", battery_enabled=False)
        figure = plot_schedule(optimize_building(params).schedule)
        assert [line.get_label() for line in figure.axes[1].get_lines()] == ["EV charging [kW]"]

    def test_missing_column_is_named(self, result: OptimizationResult) -> None:
        """A schedule without battery_soc_kwh is an error naming the column."""
        with pytest.raises(ValueError, match="battery_soc_kwh"):
            plot_schedule(result.schedule.drop(columns="battery_soc_kwh"))
