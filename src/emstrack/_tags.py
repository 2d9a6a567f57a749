"""The tags emstrack itself sets on runs, named once for the write and the read side."""

from __future__ import annotations

__all__ = ["BOOKKEEPING_TAGS", "PARENT_KEY_TAG", "RUN_KEY_TAG"]

#: The run's emstrack key: how a replay finds a run that already reached the store.
RUN_KEY_TAG = "emstrack.run_key"
#: The parent run's emstrack key, for nested runs replayed before their parent has an id.
PARENT_KEY_TAG = "emstrack.parent_key"
#: Tags that only serve delivery; analysis leaves them out by default.
BOOKKEEPING_TAGS = (RUN_KEY_TAG, PARENT_KEY_TAG)
