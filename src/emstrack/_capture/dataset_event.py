"""A DataFrame as a dataset-input spool event: name, source, digest, schema and profile.

Shared by :meth:`emstrack.Run.log_dataset` and the data-lineage hook (``datasets``); it knows
nothing of runs, so the run can use it without importing the hook.
"""

from __future__ import annotations

import json
import threading
from typing import Any

__all__ = [
    "BUNDLED_SAMPLE",
    "CONTEXT_TAG",
    "DIGEST_FIELD_LENGTH",
    "MAX_NAME_LENGTH",
    "USER_DATAFRAME",
    "USER_HOUSEHOLD_DATA",
    "dataset_event",
]

DIGEST_FIELD_LENGTH = 32
"""Hex digits of the SHA-256 kept in MLflow's ``digest`` field (which holds at most 36)."""
USER_DATAFRAME = "user DataFrame"
USER_HOUSEHOLD_DATA = "user HouseholdData"
BUNDLED_SAMPLE = "bundled sample"
CONTEXT_TAG = "mlflow.data.context"
MAX_NAME_LENGTH = 500
"""MLflow's limit on a dataset name (and on an input tag value); longer ones are cut."""
_MLFLOW_TYPES = {"f": "double", "i": "long", "u": "long", "b": "boolean", "M": "datetime"}


def dataset_event(
    frame: Any,
    name: str,
    source: str | None = None,
    context: str | None = None,
    *,
    digest: str | None = None,
) -> dict[str, Any]:
    """The spool event recording ``frame`` as a dataset input (see the module docstring).

    ``digest`` is the frame's :func:`~.digest.frame_digest` when the caller computed it.
    """
    from .digest import frame_digest

    full = digest if digest is not None else frame_digest(frame)
    source_text = source if source is not None else USER_DATAFRAME
    schema, profile = _described(frame, full)
    is_code = source_text in {USER_DATAFRAME, USER_HOUSEHOLD_DATA}
    event: dict[str, Any] = {
        "e": "dataset",
        "name": name[:MAX_NAME_LENGTH],
        "digest": full[:DIGEST_FIELD_LENGTH],
        "source_type": "code" if is_code else "local",
        "source": json.dumps(
            {"tags": {"emstrack.source": source_text}} if is_code else {"uri": source_text}
        ),
        "schema": schema,
        "profile": profile,
        "context": context[:MAX_NAME_LENGTH] if context else None,
    }
    return event


_MAX_DESCRIBED = 64
_descriptions: dict[tuple[str, str], tuple[str, str]] = {}
_descriptions_lock = threading.Lock()


def _described(frame: Any, full: str) -> tuple[str, str]:
    """The frame's schema and profile as JSON; remembered for a frame seen before.

    The digest covers the rows, column names, dtypes and the index's UTC instants; with the
    index's dtype (its time zone, which the profile's times are written in) it determines both.
    A sweep records the same building's frame in every scenario.
    """
    key = (full, str(frame.index.dtype))
    found = _descriptions.get(key)
    if found is not None:
        return found
    profile: dict[str, Any] = {
        "num_rows": len(frame),
        "num_elements": int(frame.size),
        "sha256": full,
    }
    index = frame.index
    if len(index) and hasattr(index, "min") and str(index.dtype).startswith("datetime"):
        profile["time_start"] = index.min().isoformat()
        profile["time_end"] = index.max().isoformat()
    schema = {
        "mlflow_colspec": [
            {
                "type": _MLFLOW_TYPES.get(frame[column].dtype.kind, "string"),
                "name": str(column),
                "required": True,
            }
            for column in frame.columns
        ]
    }
    found = (json.dumps(schema), json.dumps(profile))
    with _descriptions_lock:
        if len(_descriptions) >= _MAX_DESCRIBED:
            _descriptions.pop(next(iter(_descriptions)))
        _descriptions[key] = found
    return found
