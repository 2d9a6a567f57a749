"""Baseline files: one small JSON file per test, in a folder beside the test file.

Layout (keys sorted, two-space indent, so a change reads well in a code review)::

    tests/emstrack_baselines/test_battery/test_cost.json
    {
      "checks": {
        "default": {"metrics": {"solver_status": "Optimal", "total_cost": -3.5352596}}
      },
      "emstrack_baseline": 1,
      "test": "tests/test_battery.py::test_cost"
    }

A check's name (``check(..., name="summer")``) is its key under ``checks``; a MIP gap reported
for its solves is kept as ``gap_rel``. NaN and infinities, which JSON lacks, are written as
``{"float": "nan"}``. Files are written under a temporary name and renamed into place, so
parallel workers (pytest-xdist) never see half a file, and each test owns its file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from ._flatten import Scalar
from ._options import BASELINE_FOLDER
from ._table import value_text

FORMAT = 1
DEFAULT_CHECK = "default"
_UNSAFE = re.compile(r'[\\/:*?"<>|\s]+')
_MAX_NAME = 120


@dataclass
class Check:
    """One check's baseline: its metrics, and the MIP gap its solves reported."""

    metrics: dict[str, Scalar]
    gap_rel: float | None = None


@dataclass
class BaselineFile:
    """The checks of one test."""

    test: str
    checks: dict[str, Check] = field(default_factory=dict)


def path_for(
    test_file: Path, nodeid: str, *, rootdir: Path, baseline_dir: Path | None = None
) -> Path:
    """Where the baseline of test ``nodeid`` (defined in ``test_file``) lives."""
    name = file_name(nodeid)
    if baseline_dir is None:
        return test_file.parent / BASELINE_FOLDER / test_file.stem / name
    try:
        module = test_file.with_suffix("").resolve().relative_to(rootdir.resolve())
    except ValueError:
        module = Path(test_file.stem)
    return baseline_dir / module / name


def file_name(nodeid: str) -> str:
    """``test_cost.json`` for ``tests/test_x.py::test_cost``; classes and params kept."""
    parts = nodeid.split("::")[1:] or [nodeid]
    name = _UNSAFE.sub("_", ".".join(parts))
    if len(name) > _MAX_NAME or name.startswith("."):
        digest = hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:10]
        name = f"{name.lstrip('.')[:_MAX_NAME]}-{digest}"
    return name + ".json"


def read(path: Path) -> BaselineFile | None:
    """The baseline at ``path``, or ``None`` if there is no file.

    Raises:
        ConfigurationError: The file is not a baseline file (the message names it and why).

    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("emstrack_baseline") != FORMAT:
            raise ValueError(f"not an emstrack baseline (format {FORMAT})")
        checks = {
            str(name): Check(
                {str(k): _decode(k, v) for k, v in body["metrics"].items()},
                None if body.get("gap_rel") is None else float(body["gap_rel"]),
            )
            for name, body in document["checks"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigurationError(f"baseline file {path} cannot be read: {error}") from None
    return BaselineFile(str(document.get("test", "")), checks)


def write(path: Path, baseline: BaselineFile) -> None:
    """Write ``baseline`` to ``path`` atomically (temporary file, then rename)."""
    document = {
        "emstrack_baseline": FORMAT,
        "test": baseline.test,
        "checks": {
            name: {
                "metrics": {k: _encode(v) for k, v in check.metrics.items()},
                **({} if check.gap_rel is None else {"gap_rel": check.gap_rel}),
            }
            for name, check in sorted(baseline.checks.items())
        },
    }
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def changes(old: BaselineFile | None, new: BaselineFile) -> str:
    """What writing ``new`` over ``old`` changed, in one line."""
    if old is None:
        count = sum(len(check.metrics) for check in new.checks.values())
        return f"created ({count} metric{'s' if count != 1 else ''})"
    parts: list[str] = []
    for name in sorted(set(old.checks) | set(new.checks)):
        label = "" if name == DEFAULT_CHECK else f"[{name}] "
        before, after = old.checks.get(name), new.checks.get(name)
        if before is None:
            parts.append(f"{label}new check ({len(after.metrics) if after else 0} metrics)")
            continue
        if after is None:
            parts.append(f"{label}check removed")
            continue
        parts.extend(label + text for text in _metric_changes(before.metrics, after.metrics))
    return "; ".join(parts) if parts else "unchanged"


def _metric_changes(before: Mapping[str, Scalar], after: Mapping[str, Scalar]) -> list[str]:
    out = []
    for key in [*after, *(k for k in before if k not in after)]:
        if key not in before:
            out.append(f"{key} new ({value_text(after[key])})")
        elif key not in after:
            out.append(f"{key} removed (was {value_text(before[key])})")
        elif not _same(before[key], after[key]):
            out.append(f"{key} {value_text(before[key])} -> {value_text(after[key])}")
    return out


def _same(a: Scalar, b: Scalar) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _encode(value: Scalar) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": str(value)}
    return value


def _decode(key: object, value: Any) -> Scalar:
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    if isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"metric {key!r} has a value of type {type(value).__name__}")
