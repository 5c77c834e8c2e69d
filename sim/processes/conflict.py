"""Tension, looting and clashes between hostile militias (ODD §7.7, §7.8).

For each hostile pair of militias (a, b), in pair order, every day:

1. tension decays: T <- T (1 - `rules.tension.decay_per_day`) (all pairs first);
2. contested ground: where both have a foothold (share >= `rules.influence.foothold_share`),
   T += `gain_contested` x the cells' summed value;
3. looting (§7.8): at each site where both have a foothold, with chance
   `rules.economy.p_looting` one side (either, equally likely) takes up to `looting_usd`
   from the other's cash (money is conserved) and T += `gain_looting`;
4. clashes: a front cell is one where each side has at least `rules.clashes.min_fighters`
   posted fit fighters within `radius_cells`; each passable front cell sees a clash with
   probability (no fighter stands on impassable ground or outside the modelled area, so no
   clash is fought there, though the square around such a cell may hold both sides)

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

import math

import numpy as np

from sim.compiled import exp, flagged_rows, generator_addresses, generator_at, kernel, numpy_sum, power
from sim.processes.casualties import inflict, sample_rows
from sim.processes.mediation import compiled_calm
from sim.processes.patrons import arms_multiplier
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
    # Each inner loop runs over contiguous memory with no branch, so that it vectorises (the
    # same operations on each element as one at a time): the cases of a window reaching past an
    # edge are separate loops, and the second filter writes a transposed copy (`along`).
    n_f, h_max, w_max = values.shape
    size = 2 * radius + 1
    padded_t = np.zeros((w_max + size, h_max))  # rows beyond the edges stay 0.0
    along = np.empty((w_max, h_max))
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
            enter, leave = h + radius, h - radius - 1  # the row entering the window, the row leaving it
            if enter < h_max and leave >= 0:
                for w in range(w_max):
                    total[w] += values[f, enter, w] - values[f, leave, w]
            elif enter < h_max:
                for w in range(w_max):
                    total[w] += values[f, enter, w] - 0.0
            elif leave >= 0:
                for w in range(w_max):
                    total[w] += 0.0 - values[f, leave, w]
            else:
                for w in range(w_max):
                    total[w] += 0.0 - 0.0
            for w in range(w_max):
                out[f, h, w] = total[w] / size
        # Along axis 2, every row at once: scipy's NI_UniformFilter1D on each row, a running
        # window sum (what enters less what leaves), each output that sum / size; over a
        # transposed, zero-padded copy (column j of the rows is line radius + j, and `radius`
        # zeros on either side).
        for w in range(w_max):
            for h in range(h_max):
                padded_t[radius + w, h] = out[f, h, w]
        for h in range(h_max):
            total[h] = 0.0
        for k in range(size):
            for h in range(h_max):
                total[h] += padded_t[k, h]
        for h in range(h_max):
            along[0, h] = total[h] / size * size * size
        for i in range(1, w_max):
            for h in range(h_max):
                total[h] += padded_t[i + size - 1, h] - padded_t[i - 1, h]
                along[i, h] = total[h] / size * size * size
        for h in range(h_max):
            for w in range(w_max):
                out[f, h, w] = along[w, h]


def enough_near(counts: np.ndarray, radius: int, min_fighters: int) -> np.ndarray:
    """(F, H, W) bool: whether `neighbourhood_sum(counts, radius)` reaches `min_fighters` at each cell.

    `counts` (F, H, W) whole numbers of fighters (int64, below 2^53), `min_fighters` a whole
    number: the same booleans as the comparison of `neighbourhood_sum`'s floats, bit for bit,
    from exact sums of whole numbers (`_enough_near`), which is what a front needs.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    out = np.empty(counts.shape, dtype=np.bool_)
    for f in range(len(counts)):
        _enough_near(counts[f], int(radius), int(min_fighters), out[f])
    return out


