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
from sim.intervals import wilson_interval
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
    flows = {"fighters.NDF": 1500}  # 1% of 1,500: at least 15 defectors NDF>IRGC

    def run(to_irgc, to_ndf):
        return make_run(
            **flows, **{"defections.NDF>IRGC": daily(at={3: to_irgc}), "defections.IRGC>NDF": daily(at={4: to_ndf})}
        )

    assert check(name, run(30, 10), baseline)  # 3 to 1: exactly "mostly one way"
    assert P.net_defection(run(30, 10), baseline) == 20
    assert P.defection_one_way_share(run(30, 10), baseline) == 0.75
    assert not check(name, run(29, 10), baseline)  # net positive, but less than 3 to 1
    assert check(name, run(15, 0), baseline)  # 1% of the NDF's day-0 fighters
    assert not check(name, run(14, 0), baseline)  # one way, but a handful: not "many"
    assert not check(name, run(2, 5), baseline)
    assert not check(name, run(0, 0), baseline)
    # Without a recorded NDF strength, the floor is one person.
    assert check(name, make_run(**{"defections.NDF>IRGC": daily(at={3: 3})}), baseline)


def test_irgc_recruits(baseline, toy):
    name = "irgc_recruits"
    both_halves = make_run(**{"joined.IRGC": daily(at={10: 5, 300: 2})})
    assert check(name, both_halves, baseline)
    assert P.irgc_intake(both_halves, baseline) == 7
    assert not check(name, make_run(**{"joined.IRGC": daily(at={10: 50})}), baseline)  # an early wave only
    # Defectors count as new members: civilians early, defectors late.
    late_defectors = make_run(**{"joined.IRGC": daily(at={10: 5}), "defections.MILSEC>IRGC": daily(at={250: 1})})
    assert check(name, late_defectors, baseline)
    assert not check(name, make_run(), baseline)
    assert not P.pattern_by_name(name).is_applicable(toy)


def test_irgc_opens_headquarters(baseline):
    name = "irgc_opens_headquarters"
    hq = {"step": 40, "event": "new_headquarters", "faction": "IRGC", "site": "mayadin"}
    assert check(name, make_run(events=[hq]), baseline)
    assert P.irgc_new_headquarters(make_run(events=[hq, {**hq, "step": 90}]), baseline) == 2
    assert not check(name, make_run(events=[{**hq, "faction": "NDF"}]), baseline)  # the other side's
    assert not check(name, make_run(events=[clash(5)]), baseline)
    assert not check(name, make_run(), baseline)


# 1b. the NDF's ground, Deir ez-Zor, no rout


def test_ndf_holds_western_countryside(baseline, toy):
    name = "ndf_holds_western_countryside"
    assert check(name, make_run(**{"control.albukamal_west": "NDF"}), baseline)
    back_at_the_end = ["NDF"] * 100 + ["contested"] * 200 + ["NDF"] * (STEPS + 1 - 300)
    assert check(name, make_run(**{"control.albukamal_west": back_at_the_end}), baseline)
    lost_at_the_end = ["NDF"] * STEPS + ["contested"]  # contested does not count: no fighters per site recorded
    assert not check(name, make_run(**{"control.albukamal_west": lost_at_the_end}), baseline)
    assert P.ndf_west_share(make_run(**{"control.albukamal_west": lost_at_the_end}), baseline) == 364 / 365
    assert not check(name, make_run(**{"control.albukamal_west": "IRGC"}), baseline)
    assert not check(name, make_run(), baseline)  # not recorded
    assert P.pattern_by_name(name).is_applicable(baseline)
    assert not P.pattern_by_name(name).is_applicable(toy)


