"""Pattern-oriented validation (sim.patterns): each check on hand-made runs, the baseline at
reduced replicates, directional comparisons of variants on common random numbers, and the
report files. The full 100-replicate validation of the baseline is docs/VALIDATION.md."""

from __future__ import annotations

import pickle
from argparse import Namespace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS

from sim import patterns as P
from sim.api import simulate
from sim.geography import site_cell
from sim.scenario import load_scenario
from sim.yaml_source import ScenarioError

STEPS = 365
ROOT_SEED = 20191101  # baseline.yaml's seed: these runs are the first replicates of docs/VALIDATION.md


# --------------------------------------------------------------------------- hand-made runs


def make_run(steps: int = STEPS, events: list[dict] | None = None, **columns) -> SimpleNamespace:
    """A RunResult-like run: a timeseries of `steps`+1 days (zeros unless given) and events."""
    ts = pd.DataFrame({"step": np.arange(steps + 1)})
    for name, values in columns.items():
        name = name.replace("__", ".").replace("_GT_", ">")
        if np.isscalar(values) or isinstance(values, str):
            values = [values] * (steps + 1)
        ts[name] = list(values)
    ev = pd.DataFrame(events) if events else pd.DataFrame(columns=["step", "event"])
    return SimpleNamespace(replicate=0, seed=1, timeseries=ts, events=ev, meta={})


def clash(step, row=0, col=0, site=None, ground="edge", a="IRGC", b="NDF", ka=0, wa=0, kb=0, wb=0) -> dict:
    return {
        "step": step,
        "event": "clash",
        "row": row,
        "col": col,
        "site": site,
        "side_a": a,
        "side_b": b,
        "killed_a": ka,
        "wounded_a": wa,
        "killed_b": kb,
        "wounded_b": wb,
        "winner": a,
        "ground": ground,
    }


def meeting(step, outcome, a="IRGC", b="NDF") -> dict:
    return {"step": step, "event": "meeting", "side_a": a, "side_b": b, "outcome": outcome, "site": "cultural_centre"}


def daily(steps: int = STEPS, at: dict[int, float] | None = None) -> list[float]:
    values = [0.0] * (steps + 1)
    for day, value in (at or {}).items():
        values[day] = value
    return values


@pytest.fixture(scope="module")
def toy():
    return load_scenario(SCENARIOS / "toy_two_towns.yaml")


def check(name, run, scenario) -> bool:
    return P.pattern_by_name(name).check(run, scenario)


# 1. net defection


def test_net_defection(baseline):
    name = "net_defection_ndf_to_irgc"
    more = make_run(**{"defections.NDF>IRGC": daily(at={3: 5}), "defections.IRGC>NDF": daily(at={4: 2})})
    assert check(name, more, baseline)
    assert P.net_defection(more, baseline) == 3
    fewer = make_run(**{"defections.NDF>IRGC": daily(at={3: 2}), "defections.IRGC>NDF": daily(at={4: 5})})
    assert not check(name, fewer, baseline)
    equal = make_run(**{"defections.NDF>IRGC": daily(at={3: 2}), "defections.IRGC>NDF": daily(at={4: 2})})
    assert not check(name, equal, baseline)


# 2. where clashes happen


def test_clashes_at_crossings_and_edges(baseline):
    name = "clashes_at_crossings_and_edges"
    grounds = ["crossing"] * 3 + ["edge"] * 4 + ["core"] * 3  # 70 %
    assert check(name, make_run(events=[clash(i + 1, ground=g) for i, g in enumerate(grounds)]), baseline)
    grounds = ["crossing"] * 2 + ["edge"] * 4 + ["core"] * 4  # 60 %
    assert not check(name, make_run(events=[clash(i + 1, ground=g) for i, g in enumerate(grounds)]), baseline)
    assert not check(name, make_run(), baseline)  # no clash at all


# 3. casualties in the busiest window


