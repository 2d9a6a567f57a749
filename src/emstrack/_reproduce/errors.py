"""The error of a run that cannot be made again."""

from __future__ import annotations

from .._errors import EmstrackError


class RerunError(EmstrackError):
    """The run cannot be re-created: no recorded function or inputs, an input not kept, ...

    The message names what is missing (e.g. the argument whose value was a DataFrame).
    ``emstrack rerun`` exits with status 2 on it.
    """


RerunError.__module__ = "emstrack"