@kernel
def _enough_near(counts, radius, min_fighters, out):  # pragma: no cover - compiled
    # out (H, W) = neighbourhood_sum(counts, radius) >= min_fighters for one (H, W) layer of whole
    # numbers. The box's sum S of whole numbers is exact in any order, here as int64, each
    # 1-D sum added directly so that the loops over a row vectorise. `_box_sum`'s float (scipy's
    # running means times size^2) is S up to rounding, far less than 1/2 away: it decides a
    # comparison with a whole number as S does, except where S is that number; there it is
    # made as `_box_sum` makes it (`_box_sum_at`). The first filter's running sums of whole
    # numbers are exact, so its means are each column sum / size, as here.
    h_max, w_max = counts.shape
    size = 2 * radius + 1
    columns = np.zeros((h_max, w_max + 2 * radius), dtype=np.int64)  # first filter's sums, zero-padded
    for h in range(h_max):
        row = columns[h, radius : radius + w_max]
        for t in range(max(h - radius, 0), min(h + radius + 1, h_max)):
            source = counts[t]
            for w in range(w_max):
                row[w] += source[w]
    total = np.empty(w_max, dtype=np.int64)
    for h in range(h_max):
        padded = columns[h]
        for w in range(w_max):
            total[w] = 0
        for k in range(size):
            window = padded[k : k + w_max]
            for w in range(w_max):
                total[w] += window[w]
        cells = out[h]
        borderline = False
        for w in range(w_max):
            cells[w] = total[w] >= min_fighters
            borderline |= total[w] == min_fighters
        if borderline:
            for w in range(w_max):
                if total[w] == min_fighters:
                    cells[w] = _box_sum_at(padded, radius, w) >= min_fighters


@kernel
def _box_sum_at(padded, radius, w):  # pragma: no cover - compiled
    # `_box_sum`'s value at column w of one row, given the row's first-filter sums (whole numbers,
    # `radius` zeros either side): its second filter's running sum over means (sum / size) up to
    # w, the same operations in the same order, then / size x size x size.
    size = 2 * radius + 1
    total = 0.0
    for k in range(size):
        total += padded[k] / size
    for i in range(1, w + 1):
        total += padded[i + size - 1] / size - padded[i - 1] / size
    return total / size * size * size


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


def clash_ground(world: World) -> np.ndarray:
    """(H W,) bool, flat: the cells where a clash can be fought, the passable ones (read-only view)."""
    return world.geo.passable.reshape(-1)


def front_cells(near: np.ndarray, a: int, b: int, min_fighters: int) -> np.ndarray:
    """Flat indices of cells where both a and b have `min_fighters` near (`near` is (F, H, W)).

    Each takes a clash draw; only the passable ones can see a clash (`step`).
    """
    return np.flatnonzero(((near[a] >= min_fighters) & (near[b] >= min_fighters)).reshape(-1))


def loot(world: World, rules: Rules, a: int, b: int, both: np.ndarray, rng: np.random.Generator) -> None:
    """Looting at the sites where a and b both have a foothold (`both` is (H, W) bool)."""
    if rules.economy.p_looting == 0:
        return
    _loot_sites(world, rules, a, b, both.reshape(-1)[world.site_flat].nonzero()[0], rng)


