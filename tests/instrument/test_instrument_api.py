"""``emstrack.instrument`` / ``uninstrument``: patched where defined and where imported, then
restored exactly (identity), also when called twice; calls are tracked runs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

import emstrack
from emstrack import ConfigurationError

DEFINING = """
import numpy as np

def plan(capacity_kwh, horizon_h=24):
    return (np.float64(capacity_kwh * 0.5), [object(), object()], {"hours": horizon_h})

class Planner:
    def solve(self, hours):
        return {"cost": hours * 2.0}

    @classmethod
    def build(cls, size):
        return size + 1

    @staticmethod
    def check(value):
        return value * 3

class Special(Planner):
    pass
"""

IMPORTER = """
from {module} import plan
from {module} import plan as renamed
"""


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Two fresh importable modules: one defining, one importing with ``from m import f``."""
    folder = tmp_path / "mods"
    folder.mkdir()
    token = tmp_path.name.replace("-", "_")
    defining, importer = f"defining_{token}", f"importer_{token}"
    (folder / f"{defining}.py").write_text(DEFINING)
    (folder / f"{importer}.py").write_text(IMPORTER.format(module=defining))
    monkeypatch.syspath_prepend(str(folder))
    yield importlib.import_module(defining), importlib.import_module(importer), folder
    for name in (defining, importer, f"late_{token}"):
        sys.modules.pop(name, None)


def test_function_is_patched_where_defined_and_where_imported(modules, store):
    """The wrapper replaces the attribute and the `from m import f` references, under any name."""
    defining, importer, _ = modules
    originals = [defining.plan]  # a container: the one reference the scan does not reach
    target = f"{defining.__name__}:plan"
    wrapper = emstrack.instrument(target, experiment="api")
    assert wrapper is not originals[0]
    assert defining.plan is wrapper
    assert importer.plan is wrapper
    assert importer.renamed is wrapper
    assert originals[0] is not wrapper
    assert emstrack.uninstrument(target) is True
    assert defining.plan is originals[0]
    assert importer.plan is originals[0]
    assert importer.renamed is originals[0]


def test_twice_is_safe_both_ways(modules, store):
    """Instrumenting twice returns the same wrapper; uninstrumenting twice restores once."""
    defining, importer, _ = modules
    original = [defining.plan][0]
    target = f"{defining.__name__}:plan"
    first = emstrack.instrument(target)
    assert emstrack.instrument(target, experiment="other") is first
    assert defining.plan is first
    assert importer.plan is first
    assert emstrack.uninstrument(target) is True
    assert emstrack.uninstrument(target) is False
    assert defining.plan is original
    assert importer.plan is original
    # and again from scratch: a new wrapper, restored again
    second = emstrack.instrument(target)
    assert second is not first
    assert defining.plan is second
    emstrack.uninstrument(target)
    assert defining.plan is original


def test_module_imported_after_instrumenting_is_restored_too(modules, store):
    """A module that imports the wrapper later gets the original back on uninstrument."""
    defining, _, folder = modules
    token = defining.__name__.removeprefix("defining_")
    (folder / f"late_{token}.py").write_text(f"from {defining.__name__} import plan\n")
    original = [defining.plan][0]
    target = f"{defining.__name__}:plan"
    wrapper = emstrack.instrument(target)
    late = importlib.import_module(f"late_{token}")
    assert late.plan is wrapper
    emstrack.uninstrument(target)
    assert late.plan is original


