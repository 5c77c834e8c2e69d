"""Spill-over between theatres (`sim.processes.spillover`, ODD §7.13) and the Syria-wide scenario.

- Zero spill-over isolates theatres: at process level a rise in one theatre's tension leaves
  every other theatre's exactly as it was; at model level a run at strength 0 is bit for bit
  a run without the spill-over step (it changes nothing and draws no random number), and a
  scenario without theatres has no spill-over state at all.
- More spill-over never lowers distant tension: the spilled tension is non-decreasing in the
  strength (property tests over strengths and states), and across seeds with common random
  numbers the mean distant tension of a small two-theatre model does not fall.
- Patrons' shared funding is conserved: the shares of one patron's clients sum to 1 whatever
  the tension, move toward the client under most tension, and a patron without shared
  funding pays each client its full funding as before.
- Theatres keep their militias: a theatre's militias post only to its own sites; meetings
  are held at the venues of the pair's theatre.
- The Syria-wide scenario validates, has at least 100,000 recruits and the same two
  organisations facing each other in four theatres, runs, and `run.py run` draws its map.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from helpers import SCENARIOS
from hypothesis import given
from hypothesis import strategies as st

from sim.cli import main
from sim.model import CorridorModel
from sim.processes import patrons, spillover
from sim.scenario import load_scenario, scenario_from_dict
from sim.yaml_source import ScenarioError

STRENGTHS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def two_theatres(strength: float = 0.0, pressure_weight: float = 0.0, shared: bool = True) -> dict:
    """A small abstract scenario: two theatres (west, east) on one 44x12 grid, each with a Blue and a Red branch."""
    sites, tribes, factions, hostilities = {}, {}, {}, []
    for theatre, c0 in (("west", 1), ("east", 27)):
        sites[f"{theatre}_a"] = {
            "label": f"{theatre} A",
            "kind": "town",
            "row": 6,
            "col": c0 + 2,
            "population": 8000,
            "tribes": [f"{theatre}_ta"],
            "value": 3,
            "initial_control": f"Blue_{theatre}",
            "theatre": theatre,
        }
        sites[f"{theatre}_b"] = {
            "label": f"{theatre} B",
            "kind": "town",
            "row": 6,
            "col": c0 + 14,
            "population": 8000,
            "tribes": [f"{theatre}_tb"],
            "value": 3,
            "initial_control": f"Red_{theatre}",
            "theatre": theatre,
        }
        sites[f"{theatre}_bridge"] = {
            "label": f"{theatre} bridge",
            "kind": "crossing",
            "crossing": "river",
            "row": 6,
            "col": c0 + 8,
            "revenue_usd_day": 800,
            "value": 4,
            "theatre": theatre,
        }
        sites[f"{theatre}_venue"] = {
            "label": f"{theatre} hall",
            "kind": "venue",
            "row": 7,
            "col": c0 + 8,
            "theatre": theatre,
        }
        for side, col in (("Blue", c0 + 2), ("Red", c0 + 14)):
            sites[f"{side}_{theatre}_hq"] = {
                "label": f"{side} HQ {theatre}",
                "kind": "headquarters",
                "row": 5,
                "col": col,
                "owner": f"{side}_{theatre}",
                "theatre": theatre,
            }
        tribes[f"{theatre}_ta"] = {
            "label": "tribe",
            "seat": f"{theatre}_a",
            "initial_alignment": {f"Blue_{theatre}": 0.7, f"Red_{theatre}": 0.3},
        }
        tribes[f"{theatre}_tb"] = {
            "label": "tribe",
            "seat": f"{theatre}_b",
            "initial_alignment": {f"Blue_{theatre}": 0.3, f"Red_{theatre}": 0.7},
        }
        for side, patron, salary in (("Blue", "North", 120), ("Red", "South", 150)):
            factions[f"{side}_{theatre}"] = {
                "label": f"{side} militia ({theatre})",
                "patron": patron,
                "salary_usd_month": salary,
                "initial_fighters": 250,
                "initial_budget_usd": 20000,
                "posture": 0.8,
                "theatre": theatre,
                "organisation": side,
            }
        hostilities.append([f"Blue_{theatre}", f"Red_{theatre}"])
    # The west theatre is the hot one: its crossing is worth far more.
    sites["west_bridge"]["value"] = 20
    return {
        "name": "two_theatres",
        "description": "two theatres of one rivalry",
        "steps": 60,
        "seed": 3,
        "grid": {"width": 44, "height": 12, "default_terrain": "rural"},
        "theatres": {"west": {"label": "West"}, "east": {"label": "East"}},
        "sites": sites,
        "tribes": tribes,
        "factions": factions,
        "patrons": {
            "North": {"label": "North", "funding_usd_day": 3000, "shared_funding": shared},
            "South": {"label": "South", "funding_usd_day": 3000, "shared_funding": shared},
        },
        "hostilities": hostilities,
        "rules": {
            "spillover": {"strength": strength, "pressure_weight": pressure_weight},
            "mediation": {"venues": ["west_venue", "east_venue"]},
        },
    }


def model_of(**kw) -> CorridorModel:
    return CorridorModel(scenario_from_dict(two_theatres(**kw)))


def pair(model: CorridorModel, theatre: str) -> tuple[int, int]:
    names = model.world.faction_names
    a, b = names.index(f"Blue_{theatre}"), names.index(f"Red_{theatre}")
    return min(a, b), max(a, b)


def run_tension(model: CorridorModel, steps: int, theatre: str) -> np.ndarray:
    a, b = pair(model, theatre)
    out = []
    for _ in range(steps):
        model.step()
        out.append(model.world.tension[a, b])
    return np.array(out)


# --- zero spill-over isolates theatres --------------------------------------------------


def test_a_scenario_without_theatres_has_no_spillover_state(baseline):
    model = CorridorModel(baseline, seed=1)
    assert model.spillover_state is None
    assert not np.any(model.world.deploy_preference == 0)  # setup restricted nothing


def test_the_two_theatres_are_linked_pair_to_pair():
    state = model_of(strength=0.5).spillover_state
    assert state is not None and state.pairs.shape == (2, 2)
    np.testing.assert_array_equal(state.links, [[0, 1], [1, 0]])


@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_a_rise_in_one_theatre_reaches_the_other_by_strength_only(strength):
    model = model_of(strength=strength)
    w, rules = model.world, model.rules
    west, east = pair(model, "west"), pair(model, "east")
    w.tension[west] += 5.0  # today's clashes in the west
    before = w.tension.copy()
    spillover.step(w, rules, model.spillover_state)
    assert w.tension[west] == before[west]
    assert w.tension[east] == pytest.approx(before[east] + strength * 5.0, abs=1e-12)
    if strength == 0:
        np.testing.assert_array_equal(w.tension, before)  # bit for bit: nothing moves


def test_zero_strength_run_is_a_run_without_the_step(monkeypatch):
    """At strength 0 the step changes nothing and draws nothing: removing it gives the same run bit for bit."""
    with_step = model_of(strength=0.0)
    series = run_tension(with_step, 40, "east")
    monkeypatch.setattr(spillover, "step", lambda *args, **kw: None)
    without = model_of(strength=0.0)
    np.testing.assert_array_equal(series, run_tension(without, 40, "east"))
    np.testing.assert_array_equal(with_step.world.tension, without.world.tension)
    assert with_step.world.events == without.world.events


# --- more spill-over never lowers distant tension ---------------------------------------


@given(
    tension=st.lists(st.floats(0, 50), min_size=4, max_size=4),
    last=st.lists(st.floats(0, 50), min_size=4, max_size=4),
    decay=st.floats(0, 1),
    s1=STRENGTHS,
    s2=STRENGTHS,
)
def test_spill_is_monotone_in_strength_and_never_lowers(tension, last, decay, s1, s2):
    t, prev = np.array(tension), np.array(last)
    links = np.ones((4, 4)) - np.eye(4)
    low, high = sorted((s1, s2))
    at_low, at_high = spillover.spill(t, prev, links, low, decay), spillover.spill(t, prev, links, high, decay)
    assert np.all(at_low >= t)
    assert np.all(at_high >= at_low)
    np.testing.assert_array_equal(spillover.spill(t, prev, links, 0.0, decay), t)


@pytest.fixture(scope="module")
def hot_world():
    """A two-theatre model after 20 days (state copied per example)."""
    model = model_of(strength=0.5)
    for _ in range(20):
        model.step()
    return model


@given(rise=st.floats(0, 20), s1=STRENGTHS, s2=STRENGTHS)
def test_more_strength_never_lowers_distant_tension_after_a_step(hot_world, rise, s1, s2):
    east = pair(hot_world, "east")
    west = pair(hot_world, "west")
    results = []
    for strength in sorted((s1, s2)):
        world = copy.deepcopy(hot_world.world)
        state = copy.deepcopy(hot_world.spillover_state)
        rules = hot_world.rules.model_copy(
            update={"spillover": hot_world.rules.spillover.model_copy(update={"strength": strength})}
        )
        world.tension[west] += rise
        spillover.step(world, rules, state)
        results.append(world.tension[east])
    assert results[1] >= results[0]


def test_distant_tension_does_not_fall_with_spillover_across_seeds():
    """Common random numbers: the same seeds at strength 0 and 0.5; the quiet theatre's mean tension does not fall."""
    means = {}
    for strength in (0.0, 0.5):
        means[strength] = np.mean(
            [
                run_tension(
                    CorridorModel(scenario_from_dict(two_theatres(strength=strength)), seed=s), 60, "east"
                ).mean()
                for s in (1, 2, 3)
            ]
        )
    assert means[0.5] > means[0.0]


