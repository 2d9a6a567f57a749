"""The pure mapping from Python values to params, metrics, tags and config JSON (no store)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import os
import re
from pathlib import PurePosixPath
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, SecretBytes, SecretStr

from emstrack._settings import DEFAULT_SECRET_PATTERN
from emstrack._tracking.mapping import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    REDACTED,
    Redactor,
    format_float,
    is_valid_key,
    map_outputs,
    map_params,
    map_series,
    maps_cleanly,
    mlflow_key,
    safe_artifact_path,
    to_jsonable,
)

REDACTOR = Redactor(re.compile(DEFAULT_SECRET_PATTERN, re.IGNORECASE))


class Mode(enum.Enum):
    COST = "cost"


class Battery(BaseModel):
    capacity_kwh: float = 10.0
    enabled: bool = True


class Config(BaseModel):
    building_id: str
    mode: Mode = Mode.COST
    battery: Battery = Battery()
    note: str | None = None


class TestParamValues:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (7, "7"),
            (7.0, "7"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (1e-05, "1e-05"),
            (1e20, "1e+20"),
            (2.5, "2.5"),
            (True, "true"),
            (False, "false"),
            (np.float64(7.0), "7"),
            (np.int32(3), "3"),
            (np.bool_(True), "true"),
            (decimal.Decimal("0.10"), "0.1"),
            (decimal.Decimal("1E+2"), "100"),
            (Mode.COST, "cost"),
            (dt.date(2026, 1, 2), "2026-01-02"),
            (PurePosixPath("/data/x.parquet"), "/data/x.parquet"),
            ([1, 2.0, "a"], '[1,2,"a"]'),
            ((True, None), "[true,null]"),
        ],
    )
    def test_canonical_text(self, value, text):
        """Each value has one canonical text, so 7 and 7.0 never clash."""
        assert map_params({"x": value}, REDACTOR).params == {"x": text}

    def test_float_text_round_trips(self):
        """The canonical float text parses back to the same float."""
        for value in [0.1, 1 / 3, 1e-300, 1.7976931348623157e308, 123456.789, 2**60 + 0.0]:
            assert float(format_float(value)) == value

    def test_none_is_skipped(self):
        """None values are not params."""
        assert map_params({"a": None, "b": 1}, REDACTOR).params == {"b": "1"}

    def test_nested_models_flatten_with_dots(self):
        """Nested models, dicts and dataclasses become dotted keys."""

        @dataclasses.dataclass
        class Ev:
            kwh: float

        mapped = map_params(
            {"config": Config(building_id="b1"), "ev": Ev(kwh=7.5), "extra": {"a": {"b": 1}}},
            REDACTOR,
        )
        assert mapped.params == {
            "config.building_id": "b1",
            "config.mode": "cost",
            "config.battery.capacity_kwh": "10",
            "config.battery.enabled": "true",
            "ev.kwh": "7.5",
            "extra.a.b": "1",
        }

    def test_long_value_is_cut_and_kept_whole(self):
        """A value over MLflow's 6,000 characters is cut visibly; the whole value is kept."""
        value = "x" * 10_000
        mapped = map_params({"blob": value}, REDACTOR)
        assert len(mapped.params["blob"]) == MAX_PARAM_VALUE_LENGTH
        assert mapped.params["blob"].endswith("whole value in config.json]")
        assert mapped.cut == {"blob": value}

    def test_dataframe_argument_is_not_a_param(self):
        """A DataFrame is described, not logged as a param."""
        mapped = map_params({"data": pd.DataFrame({"a": [1]})}, REDACTOR)
        assert mapped.params == {}
        assert mapped.unlogged == {"data": "not a param value: <pandas.DataFrame 1x1>"}
        assert not maps_cleanly(pd.DataFrame())
        assert maps_cleanly([1, 2])
        assert maps_cleanly(Config(building_id="b"))


