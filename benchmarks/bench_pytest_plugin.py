"""Start-up cost of emstrack's pytest plugin when it is installed but unused.

A one-test suite (``def test_one(): pass``) is run with ``python -m pytest`` as it is (the
plugin loaded through its ``pytest11`` entry point) and with ``-p no:emstrack`` (the plugin
blocked), interleaved, and the medians are compared: wall time, and the CPU time (user + sys)
of the pytest process, which a busy machine disturbs less. Also measured: the import time of
``emstrack.pytest_plugin`` alone in a fresh interpreter (``-X importtime``). Bytecode is cached
(in a private folder), as in an installed package.

    python benchmarks/bench_pytest_plugin.py --repeat 21

Goal: the difference is at most 20 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(folder: Path, extra: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one pytest run."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_one.py"],
        cwd=folder,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def plugin_import_ms(env: dict[str, str]) -> float:
    """Cumulative import time of emstrack.pytest_plugin (pytest already imported), in ms."""
    code = "import pytest; import emstrack.pytest_plugin"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*emstrack\.pytest_plugin$", line)
        if match:
            return int(match.group(1)) / 1000
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="runs of each variant")
    args = parser.parse_args()
    variants = {"plugin installed, unused": [], "-p no:emstrack": ["-p", "no:emstrack"]}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "test_one.py").write_text("def test_one():\n    pass\n")
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        for extra in variants.values():  # warm-up: bytecode caches, page cache
            run_once(folder, extra, env)
        for _ in range(args.repeat):
            for name, extra in variants.items():
                seconds, cpu_seconds = run_once(folder, extra, env)
                wall[name].append(seconds * 1000)
                cpu[name].append(cpu_seconds * 1000)
        imports = [plugin_import_ms(env) for _ in range(7)]
    print(f"pytest start-up, 1-test suite, {args.repeat} interleaved runs of each variant")
    print(
        f"  {'variant':<26} {'wall median':>12} {'wall min':>9} {'CPU median':>11} {'CPU min':>8}"
    )
    for name in variants:
        print(
            f"  {name:<26} {statistics.median(wall[name]):9.1f} ms {min(wall[name]):6.1f} ms"
            f" {statistics.median(cpu[name]):8.1f} ms {min(cpu[name]):5.1f} ms"
        )
    on, off = variants
    print(
        f"  {'difference':<26} {statistics.median(wall[on]) - statistics.median(wall[off]):9.1f}"
        f" ms {min(wall[on]) - min(wall[off]):6.1f} ms"
        f" {statistics.median(cpu[on]) - statistics.median(cpu[off]):8.1f} ms"
        f" {min(cpu[on]) - min(cpu[off]):5.1f} ms   (goal <= 20 ms)"
    )
    print(
        "import emstrack.pytest_plugin alone (-X importtime, pytest already imported): "
        f"median {statistics.median(imports):.2f} ms, min {min(imports):.2f} ms of 7"
    )


if __name__ == "__main__":
    main()
