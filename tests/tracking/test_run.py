"""tracked_run(): one MLflow run around a block, read back from a real SQLite store."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

import emstrack
from emstrack import EmstrackWarning, TrackingError, active_run, tracked_run
from emstrack.schemas import OptimizationParams


def _only_run(store, experiment="Default"):
    runs = store.runs(experiment)
    assert len(runs) == 1
    return runs[0]


class TestStatus:
    def test_block_that_completes_is_finished(self, store):
        """A block that returns normally ends FINISHED with its start and end times."""
        with tracked_run("ok") as run:
            pass
        stored = _only_run(store)
        assert stored.info.status == "FINISHED"
        assert stored.info.run_name == "ok"
        assert stored.info.run_id == run.run_id
        assert stored.info.end_time >= stored.info.start_time

    def test_exception_fails_the_run_and_propagates_the_same_object(self, store):
        """An exception fails the run (type, message, traceback logged) and is re-raised as is."""
        error = ValueError("battery capacity must be positive")
        with pytest.raises(ValueError, match="must be positive") as raised, tracked_run("boom"):
            raise error
        assert raised.value is error
        stored = _only_run(store)
        assert stored.info.status == "FAILED"
        assert stored.data.tags["emstrack.exception.type"] == "ValueError"
        assert stored.data.tags["emstrack.exception.message"] == "battery capacity must be positive"
        traceback_text = (store.artifact_root(stored.info.run_id) / "traceback.txt").read_text()
        assert "ValueError: battery capacity must be positive" in traceback_text
        assert "test_exception_fails_the_run" in traceback_text

    def test_keyboard_interrupt_kills_the_run(self, store):
        """KeyboardInterrupt marks the run KILLED and still propagates."""
        with pytest.raises(KeyboardInterrupt), tracked_run("interrupted"):
            raise KeyboardInterrupt
        assert _only_run(store).info.status == "KILLED"

    def test_qualified_name_for_non_builtin_exceptions(self, store):
        """Exception types outside builtins are tagged with their module."""
        with pytest.raises(json.JSONDecodeError), tracked_run("bad json"):
            json.loads("{")
        assert (
            _only_run(store).data.tags["emstrack.exception.type"] == "json.decoder.JSONDecodeError"
        )

    def test_no_run_left_active_after_an_exception(self, store):
        """After a failing block (a notebook cell that raised) no run stays active."""
        with pytest.raises(RuntimeError), tracked_run("cell"):
            assert active_run() is not None
            raise RuntimeError("cell failed")
        assert active_run() is None
        with tracked_run("next cell") as run:
            assert run.parent is None


class TestNesting:
    def test_inner_run_is_a_child_of_the_outer(self, store):
        """A tracked_run inside another becomes its child in the same experiment."""
        with tracked_run("parent", experiment="nest") as parent:
            with tracked_run("child") as child:
                assert active_run() is child
            assert active_run() is parent
        runs = {run.info.run_name: run for run in store.runs("nest")}
        assert runs["child"].data.tags["mlflow.parentRunId"] == parent.run_id
        assert "mlflow.parentRunId" not in runs["parent"].data.tags
        assert child.experiment == "nest"

    def test_nested_false_starts_an_independent_run(self, store):
        """nested=False opens a top-level run even inside another."""
        with tracked_run("outer"), tracked_run("independent", nested=False) as inner:
            assert inner.parent is None
        runs = {run.info.run_name: run for run in store.runs()}
        assert "mlflow.parentRunId" not in runs["independent"].data.tags

    def test_failing_child_leaves_the_parent_running_until_it_ends(self, store):
        """A child's exception fails the child; the parent that handles it finishes."""
        with tracked_run("parent"), pytest.raises(ZeroDivisionError), tracked_run("child"):
            _ = 1 / 0
        statuses = {run.info.run_name: run.info.status for run in store.runs()}
        assert statuses == {"parent": "FINISHED", "child": "FAILED"}


