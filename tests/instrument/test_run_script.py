"""``emstrack run`` on the untouched example script: same bytes out, one parent, one child per
call with mapped returns and solver metrics; exit status 3 -> FAILED; Ctrl-C -> KILLED."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.scripts import emstrack_command, environment, plain, tracked, with_default_sigint

SCRIPTS = Path(__file__).resolve().parents[2] / "examples" / "scripts"
EXAMPLE = SCRIPTS / "plan_battery.py"
ARGS = ["--building", "DE_KN_residential1", "--mode", "cost", "--n_days", "2"]


def children_of(store, parent, experiment):
    return [
        r
        for r in store.runs(experiment)
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    ]


def test_example_is_identical_and_tracked(store):
    """Byte-identical stdout/stderr and status; parent with parsed args; children per call."""
    expected = plain(store, str(EXAMPLE), *ARGS)
    assert expected.returncode == 0, expected.stderr
    got = tracked(
        store,
        "--quiet",
        "-e",
        "plans",
        "--track",
        "optimize_day",
        "--returns",
        "optimize_day=cost_eur,_",
        "--track",
        f"{SCRIPTS / '01_steps.py'}:load_day",
        "--",
        str(EXAMPLE),
        *ARGS,
    )
    assert got.returncode == expected.returncode, got.stderr.decode()
    assert got.stdout == expected.stdout
    assert got.stderr == expected.stderr
    runs = store.runs("plans")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "plan_battery.py"
    assert parent.data.params == {
        "building": "DE_KN_residential1",
        "mode": "cost",
        "n_days": "2",
        "capacity_kwh": "5",
    }
    assert parent.data.tags["emstrack.exit_status"] == "0"
    assert "--track optimize_day" in parent.data.tags["emstrack.command"]
    children = children_of(store, parent, "plans")
    optimized = sorted(
        (r for r in children if r.info.run_name == "optimize_day"),
        key=lambda r: r.data.params["day.date"],
    )
    assert [r.data.params["day.date"] for r in optimized] == ["2016-07-03", "2016-07-04"]
    printed = [line.split() for line in expected.stdout.decode().splitlines()[:2]]
    for run, line in zip(optimized, printed, strict=True):
        assert run.info.status == "FINISHED"
        assert run.data.params["mode"] == "cost"
        assert run.data.params["capacity_kwh"] == "5"
        assert f"{run.data.metrics['cost_eur']:8.3f}".strip() == line[2]
        assert run.data.metrics["solver.solves"] == 1.0
        assert run.data.metrics["solver.objective"] == pytest.approx(run.data.metrics["cost_eur"])
        assert run.data.metrics["solver.variables"] == 120.0
        assert run.data.tags["solver.status"] == "Optimal"
        assert "return_1" not in run.data.metrics
    loads = [r for r in children if r.info.run_name == "load_day"]
    assert sorted(r.data.params["day"] for r in loads) == ["0", "1"]
    assert len(children) == 4


@pytest.mark.slow
def test_unnamed_tuple_items_map_positionally_and_the_rest_is_described(store):
    """Without --returns: return_0 metric; the device list described in config.json."""
    got = tracked(
        store,
        "-q",
        "-e",
        "positional",
        "--track",
        "optimize_day",
        "--",
        str(EXAMPLE),
        "--n_days",
        "1",
    )
    assert got.returncode == 0, got.stderr.decode()
    (child,) = [r for r in store.runs("positional") if r.info.run_name == "optimize_day"]
    assert set(child.data.metrics) >= {"return_0", "solver.objective"}
    config = json.loads((store.artifact_root(child.info.run_id) / "config.json").read_text())
    assert config["inputs"]["returns"] == {"return_1": "<list of 2: steps.Device>"}
    assert config["inputs"]["arguments"]["mode"] == "cost"
    assert b"EmstrackWarning" not in got.stderr


def test_exit_status_3_fails_the_parent_and_is_passed_on(store):
    """sys.exit(3) inside the script: FAILED parent with the code, emstrack exits 3."""
    args = [*ARGS, "--max_cost", "-3.9"]
    expected = plain(store, str(EXAMPLE), *args)
    assert expected.returncode == 3
    got = tracked(
        store, "-q", "-e", "failing", "--track", "optimize_day", "--", str(EXAMPLE), *args
    )
    assert got.returncode == 3
    assert got.stdout == expected.stdout
    assert got.stderr == expected.stderr
    (parent,) = [r for r in store.runs("failing") if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["emstrack.exit_status"] == "3"
    assert parent.data.tags["emstrack.exception.type"] == "SystemExit"
    assert parent.data.tags["emstrack.exception.message"] == "3"
    assert len(children_of(store, parent, "failing")) == 1


def test_ctrl_c_kills_the_parent_and_the_process_dies_by_sigint(store, tmp_path):
    """SIGINT while the script waits on its stdin pipe: KILLED parent, death by SIGINT."""
    script = tmp_path / "wait.py"
    script.write_text(
        "import sys\n"
        "def solve(x):\n"
        "    return {'x': x}\n"
        "solve(1)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    codes = []
    for command in (
        [sys.executable, str(script)],
        [
            *emstrack_command(),
            "run",
            "-q",
            "-e",
            "interrupted",
            "--track",
            "solve",
            "--",
            str(script),
        ],
    ):
        process = subprocess.Popen(
            with_default_sigint(command),
            cwd=store.root,
            env=environment(store),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"ready\n"  # the script is blocked on stdin
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert b"KeyboardInterrupt" in stderr
        codes.append(process.returncode)
    assert codes[0] == codes[1] == -signal.SIGINT
    (parent,) = [r for r in store.runs("interrupted") if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED"
    assert [r.info.status for r in children_of(store, parent, "interrupted")] == ["FINISHED"]
