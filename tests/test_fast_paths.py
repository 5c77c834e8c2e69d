"""The step's fast paths give exactly (bit for bit) what the straightforward code they replaced gives.

Each faster form (sites drawn from one uniform per mover, the Gaussian and box filters without
their set-up, posting weights for all factions at once, counts by bincount, bases kept until a
headquarters opens, a scalar clip) is compared here with the plain numpy/scipy call or the
per-faction loop it stands for, on many random inputs or on models in the middle of a run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import scenario
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from sim import world as world_scans
from sim.compiled import bernoulli_rows, exp, flagged_rows, log
from sim.model import CorridorModel
from sim.processes import casualties, conflict, deployment, influence, insurgency, tribal_politics
from sim.processes.insurgency import _clip_scalar
from sim.processes.mediation import calm
from sim.processes.patrons import effective_posture
from sim.world import CONTESTED, FIT, WOUNDED

BUSY = (
    "rules.mediation.p_success_base=0.9",
    "rules.mediation.tension_threshold=0.3",
    "rules.deployment.max_new_headquarters=6",
    "rules.economy.p_looting=0.3",
    "rules.insurgency.attack_rate=0.05",
)


@pytest.fixture(scope="module")
def busy_model():
    """A baseline model 150 days in, with agreements (partitions), new headquarters and casualties."""
    model = CorridorModel(scenario(*BUSY), seed=5)
    for _ in range(150):
        model.step()
    assert any(p is not None for p in model.world.partition.values())
    return model


@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(0, 400))
def test_choose_draws_what_generator_choice_draws(seed, n_sites, n_draws):
    weights = np.random.default_rng(seed).random(n_sites) * 10.0 ** np.random.default_rng(seed + 1).uniform(-8, 8)
    weights[np.random.default_rng(seed + 2).random(n_sites) < 0.3] = 0.0
    if weights.sum() == 0:
        weights[-1] = 1.0
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    expected = a.choice(n_sites, size=n_draws, p=weights / weights.sum())
    assert np.array_equal(deployment._choose(weights, b.random(n_draws)), expected)
    assert a.random() == b.random()  # the same draws were used


@given(st.integers(0, 2**32 - 1), st.sampled_from([0.4, 1.0, 1.5, 2.5]), st.sampled_from([1.0, 3.0, 4.0]))
def test_spread_influence_is_the_gaussian_filter_bit_for_bit(seed, sigma, truncate):
    """scipy's gaussian_filter is two correlate1d with its weights; the kernel does them with the model's."""
    rng = np.random.default_rng(seed)
    f, h, w = rng.integers(1, 5), rng.integers(1, 30), rng.integers(1, 30)
    presence = rng.poisson(0.5, (f, h, w)) * rng.uniform(0.5, 2.0, (f, 1, 1)) + (rng.random((f, h, w)) < 0.05) * 5.0
    passable = rng.random((h, w)) < 0.9
    weights = influence._gaussian_weights(sigma, truncate)
    expected = np.zeros_like(presence)
    ndimage.correlate1d(presence, weights, axis=1, output=expected, mode="constant", cval=0.0)
    ndimage.correlate1d(expected, weights, axis=2, output=expected, mode="constant", cval=0.0)
    assert influence.spread_influence(presence, sigma, passable, truncate).tobytes() == (expected * passable).tobytes()
    if np.array_equal(np.exp(-0.5 / sigma**2 * np.arange(20.0) ** 2), exp(-0.5 / sigma**2 * np.arange(20.0) ** 2)):
        # numpy's exp is the C library's on this CPU (not on CPUs with AVX-512): scipy's own filter, bit for bit
        scipy_filter = ndimage.gaussian_filter(presence, sigma=(0, sigma, sigma), mode="constant", truncate=truncate)
        assert (scipy_filter * passable).tobytes() == (expected * passable).tobytes()


@given(
    st.integers(0, 2**32 - 1), st.sampled_from([0.4, 1.0, 1.5, 2.5]), st.sampled_from([1.0, 3.0, 4.0]),
    st.sampled_from([0.0, 0.002, 0.02, 0.2]), st.booleans(),
)  # fmt: skip
def test_spread_of_sparse_presence_is_the_gaussian_filter_bit_for_bit(seed, sigma, truncate, density, with_inf):
    """Few occupied cells, as on the maps (posts around sites): the kernel skips the columns beyond their reach."""
    rng = np.random.default_rng(seed)
    f, h, w = rng.integers(1, 5), rng.integers(1, 40), rng.integers(1, 70)
    presence = (rng.random((f, h, w)) < density) * rng.uniform(0.5, 40.0, (f, h, w))
    if with_inf:
        presence[rng.integers(f), rng.integers(h), rng.integers(w)] = np.inf
    passable = rng.random((h, w)) < 0.9
    weights = influence._gaussian_weights(sigma, truncate)
    expected = np.zeros_like(presence)
    ndimage.correlate1d(presence, weights, axis=1, output=expected, mode="constant", cval=0.0)
    ndimage.correlate1d(expected, weights, axis=2, output=expected, mode="constant", cval=0.0)
    with np.errstate(invalid="ignore"):  # inf x an impassable cell's 0: NaN, in both
        spread, expected = influence.spread_influence(presence, sigma, passable, truncate), expected * passable
    assert spread.tobytes() == expected.tobytes()


@pytest.mark.parametrize("sigma", [0.4, 1.0, 1.5, 2.5, 7.3])
@pytest.mark.parametrize("truncate", [1.0, 3.0, 4.0])
def test_the_gaussian_weights_are_scipys_with_the_c_librarys_exp(sigma, truncate):
    """scipy's `_gaussian_kernel1d` formula; scipy's filter's own weights (its response to an impulse) to an ulp."""
    weights = influence._gaussian_weights(sigma, truncate)
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.array([math.exp(v) for v in -0.5 / (sigma * sigma) * x**2])
    assert weights.tobytes() == (phi / phi.sum()).tobytes()
    assert np.array_equal(weights, weights[::-1]) and math.isclose(weights.sum(), 1.0, rel_tol=1e-15)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    scipy_weights = ndimage.gaussian_filter1d(impulse, sigma, mode="constant", truncate=truncate)
    np.testing.assert_allclose(weights, scipy_weights, rtol=4 * np.finfo(float).eps, atol=0)


@given(st.integers(0, 2**32 - 1), st.integers(0, 3))
def test_neighbourhood_sum_is_the_uniform_filter_bit_for_bit(seed, radius):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.0, (rng.integers(1, 5), rng.integers(1, 30), rng.integers(1, 30)))
    size = 2 * radius + 1
    expected = ndimage.uniform_filter(counts.astype(float), size=(1, size, size), mode="constant") * size * size
    assert conflict.neighbourhood_sum(counts, radius).tobytes() == expected.tobytes()


@given(st.integers(0, 2**32 - 1), st.integers(0, 10), st.integers(1, 12))
def test_enough_near_is_the_neighbourhood_sums_comparison(seed, radius, min_fighters):
    # Sparse whole numbers, so that many boxes sum to exactly min_fighters: there the running
    # means' float often falls just below the sum (2.9999999999999996 for 3), and must decide.
    rng = np.random.default_rng(seed)
    shape = (rng.integers(1, 4), rng.integers(1, 25), rng.integers(1, 25))
    counts = rng.integers(0, 4, shape) * (rng.random(shape) < 0.4)
    expected = conflict.neighbourhood_sum(counts, radius) >= min_fighters
    assert np.array_equal(conflict.enough_near(counts, radius, min_fighters), expected)


def test_enough_near_follows_the_float_where_the_sum_is_the_threshold():
    # A case where the sum is 3 but scipy's running means give less: the float, not the sum, decides.
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = rng.integers(0, 4, (1, 12, 17)) * (rng.random((1, 12, 17)) < 0.4)
        near = conflict.neighbourhood_sum(counts, 1)
        short = (near < 3) & (np.rint(near) == 3)
        if short.any():
            break
    assert short.any()
    enough = conflict.enough_near(counts, 1, 3)
    assert not enough[short].any() and np.array_equal(enough, near >= 3)


