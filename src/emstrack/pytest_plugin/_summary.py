"""The terminal summary: baseline files written, regressed and improved tests, recorded runs.

Reports carry what a test's checks found as ``report.emstrack`` (plain data), which pytest-xdist
sends from its workers to the controller with the rest of the report; the summary is built
from the reports, so it reads the same with ``-n 2``.
"""

from __future__ import annotations

from typing import Any

import pytest

ATTRIBUTE = "emstrack"


class Summary:
    """Collects the reports' findings during the session and prints them at the end."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.failed: list[tuple[str, list[dict[str, Any]]]] = []
        self.improved: list[tuple[str, list[dict[str, Any]]]] = []
        self.within_gap: list[tuple[str, list[dict[str, Any]]]] = []
        self.recorded: list[str] = []
        self.store: str | None = None

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note what a report carries."""
        found = getattr(report, ATTRIBUTE, None)
        if not isinstance(found, dict):
            return
        checks = found.get("checks") or []
        failed = [check for check in checks if check.get("failed")]
        if failed:
            self.failed.append((report.nodeid, failed))
        improved = [c for c in checks if not c.get("failed") and c.get("verdict") == "improved"]
        if improved:
            self.improved.append((report.nodeid, improved))
        in_gap = [c for c in checks if not c.get("failed") and c.get("verdict") == "within gap"]
        if in_gap:
            self.within_gap.append((report.nodeid, in_gap))
        self.written.extend(found.get("written") or [])
        if found.get("run"):
            self.recorded.append(str(found["run"]))
            self.store = str(found.get("store") or self.store)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the emstrack section, when there is anything to say."""
        if not (self.written or self.failed or self.improved or self.within_gap or self.recorded):
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "emstrack")
        if self.written:
            write(f"baseline files written ({len(self.written)}):")
            for entry in sorted(self.written, key=lambda e: str(e["path"])):
                write(f"  {entry['path']}: {entry['change']}")
        if self.failed:
            write(f"failed checks ({len(self.failed)} test{_s(self.failed)}):")
            for nodeid, checks in self.failed:
                write(f"  {nodeid}: {_describe(checks)}")
        if self.improved:
            write(f"improved ({len(self.improved)} test{_s(self.improved)}):")
            for nodeid, checks in self.improved:
                write(f"  {nodeid}: {_describe(checks)}")
        if self.within_gap:
            write(f"within the MIP gap ({len(self.within_gap)} test{_s(self.within_gap)}):")
            for nodeid, checks in self.within_gap:
                write(f"  {nodeid}: {_describe(checks)}")
        if self.recorded:
            write(f"recorded {len(self.recorded)} run{_s(self.recorded)} in {self.store}")


def _describe(checks: list[dict[str, Any]]) -> str:
    parts = []
    for check in checks:
        label = "" if check.get("name") == "default" else f"[{check.get('name')}] "
        lines = check.get("lines") or [str(check.get("verdict"))]
        parts.append(label + "; ".join(str(line) for line in lines))
    return " | ".join(parts)


def _s(items: list[Any]) -> str:
    return "" if len(items) == 1 else "s"
