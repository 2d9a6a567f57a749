"""examples/notebooks/quickstart.ipynb runs top to bottom in a real Jupyter kernel.

The kernel is ipykernel's own ``python3`` kernel (installed by the project's test extra), started
by nbclient with the test's environment: the fresh store as MLFLOW_TRACKING_URI, strict mode,
and the tmp folder as working directory.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "quickstart.ipynb"
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")


def _tagged(notebook, tag: str):
    (cell,) = [c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", [])]
    return cell


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        for kind in ("text/plain", "text/html"):
            if kind in output.get("data", {}):
                parts.append(output["data"][kind])
    return "\n".join(parts)


class _Store:
    """The notebook's store: a copy of the suite's migrated template, like the store fixture."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"

    def runs(self, experiment: str):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.uri)
        found = client.get_experiment_by_name(experiment)
        return client.search_runs([found.experiment_id], max_results=1000) if found else []


@pytest.fixture(scope="module")
def store(tmp_path_factory, template_database):
    """One store for the module: the notebook is executed once and checked by several tests."""
    root = tmp_path_factory.mktemp("notebook")
    shutil.copyfile(template_database, root / "mlflow.db")
    notebook_store = _Store(root)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("EMSTRACK_", "MLFLOW_TRACKING", "MLFLOW_EXPERIMENT")):
                patch.delenv(name)
        patch.setenv("MLFLOW_TRACKING_URI", notebook_store.uri)
        patch.setenv("EMSTRACK_SPOOL_DIR", str(root / "spool"))
        patch.setenv("EMSTRACK_STRICT", "1")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        # jupyter_core's path migration notice is a DeprecationWarning; opt in to the new paths.
        patch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        yield notebook_store


@pytest.fixture(scope="module")
def executed(store):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(store.root)}},
    )
    client.execute()
    return notebook


def test_notebook_runs_and_tracks(executed, store):
    """Every cell ran; the runs it shows are the runs in the store."""
    errors = [
        (cell.get("metadata", {}).get("tags"), output.get("ename"))
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == [(["raises-exception"], "RuntimeError")]

    runs = {r.info.run_name: r for r in store.runs("quickstart")}
    assert set(runs) == {
        "battery_0kWh",
        "battery_1kWh",
        "battery_2kWh",
        "notebook-cell",
        "will-fail",
        "after-the-error",
    }
    assert runs["will-fail"].info.status == "FAILED"

    decorated = _text(_tagged(executed, "decorated-runs"))
    for name in ("battery_0kWh", "battery_1kWh", "battery_2kWh"):
        assert runs[name].info.run_id in decorated

    shown = _tagged(executed, "tracked-run")
    html = shown.outputs[-1]["data"]["text/html"]
    assert runs["notebook-cell"].info.run_id in html
    assert "FINISHED" in html
    assert "notebook-cell" in html


def test_cell_after_the_error_has_no_parent(executed, store):
    """The run opened after the failing cell is a top-level run, not a child of the failed one."""
    cell = _tagged(executed, "after-error")
    text = _text(cell)
    assert "open run before this cell: None" in text
    assert "status of the failed run: FAILED" in text
    assert "parent of this run: None" in text
    (after,) = [r for r in store.runs("quickstart") if r.info.run_name == "after-the-error"]
    assert "mlflow.parentRunId" not in after.data.tags
    assert after.info.run_id in text
    assert after.info.status == "FINISHED"


def test_compare_table_and_plot(executed, store):
    """compare() shows one row per capacity, best run names included; the plot is an image."""
    compare = _tagged(executed, "compare")
    html = compare.outputs[-1]["data"]["text/html"]
    rows = re.findall(r"<tr>.*?</tr>", html, re.DOTALL)
    body = [row for row in rows if "<td>" in row]
    assert len(body) == 3
    for capacity, name in ((0, "battery_0kWh"), (1, "battery_1kWh"), (2, "battery_2kWh")):
        assert any(f"<th>{capacity}</th>" in row and name in row for row in body), capacity

    plot = _tagged(executed, "plot")
    assert any("image/png" in output.get("data", {}) for output in plot.outputs)

    report = store.root / "quickstart-report.html"
    assert report.is_file()
    assert "battery_2kWh" in report.read_text(encoding="utf-8")
