"""Bayesian learning of each device's start-hour distribution.

Prior: the shipped start-hour table's row for the device, scaled to ``prior_strength``
pseudo-counts - Dirichlet(alpha_0 = prior_strength x p_prior) over the 24 local hours (a device
without a row gets a uniform prior). Every observed start at local hour h is one Bayesian update,
alpha_h += 1; the learned distribution is the posterior mean alpha / sum(alpha). With the default
strength of 12, the table weighs as much as 12 observed starts - about two weeks of a household's
dishwasher use - so a fortnight of data moves it noticeably without discarding it.

Divergences are Jensen-Shannon divergences in bits (base 2), between 0 and 1. Note that
``scipy.spatial.distance.jensenshannon`` returns the *square root* of this divergence (the JS
distance); its square, with ``base=2``, equals :func:`jensen_shannon_bits`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from emstrack.ems._columns import TIMEZONE, device_column
from emstrack.ems._data import HouseholdData
from emstrack.ems._jobs import find_runs
from emstrack.schemas import DeviceLearningMetrics, LearningMetrics

FloatArray = npt.NDArray[np.float64]
HOURS = 24
DEFAULT_PRIOR_STRENGTH = 12.0


def jensen_shannon_bits(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Jensen-Shannon divergence of two distributions in bits (0 = equal, 1 = disjoint).

    JS(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M) with M = (P + Q) / 2 and log base 2; the inputs are
    normalised to sum to 1 first.

    Raises:
        ValueError: If the inputs differ in shape, are negative or sum to zero.

    """
    first, second = _distribution(p), _distribution(q)
    if first.shape != second.shape:
        raise ValueError(f"distributions differ in shape: {first.shape} vs {second.shape}")
    middle = (first + second) / 2.0
    divergence = 0.5 * _kl_bits(first, middle) + 0.5 * _kl_bits(second, middle)
    return float(min(max(divergence, 0.0), 1.0))


