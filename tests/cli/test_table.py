"""Table rendering of the CLI: one cell per value, aligned columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from emstrack._cli.table import MISSING, cell, render


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, MISSING),
        (math.nan, MISSING),
        (pd.NaT, MISSING),
        (True, "true"),
        (np.bool_(False), "false"),
        (np.int64(7), "7"),
        (1.0 / 3.0, "0.3333"),
        (pd.Timestamp("2016-05-01 12:00", tz="Europe/Berlin"), "2016-05-01 10:00:00"),
        ("DE_KN_residential1", "DE_KN_residential1"),
    ],
)
def test_cell(value: object, text: str) -> None:
    assert cell(value) == text


def test_cell_not_fixed_keeps_every_digit() -> None:
    assert cell(0.1 + 0.2, fixed=False) != "0.3000"
    assert float(cell(0.1 + 0.2, fixed=False)) == 0.1 + 0.2


def test_render_aligns_columns_and_fixes_only_named_ones() -> None:
    frame = pd.DataFrame({"building": ["a", "longer"], "cost": [1.5, 22.25], "n": [1.5, 2.0]})
    lines = render(frame, fixed=["cost"])
    assert lines[0].split() == ["building", "cost", "n"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["a", "1.5000", "1.5"]
    assert lines[3].split() == ["longer", "22.2500", "2"]
    assert len({len(line.rstrip()) for line in lines[2:]}) <= 2
    assert lines[2].index("1.5000") + len("1.5000") == lines[3].index("22.2500") + len("22.2500")
