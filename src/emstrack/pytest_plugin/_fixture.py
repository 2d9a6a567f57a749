"""The ``ems_regression`` fixture's object: ``check()`` compares KPIs with the test's baseline."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from .._errors import ConfigurationError
from . import _baseline, _keys
from ._baseline import DEFAULT_CHECK, BaselineFile, Check
from ._compare import Row, Rules, Verdict, compare, worst
from ._config import Settings
from ._flatten import Scalar, flatten
from ._history import TestRun, test_key
from ._table import change_text, render

Direction = Literal["lower", "higher"]
MARKER_OPTIONS = frozenset(
    {"rtol", "atol", "tolerances", "directions", "objective_metrics", "experiment"}
)
_SUMMARY_LINES = 4


@dataclass(frozen=True)
class CheckResult:
    """What one :meth:`EmsRegression.check` found."""

    name: str
    rows: list[Row]
    """One row per metric, failing ones first."""
    baseline: str
    """Where the baseline came from: a file path or a run."""

    @property
    def verdict(self) -> Verdict:
        """The most severe verdict of the rows."""
        return worst(self.rows)

    @property
    def passed(self) -> bool:
        """Whether no metric failed."""
        return not any(row.verdict.fails for row in self.rows)

    def table(self) -> str:
        """The rows as the failure report's table."""
        return render(self.rows)


def marker_options(item: pytest.Item) -> dict[str, Any]:
    """The ``@pytest.mark.emstrack(...)`` options of ``item``; the closest marker wins.

    Raises:
        ConfigurationError: A marker has positional arguments or an unknown option.

    """
    merged: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("emstrack"))):
        if marker.args:
            raise ConfigurationError(
                f"@pytest.mark.emstrack takes keyword options only, not {marker.args!r}"
            )
        unknown = sorted(set(marker.kwargs) - MARKER_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"@pytest.mark.emstrack: unknown option {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(MARKER_OPTIONS))}"
            )
        merged.update(marker.kwargs)
    return merged


