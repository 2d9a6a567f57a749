"""Pipelines for the sweep tests: the reference EMS pipeline, one that kills its worker, and
one that crashes the tracking server.

:func:`compare_modes` is ``emstrack.ems.compare_modes`` with two additions for fault tests:

* when ``SWEEP_TEST_DIE_AT`` is ``"<building_id>/<scenario>/<start_day>|<marker file>"`` and the
  marker file does not exist yet, the call for that scenario writes the marker and SIGKILLs its
  own process in the middle of the scenario (its run is open in the store) - a worker crash,
  exactly once per marker;
* when ``SWEEP_TEST_OUTAGE`` holds the JSON made by :func:`outage`, the call for the ``stop``
  scenario SIGKILLs the process group of the tracking server (its pid in a file the test
  wrote), waits until ``/health`` no longer answers and writes the marker, once per marker, then
  runs; the call for the ``back`` scenario (if any) waits until the marker exists and the server
  answers again (the test restarts it when it sees the marker), then runs. Every wait is a
  bounded poll: a scenario that times out raises, and the sweep reports it FAILED;
* when ``SWEEP_TEST_GATE`` holds the JSON made by :func:`gate`, the call for that scenario
  writes the ``ready`` file, then waits (a bounded poll) until the ``open`` file exists: the
  sweep is held mid-scenario for as long as the test needs.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emstrack import ems

DIE_AT = "SWEEP_TEST_DIE_AT"
OUTAGE = "SWEEP_TEST_OUTAGE"
GATE = "SWEEP_TEST_GATE"
OUTAGE_TIMEOUT_S = 600.0
POLL_S = 0.05


def outage(
    stop: tuple[str, str, int],
    pid_file: Path,
    url: str,
    marker: Path,
    back: tuple[str, str, int] | None = None,
) -> dict[str, str]:
    """The environment that makes scenario ``stop`` crash the server, and ``back`` wait for it.

    ``stop`` and ``back`` are ``(building_id, scenario, start_day)``.
    """
    plan = {
        "stop": "/".join(map(str, stop)),
        "back": "/".join(map(str, back)) if back else None,
        "pid_file": str(pid_file),
        "url": url,
        "marker": str(marker),
    }
    return {OUTAGE: json.dumps(plan)}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _poll(condition: Any, what: str) -> None:
    deadline = time.monotonic() + OUTAGE_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"sweep outage test: {what} not seen after {OUTAGE_TIMEOUT_S} s")
        time.sleep(POLL_S)


def _outage(scenario: str) -> None:
    text = os.environ.get(OUTAGE, "")
    if not text:
        return
    plan = json.loads(text)
    marker = Path(plan["marker"])
    if scenario == plan["stop"] and not marker.exists():
        pid = int(Path(plan["pid_file"]).read_text())
        os.killpg(pid, signal.SIGKILL)  # the server crashes, workers and all
        _poll(lambda: not _answers(plan["url"]), "the server going down")
        marker.write_text(scenario)
    elif scenario == plan["back"]:
        _poll(marker.exists, "the server's crash")
        _poll(lambda: _answers(plan["url"]), "the server coming back")


def gate(at: tuple[str, str, int], ready: Path, opened: Path) -> dict[str, str]:
    """The environment that holds scenario ``at`` (``(building_id, scenario, start_day)``)
    until the file ``opened`` exists, after it wrote the file ``ready``."""
    plan = {"at": "/".join(map(str, at)), "ready": str(ready), "open": str(opened)}
    return {GATE: json.dumps(plan)}


def _gate(scenario: str) -> None:
    text = os.environ.get(GATE, "")
    if not text:
        return
    plan = json.loads(text)
    if scenario == plan["at"]:
        Path(plan["ready"]).write_text(str(os.getpid()))
        _poll(Path(plan["open"]).exists, "the gate opening")


def doom(building_id: str, scenario: str, start_day: int, marker: Path) -> dict[str, str]:
    """The environment that makes one scenario kill its worker once."""
    return {DIE_AT: f"{building_id}/{scenario}/{start_day}|{marker}"}


def compare_modes(
    building_id: str, scenario: str, n_days: int = 3, start_day: int = 0
) -> ems.ModeComparison:
    """``emstrack.ems.compare_modes``; kills its worker or the server, or waits at a gate, as
    the environment says."""
    _outage(f"{building_id}/{scenario}/{start_day}")
    _gate(f"{building_id}/{scenario}/{start_day}")
    doomed = os.environ.get(DIE_AT, "")
    if doomed:
        target, _, marker = doomed.partition("|")
        if target == f"{building_id}/{scenario}/{start_day}" and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return ems.compare_modes(building_id, scenario, n_days=n_days, start_day=start_day)


def grid(
    buildings: list[str],
    scenarios: list[str],
    days: list[int],
    experiment: str,
    function: str = "helpers.sweep_pipelines:compare_modes",
) -> dict[str, Any]:
    """A grid of 1-day ``compare_modes`` scenarios, tracked with the reference options."""
    return {
        "function": function,
        "experiment": experiment,
        "grid": {"building_id": buildings, "scenario": scenarios, "start_day": days},
        "fixed": {"n_days": 1},
        "tracking": {
            "params": "emstrack.ems:scenario_inputs",
            "metrics": "emstrack.ems:ModeComparison.figures",
        },
    }


def grid_toml(spec: dict[str, Any]) -> str:
    """A :func:`grid` as the TOML file ``emstrack sweep`` reads (JSON strings are TOML strings)."""
    lines = [f"function = {json.dumps(spec['function'])}"]
    lines.append(f"experiment = {json.dumps(spec['experiment'])}")
    for table in ("grid", "fixed", "tracking"):
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in spec[table].items())
    return "\n".join(lines) + "\n"


def dask_worker_settings(case: int, die_once: str = "") -> dict[str, float]:
    """The Dask settings the worker running this scenario has, as metrics.

    With ``die_once`` (a marker file) not there yet, the call writes it and SIGKILLs its own
    worker process first: Dask's nanny restarts the worker and the scenario runs again there.
    """
    import dask

    if die_once and not Path(die_once).exists():
        Path(die_once).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return {
        "case": float(case),
        "profiler_on": float(bool(dask.config.get("distributed.worker.profile.enabled"))),
        "pid": float(os.getpid()),
    }


def logged_case(
    case: int, log: str, die_at: int = -1, marker: str = "", always: bool = False
) -> dict[str, float]:
    """A quick scenario that notes each time it starts (``"<case> <pid>"``, a line of ``log``).

    The call for ``die_at`` SIGKILLs its own worker: once (writing ``marker`` first), or every
    time with ``always``.
    """
    with open(log, "a", encoding="utf-8") as file:
        file.write(f"{case} {os.getpid()}\n")
    if case == die_at and (always or not Path(marker).exists()):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return {"case": float(case), "pid": float(os.getpid())}
