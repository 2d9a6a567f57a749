"""Batched delivery writes exactly what one-by-one delivery writes, exactly once.

Runs are written with ``EMSTRACK_DELIVERY=spool`` (they wait in the spool), the spool is copied,
and one copy is delivered run by run through MLflow's calls (``orphans.deliver``), the other in
one transaction (``batched.deliver_many``), into two stores made from the same template. Both
are read back through ``MlflowClient`` and must be equal, run ids and artifact locations aside.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import emstrack
from emstrack._delivery.batched import deliver_many, deliver_together
from emstrack._delivery.orphans import Outcome, deliver
from emstrack._delivery.spool import SpoolEntry
from helpers.servers import all_runs, snapshot

EXPERIMENT = "batched"


class Boom(RuntimeError):
    pass


def _write_varied_runs(uri: str) -> None:
    frame = pd.DataFrame({"load_kw": [0.5, 0.7, float("nan")], "pv_kw": [0.0, 1.5, 2.0]})
    for index in range(4):
        name = f"scenario-{index}"
        with emstrack.tracked_run(name, experiment=EXPERIMENT, tracking_uri=uri) as run:
            run.log_params({"index": index, "mode": "cost", "long": "x" * 7000})
            run.log_metrics({"cost": 1.5 * index, "nan": float("nan"), "big": float("inf")})
            run.log_metrics({"cost": 2.5 * index}, step=1)
            run.log_series("soc", [0.1, 0.5, 0.9])
            run.set_tags({"building": f"b{index}", "mlflow.note.content": "a note"})
            run.log_config({"index": index})
            run.log_text("hello", "notes/hello.txt")
            run.log_dataset(frame, name="household", context="optimization")
    with (
        pytest.raises(Boom),
        emstrack.tracked_run("failing", experiment=EXPERIMENT, tracking_uri=uri),
    ):
        raise Boom("no solution")
    with emstrack.tracked_run(experiment=EXPERIMENT, tracking_uri=uri) as run:
        run.log_metrics({"unnamed": 1.0})


@pytest.fixture
def two_stores(store: Any, tmp_path: Path, template_database: Path, monkeypatch: Any) -> Any:
    """The spooled runs, copied for a second store made from the same template."""
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    _write_varied_runs(store.uri)
    other_db = tmp_path / "other" / "mlflow.db"
    other_db.parent.mkdir()
    shutil.copyfile(template_database, other_db)
    other_spool = tmp_path / "other" / "spool"
    shutil.copytree(store.spool, other_spool)
    return store, f"sqlite:///{other_db}", other_spool


def _folders(spool: Path) -> list[Path]:
    return sorted(path for path in spool.iterdir() if (path / "run.jsonl").is_file())


def _by_name(spool: Path) -> dict[str, Path]:
    """The spool's entries by run name (runs started in the same millisecond sort at random)."""
    return {SpoolEntry(folder).start_event()["name"]: folder for folder in _folders(spool)}


def _comparable(uri: str, scratch: Path) -> dict[str, dict[str, Any]]:
    """Each run of the experiment by run key, without what differs by nature (ids)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = {}
    for run in all_runs(uri, EXPERIMENT):
        seen = snapshot(uri, run.info.run_id, scratch)
        seen.pop("run_id")
        seen["lifecycle"] = run.info.lifecycle_stage
        seen["user"] = run.info.user_id
        seen["latest"] = dict(run.data.metrics)
        seen["inputs"] = sorted(
            (
                dataset_input.dataset.name,
                dataset_input.dataset.digest,
                dataset_input.dataset.source_type,
                dataset_input.dataset.source,
                dataset_input.dataset.schema,
                dataset_input.dataset.profile,
                tuple((tag.key, tag.value) for tag in dataset_input.tags),
            )
            for dataset_input in client.get_run(run.info.run_id).inputs.dataset_inputs
        )
        found[run.data.tags["emstrack.run_key"]] = _nan_as_text(seen)
    return found


def _named(run: dict[str, Any]) -> dict[str, Any]:
    if "unnamed" not in run["latest"]:
        return run
    tags = {key: value for key, value in run["tags"].items() if key != "mlflow.runName"}
    return {**run, "name": "(drawn)", "tags": tags}


def _nan_as_text(value: Any) -> Any:
    """NaN compares unequal to itself: spell it out so that equal runs compare equal."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {key: _nan_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_nan_as_text(item) for item in value)
    return value


