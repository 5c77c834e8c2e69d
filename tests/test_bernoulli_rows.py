"""sim.compiled.bernoulli_rows: independent Bernoulli(p) trials drawn by geometric skips.

Recruitment (who reconsiders) and deployment (who redeploys) draw their daily trials this
way, about n p draws instead of n. The tests check the rows' form (ascending, in range,
reproducible), the edges (p = 0, NaN, 1, tiny p), and, at fixed seeds with many replicates,
that the trials are Bernoulli(p) and independent: the count per day has the binomial mean and
variance, every row is chosen at the same rate, and neighbouring rows are chosen together at
rate p^2 (a skipping bug shows as too few or too many neighbours).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.compiled import bernoulli_rows


@given(st.integers(0, 2**32 - 1), st.integers(0, 3000), st.floats(0.0, 1.0))
def test_rows_are_ascending_distinct_in_range_and_reproducible(seed, n, p):
    rows = bernoulli_rows(np.random.default_rng(seed), n, p)
    assert rows.dtype == np.int64 and rows.ndim == 1
    assert np.all(np.diff(rows) > 0)
    assert len(rows) == 0 or (rows[0] >= 0 and rows[-1] < n)
    assert np.array_equal(rows, bernoulli_rows(np.random.default_rng(seed), n, p))


@pytest.mark.parametrize("p", [0.0, -0.5, math.nan, -math.inf])
def test_no_chance_gives_no_rows_and_draws_nothing(p):
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert len(bernoulli_rows(rng, 1000, p)) == 0
    assert rng.bit_generator.state == state


@pytest.mark.parametrize("p", [1.0, 1.5, math.inf, 1.0 - 1e-17])
def test_certainty_gives_every_row(p):
    assert np.array_equal(bernoulli_rows(np.random.default_rng(2), 777, p), np.arange(777))


def test_a_tiny_chance_gives_no_rows_without_overflow():
    # Gaps of about 1e300 rows: compared as floats, never converted to integers.
    for p in (1e-300, 5e-324, 1e-17):
        assert len(bernoulli_rows(np.random.default_rng(3), 10**6, p)) == 0


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match="n must be >= 0"):
        bernoulli_rows(np.random.default_rng(0), -1, 0.5)


@pytest.mark.parametrize("seed", [20191101, 9002])
@pytest.mark.parametrize("p", [0.005, 0.05, 0.3, 0.9])
def test_trials_are_independent_bernoulli(seed, p):
    n, days = 2000, 600
    rng = np.random.default_rng(seed)
    chosen = np.zeros((days, n), dtype=bool)
    for day in range(days):
        chosen[day, bernoulli_rows(rng, n, p)] = True
    counts = chosen.sum(axis=1)
    # The count a day: binomial mean n p (5 standard errors) and variance n p (1 - p) (within 25%).
    assert abs(counts.mean() - n * p) < 5 * math.sqrt(n * p * (1 - p) / days)
    assert abs(counts.var(ddof=1) / (n * p * (1 - p)) - 1) < 0.25
    # Every row at the same rate: ten blocks of rows, each chosen at p (5 standard errors).
    per_block = chosen.reshape(days, 10, n // 10).mean(axis=(0, 2))
    assert np.all(np.abs(per_block - p) < 5 * math.sqrt(p * (1 - p) / (days * n / 10)))
    # Neighbours chosen together at p^2, and a row's chance does not depend on the row before.
    both = (chosen[:, 1:] & chosen[:, :-1]).mean()
    assert abs(both - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / (days * (n - 1))) + 1e-12
    # The first row is chosen at p too (the first gap starts at row 0).
    assert abs(chosen[:, 0].mean() - p) < 5 * math.sqrt(p * (1 - p) / days) + 1 / days


def test_more_chance_never_gives_fewer_rows_on_average():
    n, days = 1000, 300
    means = []
    for p in (0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0):
        rng = np.random.default_rng(11)
        means.append(np.mean([len(bernoulli_rows(rng, n, p)) for _ in range(days)]))
    assert means == sorted(means) and means[0] == 0 and means[-1] == n


class _CountingGenerator:
    """A Generator that counts the exponential draws taken from it."""

    def __init__(self, seed):
        self.rng, self.drawn = np.random.default_rng(seed), 0

    def standard_exponential(self, size):
        self.drawn += size
        return self.rng.standard_exponential(size)


@pytest.mark.parametrize(("p", "at_most"), [(0.005, 100), (0.05, 400), (0.5, 3100)])
def test_draws_are_about_n_p_not_n(p, at_most):
    # The point of skipping: at the baseline's p_reconsider a day costs a few dozen draws, not 5,580.
    for seed in range(20):
        rng = _CountingGenerator(seed)
        rows = bernoulli_rows(rng, 5580, p)
        assert len(rows) < rng.drawn <= at_most
