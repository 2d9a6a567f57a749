"""Noisy neighbours: CPU-bound processes and one process writing and fsync-ing to a disk.

Used to check that the concurrency suite holds on a loaded machine ("busy is not down")::

    python benchmarks/load_neighbours.py --cpu 2 --disk /tmp -- \\
        python -m pytest tests/system/test_concurrency.py -q -p no:cacheprovider

starts the neighbours, runs the command given after ``--`` (``--repeat`` times, stopping at the
first failure), stops the neighbours and prints what they did (CPU loops, MB written and
fsyncs per second) next to each run's outcome and duration.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing.synchronize import Event


def burn_cpu(stop: Event, counter: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    """Pure-Python arithmetic until told to stop."""
    loops = 0
    while not stop.is_set():
        total = 0
        for value in range(100_000):
            total += value * value
        loops += 1
    counter.value = loops  # type: ignore[attr-defined]


def write_and_fsync(
    stop: Event,
    folder: str,
    written: multiprocessing.Value,
    syncs: multiprocessing.Value,  # type: ignore[valid-type]
) -> None:
    """Append 256 KiB blocks to a file on ``folder``'s disk, fsync after each, rewind at 64 MB."""
    block = os.urandom(256 * 1024)
    path = os.path.join(folder, "emstrack-load.bin")
    total = count = 0
    with open(path, "wb") as handle:
        while not stop.is_set():
            handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
            total += len(block)
            count += 1
            if handle.tell() >= 64 * 1024 * 1024:
                handle.seek(0)
    os.unlink(path)
    written.value = total  # type: ignore[attr-defined]
    syncs.value = count  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=2, help="CPU-bound processes")
    parser.add_argument("--disk", default=tempfile.gettempdir(), help="folder on the disk to load")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the command")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    arguments = parser.parse_args()
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        parser.error("give the command to run after --")

    stop = multiprocessing.Event()
    loops = [multiprocessing.Value("q", 0) for _ in range(arguments.cpu)]
    written, syncs = multiprocessing.Value("q", 0), multiprocessing.Value("q", 0)
    neighbours = [
        multiprocessing.Process(target=burn_cpu, args=(stop, counter)) for counter in loops
    ]
    neighbours.append(
        multiprocessing.Process(target=write_and_fsync, args=(stop, arguments.disk, written, syncs))
    )
    for process in neighbours:
        process.start()
    began = time.monotonic()
    failures = 0
    try:
        for attempt in range(1, arguments.repeat + 1):
            start = time.monotonic()
            result = subprocess.run(command, check=False)
            took = time.monotonic() - start
            outcome = "passed" if result.returncode == 0 else f"FAILED ({result.returncode})"
            print(f"run {attempt}: {outcome} in {took:.1f} s, load {os.getloadavg()[0]:.1f}")
            if result.returncode != 0:
                failures += 1
                break
    finally:
        stop.set()
        for process in neighbours:
            process.join(timeout=60)
    elapsed = time.monotonic() - began
    print(
        f"neighbours over {elapsed:.0f} s: {arguments.cpu} CPU burners "
        f"({', '.join(str(counter.value) for counter in loops)} loops of 100k), "
        f"disk writer {written.value / 1e6 / elapsed:.1f} MB/s, "
        f"{syncs.value / elapsed:.1f} fsync/s on {arguments.disk}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
