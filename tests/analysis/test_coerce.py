"""Params typed back from their stored text to numbers and bools."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from emstrack.analysis._coerce import schema_types, type_column


class TestParamTyping:
    """Stored param text is typed back by its values, or by a schema."""

    @pytest.mark.parametrize(
        ("values", "dtype", "typed"),
        [
            (["true", "false", "true"], "bool", [True, False, True]),
            (["True", None], "boolean", [True, pd.NA]),
            (["7", "-2", "0"], "int64", [7, -2, 0]),
            (["7", None], "Int64", [7, pd.NA]),
            (["7", "0.25", "1e-05", "nan"], "float64", [7.0, 0.25, 1e-05, math.nan]),
            (["0042", "17"], "str", ["0042", "17"]),
            (["1", "true"], "str", ["1", "true"]),
            (["B1", None], "str", ["B1", math.nan]),
        ],
    )
    def test_values_decide_the_dtype(
        self, values: list[str | None], dtype: str, typed: list[Any]
    ) -> None:
        """Bools, ints, floats and text are told apart; missing values use nullable dtypes."""
        column = type_column(pd.Series(values, dtype="object"))
        assert str(column.dtype) == dtype
        assert [("NaN" if _missing(v) else v) for v in column.tolist()] == [
            ("NaN" if _missing(v) else v) for v in typed
        ]

    def test_schema_keeps_an_integral_float_field_a_float(self) -> None:
        """battery.capacity_kwh is a float in OptimizationParams even when logged as '10'."""
        from emstrack.schemas import OptimizationParams

        declared = schema_types(OptimizationParams)
        assert declared["battery.capacity_kwh"] is float
        assert declared["n_days"] is int
        column = type_column(
            pd.Series(["10", "12"], dtype="object"), declared["battery.capacity_kwh"]
        )
        assert str(column.dtype) == "float64"

    def test_schema_type_that_the_values_cannot_take_is_ignored(self) -> None:
        """An int field whose stored values are not integers falls back to the values' type."""
        column = type_column(pd.Series(["1.5", "2"], dtype="object"), int)
        assert str(column.dtype) == "float64"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _by_map(values: pd.Series, kind: str) -> pd.Series:
    """The former per-row typing (``Series.map`` of every value), the reference."""
    present = values.dropna()
    uniques = [str(value) for value in present.unique()]
    missing = len(present) < len(values)
    if kind == "bool":
        out = values.map({text: text in ("true", "True") for text in uniques})
        return out.astype("boolean") if missing else out.astype("bool")
    if kind == "int":
        return values.map({text: int(text) for text in uniques}).astype(
            "Int64" if missing else "int64"
        )
    return values.map({text: float(text) for text in uniques}).astype("float64")


class TestTypingByDistinctValues:
    """Typing each distinct text once gives what mapping every row gave."""

    @pytest.mark.parametrize(
        ("values", "kind"),
        [
            (["true", "false", "True", "false", "False"], "bool"),
            (["true", None, "false", None], "bool"),
            (["7", "-2", "0", "7", "9223372036854775807"], "int"),
            (["7", None, "-3", "7"], "int"),
            (["7", "0.25", "1e-05", "nan", "-inf", "0.25"], "float"),
            (["7", None, "0.5", None], "float"),
        ],
    )
    def test_equals_mapping_every_row(self, values: list[str | None], kind: str) -> None:
        """Same values, dtype, index and name, on a run-id index as the readers give."""
        index = pd.Index([f"run-{i}" for i in range(len(values))], name="run_id")
        for dtype in ("object", "str"):
            column = pd.Series(values, index=index, dtype=dtype, name="key")
            pd.testing.assert_series_equal(type_column(column), _by_map(column, kind))