def _distribution(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    total = array.sum()
    if (array < 0).any() or not total > 0:
        raise ValueError("a distribution needs non-negative values with a positive sum")
    normalised: FloatArray = array / total
    return normalised


def _kl_bits(p: FloatArray, q: FloatArray) -> float:
    support = p > 0
    return float(np.sum(p[support] * np.log2(p[support] / q[support])))


@dataclass(frozen=True)
class StartHourPosterior:
    """Dirichlet posterior over a device's 24 local start hours.

    Attributes:
        prior_alpha: Prior pseudo-counts per hour.
        counts: Observed starts per hour.

    """

    prior_alpha: FloatArray
    counts: FloatArray

    @classmethod
    def from_prior(cls, probabilities: npt.ArrayLike, strength: float) -> StartHourPosterior:
        """Dirichlet prior with ``strength`` pseudo-counts spread like ``probabilities``."""
        if strength <= 0:
            raise ValueError(f"prior strength must be > 0, got {strength}")
        return cls(strength * _distribution(probabilities), np.zeros(HOURS))

    @property
    def alpha(self) -> FloatArray:
        """Posterior Dirichlet parameters."""
        return self.prior_alpha + self.counts

    @property
    def mean(self) -> FloatArray:
        """Posterior mean start-hour distribution."""
        return _distribution(self.alpha)

    @property
    def prior_mean(self) -> FloatArray:
        """The prior's start-hour distribution."""
        return _distribution(self.prior_alpha)

    @property
    def observations(self) -> int:
        """Starts observed so far."""
        return int(self.counts.sum())

    def updated(self, hour: int) -> StartHourPosterior:
        """Return the posterior after observing one start at local ``hour``."""
        counts = self.counts.copy()
        counts[hour] += 1.0
        return StartHourPosterior(self.prior_alpha, counts)


@dataclass(frozen=True)
class DeviceLearning:
    """How one device's distribution evolved over the training days.

    Attributes:
        device: Device type.
        posterior: The final posterior.
        starts_per_day: Local start hours observed on each training day.
        js_to_prior_bits: JS(posterior, prior) at the end of each day.
        js_change_bits: JS between the posteriors at the end of consecutive days (day 0: against
            the prior).
        last_update_js_bits: JS between the posterior after the last start and the one before
            it (0 without any start).

    """

    device: str
    posterior: StartHourPosterior
    starts_per_day: tuple[tuple[int, ...], ...]
    js_to_prior_bits: tuple[float, ...]
    js_change_bits: tuple[float, ...]
    last_update_js_bits: float

    def metrics(self) -> DeviceLearningMetrics:
        """Return the schema figures of this device."""
        return DeviceLearningMetrics(
            js_divergence=jensen_shannon_bits(self.posterior.mean, self.posterior.prior_mean),
            learning_updates=self.posterior.observations,
            convergence_rate=self.last_update_js_bits,
        )


def learn_start_hours(
    device: str,
    prior: StartHourPosterior,
    starts_per_day: Sequence[Iterable[int]],
) -> DeviceLearning:
    """Apply one Bayesian update per observed start, day by day.

    Args:
        device: Device type.
        prior: The prior (a posterior without observations).
        starts_per_day: For each training day, the local hours at which the device started.

    """
    posterior, previous_update = prior, prior
    to_prior: list[float] = []
    change: list[float] = []
    observed: list[tuple[int, ...]] = []
    for day_starts in starts_per_day:
        day_start = posterior
        hours = tuple(int(h) for h in day_starts)
        for hour in hours:
            previous_update, posterior = posterior, posterior.updated(hour)
        observed.append(hours)
        to_prior.append(jensen_shannon_bits(posterior.mean, prior.mean))
        change.append(jensen_shannon_bits(posterior.mean, day_start.mean))
    last_update = (
        jensen_shannon_bits(posterior.mean, previous_update.mean) if posterior.observations else 0.0
    )
    return DeviceLearning(
        device, posterior, tuple(observed), tuple(to_prior), tuple(change), last_update
    )


def daily_start_hours(
    data: HouseholdData, device: str, days: Sequence[date], threshold_kwh: float
) -> list[tuple[int, ...]]:
    """Local start hours of ``device`` on each of ``days``.

    Starts are detected on the building's whole series, so a run already going at midnight of a
    training day counts on the day it started, not again.
    """
    by_day: dict[date, list[int]] = {day: [] for day in days}
    for run in find_runs(data.hourly[device_column(device)], device, threshold_kwh):
        local = run.start.tz_convert(TIMEZONE)
        if local.date() in by_day:
            by_day[local.date()].append(int(local.hour))
    return [tuple(by_day[day]) for day in days]


def learning_metrics(devices: Sequence[DeviceLearning], training_days: int) -> LearningMetrics:
    """Per-device and overall figures; ``avg_convergence`` averages the trained devices."""
    trained = [d for d in devices if d.posterior.observations > 0]
    return LearningMetrics(
        devices={d.device: d.metrics() for d in devices},
        devices_trained=len(trained),
        training_days=training_days,
        avg_convergence=float(np.mean([d.last_update_js_bits for d in trained]))
        if trained
        else 0.0,
    )


def updates_frame(devices: Sequence[DeviceLearning], n_days: int) -> pd.DataFrame:
    """One row per training day (index ``day``), numeric columns per device."""
    columns: dict[str, object] = {}
    for learned in devices:
        starts = [len(day) for day in learned.starts_per_day]
        columns |= {
            f"{learned.device}_starts": starts,
            f"{learned.device}_observations": np.cumsum(starts),
            f"{learned.device}_js_to_prior_bits": learned.js_to_prior_bits,
            f"{learned.device}_js_change_bits": learned.js_change_bits,
        }
    return pd.DataFrame(columns, index=pd.RangeIndex(n_days, name="day"))
