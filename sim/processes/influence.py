"""Influence and control (ODD §7.6): who holds each cell, from where fighters stand.

Each faction's presence is its posted fit fighters per cell times its arms multiplier
(`patrons.arms_multiplier`), plus `rules.deployment.hq_influence` at each of its
headquarters. Its target influence is that presence smoothed by a Gaussian kernel of
`rules.influence.sigma_cells` (cut at `kernel_truncation` sigmas, zero on impassable cells);
influence moves toward the target with persistence p: I <- p I + (1 - p) target.

Control is contested among rivals (`control_map`): a faction's share of a cell is its
influence against its own and its enemies' (the scenario's `hostilities`; insurgents are
everyone's enemy), s_f = I_f / (I_f + sum of I_g over g hostile to f), so allies and
neutral brokers (the regime's Military Security) never dilute it. The faction with the
most influence in a cell controls it when its s_f reaches `control_threshold` (a small
broker does not take a cell two rivals dispute). A cell with enough influence but no such faction is contested; below
`min_influence` it is nobody's.

Day 0 honours the scenario (`honour_initial_control`): where a site's `initial_control`
faction lacks the share its fighters give it, its established hold (administration,
informants, the fear of its return: influence without fighters) is added at the site's
cell, just enough to hold it; like all influence it fades with `persistence` unless
fighters keep it up.

Sources: article §4, §12 (two poles of influence), §10-§11 (who holds which town).
Deterministic: no random stream.
"""

from __future__ import annotations

import numpy as np

from sim.compiled import exp, kernel
from sim.processes.patrons import arms_multiplier
from sim.schema import Rules
from sim.world import CONTESTED, NONE, World, on_post_rows_of


def _gaussian_weights(sigma_cells: float, truncate: float) -> np.ndarray:
    """(2r + 1,) weights of the 1-D Gaussian kernel `scipy.ndimage.gaussian_filter` uses, r = int(truncate sigma + 0.5).

    scipy's formula (`_gaussian_kernel1d`): exp(-0.5 / sigma^2 x x^2) for x = -r..r, over its
    sum; with the C library's exp (`sim.compiled.exp`) where scipy calls numpy's, which differs
    on CPUs with AVX-512. Symmetric, so reversing it (as `gaussian_filter1d` does) changes
    nothing. Cached per (sigma, truncate).
    """
    key = (float(sigma_cells), float(truncate))
    if key not in _KERNELS:
        sigma = float(sigma_cells)
        radius = int(truncate * sigma + 0.5)
        x = np.arange(-radius, radius + 1)
        phi = exp(-0.5 / (sigma * sigma) * x**2)
        _KERNELS[key] = phi / phi.sum()
    return _KERNELS[key]


_KERNELS: dict[tuple[float, float], np.ndarray] = {}


def _symmetric(weights: np.ndarray) -> bool:
    """Whether scipy's correlate1d takes its symmetric branch for these weights (odd length, mirror within eps)."""
    key = weights.tobytes()
    if key not in _SYMMETRIC:
        r = len(weights) // 2
        eps = np.finfo(float).eps
        mirrored = all(abs(weights[r + i] - weights[r - i]) <= eps for i in range(1, r + 1))
        _SYMMETRIC[key] = len(weights) % 2 == 1 and mirrored
    return _SYMMETRIC[key]


_SYMMETRIC: dict[bytes, bool] = {}


def spread_influence(presence: np.ndarray, sigma_cells: float, passable: np.ndarray, truncate: float) -> np.ndarray:
    """Smooth each faction's presence (F, H, W) with a Gaussian kernel; zero off the map.

    The kernel (standard deviation `sigma_cells`, cut at `truncate` standard deviations)
    conserves mass up to what spills over the grid's edge or onto impassable cells, so
    total influence never exceeds total presence. The same numbers as
    `ndimage.gaussian_filter(presence, sigma=(0, s, s), mode="constant", truncate=truncate)`
    wherever numpy's exp is the C library's (CPUs without AVX-512; on others scipy's weights
    differ from `_gaussian_weights` in the last bit): the same two 1-D correlations (rows,
    then columns), compiled (`_spread`) for float64 presence (fighter-equivalents are never
    negative), with scipy's own `correlate1d` otherwise.
    """
    presence = np.asarray(presence)
    if not sigma_cells > 1e-15:  # the filter skips such axes (copies the input): leave it to the filter
        from scipy import ndimage  # here, as below: a run with float64 presence needs no ndimage

        sigma = (0, sigma_cells, sigma_cells)
        return ndimage.gaussian_filter(presence, sigma=sigma, mode="constant", truncate=truncate) * passable
    weights = _gaussian_weights(sigma_cells, truncate)
    if presence.ndim == 3 and presence.dtype == np.float64 and _symmetric(weights):
        passable = np.asarray(passable)
        out = np.zeros(presence.shape)  # allocated here, where tracemalloc and sim.limits see it
        _spread(np.ascontiguousarray(presence), weights, np.ascontiguousarray(passable, dtype=np.bool_), out)
        return out
    from scipy import ndimage

    smoothed = np.zeros(presence.shape, dtype=presence.dtype)
    ndimage.correlate1d(presence, weights, axis=1, output=smoothed, mode="constant", cval=0.0)
    ndimage.correlate1d(smoothed, weights, axis=2, output=smoothed, mode="constant", cval=0.0)
    return np.multiply(smoothed, passable, out=smoothed)  # in place: the same products, no new array


