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
§13 (Buqrus as a flashpoint). Random stream: "deployment" (who moves, sites per faction in
faction order, then the scatter).
"""

from __future__ import annotations

import numpy as np

from sim.processes.influence import control_map, spread_influence
from sim.processes.mediation import calm
from sim.processes.spillover import may_open_headquarters
from sim.schema import Rules
from sim.world import CONTESTED, World

HQ_SITE_KINDS = ("town", "crossing", "oil_field", "post")  # where a new headquarters may open


def travel_days(distance_cells: np.ndarray, speed_cells_per_day: float) -> np.ndarray:
    """Whole days to travel path distances (cells) at a speed (cells/day): ceil(d / speed), 0 for d = 0."""
    return np.ceil(np.asarray(distance_cells, dtype=float) / speed_cells_per_day - 1e-9).astype(np.int64)


def distance_weight(distance_cells: np.ndarray, reach_cells: float) -> np.ndarray:
    """Posting weight factor exp(-d / reach) of sites at path distance d from a faction's nearest base (0 if none)."""
    return np.exp(-np.asarray(distance_cells, dtype=float) / reach_cells)


def posting_weights(world: World, rules: Rules) -> np.ndarray:
    """(F, S) posting weight of each site for each faction (see the module docstring).

    Computed for all factions at once; each weight is the same product, factor by factor
    and in the same order, as the per-faction rule in the module docstring.
    """
    dep = rules.deployment
    base_distance = world.base_distance()  # (F, S), inf for a faction with no base
    reach = distance_weight(base_distance, dep.reach_cells)
    site_share = world.site_shares()  # (F, S)
    site_control = world.site_control
    n_f = world.n_factions
    contested = site_control == CONTESTED
    held_by_enemy = (
        (site_control >= 0)[None, :]
        & world.hostile[:, np.maximum(site_control, 0)]
        & (site_control[None, :] != np.arange(n_f)[:, None])
    )
    # Posting weight does not grow with current share (that would let the stronger
    # side empty every contested site of its rival); it falls only where a hostile
    # faction holds the site outright and this one has no foothold (enemy cores).
    w = world.site_value[None, :] * world.deploy_preference
    w = w * np.where(contested, 1.0 + dep.weight_contested, 1.0)[None, :]
    w = w * np.where(held_by_enemy & (site_share < dep.enemy_core_share), dep.enemy_core_weight, 1.0)
    # Fighters are based at headquarters and posts: a faction garrisons what it is based on.
    w = w * np.where(world.is_base(), dep.weight_bases, 1.0)  # the sites, not their cells
    # Sites an agreement gave to the other side are left while the calm lasts.
    for a, b in world.hostile_pairs:
        partition = world.partition[(a, b)]
        if partition is not None:
            keep = 1.0 - calm(world, rules, a, b)
            w[a] = w[a] * np.where(partition == b, keep, 1.0)
            w[b] = w[b] * np.where(partition == a, keep, 1.0)
    has_base = np.isfinite(base_distance).any(axis=1)
    w[has_base] = w[has_base] * reach[has_base]
    # Nowhere it wants to be (every factor 0, or underflow): spread evenly rather than fail,
    # over the sites its preference allows (a theatre militia stays in its theatre: §7.13).
    nowhere = w.sum(axis=1) <= 0
    if nowhere.any():
        allowed = world.deploy_preference[nowhere] > 0
        w[nowhere] = np.where(allowed.any(axis=1, keepdims=True), allowed, True)
    return w