def test_casualties_of_the_articles_order(baseline):
    name = "casualties_of_the_articles_order"
    # A small early episode and a bigger one later: the busiest 30-day window is the later one.
    early = [clash(10, ka=2, wa=3, kb=1, wb=1)]
    late = [clash(200 + i, ka=3, wa=5, kb=3, wb=4) for i in range(5)]  # 30 killed, 45 wounded
    run = make_run(events=early + late)
    assert P.busiest_window(run, baseline)[:2] == (30.0, 45.0)
    assert check(name, run, baseline)
    too_many = make_run(events=[clash(200 + i, ka=15, wa=15, kb=15, wb=15) for i in range(5)])  # 150 killed
    assert not check(name, too_many, baseline)
    too_few = make_run(events=[clash(200, ka=2, wa=20, kb=2, wb=20)])  # 4 killed, 40 wounded
    assert not check(name, too_few, baseline)
    too_few_wounded = make_run(events=[clash(200 + i, ka=5, wa=1, kb=5, wb=1) for i in range(3)])
    assert not check(name, too_few_wounded, baseline)
    assert not check(name, make_run(), baseline)
    # Spread over more than the window, no 30 days reach the article's order: fails.
    spread = make_run(events=[clash(1 + 40 * i, ka=2, wa=3, kb=2, wb=2) for i in range(9)])
    assert not check(name, spread, baseline)


def test_casualties_window_counts_clashes_not_insurgent_attacks(baseline):
    # The article's figures are IRGC and NDF members killed in the clashes between them (§4):
    # casualties recorded in killed.*/wounded.* from insurgent attacks alone do not count.
    run = make_run(
        events=[clash(200 + i, ka=3, wa=5, kb=3, wb=4) for i in range(5)],
        **{"killed.IRGC": daily(at={100: 500}), "wounded.IRGC": daily(at={100: 500})},
    )
    assert check("casualties_of_the_articles_order", run, baseline)
    assert P.window_killed_all(run, baseline) == 500


# 4. killed share


def test_killed_share_near_article(baseline):
    name = "killed_share_near_article"
    assert check(
        name,
        make_run(
            **{"killed.IRGC": daily(at={5: 20}), "killed.NDF": daily(at={6: 18}), "wounded.NDF": daily(at={7: 62})}
        ),
        baseline,
    )  # 0.38
    assert check(name, make_run(**{"killed.IRGC": daily(at={5: 45}), "wounded.NDF": daily(at={7: 55})}), baseline)
    assert not check(name, make_run(**{"killed.IRGC": daily(at={5: 60}), "wounded.NDF": daily(at={7: 40})}), baseline)
    assert not check(name, make_run(**{"killed.IRGC": daily(at={5: 20}), "wounded.NDF": daily(at={7: 80})}), baseline)
    assert not check(name, make_run(**{"killed.IRGC": 0, "wounded.NDF": 0}), baseline)  # no casualties


# 5. Buqrus


def test_buqrus_is_a_flashpoint(baseline, toy):
    name = "buqrus_is_a_flashpoint"
    br, bc = site_cell(baseline.sites["buqrus"], baseline)
    dr, dc = site_cell(baseline.sites["deir_ezzor"], baseline)
    mr, mc = site_cell(baseline.sites["mayadin"], baseline)
    at_buqrus = [clash(i + 1, row=br + 1, col=bc - 1) for i in range(3)]  # within 2 cells, `site` empty
    elsewhere = [clash(10, row=dr, col=dc, site="deir_ezzor")]
    run = make_run(events=at_buqrus + elsewhere)
    assert P.site_clash_counts(run, baseline)["buqrus"] == 3
    assert check(name, run, baseline)
    assert check(name, make_run(events=[clash(5, row=0, col=0, site="buqrus")]), baseline)  # named by the event
    assert not check(name, make_run(events=elsewhere), baseline)  # no clash at Buqrus
    assert not check(name, make_run(), baseline)
    # One clash at Buqrus, but four other sites with two each: below the median of the seven sites.
    others = []
    for site in ("deir_ezzor", "mayadin", "oil_wells", "albukamal"):
        r, c = site_cell(baseline.sites[site], baseline)
        others += [clash(20, row=r, col=c, site=site), clash(21, row=r, col=c, site=site)]
    assert not check(name, make_run(events=[clash(2, row=br, col=bc, site="buqrus")] + others), baseline)
    assert (mr, mc) != (br, bc)
    assert P.pattern_by_name(name).is_applicable(baseline)
    assert not P.pattern_by_name(name).is_applicable(toy)


# 6. meetings fail