class TestParams:
    def test_model_params_are_flattened_and_canonical(self, store):
        """A nested pydantic model becomes dotted params with canonical values."""
        params = OptimizationParams(building_id="DE_KN_residential4", n_days=3)
        with tracked_run("params", params=params):
            pass
        stored = _only_run(store).data.params
        assert stored["building_id"] == "DE_KN_residential4"
        assert stored["optimization_mode"] == "cost"
        assert stored["battery_enabled"] == "true"
        assert stored["battery.capacity_kwh"] == "10"
        assert stored["battery.charge_efficiency"] == "0.95"
        assert stored["n_days"] == "3"

    def test_same_value_again_is_a_no_op(self, store):
        """Logging a param again with the same value (7 and 7.0 alike) changes nothing."""
        with tracked_run("again") as run:
            run.log_params({"horizon": 7})
            run.log_params({"horizon": 7.0})
        stored = _only_run(store)
        assert stored.data.params == {"horizon": "7"}
        assert not any(key.startswith("emstrack.param_conflict") for key in stored.data.tags)

    def test_conflicting_value_is_kept_visible_not_raised(self, store, monkeypatch):
        """A different value for a logged param keeps the first, tags the second and warns once."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        with (
            pytest.warns(EmstrackWarning, match="horizon") as caught,
            tracked_run("conflict") as run,
        ):
            run.log_params({"horizon": 7})
            run.log_params({"horizon": 14})
        assert len(caught) == 1
        stored = _only_run(store)
        assert stored.data.params == {"horizon": "7"}
        assert stored.data.tags["emstrack.param_conflict.horizon"] == "14"
        assert stored.info.status == "FINISHED"

    def test_config_json_holds_the_inputs(self, store):
        """params= is also logged whole as config.json, which re-creates the model exactly."""
        params = OptimizationParams(building_id="DE_KN_residential1", ev_enabled=True)
        with tracked_run("config", params=params) as run:
            pass
        document = json.loads((store.artifact_root(run.run_id) / "config.json").read_text())
        assert OptimizationParams.model_validate(document["inputs"]) == params


class TestMetrics:
    def test_series_is_one_batched_history(self, store):
        """log_series writes every value at its own step."""
        values = [math.sin(i / 10) for i in range(96)]
        with tracked_run("series") as run:
            run.log_series("soc", values, start_step=5)
        history = store.client.get_metric_history(run.run_id, "soc")
        assert [(point.step, point.value) for point in history] == [
            (5 + i, value) for i, value in enumerate(values)
        ]

    def test_long_series_spans_several_batches(self, store):
        """A year of hourly values (8,760 points) arrives whole."""
        with tracked_run("year") as run:
            run.log_series("load_kwh", range(8760))
        history = store.client.get_metric_history(run.run_id, "load_kwh")
        assert len(history) == 8760
        assert sorted(point.step for point in history) == list(range(8760))

    def test_numbers_bools_and_strings(self, store):
        """Numbers become metrics, bools 0/1 and strings tags."""
        with tracked_run("mixed") as run:
            run.log_metrics({"total_cost": 3.25, "converged": True, "solver_status": "Optimal"})
        stored = _only_run(store)
        assert stored.data.metrics == {"total_cost": 3.25, "converged": 1.0}
        assert stored.data.tags["solver_status"] == "Optimal"

    def test_step_applies_to_scalar_metrics(self, store):
        """log_metrics(step=d) records per-day values as steps."""
        with tracked_run("days") as run:
            for day, cost in enumerate([1.5, 2.5, 0.5]):
                run.log_metrics({"daily_cost": cost}, step=day)
        history = store.client.get_metric_history(run.run_id, "daily_cost")
        assert sorted((p.step, p.value) for p in history) == [(0, 1.5), (1, 2.5), (2, 0.5)]

    def test_infinity_is_a_tag_not_a_fake_number(self, store):
        """±inf is never stored as ±1.8e308: it becomes a tag; NaN stays NaN."""
        with tracked_run("nonfinite") as run:
            run.log_metrics({"gap": float("inf"), "ratio": float("nan"), "ok": 1.0})
        stored = _only_run(store)
        assert "gap" not in stored.data.metrics
        assert math.isnan(stored.data.metrics["ratio"])
        assert stored.data.tags["emstrack.nonfinite.gap"] == "inf@0"
        document = json.loads((store.artifact_root(run.run_id) / "config.json").read_text())
        assert document["mapping"]["nonfinite_metrics"] == {"gap": [{"step": 0, "value": "inf"}]}


class TestArtifacts:
    def test_files_folders_frames_figures_text(self, store, tmp_path):
        """Every artifact kind lands in the run's artifact folder."""
        import matplotlib.pyplot as plt
        import pandas as pd

        source = tmp_path / "out"
        (source / "plots").mkdir(parents=True)
        (source / "results.csv").write_text("day,cost\n0,1.5\n")
        (source / "plots" / "a.txt").write_text("a")
        single = tmp_path / "notes.md"
        single.write_text("# notes")
        figure, axes = plt.subplots()
        axes.plot([1, 2, 3])
        with tracked_run("artifacts") as run:
            run.log_artifacts(source)
            run.log_artifact(single, artifact_path="docs")
            run.log_frame(pd.DataFrame({"cost": [1.0, 2.0]}), "daily")
            run.log_figure(figure, "schedule")
            run.log_text("hello", "hello.txt")
            run.log_config({"a": 1}, name="extra.json")
        plt.close(figure)
        root = store.artifact_root(run.run_id)
        assert (root / "results.csv").read_text() == "day,cost\n0,1.5\n"
        assert (root / "plots" / "a.txt").read_text() == "a"
        assert (root / "docs" / "notes.md").read_text() == "# notes"
        assert (root / "daily.csv").read_text().splitlines() == [",cost", "0,1.0", "1,2.0"]
        assert (root / "schedule.png").read_bytes().startswith(b"\x89PNG")
        assert (root / "hello.txt").read_text() == "hello"
        assert json.loads((root / "extra.json").read_text()) == {"a": 1}

    def test_file_is_copied_when_logged(self, store, tmp_path):
        """Changing a file after logging it does not change the artifact."""
        path = tmp_path / "result.csv"
        path.write_text("before")
        with tracked_run("copy") as run:
            run.log_artifact(path)
            path.write_text("after")
        assert (store.artifact_root(run.run_id) / "result.csv").read_text() == "before"

    def test_names_never_escape_the_artifact_folder(self, store):
        """An artifact name built from user input stays inside the run's folder."""
        with tracked_run("escape") as run:
            run.log_text("x", "../../../escaped.txt")
            run.log_text("y", "/etc/passwd")
        root = store.artifact_root(run.run_id)
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
            "____/____/____/escaped.txt".replace("____", "__"),
            "etc/passwd",
        ]
        assert not (store.root / "escaped.txt").exists()