@pytest.mark.parametrize("x", [-1.5, -0.0, 0.0, 1e-300, 0.3, 1.0, 7.0, 9.0, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize(("low", "high"), [(0.0, 7.0), (-0.0, 7.0), (0.0, 0.0), (-2.0, 1.0)])
def test_clip_scalar_is_numpys_clip(x, low, high):
    expected = float(np.clip(x, low, high))
    got = _clip_scalar(x, low, high)
    assert repr(got) == repr(expected)  # the same value, sign of zero and NaN included


def _posting_weights_one_faction_at_a_time(world, rules):
    """The per-faction loop posting_weights replaced (its factors in the same order)."""
    dep = rules.deployment
    base_distance = world.base_distance()
    reach = deployment.distance_weight(base_distance, dep.reach_cells)
    site_share = world.site_shares()
    site_control = world.site_control
    contested = site_control == CONTESTED
    weights = np.empty((world.n_factions, len(world.geo.site_names)))
    for f in range(world.n_factions):
        held_by_enemy = (site_control >= 0) & world.hostile[f, np.maximum(site_control, 0)] & (site_control != f)
        w = world.site_value * world.deploy_preference[f]
        w = w * np.where(contested, 1.0 + dep.weight_contested, 1.0)
        w = w * np.where(held_by_enemy & (site_share[f] < dep.enemy_core_share), dep.enemy_core_weight, 1.0)
        w = w * np.where(np.isin(np.arange(len(w)), world.bases(f)), dep.weight_bases, 1.0)
        for a, b in world.hostile_pairs:
            if f in (a, b) and world.partition[(a, b)] is not None:
                other = b if f == a else a
                w = w * np.where(world.partition[(a, b)] == other, 1.0 - calm(world, rules, a, b), 1.0)
        if np.any(np.isfinite(base_distance[f])):
            w = w * reach[f]
        if w.sum() <= 0:
            w = np.ones_like(w)
        weights[f] = w
    return weights


def test_posting_weights_for_all_factions_equal_the_loop_over_factions(busy_model):
    world, rules = busy_model.world, busy_model.rules
    assert world.new_headquarters.sum() > 0
    expected = _posting_weights_one_faction_at_a_time(world, rules)
    assert deployment.posting_weights(world, rules).tobytes() == expected.tobytes()


def test_counts_by_bincount_equal_the_masked_counts(busy_model):
    world = busy_model.world
    r = world.recruits
    counts = world.fighters_by_faction()
    for f in range(world.n_factions):
        assert counts[f] == world.n_fighters(f)
        if f != world.insurgent:
            assert counts[f] == np.count_nonzero((r.faction == f) & (r.status == FIT))
    assert np.count_nonzero(r.status == WOUNDED) > 0
    control = world.control.reshape(-1)
    expected = np.zeros((len(world.tribe_names), world.n_factions))
    for t, cells in enumerate(world.tribe_town_cells):
        for f in range(world.n_factions):
            expected[t, f] = np.mean(control[cells] == f)
    assert tribal_politics.town_control_shares(world).tobytes() == expected.tobytes()


def test_bases_and_headquarters_follow_a_new_headquarters():
    model = CorridorModel(scenario(), seed=1)
    world = model.world
    f = next(f for f in range(world.n_factions) if world.is_militia[f])
    before = world.base_distance()
    new_site = next(s for s in range(len(world.geo.site_names)) if s not in world.bases(f))
    world.hq_sites[f].append(new_site)
    assert new_site in world.bases(f)
    assert world.headquarters(f)[-1] == int(world.geo.site_flat[new_site])
    assert world.base_distance()[f, new_site] == 0.0 < before[f, new_site]
    hq = influence._headquarters_presence(world, 1.0)
    row, col = divmod(int(world.geo.site_flat[new_site]), world.geo.width)
    assert hq[f, row, col] >= 1.0
    assert not hq.flags.writeable


@given(st.integers(0, 2**32 - 1), st.booleans())
def test_control_map_leader_is_numpys_argmax(seed, with_nan):
    rng = np.random.default_rng(seed)
    f, h, w = rng.integers(1, 6), rng.integers(1, 12), rng.integers(1, 12)
    # Whole numbers and zeros make ties common (the first faction wins them, as with argmax).
    layers = rng.integers(0, 3, (f, h, w)).astype(float) * (rng.random((f, h, w)) < 0.7)
    if with_nan:
        layers[rng.integers(f), rng.integers(h), rng.integers(w)] = np.nan
    hostile = rng.random((f, f)) < 0.5
    hostile = hostile | hostile.T
    np.fill_diagonal(hostile, False)
    with np.errstate(invalid="ignore"):
        control, share = influence.control_map(layers, hostile, 0.6, 0.5)
    leader = layers.argmax(axis=0)
    leader_share = np.take_along_axis(share, leader[None], axis=0)[0]
    expected = np.where(leader_share >= 0.6, leader, CONTESTED)
    with np.errstate(invalid="ignore"):
        expected = np.where(layers.sum(axis=0) >= 0.5, expected, -1)
    assert np.array_equal(control, expected) and control.dtype == np.int64


def test_presence_counts_posted_fighters_by_faction_and_cell(busy_model):
    world, rules = busy_model.world, busy_model.rules
    influence.presence(world, rules)
    r = world.recruits
    on_post = r.on_post(world.day)
    expected = np.zeros_like(world.fighter_counts)
    np.add.at(expected.reshape(world.n_factions, -1), (r.faction[on_post], r.post[on_post]), 1)
    assert np.array_equal(world.fighter_counts, expected) and world.fighter_counts.sum() > 0


@pytest.mark.parametrize("name, overrides", [("baseline", BUSY), ("toy_two_towns", ())])
def test_remembered_recruit_masks_and_counts_equal_fresh_ones(monkeypatch, name, overrides):
    """Every mask or count remembered during a step equals the one computed afresh at that moment.

    (A process that wrote the recruit arrays without `changed()` would leave a stale one.)
    """
    from sim.world import RecruitArrays

    remembered = RecruitArrays._remembered
    checked = []

    def checking(self, key, compute):
        value = remembered(self, key, compute)
        fresh = compute()
        assert value.dtype == fresh.dtype and np.array_equal(value, fresh), key
        checked.append(key if isinstance(key, str) else key[0])
        return value

    monkeypatch.setattr(RecruitArrays, "_remembered", checking)
    model = CorridorModel(scenario(*overrides, name=name), seed=3)
    for _ in range(40):
        model.step()
    # (the processes compiled since read the arrays themselves: these are the ones still asked for)
    assert {"on_post_rows", "census"} <= set(checked)
    assert model.recruits._memo is None  # forgotten between steps: hand-written changes are seen
    model.recruits.status[:] = 2
    assert model.world.fighters_by_faction()[model.world.is_militia].sum() == 0


def test_town_control_shares_equal_the_mean_over_each_tribes_towns(busy_model):
    """The shares from one bincount over set-up index arrays kept in `World.derived` equal per-tribe means."""
    world = busy_model.world
    for _ in range(2):  # the second call reads the kept index arrays
        shares = tribal_politics.town_control_shares(world)
        control = world.control.reshape(-1)
        plain = np.array(
            [[np.mean(control[cells] == f) if len(cells) else 0.0 for f in range(world.n_factions)]
             for cells in world.tribe_town_cells]
        )
        assert shares.shape == plain.shape and np.array_equal(shares, plain)
    assert "tribe_towns" in world.derived


def _plain_client_funding_share(world, f: int) -> float:
    """`spillover.client_funding_share` as first written: every client's pressure summed afresh on each call."""
    name = world.patron_of[f]
    if name is None or not world.config.patrons[name].shared_funding:
        return 1.0
    k = world.config.rules.spillover.pressure_weight
    clients = [g for g in range(world.n_factions) if world.patron_of[g] == name and world.is_militia[g]]
    weights = {}
    for g in clients:
        total = 0.0
        for a, b in world.militia_pairs:
            if g in (a, b):
                total += float(world.tension[a, b])
        weights[g] = 1.0 + k * total
    return weights[f] / sum(weights.values()) if f in weights else 1.0


def test_client_funding_shares_kept_per_tension_equal_the_plain_sums():
    from sim.processes import spillover

    model = CorridorModel(scenario("rules.spillover.pressure_weight=0.7", name="syria_wide"), seed=2)
    world = model.world
    assert any(world.config.patrons[p].shared_funding for p in world.patron_of if p is not None)
    rng = np.random.default_rng(0)
    for day in range(6):
        model.step()
        if day % 2:  # tension changed by hand between two calls of the same day
            world.tension += rng.random(world.tension.shape)
        for _ in range(2):
            shares = [spillover.client_funding_share(world, f) for f in range(world.n_factions)]
            assert shares == [_plain_client_funding_share(world, f) for f in range(world.n_factions)]


def test_fighters_near_from_the_posted_rows_equal_a_scan_of_every_recruit(busy_model):
    world, r = busy_model.world, busy_model.recruits
    on_post = (r.faction >= 0) & (r.status == FIT) & (r.post >= 0) & (r.arrive_step <= world.day)
    width = world.geo.width
    cells = [int(c) for c in np.unique(r.post[on_post])[::7]] + [0]
    for f in range(world.n_factions):
        for flat in cells:
            for radius in (0, 1, 3):
                rows = np.flatnonzero((r.faction == f) & on_post)
                pr, pc = np.divmod(r.post[rows], width)
                cr, cc = divmod(flat, width)
                plain = rows[(np.abs(pr - cr) <= radius) & (np.abs(pc - cc) <= radius)]
                near = world.fighters_near(f, flat, radius)
                assert near.dtype == plain.dtype and np.array_equal(near, plain)


@given(st.integers(0, 2**32 - 1))
def test_rival_shares_are_einsums_sums_and_numpys_division(seed):
    rng = np.random.default_rng(seed)
    f, h, w = rng.integers(1, 7), rng.integers(1, 10), rng.integers(1, 10)
    layers = rng.uniform(0, 50, (f, h, w)) * (rng.random((f, h, w)) < 0.6) * 10.0 ** rng.uniform(-6, 6)
    hostile = rng.random((f, f)) < 0.5
    np.fill_diagonal(hostile, False)
    rivals = np.einsum("fg,ghw->fhw", hostile.astype(float), layers)
    expected = np.divide(layers, layers + rivals, out=np.zeros_like(layers), where=layers > 0)
    assert np.array_equal(influence.rival_shares(layers, hostile), expected)


def _plain_utilities(world, rules, rows):
    """The utilities as numpy broadcasting computes them (the code the kernel replaced)."""
    from sim.processes.recruitment import annual_risk
    from sim.world import DAYS_PER_YEAR

    rec, r, n_f = rules.recruitment, world.recruits, world.n_factions
    salary = world.salary * world.pay_ratio
    current, tribe, liable = r.faction[rows], r.tribe[rows], r.liable[rows].astype(float)
    u = np.zeros((len(rows), n_f + 1))
    u[:, 0] = rec.civilian_attachment
    pay_term = rec.beta_salary * log(np.maximum(salary, 1e-9) / rec.civilian_income_usd_month)
    u[:, 1:] = (
        pay_term[None, :]
        + rec.beta_privileges * world.privileges[None, :]
        + rec.beta_exemption * world.exempts[None, :] * liable[:, None]
        - rec.beta_risk * annual_risk(world.death_risk)[None, :]
    )
    hiring_term = log(np.clip(world.hiring, 1e-12, 1.0))
    u[:, 1:] += hiring_term[None, :]
    if len(world.alignment):
        has_tribe = tribe >= 0
        u[has_tribe, 1:] += rec.beta_alignment * world.alignment[tribe[has_tribe]]
    leave_cost = rec.switching_cost + rec.loyalty_per_year * ((world.day - r.joined_step[rows]) / DAYS_PER_YEAR)
    members = (current >= 0).nonzero()[0]
    own = 1 + current[members]
    u[members] -= leave_cost[members][:, None]
    u[members, own] += leave_cost[members]
    u[members, own] -= hiring_term[own - 1]
    home_influence = world.influence.reshape(n_f, -1)[:, r.home[rows]].T
    available = np.zeros_like(u, dtype=bool)
    available[:, 0] = True
    available[:, 1:] = (home_influence >= rec.presence_threshold) & (world.is_militia & (world.hiring > 0))[None, :]
    if world.recruit_options is not None:
        available[:, 1:] &= world.recruit_options[rows]
    available[members, own] = True
    return u, available


@pytest.mark.parametrize("name", ["baseline", "syria_wide"])
def test_utilities_equal_numpys_broadcasting_bit_for_bit(busy_model, name):
    from sim.processes import recruitment

    model = busy_model if name == "baseline" else CorridorModel(scenario(name=name), seed=2)
    for _ in range(0 if name == "baseline" else 20):
        model.step()
    world, rules = model.world, model.rules
    rows = np.arange(0, len(world.recruits), 3)  # members of every militia, civilians, the wounded
    u, available = recruitment.utilities(world, rules, rows)
    expected_u, expected_available = _plain_utilities(world, rules, rows)
    assert np.array_equal(u, expected_u) and np.array_equal(available, expected_available)
    assert (world.recruits.faction[rows] >= 0).any() and (world.recruits.faction[rows] < 0).any()


EDGE_VALUES = (0.0, -0.0, 1e-300, 1e-12, 1e-9, 0.3, 1.0, 1.5, 7e4, -0.2, math.inf, -math.inf, math.nan)


@given(st.integers(0, 2**32 - 1))
def test_utilities_of_odd_militia_terms_equal_numpys(busy_model, seed):
    """Salaries, pay ratios, death risks and hiring shares at 0, below their floors, above 1, inf or NaN."""
    import copy

    from sim.processes import recruitment

    rng = np.random.default_rng(seed)
    world = copy.copy(busy_model.world)  # the arrays below are new ones: the module's model is untouched
    for name in ("salary", "pay_ratio", "privileges", "exempts", "death_risk", "hiring"):
        values = getattr(world, name) * rng.uniform(0.5, 2.0, world.n_factions)
        odd = rng.random(world.n_factions) < 0.5
        values[odd] = rng.choice(EDGE_VALUES, odd.sum())
        setattr(world, name, values)
    rows = np.arange(0, len(world.recruits), 5)
    with np.errstate(all="ignore"):
        expected_u, expected_available = _plain_utilities(world, busy_model.rules, rows)
    u, available = recruitment.utilities(world, busy_model.rules, rows)
    # Bit for bit, signed zeros included; a NaN where numpy has one (which of two NaNs an
    # operation passes on, and so its sign, is the CPU's choice and no comparison sees it).
    nan = np.isnan(expected_u)
    assert np.array_equal(np.isnan(u), nan) and u[~nan].tobytes() == expected_u[~nan].tobytes()
    assert np.array_equal(available, expected_available)


def test_movers_and_reconsidering_recruits_are_the_masks_rows(busy_model):
    from sim.processes import recruitment

    r = busy_model.world.recruits
    drawn = bernoulli_rows(np.random.default_rng(0), len(r), 0.2)
    chosen = np.zeros(len(r), dtype=bool)
    chosen[drawn] = True
    fighting = (r.faction >= 0) & (r.status == FIT)
    expected = (fighting & ((r.post < 0) | chosen)).nonzero()[0]
    moving, on_post = deployment._day_masks(r.faction, r.status, r.post, r.arrive_step, drawn, busy_model.world.day)
    assert np.array_equal(flagged_rows(moving), expected)
    assert np.array_equal(on_post, r.on_post(busy_model.world.day))
    expected = ((r.status == FIT) & chosen).nonzero()[0]
    assert np.array_equal(recruitment._reconsidering(r.status, drawn), expected)


@pytest.mark.parametrize("name", ["baseline", "syria_wide"])
def test_deployment_remembers_the_fighters_at_their_post_after_its_posting(name):
    """The rows `deployment.post` remembers for the day (influence reads them next) are the
    fighters at their post once it has posted, as counting them afresh finds them, day after day."""
    from sim.processes import deployment as dep
    from sim.world import on_post_rows_of

    model = CorridorModel(scenario(name=name), seed=6)
    world, r = model.world, model.world.recruits
    for day in range(1, 31):
        model.step()
        world.day = day
        r.remember(True)
        dep.post(world, model.rules, np.random.default_rng(day))
        remembered = r.known_on_post_rows(day)
        assert remembered is not None
        assert np.array_equal(remembered, on_post_rows_of(r.faction, r.status, r.post, r.arrive_step, day))
        r.remember(False)


@given(st.integers(0, 2**32 - 1), st.integers(0, 3000), st.integers(1, 12), st.integers(0, 40))
def test_recruit_scans_are_numpys_masks_and_bincount(seed, n, n_factions, day):
    """on_post_rows, census and movers (the branch-free scans) against numpy on random recruit arrays, sparse
    and dense (`flagged_rows` reads eight flags at a time)."""
    rng = np.random.default_rng(seed)
    faction = rng.integers(-1, n_factions, n)
    status = rng.integers(0, 3, n).astype(np.int8)
    post = rng.integers(-1, 50, n)
    arrive = rng.integers(0, 50, n)
    uniforms = rng.random(n) * rng.choice([1.0, 0.01, 100.0])
    fighting = (faction >= 0) & (status == FIT)
    on_post = fighting & (post >= 0) & (arrive <= day)
    assert np.array_equal(world_scans.on_post_rows_of(faction, status, post, arrive, day), on_post.nonzero()[0])
    expected = np.bincount((faction + 1) * 3 + status, minlength=(n_factions + 1) * 3).reshape(n_factions + 1, 3)
    assert np.array_equal(world_scans._census(faction, status, n_factions), expected)
    drawn = (uniforms < 0.1).nonzero()[0]
    movers = (fighting & ((post < 0) | (uniforms < 0.1))).nonzero()[0]
    moving, on_post_mask = deployment._day_masks(faction, status, post, arrive, drawn, day)
    assert np.array_equal(flagged_rows(moving), movers) and np.array_equal(on_post_mask, on_post)
    assert np.array_equal(flagged_rows(uniforms < 0.1), drawn) and flagged_rows(moving).dtype == np.int64


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_blend_is_numpys_products_and_sum(seed, p):
    rng = np.random.default_rng(seed)
    old, target = rng.uniform(0, 100, (3, 5, 7)), rng.uniform(0, 100, (3, 5, 7))
    out = np.empty_like(old)
    live = np.empty(len(out), dtype=np.bool_)
    influence._blend(old, target, p, 1.0 - p, out, live)
    assert np.array_equal(out, old * p + target * (1.0 - p))
    assert np.array_equal(live, (out != 0).any(axis=(1, 2)))


@given(st.integers(0, 2**32 - 1))
def test_layers_of_zeros_skipped_change_no_share_and_no_control(seed):
    """The compiled day skips factions whose blended layer is all +0.0 (`_blend`'s live) in the
    shares and in control: the same bits as with every layer taken, whichever layers are empty
    (the first one included), with ties and cells below the minimum total."""
    rng = np.random.default_rng(seed)
    f, h, w = rng.integers(1, 6), rng.integers(1, 9), rng.integers(1, 9)
    old = rng.integers(0, 3, (f, h, w)).astype(float) * (rng.random((f, h, w)) < 0.6)
    target = rng.integers(0, 3, (f, h, w)).astype(float) * (rng.random((f, h, w)) < 0.6)
    empty = rng.random(f) < 0.5
    old[empty], target[empty] = 0.0, 0.0
    hostile = rng.random((f, f)) < 0.5
    np.fill_diagonal(hostile, False)
    hostile = hostile.astype(float)
    moved, live = np.empty_like(old), np.empty(f, dtype=np.bool_)
    influence._blend(old, target, 0.5, 0.5, moved, live)
    assert np.array_equal(live, (moved != 0).any(axis=(1, 2))) and not live[empty].any()
    every = np.ones(f, dtype=np.bool_)
    shares = [np.full_like(moved, np.nan) for _ in range(2)]
    controls = [np.full((h, w), 99, dtype=np.int64) for _ in range(2)]
    for layers, share, control in zip((live, every), shares, controls):
        influence._rival_shares(moved, hostile, layers, share)
        assert influence._control(moved, share, layers, 0.6, 0.5, control)
    assert shares[0].tobytes() == shares[1].tobytes() and np.array_equal(controls[0], controls[1])


@given(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 7, 8, 9, 127, 128, 129, 1000, 5000]))
def test_numpy_sum_is_np_sum_bit_for_bit(seed, n):
    from sim.compiled import numpy_sum

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n) * 10.0 ** rng.uniform(-8, 8, n)
    assert numpy_sum(x) == x.sum() and np.signbit(numpy_sum(x)) == np.signbit(x.sum())


