"""In-process pieces of ``emstrack run``: settings validation, return mapping, hooks, program."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
import pytest

from emstrack import ConfigurationError
from emstrack._instrument import hooks, program, settings, values


class TestSettings:
    def test_pyproject_table_is_read_with_both_spellings(self, tmp_path):
        """track/returns/artifacts/capture-output from [tool.emstrack.run]."""
        (tmp_path / "pyproject.toml").write_text(
            "[tool.emstrack.run]\n"
            'experiment = "x"\ntrack = ["f", "m:g"]\nreturns = ["f=a,_"]\n'
            'artifacts = "results/output"\ncapture-output = true\n'
        )
        loaded = settings.load(tmp_path)
        assert loaded.experiment == "x"
        assert loaded.track == ("f", "m:g")
        assert dict(loaded.returns) == {"f": "a,_"}
        assert loaded.artifacts == ("results/output",)
        assert loaded.capture_output is True
        assert loaded.quiet is False
        overridden = loaded.override(experiment="y", track=None, quiet=True)
        assert overridden.experiment == "y"
        assert overridden.track == ("f", "m:g")
        assert overridden.quiet is True

    def test_emstrack_toml_wins_and_nothing_is_empty_settings(self, tmp_path):
        """emstrack.toml [run] is read before pyproject.toml; no file gives defaults."""
        assert settings.load(tmp_path) == settings.RunSettings()
        (tmp_path / "pyproject.toml").write_text('[tool.emstrack.run]\nexperiment = "p"\n')
        (tmp_path / "emstrack.toml").write_text('[run]\nexperiment = "e"\n')
        assert settings.load(tmp_path).experiment == "e"

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("quiet = 1", "'quiet' must be true or false"),
            ('experiment = ""', "'experiment' must be a non-empty string"),
            ("track = [1]", "'track' must be a list of strings"),
            ("returns = 3", "'returns' must be a table"),
            ('returns = ["nonsense"]', "must look like 'function=name0,name1'"),
            ("trak = []", "unknown key 'trak'"),
        ],
    )
    def test_bad_values_name_the_key(self, tmp_path, body, message):
        """Every bad setting is a ConfigurationError naming the file, table and key."""
        (tmp_path / "emstrack.toml").write_text(f"[run]\n{body}\n")
        with pytest.raises(ConfigurationError, match=r"emstrack\.toml \[run\]") as caught:
            settings.load(tmp_path)
        assert message in str(caught.value)

    def test_invalid_toml_is_named(self, tmp_path):
        (tmp_path / "emstrack.toml").write_text("[run\n")
        with pytest.raises(ConfigurationError, match=r"emstrack\.toml: not valid TOML"):
            settings.load(tmp_path)


@dataclasses.dataclass
class Day:
    date: str
    load: np.ndarray
    objects: list[object]


class TestValues:
    def test_clean_params_keep_settings_and_drop_data(self):
        """Scalars and short lists stay; arrays, long lists and objects go to config.json."""
        day = Day("2016-07-03", np.zeros(24), [object()])
        kept = values.clean_params(
            {"day": day, "mode": "cost", "hours": [1, 2], "many": list(range(40)), "x": object()}
        )
        assert kept == {"day": {"date": "2016-07-03"}, "mode": "cost", "hours": [1, 2]}

    def test_maps_cleanly_is_conservative(self):
        assert values.maps_cleanly(np.float64(1.5))
        assert values.maps_cleanly({"a": [1, 2.5], "b": "text"}, depth=1)
        assert values.maps_cleanly(np.arange(3.0), depth=1)
        assert not values.maps_cleanly(np.zeros((2, 2)), depth=1)
        assert not values.maps_cleanly([object()], depth=1)
        assert not values.maps_cleanly(2**1100)

    def test_return_values_outside_a_run_map_positionally(self):
        """No run open: the mapping is returned, nothing is described anywhere."""
        mapper = values.ReturnValues(("cost", "_"), None)
        assert mapper((np.float64(2.0), [object()])) == {"cost": np.float64(2.0)}
        mapper = values.ReturnValues(None, None)
        assert mapper((1, "ok", [object()])) == {"return_0": 1, "return_1": "ok"}
        assert mapper(None) is None
        assert mapper(3.5) == {"value": 3.5}
        assert mapper({"cost": 1.0, "plan": object()}) == {"cost": 1.0}

    @pytest.mark.parametrize("text", ["", "a,,b", "a,a"])
    def test_bad_return_names(self, text):
        with pytest.raises(ConfigurationError, match="--returns"):
            values.parse_names(text, "--returns")

    def test_describe(self):
        assert values.describe([Day("d", np.zeros(1), []), 1]) == (
            f"<list of 2: int, {__name__}.Day>"
        )
        assert values.describe(np.zeros((2, 3))) == "<numpy.ndarray shape=(2, 3)>"


class TestHooks:
    def test_parsed_arguments_reports_top_level_calls_only_and_is_removed(self):
        """A subparser's inner parse is not reported; the original methods come back."""
        seen = []
        originals = {
            name: argparse.ArgumentParser.__dict__[name]
            for name in ("parse_known_args", "parse_known_intermixed_args")
        }
        hook = hooks.ParsedArguments(lambda namespace: seen.append(vars(namespace)))
        hook.install()
        try:
            parser = argparse.ArgumentParser()
            parser.add_argument("--n", type=int)
            parser.add_subparsers(dest="cmd").add_parser("go").add_argument(
                "--fast", action="store_true"
            )
            parser.parse_args(["--n", "2", "go", "--fast"])
            flat = argparse.ArgumentParser()
            flat.add_argument("--n", type=int)
            flat.add_argument("rest", nargs="*")
            flat.parse_intermixed_args(["a", "--n", "3", "b"])
        finally:
            hook.remove()
        assert seen == [{"n": 2, "cmd": "go", "fast": True}, {"n": 3, "rest": ["a", "b"]}]
        for name, original in originals.items():
            assert argparse.ArgumentParser.__dict__[name] is original

    def test_module_loads_reports_importlib_loads_and_is_removed(self, tmp_path):
        import importlib.machinery
        import importlib.util

        had_own = "exec_module" in importlib.machinery.SourceFileLoader.__dict__
        seen = []
        hook = hooks.ModuleLoads(seen.append)
        hook.install()
        try:
            path = tmp_path / "01_loaded.py"
            path.write_text("VALUE = 1\n")
            spec = importlib.util.spec_from_file_location("loaded_by_path", path)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            hook.remove()
        assert seen == [module]
        assert ("exec_module" in importlib.machinery.SourceFileLoader.__dict__) is had_own


