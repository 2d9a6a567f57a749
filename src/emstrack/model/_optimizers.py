"""A user's own optimizer: parsing its reference, importing it, and what ships with the model.

A reference is ``"package.module:function"`` (importable now) or ``"path/to/file.py:function"``.
An installed package becomes a pinned requirement; code that is not installed (a file, or a
module importable only from the working directory or ``PYTHONPATH``) is shipped inside the model
through MLflow's ``code_paths`` and imported from there when the model loads.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from emstrack._errors import ConfigurationError

Optimizer = Callable[[Mapping[str, Any], Any], Mapping[str, Any]]
"""``function(row, config) -> figures``: one input row as a mapping and the model's config."""

_FORMAT = "expected 'package.module:function' or 'path/to/file.py:function'"


@dataclass(frozen=True)
class OptimizerPackage:
    """How a user's optimizer travels with a model."""

    reference: str
    """``module:function`` as importable where the model is loaded."""
    code_paths: list[str] = field(default_factory=list)
    """Files or package folders shipped in the model's ``code/`` folder."""
    requirements: list[str] = field(default_factory=list)
    """Pinned distributions that provide the code."""


def package_optimizer(reference: str) -> OptimizerPackage:
    """Check that ``reference`` names a callable now, and decide how its code ships.

    Raises:
        ConfigurationError: If the reference is malformed, the module or file cannot be
            imported, or the name is not a callable in it.

    """
    target, function = _split(reference)
    if _is_file(target):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise ConfigurationError(f"optimizer {reference!r}: no file at {path}")
        module_name = path.stem
        if not module_name.isidentifier():
            raise ConfigurationError(
                f"optimizer {reference!r}: {path.name} is not an importable module name"
            )
        _check_not_shadowing(module_name, path, reference)
        module = _module_from_file(module_name, path, reference)
        _callable(module, function, reference)
        return OptimizerPackage(f"{module_name}:{function}", code_paths=[str(path)])
    module = _import(target, reference)
    _callable(module, function, reference)
    top = target.split(".")[0]
    if top in sys.stdlib_module_names:
        return OptimizerPackage(reference)
    distributions = importlib.metadata.packages_distributions().get(top, [])
    if distributions:
        pinned = [
            f"{name}=={importlib.metadata.version(name)}"
            for name in sorted(set(distributions))
            if name != "emstrack"
        ]
        return OptimizerPackage(reference, requirements=pinned)
    return OptimizerPackage(reference, code_paths=[str(_code_root(sys.modules[top]))])


def load_optimizer(reference: str) -> Optimizer:
    """Import the function a ``module:function`` reference names.

    Raises:
        ConfigurationError: If it cannot be imported or is not callable.

    """
    target, function = _split(reference)
    return _callable(_import(target, reference), function, reference)


def _split(reference: str) -> tuple[str, str]:
    if not isinstance(reference, str):
        raise ConfigurationError(f"optimizer: {_FORMAT}, got {reference!r}")
    target, separator, function = reference.strip().rpartition(":")
    if not separator or not target or not function.isidentifier():
        raise ConfigurationError(f"optimizer: {_FORMAT}, got {reference!r}")
    return target, function


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import(target: str, reference: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except Exception as error:
        raise ConfigurationError(
            f"optimizer {reference!r}: cannot import module {target!r} "
            f"({type(error).__name__}: {error})"
        ) from None


def _module_from_file(name: str, path: Path, reference: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"optimizer {reference!r}: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise ConfigurationError(
            f"optimizer {reference!r}: importing {path} failed ({type(error).__name__}: {error})"
        ) from None
    return module


def _check_not_shadowing(name: str, path: Path, reference: str) -> None:
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if found is not None and found.origin and Path(found.origin).resolve() != path:
        raise ConfigurationError(
            f"optimizer {reference!r}: module name {name!r} is already taken by "
            f"{found.origin}; rename {path.name}"
        )


def _callable(module: ModuleType, function: str, reference: str) -> Optimizer:
    value = getattr(module, function, None)
    if value is None or not callable(value):
        raise ConfigurationError(
            f"optimizer {reference!r}: {module.__name__} has no function {function!r}"
        )
    optimizer: Optimizer = value
    return optimizer


def _code_root(module: ModuleType) -> Path:
    """The package folder (or the module file) to ship."""
    paths = list(getattr(module, "__path__", []))
    if paths:
        return Path(paths[0]).resolve()
    if module.__file__ is None:
        raise ConfigurationError(f"optimizer: cannot locate the code of {module.__name__!r}")
    return Path(module.__file__).resolve()
