"""Model input: the frame's columns, each row checked field by field, and a row's parameters."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from emstrack.model._config import ModelConfig
from emstrack.model._errors import ModelInputError
from emstrack.schemas import OptimizationMode, OptimizationParams

REQUIRED_COLUMNS = ("building_id", "n_days")
"""Columns every input frame must have."""
OPTIONAL_COLUMNS = ("mode", "battery_enabled", "ev_enabled", "start_day")
"""Columns that default from the configuration (``start_day`` to 0) where absent or empty."""
INPUT_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
OUTPUT_COLUMNS = (
    "building_id",
    "predicted_cost",
    "savings_eur",
    "savings_pct",
    "optimization_feasible",
    "solver_status",
    "solve_time_s",
    "error",
)
"""Columns of a prediction, one row per input row in input order."""
MAX_DAYS = 366
_MODES = ", ".join(mode.value for mode in OptimizationMode)


@dataclass(frozen=True)
class ModelRow:
    """One input row, checked and completed from the configuration."""

    building_id: str
    n_days: int
    mode: OptimizationMode
    battery_enabled: bool
    ev_enabled: bool
    start_day: int

    def as_mapping(self) -> dict[str, Any]:
        """The row as plain values (the mode as its text), as a user's optimizer receives it."""
        values = asdict(self)
        values["mode"] = self.mode.value
        return values


def input_frame(model_input: object) -> pd.DataFrame:
    """The input as a DataFrame with the required columns.

    Accepts a DataFrame, a list of records (mappings) or a mapping of columns.

    Raises:
        ModelInputError: If the input is none of these, or a required column is missing.

    """
    if isinstance(model_input, pd.DataFrame):
        frame = model_input
    elif isinstance(model_input, Mapping):
        try:
            frame = pd.DataFrame(dict(model_input))
        except ValueError:
            frame = pd.DataFrame([dict(model_input)])
    elif (
        isinstance(model_input, Sequence)
        and not isinstance(model_input, str | bytes)
        and all(isinstance(record, Mapping) for record in model_input)
    ):
        frame = pd.DataFrame([dict(record) for record in model_input])
    else:
        raise ModelInputError(
            "model input must be a pandas DataFrame, a list of records or a mapping of columns "
            f"with the columns {list(INPUT_COLUMNS)}, got {type(model_input).__name__}"
        )
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ModelInputError(
            f"model input is missing the required column(s) {missing}; it has "
            f"{[str(c) for c in frame.columns]} (required: {list(REQUIRED_COLUMNS)}, "
            f"optional: {list(OPTIONAL_COLUMNS)})"
        )
    return frame


def parse_row(values: Mapping[str, Any], config: ModelConfig) -> ModelRow | str:
    """Check one row; return it completed from ``config``, or a message naming each bad field."""
    problems: list[str] = []
    building = values.get("building_id")
    if _missing(building):
        problems.append("building_id: missing")
    elif not isinstance(building, str) or not building.strip():
        problems.append(f"building_id: must be a non-empty text, got {building!r}")
    n_days = _whole_number(values.get("n_days"), "n_days", 1, problems, default=None)
    if n_days is not None and n_days > MAX_DAYS:
        problems.append(f"n_days: must be <= {MAX_DAYS}, got {n_days}")
    start_day = _whole_number(values.get("start_day"), "start_day", 0, problems, default=0)
    mode = _mode(values.get("mode"), config, problems)
    battery = _flag(values.get("battery_enabled"), "battery_enabled", config.battery_enabled)
    ev = _flag(values.get("ev_enabled"), "ev_enabled", config.ev_enabled)
    problems.extend(p for p in (battery, ev) if isinstance(p, str))
    if problems:
        return "; ".join(problems)
    assert isinstance(building, str)
    assert n_days is not None
    assert start_day is not None
    assert mode is not None
    assert isinstance(battery, bool)
    assert isinstance(ev, bool)
    return ModelRow(building, n_days, mode, battery, ev, start_day)


def optimization_params(row: ModelRow, config: ModelConfig) -> OptimizationParams:
    """The :class:`~emstrack.schemas.OptimizationParams` a row is optimized with."""
    return OptimizationParams(
        building_id=row.building_id,
        optimization_mode=row.mode,
        battery_enabled=row.battery_enabled,
        ev_enabled=row.ev_enabled,
        n_days=row.n_days,
        battery=config.battery,
        ev=config.ev,
        grid=config.grid,
        tariff=config.tariff,
    )


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _whole_number(
    value: object, field: str, minimum: int, problems: list[str], default: int | None
) -> int | None:
    if _missing(value):
        if default is None:
            problems.append(f"{field}: missing")
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        problems.append(f"{field}: must be a whole number >= {minimum}, got {value!r}")
        return None
    number = float(value)
    if not math.isfinite(number) or number != int(number):
        problems.append(f"{field}: must be a whole number >= {minimum}, got {value!r}")
        return None
    if number < minimum:
        problems.append(f"{field}: must be >= {minimum}, got {int(number)}")
        return None
    return int(number)


def _mode(value: object, config: ModelConfig, problems: list[str]) -> OptimizationMode | None:
    if _missing(value):
        return config.mode
    if isinstance(value, str):
        try:
            return OptimizationMode(value.strip().lower())
        except ValueError:
            pass
    problems.append(f"mode: unknown mode {value!r}; valid modes: {_MODES}")
    return None


def _flag(value: object, field: str, default: bool) -> bool | str:
    if _missing(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    return f"{field}: must be true or false, got {value!r}"
