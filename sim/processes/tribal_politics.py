"""Tribal politics (ODD §7.3): tribal leaders' alignment moves toward who pays, protects and spares them.

Each leader l has weights a_l over factions (a row of `World.alignment`, summing to 1). Every
day each weight grows or shrinks with the faction's pull, relative to the best-placed
faction (a multiplicative-weights, or replicator, update), and then returns a little toward
the leader's initial alignment a0_l (tribal ties are sticky):

    pull_lf = w_pay x patronage_lf / PAYMENT_UNIT_USD_DAY + w_control x control_lf
              + w_presence x presence_lf - w_casualties x 100 x remembered_killed_lf / men_l
              (-inf for insurgents)
    a'_lf  = a_lf exp(r_l (pull_lf - max_g pull_lg)) / sum_g (...)
    a_l   <- (1 - anchor) a'_l + anchor a0_l

with patronage in USD/day (`economy`), control_lf the share of the tribe's towns' cells that
f controls, presence_lf f's share of all influence on those cells (a faction with no men
in the tribe's towns neither protects nor threatens it), remembered_killed_lf the
tribesmen f has killed, decaying with time constant `rules.tribal.casualty_memory_days`,
as a percentage of the tribe's men men_l (its recruit pool on day 0: ten dead weigh more
on a small tribe than on a large one),
r_l the leader's responsiveness and anchor `rules.tribal.anchor_per_day`. Equal pulls
leave the alignment where it is (no drift toward a faction merely because it never fights:
that faction must also pay, hold or be present); more patronage from f raises a_lf.

Sources: article §12 (most NDF members are tribesmen), §13 (tribal notables at the
meetings); that leaders follow payments, protection and casualties, and every weight, are
assumptions. Deterministic: no random stream.
"""

from __future__ import annotations

import math

import numpy as np

from sim.compiled import exp, kernel, numpy_max, numpy_sum
from sim.schema import Rules
from sim.world import PAYMENT_UNIT_USD_DAY, World


def update_alignment(
    alignment: np.ndarray,
    pull: np.ndarray,
    responsiveness: np.ndarray,
    initial: np.ndarray | None = None,
    anchor: float = 0.0,
) -> np.ndarray:
    """One day's update of the leaders' alignment (L, F) by their pulls (L, F).

    Multiplicative weights a_f exp(r (pull_f - max pull)), renormalised, then the share
    `anchor` of the way back to `initial` (L, F). Stays on the simplex; equal pulls leave an
    alignment unchanged (apart from the anchor); a larger pull on f never lowers a_f.
    A leader whose every weight would vanish keeps its alignment. Returns a new (L, F) array.

    The model's float64 arrays go through one compiled call (`_update_alignment`), the same
    operations as the numpy expression below, which takes anything else.
    """
    arrays = (alignment, pull, responsiveness) + (() if initial is None else (initial,))
    if all(type(a) is np.ndarray and a.dtype == np.float64 and a.flags.c_contiguous for a in arrays) and (
        alignment.ndim == 2
        and alignment.shape[1] > 0
        and pull.shape == alignment.shape
        and responsiveness.shape == alignment.shape[:1]
        and (initial is None or initial.shape == alignment.shape)
    ):
        out = np.empty(alignment.shape)
        anchored = initial is not None and anchor != 0.0
        towards = initial if anchored else alignment  # read only when anchored
        _update_alignment(alignment, pull, responsiveness, towards, float(anchor), anchored, out)
        return out
    pull = pull - pull.max(axis=1, keepdims=True)
    # A leader of responsiveness 0 pulled toward a faction that is not a militia (pull -inf)
    # gets 0 x -inf = NaN, so a NaN total, and keeps its alignment (the `where` below): meant.
    with np.errstate(invalid="ignore"):
        grown = alignment * exp(responsiveness[:, None] * pull)  # the C library's exp: the same on every CPU
    total = grown.sum(axis=1, keepdims=True)
    moved = np.divide(grown, total, out=alignment.copy(), where=total > 0)
    if initial is None or anchor == 0.0:
        return moved
    return (1.0 - anchor) * moved + anchor * initial


