"""Exceptions of :mod:`emstrack.analysis`, importable without pandas or MLflow.

They live here so that the private readers can raise them; :mod:`emstrack.analysis` re-exports
them, and that is where users import them from::

    EmstrackError
    └── AnalysisError
        ├── StoreError                     - the store could not be read
        ├── InvalidFilterError (ValueError) - MLflow rejected the filter string
        ├── NoRunsError                    - no run to compare
        ├── DirectionUnknownError (ValueError) - cannot tell whether higher is better
        └── NotFoundError (LookupError)
            ├── ExperimentNotFoundError
            ├── MetricNotFoundError
            ├── KeyNotFoundError           - a ``by`` key that is no param or tag
            └── RunNotFoundError
"""

from __future__ import annotations

from collections.abc import Iterable

from .._errors import EmstrackError

_MAX_LISTED = 20


def listing(names: Iterable[str], what: str) -> str:
    """``"known <what>: a, b, c"`` (at most 20 names), or ``"no <what> at all"``."""
    ordered = sorted(set(names))
    if not ordered:
        return f"no {what} at all"
    shown = ", ".join(repr(name) for name in ordered[:_MAX_LISTED])
    more = f" and {len(ordered) - _MAX_LISTED} more" if len(ordered) > _MAX_LISTED else ""
    return f"known {what}: {shown}{more}"


class AnalysisError(EmstrackError):
    """Base class of the errors raised while reading runs back for analysis."""


class StoreError(AnalysisError):
    """The tracking store does not exist, is not an MLflow store, or did not answer."""


class InvalidFilterError(AnalysisError, ValueError):
    """The filter string is not valid MLflow search syntax (the message is MLflow's)."""


class NoRunsError(AnalysisError):
    """No run matches: the experiments are empty, or the filter or status excluded every run."""


class DirectionUnknownError(AnalysisError, ValueError):
    """The metric's name does not say whether higher or lower values are better."""


class NotFoundError(AnalysisError, LookupError):
    """Something named in the call does not exist in the store."""


class ExperimentNotFoundError(NotFoundError):
    """An experiment name that is not an active experiment of the store."""


class MetricNotFoundError(NotFoundError):
    """A metric that no run of the experiments (or of the given runs) logged."""


class KeyNotFoundError(NotFoundError):
    """A grouping or labelling key that is neither a param nor a tag of the runs."""


class RunNotFoundError(NotFoundError):
    """A run id that is not an active run of the store."""


for _cls in (
    AnalysisError,
    StoreError,
    InvalidFilterError,
    NoRunsError,
    DirectionUnknownError,
    NotFoundError,
    ExperimentNotFoundError,
    MetricNotFoundError,
    KeyNotFoundError,
    RunNotFoundError,
):
    _cls.__module__ = "emstrack.analysis"
