"""Compare obtained metrics with their baseline: one row per metric, with a verdict.

* Numbers: equal within ``atol + rtol * |baseline|`` (defaults rtol 1e-6, atol 1e-9; per
  metric ``tolerances={"total_cost": {"rtol": 1e-3}}``, keys may be ``fnmatch`` patterns such as
  ``"daily.*"``). Beyond it, the direction decides: better is ``improved`` (passes), worse is
  ``regressed`` (fails), a metric whose name tells no direction is ``changed`` (fails).
* A relative MIP gap reported for the solves (current or baseline) widens objective-derived
  metrics (names with ``objective`` or ``cost``; ``objective_metrics=`` to choose): a
  difference within ``gap * max(|baseline|, |current|)`` is ``within gap`` (passes).
* Text (e.g. ``solver_status``) must be equal; NaN equals NaN.
* A metric only in the current values is ``new``, only in the baseline ``missing``: both fail.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError
from ._direction import higher_is_better
from ._flatten import Scalar

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
_DIRECTIONS = {"lower": False, "higher": True}
_OBJECTIVE_WORDS = ("objective", "cost")
_SPLIT = re.compile(r"[^a-z0-9]+")


class Verdict(enum.Enum):
    """What a metric's comparison says; the first four fail the test."""

    REGRESSED = "regressed"
    CHANGED = "changed"
    NEW = "new"
    MISSING = "missing"
    WITHIN_GAP = "within gap"
    IMPROVED = "improved"
    OK = "ok"

    @property
    def fails(self) -> bool:
        """Whether this verdict fails the check."""
        return self in _FAILING


_FAILING = frozenset({Verdict.REGRESSED, Verdict.CHANGED, Verdict.NEW, Verdict.MISSING})
_ORDER = {verdict: position for position, verdict in enumerate(Verdict)}


@dataclass(frozen=True)
class Tolerance:
    """Relative and absolute tolerance of one metric."""

    rtol: float
    atol: float

    def allowance(self, baseline: float) -> float:
        """The absolute difference allowed around ``baseline``."""
        return self.atol + self.rtol * abs(baseline)

    def describe(self) -> str:
        """``rtol=1e-06 atol=1e-09``."""
        return f"rtol={self.rtol:g} atol={self.atol:g}"


@dataclass(frozen=True)
class Rules:
    """Tolerances, directions and objective metrics of one check, layered from general to specific.

    Build with :meth:`layered`: defaults < marker ``rtol``/``atol`` < ``check`` ``rtol``/``atol``
    < marker ``tolerances`` < ``check`` ``tolerances`` (a metric's own tolerance beats the
    general one); directions and objective metrics likewise.
    """

    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    tolerances: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    directions: Mapping[str, bool] = field(default_factory=dict)
    objective_metrics: tuple[str, ...] | None = None

    @classmethod
    def layered(cls, *layers: Mapping[str, Any]) -> Rules:
        """Rules from option mappings, later layers winning.

        Each layer may have ``rtol``, ``atol``, ``tolerances``, ``directions`` and
        ``objective_metrics``; ``None`` values are ignored.

        Raises:
            ConfigurationError: A value has the wrong type or range (the message names it).

        """
        rtol, atol = DEFAULT_RTOL, DEFAULT_ATOL
        tolerances: dict[str, dict[str, float]] = {}
        directions: dict[str, bool] = {}
        objective: tuple[str, ...] | None = None
        for layer in layers:
            if layer.get("rtol") is not None:
                rtol = _non_negative("rtol", layer["rtol"])
            if layer.get("atol") is not None:
                atol = _non_negative("atol", layer["atol"])
        for layer in layers:
            for pattern, spec in _mapping("tolerances", layer.get("tolerances")).items():
                tolerances.setdefault(str(pattern), {}).update(_tolerance_spec(pattern, spec))
            for pattern, direction in _mapping("directions", layer.get("directions")).items():
                directions[str(pattern)] = _direction(pattern, direction)
            if layer.get("objective_metrics") is not None:
                objective = _names("objective_metrics", layer["objective_metrics"])
        return cls(rtol, atol, tolerances, directions, objective)

    def tolerance(self, metric: str) -> Tolerance:
        """The tolerance of ``metric``: its own (exact key, else a pattern), else general."""
        spec = self.tolerances.get(metric) or _match(self.tolerances, metric) or {}
        return Tolerance(spec.get("rtol", self.rtol), spec.get("atol", self.atol))

    def direction(self, metric: str) -> bool | None:
        """``True`` if higher is better, ``False`` if lower, ``None`` if unknown."""
        if metric in self.directions:
            return self.directions[metric]
        matched = _match(self.directions, metric)
        return matched if matched is not None else higher_is_better(metric)

    def is_objective(self, metric: str) -> bool:
        """Whether ``metric`` is derived from the objective (widened by a reported MIP gap)."""
        if self.objective_metrics is not None:
            return any(fnmatch.fnmatchcase(metric, p) for p in self.objective_metrics)
        words = [w for w in _SPLIT.split(metric.lower()) if w]
        return any(word in _OBJECTIVE_WORDS for word in words)


