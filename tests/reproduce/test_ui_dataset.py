"""The MLflow UI's runs table shows the dataset a run read (real server, real browser)."""

from __future__ import annotations

import re
import shutil

import pytest

import emstrack
from helpers.browser import CHROMIUM_ARGS
from helpers.reproduce import BUILDING, EXPERIMENT, pipeline_a
from helpers.servers import MlflowServer

pytestmark = pytest.mark.slow


def test_dataset_column_shows_the_household_data(store, tmp_path, template_database, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed")
    with MlflowServer(tmp_path / "server", template_database) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        pipeline_a()(BUILDING, "battery_only", n_days=1, output_dir=tmp_path / "out")
        emstrack.flush()
        from mlflow.tracking import MlflowClient

        experiment = MlflowClient(tracking_uri=server.url).get_experiment_by_name(EXPERIMENT)
        assert experiment is not None
        url = (
            f"{server.url}/#/experiments/{experiment.experiment_id}/runs"
            "?workflowType=machine_learning"
        )
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(url)
                shown = page.get_by_text(re.compile(re.escape(f"{BUILDING} (bundled sample)")))
                shown.first.wait_for(timeout=90_000)
                assert shown.count() >= 1
            finally:
                browser.close()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
