"""Tension, looting and clashes between hostile militias (ODD §7.7, §7.8).

For each hostile pair of militias (a, b), in pair order, every day:

1. tension decays: T <- T (1 - `rules.tension.decay_per_day`) (all pairs first);
2. contested ground: where both have a foothold (share >= `rules.influence.foothold_share`),
   T += `gain_contested` x the cells' summed value;
3. looting (§7.8): at each site where both have a foothold, with chance
   `rules.economy.p_looting` one side (either, equally likely) takes up to `looting_usd`
   from the other's cash (money is conserved) and T += `gain_looting`;
4. clashes: a front cell is one where each side has at least `rules.clashes.min_fighters`
   posted fit fighters within `radius_cells`; each front cell sees a clash with probability

       p = p_max (1 - exp(-T / tension_scale)) (1 - calm) (posture_floor + (1 - posture_floor) posture)

   (`clash_probability`; calm from the pair's latest agreement, posture the more aggressive
   side's `patrons.effective_posture`). A clash engages a detachment of each side, not its
   whole garrison: min(max_detachment, max(1, round(detachment_share x n))) of its n fighters
   within the radius (`detachment_size`), drawn at random; each engaged fighter becomes a
   casualty with probability min(max_casualty_share, lethality (S_other / S_own) ^
   strength_exponent) with S = engaged fighters x arms multiplier (`lanchester_casualties`,
   Lanchester-style attrition); casualties split into killed and wounded
   (`casualties.inflict`). The side with more strength left wins `winner_influence` at the
   cell; T += `tension_gain_per_clash`.

Cells where hostile militias both have a foothold are counted in `World.n_rival_contested`
(what insurgents exploit). Sources: article §4 (recent clashes and their toll), §13
(the Buqrus crossing clash), §5 (threats and escalation). Random streams: "looting" (step 3)
and "clashes" (step 4, and the casualties it inflicts).
"""

from __future__ import annotations

import numpy as np

from sim.compiled import exp, kernel, numpy_sum, power
from sim.processes.casualties import inflict
from sim.processes.mediation import calm
from sim.processes.patrons import arms_multiplier, effective_posture
from sim.schema import Rules
from sim.world import World

# Measurement definitions for the event log (not behaviour): how a clash cell is described.
CROSSING_REACH_CELLS = 1  # a clash within this many cells of a crossing is "at a crossing"
EDGE_REACH_CELLS = 2  # ... within this many cells of ground held by someone else is "on an edge"


def neighbourhood_sum(counts: np.ndarray, radius: int) -> np.ndarray:
    """Sum of (F, H, W) counts over the (2r+1)^2 square around each cell; returns (F, H, W) floats.

    The same numbers as `ndimage.uniform_filter(x, size=(1, 2r+1, 2r+1), mode="constant") x
    (2r+1)^2`: its two 1-D filters (rows, then columns) compiled (`_box_sum`) for a 3-D array,
    scipy's own otherwise.
    """
    if radius == 0:
        return counts.astype(float)
    size = 2 * radius + 1
    values = np.ascontiguousarray(counts, dtype=float)
    if values.ndim == 3:
        out = np.empty_like(values)  # allocated here, where tracemalloc and sim.limits see it
        _box_sum(values, radius, out)
        return out
    from scipy import ndimage  # here: only arrays that are not 3-D get here, and a run needs no ndimage

    out = np.empty_like(values)  # every entry is written by the first filter
    ndimage.uniform_filter1d(values, size, axis=1, output=out, mode="constant", cval=0.0)
    ndimage.uniform_filter1d(out, size, axis=2, output=out, mode="constant", cval=0.0)
    return out * size * size


