"""Planning reads a SQL store's scenario runs directly: the same runs ``search_runs`` finds."""

from __future__ import annotations

from typing import Any

from emstrack._sweep.keys import SCENARIO_KEY_TAG, SUPERSEDED_KEY_TAG
from emstrack._sweep.plan import INCOMPLETE_TAG, StoredRun, _searched, stored_runs


def _runs(client: Any, experiment: str) -> dict[str, str]:
    """Runs of every kind planning meets; return name -> run id."""
    made = {}
    for name, status, tags in [
        ("finished", "FINISHED", {SCENARIO_KEY_TAG: "k1"}),
        ("failed", "FAILED", {SCENARIO_KEY_TAG: "k2"}),
        ("killed", "KILLED", {SCENARIO_KEY_TAG: "k3", INCOMPLETE_TAG: "true"}),
        ("running", "RUNNING", {SCENARIO_KEY_TAG: "k1"}),
        ("superseded", "FAILED", {SUPERSEDED_KEY_TAG: "k2"}),
        ("plain", "FINISHED", {}),
        ("deleted", "FINISHED", {SCENARIO_KEY_TAG: "k4"}),
    ]:
        run = client.create_run(experiment, run_name=name, tags=tags)
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status)
        made[name] = run.info.run_id
    client.delete_run(made["deleted"])
    return made


def test_a_sql_store_gives_what_search_runs_gives(store: Any) -> None:
    client = store.client
    experiment = client.create_experiment("planned")
    made = _runs(client, experiment)
    other = client.create_experiment("elsewhere")
    elsewhere = client.create_run(other, run_name="other", tags={SCENARIO_KEY_TAG: "k1"})
    client.set_terminated(elsewhere.info.run_id, "FINISHED")

    read = stored_runs(client, experiment, store.uri)
    searched = sorted(_searched(client, experiment), key=lambda r: (r.start_time, r.run_id))

    assert read == searched
    by_id = {run.run_id: run for run in read}
    assert set(by_id) == {made[name] for name in ("finished", "failed", "killed", "running")}
    killed = by_id[made["killed"]]
    assert killed == StoredRun(made["killed"], "k3", "KILLED", killed.start_time, True)
    assert by_id[made["running"]].status == "RUNNING"
    assert not by_id[made["finished"]].incomplete
    assert all(run.start_time > 0 for run in read)
    client.set_terminated(made["running"], "KILLED")


def test_an_experiment_without_scenario_runs_has_none(store: Any) -> None:
    client = store.client
    experiment = client.create_experiment("empty-plan")
    plain = client.create_run(experiment, run_name="plain")
    client.set_terminated(plain.info.run_id, "FINISHED")

    assert stored_runs(client, experiment, store.uri) == []
    assert stored_runs(client, None, store.uri) == []
