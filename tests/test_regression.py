"""The model reproduces its pinned regression figures exactly (tests/regression/pinned.json).

Exactly but for the leaders' alignment across CPUs: numpy's exp differs in the last bit
between CPUs with and without AVX-512, and the alignment is compared to within a few units
in the last place (`tests.regression.figures.CPU_DEPENDENT`); on one machine it is exact.

If this fails after a change meant to keep the model's behaviour, the change moved a draw or
an arithmetic step. If the change was meant to alter behaviour, run `make regression-update`
and commit the new file with the reason.
"""

import pytest

from tests.regression.figures import RUNS, STEPS, differences, load_pinned, run_figures

PINNED = load_pinned()


def test_every_run_is_pinned():
    assert PINNED["steps"] == STEPS
    assert sorted(PINNED["runs"]) == sorted(RUNS), "make regression-update after adding or removing a run"


@pytest.mark.parametrize("key", sorted(RUNS))
def test_pinned_figures_reproduced_exactly(key):
    scenario, seed, overrides = RUNS[key]
    pinned = PINNED["runs"][key]
    assert len(pinned) >= 20
    lines = differences({key: pinned}, {key: run_figures(scenario, seed, STEPS, overrides)})
    assert not lines, "regression figures changed (make regression-update if on purpose):\n" + "\n".join(lines)


def test_differences_reports_each_kind_of_change():
    old = {"r": {"a": 1, "b": 2.5, "c": "x"}}
    new = {"r": {"a": 1, "b": 2.5000000000000004, "d": 3}}
    lines = differences(old, new)
    assert lines == ["r: b 2.5 -> 2.5000000000000004", "r: c removed (was 'x')", "r: d added = 3"]


def test_only_the_cpu_dependent_figures_get_a_few_units_in_the_last_place():
    """numpy's exp differs between CPUs with and without AVX-512 in the last bit: the alignment
    (a year of exp updates) moved by up to 17 ulps; it is allowed 64, nothing else any."""
    import numpy as np

    from tests.regression.figures import CPU_ULPS

    x = 0.2936653587945933
    near, far = x + 17 * np.spacing(x), x + (CPU_ULPS + 1) * np.spacing(x)
    old = {"r": {"final.alignment.t.IRGC": x, "final.budget.IRGC": x}}
    assert differences(old, {"r": {"final.alignment.t.IRGC": near, "final.budget.IRGC": x}}) == []
    assert differences(old, {"r": {"final.alignment.t.IRGC": far, "final.budget.IRGC": x}}) == [
        f"r: final.alignment.t.IRGC {x!r} -> {far!r}"
    ]
    assert differences(old, {"r": {"final.alignment.t.IRGC": x, "final.budget.IRGC": near}}) == [
        f"r: final.budget.IRGC {x!r} -> {near!r}"
    ]