@kernel
def _box_sum(values, radius, out):  # pragma: no cover - compiled
    # uniform_filter1d along axis 1, then along axis 2 (mode "constant", cval 0), then x size x size.
    n_f, h_max, w_max = values.shape
    size = 2 * radius + 1
    padded_t = np.zeros((w_max + size, h_max))  # rows beyond the edges stay 0.0
    total = np.empty(max(h_max, w_max))
    for f in range(n_f):
        # Along axis 1 for a whole row of columns at once: the same running sums, element by
        # element, as one padded column at a time (rows beyond the edge are 0.0).
        for w in range(w_max):
            total[w] = 0.0
        for k in range(size):
            h = k - radius
            if 0 <= h < h_max:
                for w in range(w_max):
                    total[w] += values[f, h, w]
            else:
                for w in range(w_max):
                    total[w] += 0.0
        for w in range(w_max):
            out[f, 0, w] = total[w] / size
        for h in range(1, h_max):
            enter, leave = h + radius, h - radius - 1
            for w in range(w_max):
                a = values[f, enter, w] if enter < h_max else 0.0
                b = values[f, leave, w] if leave >= 0 else 0.0
                total[w] += a - b
                out[f, h, w] = total[w] / size
        # Along axis 2, every row at once, so that the loops over rows vectorise: scipy's
        # NI_UniformFilter1D on each row, a running window sum (what enters less what leaves),
        # each output that sum / size; over a transposed, zero-padded copy (column j of the
        # rows is line radius + j, and `radius` zeros on either side).
        for w in range(w_max):
            for h in range(h_max):
                padded_t[radius + w, h] = out[f, h, w]
        for h in range(h_max):
            total[h] = 0.0
        for k in range(size):
            for h in range(h_max):
                total[h] += padded_t[k, h]
        for h in range(h_max):
            out[f, h, 0] = total[h] / size * size * size
        for i in range(1, w_max):
            for h in range(h_max):
                total[h] += padded_t[i + size - 1, h] - padded_t[i - 1, h]
                out[f, h, i] = total[h] / size * size * size


def clash_probability(
    tension: float,
    calm: float,
    posture: float,
    p_max: float,
    tension_scale: float,
    posture_floor: float,
) -> float:
    """Daily chance of a clash in one front cell.

    Rises with tension and saturates at p_max; an agreement's calm (0..1) suppresses it;
    posture (0..1, how readily the more aggressive side escalates) scales it from
    `posture_floor` to 1.
    """
    # Python's division: a tiny scale gives -inf without numpy's overflow warning
    rise = 1.0 - exp(-max(float(tension), 0.0) / tension_scale)
    return float(p_max * rise * (1.0 - calm) * (posture_floor + (1.0 - posture_floor) * posture))


def lanchester_casualties(
    n_a: int,
    n_b: int,
    strength_a: float,
    strength_b: float,
    lethality: float,
    rng: np.random.Generator,
    exponent: float,
    cap: float,
) -> tuple[int, int]:
    """Stochastic attrition for one engagement (Lanchester-style); returns casualties (killed + wounded) of A and B.

    Each fighter of side A becomes a casualty with probability
    min(cap, lethality * (S_B / S_A) ** exponent): a side's losses grow with the other
    side's strength and shrink with its own. exponent = 1 is the square law (fire
    concentrates on fewer targets); smaller values model skirmishes where the force ratio
    matters less.
    """
    if n_a == 0 or n_b == 0:
        return 0, 0
    p_a = min(cap, lethality * power(strength_b / strength_a, exponent))
    p_b = min(cap, lethality * power(strength_a / strength_b, exponent))
    return int(rng.binomial(n_a, p_a)), int(rng.binomial(n_b, p_b))


def detachment_size(n_near: int, share: float, ceiling: int) -> int:
    """Fighters one side engages in a clash: min(ceiling, n, max(1, round(share x n))); 0 if n is 0.

    Non-decreasing in n, share and ceiling; never more than n.
    """
    if n_near <= 0:
        return 0
    return int(min(ceiling, n_near, max(1, round(share * n_near))))