# --- patrons share their funding across theatres -----------------------------------------


PRESSURE_WEIGHTS = (0.0, 0.3, 1.0, 7.5, 50.0)


@pytest.fixture(scope="module")
def funded():
    """One fresh two-theatre model per pressure weight (tension is reset by each example)."""
    return {k: model_of(pressure_weight=k) for k in PRESSURE_WEIGHTS}


@given(tensions=st.lists(st.floats(0, 100), min_size=2, max_size=2), k=st.sampled_from(PRESSURE_WEIGHTS))
def test_shared_funding_is_conserved_and_moves_toward_pressure(funded, tensions, k):
    model = funded[k]
    w = model.world
    for theatre, t in zip(("west", "east"), tensions):
        w.tension[pair(model, theatre)] = t
    names = w.faction_names
    for side in ("Blue", "Red"):
        clients = [names.index(f"{side}_{theatre}") for theatre in ("west", "east")]
        shares = [spillover.client_funding_share(w, f) for f in clients]
        assert sum(shares) == pytest.approx(1.0, abs=1e-12)
        assert all(0 < s <= 1 for s in shares)
        if tensions[0] > tensions[1]:
            assert shares[0] >= shares[1]
        # what the economy pays out: the patron's purse, neither more nor less (no top-up, no route)
        paid = sum(patrons.funding_today(w, f) for f in clients)
        assert paid == pytest.approx(3000.0, rel=1e-12)


