"""Writing a frame to CSV or Parquet atomically (a temporary file renamed into place)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pandas as pd

from ._errors import AnalysisError

__all__ = ["Format", "format_for", "write_frame"]

Format = Literal["csv", "parquet"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def format_for(path: Path, format: str | None) -> Format:
    """``format`` if given, else the one the suffix of ``path`` names."""
    if format is not None:
        if format not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet', not {format!r}")
        return "csv" if format == "csv" else "parquet"
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its suffix; "
            "use .csv, .parquet or .pq, or pass format='csv' or 'parquet'"
        )
    return found


def write_frame(frame: pd.DataFrame, path: Path, format: Format) -> Path:
    """Write ``frame`` (without its index) to ``path``; readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if format == "csv":
            frame.to_csv(temporary, index=False)
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError as error:
                raise AnalysisError(
                    "writing Parquet needs pyarrow: pip install 'emstrack[parquet]'"
                ) from error
            frame.to_parquet(temporary, index=False)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