def footholds(world: World, rules: Rules, a: int, b: int) -> np.ndarray:
    """(H, W) bool: cells where both a and b hold at least the foothold share of influence."""
    threshold = rules.influence.foothold_share
    return (world.share[a] >= threshold) & (world.share[b] >= threshold)


def front_cells(near: np.ndarray, a: int, b: int, min_fighters: int) -> np.ndarray:
    """Flat indices of cells where both a and b have `min_fighters` near (`near` is (F, H, W))."""
    return np.flatnonzero(((near[a] >= min_fighters) & (near[b] >= min_fighters)).reshape(-1))


def loot(world: World, rules: Rules, a: int, b: int, both: np.ndarray, rng: np.random.Generator) -> None:
    """Looting at the sites where a and b both have a foothold (`both` is (H, W) bool)."""
    p = rules.economy.p_looting
    if p == 0:
        return
    contested_sites = both.reshape(-1)[world.site_flat].nonzero()[0]
    for s in contested_sites:
        if rng.random() < p:
            looter, victim = (a, b) if rng.random() < 0.5 else (b, a)  # either side, equally likely
            # Money changes hands: what the looter gains, the victim loses.
            taken = min(rules.economy.looting_usd, world.budget[victim])
            world.budget[victim] -= taken
            world.budget[looter] += taken
            world.tension[a, b] += rules.tension.gain_looting
            world.today.lootings += 1
            world.event("looting", faction=world.faction_names[looter], site=world.geo.site_names[s])


def ground_type(world: World, row: int, col: int) -> str:
    """Where a cell lies in the contest: 'crossing', 'edge' or 'core'.

    'crossing': a crossing within CROSSING_REACH_CELLS; 'edge': contested, or within
    EDGE_REACH_CELLS of ground held by someone else; 'core': deep in one side's area.
    """
    geo = world.geo
    near = (np.abs(geo.site_rows - row) <= CROSSING_REACH_CELLS) & (np.abs(geo.site_cols - col) <= CROSSING_REACH_CELLS)
    if any(geo.site_kinds[s] == "crossing" for s in np.flatnonzero(near)):
        return "crossing"
    k = EDGE_REACH_CELLS
    block = world.control[max(row - k, 0) : row + k + 1, max(col - k, 0) : col + k + 1]
    holder = world.control[row, col]
    if holder < 0 or np.any(block != holder):
        return "edge"
    return "core"


def clash(
    world: World, rules: Rules, a: int, b: int, flat: int, arms: np.ndarray, rng: np.random.Generator, at_site: bool
) -> None:
    """One clash between a and b at cell `flat`: attrition, the winner's gain, tension, the event record."""
    cl = rules.clashes
    near_a = world.fighters_near(a, flat, cl.radius_cells)
    near_b = world.fighters_near(b, flat, cl.radius_cells)
    if len(near_a) == 0 or len(near_b) == 0:  # front cells guarantee both; kept as a guard
        return
    side_a = rng.choice(
        near_a, size=detachment_size(len(near_a), cl.detachment_share, cl.max_detachment), replace=False
    )
    side_b = rng.choice(
        near_b, size=detachment_size(len(near_b), cl.detachment_share, cl.max_detachment), replace=False
    )
    s_a, s_b = len(side_a) * arms[a], len(side_b) * arms[b]
    cas_a, cas_b = lanchester_casualties(
        len(side_a), len(side_b), s_a, s_b, cl.lethality, rng, cl.strength_exponent, cl.max_casualty_share
    )
    killed_a, wounded_a = inflict(world, rules, side_a, cas_a, a, b, rng)
    killed_b, wounded_b = inflict(world, rules, side_b, cas_b, b, a, rng)
    winner = a if (s_a - cas_a * arms[a]) >= (s_b - cas_b * arms[b]) else b
    row, col = divmod(flat, world.geo.width)
    ground = ground_type(world, row, col)  # before the winner's gain changes the map
    world.influence[winner, row, col] += cl.winner_influence
    world.tension[a, b] += cl.tension_gain_per_clash
    world.today.clashes += 1
    world.today.clash_casualties += killed_a + wounded_a + killed_b + wounded_b
    world.today.clashes_at_sites += int(at_site)
    world.recent_clash_cells.append((world.day, row, col))
    world.event(
        "clash",
        row=row,
        col=col,
        site=world.nearest_site_name(flat),
        side_a=world.faction_names[a],
        side_b=world.faction_names[b],
        fighters_a=len(side_a),
        fighters_b=len(side_b),
        killed_a=killed_a,
        wounded_a=wounded_a,
        killed_b=killed_b,
        wounded_b=wounded_b,
        winner=world.faction_names[winner],
        ground=ground,
    )


