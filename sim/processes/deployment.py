"""Deployment and new headquarters (ODD §7.5): where militias post their fighters.

Every day, unposted fighters and a share `rules.deployment.p_redeploy` of the others are
posted to a site s drawn with probability proportional to

    w_fs = value_s x preference_fs x (1 + weight_contested if s is contested)
           x (enemy_core_weight if a hostile faction holds s and f's share there < enemy_core_share)
           x (weight_bases if s is one of f's bases: its headquarters and the sites it held on day 0)
           x (1 - calm_fg) for every pair (f, g) whose latest agreement gave s to g
           x exp(-d_fs / reach_cells)

with d_fs the path distance (over passable cells) from f's nearest base (its headquarters
and the sites it held on day 0) to s: reinforcing far from one's bases is less likely. If
all of f's weights are 0, it posts uniformly over the sites whose preference (its
`deployment_weights`, and its theatre: ODD §7.13) is above 0, or over all sites if none is.
The post is scattered up to `post_scatter_cells` cells around the site on passable ground,
and the fighter needs ceil(d / speed_cells_per_day) days to get there, d the path distance
from where it stands (its post, or its home if it has none); on the way it is a member but
not at a post (no influence, not in clashes). On day 0 fighters stand at their posts. A
militia with cash to spare beyond its reserve opens a headquarters at the site where value x
its share is largest, among towns, crossings, oil fields and posts where its share reaches
`min_share_for_new_hq` (at most `max_new_headquarters`; a theatre militia only in its own
theatre, ODD §7.13).

Sources: article §10, §11 (posts reinforced west of Al-Bukamal, headquarters opened),
§13 (Buqrus as a flashpoint). Random stream: "deployment" (who redeploys, by geometric skips:
`sim.compiled.bernoulli_rows`; then two uniforms per mover in row order, for its site and its
scatter).
"""

from __future__ import annotations

import operator

import numpy as np

from sim.compiled import (
    drawn_bernoulli_rows,
    exp,
    flagged_rows,
    generator_addresses,
    generator_at,
    kernel,
    numpy_sum,
    skip_plan,
)
from sim.processes.influence import control_map, spread_influence
from sim.processes.mediation import compiled_calm
from sim.processes.spillover import may_open_headquarters
from sim.schema import Rules
from sim.world import CONTESTED, FIT, World

HQ_SITE_KINDS = ("town", "crossing", "oil_field", "post")  # where a new headquarters may open


def travel_days(distance_cells: np.ndarray, speed_cells_per_day: float) -> np.ndarray:
    """Whole days to travel path distances (cells) at a speed (cells/day): ceil(d / speed), 0 for d = 0."""
    return np.ceil(np.asarray(distance_cells, dtype=float) / speed_cells_per_day - 1e-9).astype(np.int64)


def distance_weight(distance_cells: np.ndarray, reach_cells: float) -> np.ndarray:
    """Posting weight factor exp(-d / reach) of sites at path distance d from a faction's nearest base (0 if none)."""
    return exp(-np.asarray(distance_cells, dtype=float) / reach_cells)


def posting_weights(world: World, rules: Rules) -> np.ndarray:
    """(F, S) posting weight of each site for each faction (see the module docstring).

    Computed for all factions at once (`_posting_weights`); each weight is the same product,
    factor by factor and in the same order, as the per-faction rule in the module docstring.
    """
    w = np.empty(world.deploy_preference.shape)
    _posting_weights(*_posting_inputs(world, rules), w)
    return w


def _posting_inputs(world: World, rules: Rules) -> tuple:
    """What `_posting_weights` reads, in its argument order (all but `out`): today's arrays and the rules' numbers."""
    dep = rules.deployment
    is_base, reach, has_base = _base_factors(world, dep.reach_cells)
    # Sites an agreement gave to the other side are left while the calm lasts: the pairs with
    # a partition, in pair order, and who got each site; the kernel finds each pair's calm.
    pairs, partitions = _partitions(world)
    return (
        world.site_value, world.deploy_preference, world.site_control, world.hostile,
        world.share.reshape(len(world.hostile), -1), world.site_flat, is_base, reach, has_base,
        1.0 + dep.weight_contested, dep.enemy_core_share, dep.enemy_core_weight, dep.weight_bases,
        pairs, partitions, world.last_agreement, world.day, 0.5, rules.mediation.calm_half_life_days,
    )  # fmt: skip


