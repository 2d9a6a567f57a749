"""Pydantic schemas for EMS optimization runs.

These models describe what an energy-management pipeline takes in and gives back, with units in
every field's description, so that ``@tracked_optimization(params=..., metrics=...)`` can map them
onto MLflow params (nested settings flattened with dotted keys, e.g. ``battery.capacity_kwh``) and
metrics. Subclass them to add fields, or bring models of your own: emstrack only needs pydantic v2
models.

* :class:`OptimizationParams` - one optimization run's inputs, with nested :class:`BatterySettings`,
  :class:`EVSettings`, :class:`GridSettings` and :class:`TariffSettings`.
* :class:`OptimizationMetrics` - cost, solver, energy and quality figures of one run.
* :class:`LearningMetrics` - per-device and overall figures of a usage-learning run, with
  :class:`DeviceLearningMetrics` per device.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BatterySettings",
    "DeviceLearningMetrics",
    "EVSettings",
    "GridSettings",
    "LearningMetrics",
    "OptimizationMetrics",
    "OptimizationMode",
    "OptimizationParams",
    "TariffSettings",
]


class OptimizationMode(StrEnum):
    """What the optimizer minimises."""

    COST = "cost"
    """Minimise the net energy bill (import cost minus feed-in revenue)."""
    SELF_CONSUMPTION = "self_consumption"
    """Minimise energy drawn from the grid; cost breaks ties."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class BatterySettings(_Settings):
    """A stationary battery's physical limits."""

    capacity_kwh: float = Field(10.0, gt=0, description="Usable energy capacity [kWh].")
    max_charge_kw: float = Field(5.0, gt=0, description="Maximum charging power [kW].")
    max_discharge_kw: float = Field(5.0, gt=0, description="Maximum discharging power [kW].")
    charge_efficiency: float = Field(
        0.95, gt=0, le=1, description="Fraction of energy drawn that is stored [-]."
    )
    discharge_efficiency: float = Field(
        0.95, gt=0, le=1, description="Fraction of stored energy that is delivered [-]."
    )
    soc_min: float = Field(0.1, ge=0, lt=1, description="Lowest state of charge [fraction].")
    soc_max: float = Field(0.9, gt=0, le=1, description="Highest state of charge [fraction].")
    soc_initial: float = Field(
        0.5,
        ge=0,
        le=1,
        description="State of charge at the start; the plan returns to it at the end [fraction].",
    )

    @model_validator(mode="after")
    def _soc_bounds_are_ordered(self) -> BatterySettings:
        if not self.soc_min <= self.soc_initial <= self.soc_max:
            raise ValueError(
                f"soc_initial={self.soc_initial} must lie within "
                f"[soc_min={self.soc_min}, soc_max={self.soc_max}]"
            )
        return self


class EVSettings(_Settings):
    """An electric vehicle's charging needs on each day."""

    max_charge_kw: float = Field(11.0, gt=0, description="Wallbox charging power limit [kW].")
    energy_needed_kwh: float = Field(
        10.0, ge=0, description="Energy to deliver during each plug-in window [kWh]."
    )
    arrival_hour: int = Field(
        17, ge=0, le=23, description="Local hour the car is plugged in each day [h]."
    )
    departure_hour: int = Field(
        7,
        ge=0,
        le=23,
        description="Local hour the car must be charged by, next morning if earlier [h].",
    )
    charge_efficiency: float = Field(
        0.92, gt=0, le=1, description="Fraction of grid energy that reaches the car's battery [-]."
    )


class GridSettings(_Settings):
    """The building's grid connection."""

    max_import_kw: float = Field(25.0, gt=0, description="Import limit of the connection [kW].")
    max_export_kw: float = Field(10.0, ge=0, description="Export (feed-in) limit [kW].")


class TariffSettings(_Settings):
    """How a household tariff is built from day-ahead wholesale prices."""

    markup_eur_per_kwh: float = Field(
        0.22,
        ge=0,
        description="Network fees, levies and taxes added to the wholesale price [EUR/kWh].",
    )
    vat_rate: float = Field(
        0.19, ge=0, lt=1, description="Value-added tax on the import price [-]."
    )
    feed_in_eur_per_kwh: float = Field(
        0.08, ge=0, description="Fixed feed-in remuneration for exported energy [EUR/kWh]."
    )


