"""Import a recorded function (or tracking option) again from its ``module:qualname`` path."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from .errors import RerunError

#: Start of the module name a script is loaded under (its ``__main__`` guard then stays shut).
SCRIPT_MODULE_PREFIX = "_emstrack_script_"


def locate(path: str, script: str | None = None, *, unwrapped: bool = True) -> Any:
    """The object at ``"module:qualname"``; ``__main__`` objects are loaded from ``script``.

    A script is loaded as a module of its own name (so its ``if __name__ == "__main__":``
    block does not run). A function decorated with ``@tracked_optimization`` is returned
    unwrapped (the rerun wraps it again with the recorded options), unless ``unwrapped`` is
    ``False``.

    Raises:
        RerunError: If the module, the script or the attribute cannot be found.

    """
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise RerunError(f"{path!r} is not a 'module:qualname' path")
    module = _module(module_name, script, path)
    value: Any = module
    for part in qualname.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise RerunError(
                f"{path!r}: {module_name} has no {qualname!r} (stopped at {part!r})"
            ) from None
    return unwrap(value) if unwrapped else value


def unwrap(value: Any) -> Any:
    """``value`` without emstrack's ``tracked_optimization`` wrapper, if it has one."""
    wrapper = getattr(value, "_self_wrapper", None)
    if wrapper is not None and getattr(wrapper, "__module__", "") == "emstrack._tracking.decorator":
        return value.__wrapped__
    return value


def _module(name: str, script: str | None, path: str) -> Any:
    if name != "__main__":
        try:
            return importlib.import_module(name)
        except ImportError as error:
            raise RerunError(f"cannot import {name!r} for {path!r}: {error}") from None
    if not script:
        raise RerunError(
            f"{path!r} was defined in a script run as __main__, and the run did not record "
            "the script's path (tag emstrack.function_file)"
        )
    file = Path(script)
    if not file.is_file():
        raise RerunError(f"the script of {path!r} is gone: {file}")
    alias = SCRIPT_MODULE_PREFIX + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    if alias in sys.modules:
        return sys.modules[alias]
    spec = importlib.util.spec_from_file_location(alias, file)
    if spec is None or spec.loader is None:
        raise RerunError(f"cannot load the script {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(alias, None)
        raise RerunError(f"loading the script {file} failed: {error!r}") from None
    finally:
        sys.path.remove(str(file.parent))
    return module
