"""The session's temporary store, for ``emstrack_run`` without ``--emstrack``.

A new SQLite store runs MLflow's schema migrations, which take seconds. An empty, migrated
database is therefore made once per MLflow version in the user's cache folder
(``$XDG_CACHE_HOME/emstrack``, else ``~/.cache/emstrack``; it holds no runs) and copied into a
temporary folder for each session; the folder is removed when the session ends.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path


def create() -> Path:
    """A new temporary folder holding an empty store ``mlflow.db``."""
    folder = Path(tempfile.mkdtemp(prefix="emstrack-pytest-"))
    template = _template()
    if template is not None:
        shutil.copyfile(template, folder / "mlflow.db")
    return folder


def _template() -> Path | None:
    try:
        version = importlib.metadata.version("mlflow")
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache = Path(base) / "emstrack"
        path = cache / f"empty-store-mlflow-{version}.db"
        if path.is_file():
            return path
        from filelock import FileLock

        cache.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=300):
            if not path.is_file():
                _migrate(path)
        return path
    except Exception:  # no cache folder: the session's store migrates itself
        return None


def _migrate(path: Path) -> None:
    from mlflow.tracking import MlflowClient

    descriptor, temporary = tempfile.mkstemp(suffix=".db", dir=path.parent)
    os.close(descriptor)
    os.unlink(temporary)
    try:
        MlflowClient(tracking_uri=f"sqlite:///{temporary}").search_experiments()
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
