"""Insurgency (ODD §7.10): insurgent cells grow on the rivalry and strike militia fighters.

Insurgents are one number of cells C, not on the map. Every day

    C <- clip(C (1 - decay_per_day) + base_growth_per_day + growth_per_clash x clashes today
              + growth_per_casualty x clash casualties today
              + growth_per_contested_cell x rival-contested cells, 0, max_cells)

(`insurgent_growth`; clashes, their casualties and rival-contested cells from `conflict`).
The rivalry feeds the cells three ways: fighting (clashes), the losses it inflicts (the
dead and wounded leave posts empty and families aggrieved) and the vacuum of ground two
hostile militias dispute and neither holds. With no hostile pair of militias all three are
zero, so the cells only move from where they start toward base_growth / decay. They then make
Poisson(C x `attack_rate`) attacks; each strikes a posted militia fighter drawn with weight
`contested_target_weight` on contested cells and 1 elsewhere, and inflicts
Poisson(`attack_casualties`) casualties among the fighters of that faction on that cell.

Sources: article §8, §13 (ISIS cells waiting to exploit the rivalry). Random stream:
"insurgency" (attacks, targets, casualties).
"""

from __future__ import annotations

import numpy as np

from sim.compiled import kernel, numpy_sum
from sim.processes.casualties import inflict
from sim.schema import Rules
from sim.world import CONTESTED, FIT, World


def insurgent_growth(
    cells: float,
    n_clashes: int,
    n_contested: int,
    base: float,
    per_clash: float,
    per_contested: float,
    decay: float,
    max_cells: float,
    n_casualties: int = 0,
    per_casualty: float = 0.0,
) -> float:
    """Insurgent cells tomorrow: growth fed by the rivals' clashes, their casualties and contested ground.

    Non-decreasing in clashes, casualties and contested cells; never below zero nor above max_cells.
    """
    grown = (
        cells * (1.0 - decay) + base + per_clash * n_clashes + per_casualty * n_casualties + per_contested * n_contested
    )
    return _clip_scalar(float(grown), 0.0, max_cells)


def _clip_scalar(x: float, low: float, high: float) -> float:
    """`float(np.clip(x, low, high))` for one float, without numpy's per-call set-up.

    As numpy's clip: a bound replaces x only where x lies strictly beyond it (so -0.0 stays
    -0.0 at a bound of 0.0), and NaN stays NaN (tests/test_fast_paths.py compares them).
    """
    x = float(low) if x < low else x
    return float(high) if x > high else x


GROUPED_ABOVE_ATTACKS = 8  # speed only: above this many attacks a day, sort the targets into groups first


