"""Build the demo sample shipped in ``src/emstrack/ems/data`` from the shared OPSD household files.

Usage::

    python scripts/make_demo_sample.py [--source /work/shared/data/opsd-household] [--output DIR]

Reads the per-building parquet files (needs pyarrow), derives the model's feeds with
``emstrack.ems._opsd.derive_household_frame`` (consumption from the building meters, inflexible
load = consumption minus dishwasher, washing machine and EV, clipped at zero), cuts one
quality-checked 28-day window per residential building, and writes:

* ``households.csv.gz`` - tidy wide CSV, one row per building and hour;
* ``device_start_probabilities.csv`` - the 6 x 24 start-hour probability table;
* ``ATTRIBUTION.md`` - CC-BY attribution, derivation and the per-building window table.

Re-running it on the same input writes byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from emstrack.ems._columns import (
    BUILDING_ID,
    DEVICES,
    INFLEXIBLE_LOAD,
    PV,
    TIMESTAMP_UTC,
    TIMEZONE,
    WHOLESALE_PRICE,
    device_column,
)
from emstrack.ems._opsd import derive_household_frame

DEFAULT_SOURCE = Path("/work/shared/data/opsd-household")
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "src" / "emstrack" / "ems" / "data"
WINDOW_DAYS = 28
MAX_SAMPLE_BYTES = 1_000_000

# First local day (Europe/Berlin) of each building's window. Chosen by scanning every 28-day
# window starting May-August for: no meter spikes (import > 8 kWh/h or PV > 10 kWh/h), no night
# hour with zero import (a dead meter), >= 4 dishwasher and washing-machine runs (and EV charging
# for residential4), then fewest flat/linearly-filled meter hours, fewest clipped hours and most
# PV. All lie in 2016: from 2017 on the source's price feed is a constant 0.0344 EUR/kWh fill, and
# residential4's appliance feeds are dead from April 2017.
WINDOW_STARTS = {
    "DE_KN_residential1": "2016-07-03",
    "DE_KN_residential2": "2016-05-17",
    "DE_KN_residential3": "2016-07-03",
    "DE_KN_residential4": "2016-06-14",
    "DE_KN_residential5": "2016-05-11",
    "DE_KN_residential6": "2016-05-04",
}
BUILDING_NOTES = {
    "DE_KN_residential1": (
        "No grid_export feed; the import meter shows no midday dip, so the PV is full feed-in on "
        "its own meter: consumption = grid_import (the heat pump is on a separate meter and not "
        "included). The model treats the PV as if it were behind the household meter."
    ),
    "DE_KN_residential2": "No PV: consumption = grid_import.",
    "DE_KN_residential3": "consumption = grid_import + PV - grid_export.",
    "DE_KN_residential4": (
        "consumption = grid_import + PV - grid_export; has a measured EV feed (charges mostly in "
        "daytime)."
    ),
    "DE_KN_residential5": "No PV: consumption = grid_import.",
    "DE_KN_residential6": (
        "consumption = grid_import + PV - grid_export; the export meter sometimes exceeds the PV "
        "meter in the morning, which is where most clipped hours come from."
    ),
}
ENERGY_DECIMALS = 3  # Wh resolution, as measured
PRICE_DECIMALS = 5  # 0.01 EUR/MWh, as published
CLIPPED_HOUR_KWH = 0.0005  # an hour counts as clipped from half a Wh on (below is float noise)


@dataclass(frozen=True)
class WindowSummary:
    """What one building's window contains, for the attribution table."""

    building_id: str
    first_day: str
    last_day: str
    devices: tuple[str, ...]
    pv_kwh_per_day: float
    load_kwh_per_day: float
    clipped_hours: int
    clipped_kwh: float