def test_deir_ezzor_stays_with_ndf_or_regime(baseline, toy):
    name = "deir_ezzor_stays_with_ndf_or_regime"
    assert P.regime_side(baseline) == ["NDF", "MILSEC"]
    assert check(name, make_run(**{"control.deir_ezzor": "NDF"}), baseline)
    assert check(name, make_run(**{"control.deir_ezzor": "MILSEC"}), baseline)  # the regime's Military Security
    handed_over = ["NDF"] * 200 + ["MILSEC"] * (STEPS + 1 - 200)
    assert check(name, make_run(**{"control.deir_ezzor": handed_over}), baseline)
    spell = ["NDF"] * 300 + ["contested"] * 40 + ["NDF"] * (STEPS + 1 - 340)  # 89 % of days
    assert not check(name, make_run(**{"control.deir_ezzor": spell}), baseline)
    assert not check(name, make_run(**{"control.deir_ezzor": ["NDF"] * STEPS + ["contested"]}), baseline)
    assert not check(name, make_run(**{"control.deir_ezzor": "IRGC"}), baseline)
    assert not P.pattern_by_name(name).is_applicable(toy)


def test_neither_rival_routed(baseline, toy):
    name = "neither_rival_routed"

    def run(irgc_end, ndf_end, **control):
        return make_run(
            **{
                "fighters.IRGC": [1200] * STEPS + [irgc_end],
                "fighters.NDF": [1500] * STEPS + [ndf_end],
                "control.albukamal": control.get("albukamal", "IRGC"),
                "control.albukamal_west": control.get("west", "NDF"),
                "control.ndf_hq_deir": control.get("hq", "contested"),
            }
        )

    assert check(name, run(3000, 900), baseline)  # the NDF keeps exactly 60 %
    assert P.min_kept_share(run(3000, 900), baseline) == 0.6
    assert not check(name, run(3000, 760), baseline)  # issue 9's rout: about half the NDF gone
    assert not check(name, run(700, 1500), baseline)  # the IRGC routed
    assert not check(name, run(1200, 1500, west="IRGC"), baseline)  # the NDF holds no named town or crossing
    # A headquarters compound alone is not ground held.
    assert not check(name, run(1200, 1500, west="contested", hq="NDF"), baseline)
    assert P.sites_held_at_end(run(1200, 1500), baseline, "NDF") == ["albukamal_west"]
    assert not P.pattern_by_name(name).is_applicable(toy)


# 1c. episodes and the annual toll


def test_clashes_recur_in_episodes(baseline):
    name = "clashes_recur_in_episodes"
    three = [clash(d) for d in (10, 11, 12, 40, 41, 200)]  # gaps of 27 and 158 quiet days
    assert P.clash_episodes(make_run(events=three), baseline) == 3
    assert check(name, make_run(events=three), baseline)
    # 14 clash-free days separate two episodes; 13 do not.
    assert P.clash_episodes(make_run(events=[clash(10), clash(25)]), baseline) == 2
    assert P.clash_episodes(make_run(events=[clash(10), clash(24)]), baseline) == 1
    war = [clash(d) for d in range(5, STEPS, 10)]  # a clash every ten days all year: one long episode
    assert P.clash_episodes(make_run(events=war), baseline) == 1
    assert not check(name, make_run(events=war), baseline)
    two_clashes_a_day = [clash(d) for d in (10, 10, 100)]
    assert P.clash_episodes(make_run(events=two_clashes_a_day), baseline) == 2
    assert not check(name, make_run(), baseline)


def test_annual_clash_toll_plausible(baseline):
    name = "annual_clash_toll_plausible"
    year = make_run(events=[clash(10 * i + 1, ka=2, kb=1, wa=9, wb=9) for i in range(20)])  # 60 killed
    assert P.annual_clash_toll(year, baseline) == 60
    assert check(name, year, baseline)
    assert check(name, make_run(events=[clash(1, ka=15, kb=15)]), baseline)  # 30: the lower bound
    assert not check(name, make_run(events=[clash(1, ka=15, kb=14)]), baseline)
    assert not check(name, make_run(events=[clash(1, ka=300, kb=101)]), baseline)  # 401: a war
    # Insurgent attacks do not count; a shorter run is scaled to 365 days.
    attacks = make_run(events=[clash(1, ka=20, kb=20)], **{"killed.IRGC": daily(at={5: 500})})
    assert P.annual_clash_toll(attacks, baseline) == 40
    half_year = make_run(steps=182, events=[clash(1, ka=10, kb=10)])
    assert P.annual_clash_toll(half_year, baseline) == pytest.approx(40.1, abs=0.1)
    assert not check(name, make_run(), baseline)


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
    assert len(P.PATTERNS) == 16 and len(P.ENSEMBLE_PATTERNS) == 2
    assert len({p.name for p in P.PATTERNS + P.ENSEMBLE_PATTERNS}) == 18
    assert pickle.loads(pickle.dumps(P.PATTERNS))[0].name == P.PATTERNS[0].name
    assert pickle.loads(pickle.dumps(P.ENSEMBLE_PATTERNS))[0].name == P.ENSEMBLE_PATTERNS[0].name
    for p in P.PATTERNS + P.ENSEMBLE_PATTERNS:
        assert p.paragraphs.startswith("§") and p.facts.startswith("F") and len(p.description) > 80
    for p in P.PATTERNS:
        assert p.threshold == P.DEFAULT_THRESHOLD == 0.9  # issue 9: each in at least 90% of runs
    assert [p.name for p in P.PATTERNS if p.verification] == ["killed_share_near_article"]


