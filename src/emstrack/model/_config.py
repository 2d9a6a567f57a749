"""The model's configuration: what every row of a prediction shares, validated by pydantic."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from emstrack._errors import ConfigurationError
from emstrack.ems import optimize_building
from emstrack.schemas import (
    BatterySettings,
    EVSettings,
    GridSettings,
    OptimizationMode,
    TariffSettings,
)

_RUN_THRESHOLD_KWH: float = (
    inspect.signature(optimize_building).parameters["run_threshold_kwh"].default
)

CONFIG_FILE = "model_config.json"
"""Name of the configuration artifact inside a saved model."""


class ModelConfig(BaseModel):
    """Settings shared by every row a model optimizes; rows choose building, days and mode."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    mode: OptimizationMode = Field(
        OptimizationMode.COST, description="Objective of a row that gives no 'mode'."
    )
    battery_enabled: bool = Field(
        True, description="Battery in the plan for a row that gives no 'battery_enabled'."
    )
    ev_enabled: bool = Field(
        False, description="EV charging optimized for a row that gives no 'ev_enabled'."
    )
    battery: BatterySettings = Field(default_factory=BatterySettings)
    ev: EVSettings = Field(default_factory=EVSettings)
    grid: GridSettings = Field(default_factory=GridSettings)
    tariff: TariffSettings = Field(default_factory=TariffSettings)
    solver: Literal["cbc", "highs"] = Field("cbc", description="MILP solver.")
    resolution_minutes: int = Field(60, ge=1, le=60, description="Step length [min].")
    appliance_shift_hours: int = Field(
        0, ge=0, le=23, description="How far appliance runs may move from their real start [h]."
    )
    allowed_start_hours: dict[str, list[int]] = Field(
        default_factory=dict, description="Per device, the local hours runs may start in."
    )
    run_threshold_kwh: float = Field(
        _RUN_THRESHOLD_KWH,
        gt=0,
        description="Energy per hour above which an appliance counts as running [kWh].",
    )
    data: str | None = Field(
        None,
        description=(
            "Household data: None for the sample shipped with emstrack, else a path to an OPSD "
            ".parquet file, a folder of them or a sample-format .csv/.csv.gz. A saved model "
            "carries its own copy and points here at it when loaded."
        ),
    )
    optimizer: str | None = Field(
        None,
        description=(
            "A user's optimizer as 'package.module:function' (None: the reference EMS model). "
            "Called as function(row, config) with the row as a mapping; returns figures."
        ),
    )

    @field_validator("resolution_minutes")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        if 60 % value:
            raise ValueError(f"must divide 60 (e.g. 60, 30, 15), got {value}")
        return value


ConfigSource = ModelConfig | Mapping[str, Any] | str | Path | None
"""A configuration, its fields as a mapping, a JSON file, or None for the defaults."""


def model_config(source: ConfigSource = None) -> ModelConfig:
    """Validate a configuration from any accepted source.

    Raises:
        ConfigurationError: If a field is unknown or invalid (the message names each one), or
            the JSON file does not exist or is not JSON.

    """
    if isinstance(source, ModelConfig):
        return source
    if source is None:
        return ModelConfig()
    where = "model configuration"
    document: object = source
    if isinstance(source, str | Path):
        path = Path(source)
        where = f"model configuration {path}"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"{where}: file not found") from None
        except (OSError, ValueError) as error:
            raise ConfigurationError(f"{where}: not readable as JSON ({error})") from None
    try:
        return ModelConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigurationError(f"{where}: {describe_validation_error(error)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: ``field.path: message``."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(root)"
        problems.append(f"{location}: {item['msg']}")
    return "; ".join(problems)


def write_config(config: ModelConfig, path: Path) -> None:
    """Write ``config`` as indented JSON."""
    path.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
