"""Instrumentation targets: parsed, and resolved to the modules that define them.

``"pkg.mod:func"``, ``"pkg.mod:Class.method"``, ``"path/to/file.py:function"`` or, inside
``emstrack run``, a bare ``function`` of the script.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from .._errors import ConfigurationError

_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_MODULE = re.compile(r"[^\s:./\\][^\s:/\\]*")


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target: where the object lives and its attribute path there."""

    text: str
    module: str | None
    """Dotted module name (``None`` for a file or a bare name)."""
    path: Path | None
    """Resolved file of a ``file.py:function`` target."""
    attribute: tuple[str, ...]
    """``("func",)`` or ``("Class", "method")``."""

    @property
    def is_bare(self) -> bool:
        """A bare name: a function of the script run by ``emstrack run`` (its ``__main__``)."""
        return self.module is None and self.path is None

    @property
    def name(self) -> str:
        """The function's own name (the last part of the attribute path)."""
        return self.attribute[-1]

    @property
    def dotted(self) -> str:
        """The attribute path as written, e.g. ``"Class.method"``."""
        return ".".join(self.attribute)


def parse_target(text: str, *, allow_bare: bool = False, base: Path | None = None) -> Target:
    """Parse ``text``; a relative file path is resolved against ``base`` (default: cwd).

    Raises:
        ConfigurationError: Naming the target and what is wrong with it.

    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(f"instrument target {text!r}: expected 'module:function'")
    spec = text.strip()
    where, sep, attribute = spec.rpartition(":")
    if not sep:
        if not allow_bare:
            raise ConfigurationError(
                f"instrument target {text!r}: expected 'package.module:function', "
                "'package.module:Class.method' or 'path/to/file.py:function'"
            )
        where, attribute = "", spec
    elif not where:
        raise ConfigurationError(f"instrument target {text!r}: nothing before ':'")
    if not _ATTRIBUTE.fullmatch(attribute):
        raise ConfigurationError(
            f"instrument target {text!r}: {attribute!r} is not a function name or Class.method path"
        )
    parts = tuple(attribute.split("."))
    if not where:
        return Target(text, None, None, parts)
    if _is_file(where):
        path = Path(where).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        path = Path(os.path.realpath(path))
        if not path.is_file():
            raise ConfigurationError(f"instrument target {text!r}: no file at {path}")
        return Target(text, None, path, parts)
    if not all(_MODULE.fullmatch(part) for part in where.split(".")):
        raise ConfigurationError(f"instrument target {text!r}: {where!r} is not a module name")
    return Target(text, where, None, parts)


def _is_file(where: str) -> bool:
    return where.endswith((".py", ".pyw")) or "/" in where or os.sep in where


def loaded_modules_of(path: Path) -> list[types.ModuleType]:
    """Every module in ``sys.modules`` executed from ``path`` (``__main__`` included)."""
    found = []
    for module in list(sys.modules.values()):
        file = module_file(module)
        if file is not None and file == path:
            found.append(module)
    return found


def module_file(module: object) -> Path | None:
    """A module's resolved ``__file__``, read without triggering lazy loaders."""
    if not isinstance(module, types.ModuleType):
        return None
    try:
        namespace = object.__getattribute__(module, "__dict__")
        file = namespace.get("__file__")
    except Exception:
        return None
    if not isinstance(file, str) or not file.endswith((".py", ".pyw")):
        return None
    try:
        return Path(os.path.realpath(file))
    except (OSError, ValueError):
        return None


def file_module_name(path: Path) -> str:
    """The stable ``sys.modules`` name a file target is loaded under, if nothing loaded it."""
    stem = re.sub(r"\W", "_", path.stem)
    digest = hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"_emstrack_file_{stem}_{digest}"


def resolve_modules(target: Target) -> list[types.ModuleType]:
    """The module objects that define ``target`` (importing or loading it if needed).

    A file target already loaded (as ``__main__``, by ``importlib`` or under any name) is
    patched where it is; otherwise it is loaded once under :func:`file_module_name`.
    """
    if target.path is not None:
        loaded = loaded_modules_of(target.path)
        if loaded:
            return loaded
        return [_load_file(target)]
    if target.module is None:
        main = sys.modules.get("__main__")
        if main is None:
            raise ConfigurationError(f"instrument target {target.text!r}: no __main__ module")
        return [main]
    try:
        return [importlib.import_module(target.module)]
    except ImportError as error:
        raise ConfigurationError(
            f"instrument target {target.text!r}: cannot import {target.module!r} ({error})"
        ) from error


def _load_file(target: Target) -> types.ModuleType:
    assert target.path is not None
    name = file_module_name(target.path)
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(name, target.path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"instrument target {target.text!r}: cannot load {target.path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        sys.modules.pop(name, None)
        if isinstance(error, Exception):
            raise ConfigurationError(
                f"instrument target {target.text!r}: loading {target.path} raised "
                f"{type(error).__name__}: {error}"
            ) from error
        raise
    return module
