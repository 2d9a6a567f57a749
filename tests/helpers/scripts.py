"""Run a program with ``python`` and with ``emstrack run`` against a test's store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def emstrack_command() -> list[str]:
    found = shutil.which("emstrack", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "emstrack"]


DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def with_default_sigint(command: list[str]) -> list[str]:
    """``command`` started with Ctrl-C's default action, whatever this process inherited.

    A process started in the background by a non-interactive shell (``.ci/run &``, ``nohup``)
    ignores SIGINT, and its children inherit that across ``exec``; neither ``python`` nor
    ``emstrack run`` then sees a Ctrl-C. ``execv`` keeps the default restored here.
    """
    executable = shutil.which(command[0]) or command[0]
    return [sys.executable, "-c", DEFAULT_SIGINT, executable, *command[1:]]


def environment(store) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.uri,
        "EMSTRACK_SPOOL_DIR": str(store.spool),
        "EMSTRACK_STRICT": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def plain(store, *command: str, **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, *command],
        cwd=store.root,
        env=environment(store),
        capture_output=True,
        timeout=300,
        **kwargs,
    )


def tracked(store, *command: str, **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*emstrack_command(), "run", *command],
        cwd=store.root,
        env=environment(store),
        capture_output=True,
        timeout=300,
        **kwargs,
    )
