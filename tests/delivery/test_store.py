"""The MLflow-facing store: URIs, batch limits, the probe, outages, retries."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emstrack import StoreUnavailableError
from emstrack._delivery.store import (
    HTTP_MAX_RETRIES,
    MAX_BATCH_BYTES,
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    Store,
    get_store,
    redact_uri,
    split_batches,
    sqlite_path,
)
from helpers.locks import holding_sqlite_lock


class TestUris:
    @pytest.mark.parametrize(
        ("uri", "redacted"),
        [
            ("http://user:pw@host:5000/path", "http://host:5000/path"),
            ("https://token@mlflow.example.org", "https://mlflow.example.org"),
            ("https://u:p@ss@host", "https://host"),
            ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
            ("postgresql://ems:secret@db:5432/mlflow", "postgresql://db:5432/mlflow"),
            ("databricks", "databricks"),
        ],
    )
    def test_redact_uri_drops_credentials(self, uri, redacted):
        """User names and passwords never survive redact_uri; the rest is unchanged."""
        assert redact_uri(uri) == redacted

    @pytest.mark.parametrize(
        ("uri", "path"),
        [
            ("sqlite:///mlflow.db", Path("mlflow.db")),
            ("sqlite:///runs/m.db", Path("runs/m.db")),
            ("sqlite:////abs/dir/m.db", Path("/abs/dir/m.db")),
            ("sqlite:///:memory:", None),
            ("sqlite://", None),
            ("http://localhost:5000", None),
            ("postgresql://db/mlflow", None),
        ],
    )
    def test_sqlite_path(self, uri, path):
        """The database file of a sqlite URI, relative or absolute; None for other stores."""
        assert sqlite_path(uri) == path


def batch_bytes(batch) -> int:
    """The JSON size of a log_batch request for ``batch``, as the REST client would send it."""
    return len(
        json.dumps(
            {
                "run_id": "0" * 32,
                "params": [{"key": k, "value": v} for k, v in batch.params],
                "tags": [{"key": k, "value": v} for k, v in batch.tags],
                "metrics": [
                    {"key": k, "value": v, "step": s, "timestamp": t}
                    for k, v, s, t in batch.metrics
                ],
            }
        ).encode()
    )


class TestSplitBatches:
    def test_limits_on_counts(self):
        """250 params, 250 tags and 2,500 metrics split into requests within MLflow's counts."""
        params = [(f"p{i}", "v") for i in range(250)]
        tags = [(f"t{i}", "v") for i in range(250)]
        metrics = [(f"m{i}", 1.0, i, 1) for i in range(2500)]
        batches = list(split_batches(params, metrics, tags))
        assert all(len(b.params) <= MAX_PARAMS_PER_BATCH for b in batches)
        assert all(len(b.tags) <= MAX_TAGS_PER_BATCH for b in batches)
        assert all(len(b.metrics) <= MAX_METRICS_PER_BATCH for b in batches)
        assert all(
            len(b.params) + len(b.tags) + len(b.metrics) <= MAX_ENTITIES_PER_BATCH for b in batches
        )
        assert [p for b in batches for p in b.params] == params
        assert [t for b in batches for t in b.tags] == tags
        assert [m for b in batches for m in b.metrics] == metrics

    def test_large_values_split_by_size(self):
        """100 params of 6,000 characters and 100 tags of 8,000 do not fit one 1 MB request."""
        params = [(f"p{i}", "x" * 6000) for i in range(100)]
        tags = [(f"t{i}", "y" * 8000) for i in range(100)]
        batches = list(split_batches(params, [], tags))
        assert len(batches) > 1
        assert all(batch_bytes(b) <= 1_000_000 for b in batches)
        assert [p for b in batches for p in b.params] == params
        assert [t for b in batches for t in b.tags] == tags

    def test_nothing_to_send_is_no_request(self):
        """No entities, no batch."""
        assert list(split_batches([], [], [])) == []

    @settings(max_examples=60, deadline=None)
    @given(
        params=st.integers(0, 260),
        tags=st.integers(0, 260),
        metrics=st.integers(0, 2600),
        param_size=st.sampled_from([1, 500, 6000]),
        tag_size=st.sampled_from([1, 3000, 8000]),
        key_size=st.sampled_from([1, 250]),
    )
    def test_every_split_respects_every_limit(
        self, params, tags, metrics, param_size, tag_size, key_size
    ):
        """Any mix splits into requests within all limits, nothing lost or reordered."""
        key = "k" * key_size
        p = [(f"{key}{i}", "v" * param_size) for i in range(params)]
        t = [(f"{key}{i}", "w" * tag_size) for i in range(tags)]
        m = [(f"{key}{i}", 0.5, i, 1_700_000_000_000) for i in range(metrics)]
        batches = list(split_batches(p, m, t))
        for b in batches:
            assert len(b.params) <= MAX_PARAMS_PER_BATCH
            assert len(b.tags) <= MAX_TAGS_PER_BATCH
            assert len(b.metrics) <= MAX_METRICS_PER_BATCH
            assert 0 < len(b.params) + len(b.tags) + len(b.metrics) <= MAX_ENTITIES_PER_BATCH
            assert batch_bytes(b) <= 1_000_000
        assert [x for b in batches for x in b.params] == p
        assert [x for b in batches for x in b.tags] == t
        assert [x for b in batches for x in b.metrics] == m
        assert MAX_BATCH_BYTES < 1_000_000