def cut_window(frame: pd.DataFrame, first_day: str) -> pd.DataFrame:
    """Rows of ``frame`` (UTC index) within the 28 local days starting at ``first_day``."""
    start = pd.Timestamp(first_day, tz=TIMEZONE)
    end = start + pd.DateOffset(days=WINDOW_DAYS)
    local = pd.DatetimeIndex(frame.index).tz_convert(TIMEZONE)
    window: pd.DataFrame = frame.loc[(local >= start) & (local < end)]
    expected = int((end - start) / pd.Timedelta(hours=1))
    if len(window) != expected or window.isna().any().any():
        raise ValueError(f"window from {first_day} is incomplete: {len(window)}/{expected} hours")
    return window


def build_building(source: Path, building: str) -> tuple[pd.DataFrame, WindowSummary]:
    """Derive, cut and round one building's window; return it as tidy rows and a summary."""
    derivation = derive_household_frame(pd.read_parquet(source / f"{building}.parquet"))
    first_day = WINDOW_STARTS[building]
    window = cut_window(derivation.frame, first_day)
    devices = tuple(d for d in DEVICES if device_column(d) in window.columns)
    columns = [INFLEXIBLE_LOAD, PV, *map(device_column, DEVICES), WHOLESALE_PRICE]
    tidy = window.reindex(columns=columns)
    energy = [c for c in columns if c != WHOLESALE_PRICE]
    tidy[energy] = tidy[energy].round(ENERGY_DECIMALS)
    tidy[WHOLESALE_PRICE] = tidy[WHOLESALE_PRICE].round(PRICE_DECIMALS)
    tidy[BUILDING_ID] = building
    tidy.index = pd.DatetimeIndex(tidy.index).strftime("%Y-%m-%dT%H:%M:%SZ")
    tidy.index.name = TIMESTAMP_UTC
    load = window[INFLEXIBLE_LOAD] + window[[device_column(d) for d in devices]].sum(axis=1)
    shortfall = derivation.clipped_kwh.loc[window.index]
    summary = WindowSummary(
        building_id=building,
        first_day=first_day,
        last_day=str((pd.Timestamp(first_day) + pd.Timedelta(days=WINDOW_DAYS - 1)).date()),
        devices=devices,
        pv_kwh_per_day=float(window[PV].sum()) / WINDOW_DAYS,
        load_kwh_per_day=float(load.sum()) / WINDOW_DAYS,
        clipped_hours=int((shortfall >= CLIPPED_HOUR_KWH).sum()),
        clipped_kwh=float(shortfall.sum()),
    )
    return tidy.reset_index()[[BUILDING_ID, TIMESTAMP_UTC, *columns]], summary


def write_gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as gzip CSV with a zero mtime so that reruns are byte-identical."""
    text = frame.to_csv(index=False, lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def probability_table(source: Path) -> pd.DataFrame:
    """Read the device start-hour table as device rows x hour columns 0..23."""
    table = pd.read_parquet(source / "device_hourly_probabilities.parquet")
    table.columns = [int(hour) for hour in table.columns]
    table.index.name = "device_type"
    return table.round(6)


ATTRIBUTION_HEADER = """\
# Demo sample: six Konstanz households (derived from OPSD household data)

## Attribution

Open Power System Data. 2020. Data Package Household Data. Version 2020-04-15.
https://doi.org/10.25832/household_data/2020-04-15

Licensed under CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/). Measurements of the
CoSSMic project in Konstanz, Germany. The files in this folder are **derived** from a processed,
hourly, per-building form of that data package; they were changed as described below. Keep this
attribution with any copy.

## Files

* `households.csv.gz` - one row per building and hour, columns:
  * `building_id` - e.g. `DE_KN_residential4`;
  * `timestamp_utc` - start of the hour, UTC (ISO 8601);
  * `inflexible_load_kwh` - consumption that the EMS cannot move [kWh];
  * `pv_kwh` - PV generation, positive [kWh] (0 for buildings without PV);
  * `dishwasher_kwh`, `washing_machine_kwh`, `ev_kwh` - sub-metered flexible loads [kWh]; empty
    where the building has no such feed;
  * `wholesale_price_eur_per_kwh` - German day-ahead price [EUR/kWh], can be negative.