class EmsRegression:
    """Compare a test's KPIs with its baseline; the object the ``ems_regression`` fixture gives.

    Baselines are JSON files beside the test file (``emstrack_baselines/<module>/<test>.json``),
    created and updated by ``pytest --emstrack-update-baseline``, or earlier runs in a tracking
    store (``--emstrack-baseline-from``).
    """

    def __init__(self, item: pytest.Item, settings: Settings, run: TestRun | None) -> None:
        self._item = item
        self._settings = settings
        self._run = run
        self._marker = marker_options(item)
        self._checked: list[str] = []
        self._obtained: dict[str, Check] = {}
        self._gap_from_run: float | None = None
        self._gap_read = False
        self._store_baseline: Any = None
        self.results: list[CheckResult] = []
        """Every check made so far in this test."""

    @property
    def path(self) -> Path:
        """The test's baseline file."""
        return _baseline.path_for(
            Path(self._item.path),
            self._item.nodeid,
            rootdir=self._settings.rootdir,
            baseline_dir=self._settings.baseline_dir,
        )

    def check(
        self,
        metrics: object,
        *,
        rtol: float | None = None,
        atol: float | None = None,
        tolerances: Mapping[str, Mapping[str, float]] | None = None,
        directions: Mapping[str, Direction] | None = None,
        name: str | None = None,
        objective_metrics: Iterable[str] | None = None,
        mip_gap: float | None = None,
    ) -> CheckResult:
        """Compare ``metrics`` with the baseline; fail the test with a table if they differ.

        Args:
            metrics: A mapping, pydantic model, dataclass, NamedTuple or pandas Series;
                nested values become dotted keys. Numbers are compared with tolerances, text
                exactly; a metric only on one side is a difference.
            rtol: Relative tolerance (default: the marker's, else 1e-6).
            atol: Absolute tolerance (default: the marker's, else 1e-9).
            tolerances: Per-metric tolerances, e.g. ``{"total_cost": {"rtol": 1e-3}}``; keys
                may be patterns (``"daily.*"``).
            directions: ``{"metric": "lower" | "higher"}``: which change is an improvement
                (default: read from the name, as in :func:`emstrack.analysis.metric_direction`).
                An improvement beyond tolerance passes and is reported; a regression fails.
            name: Name of the check when a test makes several (default ``"default"``).
            objective_metrics: Metrics derived from the objective, which a reported MIP gap
                widens (default: names containing ``objective`` or ``cost``).
            mip_gap: A relative MIP gap to allow for, where the solver's own is not captured.

        Returns:
            The comparison (also when nothing differs).

        Raises:
            AssertionError: A metric regressed, changed, appeared or disappeared; the message
                is the table of every metric checked.
            ConfigurationError: An option is malformed, or ``name`` was already checked.

        """
        __tracebackhide__ = True
        check_name = name if name is not None else DEFAULT_CHECK
        if not isinstance(check_name, str) or not check_name:
            raise ConfigurationError(f"name must be a non-empty string, not {name!r}")
        if check_name in self._checked:
            raise ConfigurationError(
                f"check {check_name!r} was already made in {self._item.nodeid}; give each "
                "check of a test its own name="
            )
        self._checked.append(check_name)
        current = flatten(metrics)
        rules = Rules.layered(
            self._marker,
            {
                "rtol": rtol,
                "atol": atol,
                "tolerances": tolerances,
                "directions": directions,
                "objective_metrics": None if objective_metrics is None else list(objective_metrics),
            },
        )
        if mip_gap is not None and (isinstance(mip_gap, bool) or not 0 <= mip_gap < 1):
            raise ConfigurationError(f"mip_gap must be a number in [0, 1), not {mip_gap!r}")
        gap = _largest(mip_gap, self._reported_gap())
        baseline, where = self._baseline(check_name, list(current))
        rows = compare(
            baseline.metrics if baseline else {},
            current,
            rules,
            _largest(gap, baseline.gap_rel if baseline else None),
        )
        result = CheckResult(check_name, rows, where)
        self.results.append(result)
        prefix = "" if check_name == DEFAULT_CHECK else f"{check_name}."
        if self._run is not None:
            self._run.log_check(
                check_name, prefix, current, baseline.metrics if baseline else None, rows
            )
        if self._settings.update:
            self._obtained[check_name] = Check(current, gap)
            self._summarize(result, updated=True)
            return result
        if baseline is None:
            self._summarize(result, missing=True)
            pytest.fail(self._missing_message(check_name, where), pytrace=False)
        self._summarize(result)
        if not result.passed:
            failing = sum(1 for row in rows if row.verdict.fails)
            raise AssertionError(
                f"{failing} of {len(rows)} metrics of check {check_name!r} differ from the "
                f"baseline ({where})\n\n{result.table()}"
            )
        return result

    # ----------------------------------------------------------------- teardown

    def finish(self, passed: bool) -> None:
        """Write the obtained values (``--emstrack-update-baseline``) and note what changed."""
        if not self._settings.update or not self._obtained:
            return
        path = self.path
        old = _baseline.read(path)
        checks = dict(self._obtained)
        if old is not None and not passed:  # checks not reached this time keep their baseline
            checks = {**old.checks, **checks}
        new = BaselineFile(self._item.nodeid, checks)
        change = _baseline.changes(old, new)
        if change != "unchanged":
            _baseline.write(path, new)
        self._item.stash.setdefault(_keys.WRITTEN, []).append(
            {"path": _shown(path, self._settings.rootdir), "change": change}
        )

    # ----------------------------------------------------------------- helpers

    def _baseline(self, name: str, keys: list[str]) -> tuple[Check | None, str]:
        source = self._settings.baseline_from
        if source is None:
            path = self.path
            found = _baseline.read(path)
            shown = _shown(path, self._settings.rootdir)
            return (found.checks.get(name) if found else None), shown
        from . import _store

        uri = self._tracking_uri()
        experiment = self._marker.get("experiment") or self._settings.experiment
        if self._store_baseline is None:
            self._store_baseline = _store.find_baseline(
                source, uri=uri, experiment=experiment, test_key=test_key(self._item.nodeid)
            ) or _store.describe_search(source, uri=uri, experiment=experiment)
        if isinstance(self._store_baseline, str):
            return None, self._store_baseline
        return self._store_baseline.check(name, keys), self._store_baseline.describe()

    def _tracking_uri(self) -> str:
        from .. import _settings

        return _settings.tracking_uri(self._settings.tracking_uri)

    def _reported_gap(self) -> float | None:
        if self._run is None:
            return None
        if not self._gap_read:
            from ._store import reported_gap

            self._gap_read = True
            try:
                self._gap_from_run = reported_gap(self._run.run)
            except Exception:  # a store that cannot be read gives no gap; the check goes on
                self._gap_from_run = None
        return self._gap_from_run

    def _missing_message(self, name: str, where: str) -> str:
        if self._settings.baseline_from is not None:
            return (
                f"no baseline for {self._item.nodeid} from --emstrack-baseline-from="
                f"{self._settings.baseline_from.describe()}: {where}. Record one with:\n"
                f"    python -m pytest {shlex.quote(self._item.nodeid)} --emstrack"
            )
        which = "" if name == DEFAULT_CHECK else f" (check {name!r})"
        command = [
            "python",
            "-m",
            "pytest",
            self._item.nodeid,
            "--emstrack-update-baseline",
            *self._settings.command_line(),
        ]
        return (
            f"no baseline for {self._item.nodeid}{which} in {where}. Create it with:\n"
            f"    {shlex.join(command)}"
        )

    def _summarize(
        self, result: CheckResult, *, updated: bool = False, missing: bool = False
    ) -> None:
        if updated:  # the summary lists the files written, with what changed
            return
        if missing:
            verdict, lines = "no baseline", [f"no baseline ({result.baseline})"]
        else:
            verdict = result.verdict.value
            shown = [
                row
                for row in result.rows
                if row.verdict.fails or row.verdict in (Verdict.IMPROVED, Verdict.WITHIN_GAP)
            ]
            lines = [f"{change_text(row)} {row.verdict.value}" for row in shown[:_SUMMARY_LINES]]
            if len(shown) > _SUMMARY_LINES:
                lines.append(f"and {len(shown) - _SUMMARY_LINES} more")
        self._item.stash.setdefault(_keys.CHECKS, []).append(
            {
                "name": result.name,
                "verdict": verdict,
                "failed": (missing or not result.passed) and not updated,
                "lines": lines,
            }
        )


def _largest(*values: float | None) -> float | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


__all__ = ["CheckResult", "EmsRegression", "Scalar"]
