"""The object ``tracked_optimization`` returns: a ``wrapt`` wrapper that pickles and copies.

A plain ``wrapt.FunctionWrapper`` refuses ``pickle`` and ``copy.deepcopy`` (an object proxy
must say how). Decorating a function must not take those away from it: a pipeline that hands
its function to ``multiprocessing``, ``concurrent.futures`` or Dask pickles it, and one that
deep-copies a configuration holding it copies it.

* **Pickled** like a function: by reference (``module.qualname``) when that name finds this
  very wrapper (the ``@tracked_optimization`` case), so the other process gets the module's own
  tracked function. For a script's own function (``__main__``) the reference is the script's
  file, so that a process which does not run the script (a Dask worker) loads it. A wrapper held
  under another name (``tracked_optimization(...)(module.f)``) is pickled as the function it
  wraps plus its options, and is tracked again on arrival.
* ``cloudpickle`` takes a function it cannot find by name apart by value (its
  ``reducer_override`` runs before ``__reduce_ex__``) and sees through the wrapper: such a
  function arrives untracked. Dask tries ``pickle`` first, so only a function without a file
  (a notebook's) is affected there; joblib's loky uses ``cloudpickle`` for a script's too.
* **Copied** like a function: ``copy.copy`` and ``copy.deepcopy`` return the same object.
* A tracked method bound to an instance pickles as ``getattr(instance, name)``, as a bound
  method does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import wrapt

#: What a script run as ``python script.py`` is called: in its process, in a spawned child.
MAIN_NAMES = ("__main__", "__mp_main__")


def _attribute(owner: object, qualname: str) -> object:
    value = owner
    for part in qualname.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def from_script(script: str, qualname: str) -> Any:
    """The tracked function ``qualname`` of the script ``script`` (run as ``__main__`` there).

    A process that runs the script as its ``__main__`` (a forked child; a spawned one, where it
    is ``__mp_main__``) has it already. Any other process (a Dask worker) loads the script as a
    module of its own name, as ``emstrack rerun`` does: its ``__main__`` guard does not run.
    """
    for name in MAIN_NAMES:
        module = sys.modules.get(name)
        loaded = getattr(module, "__file__", None)
        if isinstance(loaded, str) and Path(loaded).resolve() == Path(script):
            return _attribute(module, qualname)
    from .._reproduce.locate import locate

    return locate(f"__main__:{qualname}", script, unwrapped=False)


def track_again(
    factory: Callable[..., Any], function: Callable[..., Any], options: Mapping[str, Any]
) -> Any:
    """``factory(**options)(function)``: a pickled wrapper made again by its factory."""
    return factory(**options)(function)


class TrackedBoundFunction(wrapt.BoundFunctionWrapper):  # type: ignore[type-arg]
    """A tracked method bound to its instance (or class)."""

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        owner = self._self_instance if self._self_instance is not None else self._self_owner
        return getattr, (owner, self.__wrapped__.__name__)

    def __copy__(self) -> TrackedBoundFunction:
        return self

    def __deepcopy__(self, memo: object) -> TrackedBoundFunction:
        return self


class TrackedFunction(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """A function every call of which is tracked; it pickles and copies as a function does."""

    __bound_function_wrapper__ = TrackedBoundFunction

    def __init__(
        self,
        wrapped: Callable[..., Any],
        wrapper: Callable[..., Any],
        factory: Callable[..., Any],
        options: Mapping[str, Any],
    ) -> None:
        super().__init__(wrapped, wrapper)
        self._self_factory = factory
        self._self_options = dict(options)

    def __reduce_ex__(self, protocol: object) -> str | tuple[Any, ...]:
        module_name = getattr(self, "__module__", None) or ""
        module = sys.modules.get(module_name)
        qualname = str(getattr(self, "__qualname__", ""))
        if module is not None and "<" not in qualname and _attribute(module, qualname) is self:
            script = getattr(module, "__file__", None)
            if module_name in MAIN_NAMES and isinstance(script, str):
                return from_script, (str(Path(script).resolve()), qualname)
            return qualname
        return track_again, (self._self_factory, self.__wrapped__, self._self_options)

    def __copy__(self) -> TrackedFunction:
        return self

    def __deepcopy__(self, memo: object) -> TrackedFunction:
        return self