def _loot_sites(
    world: World,
    rules: Rules,
    a: int,
    b: int,
    contested_sites: np.ndarray,
    rng: np.random.Generator,
    first: np.ndarray | None = None,
) -> int:
    # At each contested site in turn: one uniform (does looting happen?), and after a looting a
    # second (which side loots). The uniforms come in blocks, `rng.random(n)` giving the same
    # numbers as n calls of `rng.random()`, and a block never holds more than are certainly
    # needed (one per site still to come, plus the side's after a looting), so the stream ends
    # where one call per uniform leaves it: one call a day where there is no looting. `first`:
    # the first block, already drawn (`_quiet_pairs`). Returns how many lootings there were.
    p = rules.economy.p_looting
    n_looted = 0
    draws, used = (rng.random(len(contested_sites)) if first is None else first).tolist(), 0
    if not draws or min(draws) >= p:  # the usual day: no looting, one uniform per site drawn
        return 0
    sites = contested_sites.tolist()
    for i, s in enumerate(sites):
        if used == len(draws):  # a looting's side took one of the block's uniforms
            draws, used = rng.random(len(sites) - i).tolist(), 0
        used += 1
        if draws[used - 1] < p:
            if used == len(draws):  # the side's uniform, then one per site after this one
                draws, used = rng.random(len(sites) - i).tolist(), 0
            used += 1
            looter, victim = (a, b) if draws[used - 1] < 0.5 else (b, a)  # either side, equally likely
            # Money changes hands: what the looter gains, the victim loses.
            taken = min(rules.economy.looting_usd, world.budget[victim])
            world.budget[victim] -= taken
            world.budget[looter] += taken
            world.tension[a, b] += rules.tension.gain_looting
            world.today.lootings += 1
            n_looted += 1
            world.event("looting", faction=world.faction_names[looter], site=world.geo.site_names[s])
    return n_looted


GROUND_TYPES = ("crossing", "edge", "core")  # `_ground_type`'s codes 0, 1, 2


def ground_type(world: World, row: int, col: int) -> str:
    """Where a cell lies in the contest: 'crossing', 'edge' or 'core'.

    'crossing': a crossing within CROSSING_REACH_CELLS; 'edge': contested, or within
    EDGE_REACH_CELLS of ground held by someone else; 'core': deep in one side's area.
    """
    geo = world.geo
    code = _ground_type(
        geo.site_rows, geo.site_cols, _crossings(world), world.control, row, col, CROSSING_REACH_CELLS, EDGE_REACH_CELLS
    )
    return GROUND_TYPES[code]


def _crossings(world: World) -> np.ndarray:
    """(S,) bool: which sites are crossings, kept in `world.derived` while the sites' kinds stay the same."""
    kinds = tuple(world.geo.site_kinds)
    cached = world.derived.get("crossings")
    if cached is None or cached[0] != kinds:
        cached = world.derived["crossings"] = (kinds, np.array([k == "crossing" for k in kinds], dtype=bool))
    return cached[1]


@kernel
def _ground_type(site_rows, site_cols, crossing, control, row, col, crossing_reach, edge_reach):  # pragma: no cover
    # `ground_type`'s code: 0 a crossing site within crossing_reach (Chebyshev) of (row, col);
    # else 1 if the cell is nobody's (holder < 0) or a cell of the block within edge_reach
    # (clipped to the grid) has another holder; else 2.
    for s in range(len(site_rows)):
        if crossing[s] and abs(site_rows[s] - row) <= crossing_reach and abs(site_cols[s] - col) <= crossing_reach:
            return 0
    holder = control[row, col]
    if holder < 0:
        return 1
    h_max, w_max = control.shape
    for r in range(max(row - edge_reach, 0), min(row + edge_reach + 1, h_max)):
        for c in range(max(col - edge_reach, 0), min(col + edge_reach + 1, w_max)):
            if control[r, c] != holder:
                return 1
    return 2


