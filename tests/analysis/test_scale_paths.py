"""The read paths made for large stores give exactly the answers of the plain ones.

* chunked pivoting (``_wide``, rows fetched ``CHUNK_ROWS`` at a time) builds the frame that
  ``_reader.pivot`` builds from every row at once, for any chunk size;
* ``best_run`` ranked by the store (``SqlReader.best_run_id``: one ``ORDER BY ... LIMIT 1``)
  picks the run that ranking in pandas picks: NaN left out, ties to the earlier start and then
  the smaller run id, either direction, FINISHED only unless failed runs are included;
* ``compare`` reads a ``by`` key's tags only where no run has the param;
* on PostgreSQL (slow), through server-side cursors, the SQL reader still equals
  ``MlflowClient.search_runs``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from emstrack import analysis
from emstrack.analysis import _best_read, _sql
from emstrack.analysis._client import ClientReader
from emstrack.analysis._reader import Reader, RunTable, Selection, pivot
from emstrack.analysis._selection import compared_statuses
from emstrack.analysis._sql import SqlReader
from emstrack.analysis._wide import pivot_chunks
from helpers.varied import Varied, varied_store

ALL = Selection()
USER = Selection(user_tags_only=True)


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory, template_database: Path) -> Iterator[Varied]:
    """The varied store (NaN and missing values, FAILED, KILLED, deleted and nested runs)."""
    yield from varied_store(tmp_path_factory, template_database)


def assert_tables_equal(got: RunTable, expected: RunTable) -> None:
    pd.testing.assert_frame_equal(got.info, expected.info)
    pd.testing.assert_frame_equal(got.params, expected.params)
    pd.testing.assert_frame_equal(got.metrics, expected.metrics)
    pd.testing.assert_frame_equal(got.tags, expected.tags)


def _chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class TestChunkedPivot:
    """Pivoting chunk by chunk equals pivoting every row at once."""

    @pytest.mark.parametrize("table", ["params", "latest_metrics", "tags"])
    def test_any_chunk_size_gives_the_frame_of_pivot(self, varied: Varied, table: str) -> None:
        """Real rows of the store, chunks of 1, 7 and all rows: frames equal pivot's."""
        reader = SqlReader(varied.uri)
        try:
            info = reader.read(list(reader.experiment_ids(["ems"]).values()), None, ALL).info
            value = (
                "CASE WHEN x.is_nan THEN NULL ELSE x.value END" if "metrics" in table else "x.value"
            )
            rows = reader._connection.fetch(
                f"SELECT x.run_uuid, x.key, {value} FROM {table} x "
                "JOIN runs r ON r.run_uuid = x.run_uuid WHERE r.experiment_id = :e",
                {"e": int(reader.experiment_ids(["ems"])["ems"])},
            )
        finally:
            reader.close()
        assert len(rows) > 40
        index = pd.Index(info["run_id"], name="run_id")
        numeric = table == "latest_metrics"
        expected = pivot(rows, index, numeric=numeric)
        for size in (1, 7, len(rows)):
            got = pivot_chunks(_chunks(rows, size), index, numeric=numeric)
            pd.testing.assert_frame_equal(got, expected)
        if numeric:
            assert expected.isna().to_numpy().any()  # NaN and missing values were pivoted

    def test_rows_of_runs_outside_the_index_are_dropped(self) -> None:
        """A row of a run that the info query did not see is dropped, as pivot+reindex does."""
        index = pd.Index(["a", "b"], name="run_id", dtype=object)
        rows = [("a", "k", "1"), ("z", "k", "9"), ("b", "j", "2")]
        got = pivot_chunks(_chunks(rows, 2), index)
        pd.testing.assert_frame_equal(got, pivot(rows, index))
        assert got.loc["a", "k"] == "1"
        assert pd.isna(got.loc["b", "k"])

    def test_no_rows_give_a_frame_without_columns(self) -> None:
        """No rows: the index only, as pivot gives."""
        index = pd.Index(["a"], name="run_id", dtype=object)
        pd.testing.assert_frame_equal(pivot_chunks([], index, numeric=True), pivot([], index))

    @pytest.mark.parametrize("use_sqlalchemy", [False, True], ids=["sqlite3", "sqlalchemy"])
    def test_reader_with_tiny_chunks_reads_the_same_table(
        self, varied: Varied, monkeypatch: pytest.MonkeyPatch, use_sqlalchemy: bool
    ) -> None:
        """CHUNK_ROWS = 3 (many fetchmany rounds) reads the table of the default chunk size."""
        reader = SqlReader(varied.uri, use_sqlalchemy=use_sqlalchemy)
        try:
            ids = list(reader.experiment_ids(["ems", "ems-b"]).values())
            whole = [
                reader.read(ids, f, s) for f in ("", "metrics.total_cost > 15") for s in (ALL, USER)
            ]
            monkeypatch.setattr(_sql, "CHUNK_ROWS", 3)
            chunked = [
                reader.read(ids, f, s) for f in ("", "metrics.total_cost > 15") for s in (ALL, USER)
            ]
        finally:
            reader.close()
        for got, expected in zip(chunked, whole, strict=True):
            assert_tables_equal(got, expected)
        assert len(whole[0]) > 40


