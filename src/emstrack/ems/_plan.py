"""A day's plan - what every device, the battery and the grid connection do at each step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from emstrack.ems._day import DayInput

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DayPlan:
    """Energies per step of one day [kWh per step].

    Attributes:
        device_kwh: Per device (appliances, and the EV when measured rather than optimized): its
            energy, placed jobs plus fixed energy.
        job_starts: Chosen start step of each of the day's jobs, in ``DayInput.jobs`` order.
        ev_charge_kwh: Grid-side energy of the optimized EV charging (zeros without).
        battery_charge_kwh: Energy drawn into the battery.
        battery_discharge_kwh: Energy delivered by the battery.
        battery_soc_kwh: Stored energy at the end of each step (NaN without a battery).
        grid_import_kwh: Energy drawn from the grid.
        grid_export_kwh: Energy fed into the grid.
        pv_curtailed_kwh: PV generation not used (only when the export limit binds).

    """

    device_kwh: dict[str, FloatArray]
    job_starts: tuple[int, ...]
    ev_charge_kwh: FloatArray
    battery_charge_kwh: FloatArray
    battery_discharge_kwh: FloatArray
    battery_soc_kwh: FloatArray
    grid_import_kwh: FloatArray
    grid_export_kwh: FloatArray
    pv_curtailed_kwh: FloatArray

    def load_kwh(self, day: DayInput) -> FloatArray:
        """Total consumption per step: inflexible load, devices and EV charging."""
        total = day.inflexible_kwh + self.ev_charge_kwh
        for energy in self.device_kwh.values():
            total = total + energy
        return total

    def balance_residual_kwh(self, day: DayInput) -> FloatArray:
        """Supply minus demand per step; zero when the energy balance closes."""
        supply = (
            self.grid_import_kwh + day.pv_kwh - self.pv_curtailed_kwh + self.battery_discharge_kwh
        )
        demand = self.load_kwh(day) + self.battery_charge_kwh + self.grid_export_kwh
        return supply - demand

    def import_cost_eur(self, day: DayInput) -> float:
        """Gross cost of the imported energy, before any feed-in revenue [EUR]."""
        return float(np.dot(day.import_eur_per_kwh, self.grid_import_kwh))

    def net_cost_eur(self, day: DayInput) -> float:
        """Import cost minus feed-in revenue [EUR]."""
        revenue = day.feed_in_eur_per_kwh * float(self.grid_export_kwh.sum())
        return self.import_cost_eur(day) - revenue


def device_energy(day: DayInput, job_starts: tuple[int, ...]) -> dict[str, FloatArray]:
    """Per device, its fixed energy plus its jobs placed at ``job_starts``."""
    energy = {device: fixed.copy() for device, fixed in day.device_fixed_kwh.items()}
    for job, start in zip(day.jobs, job_starts, strict=True):
        energy[job.device] = energy.get(job.device, np.zeros(day.n_steps)) + job.placed(
            start, day.n_steps
        )
    return energy
