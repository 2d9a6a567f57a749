"""What the plugin reads from a tracking store: baselines of earlier runs, MIP gaps of solves.

Only imported when a check needs it; this is where MLflow is loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._baseline import DEFAULT_CHECK, Check
from ._config import BaselineSource
from ._flatten import Scalar

if TYPE_CHECKING:
    from emstrack import Run

TAG_NODEID = "pytest.nodeid"
TAG_KEY = "pytest.key"
TAG_OUTCOME = "pytest.outcome"
TAG_CHECKS = "pytest.checks"
TAG_VERDICT = "pytest.verdict"
BASELINE_PREFIX = "baseline."
GAP_METRIC = "solver.gap_rel"


@dataclass(frozen=True)
class StoreBaseline:
    """A run found as the baseline of a test."""

    run_id: str
    run_name: str
    metrics: dict[str, float]
    tags: dict[str, str]

    def check(self, name: str, current_keys: list[str]) -> Check | None:
        """The baseline of check ``name``: the run's values of the checked keys.

        Keys the run recorded for the check (tag ``pytest.checks``) count even when missing
        now, so a metric that disappeared is found; other runs give the keys checked now.
        """
        prefix = "" if name == DEFAULT_CHECK else f"{name}."
        recorded = _recorded_keys(self.tags.get(TAG_CHECKS), name)
        keys = current_keys + [k for k in recorded or [] if k not in current_keys]
        values: dict[str, Scalar] = {}
        for key in keys:
            if prefix + key in self.metrics:
                values[key] = self.metrics[prefix + key]
            elif prefix + key in self.tags:
                values[key] = self.tags[prefix + key]
        if not values and recorded is None:
            return None
        gap = self.metrics.get(f"{prefix}{GAP_METRIC}")
        return Check(values, gap if gap is not None and math.isfinite(gap) else None)

    def describe(self) -> str:
        """``run 1a2b... ('tests/test_x.py::test_cost')``."""
        return f"run {self.run_id} ({self.run_name!r})"


def find_baseline(
    source: BaselineSource, *, uri: str, experiment: str, test_key: str
) -> StoreBaseline | None:
    """The run ``source`` names for the test with key ``test_key``, or ``None``."""
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    if source.kind == "run":
        try:
            return _baseline(client.get_run(source.run_id))
        except MlflowException:
            return None
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    clauses = [f"tags.`{TAG_KEY}` = '{test_key}'", "attributes.status != 'RUNNING'"]
    if source.kind == "latest":
        clauses.append(f"tags.`{TAG_OUTCOME}` = 'passed'")
    else:
        assert source.tag is not None
        key, value = source.tag
        clauses.append(f"tags.`{key}` = '{value}'")
    runs = client.search_runs(
        [found.experiment_id],
        " and ".join(clauses),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return _baseline(runs[0]) if runs else None


def describe_search(source: BaselineSource, *, uri: str, experiment: str) -> str:
    """What ``find_baseline`` looked for, for a message."""
    from .._uris import redact_uri

    where = f"at {redact_uri(uri)}"
    if source.kind == "run":
        return f"no run {source.run_id} {where}"
    what = "passing run" if source.kind == "latest" else f"run tagged {source.describe()[4:]}"
    return f"no finished {what} of this test in experiment {experiment!r} {where}"


def reported_gap(run: Run) -> float | None:
    """The largest relative MIP gap the solves of ``run`` and its child runs reported."""
    import emstrack

    emstrack.flush()
    run.flush()
    if run.run_id is None:
        return None
    client = _client(run.tracking_uri)
    experiment_id = client.get_run(run.run_id).info.experiment_id
    children = client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{run.run_id}'", max_results=1000
    )
    gaps = [
        point.value
        for run_id in [run.run_id, *(child.info.run_id for child in children)]
        for point in client.get_metric_history(run_id, GAP_METRIC)
        if math.isfinite(point.value)
    ]
    return max(gaps) if gaps else None


def _baseline(run: Any) -> StoreBaseline:
    return StoreBaseline(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
    )


def _recorded_keys(text: str | None, name: str) -> list[str] | None:
    if not text:
        return None
    try:
        recorded = json.loads(text)
    except ValueError:
        return None
    keys = recorded.get(name) if isinstance(recorded, dict) else None
    return [str(k) for k in keys] if isinstance(keys, list) else None


_clients: dict[str, Any] = {}


def _client(uri: str) -> Any:
    client = _clients.get(uri)
    if client is None:
        from mlflow.tracking import MlflowClient

        client = _clients[uri] = MlflowClient(tracking_uri=uri)
    return client
