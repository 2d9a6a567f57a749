"""The public API type-checks from the caller's side (mypy --strict), and rejects misuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# mypy reads pandas' and MLflow's sources here: about a minute of CPU, so the slow suite.
pytestmark = pytest.mark.slow


def _mypy(*targets: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--warn-unused-ignores",
            "--no-error-summary",
            "--cache-dir",
            str(cache),
            "--config-file",
            "",  # the caller's view: not the project's own settings
            *map(str, targets),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_public_api_type_checks_and_misuse_is_rejected(tmp_path: Path) -> None:
    # public_api.py must pass; bad_calls.py carries ``type: ignore[code]`` on each misuse, and
    # --warn-unused-ignores fails any that mypy did not need, i.e. a misuse it let through.
    result = _mypy(HERE / "public_api.py", HERE / "bad_calls.py", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_accepted_misuse_would_be_noticed(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("import emstrack\n\nemstrack.tracked_run('fine')  # type: ignore[arg-type]\n")
    result = _mypy(sneaky, cache=tmp_path / "cache")
    assert result.returncode == 1
    assert 'Unused "type: ignore" comment' in result.stdout
