"""Rebuild a recorded call's arguments from ``config.json``, exactly, or say why not.

Each argument is validated against its parameter's annotation with pydantic (a model is
re-validated from its fields, enums come back from their values, tuples, paths and dates from
their JSON form); an unannotated parameter gets the JSON value as it is. The rebuilt value must
serialise to exactly what ``config.json`` holds, else the argument is named as not re-creatable.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import RerunError


@dataclass(frozen=True, slots=True)
class Call:
    """Positional and keyword arguments of a call."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def rebuild(function: Callable[..., Any], section: Mapping[str, Any], run_id: str) -> Call:
    """The arguments recorded in ``config.json``'s ``call`` section, as ``function`` takes them.

    Raises:
        RerunError: An argument was not kept (a DataFrame, another object, a secret) or does
            not come back as recorded; the message names it.

    """
    not_kept = dict(section.get("not_kept") or {})
    if not_kept:
        named = "; ".join(f"argument {name!r}: {why}" for name, why in not_kept.items())
        raise RerunError(f"run {run_id} cannot be re-created from config.json: {named}")
    recorded = dict(section.get("arguments") or {})
    signature = inspect.signature(function)
    hints = _hints(function)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if name not in recorded:
            if parameter.default is inspect.Parameter.empty and parameter.kind not in {
                inspect.Parameter.VAR_POSITIONAL
            }:
                raise RerunError(
                    f"run {run_id}: config.json has no value for the argument {name!r}"
                )
            continue
        value = _validated(name, recorded.pop(name), hints.get(name), run_id)
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
        else:
            kwargs[name] = value
    kwargs.update(recorded)  # what went into **kwargs
    return Call(tuple(args), kwargs)


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """The parameters' annotations, resolved; one that does not resolve is left out."""
    try:
        return typing.get_type_hints(function)
    except Exception:
        pass
    namespace = dict(getattr(function, "__globals__", {}))
    hints = {}
    for name, annotation in getattr(function, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception:
            continue
    return hints


def _validated(name: str, value: Any, annotation: Any, run_id: str) -> Any:
    from .._tracking.mapping import Redactor, to_jsonable

    if annotation is None or annotation is Any:
        return value
    rebuilt = _adapt(annotation, value)
    never = Redactor(_NEVER)
    if to_jsonable(rebuilt, never) != to_jsonable(value, never):
        raise RerunError(
            f"run {run_id}: argument {name!r} does not come back as recorded in config.json "
            f"(recorded {value!r}, rebuilt {rebuilt!r})"
        )
    return rebuilt


def _adapt(annotation: Any, value: Any) -> Any:
    from pydantic import BaseModel, ConfigDict, TypeAdapter

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.model_validate(value)
    for config in (None, ConfigDict(arbitrary_types_allowed=True)):
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=config)
        except Exception:
            continue
        try:
            return adapter.validate_python(value)
        except Exception:
            return value
    return value


_NEVER = re.compile(r"(?!)")
"""A key pattern that matches nothing: secrets were refused before, nothing to redact."""
