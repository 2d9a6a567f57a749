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
