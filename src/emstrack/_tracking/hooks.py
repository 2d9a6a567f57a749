"""Extension points of a run: declared here, called by the run, implemented elsewhere.

A :class:`RunHook` observes every run that opens: :meth:`~RunHook.start` returns the hook's
own state for that run (``None`` to stay out of it), :meth:`~RunHook.end` gets that state
back when the run ends, before its end is written. Hooks see a run only through
:class:`RunHandle`, so no implementation depends on :class:`~emstrack.Run` itself.

The run never imports an implementation: :data:`BUILTIN_HOOKS` names the modules that register
their hooks when imported (PuLP solve capture, data lineage), loaded on the first run's start;
anything else calls :func:`register`. A hook that fails is a problem of the run, never an
exception in the pipeline (see :mod:`emstrack._guard`).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["BUILTIN_HOOKS", "RunHandle", "RunHook", "register", "registered", "unregister"]

#: Modules that register built-in hooks when imported, in the order their hooks run.
BUILTIN_HOOKS: tuple[str, ...] = ("emstrack._capture.pulp", "emstrack._capture.datasets")


@runtime_checkable
class RunHandle(Protocol):
    """What a hook may use of a run."""

    @property
    def key(self) -> str:
        """The run's emstrack key (stable across replays)."""
        ...

    @property
    def log_model_format(self) -> str | None:
        """``"lp"``, ``"mps"`` or ``None``: whether solved models are logged as files."""
        ...

    def log_metrics(self, metrics: object, step: int | None = None) -> None:
        """Log metrics into the run."""
        ...

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set tags on the run."""
        ...

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Log a file into the run."""
        ...

    def log_dataset(
        self,
        frame: Any,
        name: str,
        source: str | None = None,
        context: str | None = None,
        *,
        digest: str | None = None,
    ) -> None:
        """Record a DataFrame as a dataset input of the run (``digest``: already computed)."""
        ...

    def record_problem(self, message: str) -> None:
        """A problem for the run's single warning (raised at once when strict)."""
        ...

    def hook_state(self, hook: RunHook) -> Any:
        """The state ``hook.start`` returned for this run (``None`` when it stayed out)."""
        ...


class RunHook(Protocol):
    """Something that observes runs; register it with :func:`register`."""

    name: str

    def start(self, run: RunHandle) -> object | None:
        """A run opened; return this hook's state for it, or ``None`` to stay out of it."""
        ...

    def end(self, run: RunHandle, state: Any) -> None:
        """The run is ending; ``state`` is what :meth:`start` returned."""
        ...


_lock = threading.Lock()
_hooks: list[RunHook] = []
_builtins_loaded = False


def register(hook: RunHook) -> None:
    """Add ``hook`` (a second hook of the same name replaces the first)."""
    with _lock:
        _hooks[:] = [known for known in _hooks if known.name != hook.name]
        _hooks.append(hook)


def unregister(name: str) -> None:
    """Remove the hook called ``name``, if registered."""
    with _lock:
        _hooks[:] = [known for known in _hooks if known.name != name]


def registered() -> tuple[RunHook, ...]:
    """Every registered hook, the built-in ones loaded on first call."""
    global _builtins_loaded
    if not _builtins_loaded:
        _load(BUILTIN_HOOKS)
        _builtins_loaded = True
    with _lock:
        return tuple(_hooks)


def _load(modules: Iterable[str]) -> None:
    for module in modules:
        importlib.import_module(module)
