"""Column names and device names shared by the EMS modules."""

from __future__ import annotations

from typing import Final

TIMEZONE: Final = "Europe/Berlin"
"""Days are local days in this zone (the buildings are in Konstanz, Germany)."""

INFLEXIBLE_LOAD: Final = "inflexible_load_kwh"
PV: Final = "pv_kwh"
WHOLESALE_PRICE: Final = "wholesale_price_eur_per_kwh"
BUILDING_ID: Final = "building_id"
TIMESTAMP_UTC: Final = "timestamp_utc"

SHIFTABLE_DEVICES: Final = ("dishwasher", "washing_machine")
"""Appliances whose runs the optimizer may move; their start hours are what Pipeline B learns."""
EV_DEVICE: Final = "ev"
DEVICES: Final = (*SHIFTABLE_DEVICES, EV_DEVICE)
"""Every optional per-device feed a household may have, in column order."""


def device_column(device: str) -> str:
    """Name of the hourly energy column of ``device``, e.g. ``dishwasher_kwh``."""
    return f"{device}_kwh"


REQUIRED_COLUMNS: Final = (INFLEXIBLE_LOAD, PV, WHOLESALE_PRICE)
OPTIONAL_COLUMNS: Final = tuple(device_column(device) for device in DEVICES)