def good_toy_run(steps: int = 90) -> SimpleNamespace:
    """A toy run (Blue ~ Red) that shows every pattern applicable to the toy."""
    days = (1, 2, 30, 31, 60, 61)  # three episodes; 15 killed and 24 wounded in the busiest 30 days
    clashes = daily(steps, {d: 1 for d in days})
    return make_run(
        steps=steps,
        events=[clash(d, ground="edge", a="Blue", b="Red", ka=3, wa=4, kb=2, wb=4) for d in days]
        + [meeting(40, "failure", a="Blue", b="Red")],
        meetings=daily(steps, {40: 1}),
        failures=daily(steps, {40: 1}),
        clashes=clashes,
        insurgent_cells=list(3 + np.cumsum(clashes)),
        **{"killed.Blue": daily(steps, {1: 10}), "wounded.Blue": daily(steps, {1: 16})},
    )


def test_report_passes_only_if_every_applicable_pattern_passes(toy):
    good = good_toy_run()
    report = P.report_from_runs([good, good], toy, root_seed=1, steps=90)
    assert report.status("irgc_keeps_albukamal") == "n/a" and report.share("irgc_keeps_albukamal") is None
    assert report.status("buqrus_is_a_flashpoint") == "n/a"
    assert report.status("net_defection_ndf_to_irgc") == "n/a"
    assert report.status("meetings_mostly_fail") == "PASS"
    assert report.joint_share == 1.0 and report.status(P.JOINT) == "PASS"
    # Two runs are too few to judge an ensemble pattern: reported, not failed.
    assert set(report.ensemble_summary()["status"]) == {"too few runs"}
    assert report.passed, report.summary()
    bad = make_run(steps=90)
    report = P.report_from_runs([good, bad], toy, root_seed=1, steps=90)
    assert report.share("meetings_mostly_fail") == 0.5
    assert report.status("meetings_mostly_fail") == "FAIL"
    assert not report.passed


def test_wilson_interval():
    assert wilson_interval(90, 100) == pytest.approx((0.8256, 0.9448), abs=1e-4)  # the textbook value
    low, high = wilson_interval(100, 100)
    assert high == 1.0 and 0.96 < low < 0.97  # a share of 1 still has an interval below it
    low, high = wilson_interval(0, 12)
    assert low == 0.0 and 0.2 < high < 0.3
    for k in range(0, 13):
        low, high = wilson_interval(k, 12)
        assert 0.0 <= low <= k / 12 <= high <= 1.0
    assert wilson_interval(5, 20, confidence=0.99)[0] < wilson_interval(5, 20)[0]  # wider at 99 %
    assert all(np.isnan(wilson_interval(0, 0)))