class TestOutages:
    def test_one_store_object_per_uri(self):
        """Every run in the process shares a store's outage state."""
        assert get_store("sqlite:////tmp/a.db") is get_store("sqlite:////tmp/a.db")
        assert get_store("sqlite:////tmp/a.db") is not get_store("sqlite:////tmp/b.db")

    def test_down_store_fails_fast_without_probing(self):
        """A store marked down raises at once with the reason, for the retry window."""
        store = Store("http://127.0.0.1:9")
        store.mark_down("ConnectionError: refused")
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"refused\); not retried for up to 10 s"):
            store.ensure_available()
        assert time.monotonic() - began < 0.1
        store.mark_up()
        assert not store.is_down()

    def test_refused_connection_marks_the_store_down(self, tmp_path):
        """An HTTP store nobody listens on fails the probe and is marked down."""
        from helpers.servers import free_port

        store = Store(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(StoreUnavailableError, match="unavailable"):
            store.ensure_available()
        assert store.is_down()

    def test_locked_sqlite_store_is_busy_not_down(self, store):
        """BEGIN EXCLUSIVE held by another process: the probe passes (busy is not down)."""
        with holding_sqlite_lock(store.path):
            probed = Store(store.uri)
            probed.ensure_available()
            assert not probed.is_down()

    @pytest.mark.slow  # ~20-60 s: in the slow suite (CI runs it), keeping the default under 10 min
    def test_store_locked_past_the_budget_is_marked_down(self, store, monkeypatch):
        """A lock held for the whole budget: the write fails and only then is the store down."""
        import emstrack._delivery.store as store_module

        monkeypatch.setattr(store_module, "LOCK_BUDGET_S", 0.3)
        probed = Store(store.uri)
        assert probed.client is not None  # connected before the lock is taken
        with holding_sqlite_lock(store.path):
            with pytest.raises(Exception, match="database is locked"):
                probed.experiment_id("locked-out")
            assert probed.is_down()

    def test_unopenable_sqlite_store_is_down(self, tmp_path):
        """A database file that is not a database fails the probe and is marked down."""
        database = tmp_path / "garbage.db"
        database.write_bytes(b"this is not a sqlite database" * 100)
        probed = Store(f"sqlite:///{database}")
        with pytest.raises(StoreUnavailableError, match="not a database"):
            probed.ensure_available()
        assert probed.is_down()

    def test_new_sqlite_store_passes_the_probe(self, tmp_path):
        """A database that does not exist yet is not an outage: it gets created."""
        Store(f"sqlite:///{tmp_path / 'new' / 'm.db'}").ensure_available()


class TestCalls:
    def test_database_is_locked_is_retried(self):
        """A write that meets "database is locked" is tried again until it succeeds."""
        attempts = []

        def flaky() -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise sqlite3.OperationalError("database is locked")
            return "written"

        store = Store("sqlite:////tmp/unused.db")
        assert store.call(flaky) == "written"
        assert len(attempts) == 3
        assert not store.is_down()

    def test_other_errors_are_not_retried(self):
        """A bad request fails at once and does not mark the store down."""
        attempts = []

        def invalid() -> None:
            attempts.append(1)
            raise ValueError("invalid param")

        store = Store("sqlite:////tmp/unused.db")
        with pytest.raises(ValueError, match="invalid param"):
            store.call(invalid)
        assert len(attempts) == 1
        assert not store.is_down()

    def test_connectivity_errors_mark_the_store_down(self):
        """A refused connection during a call marks the store down for later runs."""

        def refused() -> None:
            raise ConnectionError("Connection refused")

        store = Store("http://127.0.0.1:9")
        with pytest.raises(ConnectionError):
            store.call(refused)
        assert store.is_down()

    def test_mlflow_http_retries_are_capped_only_inside_store_calls(self, monkeypatch):
        """Inside a store call MLflow retries briefly; other MLflow calls keep their settings."""
        from mlflow.environment_variables import (
            MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
            MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        )

        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
        store = Store("http://127.0.0.1:9")
        assert store.client is not None
        inside = store.call(
            lambda: (
                MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(),
                MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get(),
            )
        )
        assert inside == (HTTP_MAX_RETRIES, 1)
        assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 5
        assert MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 2
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        assert store.call(MLFLOW_HTTP_REQUEST_MAX_RETRIES.get) == 0


def test_a_constraint_race_reported_over_http_is_not_a_rejection():
    """Two runs creating one dataset race in MLflow's check-then-insert: retry, not drop."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_PARAMETER_VALUE

    from emstrack._delivery.store import is_race, is_rejection

    race = MlflowException(
        "API request to endpoint /api/2.0/mlflow/runs/log-inputs failed with error code 400 "
        '!= 200. Response body: \'{"error_code": "BAD_REQUEST", "message": '
        '"(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, '
        "datasets.name, datasets.digest\"}'",
        error_code=BAD_REQUEST,
    )
    invalid = MlflowException("Invalid experiment name", error_code=INVALID_PARAMETER_VALUE)
    assert is_race(race)
    assert not is_rejection(race)
    assert not is_race(invalid)
    assert is_rejection(invalid)
