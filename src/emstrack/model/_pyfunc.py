"""``OptimizationModel``: an MLflow ``PythonModel`` whose ``predict`` runs the real optimization."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

with warnings.catch_warnings():
    # MLflow 3.17 warns about its own ResponsesAgent types when mlflow.pyfunc is first imported.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType")
    from mlflow.pyfunc.model import PythonModel, PythonModelContext

from emstrack._errors import ConfigurationError
from emstrack.ems import HouseholdData, load_household_data, optimize_building
from emstrack.model._config import ConfigSource, ModelConfig, model_config
from emstrack.model._inputs import (
    OUTPUT_COLUMNS,
    ModelRow,
    input_frame,
    optimization_params,
    parse_row,
)
from emstrack.model._optimizers import Optimizer, load_optimizer

CONFIG_ARTIFACT = "config"
"""Key of the configuration file in the model's artifacts."""
DATA_ARTIFACT = "household_data"
"""Key of the shipped household data (file or folder) in the model's artifacts."""

_NUMBERS = ("predicted_cost", "savings_eur", "savings_pct", "solve_time_s")
_FIGURES = (*_NUMBERS, "optimization_feasible", "solver_status")


class OptimizationModel(PythonModel):
    """The EMS optimization as an MLflow model: each input row is optimized for real.

    ``predict`` takes a frame (or records) with the columns ``building_id`` and ``n_days``
    (required) and ``mode``, ``battery_enabled``, ``ev_enabled``, ``start_day`` (optional:
    from the configuration, ``start_day`` 0) and returns one row per input row, in order, with
    ``building_id``, ``predicted_cost``, ``savings_eur``, ``savings_pct``,
    ``optimization_feasible``, ``solver_status``, ``solve_time_s`` and ``error``. With the
    reference optimizer the figures are those of :func:`emstrack.ems.optimize_building`
    (``predicted_cost`` is ``metrics.total_cost``, ``optimization_feasible`` is
    ``metrics.convergence_achieved``, ``solve_time_s`` is ``metrics.optimization_time_seconds``).

    An invalid row gets ``optimization_feasible=False``, NaN figures and an ``error`` naming the
    field and the problem; the other rows are still optimized. An input that is not a frame or
    lacks a required column raises :class:`~emstrack.model.ModelInputError`.

    Use it through :func:`~emstrack.model.log_optimization_model` /
    :func:`~emstrack.model.save_optimization_model` and ``mlflow.pyfunc.load_model``, or
    directly: ``OptimizationModel(config).predict(None, frame)``.
    """

    def __init__(self, config: ConfigSource | None = None) -> None:
        self._config: ModelConfig | None = None
        self._buildings: dict[str, HouseholdData] = {}
        self._optimizer: Optimizer | None = None
        if config is not None:
            self.configure(config)

    def __getstate__(self) -> dict[str, Any]:
        # What is pickled into the model is the class; configuration and data come from the
        # model's artifacts in load_context.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    @property
    def config(self) -> ModelConfig:
        """The configuration in use.

        Raises:
            ConfigurationError: Before :meth:`configure` or ``load_context``.

        """
        if self._config is None:
            raise ConfigurationError("the model has no configuration yet: call configure()")
        return self._config

    def load_context(self, context: PythonModelContext) -> None:
        """Read the configuration artifact; point ``data`` at the shipped copy, if any."""
        config = model_config(Path(context.artifacts[CONFIG_ARTIFACT]))
        shipped = context.artifacts.get(DATA_ARTIFACT)
        if shipped is not None:
            config = config.model_copy(update={"data": str(shipped)})
        self.configure(config)

    def configure(self, config: ConfigSource) -> None:
        """Use ``config``: load its household data once, or import its optimizer.

        Raises:
            ConfigurationError: If the configuration is invalid, its data cannot be read or its
                optimizer cannot be imported.

        """
        checked = model_config(config)
        if checked.optimizer is not None:
            self._optimizer = load_optimizer(checked.optimizer)
            self._buildings = {}
        else:
            self._optimizer = None
            try:
                self._buildings = load_household_data(checked.data)
            except (OSError, ValueError, ImportError) as error:
                raise ConfigurationError(f"data {checked.data!r}: {error}") from None
        self._config = checked

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Optimize every row; see the class docstring for the columns.

        Raises:
            ModelInputError: If the input is not a frame/records or lacks a required column.

        """
        frame = input_frame(model_input)
        rows = [self._predict_row(values) for values in _records(frame)]
        return _output_frame(rows)

    # ------------------------------------------------------------------ one row

    def _predict_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        config = self.config
        building = values.get("building_id")
        shown = building if isinstance(building, str) else None
        row = parse_row(values, config)
        if isinstance(row, str):
            return _failed(shown, row)
        if self._optimizer is not None:
            return self._user_row(row, self._optimizer, config)
        household = self._household(row)
        if isinstance(household, str):
            return _failed(shown, household)
        try:
            result = optimize_building(
                optimization_params(row, config),
                data=household,
                start_day=row.start_day,
                **optimize_options(config),
            )
        except (ValueError, RuntimeError) as error:
            return _failed(shown, f"optimization: {error}")
        metrics = result.metrics
        return {
            "building_id": row.building_id,
            "predicted_cost": metrics.total_cost,
            "savings_eur": metrics.savings_eur,
            "savings_pct": metrics.savings_pct,
            "optimization_feasible": metrics.convergence_achieved,
            "solver_status": metrics.solver_status,
            "solve_time_s": metrics.optimization_time_seconds,
            "error": None,
        }

    def _household(self, row: ModelRow) -> HouseholdData | str:
        buildings = self._buildings
        household = buildings.get(row.building_id)
        if household is None:
            matches = [b for b in buildings if b.endswith(f"_{row.building_id}")]
            if len(matches) != 1:
                return (
                    f"building_id: unknown building {row.building_id!r}; "
                    f"available: {sorted(buildings)}"
                )
            household = buildings[matches[0]]
        last = row.start_day + row.n_days - 1
        if last >= household.n_days:
            return (
                f"start_day/n_days: days {row.start_day}..{last} are outside the data; "
                f"{household.building_id} has {household.n_days} days "
                f"(0..{household.n_days - 1})"
            )
        return household

    def _user_row(self, row: ModelRow, optimizer: Optimizer, config: ModelConfig) -> dict[str, Any]:
        name = config.optimizer
        try:
            figures = optimizer(row.as_mapping(), config)
        except Exception as error:
            return _failed(row.building_id, f"optimizer {name}: {type(error).__name__}: {error}")
        checked = _user_figures(figures)
        if isinstance(checked, str):
            return _failed(row.building_id, f"optimizer {name}: {checked}")
        return {"building_id": row.building_id, **checked, "error": None}


def optimize_options(config: ModelConfig) -> dict[str, Any]:
    """The keyword arguments of :func:`emstrack.ems.optimize_building` a configuration sets."""
    return {
        "solver": config.solver,
        "resolution_minutes": config.resolution_minutes,
        "appliance_shift_hours": config.appliance_shift_hours,
        "allowed_start_hours": {k: list(v) for k, v in config.allowed_start_hours.items()},
        "run_threshold_kwh": config.run_threshold_kwh,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as mappings of plain Python values (``tolist`` converts NumPy scalars)."""
    names = [str(c) for c in frame.columns]
    columns = [frame.iloc[:, position].tolist() for position in range(len(names))]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _failed(building: str | None, error: str) -> dict[str, Any]:
    return {
        "building_id": building,
        "predicted_cost": math.nan,
        "savings_eur": math.nan,
        "savings_pct": math.nan,
        "optimization_feasible": False,
        "solver_status": None,
        "solve_time_s": math.nan,
        "error": error,
    }