def test_joint_share_is_the_share_of_runs_showing_every_applicable_pattern(toy):
    good = good_toy_run()
    no_meeting = good_toy_run()
    no_meeting.timeseries["meetings"] = 0  # meetings_mostly_fail fails
    war = good_toy_run()
    war.events = pd.DataFrame([clash(d, a="Blue", b="Red", ka=3, wa=4, kb=2, wb=4) for d in range(1, 90, 5)])
    only_verification_fails = good_toy_run()  # the killed share is an input: left out of the joint share
    only_verification_fails.timeseries["wounded.Blue"] = 0
    runs = [good, good, no_meeting, war, only_verification_fails]
    report = P.report_from_runs(runs, toy, root_seed=1, steps=90)
    table = report.runs
    joint = [p.name for p in P.PATTERNS if p.is_applicable(toy) and not p.verification]
    assert "killed_share_near_article" not in joint and "clashes_recur_in_episodes" in joint
    expected = table[joint].astype(bool).all(axis=1)
    assert list(table[P.JOINT]) == list(expected) == [True, True, False, False, True]
    assert not table.loc[4, "killed_share_near_article"]
    assert report.joint_share == 0.6
    summary = report.summary().set_index("pattern")
    assert summary.loc[P.JOINT, "level"] == "joint" and summary.loc[P.JOINT, "threshold"] == 0.5
    assert summary.loc[P.JOINT, "runs_showing"] == 3
    assert (summary.loc[P.JOINT, "share_low"], summary.loc[P.JOINT, "share_high"]) == wilson_interval(3, 5)
    assert summary.loc["killed_share_near_article", "level"] == "verification"
    assert report.status(P.JOINT) == "PASS"
    report = P.report_from_runs([no_meeting, war, good], toy, root_seed=1, steps=90)
    assert report.joint_share == pytest.approx(1 / 3) and report.status(P.JOINT) == "FAIL"
    assert not report.passed


# --------------------------------------------------------------------------- ensemble patterns


