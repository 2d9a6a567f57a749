"""The LocalCluster a sweep starts itself: its workers run without Dask's profiler, restarts too;
short scenarios travel several to a task, and a killed worker still costs only its scenario."""

from __future__ import annotations

import contextlib
import socket
from collections import Counter
from pathlib import Path

import pytest

import emstrack
from emstrack._sweep import executors
from emstrack._sweep.executors import MAX_CHUNK, chunk_size, local_worker_config

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


def test_a_sweep_cluster_starts_cleanly_beside_another_on_port_8787(
    store: object, tmp_path: Path
) -> None:
    # Another cluster (or anything) on Dask's default 8787: the scheduler's pages go elsewhere
    # and no "Port 8787 is already in use" warning (an error in this suite) stops the sweep.
    with contextlib.ExitStack() as stack:
        holder = stack.enter_context(socket.socket())
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):  # already taken by something else: the same case
            holder.bind(("0.0.0.0", 8787))
            holder.listen()
        spec = _cases(tmp_path, "sw-dask-port", die_at=-1, always=False)
        report = emstrack.sweep(spec, executor="dask", workers=1, progress=False)
    assert (report.finished, len(report.failed)) == (12, 0), report.summary()


@pytest.mark.parametrize(
    ("typical", "remaining", "slots", "expected"),
    [
        (None, 600, 2, 1),  # no duration known yet: one scenario a task
        (0.015, 600, 2, 16),  # 16 x 15 ms = 0.24 s, about CHUNK_SECONDS
        (0.001, 600, 2, MAX_CHUNK),
        (0.0, 600, 2, MAX_CHUNK),
        (2.0, 600, 2, 1),  # a long scenario is a task of its own
        (0.015, 10, 2, 3),  # the tail: 10 left spread over 2 tasks per thread of 2 threads
        (0.015, 1, 8, 1),
        (0.015, 0, 2, 1),
    ],
)
def test_chunk_size_holds_a_quarter_second_and_spreads_the_tail(
    typical: float | None, remaining: int, slots: int, expected: int
) -> None:
    assert chunk_size(typical, remaining, slots) == expected


def _cases(tmp_path: Path, experiment: str, die_at: int, *, always: bool) -> dict[str, object]:
    return {
        "function": "helpers.sweep_pipelines:logged_case",
        "experiment": experiment,
        "grid": {"case": list(range(12))},
        "fixed": {
            "log": str(tmp_path / "started.log"),
            "die_at": die_at,
            "marker": str(tmp_path / "died"),
            "always": always,
        },
    }


def _starts(tmp_path: Path) -> Counter[int]:
    lines = (tmp_path / "started.log").read_text().splitlines()
    return Counter(int(line.split()[0]) for line in lines)


@pytest.fixture
def big_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks as large as the spread allows, whatever this machine's speed: on one worker the
    tasks are [0], [1], [2..6], [7..9], ... so that case 4 dies with cases 2 and 3 done."""
    monkeypatch.setattr(executors, "CHUNK_SECONDS", 1000.0)


@pytest.mark.usefixtures("big_chunks")
def test_a_worker_killed_mid_chunk_costs_only_its_scenario(store: object, tmp_path: Path) -> None:
    spec = _cases(tmp_path, "sw-dask-chunk-kill", die_at=4, always=False)
    report = emstrack.sweep(spec, executor="dask", workers=1, progress=False)
    assert (report.finished, len(report.failed), report.found_finished) == (12, 0, 0)
    assert len(report.outcomes) == 12, report.summary()

    # Dask ran the dead worker's chunk again: its finished scenarios gave back their outcome.
    assert _starts(tmp_path) == Counter({**dict.fromkeys(range(12), 1), 4: 2})
    killed_pid = float((tmp_path / "died").read_text())
    runs = store.runs("sw-dask-chunk-kill")  # type: ignore[attr-defined]
    finished = {run.data.metrics["case"]: run for run in runs if run.info.status == "FINISHED"}
    assert sorted(finished) == [float(case) for case in range(12)]
    assert len(finished) == len([run for run in runs if run.info.status == "FINISHED"])
    assert finished[2.0].data.metrics["pid"] == finished[3.0].data.metrics["pid"] == killed_pid
    assert finished[4.0].data.metrics["pid"] != killed_pid


@pytest.mark.usefixtures("big_chunks")
def test_when_dask_gives_up_on_a_chunk_only_the_scenario_killing_workers_fails(
    store: object, tmp_path: Path
) -> None:
    import dask

    spec = _cases(tmp_path, "sw-dask-chunk-poison", die_at=4, always=True)
    # Dask gives up on a task at its first lost worker: the chunk, then case 4 alone.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        report = emstrack.sweep(spec, executor="dask", workers=1, progress=False)
    assert [outcome.index for outcome in report.failed] == [4], report.summary()
    assert "KilledWorker" in (report.failed[0].error or "")
    assert (report.finished, report.found_finished, len(report.outcomes)) == (11, 0, 12)
    starts = _starts(tmp_path)
    assert starts[4] == 2  # in its chunk, then alone
    assert {case: starts[case] for case in (2, 3)} == {2: 1, 3: 1}  # done before the kill

    runs = store.runs("sw-dask-chunk-poison")  # type: ignore[attr-defined]
    finished = sorted(run.data.metrics["case"] for run in runs if run.info.status == "FINISHED")
    assert finished == [float(case) for case in range(12) if case != 4]
