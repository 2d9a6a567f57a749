"""The fast reader: MLflow's tables read directly with read-only ``SELECT`` statements.

SQLite files are opened with the standard library in read-only mode (``mode=ro``), so reading
never creates, migrates or locks a store for writing. PostgreSQL and MySQL go through
SQLAlchemy (which MLflow already depends on) for the connection, its statements compiled for the
driver and run on a plain DBAPI cursor (a server-side one on PostgreSQL), so rows arrive as
tuples rather than SQLAlchemy ``Row`` objects. Runs and experiments whose ``lifecycle_stage`` is
``deleted`` are never read. Params, latest metrics and tags are fetched as ``(run, key, value)``
rows restricted to the selected keys, :data:`CHUNK_ROWS` at a time, each chunk pivoted into the
result's column arrays (:mod:`emstrack.analysis._wide`) and dropped, so a read of 100,000 runs
holds the result and one chunk. ``best_run`` ranks in the database (:meth:`SqlReader.best_run_id`).

Filters in the subset of :mod:`emstrack.analysis._filters` become ``EXISTS`` clauses with
MLflow's own semantics: the latest metric value is compared, a NaN metric matches only ``!=``,
``run_name`` is the ``mlflow.runName`` tag, ``LIKE`` is case-sensitive (also on SQLite, where
MLflow's sessions set ``PRAGMA case_sensitive_like``) and ``ILIKE`` is
``lower(x) LIKE lower(y)`` there. Other filters, and any filter on MySQL (where MLflow compares
text in binary collation), are handed to :class:`~emstrack.analysis._client.ClientReader`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .._errors import describe
from .._uris import redact_uri
from . import _filters as _filter
from ._errors import ExperimentNotFoundError, StoreError, listing
from ._reader import (
    BOOKKEEPING_TAGS,
    INFO_COLUMNS,
    PARENT_TAG,
    RUN_NAME_TAG,
    KeyKind,
    Reader,
    RunTable,
    Selection,
    empty_info,
    sqlite_file,
)
from ._wide import pivot_chunks

_TABLES: dict[KeyKind, str] = {"params": "params", "metrics": "latest_metrics", "tags": "tags"}
# A NaN metric is stored as 0 with is_nan set; NULL reads back as NaN.
_VALUE_SQL: dict[KeyKind, str] = {"metrics": "CASE WHEN x.is_nan THEN NULL ELSE x.value END"}
_INFO_SELECT = "SELECT r.run_uuid, r.name, r.experiment_id, r.status, r.start_time, r.end_time"
WHOLE_TABLE_SHARE = 4
"""A read takes whole tables (no join to ``runs``) when it selects at least 1 / this of the
store's runs: a scanned row costs a fraction of a joined one (see :func:`_keyed_select`)."""
_FILTER_DIALECTS = frozenset({"sqlite", "postgresql"})
_NUMERIC_SQL_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
# Session settings of a PostgreSQL read (nothing is written). Reads go through server-side
# cursors (see stream), which PostgreSQL plans for the first 10 % of rows by default; every row is
# read here. JIT compilation costs more than it saves on these short scans (1.7 s of 2.3 s for the
# run list of 100,000 runs), and 4 MB of work_mem makes the sorts and hashes spill to disk.
_POSTGRES_SETTINGS = ("cursor_tuple_fraction = 1.0", "jit = off", "work_mem = '64MB'")
CHUNK_ROWS = 50_000
"""Rows fetched and pivoted at a time (bounds the memory of a read to the result and one chunk)."""


class _Connection(Protocol):
    dialect: str

    def fetch(self, sql: str, params: Mapping[str, object]) -> list[Any]: ...

    def stream(self, sql: str, params: Mapping[str, object]) -> Iterator[list[Any]]: ...

    def close(self) -> None: ...


