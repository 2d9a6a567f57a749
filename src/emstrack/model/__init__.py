"""The EMS optimization as an MLflow model: ``predict`` really optimizes.

:class:`OptimizationModel` is an ``mlflow.pyfunc.PythonModel``: each input row (building, days,
mode, battery/EV flags, first day) is optimized with :func:`emstrack.ems.optimize_building` under
a :class:`ModelConfig` (battery, EV, grid and tariff settings, solver, resolution, data source),
or with a user's own optimizer. :func:`log_optimization_model` logs it into the active emstrack
run (or a new one) and can register it; :func:`save_optimization_model` writes it to a folder.
The model ships its configuration, the household data when it is not the bundled sample, and a
user optimizer's code when that is not installed, with pinned requirements and a signature
whose optional columns are optional. Load it with ``mlflow.pyfunc.load_model`` (``runs:/``,
``models:/<name>@<alias>``) or serve it with ``mlflow models serve``.

Importing this package is cheap; MLflow loads on first use of a name.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from ._config import ModelConfig
    from ._errors import ModelInputError
    from ._inputs import INPUT_COLUMNS, OUTPUT_COLUMNS, ModelRow, optimization_params, parse_row
    from ._logging import log_optimization_model, save_optimization_model
    from ._pyfunc import OptimizationModel, optimize_options

__all__ = [
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "ModelConfig",
    "ModelInputError",
    "ModelRow",
    "OptimizationModel",
    "log_optimization_model",
    "optimization_params",
    "optimize_options",
    "parse_row",
    "save_optimization_model",
]

_LAZY = {
    "INPUT_COLUMNS": "._inputs",
    "OUTPUT_COLUMNS": "._inputs",
    "ModelConfig": "._config",
    "ModelInputError": "._errors",
    "ModelRow": "._inputs",
    "OptimizationModel": "._pyfunc",
    "log_optimization_model": "._logging",
    "optimization_params": "._inputs",
    "optimize_options": "._pyfunc",
    "parse_row": "._inputs",
    "save_optimization_model": "._logging",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emstrack.model' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