def clash(
    world: World, rules: Rules, a: int, b: int, flat: int, arms: np.ndarray, rng: np.random.Generator, at_site: bool
) -> None:
    """One clash between a and b at cell `flat`: attrition, the winner's gain, tension, the event record."""
    cl = rules.clashes
    r = world.recruits
    geo = world.geo
    row, col = divmod(flat, geo.width)
    # `World.fighters_near` of a and of b, in one pass over the posted fighters, and `ground_type`
    # (the clash changes influence, not control: the same now as after the attrition)
    near_a, near_b, ground = _clash_cell(
        r.on_post_rows(world.day), r.faction, r.post, a, b, row, col, cl.radius_cells, geo.width,
        geo.site_rows, geo.site_cols, _crossings(world), world.control, CROSSING_REACH_CELLS, EDGE_REACH_CELLS,
    )  # fmt: skip
    if len(near_a) == 0 or len(near_b) == 0:  # front cells guarantee both; kept as a guard
        return
    # `rng.choice(near, size, replace=False)`'s draws and rows, in one compiled call (`sample_rows`)
    side_a = sample_rows(rng, near_a, detachment_size(len(near_a), cl.detachment_share, cl.max_detachment))
    side_b = sample_rows(rng, near_b, detachment_size(len(near_b), cl.detachment_share, cl.max_detachment))
    s_a, s_b = len(side_a) * arms[a], len(side_b) * arms[b]
    cas_a, cas_b = lanchester_casualties(
        len(side_a), len(side_b), s_a, s_b, cl.lethality, rng, cl.strength_exponent, cl.max_casualty_share
    )
    killed_a, wounded_a = inflict(world, rules, side_a, cas_a, a, b, rng)
    killed_b, wounded_b = inflict(world, rules, side_b, cas_b, b, a, rng)
    winner = a if (s_a - cas_a * arms[a]) >= (s_b - cas_b * arms[b]) else b
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
        ground=GROUND_TYPES[ground],
    )


@kernel
def _clash_cell(
    posted, faction, post, a, b, row, col, radius, width, site_rows, site_cols, crossing, control, crossing_reach,
    edge_reach,
):  # pragma: no cover - compiled  # fmt: skip
    # `_fighters_near_pair` and `_ground_type` of a clash's cell in one call (each kernel called
    # from Python is loaded from the disk cache once per process, a few milliseconds each).
    near_a, near_b = _fighters_near_pair(posted, faction, post, a, b, row, col, radius, width)
    ground = _ground_type(site_rows, site_cols, crossing, control, row, col, crossing_reach, edge_reach)
    return near_a, near_b, ground


@kernel
def _fighters_near_pair(posted, faction, post, a, b, row, col, radius, width):  # pragma: no cover - compiled
    # `World.fighters_near(a, ...)` and `World.fighters_near(b, ...)`: the posted rows (ascending) of
    # each whose post is within `radius` cells (Chebyshev) of (row, col). Posts of posted fighters
    # are >= 0, so a post in rows row - radius .. row + radius lies in [low, high) below: only
    # those need the (slow) division.
    rows_a = np.empty(len(posted), dtype=np.int64)
    rows_b = np.empty(len(posted), dtype=np.int64)
    n_a = n_b = 0
    low, high = (row - radius) * width, (row + radius + 1) * width
    for i in posted:
        f = faction[i]
        if (f == a or f == b) and low <= post[i] < high:
            r, c = post[i] // width, post[i] % width
            if abs(r - row) <= radius and abs(c - col) <= radius:
                if f == a:
                    rows_a[n_a] = i
                    n_a += 1
                if f == b:
                    rows_b[n_b] = i
                    n_b += 1
    return rows_a[:n_a].copy(), rows_b[:n_b].copy()


def _pair_plan(world: World) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray]:
    """The hostile pairs of militias and what `_contest` needs to know of them, kept in `world.derived`.

    Recomputed when the hostile pairs, the militias, the factions' patrons or the (frozen)
    scenario change. Returns (pairs, involved, table, green): involved the factions in a pair,
    ascending; table one row (a, b, row of a, row of b) per pair, the rows into the (involved,
    H, W) counts of fighters near; green (F,) bool, whose patron gives a green light.
    """
    key = (tuple(world.hostile_pairs), world.is_militia.tobytes(), tuple(world.patron_of))
    cached = world.derived.get("militia_pairs")
    if cached is None or cached[0] != key or cached[1] is not world.config:
        pairs = world.militia_pairs
        involved = sorted({f for pair in pairs for f in pair})
        row_of = {f: i for i, f in enumerate(involved)}
        table = np.array([(a, b, row_of[a], row_of[b]) for a, b in pairs], dtype=np.int64).reshape(-1, 4)
        patrons = world.config.patrons
        green = np.array([name is not None and patrons[name].green_light for name in world.patron_of], dtype=bool)
        plan = (pairs, np.array(involved, dtype=np.int64), table, green)
        cached = world.derived["militia_pairs"] = (key, world.config, plan)
    return cached[2]


