"""``--capture-output``: copy file descriptors 1 and 2 into files while they still print.

At the file-descriptor level, so output of the script's subprocesses (a solver's log) is kept
too and ``sys.stdout``/``sys.stderr`` stay the very same objects. The one visible difference:
while capturing, fd 1 and 2 are pipes (``isatty()`` is false for them).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import IO

_CHUNK = 65536


class FdTee:
    """Duplicate everything written to ``fd`` into ``path``."""

    def __init__(self, fd: int, stream: IO[str], path: Path) -> None:
        self.fd = fd
        self.stream = stream
        self.path = path
        self.saved: int | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        with contextlib.suppress(Exception):
            self.stream.flush()
        self.saved = os.dup(self.fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, self.fd)
        os.close(write_end)
        self.thread = threading.Thread(
            target=self._pump, args=(read_end, self.saved), name=f"emstrack-tee-{self.fd}"
        )
        self.thread.daemon = True
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.saved is None:
            return
        with contextlib.suppress(Exception):
            self.stream.flush()
        os.dup2(self.saved, self.fd)  # closes the pipe's last write end held by this process
        if self.thread is not None:
            self.thread.join(timeout)  # a subprocess still holding the pipe may delay EOF
        os.close(self.saved)
        self.saved = None

    def _pump(self, read_end: int, target: int) -> None:
        forward = True
        with open(self.path, "wb") as copy, contextlib.suppress(OSError):
            while True:
                chunk = os.read(read_end, _CHUNK)
                if not chunk:
                    break
                copy.write(chunk)
                if forward:
                    forward = _write_all(target, chunk)
        os.close(read_end)


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError:
        return False
    return True


def start_capture(folder: Path) -> list[FdTee]:
    """Tee fd 1 into ``folder/stdout.txt`` and fd 2 into ``folder/stderr.txt``."""
    tees = [
        FdTee(1, sys.stdout, folder / "stdout.txt"),
        FdTee(2, sys.stderr, folder / "stderr.txt"),
    ]
    started = []
    try:
        for tee in tees:
            tee.start()
            started.append(tee)
    except OSError:
        for tee in started:
            tee.stop()
        raise
    return tees
