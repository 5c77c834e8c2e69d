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

from sim.compiled import kernel
from sim.schema import Rules
from sim.world import FIT, KILLED, WOUNDED, World


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
    hit = rng.choice(candidates, size=casualties, replace=False)
    killed_n, _ = split_killed(casualties, rules.clashes.p_killed, rng)
    killed, wounded = hit[:killed_n], hit[killed_n:]
    r = world.recruits
    r.status[killed] = KILLED
    r.post[killed] = -1
    r.status[wounded] = WOUNDED
    r.post[wounded] = -1
    stay = rng.exponential(rules.clashes.recovery_days, size=len(wounded))
    r.recover_step[wounded] = world.day + np.ceil(stay).astype(np.int64)
    r.changed()
    world.today.killed[victim] += len(killed)
    world.today.wounded[victim] += len(wounded)
    if attacker is not None and len(world.tribe_names):
        tribes = r.tribe[killed]
        tribes = tribes[tribes >= 0]
        np.add.at(world.casualty_memory[:, attacker], tribes, 1.0)
    return len(killed), len(wounded)


def recover_wounded(world: World) -> None:
    """The wounded whose recovery day has come return fit and unposted (deployment posts them)."""
    r = world.recruits
    if _recover(r.status, r.recover_step, world.day):
        r.changed()


@kernel
def _recover(status, recover_step, day):  # pragma: no cover - compiled
    # Wounded recruits whose recovery day has come are fit again; how many.
    back = 0
    for i in range(len(status)):
        if status[i] == WOUNDED and recover_step[i] <= day:
            status[i] = FIT
            back += 1
    return back


def remember_losses(world: World, rules: Rules) -> None:
    """Update each faction's remembered daily death rate: risk += (killed/fighters - risk) / memory.

    Fighters are counted at the start of the day (today's killed added back).
    """
    memory = rules.recruitment.risk_memory_days
    counts = world.fighters_by_faction() + world.today.killed
    rate = world.today.killed / np.maximum(counts, 1)
    world.death_risk += (rate - world.death_risk) / memory