def test_a_batch_stores_what_one_by_one_delivery_stores(two_stores: Any, tmp_path: Path) -> None:
    store, other_uri, other_spool = two_stores
    one_by_one = {folder: deliver(folder, store.uri) for folder in _folders(store.spool)}
    batched = deliver_many(_folders(other_spool), other_uri)

    assert set(one_by_one.values()) == {Outcome.SENT}
    assert set(batched.values()) == {Outcome.SENT}
    assert len(batched) == 6
    assert _folders(other_spool) == []
    expected = _comparable(store.uri, tmp_path / "scratch-one")
    got = _comparable(other_uri, tmp_path / "scratch-batch")
    assert len(got) == 6
    for run in got.values():
        # MLflow draws a name for the unnamed run, a different one in each store
        if "unnamed" in run["latest"]:
            assert run["name"]
            assert run["name"] == run["tags"]["mlflow.runName"]
    for key, run in expected.items():
        assert _named(got[key]) == _named(run), key
    statuses = sorted(run["status"] for run in got.values())
    assert statuses == ["FAILED"] + ["FINISHED"] * 5


def test_sync_stores_what_one_by_one_delivery_stores(two_stores: Any, tmp_path: Path) -> None:
    """``emstrack sync`` sends a spool's finished runs together: the same runs, exactly once."""
    store, other_uri, other_spool = two_stores
    for folder in _folders(store.spool):
        assert deliver(folder, store.uri) is Outcome.SENT

    report = emstrack.sync(other_spool, tracking_uri=other_uri)

    assert len(report.sent) == 6
    assert (report.failed, report.skipped, report.quarantined) == ([], [], [])
    assert sorted(run.status for run in report.sent) == ["FAILED"] + ["FINISHED"] * 5
    assert _folders(other_spool) == []
    expected = _comparable(store.uri, tmp_path / "scratch-one")
    got = _comparable(other_uri, tmp_path / "scratch-sync")
    assert {key: _named(run) for key, run in got.items()} == {
        key: _named(run) for key, run in expected.items()
    }
    assert emstrack.sync(other_spool, tracking_uri=other_uri).sent == []


def test_a_dataset_is_shared_by_the_runs_of_a_batch(two_stores: Any) -> None:
    store, _, _ = two_stores
    deliver_many(_folders(store.spool), store.uri)
    import sqlite3

    with sqlite3.connect(store.path) as connection:
        (datasets,) = connection.execute("SELECT count(*) FROM datasets").fetchone()
        (inputs,) = connection.execute("SELECT count(*) FROM inputs").fetchone()
    assert (datasets, inputs) == (1, 4)


def test_a_run_already_stored_is_completed_not_duplicated(two_stores: Any, tmp_path: Path) -> None:
    """A deliverer killed after its commit, before removing the entries: the next one finds them."""
    store, _, _ = two_stores
    kept = tmp_path / "kept"
    shutil.copytree(store.spool, kept)
    assert set(deliver_many(_folders(store.spool), store.uri).values()) == {Outcome.SENT}
    before = _comparable(store.uri, tmp_path / "scratch-before")
    shutil.rmtree(store.spool)
    shutil.copytree(kept, store.spool)  # the same entries again, as if never removed

    again = deliver_many(_folders(store.spool), store.uri)

    assert set(again.values()) == {Outcome.SENT}
    assert len(all_runs(store.uri, EXPERIMENT)) == 6
    assert _comparable(store.uri, tmp_path / "scratch-after") == before


