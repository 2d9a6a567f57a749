"""``emstrack run`` leaves the program's world as ``python`` makes it: argv, __main__,
sys.path[0], relative imports under -m, tracebacks; settings from pyproject.toml/emstrack.toml;
--capture-output and --artifacts; user errors are one ``Error:`` line."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from helpers.scripts import plain, tracked

PROBE = '''
"""Probe docstring."""
from __future__ import annotations

import argparse
import pickle
import runpy
import sys
from pathlib import Path


class Point:
    pass


class Shape:
    def area(self, side: float) -> float:
        return side * side


def solve(size: int) -> dict[str, float]:
    return {"cost": size * 1.5}


solve(2)  # called by the statement right after its definition: already tracked
parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=1)
sub = parser.add_subparsers(dest="command")
sub.add_parser("go").add_argument("--fast", action="store_true")
args = parser.parse_args()
print("name", __name__, "doc", __doc__)
print("argv", sys.argv)
print("path0", sys.path[0])
print("file", __file__, "spec", __spec__, "package", __package__)
print("main is me", sys.modules["__main__"].__dict__ is globals())
print("pickles", type(pickle.loads(pickle.dumps(Point()))).__name__)
print("solve", solve(args.size), solve.__name__)
print("args", vars(args))
print("area", Shape().area(2.0))
helpers = runpy.run_path(str(Path(__file__).with_name("02_helpers.py")))
print("double", helpers["double"](4))
'''


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_the_script_sees_what_python_gives_it(store):
    """argv, __name__, __doc__, __file__, sys.path[0], __main__, pickling: all as with python."""
    script = write(store.root / "job", "probe.py", PROBE)
    helper = write(store.root / "job", "02_helpers.py", "def double(x):\n    return x * 2\n")
    args = ["--size", "3", "go", "--fast"]
    expected = plain(store, str(script), *args)
    assert expected.returncode == 0, expected.stderr
    got = tracked(
        store, "-q", "-e", "probe", "--track", f"{script}:solve", "--track", "Shape.area",
        "--track", f"{helper}:double", "--", str(script), *args,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == expected.stdout
    assert got.stderr == expected.stderr
    assert f"path0 {script.parent}".encode() in got.stdout
    runs = store.runs("probe")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.params == {"size": "3", "command": "go", "fast": "true"}
    solves = sorted(r.data.params["size"] for r in runs if r.info.run_name == "solve")
    assert solves == ["2", "3"]
    (area,) = [r for r in runs if r.info.run_name == "area"]
    assert area.data.params == {"side": "2"}
    assert area.data.metrics == {"value": 4.0}
    assert area.data.tags["mlflow.parentRunId"] == parent.info.run_id
    (double,) = [r for r in runs if r.info.run_name == "double"]  # loaded with runpy.run_path
    assert double.data.params == {"x": "4"}
    assert double.data.metrics == {"value": 8.0}


def test_dash_m_runs_a_module_with_relative_imports(store):
    """-m package.module: __package__, relative imports, sys.argv[0] and sys.path[0] as python."""
    write(store.root / "pipeline", "__init__.py", "")
    write(store.root / "pipeline", "helpers.py", "def solve(n):\n    return {'cost': n * 2.0}\n")
    write(
        store.root / "pipeline",
        "main.py",
        """
        import sys
        from .helpers import solve
        print(__name__, __package__, sys.argv, sys.path[0], __spec__.name)
        print(solve(4))
        """,
    )
    expected = plain(store, "-m", "pipeline.main", "--x", "1")
    assert expected.returncode == 0, expected.stderr
    got = tracked(
        store, "-q", "-e", "module", "--track", "pipeline.helpers:solve",
        "-m", "pipeline.main", "--x", "1",
    )  # fmt: skip
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == expected.stdout
    assert got.stderr == expected.stderr
    (child,) = [r for r in store.runs("module") if r.info.run_name == "solve"]
    assert child.data.metrics == {"cost": 8.0}
    assert child.data.params == {"n": "4"}


def test_an_exception_prints_the_same_traceback_and_fails_the_run(store):
    """An uncaught exception, also raised inside a tracked call: same stderr, status 1."""
    script = write(
        store.root,
        "boom.py",
        """
        def solve(x):
            return 1 / x

        def main():
            print(solve(2))
            print(solve(0))

        main()
        """,
    )
    expected = plain(store, str(script))
    assert expected.returncode == 1
    got = tracked(store, "-q", "-e", "boom", "--track", "solve", "--", str(script))
    assert got.returncode == 1
    assert got.stdout == expected.stdout
    assert got.stderr == expected.stderr
    assert b"ZeroDivisionError" in got.stderr
    runs = store.runs("boom")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["emstrack.exception.type"] == "ZeroDivisionError"
    statuses = sorted(r.info.status for r in runs if r.info.run_name == "solve")
    assert statuses == ["FAILED", "FINISHED"]


@pytest.mark.slow
def test_settings_come_from_pyproject_and_the_command_line_overrides(store, template_database):
    """[tool.emstrack.run] tracks and names returns; -e on the command line wins."""
    write(
        store.root,
        "pyproject.toml",
        """
        [tool.emstrack.run]
        experiment = "from-file"
        track = ["solve"]
        returns = { solve = "cost,_" }
        quiet = true
        """,
    )
    script = write(store.root, "job.py", "def solve():\n    return (1.5, object())\nsolve()\n")
    got = tracked(store, "--", str(script))
    assert got.returncode == 0, got.stderr.decode()
    assert got.stderr == b""  # quiet = true
    (child,) = [r for r in store.runs("from-file") if r.info.run_name == "solve"]
    assert child.data.metrics == {"cost": 1.5}
    other = store.root / "other.db"
    shutil.copyfile(template_database, other)
    again = tracked(
        store, "-e", "from-cli", "--no-quiet", "--tracking-uri", f"sqlite:///{other}",
        "--", str(script),
    )  # fmt: skip
    assert again.returncode == 0
    assert b"emstrack: run " in again.stderr
    assert store.runs("from-cli") == []
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{other}")
    experiment = client.get_experiment_by_name("from-cli")
    assert experiment is not None
    names = [r.info.run_name for r in client.search_runs([experiment.experiment_id])]
    assert sorted(names) == ["job.py", "solve"]


def test_emstrack_toml_is_read_and_a_bad_key_is_one_error_line(store):
    """emstrack.toml [run]; an unknown key or a wrong type names the key, exit 1, no run."""
    script = write(store.root, "job.py", "print('ran')\n")
    write(store.root, "emstrack.toml", '[run]\ntrack = ["solve"]\ncaptur_output = true\n')
    got = tracked(store, "--", str(script))
    assert got.returncode == 1
    assert got.stdout == b""
    lines = got.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: emstrack.toml [run]: unknown key 'captur_output'")
    write(store.root, "emstrack.toml", "[run]\ntrack = 3\n")
    got = tracked(store, "--", str(script))
    assert got.returncode == 1
    assert "'track' must be a list of strings" in got.stderr.decode()
    assert store.runs() == []


def test_bad_track_specs_stop_before_the_script_runs(store):
    """A malformed spec or --returns for an untracked function: one Error line, exit 1."""
    script = write(store.root, "job.py", "print('ran')\n")
    for options, message in (
        (["--track", "json:1x"], "'1x' is not a function name"),
        (["--track", "missing.py:f"], "no file at"),
        (["--track", "f", "--returns", "g=a"], "'g' is not among the --track specs"),
        (["--returns", "nonsense"], "must look like 'function=name0,name1'"),
    ):
        got = tracked(store, *options, "--", str(script))
        assert got.returncode == 1, options
        assert got.stdout == b""
        (line,) = got.stderr.decode().strip().splitlines()
        assert line.startswith("Error: "), line
        assert message in line, line


@pytest.mark.slow
def test_capture_output_and_artifacts_are_logged_while_printing(store):
    """--capture-output keeps both streams (subprocess output too); --artifacts logs folders."""
    script = write(
        store.root,
        "job.py",
        """
        import subprocess, sys
        from pathlib import Path
        print("to stdout")
        print("to stderr", file=sys.stderr)
        subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)
        out = Path("results/output")
        out.mkdir(parents=True, exist_ok=True)
        (out / "plan.csv").write_text("hour,kwh\\n0,1.5\\n")
        """,
    )
    expected = plain(store, str(script))
    got = tracked(
        store, "-q", "-e", "captured", "--capture-output", "--artifacts", "results/output",
        "--artifacts", "results/visualizations", "--", str(script),
    )  # fmt: skip
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == expected.stdout
    assert got.stderr == expected.stderr
    (parent,) = store.runs("captured")
    root = store.artifact_root(parent.info.run_id)
    assert (root / "output" / "stdout.txt").read_bytes() == expected.stdout
    assert (root / "output" / "stderr.txt").read_bytes() == expected.stderr
    assert b"from a child process" in expected.stdout
    assert (root / "results" / "output" / "plan.csv").read_text() == "hour,kwh\n0,1.5\n"
    assert not (root / "results" / "visualizations").exists()
