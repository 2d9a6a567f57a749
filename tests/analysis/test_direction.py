"""Whether higher or lower is better, read from a metric's name."""

from __future__ import annotations

import pytest

from emstrack.analysis import _direction


class TestDirection:
    """Higher or lower is better, from the metric's name."""

    @pytest.mark.parametrize(
        ("metric", "higher"),
        [
            ("savings_eur", True),
            ("avg_savings_pct", True),
            ("cost_savings", True),
            ("self_consumption_pct", True),
            ("convergence_achieved", True),
            ("total_cost", False),
            ("cost_per_kwh", False),
            ("optimization_time_seconds", False),
            ("constraint_violations", False),
            ("peak_import_kw", False),
            ("js_divergence", False),
            ("daily/import_costs", False),
            ("timestamp_offset", None),
            ("important_metric", None),
            ("convergence_rate", None),
            ("jobs_moved", None),
        ],
    )
    def test_direction_is_read_from_the_words_of_the_name(
        self, metric: str, higher: bool | None
    ) -> None:
        """Whole words decide, savings words before cost words; others are unknown."""
        assert _direction.infer(metric) is higher