def test_unshared_funding_pays_each_client_in_full():
    model = model_of(shared=False, pressure_weight=5.0)
    w = model.world
    assert [spillover.client_funding_share(w, f) for f in range(w.n_factions)] == [1.0] * w.n_factions
    assert patrons.funding_today(w, 0) == 3000.0


# --- theatres keep their militias ---------------------------------------------------------


def assert_posted_in_own_theatre(w) -> None:
    """No fighter of the two-theatre scenario's militias stands in the other theatre (east of column 22 or west)."""
    cols = np.arange(w.geo.width)
    for theatre, other_cols in (("west", cols >= 22), ("east", cols < 22)):
        for side in ("Blue", "Red"):
            f = w.faction_names.index(f"{side}_{theatre}")
            assert w.fighter_counts[f][:, other_cols].sum() == 0, f"{side}_{theatre} posted outside its theatre"


def test_militias_post_only_in_their_own_theatre():
    model = model_of(strength=0.5)
    w = model.world
    for _ in range(30):
        model.step()
    assert_posted_in_own_theatre(w)


def test_a_militia_with_nowhere_it_wants_to_be_still_posts_only_in_its_theatre():
    """The posting rule's fallback (every weight 0: spread evenly) keeps to the militia's theatre."""
    from sim.processes import deployment

    model = model_of(strength=0.5)
    w = model.world
    w.site_value[:] = 0.0  # every site worthless: every posting weight is 0 (value is a factor)
    weights = deployment.posting_weights(w, w.config.rules)
    site_theatre = [w.config.sites[s].theatre for s in w.geo.site_names]
    for f, name in enumerate(w.faction_names):
        theatre = w.config.factions[name].theatre
        if theatre is None:
            continue
        allowed = np.array([t in (None, theatre) for t in site_theatre])
        assert (weights[f][~allowed] == 0).all(), f"{name} would post outside theatre {theatre}"
        assert (weights[f][allowed] == 1).all(), f"{name} does not spread evenly over its theatre"
    for _ in range(20):  # and the fighters posted by it stay there
        model.step()
    assert_posted_in_own_theatre(w)


