"""emstrack.analysis on real stores: results equal what MLflow's search_runs says."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import emstrack
from emstrack import analysis
from emstrack._tracking.mapping import format_float
from helpers.varied import Varied, search, varied_store


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory, template_database: Path) -> Iterator[Varied]:
    """The varied store of test_query, built once for this module."""
    yield from varied_store(tmp_path_factory, template_database)


def canonical(value: Any) -> str | None:
    """A typed param back in emstrack's canonical text (None for missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    return str(value)


def expected_compare(
    uri: str,
    experiments: list[str],
    metric: str,
    by: list[str],
    higher: bool,
    statuses: tuple[str, ...] = ("FINISHED",),
    filter_string: str = "",
) -> list[tuple[Any, ...]]:
    """compare() computed independently from MlflowClient.search_runs."""
    rows = []
    for run in search(uri, experiments, filter_string):
        if run.info.status not in statuses:
            continue
        value = run.data.metrics.get(metric, math.nan)
        keys = tuple(run.data.params.get(k) for k in by)
        rows.append((keys, value, run.info.start_time, run.info.run_id))
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(row[0], []).append(row)
    out = []
    for keys in sorted(groups, key=lambda k: tuple((v is None, v or "") for v in k)):
        members = groups[keys]
        values = [m[1] for m in members if not math.isnan(m[1])]
        ranked = sorted(
            (m for m in members if not math.isnan(m[1])),
            key=lambda m: (-m[1] if higher else m[1], m[2], m[3]),
        )
        out.append(
            (
                *keys,
                len(values),
                len(members) - len(values),
                round(sum(values) / len(values), 9) if values else None,
                min(values) if values else None,
                max(values) if values else None,
                ranked[0][3] if ranked else None,
            )
        )
    return out


def compare_rows(frame: pd.DataFrame, by: list[str]) -> list[tuple[Any, ...]]:
    """compare()'s result in the shape of expected_compare(), keys back as canonical text."""
    out = []
    for row in frame.to_dict("records"):
        out.append(
            (
                *(canonical(row[k]) for k in by),
                row["count"],
                row["missing"],
                None if math.isnan(row["mean"]) else round(row["mean"], 9),
                None if math.isnan(row["min"]) else row["min"],
                None if math.isnan(row["max"]) else row["max"],
                None if pd.isna(row["best_run_id"]) else row["best_run_id"],
            )
        )
    return out


