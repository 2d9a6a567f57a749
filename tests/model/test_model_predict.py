"""The logged model optimizes for real: fresh-process loads by runs:/ and models:/@alias."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest

import emstrack
from emstrack.ems import optimize_building
from emstrack.model import (
    ModelConfig,
    ModelInputError,
    OptimizationModel,
    log_optimization_model,
    save_optimization_model,
)
from emstrack.schemas import BatterySettings, OptimizationMode, OptimizationParams
from helpers.models import assert_close, fresh_process

R1, R4 = "DE_KN_residential1", "DE_KN_residential4"
FIGURES = ("predicted_cost", "savings_eur", "savings_pct")

THREE_ROWS = [
    {"building_id": R1, "n_days": 1, "mode": "cost"},
    {"building_id": R4, "n_days": 1, "mode": "self_consumption", "start_day": 3},
    {"building_id": R4, "n_days": 1, "mode": "cost", "battery_enabled": False, "start_day": 1},
]


def direct(row: dict[str, object], battery: BatterySettings | None = None) -> dict[str, float]:
    """What optimize_building gives for a row, with OptimizationParams built by hand."""
    params = OptimizationParams(
        building_id=str(row["building_id"]),
        optimization_mode=OptimizationMode(str(row.get("mode", "cost"))),
        battery_enabled=bool(row.get("battery_enabled", True)),
        ev_enabled=bool(row.get("ev_enabled", False)),
        n_days=int(str(row["n_days"])),
        battery=battery or BatterySettings(),
    )
    start_day = int(str(row.get("start_day", 0)))
    metrics = optimize_building(params, start_day=start_day, solver="cbc").metrics
    return {
        "predicted_cost": metrics.total_cost,
        "savings_eur": metrics.savings_eur,
        "savings_pct": metrics.savings_pct,
    }


def assert_matches_direct(predicted: list[dict[str, object]], rows: list[dict[str, object]]):
    assert len(predicted) == len(rows)
    for got, row in zip(predicted, rows, strict=True):
        assert got["building_id"] == row["building_id"]
        assert got["optimization_feasible"] is True
        assert got["solver_status"] == "Optimal"
        assert got["error"] is None
        for name, value in direct(row).items():
            assert_close(float(got[name]), value)  # type: ignore[arg-type]


def test_logged_model_predicts_like_direct_calls_in_a_fresh_process(store, tmp_path):
    """Logged in a run, loaded elsewhere by runs:/ and by models:/<name>@champion."""
    with emstrack.tracked_run("log-model", params={"purpose": "test"}) as run:
        info = log_optimization_model(registered_model_name="ems")
        assert mlflow.active_run() is None
    assert info.run_id == run.run_id
    assert info.registered_model_version == 1
    client = store.client
    client.set_registered_model_alias("ems", "champion", "1")
    recorded = client.get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    assert [o.model_id for o in recorded.outputs.model_outputs] == [info.model_id]
    # MLflow's check of the input example solves once; that solve is not the run's.
    assert not [key for key in recorded.data.metrics if key.startswith("solver.")]
    assert recorded.data.params == {"purpose": "test"}

    code = f"""
        import json, mlflow, pandas as pd
        frame = pd.DataFrame({THREE_ROWS!r})
        result = {{}}
        for uri in ("runs:/{run.run_id}/ems_optimization_model", "models:/ems@champion"):
            predicted = mlflow.pyfunc.load_model(uri).predict(frame)
            result[uri] = predicted.to_dict("records")
        json.dump(result, open(OUTPUT, "w"))
    """
    result = fresh_process(code, cwd=tmp_path, tracking_uri=store.uri, output=tmp_path / "o.json")
    assert len(result) == 2
    for predicted in result.values():
        assert_matches_direct(predicted, THREE_ROWS)
        assert all(row["solve_time_s"] >= 0 for row in predicted)


def test_an_invalid_row_of_each_kind_fails_alone(store, tmp_path):
    """Each invalid row says which field is wrong; the valid rows are still optimized."""
    path = save_optimization_model(None, tmp_path / "model")
    model = mlflow.pyfunc.load_model(str(path))
    rows = [
        {"building_id": R1, "n_days": 1},
        {"building_id": "DE_KN_nowhere", "n_days": 1},
        {"building_id": R1, "n_days": 0},
        {"building_id": R1, "n_days": 1, "mode": "cheapest"},
        {"building_id": R1, "n_days": 2, "start_day": 27},
        {"building_id": R1, "n_days": 1, "start_day": -1},
        {"building_id": R1, "n_days": 1, "start_day": 1.5},
        {"building_id": R4, "n_days": 1, "mode": "self_consumption"},
    ]
    predicted = model.predict(pd.DataFrame(rows))
    assert list(predicted.columns) == [
        "building_id",
        "predicted_cost",
        "savings_eur",
        "savings_pct",
        "optimization_feasible",
        "solver_status",
        "solve_time_s",
        "error",
    ]
    records = predicted.to_dict("records")
    expected_errors = {
        1: "building_id: unknown building 'DE_KN_nowhere'",
        2: "n_days: must be >= 1, got 0",
        3: "mode: unknown mode 'cheapest'",
        4: "start_day/n_days: days 27..28 are outside the data",
        5: "start_day: must be >= 0, got -1",
        6: "start_day: must be a whole number >= 0, got 1.5",
    }
    for position, message in expected_errors.items():
        record = records[position]
        assert message in record["error"], record["error"]
        assert record["optimization_feasible"] is False
        assert record["building_id"] == rows[position]["building_id"]
        for name in (*FIGURES, "solve_time_s"):
            assert math.isnan(record[name])
    assert "DE_KN_residential6" in records[1]["error"]  # the available ones are listed
    assert "has 28 days (0..27)" in records[4]["error"]
    assert_matches_direct([records[0], records[7]], [rows[0], rows[7]])


def test_a_frame_without_a_required_column_is_one_error_naming_it(store, tmp_path):
    """Through pyfunc MLflow's schema check names it; directly, ModelInputError does."""
    path = save_optimization_model(None, tmp_path / "model")
    loaded = mlflow.pyfunc.load_model(str(path))
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"missing inputs \['n_days'\]"):
        loaded.predict(pd.DataFrame([{"building_id": R1}]))
    model = OptimizationModel(ModelConfig())
    with pytest.raises(
        ModelInputError, match=r"missing the required column\(s\) \['building_id'\]"
    ):
        model.predict(None, pd.DataFrame([{"n_days": 1}]))
    with pytest.raises(ModelInputError, match="got str") as raised:
        model.predict(None, "DE_KN_residential1")  # type: ignore[arg-type]
    assert isinstance(raised.value, emstrack.ConfigurationError)
    assert raised.value.get_http_status_code() == 400
    # Records and a mapping of columns are frames too; bad flags are per row.
    records = model.predict(None, [{"building_id": R1, "n_days": 1, "battery_enabled": "yes"}])
    assert "battery_enabled: must be true or false, got 'yes'" in records["error"][0]
    columns = model.predict(None, {"building_id": [R1], "n_days": [1]})
    assert_matches_direct(columns.to_dict("records"), [{"building_id": R1, "n_days": 1}])