def _plain_economy_step(world, rules):
    """The economy's day as the per-faction Python loop over the module's functions (the code the kernel replaced)."""
    from sim.processes import economy
    from sim.world import DAYS_PER_MONTH

    counts = world.fighters_by_faction()
    site_share = world.site_shares()
    tribes = world.tribe_names
    world.courting_paid[:] = 0.0
    for f, name in enumerate(world.faction_names):
        if world.config.factions[name].kind == "insurgent":
            continue
        income = economy.income_today(world, rules, f, counts, site_share)
        world.budget[f] += income
        world.income[f] = income
        cost = counts[f] * world.salary[f] / DAYS_PER_MONTH
        runway = rules.recruitment.hiring_runway_days
        world.hiring[f] = economy.hiring_share(income, cost, world.budget[f], runway)
        paid = min(cost, world.budget[f])
        world.budget[f] -= paid
        world.arrears[f] += cost - paid
        back_pay = min(world.arrears[f], world.budget[f])
        world.budget[f] -= back_pay
        world.arrears[f] -= back_pay
        world.pay_ratio[f] = economy.smoothed_pay_ratio(world.pay_ratio[f], paid, cost, rules.economy.pay_memory_days)
        spending = world.config.factions[name].spending
        if spending.courting_usd_day > 0 and tribes:
            courted = spending.courted_tribes or tribes
            budget = economy.affordable_courting(
                spending.courting_usd_day, world.budget[f], spending.reserve_usd, income, cost, runway
            )
            world.budget[f] -= budget
            for t in courted:
                world.courting_paid[tribes.index(t), f] += budget / len(courted)


