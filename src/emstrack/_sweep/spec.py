"""The grid file: what to run (a function by import path), over which grid, tracked how.

A grid file is TOML::

    function = "emstrack.ems:compare_modes"
    experiment = "sweep-demo"
    [grid]                        # every combination is one scenario
    building_id = ["DE_KN_residential1", "DE_KN_residential4"]
    start_day = [0, 1]
    [fixed]                       # the same for every scenario
    n_days = 1
    [tracking]                    # options of tracked_optimization, callables by import path
    params = "emstrack.ems:scenario_inputs"
    metrics = "emstrack.ems:ModeComparison.figures"

Everything is checked before anything runs; a problem is one :class:`ConfigurationError` naming
the file and the key.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import itertools
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._errors import ConfigurationError

_IMPORT_PATH = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class TrackingOptions(BaseModel):
    """The ``[tracking]`` table: options of ``tracked_optimization``; callables by import path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: str | None = Field(default=None, pattern=_IMPORT_PATH)
    metrics: str | None = Field(default=None, pattern=_IMPORT_PATH)
    run_name: str | None = None
    tags: dict[str, str | int | float | bool] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)
    log_inputs: bool = True
    log_model: Literal["lp", "mps"] | None = None


class SweepSpec(BaseModel):
    """A whole grid file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    function: str = Field(pattern=_IMPORT_PATH)
    experiment: str | None = Field(default=None, min_length=1)
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    tracking: TrackingOptions = Field(default_factory=TrackingOptions)

    def scenarios(self) -> Iterator[dict[str, Any]]:
        """Every combination of the grid, with the fixed arguments, in file order."""
        names = list(self.grid)
        for values in itertools.product(*(self.grid[name] for name in names)):
            yield {**self.fixed, **dict(zip(names, values, strict=True))}

    @property
    def run_name(self) -> str | None:
        """The runs' name template: ``[tracking] run_name``, else the grid's varying values.

        ``"{building_id}-{scenario}-{start_day}"`` for a grid over those three: each run's name
        tells it apart from the sweep's others. ``None`` (the function's name) when no axis
        has a second value.
        """
        if self.tracking.run_name is not None:
            return self.tracking.run_name
        varying = [name for name, values in self.grid.items() if len(values) > 1]
        return "-".join(f"{{{name}}}" for name in varying) or None

    @property
    def size(self) -> int:
        """Number of combinations."""
        size = 1
        for values in self.grid.values():
            size *= len(values)
        return size


def load_spec(source: str | os.PathLike[str] | Mapping[str, Any] | SweepSpec) -> SweepSpec:
    """Read and check a grid: a TOML file, a mapping of the same shape, or a spec."""
    if isinstance(source, SweepSpec):
        spec, where = source, "sweep"
    elif isinstance(source, Mapping):
        spec, where = _validate(dict(source), "sweep"), "sweep"
    else:
        path = Path(source)
        where = str(path)
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"{where}: no such grid file") from None
        except OSError as error:
            raise ConfigurationError(f"{where}: cannot read: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigurationError(f"{where}: not valid TOML: {error}") from None
        spec = _validate(document, where)
    check(spec, where)
    return spec


def _validate(document: dict[str, Any], where: str) -> SweepSpec:
    if callable(document.get("function")):
        document = {**document, "function": import_path_of(document["function"])}
    tracking = document.get("tracking")
    if isinstance(tracking, Mapping):
        document = {
            **document,
            "tracking": {
                key: import_path_of(value) if callable(value) else value
                for key, value in tracking.items()
            },
        }
    try:
        return SweepSpec.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(file)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = _unknown_key(first["loc"])
        elif first["type"] == "string_pattern_mismatch":
            message = "must be an import path like 'package.module:name'"
        elif first["type"] == "too_short":
            message = "has no values; give at least one"
        elif first["type"] == "list_type":
            message = "must be a list of values"
        elif first["type"] == "missing":
            message = "is required"
        raise ConfigurationError(f"{where}: {key}: {message}") from None


def _unknown_key(location: tuple[int | str, ...]) -> str:
    """What an unknown key should have been: the keys its table takes, or the table it goes in."""
    in_tracking = location[0] == "tracking"
    model = TrackingOptions if in_tracking else SweepSpec
    known = ", ".join(sorted(model.model_fields))
    if in_tracking:
        return f"unknown key; [tracking] takes {known}"
    name = str(location[0])
    if name in TrackingOptions.model_fields:
        return f"unknown key here; {name} goes in the [tracking] table"
    return (
        f"unknown key; the file's top level takes {known} "
        "(the function's arguments go in [grid] or [fixed])"
    )


def check(spec: SweepSpec, where: str = "sweep") -> None:
    """Check what pydantic cannot: imports resolve, arguments fit the function, values are plain."""
    function = resolve(spec.function, f"{where}: function")
    for option in ("params", "metrics"):
        path = getattr(spec.tracking, option)
        if path is not None:
            resolve(path, f"{where}: tracking.{option}")
    overlap = sorted(set(spec.grid) & set(spec.fixed))
    if overlap:
        raise ConfigurationError(f"{where}: grid.{overlap[0]}: also given in [fixed]; keep one")
    for table, names in (("grid", spec.grid), ("fixed", spec.fixed)):
        for name in names:
            values = spec.grid[name] if table == "grid" else [spec.fixed[name]]
            for value in values:
                if not _plain(value):
                    raise ConfigurationError(
                        f"{where}: {table}.{name}: {value!r} is not a plain value "
                        "(string, number, boolean, date, or lists and tables of them)"
                    )
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = {
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    for table, names in (("grid", spec.grid), ("fixed", spec.fixed)):
        for name in names:
            if name not in accepted:
                raise ConfigurationError(
                    f"{where}: {table}.{name}: {spec.function} has no parameter {name!r}"
                )
    given = set(spec.grid) | set(spec.fixed)
    for name, p in parameters.items():
        required = p.default is inspect.Parameter.empty and p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        )
        if required and name not in given:
            raise ConfigurationError(
                f"{where}: grid: {spec.function} needs {name!r}; give it in [grid] or [fixed]"
            )


def _plain(value: object) -> bool:
    if value is None or isinstance(value, str | int | float | bool | dt.date | dt.time):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def resolve(path: str, what: str = "import path") -> Callable[..., Any]:
    """The object named by ``"package.module:attribute.chain"``."""
    module_name, _, attributes = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:
        raise ConfigurationError(
            f"{what}: cannot import module {module_name!r} ({type(error).__name__}: {error})"
        ) from None
    for attribute in attributes.split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            raise ConfigurationError(
                f"{what}: {module_name!r} has no attribute {attributes!r}"
            ) from None
    if not callable(target):
        raise ConfigurationError(f"{what}: {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def import_path_of(function: Callable[..., Any]) -> str:
    """``module:qualname`` of a module-level function or class attribute (what workers import)."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise ConfigurationError(
            f"{function!r} cannot be imported by a worker: give a function defined at the top "
            "level of an importable module, or its import path 'package.module:name'"
        )
    return f"{module}:{qualname}"
