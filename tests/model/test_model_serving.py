"""The registered model served over HTTP by ``mlflow models serve`` (slow: a real server)."""

from __future__ import annotations

import json
import math

import pytest

from emstrack.ems import optimize_building
from emstrack.model import log_optimization_model
from emstrack.schemas import OptimizationMode, OptimizationParams
from helpers.models import ModelServer, assert_close
from helpers.servers import wait_until

pytestmark = pytest.mark.slow

R1, R4 = "DE_KN_residential1", "DE_KN_residential4"


def _direct_cost(building: str, mode: str = "cost", start_day: int = 0) -> float:
    params = OptimizationParams(building_id=building, optimization_mode=OptimizationMode(mode))
    return optimize_building(params, start_day=start_day).metrics.total_cost


def test_served_model_answers_both_payloads_and_rejects_malformed_ones(store, tmp_path):
    info = log_optimization_model(registered_model_name="ems-served")
    store.client.set_registered_model_alias(
        "ems-served", "champion", str(info.registered_model_version)
    )
    server = ModelServer("models:/ems-served@champion", store.uri, tmp_path)
    server.start()
    group = server.process.pid if server.process else -1
    try:
        split = {
            "dataframe_split": {
                "columns": ["building_id", "n_days", "mode"],
                "data": [[R1, 1, "cost"], [R4, 1, "self_consumption"], ["nowhere", 1, "cost"]],
            }
        }
        status, answer = server.post(json.dumps(split).encode())
        assert status == 200, answer
        rows = answer["predictions"]
        assert [r["building_id"] for r in rows] == [R1, R4, "nowhere"]
        assert_close(rows[0]["predicted_cost"], _direct_cost(R1))
        assert_close(rows[1]["predicted_cost"], _direct_cost(R4, "self_consumption"))
        assert rows[0]["error"] is None
        assert rows[0]["optimization_feasible"] is True
        assert rows[2]["optimization_feasible"] is False
        assert math.isnan(rows[2]["predicted_cost"])
        assert "building_id: unknown building 'nowhere'" in rows[2]["error"]

        records = {
            "dataframe_records": [
                {"building_id": R4, "n_days": 1, "start_day": 2},
                {"building_id": R1, "n_days": 1},  # start_day only in some rows
            ]
        }
        status, answer = server.post(json.dumps(records).encode())
        assert status == 200, answer
        costs = [r["predicted_cost"] for r in answer["predictions"]]
        assert_close(costs[0], _direct_cost(R4, start_day=2))
        assert_close(costs[1], _direct_cost(R1))

        malformed = [
            (b'{"dataframe_split": ', "application/json", 400, "valid JSON"),
            (b'{"rows": []}', "application/json", 400, "dataframe_records"),
            (b'{"dataframe_records": [{"n_days": 1}]}', "application/json", 400, "building_id"),
            (
                b'{"dataframe_records": [{"building_id": "x", "n_days": "two"}]}',
                "application/json",
                400,
                "n_days",
            ),
            (b"hello", "text/plain", 415, "content types"),
        ]
        for body, content_type, expected_status, named in malformed:
            status, answer = server.post(body, content_type)
            assert status == expected_status, (body, answer)
            message = answer["message"] if isinstance(answer, dict) else answer
            assert named in message, (body, message)
            # Still up and still right after each bad request.
            status, answer = server.post(json.dumps(records).encode())
            assert status == 200
            assert_close(answer["predictions"][1]["predicted_cost"], _direct_cost(R1))
    finally:
        server.stop()
    wait_until(lambda: not ModelServer.group_alive(group), 10, what="model server gone")
