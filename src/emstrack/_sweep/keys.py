"""Scenario keys: the same function with the same arguments gets the same key, on any machine.

The key is the first 32 hex digits of the SHA-256 of a canonical JSON document holding the
function's import path and the scenario's arguments (keys sorted, no whitespace, dates as ISO
text, tuples as lists). Only the arguments given in the grid file count: a parameter left to its
default is not part of the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

SCENARIO_KEY_TAG = "emstrack.scenario_key"
SCENARIO_TAG = "emstrack.scenario"
"""The scenario's arguments as canonical JSON (what its key is the hash of, with the function)."""
SUPERSEDED_KEY_TAG = "emstrack.superseded_scenario_key"
SWEEP_ID_TAG = "emstrack.sweep_id"
KEY_LENGTH = 32


def canonical(value: object) -> Any:
    """``value`` as JSON-ready data with one spelling per value."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"float": repr(value)}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return {"iso": value.isoformat()}
    if isinstance(value, Mapping):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not a plain value")


def canonical_json(function: str, arguments: Mapping[str, Any]) -> str:
    """The document a scenario key is the hash of."""
    document = {"function": function, "arguments": canonical(dict(arguments))}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_arguments(arguments: Mapping[str, Any]) -> str:
    """The arguments alone as canonical JSON (the ``emstrack.scenario`` tag)."""
    return json.dumps(
        canonical(dict(arguments)), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )


def scenario_key(function: str, arguments: Mapping[str, Any]) -> str:
    """The stable key of ``function`` called with ``arguments``."""
    digest = hashlib.sha256(canonical_json(function, arguments).encode("ascii"))
    return digest.hexdigest()[:KEY_LENGTH]
