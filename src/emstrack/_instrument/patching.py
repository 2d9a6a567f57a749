"""Swap a function for its tracked wrapper where it is defined and where modules imported it.

The registry remembers, per ``(owner, name)``, the exact object that was there (for a class:
the raw ``__dict__`` entry, so a ``classmethod``/``staticmethod`` descriptor comes back as the
same descriptor object) and the wrapper that replaced it. Restoring puts the original back on
the owner and in every loaded module whose global still holds the wrapper, including modules
that imported the wrapper after instrumentation.

What cannot be reached (documented limits): references kept in containers (lists, dicts,
registries, ``functools.partial``), in closures and default arguments, in class bodies of other
modules, and bound methods taken before instrumentation.
"""

from __future__ import annotations

import inspect
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError

_MISSING: Any = object()


@dataclass(slots=True)
class Patch:
    """One instrumented attribute."""

    owner: Any
    name: str
    original: Any
    """The raw object that was in the owner's ``__dict__`` (``_MISSING`` if inherited)."""
    wrapper: Any
    function: Any
    """What other modules may hold a reference to: the original when it is a plain callable."""
    rebound: list[tuple[str, str]] = field(default_factory=list)
    """(module name, global name) pairs that were switched to the wrapper."""


_patches: dict[tuple[int, str], Patch] = {}
_lock = threading.RLock()


def owner_of(module: types.ModuleType, attribute: tuple[str, ...], label: str) -> Any:
    """The object holding the last part of ``attribute`` (the module, or a class in it)."""
    return owner_of_object(module, attribute, label, module.__name__)


def owner_of_object(
    root: Any, attribute: tuple[str, ...], label: str, root_name: str = "the namespace"
) -> Any:
    """Walk ``attribute[:-1]`` from ``root``."""
    owner: Any = root
    for depth, part in enumerate(attribute[:-1]):
        try:
            owner = getattr(owner, part)
        except AttributeError:
            where = ".".join((root_name, *attribute[:depth]))
            raise ConfigurationError(f"{label}: {where} has no attribute {part!r}") from None
    return owner


def wrap(raw: Any, make_wrapper: Callable[[Any], Any], label: str) -> Any:
    """The tracked wrapper of ``raw``, checked like :func:`patch` but patched nowhere."""
    _check_callable(raw, getattr(raw, "__name__", "function"), label)
    return make_wrapper(raw)


def patch(owner: Any, name: str, make_wrapper: Callable[[Any], Any], label: str) -> Any:
    """Replace ``owner.name`` with ``make_wrapper(original)``; a second call is a no-op."""
    with _lock:
        namespace = _namespace(owner)
        key = (id(owner), name)
        current = namespace.get(name, _MISSING)
        known = _patches.get(key)
        if known is not None and known.owner is owner:
            if current is known.wrapper:
                return known.wrapper
            # Rebound since (e.g. the script defined the function again): wrap the new one.
            del _patches[key]
        original = current
        raw = current
        if current is _MISSING:
            if not isinstance(owner, type):
                raise ConfigurationError(
                    f"{label}: {_describe_owner(owner)} has no attribute {name!r}"
                )
            try:
                raw = inspect.getattr_static(owner, name)
            except AttributeError:
                raise ConfigurationError(
                    f"{label}: {_describe_owner(owner)} has no attribute {name!r}"
                ) from None
        _check_callable(raw, name, label)
        wrapper = make_wrapper(raw)
        if wrapper is raw:  # tracking disabled (enabled=False): nothing to patch
            return raw
        function = raw if not isinstance(raw, classmethod | staticmethod) else None
        record = Patch(owner, name, original, wrapper, function)
        setattr(owner, name, wrapper)
        if function is not None:
            for module_name, global_name, globals_ in _scan(raw):
                if globals_ is namespace and global_name == name:
                    continue
                globals_[global_name] = wrapper
                record.rebound.append((module_name, global_name))
        _patches[key] = record
        return wrapper


def unpatch(owner: Any, name: str) -> bool:
    """Put back exactly what :func:`patch` replaced; ``False`` if it was not instrumented."""
    with _lock:
        record = _patches.pop((id(owner), name), None)
        if record is None or record.owner is not owner:
            return False
        namespace = _namespace(owner)
        if namespace.get(name, _MISSING) is record.wrapper:
            if record.original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, record.original)
        restore = record.function if record.function is not None else record.original
        for _, global_name, globals_ in _scan(record.wrapper):
            globals_[global_name] = restore
        return True


def instrumented(owner: Any, name: str) -> Patch | None:
    """The live patch of ``owner.name``, if any."""
    with _lock:
        record = _patches.get((id(owner), name))
        if record is None or record.owner is not owner:
            return None
        return record


def _check_callable(raw: Any, name: str, label: str) -> None:
    if isinstance(raw, type):
        raise ConfigurationError(
            f"{label}: {name!r} is a class, not a function; name one of its methods "
            f"('{name}.method')"
        )
    if isinstance(raw, classmethod | staticmethod):
        return
    if isinstance(raw, property):
        raise ConfigurationError(f"{label}: {name!r} is a property, not a function")
    if not callable(raw):
        raise ConfigurationError(
            f"{label}: {name!r} is a {type(raw).__name__}, not a function or method"
        )


def _namespace(owner: Any) -> Any:
    if isinstance(owner, types.ModuleType):
        return object.__getattribute__(owner, "__dict__")
    return owner.__dict__


def _describe_owner(owner: Any) -> str:
    if isinstance(owner, types.ModuleType):
        return f"module {owner.__name__!r}"
    return f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', owner)!s}"


def _scan(target: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(module name, global name, module dict) of every loaded module global that is ``target``.

    Module dicts are read without attribute access, so lazy modules are not loaded by the scan.
    """
    for module_name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType):
            continue
        try:
            globals_ = object.__getattribute__(module, "__dict__")
        except Exception:
            continue
        if not isinstance(globals_, dict):
            continue
        hits = [name for name, value in list(globals_.items()) if value is target]
        for name in hits:
            yield module_name, name, globals_
