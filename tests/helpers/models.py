"""Helpers of the model tests: a fresh Python process, and what a direct optimization gives."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from helpers.servers import server_environment

SUBPROCESS_TIMEOUT_S = 180


def fresh_process(code: str, *, cwd: Path, tracking_uri: str, output: Path) -> Any:
    """Run ``code`` in a new interpreter (no emstrack/MLflow state); return the JSON it wrote.

    The code gets ``OUTPUT`` (a path to write its JSON result to) as a global. The process
    sees the store only through ``MLFLOW_TRACKING_URI``.
    """
    prelude = f"OUTPUT = {str(output)!r}\n"
    env = server_environment() | {"MLFLOW_TRACKING_URI": tracking_uri}
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return json.loads(output.read_text())


def assert_close(actual: float, expected: float, rel: float = 1e-9) -> None:
    """Equal to ``rel`` relative (absolute ``rel`` near zero)."""
    assert math.isfinite(actual), actual
    assert math.isclose(actual, expected, rel_tol=rel, abs_tol=rel), (actual, expected)