@kernel
def _update_alignment(alignment, pull, responsiveness, initial, anchor, anchored, out):  # pragma: no cover
    # Leader by leader, the numpy expression of `update_alignment`: the largest pull (numpy's max:
    # NaN if any is; which of +0 and -0 cannot matter after exp), a x exp(r (pull - max)) with
    # the C library's exp, the row's total as numpy sums it (`numpy_sum`), the division where
    # the total is above 0 (else the alignment kept), then (1 - anchor) moved + anchor initial.
    n_l, n_f = alignment.shape
    grown = np.empty(n_f)
    for t in range(n_l):
        largest = numpy_max(pull[t])
        for f in range(n_f):
            grown[f] = alignment[t, f] * math.exp(responsiveness[t] * (pull[t, f] - largest))
        total = numpy_sum(grown)
        for f in range(n_f):
            moved = grown[f] / total if total > 0 else alignment[t, f]
            out[t, f] = (1.0 - anchor) * moved + anchor * initial[t, f] if anchored else moved


def town_control_shares(world: World) -> np.ndarray:
    """(L, F) share of each tribe's town cells that each faction controls."""
    n_t, n_f = len(world.tribe_names), world.n_factions
    all_cells, n_cells = _tribe_towns(world)
    out = np.zeros((n_t, n_f))
    _control_shares(world.control.reshape(-1), all_cells, n_cells, out)
    return out


@kernel
def _control_shares(control, all_cells, n_cells, out):  # pragma: no cover - compiled
    # Per tribe, how many of its town cells each faction controls, over its number of cells (the
    # same float as the mean of held == f; NONE and CONTESTED cells count for nobody).
    n_f = out.shape[1]
    held = np.zeros(n_f, dtype=np.int64)
    start = 0
    for t in range(len(n_cells)):
        k = n_cells[t]
        held[:] = 0
        for j in range(start, start + k):
            holder = control[all_cells[j]]
            if holder >= 0:
                held[holder] += 1
        if k > 0:
            for f in range(n_f):
                out[t, f] = held[f] / k
        start += k


def _tribe_towns(world: World) -> tuple[np.ndarray, np.ndarray]:
    """(every tribe's town cells one tribe after another, (L,) int64 number of cells per tribe), computed once.

    `World.tribe_town_cells` is fixed at set-up; kept in `World.derived` with the cells it came from.
    """
    cells = world.tribe_town_cells
    cached = world.derived.get("tribe_towns")
    if cached is not None and cached[0] is cells:
        return cached[1]
    all_cells = np.concatenate(cells).astype(np.int64) if len(cells) else np.zeros(0, dtype=np.int64)
    value = (all_cells, np.array([len(c) for c in cells], dtype=np.int64))
    world.derived["tribe_towns"] = (cells, value)
    return value


def town_presence_shares(world: World) -> np.ndarray:
    """(L, F) each faction's share of all influence on each tribe's town cells (0 where there is none)."""
    n_t = len(world.tribe_names)
    out = np.zeros((n_t, world.n_factions))
    all_cells, n_cells = _tribe_towns(world)
    _presence_shares(world.influence.reshape(world.n_factions, -1), all_cells, n_cells, out)
    return out


@kernel
def _presence_shares(influence, all_cells, n_cells, out):  # pragma: no cover - compiled
    # Per tribe, what numpy does with its towns' influence `influence[:, cells]`, an (F, k) array
    # that numpy lays out column by column: its total is numpy's pairwise sum in that order
    # (cell by cell, each cell's factions), each faction's sum runs over the cells one by one.
    n_f = influence.shape[0]
    start = 0
    for t in range(len(n_cells)):
        k = n_cells[t]
        if k:
            on_cells = np.empty(k * n_f)
            for j in range(k):
                for f in range(n_f):
                    on_cells[j * n_f + f] = influence[f, all_cells[start + j]]
            total = numpy_sum(on_cells)
            if total > 0:
                for f in range(n_f):
                    row = 0.0
                    for j in range(k):
                        row += on_cells[j * n_f + f]
                    out[t, f] = row / total
        start += k


