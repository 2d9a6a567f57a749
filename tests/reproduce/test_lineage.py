"""Data lineage: the household data a run loads becomes an MLflow dataset input."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

import emstrack
from emstrack import ems, tracked_optimization, tracked_run
from emstrack._capture import datasets
from emstrack._capture.digest import frame_digest
from helpers.reproduce import BUILDING, run_pipeline_a
from helpers.servers import free_port


def inputs_of(store, run_id):
    """(name, digest, source, profile, context) of each dataset input, read via MlflowClient."""
    found = []
    for item in store.client.get_run(run_id).inputs.dataset_inputs:
        context = {tag.key: tag.value for tag in item.tags}.get("mlflow.data.context")
        dataset = item.dataset
        found.append(
            (
                dataset.name,
                dataset.digest,
                json.loads(dataset.source),
                json.loads(dataset.profile),
                context,
            )
        )
    return found


def test_pipeline_a_run_records_the_sample_it_read(store, tmp_path):
    run_id = run_pipeline_a(tmp_path)
    [(name, digest, source, profile, context)] = inputs_of(store, run_id)
    hourly = ems.load_building(BUILDING).hourly
    full = frame_digest(hourly)
    assert name == f"{BUILDING} (bundled sample)"
    assert digest == full[:32]
    assert profile["sha256"] == full
    assert profile["num_rows"] == len(hourly) == 672
    assert profile["time_start"] == hourly.index.min().isoformat()
    assert profile["time_end"] == hourly.index.max().isoformat()
    sample = "emstrack/ems/data/households.csv.gz"
    assert source == {"uri": f"bundled sample: {sample} (emstrack {emstrack.__version__})"}
    assert context == "optimization"
    assert not datasets.is_patched()


def test_nothing_is_captured_outside_a_run(store):
    assert not datasets.is_patched()
    with tracked_run("open"):
        assert datasets.is_patched()
        ems.load_building(BUILDING)
    assert not datasets.is_patched()
    ems.load_building(BUILDING)  # no run: nothing recorded, nothing raised


def test_a_user_dataframe_and_a_csv_path_name_their_source(store, tmp_path):
    frame = ems.load_building(BUILDING).hourly.tz_convert("UTC")
    path = tmp_path / "households.csv"
    table = frame.reset_index(drop=True)
    table.insert(0, "timestamp_utc", frame.index.strftime("%Y-%m-%dT%H:%M:%SZ"))
    table.to_csv(path, index=False)
    with tracked_run("two sources") as run:
        ems.load_building("custom", frame)
        ems.load_building("custom", str(path))
        ems.load_building("custom", frame)  # the same data again: recorded once
    found = {name: (digest, source) for name, digest, source, _, _ in inputs_of(store, run.run_id)}
    assert set(found) == {"custom (user DataFrame)", "custom (households.csv)"}
    assert found["custom (user DataFrame)"][1] == {"tags": {"emstrack.source": "user DataFrame"}}
    assert found["custom (households.csv)"][1] == {"uri": str(path.resolve())}
    # Both hold the same hourly values: the digest says so.
    assert found["custom (user DataFrame)"][0] == found["custom (households.csv)"][0]


def test_pipeline_b_halves_are_training_and_optimization(store, tmp_path):
    learn = tracked_optimization(run_name="learning", metrics=ems.UsageLearning.figures)(
        ems.learn_device_usage
    )
    schedule = tracked_optimization(run_name="scheduling", metrics=ems.LearnedSchedule.figures)(
        ems.schedule_learned_devices
    )
    with tracked_run("pipeline-b", experiment="pipeline-b"):
        learning = learn(BUILDING, 3)
        schedule(BUILDING, learning, 1)
    emstrack.flush()
    children = {r.info.run_name: r.info.run_id for r in store.runs("pipeline-b")}
    [learned] = inputs_of(store, children["learning"])
    [scheduled] = inputs_of(store, children["scheduling"])
    assert learned[4] == "training"
    assert scheduled[4] == "optimization"
    assert learned[1] == scheduled[1]
    assert inputs_of(store, children["pipeline-b"]) == []


def test_learn_and_schedule_in_one_run_serves_both(store):
    with tracked_run("b in one run") as run:
        ems.learn_and_schedule(BUILDING, training_days=2, optimization_days=1)
    [(_, _, _, _, context)] = inputs_of(store, run.run_id)
    assert context == "training,optimization"


def test_log_dataset_for_a_users_own_frame(store):
    frame = pd.DataFrame(
        {"load_kwh": [1.0, 2.0, 3.0]},
        index=pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC"),
    )
    with tracked_run("own") as run:
        run.log_dataset(frame, "my forecast", context="training")
    [(name, digest, source, profile, context)] = inputs_of(store, run.run_id)
    assert (name, digest, context) == ("my forecast", frame_digest(frame)[:32], "training")
    assert source == {"tags": {"emstrack.source": "user DataFrame"}}
    assert profile["num_rows"] == 3
    assert profile["time_start"] == "2026-01-01T00:00:00+00:00"


def test_datasets_survive_an_outage_and_replay_once(store, monkeypatch):
    monkeypatch.delenv("EMSTRACK_STRICT", raising=False)
    down = f"http://127.0.0.1:{free_port()}"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with tracked_run("while down", experiment="outage", tracking_uri=down):
            ems.load_building(BUILDING)
    assert len(store.spooled()) == 1
    report = emstrack.sync(tracking_uri=store.uri)
    assert [run.name for run in report.sent] == ["while down"]
    [run] = store.runs("outage")
    assert [item[0] for item in inputs_of(store, run.info.run_id)] == [
        f"{BUILDING} (bundled sample)"
    ]
    # Shipping the same event again (an interrupted replay) adds no second input.
    from emstrack._delivery.store import get_store

    event = datasets.dataset_event(
        ems.load_building(BUILDING).hourly,
        f"{BUILDING} (bundled sample)",
        "bundled sample",
        "optimization",
    )
    get_store(store.uri).log_inputs(run.info.run_id, [event])
    assert len(inputs_of(store, run.info.run_id)) == 1


def test_a_failing_record_is_a_problem_of_the_run(store):
    """A household object that cannot be digested is the run's problem (raised when strict)."""

    class Odd:
        building_id = "odd"
        hourly = None  # no frame: the digest fails

    with pytest.raises(emstrack.TrackingError, match="household data"), tracked_run("odd"):
        datasets._observe(Odd(), None, None)


