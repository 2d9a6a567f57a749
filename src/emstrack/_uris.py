"""Tracking-store URIs: which database file a URI names, and a URI safe to print or store.

Pure string handling shared by the write path (``_delivery``) and the read path (``analysis``).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

__all__ = ["redact_uri", "sqlite_path"]


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