@kernel
def _correlate_line(padded, lo, hi, r, weights, out):  # pragma: no cover - compiled
    # scipy's NI_Correlate1D, symmetric branch, for outputs lo..hi-1: w[r] x[i], then
    # (x[i-k] + x[i+k]) w[r-k] for k = r, r-1, ..., 1, each output on its own (the loop over i
    # inside lets it vectorise). The loops run over 1-D views from index 0: numba then knows no
    # index is negative, drops its wraparound checks and the loops vectorise.
    n = hi - lo
    line, here = out[lo:hi], padded[r + lo : r + hi]
    centre = weights[r]
    for i in range(n):
        line[i] = here[i] * centre
    for k in range(r, 0, -1):
        wk = weights[r - k]
        below, above = padded[r - k + lo : r - k + hi], padded[r + k + lo : r + k + hi]
        for i in range(n):
            line[i] += (below[i] + above[i]) * wk


@kernel
def _row_extents(presence, first, last):  # pragma: no cover - compiled
    # Each row's first and last nonzero column, (F, H) each: w_max and -1 for a row of zeros.
    # Running minima and maxima of selects, not a search that stops at the first nonzero: the
    # loop then vectorises (about half the time of the searches from both ends, most rows being
    # zeros).
    n_f, h_max, w_max = presence.shape
    for f in range(n_f):
        for h in range(h_max):
            row = presence[f, h]
            lo, hi = w_max, -1
            for w in range(w_max):
                nonzero = row[w] != 0.0
                lo = min(lo, w if nonzero else w_max)
                hi = max(hi, w if nonzero else -1)
            first[f, h], last[f, h] = lo, hi


@kernel
def _spread(presence, weights, passable, out):  # pragma: no cover - compiled
    # ndimage.correlate1d along axis 1, then along axis 2, mode "constant" (cval 0), times passable;
    # for presence >= 0, into `out` of zeros (`_spread_rows`).
    n_f, h_max, _ = presence.shape
    first = np.empty((n_f, h_max), dtype=np.int64)
    last = np.empty((n_f, h_max), dtype=np.int64)
    _row_extents(presence, first, last)
    _spread_rows(presence, first, last, weights, passable, out)