class TestSecrets:
    def test_secret_types_and_deny_listed_keys(self):
        """SecretStr/SecretBytes values and deny-listed keys are ***."""
        mapped = map_params(
            {
                "db": SecretStr("s3cret"),
                "raw": SecretBytes(b"bytes"),
                "API_KEY": "k",
                "nested": {"refresh_token": "t", "user": "ann"},
                "credentials": {"user": "u", "pass": "p"},
            },
            REDACTOR,
        )
        assert mapped.params == {
            "db": REDACTED,
            "raw": REDACTED,
            "API_KEY": REDACTED,
            "nested.refresh_token": REDACTED,
            "nested.user": "ann",
            "credentials": REDACTED,
        }

    def test_environment_secret_values_are_scrubbed_from_any_string(self):
        """The value of a secret-named environment variable never appears in logged text."""
        redactor = Redactor.from_environ(
            re.compile(DEFAULT_SECRET_PATTERN, re.IGNORECASE),
            {"GRID_API_TOKEN": "tok-12345678", "HOME": "/root", "SHORT_TOKEN": "abc"},
        )
        mapped = map_params({"url": "https://grid/api?t=tok-12345678&x=1"}, redactor)
        assert mapped.params == {"url": "https://grid/api?t=***&x=1"}
        outputs = map_outputs({"status": "failed with tok-12345678"}, redactor)
        assert outputs.tags == {"status": "failed with ***"}
        assert to_jsonable({"u": "tok-12345678"}, redactor) == {"u": REDACTED}
        # Too short to be scrubbed safely: short values would redact ordinary words.
        assert "abc" not in redactor.secret_values

    def test_the_process_environment_is_read_again_when_it_changes(self, monkeypatch):
        """The environment's secrets are remembered only while the environment is unchanged."""
        pattern = re.compile(DEFAULT_SECRET_PATTERN, re.IGNORECASE)
        monkeypatch.setenv("GRID_API_TOKEN", "tok-first-1234")
        assert "tok-first-1234" in Redactor.from_environ(pattern, os.environ).secret_values
        monkeypatch.setenv("GRID_API_TOKEN", "tok-second-5678")
        values = Redactor.from_environ(pattern, os.environ).secret_values
        assert "tok-second-5678" in values
        assert "tok-first-1234" not in values
        monkeypatch.delenv("GRID_API_TOKEN")
        assert "tok-second-5678" not in Redactor.from_environ(pattern, os.environ).secret_values
        monkeypatch.setenv("GRID_API_TOKEN", "tok-second-5678")
        assert Redactor.from_environ(pattern, os.environ).secret_values == values

    def test_custom_pattern(self):
        """The deny pattern is configurable."""
        redactor = Redactor(re.compile("tariff_id", re.IGNORECASE))
        assert map_params({"tariff_id": "x", "password": "y"}, redactor).params == {
            "tariff_id": REDACTED,
            "password": "y",
        }


class TestKeys:
    @pytest.mark.parametrize(
        "key",
        [
            "a,b",
            "a=b",
            "a+b",
            "f(x)",
            "it's",
            "back\\slash",
            "tab\there",
            "../x",
            "a//b",
            "./a",
            "/abs",
            "x/",
            ".",
            "..",
            "",
        ],
    )
    def test_invalid_keys_become_valid(self, key):
        """Keys MLflow rejects are rewritten into keys it accepts."""
        assert not is_valid_key(key)
        mapped = mlflow_key(key)
        assert is_valid_key(mapped), mapped

    def test_rewrite_is_deterministic_and_distinguishes_keys(self):
        """The same key always maps the same way; keys that differ stay different."""
        assert mlflow_key("cost (EUR)") == mlflow_key("cost (EUR)")
        assert mlflow_key("a,b") != mlflow_key("a=b")
        assert mlflow_key("cost (EUR)").startswith("cost _EUR_-")

    def test_valid_keys_are_unchanged(self):
        """Valid keys, unicode letters included, pass through."""
        for key in ["battery.capacity_kwh", "daily/cost", "Größe", "a-b c:d"]:
            assert mlflow_key(key) == key

    def test_long_key_is_shortened(self):
        """Keys over 250 characters are shortened with a digest of the original."""
        key = "k" * 400
        mapped = mlflow_key(key)
        assert len(mapped) <= MAX_KEY_LENGTH
        assert mapped != mlflow_key("k" * 401)

    def test_renamed_keys_are_recorded(self):
        """The mapping remembers the original of every renamed key."""
        mapped = map_params({"price (EUR/kWh)": 0.3}, REDACTOR)
        (key,) = mapped.params
        assert mapped.renamed == {key: "price (EUR/kWh)"}

    def test_clashing_keys_keep_the_first(self):
        """Two originals flattening to the same key: the first wins, the second is reported."""
        mapped = map_params({"a.b": 1, "a": {"b": 2}}, REDACTOR)
        assert mapped.params == {"a.b": "1"}
        assert "a.b" in mapped.unlogged


