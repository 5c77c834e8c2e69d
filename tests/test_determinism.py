"""The same scenario and seed give the same run, bit for bit, however it is executed."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from sim.api import simulate
from sim.runner import run_model
from sim.seeding import replicate_seeds


def test_same_seed_same_run(baseline):
    a = run_model(baseline, seed=42, steps=60)
    b = run_model(baseline, seed=42, steps=60)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries, check_exact=True)
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)
    np.testing.assert_array_equal(a.influence, b.influence)


def test_different_seeds_differ(baseline):
    a = run_model(baseline, seed=1, steps=60).timeseries
    b = run_model(baseline, seed=2, steps=60).timeseries
    assert not a.equals(b)


@pytest.mark.slow
def test_serial_and_process_pool_give_identical_replicates():
    serial = simulate("baseline", seed=9, steps=40, replicates=3, workers=1)
    pooled = simulate("baseline", seed=9, steps=40, replicates=3, workers=2)
    pd.testing.assert_frame_equal(serial.timeseries, pooled.timeseries, check_exact=True)
    pd.testing.assert_frame_equal(serial.events, pooled.events, check_exact=True)


def test_a_replicate_reruns_alone_from_its_recorded_seed():
    many = simulate("baseline", seed=9, steps=30, replicates=3)
    third = many.results[2]
    alone = simulate("baseline", seed=third.seed, steps=30)
    pd.testing.assert_frame_equal(third.timeseries, alone.results[0].timeseries, check_exact=True)


def test_replicate_seeds_are_stable_prefixes():
    assert replicate_seeds(5, 3) == replicate_seeds(5, 10)[:3]
    assert len(set(replicate_seeds(5, 100))) == 100
    assert replicate_seeds(5, 1) == [5]


def test_model_never_touches_global_generators(baseline):
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    run_model(baseline, seed=3, steps=20)
    assert np.random.random() == expected_np
    assert random.random() == expected_py