def step(world: World, rules: Rules, clash_rng: np.random.Generator, looting_rng: np.random.Generator) -> None:
    """One day of tension, looting and clashes for every hostile pair of militias."""
    cl = rules.clashes
    world.tension *= 1.0 - rules.tension.decay_per_day
    pairs = world.militia_pairs
    # Fighters near each cell, for the factions in a hostile pair only (each faction's sum is its own).
    involved = sorted({f for pair in pairs for f in pair})
    near = neighbourhood_sum(world.fighter_counts[involved], cl.radius_cells)
    row_of = {f: i for i, f in enumerate(involved)}
    arms = site_cells = None  # needed by clashes only: found at the first (nothing they read changes before it)
    rival_ground = np.zeros(world.control.shape, dtype=bool)
    for a, b in pairs:
        # `footholds` and `front_cells` of the pair, and the value of the ground both hold
        both = np.empty(world.control.shape, dtype=bool)
        value, front = _pair_ground(
            world.share, near, a, b, row_of[a], row_of[b], rules.influence.foothold_share, cl.min_fighters,
            world.cell_value, both,
        )  # fmt: skip
        rival_ground |= both
        world.tension[a, b] += rules.tension.gain_contested * value
        loot(world, rules, a, b, both, looting_rng)
        if len(front) == 0:
            continue
        posture = max(effective_posture(world, rules, a), effective_posture(world, rules, b))
        p = clash_probability(
            world.tension[a, b], calm(world, rules, a, b), posture, cl.p_max, cl.tension_scale, cl.posture_floor
        )
        hits = front[clash_rng.random(len(front)) < p]
        if len(hits) and arms is None:
            arms, site_cells = arms_multiplier(world), set(world.site_flat.tolist())
        for flat in hits:
            clash(world, rules, a, b, int(flat), arms, clash_rng, at_site=int(flat) in site_cells)
    # Ground disputed by hostile militias (not merely shared by allies): what insurgents exploit.
    world.n_rival_contested = int(np.count_nonzero(rival_ground))


@kernel
def _pair_ground(share, near, a, b, near_a, near_b, foothold_share, min_fighters, cell_value, both):  # pragma: no cover
    # Cells where both have a foothold (into `both`) and the sum of their values as numpy sums
    # (cell_value x both).sum(); flat indices, ascending, of the cells where both have
    # min_fighters near (the front): `near` rows near_a and near_b are a's and b's.
    n_f, h_max, w_max = share.shape
    valued = np.empty(h_max * w_max)
    front = np.empty(h_max * w_max, dtype=np.int64)
    n_front = 0
    for h in range(h_max):
        for w in range(w_max):
            held = share[a, h, w] >= foothold_share and share[b, h, w] >= foothold_share
            both[h, w] = held
            valued[h * w_max + w] = cell_value[h, w] * (1.0 if held else 0.0)
            if near[near_a, h, w] >= min_fighters and near[near_b, h, w] >= min_fighters:
                front[n_front] = h * w_max + w
                n_front += 1
    return numpy_sum(valued), front[:n_front].copy()
