"""@tracked_optimization: each call of a pipeline function is one run, the function untouched."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import types
from typing import NamedTuple

import pytest
from pydantic import BaseModel, SecretStr

from emstrack import ConfigurationError, EmstrackWarning, active_run, tracked_optimization
from emstrack.schemas import OptimizationMetrics, OptimizationParams


def run_pipeline(
    building_id: str,
    mode: str = "cost",
    battery_enabled: bool = True,
    ev_enabled: bool = False,
    n_days: int = 1,
) -> dict[str, object]:
    """Pretend to optimize a building."""
    return {
        "total_cost": 10.0 + n_days,
        "savings_pct": 2.5 * n_days,
        "solver_status": "Optimal",
        "convergence_achieved": True,
    }


class TestRuns:
    def test_ten_calls_make_ten_runs_with_exact_values(self, store):
        """Ten calls with different arguments give ten runs with exactly their values."""
        tracked = tracked_optimization(experiment="ems")(run_pipeline)
        calls = [
            {"building_id": f"DE_KN_residential{1 + i % 6}", "mode": mode, "n_days": i + 1}
            for i, mode in enumerate(["cost", "self_consumption"] * 5)
        ]
        for call in calls:
            tracked(**call)
        runs = {int(run.data.params["n_days"]): run for run in store.runs("ems")}
        assert sorted(runs) == [call["n_days"] for call in calls]
        for call in calls:
            run = runs[call["n_days"]]
            assert run.data.params == {
                "building_id": call["building_id"],
                "mode": call["mode"],
                "battery_enabled": "true",
                "ev_enabled": "false",
                "n_days": str(call["n_days"]),
            }
            assert run.data.metrics == {
                "total_cost": 10.0 + call["n_days"],
                "savings_pct": 2.5 * call["n_days"],
                "convergence_achieved": 1.0,
            }
            assert run.data.tags["solver_status"] == "Optimal"
            assert run.data.tags["emstrack.function"] == "run_pipeline"
            assert run.info.run_name == "run_pipeline"
            assert run.info.status == "FINISHED"

    def test_return_value_is_the_same_object(self, store):
        """The caller gets exactly the object the function returned."""
        sentinel = {"total_cost": 1.0}

        @tracked_optimization
        def pipeline():
            return sentinel

        assert pipeline() is sentinel

    def test_exception_is_the_same_object_and_the_run_failed(self, store):
        """The function's exception reaches the caller unchanged; the run is FAILED."""
        error = RuntimeError("solver crashed")

        @tracked_optimization
        def pipeline(building_id):
            raise error

        with pytest.raises(RuntimeError) as raised:
            pipeline("b1")
        assert raised.value is error
        (run,) = store.runs()
        assert run.info.status == "FAILED"
        assert run.data.params == {"building_id": "b1"}
        assert run.data.tags["emstrack.exception.message"] == "solver crashed"

    def test_keyboard_interrupt_is_killed(self, store):
        """KeyboardInterrupt inside the function kills the run and propagates."""

        @tracked_optimization
        def pipeline():
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            pipeline()
        assert [run.info.status for run in store.runs()] == ["KILLED"]

    def test_run_name_template_is_filled_from_arguments(self, store):
        """run_name templates take bound arguments (defaults included) and {timestamp}."""

        @tracked_optimization(run_name="cmp_{building_id}_{mode}_{n_days:02d}_{timestamp}")
        def pipeline(building_id, mode="cost", n_days=3):
            return None

        pipeline("b7")
        (run,) = store.runs()
        prefix, _, stamp = run.info.run_name.rpartition("_")
        assert prefix == "cmp_b7_cost_03"
        assert len(stamp) == len("20260101-000000")

    def test_a_parameter_named_like_an_extra_field_fills_it(self, store):
        """A day's ``date`` argument names the run, not today's date; {func} stays the name."""

        @tracked_optimization(run_name="{func}-{date}")
        def optimize_day(date: str) -> None:
            return None

        optimize_day("2016-07-03")
        assert store.runs()[0].info.run_name == "optimize_day-2016-07-03"

    def test_callable_run_name(self, store):
        """run_name may be a callable taking the arguments by name."""

        @tracked_optimization(run_name=lambda building_id: building_id.upper())
        def pipeline(building_id, mode="cost"):
            return None

        pipeline("b1")
        assert store.runs()[0].info.run_name == "B1"

    def test_static_tags(self, store):
        """tags= are set on every run."""

        @tracked_optimization(tags={"team": "ems", "pipeline": "A"})
        def pipeline():
            return None

        pipeline()
        tags = store.runs()[0].data.tags
        assert (tags["team"], tags["pipeline"]) == ("ems", "A")

    def test_default_params_skip_what_does_not_map(self, store):
        """By default, arguments that are not param-like (a DataFrame) are left out silently."""
        import pandas as pd

        @tracked_optimization
        def pipeline(building_id, data, horizon=24):
            return None

        pipeline("b1", pd.DataFrame({"load": [1.0, 2.0]}))
        (run,) = store.runs()
        assert run.data.params == {"building_id": "b1", "horizon": "24"}
        document = json.loads((store.artifact_root(run.info.run_id) / "config.json").read_text())
        assert document["inputs"]["data"] == "<pandas.DataFrame 2x1>"


