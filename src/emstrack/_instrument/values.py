"""What an instrumented call logs: its arguments as params and its return value as metrics.

Functions nobody wrote for tracking return whatever suits them: ``(np.float64 cost,
[Device, ...])``. :class:`ReturnValues` (the ``metrics=`` of an instrumented function) maps a
plain tuple positionally (``return_0``, ``return_1``, ... or the names given with
``--returns``; ``_`` skips a position); what maps cleanly is logged, what does not (a list of
arbitrary objects) is only described in the run's ``config.json`` under ``returns``, without a
warning per call. :class:`Arguments` (the ``params=``) logs the arguments that map cleanly as
params and all of them, described where needed, as ``config.json``'s ``arguments``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from .._errors import ConfigurationError

_MAX_DEPTH = 8
_MAX_LIST = 16
_FLOAT_LIMIT = 2**1023


def maps_cleanly(value: object, depth: int = 0) -> bool:
    """Whether ``value`` (a value or a named part of one) maps onto metrics/tags with no loss.

    Deliberately conservative: what this accepts, emstrack's mapping logs without a note.
    """
    if _is_scalar(value):
        return True
    value = _scalar(value)
    kind = _numeric_kind(value)
    if kind is not None:
        return kind
    if depth >= _MAX_DEPTH:
        return False
    children = child_items(value)
    if children is not None:
        return all(maps_cleanly(child, depth + 1) for child in children)
    if isinstance(value, list | tuple) and depth > 0:
        return all(_is_number(item) for item in value)
    return False


def param_cleanly(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is naturally a param.

    A scalar, a short list (at most 16) of scalars, or a structure made only of those. Arrays
    and longer lists are data: they are described in ``config.json``, not logged as params.
    """
    if _is_scalar(value):
        return True
    value = _scalar(value)
    if type(value).__module__ == "numpy" and type(value).__name__ == "ndarray":
        return False  # arrays are data, not settings: described in config.json
    if isinstance(value, list | tuple | set | frozenset) and not hasattr(value, "_asdict"):
        return len(value) <= _MAX_LIST and all(_is_scalar(item) for item in value)
    if depth >= _MAX_DEPTH:
        return False
    children = child_items(value)
    if children is not None:
        return all(param_cleanly(child, depth + 1) for child in children)
    return False


