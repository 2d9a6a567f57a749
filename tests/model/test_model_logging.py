"""Logging and saving: runs, registry versions and aliases, shipped data, requirements, errors."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
import yaml

import emstrack
from emstrack.ems import load_household_data, optimize_building
from emstrack.model import ModelConfig, log_optimization_model, save_optimization_model
from emstrack.schemas import BatterySettings, OptimizationParams
from helpers.models import assert_close

R1, R3 = "DE_KN_residential1", "DE_KN_residential3"


def test_registry_versions_and_aliases_round_trip(store):
    """Two logs give versions 1 and 2; each alias loads its own version's configuration."""
    small = ModelConfig(battery=BatterySettings(capacity_kwh=4.0))
    first = log_optimization_model(registered_model_name="ems-registry")
    second = log_optimization_model(small, registered_model_name="ems-registry")
    assert (first.registered_model_version, second.registered_model_version) == (1, 2)
    client = store.client
    client.set_registered_model_alias("ems-registry", "champion", "1")
    client.set_registered_model_alias("ems-registry", "challenger", "2")
    assert client.get_model_version_by_alias("ems-registry", "champion").version == 1
    assert client.get_model_version_by_alias("ems-registry", "challenger").version == 2
    assert client.get_registered_model("ems-registry").aliases == {
        "champion": 1,
        "challenger": 2,
    }
    row = pd.DataFrame([{"building_id": R1, "n_days": 1}])
    champion = mlflow.pyfunc.load_model("models:/ems-registry@champion").predict(row)
    challenger = mlflow.pyfunc.load_model("models:/ems-registry@challenger").predict(row)
    for predicted, battery in ((champion, BatterySettings()), (challenger, small.battery)):
        expected = optimize_building(OptimizationParams(building_id=R1, battery=battery))
        assert_close(float(predicted["predicted_cost"][0]), expected.metrics.total_cost)
    assert float(champion["predicted_cost"][0]) != float(challenger["predicted_cost"][0])


def test_outside_a_run_a_run_is_created_with_the_configuration_as_params(store):
    """No active run: one FINISHED run named after the model, params from the config."""
    info = log_optimization_model({"solver": "highs", "battery": {"capacity_kwh": 6}})
    (run,) = store.runs()
    assert run.info.run_id == info.run_id
    assert run.info.run_name == "ems_optimization_model"
    assert run.info.status == "FINISHED"
    assert run.data.params["battery.capacity_kwh"] == "6"
    assert run.data.params["solver"] == "highs"
    assert emstrack.active_run() is None
    assert mlflow.active_run() is None
    assert [o.model_id for o in run.outputs.model_outputs] == [info.model_id]


def test_background_mode_attaches_to_the_run(store, monkeypatch):
    """With EMSTRACK_BACKGROUND=1 the model still lands in the caller's run."""
    monkeypatch.setenv("EMSTRACK_BACKGROUND", "1")
    with emstrack.tracked_run("background") as run:
        run.log_metrics({"before": 1.0})
        info = log_optimization_model(name="bg_model")
    emstrack.flush()
    recorded = store.client.get_run(run.run_id)
    assert info.run_id == run.run_id
    assert recorded.data.metrics == {"before": 1.0}
    assert [o.model_id for o in recorded.outputs.model_outputs] == [info.model_id]
    assert store.client.get_logged_model(info.model_id).name == "bg_model"


def test_saved_model_pins_requirements_and_has_an_optional_column_signature(store, tmp_path):
    """Requirements are the installed versions; optional columns are optional; an example."""
    path = save_optimization_model({"solver": "highs"}, tmp_path / "model")
    requirements = (path / "requirements.txt").read_text().split()
    installed = {
        name: importlib.metadata.version(name)
        for name in ("mlflow", "pandas", "numpy", "pulp", "pydantic", "cloudpickle", "highspy")
    }
    assert requirements[0] == f"emstrack=={emstrack.__version__}"
    for name, version in installed.items():
        assert f"{name}=={version}" in requirements
    assert not any(r.startswith("pyarrow") for r in requirements)
    meta = yaml.safe_load((path / "MLmodel").read_text())
    columns = {c["name"]: c for c in json.loads(meta["signature"]["inputs"])}
    assert {name: c["required"] for name, c in columns.items()} == {
        "building_id": True,
        "n_days": True,
        "mode": False,
        "battery_enabled": False,
        "ev_enabled": False,
        "start_day": False,
    }
    assert (columns["building_id"]["type"], columns["n_days"]["type"]) == ("string", "long")
    serving = json.loads((path / "serving_input_example.json").read_text())
    assert serving["dataframe_split"]["columns"][:2] == ["building_id", "n_days"]
    assert meta["metadata"]["emstrack_config"]["solver"] == "highs"
    shipped = json.loads((path / "artifacts" / "model_config.json").read_text())
    assert ModelConfig.model_validate(shipped) == ModelConfig(solver="highs")