def test_meetings_are_held_in_the_pairs_theatre():
    model = model_of(strength=0.5)
    w = model.world
    venues = ["west_venue", "east_venue"]
    assert spillover.theatre_venues(w, venues, *pair(model, "east")) == ["east_venue"]
    assert spillover.theatre_venues(w, venues, *pair(model, "west")) == ["west_venue"]


# --- scenario checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["factions"]["Blue_west"].update(theatre="north"), "factions.Blue_west.theatre"),
        (lambda d: d["sites"]["west_a"].update(theatre="nowhere"), "sites.west_a.theatre"),
        (lambda d: d["factions"]["Blue_west"].update(headquarters=["Blue_east_hq"]), "factions.Blue_west.headquarters"),
        (lambda d: d["rules"]["spillover"].update(strength=1.5), "rules.spillover.strength"),
    ],
)
def test_bad_theatres_are_one_line_errors(change, where):
    data = two_theatres()
    change(data)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(data)
    assert where in str(error.value)


def test_routes_must_lie_on_the_map():
    data = load_scenario(SCENARIOS / "syria_wide.yaml").model_dump(mode="json")
    data["routes"]["m5"]["path"][0] = [10.0, 10.0]
    with pytest.raises(ScenarioError, match=r"routes\.m5\.path\.0"):
        scenario_from_dict(data)


# --- the Syria-wide scenario ---------------------------------------------------------------


@pytest.fixture(scope="module")
def syria_wide():
    return load_scenario(SCENARIOS / "syria_wide.yaml")


@pytest.mark.parametrize("name", ["syria_wide", "syria_wide_isolated", "sweep_spillover"])
def test_syria_wide_files_validate(name, capsys):
    assert main(["validate", name]) == 0


def test_syria_wide_has_four_linked_theatres_and_enough_recruits(syria_wide):
    model = CorridorModel(syria_wide, seed=1)
    w = model.world
    assert len(w.recruits) >= 100_000
    assert len(syria_wide.theatres) == 4
    assert all(site.theatre in syria_wide.theatres for site in syria_wide.sites.values())
    state = model.spillover_state
    assert state is not None and len(state.pairs) == 4  # one IRGC-NDF pair per theatre, all linked
    np.testing.assert_array_equal(state.links, np.ones((4, 4)) - np.eye(4))
    organisations = {frozenset(spillover.organisation(w, f) for f in p) for p in state.pairs}
    assert organisations == {frozenset({"IRGC", "NDF"})}
    for _ in range(3):
        model.step()
    assert np.isfinite(w.tension).all()


def test_isolated_variant_turns_off_both_links(syria_wide):
    isolated = load_scenario(SCENARIOS / "syria_wide_isolated.yaml")
    assert isolated.rules.spillover.strength == 0 and isolated.rules.spillover.pressure_weight == 0
    assert syria_wide.rules.spillover.strength > 0