def clean_params(values: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """The parts of ``values`` that are naturally params.

    A structure keeps its clean fields (``day.date``) and drops its data (``day.load_kwh``, an
    array); everything stays described in ``config.json``.
    """
    kept: dict[str, Any] = {}
    for name, value in values.items():
        if param_cleanly(value):
            kept[name] = value
            continue
        children = _named_children(value) if depth < _MAX_DEPTH else None
        if children is not None:
            part = clean_params(dict(children), depth + 1)
            if part:
                kept[name] = part
    return kept


def describe(value: object) -> str:
    """Short text for a value that is not logged: its type, and for sequences their items'."""
    if isinstance(value, list | tuple | set | frozenset):
        kinds = sorted({_type_name(item) for item in value})
        shown = ", ".join(kinds[:4]) + (", ..." if len(kinds) > 4 else "")
        return f"<{type(value).__name__} of {len(value)}{': ' + shown if kinds else ''}>"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"<{_type_name(value)} shape={shape}>"
    return f"<{_type_name(value)}>"


def parse_names(text: str | Sequence[str] | None, label: str) -> tuple[str, ...] | None:
    """``"total_cost,_"`` -> ``("total_cost", "_")``; checked for empty and repeated names."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise ConfigurationError(
            f"{label}: return names must be a comma-separated list such as 'total_cost,_', "
            f"not {text!r}"
        )
    named = [p for p in parts if p != "_"]
    repeated = sorted({p for p in named if named.count(p) > 1})
    if repeated:
        raise ConfigurationError(f"{label}: return name {repeated[0]!r} is given twice")
    return tuple(parts)


class Arguments:
    """``params=`` of an instrumented function: clean arguments as params, all in config.json."""

    def __init__(self, log_inputs: bool) -> None:
        self.log_inputs = log_inputs
        self.pending: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

    def __call__(self, **arguments: Any) -> dict[str, Any]:
        from .._tracking.run import active_run

        run = active_run()
        if run is not None and self.log_inputs:
            self.pending[run] = arguments
            run.log_config({"arguments": arguments})
        return clean_params(arguments)


class ReturnValues:
    """``metrics=`` of an instrumented function: tuples positionally, the rest described."""

    def __init__(self, names: tuple[str, ...] | None, arguments: Arguments | None) -> None:
        self.names = names
        self.arguments = arguments

    def __call__(self, result: Any) -> Any:
        if result is None:
            return None
        logged: dict[str, Any] = {}
        described: dict[str, str] = {}
        for name, item in self._items(result):
            if name == "_":
                continue
            if maps_cleanly(item, depth=1):
                logged[name] = item
            else:
                self._split(name, item, logged, described)
        if described:
            self._describe(described)
        return logged

    def _items(self, result: Any) -> list[tuple[str, Any]]:
        if isinstance(result, tuple) and not hasattr(result, "_asdict"):
            names = self.names or ()
            return [
                (names[i] if i < len(names) else f"return_{i}", item)
                for i, item in enumerate(result)
            ]
        if self.names:
            return [(self.names[0], result)]
        children = _named_children(result)
        if children is not None:
            return children
        return [("value", result)]

    def _split(
        self, name: str, item: Any, logged: dict[str, Any], described: dict[str, str]
    ) -> None:
        """Log the clean parts of a structure (one level down), describe the rest."""
        children = _named_children(item)
        if children is None:
            described[name] = describe(item)
            return
        clean = {key: child for key, child in children if maps_cleanly(child, depth=2)}
        if clean:
            logged[name] = clean
        for key, child in children:
            if key not in clean:
                described[f"{name}.{key}"] = describe(child)

    def _describe(self, described: dict[str, str]) -> None:
        from .._tracking.run import active_run

        run = active_run()
        if run is None:
            return
        if self.arguments is None:
            run.log_config({"returns": described}, name="returns.json")
            return
        document: dict[str, Any] = {"returns": described}
        if self.arguments.log_inputs:
            document = {"arguments": self.arguments.pending.pop(run, {}), **document}
        run.log_config(document)


def _scalar(value: object) -> object:
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        item = getattr(value, "item", None)
        if callable(item):
            return item()
    return value


def _is_scalar(value: object) -> bool:
    value = _scalar(value)
    if value is None or isinstance(value, bool | str | bytes | float | decimal.Decimal):
        return True
    if isinstance(value, int):
        return -_FLOAT_LIMIT < value < _FLOAT_LIMIT
    if isinstance(value, enum.Enum):
        return _is_scalar(value.value)
    return isinstance(value, dt.date | dt.time | dt.timedelta | PurePath | uuid.UUID)


def _is_number(value: object) -> bool:
    value = _scalar(value)
    return isinstance(value, int | float | decimal.Decimal) and (
        not isinstance(value, int) or -_FLOAT_LIMIT < value < _FLOAT_LIMIT
    )


def _numeric_kind(value: object) -> bool | None:
    """For arrays, Series and DataFrames: whether they are numeric (1-D for arrays)."""
    cls = type(value)
    module = cls.__module__
    if module == "numpy" and cls.__name__ == "ndarray":
        return bool(value.ndim == 1 and value.dtype.kind in "biuf")  # type: ignore[attr-defined]
    if module.startswith("pandas") and cls.__name__ == "Series":
        return bool(value.dtype.kind in "biuf")  # type: ignore[attr-defined]
    if module.startswith("pandas") and cls.__name__ == "DataFrame":
        return all(dtype.kind in "biuf" for dtype in value.dtypes)  # type: ignore[attr-defined]
    return None


def child_items(value: object) -> list[Any] | None:
    named = _named_children(value)
    return None if named is None else [child for _, child in named]


def _named_children(value: object) -> list[tuple[str, Any]] | None:
    if isinstance(value, Mapping):
        return [(str(key), child) for key, child in value.items()]
    if hasattr(type(value), "model_fields") and hasattr(value, "model_dump"):
        names = list(type(value).model_fields)  # type: ignore[attr-defined]
        extra = getattr(value, "model_extra", None) or {}
        return [(name, getattr(value, name, None)) for name in [*names, *extra]]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return list(value._asdict().items())
    return None


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


__all__ = [
    "Arguments",
    "ReturnValues",
    "clean_params",
    "describe",
    "maps_cleanly",
    "param_cleanly",
    "parse_names",
]
