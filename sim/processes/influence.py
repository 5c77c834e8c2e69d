"""Influence and control (ODD §7.6): who holds each cell, from where fighters stand.

Each faction's presence is its posted fit fighters per cell times its arms multiplier
(`patrons.arms_multiplier`), plus `rules.deployment.hq_influence` at each of its
headquarters. Its target influence is that presence smoothed by a Gaussian kernel of
`rules.influence.sigma_cells` (cut at `kernel_truncation` sigmas, zero on impassable cells);
influence moves toward the target with persistence p: I <- p I + (1 - p) target. A faction
controls a cell where its share of the cell's influence reaches `control_threshold`; a cell
with enough influence but no such faction is contested; below `min_influence` it is nobody's.

Sources: article §4, §12 (two poles of influence), §10-§11 (who holds which town).
Deterministic: no random stream.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sim.processes.patrons import arms_multiplier
from sim.schema import Rules
from sim.world import CONTESTED, NONE, World


def spread_influence(
    presence: np.ndarray, sigma_cells: float, passable: np.ndarray, truncate: float
) -> np.ndarray:
    """Smooth each faction's presence (F, H, W) with a Gaussian kernel; zero off the map.

    The kernel (standard deviation `sigma_cells`, cut at `truncate` standard deviations)
    conserves mass up to what spills over the grid's edge or onto impassable cells, so
    total influence never exceeds total presence.
    """
    smoothed = ndimage.gaussian_filter(
        presence, sigma=(0, sigma_cells, sigma_cells), mode="constant", truncate=truncate
    )
    return smoothed * passable


def control_map(influence: np.ndarray, threshold: float, min_influence: float) -> tuple[np.ndarray, np.ndarray]:
    """Who controls each cell, from influence (F, H, W).

    Returns (control, share): control (H, W) is the index of the faction whose share of the
    cell's influence is at least `threshold`, CONTESTED where influence is enough but no
    share passes it, NONE where the total is below `min_influence`; share is (F, H, W).
    """
    total = influence.sum(axis=0)
    share = np.divide(influence, total, out=np.zeros_like(influence), where=total > 0)
    leader = share.argmax(axis=0)
    top = share.max(axis=0)
    control = np.where(top >= threshold, leader, CONTESTED)
    control = np.where(total >= max(min_influence, 1e-12), control, NONE)
    return control.astype(np.int64), share


def presence(world: World, rules: Rules) -> np.ndarray:
    """(F, H, W) fighter-equivalents: posted fighters x arms multiplier + headquarters influence.

    Also stores the raw fighter counts in `world.fighter_counts` (read by clashes).
    """
    r = world.recruits
    fighting = r.fighting()
    n_f, n_cells = world.n_factions, world.geo.n_cells
    flat_index = r.faction[fighting] * n_cells + r.post[fighting]
    counts = np.bincount(flat_index, minlength=n_f * n_cells).reshape(n_f, world.geo.height, world.geo.width)
    world.fighter_counts = counts
    total = counts * arms_multiplier(world)[:, None, None]
    hq = np.zeros_like(total)
    for f in range(n_f):
        cells = world.headquarters(f)
        if cells:
            np.add.at(hq[f].reshape(-1), cells, rules.deployment.hq_influence)
    return total + hq


def step(world: World, rules: Rules, initial: bool = False) -> None:
    """Update influence, shares and control; note the first day each site changes hands."""
    inf = rules.influence
    target = spread_influence(presence(world, rules), inf.sigma_cells, world.geo.passable, inf.kernel_truncation)
    if initial:
        world.influence = target
    else:
        world.influence = inf.persistence * world.influence + (1.0 - inf.persistence) * target
    world.control, world.share = control_map(world.influence, inf.control_threshold, inf.min_influence)
    new_site_control = world.control.reshape(-1)[world.geo.site_flat]
    if not initial:
        for s in np.flatnonzero(new_site_control != world.site_control):
            world.first_control_change.setdefault(world.geo.site_names[s], world.day)
    world.site_control = new_site_control