class TestRuns:
    """runs(): one typed row per active run."""

    def test_rows_equal_search_runs_values_typed_back(self, varied: Varied) -> None:
        """Same runs in the same order; params, metrics and tags equal MLflow's after typing."""
        frame = analysis.runs(["ems", "ems-b"], tags="all", tracking_uri=varied.uri)
        expected = search(varied.uri, ["ems", "ems-b"])
        assert list(frame["run_id"]) == [run.info.run_id for run in expected]
        for row, run in zip(frame.to_dict("records"), expected, strict=True):
            params = {c[7:]: canonical(v) for c, v in row.items() if c.startswith("params.")}
            assert {k: v for k, v in params.items() if v is not None} == run.data.params
            metrics = {c[8:]: v for c, v in row.items() if c.startswith("metrics.")}
            for key, value in run.data.metrics.items():
                assert value == metrics[key] or (math.isnan(value) and math.isnan(metrics[key]))
            tags = {
                c[5:]: v for c, v in row.items() if c.startswith("tags.") and isinstance(v, str)
            }
            assert tags == run.data.tags
            assert row["status"] == run.info.status
            assert row["experiment"] in {"ems", "ems-b"}
            assert row["start_time"] == pd.Timestamp(run.info.start_time, unit="ms", tz="UTC")
            assert row["duration_s"] == (run.info.end_time - run.info.start_time) / 1000

    def test_base_columns_come_first_then_params_metrics_tags(self, varied: Varied) -> None:
        """Columns are the base columns, then sorted params.*, metrics.*, tags.*."""
        frame = analysis.runs("ems", tracking_uri=varied.uri)
        columns = list(frame.columns)
        assert columns[: len(analysis.BASE_COLUMNS)] == list(analysis.BASE_COLUMNS)
        prefixes = [c.split(".")[0] for c in columns[len(analysis.BASE_COLUMNS) :]]
        assert prefixes == sorted(prefixes, key=["params", "metrics", "tags"].index)

    def test_params_get_dtypes_from_their_values(self, varied: Varied) -> None:
        """bool, int64, float64 with NaN for missing, and text that keeps leading zeros."""
        frame = analysis.runs("ems", "tags.mlflow.parentRunId IS NULL", tracking_uri=varied.uri)
        assert frame["params.battery_enabled"].dtype == "bool"
        assert frame["params.n_days"].dtype == "int64"
        assert frame["params.battery.capacity_kwh"].dtype == "float64"
        assert frame["params.battery.capacity_kwh"].isna().sum() == 10  # run-30 to run-39
        assert frame["params.building_id"].dtype == "str"
        assert set(frame["params.site_code"]) == {"0000", "0001", "0002"}

    def test_missing_values_use_nullable_dtypes(self, varied: Varied) -> None:
        """The nested run has no n_days or battery_enabled: Int64 and boolean with <NA>."""
        frame = analysis.runs("ems", tracking_uri=varied.uri)
        child = frame[frame["run_name"] == "child-00"].iloc[0]
        assert frame["params.n_days"].dtype == "Int64"
        assert frame["params.battery_enabled"].dtype == "boolean"
        assert child["params.n_days"] is pd.NA
        assert child["parent_run_id"] == varied.ids["run-00"]

    def test_schema_decides_declared_fields(self, varied: Varied) -> None:
        """With OptimizationParams, n_days stays an integer and capacity a float."""
        from emstrack.schemas import OptimizationParams

        frame = analysis.runs(
            "ems",
            filter="params.battery.capacity_kwh = '10'",
            schema=OptimizationParams,
            tracking_uri=varied.uri,
        )
        assert frame["params.battery.capacity_kwh"].dtype == "float64"
        assert set(frame["params.battery.capacity_kwh"]) == {10.0}

    def test_default_tags_leave_out_mlflow_and_bookkeeping_tags(self, varied: Varied) -> None:
        """tags.solver.status is there; tags.mlflow.* and tags.emstrack.run_key are not."""
        frame = analysis.runs("ems", tracking_uri=varied.uri)
        tags = [c for c in frame.columns if c.startswith("tags.")]
        assert "tags.solver.status" in tags
        assert not [t for t in tags if t.startswith("tags.mlflow.")]
        assert "tags.emstrack.run_key" not in tags

    def test_filter_selects_runs(self, varied: Varied) -> None:
        """A filter keeps only matching runs."""
        frame = analysis.runs(
            "ems", "params.building_id = 'B1' AND metrics.total_cost > 15", tracking_uri=varied.uri
        )
        assert len(frame) > 0
        assert set(frame["params.building_id"]) == {"B1"}
        assert (frame["metrics.total_cost"] > 15).all()

    def test_empty_experiment_gives_no_rows_but_the_base_columns(self, varied: Varied) -> None:
        """An experiment without runs is an empty frame, not an error."""
        frame = analysis.runs("empty", tracking_uri=varied.uri)
        assert frame.empty
        assert list(frame.columns) == list(analysis.BASE_COLUMNS)

    def test_tracking_uri_defaults_to_mlflow_tracking_uri(self, store: Any) -> None:
        """Without tracking_uri the store of MLFLOW_TRACKING_URI is read, like tracking writes."""
        with emstrack.tracked_run("one", experiment="here", params={"x": 1}) as run:
            run.log_metrics({"total_cost": 3.0})
        frame = analysis.runs("here")
        assert list(frame["run_id"]) == [run.run_id]
        assert frame["params.x"].tolist() == [1]