class OptimizationParams(BaseModel):
    """Inputs of one EMS optimization run of one building."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    building_id: str = Field(
        min_length=1, description="Building identifier, e.g. 'DE_KN_residential4'."
    )
    optimization_mode: OptimizationMode = Field(
        OptimizationMode.COST, description="Objective of the optimizer."
    )
    battery_enabled: bool = Field(True, description="Whether a battery is part of the plan.")
    ev_enabled: bool = Field(False, description="Whether the EV's charging is optimised.")
    n_days: int = Field(1, ge=1, le=366, description="Days in the optimization horizon [d].")
    battery: BatterySettings = Field(default_factory=BatterySettings)
    ev: EVSettings = Field(default_factory=EVSettings)
    grid: GridSettings = Field(default_factory=GridSettings)
    tariff: TariffSettings = Field(default_factory=TariffSettings)


class OptimizationMetrics(BaseModel):
    """Figures of one optimization run. Strings become tags, numbers metrics, bools 0/1."""

    model_config = ConfigDict(extra="allow")

    # cost
    total_cost: float = Field(description="Net energy cost of the optimized plan [EUR].")
    savings_eur: float = Field(
        description="Baseline net cost minus optimized net cost [EUR]; positive is a saving."
    )
    savings_pct: float = Field(
        description=(
            "savings_eur as a share of the baseline's gross import cost, i.e. what all energy "
            "drawn from the grid in the baseline costs before any feed-in revenue [%]. The "
            "denominator is never near zero for a building that draws energy, unlike net cost."
        )
    )
    cost_per_kwh: float = Field(
        description="Net cost of the optimized plan per kWh consumed [EUR/kWh]."
    )
    baseline_cost: float | None = Field(None, description="Net cost of the baseline plan [EUR].")
    # solver
    optimization_time_seconds: float = Field(ge=0, description="Wall time of the solves [s].")
    solver_status: str = Field(description="Solver outcome, e.g. 'Optimal' or 'Infeasible'.")
    variables_count: int = Field(ge=0, description="Decision variables in the model.")
    constraints_count: int = Field(ge=0, description="Constraints in the model.")
    # energy
    total_consumption_kwh: float = Field(ge=0, description="Energy consumed by all loads [kWh].")
    battery_cycles: float = Field(
        0.0, ge=0, description="Equivalent full cycles: energy discharged / capacity [-]."
    )
    ev_charging_kwh: float = Field(0.0, ge=0, description="Energy delivered to the EV [kWh].")
    self_consumption_pct: float | None = Field(
        None, description="Share of PV generation used on site [%]."
    )
    peak_import_kw: float | None = Field(
        None, ge=0, description="Highest average import power over one step [kW]."
    )
    # quality
    convergence_achieved: bool = Field(description="Whether the solver proved optimality.")
    constraint_violations: int = Field(
        0, ge=0, description="Physical checks of the plan that failed (energy balance, SOC, EV)."
    )


class DeviceLearningMetrics(BaseModel):
    """How the start-hour distribution of one flexible device was learned."""

    js_divergence: float = Field(
        ge=0,
        le=1,
        description="Jensen-Shannon divergence of the learned distribution to the prior [bit].",
    )
    learning_updates: int = Field(ge=0, description="Bayesian updates applied (observed starts).")
    convergence_rate: float = Field(
        ge=0,
        description="Jensen-Shannon divergence between the last two updates' distributions [bit].",
    )


class LearningMetrics(BaseModel):
    """Figures of one usage-learning run, per device and overall."""

    devices: dict[str, DeviceLearningMetrics] = Field(
        default_factory=dict, description="Per device type, e.g. 'dishwasher'."
    )
    devices_trained: int = Field(ge=0, description="Devices with at least one observed start.")
    training_days: int = Field(ge=0, description="Days of data learned from [d].")
    avg_convergence: float = Field(ge=0, description="Mean of the devices' convergence_rate [bit].")