def _before_draws(world: World, rules: Rules, tension: np.ndarray) -> tuple[list, int, np.ndarray, np.ndarray]:
    """The day's work before conflict's draws (`_contest`), on `tension` (F, F), changed in place.

    Returns (pairs, n_rival, found, per_pair): the hostile pairs of militias in order; the
    number of cells some pair both holds; with n = pairs + 1, pair k's contested sites
    found[found[k]:found[k + 1]] and front cells found[found[n + k]:found[n + k + 1]]; and
    (3, pairs) floats, each pair's clash chance, calm and larger posture.
    """
    cl = rules.clashes
    pairs, involved, table, green = _pair_plan(world)
    n_rival, found, per_pair = _contest(
        tension, 1.0 - rules.tension.decay_per_day, rules.tension.gain_contested, world.fighter_counts,
        involved, cl.radius_cells, world.share, table, rules.influence.foothold_share, cl.min_fighters,
        world.cell_value, world.site_flat, world.day, world.last_agreement, 0.5,
        rules.mediation.calm_half_life_days, world.posture, green, cl.green_light_multiplier, cl.p_max,
        cl.tension_scale, cl.posture_floor,
    )  # fmt: skip
    return pairs, n_rival, found, per_pair


def step(world: World, rules: Rules, clash_rng: np.random.Generator, looting_rng: np.random.Generator) -> None:
    """One day of tension, looting and clashes for every hostile pair of militias."""
    cl = rules.clashes
    # Tension's decay and contested ground's gain, the contested sites and front cells of every
    # pair, its calm and posture and its chance of a clash in a front cell, and the cells
    # disputed by hostile militias: nothing there draws, and no looting or clash changes what
    # they read (shares, fighters counted this morning, cell values, agreements).
    pairs, n_rival, found, per_pair = _before_draws(world, rules, world.tension)
    # Ground disputed by hostile militias (not merely shared by allies): what insurgents exploit.
    world.n_rival_contested = n_rival
    n = len(pairs) + 1
    looting = rules.economy.p_looting != 0
    # The pairs' draws in one compiled call up to the first pair where something happens (most
    # days: none); that pair's drawn blocks are handed on, and it and the rest go on here.
    k0, first_loot, first_clash = _quiet_pairs(
        generator_addresses(looting_rng), generator_addresses(clash_rng), found, n, per_pair[0], looting,
        rules.economy.p_looting, clash_ground(world),
    )  # fmt: skip
    if k0 == len(pairs):
        return
    ends = found[: 2 * n].tolist()  # pair k's sites are found[ends[k]:ends[k + 1]], its front found[ends[n + k]:...]
    chance = per_pair[0].tolist()
    arms = site_cells = None  # needed by clashes only: found at the first (nothing they read changes before it)
    for k in range(k0, len(pairs)):
        a, b = pairs[k]
        p = chance[k]
        drawn = k == k0  # this pair's blocks were drawn by `_quiet_pairs`
        if looting and ends[k] < ends[k + 1]:
            sites = found[ends[k] : ends[k + 1]]
            if _loot_sites(world, rules, a, b, sites, looting_rng, first_loot if drawn else None):
                # looting raised the tension: the chance again, with it
                p = clash_probability(
                    world.tension[a, b], per_pair[1, k], per_pair[2, k], cl.p_max, cl.tension_scale, cl.posture_floor
                )
        first, last = ends[n + k], ends[n + k + 1]
        if first == last:
            continue
        # As Python floats: for a few dozen cells, Python's min and comparisons cost less than numpy's.
        draws = (first_clash if drawn else clash_rng.random(last - first)).tolist()
        if not min(draws) < p:  # the usual day: no clash
            continue
        # Every front cell takes its draw, an impassable one too (its clash chance is 0): the
        # draws of the others then stay as they were before impassable cells were left out, so
        # that change moved no clash on passable ground (common random numbers).
        ground = clash_ground(world)
        hits = [flat for flat, draw in zip(found[first:last].tolist(), draws) if draw < p and ground[flat]]
        if arms is None:
            arms, site_cells = arms_multiplier(world), set(world.site_flat.tolist())
        for flat in hits:
            clash(world, rules, a, b, flat, arms, clash_rng, at_site=flat in site_cells)


