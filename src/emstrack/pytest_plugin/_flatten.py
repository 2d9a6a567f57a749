"""Turn what ``check()`` is given into flat ``{dotted key: number or text}``, like a run's metrics.

Accepted: mappings, pydantic models, dataclasses, NamedTuples and pandas Series (one value per
label), nested to any depth (``battery.capacity_kwh``). Numbers stay numbers (bools stay bools,
compared as 0/1), strings and enums become text, ``None`` means "not there". Nothing is
imported: the kinds are recognised by what the objects have.
"""

from __future__ import annotations

import dataclasses
import enum
import numbers
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigurationError

Scalar = bool | int | float | str


def flatten(metrics: object) -> dict[str, Scalar]:
    """Flat metrics of ``metrics``.

    Raises:
        ConfigurationError: ``metrics`` is not mapping-like, or a value cannot be compared (a
            list, a DataFrame, an object); the message names the key.

    """
    items = _items(metrics)
    if items is None:
        raise ConfigurationError(
            "check() needs a mapping, pydantic model, dataclass, NamedTuple or pandas Series "
            f"of metrics, not {type(metrics).__name__}"
        )
    out: dict[str, Scalar] = {}
    _collect(items, "", out)
    return out


def _collect(items: list[tuple[object, object]], prefix: str, out: dict[str, Scalar]) -> None:
    for raw_key, value in items:
        key = f"{prefix}{raw_key}"
        scalar = _scalar(value)
        if scalar is not None:
            out[key] = scalar
            continue
        if value is None:
            continue
        nested = _items(value)
        if nested is None:
            raise ConfigurationError(
                f"metric {key!r}: a {type(value).__name__} cannot be compared; check() takes "
                "numbers and text (pass a list's elements as metrics of their own)"
            )
        _collect(nested, key + ".", out)


def _scalar(value: object) -> Scalar | None:
    if isinstance(value, enum.Enum):
        return _scalar(value.value)
    if isinstance(value, bool | str):
        return value
    if type(value).__name__ == "bool_":  # numpy.bool_
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def _items(value: object) -> list[tuple[object, object]] | None:
    if isinstance(value, Mapping):
        return list(value.items())
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        dumped: Any = dump()
        return list(dumped.items()) if isinstance(dumped, Mapping) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    as_dict = getattr(value, "_asdict", None)
    if isinstance(value, tuple) and callable(as_dict):
        return list(as_dict().items())
    if hasattr(value, "index") and hasattr(value, "dtype") and not hasattr(value, "columns"):
        items = getattr(value, "items", None)
        if callable(items):  # pandas Series
            return list(items())
    return None