@kernel
def _spread_rows(presence, first, last, weights, passable, out):  # pragma: no cover - compiled
    # `_spread` given each presence row's first and last nonzero column (`_row_extents`). Along
    # axis 1, scipy gives each cell w[r] x[h], then (x[h-k] + x[h+k]) w[r-k] for k = r, r-1, ..., 1.
    # Zeros add (0 + 0) x w = +0.0, which changes no sum, and x + 0.0 is x, so only the terms of
    # rows with a nonzero value (live rows) are added, each over the columns where its rows have
    # them, in scipy's order: the centre terms first, then k = r..1, each live row lo giving row
    # lo + k its pair (lo, lo + 2k) and row lo - k its term unless lo - 2k is live (that pair is
    # row lo - 2k's). Work then follows the live rows (about a third of the baseline's rows),
    # not every row within their reach. Along axis 2, through a zero-padded copy of the columns
    # within reach of nonzero ones (c0..c1); then times passable. Into `out` of zeros.
    n_f, h_max, w_max = presence.shape
    r = len(weights) // 2
    centre = weights[r]
    padded = np.zeros(w_max + 2 * r)
    line = np.empty(w_max)
    live = np.empty(h_max, dtype=np.int64)
    c0_of = np.empty(h_max, dtype=np.int64)  # each output row's nonzero columns after axis 1: c0..c1
    c1_of = np.empty(h_max, dtype=np.int64)
    # The inner loops run over 1-D views from index 0 (also `_correlate_line`): numba then drops
    # the negative-index checks on them and they vectorise (about twice as fast).
    for f in range(n_f):
        rows, smoothed_rows, firsts, lasts = presence[f], out[f], first[f], last[f]
        n_live = 0
        for h in range(h_max):
            live[n_live] = h
            n_live += lasts[h] >= 0
            c0_of[h], c1_of[h] = w_max, -1
        for i in range(n_live):
            h = live[i]
            a, b = firsts[h], lasts[h] + 1
            smoothed, here = smoothed_rows[h, a:b], rows[h, a:b]
            for w in range(b - a):
                smoothed[w] = here[w] * centre
            for t in range(max(h - r, 0), min(h + r + 1, h_max)):
                c0_of[t] = min(c0_of[t], a)
                c1_of[t] = max(c1_of[t], b - 1)
        for k in range(r, 0, -1):
            wk = weights[r - k]
            for i in range(n_live):
                lo = live[i]
                h, hi = lo + k, lo + 2 * k
                if h < h_max and hi < h_max and lasts[hi] >= 0:  # both rows live: (below + above) w
                    a, b = min(firsts[lo], firsts[hi]), max(lasts[lo], lasts[hi]) + 1
                    smoothed, below, above = smoothed_rows[h, a:b], rows[lo, a:b], rows[hi, a:b]
                    for w in range(b - a):
                        smoothed[w] += (below[w] + above[w]) * wk
                elif h < h_max:  # the row below alone: (below + 0.0) w
                    a, b = firsts[lo], lasts[lo] + 1
                    smoothed, below = smoothed_rows[h, a:b], rows[lo, a:b]
                    for w in range(b - a):
                        smoothed[w] += (below[w] + 0.0) * wk
                h = lo - k  # lo as the row above h, alone unless h - k is live
                if h >= 0 and not (h - k >= 0 and lasts[h - k] >= 0):
                    a, b = firsts[lo], lasts[lo] + 1
                    smoothed, above = smoothed_rows[h, a:b], rows[lo, a:b]
                    for w in range(b - a):
                        smoothed[w] += (0.0 + above[w]) * wk
        for h in range(h_max):
            c0, c1 = c0_of[h], c1_of[h]
            if c1 < 0:
                continue
            # along axis 2, through a zero-padded copy of columns c0..c1: outputs c0 - r..c1 + r
            n = c1 + 1 - c0
            smoothed = smoothed_rows[h, c0 : c1 + 1]
            window = padded[r + c0 : r + c1 + 1]
            for w in range(n):
                window[w] = smoothed[w]
            a, b = max(c0 - r, 0), min(c1 + r + 1, w_max)
            _correlate_line(padded, a, b, r, weights, line)
            result, ground, seen = smoothed_rows[h, a:b], passable[h, a:b], line[a:b]
            for w in range(b - a):
                result[w] = seen[w] * ground[w]
            for w in range(n):
                window[w] = 0.0


def rival_shares(influence: np.ndarray, hostile: np.ndarray) -> np.ndarray:
    """(F, H, W) each faction's share of a cell against its rivals: I_f / (I_f + sum_{g hostile to f} I_g).

    `hostile` is (F, F) bool. Allies and neutral factions do not enter a faction's
    denominator, so adding an ally's influence never lowers it. Zero where I_f is zero.
    """
    influence = np.ascontiguousarray(influence, dtype=np.float64)
    share = np.zeros_like(influence)
    live = np.ones(len(influence), dtype=np.bool_)  # (no layer is skipped: `_rival_shares`)
    _rival_shares(influence, np.ascontiguousarray(hostile, dtype=np.float64), live, share)
    return share


@kernel
def _rival_shares(influence, hostile, live, share):  # pragma: no cover - compiled
    # What np.einsum("fg,ghw->fhw", hostile, influence) then I / (I + rivals) where I > 0 give:
    # the rivals' sum from 0.0, faction by faction in order (einsum's accumulation). A faction g
    # with live[g] False has a layer of zeros (+0.0): its terms hg x 0.0 = +0.0 change no sum
    # (rivals are never -0.0, hostile is 0 or 1), so they are skipped; its own share is 0.0.
    n_f, h_max, w_max = influence.shape
    rivals = np.empty(w_max)
    for f in range(n_f):
        if not live[f]:
            share[f] = 0.0
            continue
        for h in range(h_max):
            for w in range(w_max):
                rivals[w] = 0.0
            for g in range(n_f):
                if not live[g]:
                    continue
                hg = hostile[f, g]
                for w in range(w_max):
                    rivals[w] += hg * influence[g, h, w]
            for w in range(w_max):  # a select, not a branch, so that the loop vectorises
                i = influence[f, h, w]
                share[f, h, w] = i / (i + rivals[w]) if i > 0 else 0.0


