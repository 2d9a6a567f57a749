"""emstrack.plots: what is drawn, the PNG written, and no figure left registered."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emstrack import analysis, plots
from helpers.varied import Varied, varied_store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory, template_database: Path) -> Iterator[Varied]:
    """The varied store of test_query, built once for this module."""
    yield from varied_store(tmp_path_factory, template_database)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(autouse=True)
def _no_pyplot_figures() -> Any:
    """Every test ends with no figure registered with pyplot's global manager."""
    yield
    from matplotlib import _pylab_helpers

    assert _pylab_helpers.Gcf.get_num_fig_managers() == 0


class TestPlotSavings:
    """plot_savings(): one bar per building and mode."""

    def test_bars_ticks_and_legend_follow_compare(self, varied: Varied, tmp_path: Path) -> None:
        """Bars = groups with savings, x ticks = buildings, legend = modes; the PNG is written."""
        path = tmp_path / "plots" / "savings.png"
        figure = plots.plot_savings("ems", path=path, tracking_uri=varied.uri)
        axes = figure.axes[0]
        expected = analysis.compare("ems", "savings_eur", tracking_uri=varied.uri)
        drawn = expected.dropna(subset=["mean"])
        assert len(axes.patches) == len(drawn)
        assert sorted(round(p.get_height(), 9) for p in axes.patches) == sorted(
            round(v, 9) for v in drawn["mean"]
        )
        assert [t.get_text() for t in axes.get_xticklabels()] == ["B0", "B1", "B2", "B3"]
        # The nested run (no mode) logged no savings: no bar, no legend entry.
        assert [t.get_text() for t in axes.get_legend().get_texts()] == [
            "cost",
            "self_consumption",
        ]
        assert axes.get_xlabel() == "building_id"
        assert png_size(path) == (800, 480)

    def test_one_key_draws_one_bar_per_group_without_legend(self, varied: Varied) -> None:
        """by='optimization_mode': one bar per mode, no legend."""
        figure = plots.plot_savings(
            "ems",
            by="optimization_mode",
            filter="params.optimization_mode IS NOT NULL",
            tracking_uri=varied.uri,
        )
        axes = figure.axes[0]
        assert len(axes.patches) == 2
        assert axes.get_legend() is None
        assert [t.get_text() for t in axes.get_xticklabels()] == ["cost", "self_consumption"]

    def test_figure_renders_itself_as_png_for_notebooks(self, varied: Varied) -> None:
        """_repr_png_ gives PNG bytes (inline display without pyplot)."""
        figure = plots.plot_savings("ems-b", by="building_id", tracking_uri=varied.uri)
        assert figure._repr_png_()[:8] == PNG_SIGNATURE

    def test_unknown_metric_raises(self, varied: Varied) -> None:
        """The analysis errors pass through."""
        with pytest.raises(analysis.MetricNotFoundError):
            plots.plot_savings("ems", metric="savings_kwh", tracking_uri=varied.uri)


class TestPlotCostDistribution:
    """plot_cost_distribution(): one box per group, labelled with its run count."""

    def test_one_box_per_mode_with_run_counts(self, varied: Varied, tmp_path: Path) -> None:
        """Tick labels name each mode and its number of runs with a total_cost."""
        path = tmp_path / "costs.png"
        figure = plots.plot_cost_distribution(
            "ems", filter="params.optimization_mode IS NOT NULL", path=path, tracking_uri=varied.uri
        )
        axes = figure.axes[0]
        counts = analysis.compare(
            "ems",
            "total_cost",
            by="optimization_mode",
            filter="params.optimization_mode IS NOT NULL",
            tracking_uri=varied.uri,
        )
        assert [t.get_text() for t in axes.get_xticklabels()] == [
            f"{mode}\n(n={n})"
            for mode, n in zip(counts["optimization_mode"], counts["count"], strict=True)
        ]
        frame = analysis.runs("ems", "status = 'FINISHED'", tracking_uri=varied.uri)
        medians = frame.groupby("params.optimization_mode")["metrics.total_cost"].median()
        flat = {
            round(float(line.get_ydata()[0]), 9)
            for line in axes.lines
            if len(set(line.get_ydata())) == 1
        }
        assert {round(m, 9) for m in medians} <= flat
        assert axes.get_ylabel() == "total_cost"
        assert png_size(path) == (800, 480)


class TestPlotSeries:
    """plot_series(): one line per run that logged the per-step metric."""

    def test_one_line_per_run_with_the_metric(self, varied: Varied, tmp_path: Path) -> None:
        """Six runs logged daily_cost: six lines of three steps, labelled by building."""
        path = tmp_path / "daily.png"
        figure = plots.plot_series(
            "ems", "daily_cost", label_by="building_id", path=path, tracking_uri=varied.uri
        )
        axes = figure.axes[0]
        assert len(axes.lines) == 6
        assert all(list(line.get_xdata()) == [0, 1, 2] for line in axes.lines)
        assert sorted(line.get_label() for line in axes.lines) == sorted(
            ["B0", "B1", "B2", "B3", "B0", "B1"]
        )
        assert axes.get_xlabel() == "step"
        assert png_size(path) == (800, 480)

    def test_max_runs_draws_the_newest_and_says_so(self, varied: Varied) -> None:
        """max_runs=2: two lines, the two newest runs with the metric, noted in the title."""
        figure = plots.plot_series("ems", "daily_cost", max_runs=2, tracking_uri=varied.uri)
        axes = figure.axes[0]
        assert [line.get_label() for line in axes.lines] == ["run-05", "run-04"]
        assert axes.get_title() == "daily_cost per step (2 newest of 6 runs)"

    def test_unknown_label_key_lists_params_and_tags(self, varied: Varied) -> None:
        """label_by must be a param or tag."""
        with pytest.raises(analysis.KeyNotFoundError, match=r"'region'.*'building_id'"):
            plots.plot_series("ems", "daily_cost", label_by="region", tracking_uri=varied.uri)

    def test_metric_no_run_logged(self, varied: Varied) -> None:
        """A metric no run logged raises MetricNotFoundError."""
        with pytest.raises(analysis.MetricNotFoundError):
            plots.plot_series("ems-b", "daily_cost", tracking_uri=varied.uri)
