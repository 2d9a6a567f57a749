"""A sweep started by a script run as ``python script.py``, with and without a ``__main__`` guard.

Spawned workers (local processes, a LocalCluster's) import the script again as ``__mp_main__``:
unguarded, its top level calls ``emstrack.sweep()`` once more in every worker as it starts.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from helpers.scripts import plain

EXPERIMENT = "sw-script"
SWEEP_CALL = """\
report = emstrack.sweep(
    {{
        "function": "emstrack.ems:compare_modes",
        "experiment": "{experiment}",
        "grid": {{"building_id": ["DE_KN_residential1"], "start_day": [0, 1]}},
        "fixed": {{"scenario": "battery_only", "n_days": 1}},
        "tracking": {{
            "params": "emstrack.ems:scenario_inputs",
            "metrics": "emstrack.ems:ModeComparison.figures",
        }},
    }},
    workers=2,
    executor="{executor}",
    progress=False,
)
print(report.summary())
"""
GUARD_HINT = 'under `if __name__ == "__main__":`'


def run_script(
    store: object, tmp_path: Path, *, guarded: bool, executor: str
) -> CompletedProcess[str]:
    call = SWEEP_CALL.format(experiment=EXPERIMENT, executor=executor)
    if guarded:
        call = 'if __name__ == "__main__":\n' + textwrap.indent(call, "    ")
    script = tmp_path / "my_sweep.py"
    script.write_text("import emstrack\n\n" + call, encoding="utf-8")
    return plain(store, str(script), text=True)


def test_a_guarded_script_sweeps_on_spawned_workers(store: object, tmp_path: Path) -> None:
    done = run_script(store, tmp_path, guarded=True, executor="local")
    assert done.returncode == 0, done.stderr
    assert "2 run (2 finished, 0 failed)" in done.stdout
    runs = store.runs(EXPERIMENT)  # type: ignore[attr-defined]
    assert [run.info.status for run in runs] == ["FINISHED"] * 2


@pytest.mark.parametrize(
    ("executor", "driver_error"),
    [
        ("local", "a sweep worker process exited (exit code 1) before it could run a scenario"),
        pytest.param(
            "dask",
            "the sweep's Dask LocalCluster could not start",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("distributed") is None,
                reason="needs Dask distributed",
            ),
        ),
    ],
)
def test_an_unguarded_script_stops_with_one_error_naming_the_guard_and_runs_nothing(
    store: object, tmp_path: Path, executor: str, driver_error: str
) -> None:
    done = run_script(store, tmp_path, guarded=False, executor=executor)
    # The driver stops at the first worker that could not start, not once per scenario.
    assert done.returncode == 1, done.stdout + done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("emstrack._errors.WorkerStartError: " + driver_error), last_line
    assert GUARD_HINT in last_line
    # The worker's own error says why, before its sweep() could plan or write anything.
    assert (
        "ConfigurationError: emstrack.sweep() was called by a worker process as it started"
        in done.stderr
    )
    assert done.stdout == ""
    # No scenario ran, and none is reported FAILED: the next (guarded) sweep runs both.
    assert store.runs(EXPERIMENT) == []  # type: ignore[attr-defined]
    assert store.spooled() == []  # type: ignore[attr-defined]


def test_a_program_read_from_stdin_is_refused_before_the_store_is_touched(
    store: object, tmp_path: Path
) -> None:
    """``python -`` has no file that spawned workers could run again: one error, nothing run."""
    call = SWEEP_CALL.format(experiment=EXPERIMENT, executor="local")
    store.path.unlink()  # type: ignore[attr-defined]
    done = plain(store, "-", input="import emstrack\n\n" + call, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("emstrack._errors.ConfigurationError: emstrack.sweep() starts")
    assert "'<stdin>' is not a file" in last_line
    assert "spawn_main" not in done.stderr  # no worker started
    assert not store.path.exists()  # type: ignore[attr-defined]