ECONOMY_STATE = ("budget", "income", "hiring", "arrears", "pay_ratio", "courting_paid")


@pytest.mark.parametrize(
    "overrides",
    [BUSY, (*BUSY, "rules.economy.contested_revenue_share=0.5", "factions.NDF.salary_usd_month=400")],
    ids=["busy", "contested-revenue-and-deficit"],
)
def test_economy_day_equals_the_per_faction_loop(overrides):
    import copy

    from sim.processes import economy

    model = CorridorModel(scenario(*overrides), seed=7)
    compared = 0
    for day in range(120):
        model.step()
        if day % 10:
            continue
        world, rules = model.world, model.rules
        plain = copy.copy(world)
        for name in ECONOMY_STATE:
            setattr(plain, name, getattr(world, name).copy())
        before = {name: getattr(world, name).copy() for name in ECONOMY_STATE}
        economy.step(world, rules)
        _plain_economy_step(plain, rules)
        for name in ECONOMY_STATE:
            assert np.array_equal(getattr(world, name), getattr(plain, name)), (day, name)
            setattr(world, name, before[name])  # leave the run as it was
        compared += 1
    assert compared == 12


def test_pair_ground_is_footholds_front_cells_and_numpys_sum(busy_model):
    world, rules = busy_model.world, busy_model.rules
    near = conflict.neighbourhood_sum(world.fighter_counts, rules.clashes.radius_cells)
    enough = conflict.enough_near(world.fighter_counts, rules.clashes.radius_cells, rules.clashes.min_fighters)
    checked = 0
    for a, b in world.militia_pairs:
        both = np.empty(world.control.shape, dtype=bool)
        # step() hands the kernel only the paired factions' rows: here b's row first, then a's
        rows = np.ascontiguousarray(enough[[b, a]])
        value, front = conflict._pair_ground(
            world.share, rows, a, b, 1, 0, rules.influence.foothold_share, world.cell_value, both
        )
        assert np.array_equal(both, conflict.footholds(world, rules, a, b))
        assert value == float((world.cell_value * both).sum())
        assert np.array_equal(front, conflict.front_cells(near, a, b, rules.clashes.min_fighters))
        checked += bool(both.any())
    assert checked  # some pair shares ground in this run


def _plain_town_presence_shares(world):
    """Each tribe's towns' influence as numpy sums it (the loop the kernel replaced)."""
    out = np.zeros((len(world.tribe_names), world.n_factions))
    flat = world.influence.reshape(world.n_factions, -1)
    for t, cells in enumerate(world.tribe_town_cells):
        if len(cells):
            on_cells = flat[:, cells]
            total = on_cells.sum()
            if total > 0:
                out[t] = on_cells.sum(axis=1) / total
    return out


@given(st.integers(0, 2**32 - 1))
def test_town_presence_shares_are_numpys_sums(busy_model, seed):
    import copy

    world = copy.copy(busy_model.world)
    rng = np.random.default_rng(seed)
    world.influence = rng.uniform(0, 1, world.influence.shape) * 10.0 ** rng.uniform(-6, 6, world.influence.shape)
    world.influence[:, rng.random(world.influence.shape[1:]) < 0.3] = 0.0
    shares = tribal_politics.town_presence_shares(world)
    assert shares.tobytes() == _plain_town_presence_shares(world).tobytes()


def _plain_nested_choice(utilities, available, nest_scale, rng):
    """The nested logit draw as numpy computed it (the code the kernels replaced)."""
    n = len(utilities)
    scaled = np.where(available[:, 1:], utilities[:, 1:] / nest_scale, -np.inf)
    any_militia = available[:, 1:].any(axis=1)
    top = np.where(any_militia, scaled.max(axis=1), 0.0)
    inclusive = top + log(exp(scaled - top[:, None]).sum(axis=1, where=available[:, 1:]))  # the C library's exp, log
    noise = rng.gumbel(size=(n, 2))
    fight = any_militia & (nest_scale * inclusive + noise[:, 1] > utilities[:, 0] + noise[:, 0])
    stage2 = np.argmax(scaled + rng.gumbel(size=scaled.shape), axis=1) + 1
    return np.where(fight, stage2, 0)


@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.sampled_from([0.2, 0.5, 1.0]))
def test_nested_choice_draws_what_numpy_drew(seed, k, nest_scale):
    from sim.processes import recruitment

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    utilities = rng.normal(0, 3, (n, 1 + k))
    available = rng.random((n, 1 + k)) < rng.uniform(0.1, 0.9)
    available[:, 0] = True
    a, b = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    got = recruitment.nested_choice(utilities, available, nest_scale, a)
    assert np.array_equal(got, _plain_nested_choice(utilities, available, nest_scale, b))
    assert a.random() == b.random()  # the same draws were used


@given(st.integers(0, 2**32 - 1), st.integers(8, 40), st.sampled_from([0.05, 0.3, 0.5, 1.0]))
def test_nested_choice_of_many_militias_sums_runs_pairwise(seed, k, nest_scale):
    """Rows of 8 to 40 militias, mostly available: runs of 8 or more, which numpy's masked sum adds pairwise."""
    from sim.processes import recruitment

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    utilities = rng.normal(0, 3, (n, 1 + k)) * 10.0 ** rng.uniform(-2, 2, (n, 1))
    available = rng.random((n, 1 + k)) < rng.choice([0.8, 0.95, 1.0])
    available[:, 0] = True
    a, b = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    got = recruitment.nested_choice(utilities, available, nest_scale, a)
    assert np.array_equal(got, _plain_nested_choice(utilities, available, nest_scale, b))
    assert a.random() == b.random()


