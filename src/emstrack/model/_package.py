"""Everything a model carries, staged in a folder: configuration, data copy, code, requirements."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from emstrack._errors import ConfigurationError
from emstrack.ems import HouseholdData, load_household_data, make_solver
from emstrack.model._config import (
    CONFIG_FILE,
    ConfigSource,
    ModelConfig,
    model_config,
    write_config,
)
from emstrack.model._optimizers import package_optimizer
from emstrack.model._pyfunc import CONFIG_ARTIFACT, DATA_ARTIFACT, OptimizationModel
from emstrack.model._requirements import pinned_requirements
from emstrack.model._signature import input_example, model_signature

DataSource: TypeAlias = str | os.PathLike[str] | pd.DataFrame | HouseholdData | None
"""Household data for a model: a path (copied in), a frame (written in), or None."""

FRAME_FILE = "household_data.csv.gz"
"""Name under which household data given as a frame is shipped."""


@dataclass(frozen=True)
class ModelPackage:
    """The arguments of ``mlflow.pyfunc.save_model`` / ``log_model`` for one model."""

    config: ModelConfig
    """The configuration as shipped (``data`` is the shipped copy's name)."""
    python_model: OptimizationModel
    artifacts: dict[str, str]
    code_paths: list[str] | None
    pip_requirements: list[str]
    signature: Any
    input_example: pd.DataFrame

    def mlflow_arguments(self) -> dict[str, Any]:
        """Keyword arguments for MLflow's pyfunc ``save_model`` / ``Model.log``."""
        return {
            "python_model": self.python_model,
            "artifacts": self.artifacts,
            "code_paths": self.code_paths,
            "pip_requirements": self.pip_requirements,
            "signature": self.signature,
            "input_example": self.input_example,
            "metadata": {"emstrack_config": self.config.model_dump(mode="json")},
        }


def build_package(
    config: ConfigSource, folder: Path, *, data: DataSource = None, optimizer: str | None = None
) -> ModelPackage:
    """Check the configuration, data and optimizer, and stage the model's files in ``folder``.

    Raises:
        ConfigurationError: Naming what is wrong: a configuration field, the data, the solver
            or the optimizer.

    """
    checked = model_config(config)
    if optimizer is not None:
        checked = checked.model_copy(update={"optimizer": optimizer})
    try:
        make_solver(checked.solver)
    except (ValueError, RuntimeError) as error:
        raise ConfigurationError(f"solver: {error}") from None
    source: DataSource = data if data is not None else checked.data
    folder.mkdir(parents=True, exist_ok=True)
    artifacts: dict[str, str] = {}
    buildings, shipped, parquet = _stage_data(source, folder / "data", artifacts)
    checked = checked.model_copy(update={"data": shipped})
    code_paths: list[str] = []
    extra: list[str] = []
    if checked.optimizer is not None:
        packaged = package_optimizer(checked.optimizer)
        checked = checked.model_copy(update={"optimizer": packaged.reference})
        code_paths, extra = packaged.code_paths, packaged.requirements
    config_path = folder / CONFIG_FILE
    write_config(checked, config_path)
    artifacts[CONFIG_ARTIFACT] = str(config_path)
    return ModelPackage(
        config=checked,
        python_model=OptimizationModel(),
        artifacts=artifacts,
        code_paths=code_paths or None,
        pip_requirements=pinned_requirements(solver=checked.solver, parquet=parquet, extra=extra),
        signature=model_signature(),
        input_example=input_example(checked, buildings[0]),
    )


def _stage_data(
    source: DataSource, folder: Path, artifacts: dict[str, str]
) -> tuple[list[str], str | None, bool]:
    """Building ids, the shipped copy's name (None: the bundled sample), whether it is parquet."""
    if source is None:
        return sorted(load_household_data(None)), None, False
    if isinstance(source, pd.DataFrame | HouseholdData):
        buildings = _load(source, "the data frame")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / FRAME_FILE
        _sample_format(buildings).to_csv(target, index=False, compression="gzip")
        artifacts[DATA_ARTIFACT] = str(target)
        return sorted(buildings), FRAME_FILE, False
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise ConfigurationError(f"data: no file or folder at {path}")
    buildings = _load(path, str(path))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if path.is_dir():
        shutil.copytree(path, target)
        parquet = any(target.glob("*.parquet"))
    else:
        shutil.copyfile(path, target)
        parquet = path.suffix == ".parquet"
    artifacts[DATA_ARTIFACT] = str(target)
    return sorted(buildings), path.name, parquet


def _load(source: Path | pd.DataFrame | HouseholdData, what: str) -> dict[str, HouseholdData]:
    try:
        buildings = load_household_data(source)
    except (OSError, ValueError, ImportError) as error:
        raise ConfigurationError(f"data {what}: {error}") from None
    if not buildings:
        raise ConfigurationError(f"data {what}: no building in it")
    return buildings


def _sample_format(buildings: dict[str, HouseholdData]) -> pd.DataFrame:
    """All buildings in one table in the shipped sample's format (UTC timestamps)."""
    frames = []
    for building_id, household in sorted(buildings.items()):
        hourly = household.hourly
        stamps = pd.DatetimeIndex(hourly.index).tz_convert("UTC")
        table = hourly.reset_index(drop=True)
        table.insert(0, "timestamp_utc", stamps.strftime("%Y-%m-%dT%H:%M:%SZ"))
        table.insert(0, "building_id", building_id)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)
