"""What a decorated call records so that ``emstrack rerun`` can make it again.

Tags, set on every decorated run:

* ``emstrack.function_path`` - ``"module:qualname"`` of the tracked function;
* ``emstrack.function_file`` - the script's absolute path, for functions defined in
  ``__main__`` (a script run as ``python script.py``; in the script's spawned
  ``multiprocessing`` workers, where it is ``__mp_main__``, too);
* ``emstrack.tracking_options`` - JSON of the decorator's options that shape a run:
  ``run_name`` (the template, or ``{"path": ...}`` of a callable), ``params`` and ``metrics``
  (``{"path": ...}`` of the model class or callable, ``{"unimportable": ...}`` for a lambda or a
  local function), ``artifacts``, ``log_inputs``, ``log_model``.

``config.json`` gets a ``call`` section: ``arguments`` (the bound arguments, JSON-ready like
``inputs``) and ``not_kept`` (argument name -> why its value cannot be re-created from the file:
a DataFrame, another object JSON cannot hold, a redacted secret).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._tags import FUNCTION_FILE_TAG, FUNCTION_PATH_TAG
from .._tags import TRACKING_OPTIONS_TAG as OPTIONS_TAG
from .._tracking.mapping import (
    Redactor,
    child_items,
    describe,
    is_array,
    is_secret_value,
    scalar_text,
    to_jsonable,
)
from .._tracking.wrapper import MAIN_NAMES
from .locate import SCRIPT_MODULE_PREFIX

RERUN_OF_TAG = "emstrack.rerun_of"


def object_path(value: object) -> str | None:
    """``"module:qualname"`` of a function or class, or ``None`` if it cannot be imported."""
    target = getattr(value, "__func__", value)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    if module in MAIN_NAMES or module.startswith(SCRIPT_MODULE_PREFIX):
        # A spawned child's ``__mp_main__`` and a script loaded by ``locate`` are ``__main__``.
        module = "__main__"
    return f"{module}:{qualname}"


def tags_for(function: Any, options: Any) -> dict[str, str]:
    """The reproduction tags of a decorated function (see the module docstring)."""
    target = function.__func__ if isinstance(function, classmethod | staticmethod) else function
    tags: dict[str, str] = {}
    path = object_path(target)
    if path is not None:
        tags[FUNCTION_PATH_TAG] = path
        if path.startswith("__main__:"):
            script = _script_of(target)
            if script:
                tags[FUNCTION_FILE_TAG] = str(Path(script).resolve())
    recorded: dict[str, Any] = {
        "run_name": _option(options.run_name),
        "params": _option(options.params),
        "metrics": _option(options.metrics),
        "artifacts": list(options.artifacts),
        "log_inputs": options.log_inputs,
        "log_model": options.log_model,
    }
    tags[OPTIONS_TAG] = json.dumps(recorded, sort_keys=True)
    return tags


def _script_of(function: object) -> str | None:
    """The file of the script that defined ``function`` as ``__main__``.

    Read from the function's own module globals first: in a spawned ``multiprocessing`` child
    the script is decorated while it runs as ``__mp_main__``, before it becomes ``__main__``.
    """
    namespace = getattr(function, "__globals__", None)
    script = namespace.get("__file__") if isinstance(namespace, dict) else None
    if not isinstance(script, str):
        script = getattr(sys.modules.get("__main__"), "__file__", None)
    return script if isinstance(script, str) else None


def _option(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    path = object_path(value)
    if path is None:
        return {"unimportable": getattr(value, "__qualname__", repr(value))[:200]}
    return {"path": path}


def call_section(arguments: Mapping[str, object], redactor: Redactor) -> dict[str, Any]:
    """``config.json``'s ``call``: the arguments, and those that cannot be re-created."""
    not_kept = {}
    for name, value in arguments.items():
        why = _why_not_kept(name, value, redactor)
        if why is not None:
            not_kept[name] = why
    return {
        "arguments": {
            name: to_jsonable(value, redactor, _path=(name,)) for name, value in arguments.items()
        },
        "not_kept": not_kept,
    }


def _why_not_kept(name: str, value: object, redactor: Redactor, depth: int = 0) -> str | None:
    if value is None:
        return None
    if redactor.is_secret_key(name) or is_secret_value(value):
        return "a secret, redacted in config.json"
    if depth > 32:
        return "nested too deeply"
    if isinstance(value, bool | int | float | str) or scalar_text(value) is not None:
        return None
    children = child_items(value)
    if children is not None:
        for child_name, child in children:
            why = _why_not_kept(child_name, child, redactor, depth + 1)
            if why is not None:
                return f"{child_name}: {why}"
        return None
    if is_array(value):
        return None
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            why = _why_not_kept(name, item, redactor, depth + 1)
            if why is not None:
                return why
        return None
    return f"{describe(value)} is not kept in config.json"