def control_map(
    influence: np.ndarray, hostile: np.ndarray, threshold: float, min_influence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Who controls each cell, from influence (F, H, W) and hostility (F, F) bool.

    Returns (control, share): share is `rival_shares`; control (H, W) is the faction with
    the most influence (first on a tie) where its share reaches `threshold`; CONTESTED
    where influence is enough but the leader's share falls short; NONE where the total is
    below `min_influence`.
    """
    share = rival_shares(influence, hostile)
    influence = np.ascontiguousarray(influence, dtype=np.float64)
    if len(influence):
        control = np.empty(influence.shape[1:], dtype=np.int64)
        live = np.ones(len(influence), dtype=np.bool_)  # (no layer is skipped: `_control`)
        if _control(influence, share, live, float(threshold), max(float(min_influence), 1e-12), control):
            return control, share
    # No faction, or NaN or inf somewhere (never from finite presence): numpy's own argmax rules
    total = influence.sum(axis=0)
    leader = influence.argmax(axis=0)
    leader_share = np.take_along_axis(share, leader[None], axis=0)[0]
    control = np.where(leader_share >= threshold, leader, CONTESTED)
    control = np.where(total >= max(min_influence, 1e-12), control, NONE)
    return control.astype(np.int64, copy=False), share


@kernel
def _control(influence, share, live, threshold, min_total, control):  # pragma: no cover - compiled
    # Per cell: the total over factions added in faction order (numpy's sum over axis 0), the
    # first faction with the most influence and its share; False (control unset) if any total
    # is not finite, for numpy's argmax rules to decide. A faction f >= 1 with live[f] False has a
    # layer of zeros (+0.0), which adds nothing to a total (never -0.0) and exceeds no best
    # (never below +0.0), so it is skipped; faction 0 always starts the comparison.
    # A row of cells at a time, factions outermost, with selects rather than branches, so
    # that the loops over cells vectorise; the same operations per cell.
    n_f, h_max, w_max = influence.shape
    total = np.empty(w_max)
    best = np.empty(w_max)
    leader = np.empty(w_max, dtype=np.int64)
    leader_share = np.empty(w_max)
    finite = True
    for h in range(h_max):
        for w in range(w_max):
            total[w] = influence[0, h, w]
            best[w] = influence[0, h, w]
            leader[w] = 0
            leader_share[w] = share[0, h, w]
        for f in range(1, n_f):
            if not live[f]:
                continue
            for w in range(w_max):
                x = influence[f, h, w]
                total[w] += x
                more = x > best[w]
                best[w] = x if more else best[w]
                leader[w] = f if more else leader[w]
                leader_share[w] = share[f, h, w] if more else leader_share[w]
        cells = control[h]
        for w in range(w_max):  # selects, not branches (`&`, not `and`), so that this loop vectorises too
            finite &= np.isfinite(total[w])
            held = leader[w] if leader_share[w] >= threshold else CONTESTED
            cells[w] = NONE if total[w] < min_total else held
    return finite


def hold_top_up(
    cell_influence: np.ndarray, holder: int, hostile: np.ndarray, threshold: float, min_influence: float
) -> float:
    """Influence to add to `holder` at one cell (F,) so that it controls the cell (0 if it does).

    Enough for its rival share to reach `threshold` (impossible at threshold 1 with
    rivals present), to have the most influence in the cell, and for the cell's total to
    reach `min_influence`.
    """
    i = cell_influence
    rivals = float(i[hostile[holder]].sum())
    need = i[holder]
    if threshold < 1.0:
        need = max(need, threshold / (1.0 - threshold) * rivals)
    others = [g for g in range(len(i)) if g != holder]
    if others:
        need = max(need, max(float(i[g]) for g in others) * (1.0 + 1e-9))
    need = max(need, min_influence - float(i.sum()) + i[holder])
    return float(max(need - i[holder], 0.0)) * (1.0 + 1e-9)


def honour_initial_control(world: World, rules: Rules) -> None:
    """Add each initially held site's established hold where its holder's fighters alone fall short."""
    inf = rules.influence
    for s, holder in enumerate(world.initial_site_control):
        if holder < 0:
            continue
        row, col = world.geo.site_rows[s], world.geo.site_cols[s]
        world.influence[holder, row, col] += hold_top_up(
            world.influence[:, row, col], int(holder), world.hostile, inf.control_threshold, inf.min_influence
        )
    world.control, world.share = control_map(world.influence, world.hostile, inf.control_threshold, inf.min_influence)


def presence(world: World, rules: Rules) -> np.ndarray:
    """(F, H, W) fighter-equivalents: posted fighters x arms multiplier + headquarters influence.

    Also stores the raw fighter counts in `world.fighter_counts` (read by clashes).
    """
    r = world.recruits
    n_f, geo = world.n_factions, world.geo
    counts = np.zeros((n_f, geo.height, geo.width), dtype=np.int64)
    total = np.empty(counts.shape)
    hq = _headquarters_presence(world, rules.deployment.hq_influence)
    # The fighters at their post today: remembered for the day's later readers (clashes, insurgents).
    rows = r.on_post_rows(world.day)
    _presence(rows, r.faction, r.post, arms_multiplier(world), hq, counts, total)
    world.fighter_counts = counts
    return total


@kernel
def _presence(rows, faction, post, arms, hq, counts, total):  # pragma: no cover - compiled
    # The given fighters counted by (faction, cell); then counts x arms + hq, the products and
    # sums numpy's broadcasting makes.
    n_f, h_max, w_max = counts.shape
    flat = counts.reshape(n_f, h_max * w_max)
    for row in rows:
        flat[faction[row], post[row]] += 1
    for f in range(n_f):
        a = arms[f]
        for h in range(h_max):
            for w in range(w_max):
                total[f, h, w] = counts[f, h, w] * a + hq[f, h, w]


def _headquarters_presence(world: World, hq_influence: float) -> np.ndarray:
    """(F, H, W) `hq_influence` at each headquarters' cell (added up where several share one); read-only.

    Kept with the bases (`World.base_state`, recomputed when a headquarters opens) until
    `hq_influence` changes.
    """
    bases = world.base_state()
    key = ("headquarters_presence", float(hq_influence))
    if key not in bases:
        hq = np.zeros((world.n_factions, world.geo.height, world.geo.width))
        for f, cells in enumerate(bases["hq"]):
            if cells:
                np.add.at(hq[f].reshape(-1), cells, hq_influence)
        hq.flags.writeable = False
        bases[key] = hq
    return bases[key]


@kernel
def _blend(influence, target, p, q, out, live):  # pragma: no cover - compiled
    # p I + q target, q = 1 - p: the same two products and their sum as numpy's; and live (F,):
    # whether each faction's layer of `out` has a value other than 0.0.
    n_f = len(out)
    for f in range(n_f):
        a, b, layer = influence[f].reshape(-1), target[f].reshape(-1), out[f].reshape(-1)
        nonzero = False
        for i in range(len(layer)):
            x = a[i] * p + b[i] * q
            layer[i] = x
            nonzero |= x != 0.0
        live[f] = nonzero


def step(world: World, rules: Rules, initial: bool = False) -> None:
    """Update influence, shares and control; note the first day each site changes hands.

    A day after day 0 is `presence`, `spread_influence`, the blend p I + (1 - p) target and
    `control_map`, in one compiled call where it can be (`_day`), the same numbers.
    """
    if not initial and _day(world, rules):
        return
    inf = rules.influence
    target = spread_influence(presence(world, rules), inf.sigma_cells, world.geo.passable, inf.kernel_truncation)
    if initial:
        world.influence = target
        honour_initial_control(world, rules)
    else:
        moved = np.empty(world.influence.shape)
        _blend(world.influence, target, inf.persistence, 1.0 - inf.persistence, moved, np.empty(len(moved), np.bool_))
        world.influence = moved
        world.control, world.share = control_map(
            world.influence, world.hostile, inf.control_threshold, inf.min_influence
        )
    new_site_control = world.control.reshape(-1)[world.site_flat]
    if not initial:
        _note_changes(world, (new_site_control != world.site_control).nonzero()[0])
    world.site_control = new_site_control


def _note_changes(world: World, sites) -> None:
    """Note today as the first day each of `sites` (indices) changed hands, unless it changed before."""
    for s in sites:
        world.first_control_change.setdefault(world.geo.site_names[s], world.day)


def _plan(world: World, rules: Rules) -> tuple | None:
    """The arguments of `_influence_day` fixed by the run and its rules; None where `_day` does not apply.

    (weights, passable as bool, hostile as float64, persistence p, 1 - p, control threshold,
    minimum total): the rules are frozen and the grid and hostilities fixed at set-up, so a
    plan computed once per rules object serves every day.
    """
    cached = world.derived.get("influence_plan")
    if cached is not None and cached[0] is rules:
        return cached[1]
    inf = rules.influence
    plan = None
    if inf.sigma_cells > 1e-15:  # the weights of so narrow a kernel are not even computed (`spread_influence`)
        weights = _gaussian_weights(inf.sigma_cells, inf.kernel_truncation)
        if _symmetric(weights):
            plan = (
                weights,
                np.ascontiguousarray(world.geo.passable, dtype=np.bool_),
                np.ascontiguousarray(world.hostile, dtype=np.float64),
                float(inf.persistence),
                1.0 - inf.persistence,
                float(inf.control_threshold),
                max(float(inf.min_influence), 1e-12),
            )
    world.derived["influence_plan"] = (rules, plan)
    return plan


def _day(world: World, rules: Rules) -> bool:
    """A day after day 0 in one compiled call (`_influence_day`); False, changing nothing, where it does not apply.

    It applies where `spread_influence` takes its compiled path (a kernel of positive width
    that scipy treats as symmetric) and where every cell's total influence comes out finite
    (else `control_map` leaves control to numpy's rules); the step then does it call by call.
    Besides influence, shares, control and fighter counts, the call finds today's fighters at
    their post (remembered as `RecruitArrays.on_post_rows`) and the sites' control.
    """
    plan = _plan(world, rules)
    if plan is None:
        return False
    weights, passable, hostile, p, q, threshold, min_total = plan
    r = world.recruits
    shape = world.influence.shape
    # The day's new state, allocated here where tracemalloc (sim.limits' estimates) sees it;
    # the kernel's temporaries (presence, target) are its own.
    counts = np.zeros(shape, dtype=np.int64)
    layers = np.empty((2, *shape))
    moved, share = layers[0], layers[1]
    control = np.empty(shape[1:], dtype=np.int64)
    site_control = np.empty(len(world.site_flat), dtype=np.int64)
    known = r.known_on_post_rows(world.day)
    finite, rows, n_changed = _influence_day(
        known if known is not None else _NO_ROWS, known is None, r.faction, r.status, r.post, r.arrive_step,
        world.day, arms_multiplier(world), _headquarters_presence(world, rules.deployment.hq_influence), weights,
        passable, np.ascontiguousarray(world.influence, dtype=np.float64), p, q, hostile, threshold, min_total,
        world.site_flat, world.site_control, counts, moved, share, control, site_control,
    )  # fmt: skip
    if known is None:
        r.remember_on_post_rows(world.day, rows)
    if not finite:
        return False
    world.fighter_counts = counts
    world.influence = moved
    world.control, world.share = control, share
    if n_changed:
        _note_changes(world, (site_control != world.site_control).nonzero()[0])
    world.site_control = site_control
    return True


_NO_ROWS = np.zeros(0, dtype=np.int64)


@kernel
def _influence_day(
    known_rows, find_rows, faction, status, post, arrive_step, day, arms, hq, weights, passable, influence, p, q,
    hostile, threshold, min_total, site_flat, old_site_control, counts, moved, share, control, site_control,
):  # fmt: skip  # pragma: no cover - compiled
    # Today's fighters at their post (`on_post_rows_of`, unless known), `presence` (counts and
    # presence), `spread_influence` (into target, zeros on entry), `_blend` (moved), then
    # `rival_shares` and `_control` of the moved influence: the kernels the step calls one by
    # one, in its order; then the sites' control. Returns (whether every cell's total is
    # finite, the rows at their post, how many sites changed hands).
    rows = on_post_rows_of(faction, status, post, arrive_step, day) if find_rows else known_rows
    total = np.empty(moved.shape)
    target = np.zeros(moved.shape)
    _presence(rows, faction, post, arms, hq, counts, total)
    _spread(total, weights, passable, target)
    live = np.empty(len(moved), dtype=np.bool_)
    _blend(influence, target, p, q, moved, live)
    _rival_shares(moved, hostile, live, share)
    finite = _control(moved, share, live, threshold, min_total, control)
    cells = control.reshape(-1)
    n_changed = 0
    for s in range(len(site_flat)):
        site_control[s] = cells[site_flat[s]]
        n_changed += site_control[s] != old_site_control[s]
    return finite, rows, n_changed
