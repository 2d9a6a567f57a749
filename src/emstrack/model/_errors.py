"""The error a model input that cannot be optimized at all raises."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from emstrack._errors import ConfigurationError


class ModelInputError(ConfigurationError, MlflowException):
    """The model input as a whole is unusable: not a frame or records, or a required column missing.

    It is an :class:`emstrack.ConfigurationError` (so also a ``ValueError``) and an
    ``MlflowException`` with error code ``INVALID_PARAMETER_VALUE``, so that a served model
    answers it with HTTP 400 and the message instead of a 500. A single invalid *row* is not an
    error: that row's ``error`` column says what is wrong with it.
    """

    def __init__(self, message: str) -> None:
        MlflowException.__init__(self, message, error_code=INVALID_PARAMETER_VALUE)