@dataclass(frozen=True)
class Row:
    """One metric's comparison."""

    metric: str
    baseline: Scalar | None
    current: Scalar | None
    verdict: Verdict
    abs_diff: float | None = None
    rel_diff: float | None = None
    tolerance: str = ""


def compare(
    baseline: Mapping[str, Scalar],
    current: Mapping[str, Scalar],
    rules: Rules,
    gap: float | None = None,
) -> list[Row]:
    """One row per metric of either side, failing verdicts first (then in the order given)."""
    keys = list(current) + [key for key in baseline if key not in current]
    rows = [_row(key, baseline.get(key), current.get(key), rules, gap) for key in keys]
    return sorted(rows, key=lambda row: _ORDER[row.verdict])


def _row(key: str, base: Scalar | None, now: Scalar | None, rules: Rules, gap: float | None) -> Row:
    if base is None:
        return Row(key, None, now, Verdict.NEW)
    if now is None:
        return Row(key, base, None, Verdict.MISSING)
    if isinstance(base, str) or isinstance(now, str):
        same = type(base) is type(now) and base == now
        return Row(key, base, now, Verdict.OK if same else Verdict.CHANGED, tolerance="exact")
    tolerance = rules.tolerance(key)
    b, c = float(base), float(now)
    described = tolerance.describe()
    if math.isnan(b) or math.isnan(c):
        same = math.isnan(b) and math.isnan(c)
        return Row(key, base, now, Verdict.OK if same else Verdict.CHANGED, tolerance=described)
    if math.isinf(b) or math.isinf(c):
        verdict = Verdict.OK if b == c else _directed(key, c - b if b != c else 0.0, rules)
        return Row(key, base, now, verdict, tolerance=described)
    diff = c - b
    rel = diff / abs(b) if b != 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    if abs(diff) <= tolerance.allowance(b):
        verdict = Verdict.OK
    elif gap is not None and rules.is_objective(key) and abs(diff) <= gap * max(abs(b), abs(c)):
        verdict = Verdict.WITHIN_GAP
        described += f"; gap {gap:g}"
    else:
        verdict = _directed(key, diff, rules)
    return Row(key, base, now, verdict, abs(diff), rel, described)


def _directed(key: str, diff: float, rules: Rules) -> Verdict:
    higher = rules.direction(key)
    if higher is None:
        return Verdict.CHANGED
    better = diff > 0 if higher else diff < 0
    return Verdict.IMPROVED if better else Verdict.REGRESSED


def worst(rows: Iterable[Row]) -> Verdict:
    """The most severe verdict of ``rows`` (``ok`` when there are none)."""
    return min((row.verdict for row in rows), key=_ORDER.__getitem__, default=Verdict.OK)


# --------------------------------------------------------------------------- validation


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(f"{name} must be a number >= 0, not {value!r}")
    return float(value)


def _mapping(name: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a mapping of metric names, not {value!r}")
    return value


def _tolerance_spec(metric: object, spec: object) -> dict[str, float]:
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return {"rtol": _non_negative(f"tolerances[{metric!r}]", spec)}
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            f"tolerances[{metric!r}] must be a mapping such as {{'rtol': 1e-3}}, not {spec!r}"
        )
    unknown = sorted(str(k) for k in spec if k not in ("rtol", "atol"))
    if unknown:
        raise ConfigurationError(
            f"tolerances[{metric!r}]: unknown key {', '.join(map(repr, unknown))} "
            "(expected 'rtol' and/or 'atol')"
        )
    return {str(k): _non_negative(f"tolerances[{metric!r}][{k!r}]", v) for k, v in spec.items()}


def _direction(metric: object, value: object) -> bool:
    if isinstance(value, str) and value.lower() in _DIRECTIONS:
        return _DIRECTIONS[value.lower()]
    raise ConfigurationError(f"directions[{metric!r}] must be 'lower' or 'higher', not {value!r}")


def _names(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence | set | frozenset) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigurationError(f"{name} must be a list of metric names, not {value!r}")


def _match(table: Mapping[str, Any], metric: str) -> Any:
    for pattern, value in table.items():
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(metric, pattern):
            return value
    return None
