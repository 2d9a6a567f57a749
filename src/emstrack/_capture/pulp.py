"""PuLP solve capture: what a solve did, read off PuLP 3.x problems or PuLP 4.x ``LpSolveStats``.

Inside a tracked run, every ``LpProblem.solve()`` is recorded without touching the pipeline:
``LpProblem.solve`` is patched while at least one run is open (reference-counted, under a lock)
and restored when the last one ends. The patch attributes a solve to the run open in the calling
thread or task, so solves elsewhere pass through unrecorded. Each solve is one step of the
``solver.*`` metrics; when the run ends, run-level totals are added (``solver.solves``,
``solver.total_solve_time_s``, ``solver.non_optimal_solves``, tag ``solver.worst_status``).
Infeasible, unbounded and unsolved outcomes are recorded like any other.
"""

from __future__ import annotations

import math
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import describe
from .._tracking import hooks
from .._tracking.hooks import RunHandle
from .._tracking.run import active_run

__all__ = ["SolverMetrics", "solver_metrics"]

# Worst last; statuses spelt the PuLP 3.x way ("Not Solved") and the 4.x way ("NotSolved").
_SEVERITY = {
    "optimal": 0,
    "feasible": 1,
    "timelimit": 1,
    "notsolved": 2,
    "undefined": 3,
    "unbounded": 4,
    "infeasible": 5,
}
_STATUS_TEXT_3X = {
    1: "Optimal",
    0: "Not Solved",
    -1: "Infeasible",
    -2: "Unbounded",
    -3: "Undefined",
}


@dataclass(frozen=True, slots=True)
class SolverMetrics:
    """What one solve did."""

    status: str
    """Solver outcome in PuLP's words, e.g. ``"Optimal"``, ``"Infeasible"``."""
    status_code: int
    """PuLP's status code: 1 optimal, 0 not solved, -1 infeasible, -2 unbounded, -3 undefined."""
    objective: float | None
    """Objective value of the returned solution, if any."""
    solve_time_s: float
    """Wall time of the solve in seconds."""
    variables: int
    constraints: int
    integer_variables: int
    is_mip: bool
    solver: str
    """The solver's PuLP name, e.g. ``"PULP_CBC_CMD"`` or ``"HiGHS"``."""
    gap_rel: float | None = None
    """Relative MIP gap, where the solver reports one (PuLP 4.x)."""

    @property
    def is_optimal(self) -> bool:
        """Whether the solver proved optimality."""
        return self.status_code == 1

    @property
    def severity(self) -> int:
        """How bad the outcome is: 0 optimal ... 5 infeasible."""
        return _SEVERITY.get(self.status.replace(" ", "").lower(), 3)

    def as_metrics(self) -> dict[str, float]:
        """The numeric fields as ``solver.*`` metric values."""
        values: dict[str, float] = {
            "solver.status_code": float(self.status_code),
            "solver.solve_time_s": self.solve_time_s,
            "solver.variables": float(self.variables),
            "solver.constraints": float(self.constraints),
            "solver.integer_variables": float(self.integer_variables),
            "solver.is_mip": 1.0 if self.is_mip else 0.0,
        }
        if self.objective is not None:
            values["solver.objective"] = float(self.objective)
        if self.gap_rel is not None:
            values["solver.gap_rel"] = float(self.gap_rel)
        return values


def solver_metrics(problem_or_result: Any, problem: Any = None) -> SolverMetrics:
    """Read a solve's outcome off a PuLP ``LpProblem`` (3.x) or an ``LpSolveStats`` (4.x).

    The kind is chosen by what the object has, so both majors work without version checks. Pass
    the problem as ``problem`` with an ``LpSolveStats`` to count its integer variables.
    """
    if hasattr(problem_or_result, "status_str") and hasattr(problem_or_result, "num_variables"):
        return _from_stats(problem_or_result, problem)
    if hasattr(problem_or_result, "numVariables"):
        return _from_problem(problem_or_result)
    raise TypeError(
        "solver_metrics() needs a pulp.LpProblem or a pulp LpSolveStats, "
        f"not {type(problem_or_result).__name__}"
    )


def _from_problem(problem: Any) -> SolverMetrics:
    code = int(problem.status)
    objective = problem.objective.value() if problem.objective is not None else None
    solver = getattr(problem, "solver", None)
    # PuLP's isMIP() is "any integer variable"; each of its variables() calls re-collects and
    # sorts every variable of every constraint, so they are counted once.
    integers = _integer_variables(problem)
    return SolverMetrics(
        status=_STATUS_TEXT_3X.get(code, "Undefined"),
        status_code=code,
        objective=None if objective is None else float(objective),
        solve_time_s=float(getattr(problem, "solutionTime", 0.0) or 0.0),
        variables=int(problem.numVariables()),
        constraints=int(problem.numConstraints()),
        integer_variables=integers,
        is_mip=integers > 0,
        solver=str(getattr(solver, "name", type(solver).__name__ if solver else "unknown")),
        gap_rel=_gap_rel(problem, solver, is_mip=integers > 0),
    )