@kernel
def _quiet_pairs(looting_addresses, clash_addresses, found, n, chance, looting, p_looting, ground):  # pragma: no cover
    # `step`'s draws pair by pair while nothing happens, from the "looting" and "clashes" streams
    # (`generator_at`), as its loop draws them: for pair k (sites found[found[k]:found[k + 1]],
    # front cells found[found[n + k]:found[n + k + 1]]), one uniform per contested site if
    # looting is on (`_loot_sites`' first block), then one per front cell. A pair is quiet when
    # no site's uniform is below p_looting and no passable cell's (`ground`, flat) below its
    # clash chance. Returns (the first pair that is not quiet, its site and cell uniforms), or
    # (pairs, empty, empty).
    looting_rng, clash_rng = generator_at(looting_addresses), generator_at(clash_addresses)
    for k in range(n - 1):
        loot = np.empty(found[k + 1] - found[k] if looting else 0)
        quiet = True
        for j in range(len(loot)):
            loot[j] = looting_rng.random()
            quiet &= not loot[j] < p_looting
        cells = np.empty(found[n + k + 1] - found[n + k])
        for j in range(len(cells)):
            cells[j] = clash_rng.random()
            quiet &= not (cells[j] < chance[k] and ground[found[found[n + k] + j]])
        if not quiet:
            return k, loot, cells
    return n - 1, np.empty(0), np.empty(0)


