"""Variant comparison (sim.variants): expected directions, the paired bootstrap on synthetic data,
the table and its Markdown, and a small end-to-end comparison on the real scenarios with common
random numbers."""

from __future__ import annotations

import math
from argparse import Namespace

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS

from sim import variants as V
from sim.api import simulate
from sim.cli import main
from sim.outcomes import compute_outcomes
from sim.scenario import load_scenario
from sim.seeding import replicate_seeds
from sim.yaml_source import ScenarioError

# --------------------------------------------------------------------------- expectations


def test_expectation_directions_and_margins():
    up, down = V.Expectation("x", "+"), V.Expectation("x", "-")
    assert up.holds(0.1, 2.0, 10.0) and not up.holds(-0.1, 2.0, 10.0)
    assert down.holds(-2.0, -0.1, 10.0) and not down.holds(-2.0, 0.1, 10.0)
    assert up.holds(math.nan, 1.0, 10.0) is None  # no interval: undecided
    policy = V.Expectation("x", "-", 0.10)  # a cut of at least 10 % of the base mean
    assert policy.holds(-5.0, -1.5, 10.0) and not policy.holds(-5.0, -0.5, 10.0)
    not_lower = V.Expectation("x", "not lower", 0.05)  # a loss above 5 % is excluded
    assert not_lower.holds(-0.4, 3.0, 10.0) and not not_lower.holds(-0.6, 3.0, 10.0)
    assert (policy.label, not_lower.label, up.label) == ("- (≥ 10%)", "not lower (by > 5%)", "+")
    with pytest.raises(ValueError):
        V.Expectation("x", "up").holds(0.0, 1.0, 1.0)


def test_expectations_are_data_and_cover_the_issues_variants(baseline):
    plan = V.variant_expectations(baseline)  # the baseline's validation.variants
    assert list(plan) == [
        "salary_parity",
        "ndf_exemption",
        "supply_route_closed",
        "patrons_agree",
        "isis_resurgence",
        "tribes_courted_by_irgc",
    ]
    assert plan["supply_route_closed"][0] == plan["isis_resurgence"][0] == "any"
    assert plan["salary_parity"][0] == "all"
    named = {(v, e.outcome): e.direction for v, (_, es) in plan.items() for e in es}
    assert named[("salary_parity", "defections.NDF>IRGC")] == "-"
    assert named[("ndf_exemption", "defections.NDF>IRGC")] == "-"
    assert named[("supply_route_closed", "fighters_final.IRGC")] == "-"
    assert named[("patrons_agree", "clashes_total")] == "-"
    assert named[("patrons_agree", "agreements_total")] == "+"
    assert named[("patrons_agree", "insurgent_peak")] == "-"
    assert named[("isis_resurgence", "insurgent_peak")] == "+"
    assert named[("tribes_courted_by_irgc", "alignment_final.IRGC")] == "+"
    assert named[("tribes_courted_by_irgc", "fighters_final.IRGC")] == "not lower"
    assert plan["patrons_agree"][1][2].margin == 0.10 and plan["tribes_courted_by_irgc"][1][1].margin == 0.05
    every = {e.outcome for _, es in plan.values() for e in es}
    assert every <= set(V.default_outcomes(baseline))
    assert V.variant_expectations(baseline.model_copy(update={"validation": None})) == {}


# --------------------------------------------------------------------------- the paired bootstrap