def test_a_batched_run_is_stored_under_its_key_and_found_by_it_again(
    store: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The run id is the run key (a primary-key look-up finds it again); a key of another form
    gets a new id and is found again by its key tag."""
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    for name in ("ours", "foreign"):
        with emstrack.tracked_run(name, experiment=EXPERIMENT) as run:
            run.log_metrics({"x": 1.0})
    named = _by_name(store.spool)
    foreign = named["foreign"].with_name(named["foreign"].name.partition("-")[0] + "-Foreign.Key")
    named["foreign"].rename(foreign)
    kept = tmp_path / "kept"
    shutil.copytree(store.spool, kept)

    first = deliver_many(_folders(store.spool), store.uri)
    shutil.rmtree(store.spool)
    shutil.copytree(kept, store.spool)  # a deliverer killed after its commit
    again = deliver_many(_folders(store.spool), store.uri)

    assert set(first.values()) == set(again.values()) == {Outcome.SENT}
    runs = {run.info.run_name: run for run in all_runs(store.uri, EXPERIMENT)}
    assert sorted(runs) == ["foreign", "ours"]
    ours = runs["ours"]
    assert ours.info.run_id == ours.data.tags["emstrack.run_key"] == named["ours"].name[14:]
    assert runs["foreign"].data.tags["emstrack.run_key"] == "Foreign.Key"
    assert runs["foreign"].info.run_id != "Foreign.Key"


def test_an_entry_held_elsewhere_is_busy_and_the_others_are_sent(two_stores: Any) -> None:
    store, _, _ = two_stores
    folders = _folders(store.spool)
    held = SpoolEntry(folders[0])
    assert held.acquire(timeout=0)
    try:
        outcomes = deliver_many(folders, store.uri)
    finally:
        held.release()
    assert outcomes[folders[0]] is Outcome.BUSY
    assert {outcomes[folder] for folder in folders[1:]} == {Outcome.SENT}
    assert len(all_runs(store.uri, EXPERIMENT)) == 5
    assert deliver_many([folders[0]], store.uri) == {folders[0]: Outcome.SENT}
    assert len(all_runs(store.uri, EXPERIMENT)) == 6


def test_nested_and_partly_shipped_runs_go_one_by_one(store: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    with emstrack.tracked_run("parent", experiment=EXPERIMENT) as parent:
        with emstrack.tracked_run("child", experiment=EXPERIMENT) as child:
            child.log_metrics({"x": 1.0})
        parent.flush()  # partly shipped: has a run id and a saved offset
        parent.log_metrics({"y": 2.0})
    with emstrack.tracked_run("plain", experiment=EXPERIMENT) as plain:
        plain.log_metrics({"z": 3.0})

    outcomes = deliver_many(_folders(store.spool), store.uri)

    assert set(outcomes.values()) == {Outcome.SENT}
    runs = {run.info.run_name: run for run in all_runs(store.uri, EXPERIMENT)}
    assert sorted(runs) == ["child", "parent", "plain"]
    assert runs["child"].data.tags["mlflow.parentRunId"] == runs["parent"].info.run_id
    assert runs["parent"].data.metrics == {"y": 2.0}
    assert {run.info.status for run in runs.values()} == {"FINISHED"}


def test_a_run_mlflow_refuses_goes_one_by_one_and_is_kept(store: Any, monkeypatch: Any) -> None:
    """A record MLflow's validators refuse takes the usual path, with its usual outcome."""
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    for name in ("good-1", "good-2"):
        with emstrack.tracked_run(name, experiment=EXPERIMENT) as run:
            run.log_metrics({"x": 1.0})
    named = _by_name(store.spool)
    folders = [named["good-1"], named["good-2"]]
    # A negative timestamp: what a hand-edited or foreign spool line could hold.
    events = folders[0] / "run.jsonl"
    lines = events.read_text().splitlines()
    lines.insert(1, '{"e":"metrics","metrics":[["bad",1.0,0,-5]]}')
    events.write_text("\n".join(lines) + "\n")

    outcomes = deliver_many(folders, store.uri)

    assert outcomes[folders[1]] is Outcome.SENT
    assert outcomes[folders[0]] is Outcome.KEPT
    assert SpoolEntry(folders[0]).exists()
    assert not SpoolEntry(folders[1]).exists()
    runs = {run.info.run_name: run for run in all_runs(store.uri, EXPERIMENT)}
    assert runs["good-2"].info.status == "FINISHED"
    assert runs["good-2"].data.metrics == {"x": 1.0}
    # One by one, the run was created before MLflow refused the record; it stays RUNNING
    # with its entry kept in the spool (for `emstrack sync` after the line is fixed).
    assert runs["good-1"].info.status == "RUNNING"
    store.client.set_terminated(runs["good-1"].info.run_id, "FAILED")
    shutil.rmtree(folders[0])


@pytest.mark.parametrize(
    "point", ['["x",true,0,5]', '["x",1.0,0,-5]'], ids=["bool value", "negative timestamp"]
)
def test_a_known_metric_name_does_not_let_a_bad_value_through(
    store: Any, monkeypatch: Any, point: str
) -> None:
    """The names MLflow accepted are remembered; each value is still checked as MLflow does."""
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    for name in ("known", "good", "odd"):
        with emstrack.tracked_run(name, experiment=EXPERIMENT) as run:
            run.log_metrics({"x": 1.0})
    named = _by_name(store.spool)
    known, folders = named["known"], [named["good"], named["odd"]]
    assert deliver_many([known], store.uri)[known] is Outcome.SENT
    events = folders[1] / "run.jsonl"
    lines = events.read_text().splitlines()
    lines.insert(1, '{"e":"metrics","metrics":[' + point + "]}")
    events.write_text("\n".join(lines) + "\n")

    outcomes, left = deliver_together(folders, store.uri)

    assert outcomes == {folders[0]: Outcome.SENT}
    assert left == [folders[1]]  # for the one-by-one path, which says why
    assert SpoolEntry(folders[1]).exists()
    assert {run.info.run_name for run in all_runs(store.uri, EXPERIMENT)} == {"known", "good"}
    shutil.rmtree(folders[1])


def test_a_known_param_or_tag_name_still_has_its_value_cut_as_mlflow_cuts_it(
    store: Any, monkeypatch: Any
) -> None:
    """Names MLflow accepted are remembered; a value past MLflow's limit is still truncated."""
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH

    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    for name in ("known", "long"):
        with emstrack.tracked_run(name, experiment=EXPERIMENT) as run:
            run.log_params({"p": "short"})
            run.set_tags({"t": "short"})
    named = _by_name(store.spool)
    assert deliver_many([named["known"]], store.uri)[named["known"]] is Outcome.SENT
    # Longer than emstrack itself logs them (it cuts long params): a foreign spool line.
    events = named["long"] / "run.jsonl"
    lines = events.read_text().splitlines()
    lines.insert(1, '{"e":"params","params":{"p":"' + "x" * (MAX_PARAM_VAL_LENGTH + 1) + '"}}')
    lines.insert(1, '{"e":"tags","tags":{"t":"' + "y" * (MAX_TAG_VAL_LENGTH + 1) + '"}}')
    events.write_text("\n".join(line for line in lines if '"short"' not in line) + "\n")

    assert deliver_many([named["long"]], store.uri)[named["long"]] is Outcome.SENT

    runs = {run.info.run_name: run for run in all_runs(store.uri, EXPERIMENT)}
    assert runs["known"].data.params["p"] == "short"
    assert runs["long"].data.params["p"] == "x" * MAX_PARAM_VAL_LENGTH
    assert runs["long"].data.tags["t"] == "y" * MAX_TAG_VAL_LENGTH


def test_flush_delivers_runs_left_in_the_spool_together(store: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    for index in range(5):
        with emstrack.tracked_run(f"r{index}", experiment=EXPERIMENT) as run:
            run.log_metrics({"x": float(index)})
    assert len(_folders(store.spool)) == 5
    assert all_runs(store.uri, EXPERIMENT) == []

    assert emstrack.flush() is True

    assert _folders(store.spool) == []
    runs = all_runs(store.uri, EXPERIMENT)
    assert sorted(run.data.metrics["x"] for run in runs) == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.slow
def test_a_batch_on_postgresql_stores_what_one_by_one_delivery_stores(
    store: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from helpers.postgres import PostgresCluster

    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    with PostgresCluster() as pg:
        uris = {kind: pg.create_database(f"batched_{kind}") for kind in ("one", "batch")}
        _write_varied_runs(uris["one"])
        spools = {"one": store.spool, "batch": tmp_path / "spool-batch"}
        shutil.copytree(store.spool, spools["batch"])
        # The runs name their store without credentials; deliver each copy to its own database.
        one_by_one = {folder: deliver(folder, uris["one"]) for folder in _folders(spools["one"])}
        batched = deliver_many(_folders(spools["batch"]), uris["batch"])

        assert set(one_by_one.values()) == {Outcome.SENT}
        assert set(batched.values()) == {Outcome.SENT}
        expected = _comparable(uris["one"], tmp_path / "scratch-one")
        got = _comparable(uris["batch"], tmp_path / "scratch-batch")
        assert len(got) == len(expected) == 6
        for key, run in expected.items():
            assert _named(got[key]) == _named(run), key


def test_a_spooled_runs_id_delivers_it(store: Any, monkeypatch: Any) -> None:
    """In spool delivery an ended run waits; asking for its id delivers it, as a read does."""
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    with emstrack.tracked_run("waiting", experiment=EXPERIMENT) as run:
        run.log_metrics({"x": 1.0})
    assert len(_folders(store.spool)) == 1

    run_id = run.run_id

    assert run_id is not None
    assert store.client.get_run(run_id).data.metrics == {"x": 1.0}
    assert _folders(store.spool) == []


@pytest.mark.parametrize(
    ("artifact_uri", "folder"),
    [
        ("/srv/mlruns/1/abc/artifacts", "/srv/mlruns/1/abc/artifacts"),
        ("file:///srv/mlruns/1/abc/artifacts", "/srv/mlruns/1/abc/artifacts"),
        ("file://localhost/srv/a%20b/artifacts", "/srv/a b/artifacts"),
        ("file://elsewhere/srv/artifacts", None),
        ("mlflow-artifacts:/1/abc/artifacts", None),
        ("s3://bucket/1/abc/artifacts", None),
        ("relative/artifacts", None),
    ],
)
def test_only_local_artifact_roots_are_copied_straight(artifact_uri: str, folder: Any) -> None:
    from emstrack._delivery.batched import _local_folder

    found = _local_folder(artifact_uri)
    assert (None if found is None else found.as_posix()) == folder


@pytest.mark.parametrize(
    ("artifact_dir", "target"),
    [
        (None, "/root"),
        ("", "/root"),
        ("notes", "/root/notes"),
        ("a/b", "/root/a/b"),
        ("../escape", None),
        ("a/../../escape", None),
        ("/absolute", None),
        ("a\\..\\b", None),
    ],
)
def test_a_path_mlflow_would_question_goes_through_its_repository(
    artifact_dir: Any, target: Any
) -> None:
    from emstrack._delivery.batched import _local_target

    found = _local_target(Path("/root"), artifact_dir)
    assert (None if found is None else found.as_posix()) == target


def test_sqlite_driver_inserts_match_sqlalchemys_and_leave_defaults_to_it(
    tmp_path: Path,
) -> None:
    import datetime

    import sqlalchemy as sa

    from emstrack._delivery.batched import _insert

    metadata = sa.MetaData()
    table = sa.Table(
        "typed",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("flag", sa.Boolean),
        sa.Column("at", sa.DateTime),
        sa.Column("kind", sa.String(10), default="made"),
    )
    rows = [
        {"id": 1, "flag": True, "at": datetime.datetime(2026, 1, 2, 3, 4), "kind": "given"},
        {"id": 2, "flag": False, "at": datetime.datetime(2026, 5, 6, 7, 8), "kind": "other"},
    ]
    without_kind = [{"id": 3, "flag": True, "at": datetime.datetime(2026, 9, 9)}]
    stored = {}
    for how in ("driver", "sqlalchemy"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / how}.db")
        metadata.create_all(engine)
        with engine.begin() as connection:
            if how == "driver":
                _insert(connection, table, rows)
                _insert(connection, table, without_kind)
            else:
                connection.execute(table.insert(), rows)
                connection.execute(table.insert(), without_kind)
        with engine.connect() as connection:
            stored[how] = connection.execute(table.select().order_by(table.c.id)).all()
        engine.dispose()
    assert stored["driver"] == stored["sqlalchemy"]
    assert [row.kind for row in stored["driver"]] == ["given", "other", "made"]
    assert stored["driver"][0].at == datetime.datetime(2026, 1, 2, 3, 4)
