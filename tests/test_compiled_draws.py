"""Drawing inside a kernel (`sim.compiled.generator_at`): numpy's values, in numpy's order, from the model's generators.

A kernel that draws through `generator_at` must give the numbers the numpy call it stands for
gives, and leave the Python Generator in the state that call leaves it in: the processes that
draw inside their kernels (deployment, recruitment, clashes and looting) are then the same
runs, bit for bit, as when they drew call by call (the regression pin checks the runs).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import PROJECT
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import compiled
from sim.compiled import (
    bernoulli_rows,
    drawn_bernoulli_rows,
    drawn_gumbel,
    generator_addresses,
    generator_at,
    kernel,
    skip_plan,
)
from sim.seeding import named_stream


@kernel
def _uniforms_exponentials_gumbels(addresses, n):  # pragma: no cover - compiled
    rng = generator_at(addresses)
    u, e, g = np.empty(n), np.empty(n), np.empty(n)
    for j in range(n):
        u[j] = rng.random()
    for j in range(n):
        e[j] = rng.standard_exponential()
    for j in range(n):
        g[j] = drawn_gumbel(rng, 0.0, 1.0)
    return u, e, g


@kernel
def _bernoulli(addresses, n, rate, block):  # pragma: no cover - compiled
    return drawn_bernoulli_rows(generator_at(addresses), n, rate, block)


def _same_state(a, b) -> bool:
    """Whether two bit generators' `state` dicts are equal (Philox's holds arrays)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    return bool(np.array_equal(a, b))


GENERATORS = {
    "model stream": lambda seed: named_stream(seed, "deployment"),  # the model's own: PCG64 from a SeedSequence
    "PCG64": np.random.default_rng,
    "Philox": lambda seed: np.random.Generator(np.random.Philox(seed)),
    "SFC64": lambda seed: np.random.Generator(np.random.SFC64(seed)),
}


@pytest.mark.parametrize("kind", GENERATORS)
def test_draws_inside_a_kernel_are_numpys_and_advance_the_generator_as_numpy_does(kind):
    for seed in range(5):
        inside, outside = GENERATORS[kind](seed), GENERATORS[kind](seed)
        u, e, g = _uniforms_exponentials_gumbels(generator_addresses(inside), 20_000)
        assert np.array_equal(u, outside.random(20_000))
        assert np.array_equal(e, outside.standard_exponential(20_000))
        expected = outside.gumbel(size=20_000)
        assert np.array_equal(g, expected) and np.array_equal(np.signbit(g), np.signbit(expected))
        # the Python object's state moved on with the kernel's draws: the next draws agree too
        assert np.array_equal(inside.random(7), outside.random(7))
        assert _same_state(inside.bit_generator.state, outside.bit_generator.state)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 30_000),
    p=st.one_of(
        st.floats(0.0, 1.0),
        st.sampled_from([0.0, 1.0, 5e-324, 1e-9, 0.005, 0.05, 0.5, 1.5, -0.1, float("nan")]),
    ),
)
def test_bernoulli_rows_inside_a_kernel_are_the_same_rows_and_draws(seed, n, p):
    inside, outside = np.random.default_rng(seed), np.random.default_rng(seed)
    rows = _bernoulli(generator_addresses(inside), n, *skip_plan(n, p))
    assert np.array_equal(rows, bernoulli_rows(outside, n, p))
    assert _same_state(inside.bit_generator.state, outside.bit_generator.state)


@pytest.mark.parametrize("kind", GENERATORS)
def test_sample_rows_are_numpys_choice_without_replacement(kind):
    """`casualties.sample_rows` (compiled where numpy takes Floyd's algorithm) against `Generator.choice`:
    the same rows in the same order, and the generator left in the same state (a buffered 32-bit
    half of PCG64's included), on both sides of numpy's switch to a tail shuffle."""
    from sim.processes.casualties import sample_rows

    pick = np.random.default_rng(7)
    for seed in range(60):
        n = int(pick.choice([1, 2, 3, 5, 17, 100, 1_000, 10_000, 10_001, 20_000]))
        size = n if seed % 5 == 0 and n <= 10_000 else int(pick.integers(1, min(n, 300) + 1))
        candidates = pick.permutation(3 * n)[:n].astype(np.int64)
        inside, outside = GENERATORS[kind](seed), GENERATORS[kind](seed)
        if seed % 2:
            inside.integers(0, 7, dtype=np.int32), outside.integers(0, 7, dtype=np.int32)
        rows = sample_rows(inside, candidates, size)
        expected = outside.choice(candidates, size=size, replace=False)
        assert rows.dtype == expected.dtype and np.array_equal(rows, expected), (seed, n, size)
        assert _same_state(inside.bit_generator.state, outside.bit_generator.state)
        assert inside.integers(0, 100, dtype=np.int32) == outside.integers(0, 100, dtype=np.int32)


def test_the_addresses_are_read_once_per_generator_and_only_a_few_generators_are_kept():
    rng = np.random.default_rng(1)
    first = generator_addresses(rng)
    assert generator_addresses(rng) is first and not first.flags.writeable
    assert generator_at(first) is rng  # called from Python (as under NUMBA_DISABLE_JIT): the generator itself
    for seed in range(3 * compiled._ADDRESSES_KEPT):
        generator_addresses(np.random.default_rng(seed))
    assert len(compiled._ADDRESSES) <= compiled._ADDRESSES_KEPT  # a sweep's worker does not keep every run's
    with pytest.raises(LookupError):
        generator_at(first)  # forgotten: rng's addresses are no longer kept
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        generator_addresses(np.random.RandomState(1))


@pytest.mark.slow
def test_a_run_without_compiling_is_the_same_run(tmp_path):
    """With NUMBA_DISABLE_JIT the kernels run as Python, and the draws made inside them through
    `generator_at` come from the same generators: the same days as the compiled run."""
    script = (
        "import hashlib, sys\n"
        "from sim.scenario import load_scenario\nfrom sim.engine import Engine\n"
        "e = Engine(load_scenario('scenarios/toy_two_towns.yaml'), seed=5)\n"
        "for _ in range(4): e.step()\n"
        "df = e.datacollector.get_model_vars_dataframe()\n"
        "print(hashlib.sha256(df.to_csv().encode() + e.world.recruits.post.tobytes()).hexdigest())\n"
    )
    digests = []
    for disable in ("0", "1"):
        env = {**os.environ, "PYTHONPATH": str(PROJECT), "NUMBA_DISABLE_JIT": disable}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr[-3000:]
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]