def step(world: World, rules: Rules) -> None:
    """Update every leader's alignment and let remembered casualties fade by one day."""
    if not world.tribe_names:
        return
    tribal = rules.tribal
    n_f = world.n_factions
    all_cells, n_cells = _tribe_towns(world)
    alignment, initial = world.alignment, world.initial_alignment
    # One compiled call for `town_control_shares`, `town_presence_shares`, the pull and
    # `update_alignment` (its compiled path: the model's arrays are float64 and C-ordered) and
    # the fading memory (tests/test_fast_paths.py compares it with those calls).
    out = np.empty(alignment.shape)
    anchored = initial is not None and tribal.anchor_per_day != 0.0
    _tribal_day(
        len(world.tribe_names), world.control.reshape(-1), world.influence.reshape(n_f, -1), all_cells, n_cells,
        world.courting_paid, world.casualty_memory, world.tribe_men, world.is_militia, tribal.weight_payments,
        PAYMENT_UNIT_USD_DAY, tribal.weight_control, tribal.weight_presence, tribal.weight_casualties * 100.0,
        alignment, world.responsiveness, initial if anchored else alignment, float(tribal.anchor_per_day), anchored,
        exp(-1.0 / tribal.casualty_memory_days), out,
    )  # fmt: skip
    world.alignment = out


@kernel
def _tribal_day(
    n_t, control, influence, all_cells, n_cells, courting_paid, casualty_memory, tribe_men, is_militia,
    weight_payments, payment_unit, weight_control, weight_presence, casualties_per_man, alignment,
    responsiveness, towards, anchor, anchored, fading, out,
):  # fmt: skip  # pragma: no cover - compiled
    # The kernels of `step`'s calls in their order: control and presence shares (zero where a
    # tribe has no town cells or no influence on them), the pull, the new alignment into `out`,
    # then casualty_memory x fading, as numpy's in-place product.
    n_f = influence.shape[0]
    control_shares, presence_shares = np.zeros((n_t, n_f)), np.zeros((n_t, n_f))
    _control_shares(control, all_cells, n_cells, control_shares)
    _presence_shares(influence, all_cells, n_cells, presence_shares)
    pull = np.empty((n_t, n_f))
    _pull(
        courting_paid, control_shares, presence_shares, casualty_memory, tribe_men, is_militia, weight_payments,
        payment_unit, weight_control, weight_presence, casualties_per_man, pull,
    )  # fmt: skip
    _update_alignment(alignment, pull, responsiveness, towards, anchor, anchored, out)
    for t in range(casualty_memory.shape[0]):
        for f in range(casualty_memory.shape[1]):
            casualty_memory[t, f] *= fading


@kernel
def _pull(
    courting_paid, control_shares, presence_shares, casualty_memory, tribe_men, is_militia, weight_payments,
    payment_unit, weight_control, weight_presence, casualties_per_man, pull,
):  # fmt: skip  # pragma: no cover - compiled
    # Each leader's pull toward each faction, as numpy evaluated it: ((payments + control)
    # + presence) - casualties per man (x 100), with each term's products in their order;
    # -inf toward a faction that is not a militia (no leader aligns with insurgents).
    n_t, n_f = pull.shape
    for t in range(n_t):
        men = max(tribe_men[t], 1.0)
        for f in range(n_f):
            if not is_militia[f]:
                pull[t, f] = -np.inf
                continue
            payments = weight_payments * courting_paid[t, f] / payment_unit
            control = weight_control * control_shares[t, f]
            presence = weight_presence * presence_shares[t, f]
            losses = casualties_per_man * casualty_memory[t, f] / men
            pull[t, f] = ((payments + control) + presence) - losses
