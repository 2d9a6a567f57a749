"""Solver selection by name."""

from __future__ import annotations

import pytest

from emstrack.ems import SOLVER_NAMES
from emstrack.ems._solvers import make_solver


class TestMakeSolver:
    @pytest.mark.parametrize("name", ["cbc", "highs", "CBC", " HiGHS "])
    def test_known_names_give_available_solvers(self, name: str) -> None:
        """cbc and highs, in any case, are available and silent."""
        solver = make_solver(name)
        assert solver.available()
        assert solver.msg is False

    def test_unknown_name_lists_the_valid_ones(self) -> None:
        """An unknown solver name is an error listing cbc and highs."""
        with pytest.raises(ValueError, match="valid solvers: cbc, highs"):
            make_solver("gurobi")

    def test_solver_names_constant(self) -> None:
        """SOLVER_NAMES exposes exactly the selectable names."""
        assert SOLVER_NAMES == ("cbc", "highs")
