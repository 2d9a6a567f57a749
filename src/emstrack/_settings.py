"""Where runs go and how tracking behaves, read from the environment at the moment it is needed.

Nothing here is cached: a test or a notebook that changes an environment variable sees the change
at the next run.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_EXPERIMENT = "Default"
DEFAULT_SECRET_PATTERN = (
    r"password|passwd|pwd|secret|token|api[-_]?key|access[-_]?key|credential|private[-_]?key"
    r"|authorization|auth[-_]?header|cookie"
)

_TRUE = frozenset({"1", "true", "yes", "on"})


def flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in _TRUE


# os.environ's own mapping of encoded names to encoded values: disabled() runs at every call
# of a decorated function, and os.environ.get() (encoding the name, decoding the value) would
# be most of its cost. Same semantics: os.environ writes update this mapping.
_ENVIRON_DATA: dict[Any, Any] | None = getattr(os.environ, "_data", None)
_DISABLED_KEY: Any = os.environ.encodekey("EMSTRACK_DISABLED")
_TRUE_ENCODED = frozenset(os.environ.encodevalue(v) for v in _TRUE)


def disabled() -> bool:
    """``EMSTRACK_DISABLED=1`` switches all tracking off."""
    if _ENVIRON_DATA is None:
        return flag("EMSTRACK_DISABLED")
    raw = _ENVIRON_DATA.get(_DISABLED_KEY)
    if raw is None:
        return False
    return raw in _TRUE_ENCODED or flag("EMSTRACK_DISABLED")


def strict() -> bool:
    """``EMSTRACK_STRICT=1`` turns tracking warnings into exceptions."""
    return flag("EMSTRACK_STRICT")


DELIVERY_MODES = ("process", "thread", "sync", "spool")
"""How a finished run reaches its store (``EMSTRACK_DELIVERY``):

* ``process`` (default): the call only appends to the spool; a shipper process per spool and
  store ships finished runs (no GIL shared with the pipeline);
* ``thread``: a background thread of the pipeline's process ships (``EMSTRACK_BACKGROUND=1``);
* ``sync``: the run is created at its start and shipped before the call returns;
* ``spool``: the run only waits in the spool, for whoever delivers that spool: a sweep's
  driver, ``emstrack sync``, a read or :func:`emstrack.flush` (which deliver what waits), or
  the next emstrack process's shipper (sweep workers, nodes that cannot reach the store).
"""


def delivery() -> str:
    """``EMSTRACK_DELIVERY`` (process, thread, sync or spool); ``EMSTRACK_BACKGROUND=1``: thread.

    An unknown value falls back to ``sync``, the mode that needs nothing but the store.
    """
    if flag("EMSTRACK_BACKGROUND"):
        return "thread"
    configured = os.environ.get("EMSTRACK_DELIVERY", "").strip().lower()
    if not configured:
        return "process"
    return configured if configured in DELIVERY_MODES else "sync"


def background() -> bool:
    """Whether runs ship from a background thread (``EMSTRACK_DELIVERY=thread``)."""
    return delivery() == "thread"


def tracking_uri(explicit: str | None = None) -> str:
    """Explicit URI, else ``MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working directory.

    The embedded default is made absolute so that a run spooled here replays into the same
    store from any working directory.
    """
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        return "sqlite:///" + str(Path.cwd() / "mlflow.db")
    return uri


def experiment_name(explicit: str | None = None) -> str:
    """Explicit name, else ``MLFLOW_EXPERIMENT_NAME``, else MLflow's ``Default`` experiment."""
    return explicit or os.environ.get("MLFLOW_EXPERIMENT_NAME", "").strip() or DEFAULT_EXPERIMENT


def user_temp_folder(purpose: str) -> Path:
    """``<temp>/emstrack-<purpose>-<uid>``: state this user's processes on this machine share."""
    user = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"emstrack-{purpose}-{user}"


def spool_dir() -> Path:
    """``EMSTRACK_SPOOL_DIR``, else ``.emstrack/spool`` in the working directory (absolute)."""
    configured = os.environ.get("EMSTRACK_SPOOL_DIR", "").strip()
    return Path(configured).resolve() if configured else Path.cwd() / ".emstrack" / "spool"


def secret_pattern(explicit: str | re.Pattern[str] | None = None) -> re.Pattern[str]:
    """Keys matching this pattern (case-insensitive search) are logged as ``***``.

    Explicit pattern, else ``EMSTRACK_SECRET_PATTERN``, else :data:`DEFAULT_SECRET_PATTERN`.
    """
    if isinstance(explicit, re.Pattern):
        return explicit
    source = explicit or os.environ.get("EMSTRACK_SECRET_PATTERN") or DEFAULT_SECRET_PATTERN
    return _compile(source)


_compiled: dict[str, re.Pattern[str]] = {}


def _compile(source: str) -> re.Pattern[str]:
    pattern = _compiled.get(source)
    if pattern is None:
        pattern = _compiled[source] = re.compile(source, re.IGNORECASE)
    return pattern


def sqlite_wal() -> bool:
    """Whether a SQLite store is switched to write-ahead logging (``EMSTRACK_SQLITE_WAL``, on)."""
    return os.environ.get("EMSTRACK_SQLITE_WAL", "1").strip().lower() not in {
        "0",
        "false",
        "no",
        "off",
    }


def flush_timeout() -> float:
    """Seconds a read waits for pending runs to reach the store (``EMSTRACK_FLUSH_TIMEOUT``)."""
    try:
        return max(0.0, float(os.environ.get("EMSTRACK_FLUSH_TIMEOUT", "60")))
    except ValueError:
        return 60.0


def drain_timeout() -> float:
    """Seconds the background shipper may spend at interpreter exit (``EMSTRACK_DRAIN_TIMEOUT``)."""
    try:
        return max(0.0, float(os.environ.get("EMSTRACK_DRAIN_TIMEOUT", "10")))
    except ValueError:
        return 10.0
