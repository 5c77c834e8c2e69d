"""Tests for sim.design: experimental designs of a sweep and their `--set` strings."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import scenario

from sim.design import build_design, design_size, format_value, grid_levels, override_strings
from sim.schema import Sweep

OUT = ["killed_total"]


def sweep(parameters: dict, design: str = "grid", samples: int | None = None, **kw) -> Sweep:
    return Sweep(parameters=parameters, design=design, samples=samples, outputs=OUT, **kw)


MIXED = {
    "rules.clashes.p_max": {"low": 0.001, "high": 0.01},
    "factions.NDF.initial_fighters": {"low": 10, "high": 500, "integer": True},
    "patrons.X.funding_usd_day": {"low": 10.0, "high": 10_000.0, "log": True},
    "factions.NDF.exempts_conscription": [True, False],
    "rules.mediation.venues": ["a", "b", "c"],
}
RANGES = {
    "a": {"low": -1.0, "high": 2.0},
    "b": {"low": 1.0, "high": 1000.0, "log": True},
    "c": {"low": 0, "high": 9, "integer": True},
}


# --------------------------------------------------------------------------- grid


def test_grid_is_the_full_factorial():
    s = sweep({"x": [1, 2, 3], "y": ["u", "v"], "z": {"low": 0.0, "high": 1.0}}, samples=4)
    design = build_design(s, seed=0)
    assert len(design) == 3 * 2 * 4 == design_size(s)
    assert list(design.columns) == ["point", "x", "y", "z"]
    assert design["point"].tolist() == list(range(24))
    combos = set(map(tuple, design[["x", "y", "z"]].itertuples(index=False)))
    expected = set(itertools.product([1, 2, 3], ["u", "v"], np.linspace(0, 1, 4).tolist()))
    assert combos == expected


def test_grid_ranges_integer_and_log():
    assert grid_levels(sweep({"x": {"low": 1.0, "high": 1000.0, "log": True}}, samples=4).parameters["x"], 4) == [
        1.0,
        10.0,
        100.0,
        1000.0,
    ]
    s = sweep({"n": {"low": 0, "high": 3, "integer": True}, "f": {"low": 1.0, "high": 100.0, "log": True}}, samples=10)
    design = build_design(s, seed=0)
    levels = sorted(design["n"].unique())
    assert levels == [0, 1, 2, 3]  # 10 requested, rounded and de-duplicated
    assert design["n"].dtype == np.int64
    assert len(design) == 4 * 10 == design_size(s)
    f = np.sort(design["f"].unique())
    assert f[0] == 1.0 and f[-1] == 100.0
    ratios = f[1:] / f[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)  # evenly spaced in log


# --------------------------------------------------------------------------- random and lhs


@pytest.mark.parametrize("kind", ["random", "lhs"])
def test_sampled_designs_respect_types_and_bounds(kind):
    s = sweep(MIXED, kind, samples=600)
    design = build_design(s, seed=3)
    assert len(design) == 600 == design_size(s)
    assert list(design.columns) == ["point", *MIXED]
    p, n, f = (
        design["rules.clashes.p_max"],
        design["factions.NDF.initial_fighters"],
        design["patrons.X.funding_usd_day"],
    )
    assert p.between(0.001, 0.01).all()
    assert n.dtype == np.int64 and n.between(10, 500).all()
    assert f.between(10.0, 10_000.0).all()
    # log-uniform: half the draws below the geometric mean (100 * sqrt(10))
    assert abs((f < math.sqrt(10.0 * 10_000.0)).mean() - 0.5) < 0.06
    assert set(design["factions.NDF.exempts_conscription"]) == {True, False}
    assert set(design["rules.mediation.venues"]) == {"a", "b", "c"}
    record = design.to_dict("records")[0]
    assert type(record["rules.clashes.p_max"]) is float
    assert type(record["factions.NDF.initial_fighters"]) is int
    assert type(record["factions.NDF.exempts_conscription"]) is bool
    assert type(record["rules.mediation.venues"]) is str


def test_lhs_has_one_sample_per_stratum():
    n = 24
    s = sweep({**RANGES, "c": {"low": 0, "high": 11, "integer": True}, "l": ["p", "q", "r", "s"]}, "lhs", samples=n)
    design = build_design(s, seed=11)
    strata_a = np.floor((design["a"] - (-1.0)) / 3.0 * n).astype(int)
    assert sorted(strata_a) == list(range(n))
    strata_b = np.floor(np.log(design["b"]) / np.log(1000.0) * n).astype(int)  # strata in log space
    assert sorted(strata_b) == list(range(n))
    # 12 whole numbers, 4 list values: each equally often
    assert design["c"].value_counts().tolist() == [2] * 12
    assert design["l"].value_counts().tolist() == [6] * 4


# --------------------------------------------------------------------------- sobol


def test_sobol_blocks():
    n, d = 64, 3
    s = sweep(RANGES, "sobol", samples=n)
    design = build_design(s, seed=5)
    assert len(design) == n * (d + 2) == design_size(s)
    assert list(design.columns) == ["point", "a", "b", "c", "sobol_block", "sobol_column"]
    assert design["sobol_block"].tolist() == ["A"] * n + ["B"] * n + ["AB"] * (d * n)
    assert design["sobol_column"].tolist() == [-1] * (2 * n) + [i for i in range(d) for _ in range(n)]
    names = list(RANGES)
    a = design.iloc[:n][names].to_numpy(dtype=float)
    b = design.iloc[n : 2 * n][names].to_numpy(dtype=float)
    assert not np.allclose(a, b)
    for i in range(d):
        ab = design.iloc[(2 + i) * n : (3 + i) * n][names].to_numpy(dtype=float)
        others = [j for j in range(d) if j != i]
        np.testing.assert_array_equal(ab[:, others], a[:, others])
        np.testing.assert_array_equal(ab[:, i], b[:, i])
    assert design["a"].between(-1, 2).all() and design["b"].between(1, 1000).all()
    assert design["c"].dtype == np.int64 and design["c"].between(0, 9).all()


def test_sobol_rounds_samples_up_to_a_power_of_two():
    s = sweep(RANGES, "sobol", samples=100)
    with pytest.warns(UserWarning, match="power of 2.*N=128"):
        design = build_design(s, seed=0)
    assert len(design) == 128 * 5 == design_size(s)


# --------------------------------------------------------------------------- determinism and sizes


@pytest.mark.parametrize("kind", ["grid", "random", "lhs", "sobol"])
def test_deterministic_given_seed(kind):
    s = sweep(RANGES, kind, samples=16)
    first, again = build_design(s, seed=42), build_design(s, seed=42)
    pd.testing.assert_frame_equal(first, again)
    other = build_design(s, seed=43)
    if kind == "grid":
        pd.testing.assert_frame_equal(first, other)  # no randomness in a grid
    else:
        assert not first[list(RANGES)].equals(other[list(RANGES)])


@pytest.mark.parametrize(
    "s",
    [
        sweep({"x": [1, 2], "y": {"low": 0, "high": 2, "integer": True}, "z": {"low": 1.0, "high": 2.0}}, samples=7),
        sweep({"x": [True, False, True], "y": ["a"]}),
        sweep(MIXED, "random", samples=13),
        sweep(MIXED, "lhs", samples=9),
        sweep(RANGES, "sobol", samples=32),
        sweep({"x": {"low": 0.0, "high": 1.0}}, "sobol", samples=1),
    ],
    ids=["grid", "grid-lists", "random", "lhs", "sobol", "sobol-1d"],
)
def test_design_size_matches_build(s):
    assert design_size(s) == len(build_design(s, seed=1))


# --------------------------------------------------------------------------- --set strings


def test_floats_round_trip_exactly_through_yaml():
    rng = np.random.default_rng(0)
    values = [0.1, 0.1 + 0.2, 1e-5, 2.5e-300, 5e-324, 1e16, 1.7976931348623157e308, -3.0, 0.0, 123456789.123]
    values += (rng.standard_normal(200) * 10.0 ** rng.integers(-20, 20, 200)).tolist()
    for value in values:
        text = format_value(value)
        back = yaml.safe_load(text)
        assert type(back) is float and back == value, (value, text)


def test_override_strings_of_design_rows():
    s = sweep(MIXED, "random", samples=50)
    design = build_design(s, seed=9)
    for record in design.to_dict("records"):
        strings = override_strings(record, s.parameters)
        assert [t.split("=", 1)[0] for t in strings] == list(MIXED)
        parsed = {t.split("=", 1)[0]: yaml.safe_load(t.split("=", 1)[1]) for t in strings}
        for key in MIXED:
            assert parsed[key] == record[key] and type(parsed[key]) is type(record[key]), (key, strings)
    # rows from iterrows() turn ints into floats when columns are mixed; the spec restores them
    row = next(design[["rules.clashes.p_max", "factions.NDF.initial_fighters"]].iterrows())[1]
    strings = override_strings(row, {k: s.parameters[k] for k in row.index})
    assert "." not in strings[1].split("=", 1)[1]


def test_format_value_strings_and_bools():
    assert format_value(True) == "true" and format_value(np.bool_(False)) == "false"
    assert format_value(np.int64(7)) == "7"
    for text in ["NDF", "yes", "null", "1.5", "a b", "it's", "#x", "", "a: b", "2020-01-01", "x\ny"]:
        assert yaml.safe_load(format_value(text)) == text, text


def test_override_strings_load_as_scenario_overrides():
    strings = override_strings(
        {"rules.clashes.p_max": 1e-05, "rules.mediation.interval_days": 30.0},
        {"rules.clashes.p_max": {"low": 0.0, "high": 1.0}, "rules.mediation.interval_days": [30, 45]},
    )
    assert strings == ["rules.clashes.p_max=1.0e-05", "rules.mediation.interval_days=30"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = scenario(*strings)
    assert config.rules.clashes.p_max == 1e-05
    assert config.rules.mediation.interval_days == 30