def _table(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_insurgency_tracks_rivalry_across_runs(baseline):
    pattern = next(p for p in P.ENSEMBLE_PATTERNS if p.name == "insurgency_tracks_rivalry_across_runs")
    rng = np.random.default_rng(0)
    clashes = rng.integers(5, 80, size=40).astype(float)
    growth = 0.5 * clashes + rng.normal(0, 3, size=40)  # more clashes, more growth
    value, low, high = pattern.statistic(_table(clashes_total=clashes, insurgent_growth=growth), rng)
    assert value > 0.8 and 0 < low <= value <= high <= 1
    assert pattern.passes(value, low, high)
    unrelated = rng.normal(10, 3, size=40)
    value, low, high = pattern.statistic(_table(clashes_total=clashes, insurgent_growth=unrelated), rng)
    assert low < 0 < high and not pattern.passes(value, low, high)
    value, low, high = pattern.statistic(_table(clashes_total=clashes, insurgent_growth=-growth), rng)
    assert high < 0 and not pattern.passes(value, low, high)
    constant = _table(clashes_total=np.full(40, 9.0), insurgent_growth=growth)  # undefined: fails
    value, low, high = pattern.statistic(constant, rng)
    assert np.isnan(value) and not pattern.passes(value, low, high)


def test_meetings_sometimes_escalate(baseline):
    pattern = next(p for p in P.ENSEMBLE_PATTERNS if p.name == "meetings_sometimes_escalate")
    rng = np.random.default_rng(0)
    meetings = np.full(30, 10.0)
    some = np.array([1.0, 0.0, 2.0] * 10)  # 30 of 300 meetings
    value, low, high = pattern.statistic(_table(meetings=meetings, escalations=some), rng)
    assert value == pytest.approx(0.1) and 0 < low < 0.1 < high
    assert pattern.passes(value, low, high)
    none = np.zeros(30)
    assert not pattern.passes(*pattern.statistic(_table(meetings=meetings, escalations=none), rng))
    most = np.full(30, 6.0)  # 60 %: escalation is no longer the exception
    assert not pattern.passes(*pattern.statistic(_table(meetings=meetings, escalations=most), rng))
    assert np.isnan(pattern.statistic(_table(meetings=none, escalations=none), rng)[0])


def test_ensemble_patterns_are_judged_from_enough_runs_and_reproducible(toy):
    runs = [good_toy_run() for _ in range(P.ENSEMBLE_MIN_RUNS)]
    for k, run in enumerate(runs):  # more clashes, more insurgent growth, run by run
        run.replicate, run.seed = k, 100 + k
        extra = [clash(70 + d, a="Blue", b="Red") for d in range(k)]
        run.events = pd.concat([run.events, pd.DataFrame(extra)], ignore_index=True) if extra else run.events
        run.timeseries["insurgent_cells"] = run.timeseries["insurgent_cells"] + np.linspace(0, k, len(run.timeseries))
    report = P.report_from_runs(runs, toy, root_seed=4, steps=90)
    table = report.ensemble_summary().set_index("pattern")
    assert table.loc["insurgency_tracks_rivalry_across_runs", "status"] == "PASS"
    assert table.loc["insurgency_tracks_rivalry_across_runs", "value"] == pytest.approx(1.0)
    assert table.loc["meetings_sometimes_escalate", "status"] == "FAIL"  # no meeting escalated
    assert report.status("meetings_sometimes_escalate") == "FAIL" and not report.passed
    again = P.report_from_runs(runs, toy, root_seed=4, steps=90).ensemble_summary()
    pd.testing.assert_frame_equal(report.ensemble_summary(), again)  # seeded bootstrap


def test_write_report_and_not_applicable_on_toy(tmp_path, toy):
    report = P.validate("toy_two_towns", replicates=2, seed=3, steps=40)
    assert report.status("irgc_keeps_albukamal") == "n/a"
    assert report.status("buqrus_is_a_flashpoint") == "n/a"
    assert report.runs["irgc_keeps_albukamal"].isna().all()
    out = P.write_report(report, tmp_path / "report")
    for name in (
        "patterns.csv",
        "summary.csv",
        "ensemble.csv",
        "VALIDATION.md",
        "plots/pattern_shares.png",
        "plots/pattern_measures.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "patterns.csv")
    assert list(table["replicate"]) == [0, 1] and len(table["seed"].unique()) == 2
    assert {p.name for p in P.PATTERNS} | {P.JOINT} <= set(table.columns)
    text = (out / "VALIDATION.md").read_text(encoding="utf-8")
    assert "| `irgc_keeps_albukamal` | validation | §11 | F26 | 0.90 | n/a | n/a |  | n/a |" in text
    assert f"| **`{P.JOINT}`** | joint |" in text and "### Ensemble patterns" in text
    ensemble = pd.read_csv(out / "ensemble.csv")
    assert list(ensemble["pattern"]) == [p.name for p in P.ENSEMBLE_PATTERNS]
    summary = pd.read_csv(out / "summary.csv")
    assert {"share_low", "share_high", "level"} <= set(summary.columns) and summary["pattern"].iloc[-1] == P.JOINT
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
# fails the test until its entry is removed. These are issue 9's findings on the mechanisms of
# commit d528e11 (the NDF is absorbed within the year); the mechanism rework of issue 9 is to
# remove them.
KNOWN_FAILING: dict[str, str] = {}  # patterns the baseline is known not to show yet (none since issue 9)

# Enough runs for the ensemble patterns' intervals; the full 100-replicate validation is docs/VALIDATION.md.
BASELINE_REPLICATES = 40


@pytest.fixture(scope="module")
def baseline_runs():
    return simulate("baseline", seed=ROOT_SEED, replicates=BASELINE_REPLICATES, workers=2)


@pytest.fixture(scope="module")
def baseline_report(baseline_runs):
    return P.report_from_runs(baseline_runs.results, baseline_runs.scenario, root_seed=ROOT_SEED, steps=STEPS)


BASELINE_CHECKS = [p.name for p in P.PATTERNS] + [P.JOINT] + [p.name for p in P.ENSEMBLE_PATTERNS]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILING[name]))
        if name in KNOWN_FAILING
        else name
        for name in BASELINE_CHECKS
    ],
)
@pytest.mark.slow
def test_baseline_shows_pattern(baseline_report, name):
    # 40 replicates (the first 40 of docs/VALIDATION.md's 100, same root seed) for CI speed:
    # every per-run pattern, the joint share and the ensemble patterns.
    assert baseline_report.status(name) not in ("n/a", "too few runs"), f"{name} should apply to the baseline"
    share = baseline_report.share(name) if name in baseline_report.runs.columns else None
    assert baseline_report.status(name) == "PASS", f"{name}: share {share}"


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
