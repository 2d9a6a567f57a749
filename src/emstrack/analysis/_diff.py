"""Two runs side by side: every param, metric, tag that matters, dataset digest and status.

One row per compared item, columns ``kind`` (``status``, ``param``, ``metric``, ``tag``,
``dataset``), ``key``, the two values, ``abs_diff`` and ``rel_diff`` (metrics only) and
``result``:

* ``same`` / ``changed`` - params, tags, statuses and dataset digests compare as text; metrics
  are the same when ``|a - b| <= atol + rtol * max(|a|, |b|)`` (NaN equals NaN) for their
  latest values and, with a history reader, at every step (``changed (step N)`` names the
  first step that differs when the latest values agree);
* ``same (within MIP gap)`` - an objective metric (``solver.objective``, or a name ending in
  ``objective``) whose difference is inside the relative MIP gap either run recorded
  (``solver.gap_rel``): two optimal MIP plans may differ by that much;
* ``not compared (timing)`` - wall-clock figures (a name with ``time``, ``seconds`` or
  ``duration``, or ending in ``_s``/``_ms``), which differ on every run;
* ``only in <a>`` / ``only in <b>`` - logged by one run only (a metric counts as changed).

Tags that matter: every tag but MLflow's own (``mlflow.*``) and emstrack's bookkeeping
(``emstrack.run_key``, ``emstrack.parent_key``, ``emstrack.rerun_of``). Datasets are matched by
name (one row per dataset input, its context in the key) and compared by digest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._errors import describe
from .._uris import redact_uri
from ._errors import RunNotFoundError, StoreError

COLUMNS = ("kind", "key", "a", "b", "abs_diff", "rel_diff", "result")
SAME = "same"
CHANGED = "changed"
WITHIN_GAP = "same (within MIP gap)"
TIMING = "not compared (timing)"
GAP_METRIC = "solver.gap_rel"
_IGNORED_TAGS = frozenset({"emstrack.run_key", "emstrack.parent_key", "emstrack.rerun_of"})
_TIMING_WORDS = frozenset({"time", "times", "seconds", "duration", "elapsed", "runtime"})
_AGREEING = frozenset({SAME, WITHIN_GAP, TIMING})


@dataclass(frozen=True, slots=True)
class Tolerance:
    """When two metric values count as the same."""

    rtol: float = 1e-9
    atol: float = 0.0

    def same(self, a: float, b: float) -> bool:
        """Whether ``a`` and ``b`` agree (NaN agrees with NaN)."""
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= self.atol + self.rtol * max(abs(a), abs(b))


def is_timing(key: str) -> bool:
    """Whether metric ``key`` is a wall-clock figure (see the module docstring)."""
    words = key.rsplit(".", 1)[-1].lower().split("_")
    return bool(_TIMING_WORDS & set(words)) or (len(words) > 1 and words[-1] in {"s", "ms"})


def is_objective(key: str) -> bool:
    """Whether metric ``key`` is a solver objective, compared within the MIP gap."""
    return key.lower().endswith("objective")


def fetch_run(client: Any, run_id: str, uri: str) -> Any:
    """The MLflow run ``run_id``, or :class:`RunNotFoundError` / :class:`StoreError`."""
    try:
        return client.get_run(run_id)
    except Exception as error:
        code = getattr(error, "error_code", "")
        text = str(error)
        if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
            raise RunNotFoundError(f"no run {run_id!r} in {redact_uri(uri)}") from None
        raise StoreError(
            f"reading run {run_id!r} from {redact_uri(uri)} failed: {describe(error)}"
        ) from None


History = Callable[[str, str], list[tuple[int, float]]]
"""``(run_id, key) -> [(step, value), ...]``: a metric's logged points."""


def client_history(client: Any) -> History:
    """A :data:`History` reading ``MlflowClient.get_metric_history``."""

    def history(run_id: str, key: str) -> list[tuple[int, float]]:
        points = client.get_metric_history(run_id, key)
        return sorted((int(point.step), float(point.value)) for point in points)

    return history


