"""Sweeps against a real SQLite store with real 1-day optimizations on spawned workers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import emstrack
from emstrack._sweep import SCENARIO_KEY_TAG, scenario_key
from emstrack._sweep.keys import SUPERSEDED_KEY_TAG
from helpers.sweep_pipelines import doom, grid

FUNCTION = "helpers.sweep_pipelines:compare_modes"


def keys_by_status(runs: list[object]) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {}
    for run in runs:
        key = run.data.tags.get(SCENARIO_KEY_TAG)  # type: ignore[attr-defined]
        if key:
            found.setdefault(run.info.status, Counter())[key] += 1  # type: ignore[attr-defined]
    return found


def test_two_workers_run_each_scenario_once_and_a_rerun_starts_none(store: object) -> None:
    spec = grid(["DE_KN_residential1"], ["battery_only", "self_consumption"], [0, 1], "sw-basic")
    report = emstrack.sweep(spec, workers=2, progress=False)
    assert (report.finished, len(report.failed), report.skipped) == (4, 0, 0), report.summary()
    assert report.wall_seconds > 0
    assert 0 < report.tracking_seconds < report.worker_seconds
    # The driver wrote the workers' runs to the store, on this machine's cores.
    assert report.driver_cpu_seconds > 0
    assert report.cores >= 1

    runs = store.runs("sw-basic")  # type: ignore[attr-defined]
    assert [run.info.status for run in runs] == ["FINISHED"] * 4
    expected = {
        scenario_key(FUNCTION, arguments): arguments
        for arguments in emstrack._sweep.load_spec(spec).scenarios()
    }
    by_key = {run.data.tags[SCENARIO_KEY_TAG]: run for run in runs}
    assert set(by_key) == set(expected)
    for key, arguments in expected.items():
        # Named by the grid's varying values (building_id has one value: not in the name).
        assert by_key[key].info.run_name == f"{arguments['scenario']}-{arguments['start_day']}"
        params = by_key[key].data.params
        assert params["building_id"] == arguments["building_id"]
        assert params["scenario"] == arguments["scenario"]
        assert params["n_days"] == "1"
        assert params["battery_enabled"] == "true"
        assert "total_cost" in by_key[key].data.metrics
    # Workers that are separate processes wrote them (spawned, not this process).
    assert len({run.data.tags["emstrack.sweep_id"] for run in runs}) == 1

    again = emstrack.sweep(spec, workers=2, progress=False)
    assert (len(again.outcomes), again.skipped) == (0, 4)
    assert len(store.runs("sw-basic")) == 4  # type: ignore[attr-defined]


def test_a_failing_scenario_is_failed_and_the_sweep_goes_on(store: object) -> None:
    spec = grid(["DE_KN_residential1"], ["battery_only"], [0, 100_000], "sw-fail")
    report = emstrack.sweep(spec, workers=1, progress=False)
    assert report.finished == 1
    [failed] = report.failed
    assert failed.error is not None
    assert failed.error.startswith("ValueError: DE_KN_residential1")
    assert "100000" in failed.error
    statuses = sorted(run.info.status for run in store.runs("sw-fail"))  # type: ignore[attr-defined]
    assert statuses == ["FAILED", "FINISHED"]

    # Without --retry-failed the failed scenario stays as it is; with it, it runs again.
    kept = emstrack.sweep(spec, progress=False)
    assert (len(kept.outcomes), kept.skipped, kept.failed_kept) == (0, 1, 1)
    dry = emstrack.sweep(spec, retry_failed=True, dry_run=True, progress=False)
    good, bad = (scenario_key(FUNCTION, a) for a in emstrack._sweep.load_spec(spec).scenarios())
    assert [line.split()[:3] for line in dry.lines] == [
        ["run", bad, "retry"],
        ["skip", good, "finished"],
    ]
    retried = emstrack.sweep(spec, retry_failed=True, progress=False)
    assert (len(retried.outcomes), retried.superseded) == (1, 1)
    runs = store.runs("sw-fail")  # type: ignore[attr-defined]
    assert len(runs) == 3
    keyed = Counter(run.data.tags.get(SCENARIO_KEY_TAG) for run in runs)
    assert sorted(keyed.values()) == [1, 1, 1]  # two keys once each, and the superseded None
    superseded = [run for run in runs if SUPERSEDED_KEY_TAG in run.data.tags]
    assert [run.info.status for run in superseded] == ["FAILED"]


def test_a_killed_worker_costs_its_scenario_only_and_a_rerun_completes_it(
    store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = grid(["DE_KN_residential1"], ["battery_only", "self_consumption"], [0, 1], "sw-kill")
    marker = tmp_path / "died"
    for name, value in doom("DE_KN_residential1", "battery_only", 1, marker).items():
        monkeypatch.setenv(name, value)
    report = emstrack.sweep(spec, workers=1, progress=False)
    assert marker.exists()
    assert report.finished == 3
    assert [o.error for o in report.failed] == ["worker process died (exit code -9)"]
    runs = store.runs("sw-kill")  # type: ignore[attr-defined]
    # The dead worker's run was closed and delivered by the driver at the end: nothing waits.
    assert sorted(run.info.status for run in runs) == ["FINISHED"] * 3 + ["KILLED"]
    [killed] = [run for run in runs if run.info.status == "KILLED"]
    assert killed.data.tags["emstrack.incomplete"] == "true"
    assert store.spooled() == []  # type: ignore[attr-defined]

    dry = emstrack.sweep(spec, dry_run=True, progress=False)
    assert [line.split()[2] for line in dry.lines] == ["interrupted", *["finished"] * 3]
    rerun = emstrack.sweep(spec, workers=1, progress=False)
    assert (len(rerun.outcomes), rerun.finished, rerun.skipped) == (1, 1, 3)
    runs = store.runs("sw-kill")  # type: ignore[attr-defined]
    by_status = keys_by_status(runs)
    assert set(by_status) == {"FINISHED"}
    assert sorted(by_status["FINISHED"].values()) == [1, 1, 1, 1]  # 4 keys, once each
    orphan = [run for run in runs if SUPERSEDED_KEY_TAG in run.data.tags]
    assert [(run.info.status, run.data.tags["emstrack.incomplete"]) for run in orphan] == [
        ("KILLED", "true")
    ]
    assert rerun.synced == 0
    assert store.spooled() == []  # type: ignore[attr-defined]
