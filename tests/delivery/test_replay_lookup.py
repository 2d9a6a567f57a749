"""How a replay finds a run that may already be in the store, exactly once, without a tag scan.

A run another process delivers (``EMSTRACK_DELIVERY=process`` or ``spool``) carries
``creates_noted`` in its start event: every ``create_run`` for it is preceded by saving
``create_attempted`` in ``state.json``. A replay whose state says no create was attempted then
only checks the run id equal to the key (what a batch stores). Otherwise (the writer sends its
run itself, an entry of emstrack 0.1, or a create that was attempted) it looks the key up by
tag, which reads every run's key tag. Tag searches are counted on MLflow's own engine: the
``SELECT`` statements that carry the key tag's name as a parameter.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import emstrack
from emstrack._delivery.batched import deliver_many
from emstrack._delivery.orphans import Outcome, deliver
from emstrack._delivery.shipping import ship
from emstrack._delivery.spool import CREATES_NOTED, ShipState, SpoolEntry
from emstrack._delivery.store import Store, get_store
from emstrack._tags import RUN_KEY_TAG
from helpers.servers import all_runs, free_port

EXPERIMENT = "lookup"


@contextlib.contextmanager
def tag_searches(uri: str) -> Iterator[list[str]]:
    """The SQL statements that look a run key up by tag while the block runs."""
    from mlflow.tracking._tracking_service.utils import _get_store
    from sqlalchemy import event

    get_store(uri).client  # noqa: B018 - the store and its engine, created and migrated
    engine = _get_store(uri).engine
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and RUN_KEY_TAG in repr(parameters):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def _spooled_run(store: Any, monkeypatch: Any, name: str = "spooled") -> Path:
    """A finished run left in the spool for another process, as a sweep's worker leaves it."""
    monkeypatch.setenv("EMSTRACK_DELIVERY", "spool")
    with emstrack.tracked_run(name, experiment=EXPERIMENT) as run:
        run.log_params({"building": "b1"})
        run.log_metrics({"cost": 1.5})
        run.log_metrics({"cost": 2.5}, step=1)
    (folder,) = [path for path in store.spool.iterdir() if path.name.endswith(run.key)]
    return folder


def _start_event(folder: Path) -> dict[str, Any]:
    return SpoolEntry(folder).start_event()


def _drop_flag(folder: Path) -> None:
    """Rewrite the entry's start event without the flag, as emstrack 0.1 wrote it."""
    events = folder / "run.jsonl"
    first, _, rest = events.read_bytes().partition(b"\n")
    start = json.loads(first)
    del start[CREATES_NOTED]
    events.write_bytes(json.dumps(start, separators=(",", ":")).encode() + b"\n" + rest)


def _one_run(uri: str) -> Any:
    (run,) = all_runs(uri, EXPERIMENT)
    return run


def test_only_a_run_another_process_delivers_notes_its_creates(
    store: Any, monkeypatch: Any
) -> None:
    """Spool and process delivery note their creates; a writer that sends its run does not."""
    assert _start_event(_spooled_run(store, monkeypatch, "spool"))[CREATES_NOTED] is True
    shutil.rmtree(store.spool)

    monkeypatch.setenv("EMSTRACK_DELIVERY", "sync")
    monkeypatch.setenv("EMSTRACK_STRICT", "0")
    with (
        pytest.warns(emstrack.EmstrackWarning, match="spool"),
        emstrack.tracked_run(
            "sync", experiment=EXPERIMENT, tracking_uri=f"http://127.0.0.1:{free_port()}"
        ),
    ):
        pass  # the store is unreachable: the run is kept in the spool
    (kept,) = store.spooled()
    assert CREATES_NOTED not in _start_event(kept)


