"""Casualties (ODD §7.1, §7.11 and the casualty part of §7.7): who is hit, recovery, remembered risk.

- `inflict`: turns a number of casualties among candidate fighters into killed and wounded
  (killed ~ Binomial(casualties, `rules.clashes.p_killed`)); the wounded return after
  ceil(Exponential(`rules.clashes.recovery_days`)) days; tribesmen killed by a militia are
  remembered by their tribe's leader (`tribal_politics`).
- `recover_wounded`: the wounded whose day has come are fit again, unposted.
- `remember_losses`: each militia's remembered daily death rate, which recruits weigh as
  risk, moves toward today's rate with memory `rules.recruitment.risk_memory_days`.

Sources: article §4 (more than 25 killed and about 40 wounded in recent clashes).
Random draws come from the calling process's stream (clashes or insurgency).
"""

from __future__ import annotations

import numpy as np

from sim.compiled import generator_addresses, generator_at, kernel
from sim.schema import Rules
from sim.world import FIT, KILLED, WOUNDED, World, add_partial_counts, census_add


def split_killed(casualties: int, p_killed: float, rng: np.random.Generator) -> tuple[int, int]:
    """Split casualties into (killed, wounded); killed ~ Binomial(casualties, p_killed)."""
    killed = int(rng.binomial(casualties, p_killed)) if casualties else 0
    return killed, casualties - killed