@given(st.integers(0, 2**32 - 1), st.integers(0, 40))
def test_nest_inclusive_values_are_numpys_masked_sums(seed, k):
    """The inclusive values bit for bit: runs of 8 or more available militias are summed pairwise."""
    from sim.processes import recruitment

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 100))
    shifted = -rng.uniform(0, 1, (n, k)) * 10.0 ** rng.uniform(-3, 3, (n, k))
    shifted[rng.random((n, k)) < 0.05] = rng.choice([0.0, -0.0, -math.inf, math.nan])
    available = rng.random((n, 1 + k)) < rng.choice([0.3, 0.8, 0.95, 1.0])
    top = rng.normal(0, 5, n)
    inclusive = np.empty(n)
    recruitment._nest_inclusive(available, shifted, top, inclusive)
    with np.errstate(divide="ignore"):
        expected = top + log(exp(shifted).sum(axis=1, where=available[:, 1:]))
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(inclusive), nan) and inclusive[~nan].tobytes() == expected[~nan].tobytes()


def _plain_recruitment_day(world, rules, rng):
    """The recruitment day as the module's functions and the loop over the defections did it."""
    from sim.processes import recruitment

    r = world.recruits
    reconsider = recruitment._reconsidering(r.status, bernoulli_rows(rng, len(r), rules.recruitment.p_reconsider))
    if len(reconsider) == 0:
        return
    u, available = recruitment.utilities(world, rules, reconsider)
    choice = _plain_nested_choice(u, available, rules.recruitment.nest_scale, rng) - 1
    t = world.today
    moved = recruitment._apply_choices(
        reconsider, choice, r.faction, r.joined_step, r.post, world.day, t.joined, t.desertions, t.defections
    )
    if not moved:
        return
    for a, b in zip(*np.nonzero(t.defections)):
        world.event("defection", from_faction=world.faction_names[a], to_faction=world.faction_names[b],
                    count=int(t.defections[a, b]))  # fmt: skip
        if world.hostile[a, b]:
            lo, hi = min(a, b), max(a, b)
            world.tension[lo, hi] += rules.tension.gain_poaching * t.defections[a, b]


RECRUITMENT_STATE = ("faction", "joined_step", "post")
TALLY_STATE = ("joined", "desertions", "defections")


@pytest.mark.parametrize("name", ["baseline", "syria_wide"])
def test_recruitment_day_equals_the_module_functions(name):
    """Models in the middle of runs, with more recruits reconsidering (and defecting) than the rules have."""
    import copy

    from sim.processes import recruitment

    overrides = (*BUSY, "rules.recruitment.p_reconsider=0.2") if name == "baseline" else ()
    model = CorridorModel(scenario(*overrides, name=name), seed=3)
    compared = defected = 0
    for day in range(90):
        model.step()
        if day % 9:
            continue
        world, rules = model.world, model.rules
        plain = copy.copy(world)
        plain.recruits = copy.copy(world.recruits)
        for field in RECRUITMENT_STATE:
            setattr(plain.recruits, field, getattr(world.recruits, field).copy())
        plain.today = copy.copy(world.today)
        for field in TALLY_STATE:
            setattr(plain.today, field, getattr(world.today, field).copy())
        plain.tension, plain.events = world.tension.copy(), list(world.events)
        rng_fast, rng_plain = np.random.default_rng(day), np.random.default_rng(day)
        recruitment.step(world, rules, rng_fast)
        _plain_recruitment_day(plain, rules, rng_plain)
        for field in RECRUITMENT_STATE:
            assert np.array_equal(getattr(world.recruits, field), getattr(plain.recruits, field)), (day, field)
        for field in TALLY_STATE:
            assert np.array_equal(getattr(world.today, field), getattr(plain.today, field)), (day, field)
        assert world.tension.tobytes() == plain.tension.tobytes() and world.events == plain.events
        assert rng_fast.random() == rng_plain.random()  # the same draws
        compared += 1
        defected += int(world.today.defections.sum() > 0)
    assert compared == 10 and defected


def _plain_rasterised_polyline(points_rc, height, width):
    """The river's cells as they were drawn: every sample of `np.linspace` along each segment."""
    mask = np.zeros((height, width), dtype=bool)
    for (r0, c0), (r1, c1) in zip(points_rc[:-1], points_rc[1:]):
        n = int(np.ceil(max(abs(r1 - r0), abs(c1 - c0)) * 4)) + 1
        rr = np.floor(np.linspace(r0, r1, n)).astype(int)
        cc = np.floor(np.linspace(c0, c1, n)).astype(int)
        keep = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
        mask[rr[keep], cc[keep]] = True
    return mask


@given(st.integers(0, 2**32 - 1), st.sampled_from([1.0, 0.1, 1e-3, 30.0]))
def test_river_cells_are_those_of_every_linspace_sample(seed, scale):
    """Only the samples that may fall on the grid are made now; they are the same points and so the same cells."""
    from sim.geography import _rasterise_polyline

    rng = np.random.default_rng(seed)
    height, width = (int(x) for x in rng.integers(2, 60, 2))
    points = rng.uniform(-3, 4, (int(rng.integers(2, 6)), 2)) * max(height, width) * scale
    if rng.random() < 0.3:  # on cell edges and quarter cells, where rounding decides
        points = np.round(points * 4) / 4
    if rng.random() < 0.2:  # a segment along one axis, or of no length
        points[1, int(rng.integers(0, 2))] = points[0, 0 if rng.random() < 0.5 else 1]
    if rng.random() < 0.1:
        points[1] = points[0]
    got = _rasterise_polyline(points, height, width)
    assert np.array_equal(got, _plain_rasterised_polyline(points, height, width))


def _plain_update_alignment(alignment, pull, responsiveness, initial, anchor):
    """The leaders' update as numpy computed it (the code the kernel replaced)."""
    pull = pull - pull.max(axis=1, keepdims=True)
    grown = alignment * exp(responsiveness[:, None] * pull)
    total = grown.sum(axis=1, keepdims=True)
    moved = np.divide(grown, total, out=alignment.copy(), where=total > 0)
    if initial is None or anchor == 0.0:
        return moved
    return (1.0 - anchor) * moved + anchor * initial


@given(st.integers(0, 2**32 - 1), st.integers(0, 5), st.integers(1, 12), st.sampled_from([None, 0.0, -0.0, 0.02, 1.0]))
def test_update_alignment_is_numpys_expression(seed, n_leaders, n_factions, anchor):
    """Random alignments and pulls, with zeros, infinities and NaNs among them, and 1 to 12 factions (numpy's
    row sums add 8 or more values pairwise)."""
    rng = np.random.default_rng(seed)
    shape = (n_leaders, n_factions)
    alignment = rng.dirichlet(np.ones(n_factions), n_leaders).reshape(shape)
    alignment[rng.random(shape) < 0.2] = 0.0
    pull = rng.normal(0, 3, shape) * 10.0 ** rng.uniform(-3, 3, shape)
    odd = rng.random(shape) < 0.15
    pull[odd] = rng.choice([0.0, -0.0, math.inf, -math.inf, math.nan], odd.sum())
    responsiveness = rng.choice([0.0, 0.05, 1.0, 40.0, math.inf], n_leaders)
    initial = None if anchor is None else rng.dirichlet(np.ones(n_factions), n_leaders).reshape(shape)
    with np.errstate(all="ignore"):
        expected = _plain_update_alignment(alignment, pull, responsiveness, initial, anchor or 0.0)
    got = tribal_politics.update_alignment(alignment, pull, responsiveness, initial, anchor or 0.0)
    nan = np.isnan(expected)  # a NaN where numpy has one; which NaN (its sign) is the CPU's choice
    assert np.array_equal(np.isnan(got), nan) and got[~nan].tobytes() == expected[~nan].tobytes()


def test_leaders_pull_is_numpys_expression(busy_model):
    from sim.world import PAYMENT_UNIT_USD_DAY

    world, tribal = busy_model.world, busy_model.rules.tribal
    n_t = len(world.tribe_names)
    control, presence = tribal_politics.town_control_shares(world), tribal_politics.town_presence_shares(world)
    expected = (
        tribal.weight_payments * world.courting_paid / PAYMENT_UNIT_USD_DAY
        + tribal.weight_control * control
        + tribal.weight_presence * presence
        - tribal.weight_casualties * 100.0 * world.casualty_memory[:n_t] / np.maximum(world.tribe_men, 1.0)[:, None]
    )
    expected[:, ~world.is_militia] = -np.inf
    pull = np.empty_like(expected)
    tribal_politics._pull(
        world.courting_paid, control, presence, world.casualty_memory, world.tribe_men, world.is_militia,
        tribal.weight_payments, PAYMENT_UNIT_USD_DAY, tribal.weight_control, tribal.weight_presence,
        tribal.weight_casualties * 100.0, pull,
    )  # fmt: skip
    assert pull.tobytes() == expected.tobytes()
    assert (world.casualty_memory > 0).any() and (world.courting_paid > 0).any()  # every term at work