def test_user_data_is_shipped_inside_the_model(store, tmp_path):
    """A CSV file and a DataFrame are copied in: the model predicts after the source is gone."""
    sample = load_household_data()
    table = pd.concat(
        [
            sample[b].days_frame(0, 4).tz_convert("UTC").rename_axis("timestamp_utc")
            for b in (R1, R3)
        ],
        keys=[R1, R3],
        names=["building_id"],
    ).reset_index()
    source = tmp_path / "two_buildings.csv"
    table.to_csv(source, index=False)
    rows = [{"building_id": R3, "n_days": 2, "start_day": 1}, {"building_id": R1, "n_days": 1}]
    expected = [
        optimize_building(
            OptimizationParams(building_id=row["building_id"], n_days=row["n_days"]),
            data=source,
            start_day=int(row.get("start_day", 0)),
        ).metrics.total_cost
        for row in rows
    ]
    from_file = save_optimization_model(None, tmp_path / "from_file", data=source)
    from_frame = save_optimization_model(None, tmp_path / "from_frame", data=pd.read_csv(source))
    source.rename(tmp_path / "moved.csv")
    assert (from_file / "artifacts" / "two_buildings.csv").is_file()
    for path in (from_file, from_frame):
        predicted = mlflow.pyfunc.load_model(str(path)).predict(pd.DataFrame(rows))
        for got, want in zip(predicted["predicted_cost"], expected, strict=True):
            assert_close(float(got), want)
        outside = mlflow.pyfunc.load_model(str(path)).predict(
            pd.DataFrame([{"building_id": R1, "n_days": 1, "start_day": 4}])
        )
        assert "days 4..4 are outside the data" in outside["error"][0]
        assert "has 4 days" in outside["error"][0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"battery": {"capacity_kwh": -1}}}, r"battery\.capacity_kwh: Input should"),
        ({"config": {"resolution_minutes": 7}}, "resolution_minutes: .*must divide 60"),
        ({"config": {"colour": "red"}}, "colour: Extra inputs are not permitted"),
        ({"data": "no/such/file.parquet"}, "data: no file or folder at"),
        ({"optimizer": "no_such_module_xyz:run"}, "cannot import module 'no_such_module_xyz'"),
        ({"optimizer": "json:no_such_function"}, "json has no function 'no_such_function'"),
        ({"optimizer": "just-a-name"}, "expected 'package.module:function'"),
    ],
)
def test_configuration_mistakes_are_named_before_anything_is_logged(store, kwargs, message):
    with pytest.raises(emstrack.ConfigurationError, match=message):
        log_optimization_model(**kwargs)
    assert store.runs() == []


def test_import_is_lazy():
    """`import emstrack.model` loads neither MLflow nor pandas."""
    code = (
        "import sys, emstrack.model; "
        "print(sorted(m for m in ('mlflow', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_mlflow_fluent_state_and_tracking_uri_are_left_as_they_were(
    store, tmp_path, template_database
):
    """A caller's own MLflow run stays active; a run on another store gets the model there."""
    import os
    import shutil

    other = tmp_path / "other.db"
    shutil.copyfile(template_database, other)
    other_uri = f"sqlite:///{other}"
    with mlflow.start_run(run_name="callers-own") as fluent:
        with emstrack.tracked_run("elsewhere", tracking_uri=other_uri) as run:
            info = log_optimization_model(name="elsewhere_model")
        active = mlflow.active_run()
        assert active is not None
        assert active.info.run_id == fluent.info.run_id
    assert mlflow.get_tracking_uri() == store.uri
    assert os.environ["MLFLOW_TRACKING_URI"] == store.uri
    there = mlflow.MlflowClient(tracking_uri=other_uri).get_run(run.run_id)
    assert [o.model_id for o in there.outputs.model_outputs] == [info.model_id]
    assert not store.client.get_run(fluent.info.run_id).outputs.model_outputs


def test_public_names_are_sorted_resolvable_and_documented():
    import inspect

    import emstrack.model as package

    def kind(name: str) -> tuple[int, str]:  # isort style: constants, classes, functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert package.__all__ == sorted(package.__all__, key=kind)
    assert set(dir(package)) == set(package.__all__)
    for name in package.__all__:
        value = getattr(package, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_a_run_that_has_not_reached_the_store_cannot_take_the_model(store, monkeypatch):
    """Store down: the run is spooled, and logging a model into it is a clear TrackingError."""
    from helpers.servers import free_port

    monkeypatch.delenv("EMSTRACK_STRICT")
    down = f"http://127.0.0.1:{free_port()}"
    with (
        pytest.warns(emstrack.EmstrackWarning, match="spool"),
        emstrack.tracked_run("offline", tracking_uri=down) as run,
        pytest.raises(emstrack.TrackingError, match="has not reached the store"),
    ):
        log_optimization_model()
    assert run.run_id is None
    assert store.runs() == []