def _user_figures(figures: object) -> dict[str, Any] | str:
    if not isinstance(figures, Mapping):
        return f"must return a mapping of figures, returned {type(figures).__name__}"
    unknown = sorted(str(k) for k in figures if k not in _FIGURES)
    if unknown:
        return f"returned unknown figure(s) {unknown}; known: {list(_FIGURES)}"
    if "predicted_cost" not in figures:
        return "returned no 'predicted_cost'"
    checked: dict[str, Any] = {}
    for name in _NUMBERS:
        value = figures.get(name, math.nan)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"figure {name!r} must be a number, got {value!r}"
        checked[name] = float(value)
    feasible = figures.get("optimization_feasible", True)
    if not isinstance(feasible, bool):
        return f"figure 'optimization_feasible' must be true or false, got {feasible!r}"
    status = figures.get("solver_status")
    if status is not None and not isinstance(status, str):
        return f"figure 'solver_status' must be a text, got {status!r}"
    return checked | {"optimization_feasible": feasible, "solver_status": status}


def _output_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for name in OUTPUT_COLUMNS:
        values = [row[name] for row in rows]
        if name in _NUMBERS:
            columns[name] = np.array(values, dtype=float)
        elif name == "optimization_feasible":
            columns[name] = np.array(values, dtype=bool)
        else:
            # Text columns stay objects with None where empty: JSON null when served.
            columns[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns, copy=False)