def _plain_tribal_day(world, rules):
    """The leaders' day as numpy computed it: shares, pull, `_plain_update_alignment`, the fading memory."""
    from sim.world import PAYMENT_UNIT_USD_DAY

    tribal, n_t = rules.tribal, len(world.tribe_names)
    control = np.zeros((n_t, world.n_factions))
    for t, cells in enumerate(world.tribe_town_cells):
        if len(cells):
            held = world.control.reshape(-1)[cells]
            control[t] = [np.mean(held == f) for f in range(world.n_factions)]
    pull = (
        tribal.weight_payments * world.courting_paid / PAYMENT_UNIT_USD_DAY
        + tribal.weight_control * control
        + tribal.weight_presence * _plain_town_presence_shares(world)
        - tribal.weight_casualties * 100.0 * world.casualty_memory[:n_t] / np.maximum(world.tribe_men, 1.0)[:, None]
    )
    pull[:, ~world.is_militia] = -np.inf
    with np.errstate(invalid="ignore"):
        world.alignment = _plain_update_alignment(
            world.alignment, pull, world.responsiveness, world.initial_alignment, tribal.anchor_per_day
        )
    world.casualty_memory *= exp(-1.0 / tribal.casualty_memory_days)


@pytest.mark.parametrize("overrides", [BUSY, (*BUSY, "rules.tribal.anchor_per_day=0")], ids=["busy", "no-anchor"])
def test_tribal_day_equals_numpys_expressions(overrides):
    import copy

    model = CorridorModel(scenario(*overrides), seed=5)  # the busy model's run: tribesmen killed by day 150
    compared = remembered = 0
    for day in range(160):
        model.step()
        if day % 16:
            continue
        world, rules = model.world, model.rules
        plain = copy.copy(world)
        plain.casualty_memory = world.casualty_memory.copy()
        remembered += bool((world.casualty_memory > 0).any())
        tribal_politics.step(world, rules)
        _plain_tribal_day(plain, rules)
        assert world.alignment.tobytes() == plain.alignment.tobytes(), day
        assert world.casualty_memory.tobytes() == plain.casualty_memory.tobytes(), day
        compared += 1
    assert compared == 10 and remembered and (world.courting_paid > 0).any()  # every term at work


@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 6), st.integers(1, 400))
def test_target_groups_are_numpys_lexsort(seed, n, n_factions, n_cells):
    # The attack loop's groups of fighters per (faction, cell): a counting sort, in the order
    # np.lexsort((pool, post, faction)) gives for a pool of ascending rows.
    rng = np.random.default_rng(seed)
    pool = np.sort(rng.choice(10 * n + 1, size=n, replace=False)).astype(np.int64)
    faction, post = rng.integers(0, n_factions, n), rng.integers(0, n_cells, n)
    picker = insurgency.TargetPicker(pool, np.full(n, 1.0 / max(n, 1)), faction, post)
    order = np.lexsort((pool, post, faction))
    assert picker.rows.tolist() == pool[order].tolist()
    assert picker.keys.tolist() == (faction[order] * picker.span + post[order]).tolist()


# --------------------------------------------------------------------------- conflict, insurgency, casualties


def _plain_contest(world, rules, tension):
    """conflict.step's work before its draws as first written: pair by pair, with numpy and the public functions.

    Changes `tension` (decay, then each pair's contested gain); returns per pair (sites, front,
    chance, calm, posture) and the count of cells some hostile pair of militias both holds.
    """
    cl = rules.clashes
    tension *= 1.0 - rules.tension.decay_per_day
    pairs = world.militia_pairs
    involved = sorted({f for pair in pairs for f in pair})
    near = conflict.neighbourhood_sum(world.fighter_counts[involved], cl.radius_cells)
    row_of = {f: i for i, f in enumerate(involved)}
    rival = np.zeros(world.control.shape, dtype=bool)
    out = []
    for a, b in pairs:
        both = conflict.footholds(world, rules, a, b)
        rival |= both
        tension[a, b] += rules.tension.gain_contested * float((world.cell_value * both).sum())
        sites = both.reshape(-1)[world.site_flat].nonzero()[0]
        front = np.flatnonzero(
            ((near[row_of[a]] >= cl.min_fighters) & (near[row_of[b]] >= cl.min_fighters)).reshape(-1)
        )
        posture = max(effective_posture(world, rules, a), effective_posture(world, rules, b))
        pair_calm = calm(world, rules, a, b)
        chance = conflict.clash_probability(
            tension[a, b], pair_calm, posture, cl.p_max, cl.tension_scale, cl.posture_floor
        )
        out.append((sites, front, chance, pair_calm, posture))
    return out, int(np.count_nonzero(rival))


def _contest(world, rules, tension):
    """conflict._before_draws (what step() calls) on `tension`; its results per pair as _plain_contest gives them."""
    pairs, n_rival, found, per_pair = conflict._before_draws(world, rules, tension)
    n = len(pairs) + 1
    assert found[n - 1] == found[n] and found[2 * n - 1] == len(found)  # sites end where the fronts begin
    out = [
        (found[found[k] : found[k + 1]], found[found[n + k] : found[n + k + 1]], *per_pair[:, k])
        for k in range(len(pairs))
    ]
    return out, n_rival


def _assert_same_contest(world, rules):
    plain_tension, fast_tension = world.tension.copy(), world.tension.copy()
    expected, expected_rival = _plain_contest(world, rules, plain_tension)
    got, n_rival = _contest(world, rules, fast_tension)
    assert fast_tension.tobytes() == plain_tension.tobytes()
    assert n_rival == expected_rival
    assert len(got) == len(expected) == len(world.militia_pairs)
    for (sites, front, chance, pair_calm, posture), plain in zip(got, expected):
        assert sites.tolist() == plain[0].tolist() and front.tolist() == plain[1].tolist()
        assert (repr(float(chance)), repr(float(pair_calm)), repr(float(posture))) == tuple(
            repr(float(x)) for x in plain[2:]
        )
    return expected


@pytest.mark.parametrize(
    "name, overrides",
    [("baseline", BUSY), ("baseline", (*BUSY, "rules.clashes.radius_cells=0")), ("syria_wide", ()),
     ("tribes_courted_by_irgc", ("rules.clashes.min_fighters=1", "rules.mediation.p_success_base=0.9"))],
)  # fmt: skip
def test_contest_is_the_per_pair_numpy_day(name, overrides):
    """Decay, contested gain, sites, fronts, calm, posture and chance of every pair: in the middle of runs."""
    model = CorridorModel(scenario(*overrides, name=name), seed=2)
    fronts = calms = 0
    for day in range(90):
        model.step()
        if day % 6 == 0:
            expected = _assert_same_contest(model.world, model.rules)
            fronts += sum(len(e[1]) > 0 for e in expected)
            calms += sum(e[3] > 0 for e in expected)
    assert fronts
    if name == "baseline":
        assert calms  # agreements' calm at work


@pytest.fixture(scope="module")
def young_model():
    """A baseline model 5 days in, for tests that set its arrays at random (and put them back)."""
    model = CorridorModel(scenario("rules.clashes.min_fighters=3"), seed=4)
    for _ in range(5):
        model.step()
    return model


@given(seed=st.integers(0, 2**32 - 1))
def test_contest_is_the_per_pair_numpy_day_on_random_worlds(young_model, seed):
    """Random shares, fighters, tension, agreements, postures and green lights on the baseline's map."""
    rng = np.random.default_rng(seed)
    world, rules = young_model.world, young_model.rules
    saved = {name: getattr(world, name) for name in ("share", "fighter_counts", "tension", "last_agreement", "posture")}
    patrons = world.config.patrons
    green = {name: patrons[name].green_light for name in patrons}
    try:
        shape = world.share.shape
        world.share = rng.random(shape) * (rng.random(shape) < 0.6)
        world.fighter_counts = rng.poisson(rng.uniform(0.1, 8.0), shape).astype(float)
        world.tension = rng.uniform(-0.5, 6.0, world.tension.shape) * (rng.random(world.tension.shape) < 0.8)
        world.last_agreement = np.where(
            rng.random(world.tension.shape) < 0.5, -np.inf, rng.integers(-5, world.day + 5, world.tension.shape)
        ).astype(float)
        world.posture = rng.random(world.n_factions)
        for name in patrons:  # past the scenario's freezing, so the kept plan is forgotten by hand
            object.__setattr__(patrons[name], "green_light", bool(rng.random() < 0.5))
        world.derived.pop("militia_pairs", None)
        _assert_same_contest(world, rules)
    finally:
        for name, value in saved.items():
            setattr(world, name, value)
        for name, value in green.items():
            object.__setattr__(patrons[name], "green_light", value)
        world.derived.pop("militia_pairs", None)


def _plain_loot(world, rules, a, b, contested_sites, rng):
    """The looting loop as first written: one `rng.random()` call per uniform."""
    p = rules.economy.p_looting
    for s in contested_sites:
        if rng.random() < p:
            looter, victim = (a, b) if rng.random() < 0.5 else (b, a)
            taken = min(rules.economy.looting_usd, world.budget[victim])
            world.budget[victim] -= taken
            world.budget[looter] += taken
            world.tension[a, b] += rules.tension.gain_looting
            world.today.lootings += 1
            world.event("looting", faction=world.faction_names[looter], site=world.geo.site_names[s])