class TestCompare:
    """compare(): per-group statistics equal those computed from search_runs."""

    @pytest.mark.parametrize(
        ("metric", "by", "filter_string", "include_failed"),
        [
            ("total_cost", ["building_id", "optimization_mode"], "", False),
            ("savings_eur", ["building_id"], "", True),
            ("total_cost", ["battery.capacity_kwh"], "params.battery_enabled = 'true'", False),
            ("savings_eur", ["optimization_mode", "n_days"], "metrics.total_cost < 20", True),
        ],
    )
    def test_equals_statistics_from_search_runs(
        self,
        varied: Varied,
        metric: str,
        by: list[str],
        filter_string: str,
        include_failed: bool,
    ) -> None:
        """count, missing, mean, min, max and best run equal an independent computation."""
        frame = analysis.compare(
            ["ems", "ems-b"],
            metric,
            by=by,
            filter=filter_string,
            include_failed=include_failed,
            tracking_uri=varied.uri,
        )
        higher = metric == "savings_eur"
        statuses = ("FINISHED", "FAILED", "KILLED") if include_failed else ("FINISHED",)
        expected = expected_compare(
            varied.uri, ["ems", "ems-b"], metric, by, higher, statuses, filter_string
        )
        assert compare_rows(frame, by) == expected
        assert list(frame.columns) == [
            *by,
            "count",
            "missing",
            "mean",
            "min",
            "max",
            "best_run_id",
            "best_run_name",
        ]

    def test_runs_without_the_metric_count_as_missing(self, varied: Varied) -> None:
        """run-03 logged NaN total_cost: counted in missing (run-11 FAILED is left out)."""
        frame = analysis.compare("ems", "total_cost", tracking_uri=varied.uri)
        group = frame[(frame["building_id"] == "B3") & (frame["optimization_mode"] == "cost")]
        assert group[["count", "missing"]].values.tolist() == [[3, 1]]

    def test_failed_and_killed_runs_are_left_out_unless_included(self, varied: Varied) -> None:
        """The FAILED and the KILLED run are excluded and reported; include_failed adds them."""
        default = analysis.compare("ems", "total_cost", by="building_id", tracking_uri=varied.uri)
        assert default.attrs["excluded"] == {"FAILED": 1, "KILLED": 1}
        included = analysis.compare(
            "ems", "total_cost", by="building_id", include_failed=True, tracking_uri=varied.uri
        )
        assert included.attrs["excluded"] == {}
        total = lambda f: int(f["count"].sum() + f["missing"].sum())  # noqa: E731
        assert total(included) == total(default) + 2

    def test_a_group_of_one_run(self, varied: Varied) -> None:
        """One run: count 1, mean = min = max = its value, it is the best run."""
        frame = analysis.compare(
            "ems-b",
            "total_cost",
            by="building_id",
            filter="run_name = 'b-2'",
            tracking_uri=varied.uri,
        )
        assert frame[["building_id", "count", "mean", "min", "max"]].values.tolist() == [
            ["B9", 1, 22.0, 22.0, 22.0]
        ]
        assert frame["best_run_id"].tolist() == [varied.ids["b-2"]]

    def test_direction_comes_from_the_name_unless_given(self, varied: Varied) -> None:
        """total_cost picks the lowest run; higher_is_better=True picks the highest."""
        lower = analysis.compare("ems-b", "total_cost", by="building_id", tracking_uri=varied.uri)
        higher = analysis.compare(
            "ems-b", "total_cost", by="building_id", higher_is_better=True, tracking_uri=varied.uri
        )
        assert lower.attrs["higher_is_better"] is False
        assert lower["best_run_id"].tolist() == [varied.ids["b-0"]]
        assert higher["best_run_id"].tolist() == [varied.ids["b-3"]]

    def test_missing_key_values_form_the_last_group(self, varied: Varied) -> None:
        """Runs without battery.capacity_kwh are grouped together, after the others."""
        frame = analysis.compare(
            "ems", "total_cost", by="battery.capacity_kwh", tracking_uri=varied.uri
        )
        assert frame["battery.capacity_kwh"].iloc[:2].tolist() == [10.0, 13.5]
        assert math.isnan(frame["battery.capacity_kwh"].iloc[2])
        assert len(frame) == 3

    def test_tags_and_attributes_can_group(self, varied: Varied) -> None:
        """by='solver.status' groups by the tag; 'experiment' by the experiment."""
        by_tag = analysis.compare("ems", "total_cost", by="solver.status", tracking_uri=varied.uri)
        assert by_tag["solver.status"].tolist()[:2] == ["Infeasible", "Optimal"]
        assert pd.isna(by_tag["solver.status"].iloc[2])  # the nested run has no such tag
        by_experiment = analysis.compare(
            ["ems", "ems-b"], "total_cost", by="experiment", tracking_uri=varied.uri
        )
        assert by_experiment["experiment"].tolist() == ["ems", "ems-b"]

    def test_comma_separated_by_equals_a_list(self, varied: Varied) -> None:
        """'a,b' groups like ['a', 'b']."""
        joined = analysis.compare(
            "ems", "total_cost", by="building_id, n_days", tracking_uri=varied.uri
        )
        listed = analysis.compare(
            "ems", "total_cost", by=["building_id", "n_days"], tracking_uri=varied.uri
        )
        pd.testing.assert_frame_equal(joined, listed)

    def test_unsupported_filter_falls_back_to_mlflow_with_same_meaning(
        self, varied: Varied
    ) -> None:
        """A filter outside the SQL subset gives what search_runs gives."""
        frame = analysis.compare(
            "ems",
            "total_cost",
            by="building_id",
            filter="tags.'solver.status' = 'Infeasible'",
            tracking_uri=varied.uri,
        )
        assert compare_rows(frame, ["building_id"]) == expected_compare(
            varied.uri,
            ["ems"],
            "total_cost",
            ["building_id"],
            False,
            filter_string="tags.`solver.status` = 'Infeasible'",
        )


