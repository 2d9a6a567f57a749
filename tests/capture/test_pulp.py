"""PuLP solve capture: solver_metrics() and automatic recording of solves inside runs."""

from __future__ import annotations

import dataclasses
import threading

import pulp
import pytest

from emstrack import SolverMetrics, solver_metrics, tracked_optimization, tracked_run
from emstrack._capture.pulp import is_patched


def _dispatch_problem(
    demand: float, capacity: float = 10.0, integer: bool = False
) -> pulp.LpProblem:
    """A tiny dispatch: buy `demand` kWh from two sources with limited capacity."""
    problem = pulp.LpProblem("dispatch", pulp.LpMinimize)
    category = pulp.LpInteger if integer else pulp.LpContinuous
    cheap = problem.add_variable("cheap", 0, capacity, cat=category)
    dear = problem.add_variable("dear", 0, capacity, cat=category)
    problem += 0.2 * cheap + 0.4 * dear
    problem += cheap + dear == demand, "balance"
    return problem


def _solve(problem: pulp.LpProblem) -> int:
    return problem.solve(pulp.PULP_CBC_CMD(msg=False))


class TestSolverMetrics:
    def test_optimal_lp(self):
        """An optimal LP reports status, objective, counts and the solver."""
        problem = _dispatch_problem(12.0)
        _solve(problem)
        metrics = solver_metrics(problem)
        assert metrics.status == "Optimal"
        assert metrics.status_code == 1
        assert metrics.is_optimal
        assert metrics.objective == pytest.approx(10 * 0.2 + 2 * 0.4)
        assert (metrics.variables, metrics.constraints, metrics.integer_variables) == (2, 1, 0)
        assert metrics.is_mip is False
        assert metrics.solver == "PULP_CBC_CMD"
        assert metrics.solve_time_s > 0

    def test_mip_counts_integer_variables(self):
        """A MIP is flagged and its integer variables counted."""
        problem = _dispatch_problem(12.0, integer=True)
        _solve(problem)
        metrics = solver_metrics(problem)
        assert metrics.is_mip
        assert metrics.integer_variables == 2

    def test_infeasible_is_reported_not_hidden(self):
        """Demand above both capacities is infeasible, and says so."""
        problem = _dispatch_problem(25.0)
        _solve(problem)
        metrics = solver_metrics(problem)
        assert (metrics.status, metrics.status_code) == ("Infeasible", -1)
        assert not metrics.is_optimal
        assert metrics.severity > solver_metrics(_solved(_dispatch_problem(1.0))).severity

    def test_unbounded(self):
        """An unbounded model is reported as such."""
        problem = pulp.LpProblem("unbounded", pulp.LpMaximize)
        x = problem.add_variable("x", lowBound=0)
        problem += x
        problem += x >= 1
        _solve(problem)
        assert solver_metrics(problem).status == "Unbounded"

    def test_not_solved(self):
        """A problem never solved reports Not Solved."""
        metrics = solver_metrics(_dispatch_problem(1.0))
        assert (metrics.status, metrics.status_code) == ("Not Solved", 0)

    def test_pulp4_solve_stats_are_read_by_their_attributes(self):
        """PuLP 4.x's LpSolveStats is read by its attributes (status_str, time, num_*, gap_rel).

        PuLP 4 needs Python >= 3.12 and is not installable here, so this stand-in carries
        exactly the attributes PuLP 4's LpSolveStats documents.
        """

        @dataclasses.dataclass
        class LpSolveStats:
            solver: str = "HiGHS"
            status: int = 1
            has_solution: bool = True
            time: float = 0.25
            objective: float | None = 12.5
            num_variables: int = 40
            num_constraints: int = 30
            is_mip: bool = True
            status_str: str = "Optimal"
            gap_rel: float | None = 0.0

        problem = _dispatch_problem(3.0, integer=True)
        metrics = solver_metrics(LpSolveStats(), problem)
        assert metrics == SolverMetrics(
            status="Optimal",
            status_code=1,
            objective=12.5,
            solve_time_s=0.25,
            variables=40,
            constraints=30,
            integer_variables=2,
            is_mip=True,
            solver="HiGHS",
            gap_rel=0.0,
        )

    def test_other_objects_are_rejected_clearly(self):
        """Anything else is a TypeError naming what is needed."""
        with pytest.raises(TypeError, match=r"pulp\.LpProblem or a pulp LpSolveStats"):
            solver_metrics(object())