class TestTagsUnlessParams:
    """A ``by`` key is read as a tag only when no run has the param."""

    def test_tag_is_left_out_where_the_param_exists(self, varied: Varied) -> None:
        """building_id is a param: no tag read; solver.status is only a tag: read."""
        reader = SqlReader(varied.uri)
        try:
            ids = list(reader.experiment_ids(["ems"]).values())
            selection = Selection(
                params=("building_id", "solver.status"),
                metrics=(),
                tags=(),
                tags_unless_params=("building_id", "solver.status"),
            )
            table = reader.read(ids, None, selection)
        finally:
            reader.close()
        assert list(table.params.columns) == ["building_id"]
        assert list(table.tags.columns) == ["solver.status"]
        assert set(table.tags["solver.status"].dropna()) == {"Optimal", "Infeasible"}

    def test_compare_by_tag_and_param_equals_the_client_reader(self, varied: Varied) -> None:
        """compare by a param and a tag gives the frame the search_runs reader gives."""
        by = ["building_id", "solver.status"]
        fast = analysis.compare("ems", "total_cost", by=by, tracking_uri=varied.uri)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(analysis._selection, "open_store", _client_store)
            slow = analysis.compare("ems", "total_cost", by=by, tracking_uri=varied.uri)
        pd.testing.assert_frame_equal(fast, slow)
        assert set(fast["solver.status"].dropna()) == {"Optimal", "Infeasible"}


def _client_store(tracking_uri: str | None) -> Any:
    from emstrack.analysis._open import open_reader

    assert tracking_uri is not None
    return open_reader(tracking_uri, prefer_sql=False)


# ---------------------------------------------------------------------- best run in SQL


def write_ranked_runs(uri: str) -> dict[str, str]:
    """Runs built for ranking: ties on value and start, NaN, a missing metric, FAILED, KILLED.

    Returns run name -> run id.
    """
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("ranked")
    cases: list[tuple[str, int, float | None, str]] = [
        ("tie-late", 2000, 5.0, "FINISHED"),
        ("tie-early-a", 1000, 5.0, "FINISHED"),
        ("tie-early-b", 1000, 5.0, "FINISHED"),
        ("high", 1500, 9.0, "FINISHED"),
        ("nan", 500, math.nan, "FINISHED"),
        ("missing", 400, None, "FINISHED"),
        ("failed-low", 3000, 1.0, "FAILED"),
        ("killed-high", 3000, 99.0, "KILLED"),
        ("running-low", 100, 0.5, "RUNNING"),
    ]
    ids = {}
    for name, start, value, status in cases:
        run = client.create_run(experiment, start_time=start, run_name=name)
        if value is not None:
            client.log_batch(run.info.run_id, metrics=[Metric("score", value, start, 0)])
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status, start + 10)
        ids[name] = run.info.run_id
    return ids


def rank_both_ways(reader: Reader, experiment: str) -> None:
    """SqlReader.best_run_id equals the pandas ranking for every direction, status and filter."""
    ids = reader.experiment_ids([experiment])
    experiment_ids = list(ids.values())
    cases = 0
    for higher in (True, False):
        for include_failed in (False, True):
            for filter_string in ("", "metrics.score < 9", "attributes.run_name LIKE 'tie%'"):
                in_store = reader.best_run_id(
                    experiment_ids,
                    filter_string,
                    "score",
                    compared_statuses(include_failed),
                    higher,
                )
                in_pandas = _best_read(
                    reader, ids, [experiment], "score", filter_string, higher, include_failed
                )
                assert in_store == in_pandas, (higher, include_failed, filter_string)
                cases += 1
    assert cases == 12


