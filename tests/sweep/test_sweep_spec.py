"""Grid files and scenario keys: every mistake is one error naming the key; keys are stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from emstrack import ConfigurationError
from emstrack._sweep import load_spec, scenario_key
from emstrack._sweep.keys import canonical_json

GOOD = """
function = "emstrack.ems:compare_modes"
experiment = "sweep-demo"
[grid]
building_id = ["DE_KN_residential1", "DE_KN_residential4"]
scenario = ["battery_only", "self_consumption"]
start_day = [0, 1]
[fixed]
n_days = 1
[tracking]
params = "emstrack.ems:scenario_inputs"
metrics = "emstrack.ems:ModeComparison.figures"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_good_file_expands_to_every_combination(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    scenarios = list(spec.scenarios())
    assert spec.size == len(scenarios) == 8
    assert scenarios[0] == {
        "n_days": 1,
        "building_id": "DE_KN_residential1",
        "scenario": "battery_only",
        "start_day": 0,
    }
    assert scenarios[-1]["building_id"] == "DE_KN_residential4"
    assert scenarios[-1]["start_day"] == 1
    assert spec.tracking.metrics == "emstrack.ems:ModeComparison.figures"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("[fixed]", "colour = [1]\n[fixed]"),
            "grid.colour: emstrack.ems:compare_modes has no parameter 'colour'",
        ),
        (("start_day = [0, 1]", "start_day = []"), "grid.start_day"),
        (("start_day = [0, 1]", "start_day = 0"), "grid.start_day: must be a list of values"),
        (
            ("[tracking]", "[tracking]\nparms = 'x:y'"),
            "tracking.parms: unknown key; [tracking] takes artifacts, log_inputs, log_model, "
            "metrics, params, run_name, tags",
        ),
        (
            ('experiment = "sweep-demo"', 'experiment = "sweep-demo"\nrun_name = "{scenario}"'),
            "run_name: unknown key here; run_name goes in the [tracking] table",
        ),
        (
            ("emstrack.ems:scenario_inputs", "emstrack.ems:no_such_thing"),
            "tracking.params: 'emstrack.ems' has no attribute 'no_such_thing'",
        ),
        (('"emstrack.ems:compare_modes"', '"compare_modes"'), "function: must be an import path"),
        (
            ('"emstrack.ems:compare_modes"', '"no_such_module:f"'),
            "function: cannot import module 'no_such_module'",
        ),
        (("n_days = 1", "n_days = 1\nstart_day = 3"), "grid.start_day: also given in [fixed]"),
        (
            ("experiment =", "experimnt ="),
            "experimnt: unknown key; the file's top level takes experiment, fixed, function, "
            "grid, tracking (the function's arguments go in [grid] or [fixed])",
        ),
        (('scenario = ["battery_only", "self_consumption"]', ""), "needs 'scenario'"),
        (("n_days = 1", "n_days = 1 ="), "not valid TOML"),
    ],
)
def test_bad_file_is_one_error_naming_the_key(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigurationError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such grid file"):
        load_spec(tmp_path / "nope.toml")


def test_mapping_accepts_callables_and_rejects_local_ones() -> None:
    from emstrack import ems

    spec = load_spec(
        {"function": ems.compare_modes, "grid": {"building_id": ["B"], "scenario": ["s"]}}
    )
    assert spec.function == "emstrack.ems._pipelines:compare_modes"

    def local(building_id: str) -> None: ...

    with pytest.raises(ConfigurationError, match="cannot be imported by a worker"):
        load_spec({"function": local, "grid": {"building_id": ["B"]}})


def test_scenario_key_is_stable_and_canonical() -> None:
    arguments = {"building_id": "DE_KN_residential1", "start_day": 0, "n_days": 1}
    key = scenario_key("emstrack.ems:compare_modes", arguments)
    # Pinned: a key must not change between versions, machines or processes.
    assert canonical_json("emstrack.ems:compare_modes", arguments) == (
        '{"arguments":{"building_id":"DE_KN_residential1","n_days":1,"start_day":0},'
        '"function":"emstrack.ems:compare_modes"}'
    )
    assert key == "6d5edd5c50d95c93128e4522f3a46805"
    assert key == scenario_key("emstrack.ems:compare_modes", dict(reversed(arguments.items())))
    assert key != scenario_key("emstrack.ems:compare_modes", {**arguments, "start_day": 1})
    assert key != scenario_key("emstrack.ems:compare_modes", {**arguments, "start_day": 0.0})
    assert key != scenario_key("other.module:compare_modes", arguments)


def test_runs_are_named_by_the_grids_varying_values_unless_tracking_names_them(
    tmp_path: Path,
) -> None:
    assert load_spec(write(tmp_path, GOOD)).run_name == "{building_id}-{scenario}-{start_day}"
    named = GOOD.replace("[tracking]", '[tracking]\nrun_name = "{scenario}"')
    assert load_spec(write(tmp_path, named)).run_name == "{scenario}"
    single = GOOD.replace('"DE_KN_residential1", "DE_KN_residential4"', '"DE_KN_residential1"')
    assert load_spec(write(tmp_path, single)).run_name == "{scenario}-{start_day}"
    constant = {
        "function": "emstrack.ems:compare_modes",
        "grid": {"building_id": ["DE_KN_residential1"], "scenario": ["battery_only"]},
    }
    assert load_spec(constant).run_name is None
