"""Progress of long work (the demo, sweeps): a bar where someone watches, plain lines elsewhere.

:class:`Progress` counts steps. In a terminal (stderr is a TTY) or a Jupyter kernel it shows a
``tqdm.auto`` bar (a widget in a notebook when ipywidgets is installed, text otherwise) and
prints each step's line above it; anywhere else (a pipe, a log file, CI) it prints only the
lines, ``[ 3/15] <text>  (0.4 s)``, exactly as without a bar.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

__all__ = ["Progress", "interactive", "progress"]

T = TypeVar("T")


def interactive(stream: TextIO | None = None) -> bool:
    """Whether someone is watching: ``stream`` (default stderr) is a TTY, or a Jupyter kernel."""
    target = sys.stderr if stream is None else stream
    try:
        if target.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return "ipykernel" in sys.modules and _in_kernel()


def _in_kernel() -> bool:
    getter = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = getter() if callable(getter) else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class Progress:
    """Count ``total`` steps; show a bar when :func:`interactive`, else print one line per step.

    Args:
        total: Number of steps.
        echo: Where step lines go (default ``print``); the bar's own output goes to stderr.
        description: Label of the bar.
        bar: Force the bar on or off (default: :func:`interactive`).

    """

    def __init__(
        self,
        total: int,
        echo: Callable[[str], None] = print,
        *,
        description: str = "",
        bar: bool | None = None,
        file: TextIO | None = None,
    ) -> None:
        self.total = total
        self.echo = echo
        self.done = 0
        self.runs = 0
        self._since = time.perf_counter()
        self._bar: Any = None
        if bar if bar is not None else interactive(file):
            self._bar = _make_bar(total, description, file)

    def step(self, runs: int = 1, text: str = "") -> None:
        """One step finished (having made ``runs`` runs); ``text`` says what it did."""
        self.done += 1
        self.runs += runs
        now = time.perf_counter()
        line = f"[{self.done:2d}/{self.total}] {text}  ({now - self._since:.1f} s)"
        self._since = now
        if self._bar is None:
            self.echo(line)
            return
        self._bar.write(line)
        self._bar.update(1)

    def close(self) -> None:
        """Remove the bar (if any)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def progress(items: Iterable[T], total: int | None = None, *, description: str = "") -> Iterator[T]:
    """Iterate over ``items`` with a bar when :func:`interactive` (for sweeps)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not interactive():
        yield from items
        return
    bar = _make_bar(total, description, None)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


def _make_bar(total: int | None, description: str, file: TextIO | None) -> Any:
    options: dict[str, Any] = {"total": total, "desc": description or None, "leave": False}
    if file is not None:
        options["file"] = file
    if _in_kernel() and importlib.util.find_spec("ipywidgets") is None:
        # tqdm.auto's notebook widget needs ipywidgets (else it warns and falls back): the text
        # bar renders in a notebook's output too.
        from tqdm.std import tqdm as text_tqdm

        return text_tqdm(**options)
    from tqdm.auto import tqdm

    return tqdm(**options)
