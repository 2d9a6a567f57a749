"""The script or module ``emstrack run`` executes, set up exactly as ``python`` would.

``python script.py args`` gives the script a fresh ``__main__`` module (``__file__`` absolute,
``__spec__``/``__package__``/``__cached__`` ``None``), ``sys.argv = [script, *args]`` and
``sys.path[0]`` = the script's folder (symlinks resolved); ``python -m pkg.mod args`` gives
``__spec__``, ``__package__`` (so relative imports work), ``sys.argv[0]`` = the module's file and
``sys.path[0]`` = the working directory. :class:`Program` reproduces both.

The code runs **one top-level statement at a time**, compiled from the source with the
module's ``__future__`` flags and its real file name and line numbers (tracebacks read as in a
plain run), so that a callback can wrap a function the moment its ``def`` has bound it and
before any later statement can call it. A module whose source is not available (only a
``.pyc``) runs in one piece.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError


@dataclass
class Program:
    """A prepared ``__main__``: its module, its code and the process state it expects."""

    display: str
    """The script path as given, or ``-m name``."""
    argv: list[str]
    path0: str
    module: types.ModuleType
    file: Path
    statements: list[types.CodeType] | None
    whole: types.CodeType | None
    syntax_error: SyntaxError | None = None

    def install(self) -> None:
        """Make this program the process's ``__main__``, ``sys.argv`` and ``sys.path[0]``."""
        sys.argv[:] = self.argv
        if not sys.flags.safe_path:
            if sys.path:
                sys.path[0] = self.path0
            else:
                sys.path.insert(0, self.path0)
        sys.modules["__main__"] = self.module

    def execute(self, after_statement: Callable[[], None]) -> None:
        """Run the code in the module's namespace, calling ``after_statement`` after each."""
        namespace = self.module.__dict__
        if self.syntax_error is not None:
            raise self.syntax_error
        if self.statements is None:
            assert self.whole is not None
            exec(self.whole, namespace)
            return
        for code in self.statements:
            exec(code, namespace)
            after_statement()


def script(path_text: str, args: list[str]) -> Program:
    """``python path_text *args``."""
    path = Path(path_text)
    if not path.is_file():
        raise ConfigurationError(f"cannot run {path_text!r}: no such file")
    absolute = os.path.abspath(path)
    source = path.read_bytes()
    module = types.ModuleType("__main__")
    module.__dict__.update(
        {
            "__file__": absolute,
            "__cached__": None,
            "__loader__": importlib.machinery.SourceFileLoader("__main__", absolute),
            "__package__": None,
            "__spec__": None,
            "__builtins__": builtins,
        }
    )
    try:
        whole, statements = _compile(source, absolute)
    except SyntaxError as error:
        return Program(
            display=path_text,
            argv=[path_text, *args],
            path0=os.path.dirname(os.path.realpath(path)),
            module=module,
            file=Path(absolute),
            statements=None,
            whole=None,
            syntax_error=error,
        )
    return Program(
        display=path_text,
        argv=[path_text, *args],
        path0=os.path.dirname(os.path.realpath(path)),
        module=module,
        file=Path(absolute),
        statements=statements,
        whole=whole,
    )


def module(name: str, args: list[str]) -> Program:
    """``python -m name *args`` (a package runs its ``__main__`` submodule)."""
    cwd = os.getcwd()
    if not sys.flags.safe_path:
        if sys.path:
            sys.path[0] = cwd
        else:
            sys.path.insert(0, cwd)
    spec = _find_spec(name)
    if spec.submodule_search_locations is not None:
        spec = _find_spec(f"{name}.__main__", package=name)
    loader = spec.loader
    if loader is None or spec.origin is None:
        raise ConfigurationError(f"cannot run -m {name!r}: it has no code to run")
    module = types.ModuleType("__main__")
    module.__dict__.update(
        {
            "__file__": spec.origin,
            "__cached__": spec.cached,
            "__loader__": loader,
            "__package__": spec.parent,
            "__spec__": spec,
            "__builtins__": builtins,
        }
    )
    source = _source(loader, spec.name)
    syntax_error = None
    whole: types.CodeType | None = None
    statements: list[types.CodeType] | None = None
    if source is not None:
        try:
            whole, statements = _compile(source, spec.origin)
        except SyntaxError as error:
            syntax_error = error
    else:
        code = loader.get_code(spec.name)
        if code is None:
            raise ConfigurationError(f"cannot run -m {name!r}: no code for it")
        whole, statements = code, None
    return Program(
        display=f"-m {name}",
        argv=[spec.origin, *args],
        path0=cwd,
        module=module,
        file=Path(spec.origin),
        statements=statements,
        whole=whole,
        syntax_error=syntax_error,
    )


def _find_spec(name: str, package: str | None = None) -> Any:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as error:
        raise ConfigurationError(f"cannot run -m {name!r}: {error}") from error
    if spec is None:
        if package is not None:
            raise ConfigurationError(
                f"cannot run -m {package!r}: it is a package without a __main__ module"
            )
        raise ConfigurationError(f"cannot run -m {name!r}: no module named {name!r}")
    return spec


def _source(loader: Any, name: str) -> bytes | None:
    get_data = getattr(loader, "get_data", None)
    get_filename = getattr(loader, "get_filename", None)
    if callable(get_data) and callable(get_filename):
        try:
            filename = get_filename(name)
            if str(filename).endswith((".py", ".pyw")):
                data = get_data(filename)
                if isinstance(data, bytes):
                    return data
        except OSError:
            return None
    return None


def _compile(source: bytes, filename: str) -> tuple[types.CodeType, list[types.CodeType]]:
    """The whole module's code and its top-level statements compiled one by one.

    A ``SyntaxError`` is raised as ``python`` would raise it; each statement is compiled with
    the module's ``__future__`` flags.
    """
    whole = compile(source, filename, "exec", dont_inherit=True)
    tree = ast.parse(source, filename)
    flags = 0
    statements: list[types.CodeType] = []
    for index, statement in enumerate(tree.body):
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            for alias in statement.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
        is_string = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        if index > 0 and is_string:
            continue  # a bare constant does nothing; compiled alone it would set __doc__
        piece = ast.Module(body=[statement], type_ignores=[])
        statements.append(compile(piece, filename, "exec", flags=flags, dont_inherit=True))
    return whole, statements
