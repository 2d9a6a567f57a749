"""``emstrack.instrument`` / ``emstrack.uninstrument``: tracking for code nobody may edit."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from . import patching
from .targets import Target, file_module_name, loaded_modules_of, parse_target, resolve_modules
from .values import Arguments, ReturnValues, parse_names


def instrument(
    target: str,
    *,
    experiment: str | None = None,
    run_name: str | Callable[..., str] | None = None,
    params: type[Any] | Callable[..., Any] | None = None,
    metrics: type[Any] | Callable[[Any], Any] | None = None,
    returns: str | Sequence[str] | None = None,
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, object] | None = None,
    enabled: bool | Callable[[], bool] = True,
    nested: bool | None = None,
    tracking_uri: str | None = None,
    log_inputs: bool = True,
    log_model: Literal["lp", "mps"] | None = None,
) -> Callable[..., Any]:
    """Track every call of a function you cannot edit, by patching it where it lives.

    ``target`` is ``"package.module:function"``, ``"package.module:Class.method"`` or
    ``"path/to/file.py:function"`` (a file whose name need not be an identifier, such as
    ``01_steps.py``: if it is already loaded, under any name, that module is patched; otherwise
    it is loaded once as ``_emstrack_file_<stem>_<digest>`` and registered in ``sys.modules``).
    The function is replaced by ``tracked_optimization(**options)(function)`` on its module or
    class, and in every loaded module that took it with ``from module import function``.
    Instrumenting twice is a no-op (call :func:`uninstrument` first to change options).

    Not reached: references kept in containers (lists, dicts, callback registries,
    ``functools.partial``), in closures and default arguments, and bound methods taken before
    the call. Modules importing the function later get the wrapper.

    Args:
        target: What to track, see above.
        experiment: As in :func:`~emstrack.tracked_optimization`.
        run_name: As in :func:`~emstrack.tracked_optimization`.
        params: As in :func:`~emstrack.tracked_optimization`. Default: the arguments that map
            cleanly onto params; all arguments (described where needed) in ``config.json``.
        metrics: As in :func:`~emstrack.tracked_optimization`. Default: a plain tuple is
            mapped positionally (``return_0``, ``return_1``, ...), values that do not map
            (lists of arbitrary objects) are described in ``config.json`` without a warning.
        returns: Names for the positions of a returned tuple, e.g. ``"total_cost,_"`` (``_``
            skips a position). Excludes ``metrics``.
        artifacts: As in :func:`~emstrack.tracked_optimization`.
        tags: As in :func:`~emstrack.tracked_optimization`.
        enabled: As in :func:`~emstrack.tracked_optimization`.
        nested: As in :func:`~emstrack.tracked_optimization`.
        tracking_uri: As in :func:`~emstrack.tracked_optimization`.
        log_inputs: As in :func:`~emstrack.tracked_optimization`.
        log_model: As in :func:`~emstrack.tracked_optimization`.

    Returns:
        The tracked wrapper now in place (the function itself when ``enabled=False``).

    Raises:
        ConfigurationError: Naming the target and the problem (malformed, not importable, no
            such attribute, not a function, or options that cannot work with it).

    """
    parsed = parse_target(target)
    make = wrapper_factory(
        experiment=experiment,
        run_name=run_name,
        params=params,
        metrics=metrics,
        returns=returns,
        artifacts=artifacts,
        tags=tags,
        enabled=enabled,
        nested=nested,
        tracking_uri=tracking_uri,
        log_inputs=log_inputs,
        log_model=log_model,
        label=f"instrument target {target!r}",
    )
    return instrument_in(resolve_modules(parsed), parsed, make)


def uninstrument(target: str) -> bool:
    """Undo :func:`instrument`: the original object is back exactly where it was.

    ``module.function is original`` again, also in every module that imported the wrapper; a
    ``classmethod`` or ``staticmethod`` comes back as the same descriptor object. Nothing is
    imported or loaded; calling it for a target that is not instrumented is a no-op.

    Args:
        target: The same spelling as given to :func:`instrument`.

    Returns:
        Whether something was restored.

    Raises:
        ConfigurationError: When ``target`` is malformed.

    """
    parsed = parse_target(target)
    restored = False
    for module in _loaded_modules(parsed):
        try:
            owner = patching.owner_of(module, parsed.attribute, "uninstrument")
        except Exception:
            continue
        restored = patching.unpatch(owner, parsed.name) or restored
    return restored


def instrument_in(
    modules: Sequence[types.ModuleType], target: Target, make: Callable[[Any], Any]
) -> Callable[..., Any]:
    """Patch ``target`` in each of ``modules``; the first wrapper is returned."""
    label = f"instrument target {target.text!r}"
    wrappers = [
        patching.patch(patching.owner_of(module, target.attribute, label), target.name, make, label)
        for module in modules
    ]
    wrapper: Callable[..., Any] = wrappers[0]
    return wrapper


def wrapper_factory(
    *,
    label: str,
    experiment: str | None = None,
    run_name: str | Callable[..., str] | None = None,
    params: type[Any] | Callable[..., Any] | None = None,
    metrics: type[Any] | Callable[[Any], Any] | None = None,
    returns: str | Sequence[str] | None = None,
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, object] | None = None,
    enabled: bool | Callable[[], bool] = True,
    nested: bool | None = None,
    tracking_uri: str | None = None,
    log_inputs: bool = True,
    log_model: Literal["lp", "mps"] | None = None,
) -> Callable[[Any], Any]:
    """``tracked_optimization(...)`` with instrumentation's defaults for params and metrics."""
    from .._errors import ConfigurationError

    names = parse_names(returns, label)
    if names is not None and metrics is not None:
        raise ConfigurationError(f"{label}: returns= and metrics= exclude each other")
    arguments = Arguments(log_inputs) if params is None else None
    options: dict[str, Any] = {
        "experiment": experiment,
        "run_name": run_name,
        "params": arguments if arguments is not None else params,
        "metrics": metrics if metrics is not None else ReturnValues(names, arguments),
        "artifacts": tuple(artifacts),
        "tags": tags,
        "enabled": enabled,
        "nested": nested,
        "tracking_uri": tracking_uri,
        "log_inputs": log_inputs if arguments is None else False,
        "log_model": log_model,
    }

    def make(function: Any) -> Any:
        from .._tracking.decorator import tracked_optimization

        try:
            return tracked_optimization(**options)(function)
        except ConfigurationError as error:
            raise ConfigurationError(f"{label}: {error}") from error

    return make


def _loaded_modules(target: Target) -> list[types.ModuleType]:
    if target.path is not None:
        found = loaded_modules_of(target.path)
        stable = sys.modules.get(file_module_name(target.path))
        if stable is not None and stable not in found:
            found.append(stable)
        return found
    name = target.module or "__main__"
    module = sys.modules.get(name)
    return [module] if isinstance(module, types.ModuleType) else []
