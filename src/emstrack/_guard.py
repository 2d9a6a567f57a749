"""Never break the pipeline: the one place that decides between raising and warning.

Every tracking failure is handed to this module. In strict mode (``EMSTRACK_STRICT=1``, which
the test suite uses) it becomes a :class:`~emstrack.TrackingError`; otherwise it is collected
and reported as one :class:`~emstrack.EmstrackWarning` per run, pointing at the user's line.
While the pipeline's own exception propagates, nothing here raises: that exception wins.

* :class:`Problems` - what went wrong in one run: :meth:`~Problems.record` a problem,
  :meth:`~Problems.guard` an action, :meth:`~Problems.report` them once at the end.
* :func:`fail` - a problem with no run to collect it (a decorator that cannot start a run,
  a call on a run that has ended).
* :func:`warn` - an :class:`~emstrack.EmstrackWarning` attributed to the first frame outside
  emstrack (and wrapt and contextlib), so ``-W error`` and warning filters see the user's code.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from . import _settings
from ._errors import EmstrackWarning, TrackingError, describe

__all__ = [
    "Problems",
    "describe",
    "fail",
    "raise_if_strict",
    "settle",
    "strict",
    "warn",
]

MAX_PROBLEMS_SHOWN = 8
_PACKAGE_DIR = str(Path(__file__).parent)


def strict() -> bool:
    """Whether tracking failures raise (``EMSTRACK_STRICT=1``) instead of warning."""
    return _settings.strict()


class Problems:
    """The problems of one run, reported together when it ends."""

    def __init__(self) -> None:
        self._items: list[str] = []

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def record(self, message: str) -> None:
        """A problem: raised at once when strict, else kept for the run's warning."""
        if strict():
            raise TrackingError(message)
        self._items.append(message)

    def keep(self, message: str) -> None:
        """A problem found where raising would be wrong (while a run ends): always kept."""
        self._items.append(message)

    def keep_once(self, error: BaseException, text: str | None = None) -> None:
        """Keep a failed write once per kind of error: an outage is one problem, not three.

        ``text`` describes the error when its own message hides the cause.
        """
        kind = type(error).__name__
        if not any(item == kind or item.startswith(kind + ":") for item in self._items):
            self._items.append(text if text is not None else describe(error))

    def now(self, message: str) -> None:
        """A problem the user must hear about before the pipeline goes on (strict: raised).

        Reported at once, as the run's one warning, and not again when the run ends.
        """
        if strict():
            raise TrackingError(message)
        warn(message)

    def guard(self, what: str, action: Callable[..., object], *args: object) -> None:
        """Run ``action``; its failure becomes the problem ``<what> failed: <error>``."""
        try:
            action(*args)
        except TrackingError:
            raise
        except Exception as error:
            message = f"{what} failed: {describe(error)}"
            if strict():
                raise TrackingError(message) from error
            self._items.append(message)

    def report(self, subject: str, extra: list[str], suffix: str, *, propagating: bool) -> None:
        """One warning (strict: one error) naming every problem, or nothing when all went well.

        Args:
            subject: What the problems belong to, e.g. ``emstrack run 'day-ahead'``.
            extra: Problems known only now (values not logged, param conflicts).
            suffix: Appended to the message (where the run is kept).
            propagating: The pipeline's own exception is on its way out: never raise.

        """
        problems = [*self._items, *extra]
        if not problems:
            return
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown += f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more"
        message = f"{subject}: {shown}{suffix}"
        if propagating:
            _warn_quietly(message)
            return
        if strict():
            raise TrackingError(message)
        warn(message)


def raise_if_strict(message: str) -> None:
    """Strict mode raises now; otherwise the caller reports the problem with the run's warning."""
    if strict():
        raise TrackingError(message)


def settle(
    failures: list[TrackingError],
    *,
    strict_report: Callable[[TrackingError], object],
    lenient_report: Callable[[str], object],
) -> TrackingError | None:
    """Report failures found after the user's code has finished (``emstrack run``'s end).

    Strict: each goes to ``strict_report`` and the first is returned for the caller to raise
    once the script's own outcome is settled. Otherwise each goes to ``lenient_report`` as text
    and ``None`` is returned.
    """
    if strict():
        for failure in failures:
            strict_report(failure)
        return failures[0] if failures else None
    for failure in failures:
        lenient_report(str(failure))
    return None


def fail(message: str, *, cause: BaseException | None = None) -> None:
    """A problem outside any run: :class:`TrackingError` when strict, else a warning."""
    if strict():
        raise TrackingError(message) from cause
    warn(message)


def warn(message: str) -> None:
    """Warn with the location of the user's code, past emstrack's, wrapt's and contextlib's."""
    level = 2
    frame = sys._getframe(1)
    while frame.f_back is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, EmstrackWarning, stacklevel=level)


def _warn_quietly(message: str) -> None:
    """Warn, but never let a warnings-as-errors filter replace the pipeline's own exception."""
    with contextlib.suppress(Warning):
        warn(message)


def _is_internal(filename: str) -> bool:
    return (
        filename.startswith(_PACKAGE_DIR)
        or "wrapt" in filename
        or filename.endswith("contextlib.py")
    )
