"""The house keeps its rules: no import cycles, no reaching into another module's privates.

Both are read from the source with ``ast`` (module-level and function-level imports alike), so
they hold whatever runs first.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SOURCE / "emstrack"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            here = module if module in PACKAGES else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                here = here.rpartition(".")[0]
            base = f"{here}.{base}" if base else here
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    targets = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)
    return targets


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets |= _resolve(module, node)
        # A package importing its own submodules is how a package chooses; not a cycle.
        graph[module] = {
            t for t in targets if not (module in PACKAGES and t.startswith(module + "."))
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_package() -> None:
    graph = _graph()
    assert "emstrack._tracking.run" in graph
    assert "emstrack._tracking.hooks" in graph["emstrack._tracking.run"]


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_a_cycle_would_be_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


_PRIVATE_ATTRIBUTE = re.compile(r"^_[a-z]")


def _private_reaches(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not ``self``/``cls`` and ``_name`` is defined elsewhere."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reaches = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _PRIVATE_ATTRIBUTE.match(node.attr):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in {"self", "cls", "sys"}:
            continue  # own attributes; sys._getframe is the documented way to find frames
        if isinstance(owner, ast.Call):
            continue  # e.g. super()._method()
        reaches.append(f"{path.relative_to(SOURCE)}:{node.lineno}: .{node.attr}")
    return reaches


# Private attributes of *other libraries* that emstrack knowingly uses, each for a reason.
_ALLOWED = {
    "_asdict",  # NamedTuple's public API spells itself with an underscore
    "_replace",  # likewise (urllib's SplitResult)
    "_fields",
    "_getframe",
    # emstrack run must run the script's atexit handlers before dying by SIGINT, as python does;
    # the atexit module has no public way to do that.
    "_run_exitfuncs",
}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_cross_module_private_access(path: Path) -> None:
    own_names = _defined_names(path)
    reaches = [
        reach
        for reach in _private_reaches(path)
        if reach.rsplit(".", 1)[-1] not in _ALLOWED | own_names
    ]
    assert reaches == []


def _defined_names(path: Path) -> set[str]:
    """Names the module defines itself (a module may use its own privates on any object)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def test_strict_is_decided_in_one_module() -> None:
    deciding = sorted(
        str(path.relative_to(SOURCE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"\bstrict\(\)", path.read_text(encoding="utf-8"))
        and path.name != "_settings.py"
    )
    assert deciding == ["emstrack/_guard.py"]


def test_a_private_reach_would_be_found(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("def f(run):\n    run._problem('x')\n    self._own = 1\n")
    assert [r.rsplit(": ", 1)[1] for r in _private_reaches_in(module)] == ["._problem"]


def _private_reaches_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and _PRIVATE_ATTRIBUTE.match(node.attr)
        and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls", "sys"})
    ]


def _private_imports(module: str, path: Path) -> list[str]:
    """``from emstrack.x import _name`` where ``_name`` is not a module: another's private."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        base = node.module or ""
        if node.level:
            here = module if module in PACKAGES else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                here = here.rpartition(".")[0]
            base = f"{here}.{base}" if node.module else here
        if base not in MODULES:
            continue  # another library
        for alias in node.names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            if private and f"{base}.{alias.name}" not in MODULES:
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno}: {alias.name}")
    return found


def test_no_private_names_imported_from_other_modules() -> None:
    found = [
        hit for module, path in sorted(MODULES.items()) for hit in _private_imports(module, path)
    ]
    assert found == []