class TestNeverBreaksThePipeline:
    def test_missing_artifact_is_a_warning_when_not_strict(self, store, monkeypatch):
        """A logging failure is one EmstrackWarning naming the cause; the block runs on."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        with (
            pytest.warns(EmstrackWarning, match="no file at") as caught,
            tracked_run("missing") as run,
        ):
            run.log_artifact(Path("does-not-exist.csv"))
            run.log_metrics({"after": 1})
        assert len(caught) == 1
        stored = _only_run(store)
        assert stored.info.status == "FINISHED"
        assert stored.data.metrics == {"after": 1.0}

    def test_strict_mode_raises_tracking_error(self, store):
        """EMSTRACK_STRICT=1 turns a logging failure into a TrackingError."""
        with pytest.raises(TrackingError, match="no file at"), tracked_run("strict") as run:
            run.log_artifact(Path("does-not-exist.csv"))
        assert _only_run(store).info.status == "FAILED"

    def test_pipeline_exception_wins_over_strict_tracking_errors(self, store):
        """When the block raises, that exception propagates, not emstrack's."""
        error = KeyError("device")
        with pytest.raises(KeyError) as raised, tracked_run("both") as run:
            run.flush()
            raise error
        assert raised.value is error

    def test_unmappable_value_is_kept_in_config_and_named_once(self, store, monkeypatch):
        """A value that fits nowhere is reported in one warning and kept in config.json."""
        monkeypatch.delenv("EMSTRACK_STRICT")

        class Opaque:
            pass

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with tracked_run("opaque") as run:
                run.log_metrics({"thing": Opaque(), "cost": 1.0})
        assert [type(w.message) for w in caught] == [EmstrackWarning]
        assert "'thing' not logged" in str(caught[0].message)
        document = json.loads((store.artifact_root(run.run_id) / "config.json").read_text())
        assert "Opaque" in document["mapping"]["not_logged"]["thing"]
        assert _only_run(store).data.metrics == {"cost": 1.0}

    def test_logging_after_the_end_is_ignored_with_a_warning(self, store, monkeypatch):
        """A handle used after its block ended warns instead of writing."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        with tracked_run("done") as run:
            pass
        with pytest.warns(EmstrackWarning, match="after the run ended"):
            run.log_metrics({"late": 1})
        assert _only_run(store).data.metrics == {}


class TestWhereRunsGo:
    def test_explicit_uri_beats_environment(self, store, tmp_path, template_database):
        """tracking_uri= wins over MLFLOW_TRACKING_URI."""
        import shutil

        other = tmp_path / "other.db"
        shutil.copyfile(template_database, other)
        with tracked_run("elsewhere", tracking_uri=f"sqlite:///{other}"):
            pass
        assert store.runs() == []
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{other}")
        assert [r.info.run_name for r in client.search_runs(["0"])] == ["elsewhere"]

    def test_embedded_default_is_mlflow_db_in_the_working_directory(
        self, store, monkeypatch, tmp_path
    ):
        """Without a URI, runs go to sqlite:///mlflow.db in the working directory."""
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
        workdir = tmp_path / "project"
        workdir.mkdir()
        monkeypatch.chdir(workdir)
        with tracked_run("embedded", experiment="embedded") as run:
            pass
        assert (workdir / "mlflow.db").is_file()
        assert run.tracking_uri == f"sqlite:///{workdir / 'mlflow.db'}"
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=run.tracking_uri)
        assert client.get_run(run.run_id).info.status == "FINISHED"

    def test_experiment_is_created_on_first_use(self, store):
        """An unknown experiment name is created."""
        with tracked_run("first", experiment="brand-new"):
            pass
        assert [run.info.run_name for run in store.runs("brand-new")] == ["first"]

    def test_spool_is_empty_after_a_successful_run(self, store):
        """A run that reached the store leaves nothing in the spool."""
        with tracked_run("clean"):
            pass
        assert store.spooled() == []


def test_module_exports_tracked_run():
    """The public name is the implementation."""
    assert emstrack.tracked_run is tracked_run