class TestCompareErrors:
    """compare() errors name what is wrong and list what exists."""

    def test_unknown_experiment(self, varied: Varied) -> None:
        """ExperimentNotFoundError names it and lists the experiments."""
        with pytest.raises(
            analysis.ExperimentNotFoundError, match=r"'nope'.*known experiments: .*'ems'"
        ):
            analysis.compare("nope", "total_cost", tracking_uri=varied.uri)

    def test_unknown_metric(self, varied: Varied) -> None:
        """MetricNotFoundError lists the metrics the runs logged."""
        with pytest.raises(
            analysis.MetricNotFoundError, match=r"'total_kost'.*'savings_eur', 'total_cost'"
        ):
            analysis.compare("ems", "total_kost", tracking_uri=varied.uri)

    def test_unknown_group_key(self, varied: Varied) -> None:
        """KeyNotFoundError lists params and tags."""
        with pytest.raises(
            analysis.KeyNotFoundError, match=r"'region'.*'building_id'.*'solver.status'"
        ):
            analysis.compare("ems", "total_cost", by="region", tracking_uri=varied.uri)

    def test_unknown_direction(self, varied: Varied) -> None:
        """A metric whose name says nothing needs higher_is_better."""
        with pytest.raises(analysis.DirectionUnknownError, match=r"'jobs_moved'.*higher_is_better"):
            analysis.compare("ems", "jobs_moved", tracking_uri=varied.uri)
        frame = analysis.compare(
            "ems", "jobs_moved", by="building_id", higher_is_better=True, tracking_uri=varied.uri
        )
        assert frame["max"].max() == 1.0

    def test_empty_experiment(self, varied: Varied) -> None:
        """No runs at all is NoRunsError naming the experiment."""
        with pytest.raises(analysis.NoRunsError, match="no runs in experiment 'empty'"):
            analysis.compare("empty", "total_cost", tracking_uri=varied.uri)

    def test_only_failed_runs(self, varied: Varied) -> None:
        """When the filter leaves only a FAILED run, the message says how to include it."""
        with pytest.raises(analysis.NoRunsError, match=r"found 1 FAILED.*include_failed=True"):
            analysis.compare(
                "ems", "total_cost", filter="status = 'FAILED'", tracking_uri=varied.uri
            )

    def test_invalid_filter(self, varied: Varied) -> None:
        """OR is rejected with MLflow's reason."""
        with pytest.raises(analysis.InvalidFilterError):
            analysis.compare(
                "ems",
                "total_cost",
                filter="params.a = 'x' OR params.b = 'y'",
                tracking_uri=varied.uri,
            )

    def test_missing_store_is_not_created(self, tmp_path: Path) -> None:
        """A store that does not exist is a StoreError; no file appears."""
        with pytest.raises(analysis.StoreError):
            analysis.compare("ems", "total_cost", tracking_uri=f"sqlite:///{tmp_path / 'x.db'}")
        assert not (tmp_path / "x.db").exists()


class TestBestRun:
    """best_run(): the best compared run as a full row."""

    def test_lowest_cost_of_finished_runs(self, varied: Varied) -> None:
        """Equals the FINISHED run with the lowest total_cost (earliest on ties)."""
        best = analysis.best_run("ems", "total_cost", tracking_uri=varied.uri)
        finished = [
            r
            for r in search(varied.uri, ["ems"])
            if r.info.status == "FINISHED"
            and not math.isnan(r.data.metrics.get("total_cost", math.nan))
        ]
        expected = min(
            finished, key=lambda r: (r.data.metrics["total_cost"], r.info.start_time, r.info.run_id)
        )
        assert best.name == expected.info.run_id
        assert best["run_id"] == expected.info.run_id
        assert best["metrics.total_cost"] == expected.data.metrics["total_cost"]
        assert best["params.building_id"] == expected.data.params["building_id"]

    def test_include_failed_can_pick_a_failed_run(self, varied: Varied) -> None:
        """The FAILED run (only ones matching) is picked when included."""
        best = analysis.best_run(
            "ems",
            "savings_eur",
            filter="status != 'FINISHED'",
            include_failed=True,
            tracking_uri=varied.uri,
        )
        assert best["status"] in {"FAILED", "KILLED"}

    def test_no_compared_run_with_the_metric(self, varied: Varied) -> None:
        """NoRunsError when the metric exists but no compared run logged it."""
        with pytest.raises(analysis.NoRunsError, match="logged 'savings_eur'"):
            analysis.best_run(
                "ems", "savings_eur", filter="run_name = 'run-05'", tracking_uri=varied.uri
            )

    def test_unknown_direction(self, varied: Varied) -> None:
        """A name without a direction word raises DirectionUnknownError."""
        with pytest.raises(analysis.DirectionUnknownError, match="higher_is_better"):
            analysis.best_run("ems", "jobs_moved", tracking_uri=varied.uri)