def _gap_rel(problem: Any, solver: Any, *, is_mip: bool) -> float | None:
    """A MIP's relative gap: HiGHS' achieved ``mip_gap``, else the solver's ``gapRel`` setting."""
    try:
        if not is_mip:
            return None
        model: Any = getattr(problem, "solverModel", None)
        if getattr(solver, "name", None) == "HiGHS" and hasattr(model, "getInfo"):
            gap = float(model.getInfo().mip_gap)
            if math.isfinite(gap):
                return gap
        setting = getattr(solver, "gapRel", None)
        if setting is None:
            setting = (getattr(solver, "optionsDict", None) or {}).get("gapRel")
        return None if setting is None else float(setting)
    except Exception:
        return None


def _from_stats(stats: Any, problem: Any) -> SolverMetrics:
    gap = stats.gap_rel
    return SolverMetrics(
        status=str(stats.status_str),
        status_code=int(stats.status),
        objective=None if stats.objective is None else float(stats.objective),
        solve_time_s=float(stats.time or 0.0),
        variables=int(stats.num_variables),
        constraints=int(stats.num_constraints),
        integer_variables=_integer_variables(problem) if problem is not None else 0,
        is_mip=bool(stats.is_mip),
        solver=str(stats.solver),
        gap_rel=None if gap is None else float(gap),
    )


def _integer_variables(problem: Any) -> int:
    return sum(1 for variable in problem.variables() if variable.cat == "Integer")


# --------------------------------------------------------------------------- capture


@dataclass(slots=True)
class _Capture:
    solves: int = 0
    total_time_s: float = 0.0
    non_optimal: int = 0
    worst: SolverMetrics | None = None
    log_model: str | None = None
    models: list[Path] = field(default_factory=list)


_patch_lock = threading.Lock()
_open_runs = 0
_original_solve: Any = None


def _patched_solve(self: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    result = _original_solve(self, *args, **kwargs)
    run = active_run()
    capture = run.hook_state(HOOK) if run is not None else None
    if run is not None and capture is not None:
        _record(run, capture, self, result, time.perf_counter() - started)
    return result


def _record(run: RunHandle, capture: _Capture, problem: Any, result: Any, wall_s: float) -> None:
    try:
        metrics = solver_metrics(result if hasattr(result, "status_str") else problem, problem)
    except Exception as error:
        run.record_problem(f"reading a PuLP solve failed: {describe(error)}")
        return
    if metrics.solve_time_s == 0.0:
        metrics = _with_time(metrics, wall_s)
    step = capture.solves
    capture.solves += 1
    capture.total_time_s += metrics.solve_time_s
    if not metrics.is_optimal:
        capture.non_optimal += 1
    if capture.worst is None or metrics.severity > capture.worst.severity:
        capture.worst = metrics
    run.log_metrics(metrics.as_metrics(), step=step)
    run.set_tags({"solver.status": metrics.status, "solver.name": metrics.solver})
    if capture.log_model:
        _log_model(run, problem, capture.log_model, step)


def _with_time(metrics: SolverMetrics, wall_s: float) -> SolverMetrics:
    values = {name: getattr(metrics, name) for name in metrics.__dataclass_fields__}
    values["solve_time_s"] = wall_s
    return SolverMetrics(**values)


def _log_model(run: RunHandle, problem: Any, kind: str, step: int) -> None:
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(problem.name))[:80]
    with tempfile.TemporaryDirectory(prefix="emstrack-model-") as folder:
        path = Path(folder) / f"solve_{step:04d}_{name}.{kind}"
        if kind == "mps":
            problem.writeMPS(str(path))
        else:
            problem.writeLP(str(path))
        run.log_artifact(path, artifact_path="models")


class PulpCapture:
    """The run hook that records every ``LpProblem.solve`` made while a run is open.

    ``LpProblem.solve`` is patched while at least one run is open (reference-counted, under a
    lock) and restored when the last one ends; PuLP is never imported by emstrack itself: a
    run opened before the pipeline imports PuLP captures nothing.
    """

    name = "PuLP solve capture"

    def start(self, run: RunHandle) -> _Capture | None:
        """Patch ``LpProblem.solve`` for the first open run; ``None`` when PuLP is not loaded."""
        global _open_runs, _original_solve
        if "pulp" not in sys.modules:
            return None
        import pulp

        capture = _Capture(log_model=run.log_model_format)
        with _patch_lock:
            _open_runs += 1
            if _open_runs == 1:
                _original_solve = pulp.LpProblem.solve
                pulp.LpProblem.solve = _patched_solve
        return capture

    def end(self, run: RunHandle, capture: _Capture) -> None:
        """Write the run's solve totals; restore ``LpProblem.solve`` after the last run."""
        global _open_runs, _original_solve
        with _patch_lock:
            _open_runs -= 1
            if _open_runs == 0:
                import pulp

                if pulp.LpProblem.solve is _patched_solve:
                    pulp.LpProblem.solve = _original_solve
                _original_solve = None
        if capture.solves:
            run.log_metrics(
                {
                    "solver.solves": capture.solves,
                    "solver.total_solve_time_s": capture.total_time_s,
                    "solver.non_optimal_solves": capture.non_optimal,
                }
            )
            if capture.worst is not None:
                run.set_tags({"solver.worst_status": capture.worst.status})


def is_patched() -> bool:
    """Whether ``LpProblem.solve`` is currently emstrack's capture (only while runs are open)."""
    module = sys.modules.get("pulp")
    return module is not None and module.LpProblem.solve is _patched_solve


HOOK = PulpCapture()
hooks.register(HOOK)
