"""What attaching tracking from outside costs, side by side.

* ``instrument()`` + ``uninstrument()`` of one function with MLflow, pandas and PuLP loaded
  (both scan every loaded module's globals for references to rebind);
* running a script's top-level code statement by statement (as ``emstrack run`` does, so a
  bare ``--track`` name is wrapped before it is called) against one ``exec`` of the whole;
* wall time of the shipped example, ``python plan_battery.py`` against
  ``emstrack run --quiet --track optimize_day -- plan_battery.py``, on a migrated SQLite store.

Run: ``python benchmarks/bench_instrument.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "scripts" / "plan_battery.py"


def bench_patching(repeat: int) -> tuple[float, int]:
    import mlflow  # noqa: F401  (a realistic sys.modules)
    import pandas  # noqa: F401
    import pulp  # noqa: F401

    import emstrack

    folder = Path(tempfile.mkdtemp())
    (folder / "bench_target_mod.py").write_text("def f(x):\n    return x\n")
    sys.path.insert(0, str(folder))
    import bench_target_mod  # noqa: F401

    def cycle() -> None:
        emstrack.instrument("bench_target_mod:f")
        emstrack.uninstrument("bench_target_mod:f")

    times = timeit.repeat(cycle, number=20, repeat=repeat)
    shutil.rmtree(folder, ignore_errors=True)
    return min(times) / 20, len(sys.modules)


def bench_statements(repeat: int, statements: int = 2000) -> tuple[float, float]:
    from emstrack._instrument import program

    folder = Path(tempfile.mkdtemp())
    script = folder / "many.py"
    lines = [f"x{i} = {i} * 2\n" if i % 2 else f"def f{i}(a):\n    return a + {i}\n" for i in
             range(statements)]  # fmt: skip
    script.write_text("".join(lines))

    def whole() -> None:
        code = compile(script.read_bytes(), str(script), "exec")
        exec(code, {"__name__": "__main__"})

    def by_statement() -> None:
        prepared = program.script(str(script), [])
        prepared.execute(lambda: None)

    plain = min(timeit.repeat(whole, number=5, repeat=repeat)) / 5
    stepwise = min(timeit.repeat(by_statement, number=5, repeat=repeat)) / 5
    shutil.rmtree(folder, ignore_errors=True)
    return plain, stepwise


def bench_wall(repeat: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp())
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    env["EMSTRACK_SPOOL_DIR"] = str(folder / "spool")
    subprocess.run(
        [sys.executable, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    emstrack = shutil.which("emstrack") or "emstrack"
    args = ["--n_days", "2"]
    plain_cmd = [sys.executable, str(EXAMPLE), *args]
    tracked_cmd = [emstrack, "run", "--quiet", "--track", "optimize_day", "--", str(EXAMPLE), *args]
    plain, tracked = [], []
    for _ in range(repeat):  # interleaved, so machine noise hits both alike
        for command, into in ((plain_cmd, plain), (tracked_cmd, tracked)):
            start = time.perf_counter()
            subprocess.run(command, env=env, cwd=folder, check=True, capture_output=True)
            into.append(time.perf_counter() - start)
    shutil.rmtree(folder, ignore_errors=True)
    return statistics.median(plain), statistics.median(tracked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    cycle, modules = bench_patching(options.repeat)
    print(f"instrument + uninstrument, {modules} modules loaded: {cycle * 1e3:8.2f} ms")
    plain, stepwise = bench_statements(options.repeat)
    print(
        f"2,000 top-level statements, compile + exec: whole {plain * 1e3:7.2f} ms, "
        f"statement by statement {stepwise * 1e3:7.2f} ms"
    )
    bare, tracked = bench_wall(options.repeat)
    print(
        f"plan_battery.py --n_days 2: python {bare:5.2f} s, emstrack run {tracked:5.2f} s "
        f"(+{tracked - bare:4.2f} s: MLflow import, parent run, 2 child runs)"
    )


if __name__ == "__main__":
    main()
