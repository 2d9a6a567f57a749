"""Bayesian start-hour learning and Jensen-Shannon divergence in bits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from emstrack.ems import StartHourPosterior, jensen_shannon_bits, learn_device_usage
from emstrack.ems._learning import learn_start_hours


class TestJensenShannon:
    def test_matches_a_hand_computed_value(self) -> None:
        """JS((1/4, 3/4), (3/4, 1/4)) = 3/4 log2(3) - 1 bits."""
        assert jensen_shannon_bits([0.25, 0.75], [0.75, 0.25]) == pytest.approx(
            0.75 * math.log2(3) - 1, abs=1e-15
        )

    def test_bounds_identical_and_disjoint(self) -> None:
        """Identical distributions give 0 bits, disjoint ones exactly 1 bit."""
        assert jensen_shannon_bits([0.2, 0.8], [0.2, 0.8]) == 0.0
        assert jensen_shannon_bits([1, 0, 0], [0, 0.5, 0.5]) == pytest.approx(1.0)

    def test_equals_squared_scipy_distance_in_base_2(self) -> None:
        """scipy's jensenshannon is the square root of the divergence: squared, they agree."""
        rng = np.random.default_rng(7)
        for _ in range(20):
            p, q = rng.dirichlet(np.ones(24)), rng.dirichlet(np.ones(24))
            assert jensen_shannon_bits(p, q) == pytest.approx(
                jensenshannon(p, q, base=2) ** 2, rel=1e-12
            )
            assert jensen_shannon_bits(p, q) < jensenshannon(p, q, base=2)

    def test_inputs_are_normalised(self) -> None:
        """Counts and the probabilities they imply give the same divergence."""
        assert jensen_shannon_bits([1, 3], [3, 1]) == jensen_shannon_bits(
            [0.25, 0.75], [0.75, 0.25]
        )

    def test_invalid_distributions_are_rejected(self) -> None:
        """Negative values, zero sums and shape mismatches are errors."""
        with pytest.raises(ValueError, match="non-negative"):
            jensen_shannon_bits([-0.1, 1.1], [0.5, 0.5])
        with pytest.raises(ValueError, match="positive sum"):
            jensen_shannon_bits([0, 0], [0.5, 0.5])
        with pytest.raises(ValueError, match="shape"):
            jensen_shannon_bits([0.5, 0.5], [1 / 3] * 3)


class TestDirichletPosterior:
    def test_prior_alpha_is_strength_times_probabilities(self) -> None:
        """A uniform prior of strength 24 has alpha = 1 in every hour."""
        prior = StartHourPosterior.from_prior(np.ones(24), strength=24.0)
        np.testing.assert_allclose(prior.alpha, np.ones(24))
        assert prior.observations == 0

    def test_each_start_adds_one_count_to_its_hour(self) -> None:
        """Two starts at 07:00 make alpha_7 = 3 and the posterior mean 3/26 there."""
        posterior = StartHourPosterior.from_prior(np.ones(24), 24.0).updated(7).updated(7)
        assert posterior.alpha[7] == 3.0
        assert posterior.mean[7] == pytest.approx(3 / 26)
        assert posterior.mean[0] == pytest.approx(1 / 26)
        assert posterior.observations == 2

    def test_strength_sets_how_far_one_observation_moves_the_mean(self) -> None:
        """One start moves a weak prior further from itself than a strong one."""
        table = np.linspace(1, 2, 24)
        weak = StartHourPosterior.from_prior(table, 2.0)
        strong = StartHourPosterior.from_prior(table, 200.0)
        assert jensen_shannon_bits(weak.updated(3).mean, weak.mean) > jensen_shannon_bits(
            strong.updated(3).mean, strong.mean
        )

    def test_non_positive_strength_is_rejected(self) -> None:
        """A prior strength of 0 is an error."""
        with pytest.raises(ValueError, match="strength"):
            StartHourPosterior.from_prior(np.ones(24), 0.0)


class TestLearnStartHours:
    def test_day_by_day_trace_and_last_update(self) -> None:
        """Per-day JS values and the last update's JS follow from the Dirichlet arithmetic."""
        prior = StartHourPosterior.from_prior(np.ones(24), 24.0)
        learned = learn_start_hours("dishwasher", prior, [(7,), (), (7, 19)])
        assert learned.starts_per_day == ((7,), (), (7, 19))
        assert learned.js_change_bits[1] == 0.0  # no start, no change
        before_last = prior.updated(7).updated(7)
        assert learned.last_update_js_bits == pytest.approx(
            jensen_shannon_bits(before_last.updated(19).mean, before_last.mean)
        )
        assert learned.js_to_prior_bits[-1] == pytest.approx(
            jensen_shannon_bits(learned.posterior.mean, prior.mean)
        )
        metrics = learned.metrics()
        assert metrics.learning_updates == 3
        assert metrics.convergence_rate == learned.last_update_js_bits


class TestLearnDeviceUsage:
    def test_metrics_and_update_table_agree(self) -> None:
        """The per-day table has one row per day and sums to the metrics' observation counts."""
        learning = learn_device_usage("DE_KN_residential3", training_days=14)
        updates, metrics = learning.updates, learning.metrics
        assert len(updates) == 14
        assert metrics.training_days == 14
        assert set(metrics.devices) == {"dishwasher", "washing_machine"}
        for device, figures in metrics.devices.items():
            assert updates[f"{device}_starts"].sum() == figures.learning_updates > 0
            assert updates[f"{device}_observations"].iloc[-1] == figures.learning_updates
            assert updates[f"{device}_js_to_prior_bits"].iloc[-1] == pytest.approx(
                figures.js_divergence
            )
            assert 0 < figures.js_divergence < 1
        assert metrics.devices_trained == 2
        assert all(np.issubdtype(t, np.number) for t in updates.dtypes)

    def test_posterior_is_prior_plus_observed_counts(self) -> None:
        """posterior = (12 x prior + counts) / (12 + observations) for every hour."""
        learning = learn_device_usage("DE_KN_residential1", training_days=10)
        strength = learning.prior_strength
        for device in learning.posterior.index:
            counts = learning.observed_starts.loc[device].to_numpy()
            expected = (strength * learning.prior.loc[device].to_numpy() + counts) / (
                strength + counts.sum()
            )
            np.testing.assert_allclose(learning.posterior.loc[device], expected)

    def test_convergence_falls_with_more_training_data(self) -> None:
        """On residential3 the last update moves the posterior less after 20 days than after 3."""
        short = learn_device_usage("DE_KN_residential3", training_days=3).metrics
        long = learn_device_usage("DE_KN_residential3", training_days=20).metrics
        assert long.avg_convergence < short.avg_convergence
        for device in ("dishwasher", "washing_machine"):
            assert long.devices[device].convergence_rate < short.devices[device].convergence_rate
            assert long.devices[device].learning_updates > short.devices[device].learning_updates

    def test_likely_start_hours_apply_the_threshold(self) -> None:
        """Hours returned are exactly those with learned probability >= the threshold."""
        learning = learn_device_usage("DE_KN_residential2", training_days=14)
        hours = learning.likely_start_hours(0.05)
        for device, allowed in hours.items():
            row = learning.posterior.loc[device]
            assert set(allowed) == {h for h in range(24) if row[h] >= 0.05}

    def test_too_many_training_days_are_rejected(self) -> None:
        """Asking for more days than the sample holds names the number available."""
        with pytest.raises(ValueError, match="has 28 days"):
            learn_device_usage("DE_KN_residential2", training_days=29)
