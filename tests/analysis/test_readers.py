"""The readers behind emstrack.analysis: the SQL fast path must read exactly what MLflow reads.

The module's store (``varied``) has runs with varied, missing and NaN values, FAILED, KILLED and
deleted runs, a nested run, a deleted experiment and an empty one; every SQL read is compared
with ``MlflowClient.search_runs`` on the same store.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from emstrack.analysis import ExperimentNotFoundError, InvalidFilterError, StoreError, _sql
from emstrack.analysis._client import ClientReader
from emstrack.analysis._reader import RunTable, Selection
from emstrack.analysis._sql import SqlReader
from helpers.varied import Varied, search, varied_store


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory, template_database: Path) -> Iterator[Varied]:
    """The varied store, built once per module."""
    yield from varied_store(tmp_path_factory, template_database)


def _nan_safe(values: dict[str, Any]) -> dict[str, Any]:
    return {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


def table_as_runs(table: RunTable) -> list[tuple[Any, ...]]:
    """A table as (run id, name, status, start, params, metrics, tags) per run, in order."""
    out = []
    for position, row in enumerate(table.info.itertuples(index=False)):

        def present(frame: pd.DataFrame, position: int = position) -> dict[str, Any]:
            if frame.empty or len(frame.columns) == 0:
                return {}
            values = frame.iloc[position]
            return {str(k): v for k, v in values.items() if not _missing(v)}

        metrics = table.metrics
        metric_values = (
            {}
            if len(metrics.columns) == 0
            else {str(k): float(v) for k, v in metrics.iloc[position].items()}
        )
        out.append(
            (
                row.run_id,
                row.run_name,
                row.status,
                int(row.start_ms),
                present(table.params),
                _nan_safe(metric_values),
                present(table.tags),
            )
        )
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def mlflow_as_runs(runs: list[Any], selection: Selection) -> list[tuple[Any, ...]]:
    """MLflow's runs in the same shape, restricted to the selection."""
    out = []
    metric_keys = sorted({key for run in runs for key in run.data.metrics})
    for run in runs:
        params = {
            k: v
            for k, v in run.data.params.items()
            if selection.params is None or k in selection.params
        }
        metrics = {
            k: run.data.metrics.get(k, math.nan)
            for k in metric_keys
            if selection.metrics is None or k in selection.metrics
        }
        tags = {k: v for k, v in run.data.tags.items() if selection.wants_tag(k)}
        out.append(
            (
                run.info.run_id,
                run.info.run_name,
                run.info.status,
                run.info.start_time,
                params,
                _nan_safe(metrics),
                tags,
            )
        )
    return out


def _filters(varied: Varied) -> list[str]:
    ids = varied.ids
    middle = search(varied.uri, ["ems"])[20].info.start_time
    return [
        "",
        "params.building_id = 'B1'",
        "params.building_id != 'B1'",
        "params.building_id LIKE 'b%'",
        "params.optimization_mode ILIKE '%CONS%'",
        "metrics.total_cost > 15",
        "metrics.total_cost != 12.25",
        "metrics.total_cost <= 14.25 AND params.battery_enabled = 'true'",
        "tags.`solver.status` = 'Optimal'",
        'tags."solver.status" != "Optimal"',
        "attributes.status = 'FAILED'",
        "status != 'FINISHED'",
        "run_name LIKE 'run-1%'",
        f"attributes.run_id IN ('{ids['run-01']}', '{ids['run-17']}', '{ids['b-0']}')",
        f"run_id NOT IN ('{ids['run-01']}')",
        "params.battery.capacity_kwh IS NULL",
        "params.battery.capacity_kwh IS NOT NULL and metrics.savings_eur >= 0",
        f"attributes.start_time > {middle}",
        "params.building_id = 'nobody'",
        "tags.'solver.status' = 'Optimal'",
    ]


