"""Per-item and per-session slots the plugin's parts share (``pytest.Stash`` keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._config import Settings
    from ._history import TestRun

SETTINGS: pytest.StashKey[Settings] = pytest.StashKey()
"""The session's options, read once."""
TEMPORARY_STORE: pytest.StashKey[str] = pytest.StashKey()
"""Folder of the session's temporary store (``emstrack_run`` without ``--emstrack``)."""
TEST_RUN: pytest.StashKey[TestRun] = pytest.StashKey()
"""The test's own tracked run, while it is open."""
PHASES: pytest.StashKey[dict[str, tuple[str, BaseException | None]]] = pytest.StashKey()
"""Outcome (and exception) of each phase of a test run so far: setup, call, teardown."""
CHECKS: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
"""What each ``check`` of the test found, for the terminal summary."""
WRITTEN: pytest.StashKey[list[dict[str, Any]]] = pytest.StashKey()
"""Baseline files the test wrote, with what changed."""
RECORDED: pytest.StashKey[tuple[str, str]] = pytest.StashKey()
"""Run id and (redacted) store of the test's recorded run, once it ended."""
REPORTED: pytest.StashKey[int] = pytest.StashKey()
"""How many of the test's checks were already attached to a report."""