def compare_runs(
    run_a: Any,
    run_b: Any,
    tolerance: Tolerance,
    names: tuple[str, str] = ("a", "b"),
    history: History | None = None,
) -> pd.DataFrame:
    """The comparison table of two MLflow ``Run`` entities (see the module docstring).

    With ``history``, a metric whose latest values agree is also compared step by step.
    """
    rows: list[dict[str, Any]] = [
        _text_row("status", "status", run_a.info.status, run_b.info.status)
    ]
    data_a, data_b = run_a.data, run_b.data
    for key in sorted(set(data_a.params) | set(data_b.params)):
        rows.append(_text_row("param", key, data_a.params.get(key), data_b.params.get(key)))
    gap = _gap(data_a.metrics, data_b.metrics)
    for key in sorted(set(data_a.metrics) | set(data_b.metrics)):
        row = _metric_row(key, data_a.metrics.get(key), data_b.metrics.get(key), tolerance, gap)
        if history is not None and row["result"] == SAME:
            row["result"] = _steps(history, run_a.info.run_id, run_b.info.run_id, key, tolerance)
        rows.append(row)
    tags_a, tags_b = _tags(data_a.tags), _tags(data_b.tags)
    for key in sorted(set(tags_a) | set(tags_b)):
        rows.append(_text_row("tag", key, tags_a.get(key), tags_b.get(key)))
    datasets_a, datasets_b = _datasets(run_a), _datasets(run_b)
    for key in sorted(set(datasets_a) | set(datasets_b)):
        rows.append(_text_row("dataset", key, datasets_a.get(key), datasets_b.get(key)))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    first, second = names
    frame["result"] = frame["result"].replace(
        {"only in a": f"only in {first}", "only in b": f"only in {second}"}
    )
    metrics = frame[frame["kind"] == "metric"]
    frame.attrs.update(
        run_a=run_a.info.run_id,
        run_b=run_b.info.run_id,
        changed_metrics=[
            str(key)
            for key, result in zip(metrics["key"], metrics["result"], strict=True)
            if result not in _AGREEING
        ],
        datasets=_dataset_verdict(frame),
    )
    return frame.rename(columns={"a": first, "b": second})


def only_changed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose result is not an agreement."""
    kept: pd.DataFrame = frame[~frame["result"].isin(_AGREEING)].reset_index(drop=True)
    kept.attrs.update(frame.attrs)
    return kept


def _text_row(kind: str, key: str, a: object, b: object) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key,
        "a": a,
        "b": b,
        "abs_diff": None,
        "rel_diff": None,
        "result": _presence(a, b) or (SAME if a == b else CHANGED),
    }


def _presence(a: object, b: object) -> str | None:
    if a is None and b is not None:
        return "only in b"
    if b is None and a is not None:
        return "only in a"
    return None


def _metric_row(
    key: str, a: float | None, b: float | None, tolerance: Tolerance, gap: float | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": "metric", "key": key, "a": a, "b": b}
    row["abs_diff"] = row["rel_diff"] = None
    presence = _presence(a, b)
    if presence is not None or a is None or b is None:
        row["result"] = presence or SAME
        return row
    difference = abs(a - b)
    scale = max(abs(a), abs(b))
    row["abs_diff"] = difference
    row["rel_diff"] = 0.0 if difference == 0 else (difference / scale if scale else math.inf)
    if is_timing(key):
        row["result"] = TIMING
    elif tolerance.same(a, b):
        row["result"] = SAME
    elif gap is not None and is_objective(key) and difference <= tolerance.atol + gap * scale:
        row["result"] = WITHIN_GAP
    else:
        row["result"] = CHANGED
    return row


def _steps(history: History, run_a: str, run_b: str, key: str, tolerance: Tolerance) -> str:
    """``same``, or ``changed (step N)`` at the first step whose values differ."""
    points_a, points_b = history(run_a, key), history(run_b, key)
    values_b = dict(points_b)
    for step, value in points_a:
        other = values_b.pop(step, None)
        if other is None or not tolerance.same(value, other):
            return f"{CHANGED} (step {step})"
    if values_b:
        return f"{CHANGED} (step {min(values_b)})"
    return SAME


def _gap(a: dict[str, float], b: dict[str, float]) -> float | None:
    gaps = [
        value
        for value in (a.get(GAP_METRIC), b.get(GAP_METRIC))
        if value is not None and math.isfinite(value)
    ]
    return max(gaps) if gaps else None


def _tags(tags: dict[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in tags.items()
        if not key.startswith("mlflow.") and key not in _IGNORED_TAGS
    }


def _datasets(run: Any) -> dict[str, str]:
    inputs = getattr(run, "inputs", None)
    found: dict[str, str] = {}
    for item in getattr(inputs, "dataset_inputs", None) or []:
        context = next((tag.value for tag in item.tags if tag.key == "mlflow.data.context"), None)
        key = f"{item.dataset.name} [{context}]" if context else item.dataset.name
        found[key] = item.dataset.digest
    return found


def _dataset_verdict(frame: pd.DataFrame) -> str:
    results = frame.loc[frame["kind"] == "dataset", "result"].tolist()
    if not results:
        return "none recorded"
    return SAME if all(result == SAME for result in results) else CHANGED
