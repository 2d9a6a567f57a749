"""Keep MLflow's own log lines out of the user's output while emstrack talks to a store.

A failed write in MLflow's SQL store logs an ERROR with a full traceback (about 90 lines for a
read-only database) before raising; emstrack catches that exception and names its cause in one
:class:`~emstrack.EmstrackWarning`, so the log lines are noise. Inside :func:`quiet` (and inside
the store calls of :mod:`emstrack._delivery.store`) records of the ``mlflow``, ``alembic`` and
``sqlalchemy`` loggers below CRITICAL are dropped; the filter looks at a context variable, so
MLflow calls made by the user, in any thread, log as usual.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from . import store as _store

_quiet: ContextVar[bool] = ContextVar("emstrack_quiet_mlflow", default=False)
_NOISY = ("mlflow", "alembic", "sqlalchemy")
_lock = threading.Lock()
_filtered: set[int] = set()
_known_loggers = -1


def _drop(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.CRITICAL or not record.name.startswith(_NOISY):
        return True
    return not (_quiet.get() or _store.in_store_call())


def _install() -> None:
    """Put the filter on the noisy loggers and on every handler their records reach."""
    global _known_loggers
    count = len(logging.Logger.manager.loggerDict) + len(logging.getLogger().handlers)
    if count == _known_loggers:
        return
    _known_loggers = count
    targets: list[logging.Filterer] = []
    for name in _NOISY:
        logger = logging.getLogger(name)
        targets.append(logger)
        targets.extend(logger.handlers)
    targets.extend(logging.getLogger().handlers)
    for name, known in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(known, logging.Logger) and name.startswith(_NOISY):
            targets.append(known)
    with _lock:
        for target in targets:
            if id(target) not in _filtered:
                target.addFilter(_drop)
                _filtered.add(id(target))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """MLflow's log records below CRITICAL are dropped in this context."""
    import mlflow  # noqa: F401  (configures MLflow's logger and its handler)

    _install()
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)
