"""Params typed back from the text MLflow stores to what they were.

emstrack logs params canonically (``true``/``false``, ``7`` for both ``7`` and ``7.0``,
``0.25``, ``nan``, ``1e-05``), so each column is typed by its values:

* every value ``true``/``false`` (or Python's ``True``/``False``) -> ``bool``;
* every value a canonical integer (no sign but ``-``, no leading zero) -> ``int64``;
* every value a number (integers included, ``nan``/``inf`` too) -> ``float64``;
* anything else stays text (``str``), so ``"0042"`` keeps its zeros.

Columns with missing values use pandas' nullable ``boolean`` and ``Int64`` (floats use NaN).
A schema (a pydantic model, nested models flattened to dotted keys like the params are)
decides instead for the fields it declares: a ``float`` field stays float even when every
value logged happened to be integral.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["schema_types", "type_column", "type_frame"]

_TRUE = frozenset({"true", "True"})
_FALSE = frozenset({"false", "False"})
_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_FLOAT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|-?inf|nan")
_INT64_MAX = 2**63 - 1


def type_frame(frame: pd.DataFrame, declared: dict[str, type] | None = None) -> pd.DataFrame:
    """Each column of ``frame`` typed by :func:`type_column`."""
    declared = declared or {}
    typed = {name: type_column(frame[name], declared.get(str(name))) for name in frame.columns}
    return pd.DataFrame(typed, index=frame.index, columns=frame.columns)


def type_column(values: pd.Series, declared: type | None = None) -> pd.Series:
    """``values`` (text and missing) as booleans, integers, floats or text (module docstring)."""
    present = values.dropna()
    if present.empty:
        return values
    uniques = [str(value) for value in present.unique()]
    kind = _declared_kind(declared, uniques) or _value_kind(uniques)
    if kind == "text":
        return values.astype("object").infer_objects()
    # Each distinct text is converted once and spread by its code (-1: missing), which is what
    # ``values.map(mapping).astype(...)`` gives, without a Python lookup per row.
    codes, distinct = pd.factorize(values)
    texts = [str(value) for value in distinct]
    missing = codes < 0
    at = np.where(missing, 0, codes)
    if kind == "bool":
        flags = np.array([text in _TRUE for text in texts], dtype=bool)[at]
        if missing.any():
            return pd.Series(
                pd.arrays.BooleanArray(flags, missing), index=values.index, name=values.name
            )
        return pd.Series(flags, index=values.index, name=values.name)
    if kind == "int":
        numbers = np.array([int(text) for text in texts], dtype="int64")[at]
        if missing.any():
            return pd.Series(
                pd.arrays.IntegerArray(numbers, missing), index=values.index, name=values.name
            )
        return pd.Series(numbers, index=values.index, name=values.name)
    floats = np.array([float(text) for text in texts], dtype="float64")[at]
    floats[missing] = np.nan
    return pd.Series(floats, index=values.index, name=values.name)


def _value_kind(uniques: list[str]) -> str:
    if all(text in _TRUE or text in _FALSE for text in uniques):
        return "bool"
    if all(_INT.fullmatch(text) and abs(int(text)) <= _INT64_MAX for text in uniques):
        return "int"
    if all(_FLOAT.fullmatch(text) for text in uniques):
        return "float"
    return "text"


def _declared_kind(declared: type | None, uniques: list[str]) -> str | None:
    """The kind a schema declares, if every value can take it; else ``None`` (values decide)."""
    if declared is None:
        return None
    if declared is bool:
        return "bool" if all(t in _TRUE or t in _FALSE for t in uniques) else None
    if declared is int:
        return "int" if _value_kind(uniques) == "int" else None
    if declared is float:
        return "float" if _value_kind(uniques) in {"int", "float"} else None
    if declared is str or (isinstance(declared, type) and issubclass(declared, enum.Enum)):
        return "text"
    return None


def schema_types(model: type[Any]) -> dict[str, type]:
    """Dotted param key -> declared scalar type, for a pydantic model and its nested models."""
    out: dict[str, type] = {}
    _collect(model, "", out)
    return out


def _collect(model: type[Any], prefix: str, out: dict[str, type]) -> None:
    fields = getattr(model, "model_fields", None)
    if not isinstance(fields, dict):
        return
    for name, field in fields.items():
        annotation = _unwrap(field.annotation)
        key = f"{prefix}{name}"
        if annotation is None:
            continue
        if hasattr(annotation, "model_fields"):
            _collect(annotation, key + ".", out)
        elif isinstance(annotation, type):
            out[key] = annotation


def _unwrap(annotation: Any) -> Any:
    """``X`` for ``X``, ``X | None`` and ``Optional[X]``; ``None`` for other unions."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else None
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return annotation if origin is None else None