class TestOutputs:
    def test_numbers_bools_strings(self):
        """Numbers are metrics, bools 0/1, strings tags."""
        mapped = map_outputs(
            {"cost": np.float32(1.5), "ok": True, "status": "Optimal", "none": None}, REDACTOR
        )
        assert mapped.metrics == [("cost", 1.5, 0), ("ok", 1.0, 0)]
        assert mapped.tags == {"status": "Optimal"}

    def test_step_is_applied(self):
        """A scalar step applies to every scalar metric."""
        assert map_outputs({"c": 1}, REDACTOR, step=4).metrics == [("c", 1.0, 4)]

    def test_series_one_metric_per_label(self):
        """A Series gives one metric per index label."""
        mapped = map_outputs(pd.Series({"dishwasher": 0.2, "ev": 0.5}), REDACTOR)
        assert mapped.metrics == [("dishwasher", 0.2, 0), ("ev", 0.5, 0)]

    def test_frame_rows_are_steps(self):
        """A DataFrame gives one step per row, labelled by an integer index when it has one."""
        frame = pd.DataFrame({"cost": [1.0, 2.0], "kwh": [3, 4]}, index=[10, 11])
        mapped = map_outputs(frame, REDACTOR)
        assert sorted(mapped.metrics) == [
            ("cost", 1.0, 10),
            ("cost", 2.0, 11),
            ("kwh", 3.0, 10),
            ("kwh", 4.0, 11),
        ]
        dated = pd.DataFrame({"cost": [5.0]}, index=pd.to_datetime(["2026-01-01"]))
        assert map_outputs(dated, REDACTOR).metrics == [("cost", 5.0, 0)]

    def test_a_repeated_frame_column_is_named_and_only_the_first_logged(self):
        frame = pd.DataFrame([[1.0, 2.0, 3], [4.0, 5.0, 6]], columns=["cost", "cost", "kwh"])
        mapped = map_outputs(frame, REDACTOR)
        assert sorted(mapped.metrics) == [
            ("cost", 1.0, 0),
            ("cost", 4.0, 1),
            ("kwh", 3.0, 0),
            ("kwh", 6.0, 1),
        ]
        assert "same name came first" in mapped.unlogged["cost"]

    def test_nullable_and_arrow_columns_keep_the_column_by_column_path(self):
        frame = pd.DataFrame(
            {
                "cost": [1.0, 2.0],
                "count": pd.array([1, 2], dtype="Int64"),
                "share": pd.array([0.5, 0.25], dtype="float64[pyarrow]"),
            }
        )
        assert sorted(map_outputs(frame, REDACTOR).metrics) == [
            ("cost", 1.0, 0),
            ("cost", 2.0, 1),
            ("count", 1.0, 0),
            ("count", 2.0, 1),
            ("share", 0.25, 1),
            ("share", 0.5, 0),
        ]

    def test_numeric_columns_map_as_every_value_would(self):
        """Numeric columns (the fast path) give what mapping each value on its own gives."""
        frame = pd.DataFrame(
            {
                "cost": [1.0, float("inf"), float("nan")],
                "count": np.array([1, 2, 3], dtype="int64"),
                "on": [True, False, True],
                "api_key": [1.0, 2.0, 3.0],
                "label": ["a", "b", "c"],
                "all_inf": [float("inf"), float("-inf"), float("inf")],
            }
        )
        fast = map_outputs(frame, REDACTOR)
        cell_by_cell = map_outputs(
            {column: dict(enumerate(frame[column].tolist())) for column in frame.columns},
            REDACTOR,
        )
        steps = {
            (key.split(".")[0], value if value == value else "nan", int(key.split(".")[1]))
            for key, value, _ in cell_by_cell.metrics
        }
        assert {(k, v if v == v else "nan", s) for k, v, s in fast.metrics} == steps
        assert fast.nonfinite == {
            "cost": [(1, "inf")],
            "all_inf": [(0, "inf"), (1, "-inf"), (2, "inf")],
        }
        assert ("on", 1.0, 0) in fast.metrics
        assert {key for key, *_ in fast.metrics} == {"cost", "count", "on"}
        # a secret-named column is redacted, not logged, as any secret value is
        assert fast.tags == {"api_key": "***", "label": "c"}

    def test_lists_of_numbers_are_series(self):
        """A nested list or 1-d array of numbers is a per-step series."""
        mapped = map_outputs({"soc": np.array([0.1, 0.2])}, REDACTOR)
        assert mapped.metrics == [("soc", 0.1, 0), ("soc", 0.2, 1)]

    def test_named_tuple_maps_plain_tuple_needs_an_extractor(self):
        """NamedTuples map by name; a plain tuple is reported, not guessed."""

        class Pair(NamedTuple):
            cost: float
            savings: float

        assert map_outputs(Pair(1.0, 2.0), REDACTOR).metrics == [
            ("cost", 1.0, 0),
            ("savings", 2.0, 0),
        ]
        plain = map_outputs((1.0, 2.0), REDACTOR)
        assert plain.metrics == []
        assert "extractor" in plain.unlogged["value"]

    def test_infinity_is_set_aside_nan_is_kept(self):
        """±inf goes to nonfinite, NaN stays a metric value."""
        mapped = map_outputs({"a": float("inf"), "b": float("-inf"), "c": float("nan")}, REDACTOR)
        assert mapped.nonfinite == {"a": [(0, "inf")], "b": [(0, "-inf")]}
        ((key, value, step),) = mapped.metrics
        assert (key, step) == ("c", 0)
        assert math.isnan(value)

    def test_series_helper(self):
        """map_series numbers consecutive steps from start_step."""
        mapped = map_series("load", [1, 2.5, None, True], REDACTOR, start_step=3)
        assert mapped.metrics == [("load", 1.0, 3), ("load", 2.5, 4), ("load", 1.0, 6)]


