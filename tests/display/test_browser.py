"""In a real browser (headless system Chromium, driven by Playwright): the UI and the report.

After ``emstrack demo``: the URL ``emstrack ui`` prints shows the runs table with the demo's run
names; the URL the demo's last line gives (Pipeline A) too; a run's page shows its params and
metrics and ``schedule.png`` among its artifacts. ``report.html`` opened from disk (file://)
shows the comparison table, at least two images and a ``<script>`` run name as text.

Screenshots go to ``EMSTRACK_SCREENSHOT_DIR`` when set (else the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emstrack._cli.demo_run import COMPARISON_EXPERIMENT, DEMO_BUILDINGS, LEARNING_EXPERIMENT
from helpers.browser import CHROMIUM_ARGS
from helpers.servers import free_port

pytestmark = pytest.mark.slow

WAIT_MS = 90_000
SCRIPT_NAME = "<script>alert(1)</script>"


def _emstrack() -> list[str]:
    found = shutil.which("emstrack", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "emstrack"]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "EMSTRACK_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    configured = os.environ.get("EMSTRACK_SCREENSHOT_DIR")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no system Chromium on PATH (apt-get install -y chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    opened = browser.new_page(viewport={"width": 1500, "height": 1300})
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """``emstrack demo`` in an empty folder: the folder and the demo's last line."""
    folder = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [*_emstrack(), "demo"],
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return folder, result.stdout.splitlines()[-1]


@pytest.fixture(scope="module")
def opened(tmp_path_factory) -> tuple[Path, str]:
    """A stand-in web browser for ``--open`` ($BROWSER): it writes the URL it was given."""
    folder = tmp_path_factory.mktemp("browser-command")
    record = folder / "opened.txt"
    script = folder / "record_url.py"
    script.write_text(
        f"import sys\nopen({str(record)!r}, 'w').write(sys.argv[1])\n", encoding="utf-8"
    )
    return record, f"{sys.executable} {script} %s"


