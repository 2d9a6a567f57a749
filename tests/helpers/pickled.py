"""Tracked functions that cross process boundaries (tests/tracking/test_pickling.py)."""

from __future__ import annotations

from emstrack import tracked_optimization

EXPERIMENT = "pickled"


@tracked_optimization(experiment=EXPERIMENT, run_name="square-{x}")
def square(x: int) -> dict[str, float]:
    """A decorated module-level function: pickled by reference."""
    return {"y": float(x * x)}


def cube(x: int) -> dict[str, float]:
    """Left undecorated here; a test tracks it from outside."""
    return {"y": float(x**3)}


class Plant:
    """A tracked method, called on an instance in another process."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    @tracked_optimization(experiment=EXPERIMENT, run_name="size-{x}")
    def size(self, x: int) -> dict[str, float]:
        return {"y": self.scale * x}
