"""Pip requirements pinned to what is installed here, without MLflow's inference subprocess."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

from emstrack._errors import ConfigurationError
from emstrack._version import __version__

_BASE = ("mlflow", "cloudpickle", "numpy", "pandas", "pulp", "pydantic")


def pinned_requirements(*, solver: str, parquet: bool, extra: Iterable[str] = ()) -> list[str]:
    """``name==version`` for emstrack and what loading and predicting imports.

    Args:
        solver: The configuration's solver (``"highs"`` adds highspy).
        parquet: Whether the shipped data is parquet (adds pyarrow).
        extra: Further requirements (a user optimizer's distribution), kept as given.

    Raises:
        ConfigurationError: If a needed distribution is not installed here.

    """
    names = list(_BASE)
    if solver == "highs":
        names.append("highspy")
    if parquet:
        names.append("pyarrow")
    pinned = [f"emstrack=={__version__}"]
    for name in names:
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise ConfigurationError(
                f"the model needs {name!r}, which is not installed; install it first"
            ) from None
    return pinned + [requirement for requirement in extra if requirement not in pinned]
