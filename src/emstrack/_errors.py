"""Exceptions and warnings raised by emstrack.

Tracking never raises into a pipeline: a failure to log is an :class:`EmstrackWarning`, unless
``EMSTRACK_STRICT=1`` asks for exceptions instead. Mistakes in how tracking is *configured* (an
unknown field, a schema that cannot bind to the function's signature) are errors at decoration
time, because they are found before any pipeline runs.

Exceptions::

    Exception
    └── EmstrackError
        ├── ConfigurationError (also ValueError)  - decorator or run options that cannot work
        ├── WorkerStartError                      - a sweep's worker process could not start
        └── TrackingError                         - a write failed (raised only when strict)
            └── StoreUnavailableError             - the tracking store did not answer

Warnings::

    UserWarning
    └── EmstrackWarning                           - one per run: what could not be logged, and why
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "EmstrackError",
    "EmstrackWarning",
    "StoreUnavailableError",
    "TrackingError",
    "WorkerStartError",
    "describe",
]


class EmstrackError(Exception):
    """Base class of every exception emstrack raises."""


class ConfigurationError(EmstrackError, ValueError):
    """Tracking was configured in a way that cannot work; raised when the decorator is applied."""


class WorkerStartError(EmstrackError):
    """A sweep's worker process (or its Dask ``LocalCluster``) could not start; the sweep stopped.

    The scenarios it was handed did not run and are not marked FAILED: the next sweep runs them.
    """


class TrackingError(EmstrackError):
    """Writing a run failed. Raised only in strict mode; otherwise an :class:`EmstrackWarning`."""


class StoreUnavailableError(TrackingError):
    """The tracking store could not be reached; the run stays in the spool for ``emstrack sync``."""


class EmstrackWarning(UserWarning):
    """Something about a run could not be logged as asked; the message names what and why."""


def describe(
    error: BaseException, *, with_type: bool = True, whole: bool = False, limit: int | None = 300
) -> str:
    """``error`` as one line, for a warning, a tag, an error message or an ``Error:`` line.

    Args:
        error: The exception.
        with_type: Put the exception's class name first (``"OSError: ..."``).
        whole: Join every line of the message (a message listing what exists stays whole);
            by default only its first line is used (drivers append SQL and links below it).
        limit: Cut the text at this many characters (``None``: never).

    An exception whose ``__str__`` itself fails is described by its class name alone.

    """
    try:
        message = str(error)
    except Exception:
        message = ""
    lines = message.strip().splitlines() or [""]
    text = " ".join(" ".join(lines).split()) if whole else lines[0].strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    name = type(error).__name__
    if not with_type:
        return text or name
    return f"{name}: {text}" if text else name
