"""Derive the model's household feeds from an OPSD per-building hourly frame.

The shared OPSD files hold one building each, with meter feeds named ``DE_KN_<building>_<feed>``
(energy in kWh per hour; ``pv`` and ``grid_export`` negative) and a wholesale ``price_per_kwh``.
Their ``total_consumption`` column is *not* the building's consumption: it is the sum of the
sub-metered appliance feeds only, so this module rebuilds consumption from the meters:

* with ``pv`` and ``grid_export``: consumption = grid_import + |pv| - |grid_export|;
* without ``grid_export`` (residential1, and buildings without PV): consumption = grid_import. For
  residential1 the import meter shows no midday dip while the PV produces, i.e. the PV is a
  full-feed-in system on its own meter, and the import meter is the household's consumption.

Inflexible load = consumption - dishwasher - washing machine - EV, clipped at zero where the
sub-meters add up to more than the building meter in an hour (meter timing mismatch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from emstrack.ems._columns import (
    DEVICES,
    INFLEXIBLE_LOAD,
    PV,
    WHOLESALE_PRICE,
    device_column,
)

OPSD_PRICE_COLUMN = "price_per_kwh"
OPSD_TIMESTAMP = "utc_timestamp"
_IMPORT_FEED = re.compile(r"^(DE_KN_[a-z]+\d+)_grid_import$")


@dataclass(frozen=True)
class Derivation:
    """An OPSD building's feeds turned into model columns, with what had to be clipped."""

    building_id: str
    frame: pd.DataFrame
    """Hourly frame on a UTC index with the model's column names."""
    clipped_kwh: pd.Series
    """Per hour, by how much the sub-metered flexible loads exceeded the building's consumption,
    i.e. the energy that clipping the inflexible load at zero removed [kWh, >= 0]."""


def is_opsd_frame(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` looks like an OPSD per-building frame (a ``*_grid_import`` feed)."""
    return any(_IMPORT_FEED.match(str(column)) for column in frame.columns)


def opsd_building_id(frame: pd.DataFrame) -> str:
    """Return the building prefix (e.g. ``DE_KN_residential4``) of an OPSD per-building frame."""
    ids = sorted({m.group(1) for c in frame.columns if (m := _IMPORT_FEED.match(str(c)))})
    if len(ids) != 1:
        raise ValueError(
            "an OPSD per-building frame needs exactly one 'DE_KN_<building>_grid_import' column, "
            f"found {ids or 'none'}"
        )
    return ids[0]


def derive_household_frame(raw: pd.DataFrame) -> Derivation:
    """Turn an OPSD per-building frame into inflexible load, PV, device feeds and price.

    Args:
        raw: Hourly OPSD frame indexed by ``utc_timestamp`` (or with that column).

    Returns:
        The derived frame (UTC index; columns ``inflexible_load_kwh``, ``pv_kwh``,
        ``wholesale_price_eur_per_kwh`` and ``<device>_kwh`` for each device the building has)
        and the energy clipped per hour.

    Raises:
        ValueError: If the price, import feed or timestamps are missing.

    """
    building = opsd_building_id(raw)
    frame = raw.set_index(OPSD_TIMESTAMP) if OPSD_TIMESTAMP in raw.columns else raw
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError(
            f"OPSD frame of {building}: expected a timezone-aware '{OPSD_TIMESTAMP}' index"
        )
    if OPSD_PRICE_COLUMN not in frame.columns:
        raise ValueError(f"OPSD frame of {building}: column '{OPSD_PRICE_COLUMN}' is missing")

    def feed(name: str) -> pd.Series | None:
        column = f"{building}_{name}"
        return frame[column].astype(float).abs() if column in frame.columns else None

    grid_import = feed("grid_import")
    assert grid_import is not None  # opsd_building_id found it
    pv, grid_export = feed("pv"), feed("grid_export")
    if pv is not None and grid_export is not None:
        consumption = grid_import + pv - grid_export
    else:
        consumption = grid_import

    derived = pd.DataFrame(index=frame.index.tz_convert("UTC"))
    flexible = pd.Series(0.0, index=frame.index)
    for device in DEVICES:
        energy = feed(device)
        if energy is not None:
            derived[device_column(device)] = energy
            flexible = flexible + energy
    unclipped = consumption - flexible
    derived.insert(0, INFLEXIBLE_LOAD, unclipped.clip(lower=0.0))
    derived.insert(1, PV, pv if pv is not None else 0.0)
    derived.insert(2, WHOLESALE_PRICE, frame[OPSD_PRICE_COLUMN].astype(float))
    shortfall = (-unclipped).clip(lower=0.0)
    shortfall.index = derived.index
    return Derivation(building_id=building, frame=derived, clipped_kwh=shortfall)