class TestSqlReaderMatchesSearchRuns:
    """The SQL fast path reads the same runs, values and order as MLflow's search_runs."""

    @pytest.mark.parametrize("use_sqlalchemy", [False, True], ids=["sqlite3", "sqlalchemy"])
    @pytest.mark.parametrize(
        "whole_table_share", [0, 10**9, _sql.WHOLE_TABLE_SHARE], ids=["joined", "scanned", "chosen"]
    )
    def test_every_filter_reads_what_search_runs_reads(
        self,
        varied: Varied,
        use_sqlalchemy: bool,
        whole_table_share: int,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Runs, order, params, latest metrics (NaN too) and tags equal MLflow's, per filter.

        On SQLite both ways of reading a run's values give it: joined to the runs (a small
        part of the store) and whole tables scanned (most of it), and the way chosen per read.
        """
        monkeypatch.setattr(_sql, "WHOLE_TABLE_SHARE", whole_table_share)
        reader = SqlReader(varied.uri, use_sqlalchemy=use_sqlalchemy)
        try:
            ids = list(reader.experiment_ids(["ems", "ems-b"]).values())
            for filter_string in _filters(varied):
                table = reader.read(ids, filter_string, Selection())
                expected = search(varied.uri, ["ems", "ems-b"], filter_string)
                assert table_as_runs(table) == mlflow_as_runs(expected, Selection()), filter_string
        finally:
            reader.close()

    def test_selection_reads_only_the_keys_asked_for(self, varied: Varied) -> None:
        """Params, metrics and tags outside the selection are not in the table."""
        selection = Selection(params=("building_id",), metrics=("total_cost",), tags=())
        reader = SqlReader(varied.uri)
        try:
            table = reader.read(list(reader.experiment_ids(["ems"]).values()), None, selection)
        finally:
            reader.close()
        assert list(table.params.columns) == ["building_id"]
        assert list(table.metrics.columns) == ["total_cost"]
        assert list(table.tags.columns) == []
        assert table_as_runs(table) == mlflow_as_runs(search(varied.uri, ["ems"]), selection)

    def test_user_tags_leave_out_mlflow_and_bookkeeping_tags(self, varied: Varied) -> None:
        """Default tag selection keeps solver.status and drops mlflow.* and emstrack.run_key."""
        reader = SqlReader(varied.uri)
        try:
            ids = list(reader.experiment_ids(["ems"]).values())
            table = reader.read(ids, None, Selection(user_tags_only=True))
        finally:
            reader.close()
        assert "solver.status" in table.tags.columns
        assert "emstrack.version" in table.tags.columns
        assert not [c for c in table.tags.columns if c.startswith("mlflow.")]
        assert "emstrack.run_key" not in table.tags.columns

    def test_deleted_runs_are_never_read(self, varied: Varied) -> None:
        """A deleted run is absent even when asked for by id."""
        reader = SqlReader(varied.uri)
        try:
            ids = list(reader.experiment_ids(["ems"]).values())
            table = reader.read(ids, None, Selection())
            assert varied.ids["run-17"] not in set(table.info["run_id"])
            assert reader.existing_runs([varied.ids["run-17"], varied.ids["run-01"]]) == [
                varied.ids["run-01"]
            ]
        finally:
            reader.close()

    def test_parent_run_id_names_the_parent(self, varied: Varied) -> None:
        """A nested run's parent_run_id is its parent's run id; top-level runs have none."""
        reader = SqlReader(varied.uri)
        try:
            table = reader.read(list(reader.experiment_ids(["ems"]).values()), None, Selection())
        finally:
            reader.close()
        parents = dict(zip(table.info["run_id"], table.info["parent_run_id"], strict=True))
        assert parents[varied.ids["child-00"]] == varied.ids["run-00"]
        assert parents[varied.ids["run-01"]] is None

    def test_history_equals_get_metric_history(self, varied: Varied) -> None:
        """Per-step points (NaN included) equal MlflowClient.get_metric_history, run by run."""
        from mlflow.tracking import MlflowClient

        run_ids = [varied.ids["run-02"], varied.ids["run-00"]]
        reader = SqlReader(varied.uri)
        try:
            history = reader.history(run_ids, "daily_cost")
        finally:
            reader.close()
        client = MlflowClient(tracking_uri=varied.uri)
        expected = [
            (run_id, p.step, p.timestamp, "NaN" if math.isnan(p.value) else p.value)
            for run_id in run_ids
            for p in sorted(client.get_metric_history(run_id, "daily_cost"), key=lambda p: p.step)
        ]
        got = [
            (r.run_id, r.step, r.timestamp_ms, "NaN" if math.isnan(r.value) else r.value)
            for r in history.itertuples()
        ]
        assert got == expected
        assert len(got) == 6


class TestClientReader:
    """The search_runs reader (used over HTTP and as the fallback) agrees with the SQL reader."""

    def test_client_reader_equals_sql_reader(self, varied: Varied) -> None:
        """Both readers give equal tables for the same experiments and filter."""
        client, sql = ClientReader(varied.uri), SqlReader(varied.uri)
        try:
            ids = list(sql.experiment_ids(["ems", "ems-b"]).values())
            assert client.experiment_ids(["ems", "ems-b"]) == sql.experiment_ids(["ems", "ems-b"])
            for filter_string in ("", "metrics.total_cost > 15", "status != 'FINISHED'"):
                selection = Selection(user_tags_only=True)
                assert table_as_runs(client.read(ids, filter_string, selection)) == table_as_runs(
                    sql.read(ids, filter_string, selection)
                )
            assert client.keys(ids, "params") == sql.keys(ids, "params")
            assert client.keys(ids, "metrics") == sql.keys(ids, "metrics")
        finally:
            client.close()
            sql.close()

    def test_invalid_filter_raises_with_mlflows_reason(self, varied: Varied) -> None:
        """OR is not MLflow syntax: InvalidFilterError, naming the filter."""
        reader = SqlReader(varied.uri)
        try:
            ids = list(reader.experiment_ids(["ems"]).values())
            with pytest.raises(InvalidFilterError, match=r"invalid filter .*'or'"):
                reader.read(ids, "params.a = 'x' or params.b = 'y'", Selection())
        finally:
            reader.close()


class TestExperiments:
    """Experiment names resolve to active experiments only, with helpful errors."""

    @pytest.mark.parametrize("reader_class", [SqlReader, ClientReader])
    def test_unknown_experiment_lists_the_known_ones(
        self, varied: Varied, reader_class: type[Any]
    ) -> None:
        """The message names the missing experiment and lists the active ones."""
        reader = reader_class(varied.uri)
        try:
            with pytest.raises(ExperimentNotFoundError) as caught:
                reader.experiment_ids(["ems", "nope"])
        finally:
            reader.close()
        message = str(caught.value)
        assert "'nope'" in message
        assert "'ems-b'" in message
        assert "'empty'" in message
        assert "'gone'" not in message.split("known experiments:")[1]

    def test_deleted_experiment_is_not_found_and_says_deleted(self, varied: Varied) -> None:
        """A deleted experiment is reported as deleted."""
        reader = SqlReader(varied.uri)
        try:
            with pytest.raises(ExperimentNotFoundError, match=r"'gone' \('gone' deleted\)"):
                reader.experiment_ids(["gone"])
        finally:
            reader.close()

    def test_missing_database_file_is_a_store_error_and_not_created(self, tmp_path: Path) -> None:
        """Reading never creates a store."""
        missing = tmp_path / "nothing.db"
        with pytest.raises(StoreError, match="does not exist"):
            SqlReader(f"sqlite:///{missing}")
        assert not missing.exists()

    def test_a_file_that_is_no_mlflow_store_is_a_store_error(self, tmp_path: Path) -> None:
        """An SQLite file without MLflow's tables says it is not an MLflow store."""
        import sqlite3

        other = tmp_path / "other.db"
        sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
        reader = SqlReader(f"sqlite:///{other}")
        try:
            with pytest.raises(StoreError, match="not an MLflow tracking store"):
                reader.experiment_ids(["ems"])
        finally:
            reader.close()