@kernel
def _contest(
    tension, keep, gain_contested, fighter_counts, involved, radius, share, table, foothold_share, min_fighters,
    cell_value, site_flat, day, last_agreement, half, half_life, posture, green, green_multiplier, p_max,
    tension_scale, posture_floor,
):  # pragma: no cover - compiled  # fmt: skip
    # step()'s work before the day's draws, for every pair (a row of `table`) in order:
    # tension *= keep (every entry); fighters near each cell (`neighbourhood_sum` of the involved
    # factions' counts); for each pair `_pair_ground`, then tension[a, b] += gain_contested x
    # the contested value; the sites (ascending) where both have a foothold, as `loot` finds
    # them; `mediation.calm`, the larger `patrons.effective_posture` of the two (green: whose
    # patron gives a green light) and `clash_probability` with the tension so far. Returns the
    # number of cells some pair both holds; `found`: with n = pairs + 1, pair k's sites are
    # found[found[k]:found[k + 1]] and its front cells found[found[n + k]:found[n + k + 1]];
    # and (3, pairs) floats: each pair's chance, calm and posture. `half` is 0.5, passed in so
    # that 0.5 ** x stays the C library's pow (a constant base could be rewritten into another
    # function by the compiler).
    n_inv = len(involved)
    _, h_max, w_max = fighter_counts.shape
    enough = np.empty((n_inv, h_max, w_max), dtype=np.bool_)  # `enough_near` of the involved factions
    for i in range(n_inv):
        _enough_near(fighter_counts[involved[i]], radius, min_fighters, enough[i])
    for i in range(tension.shape[0]):
        for j in range(tension.shape[1]):
            tension[i, j] *= keep
    n_pairs, n_sites = len(table), len(site_flat)
    both = np.empty(h_max * w_max, dtype=np.bool_)
    rival = np.zeros(h_max * w_max, dtype=np.bool_)
    sites = np.empty(n_pairs * n_sites, dtype=np.int64)
    fronts = np.empty(n_pairs * h_max * w_max, dtype=np.int64)
    ends = np.zeros((2, n_pairs + 1), dtype=np.int64)  # where each pair's sites and front cells end
    per_pair = np.empty((3, n_pairs))  # chance, calm, posture
    chance, calm_of, larger_posture = per_pair[0], per_pair[1], per_pair[2]
    n_site = n_front = 0
    for k in range(n_pairs):
        a, b = table[k, 0], table[k, 1]
        value, front = _pair_ground(
            share, enough, a, b, table[k, 2], table[k, 3], foothold_share, cell_value, both.reshape((h_max, w_max)),
        )  # fmt: skip
        tension[a, b] += gain_contested * value
        for i in range(h_max * w_max):
            rival[i] |= both[i]
        for s in range(n_sites):
            if both[site_flat[s]]:
                sites[n_site] = s
                n_site += 1
        ends[0, k + 1] = n_site
        for i in range(len(front)):
            fronts[n_front + i] = front[i]
        n_front += len(front)
        ends[1, k + 1] = n_front
        calm_of[k] = compiled_calm(day - last_agreement[a, b], half, half_life)
        pa, pb = posture[a], posture[b]
        if green[a]:
            pa = pa * green_multiplier if pa * green_multiplier < 1.0 else 1.0  # Python's min(1.0, x)
        if green[b]:
            pb = pb * green_multiplier if pb * green_multiplier < 1.0 else 1.0
        larger_posture[k] = pb if pb > pa else pa  # Python's max(pa, pb)
        t = tension[a, b]
        t = 0.0 if 0.0 > t else t  # Python's max(t, 0.0)
        rise = 1.0 - math.exp(-t / tension_scale)
        chance[k] = p_max * rise * (1.0 - calm_of[k]) * (posture_floor + (1.0 - posture_floor) * larger_posture[k])
    n_rival = 0
    for i in range(h_max * w_max):
        n_rival += rival[i]
    # One array of ints out (each array handed back costs a Python object): the ends, as indices
    # into it, then the sites, then the front cells.
    n_ends = 2 * (n_pairs + 1)
    found = np.empty(n_ends + n_site + n_front, dtype=np.int64)
    for k in range(n_pairs + 1):
        found[k] = n_ends + ends[0, k]
        found[n_pairs + 1 + k] = n_ends + n_site + ends[1, k]
    found[n_ends : n_ends + n_site] = sites[:n_site]
    found[n_ends + n_site :] = fronts[:n_front]
    return n_rival, found, per_pair


@kernel
def _pair_ground(share, enough, a, b, near_a, near_b, foothold_share, cell_value, both):  # pragma: no cover
    # Cells where both have a foothold (into `both`) and the sum of their values as numpy sums
    # (cell_value x both).sum(); flat indices, ascending, of the cells where both have
    # min_fighters near (the front): `enough` (`enough_near`) rows near_a and near_b are a's and b's.
    n_f, h_max, w_max = share.shape
    valued = np.empty(h_max * w_max)
    on_front = np.empty(h_max * w_max, dtype=np.bool_)
    # Row by row over 1-D views from index 0 (numba then drops its negative-index checks) and
    # without branches on the cells, so that both loops vectorise; the front's cells, few, are
    # then collected from its mask (`flagged_rows`, eight cells a word).
    for h in range(h_max):
        share_a, share_b, value, held_row = share[a, h], share[b, h], cell_value[h], both[h]
        valued_row = valued[h * w_max : (h + 1) * w_max]
        for w in range(w_max):
            held = (share_a[w] >= foothold_share) & (share_b[w] >= foothold_share)
            held_row[w] = held
            valued_row[w] = value[w] * (1.0 if held else 0.0)
        enough_a, enough_b = enough[near_a, h], enough[near_b, h]
        front_row = on_front[h * w_max : (h + 1) * w_max]
        for w in range(w_max):
            front_row[w] = enough_a[w] & enough_b[w]
    return numpy_sum(valued), flagged_rows(on_front)
