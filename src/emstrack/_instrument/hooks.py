"""Process-wide hooks ``emstrack run`` installs while the script runs, each one removable.

- :class:`ParsedArguments`: what the script's ``argparse`` parsers return at the top level
  (``parse_args``, ``parse_known_args``, ``parse_intermixed_args`` all go through the two
  methods patched here; a subparser's inner call is not reported on its own).
- :class:`ModuleLoads`: every source module executed by the import system or by
  ``spec.loader.exec_module(module)`` (``importlib.util.spec_from_file_location``), reported
  after its code ran, so a target in a module the script loads later is instrumented the
  moment it exists.
- :class:`PathRuns`: the namespace ``runpy.run_path(file)`` returns, reported before the
  script gets it.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import os
import runpy
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MISSING: Any = object()


class ParsedArguments:
    """Report the namespace of every top-level ``ArgumentParser.parse_known_args`` call."""

    _METHODS = ("parse_known_args", "parse_known_intermixed_args")

    def __init__(self, report: Callable[[argparse.Namespace], None]) -> None:
        self.report = report
        self.saved: dict[str, Any] = {}
        self.depth = threading.local()

    def install(self) -> None:
        for name in self._METHODS:
            original = argparse.ArgumentParser.__dict__.get(name, _MISSING)
            if original is _MISSING:
                continue
            self.saved[name] = original
            setattr(argparse.ArgumentParser, name, self._wrap(original))

    def remove(self) -> None:
        for name, original in self.saved.items():
            setattr(argparse.ArgumentParser, name, original)
        self.saved.clear()

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        hook = self

        def parse(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
            depth = getattr(hook.depth, "value", 0)
            hook.depth.value = depth + 1
            try:
                result = original(parser, *args, **kwargs)
            finally:
                hook.depth.value = depth
            if depth == 0 and isinstance(result, tuple) and result:
                hook.report(result[0])
            return result

        parse.__name__ = original.__name__
        parse.__qualname__ = original.__qualname__
        parse.__doc__ = original.__doc__
        parse.__wrapped__ = original  # type: ignore[attr-defined]
        return parse


class ModuleLoads:
    """Report every module ``SourceFileLoader.exec_module`` finished executing."""

    def __init__(self, report: Callable[[types.ModuleType], None]) -> None:
        self.report = report
        self.own: Any = _MISSING

    def install(self) -> None:
        cls = importlib.machinery.SourceFileLoader
        self.own = cls.__dict__.get("exec_module", _MISSING)
        base = cls.exec_module
        hook = self

        def exec_module(loader: Any, module: types.ModuleType) -> None:
            base(loader, module)
            hook.report(module)

        exec_module.__wrapped__ = base  # type: ignore[attr-defined]
        cls.exec_module = exec_module  # type: ignore[method-assign, assignment]

    def remove(self) -> None:
        cls = importlib.machinery.SourceFileLoader
        if self.own is _MISSING:
            if "exec_module" in cls.__dict__:
                del cls.exec_module
        else:
            cls.exec_module = self.own  # type: ignore[method-assign]


class PathRuns:
    """Report ``(file, namespace)`` of every ``runpy.run_path`` call, before it returns."""

    def __init__(self, report: Callable[[Path, dict[str, Any]], None]) -> None:
        self.report = report
        self.saved: Any = _MISSING

    def install(self) -> None:
        original = runpy.run_path
        self.saved = original
        hook = self

        def run_path(path_name: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
            namespace = original(path_name, *args, **kwargs)
            try:
                path = Path(os.path.realpath(os.fspath(path_name)))
            except (TypeError, ValueError, OSError):
                return namespace
            hook.report(path, namespace)
            return namespace

        run_path.__doc__ = original.__doc__
        run_path.__wrapped__ = original  # type: ignore[attr-defined]
        runpy.run_path = run_path

    def remove(self) -> None:
        if self.saved is not _MISSING:
            runpy.run_path = self.saved
            self.saved = _MISSING