def test_methods_classmethods_and_staticmethods_come_back_as_the_same_objects(modules, store):
    """Class.method targets: the raw __dict__ entries (descriptors) are restored by identity."""
    defining, _, _ = modules
    planner = defining.Planner
    raw = {name: planner.__dict__[name] for name in ("solve", "build", "check")}
    name = defining.__name__
    for method in raw:
        emstrack.instrument(f"{name}:Planner.{method}", experiment="methods")
        assert planner.__dict__[method] is not raw[method]
    assert planner().solve(3) == {"cost": 6.0}
    assert planner.build(1) == 2
    assert planner.check(2) == 6
    for method in raw:
        assert emstrack.uninstrument(f"{name}:Planner.{method}") is True
        assert planner.__dict__[method] is raw[method]
    assert isinstance(planner.__dict__["build"], classmethod)
    assert isinstance(planner.__dict__["check"], staticmethod)
    emstrack.flush()
    runs = store.runs("methods")
    assert sorted(r.info.run_name for r in runs) == ["build", "check", "solve"]
    solve = next(r for r in runs if r.info.run_name == "solve")
    assert solve.data.params == {"hours": "3"}
    assert solve.data.metrics == {"cost": 6.0}


def test_inherited_method_is_patched_on_the_subclass_and_removed_again(modules, store):
    """Special.solve is inherited: instrumenting adds it to Special only; undoing removes it."""
    defining, _, _ = modules
    emstrack.instrument(f"{defining.__name__}:Special.solve", experiment="inherited")
    assert "solve" in defining.Special.__dict__
    assert defining.Special().solve(1) == {"cost": 2.0}
    assert defining.Planner.__dict__["solve"] is not defining.Special.__dict__["solve"]
    emstrack.uninstrument(f"{defining.__name__}:Special.solve")
    assert "solve" not in defining.Special.__dict__
    emstrack.flush()
    assert [r.info.run_name for r in store.runs("inherited")] == ["solve"]


def test_a_tracked_call_maps_the_tuple_positionally_and_describes_the_rest(modules, store):
    """return_0 is a metric, the list of objects is described in config.json, no warning."""
    defining, importer, _ = modules
    target = f"{defining.__name__}:plan"
    emstrack.instrument(target, experiment="returns")
    try:
        cost, devices, _ = importer.plan(4)
    finally:
        emstrack.uninstrument(target)
    assert cost == 2.0
    assert len(devices) == 2
    emstrack.flush()
    (run,) = store.runs("returns")
    assert run.data.params == {"capacity_kwh": "4", "horizon_h": "24"}
    assert run.data.metrics == {"return_0": 2.0, "return_2.hours": 24.0}
    config = json.loads((store.artifact_root(run.info.run_id) / "config.json").read_text())
    assert config["inputs"]["arguments"] == {"capacity_kwh": 4, "horizon_h": 24}
    assert config["inputs"]["returns"] == {"return_1": "<list of 2: object>"}


def test_returns_names_positions_and_skips(modules, store):
    """returns="cost,_" names position 0 and skips position 1."""
    defining, _, _ = modules
    target = f"{defining.__name__}:plan"
    emstrack.instrument(target, experiment="named", returns="cost,_,extra")
    try:
        defining.plan(2, horizon_h=6)
    finally:
        emstrack.uninstrument(target)
    emstrack.flush()
    (run,) = store.runs("named")
    assert run.data.metrics == {"cost": 1.0, "extra.hours": 6.0}
    config = json.loads((store.artifact_root(run.info.run_id) / "config.json").read_text())
    assert "returns" not in config["inputs"]


def test_file_target_with_a_non_identifier_name_is_loaded_once(tmp_path, store):
    """01_helpers.py:step loads under one stable name in sys.modules, patched and restored."""
    helper = tmp_path / "01_helpers.py"
    helper.write_text("def step(x):\n    return {'doubled': x * 2}\n")
    target = f"{helper}:step"
    wrapper = emstrack.instrument(target, experiment="files")
    try:
        loaded = [m for n, m in sys.modules.items() if n.startswith("_emstrack_file_01_helpers_")]
        assert len(loaded) == 1
        module = loaded[0]
        assert module.step is wrapper
        assert emstrack.instrument(target) is wrapper
        assert len([n for n in sys.modules if n.startswith("_emstrack_file_01_helpers_")]) == 1
        assert module.step(5) == {"doubled": 10}
        assert emstrack.uninstrument(target) is True
        assert module.step is not wrapper
        assert module.step.__module__ == module.__name__
    finally:
        emstrack.uninstrument(target)
        for name in [n for n in sys.modules if n.startswith("_emstrack_file_01_helpers_")]:
            del sys.modules[name]
    emstrack.flush()
    (run,) = store.runs("files")
    assert run.data.metrics == {"doubled": 10.0}