def inflict(
    world: World,
    rules: Rules,
    candidates: np.ndarray,
    casualties: int,
    victim: int,
    attacker: int | None,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Turn `casualties` of the recruit rows `candidates` (of faction `victim`) into killed and wounded.

    At most len(candidates) are hit, drawn without replacement. Tribesmen killed by a militia
    (`attacker` not None) are added to their tribe's casualty memory. Returns (killed, wounded).
    """
    if casualties == 0 or len(candidates) == 0:
        return 0, 0
    casualties = min(casualties, len(candidates))
    hit = sample_rows(rng, candidates, casualties)
    n_killed, n_wounded = split_killed(casualties, rules.clashes.p_killed, rng)
    stay = rng.exponential(rules.clashes.recovery_days, size=n_wounded)
    r = world.recruits
    # Tribesmen killed by a militia are remembered against it (-1: no one to remember them).
    remembered_by = attacker if attacker is not None and len(world.tribe_names) else -1
    # The census after the hit, counted from the hit alone inside `_hit` when the day's census
    # is remembered (`RecruitArrays.census_to_update`).
    census, has_census = r.census_to_update(world.n_factions)
    _hit(
        hit, n_killed, stay, world.day, r.faction, r.status, r.post, r.recover_step, r.tribe, world.casualty_memory,
        remembered_by, census, has_census,
    )  # fmt: skip
    r.changed(census=census if has_census else None)
    world.today.killed[victim] += n_killed
    world.today.wounded[victim] += n_wounded
    return n_killed, n_wounded


# numpy's Generator.choice(a, size, replace=False), without p, draws by Floyd's algorithm unless
# the population is above FLOYD_POPULATION and the sample above 1/FLOYD_CUTOFF of it (it then
# shuffles the tail of a permutation): numpy/random/_generator.pyx.
FLOYD_POPULATION, FLOYD_CUTOFF = 10000, 50


def sample_rows(rng: np.random.Generator, candidates: np.ndarray, size: int) -> np.ndarray:
    """`rng.choice(candidates, size=size, replace=False)`: the same rows, in the same order, with the same draws.

    For a Generator and a 1-D int64 array of candidates (recruit rows) where numpy takes Floyd's
    algorithm, drawn in one compiled call (`_drawn_sample`): `Generator.choice` costs about
    10 us a call around its few draws. Anything else is `rng.choice` itself.
    """
    n = len(candidates)
    if (
        isinstance(rng, np.random.Generator)
        and type(candidates) is np.ndarray
        and candidates.dtype == np.int64
        and candidates.ndim == 1
        and 0 < size <= n
        and not (n > FLOYD_POPULATION and size > n // FLOYD_CUTOFF)
    ):
        return _drawn_sample(generator_addresses(rng), candidates, size)
    return rng.choice(candidates, size=size, replace=False)


@kernel
def _drawn_sample(addresses, candidates, size):  # pragma: no cover - compiled
    # numpy's Floyd's algorithm: for j from n - size to n - 1 a draw in [0, j], taken unless
    # already taken, else j is; then the sample shuffled from its last place down to its second
    # (`_shuffle_int`, first = 1). Each draw is numpy's random_bounded_uint64(0, j), what
    # `integers(0, j + 1)` draws (none for j = 0); the sample's indices pick the candidates.
    rng = generator_at(addresses)
    n = len(candidates)
    taken = np.zeros(n, dtype=np.bool_)
    index = np.empty(size, dtype=np.int64)
    for j in range(n - size, n):
        value = rng.integers(0, j + 1)
        if taken[value]:
            value = j
        taken[value] = True
        index[j - n + size] = value
    for i in range(size - 1, 0, -1):
        k = rng.integers(0, i + 1)
        index[i], index[k] = index[k], index[i]
    out = np.empty(size, dtype=np.int64)
    for i in range(size):
        out[i] = candidates[index[i]]
    return out


@kernel
def _hit(
    hit, n_killed, stay, day, faction, status, post, recover_step, tribe, casualty_memory, attacker, census, has_census
):  # pragma: no cover - compiled
    # The first n_killed rows of `hit` are killed, the others wounded (unposted; back on day
    # day + ceil(stay)); each killed tribesman adds 1 to casualty_memory[tribe, attacker] if
    # attacker >= 0. Written in the order numpy's assignments made them (killed, then wounded).
    # With `has_census`, the hit rows are taken out of `census` before and counted back after.
    if has_census:
        census_add(census, hit, faction, status, -1)
    for i in range(n_killed):
        status[hit[i]] = KILLED
        post[hit[i]] = -1
    for i in range(n_killed, len(hit)):
        status[hit[i]] = WOUNDED
        post[hit[i]] = -1
        recover_step[hit[i]] = day + np.int64(np.ceil(stay[i - n_killed]))
    if attacker >= 0:
        for i in range(n_killed):
            if tribe[hit[i]] >= 0:
                casualty_memory[tribe[hit[i]], attacker] += 1.0
    if has_census:
        census_add(census, hit, faction, status, 1)


def recover_wounded(world: World) -> None:
    """The wounded whose recovery day has come return fit and unposted (deployment posts them).

    The same pass over the recruits counts them (`RecruitArrays.census`), remembered for the
    day's first reader, which would otherwise count them afresh.
    """
    r = world.recruits
    census = np.zeros((world.n_factions + 1, 3), dtype=np.int64)
    _recover(r.status, r.recover_step, world.day, r.faction, census)
    r.changed(census=census)


@kernel
def _recover(status, recover_step, day, faction, census):  # pragma: no cover - compiled
    # Wounded recruits whose recovery day has come are fit again; how many. `census` (zeros on
    # entry) counts every recruit by (1 + faction, status) after that, in four partial counts as
    # `sim.world` counts them (neighbouring rows often add to the same count).
    back = 0
    partial = np.zeros((4, census.size), dtype=np.int64)
    for i in range(len(status)):
        now = status[i]
        if now == WOUNDED and recover_step[i] <= day:
            now = FIT
            status[i] = FIT
            back += 1
        partial[i & 3, (faction[i] + 1) * 3 + now] += 1
    add_partial_counts(partial, census)
    return back


def remember_losses(world: World, rules: Rules) -> None:
    """Update each faction's remembered daily death rate: risk += (killed/fighters - risk) / memory.

    Fighters are counted at the start of the day (today's killed added back).
    """
    census = world.recruits.census(world.n_factions)
    # `World.fighters_by_faction`'s insurgent entry, its rounded cells (-1: no insurgents)
    insurgent, cells = (-1, 0) if world.insurgent is None else (world.insurgent, int(round(world.insurgent_cells)))
    _remember(census, world.today.killed, insurgent, cells, world.death_risk, rules.recruitment.risk_memory_days)


@kernel
def _remember(census, killed, insurgent, insurgent_cells, death_risk, memory):  # pragma: no cover - compiled
    # death_risk += (killed / max(fighters + killed, 1) - death_risk) / memory for each faction,
    # fighters its fit ones in the census (row 1 + f), the insurgents' their rounded cells; with
    # numpy's int64 and float64 operations (the int64 quotient's operands as float64).
    for f in range(len(death_risk)):
        counts = (insurgent_cells if f == insurgent else census[1 + f, FIT]) + killed[f]
        rate = killed[f] / max(counts, 1)
        death_risk[f] += (rate - death_risk[f]) / memory
