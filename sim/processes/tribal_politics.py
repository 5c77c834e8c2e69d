"""Tribal politics (ODD §7.3): tribal leaders' alignment moves toward who pays, holds and spares them.

Each leader l has weights a_l over factions (a row of `World.alignment`, summing to 1). Every
day it moves toward softmax(pull_l) by its responsiveness r_l:

    pull_lf = w_pay x patronage_lf / PAYMENT_UNIT_USD_DAY + w_control x control_lf
              - w_casualties x remembered_killed_lf      (-inf for insurgents)
    a_l <- (1 - r_l) a_l + r_l softmax(pull_l)

with patronage in USD/day (`economy`), control_lf the share of the tribe's towns' cells that
f controls, and remembered_killed_lf the tribesmen f has killed, decaying with time constant
`rules.tribal.casualty_memory_days`. Weights are `rules.tribal.*`. Sources: article §3, §7
(tribal leaders courted by both sides). Deterministic: no random stream.
"""

from __future__ import annotations

import numpy as np

from sim.schema import Rules
from sim.world import PAYMENT_UNIT_USD_DAY, World


def update_alignment(alignment: np.ndarray, pull: np.ndarray, responsiveness: np.ndarray) -> np.ndarray:
    """Move each leader's alignment (L, F) toward softmax(pull) (L, F) by its responsiveness (L,).

    Stays on the simplex: a convex mix of two probability vectors is one.
    """
    pull = pull - pull.max(axis=1, keepdims=True)
    target = np.exp(pull)
    target /= target.sum(axis=1, keepdims=True)
    r = responsiveness[:, None]
    return (1.0 - r) * alignment + r * target


def town_control_shares(world: World) -> np.ndarray:
    """(L, F) share of each tribe's town cells that each faction controls."""
    n_t = len(world.tribe_names)
    control_share = np.zeros((n_t, world.n_factions))
    flat_control = world.control.reshape(-1)
    for t, cells in enumerate(world.tribe_town_cells):
        if len(cells):
            held = flat_control[cells]
            for f in range(world.n_factions):
                control_share[t, f] = np.mean(held == f)
    return control_share


def step(world: World, rules: Rules) -> None:
    """Update every leader's alignment and let remembered casualties fade by one day."""
    if not world.tribe_names:
        return
    tribal = rules.tribal
    n_t = len(world.tribe_names)
    pull = (
        tribal.weight_payments * world.courting_paid / PAYMENT_UNIT_USD_DAY
        + tribal.weight_control * town_control_shares(world)
        - tribal.weight_casualties * world.casualty_memory[:n_t]
    )
    pull[:, ~world.is_militia] = -np.inf  # no leader aligns with insurgents
    world.alignment = update_alignment(world.alignment, pull, world.responsiveness)
    world.casualty_memory *= np.exp(-1.0 / tribal.casualty_memory_days)