class TestConfigJson:
    def test_model_round_trips_through_json(self):
        """to_jsonable output re-creates the model exactly."""
        config = Config(building_id="b1", note="x")
        document = json.loads(json.dumps(to_jsonable(config, REDACTOR)))
        assert Config.model_validate(document) == config

    def test_nonfinite_floats_use_pydantic_readable_strings(self):
        """NaN and ±inf are written as strings pydantic reads back as floats."""

        class Floats(BaseModel):
            a: float
            b: float

        document = to_jsonable(Floats(a=float("inf"), b=float("nan")), REDACTOR)
        assert document == {"a": "Infinity", "b": "NaN"}
        back = Floats.model_validate(document)
        assert back.a == math.inf
        assert math.isnan(back.b)

    def test_unserialisable_values_are_described(self):
        """Objects JSON cannot hold are described, never pickled."""
        assert to_jsonable({"frame": pd.DataFrame({"a": [1, 2]})}, REDACTOR) == {
            "frame": "<pandas.DataFrame 2x1>"
        }


class TestArtifactNames:
    @pytest.mark.parametrize(
        ("name", "safe"),
        [
            ("results.csv", "results.csv"),
            ("plots/day 1.png", "plots/day 1.png"),
            ("../../etc/passwd", "__/__/etc/passwd"),
            ("/abs/x.txt", "abs/x.txt"),
            ("a\\b:c.txt", "a_b_c.txt"),
            ("", "artifact"),
            ("./.", "artifact"),
            ("tab\tname\x00.txt", "tab_name_x00.txt"),
        ],
    )
    def test_names_stay_inside(self, name, safe):
        """Artifact names are relative, without parent references or control characters."""
        assert safe_artifact_path(name) == safe
