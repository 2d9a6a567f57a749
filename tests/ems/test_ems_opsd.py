"""Reading an OPSD per-building frame: which building it is, and the derived model columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from emstrack.ems._columns import REQUIRED_COLUMNS, device_column
from emstrack.ems._opsd import derive_household_frame, is_opsd_frame, opsd_building_id
from emstrack.ems._optimize import savings_pct

OPSD = Path(__file__).resolve().parents[3] / "shared" / "data" / "opsd-household"


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    path = OPSD / "DE_KN_residential4.parquet"
    if not path.exists():
        pytest.skip(f"the shared OPSD data is not at {OPSD}")
    pytest.importorskip("pyarrow")
    return pd.read_parquet(path).iloc[: 24 * 14]


def test_recognises_the_building(raw: pd.DataFrame) -> None:
    assert is_opsd_frame(raw)
    assert opsd_building_id(raw) == "DE_KN_residential4"
    assert not is_opsd_frame(pd.DataFrame({"pv_kwh": [1.0]}))


def test_two_buildings_in_one_frame_are_an_error() -> None:
    frame = pd.DataFrame(
        columns=["DE_KN_residential1_grid_import", "DE_KN_residential2_grid_import"]
    )
    with pytest.raises(ValueError, match="exactly one"):
        opsd_building_id(frame)


def test_derived_columns_and_clipping(raw: pd.DataFrame) -> None:
    derived = derive_household_frame(raw)
    assert derived.building_id == "DE_KN_residential4"
    assert set(REQUIRED_COLUMNS) <= set(derived.frame.columns)
    assert (derived.frame["inflexible_load_kwh"] >= 0).all()
    assert (derived.frame["pv_kwh"] >= 0).all()
    assert (derived.clipped_kwh >= 0).all()
    assert str(derived.frame.index.tz) == "UTC"


def test_device_column_names() -> None:
    assert device_column("dishwasher") == "dishwasher_kwh"


@pytest.mark.parametrize(
    ("savings", "baseline", "pct"), [(1.0, 4.0, 25.0), (-1.0, 4.0, -25.0), (5.0, 0.0, 0.0)]
)
def test_savings_pct_is_a_share_of_the_baseline_import_cost(
    savings: float, baseline: float, pct: float
) -> None:
    assert savings_pct(savings, baseline) == pytest.approx(pct)