class _SqliteConnection:
    """A read-only connection to a SQLite file through the standard library."""

    dialect = "sqlite"

    def __init__(self, path: str, shown: str) -> None:
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise StoreError(f"no MLflow store at {shown}: {file} does not exist")
        self._shown = shown
        try:
            self._connection = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True, timeout=20)
            # MLflow's sessions make LIKE case-sensitive on SQLite; so must this one.
            self._connection.execute("PRAGMA case_sensitive_like = true")
        except sqlite3.Error as error:
            raise StoreError(f"cannot open {shown}: {error}") from error

    def fetch(self, sql: str, params: Mapping[str, object]) -> list[Any]:
        try:
            return self._connection.execute(sql, dict(params)).fetchall()
        except sqlite3.Error as error:
            raise StoreError(_read_failed(self._shown, error)) from error

    def stream(self, sql: str, params: Mapping[str, object]) -> Iterator[list[Any]]:
        try:
            cursor = self._connection.execute(sql, dict(params))
            while chunk := cursor.fetchmany(CHUNK_ROWS):
                yield chunk
        except sqlite3.Error as error:
            raise StoreError(_read_failed(self._shown, error)) from error

    def close(self) -> None:
        self._connection.close()


class _AlchemyConnection:
    """A connection to a server database (PostgreSQL, MySQL) through SQLAlchemy."""

    def __init__(self, uri: str, shown: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        self._text = sa.text
        self._shown = shown
        self._cursors = 0
        try:
            self._engine = sa.create_engine(uri, poolclass=NullPool)
            self.dialect: str = self._engine.dialect.name
            self._connection = self._engine.connect()
            if self.dialect == "sqlite":
                self._connection.execute(sa.text("PRAGMA case_sensitive_like = true"))
            if self.dialect == "postgresql":
                for setting in _POSTGRES_SETTINGS:
                    self._connection.execute(sa.text(f"SET {setting}"))
        except Exception as error:
            raise StoreError(f"cannot connect to {shown}: {describe(error)}") from error

    def fetch(self, sql: str, params: Mapping[str, object]) -> list[Any]:
        return [row for chunk in self.stream(sql, params) for row in chunk]

    def stream(self, sql: str, params: Mapping[str, object]) -> Iterator[list[Any]]:
        """Plain DBAPI tuples (no SQLAlchemy ``Row``), fetched ``CHUNK_ROWS`` at a time.

        The statement is compiled by SQLAlchemy for the driver's parameter style. On PostgreSQL
        a named (server-side) cursor keeps only one chunk in the process at a time.
        """
        try:
            compiled = self._text(sql).compile(dialect=self._engine.dialect)
            names = compiled.positiontup
            args: Any = (
                [params[name] for name in names]
                if compiled.positional and names is not None
                else {name: params[name] for name in compiled.params}
            )
            dbapi = self._connection.connection.dbapi_connection
            assert dbapi is not None
            self._cursors += 1
            cursor = (
                dbapi.cursor(f"emstrack_read_{self._cursors}")
                if self.dialect == "postgresql"
                else dbapi.cursor()
            )
            try:
                cursor.execute(compiled.string, args)
                while chunk := cursor.fetchmany(CHUNK_ROWS):
                    yield list(chunk)
            finally:
                cursor.close()
        except Exception as error:
            raise StoreError(_read_failed(self._shown, error)) from error

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()


class SqlReader:
    """Reads runs from MLflow's SQL schema (see the module docstring)."""

    def __init__(self, uri: str, *, use_sqlalchemy: bool = False) -> None:
        self.uri = uri
        shown = redact_uri(uri)
        file = sqlite_file(uri)
        self._connection: _Connection
        if file is not None and not use_sqlalchemy:
            self._connection = _SqliteConnection(file, shown)
        else:
            self._connection = _AlchemyConnection(uri, shown)
        self._fallback: Reader | None = None

    @property
    def dialect(self) -> str:
        """SQLAlchemy's name of the database: ``sqlite``, ``postgresql``, ``mysql``."""
        return self._connection.dialect

    def close(self) -> None:
        """Release the connection (and the fallback reader's, if one was opened)."""
        self._connection.close()
        if self._fallback is not None:
            self._fallback.close()

    # ------------------------------------------------------------------ experiments

    def experiment_ids(self, names: Sequence[str]) -> dict[str, str]:
        """Map each name to its active experiment's id; raise naming the ones that are not."""
        rows = self._connection.fetch(
            "SELECT experiment_id, name, lifecycle_stage FROM experiments", {}
        )
        active = {name: str(eid) for eid, name, stage in rows if stage == "active"}
        deleted = {name for _, name, stage in rows if stage != "active"} - set(active)
        missing = [name for name in names if name not in active]
        if missing:
            raise ExperimentNotFoundError(_missing_experiments(missing, deleted, active, self.uri))
        return {name: active[name] for name in names}

    # ------------------------------------------------------------------ runs

    def read(
        self,
        experiment_ids: Sequence[str],
        filter: str | None,
        selection: Selection,
        run_ids: Sequence[str] | None = None,
    ) -> RunTable:
        """Active runs of the experiments matching ``filter``, restricted to ``selection``."""
        conditions = _filter.parse(filter)
        if conditions and self.dialect not in _FILTER_DIALECTS:
            conditions = None
        if conditions is None:
            return self._client().read(experiment_ids, filter, selection, run_ids)
        where, params = _run_where(list(experiment_ids), conditions, run_ids, self.dialect)
        rows, runs = self._run_rows(where, params)
        info = _info_frame(rows, nulls_first=self.dialect == "postgresql")
        if info.empty:
            return RunTable(info)
        index = pd.Index(info["run_id"], name="run_id")
        param_frame = self._values("params", runs, index, selection.params)
        if selection.tags is not None and selection.tags_unless_params:
            needed = [k for k in selection.tags_unless_params if k not in param_frame.columns]
            tags = tuple(dict.fromkeys(selection.tags + tuple(needed)))
            selection = Selection(params=selection.params, metrics=selection.metrics, tags=tags)
        return RunTable(
            info,
            params=param_frame,
            metrics=self._values("metrics", runs, index, selection.metrics),
            tags=self._tags(runs, index, selection),
        )

    def _run_rows(self, where: str, params: dict[str, object]) -> tuple[list[Any], _Runs]:
        """The selected runs' rows (in no order), and how to read the rest of them.

        The database does not sort them: ordering 100,000 rows by start and run id there took
        0.25 s on PostgreSQL and 0.1 s on SQLite, several times pandas' sort (:func:`_info_frame`).
        On SQLite the parent tags are read on their own and matched here: SQLite joins them by
        one index search per run, as long as reading the runs; they are few.
        """
        if self.dialect == "sqlite":
            rows = self._connection.fetch(f"{_INFO_SELECT} FROM runs r WHERE {where}", params)
        else:
            rows = self._connection.fetch(
                # (key, run_uuid) is the primary key of tags: at most one parent per run.
                f"{_INFO_SELECT}, p.value FROM runs r LEFT JOIN tags p ON p.run_uuid = r.run_uuid "
                f"AND p.key = '{PARENT_TAG}' WHERE {where}",
                params,
            )
        store_runs = int(self._connection.fetch("SELECT count(*) FROM runs", {})[0][0])
        whole = _scans_whole_tables(len(rows), store_runs)
        runs = _Runs(where, params, self.dialect, whole_tables=whole)
        if self.dialect != "sqlite" or not rows:
            return rows, runs
        sql, keyed = _keyed_select("tags", "x.value", runs, (PARENT_TAG,), use_index=True)
        parents = dict(self._connection.fetch(sql, keyed))
        return [(*row, parents.get(row[0])) for row in rows], runs

    def _values(
        self, kind: KeyKind, runs: _Runs, index: pd.Index, keys: tuple[str, ...] | None
    ) -> pd.DataFrame:
        if keys is not None and not keys:
            return pd.DataFrame(index=index)
        value = f"x.key, {_VALUE_SQL.get(kind, 'x.value')}"
        chunks = self._connection.stream(*_keyed_select(kind, value, runs, keys or ()))
        return pivot_chunks(chunks, index, numeric=kind == "metrics")

    def _tags(self, runs: _Runs, index: pd.Index, selection: Selection) -> pd.DataFrame:
        if selection.tags is not None:
            return self._values("tags", runs, index, selection.tags)
        extra = ""
        extra_params: dict[str, object] = {}
        if selection.user_tags_only:
            skip, extra_params = _in_clause("x.key", BOOKKEEPING_TAGS, "b")
            extra = f"substr(x.key, 1, 7) <> 'mlflow.' AND NOT {skip}"
        sql, params = _keyed_select("tags", "x.key, x.value", runs, (), extra)
        chunks = self._connection.stream(sql, {**params, **extra_params})
        return pivot_chunks(chunks, index)

    # ------------------------------------------------------------------ keys and history

    def keys(self, experiment_ids: Sequence[str], kind: KeyKind) -> list[str]:
        """Every key of that kind among the active runs of the experiments."""
        where, params = _run_where(list(experiment_ids), [], None, self.dialect)
        rows = self._connection.fetch(
            f"SELECT DISTINCT x.key FROM {_TABLES[kind]} x "
            f"JOIN runs r ON r.run_uuid = x.run_uuid WHERE {where}",
            params,
        )
        return sorted(row[0] for row in rows)

    def existing_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Those of ``run_ids`` that are active runs in an active experiment."""
        if not run_ids:
            return []
        clause, params = _in_clause("r.run_uuid", run_ids, "r")
        rows = self._connection.fetch(
            "SELECT r.run_uuid FROM runs r JOIN experiments e "
            "ON e.experiment_id = r.experiment_id "
            f"WHERE {clause} AND r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active'",
            params,
        )
        found = {row[0] for row in rows}
        return [run_id for run_id in run_ids if run_id in found]

    def run_metric_keys(self, run_ids: Sequence[str]) -> list[str]:
        """Every metric key logged by any of the runs."""
        if not run_ids:
            return []
        clause, params = _in_clause("x.run_uuid", run_ids, "r")
        rows = self._connection.fetch(
            f"SELECT DISTINCT x.key FROM latest_metrics x WHERE {clause}", params
        )
        return sorted(row[0] for row in rows)

    def history(self, run_ids: Sequence[str], metric: str) -> pd.DataFrame:
        """Every point of ``metric`` logged by the runs, in run, step and time order."""
        clause, params = _in_clause("m.run_uuid", run_ids, "r")
        rows = self._connection.fetch(
            "SELECT m.run_uuid, m.step, m.timestamp, m.value, m.is_nan FROM metrics m "
            f"WHERE {clause} AND m.key = :metric ORDER BY m.step, m.timestamp, m.value",
            {**params, "metric": metric},
        )
        frame = pd.DataFrame(rows, columns=["run_id", "step", "timestamp_ms", "value", "is_nan"])
        if frame.empty:
            return frame.drop(columns="is_nan")
        values = frame["value"].to_numpy(dtype="float64")
        frame["value"] = np.where(frame["is_nan"].astype(bool).to_numpy(), np.nan, values)
        frame["step"] = frame["step"].astype("int64")
        frame["timestamp_ms"] = frame["timestamp_ms"].astype("int64")
        order = {run_id: position for position, run_id in enumerate(run_ids)}
        frame["_order"] = frame["run_id"].map(order)
        frame = frame.sort_values(["_order"], kind="stable").drop(columns=["_order", "is_nan"])
        return frame.reset_index(drop=True)

    def best_run_id(
        self,
        experiment_ids: Sequence[str],
        filter: str | None,
        metric: str,
        statuses: Sequence[str],
        higher_is_better: bool,
    ) -> str | None:
        """The best run ranked by one ``ORDER BY ... LIMIT 1`` (see :class:`Reader`).

        ``None`` for filters outside the translated subset and on MySQL (its text collation
        does not order run ids as Python does).
        """
        conditions = _filter.parse(filter)
        if conditions is None or self.dialect not in _FILTER_DIALECTS or not statuses:
            return None
        where, params = _run_where(list(experiment_ids), conditions, None, self.dialect)
        status_clause, status_params = _in_clause("r.status", list(statuses), "s")
        collate = ' COLLATE "C"' if self.dialect == "postgresql" else ""
        order = "DESC" if higher_is_better else "ASC"
        rows = self._connection.fetch(
            "SELECT r.run_uuid FROM runs r JOIN latest_metrics x "
            "ON x.run_uuid = r.run_uuid AND x.key = :best_key "
            f"WHERE {where} AND {status_clause} AND x.is_nan = :best_nan "
            f"ORDER BY x.value {order}, CASE WHEN r.start_time IS NULL THEN 1 ELSE 0 END, "
            f"r.start_time, r.run_uuid{collate} LIMIT 1",
            {**params, **status_params, "best_key": metric, "best_nan": False},
        )
        return str(rows[0][0]) if rows else None

    def _client(self) -> Reader:
        if self._fallback is None:
            from ._client import ClientReader

            self._fallback = ClientReader(self.uri)
        return self._fallback


# ---------------------------------------------------------------------- SQL building


@dataclass(frozen=True)
class _Runs:
    """The selected runs as SQL: a ``WHERE`` clause on ``runs r`` and its bound values."""

    where: str
    params: dict[str, object]
    dialect: str
    whole_tables: bool = False
    """Read their params, metrics and tags by scanning whole tables (see :func:`_keyed_select`)."""


def _scans_whole_tables(selected: int, store_runs: int) -> bool:
    """Whether a read of ``selected`` runs reads whole tables (:data:`WHOLE_TABLE_SHARE`)."""
    return selected * WHOLE_TABLE_SHARE >= store_runs


def _keyed_select(
    table: KeyKind,
    value: str,
    runs: _Runs,
    keys: Sequence[str],
    extra: str = "",
    *,
    use_index: bool = False,
) -> tuple[str, dict[str, object]]:
    """``SELECT x.run_uuid, <value>`` of ``keys`` (every key if empty) of the selected runs.

    With ``runs.whole_tables`` the table is read without the join to ``runs`` (on SQLite also
    without its key index unless ``use_index``, for rare keys): the pivot drops the rows of
    other runs. SQLite joins by an index search and a row fetch per run and key, several times a
    scanned row (two params of 100,000 runs: 0.6 s joined, 0.24 s scanned); PostgreSQL hashes
    the runs first (0.37 s joined, 0.25 s not).
    """
    key_clause, key_params = _in_clause("x.key", keys, "k") if keys else ("", {})
    if runs.whole_tables:
        conditions = " AND ".join(c for c in (key_clause, extra) if c) or "1 = 1"
        hint = "" if use_index or runs.dialect != "sqlite" else " NOT INDEXED"
        return (
            f"SELECT x.run_uuid, {value} FROM {_TABLES[table]} x{hint} WHERE {conditions}",
            key_params,
        )
    conditions = " AND ".join(c for c in (runs.where, key_clause, extra) if c)
    sql = (
        f"SELECT x.run_uuid, {value} FROM {_TABLES[table]} x "
        f"JOIN runs r ON r.run_uuid = x.run_uuid WHERE {conditions}"
    )
    return sql, {**runs.params, **key_params}


def _info_frame(rows: list[Any], *, nulls_first: bool) -> pd.DataFrame:
    """The run list in MLflow's order: latest start first, then by run id.

    ``ORDER BY start_time DESC`` as the database would sort it: a run without a start comes
    first on PostgreSQL (``nulls_first``) and last on SQLite and MySQL.
    """
    if not rows:
        return empty_info()
    info = pd.DataFrame(rows, columns=list(INFO_COLUMNS), dtype="object")
    info["experiment_id"] = info["experiment_id"].astype(str)
    info["start_ms"] = pd.to_numeric(info["start_ms"]).astype("float64")
    info["end_ms"] = pd.to_numeric(info["end_ms"]).astype("float64")
    info = info.sort_values(
        ["start_ms", "run_id"],
        ascending=[False, True],
        na_position="first" if nulls_first else "last",
        kind="stable",
    )
    return info.reset_index(drop=True)


def _in_clause(column: str, values: Sequence[object], prefix: str) -> tuple[str, dict[str, object]]:
    names = [f"{prefix}{position}" for position in range(len(values))]
    clause = f"{column} IN ({', '.join(':' + name for name in names)})"
    return clause, dict(zip(names, values, strict=True))


def _run_where(
    experiment_ids: Sequence[str],
    conditions: Sequence[_filter.Condition],
    run_ids: Sequence[str] | None,
    dialect: str,
) -> tuple[str, dict[str, object]]:
    """The ``WHERE`` clause (on ``runs r``) selecting the runs, and its bound values."""
    clause, params = _in_clause("r.experiment_id", [int(e) for e in experiment_ids], "e")
    clauses = ["r.lifecycle_stage = 'active'", clause]
    if run_ids is not None:
        ids_clause, ids_params = _in_clause("r.run_uuid", list(run_ids) or [""], "i")
        clauses.append(ids_clause)
        params.update(ids_params)
    for position, condition in enumerate(conditions):
        sql, values = _condition_sql(condition, f"c{position}", dialect)
        clauses.append(sql)
        params.update(values)
    return " AND ".join(clauses), params


def _condition_sql(
    condition: _filter.Condition, name: str, dialect: str
) -> tuple[str, dict[str, object]]:
    kind, key, op, value = condition.kind, condition.key, condition.op, condition.value
    if kind == "attribute" and key != "run_name":
        column = {"run_id": "r.run_uuid"}.get(key, f"r.{key}")
        return _compare(column, op, value, name, dialect)
    table = {"param": "params", "tag": "tags", "metric": "latest_metrics"}.get(kind, "tags")
    if kind == "attribute":  # run_name: MLflow compares the mlflow.runName tag
        key = RUN_NAME_TAG
    params: dict[str, object] = {f"{name}k": key}
    head = f"SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.key = :{name}k"
    if op == "IS NULL":
        return f"NOT EXISTS ({head})", params
    if op == "IS NOT NULL":
        return f"EXISTS ({head})", params
    compare, values = _compare("x.value", op, value, name, dialect)
    params.update(values)
    if kind == "metric":
        # NaN is stored as 0 with is_nan set: it satisfies only "!=".
        params[f"{name}t"] = op == "!="
        joiner = "OR" if op == "!=" else "AND"
        compare = f"({compare} {joiner} x.is_nan = :{name}t)"
    return f"EXISTS ({head} AND {compare})", params


def _compare(
    column: str, op: str, value: object, name: str, dialect: str
) -> tuple[str, dict[str, object]]:
    if op in {"IN", "NOT IN"}:
        assert isinstance(value, tuple)
        clause, params = _in_clause(column, value, f"{name}v")
        return (clause if op == "IN" else f"NOT ({clause})"), params
    params = {f"{name}v": value}
    if op == "ILIKE" and dialect != "postgresql":
        return f"lower({column}) LIKE lower(:{name}v)", params
    if op in _NUMERIC_SQL_OPS or op in {"LIKE", "ILIKE"}:
        return f"{column} {op} :{name}v", params
    raise AssertionError(f"operator {op!r} is not in the translated subset")


def _missing_experiments(
    missing: Sequence[str], deleted: set[str], active: Mapping[str, str], uri: str
) -> str:
    names = ", ".join(repr(name) for name in missing)
    gone = [name for name in missing if name in deleted]
    note = f" ({', '.join(repr(n) for n in gone)} deleted)" if gone else ""
    plural = "s" if len(missing) > 1 else ""
    return (
        f"no experiment{plural} {names}{note} in {redact_uri(uri)}; "
        f"{listing(active, 'experiments')}"
    )


def _read_failed(shown: str, error: BaseException) -> str:
    text = describe(error)
    if "no such table" in text or "does not exist" in text:
        return f"{shown} is not an MLflow tracking store ({text})"
    return f"reading {shown} failed: {text}"
