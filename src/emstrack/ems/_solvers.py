"""Solver selection by name."""

from __future__ import annotations

from typing import Any

import pulp

SOLVER_NAMES = ("cbc", "highs")
"""Names accepted wherever a solver is chosen."""


def make_solver(name: str) -> Any:
    """Return a configured PuLP solver: silent, relative MIP gap 0 (proven optimal).

    * ``"cbc"`` - CBC as bundled with PuLP, run through ``pulp.COIN_CMD`` pointed at the bundled
      binary (the same program ``PULP_CBC_CMD`` runs, without PuLP 3.3's deprecation warning for
      that class; PuLP records the solver as ``COIN_CMD``), or a ``cbc`` on the PATH where PuLP
      bundles none (PuLP 4).
    * ``"highs"`` - ``pulp.HiGHS`` through the highspy bindings, in-process.

    Args:
        name: ``"cbc"`` or ``"highs"`` (case-insensitive).

    Raises:
        ValueError: If the name is unknown (the message lists the valid ones).
        RuntimeError: If the solver is not installed.

    """
    key = name.strip().lower()
    if key == "cbc":
        bundled = getattr(getattr(pulp, "PULP_CBC_CMD", None), "pulp_cbc_path", None)
        solver: Any = pulp.COIN_CMD(path=bundled, msg=False, gapRel=0.0)
    elif key == "highs":
        solver = pulp.HiGHS(msg=False, gapRel=0.0)
    else:
        raise ValueError(f"unknown solver {name!r}; valid solvers: {', '.join(SOLVER_NAMES)}")
    if not solver.available():
        hint = "pip install highspy" if key == "highs" else "pip install 'pulp[cbc]'"
        raise RuntimeError(f"solver {key!r} is not available; install it ({hint})")
    return solver
