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
from scipy import ndimage

from sim.processes.patrons import arms_multiplier
from sim.schema import Rules
from sim.world import CONTESTED, NONE, World


def _gaussian_weights(sigma_cells: float, truncate: float) -> np.ndarray:
    """The 1-D Gaussian kernel `scipy.ndimage.gaussian_filter` uses (radius int(truncate sigma + 0.5)), reversed.

    Read off the filter's response to a unit impulse, which is the kernel exactly (each
    output is one weight times 1 plus zeros); cached per (sigma, truncate).
    """
    key = (float(sigma_cells), float(truncate))
    if key not in _KERNELS:
        radius = int(truncate * float(sigma_cells) + 0.5)
        impulse = np.zeros(2 * radius + 1)
        impulse[radius] = 1.0
        kernel = ndimage.gaussian_filter1d(impulse, sigma_cells, mode="constant", truncate=truncate)
        _KERNELS[key] = kernel[::-1].copy()
    return _KERNELS[key]


_KERNELS: dict[tuple[float, float], np.ndarray] = {}


def spread_influence(presence: np.ndarray, sigma_cells: float, passable: np.ndarray, truncate: float) -> np.ndarray:
    """Smooth each faction's presence (F, H, W) with a Gaussian kernel; zero off the map.

    The kernel (standard deviation `sigma_cells`, cut at `truncate` standard deviations)
    conserves mass up to what spills over the grid's edge or onto impassable cells, so
    total influence never exceeds total presence. The same numbers as
    `ndimage.gaussian_filter(presence, sigma=(0, s, s), mode="constant", truncate=truncate)`:
    the same two 1-D correlations (rows, then columns, into one output array), without its
    per-call set-up.
    """
    presence = np.asarray(presence)
    if not sigma_cells > 1e-15:  # the filter skips such axes (copies the input): leave it to the filter
        sigma = (0, sigma_cells, sigma_cells)
        return ndimage.gaussian_filter(presence, sigma=sigma, mode="constant", truncate=truncate) * passable
    weights = _gaussian_weights(sigma_cells, truncate)
    smoothed = np.zeros(presence.shape, dtype=presence.dtype)
    ndimage.correlate1d(presence, weights, axis=1, output=smoothed, mode="constant", cval=0.0)
    ndimage.correlate1d(smoothed, weights, axis=2, output=smoothed, mode="constant", cval=0.0)
    return np.multiply(smoothed, passable, out=smoothed)  # in place: the same products, no new array


def rival_shares(influence: np.ndarray, hostile: np.ndarray) -> np.ndarray:
    """(F, H, W) each faction's share of a cell against its rivals: I_f / (I_f + sum_{g hostile to f} I_g).

    `hostile` is (F, F) bool. Allies and neutral factions do not enter a faction's
    denominator, so adding an ally's influence never lowers it. Zero where I_f is zero.
    """
    rivals = np.einsum("fg,ghw->fhw", hostile.astype(float), influence)
    denom = influence + rivals
    return np.divide(influence, denom, out=np.zeros_like(influence), where=influence > 0)


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
    total = influence.sum(axis=0)
    if len(influence) and np.isfinite(total).all():
        # argmax over factions (the first on a tie) one faction layer at a time, carrying the
        # leader's share along: the same leader as argmax for finite influence, and cheaper
        # than a strided reduction over the faction axis.
        leader = np.zeros(total.shape, dtype=np.int64)
        best, leader_share = influence[0], share[0]
        for f in range(1, len(influence)):
            better = influence[f] > best
            leader[better] = f
            best = np.where(better, influence[f], best)
            leader_share = np.where(better, share[f], leader_share)
    else:  # NaN or inf somewhere (never from finite presence): numpy's own argmax rules
        leader = influence.argmax(axis=0)
        leader_share = np.take_along_axis(share, leader[None], axis=0)[0]
    control = np.where(leader_share >= threshold, leader, CONTESTED)
    control = np.where(total >= max(min_influence, 1e-12), control, NONE)
    return control.astype(np.int64, copy=False), share


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
    rows = r.on_post_rows(world.day)
    n_f, n_cells = world.n_factions, world.geo.n_cells
    # Each posted fighter's (faction, cell) bin (work in proportion to fighters, not recruits).
    counts = np.bincount(r.faction[rows] * n_cells + r.post[rows], minlength=n_f * n_cells)
    counts = counts.reshape(n_f, world.geo.height, world.geo.width)
    world.fighter_counts = counts
    total = counts * arms_multiplier(world)[:, None, None]
    return total + _headquarters_presence(world, rules.deployment.hq_influence)


def _headquarters_presence(world: World, hq_influence: float) -> np.ndarray:
    """(F, H, W) `hq_influence` at each headquarters' cell (added up where several share one); read-only.

    Kept until a headquarters opens or `hq_influence` changes.
    """
    key = (tuple(tuple(sites) for sites in world.hq_sites), hq_influence)
    cached = world.derived.get("headquarters_presence")
    if cached is not None and cached[0] == key:
        return cached[1]
    hq = np.zeros((world.n_factions, world.geo.height, world.geo.width))
    for f in range(world.n_factions):
        cells = world.headquarters(f)
        if cells:
            np.add.at(hq[f].reshape(-1), cells, hq_influence)
    hq.flags.writeable = False
    world.derived["headquarters_presence"] = (key, hq)
    return hq


def step(world: World, rules: Rules, initial: bool = False) -> None:
    """Update influence, shares and control; note the first day each site changes hands."""
    inf = rules.influence
    target = spread_influence(presence(world, rules), inf.sigma_cells, world.geo.passable, inf.kernel_truncation)
    if initial:
        world.influence = target
        honour_initial_control(world, rules)
    else:
        # p I + (1 - p) target, with the same products and sum, into two arrays instead of three
        # (`target` is today's own array).
        moved = world.influence * inf.persistence
        moved += np.multiply(target, 1.0 - inf.persistence, out=target)
        world.influence = moved
        world.control, world.share = control_map(
            world.influence, world.hostile, inf.control_threshold, inf.min_influence
        )
    new_site_control = world.control.reshape(-1)[world.site_flat]
    if not initial:
        for s in (new_site_control != world.site_control).nonzero()[0]:
            world.first_control_change.setdefault(world.geo.site_names[s], world.day)
    world.site_control = new_site_control