class TargetPicker:
    """Today's attack targets, drawn as `rng.choice(pool, p=p)` draws them, at O(log n) a draw.

    `Generator.choice` with `p` builds the cumulative distribution on every call (O(n) for n
    posted fighters), and the fighters on the target's cell were found by a scan of every
    recruit (O(N)): with thousands of attacks a day that was hours a day. Here the cumulative
    distribution is built once and searched with one uniform draw per attack, exactly as
    `choice` does, so the draws and the targets are the same as before; and the fighters of
    each (faction, cell) are sorted into groups once. Between two attacks only `casualties.inflict`
    changes recruits (it unposts the hit), so a group's fighters still posted are those of
    its rows still fit with a post: the same rows, in the same order, as
    `World.fighters_near(f, cell, 0)`.
    """

    def __init__(self, pool: np.ndarray, p: np.ndarray, faction: np.ndarray, post: np.ndarray):
        self.pool = pool
        self.posts = np.array(post, dtype=np.int64)  # each pool row's post when the picker was built
        self.cdf = np.cumsum(p)  # as numpy's Generator.choice: cumsum, normalised by its last entry
        self.cdf /= self.cdf[-1]
        # One key per row, faction x span + cell; the rows sorted by key, each key's rows in
        # the pool's order (a stable counting sort, `_group`): a group is the run of rows with
        # its key. For a pool in ascending rows this is np.lexsort((pool, post, faction)).
        self.span = int(post.max()) + 1 if len(post) else 1
        keys = np.asarray(faction, dtype=np.int64) * self.span + np.asarray(post, dtype=np.int64)
        self.rows, self.keys = np.empty(len(pool), dtype=np.asarray(pool).dtype), np.empty(len(pool), dtype=np.int64)
        if len(pool):
            _group(np.asarray(pool), keys, int(keys.max()) + 1, self.rows, self.keys)

    @classmethod
    def of_militias(cls, world: World, contested_weight: float, grouped: bool = True) -> TargetPicker | None:
        """The picker of today's targets: the posted militia fighters, weighted `contested_weight` on contested cells.

        The same picker as `TargetPicker(pool, w / w.sum(), faction[pool], post[pool])` with pool
        the rows of the posted fighters of militias (ascending) and w their weights (1 off
        contested cells), built in one compiled call (`_militia_targets`); None if there are none.
        Without `grouped` the fighters are not sorted into groups (worth it for many attacks
        only): `still_posted` then scans the pool, for the same rows.
        """
        r = world.recruits
        pool, posts, cdf, span, rows, keys = _militia_targets(
            r.on_post_rows(world.day), r.faction, r.post, world.is_militia, world.control.reshape(-1), contested_weight,
            grouped,
        )
        if len(pool) == 0:
            return None
        picker = cls.__new__(cls)
        picker.pool, picker.cdf, picker.span = pool, cdf, span
        picker.posts = posts  # r.post[pool], a copy: the posts this morning
        picker.rows, picker.keys = (rows, keys) if grouped else (None, None)
        return picker

    def draw(self, rng: np.random.Generator) -> int:
        """One target row, with the draw `rng.choice(pool, p=p)` makes."""
        return self.draw_post(rng)[0]

    def draw_post(self, rng: np.random.Generator) -> tuple[int, int]:
        """(row, flat cell of its post when the picker was built) of one target, with `draw`'s one draw.

        The post is this morning's: a fighter hit by an earlier attack today has lost its post
        (`casualties.inflict` unposts the hit), but the attack still strikes the cell it was
        drawn for, and whoever is still posted there.
        """
        j = int(self.cdf.searchsorted(rng.random(), side="right"))
        return int(self.pool[j]), int(self.posts[j])

    def still_posted(self, f: int, flat: int, recruits) -> np.ndarray:
        """Rows of faction f's fighters posted on cell `flat` this morning and not hit since (ascending)."""
        if self.rows is None:  # no groups: the pool's rows of f still fit and posted there (a hit is unposted)
            if not 0 <= flat < self.span:  # no fighter was posted there this morning
                return self.pool[:0].copy()
            return _posted_on(self.pool, recruits.faction, recruits.status, recruits.post, f, flat)
        if not 0 <= flat < self.span:
            return self.rows[:0].copy()
        return _still_posted(self.rows, self.keys, f * self.span + flat, recruits.status, recruits.post, flat)


@kernel
def _still_posted(rows, keys, key, status, post, flat):  # pragma: no cover - compiled
    # The group's rows (those with `key`, a run of the sorted keys) still fit and posted on `flat`.
    group = rows[np.searchsorted(keys, key, side="left") : np.searchsorted(keys, key, side="right")]
    out = np.empty(len(group), dtype=rows.dtype)
    n = 0
    for row in group:
        if status[row] == FIT and post[row] == flat:
            out[n] = row
            n += 1
    return out[:n].copy()


@kernel
def _posted_on(pool, faction, status, post, f, flat):  # pragma: no cover - compiled
    # The pool's rows (in its order) of faction f, fit and posted on `flat` (>= 0): the rows
    # `_still_posted` finds, since between attacks a post changes only to -1 (a hit fighter).
    out = np.empty(len(pool), dtype=pool.dtype)
    n = 0
    for row in pool:
        if post[row] == flat and faction[row] == f and status[row] == FIT:
            out[n] = row
            n += 1
    return out[:n].copy()


