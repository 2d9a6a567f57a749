"""Plot of a schedule: load, PV, grid flows, battery state of charge and EV charging."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REQUIRED_COLUMNS = (
    "step_hours",
    "load_kwh",
    "pv_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "battery_soc_kwh",
    "ev_charge_kwh",
)


def plot_schedule(schedule: pd.DataFrame, title: str = "EMS schedule") -> Figure:
    """Draw a schedule as returned in ``OptimizationResult.schedule`` (or a pipeline's).

    Top panel: load, PV, grid import and export as average power per step [kW]. Bottom panel:
    battery state of charge [kWh] (if any) and EV charging power [kW].

    The figure is built with the Agg canvas directly, without pyplot: it is not registered in
    pyplot's figure list, never shown, and needs no closing - drop it or save it with
    ``fig.savefig(path)``.

    Args:
        schedule: Per-step frame with a DatetimeIndex and at least the columns ``step_hours``,
            ``load_kwh``, ``pv_kwh``, ``grid_import_kwh``, ``grid_export_kwh``,
            ``battery_soc_kwh`` and ``ev_charge_kwh``.
        title: Figure title.

    Raises:
        ValueError: If a required column is missing or the schedule is empty.

    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    missing = [c for c in REQUIRED_COLUMNS if c not in schedule.columns]
    if missing:
        raise ValueError(f"schedule lacks column(s) {missing}")
    if schedule.empty:
        raise ValueError("schedule is empty")

    figure = Figure(figsize=(10, 6))
    FigureCanvasAgg(figure)
    # fixed margins: a layout engine would double the drawing time of every savefig
    figure.subplots_adjust(left=0.07, right=0.98, top=0.94, bottom=0.09, hspace=0.08)
    power, storage = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    times = (
        schedule.index.tz_localize(None)
        if isinstance(schedule.index, pd.DatetimeIndex)
        else schedule.index
    )
    kw = schedule[["load_kwh", "pv_kwh", "grid_import_kwh", "grid_export_kwh", "ev_charge_kwh"]]
    kw = kw.div(schedule["step_hours"], axis=0)
    power.step(times, kw["load_kwh"], where="post", label="load", color="tab:red")
    power.fill_between(times, kw["pv_kwh"], step="post", alpha=0.3, label="PV", color="gold")
    power.step(times, kw["grid_import_kwh"], where="post", label="grid import", color="tab:blue")
    power.step(
        times, -kw["grid_export_kwh"], where="post", label="grid export (-)", color="tab:green"
    )
    power.axhline(0.0, color="black", linewidth=0.5)
    power.set_ylabel("power [kW]")
    power.legend(loc="upper left", ncols=4, fontsize="small")
    power.set_title(title)

    soc = schedule["battery_soc_kwh"]
    if soc.notna().any():
        storage.plot(times, soc, label="battery SOC [kWh]", color="tab:purple")
    storage.step(
        times, kw["ev_charge_kwh"], where="post", label="EV charging [kW]", color="tab:orange"
    )
    storage.set_ylabel("kWh / kW")
    storage.legend(loc="upper left", ncols=2, fontsize="small")
    storage.set_xlabel(f"local time ({getattr(schedule.index, 'tz', None) or 'as given'})")
    return figure