@pytest.fixture(scope="module")
def ui(demo, opened):
    """``emstrack ui --open`` on the demo's store: the URL it printed; stopped with SIGINT."""
    folder, _ = demo
    _, command = opened
    port = free_port()
    process = subprocess.Popen(
        [*_emstrack(), "ui", "--port", str(port), "--open"],
        cwd=folder,
        env={**_environment(), "BROWSER": command},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed once the server answers (or ui exits)
        assert first.startswith("MLflow UI on "), first or process.stderr.read()
        second = process.stdout.readline()  # printed after --open handed the URL over
        assert second.startswith("(mlflow server pid "), second
        yield first.split()[-1], first, port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def _client(folder: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")


def _wait_for_names(page, names) -> None:
    for name in names:
        page.get_by_text(name, exact=True).first.wait_for(timeout=WAIT_MS)


def test_printed_url_shows_the_runs_table(ui, demo, page, screenshots):
    """Default: the most recent experiment (Pipeline B); its top-level runs are listed."""
    url, line, port = ui
    folder, _ = demo
    experiment = _client(folder).get_experiment_by_name(LEARNING_EXPERIMENT)
    assert f"(experiment '{LEARNING_EXPERIMENT}')" in line
    assert url == (
        f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs"
        "?workflowType=machine_learning"
    )
    page.goto(url)
    _wait_for_names(page, [f"learn_and_schedule_{b}" for b in DEMO_BUILDINGS])
    body = page.inner_text("body")
    assert "Traces 0" not in body  # not the GenAI overview
    assert "9 matching runs" in body
    page.screenshot(path=str(screenshots / "ui-runs-pipeline-b.png"))


def test_open_opens_the_printed_url(ui, opened):
    """--open hands the printed URL to the web browser (here $BROWSER, which records it)."""
    url, _, _ = ui
    record, _ = opened
    assert record.read_text(encoding="utf-8") == url


def test_demo_url_shows_pipeline_a_runs(ui, demo, page, screenshots):
    """The URL of the demo's last line (on the test's port) lists all of Pipeline A's runs."""
    _, _, port = ui
    folder, last = demo
    demo_url = last.rsplit("(then open ", 1)[1].rstrip(")")
    url = demo_url.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}")
    runs = _client(folder).search_runs(
        [_client(folder).get_experiment_by_name(COMPARISON_EXPERIMENT).experiment_id]
    )
    names = sorted(run.info.run_name for run in runs)
    assert len(names) == 12
    page.goto(url)
    _wait_for_names(page, names)
    assert "12 matching runs" in page.inner_text("body")
    page.screenshot(path=str(screenshots / "ui-runs-pipeline-a.png"))


def test_run_page_shows_params_metrics_and_artifacts(ui, demo, page, screenshots):
    from emstrack._ui_links import run_url

    url, _, _ = ui
    folder, _ = demo
    client = _client(folder)
    experiment = client.get_experiment_by_name(COMPARISON_EXPERIMENT).experiment_id
    (run,) = [
        r
        for r in client.search_runs([experiment])
        if r.info.run_name == f"{DEMO_BUILDINGS[0]}_battery_only"
    ]
    base = url.split("/#/")[0]
    page.goto(run_url(base, experiment, run.info.run_id))
    page.get_by_text(f"Parameters ({len(run.data.params)})").wait_for(timeout=WAIT_MS)
    page.get_by_text(f"Metrics ({len(run.data.metrics)})").wait_for(timeout=WAIT_MS)
    for key in ("building_id", "scenario", "battery.capacity_kwh", "savings_pct", "total_cost"):
        page.get_by_text(key, exact=True).first.wait_for(timeout=WAIT_MS)
    body = page.inner_text("body")
    assert DEMO_BUILDINGS[0] in body
    assert "battery_only" in body
    page.screenshot(path=str(screenshots / "ui-run-page.png"), full_page=True)
    page.goto(
        f"{base}/#/experiments/{experiment}/runs/{run.info.run_id}/artifacts"
        "?workflowType=machine_learning"
    )
    for name in ("schedule.png", "results.csv", "config.json"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=WAIT_MS)
    page.get_by_text("schedule.png", exact=True).first.click()
    # The preview: an image far wider than any icon of the page.
    page.wait_for_function(
        "() => [...document.images].some((image) => image.naturalWidth > 400)", timeout=WAIT_MS
    )
    page.screenshot(path=str(screenshots / "ui-run-artifacts.png"))


def test_report_from_disk(demo, page, screenshots, tmp_path):
    """report.html via file://: comparison table, >= 2 images, the script name as text."""
    folder, _ = demo
    import emstrack
    from emstrack import tracked_run

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    spool = tmp_path / "spool"
    os.environ["EMSTRACK_SPOOL_DIR"] = str(spool)
    try:
        with tracked_run(SCRIPT_NAME, experiment=COMPARISON_EXPERIMENT, tracking_uri=uri) as run:
            run.log_params({"building_id": DEMO_BUILDINGS[1], "scenario": "battery_only"})
            run.log_metrics({"savings_pct": 1.0, "total_cost": 2.0})
        assert emstrack.flush(timeout=120)  # the report's process reads another spool
    finally:
        del os.environ["EMSTRACK_SPOOL_DIR"]
    target = tmp_path / "report.html"
    result = subprocess.run(
        [*_emstrack(), "report", "--experiment", COMPARISON_EXPERIMENT, "-o", str(target)],
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(target.as_uri())
    page.get_by_text("Comparison", exact=True).wait_for(timeout=WAIT_MS)
    comparison = page.locator("table").filter(has_text="best run")
    assert comparison.count() == 1
    assert comparison.locator("tbody tr").count() == 12
    images = page.locator("img")
    assert images.count() >= 2
    for index in range(images.count()):
        assert page.evaluate("(img) => img.naturalWidth", images.nth(index).element_handle()) > 0
    page.get_by_text(SCRIPT_NAME, exact=True).first.wait_for(timeout=WAIT_MS)
    assert page.locator("script").count() == 0
    assert dialogs == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    page.screenshot(path=str(screenshots / "report.png"), full_page=True)
