"""MLflow experiment tracking for energy-management-system optimization pipelines.

``import emstrack`` is cheap: MLflow, pandas, pydantic and wrapt load on first use of the name
that needs them.
"""

import importlib as _importlib
import typing as _typing

from ._version import __version__

if _typing.TYPE_CHECKING:
    from ._decorator import tracked_optimization
    from ._errors import (
        ConfigurationError,
        EmstrackError,
        EmstrackWarning,
        StoreUnavailableError,
        TrackingError,
    )
    from ._pulp import SolverMetrics, solver_metrics
    from ._run import Run, active_run, tracked_run
    from ._sync import PendingRun, SyncReport, flush, pending, sync

__all__ = [
    "ConfigurationError",
    "EmstrackError",
    "EmstrackWarning",
    "PendingRun",
    "Run",
    "SolverMetrics",
    "StoreUnavailableError",
    "SyncReport",
    "TrackingError",
    "__version__",
    "active_run",
    "flush",
    "pending",
    "solver_metrics",
    "sync",
    "tracked_optimization",
    "tracked_run",
]

_LAZY = {
    "ConfigurationError": "._errors",
    "EmstrackError": "._errors",
    "EmstrackWarning": "._errors",
    "PendingRun": "._sync",
    "Run": "._run",
    "SolverMetrics": "._pulp",
    "StoreUnavailableError": "._errors",
    "SyncReport": "._sync",
    "TrackingError": "._errors",
    "active_run": "._run",
    "flush": "._sync",
    "pending": "._sync",
    "solver_metrics": "._pulp",
    "sync": "._sync",
    "tracked_optimization": "._decorator",
    "tracked_run": "._run",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emstrack' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
