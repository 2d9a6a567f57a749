"""Appliance runs: when a device really ran, and with which hourly energy profile.

A *run* starts in an hour where the device's energy rises above the start threshold (default
0.05 kWh per hour - well above the few Wh of standby, below any programme) after the previous run
has ended; the hour before the data starts counts as idle. It continues while the energy stays
above the continue level, 0.02 kWh per hour (or the start threshold if that is lower): a
programme's quiet phase between heating phases (e.g. 0.3, 0.04, 0.4 kWh) belongs to the same run,
standby (a few Wh) ends it. Energy outside runs is standby and stays where it was measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emstrack.ems._columns import TIMEZONE

DEFAULT_RUN_THRESHOLD_KWH = 0.05
RUN_CONTINUE_KWH = 0.02


@dataclass(frozen=True)
class ApplianceRun:
    """One real run of a device.

    Attributes:
        device: Device type, e.g. ``"dishwasher"``.
        start: Local timestamp of the run's first hour.
        energy_kwh: Energy in each hour of the run [kWh].

    """

    device: str
    start: pd.Timestamp
    energy_kwh: tuple[float, ...]

    @property
    def hours(self) -> int:
        """Length of the run [h]."""
        return len(self.energy_kwh)

    @property
    def within_one_day(self) -> bool:
        """Whether the run starts and ends on the same local day."""
        end = self.start + pd.Timedelta(hours=self.hours - 1)
        return bool(self.start.tz_convert(TIMEZONE).date() == end.tz_convert(TIMEZONE).date())


def run_blocks(energy_kwh: np.ndarray, threshold_kwh: float) -> list[tuple[int, int]]:
    """``(first, stop)`` positions of every run (see the module docstring for the rule)."""
    continue_kwh = min(RUN_CONTINUE_KWH, threshold_kwh)
    blocks: list[tuple[int, int]] = []
    first: int | None = None
    for position, energy in enumerate(np.asarray(energy_kwh, dtype=float)):
        if first is None and energy > threshold_kwh:
            first = position
        elif first is not None and energy <= continue_kwh:
            blocks.append((first, position))
            first = None
    if first is not None:
        blocks.append((first, len(energy_kwh)))
    return blocks


def find_runs(
    energy_kwh: pd.Series, device: str, threshold_kwh: float = DEFAULT_RUN_THRESHOLD_KWH
) -> list[ApplianceRun]:
    """Every run of ``device`` in an hourly energy series (consecutive hours, local index).

    Args:
        energy_kwh: Hourly energy of the device on a contiguous timezone-aware index.
        device: Device type, copied into the runs.
        threshold_kwh: Energy per hour above which the device counts as running.

    Returns:
        The runs in time order.

    """
    contiguous = _gaps_as_idle(energy_kwh)
    values = contiguous.to_numpy(dtype=float)
    index = pd.DatetimeIndex(contiguous.index)
    return [
        ApplianceRun(device, index[first], tuple(float(v) for v in values[first:stop]))
        for first, stop in run_blocks(values, threshold_kwh)
    ]


def start_hours(
    energy_kwh: pd.Series, threshold_kwh: float = DEFAULT_RUN_THRESHOLD_KWH
) -> list[int]:
    """Local clock hours (0-23) at which runs start in an hourly energy series."""
    return [run.start.tz_convert(TIMEZONE).hour for run in find_runs(energy_kwh, "", threshold_kwh)]


def _gaps_as_idle(energy_kwh: pd.Series) -> pd.Series:
    """Reindex to gap-free hours, missing ones as 0 kWh, so that runs never span a gap."""
    index = pd.DatetimeIndex(energy_kwh.index)
    if len(index) < 2 or (index[1:] - index[:-1] == pd.Timedelta(hours=1)).all():
        return energy_kwh
    utc = index.tz_convert("UTC")
    full = pd.date_range(utc[0], utc[-1], freq="h").tz_convert(index.tz)
    return energy_kwh.set_axis(utc.tz_convert(index.tz)).reindex(full, fill_value=0.0)