def test_run_draws_the_theatre_map(tmp_path, capsys):
    """`run.py run` draws theatre_map.png for a scenario with theatres and bounds (the small two-theatre one)."""
    data = two_theatres(strength=0.5)
    data["grid"]["bounds"] = {"lat_min": 33.0, "lat_max": 34.0, "lon_min": 36.0, "lon_max": 40.0}
    data["routes"] = {"road": {"label": "The road", "path": [[33.5, 36.5], [33.5, 39.5]]}}
    data["provenance"] = {"routes": "assumption: test"}
    path = tmp_path / "two_theatres.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", str(path), "--steps", "2", "--out", str(out)]) == 0
    drawn = out / "plots" / "theatre_map.png"
    assert drawn.is_file() and drawn.stat().st_size > 20_000
    # (a run without theatres draws exactly the six figures: tests/test_plots.py)


@pytest.mark.slow  # four Syria-wide models (~1 s each to build, more under load)
def test_syria_wide_spillover_raises_distant_tension_at_common_seeds():
    """Model level, Syria-wide, common random numbers: at each seed the three theatres outside the
    corridor are more tense over 12 days with spill-over 0.5 than with none."""
    for seed in (1, 2):
        means = []
        for strength in (0.0, 0.5):
            config = load_scenario(SCENARIOS / "syria_wide.yaml", [f"rules.spillover.strength={strength}"])
            model = CorridorModel(config, seed=seed)
            names = model.world.faction_names
            pairs = [
                tuple(sorted((names.index(f"IRGC_{t}"), names.index(f"NDF_{t}"))))
                for t in ("homs", "damascus", "aleppo")
            ]
            daily = []
            for _ in range(12):
                model.step()
                daily.append(np.mean([model.world.tension[p] for p in pairs]))
            means.append(np.mean(daily))
        assert means[1] > means[0], (seed, means)


# --- theatres are closed to each other's militias and recruits (issue 13 review) ----------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        # a theatre with no sites: its militias would have nowhere of their own to be
        (lambda d: d["theatres"].update(north={"label": "North"}), "theatres.north"),
        # a theatre militia with no headquarters (nor owned site) in its theatre
        (
            lambda d: d["factions"].update(
                Green_west={"label": "Green", "patron": "North", "theatre": "west", "organisation": "Blue"}
            ),
            "factions.Green_west.headquarters",
        ),
        (lambda d: d["sites"]["Blue_west_hq"].update(owner=None), "factions.Blue_west.headquarters"),
        # posting weights for a site of another theatre were silently zeroed
        (
            lambda d: d["factions"]["Blue_west"].update(deployment_weights={"east_a": 2.0}),
            "factions.Blue_west.deployment_weights.east_a",
        ),
        # no site of its theatre it would post to: the posting rule's fallback would spread it everywhere
        (
            lambda d: d["factions"]["Blue_west"].update(
                deployment_weights={n: 0.0 for n, site in d["sites"].items() if site["theatre"] == "west"}
            ),
            "factions.Blue_west.deployment_weights",
        ),
        # a militia of no theatre among theatres (only the insurgent may have none)
        (lambda d: d["factions"]["Blue_west"].pop("theatre"), "factions.Blue_west"),
        # an insurgent acts over the whole map: a theatre would be silently ignored
        (
            lambda d: d["factions"].update(Cells={"label": "Cells", "kind": "insurgent", "theatre": "west"}),
            "factions.Cells.theatre",
        ),
        # a base in another theatre: the militia's outsiders would live there
        (
            lambda d: d["sites"].update(
                east_outpost={"label": "outpost", "kind": "headquarters", "row": 4, "col": 33, "owner": "Blue_west",
                              "theatre": "east"}
            ),
            "sites.east_outpost.owner",
        ),
        # ground held on day 0 by another theatre's militia
        (lambda d: d["sites"]["east_a"].update(initial_control="Blue_west"), "sites.east_a.initial_control"),
        # recruits from a tribe seated in another theatre
        (lambda d: d["factions"]["Blue_west"].update(recruits_from_tribes=["east_ta"]),
         "factions.Blue_west.recruits_from_tribes.0"),
        # hostile militias of different theatres would meet and clash across theatres
        (lambda d: d["hostilities"].append(["Blue_west", "Red_east"]), "hostilities.2"),
    ],
)
def test_theatres_without_ground_are_one_line_errors(change, where):
    data = two_theatres()
    change(data)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(data)
    assert where in str(error.value)
    assert len(error.value.problems) == 1 and "\n" not in str(error.value.problems[0])


