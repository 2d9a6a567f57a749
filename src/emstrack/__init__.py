"""MLflow experiment tracking for energy-management-system optimization pipelines.

``import emstrack`` is cheap: MLflow, pandas, pydantic and wrapt load on first use of the name
that needs them.
"""

import importlib as _importlib
import typing as _typing

from ._version import __version__

if _typing.TYPE_CHECKING:
    from ._capture.pulp import SolverMetrics, solver_metrics
    from ._delivery.replay import PendingRun, SyncReport, flush, pending, sync
    from ._errors import (
        ConfigurationError,
        EmstrackError,
        EmstrackWarning,
        StoreUnavailableError,
        TrackingError,
        WorkerStartError,
    )
    from ._instrument.api import instrument, uninstrument
    from ._reproduce.errors import RerunError
    from ._reproduce.rerun import RerunResult, rerun
    from ._sweep import SweepReport, sweep
    from ._tracking.decorator import tracked_optimization
    from ._tracking.run import Run, active_run, tracked_run

__all__ = [
    "ConfigurationError",
    "EmstrackError",
    "EmstrackWarning",
    "PendingRun",
    "RerunError",
    "RerunResult",
    "Run",
    "SolverMetrics",
    "StoreUnavailableError",
    "SweepReport",
    "SyncReport",
    "TrackingError",
    "WorkerStartError",
    "__version__",
    "active_run",
    "flush",
    "instrument",
    "pending",
    "rerun",
    "solver_metrics",
    "sweep",
    "sync",
    "tracked_optimization",
    "tracked_run",
    "uninstrument",
]

_LAZY = {
    "ConfigurationError": "._errors",
    "EmstrackError": "._errors",
    "EmstrackWarning": "._errors",
    "PendingRun": "._delivery.replay",
    "RerunError": "._reproduce.errors",
    "RerunResult": "._reproduce.rerun",
    "Run": "._tracking.run",
    "SolverMetrics": "._capture.pulp",
    "StoreUnavailableError": "._errors",
    "SweepReport": "._sweep",
    "SyncReport": "._delivery.replay",
    "TrackingError": "._errors",
    "WorkerStartError": "._errors",
    "active_run": "._tracking.run",
    "flush": "._delivery.replay",
    "instrument": "._instrument.api",
    "pending": "._delivery.replay",
    "rerun": "._reproduce.rerun",
    "solver_metrics": "._capture.pulp",
    "sweep": "._sweep",
    "sync": "._delivery.replay",
    "tracked_optimization": "._tracking.decorator",
    "tracked_run": "._tracking.run",
    "uninstrument": "._instrument.api",
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
