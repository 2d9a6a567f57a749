"""The EMS schemas: defaults, validation messages that name the field, units in descriptions."""

from __future__ import annotations

import pydantic
import pytest

from emstrack._settings import secret_pattern
from emstrack._tracking.mapping import Redactor, map_params
from emstrack.schemas import (
    BatterySettings,
    DeviceLearningMetrics,
    LearningMetrics,
    OptimizationMetrics,
    OptimizationMode,
    OptimizationParams,
)


class TestOptimizationParams:
    def test_defaults_are_a_valid_household(self):
        """Only the building is required; nested settings have physical defaults."""
        params = OptimizationParams(building_id="DE_KN_residential1")
        assert params.optimization_mode is OptimizationMode.COST
        assert params.battery.capacity_kwh == 10.0
        assert params.battery.soc_min <= params.battery.soc_initial <= params.battery.soc_max

    def test_bad_value_names_the_field(self):
        """A bad nested value is rejected with the dotted field name."""
        with pytest.raises(pydantic.ValidationError, match=r"battery\.capacity_kwh"):
            OptimizationParams(building_id="b", battery={"capacity_kwh": -1})

    def test_soc_bounds_must_be_ordered(self):
        """An initial SOC outside [soc_min, soc_max] is rejected, naming the bounds."""
        with pytest.raises(pydantic.ValidationError, match=r"soc_initial=0\.95"):
            BatterySettings(soc_initial=0.95, soc_max=0.9)

    def test_unknown_field_is_an_error(self):
        """Typos in settings are errors, not silently ignored."""
        with pytest.raises(pydantic.ValidationError, match="capacity_kw"):
            OptimizationParams(building_id="b", battery={"capacity_kw": 5})

    def test_every_field_documents_its_meaning(self):
        """Each settings field carries a description; physical ones name their unit."""
        for model in (OptimizationParams, BatterySettings, OptimizationMetrics):
            for name, field in model.model_fields.items():
                if name in {"battery", "ev", "grid", "tariff"}:
                    continue
                assert field.description, f"{model.__name__}.{name}"

    def test_flattens_to_dotted_params(self):
        """The nested model becomes dotted, canonical params."""
        mapped = map_params(
            OptimizationParams(building_id="b", n_days=2),
            Redactor(secret_pattern()),
        )
        assert mapped.params["tariff.feed_in_eur_per_kwh"] == "0.08"
        assert mapped.params["optimization_mode"] == "cost"
        assert len(mapped.params) == 23


class TestMetrics:
    def test_optimization_metrics_requires_the_core_figures(self):
        """Missing core figures are named."""
        with pytest.raises(pydantic.ValidationError, match="total_cost"):
            OptimizationMetrics.model_validate({"savings_eur": 1})

    def test_users_can_extend_metrics(self):
        """Subclasses add fields; extra fields are kept."""

        class MyMetrics(OptimizationMetrics):
            peak_shaving_kw: float

        metrics = MyMetrics(
            total_cost=1,
            savings_eur=0,
            savings_pct=0,
            cost_per_kwh=0.3,
            optimization_time_seconds=0.1,
            solver_status="Optimal",
            variables_count=1,
            constraints_count=1,
            total_consumption_kwh=3,
            convergence_achieved=True,
            peak_shaving_kw=2.0,
        )
        assert metrics.peak_shaving_kw == 2.0

    def test_learning_metrics_nest_per_device(self):
        """Per-device learning figures nest under devices.<name>."""
        learning = LearningMetrics(
            devices={
                "dishwasher": DeviceLearningMetrics(
                    js_divergence=0.1, learning_updates=5, convergence_rate=0.01
                )
            },
            devices_trained=1,
            training_days=14,
            avg_convergence=0.01,
        )
        mapped = map_params(learning, Redactor(secret_pattern()))
        assert mapped.params["devices.dishwasher.js_divergence"] == "0.1"
        assert mapped.params["training_days"] == "14"

    def test_js_divergence_is_bounded_in_bits(self):
        """Jensen-Shannon divergence in bits lies in [0, 1]."""
        with pytest.raises(pydantic.ValidationError, match="js_divergence"):
            DeviceLearningMetrics(js_divergence=1.5, learning_updates=1, convergence_rate=0)
