"""A test's own tracked run: named by node id, tagged with outcome and git state, holding checks.

Opened when the test's ``emstrack_run`` fixture (or, with ``--emstrack``, ``ems_regression``)
is set up and closed at its teardown: pipelines the test calls become its child runs, and their
captured PuLP solves are what a check reads a MIP gap from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ._compare import Row, worst
from ._flatten import Scalar
from ._git import git_tags
from ._store import (
    BASELINE_PREFIX,
    TAG_CHECKS,
    TAG_KEY,
    TAG_NODEID,
    TAG_OUTCOME,
    TAG_VERDICT,
)

if TYPE_CHECKING:
    from pathlib import Path

    from emstrack import Run


def test_key(nodeid: str) -> str:
    """A short stable key of a test, safe inside an MLflow filter string."""
    return hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:16]


class TestRun:
    """One test's tracked run."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, run: Run, nodeid: str) -> None:
        self.run = run
        self.nodeid = nodeid
        self._checks: dict[str, list[str]] = {}
        self._rows: list[Row] = []

    @classmethod
    def open(
        cls, item: pytest.Item, *, experiment: str, tracking_uri: str | None, root: Path
    ) -> TestRun:
        """Start the run of ``item`` (never nested in a run that happens to be open)."""
        import emstrack

        tags = {TAG_NODEID: item.nodeid, TAG_KEY: test_key(item.nodeid), **git_tags(root)}
        run = emstrack.tracked_run(
            item.nodeid,
            experiment=experiment,
            tracking_uri=tracking_uri,
            nested=False,
            tags=tags,
        )
        run.__enter__()
        test_run = cls(run, item.nodeid)
        params = _simple_params(item)
        if params:
            run.log_params(params)
        return test_run

    def log_check(
        self,
        name: str,
        prefix: str,
        current: Mapping[str, Scalar],
        baseline: Mapping[str, Scalar] | None,
        rows: Sequence[Row],
    ) -> None:
        """Log a check's values as metrics (text as tags), its baseline as ``baseline.*``."""
        self._checks[name] = list(current)
        self._rows.extend(rows)
        self.run.log_metrics({prefix + key: value for key, value in current.items()})
        if baseline:
            self.run.log_metrics(
                {BASELINE_PREFIX + prefix + key: value for key, value in baseline.items()}
            )

    def close(self, outcome: str, error: BaseException | None) -> None:
        """Tag the outcome and end the run: FAILED with the test's exception, else FINISHED."""
        tags: dict[str, Any] = {TAG_OUTCOME: outcome}
        if self._checks:
            tags[TAG_CHECKS] = json.dumps(self._checks, separators=(",", ":"))
            tags[TAG_VERDICT] = worst(self._rows).value
        try:
            self.run.set_tags(tags)
        finally:
            if outcome in ("failed", "error") and error is not None:
                self.run.__exit__(type(error), error, error.__traceback__)
            else:
                self.run.__exit__(None, None, None)


def _simple_params(item: pytest.Item) -> dict[str, object]:
    callspec = getattr(item, "callspec", None)
    params = getattr(callspec, "params", None) or {}
    return {
        str(key): value
        for key, value in params.items()
        if isinstance(value, bool | int | float | str)
    }