class TestProgram:
    def test_future_flags_docstring_and_bare_strings(self, tmp_path):
        """One statement at a time keeps __future__ flags; only the first string is __doc__."""
        script = tmp_path / "p.py"
        script.write_text(
            '"""The doc."""\nfrom __future__ import annotations\n'
            "def f(x: Undefined) -> int:\n    return 1\n"
            '"not a docstring"\n'
            "ANNOTATION = f.__annotations__['x']\n"
        )
        prepared = program.script(str(script), ["a"])
        calls = []
        prepared.execute(lambda: calls.append(1))
        namespace = prepared.module.__dict__
        assert namespace["__doc__"] == "The doc."
        assert namespace["ANNOTATION"] == "Undefined"
        assert len(calls) == 4  # the bare string is skipped
        assert prepared.argv == [str(script), "a"]
        assert prepared.path0 == str(tmp_path.resolve())

    def test_syntax_errors_are_raised_when_run(self, tmp_path):
        script = tmp_path / "bad.py"
        script.write_text("x = (\n")
        prepared = program.script(str(script), [])
        with pytest.raises(SyntaxError):
            prepared.execute(lambda: None)

    def test_missing_script_and_module_are_configuration_errors(self, tmp_path):
        with pytest.raises(ConfigurationError, match="no such file"):
            program.script(str(tmp_path / "none.py"), [])
        saved = list(sys.path)
        try:
            with pytest.raises(ConfigurationError, match="no module named 'no_such_mod_q'"):
                program.module("no_such_mod_q", [])
        finally:
            sys.path[:] = saved


def test_path_runs_reports_the_namespace_and_is_removed(tmp_path):
    """runpy.run_path is wrapped while installed; the original comes back by identity."""
    import runpy

    original = runpy.run_path
    seen = []
    hook = hooks.PathRuns(lambda path, namespace: seen.append((path, sorted(namespace))))
    helper = tmp_path / "04_helper.py"
    helper.write_text("def step():\n    return 1\n")
    hook.install()
    try:
        namespace = runpy.run_path(str(helper))
    finally:
        hook.remove()
    assert runpy.run_path is original
    assert namespace["step"]() == 1
    assert seen[0][0] == helper.resolve()
    assert "step" in seen[0][1]
