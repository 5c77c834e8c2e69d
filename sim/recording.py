"""What the model records each step: one DataCollector reporter per figure.

Reporters are module-level functions bound to a faction, site or pair with
`functools.partial`, so a model (and its collector) pickles for worker processes and Dask.
Column names are `figure.subject`: `fighters.IRGC`, `defections.NDF>IRGC`,
`tension.IRGC~NDF`, `control.albukamal`. Per-step counts (killed, defections, clashes) are
the step's own; plots and analyses take cumulative sums where they need them.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from sim.world import CONTESTED, RecruitStatus

CONTROL_LABEL_CONTESTED = "contested"
CONTROL_LABEL_NONE = "none"


def fighters(model, f: int) -> int:
    """Fit fighters of faction f (insurgents: rounded insurgent cells)."""
    return model.n_fighters(f)


def wounded_now(model, f: int) -> int:
    """Members of faction f currently wounded."""
    r = model.recruits
    return int(np.count_nonzero((r.faction == f) & (r.status == RecruitStatus.WOUNDED)))


def territory_share(model, f: int) -> float:
    """Share of passable grid cells that faction f controls (0-1)."""
    passable = model.geo.passable
    return float(np.count_nonzero((model.control == f) & passable) / max(np.count_nonzero(passable), 1))


def contested_share(model) -> float:
    """Share of passable grid cells whose control is contested (0-1)."""
    passable = model.geo.passable
    return float(np.count_nonzero((model.control == CONTESTED) & passable) / max(np.count_nonzero(passable), 1))


def budget(model, f: int) -> float:
    """Cash of faction f (USD)."""
    return float(model.world.budget[f])


def arrears(model, f: int) -> float:
    """Salaries faction f owes (USD)."""
    return float(model.world.arrears[f])


def effective_salary(model, f: int) -> float:
    """Salary recruits expect from faction f: salary x pay ratio (USD/month)."""
    return float(model.world.salary[f] * model.world.pay_ratio[f])


def offered_salary(model, f: int) -> float:
    """Salary faction f offers today, after its strategy reviews (USD/month)."""
    return float(model.world.salary[f])


def hiring(model, f: int) -> float:
    """Share of applicants faction f takes today (graded hiring, 0-1)."""
    return float(model.world.hiring[f])


def joined(model, f: int) -> int:
    """Civilians who joined faction f today."""
    return int(model.today.joined[f])


def desertions(model, f: int) -> int:
    """Members who left faction f for civilian life today."""
    return int(model.today.desertions[f])


def defections(model, a: int, b: int) -> int:
    """Members who moved from faction a to faction b today."""
    return int(model.today.defections[a, b])


def killed(model, f: int) -> int:
    """Members of faction f killed today."""
    return int(model.today.killed[f])


def wounded(model, f: int) -> int:
    """Members of faction f wounded today."""
    return int(model.today.wounded[f])


def tension(model, a: int, b: int) -> float:
    """Tension between factions a and b (index, 0 = none)."""
    return float(model.tension[a, b])


def calm(model, a: int, b: int) -> float:
    """Calm left from the latest agreement of a and b (0-1)."""
    return model.calm(a, b)


def site_control(model, s: int) -> str:
    """Who controls site s: a faction name, 'contested' or 'none'."""
    holder = int(model.site_control[s])
    if holder >= 0:
        return model.faction_names[holder]
    return CONTROL_LABEL_CONTESTED if holder == CONTESTED else CONTROL_LABEL_NONE


def alignment(model, t: int, f: int) -> float:
    """Weight of faction f in the alignment of tribe t's leader (0-1)."""
    return float(model.world.alignment[t, f])


def tally(model, name: str) -> int:
    """Today's count of one daily tally (clashes, meetings, ...)."""
    return int(getattr(model.today, name))


def insurgent_cells(model) -> float:
    """Insurgent strength (insurgent cells)."""
    return float(model.insurgent_cells)


DAILY_TALLIES = (
    "clashes",
    "clashes_at_sites",
    "meetings",
    "agreements",
    "failures",
    "escalations",
    "lootings",
    "insurgent_attacks",
    "new_headquarters",
)


def build_reporters(model) -> dict:
    """The DataCollector's model reporters for this model's factions, sites, tribes and pairs."""
    names = model.faction_names
    reporters: dict = {}
    for f, name in enumerate(names):
        reporters[f"fighters.{name}"] = partial(fighters, f=f)
        if not model.is_militia[f]:
            continue
        reporters[f"wounded_now.{name}"] = partial(wounded_now, f=f)
        reporters[f"territory.{name}"] = partial(territory_share, f=f)
        reporters[f"budget.{name}"] = partial(budget, f=f)
        reporters[f"arrears.{name}"] = partial(arrears, f=f)
        reporters[f"salary.{name}"] = partial(effective_salary, f=f)
        reporters[f"salary_offered.{name}"] = partial(offered_salary, f=f)
        reporters[f"hiring.{name}"] = partial(hiring, f=f)
        reporters[f"joined.{name}"] = partial(joined, f=f)
        reporters[f"desertions.{name}"] = partial(desertions, f=f)
        reporters[f"killed.{name}"] = partial(killed, f=f)
        reporters[f"wounded.{name}"] = partial(wounded, f=f)
    reporters["territory.contested"] = contested_share
    militias = [f for f in range(len(names)) if model.is_militia[f]]
    for a in militias:
        for b in militias:
            if a != b:
                reporters[f"defections.{names[a]}>{names[b]}"] = partial(defections, a=a, b=b)
    for a, b in model.hostile_pairs:
        if model.is_militia[a] and model.is_militia[b]:
            reporters[f"tension.{names[a]}~{names[b]}"] = partial(tension, a=a, b=b)
            reporters[f"calm.{names[a]}~{names[b]}"] = partial(calm, a=a, b=b)
    for s, site in enumerate(model.geo.site_names):
        reporters[f"control.{site}"] = partial(site_control, s=s)
    for t, tribe in enumerate(model.tribe_names):
        for f in militias:
            reporters[f"alignment.{tribe}.{names[f]}"] = partial(alignment, t=t, f=f)
    for name in DAILY_TALLIES:
        reporters[name] = partial(tally, name=name)
    if model.insurgent is not None:
        reporters["insurgent_cells"] = insurgent_cells
    return reporters