class TestSchemas:
    def test_params_model_is_validated_from_arguments(self, store):
        """params=Model takes its fields from the arguments by name; config.json re-creates it."""

        @tracked_optimization(params=OptimizationParams)
        def pipeline(building_id, optimization_mode="cost", n_days=2, data=None):
            return None

        pipeline("DE_KN_residential4", "self_consumption", n_days=5, data=object())
        (run,) = store.runs()
        params = run.data.params
        assert params["building_id"] == "DE_KN_residential4"
        assert params["optimization_mode"] == "self_consumption"
        assert params["n_days"] == "5"
        assert params["battery.capacity_kwh"] == "10"
        assert "data" not in params
        document = json.loads((store.artifact_root(run.info.run_id) / "config.json").read_text())
        rebuilt = OptimizationParams.model_validate(document["inputs"])
        assert rebuilt == OptimizationParams(
            building_id="DE_KN_residential4", optimization_mode="self_consumption", n_days=5
        )

    def test_params_model_passed_as_an_argument_is_used_as_is(self, store):
        """A function taking the model itself logs it without a prefix."""

        @tracked_optimization(params=OptimizationParams)
        def pipeline(config: OptimizationParams):
            return None

        pipeline(OptimizationParams(building_id="b9", n_days=4))
        params = store.runs()[0].data.params
        assert (params["building_id"], params["n_days"]) == ("b9", "4")

    def test_params_callable_derives_inputs(self, store):
        """params=callable logs inputs derived from the arguments it names."""

        def inputs(building_id, n_days):
            return OptimizationParams(building_id=building_id, n_days=n_days, battery_enabled=False)

        @tracked_optimization(params=inputs)
        def pipeline(building_id, scenario="battery_only", n_days=2):
            return None

        pipeline("b5")
        params = store.runs()[0].data.params
        assert (params["building_id"], params["n_days"], params["battery_enabled"]) == (
            "b5",
            "2",
            "false",
        )
        assert "scenario" not in params

    def test_params_callable_must_fit_the_signature(self):
        """A params callable needing an argument the function lacks is an error naming it."""
        with pytest.raises(ConfigurationError, match="needs 'horizon'"):
            tracked_optimization(params=lambda horizon: {})(run_pipeline)

    def test_metrics_model_validates_the_return_value(self, store):
        """metrics=Model validates a dict return value and maps the model."""

        class Result(BaseModel):
            total_cost: float
            solver_status: str

        @tracked_optimization(metrics=Result)
        def pipeline():
            return {"total_cost": "3.5", "solver_status": "Optimal", "ignored": 1}

        pipeline()
        (run,) = store.runs()
        assert run.data.metrics == {"total_cost": 3.5}
        assert run.data.tags["solver_status"] == "Optimal"

    def test_tuple_with_a_model_extractor(self, store):
        """A plain tuple is mapped positionally onto metrics=Model."""

        class Pair(BaseModel):
            cost: float
            savings: float

        @tracked_optimization(metrics=Pair)
        def pipeline():
            return (4.0, 1.5)

        assert pipeline() == (4.0, 1.5)
        assert store.runs()[0].data.metrics == {"cost": 4.0, "savings": 1.5}

    def test_callable_metrics_extractor(self, store):
        """metrics=callable turns the return value into something mappable."""

        @tracked_optimization(metrics=lambda result: {"cost": result[0]})
        def pipeline():
            return (7.0, "unused")

        pipeline()
        assert store.runs()[0].data.metrics == {"cost": 7.0}

    def test_optimization_metrics_model_maps_every_field(self, store):
        """The shipped OptimizationMetrics schema maps onto metrics and a status tag."""
        metrics = OptimizationMetrics(
            total_cost=12.0,
            savings_eur=3.0,
            savings_pct=20.0,
            cost_per_kwh=0.3,
            optimization_time_seconds=0.2,
            solver_status="Optimal",
            variables_count=100,
            constraints_count=80,
            total_consumption_kwh=40.0,
            convergence_achieved=True,
        )

        @tracked_optimization
        def pipeline():
            return metrics

        pipeline()
        (run,) = store.runs()
        assert run.data.metrics["savings_pct"] == 20.0
        assert run.data.metrics["convergence_achieved"] == 1.0
        assert run.data.metrics["variables_count"] == 100.0
        assert run.data.tags["solver_status"] == "Optimal"
        assert "baseline_cost" not in run.data.metrics

    def test_return_value_shapes(self, store):
        """Dataclasses, NamedTuples, Series and DataFrames map as documented."""
        import numpy as np
        import pandas as pd

        @dataclasses.dataclass
        class Summary:
            cost: float
            days: int

        class Point(NamedTuple):
            soc: float
            grid: float

        @tracked_optimization
        def pipeline():
            return {
                "summary": Summary(cost=np.float64(2.5), days=np.int64(3)),
                "point": Point(0.5, 1.5),
                "by_device": pd.Series({"dishwasher": 0.1, "washing_machine": 0.2}),
                "daily": pd.DataFrame({"cost": [1.0, 2.0, 3.0]}),
            }

        pipeline()
        (run,) = store.runs()
        assert run.data.metrics == {
            "summary.cost": 2.5,
            "summary.days": 3.0,
            "point.soc": 0.5,
            "point.grid": 1.5,
            "by_device.dishwasher": 0.1,
            "by_device.washing_machine": 0.2,
            "daily.cost": 3.0,
        }
        history = store.client.get_metric_history(run.info.run_id, "daily.cost")
        assert sorted((p.step, p.value) for p in history) == [(0, 1.0), (1, 2.0), (2, 3.0)]


