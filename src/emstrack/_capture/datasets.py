"""Data lineage: the household data a run read, recorded as MLflow dataset inputs.

Inside a tracked run every ``emstrack.ems`` household load (``load_building``, what the
pipelines call) is captured without touching the pipeline: the function is replaced, in every
``emstrack.ems`` module that bound it, while at least one run is open (reference-counted, under
a lock) and restored when the last one ends, exactly like PuLP solve capture. The loaded
building's hourly frame is recorded once per run as a dataset input:

* **name** - ``"<building> (<source>)"``, e.g. ``"DE_KN_residential1 (bundled sample)"``;
* **source** - ``"bundled sample: emstrack/ems/data/households.csv.gz (emstrack <version>)"``,
  the parquet/CSV path, ``"user DataFrame"`` or ``"user HouseholdData"`` (one loaded before);
* **digest** - :func:`~emstrack._capture.digest.frame_digest` over the full frame, index
  included. MLflow keeps at most 36 characters of a digest, so the dataset's ``digest`` field
  holds its first 32 hex digits (128 bits); the profile holds all 64 (``sha256``);
* **profile** - ``num_rows``, ``num_elements``, ``time_start``, ``time_end``, ``sha256``;
  **schema** - the columns in MLflow's ``mlflow_colspec`` form;
* **context** (input tag ``mlflow.data.context``) - ``training`` for a load made inside
  ``learn_device_usage``, ``training,optimization`` inside ``learn_and_schedule`` (one load
  serves both halves), otherwise ``optimization``.

Records travel as ``dataset`` events through the spool like everything else, so an outage does
not lose them and a replay does not duplicate them (MLflow keeps one input per run and dataset).
"""

from __future__ import annotations

import contextvars
import functools
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .._tracking import hooks
from .._tracking.hooks import RunHandle
from .._tracking.run import active_run
from .dataset_event import (
    BUNDLED_SAMPLE,
    USER_DATAFRAME,
    USER_HOUSEHOLD_DATA,
    dataset_event,
)

__all__ = ["dataset_event"]


# --------------------------------------------------------------------------- capture


@dataclass(slots=True)
class _Lineage:
    seen: set[tuple[str, str]] = field(default_factory=set)
    """(dataset name, sha256) recorded in this run."""
    digests: set[str] = field(default_factory=set)
    """Every sha256 recorded in this run: an already loaded ``HouseholdData`` handed on."""


_patch_lock = threading.Lock()
_open_runs = 0
_original: Callable[..., Any] | None = None
_patched_in: list[tuple[Any, str]] = []
_inside_loader: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "emstrack_inside_household_loader", default=False
)


def _patched_load_building(building_id: str, source: Any = None) -> Any:
    original = _original
    if original is None:  # restored meanwhile; a module kept the patched name
        from emstrack.ems import _data

        original = _data.load_building
    if _inside_loader.get():
        return original(building_id, source)
    token = _inside_loader.set(True)
    try:
        household = original(building_id, source)
    finally:
        _inside_loader.reset(token)
    _observe(household, source, sys._getframe(1))
    return household


def _observe(household: Any, source: Any, caller: FrameType | None) -> None:
    """Record a load into the run open in this context, if the hook follows it."""
    run = active_run()
    lineage = run.hook_state(HOOK) if run is not None else None
    if run is None or not isinstance(lineage, _Lineage):
        return
    try:
        _record(run, lineage, household, source, caller)
    except Exception as error:
        from .._errors import describe

        run.record_problem(f"recording the household data failed: {describe(error)}")


def _record(run: RunHandle, lineage: _Lineage, household: Any, source: Any, caller: Any) -> None:
    frame = household.hourly
    full = _digest(frame, household.building_id, source)
    label = _source_label(source)
    name = f"{household.building_id} ({_short(label)})"
    if (name, full) in lineage.seen or (label == USER_HOUSEHOLD_DATA and full in lineage.digests):
        return
    lineage.seen.add((name, full))
    lineage.digests.add(full)
    run.log_dataset(frame, name, source=label, context=_context(caller), digest=full)


_MAX_REMEMBERED = 256
_remembered: dict[tuple[str, str, int, int], str] = {}


def _digest(frame: Any, building_id: str, source: Any) -> str:
    """The frame's digest; remembered for a building loaded again from an unchanged file.

    A sweep loads the same building in every scenario: hashing its year of hourly data each
    time would cost more than the rest of the run's tracking. A file source (the bundled sample,
    a path) is identified by its path, size and modification time; a frame handed in is hashed.
    """
    from .digest import frame_digest

    key = _file_key(building_id, source)
    if key is None:
        return frame_digest(frame)
    found = _remembered.get(key)
    if found is None:
        found = frame_digest(frame)
        if len(_remembered) >= _MAX_REMEMBERED:
            _remembered.pop(next(iter(_remembered)))
        _remembered[key] = found
    return found