* `device_start_probabilities.csv` - start-hour probability per device type (rows) and hour 0-23
  (columns), as shipped with the processed data; each row sums to 1. The source does not state
  the hours' time zone; emstrack reads them as local hours.

## How it was derived

`scripts/make_demo_sample.py` (re-run it to regenerate these files byte for byte):

1. Building consumption is rebuilt from the meter feeds, because the processed data's
   `total_consumption` column is only the sum of the sub-metered appliances: consumption =
   grid_import + |pv| - |grid_export| where the building has both PV and export meters, else
   grid_import (see the per-building notes).
2. Inflexible load = consumption - dishwasher - washing machine - EV (where present). Where the
   sub-meters add up to more than the building meter in an hour (meter timing mismatch), it is
   clipped at 0 kWh - never negative; the table lists how often and how much.
3. PV and export are stored negative in the source; the sample stores PV generation positive.
4. One window of 28 whole local days (Europe/Berlin) per building, chosen for clean meters
   (no spikes, no dead import meter at night, few filled hours), real PV in the PV buildings and
   several appliance runs. All windows lie in 2016, because from 2017 on the source's price feed
   is a constant 0.0344 EUR/kWh fill. Heat pumps, freezers, refrigerators and circulation pumps
   stay in the inflexible load (where they are behind the household meter).
5. Energies are rounded to 1 Wh, prices to 0.00001 EUR/kWh.

## Windows

| building | first day | last day | devices | PV [kWh/d] | load [kWh/d] | clipped hours \
| clipped [kWh] | notes |
|---|---|---|---|---|---|---|---|---|
"""


def attribution_text(summaries: list[WindowSummary], sizes: dict[str, int]) -> str:
    """Compose the ATTRIBUTION.md text with one table row per building."""
    rows = [
        f"| {s.building_id} | {s.first_day} | {s.last_day} | {', '.join(s.devices)} "
        f"| {s.pv_kwh_per_day:.1f} | {s.load_kwh_per_day:.1f} | {s.clipped_hours} "
        f"| {s.clipped_kwh:.3f} | {BUILDING_NOTES[s.building_id]} |"
        for s in summaries
    ]
    size_lines = [f"* `{name}`: {size:,} bytes" for name, size in sorted(sizes.items())]
    return ATTRIBUTION_HEADER + "\n".join(rows) + "\n\n## Sizes\n\n" + "\n".join(size_lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Regenerate the demo sample from the OPSD household folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="OPSD folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="sample folder")
    args = parser.parse_args(argv)
    source: Path = args.source
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)

    tables, summaries = [], []
    for building in WINDOW_STARTS:
        tidy, summary = build_building(source, building)
        tables.append(tidy)
        summaries.append(summary)
    write_gzip_csv(pd.concat(tables, ignore_index=True), output / "households.csv.gz")
    probability_table(source).to_csv(output / "device_start_probabilities.csv", lineterminator="\n")
    sizes = {
        name: (output / name).stat().st_size
        for name in ("households.csv.gz", "device_start_probabilities.csv")
    }
    (output / "ATTRIBUTION.md").write_text(attribution_text(summaries, sizes), encoding="utf-8")
    total = sum(path.stat().st_size for path in output.iterdir() if path.is_file())
    if total > MAX_SAMPLE_BYTES:
        raise SystemExit(f"sample is {total} bytes, more than {MAX_SAMPLE_BYTES}")
    for summary in summaries:
        print(
            f"{summary.building_id}: {summary.first_day}..{summary.last_day} "
            f"devices={','.join(summary.devices)} pv={summary.pv_kwh_per_day:.1f} kWh/d "
            f"load={summary.load_kwh_per_day:.1f} kWh/d clipped={summary.clipped_hours} h"
        )
    print(f"wrote {output} ({total} bytes in all)")


if __name__ == "__main__":
    main()
