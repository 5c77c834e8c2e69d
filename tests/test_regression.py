"""The model reproduces its pinned regression figures exactly (tests/regression/pinned.json).

Exactly on every x86-64 CPU, with or without AVX-512: the model's exp, log and pow are the C
library's, not numpy's SIMD ones (`sim.compiled`).

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


def test_the_figures_are_the_same_with_numpys_cpu_specific_code_switched_off():
    """numpy picks SIMD code by CPU (float64 exp and log of its own with AVX-512, the C library's
    without); with every such feature of this CPU switched off (NPY_DISABLE_CPU_FEATURES) the
    figures are the same, so they are the same on CPUs with and without those features."""
    import json
    import os
    import subprocess
    import sys

    import numpy as np
    from helpers import PROJECT

    from tests.regression.figures import run_figures

    core = getattr(np, "_core", None) or np.core
    umath = core._multiarray_umath
    features = [name for name in umath.__cpu_dispatch__ if umath.__cpu_features__.get(name)]
    keys = ("baseline+stress/7", "tribes_courted_by_irgc/1")
    code = (
        "import json, sys\n"
        "from numpy import _core\n"
        "from tests.regression.figures import RUNS, STEPS, run_figures\n"
        f"on = [f for f in {features!r} if _core._multiarray_umath.__cpu_features__.get(f)]\n"
        "assert not on, on\n"
        f"print(json.dumps({{k: run_figures(*RUNS[k][:2], STEPS, RUNS[k][2]) for k in {keys!r}}}))\n"
    )
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(features)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    switched_off = json.loads(out.stdout)
    here = json.loads(json.dumps({k: run_figures(*RUNS[k][:2], STEPS, RUNS[k][2]) for k in keys}))
    assert switched_off == here
    assert switched_off == {k: PINNED["runs"][k] for k in keys}