@given(seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.0, 0.02, 0.3, 0.7, 1.0]), n_sites=st.integers(0, 12))
def test_looting_in_blocks_draws_what_one_call_per_uniform_draws(young_model, seed, p, n_sites):
    model = young_model
    world, rules = model.world, model.rules.model_copy(deep=True)
    object.__setattr__(rules.economy, "p_looting", p)
    sites = np.sort(np.random.default_rng(seed).choice(len(world.geo.site_names), size=n_sites))
    states = []
    for loot in (_plain_loot, conflict._loot_sites):
        budget, tension, lootings, n_events = (
            world.budget.copy(),
            world.tension.copy(),
            world.today.lootings,
            len(world.events),
        )
        rng = np.random.default_rng(seed)
        looted = loot(world, rules, 0, 1, sites, rng)
        states.append((world.budget.tobytes(), world.tension.tobytes(), world.today.lootings - lootings,
                       world.events[n_events:], rng.random()))  # fmt: skip
        if loot is conflict._loot_sites:
            assert looted == states[-1][2]
        world.budget, world.tension, world.today.lootings = budget, tension, lootings
        del world.events[n_events:]
    assert states[0] == states[1]


def _plain_ground_type(world, row, col):
    """conflict.ground_type as first written, with numpy."""
    geo = world.geo
    near = (np.abs(geo.site_rows - row) <= conflict.CROSSING_REACH_CELLS) & (
        np.abs(geo.site_cols - col) <= conflict.CROSSING_REACH_CELLS
    )
    if any(geo.site_kinds[s] == "crossing" for s in np.flatnonzero(near)):
        return "crossing"
    k = conflict.EDGE_REACH_CELLS
    block = world.control[max(row - k, 0) : row + k + 1, max(col - k, 0) : col + k + 1]
    holder = world.control[row, col]
    if holder < 0 or np.any(block != holder):
        return "edge"
    return "core"


def test_ground_type_is_the_numpy_one_on_every_cell(busy_model):
    world = busy_model.world
    seen = set()
    control = world.control
    try:
        for grid in (control, np.random.default_rng(1).integers(-2, 2, control.shape), np.zeros_like(control)):
            world.control = grid
            for row in range(world.geo.height):
                for col in range(world.geo.width):
                    kind = conflict.ground_type(world, row, col)
                    assert kind == _plain_ground_type(world, row, col), (row, col)
                    seen.add(kind)
    finally:
        world.control = control
    assert seen == {"crossing", "edge", "core"}


@pytest.mark.parametrize("radius", [0, 1, 2, 5])
def test_a_clash_cells_fighters_and_ground_are_the_worlds_fighters_near_and_ground_type(busy_model, radius):
    world = busy_model.world
    r, geo = world.recruits, world.geo
    posted = r.on_post_rows(world.day)
    found = 0
    for a, b in [*world.militia_pairs, (0, 0)]:
        for flat in range(0, geo.height * geo.width, 7):
            row, col = divmod(flat, geo.width)
            near_a, near_b, ground = conflict._clash_cell(
                posted, r.faction, r.post, a, b, row, col, radius, geo.width, geo.site_rows, geo.site_cols,
                conflict._crossings(world), world.control, conflict.CROSSING_REACH_CELLS, conflict.EDGE_REACH_CELLS,
            )  # fmt: skip
            assert near_a.tolist() == world.fighters_near(a, flat, radius).tolist()
            assert near_b.tolist() == world.fighters_near(b, flat, radius).tolist()
            assert conflict.GROUND_TYPES[ground] == _plain_ground_type(world, row, col)
            found += len(near_a) + len(near_b)
    assert found


def _plain_inflict(world, rules, candidates, n_casualties, victim, attacker, rng):
    """casualties.inflict as first written, with numpy's assignments."""
    if n_casualties == 0 or len(candidates) == 0:
        return 0, 0
    n_casualties = min(n_casualties, len(candidates))
    hit = rng.choice(candidates, size=n_casualties, replace=False)
    killed_n, _ = casualties.split_killed(n_casualties, rules.clashes.p_killed, rng)
    killed, wounded = hit[:killed_n], hit[killed_n:]
    r = world.recruits
    r.status[killed] = 2
    r.post[killed] = -1
    r.status[wounded] = WOUNDED
    r.post[wounded] = -1
    stay = rng.exponential(rules.clashes.recovery_days, size=len(wounded))
    r.recover_step[wounded] = world.day + np.ceil(stay).astype(np.int64)
    r.changed()
    world.today.killed[victim] += len(killed)
    world.today.wounded[victim] += len(wounded)
    if attacker is not None and len(world.tribe_names):
        tribes = r.tribe[killed]
        tribes = tribes[tribes >= 0]
        np.add.at(world.casualty_memory[:, attacker], tribes, 1.0)
    return len(killed), len(wounded)


INFLICTED = ("status", "post", "recover_step")


@pytest.mark.parametrize("name", ["baseline", "toy_two_towns"])
def test_inflict_is_the_numpy_one(name):
    model = CorridorModel(scenario(*BUSY, name=name) if name == "baseline" else scenario(name=name), seed=6)
    for _ in range(30):
        model.step()
    world, rules = model.world, model.rules
    r = world.recruits
    fighters = r.fighting_rows()
    remembered = 0
    for trial in range(60):
        pick = np.random.default_rng(trial)
        candidates = np.sort(pick.choice(fighters, size=int(pick.integers(0, min(len(fighters), 80))), replace=False))
        n_casualties = int(pick.integers(0, 40))
        victim = int(pick.integers(world.n_factions))
        attacker = None if trial % 3 == 0 else int(pick.integers(world.n_factions))
        results = []
        before = {k: getattr(r, k).copy() for k in INFLICTED}
        memory, killed, wounded = world.casualty_memory.copy(), world.today.killed.copy(), world.today.wounded.copy()
        for inflict in (_plain_inflict, casualties.inflict):
            rng = np.random.default_rng(trial)
            out = inflict(world, rules, candidates, n_casualties, victim, attacker, rng)
            results.append((out, *(getattr(r, k).tobytes() for k in INFLICTED), world.casualty_memory.tobytes(),
                            world.today.killed.tobytes(), world.today.wounded.tobytes(), rng.random()))  # fmt: skip
            for k in INFLICTED:
                getattr(r, k)[:] = before[k]
            world.casualty_memory[:], world.today.killed[:], world.today.wounded[:] = memory, killed, wounded
            r.changed()
        assert results[0] == results[1], trial
        remembered += results[0][4] != memory.tobytes()
    assert remembered or name == "toy_two_towns"


@pytest.mark.parametrize("name", ["baseline", "toy_two_towns", "isis_resurgence"])
def test_remembered_losses_are_the_numpy_update(name):
    model = CorridorModel(scenario(name=name), seed=3)
    world, rules = model.world, model.rules
    for day in range(25):
        model.step()
        pick = np.random.default_rng(day)
        world.today.killed[:] = pick.integers(0, 50, world.n_factions) * (pick.random(world.n_factions) < 0.7)
        world.insurgent_cells = float(pick.choice([0.0, 0.5, 1.5, 2.5, 123.4]))
        counts = world.fighters_by_faction() + world.today.killed
        rate = world.today.killed / np.maximum(counts, 1)
        expected = world.death_risk + (rate - world.death_risk) / rules.recruitment.risk_memory_days
        casualties.remember_losses(world, rules)
        assert world.death_risk.tobytes() == expected.tobytes()


def _plain_target_picker(world, weight):
    """insurgency.step's targets as first written: the pool by numpy, the picker by its constructor."""
    r = world.recruits
    posted = r.on_post_rows(world.day)
    pool = posted[world.is_militia[r.faction[posted]]]
    if len(pool) == 0:
        return None
    contested = world.control.reshape(-1)[r.post[pool]] == CONTESTED
    w = np.where(contested, weight, 1.0)
    return insurgency.TargetPicker(pool, w / w.sum(), r.faction[pool], r.post[pool])


@pytest.mark.parametrize("name", ["baseline", "isis_resurgence", "toy_two_towns"])
def test_target_picker_of_militias_is_the_constructors(name):
    model = CorridorModel(scenario("rules.insurgency.attack_rate=0.05", name=name), seed=8)
    world = model.world
    r = world.recruits
    checked = 0
    for _ in range(40):
        model.step()
        for weight in (0.3, 2.0, 7.0):
            plain = _plain_target_picker(world, weight)
            fast, scanning = (insurgency.TargetPicker.of_militias(world, weight, grouped) for grouped in (True, False))
            assert (plain is None) == (fast is None) == (scanning is None)
            if plain is None:
                continue
            for field in ("pool", "cdf", "rows", "keys"):
                assert getattr(fast, field).tobytes() == getattr(plain, field).tobytes(), field
            for field in ("pool", "cdf"):
                assert getattr(scanning, field).tobytes() == getattr(plain, field).tobytes(), field
            assert fast.span == scanning.span == plain.span
            cells = [(int(r.faction[t]), int(r.post[t])) for t in plain.pool[::5]] + [(0, -1), (0, 10**6)]
            saved = r.status.copy(), r.post.copy()
            for hit in (False, True):
                if hit:  # as the attack loop leaves them: some fighters of the pool hit (unposted) since morning
                    gone = plain.pool[::3]
                    r.status[gone], r.post[gone] = WOUNDED, -1
                for f, flat in cells:
                    group = plain.rows[plain.keys.searchsorted(f * plain.span + flat) :
                                       plain.keys.searchsorted(f * plain.span + flat, side="right")] \
                        if 0 <= flat < plain.span else plain.rows[:0]  # fmt: skip
                    expected = group[(r.status[group] == FIT) & (r.post[group] == flat)].tolist()
                    assert fast.still_posted(f, flat, r).tolist() == expected
                    assert scanning.still_posted(f, flat, r).tolist() == expected
            r.status[:], r.post[:] = saved
            checked += 1
    assert checked