def test_meetings_mostly_fail(baseline):
    name = "meetings_mostly_fail"
    assert check(
        name, make_run(meetings=daily(at={10: 4}), failures=daily(at={10: 2}), escalations=daily(at={10: 1})), baseline
    )
    assert not check(name, make_run(meetings=daily(at={10: 4}), failures=daily(at={10: 2})), baseline)
    assert not check(name, make_run(meetings=0, failures=0, escalations=0), baseline)  # no meeting


# 7. calm does not last


def test_calm_does_not_last(baseline):
    name = "calm_does_not_last"
    assert check(name, make_run(events=[meeting(10, "agreement"), clash(60)]), baseline)
    assert check(name, make_run(events=[meeting(10, "agreement"), clash(100)]), baseline)  # exactly 90 days
    assert not check(name, make_run(events=[meeting(10, "agreement"), clash(101)]), baseline)
    assert not check(name, make_run(events=[meeting(10, "agreement")]), baseline)  # calm for the rest of the run
    # A clash the same day (before the meeting, in the day's order) or of another pair does not count.
    assert not check(name, make_run(events=[clash(10), meeting(10, "agreement")]), baseline)
    assert not check(name, make_run(events=[meeting(10, "agreement"), clash(60, a="IRGC", b="MILSEC")]), baseline)
    assert check(name, make_run(events=[meeting(10, "agreement", a="NDF", b="IRGC"), clash(60)]), baseline)
    # The run ends less than 90 days after the agreement: not judged, passes.
    assert check(name, make_run(events=[meeting(300, "agreement")]), baseline)
    # No agreement at all: calm never came.
    assert check(name, make_run(events=[meeting(10, "failure"), clash(20)]), baseline)
    # Every agreement counts: one followed by a clash, one not.
    assert not check(name, make_run(events=[meeting(10, "agreement"), clash(30), meeting(100, "agreement")]), baseline)
    assert P.longest_calm(make_run(events=[meeting(10, "agreement"), clash(30)]), baseline) == 20


# 8. Al-Bukamal


def test_irgc_keeps_albukamal(baseline, toy):
    name = "irgc_keeps_albukamal"
    assert check(name, make_run(**{"control.albukamal": "IRGC"}), baseline)
    early = ["contested"] * 20 + ["IRGC"] * (STEPS + 1 - 20)  # 19 of 365 days lost: 94.8 %
    assert check(name, make_run(**{"control.albukamal": early}), baseline)
    lost_end = ["IRGC"] * STEPS + ["contested"]
    assert not check(name, make_run(**{"control.albukamal": lost_end}), baseline)
    long_spell = ["contested"] * 60 + ["IRGC"] * (STEPS + 1 - 60)  # 83.8 % of days
    assert not check(name, make_run(**{"control.albukamal": long_spell}), baseline)
    assert not check(name, make_run(**{"control.albukamal": "NDF"}), baseline)
    assert P.pattern_by_name(name).is_applicable(baseline)
    assert not P.pattern_by_name(name).is_applicable(toy)


# 9. insurgency


def test_insurgency_rises_with_rivalry(baseline):
    name = "insurgency_rises_with_rivalry"
    clashes = daily(at={d: 1 for d in range(5, STEPS, 7)})
    cells = list(5 + 0.3 * np.cumsum(clashes))
    assert check(name, make_run(clashes=clashes, insurgent_cells=cells), baseline)
    assert not check(name, make_run(clashes=clashes, insurgent_cells=cells[::-1]), baseline)  # shrinking
    assert not check(name, make_run(clashes=0, insurgent_cells=cells), baseline)  # no clashes: undefined
    # Cells end higher, but unrelated to the clashes (they rise before any clash and then fall).
    late = daily(at={d: 1 for d in range(300, STEPS)})
    hump = [5 + min(d, 100) - 0.9 * max(d - 100, 0) * 100 / 265 for d in range(STEPS + 1)]
    assert hump[-1] > hump[0]
    assert not check(name, make_run(clashes=late, insurgent_cells=hump), baseline)


# --------------------------------------------------------------------------- the machinery


def test_patterns_pickle_and_are_described():
    assert len(P.PATTERNS) == 9
    assert pickle.loads(pickle.dumps(P.PATTERNS))[0].name == P.PATTERNS[0].name
    for p in P.PATTERNS:
        assert p.paragraphs.startswith("§") and p.facts.startswith("F") and len(p.description) > 80
        assert 0 < p.threshold <= 1


