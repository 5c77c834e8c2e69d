"""Confidence intervals used by validation and variant comparison.

- `wilson_interval(k, n)`: the Wilson score interval of a share of runs (closed form).
- `bootstrap_interval(samples, statistic, rng)`: a bootstrap interval of a statistic of
  one value per run (or per seed), resampling rows together (`scipy.stats.bootstrap`,
  `paired=True`): an ensemble statistic across runs, or the mean of per-seed differences
  between a variant and its base on common random numbers.

Every bootstrap draws from a numpy Generator the caller seeds (`sim.seeding.named_stream`),
so an interval is reproducible from the root seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats

__all__ = ["CONFIDENCE", "N_BOOTSTRAP", "bootstrap_interval", "wilson_interval"]

CONFIDENCE = 0.95  # coverage of every interval
N_BOOTSTRAP = 2000  # bootstrap resamples


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial share (Wilson 1927; Brown, Cai & DasGupta 2001).

    Closed form: centre (k + z²/2) / (n + z²), half-width z·sqrt(k(n-k)/n + z²/4) / (n + z²),
    with z the normal quantile of (1 + confidence) / 2. Unlike the normal (Wald) interval
    it stays within [0, 1] and does not collapse to a point at shares of 0 or 1, which is
    where the shares of a validation lie.

    Args:
        successes: runs showing the pattern (k, 0 <= k <= n).
        trials: runs (n).
        confidence: the interval's coverage (default 0.95).

    Returns:
        (low, high); (nan, nan) when `trials` is 0.
    """
    k, n = float(successes), float(trials)
    if n <= 0:
        return float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    denominator = n + z * z
    centre = (k + z * z / 2) / denominator
    half = z * math.sqrt(max(k * (n - k) / n, 0.0) + z * z / 4) / denominator
    share = k / n
    # Rounding can put an end a hair on the wrong side of the share (1 - 1e-16 for k = n):
    # the interval always contains the share.
    return max(0.0, min(centre - half, share)), min(1.0, max(centre + half, share))


def bootstrap_interval(
    samples: tuple[np.ndarray, ...],
    statistic: Callable,
    rng: np.random.Generator,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_BOOTSTRAP,
) -> tuple[float, float]:
    """A bootstrap interval of `statistic(*samples)`, resampling rows (paired across samples).

    `scipy.stats.bootstrap` with `paired=True` (the same rows of every sample are drawn
    together, as the values of one run or one seed belong together) and the BCa method
    (Efron 1987). Where BCa is undefined (a statistic constant on the jackknife samples, or
    undefined on some resamples) the percentile interval of the same bootstrap
    distribution is returned, ignoring resamples on which the statistic is undefined.

    Args:
        samples: one or more equal-length 1-D arrays (one value per run, or per seed).
        statistic: a function of the samples returning one float, NaN where undefined (not
            vectorised).
        rng: the numpy Generator of the resampling (seeded by the caller).
        confidence: coverage of the interval (default 0.95).
        n_resamples: bootstrap resamples.

    Returns:
        (low, high); (nan, nan) with fewer than 2 rows, or where the statistic is undefined
        on the data or on every resample.
    """
    samples = tuple(np.asarray(x, dtype=float) for x in samples)
    if len(samples[0]) < 2 or math.isnan(float(statistic(*samples))):
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate data: BCa is NaN, handled below
        result = stats.bootstrap(
            samples,
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="BCa",
            rng=rng,
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isnan(low) or math.isnan(high)):
        return low, high
    distribution = np.asarray(result.bootstrap_distribution, dtype=float)
    distribution = distribution[~np.isnan(distribution)]
    if distribution.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(distribution, tail)), float(np.percentile(distribution, 100 - tail))