def _solved(problem: pulp.LpProblem) -> pulp.LpProblem:
    _solve(problem)
    return problem


class TestCapture:
    def test_each_solve_is_one_step_with_totals(self, store):
        """n solves in a run give n steps of solver metrics and run-level totals."""
        demands = [3.0, 12.0, 25.0, 5.0]
        with tracked_run("capture") as run:
            for demand in demands:
                _solve(_dispatch_problem(demand))
        client = store.client
        history = client.get_metric_history(run.run_id, "solver.status_code")
        assert sorted((p.step, p.value) for p in history) == [(0, 1), (1, 1), (2, -1), (3, 1)]
        objectives = client.get_metric_history(run.run_id, "solver.objective")
        assert {p.step for p in objectives} == {0, 1, 2, 3}
        stored = client.get_run(run.run_id).data
        assert stored.metrics["solver.solves"] == 4
        assert stored.metrics["solver.non_optimal_solves"] == 1
        assert stored.metrics["solver.total_solve_time_s"] > 0
        assert stored.tags["solver.worst_status"] == "Infeasible"
        assert stored.tags["solver.name"] == "PULP_CBC_CMD"

    def test_infeasible_solve_is_recorded_as_infeasible(self, store):
        """An infeasible model inside a decorated pipeline is visible in its run."""

        @tracked_optimization
        def pipeline(demand):
            problem = _dispatch_problem(demand)
            _solve(problem)
            return {"status_code": problem.status}

        assert pipeline(30.0) == {"status_code": -1}
        (run,) = store.runs()
        assert run.data.tags["solver.status"] == "Infeasible"
        assert run.data.tags["solver.worst_status"] == "Infeasible"
        assert run.data.metrics["solver.status_code"] == -1

    def test_nothing_is_patched_outside_a_run(self, store):
        """LpProblem.solve is the original before and after a run, patched only inside."""
        original = pulp.LpProblem.solve
        assert not is_patched()
        with tracked_run("patch"):
            assert is_patched()
            with tracked_run("inner"):
                assert is_patched()
            assert is_patched()
        assert not is_patched()
        assert pulp.LpProblem.solve is original

    def test_patch_removed_after_a_failing_run(self, store):
        """An exception in the run still removes the patch."""
        with pytest.raises(RuntimeError), tracked_run("fails"):
            raise RuntimeError("x")
        assert not is_patched()

    def test_solves_in_other_threads_are_not_attributed(self, store):
        """A solve in a thread with no open run is not recorded in another thread's run."""
        done = threading.Event()

        def solve_elsewhere():
            _solve(_dispatch_problem(2.0))
            done.set()

        with tracked_run("mine") as run:
            _solve(_dispatch_problem(1.0))
            thread = threading.Thread(target=solve_elsewhere)
            thread.start()
            thread.join()
        assert done.is_set()
        assert store.client.get_run(run.run_id).data.metrics["solver.solves"] == 1

    def test_model_file_logged_on_request(self, store):
        """log_model='lp' writes each solved model as an .lp artifact."""
        with tracked_run("model", log_model="lp") as run:
            _solve(_dispatch_problem(4.0))
        models = store.artifact_root(run.run_id) / "models"
        (path,) = models.iterdir()
        assert path.name == "solve_0000_dispatch.lp"
        assert "balance" in path.read_text()

    def test_run_without_solves_has_no_solver_metrics(self, store):
        """A run that solves nothing gets no solver.* entries."""
        with tracked_run("idle") as run:
            pass
        data = store.client.get_run(run.run_id).data
        assert not [k for k in [*data.metrics, *data.tags] if k.startswith("solver.")]