def test_report_passes_only_if_every_applicable_pattern_passes(toy):
    good = make_run(
        steps=90,
        events=[clash(i + 1, ground="edge", a="Blue", b="Red", ka=2, wa=3, kb=2, wb=3) for i in range(5)]
        + [meeting(40, "failure", a="Blue", b="Red")],
        meetings=daily(90, {40: 1}),
        failures=daily(90, {40: 1}),
        clashes=daily(90, {i + 1: 1 for i in range(5)}),
        insurgent_cells=[3 + min(d, 5) for d in range(91)],
        **{"killed.Blue": daily(90, {1: 10}), "wounded.Blue": daily(90, {1: 16})},
    )
    report = P.report_from_runs([good, good], toy, root_seed=1, steps=90)
    assert report.status("irgc_keeps_albukamal") == "n/a" and report.share("irgc_keeps_albukamal") is None
    assert report.status("buqrus_is_a_flashpoint") == "n/a"
    assert report.status("net_defection_ndf_to_irgc") == "n/a"
    assert report.status("meetings_mostly_fail") == "PASS"
    assert report.passed, report.summary()
    bad = make_run(steps=90)
    report = P.report_from_runs([good, bad], toy, root_seed=1, steps=90)
    assert report.share("meetings_mostly_fail") == 0.5
    assert report.status("meetings_mostly_fail") == "FAIL"
    assert not report.passed


def test_write_report_and_not_applicable_on_toy(tmp_path, toy):
    report = P.validate("toy_two_towns", replicates=2, seed=3, steps=40)
    assert report.status("irgc_keeps_albukamal") == "n/a"
    assert report.status("buqrus_is_a_flashpoint") == "n/a"
    assert report.runs["irgc_keeps_albukamal"].isna().all()
    out = P.write_report(report, tmp_path / "report")
    for name in (
        "patterns.csv",
        "summary.csv",
        "VALIDATION.md",
        "plots/pattern_shares.png",
        "plots/pattern_measures.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "patterns.csv")
    assert list(table["replicate"]) == [0, 1] and len(table["seed"].unique()) == 2
    assert {p.name for p in P.PATTERNS} <= set(table.columns)
    text = (out / "VALIDATION.md").read_text(encoding="utf-8")
    assert "| `irgc_keeps_albukamal` | §11 | F26 | 0.80 | n/a |" in text
    assert "## Calibration" in text and "See `run.py calibrate` (added separately)" in text
    assert "python run.py validate-patterns" in text and "(plots/pattern_shares.png)" in text
    assert not list(out.glob(".*.tmp")) and not list((out / "plots").glob(".*.tmp"))


def test_write_docs_keeps_the_calibration_section(tmp_path, toy):
    report = P.validate("toy_two_towns", replicates=2, seed=3, steps=30)
    docs = tmp_path / "docs"
    target = P.write_docs(report, docs)
    text = target.read_text(encoding="utf-8")
    assert "(validation/pattern_shares.png)" in text and "(validation/patterns.csv)" in text
    assert (docs / "validation" / "pattern_measures.png").is_file()
    target.write_text(text.replace(P.CALIBRATION_PLACEHOLDER, "Calibrated: p_max = 0.003."), encoding="utf-8")
    P.write_docs(report, docs)
    text = target.read_text(encoding="utf-8")
    assert "Calibrated: p_max = 0.003." in text and P.CALIBRATION_PLACEHOLDER not in text
    assert text.count("## Calibration") == 1 and "## Files" in text


def test_cli_validate_patterns(tmp_path, capsys):
    args = Namespace(
        scenario="toy_two_towns", replicates=2, seed=3, workers=1, steps=40, overrides=[], out=tmp_path / "v"
    )
    code = P.cli_validate_patterns(args)
    printed = capsys.readouterr().out
    assert code in (0, 1)
    assert "irgc_keeps_albukamal" in printed and "n/a" in printed and str(tmp_path / "v") in printed
    assert (tmp_path / "v" / "VALIDATION.md").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging renamed into place
    bad = Namespace(
        scenario="toy_two_towns",
        replicates=2,
        seed=3,
        workers=1,
        steps=40,
        overrides=["factions.Blue.salary_usd_month=-5"],
        out=tmp_path / "w",
    )
    with pytest.raises(ScenarioError):
        P.cli_validate_patterns(bad)
    assert not (tmp_path / "w").exists()


# --------------------------------------------------------------------------- the baseline

# Patterns the baseline does not yet show in at least their threshold share of these 12 runs
# (docs/VALIDATION.md has the 100-replicate shares). Strict: a pattern listed here that passes
# fails the test until its entry is removed. Empty since the tuning recorded in VALIDATION.md.
KNOWN_FAILING: dict[str, str] = {}

BASELINE_REPLICATES = 12  # the full 100-replicate validation is docs/VALIDATION.md


@pytest.fixture(scope="module")
def baseline_runs():
    return simulate("baseline", seed=ROOT_SEED, replicates=BASELINE_REPLICATES, workers=2)


@pytest.fixture(scope="module")
def baseline_report(baseline_runs):
    return P.report_from_runs(baseline_runs.results, baseline_runs.scenario, root_seed=ROOT_SEED, steps=STEPS)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(p.name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILING[p.name]))
        if p.name in KNOWN_FAILING
        else p.name
        for p in P.PATTERNS
    ],
)
@pytest.mark.slow
def test_baseline_shows_pattern(baseline_report, name):
    # 12 replicates (the first 12 of docs/VALIDATION.md's 100, same root seed) for CI speed.
    share = baseline_report.share(name)
    assert share is not None, f"{name} should apply to the baseline"
    assert share >= P.pattern_by_name(name).threshold, f"{name}: share {share:.2f}"