def test_a_noted_run_is_replayed_without_a_tag_search(store: Any, monkeypatch: Any) -> None:
    """One by one, a noted run with no create attempted is created without reading key tags;
    the same entry as emstrack 0.1 wrote it is searched for, as before."""
    folder = _spooled_run(store, monkeypatch)
    old_form = store.root / "old-form" / folder.name
    shutil.copytree(folder, old_form)
    _drop_flag(old_form)

    with tag_searches(store.uri) as noted_searches:
        assert deliver(folder, store.uri) is Outcome.SENT
    with tag_searches(store.uri) as old_searches:
        assert deliver(old_form, store.uri) is Outcome.SENT

    assert noted_searches == []
    assert len(old_searches) >= 1
    # The old-form copy carries the same key: found by its tag, completed, not duplicated.
    run = _one_run(store.uri)
    assert run.data.metrics == {"cost": 2.5}
    assert run.data.tags[RUN_KEY_TAG] == folder.name.partition("-")[2]


def test_the_create_is_noted_on_disk_before_it_reaches_the_store(
    store: Any, monkeypatch: Any
) -> None:
    folder = _spooled_run(store, monkeypatch)
    noted_at_create: list[bool] = []
    original = Store.create_run

    def create_run(self: Store, *args: Any, **kwargs: Any) -> str:
        noted_at_create.append(SpoolEntry(folder).load_state().create_attempted)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "create_run", create_run)

    assert deliver(folder, store.uri) is Outcome.SENT
    assert noted_at_create == [True]


def test_a_create_whose_answer_was_lost_is_found_by_its_tag(store: Any, monkeypatch: Any) -> None:
    """A deliverer that died after its create_run reached the store, before keeping the id:
    state.json says a create was attempted, so the next deliverer searches and completes it."""
    folder = _spooled_run(store, monkeypatch)
    entry = SpoolEntry(folder)
    assert entry.acquire(timeout=0)
    lost = ShipState()
    try:
        ship(entry, lost, uri=store.uri, replay=True, create_only=True)
    finally:
        entry.release()
        entry.close()
    assert lost.run_id is not None  # in the store, RUNNING; only this memory knew its id
    saved = SpoolEntry(folder).load_state()
    assert (saved.create_attempted, saved.run_id) == (True, None)

    with tag_searches(store.uri) as searches:
        assert deliver(folder, store.uri) is Outcome.SENT

    assert len(searches) >= 1
    run = _one_run(store.uri)
    assert run.info.run_id == lost.run_id
    assert run.info.status == "FINISHED"
    assert run.data.params == {"building": "b1"}


def test_a_batch_committed_then_replayed_one_by_one_is_found_by_its_id(
    store: Any, monkeypatch: Any
) -> None:
    """A batch stores the run under its key and is killed before removing the entry; the next
    deliverer goes one by one (as for an HTTP store): a primary-key look-up finds the run."""
    folder = _spooled_run(store, monkeypatch)
    kept = store.root / "kept" / folder.name
    shutil.copytree(folder, kept)
    assert deliver_many([folder], store.uri) == {folder: Outcome.SENT}
    shutil.copytree(kept, folder)  # the entry again, as if never removed

    with tag_searches(store.uri) as searches:
        assert deliver(folder, store.uri) is Outcome.SENT

    assert searches == []
    run = _one_run(store.uri)
    assert run.info.run_id == folder.name.partition("-")[2]
    assert run.data.metrics == {"cost": 2.5}


def test_find_run_takes_the_id_only_with_its_key_in_its_experiment(
    store: Any, monkeypatch: Any
) -> None:
    """By id first: the run must carry the key tag and sit in the experiment asked about; a
    run created by MLflow (a random id) is found by its tag, unless the tag search is off."""
    folder = _spooled_run(store, monkeypatch, "batched")
    key = folder.name.partition("-")[2]
    assert deliver_many([folder], store.uri) == {folder: Outcome.SENT}
    monkeypatch.setenv("EMSTRACK_DELIVERY", "sync")
    with emstrack.tracked_run("created", experiment=EXPERIMENT) as created:
        pass
    shipping = get_store(store.uri)
    experiment_id = shipping.experiment_id(EXPERIMENT)
    other_id = shipping.experiment_id("elsewhere")

    with tag_searches(store.uri) as searches:
        assert shipping.find_run(experiment_id, key) == key
        assert shipping.find_run(experiment_id, key, by_tag=False) == key
    assert searches == []
    assert shipping.find_run(other_id, key) is None
    assert shipping.find_run(experiment_id, created.key) == created.run_id != created.key
    assert shipping.find_run(experiment_id, created.key, by_tag=False) is None
