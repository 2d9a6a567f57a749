"""Steps of plan_battery.py: one day of a household's data, and the devices of a plan.

The file name starts with a digit, so ``import 01_steps`` is a syntax error: plan_battery.py
loads it by path with importlib, as real pipeline repositories do with ``01_run.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emstrack import ems

FEES_EUR_PER_KWH = 0.22
VAT = 0.19
FEED_IN_EUR_PER_KWH = 0.08


@dataclass
class DayData:
    """Hourly feeds of one local day."""

    date: str
    load_kwh: np.ndarray
    pv_kwh: np.ndarray
    price_eur_per_kwh: np.ndarray


@dataclass
class Device:
    """What one device does over the day, hour by hour."""

    name: str
    energy_kwh: list[float]

    def summary(self) -> str:
        return f"{self.name} {sum(abs(e) for e in self.energy_kwh):6.2f} kWh"


def load_day(building: str, day: int) -> DayData:
    """Day ``day`` (0-based) of ``building`` from the OPSD household sample."""
    frame = ems.load_building(building).day(day)
    wholesale = frame["wholesale_price_eur_per_kwh"].to_numpy()
    price = np.maximum(0.0, (wholesale + FEES_EUR_PER_KWH) * (1 + VAT))
    load = frame["inflexible_load_kwh"].to_numpy()
    for column in frame.columns:
        if column.endswith("_kwh") and column not in {"inflexible_load_kwh", "pv_kwh"}:
            load = load + frame[column].to_numpy()
    return DayData(
        date=str(frame.index[0].date()),
        load_kwh=load,
        pv_kwh=frame["pv_kwh"].to_numpy(),
        price_eur_per_kwh=price,
    )
