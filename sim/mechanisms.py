"""The model's rules as pure, vectorised functions.

Each function takes arrays and a numpy Generator and returns arrays; none touches a Mesa
object. The model (`sim.model`) calls them once per step on all recruits or cells at once,
and the tests call them directly to show each rule's property (a monotone response, a
bound, a conservation) without running a whole model.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import expit, logit

NONE = -1  # "no militia" / "nobody's cell"
CONTESTED = -2  # a cell where no faction's share passes the control threshold


# --- Recruitment and defection -------------------------------------------------------


def logit_choice(utilities: np.ndarray, available: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random-utility (multinomial logit) choice, one per row.

    Adds independent standard Gumbel noise to each available option and takes the best
    (the Gumbel-max trick): the chosen option then has probability
    exp(U_k) / sum_j exp(U_j) over available options. Drawing the noise before comparing
    means that, for the same draws, raising one option's utility can only move choices
    *to* that option, so every response to a utility is monotone path by path, not only
    in expectation.
    """
    noise = rng.gumbel(size=utilities.shape)
    scores = np.where(available, utilities + noise, -np.inf)
    return np.argmax(scores, axis=1)


def choice_probabilities(utilities: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Closed-form logit probabilities (for tests and analysis)."""
    u = np.where(available, utilities, -np.inf)
    u = u - u.max(axis=1, keepdims=True)
    e = np.exp(u)
    return e / e.sum(axis=1, keepdims=True)


# --- Influence and control -----------------------------------------------------------


def spread_influence(presence: np.ndarray, sigma_cells: float, passable: np.ndarray) -> np.ndarray:
    """Smooth each faction's presence (F, H, W) with a Gaussian kernel; zero off the map.

    The kernel conserves mass up to what spills over the grid's edge or onto impassable
    cells, so total influence never exceeds total presence.
    """
    smoothed = ndimage.gaussian_filter(presence, sigma=(0, sigma_cells, sigma_cells), mode="constant", truncate=3.0)
    return smoothed * passable


def control_map(influence: np.ndarray, threshold: float, min_influence: float) -> tuple[np.ndarray, np.ndarray]:
    """Who controls each cell, from influence (F, H, W).

    Returns (control, share): control is the index of the faction whose share of the
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


def neighbourhood_sum(counts: np.ndarray, radius: int) -> np.ndarray:
    """Sum of (F, H, W) counts over the (2r+1)^2 square around each cell."""
    if radius == 0:
        return counts.astype(float)
    size = 2 * radius + 1
    return ndimage.uniform_filter(counts.astype(float), size=(1, size, size), mode="constant") * size * size


# --- Clashes -----------------------------------------------------------------------------


def clash_probability(tension: float, calm: float, posture: float, p_max: float, tension_scale: float) -> float:
    """Daily chance of a clash in one front cell.

    Rises with tension and saturates at p_max; an agreement's calm (0..1) suppresses it;
    posture (0..1, how readily the more aggressive side escalates) scales it from half to
    full.
    """
    rise = 1.0 - np.exp(-max(tension, 0.0) / tension_scale)
    return float(p_max * rise * (1.0 - calm) * (0.5 + 0.5 * posture))


def lanchester_casualties(
    n_a: int,
    n_b: int,
    strength_a: float,
    strength_b: float,
    lethality: float,
    rng: np.random.Generator,
    exponent: float = 1.0,
) -> tuple[int, int]:
    """Stochastic attrition for one engagement (Lanchester-style).

    Each fighter of side A becomes a casualty with probability
    lethality * (S_B / S_A) ** exponent, capped at 0.9: a side's losses grow with the other
    side's strength and shrink with its own. exponent = 1 is the square law (fire
    concentrates on fewer targets); smaller values model skirmishes where the force ratio
    matters less. Returns the casualty counts (killed + wounded) of A and B.
    """
    if n_a == 0 or n_b == 0:
        return 0, 0
    p_a = min(0.9, lethality * (strength_b / strength_a) ** exponent)
    p_b = min(0.9, lethality * (strength_a / strength_b) ** exponent)
    return int(rng.binomial(n_a, p_a)), int(rng.binomial(n_b, p_b))


def split_killed(casualties: int, p_killed: float, rng: np.random.Generator) -> tuple[int, int]:
    """Split casualties into (killed, wounded); killed ~ Binomial(casualties, p_killed)."""
    killed = int(rng.binomial(casualties, p_killed)) if casualties else 0
    return killed, casualties - killed


# --- Mediation -----------------------------------------------------------------------------


def meeting_success_probability(
    p_base: float,
    patron_alignment: float,
    tribal_bridge: float,
    tension: float,
    patron_weight: float,
    tribal_weight: float,
    tension_weight: float,
    neutral_venue_bonus: float = 0.0,
) -> float:
    """Chance a meeting ends in agreement (logistic in its drivers).

    Starts from p_base at neutral patrons (alignment 0), no bridging tribal leaders, zero
    tension and a venue belonging to one side; patrons with the same aims (+1), tribal
    leaders tied to both sides and a neutral venue raise it, tension lowers it.
    """
    base = logit(np.clip(p_base, 1e-9, 1 - 1e-9))
    z = (
        base
        + patron_weight * patron_alignment
        + tribal_weight * tribal_bridge
        - tension_weight * tension
        + neutral_venue_bonus
    )
    return float(expit(z))


def calm_after_agreement(days_since: float, half_life_days: float) -> float:
    """Calm left from an agreement: 1 on the day it is made, halving every half-life."""
    if not np.isfinite(days_since) or days_since < 0:
        return 0.0
    return float(0.5 ** (days_since / half_life_days))


def tribal_bridge(alignment: np.ndarray, a: int, b: int) -> float:
    """How much the tribal leaders are tied to both sides: mean of 2*min(w_a, w_b) (0..1)."""
    if alignment.size == 0:
        return 0.0
    return float(np.mean(2.0 * np.minimum(alignment[:, a], alignment[:, b])))


# --- Tribal politics --------------------------------------------------------------------


def update_alignment(alignment: np.ndarray, pull: np.ndarray, responsiveness: np.ndarray) -> np.ndarray:
    """Move each leader's alignment (L, F) toward softmax(pull) by its responsiveness (L,).

    Stays on the simplex: a convex mix of two probability vectors is one.
    """
    pull = pull - pull.max(axis=1, keepdims=True)
    target = np.exp(pull)
    target /= target.sum(axis=1, keepdims=True)
    r = responsiveness[:, None]
    return (1.0 - r) * alignment + r * target


# --- Insurgency --------------------------------------------------------------------------


def insurgent_growth(
    cells: float,
    n_clashes: int,
    n_contested: int,
    base: float,
    per_clash: float,
    per_contested: float,
    decay: float,
    max_cells: float,
) -> float:
    """Insurgent cells tomorrow: growth fed by the rivals' clashes and contested ground.

    Non-decreasing in clashes and in contested cells; never below zero nor above max_cells.
    """
    grown = cells * (1.0 - decay) + base + per_clash * n_clashes + per_contested * n_contested
    return float(np.clip(grown, 0.0, max_cells))