def test_file_target_already_loaded_by_the_program_is_patched_in_place(tmp_path, store):
    """A file the program loaded itself (importlib, any name) is patched there, not reloaded."""
    helper = tmp_path / "02_steps.py"
    helper.write_text("def step(x):\n    return x + 1\n")
    spec = importlib.util.spec_from_file_location("steps_in_place", helper)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["steps_in_place"] = module
    spec.loader.exec_module(module)
    original = [module.step][0]
    try:
        wrapper = emstrack.instrument(f"{helper}:step")
        assert module.step is wrapper
        assert not [n for n in sys.modules if n.startswith("_emstrack_file_02_steps")]
        emstrack.uninstrument(f"{helper}:step")
        assert module.step is original
    finally:
        del sys.modules["steps_in_place"]


def test_references_in_containers_are_not_reached(modules, store):
    """The documented limit: a list holding the function keeps the original."""
    defining, _, _ = modules
    registry = {"plan": defining.plan}
    target = f"{defining.__name__}:plan"
    wrapper = emstrack.instrument(target)
    try:
        assert registry["plan"] is not wrapper
    finally:
        emstrack.uninstrument(target)


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("no_colon_here", "expected 'package.module:function'"),
        ("json:", "is not a function name"),
        (":loads", "nothing before ':'"),
        ("json:1abc", "is not a function name"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("json:nope", "has no attribute 'nope'"),
        ("json:JSONDecoder.nope", "has no attribute 'nope'"),
        ("json:JSONDecoder", "is a class, not a function"),
        ("os.path:sep", "is a str, not a function"),
        ("missing/file.py:f", "no file at"),
    ],
)
def test_bad_targets_name_the_target_and_the_problem(target, problem):
    """Every malformed or unresolvable target is a ConfigurationError naming both."""
    with pytest.raises(ConfigurationError) as caught:
        emstrack.instrument(target)
    assert repr(target) in str(caught.value)
    assert problem in str(caught.value)


def test_options_are_checked_against_the_function(modules):
    """A run_name field that is not a parameter fails at instrument time, nothing patched."""
    defining, _, _ = modules
    original = [defining.plan][0]
    with pytest.raises(ConfigurationError, match=r"\{building\} is not a parameter"):
        emstrack.instrument(f"{defining.__name__}:plan", run_name="{building}")
    assert defining.plan is original
    with pytest.raises(ConfigurationError, match="exclude each other"):
        emstrack.instrument(f"{defining.__name__}:plan", returns="a", metrics=dict)
    assert defining.plan is original


def test_enabled_false_patches_nothing(modules):
    """enabled=False leaves the module untouched and returns the function."""
    defining, _, _ = modules
    original = [defining.plan][0]
    assert emstrack.instrument(f"{defining.__name__}:plan", enabled=False) is original
    assert defining.plan is original
    assert emstrack.uninstrument(f"{defining.__name__}:plan") is False


def test_uninstrument_never_imports(tmp_path):
    """Undoing a target whose module is not loaded is a no-op that loads nothing."""
    assert emstrack.uninstrument("module_never_imported_abc:f") is False
    assert "module_never_imported_abc" not in sys.modules
    helper = tmp_path / "03_never.py"
    helper.write_text("raise RuntimeError('must not be executed')\n")
    assert emstrack.uninstrument(f"{helper}:f") is False


def test_import_emstrack_stays_cheap_with_the_new_names():
    """instrument/uninstrument are lazy exports; textwrap keeps the probe readable."""
    import subprocess

    code = textwrap.dedent(
        """
        import sys, emstrack
        assert callable(emstrack.instrument) and callable(emstrack.uninstrument)
        print(sorted(m for m in ('mlflow', 'pandas', 'pydantic', 'wrapt') if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
    assert Path(emstrack.__file__).name == "__init__.py"