def test_the_kept_pair_plan_follows_the_pairs_militias_and_patrons():
    model = CorridorModel(scenario(name="syria_wide"), seed=1)
    world = model.world
    model.step()

    def fresh():
        world.derived.pop("militia_pairs", None)
        return conflict._pair_plan(world)

    patrons = world.config.patrons
    green = next(name for name in patrons if patrons[name].green_light)
    f = next(f for f, name in enumerate(world.patron_of) if name is None or not patrons[name].green_light)
    for change in (
        lambda: world.hostile_pairs.pop(0),
        lambda: world.is_militia.__setitem__(world.militia_pairs[0][0], False),
        lambda: world.patron_of.__setitem__(f, green),  # a patron with a green light
    ):
        before = conflict._pair_plan(world)
        change()
        kept, plain = conflict._pair_plan(world), fresh()
        assert kept[0] == plain[0] and all(np.array_equal(x, y) for x, y in zip(kept[1:], plain[1:]))
        assert kept[0] != before[0] or not np.array_equal(kept[3], before[3])


@pytest.mark.parametrize("name, overrides", [("baseline", BUSY), ("syria_wide", ()), ("toy_two_towns", ())])
def test_influence_day_in_one_call_is_the_step_call_by_call(monkeypatch, name, overrides):
    """influence.step's compiled day (`_day`) gives the influence, shares, control and counts of
    presence -> spread_influence -> blend -> control_map, bit for bit, day after day, and remembers
    the day's fighters at their post (`on_post_rows`) whether it found them or they were known."""
    import copy

    fused = CorridorModel(scenario(*overrides, name=name), seed=4)
    for _ in range(20):
        fused.step()
    plain = copy.deepcopy(fused.world)
    rules = fused.rules
    for day in range(21, 41):
        fused.world.day = plain.day = day
        fused.world.recruits.remember(True)
        plain.recruits.remember(True)
        if day % 2:  # the fighters at their post already known today (else the compiled day finds them)
            fused.world.recruits.on_post_rows(day)
        influence.step(fused.world, rules)
        assert np.array_equal(fused.world.recruits.on_post_rows(day), plain.recruits.on_post_rows(day))
        with monkeypatch.context() as patch:
            patch.setattr(influence, "_day", lambda world, rules: False)
            influence.step(plain, rules)
        for field in ("influence", "share", "control", "fighter_counts", "site_control"):
            a, b = getattr(fused.world, field), getattr(plain, field)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (day, field)
        fused.world.recruits.remember(False)
        plain.recruits.remember(False)
        # move some fighters so that the next day's presence differs
        r = fused.world.recruits
        rng = np.random.default_rng(day)
        movers = rng.choice(len(r), size=len(r) // 20, replace=False)
        new_posts = rng.integers(0, fused.world.geo.n_cells, len(movers))
        r.post[movers] = np.where(r.post[movers] >= 0, new_posts, r.post[movers])
        plain.recruits.post[:] = r.post
    assert fused.world.first_control_change == plain.first_control_change


@pytest.mark.parametrize("sigma", [1e-200, 1e-160, 1e-20])
def test_a_kernel_narrower_than_the_compiled_paths_runs_as_before(sigma):
    """A sigma the schema accepts but too narrow for the compiled spread (<= 1e-15, or whose square
    underflows) goes to scipy's filter, without a warning, and gives the call-by-call numbers."""
    import warnings

    from sim.runner import run_model

    config = scenario(f"rules.influence.sigma_cells={sigma}", name="toy_two_towns")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            result = run_model(config, seed=3, steps=5)
    numbers = result.timeseries.select_dtypes("number").to_numpy(dtype=float)
    assert np.isfinite(numbers).all() and len(numbers) == 6


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("baseline", (*BUSY, "rules.recruitment.p_reconsider=0.05", "rules.clashes.p_max=0.05")),
        ("syria_wide", ()),
        ("isis_resurgence", ("rules.insurgency.attack_rate=0.2",)),
        ("toy_two_towns", ()),
    ],
)
def test_the_census_kept_through_a_day_is_a_recount(name, overrides, monkeypatch):
    """The recovery of the wounded counts the day's census; recruitment and casualties hand it on, counted
    from the rows they change: always the recount."""
    counted, served = [], []
    count = world_scans._census

    def counting(faction, status, n_factions):
        counted.append(1)
        return count(faction, status, n_factions)

    census = world_scans.RecruitArrays.census

    def checked(self, n_factions):
        value = census(self, n_factions)
        assert np.array_equal(value, count(self.faction, self.status, n_factions))
        served.append(1)
        return value

    monkeypatch.setattr(world_scans, "_census", counting)
    monkeypatch.setattr(world_scans.RecruitArrays, "census", checked)
    model = CorridorModel(scenario(*overrides, name=name), seed=5)
    for _ in range(60):
        model.step()
    t = model.datacollector.get_model_vars_dataframe()
    assert t.filter(like="killed.").to_numpy().sum() > 0 and t.filter(like="joined.").to_numpy().sum() > 0
    # No recount during the days: the morning's recovery of the wounded counts them in its pass
    # (casualties.recover_wounded), and the processes after it hand on what they change.
    assert len(served) >= 2 * 60 and len(counted) <= 2


@given(st.integers(0, 2**32 - 1), st.integers(0, 300), st.integers(1, 5), st.integers(0, 40))
def test_recovery_returns_the_due_wounded_and_counts_the_census(seed, n, n_factions, day):
    """`casualties._recover`: the wounded due by `day` (and only they) are fit again, their number is
    returned, and the census it counts is numpy's bincount of the recruits after the change."""
    rng = np.random.default_rng(seed)
    faction = rng.integers(-1, n_factions, n)
    status = rng.integers(0, 3, n)
    recover_step = rng.integers(0, 60, n)
    due = (status == WOUNDED) & (recover_step <= day)
    expected = np.where(due, FIT, status)
    census = np.zeros((n_factions + 1, 3), dtype=np.int64)
    assert casualties._recover(status, recover_step, day, faction, census) == due.sum()
    assert np.array_equal(status, expected)
    recount = np.bincount((faction + 1) * 3 + expected, minlength=(n_factions + 1) * 3).reshape(-1, 3)
    assert np.array_equal(census, recount)


@pytest.mark.parametrize("max_cells", [2.0, 0.0, 5.5])
def test_the_kept_nearest_site_of_every_cell_is_numpys_nearest(busy_model, max_cells):
    """`World.nearest_site_name` (kept per cell) names the first site of least numpy hypot distance, within
    `max_cells`, asked once or again, in any order."""
    world = busy_model.world
    geo = world.geo
    cells = list(range(geo.n_cells))
    for flat in cells + cells[::-1]:
        row, col = divmod(flat, geo.width)
        d = np.hypot(geo.site_rows - row, geo.site_cols - col)
        expected = geo.site_names[int(np.argmin(d))] if d.min() <= max_cells else None
        assert world.nearest_site_name(flat, max_cells) == expected


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("baseline", BUSY),
        ("supply_route_closed", ()),
        ("syria_wide", ()),  # patrons that share their funding among clients
        ("baseline", ("patrons.Russia.topup_per_loss=0", "patrons.Iran.supply_funding_share=1")),
    ],
)
def test_funding_of_every_faction_is_funding_today(name, overrides):
    """`patrons.funding_by_faction` gives `funding_today` of each faction (0.0 for the insurgents), bit for
    bit, whoever holds the supply crossings and however many fighters are left (losses, none, gains)."""
    from sim.processes import patrons

    model = CorridorModel(scenario(*overrides, name=name), seed=2)
    for _ in range(30):
        model.step()
    world = model.world
    rng = np.random.default_rng(0)
    codes = np.arange(-2, world.n_factions)  # NONE, CONTESTED and every faction
    insurgent = world.insurgent
    for trial in range(60):
        world.site_control = rng.choice(codes, size=len(world.site_control))
        top = int(2 * world.initial_fighters.max()) + 2
        fighters = rng.integers(0, top, world.n_factions) if trial % 3 else np.zeros(world.n_factions, dtype=np.int64)
        fast = patrons.funding_by_faction(world, fighters)
        plain = [
            0.0 if f == insurgent else patrons.funding_today(world, f, fighters[f]) for f in range(world.n_factions)
        ]
        assert fast.tobytes() == np.array(plain).tobytes(), trial
