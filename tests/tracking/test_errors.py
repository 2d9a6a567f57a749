"""The exception hierarchy drawn in emstrack._errors."""

from __future__ import annotations

import pytest

from emstrack import (
    ConfigurationError,
    EmstrackError,
    EmstrackWarning,
    StoreUnavailableError,
    TrackingError,
)


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (ConfigurationError, (EmstrackError, ValueError)),
        (TrackingError, (EmstrackError,)),
        (StoreUnavailableError, (TrackingError, EmstrackError)),
        (EmstrackError, (Exception,)),
        (EmstrackWarning, (UserWarning,)),
    ],
)
def test_hierarchy(cls, bases):
    """Each class sits where the module docstring draws it."""
    for base in bases:
        assert issubclass(cls, base)


def test_warning_is_not_an_exception_class():
    """EmstrackWarning is a warning, never raised as an EmstrackError."""
    assert not issubclass(EmstrackWarning, EmstrackError)