# --------------------------------------------------------------------------- directions (common random numbers)

VARIANT_REPLICATES = 8


def _variant(name):
    return simulate(name, seed=ROOT_SEED, replicates=VARIANT_REPLICATES, workers=2)


def _first(runs, n=VARIANT_REPLICATES):
    return [r for r in runs.results if r.replicate < n]


def _total(results, column):
    return np.array([float(r.timeseries[column].sum()) for r in results])


def _last(results, column):
    return np.array([float(r.timeseries[column].iloc[-1]) for r in results])


PAY_DAYS = 90  # before the baseline IRGC's cash runs low (it pays 200 USD/month; see README "Sweeps")


def _total_until(results, column, day):
    return np.array([float(r.timeseries.loc[r.timeseries["step"] <= day, column].sum()) for r in results])


@pytest.fixture(scope="module")
def parity_runs():
    return _variant("salary_parity").results


@pytest.mark.slow
def test_salary_parity_reduces_defection_to_irgc(baseline_runs, parity_runs):
    base = _first(baseline_runs)
    assert [r.seed for r in base] == [r.seed for r in parity_runs]  # common random numbers
    # The pay effect, while both IRGC variants can afford to hire (first 90 days).
    flow_base = _total_until(base, "defections.NDF>IRGC", PAY_DAYS)
    flow_parity = _total_until(parity_runs, "defections.NDF>IRGC", PAY_DAYS)
    assert flow_parity.mean() < flow_base.mean()
    assert (flow_parity < flow_base).sum() >= VARIANT_REPLICATES - 1  # run by run, almost always


@pytest.mark.slow
def test_salary_parity_reduces_defection_to_irgc_over_the_year(baseline_runs, parity_runs):
    base = _first(baseline_runs)
    assert _total(parity_runs, "defections.NDF>IRGC").mean() < _total(base, "defections.NDF>IRGC").mean()


@pytest.mark.slow
def test_supply_route_closed_weakens_irgc(baseline_runs):
    base = _first(baseline_runs)
    closed = _variant("supply_route_closed").results
    fighters = _last(closed, "fighters.IRGC").mean() < _last(base, "fighters.IRGC").mean()
    territory = _last(closed, "territory.IRGC").mean() < _last(base, "territory.IRGC").mean()
    assert fighters or territory


@pytest.mark.slow
def test_patrons_agree_makes_meetings_succeed_and_calm_last(baseline_runs):
    base = _first(baseline_runs)
    agree = _variant("patrons_agree").results

    def agreement_share(results):
        return _total(results, "agreements").sum() / max(_total(results, "meetings").sum(), 1)

    def mean_calm(results):
        return float(np.mean([r.timeseries["calm.IRGC~NDF"].iloc[1:].mean() for r in results]))

    assert agreement_share(agree) > agreement_share(base)
    assert mean_calm(agree) > mean_calm(base)
