"""The frame digest: full content and time index, stable across processes, fast enough."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from emstrack._capture.digest import frame_digest

ROWS = 35_040  # a year at 15 minutes

SCRIPT = """
import numpy as np, pandas as pd
from emstrack._capture.digest import frame_digest
index = pd.date_range("2016-01-01", periods=35040, freq="15min", tz="Europe/Berlin")
rng = np.random.default_rng(7)
frame = pd.DataFrame({c: rng.random(35040) for c in ("load", "pv", "price")}, index=index)
frame.iloc[17, 1] = np.nan
print(frame_digest(frame))
"""


def year_frame() -> pd.DataFrame:
    index = pd.date_range("2016-01-01", periods=ROWS, freq="15min", tz="Europe/Berlin")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({c: rng.random(ROWS) for c in ("load", "pv", "price")}, index=index)
    frame.iloc[17, 1] = np.nan
    return frame


def test_stable_across_two_fresh_processes():
    """Two interpreters with different hash seeds compute the same digest, equal to ours."""
    digests = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True
        )
        digests.append(result.stdout.strip())
    assert digests[0] == digests[1] == frame_digest(year_frame())
    assert len(digests[0]) == 64


def test_one_changed_value_in_35040_rows_changes_it():
    frame = year_frame()
    changed = frame.copy()
    changed.iloc[ROWS - 1, 2] = np.nextafter(changed.iloc[ROWS - 1, 2], 2.0)  # last row, 1 ulp
    assert frame_digest(changed) != frame_digest(frame)


def test_time_index_is_part_of_it():
    frame = year_frame()
    shifted = frame.set_axis(frame.index + pd.Timedelta(minutes=15))
    assert frame_digest(shifted) != frame_digest(frame)


def test_same_instants_in_another_zone_give_the_same_digest():
    frame = year_frame()
    assert frame_digest(frame.tz_convert("UTC")) == frame_digest(frame)


def test_every_nan_is_the_same_nan():
    frame = year_frame()
    other = frame.copy()
    payload = np.array([0x7FF8000000000123], dtype="<u8").view("<f8")[0]  # another NaN
    other.iloc[17, 1] = payload
    assert frame_digest(other) == frame_digest(frame)


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.rename(columns={"pv": "pv_kwh"}),
        lambda f: f[["pv", "load", "price"]],
        lambda f: f.astype({"load": "float32"}),
        lambda f: f.iloc[:-1],
    ],
    ids=["column name", "column order", "dtype", "one row fewer"],
)
def test_structure_is_part_of_it(change):
    frame = year_frame()
    assert frame_digest(change(frame)) != frame_digest(frame)


def test_text_integer_and_bool_columns():
    frame = pd.DataFrame(
        {"device": ["ev", "dishwasher", None], "count": [1, 2, 3], "on": [True, False, True]}
    )
    assert frame_digest(frame) == frame_digest(frame.copy())
    changed = frame.copy()
    changed.loc[0, "device"] = "EV"
    assert frame_digest(changed) != frame_digest(frame)