@kernel
def _militia_targets(posted, faction, post, is_militia, control, contested_weight, grouped):  # pragma: no cover
    # `TargetPicker.of_militias`: the pool, the posted rows of militia fighters, and their posts
    # (a copy); their weights w (contested_weight where the control of their post, in the flat
    # `control`, is CONTESTED, else 1.0), p = w / np.sum(w) and the cumulative distribution as
    # np.cumsum(p) / its last entry; the span and (if grouped, else empty) the rows and keys
    # sorted into groups, as `TargetPicker.__init__` makes them.
    pool = np.empty(len(posted), dtype=np.int64)
    n = 0
    for i in posted:
        if is_militia[faction[i]]:
            pool[n] = i
            n += 1
    pool = pool[:n].copy()
    posts = np.empty(n, dtype=np.int64)
    w = np.empty(n)
    span = 1
    for j in range(n):
        posts[j] = post[pool[j]]
        w[j] = contested_weight if control[posts[j]] == CONTESTED else 1.0
        span = max(span, posts[j] + 1)
    total = numpy_sum(w)
    cdf = np.empty(n)
    for j in range(n):
        p = w[j] / total
        cdf[j] = p if j == 0 else cdf[j - 1] + p
    if n:
        last = cdf[n - 1]
        for j in range(n):
            cdf[j] /= last
    if not grouped:
        return pool, posts, cdf, span, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    keys = np.empty(n, dtype=np.int64)
    n_keys = 0
    for j in range(n):
        keys[j] = faction[pool[j]] * span + posts[j]
        n_keys = max(n_keys, keys[j] + 1)
    rows, sorted_keys = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    _group(pool, keys, n_keys, rows, sorted_keys)
    return pool, posts, cdf, span, rows, sorted_keys


@kernel
def _group(pool, keys, n_keys, rows, sorted_keys):  # pragma: no cover - compiled
    # Stable counting sort of the pool by key (keys >= 0): where each key's run starts, then
    # each row, in pool order, into the next free place of its run.
    start = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(len(keys)):
        start[keys[i] + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    for i in range(len(keys)):
        k = keys[i]
        rows[start[k]] = pool[i]
        sorted_keys[start[k]] = k
        start[k] += 1


def step(world: World, rules: Rules, rng: np.random.Generator) -> None:
    """Grow the insurgent cells on today's rivalry, then make today's attacks."""
    if world.insurgent is None:
        return
    ins = rules.insurgency
    world.insurgent_cells = insurgent_growth(
        world.insurgent_cells,
        world.today.clashes,
        world.n_rival_contested,
        ins.base_growth_per_day,
        ins.growth_per_clash,
        ins.growth_per_contested_cell,
        ins.decay_per_day,
        ins.max_cells,
        n_casualties=world.today.clash_casualties,
        per_casualty=ins.growth_per_casualty,
    )
    n_attacks = int(rng.poisson(world.insurgent_cells * ins.attack_rate))
    if n_attacks == 0:
        return
    r = world.recruits
    # Groups of fighters per (faction, cell) cost more to sort than a few scans of the pool
    pick = TargetPicker.of_militias(world, ins.contested_target_weight, grouped=n_attacks > GROUPED_ABOVE_ATTACKS)
    if pick is None:  # no posted militia fighter to strike
        return
    for _ in range(n_attacks):
        # The target's post this morning: r.post[target] is -1 if an earlier attack today hit it.
        target, flat = pick.draw_post(rng)
        f = int(r.faction[target])
        here = pick.still_posted(f, flat, r)
        killed, wounded = inflict(world, rules, here, int(rng.poisson(ins.attack_casualties)), f, None, rng)
        world.today.insurgent_attacks += 1
        row, col = divmod(flat, world.geo.width)
        world.event(
            "insurgent_attack",
            row=row,
            col=col,
            site=world.nearest_site_name(flat),
            side_a=world.faction_names[world.insurgent],
            side_b=world.faction_names[f],
            killed_b=killed,
            wounded_b=wounded,
        )
