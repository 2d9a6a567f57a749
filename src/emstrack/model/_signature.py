"""The model's signature (an explicit column schema) and its input example."""

from __future__ import annotations

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from emstrack.model._config import ModelConfig


def model_signature() -> ModelSignature:
    """Required ``building_id``/``n_days``; optional ``mode``, flags and ``start_day``.

    Built from columns, not from type hints: a served model then accepts ``dataframe_split``,
    ``dataframe_records`` and ``inputs`` payloads. ``start_day`` is typed ``any`` because MLflow
    turns an integer column with a missing value (records that give it only in some rows) into
    floats and refuses them for a ``long`` column; the model checks it is a whole number >= 0.
    """
    inputs = Schema(
        [
            ColSpec("string", "building_id"),
            ColSpec("long", "n_days"),
            ColSpec("string", "mode", required=False),
            ColSpec("boolean", "battery_enabled", required=False),
            ColSpec("boolean", "ev_enabled", required=False),
            ColSpec(AnyType(), "start_day", required=False),  # type: ignore[no-untyped-call]
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "building_id", required=False),
            ColSpec("double", "predicted_cost"),
            ColSpec("double", "savings_eur"),
            ColSpec("double", "savings_pct"),
            ColSpec("boolean", "optimization_feasible"),
            ColSpec("string", "solver_status", required=False),
            ColSpec("double", "solve_time_s"),
            ColSpec("string", "error", required=False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(config: ModelConfig, building_id: str) -> pd.DataFrame:
    """One row of one day of ``building_id``, every column given."""
    return pd.DataFrame(
        [
            {
                "building_id": building_id,
                "n_days": 1,
                "mode": config.mode.value,
                "battery_enabled": config.battery_enabled,
                "ev_enabled": config.ev_enabled,
                "start_day": 0,
            }
        ]
    )
