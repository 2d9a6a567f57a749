"""Which experiment ``emstrack ui`` shows, and the URLs that land on MLflow's runs table."""

from __future__ import annotations

import pytest

from emstrack import tracked_run
from emstrack._ui_links import (
    UnknownExperimentError,
    choose_experiment,
    experiment_url,
    run_url,
    runs_url,
    ui_base_url,
)


def test_urls_name_the_runs_view_and_the_training_workflow():
    assert (
        runs_url("http://127.0.0.1:5000/", "7")
        == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert (
        run_url("http://h:1", "7", "abc")
        == "http://h:1/#/experiments/7/runs/abc?workflowType=machine_learning"
    )
    assert (
        experiment_url("http://h:1", None)
        == "http://h:1/#/experiments?workflowType=machine_learning"
    )


def test_most_recently_used_experiment_wins(store):
    """The experiment of the run that started last, not the one created last."""
    for experiment in ("first", "second", "first"):
        with tracked_run(experiment=experiment):
            pass
    chosen = choose_experiment(store.uri)
    assert chosen is not None
    assert chosen.name == "first"
    assert chosen.experiment_id == store.client.get_experiment_by_name("first").experiment_id
    assert choose_experiment(store.uri, "second").name == "second"


def test_unknown_name_lists_the_experiments(store):
    with tracked_run(experiment="known"):
        pass
    with pytest.raises(UnknownExperimentError, match=r"no experiment 'nope' .*'known'"):
        choose_experiment(store.uri, "nope")


def test_store_without_runs_or_database(store, tmp_path):
    """Without runs: the newest experiment; without a database: None (a name is an error)."""
    store.client.create_experiment("empty")
    assert choose_experiment(store.uri).name == "empty"
    missing = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    assert choose_experiment(missing) is None
    with pytest.raises(UnknownExperimentError, match="does not exist"):
        choose_experiment(missing, "x")
    assert not (tmp_path / "none").exists()


def test_known_servers(monkeypatch):
    monkeypatch.delenv("EMSTRACK_UI_URL", raising=False)
    assert ui_base_url("http://user:pw@mlflow.local:5000/") == "http://mlflow.local:5000"
    assert ui_base_url("sqlite:////nowhere/never-served.db") is None
    monkeypatch.setenv("EMSTRACK_UI_URL", "http://proxy/mlflow/")
    assert ui_base_url("sqlite:////nowhere/never-served.db") == "http://proxy/mlflow"
