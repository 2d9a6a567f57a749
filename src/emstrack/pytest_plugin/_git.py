"""The commit and branch of the code under test, when it is a git checkout."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.cache
def git_tags(root: Path) -> dict[str, str]:
    """Tags ``git.commit``/``git.branch`` (and MLflow's ``mlflow.source.git.*``) of ``root``.

    Empty when git or the repository is not there.
    """
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {}
    tags = {"git.commit": commit, "mlflow.source.git.commit": commit}
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["git.branch"] = branch
        tags["mlflow.source.git.branch"] = branch
    return tags


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = result.stdout.strip()
    return text if result.returncode == 0 and text else None
