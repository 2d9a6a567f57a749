"""The LocalCluster a sweep starts itself: its workers run without Dask's profiler, restarts too."""

from __future__ import annotations

from pathlib import Path

import pytest

import emstrack
from emstrack._sweep.executors import local_worker_config

pytest.importorskip("distributed")


def test_local_worker_config_is_a_whole_copy_with_the_profiler_off() -> None:
    import dask
    import distributed  # noqa: F401 - puts Dask's "distributed" defaults into its config

    merged = local_worker_config()
    assert merged["distributed"]["worker"]["profile"]["enabled"] is False
    # The rest of the section is kept (a Nanny replaces whole sections) and is a copy.
    assert merged["distributed"]["admin"] == dask.config.get("distributed.admin")
    assert merged["distributed"] is not dask.config.config["distributed"]
    assert dask.config.get("distributed.worker.profile.enabled") is True


def test_sweep_workers_and_a_restarted_one_run_without_the_profiler(
    store: object, tmp_path: Path
) -> None:
    marker = tmp_path / "died"
    spec = {
        "function": "helpers.sweep_pipelines:dask_worker_settings",
        "experiment": "sw-dask-settings",
        "grid": {"case": [1, 2]},
        "fixed": {"die_once": str(marker)},
    }
    report = emstrack.sweep(spec, executor="dask", workers=1, progress=False)
    assert (report.finished, len(report.failed)) == (2, 0), report.summary()
    assert marker.exists()  # one scenario killed its worker, and ran again on the new one

    runs = store.runs("sw-dask-settings")  # type: ignore[attr-defined]
    finished = [run for run in runs if run.info.status == "FINISHED"]
    assert sorted(run.data.metrics["case"] for run in finished) == [1.0, 2.0]
    assert [run.data.metrics["profiler_on"] for run in finished] == [0.0, 0.0]
    killed_pid = float(marker.read_text())
    assert killed_pid not in {run.data.metrics["pid"] for run in finished}