class TestSeries:
    """series(): every step of a metric per run."""

    def test_steps_and_values_in_order_of_the_runs(self, varied: Varied) -> None:
        """Two runs' daily_cost, run by run, NaN where NaN was logged."""
        frame = analysis.series(
            [varied.ids["run-02"], varied.ids["run-01"]], "daily_cost", tracking_uri=varied.uri
        )
        assert list(frame.columns) == ["run_id", "step", "value", "timestamp"]
        assert frame["run_id"].tolist() == [varied.ids["run-02"]] * 3 + [varied.ids["run-01"]] * 3
        assert frame["step"].tolist() == [0, 1, 2, 0, 1, 2]
        values = frame["value"].tolist()
        assert values[0] == 3.0
        assert math.isnan(values[1])
        assert values[3:] == [2.0, 3.0, 3.0]
        assert str(frame["timestamp"].dtype).startswith("datetime64")

    def test_a_run_without_the_metric_has_no_rows(self, varied: Varied) -> None:
        """Runs that did not log it are skipped when another did."""
        frame = analysis.series(
            [varied.ids["run-00"], varied.ids["run-30"]], "daily_cost", tracking_uri=varied.uri
        )
        assert set(frame["run_id"]) == {varied.ids["run-00"]}

    def test_deleted_or_unknown_run(self, varied: Varied) -> None:
        """RunNotFoundError names the run id."""
        with pytest.raises(analysis.RunNotFoundError, match=varied.ids["run-17"]):
            analysis.series(varied.ids["run-17"], "daily_cost", tracking_uri=varied.uri)

    def test_metric_no_run_logged(self, varied: Varied) -> None:
        """MetricNotFoundError lists what the run logged."""
        with pytest.raises(analysis.MetricNotFoundError, match=r"'daily_kost'.*'daily_cost'"):
            analysis.series(varied.ids["run-00"], "daily_kost", tracking_uri=varied.uri)


class TestExport:
    """export(): runs() written to CSV or Parquet."""

    def test_csv_has_the_rows_and_columns_of_runs(self, varied: Varied, tmp_path: Path) -> None:
        """The CSV reads back to the same run ids, columns and metric values."""
        path = analysis.export("ems", tmp_path / "out" / "runs.csv", tracking_uri=varied.uri)
        expected = analysis.runs("ems", tracking_uri=varied.uri)
        written = pd.read_csv(path, dtype={"params.site_code": str})
        assert list(written.columns) == list(expected.columns)
        assert written["run_id"].tolist() == expected["run_id"].tolist()
        pd.testing.assert_series_equal(
            written["metrics.total_cost"], expected["metrics.total_cost"]
        )
        assert written["params.site_code"].dropna().str.len().eq(4).all()
        assert [p.name for p in path.parent.iterdir()] == ["runs.csv"]

    def test_parquet_keeps_the_dtypes(self, varied: Varied, tmp_path: Path) -> None:
        """Parquet round-trips bool, int and timestamp columns."""
        top_level = "tags.mlflow.parentRunId IS NULL"
        path = analysis.export(
            "ems", tmp_path / "runs.parquet", filter=top_level, tracking_uri=varied.uri
        )
        written = pd.read_parquet(path)
        assert written["params.battery_enabled"].dtype == "bool"
        assert written["params.n_days"].dtype == "int64"
        assert str(written["start_time"].dtype).startswith("datetime64")
        assert len(written) == len(analysis.runs("ems", top_level, tracking_uri=varied.uri))

    def test_unknown_suffix_needs_a_format(self, varied: Varied, tmp_path: Path) -> None:
        """A .txt path raises ValueError unless format is given."""
        with pytest.raises(ValueError, match="suffix"):
            analysis.export("ems", tmp_path / "runs.txt", tracking_uri=varied.uri)
        path = analysis.export("ems", tmp_path / "runs.txt", format="csv", tracking_uri=varied.uri)
        assert path.read_text().startswith("run_id,run_name,")


class TestImportCost:
    """Importing the analysis modules stays cheap."""

    def test_analysis_and_plots_import_neither_mlflow_nor_matplotlib(self) -> None:
        """mlflow and matplotlib load on first use, not on import."""
        code = (
            "import sys, emstrack, emstrack.analysis, emstrack.plots; "
            "print(sorted(m for m in ('mlflow', 'matplotlib') if m in sys.modules))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]"
