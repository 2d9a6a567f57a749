"""``emstrack.analysis.report``: one self-contained, escaped HTML file from real tracked runs."""

from __future__ import annotations

import base64
import os
import shutil
from html.parser import HTMLParser

import pytest

from emstrack import analysis, ems, tracked_optimization, tracked_run

SCRIPT_NAME = "<script>alert(1)</script>"


class _Page(HTMLParser):
    """Elements, attributes, visible text and tables of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._stack.append(tag)
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in {"td", "th"}:
            self._cell = []

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()
        if tag in {"td", "th"} and self._cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._stack and self._stack[-1] == "style":
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, template_database):
    """Pipeline A on one building and day (two scenarios), a hostile run name, a failed run.

    Built once for the module (real PuLP solves take a while), in a store of its own set up
    like the suite's ``store`` fixture: a copy of the migrated template, strict mode.
    """
    root = tmp_path_factory.mktemp("report-store")
    shutil.copyfile(template_database, root / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("EMSTRACK_", "MLFLOW_TRACKING", "MLFLOW_EXPERIMENT")):
                patch.delenv(name)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        patch.setenv("EMSTRACK_SPOOL_DIR", str(root / "spool"))
        patch.setenv("EMSTRACK_STRICT", "1")
        patch.chdir(root)
        compare = tracked_optimization(
            experiment="report-a",
            run_name="{building_id}_{scenario}",
            params=ems.scenario_inputs,
            metrics=ems.ModeComparison.figures,
            artifacts=["{output_dir}"],
        )(ems.compare_modes)
        for scenario in ("baseline", "battery_only"):
            compare("DE_KN_residential1", scenario, n_days=1, output_dir=root / scenario)
        with tracked_run(SCRIPT_NAME, experiment="report-a") as run:
            run.log_params({"building_id": "DE_KN_residential3", "scenario": "battery_only"})
            run.log_metrics({"savings_pct": 12.5, "total_cost": 3.25})
        with (
            pytest.raises(RuntimeError),
            tracked_run("crashed", experiment="report-a") as failed,
        ):
            failed.log_params({"building_id": "DE_KN_residential3", "scenario": "baseline"})
            raise RuntimeError("solver crashed")
        yield root


def test_report_is_self_contained_and_escaped(tracked, tmp_path):
    """No script, no network reference, embedded PNGs, the hostile name shown as text."""
    path = analysis.report("report-a", tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    page = _page(text)
    assert "script" not in page.tags
    assert "link" not in page.tags
    assert "iframe" not in page.tags
    assert SCRIPT_NAME in "".join(page.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    sources = [value for tag, name, value in page.attributes if name in {"src", "href"}]
    images = [value for tag, name, value in page.attributes if tag == "img" and name == "src"]
    assert len(images) >= 2
    assert sources == images  # no other reference at all
    for source in images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        assert base64.b64decode(source[len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(name.startswith("on") for _, name, _ in page.attributes)


def test_report_tables_hold_the_runs(tracked, tmp_path):
    """Comparison per building and scenario, best/worst runs, savings pivot, every run."""
    page = _page(analysis.report("report-a", tmp_path / "report.html").read_text("utf-8"))
    text = " ".join(page.text)
    assert "savings_pct" in text
    for heading in ("Headline", "Savings by building_id and scenario", "Comparison", "All runs"):
        assert heading in page.text, heading
    expected = analysis.compare("report-a", "savings_pct", by=("building_id", "scenario"))
    (comparison,) = [t for t in page.tables if t[0][:3] == ["building_id", "scenario", "runs"]]
    assert len(comparison) - 1 == len(expected) == 3
    battery = next(r for r in comparison if r[:2] == ["DE_KN_residential1", "battery_only"])
    assert battery[-1] == "DE_KN_residential1_battery_only"
    (pivot,) = [t for t in page.tables if t[0] == ["building_id", "baseline", "battery_only"]]
    assert [row[0] for row in pivot[1:]] == ["DE_KN_residential1", "DE_KN_residential3"]
    best = expected.loc[expected["scenario"] == "battery_only", "mean"].max()
    best_text = f"{best:,.4f}".rstrip("0").rstrip(".")
    assert any(best_text in cell for row in pivot for cell in row)
    (everything,) = [t for t in page.tables if t[0][:2] == ["run", "status"]]
    statuses = {row[0]: row[1] for row in everything[1:]}
    assert statuses["crashed"] == "FAILED"
    assert statuses[SCRIPT_NAME] == "FINISHED"
    assert len(statuses) == 4
    assert "1 of them did not finish" in text


def test_report_errors_name_the_problem(tracked, tmp_path):
    with pytest.raises(analysis.ExperimentNotFoundError, match="nope"):
        analysis.report("nope", tmp_path / "x.html")
    with pytest.raises(analysis.MetricNotFoundError, match="no_such_metric"):
        analysis.report("report-a", tmp_path / "x.html", metric="no_such_metric")
    assert not (tmp_path / "x.html").exists()