def _partitions(world: World) -> tuple[np.ndarray, np.ndarray]:
    """((P, 2) int64 hostile pairs whose latest agreement partitioned the sites, in pair order; (P, S) int64 those).

    Each partition gives every site to a, to b or to neither (-1: `mediation.partition_sites`).
    Kept while `World.partition` holds the same arrays: an agreement replaces its pair's
    partition (`mediation`), it never writes one in place.
    """
    current = [world.partition[pair] for pair in world.hostile_pairs]
    cached = world.derived.get("partitions")
    if cached is not None and len(cached[0]) == len(current) and all(map(operator.is_, cached[0], current)):
        return cached[1]
    pairs = [pair for pair, partition in zip(world.hostile_pairs, current) if partition is not None]
    n_s = len(world.site_value)
    value = (
        np.array(pairs, dtype=np.int64).reshape(len(pairs), 2),
        np.array([world.partition[pair] for pair in pairs], dtype=np.int64).reshape(len(pairs), n_s),
    )
    world.derived["partitions"] = (current, value)  # (the arrays kept alive, so that `is` cannot be fooled)
    return value


def _base_factors(world: World, reach_cells: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((F, S) `World.is_base()`, (F, S) distance factor exp(-d / reach), (F,) whether each faction has a base).

    d is the path distance from the faction's nearest base to the site (`World.base_distance`).

    Kept until the bases change (a new headquarters) or the reach does.
    """
    bases = world.base_state()  # recomputed, and so emptied of what is kept here, when the bases change
    key = ("reach", float(reach_cells))
    if key not in bases:
        base_distance = bases["distance"]  # (F, S), inf for a faction with no base
        bases[key] = (
            bases["is_base_view"],
            distance_weight(base_distance, reach_cells),
            np.isfinite(base_distance).any(axis=1),
        )
    return bases[key]


@kernel
def _posting_weights(
    site_value, preference, site_control, hostile, share, site_flat, is_base, reach, has_base,
    contested_factor, enemy_core_share, enemy_core_weight, weight_bases, pairs, partitions, last_agreement, day, half,
    half_life, out,
):  # fmt: skip  # pragma: no cover - compiled
    # The module docstring's product, factor by factor in its order (a factor of 1 changes nothing):
    # value x preference, contested, enemy core, bases; then each partition in pair order, by
    # 1 - the pair's calm (`mediation.calm`, as `compiled_calm`: `half` is 0.5); then reach.
    n_f, n_s = preference.shape
    for f in range(n_f):
        for s in range(n_s):
            x = site_value[s] * preference[f, s]
            holder = site_control[s]
            if holder == CONTESTED:
                x = x * contested_factor
            # Posting weight does not grow with current share (that would let the stronger
            # side empty every contested site of its rival); it falls only where a hostile
            # faction holds the site outright and this one has no foothold (enemy cores).
            if holder >= 0 and hostile[f, holder] and holder != f and share[f, site_flat[s]] < enemy_core_share:
                x = x * enemy_core_weight
            if is_base[f, s]:  # fighters are based at headquarters and posts: a faction garrisons them
                x = x * weight_bases
            out[f, s] = x
    for p in range(len(pairs)):
        a, b = pairs[p, 0], pairs[p, 1]
        keep = 1.0 - compiled_calm(day - last_agreement[a, b], half, half_life)
        for s in range(n_s):
            if partitions[p, s] == b:
                out[a, s] = out[a, s] * keep
        for s in range(n_s):
            if partitions[p, s] == a:
                out[b, s] = out[b, s] * keep
    for f in range(n_f):
        if has_base[f]:
            for s in range(n_s):
                out[f, s] = out[f, s] * reach[f, s]
    # Nowhere it wants to be (every weight 0, or underflow; with weights >= 0 a sum of 0 or
    # less: a sum of positive numbers is never 0, NaN is neither): spread evenly rather than
    # fail, over the sites its preference allows (a theatre militia stays in its theatre: §7.13),
    # or over all sites if it allows none.
    for f in range(n_f):
        nowhere = True
        for s in range(n_s):
            if not out[f, s] == 0.0:
                nowhere = False
                break
        if nowhere:
            allows_any = False
            for s in range(n_s):
                allows_any = allows_any or preference[f, s] > 0
            for s in range(n_s):
                out[f, s] = 1.0 if preference[f, s] > 0 or not allows_any else 0.0


def _choose(weights: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Indices drawn with probability proportional to `weights` (S,), one per uniform draw in [0, 1).

    Exactly what `Generator.choice(len(weights), size=len(uniforms), p=weights / weights.sum())`
    returns for the same uniforms: it normalises p, takes the cumulative sum, divides it by
    its last entry and searches it (tests/test_fast_paths.py checks they agree draw for draw).
    """
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    cdf = np.empty(len(weights))
    _cdf(weights, weights.sum(), cdf)
    return cdf.searchsorted(uniforms, side="right")


@kernel
def _cdf(weights, total, cdf):  # pragma: no cover - compiled
    # (weights / total).cumsum(), then divided by its last entry (numpy's order: one running sum).
    running = 0.0
    for s in range(len(weights)):
        running += weights[s] / total
        cdf[s] = running
    last = cdf[len(cdf) - 1]
    for s in range(len(cdf)):
        cdf[s] = cdf[s] / last


def seed_initial_influence(world: World, rules: Rules) -> None:
    """Step-0 influence from the scenario's initial control and headquarters (ODD §5).

    Each site's initial holder and each headquarters project `rules.deployment.hq_influence`,
    spread by the influence kernel, so the first deployment starts from the scenario's map.
    """
    seed = np.zeros_like(world.influence)
    for s, holder in enumerate(world.site_control):
        if holder >= 0:
            seed[holder, world.geo.site_rows[s], world.geo.site_cols[s]] += rules.deployment.hq_influence
    for f in range(world.n_factions):
        for flat in world.headquarters(f):
            seed[f].reshape(-1)[flat] += rules.deployment.hq_influence
    inf = rules.influence
    world.influence = spread_influence(seed, inf.sigma_cells, world.geo.passable, inf.kernel_truncation)
    world.control, world.share = control_map(world.influence, world.hostile, inf.control_threshold, inf.min_influence)


def post(world: World, rules: Rules, rng: np.random.Generator, initial: bool = False) -> None:
    """Post unposted fighters and today's movers (draws: who redeploys, each mover's site and post); set arrivals."""
    r = world.recruits
    geo = world.geo
    dep = rules.deployment
    # The posting weights (`posting_weights`) are found in the same call, only if someone moves
    # (nearly every day): they change nothing and draw nothing.
    moved, on_post = _post_day(
        generator_addresses(rng), len(r), *skip_plan(len(r), dep.p_redeploy), r.faction, r.status, r.post, r.home,
        r.arrive_step, dep.post_scatter_cells, geo.site_rows, geo.site_cols, geo.passable, world.site_distance,
        world.day, dep.speed_cells_per_day, initial, *_posting_inputs(world, rules),
    )  # fmt: skip
    if moved:
        r.changed(census=r.known_census(world.n_factions))  # posts and arrivals only: who is in which militia is not
    r.remember_on_post_rows(world.day, on_post)  # for influence, next, and the day's other readers


@kernel
def _post_day(
    addresses, n, rate, block, faction, status, post, home, arrive_step, k, site_rows, site_cols, passable,
    site_distance, day, speed, initial, site_value, preference, site_control, hostile, share, site_flat, is_base,
    reach, has_base, contested_factor, enemy_core_share, enemy_core_weight, weight_bases, pairs, partitions,
    last_agreement, calm_day, half, half_life,
):  # fmt: skip  # pragma: no cover - compiled
    # The day's posting in one call, drawing from the "deployment" stream (`generator_at`) what
    # the step drew call by call, in its order: fit members who are unposted or redeploy today,
    # in row order, whether a recruit redeploys drawn for every row with probability p_redeploy
    # by geometric skips (`bernoulli_rows`, (rate, block) its `skip_plan`); then, if any moves,
    # the posting weights (`_posting_weights`, from the arguments after `initial`: `_posting_inputs`)
    # and two uniforms per mover in row order (`rng.random(2 m)`): its site (the faction's
    # cumulative weights searched, as `_choose`: the draw of `rng.choice(S, p=w_f / w_f.sum())`),
    # then its post, one of the (2k + 1)^2 cells around the site (each offset uniform in -k..k).
    # Returns (how many moved, the rows at their post today after the posting: `on_post_rows_of`,
    # found from the morning's mask of the same pass over the recruits, the movers' entries redone).
    rng = generator_at(addresses)
    moving, on_post = _day_masks(faction, status, post, arrive_step, drawn_bernoulli_rows(rng, n, rate, block), day)
    rows = flagged_rows(moving)
    m = len(rows)
    if m:
        weights = np.empty(preference.shape)
        _posting_weights(
            site_value, preference, site_control, hostile, share, site_flat, is_base, reach, has_base,
            contested_factor, enemy_core_share, enemy_core_weight, weight_bases, pairs, partitions, last_agreement,
            calm_day, half, half_life, weights,
        )  # fmt: skip
        uniforms = np.empty(2 * m)
        for j in range(2 * m):
            uniforms[j] = rng.random()
        _post(
            rows, faction, post, home, arrive_step, weights, uniforms[:m], uniforms[m:], k, site_rows, site_cols,
            passable, site_distance, day, speed, initial,
        )  # fmt: skip
        for i in rows:  # fit militia members, as before their move
            on_post[i] = (post[i] >= 0) & (arrive_step[i] <= day)
    return m, flagged_rows(on_post)


@kernel
def _day_masks(faction, status, post, arrive_step, redeploy, day):  # pragma: no cover - compiled
    # (N,) bool each: the movers, fit militia members that are unposted or among the `redeploy`
    # rows; and `sim.world.on_post_mask(day)`. One pass without a branch, which vectorises: the
    # redeploy rows are marked first (testing them in the pass was a branch).
    n = len(faction)
    chosen = np.zeros(n, dtype=np.bool_)
    for i in redeploy:
        chosen[i] = True
    moving = np.empty(n, dtype=np.bool_)
    on_post = np.empty(n, dtype=np.bool_)
    for i in range(n):
        fighting = (faction[i] >= 0) & (status[i] == FIT)
        moving[i] = fighting & ((post[i] < 0) | chosen[i])
        on_post[i] = fighting & (post[i] >= 0) & (arrive_step[i] <= day)
    return moving, on_post


@kernel
def _post(
    rows, faction, post, home, arrive_step, weights, site_uniforms, scatter_uniforms, k,
    site_rows, site_cols, passable, site_distance, day, speed, initial,
):  # fmt: skip  # pragma: no cover - compiled
    # Each mover's site (`_choose` per faction, the faction's site uniforms in row order), its
    # post the site's cell shifted by the scatter uniform's cell of the (2k + 1) x (2k + 1)
    # square (row offset = cell // (2k + 1) - k, column offset = cell % (2k + 1) - k), clipped
    # to the grid (the site's cell if that is impassable), and its arrival day: ceil(d / speed
    # - 1e-9) days (`travel_days`) for the site-to-origin path length plus the scatter step, or
    # today on day 0.
    n_f, n_s = weights.shape
    height, width = passable.shape
    side = 2 * k + 1
    counts = np.zeros(n_f, dtype=np.int64)
    for i in range(len(rows)):
        counts[faction[rows[i]]] += 1
    start = np.zeros(n_f, dtype=np.int64)
    for f in range(1, n_f):
        start[f] = start[f - 1] + counts[f - 1]
    cdf = np.empty((n_f, n_s))
    for f in range(n_f):
        if counts[f]:
            _cdf(weights[f], numpy_sum(weights[f]), cdf[f])  # the total `weights.sum(axis=1)` gives
    taken = np.zeros(n_f, dtype=np.int64)
    for i in range(len(rows)):
        row = rows[i]
        f = faction[row]
        u = site_uniforms[start[f] + taken[f]]
        taken[f] += 1
        site = 0  # searchsorted(cdf, u, side="right") on a non-decreasing cdf: how many entries are <= u
        while site < n_s and cdf[f, site] <= u:
            site += 1
        cell = min(np.int64(scatter_uniforms[i] * side * side), side * side - 1)
        site_row, site_col = site_rows[site], site_cols[site]
        pr = min(max(site_row + cell // side - k, 0), height - 1)
        pc = min(max(site_col + cell % side - k, 0), width - 1)
        if not passable[pr, pc]:
            pr, pc = site_row, site_col
        origin = post[row] if post[row] >= 0 else home[row]
        post[row] = pr * width + pc
        if initial:
            arrive_step[row] = day
        else:
            d = site_distance[site, origin] + max(abs(pr - site_row), abs(pc - site_col))
            arrive_step[row] = day + np.int64(np.ceil(d / speed - 1e-9))


def open_headquarters(world: World, rules: Rules) -> None:
    """Let each militia with spare cash open at most one new headquarters today."""
    dep = rules.deployment
    insurgent, reserve = _hq_settings(world)
    # Each militia's choice in one compiled call (`_new_headquarters`); on most days nobody
    # has both the cash and a site, and nothing below runs.
    n_open, best = _new_headquarters(
        _hq_hosts(world), insurgent, reserve, world.new_headquarters, world.budget,
        world.share.reshape(len(insurgent), -1), world.site_flat, world.site_value, dep.max_new_headquarters,
        dep.new_hq_cost_usd, dep.min_share_for_new_hq,
    )  # fmt: skip
    if not n_open:
        return
    for f, site in enumerate(best.tolist()):
        if site < 0:
            continue
        world.budget[f] -= dep.new_hq_cost_usd
        world.hq_sites[f].append(site)
        world.new_headquarters[f] += 1
        world.today.new_headquarters += 1
        world.event("new_headquarters", faction=world.faction_names[f], site=world.geo.site_names[site])


@kernel
def _new_headquarters(
    hosts, insurgent, reserve, opened, budget, share, site_flat, site_value, max_new, cost, min_share,
):  # fmt: skip  # pragma: no cover - compiled
    # Per faction, in faction order: none for insurgents, for a militia that opened `max_new`
    # already or whose cash beyond its reserve is below `cost` (as Python compared: a NaN
    # budget is not below); else, among the sites it may host (`_hq_hosts`) where its share
    # reaches `min_share`, the one with the largest value x share, the first (lowest index)
    # on a tie, as Python's max over the ascending sites with key (value x share, -site)
    # picked it. Returns (how many factions open one, (F,) int64 each one's site or -1).
    n_f, n_s = hosts.shape
    best = np.full(n_f, -1, dtype=np.int64)
    n_open = 0
    for f in range(n_f):
        if insurgent[f] or opened[f] >= max_new or budget[f] - reserve[f] < cost:
            continue
        top = 0.0
        for s in range(n_s):
            if hosts[f, s] and share[f, site_flat[s]] >= min_share:
                x = site_value[s] * share[f, site_flat[s]]
                if best[f] < 0 or x > top:
                    best[f], top = s, x
        n_open += best[f] >= 0
    return n_open, best


def _hq_settings(world: World) -> tuple[np.ndarray, np.ndarray]:
    """(F,) bool whether each faction is the insurgents, (F,) float its reserve (USD). Kept per scenario."""
    cached = world.derived.get("hq_settings")
    if cached is None or cached[0] is not world.config:
        specs = [world.config.factions[name] for name in world.faction_names]
        value = (
            np.array([spec.kind == "insurgent" for spec in specs], dtype=np.bool_),
            np.array([spec.spending.reserve_usd for spec in specs], dtype=np.float64),
        )
        cached = world.derived["hq_settings"] = (world.config, value)
    return cached[1]


def _hq_hosts(world: World) -> np.ndarray:
    """(F, S) bool: the sites where each faction may open a new headquarters, whatever its share there.

    A site whose kind is one of `HQ_SITE_KINDS`, not already one of its headquarters sites nor on
    the cell of one, and in its theatre (or of none: `spillover.may_open_headquarters`). Kept
    with the bases (`World.base_state`, recomputed when a headquarters opens) for the scenario
    and map it was made for.
    """
    bases = world.base_state()  # a new dict, without what is kept here, when the headquarters change
    kinds = world.geo.site_kinds
    cached = bases.get("hq_hosts")
    if cached is None or cached[0] is not kinds or cached[1] is not world.config:
        n_f, n_s = world.n_factions, len(kinds)
        hosts = np.zeros((n_f, n_s), dtype=np.bool_)
        for f in range(n_f):
            own_cells = bases["hq"][f]
            for s, kind in enumerate(kinds):
                hosts[f, s] = (
                    kind in HQ_SITE_KINDS
                    and s not in world.hq_sites[f]
                    and int(world.site_flat[s]) not in own_cells
                    and may_open_headquarters(world, f, s)
                )
        cached = bases["hq_hosts"] = (kinds, world.config, hosts)
    return cached[2]


def step(world: World, rules: Rules, rng: np.random.Generator, initial: bool = False) -> None:
    """One day of deployment: post fighters, then (after day 0) open new headquarters.

    On day 0 (`initial=True`) the influence is first seeded from the scenario's initial
    control (`seed_initial_influence`) and no headquarters is opened.
    """
    if initial:
        seed_initial_influence(world, rules)
    post(world, rules, rng, initial=initial)
    if not initial:
        open_headquarters(world, rules)