class TestBinding:
    def test_method_params_exclude_self(self, store):
        """On a method, self is not a param and the method still binds."""

        class Optimizer:
            factor = 2

            @tracked_optimization
            def run(self, building_id, n_days=1):
                return {"cost": self.factor * n_days}

        assert Optimizer().run("b1", n_days=3) == {"cost": 6}
        (run,) = store.runs()
        assert run.data.params == {"building_id": "b1", "n_days": "3"}
        assert run.data.metrics == {"cost": 6.0}

    def test_classmethod_params_exclude_cls(self, store):
        """On a classmethod, cls is not a param."""

        class Optimizer:
            factor = 3

            @tracked_optimization
            @classmethod
            def run(cls, building_id):
                return {"cost": cls.factor}

        assert Optimizer.run("b2") == {"cost": 3}
        assert store.runs()[0].data.params == {"building_id": "b2"}

    def test_staticmethod(self, store):
        """Staticmethods are tracked like functions."""

        class Optimizer:
            @tracked_optimization
            @staticmethod
            def run(building_id):
                return {"cost": 1}

        assert Optimizer().run("b3") == {"cost": 1}
        assert store.runs()[0].data.params == {"building_id": "b3"}

    def test_async_function(self, store):
        """async def functions stay coroutine functions and are tracked when awaited."""

        @tracked_optimization
        async def pipeline(building_id):
            assert active_run() is not None
            await asyncio.sleep(0)
            return {"cost": 5.0}

        assert inspect.iscoroutinefunction(pipeline)
        assert asyncio.run(pipeline("b4")) == {"cost": 5.0}
        (run,) = store.runs()
        assert run.data.params == {"building_id": "b4"}
        assert run.data.metrics == {"cost": 5.0}

    def test_async_exception_fails_the_run(self, store):
        """An async function's exception propagates unchanged and fails the run."""
        error = ValueError("async failure")

        @tracked_optimization
        async def pipeline():
            raise error

        with pytest.raises(ValueError, match="async failure") as raised:
            asyncio.run(pipeline())
        assert raised.value is error
        assert store.runs()[0].info.status == "FAILED"

    def test_metadata_is_preserved(self):
        """__name__, __doc__ and the signature are the wrapped function's."""
        tracked = tracked_optimization(run_pipeline)
        assert tracked.__name__ == "run_pipeline"
        assert tracked.__doc__ == "Pretend to optimize a building."
        assert inspect.signature(tracked) == inspect.signature(run_pipeline)

    def test_outside_application_matches_decorator(self, store):
        """tracked_optimization(...)(module.func) behaves exactly like @."""
        module = types.ModuleType("pipelines")
        module.run_pipeline = run_pipeline
        module.run_pipeline = tracked_optimization(experiment="outside")(module.run_pipeline)

        @tracked_optimization(experiment="inside")
        def run_pipeline_inside(
            building_id, mode="cost", battery_enabled=True, ev_enabled=False, n_days=1
        ):
            return run_pipeline(building_id, mode, battery_enabled, ev_enabled, n_days)

        assert module.run_pipeline("b1", n_days=2) == run_pipeline_inside("b1", n_days=2)
        (outside,) = store.runs("outside")
        (inside,) = store.runs("inside")
        assert outside.data.params == inside.data.params
        assert outside.data.metrics == inside.data.metrics

    def test_calls_nested_in_a_tracked_run_are_children(self, store):
        """A decorated call inside tracked_run() becomes a child run."""
        from emstrack import tracked_run

        tracked = tracked_optimization(run_pipeline)
        with tracked_run("sweep") as parent:
            tracked("b1")
            tracked("b2")
        children = [r for r in store.runs() if r.info.run_name == "run_pipeline"]
        assert [r.data.tags["mlflow.parentRunId"] for r in children] == [parent.run_id] * 2


