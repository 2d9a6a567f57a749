"""How runs and results show in Jupyter: ``_repr_html_`` with escaped values and UI links."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser

import pytest

from emstrack import ems, tracked_run
from emstrack._ui_links import clear_ui_state, write_ui_state


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs)["href"])


def _parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def test_run_shows_name_status_id_and_metrics_escaped(store):
    """Name (escaped), FINISHED, run id and the metrics read back; top-level metrics first."""
    with tracked_run("<script>alert(1)</script>", experiment="display") as run:
        run.log_metrics({"total_cost": 12.5, "solver.solves": 3, "savings_eur": 0.25})
    html = run._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script" not in _parse(html).tags
    assert run.run_id in html
    assert "FINISHED" in html
    values = re.findall(r"<th[^>]*>([^<]+)</th><td[^>]*>([^<]+)</td>", html)
    shown = dict(values)
    assert shown["total_cost"] == "12.5"
    assert shown["savings_eur"] == "0.25"
    keys = [key for key, _ in values]
    assert keys.index("savings_eur") < keys.index("solver.solves")
    assert "MLflow UI" not in html  # no server known for a SQLite store


def test_failed_run_shows_failed(store):
    """A run that ended with an exception shows FAILED (read back from the store)."""
    with pytest.raises(ValueError, match="boom"), tracked_run("bad", experiment="display") as run:
        raise ValueError("boom")
    assert "FAILED" in run._repr_html_()


def test_link_to_a_running_emstrack_ui(store):
    """While ``emstrack ui`` serves the store (its state file), the run links to its page."""
    with tracked_run("linked", experiment="display") as run:
        run.log_metrics({"total_cost": 1.0})
    write_ui_state(store.uri, "http://127.0.0.1:5999", os.getpid())
    try:
        links = _parse(run._repr_html_()).links
    finally:
        clear_ui_state(store.uri, os.getpid())
    experiment = store.client.get_experiment_by_name("display").experiment_id
    assert links == [
        f"http://127.0.0.1:5999/#/experiments/{experiment}/runs/{run.run_id}"
        "?workflowType=machine_learning"
    ]
    assert _parse(run._repr_html_()).links == []  # state cleared: no link


def test_state_of_a_dead_ui_is_ignored(store):
    """A state file left by a process that no longer exists gives no link."""
    import subprocess
    import sys

    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(finished.stdout)
    with tracked_run("unlinked", experiment="display") as run:
        pass
    write_ui_state(store.uri, "http://127.0.0.1:5998", dead)
    try:
        assert _parse(run._repr_html_()).links == []
    finally:
        clear_ui_state(store.uri, dead)


def test_configured_ui_url_is_used(store, monkeypatch):
    """EMSTRACK_UI_URL names the UI explicitly (e.g. a server behind a proxy)."""
    monkeypatch.setenv("EMSTRACK_UI_URL", "https://mlflow.example.org/")
    with tracked_run("proxied", experiment="display") as run:
        pass
    (link,) = _parse(run._repr_html_()).links
    assert link.startswith("https://mlflow.example.org/#/experiments/")
    assert link.endswith(f"/runs/{run.run_id}?workflowType=machine_learning")


def test_display_never_raises(store, monkeypatch):
    """A store that cannot be read gives a display with a note, not an exception."""
    with tracked_run("gone", experiment="display") as run:
        pass
    broken = store.root / "broken.db"
    broken.write_text("not a database")
    monkeypatch.setattr(run, "tracking_uri", f"sqlite:///{broken}")
    html = run._repr_html_()
    assert "gone" in html
    assert "store not readable" in html or "display failed" in html


def test_mode_comparison_shows_its_summary(store):
    """ems results display their summary figures (no tracking involved)."""
    result = ems.compare_modes("DE_KN_residential1", "battery_only", n_days=1)
    html = result._repr_html_()
    assert "ModeComparison - DE_KN_residential1" in html
    shown = dict(re.findall(r"<th[^>]*>([^<]+)</th><td[^>]*>([^<]+)</td>", html))
    assert float(shown["savings_pct"].replace(",", "")) == pytest.approx(
        result.summary.savings_pct, abs=1e-4
    )
    assert shown["solver_status"] == result.summary.solver_status