class TestBestRunInSql:
    """best_run ranked by the store equals best_run ranked in pandas."""

    def test_ties_nan_direction_and_status_rank_as_in_pandas(
        self, tmp_path: Path, template_database: Path
    ) -> None:
        """Every direction, status set and filter: the same run id, and the expected one."""
        import shutil

        database = tmp_path / "ranked.db"
        shutil.copyfile(template_database, database)
        uri = f"sqlite:///{database}"
        names = write_ranked_runs(uri)
        reader = SqlReader(uri)
        try:
            rank_both_ways(reader, "ranked")
            ids = list(reader.experiment_ids(["ranked"]).values())
            lowest = reader.best_run_id(ids, None, "score", ("FINISHED",), False)
            highest = reader.best_run_id(ids, None, "score", ("FINISHED", "FAILED", "KILLED"), True)
        finally:
            reader.close()
        # 5.0 three times: the earlier start wins, then the smaller run id.
        early = min(names["tie-early-a"], names["tie-early-b"])
        assert lowest == early
        assert highest == names["killed-high"]
        row = analysis.best_run("ranked", "score", higher_is_better=False, tracking_uri=uri)
        assert row.name == early
        assert row["run_id"] == early

    def test_varied_store_ranks_as_in_pandas(self, varied: Varied) -> None:
        """The varied store (NaN cost, FAILED and KILLED runs, a nested run)."""
        reader = SqlReader(varied.uri)
        try:
            ids = reader.experiment_ids(["ems"])
            for metric in ("total_cost", "savings_eur", "jobs_moved"):
                for higher in (True, False):
                    for include_failed in (False, True):
                        statuses = compared_statuses(include_failed)
                        got = reader.best_run_id(list(ids.values()), None, metric, statuses, higher)
                        expected = _best_read(
                            reader, ids, ["ems"], metric, None, higher, include_failed
                        )
                        assert got == expected
        finally:
            reader.close()

    def test_untranslated_filter_is_left_to_pandas(self, varied: Varied) -> None:
        """A filter outside the translated subset (here: ``>`` on a param) gives None."""
        reader = SqlReader(varied.uri)
        try:
            ids = list(reader.experiment_ids(["ems"]).values())
            assert (
                reader.best_run_id(ids, "params.n_days > '3'", "total_cost", ("FINISHED",), False)
                is None
            )
        finally:
            reader.close()

    def test_errors_stay_those_of_the_pandas_path(self, varied: Varied) -> None:
        """No run with the metric: NoRunsError; unknown direction: DirectionUnknownError."""
        with pytest.raises(analysis.NoRunsError):
            analysis.best_run(
                "ems", "total_cost", filter="params.building_id = 'nobody'", tracking_uri=varied.uri
            )
        with pytest.raises(analysis.DirectionUnknownError):
            analysis.best_run("ems", "jobs_moved", tracking_uri=varied.uri)


# ---------------------------------------------------------------------- PostgreSQL


@pytest.mark.slow
def test_postgresql_reads_equal_search_runs_and_rank_as_pandas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL, with 2-row chunks, runs joined or whole tables read: SQL reader == client
    reader, best_run_id == pandas."""
    from helpers.postgres import PostgresCluster

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    with PostgresCluster() as cluster:
        uri = cluster.create_database("ranked")
        write_ranked_runs(uri)
        monkeypatch.setattr(_sql, "CHUNK_ROWS", 2)
        sql, client = SqlReader(uri), ClientReader(uri)
        try:
            assert sql.dialect == "postgresql"
            ids = list(sql.experiment_ids(["ranked"]).values())
            selections = (ALL, USER, Selection(params=(), metrics=("score",), tags=()))
            for share in (0, 10**9):  # runs joined, then whole tables read
                monkeypatch.setattr(_sql, "WHOLE_TABLE_SHARE", share)
                for selection in selections:
                    for filter_string in ("", "metrics.score < 9"):
                        got = sql.read(ids, filter_string, selection)
                        expected = client.read(ids, filter_string, selection)
                        assert list(got.info["run_id"]) == list(expected.info["run_id"])
                        pd.testing.assert_frame_equal(got.params, expected.params)
                        pd.testing.assert_frame_equal(got.metrics, expected.metrics)
                        pd.testing.assert_frame_equal(got.tags, expected.tags)
            rank_both_ways(sql, "ranked")
        finally:
            sql.close()
            client.close()


class TestBestPerGroup:
    """compare's best run per group, ranked among the rows holding the group's best value."""

    @pytest.mark.parametrize("higher", [True, False])
    def test_equals_ranking_every_row(self, higher: bool) -> None:
        """Ties on value and start, NaN, -0.0 and 0.0, a group without values: same best runs."""
        from emstrack.analysis import _groups

        data = pd.DataFrame(
            {
                "g": ["a", "a", "a", "a", "b", "b", "b", "c", "c", None],
                "value": [1.0, 3.0, 3.0, 1.0, -0.0, 0.0, math.nan, math.nan, math.nan, 2.0],
                "run_id": ["r9", "r8", "r1", "r2", "r5", "r4", "r3", "r7", "r6", "r0"],
                "run_name": [f"n{i}" for i in range(10)],
                "start_ms": [5.0, 7.0, 7.0, 5.0, 1.0, 1.0, 0.0, 1.0, 2.0, 3.0],
            }
        )
        out = _groups.summarize(data, ["g"], higher)
        frame = data.copy()
        frame["_group"] = frame.groupby(["g"], dropna=False, sort=True).ngroup()
        expected = (
            _groups._ranked(frame, higher).drop_duplicates("_group").set_index("_group")["run_id"]
        )
        got = out["best_run_id"]
        assert list(got.fillna("-")) == [expected.get(i, "-") for i in range(len(out))]
        assert list(got)[:2] == (["r1", "r4"] if higher else ["r2", "r4"])
        assert pd.isna(got.iloc[2])  # group c: no value