def test_a_theatre_without_sites_exits_2_from_the_cli(tmp_path, capsys):
    data = load_scenario(SCENARIOS / "syria_wide.yaml").model_dump(mode="json", exclude_none=True)
    data["theatres"]["raqqa"] = {"label": "Raqqa"}
    data["factions"]["IRGC_raqqa"] = {
        "label": "IRGC (Raqqa)",
        "organisation": "IRGC",
        "patron": "Iran",
        "theatre": "raqqa",
    }
    path = tmp_path / "raqqa.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "theatres.raqqa" in err and "factions.IRGC_raqqa.headquarters" in err


def test_new_headquarters_open_only_in_the_militias_theatre():
    model = model_of(strength=0.0)
    w = model.world
    f = w.faction_names.index("Blue_west")
    east = [s for s, name in enumerate(w.geo.site_names) if name.startswith("east")]
    west = [s for s, name in enumerate(w.geo.site_names) if name.startswith("west")]
    assert not any(spillover.may_open_headquarters(w, f, s) for s in east)
    assert all(spillover.may_open_headquarters(w, f, s) for s in west)
    # even with the cash and every share it would need in the other theatre
    w.budget[f] = 1e9
    w.influence[:] = 0.0
    w.influence[f] = 100.0
    w.share[:] = 0.0
    w.share[f] = 1.0
    from sim.processes import deployment

    deployment.open_headquarters(w, model.rules)
    opened = [e["site"] for e in w.events if e["event"] == "new_headquarters"]
    assert opened and all(name.startswith("west") for name in opened)


def home_theatre_names(model: CorridorModel) -> np.ndarray:
    w = model.world
    names = np.array([None, *model.config.theatres], dtype=object)
    from sim.world import home_theatres

    return names[home_theatres(model.config, w.geo, w.recruits.home)]


def test_recruits_stay_in_their_theatre_from_set_up_and_through_a_run():
    """No recruit ever belongs to a militia of another theatre; no defection crosses theatres."""
    model = model_of(strength=0.0)
    w = model.world
    theatre_of_faction = np.array([model.config.factions[n].theatre for n in w.faction_names], dtype=object)
    homes = home_theatre_names(model)
    for day in range(40):
        members = w.recruits.faction >= 0
        assert (theatre_of_faction[w.recruits.faction[members]] == homes[members]).all(), f"day {day}"
        model.step()
    crossing = [
        e
        for e in w.events
        if e["event"] == "defection"
        and model.config.factions[e["from_faction"]].theatre != model.config.factions[e["to_faction"]].theatre
    ]
    assert crossing == []
    assert any(e["event"] == "defection" for e in w.events)  # the test has defections to look at


def test_recruitment_offers_only_the_home_theatres_militias(syria_wide):
    """Syria-wide, set-up: each branch's fighters live in its theatre; ISIS (no theatre) stays open to all."""
    model = CorridorModel(syria_wide, seed=1)
    w = model.world
    homes = home_theatre_names(model)
    for f, name in enumerate(w.faction_names):
        theatre = syria_wide.factions[name].theatre
        members = w.recruits.faction == f
        if theatre is not None:
            assert set(homes[members]) <= {theatre}, name
            assert not w.recruit_options[homes != theatre, f].any()
        else:
            assert w.recruit_options[:, f].all()
    rows = np.arange(len(w.recruits))
    from sim.processes import recruitment

    _, available = recruitment.utilities(w, model.rules, rows)
    assert not (available[:, 1:] & ~w.recruit_options).any()