class TestDisabled:
    def test_enabled_false_returns_the_function_itself(self):
        """enabled=False does not wrap at all."""
        assert tracked_optimization(enabled=False)(run_pipeline) is run_pipeline

    def test_environment_switch_disables_at_call_time(self, store, monkeypatch):
        """EMSTRACK_DISABLED=1 skips tracking; unsetting it resumes."""
        tracked = tracked_optimization(run_pipeline)
        monkeypatch.setenv("EMSTRACK_DISABLED", "1")
        tracked("b1")
        assert store.runs() == []
        monkeypatch.delenv("EMSTRACK_DISABLED")
        tracked("b1")
        assert len(store.runs()) == 1

    def test_enabled_callable_is_asked_per_call(self, store):
        """enabled=callable decides at each call."""
        switch = {"on": False}
        tracked = tracked_optimization(enabled=lambda: switch["on"])(run_pipeline)
        tracked("b1")
        switch["on"] = True
        tracked("b2")
        assert [r.data.params["building_id"] for r in store.runs()] == ["b2"]


class TestConfigurationErrors:
    def test_unknown_template_field(self):
        """A run_name field that is not a parameter is an error naming it."""
        with pytest.raises(ConfigurationError, match=r"\{building\} is not a parameter"):
            tracked_optimization(run_name="x_{building}")(run_pipeline)

    def test_params_model_field_missing_from_signature(self):
        """A required params field the function cannot supply is an error naming it."""

        def pipeline(mode: str):
            return None

        with pytest.raises(ConfigurationError, match="required field 'building_id'"):
            tracked_optimization(params=OptimizationParams)(pipeline)

    def test_params_must_be_a_model(self):
        """params= must be a pydantic model class."""
        with pytest.raises(ConfigurationError, match="pydantic model class"):
            tracked_optimization(params=dict)(run_pipeline)

    def test_configuration_error_is_a_value_error(self):
        """ConfigurationError can be caught as ValueError."""
        assert issubclass(ConfigurationError, ValueError)


class TestArtifactsAndSecrets:
    def test_artifacts_templated_folder_is_logged_after_the_call(self, store, tmp_path):
        """artifacts= folders (templated) are logged once the function has written them."""

        @tracked_optimization(artifacts=["out/{building_id}"])
        def pipeline(building_id):
            folder = tmp_path / "out" / building_id
            folder.mkdir(parents=True)
            (folder / "results.csv").write_text("cost\n1\n")
            return

        pipeline("b1")
        (run,) = store.runs()
        assert (store.artifact_root(run.info.run_id) / "results.csv").read_text() == "cost\n1\n"

    def test_missing_artifact_warns_without_breaking(self, store, monkeypatch):
        """A declared artifact that was not written is named in the run's warning."""
        monkeypatch.delenv("EMSTRACK_STRICT")

        @tracked_optimization(artifacts=["nowhere/{building_id}.csv"])
        def pipeline(building_id):
            return 42

        with pytest.warns(EmstrackWarning, match="nowhere/b1.csv"):
            assert pipeline("b1") == 42

    def test_secrets_are_redacted(self, store, monkeypatch):
        """SecretStr and deny-listed keys are logged as ***."""

        class Settings(BaseModel):
            building_id: str
            api_key: str
            db_password: SecretStr

        @tracked_optimization(params=Settings)
        def pipeline(building_id, api_key, db_password):
            return None

        pipeline("b1", "abc123-visible-nowhere", SecretStr("hunter2-visible-nowhere"))
        (run,) = store.runs()
        assert run.data.params == {"building_id": "b1", "api_key": "***", "db_password": "***"}
        raw = store.path.read_bytes()
        assert b"visible-nowhere" not in raw
        for path in store.root.rglob("*"):
            if path.is_file():
                assert b"visible-nowhere" not in path.read_bytes(), path
