"""Tracking-store URIs: which database file a URI names, and a URI safe to print or store.

Pure string handling shared by the write path (``_delivery``) and the read path (``analysis``).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

__all__ = ["KNOWN_SCHEMES", "is_sql_uri", "redact_uri", "sqlite_path", "unsupported_scheme"]

#: URI schemes MLflow's tracking client knows (``postgresql+psycopg2`` counts as ``postgresql``).
KNOWN_SCHEMES = frozenset(
    {"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https"}
    | {"databricks", "databricks-uc", "uc"}
)

_SQL_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "mysql"})


def is_sql_uri(uri: str) -> bool:
    """Whether ``uri`` names a SQL database (SQLite, PostgreSQL, MySQL) behind MLflow's store."""
    scheme = uri.partition(":")[0].partition("+")[0].lower()
    return scheme in _SQL_SCHEMES


def redact_uri(uri: str) -> str:
    """``uri`` without user name or password, for the spool, logs and warnings."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or ``None`` for other stores."""
    if not uri.startswith("sqlite:"):
        return None
    path = urllib.parse.urlsplit(uri).path
    if uri.startswith("sqlite:////"):
        path = "/" + path.lstrip("/")
    elif uri.startswith("sqlite:///"):
        path = path[1:]
    return Path(path) if path and path != ":memory:" else None


def unsupported_scheme(uri: str) -> str | None:
    """Why MLflow cannot use ``uri`` as a tracking store, judged from its scheme alone; or None."""
    scheme = urllib.parse.urlsplit(uri).scheme.lower().partition("+")[0]
    if len(scheme) == 1:  # a Windows drive letter, C:\\...
        scheme = ""
    if scheme in KNOWN_SCHEMES:
        return None
    return (
        f"unsupported tracking URI {redact_uri(uri)!r}: the scheme {scheme!r} is none of "
        f"{', '.join(sorted(s for s in KNOWN_SCHEMES if s))}"
    )