def test_at_zero_strength_one_theatres_salary_changes_no_recruit_of_another():
    """Two-theatre model, spill-over 0, no insurgent: raising the west's Red salary changes which west
    recruits fight for whom, yet no east recruit ever joins a west militia, and no tension crosses.
    (East totals may still move: the theatres share the model's random streams, so a different
    number of west choices shifts the draws the east's recruits see; see the README.)"""
    runs = []
    for salary in (150, 400):
        data = two_theatres(strength=0.0, pressure_weight=0.0, shared=False)
        data["factions"]["Red_west"]["salary_usd_month"] = salary
        model = CorridorModel(scenario_from_dict(data))
        for _ in range(30):
            model.step()
        runs.append(model)
    for model in runs:
        w = model.world
        homes = home_theatre_names(model)
        east = [w.faction_names.index(n) for n in ("Blue_east", "Red_east")]
        assert not np.isin(w.recruits.faction[homes == "west"], east).any()
        defections = [e for e in w.events if e["event"] == "defection"]
        assert all(e["from_faction"].split("_")[1] == e["to_faction"].split("_")[1] for e in defections)
    west_red = [m.world.n_fighters(m.world.faction_names.index("Red_west")) for m in runs]
    assert west_red[1] > west_red[0]


# --- figures of a scenario with theatres -----------------------------------------------------


def test_faction_colours_stay_distinct_past_the_palette_and_keep_the_baselines():
    from sim.figures import OKABE_ITO, faction_colour

    assert [faction_colour(i) for i in range(7)] == list(OKABE_ITO[:7])  # the baseline's colours, unchanged
    colours = [faction_colour(i) for i in range(60)]
    assert len(set(colours)) == len(colours)
    rgb = np.array([[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in colours[:15]], dtype=float)
    gaps = np.linalg.norm(rgb[:, None] - rgb[None, :], axis=2) + np.eye(15) * 1e9
    assert gaps.min() > 30  # the first fifteen are far apart (RGB units), not near-duplicates
    # Black marks (headquarters, clash crosses) on a faction's cells: contrast with black >= 3:1
    # (WCAG relative luminance) for the first eleven, more than syria_wide.yaml's ten factions.
    linear = rgb[:11] / 255.0
    linear = np.where(linear <= 0.04045, linear / 12.92, ((linear + 0.055) / 1.055) ** 2.4)
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722])
    assert ((luminance + 0.05) / 0.05 >= 3.0).all(), dict(zip(colours[:11], luminance.round(3)))


def test_theatre_figures_list_every_militia_and_drop_the_corridor_wording(tmp_path, monkeypatch, capsys):
    import sim.plots as plots

    data = two_theatres(strength=0.5)
    data["grid"]["bounds"] = {"lat_min": 33.0, "lat_max": 34.0, "lon_min": 36.0, "lon_max": 40.0}
    path = tmp_path / "two_theatres.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", str(path), "--steps", "2", "--out", str(out), "--no-plots"]) == 0
    loaded = plots.load_run

    def without_red_east(directory):  # a branch that holds no cell at the last map
        run = loaded(directory)
        f = run.faction_names.index("Red_east")
        control = np.array(run.maps["control"])
        control[control == f] = -1
        run.maps["control"] = control
        return run

    drawn = {}

    def capture(fig, path, *args, **kwargs):
        texts = [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]
        legends = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        drawn[path.name] = (texts, legends)
        return path

    monkeypatch.setattr(plots, "load_run", without_red_east)
    monkeypatch.setattr(plots, "save_png", capture)
    plots.plot_run(out)
    texts, legends = drawn["theatre_map.png"]
    for name in data["factions"]:
        assert any(label.startswith(name) for label in legends), f"{name} missing from the theatre map legend"
    texts, _ = drawn["influence_map.png"]
    assert not any("corridor" in t for t in texts)
