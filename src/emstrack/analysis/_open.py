"""Choosing the reader for a store: the one module that knows every :class:`Reader` implementation.

The interface (``_reader``) imports no implementation; ``_sql`` and ``_client`` implement it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .._uris import is_sql_uri
from ._reader import Reader

__all__ = ["open_reader"]


@contextmanager
def open_reader(uri: str, *, prefer_sql: bool = True) -> Iterator[Reader]:
    """The reader for ``uri``: SQL for database URIs (unless ``prefer_sql`` is false)."""
    reader: Reader
    # Imported here: each implementation pulls in its own driver (SQLAlchemy or MLflow's client).
    if prefer_sql and is_sql_uri(uri):
        from ._sql import SqlReader

        reader = SqlReader(uri)
    else:
        from ._client import ClientReader

        reader = ClientReader(uri)
    try:
        yield reader
    finally:
        reader.close()
