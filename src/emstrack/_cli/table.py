"""Plain-text tables for the terminal: aligned columns, stable formatting.

Layout: a header line, a line of dashes under each header, then one line per row; columns are
separated by two spaces, numbers right-aligned, text left-aligned, trailing spaces stripped.
Cells: floats with four decimals (``.4f``, or canonical text in key columns), integers as they
are, booleans ``true``/``false``, missing values ``-``, timestamps ``YYYY-MM-DD HH:MM:SS``
(UTC).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .._tracking.mapping import format_float

__all__ = ["MISSING", "cell", "render"]

MISSING = "-"


def cell(value: object, *, fixed: bool = True) -> str:
    """One value as table text (``fixed``: floats with four decimals, else canonical)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return MISSING
        return f"{number:.4f}" if fixed else format_float(number)
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def render(frame: pd.DataFrame, fixed: Iterable[str] = ()) -> list[str]:
    """Lines of ``frame`` as an aligned table; columns in ``fixed`` show floats as ``.4f``."""
    fixed_columns = set(fixed)
    headers = [str(column) for column in frame.columns]
    columns: list[list[str]] = []
    numeric: list[bool] = []
    for column in frame.columns:
        values = frame[column].tolist()
        columns.append([cell(v, fixed=column in fixed_columns) for v in values])
        numeric.append(_is_numeric(frame[column]))
    widths = [
        max([len(header), *(len(text) for text in texts)])
        for header, texts in zip(headers, columns, strict=True)
    ]
    lines = [_line(headers, widths, numeric), _line(["-" * w for w in widths], widths, numeric)]
    for row in zip(*columns, strict=True) if columns else ():
        lines.append(_line(list(row), widths, numeric))
    return lines


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _line(cells: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> str:
    parts = [
        text.rjust(width) if right else text.ljust(width)
        for text, width, right in zip(cells, widths, numeric, strict=True)
    ]
    return "  ".join(parts).rstrip()
