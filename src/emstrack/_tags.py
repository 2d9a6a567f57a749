"""The tags emstrack itself sets on runs, named once for the write and the read side."""

from __future__ import annotations

__all__ = [
    "BOOKKEEPING_TAGS",
    "FUNCTION_FILE_TAG",
    "FUNCTION_PATH_TAG",
    "PARENT_KEY_TAG",
    "RUN_KEY_TAG",
    "TRACKING_OPTIONS_TAG",
]

#: The run's emstrack key: how a replay finds a run that already reached the store.
RUN_KEY_TAG = "emstrack.run_key"
#: The parent run's emstrack key, for nested runs replayed before their parent has an id.
PARENT_KEY_TAG = "emstrack.parent_key"
#: The tracked function's import path, its script (for ``__main__``) and tracking options:
#: what ``emstrack rerun`` reads back (see :mod:`emstrack._reproduce.recording`).
FUNCTION_PATH_TAG = "emstrack.function_path"
FUNCTION_FILE_TAG = "emstrack.function_file"
TRACKING_OPTIONS_TAG = "emstrack.tracking_options"
#: Tags that serve delivery and reruns; analysis leaves them out by default.
BOOKKEEPING_TAGS = (
    RUN_KEY_TAG,
    PARENT_KEY_TAG,
    FUNCTION_PATH_TAG,
    FUNCTION_FILE_TAG,
    TRACKING_OPTIONS_TAG,
)