def _choose(weights: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Indices drawn with probability proportional to `weights` (S,), one per uniform draw in [0, 1).

    Exactly what `Generator.choice(len(weights), size=len(uniforms), p=weights / weights.sum())`
    returns for the same uniforms: it normalises p, takes the cumulative sum, divides it by
    its last entry and searches it (tests/test_processes.py checks they agree draw for draw).
    """
    cdf = (weights / weights.sum()).cumsum()
    cdf /= cdf[-1]
    return cdf.searchsorted(uniforms, side="right")


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
    """Post unposted fighters and today's movers (draws: who moves, sites, scatter); set their arrival day."""
    r = world.recruits
    geo = world.geo
    # Fit members who are unposted or redeploy today (the redeployment draw is made for everyone).
    redeploy = rng.random(len(r)) < rules.deployment.p_redeploy
    fit = r.fighting_rows()  # judged on the fit members' rows only: the same rows, ascending
    rows = fit[(r.post[fit] < 0) | redeploy[fit]]
    if not len(rows):
        return
    weights = posting_weights(world, rules)
    factions = r.faction[rows]
    # Sites per faction, in faction order, each faction's movers in row order: the draws of
    # `rng.choice(S, size=n_f, p=w_f / w_f.sum())` for each faction in turn (`_choose`), one
    # uniform draw per mover (one call of `rng.random` for all of them gives the same numbers).
    counts = np.bincount(factions, minlength=world.n_factions)
    order = np.argsort(factions, kind="stable")
    uniforms = rng.random(len(rows))
    sites = np.empty(len(rows), dtype=np.int64)
    start = 0
    for f in counts.nonzero()[0]:
        end = start + counts[f]
        sites[order[start:end]] = _choose(weights[f], uniforms[start:end])
        start = end
    # Spread posts over the site's cell and its neighbours, on passable ground.
    k = rules.deployment.post_scatter_cells
    dr = rng.integers(-k, k + 1, size=len(rows))
    dc = rng.integers(-k, k + 1, size=len(rows))
    # Clipped to the grid (integers: the same as np.clip, without its per-call checks).
    site_row, site_col = geo.site_rows[sites], geo.site_cols[sites]
    pr = np.minimum(np.maximum(site_row + dr, 0), geo.height - 1)
    pc = np.minimum(np.maximum(site_col + dc, 0), geo.width - 1)
    ok = geo.passable[pr, pc]
    pr = np.where(ok, pr, site_row)
    pc = np.where(ok, pc, site_col)
    old_post = r.post[rows]
    origin = np.where(old_post >= 0, old_post, r.home[rows])
    r.post[rows] = pr * geo.width + pc
    if initial:
        r.arrive_step[rows] = world.day
    else:
        # Site-to-origin path length, plus the scatter step from the site to the post.
        d = world.site_distance[sites, origin] + np.maximum(np.abs(pr - site_row), np.abs(pc - site_col))
        r.arrive_step[rows] = world.day + travel_days(d, rules.deployment.speed_cells_per_day)
    r.changed()


def open_headquarters(world: World, rules: Rules) -> None:
    """Let each militia with spare cash open at most one new headquarters today."""
    dep = rules.deployment
    site_share = world.site_shares()
    for f, name in enumerate(world.faction_names):
        spec = world.config.factions[name]
        if spec.kind == "insurgent" or world.new_headquarters[f] >= dep.max_new_headquarters:
            continue
        if world.budget[f] - spec.spending.reserve_usd < dep.new_hq_cost_usd:
            continue
        own_cells = world.headquarters(f)
        candidates = [
            s
            for s, kind in enumerate(world.geo.site_kinds)
            if kind in HQ_SITE_KINDS
            and s not in world.hq_sites[f]
            and int(world.geo.site_flat[s]) not in own_cells  # one per cell
            and site_share[f, s] >= dep.min_share_for_new_hq
            and may_open_headquarters(world, f, s)  # theatres: its own theatre's sites (or of none)
        ]
        if not candidates:
            continue
        best = max(candidates, key=lambda s: (world.site_value[s] * site_share[f, s], -s))
        world.budget[f] -= dep.new_hq_cost_usd
        world.hq_sites[f].append(best)
        world.new_headquarters[f] += 1
        world.today.new_headquarters += 1
        world.event("new_headquarters", faction=name, site=world.geo.site_names[best])


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
