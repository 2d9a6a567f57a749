"""The shipper process's queue, and the bounded wait of ``emstrack.flush()`` behind it.

The first test drives a real :class:`~emstrack._delivery.shipper.Shipper` in this process, step
by step, against real spool entries and a real SQLite store: the order of its two threads'
steps is what it checks, and only a step-by-step drive makes that order certain.
"""

from __future__ import annotations

import io
import subprocess
import sys

from emstrack import tracked_run
from emstrack._delivery.shipper import Shipper
from helpers.locks import holding_file_lock
from helpers.scripts import environment


def spool_finished_runs(store, monkeypatch, count: int) -> list[str]:
    """``count`` finished runs for the test's store left in its spool; their folder names."""
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    for index in range(count):
        with tracked_run(f"waiting-{index}", experiment="shipper") as run:
            run.log_metrics({"index": float(index)})
    monkeypatch.setenv("EMSTRACK_DELIVERY", "sync")
    return sorted(folder.name for folder in store.spooled())


def test_a_ship_command_arriving_as_its_entry_is_taken_for_delivery_is_not_stranded(
    store, monkeypatch
):
    """The pipeline's ``ship`` lines land just after the main thread took the same entries.

    The reader thread locks each one again. Before the fix the lines were dropped as
    duplicates of the entries being delivered, the locks were never let go, delivery found
    the entries busy and the shipper answered ``flushed 0`` with every run still in the spool
    (a reader waiting for those locks hung: issue 16's notebook CI failure).
    """
    names = spool_finished_runs(store, monkeypatch, 3)
    shipper = Shipper(store.spool, store.uri)
    shipper.adopt_orphans()  # a shipper starting: it finds the runs before their lines arrive
    with shipper._cond:
        step = shipper._wait_for_command()
        assert step is not None
        taken = shipper._take([step[1], *shipper._more_ships()])
    assert sorted(taken) == names
    for name in names:
        shipper._command(f"ship {name}".encode())
    shipper._ship(taken)  # the reader holds them: busy for now, queued again, not lost

    shipper._command(b"flush 7")
    with shipper._cond:
        shipper._closed = True  # stdin closed: run() returns once the queue is done
    answers = io.BytesIO()
    shipper.run(answers)

    assert answers.getvalue() == b"flushed 7 0\n"
    assert store.spooled() == []
    finished = sorted(
        (run.info.run_name, run.info.status, run.data.metrics["index"])
        for run in store.runs("shipper")
    )
    assert finished == [(f"waiting-{i}", "FINISHED", float(i)) for i in range(3)]


FLUSH = "import emstrack; print(emstrack.flush())"


def test_flush_waits_at_most_the_flush_timeout_for_a_run_another_process_holds(store, monkeypatch):
    """A deliverer stuck holding a finished run costs ``emstrack.flush()`` its timeout, not a hang.

    ``flush()`` without a ``timeout`` waits ``EMSTRACK_FLUSH_TIMEOUT`` seconds, then answers
    ``False``; the run stays in the spool and the next flush delivers it.
    """
    (name,) = spool_finished_runs(store, monkeypatch, 1)
    flush_environment = {**environment(store), "EMSTRACK_FLUSH_TIMEOUT": "1"}

    def flush_in_a_new_process() -> str:
        result = subprocess.run(
            [sys.executable, "-c", FLUSH],
            env=flush_environment,
            capture_output=True,
            text=True,
            timeout=300,  # without a bounded default the held lock made it wait an hour
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    with holding_file_lock(store.spool / name / ".lock"):
        delivered = flush_in_a_new_process()
        assert delivered == "False"
        assert [folder.name for folder in store.spooled()] == [name]
        assert store.runs("shipper") == []

    delivered = flush_in_a_new_process()
    assert delivered == "True"
    assert store.spooled() == []
    assert [run.info.status for run in store.runs("shipper")] == ["FINISHED"]
