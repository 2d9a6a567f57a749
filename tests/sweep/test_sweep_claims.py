"""Two sweeps of one grid at the same time on one machine: the second leaves the first's
scenarios to it, and a sweep that died holds nothing.

The first sweep is a real ``emstrack sweep`` process held mid-scenario at a gate
(``helpers.sweep_pipelines.gate``); the second runs in the test, against the same SQLite store
and spool.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import emstrack
from emstrack import EmstrackWarning
from emstrack._sweep import SCENARIO_KEY_TAG, load_spec, scenario_key
from emstrack._sweep.claims import claims_folder
from emstrack._sweep.keys import SUPERSEDED_KEY_TAG
from helpers.servers import EMSTRACK, checkout_pythonpath, server_environment
from helpers.sweep_pipelines import gate, grid, grid_toml

HELD = ("DE_KN_residential1", "battery_only", 0)
"""The first scenario of :func:`spec`'s grid: the first sweep's worker waits in it."""
WAIT_S = 240.0


def spec(experiment: str) -> dict[str, object]:
    return grid(["DE_KN_residential1"], ["battery_only", "self_consumption"], [0, 1], experiment)


class HeldSweep:
    """``emstrack sweep`` in its own process group, held in its first scenario until opened."""

    def __init__(self, store: object, experiment: str) -> None:
        root: Path = store.root  # type: ignore[attr-defined]
        self.ready, self.opened = root / f"{experiment}.ready", root / f"{experiment}.open"
        grid_file = root / f"{experiment}.toml"
        grid_file.write_text(grid_toml(spec(experiment)))
        env = {
            **server_environment(),
            "PYTHONPATH": checkout_pythonpath(),
            "MLFLOW_TRACKING_URI": store.uri,  # type: ignore[attr-defined]
            "EMSTRACK_SPOOL_DIR": str(store.spool),  # type: ignore[attr-defined]
            **gate(HELD, self.ready, self.opened),
        }
        self.process = subprocess.Popen(
            [str(EMSTRACK), "sweep", str(grid_file), "--workers", "1", "--no-progress"],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its worker goes with it when the test kills the group
        )  # fmt: skip

    def wait_until_held(self) -> None:
        """Until its worker is in the held scenario (its plan and claim were made before)."""
        deadline = time.monotonic() + WAIT_S
        while not self.ready.exists():
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                pytest.fail(f"the first sweep ended before its gate: {err}")
            if time.monotonic() > deadline:
                pytest.fail("the first sweep did not reach its gate")
            time.sleep(0.05)

    def open(self) -> subprocess.CompletedProcess[str]:
        self.opened.write_text("open")
        out, err = self.process.communicate(timeout=WAIT_S)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)

    def kill(self) -> None:
        """SIGKILL the sweep and its worker, as a machine's crash or ``kill -9`` would."""
        # Only while the sweep is not reaped: its pid, as a group id, could be reused after.
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate(timeout=WAIT_S)


@pytest.fixture
def held(store: object) -> Iterator[HeldSweep]:
    sweep = HeldSweep(store, "sw-claims")
    try:
        yield sweep
    finally:
        sweep.kill()


def folder_of(store: object, experiment: str) -> Path:
    client = MlflowClient(tracking_uri=store.uri)  # type: ignore[attr-defined]
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return claims_folder(store.uri, found.experiment_id)  # type: ignore[attr-defined]