def synthetic_runs(shift: float, n: int = 30, noise: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Base and one variant at the same seeds: the variant is the base plus `shift` plus small noise.

    The base varies a lot from seed to seed (sd 50), far more than the shift: only the pairing
    lets a small shift show.
    """
    rng = np.random.default_rng(seed)
    seeds = np.arange(1000, 1000 + n)
    base = rng.normal(100, 50, n)
    variant = base + shift + rng.normal(0, noise, n)
    return pd.DataFrame(
        {
            "scenario": ["base"] * n + ["variant"] * n,
            "replicate": list(range(n)) * 2,
            "seed": list(seeds) * 2,
            "y": np.concatenate([base, variant]),
        }
    )


def test_a_known_positive_shift_gives_an_interval_above_zero():
    runs = synthetic_runs(shift=2.0)
    expectations = {"variant": (V.Expectation("y", "+"),)}
    table = V.paired_differences(runs, "base", ["variant"], ["y"], root_seed=1, expectations=expectations)
    row = table.iloc[0]
    assert row["n_pairs"] == 30 and row["mean_diff"] == pytest.approx(2.0, abs=0.5)
    assert 0 < row["ci_low"] < row["mean_diff"] < row["ci_high"]
    assert bool(row["as_expected"]) and row["expected"] == "+"
    # Unpaired, the same shift is lost in the between-seed spread (sd 50): pairing is what shows it.
    b, v = runs.loc[runs.scenario == "base", "y"], runs.loc[runs.scenario == "variant", "y"]
    unpaired_se = math.sqrt(b.var() / len(b) + v.var() / len(v))
    assert unpaired_se > row["mean_diff"]
    # Expecting the other direction fails.
    wrong = V.paired_differences(runs, "base", ["variant"], ["y"], 1, {"variant": (V.Expectation("y", "-"),)})
    assert not bool(wrong.iloc[0]["as_expected"])


def test_no_shift_gives_an_interval_across_zero():
    runs = synthetic_runs(shift=0.0)
    table = V.paired_differences(runs, "base", ["variant"], ["y"], 1, {"variant": (V.Expectation("y", "+"),)})
    row = table.iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"]
    assert not bool(row["as_expected"])


def test_the_bootstrap_is_seeded_and_pairs_by_seed():
    runs = synthetic_runs(shift=2.0)
    first = V.paired_differences(runs, "base", ["variant"], ["y"], root_seed=1)
    again = V.paired_differences(runs.sample(frac=1, random_state=3), "base", ["variant"], ["y"], root_seed=1)
    pd.testing.assert_frame_equal(first, again)  # same seed, same interval; row order does not matter
    other = V.paired_differences(runs, "base", ["variant"], ["y"], root_seed=2)
    assert other.iloc[0]["ci_low"] != first.iloc[0]["ci_low"]
    # A seed run in only one scenario, or an undefined value, drops its pair.
    missing = runs.drop(index=runs.index[(runs.scenario == "variant") & (runs.seed == 1000)])
    missing.loc[(missing.scenario == "base") & (missing.seed == 1001), "y"] = np.nan
    assert V.paired_differences(missing, "base", ["variant"], ["y"], 1).iloc[0]["n_pairs"] == 28
    assert first.iloc[0]["expected"] == "" and pd.isna(first.iloc[0]["as_expected"])  # no expectation given


def test_variant_verdicts_combine_all_or_any():
    table = pd.DataFrame(
        {
            "variant": ["supply_route_closed"] * 2 + ["patrons_agree"] * 2 + ["other"],
            "outcome": ["a", "b", "a", "b", "a"],
            "expected": ["-", "-", "-", "+", ""],
            "as_expected": pd.array([True, False, True, False, None], dtype="boolean"),
            "variant_rule": ["any", "any", "all", "all", "all"],
        }
    )
    assert V.variant_verdicts(table) == {"supply_route_closed": True, "patrons_agree": False}


# --------------------------------------------------------------------------- end to end

STEPS = 30
REPLICATES = 3
ROOT = 11


@pytest.fixture(scope="module")
def comparison():
    return V.compare_variants(
        "baseline", ["salary_parity", "patrons_agree"], replicates=REPLICATES, seed=ROOT, workers=1, steps=STEPS
    )


def test_compare_variants_runs_every_scenario_at_the_same_seeds(comparison):
    runs = comparison.attrs["runs"]
    assert list(runs["scenario"].unique()) == ["baseline", "salary_parity", "patrons_agree"]
    seeds = replicate_seeds(ROOT, REPLICATES)
    for _, group in runs.groupby("scenario"):
        assert list(group["seed"]) == seeds  # common random numbers
    # A base run's outcomes are those of the same run made by `run.py run` (one function runs a model).
    single = simulate("baseline", seed=seeds[1], steps=STEPS).results[0]
    names = V.default_outcomes(load_scenario(SCENARIOS / "baseline.yaml"))
    expected = compute_outcomes(names, single.timeseries, single.events, single.meta)
    row = runs[(runs.scenario == "baseline") & (runs.replicate == 1)].iloc[0]
    for name in names:
        assert row[name] == pytest.approx(expected[name], nan_ok=True), name


@pytest.mark.slow
def test_compare_variants_is_identical_with_worker_processes(comparison):
    parallel = V.compare_variants(
        "baseline", ["salary_parity", "patrons_agree"], replicates=REPLICATES, seed=ROOT, workers=2, steps=STEPS
    )
    pd.testing.assert_frame_equal(parallel.attrs["runs"], comparison.attrs["runs"], check_exact=True)
    pd.testing.assert_frame_equal(parallel, comparison, check_exact=True)


def test_compare_variants_table(comparison):
    table = comparison
    assert len(table) == 2 * len(V.default_outcomes(load_scenario(SCENARIOS / "baseline.yaml")))
    assert list(table["variant"].unique()) == ["salary_parity", "patrons_agree"]
    assert (table["n_pairs"] == REPLICATES).all()
    runs = table.attrs["runs"]
    row = table[(table.variant == "salary_parity") & (table.outcome == "defections.NDF>IRGC")].iloc[0]
    base = runs.loc[runs.scenario == "baseline", "defections.NDF>IRGC"].to_numpy()
    parity = runs.loc[runs.scenario == "salary_parity", "defections.NDF>IRGC"].to_numpy()
    assert row["mean_diff"] == pytest.approx((parity - base).mean())
    assert row["ci_low"] <= row["mean_diff"] <= row["ci_high"]
    # 3 pairs < V.MIN_PAIRS: the difference is reported, not judged (a BCa interval over 3 seeds is too narrow).
    assert row["expected"] == "-" and pd.isna(row["as_expected"])
    text = V.render_variant_table(table)
    assert f"too few runs (3 < {V.MIN_PAIRS} pairs)" in text and "| yes |" not in text
    assert "| `salary_parity` | `defections.NDF>IRGC` | - |" in text
    assert "common random numbers" in text and "<details>" in text
    assert "- `patrons_agree` (all of its expected moves):" in text


def test_cli_compare_variants(tmp_path, capsys):
    args = Namespace(
        base="baseline",
        variants=["salary_parity"],
        replicates=2,
        seed=3,
        steps=10,
        workers=1,
        dask=None,
        overrides=[],
        out=tmp_path / "v",
    )
    code = V.cli_compare_variants(args)
    printed = capsys.readouterr().out
    assert code in (0, 1) and "defections.NDF>IRGC" in printed and str(tmp_path / "v") in printed
    # 2 pairs of runs: every row and the whole say why nothing is judged (pandas printed <NA>), exit 1
    assert code == 1 and "<NA>" not in printed and "too few runs (2 < 10 pairs)" in printed
    assert "not judged: too few runs (2 < 10 pairs of runs; --replicates 10 or more)" in printed
    for name in ("variants.csv", "variant_runs.csv", "VARIANTS.md"):
        assert (tmp_path / "v" / name).is_file(), name
    table = pd.read_csv(tmp_path / "v" / "variants.csv")
    assert {"variant", "outcome", "expected", "mean_diff", "ci_low", "ci_high", "as_expected"} <= set(table.columns)
    text = (tmp_path / "v" / "VARIANTS.md").read_text(encoding="utf-8")
    assert "python run.py compare-variants baseline --variant salary_parity --replicates 2 --seed 3" in text
    with pytest.raises(ScenarioError):
        V.cli_compare_variants(Namespace(**{**vars(args), "variants": ["no_such_variant"], "out": tmp_path / "w"}))
    assert not (tmp_path / "w").exists()


def test_run_py_compare_variants_refuses_bad_input(tmp_path, capsys):
    assert main(["compare-variants", "baseline", "--variant", "no_such_variant", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_write_docs_includes_the_variant_table(tmp_path, comparison):
    from sim import patterns as P

    report = P.validate("toy_two_towns", replicates=2, seed=3, steps=20)
    docs = tmp_path / "docs"
    text = P.write_docs(report, docs, variants=comparison).read_text(encoding="utf-8")
    assert "## Variants" in text and "| `salary_parity` | `defections.NDF>IRGC` | - |" in text
    assert (docs / "validation" / "variants.csv").is_file()
    # Regenerated without a table, the published one is kept.
    text = P.write_docs(report, docs).read_text(encoding="utf-8")
    assert text.count("## Variants") == 1 and "| `salary_parity` | `defections.NDF>IRGC` | - |" in text


def test_with_fewer_than_min_pairs_no_expectation_is_judged():
    """compare-variants gave 'yes' on 3 seeds; the same shift is judged from V.MIN_PAIRS pairs on."""
    expectations = {"variant": (V.Expectation("y", "+"),)}
    runs = synthetic_runs(shift=2.0)
    few = runs[runs["seed"].isin(sorted(set(runs["seed"]))[: V.MIN_PAIRS - 1])]
    enough = runs[runs["seed"].isin(sorted(set(runs["seed"]))[: V.MIN_PAIRS])]
    assert pd.isna(V.paired_differences(few, "base", ["variant"], ["y"], 1, expectations).iloc[0]["as_expected"])
    judged = V.paired_differences(enough, "base", ["variant"], ["y"], 1, expectations).iloc[0]["as_expected"]
    assert not pd.isna(judged)
