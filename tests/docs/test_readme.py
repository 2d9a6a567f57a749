"""The README's quickstart runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _quickstart() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block under ## Quickstart"
    return match.group(1)


def test_quickstart_runs_and_tracks(store):
    """The quickstart code leaves three decorated runs and a notebook-cell run."""
    exec(compile(_quickstart(), str(README), "exec"), {"__name__": "readme_quickstart"})
    runs = store.runs("quickstart")
    decorated = sorted(
        (r for r in runs if r.info.run_name.startswith("battery_")),
        key=lambda r: float(r.data.params["capacity_kwh"]),
    )
    assert [r.data.params["capacity_kwh"] for r in decorated] == ["0", "1", "2"]
    assert [r.data.params["prices"] for r in decorated] == ["[0.31,0.27,0.42,0.45]"] * 3
    costs = [r.data.metrics["total_cost"] for r in decorated]
    assert costs == sorted(costs, reverse=True)
    assert costs[0] > costs[1] > costs[2]
    assert all(r.data.tags["status"] == "Optimal" for r in decorated)
    assert all(r.data.metrics["solver.solves"] == 1 for r in decorated)
    (cell,) = [r for r in runs if r.info.run_name == "notebook-cell"]
    assert cell.data.params == {"horizon_h": "24", "battery.capacity_kwh": "4"}
    history = store.client.get_metric_history(cell.info.run_id, "soc_kwh")
    assert len(history) == 9


def test_readme_commands_are_the_ci_commands():
    """The README's test command is what .ci/run runs."""
    readme = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    command = 'python -m pip install -e ".[dev]" && python -m pytest -n 2'
    assert command in readme.splitlines()
    assert command in ci.splitlines()
    assert "python -m pip install . && emstrack demo" in readme