def _file_key(building_id: str, source: Any) -> tuple[str, str, int, int] | None:
    if source is None:
        path = _sample_path()  # resolved already
        if path is None:
            return None
    elif isinstance(source, str | Path):
        path = Path(source)
    else:
        return None
    try:
        status = path.stat()
        resolved = path if source is None else path.resolve()
    except OSError:
        return None
    return (building_id, str(resolved), status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=1)
def _sample_path() -> Path | None:
    """The bundled sample's file, resolved (``None`` when the package is not on disk)."""
    from importlib import resources

    from emstrack.ems._data import SAMPLE_FILE

    sample = resources.files("emstrack.ems").joinpath("data").joinpath(SAMPLE_FILE)
    return sample.resolve() if isinstance(sample, Path) else None


def _source_label(source: Any) -> str:
    import pandas as pd

    if source is None:
        from .._version import __version__

        return f"{BUNDLED_SAMPLE}: emstrack/ems/data/households.csv.gz (emstrack {__version__})"
    if isinstance(source, pd.DataFrame):
        return USER_DATAFRAME
    if isinstance(source, str | Path):
        return str(Path(source).resolve())
    return USER_HOUSEHOLD_DATA


def _short(label: str) -> str:
    if label.startswith(BUNDLED_SAMPLE):
        return BUNDLED_SAMPLE
    if label in {USER_DATAFRAME, USER_HOUSEHOLD_DATA}:
        return label
    return Path(label).name


def _context(frame: FrameType | None) -> str:
    from emstrack.ems import _pipelines

    contexts = {
        _pipelines.learn_device_usage.__code__: "training",
        _pipelines.learn_and_schedule.__code__: "training,optimization",
    }
    while frame is not None:
        found = contexts.get(frame.f_code)
        if found is not None:
            return found
        frame = frame.f_back
    return "optimization"


_bindings_seen: tuple[int, int, list[tuple[Any, str]]] | None = None


def _bindings() -> list[tuple[Any, str]]:
    """Every ``emstrack.ems`` module attribute bound to the original ``load_building``.

    Looked up again only when modules were imported since (a run's start must stay cheap).
    """
    global _bindings_seen
    seen = _bindings_seen
    if seen is not None and seen[0] == len(sys.modules) and seen[1] == id(_original):
        found = [(module, name) for module, name in seen[2] if vars(module).get(name) is _original]
        if len(found) == len(seen[2]):
            return found
    found = _scan_bindings()
    _bindings_seen = (len(sys.modules), id(_original), found)
    return list(found)


def _scan_bindings() -> list[tuple[Any, str]]:
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "emstrack.ems" or name.startswith("emstrack.ems.")):
            continue
        for attribute, value in list(vars(module).items()):
            if value is _original and callable(value):
                found.append((module, attribute))
    return found


class DatasetCapture:
    """The run hook that records the household data a run loads as MLflow dataset inputs.

    ``emstrack.ems``'s ``load_building`` is replaced while at least one run is open
    (reference-counted, under a lock) and restored when the last one ends; emstrack never
    imports ``emstrack.ems`` itself for this: a run opened before it is imported records nothing.
    """

    name = "household data lineage"

    def start(self, run: RunHandle) -> _Lineage | None:
        """Patch the loader for the first open run; ``None`` when ``emstrack.ems`` is not loaded."""
        global _open_runs, _original
        if "emstrack.ems._pipelines" not in sys.modules:
            return None
        from emstrack.ems import _data

        with _patch_lock:
            _open_runs += 1
            if _open_runs == 1:
                _original = _data.load_building
                _patched_in[:] = _bindings()
                for module, attribute in _patched_in:
                    setattr(module, attribute, _patched_load_building)
        return _Lineage()

    def end(self, run: RunHandle, state: _Lineage) -> None:
        """Restore the loader after the last open run."""
        global _open_runs, _original
        with _patch_lock:
            _open_runs -= 1
            if _open_runs == 0:
                for module, attribute in _patched_in:
                    if getattr(module, attribute, None) is _patched_load_building:
                        setattr(module, attribute, _original)
                _patched_in.clear()
                _original = None


def is_patched() -> bool:
    """Whether ``load_building`` is currently replaced (only while runs are open)."""
    module = sys.modules.get("emstrack.ems._data")
    return module is not None and module.load_building is _patched_load_building


HOOK = DatasetCapture()
hooks.register(HOOK)