def test_a_file_changed_between_runs_gets_its_new_digest(store, tmp_path):
    """Digests are remembered per building and file, and only while the file is unchanged."""
    frame = ems.load_building(BUILDING).hourly.tz_convert("UTC")
    path = tmp_path / "households.csv"

    def write(scale: float) -> None:
        table = frame.reset_index(drop=True) * scale
        table.insert(0, "timestamp_utc", frame.index.strftime("%Y-%m-%dT%H:%M:%SZ"))
        table.to_csv(path, index=False)

    def digest_of_a_run() -> str:
        with tracked_run("from a file") as run:
            loaded = ems.load_building("custom", str(path))
        [(_, digest, _, profile, _)] = inputs_of(store, run.run_id)
        assert profile["sha256"] == frame_digest(loaded.hourly)
        return digest

    write(1.0)
    first = digest_of_a_run()
    assert digest_of_a_run() == first
    write(2.0)
    assert digest_of_a_run() != first


def test_a_remembered_description_is_the_one_the_frame_would_get():
    """Schema and profile are remembered per digest and index dtype: the same instants in
    another time zone keep their own profile times, and a remembered event equals a fresh one."""
    from emstrack._capture import dataset_event as events

    berlin = ems.load_building(BUILDING).hourly
    utc = berlin.tz_convert("UTC")
    assert frame_digest(berlin) == frame_digest(utc)
    events._descriptions.clear()
    first = json.loads(datasets.dataset_event(berlin, "b", "s")["profile"])
    other = json.loads(datasets.dataset_event(utc, "b", "s")["profile"])
    assert first["time_start"] == berlin.index.min().isoformat()
    assert other["time_start"] == utc.index.min().isoformat()
    assert first["time_start"] != other["time_start"]
    remembered = datasets.dataset_event(berlin, "b", "s", "optimization")
    events._descriptions.clear()
    assert remembered == datasets.dataset_event(berlin, "b", "s", "optimization")