def test_a_second_sweep_leaves_the_scenarios_of_a_running_one_to_it(
    store: object, held: HeldSweep
) -> None:
    held.wait_until_held()
    first = held.process.pid
    assert len(list(folder_of(store, "sw-claims").glob("*.claim"))) == 1

    dry = emstrack.sweep(spec("sw-claims"), dry_run=True, progress=False)
    assert [(line.split()[0], line.split()[2]) for line in dry.lines] == [("skip", "running")] * 4
    where = f"(another sweep runs it: pid {first} on this machine)"
    assert all(line.endswith(where) for line in dry.lines)

    second = emstrack.sweep(spec("sw-claims"), workers=1, progress=False)
    assert (len(second.outcomes), second.skipped, second.running_elsewhere) == (0, 0, 4)
    assert second.elsewhere_pids == [first]
    assert f"4 left to another sweep running on this machine (pid {first})" in second.summary()
    assert store.runs("sw-claims") == []  # type: ignore[attr-defined]
    # Other scenarios of the same experiment are not held up: a grid of another day runs.
    other = grid(["DE_KN_residential1"], ["battery_only", "self_consumption"], [2], "sw-claims")
    beside = emstrack.sweep(other, workers=1, progress=False)
    assert (beside.finished, beside.running_elsewhere) == (2, 0), beside.summary()

    done = held.open()
    assert done.returncode == 0, done.stderr
    assert "4 run (4 finished, 0 failed)" in done.stdout
    runs = store.runs("sw-claims")  # type: ignore[attr-defined]
    assert Counter(run.info.status for run in runs) == {"FINISHED": 6}
    assert len({run.data.tags[SCENARIO_KEY_TAG] for run in runs}) == 6
    assert not any(SUPERSEDED_KEY_TAG in run.data.tags for run in runs)
    # The last sweep out removed the claims' folder.
    assert not folder_of(store, "sw-claims").exists()

    again = emstrack.sweep(spec("sw-claims"), progress=False)
    assert (len(again.outcomes), again.skipped, again.running_elsewhere) == (0, 4, 0)
    assert not folder_of(store, "sw-claims").exists()


def test_the_claim_of_a_sweep_that_died_holds_nothing(store: object, held: HeldSweep) -> None:
    held.wait_until_held()
    held.kill()

    report = emstrack.sweep(spec("sw-claims"), workers=1, progress=False)
    assert report.running_elsewhere == 0
    assert (report.finished, len(report.failed)) == (4, 0), report.summary()
    runs = store.runs("sw-claims")  # type: ignore[attr-defined]
    finished = [run for run in runs if run.info.status == "FINISHED"]
    assert len({run.data.tags[SCENARIO_KEY_TAG] for run in finished}) == 4
    # The killed sweep's open run was closed KILLED (it was in the spool) and superseded.
    [killed] = [run for run in runs if run.info.status != "FINISHED"]
    assert killed.info.status == "KILLED"
    assert killed.data.tags["emstrack.incomplete"] == "true"
    assert SUPERSEDED_KEY_TAG in killed.data.tags
    scenarios = load_spec(spec("sw-claims")).scenarios()
    expected = {scenario_key("helpers.sweep_pipelines:compare_modes", a) for a in scenarios}
    assert {run.data.tags.get(SCENARIO_KEY_TAG) for run in runs} - {None} == expected
    assert not folder_of(store, "sw-claims").exists()


def test_claims_that_cannot_be_kept_are_a_warning_and_the_sweep_runs(store: object) -> None:
    client = MlflowClient(tracking_uri=store.uri)  # type: ignore[attr-defined]
    client.create_experiment("sw-no-claims")
    blocked = folder_of(store, "sw-no-claims")
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the claims' folder goes")
    try:
        small = grid(["DE_KN_residential1"], ["battery_only"], [0, 1], "sw-no-claims")
        with pytest.warns(EmstrackWarning, match="could not read the scenarios other sweeps"):
            report = emstrack.sweep(small, workers=1, progress=False)
    finally:
        blocked.unlink()
    assert (report.finished, len(report.failed)) == (2, 0), report.summary()
    assert len(store.runs("sw-no-claims")) == 2  # type: ignore[attr-defined]


def test_a_sweep_removes_claims_that_dead_sweeps_left_on_other_stores(store: object) -> None:
    elsewhere = claims_folder("sqlite:////nowhere/gone.db", "1")
    left = subprocess.run(
        [sys.executable, "-c", LEAVE_A_CLAIM, str(elsewhere)], capture_output=True, text=True
    )
    assert left.returncode == 0, left.stderr
    assert len(list(elsewhere.glob("*.claim"))) == 1  # its process exited without letting go

    small = grid(["DE_KN_residential1"], ["battery_only"], [0], "sw-collect")
    assert emstrack.sweep(small, workers=1, progress=False).finished == 1
    assert not elsewhere.exists()
    assert not folder_of(store, "sw-collect").exists()


LEAVE_A_CLAIM = """
import os, sys
from pathlib import Path
from emstrack._sweep.claims import Claims
claims = Claims(Path(sys.argv[1]), "dead0sweep")
with claims.planning():
    claims.hold(["a" * 32])
os._exit(0)  # as a killed sweep: no release
"""
