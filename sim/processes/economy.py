"""Economy (ODD §7.2): income, salaries, arrears, graded hiring and patronage of tribes.

Each militia, every day and in faction order:

1. income = patron funding reaching it (`patrons.funding_today`) + revenue of the sites it
   controls + `rules.economy.contested_revenue_share` x revenue of contested sites where it
   has the largest influence share;
2. wage bill = fighters x salary / DAYS_PER_MONTH; salaries are paid first, what cannot be
   paid becomes arrears, and arrears are paid back from what is left;
3. graded hiring: it takes every applicant while income covers the wage bill; otherwise the
   share min(1, cash / (`rules.recruitment.hiring_runway_days` x daily deficit)) of them
   (`hiring_share`): hiring slows as cash runs down instead of stopping at once;
4. pay ratio: the share of today's wage bill paid, smoothed with memory
   `rules.economy.pay_memory_days` (p <- p + (paid/cost - p) / memory); recruits judge
   pay by salary x pay ratio;
5. patronage: `spending.courting_usd_day`, paid only from what the faction can afford
   (`affordable_courting`: cash above its reserve and above the runway its deficit needs),
   is split evenly over the courted tribes' leaders (`World.courting_paid`, read by
   tribal politics).

Sources: article §9 (salaries, the IRGC paying more), §12 and §13 (tribesmen in the NDF,
tribal notables at the meetings); that factions pay tribal leaders is an assumption.
Deterministic: no random stream.
"""

from __future__ import annotations

import numpy as np

from sim.compiled import kernel, numpy_sum
from sim.processes.patrons import compiled_funding, funding_inputs, funding_today
from sim.schema import Rules
from sim.world import CONTESTED, DAYS_PER_MONTH, FIT, World


def income_today(
    world: World, rules: Rules, f: int, fighters: np.ndarray | None = None, site_share: np.ndarray | None = None
) -> float:
    """Faction f's income today (USD/day): patron funding, revenue held, a share of contested revenue.

    `fighters` (F,) and `site_share` (F, S), if given, are today's `World.fighters_by_faction()`
    and `World.site_shares()` (a caller asking for every faction counts them once).
    """
    funding = funding_today(world, f, None if fighters is None else fighters[f])
    site_share = world.site_shares() if site_share is None else site_share
    return float(
        _income(
            funding, f, world.site_control, world.site_revenue, site_share, rules.economy.contested_revenue_share
        )
    )


@kernel
def _income(funding, f, site_control, site_revenue, site_share, contested_share):  # pragma: no cover - compiled
    # funding + revenue of the sites f holds + contested_share x revenue of the contested sites
    # where f's influence share is the largest; each revenue sum as numpy sums the picked sites.
    n_f, n_s = site_share.shape
    picked = np.empty(n_s)
    k = 0
    any_contested = False
    for s in range(n_s):
        if site_control[s] == f:
            picked[k] = site_revenue[s]
            k += 1
        any_contested = any_contested or site_control[s] == CONTESTED
    income = funding + numpy_sum(picked[:k])
    if contested_share > 0 and any_contested:
        k = 0
        for s in range(n_s):
            if site_control[s] == CONTESTED:
                top = site_share[0, s]
                for g in range(1, n_f):
                    if site_share[g, s] > top:
                        top = site_share[g, s]
                if site_share[f, s] == top:
                    picked[k] = site_revenue[s]
                    k += 1
        income += contested_share * numpy_sum(picked[:k])
    return income


# The scalar rules below are compiled so that the economy's day (`_economy_day`) calls the very
# functions the property tests check; min and max are written out as Python's builtins decide
# them (the first argument unless the second is strictly smaller / larger).


@kernel
def hiring_share(income: float, cost: float, cash: float, runway_days: float) -> float:
    """Share (0-1) of applicants a militia takes today (graded hiring).

    1 while income covers the wage bill `cost` (USD/day) or `runway_days` is 0; otherwise
    min(1, cash / (runway_days x (cost - income))). Non-decreasing in cash and income.
    """
    deficit = cost - income
    need = runway_days * deficit  # cash that would cover the runway; may underflow to 0 for tiny values
    if deficit <= 0 or runway_days <= 0 or need <= 0:
        return 1.0
    ratio = (0.0 if 0.0 > cash else cash) / need
    return ratio if ratio < 1.0 else 1.0


@kernel
def affordable_courting(
    wanted: float, cash: float, reserve: float, income: float, cost: float, runway_days: float
) -> float:
    """Patronage (USD/day) a faction pays today: what it wants, at most its cash beyond reserve and runway.

    The runway is the cash its deficit (cost - income, if positive) needs for `runway_days`.
    Never negative, never more than `wanted`, non-decreasing in cash.
    """
    deficit = cost - income
    spare = cash - reserve - runway_days * (0.0 if 0.0 > deficit else deficit)
    spare = 0.0 if 0.0 > spare else spare
    return float(spare if spare < wanted else wanted)


@kernel
def smoothed_pay_ratio(previous: float, paid: float, cost: float, memory_days: float) -> float:
    """Pay ratio after today's payment: previous + (paid/cost - previous) / memory (1 if nothing is owed).

    Stays in [0, 1] when previous is, since 0 <= paid <= cost and memory >= 1 (the schema's
    lower bound of `rules.economy.pay_memory_days`; below 1 the update would overshoot).
    """
    ratio_today = 1.0 if cost == 0 else paid / cost
    return previous + (ratio_today - previous) / memory_days


def step(world: World, rules: Rules) -> None:
    """Run one day of the economy for every militia (see the module docstring for the rule).

    One compiled call, `_economy_day`: funding per militia as `patrons.funding_by_faction`
    gives it (`funding_today` for each; its kernel, `patrons.compiled_funding`, is called inside), then,
    faction by faction, `hiring_share`, `affordable_courting` and `smoothed_pay_ratio` and the
    revenue part of `income_today` (tests/test_fast_paths.py compares it with the per-faction
    loop over them).
    """
    spend = _spending(world)
    n_f = world.n_factions
    _economy_day(
        world.recruits.census(n_f), world.site_control, world.site_revenue, world.share.reshape(n_f, -1),
        world.site_flat, rules.economy.contested_revenue_share, world.salary, DAYS_PER_MONTH,
        rules.recruitment.hiring_runway_days, rules.economy.pay_memory_days, spend["insurgent"], spend["courting"],
        spend["reserve"], spend["courted"], len(world.tribe_names) > 0,
        world.budget, world.income, world.hiring, world.arrears, world.pay_ratio, world.courting_paid,
        *funding_inputs(world),
    )  # fmt: skip


def _spending(world: World) -> dict[str, np.ndarray]:
    """Each faction's spending settings as arrays (insurgent?, courting USD/day, reserve, courted tribes' indices).

    `courted` is (F, K), -1 past each faction's own list (every tribe when it names none). Kept per
    scenario.
    """
    cached = world.derived.get("spending")
    if cached is not None and cached[0] is world.config:
        return cached[1]
    tribes = world.tribe_names
    specs = [world.config.factions[name] for name in world.faction_names]
    lists = [[tribes.index(t) for t in (spec.spending.courted_tribes or tribes)] for spec in specs]
    courted = np.full((len(specs), max([1, *map(len, lists)])), -1, dtype=np.int64)
    for f, indices in enumerate(lists):
        courted[f, : len(indices)] = indices
    value = {
        "insurgent": np.array([spec.kind == "insurgent" for spec in specs]),
        "courting": np.array([spec.spending.courting_usd_day for spec in specs], dtype=float),
        "reserve": np.array([spec.spending.reserve_usd for spec in specs], dtype=float),
        "courted": courted,
    }
    world.derived["spending"] = (world.config, value)
    return value


@kernel
def _economy_day(
    census, site_control, site_revenue, share, site_flat, contested_share, salary, days_per_month,
    runway, memory_days, insurgent, courting, reserve, courted, has_tribes,
    budget, income_out, hiring, arrears, pay_ratio, courting_paid,
    funding_site_control, hostile, funded, base, crossing, route_open, lost_share, per_loss, ceiling,
    initial_fighters, client_share,
):  # fmt: skip  # pragma: no cover - compiled
    # Each faction's fit fighters, from the (F + 1, 3) `RecruitArrays.census` (`World.fighters_by_faction`
    # but for the insurgents' entry, which nothing below reads: they are neither funded nor paid);
    # the funding, `patrons.compiled_funding` of those counts and the arguments after `courting_paid`
    # (`patrons.funding_inputs`); `World.site_shares()` (the (F, cells) shares at the sites'
    # cells), no patronage paid yet, then the module docstring's steps 1-5 for each militia in
    # faction order, through the rules above (Python's min for the payments: the first unless
    # the second is smaller).
    n_f = len(salary)
    counts = np.empty(n_f, dtype=np.int64)
    for f in range(n_f):
        counts[f] = census[1 + f, FIT]
    funding = np.zeros(n_f)
    compiled_funding(
        counts, funding_site_control, hostile, funded, base, crossing, route_open, lost_share, per_loss, ceiling,
        initial_fighters, client_share, funding,
    )  # fmt: skip
    site_share = np.empty((share.shape[0], len(site_flat)))
    for g in range(share.shape[0]):
        for s in range(len(site_flat)):
            site_share[g, s] = share[g, site_flat[s]]
    courting_paid[:] = 0.0
    for f in range(len(funding)):
        if insurgent[f]:
            continue
        income = _income(funding[f], f, site_control, site_revenue, site_share, contested_share)
        budget[f] += income
        income_out[f] = income
        # Salaries first, then arrears: recruits judge a militia by what it pays.
        cost = counts[f] * salary[f] / days_per_month
        hiring[f] = hiring_share(income, cost, budget[f], runway)
        paid = budget[f] if budget[f] < cost else cost
        budget[f] -= paid
        arrears[f] += cost - paid
        back_pay = budget[f] if budget[f] < arrears[f] else arrears[f]
        budget[f] -= back_pay
        arrears[f] -= back_pay
        pay_ratio[f] = smoothed_pay_ratio(pay_ratio[f], paid, cost, memory_days)
        if courting[f] > 0 and has_tribes:  # patronage to tribal leaders
            paid_out = affordable_courting(courting[f], budget[f], reserve[f], income, cost, runway)
            budget[f] -= paid_out
            n_courted = 0
            while n_courted < courted.shape[1] and courted[f, n_courted] >= 0:
                n_courted += 1
            for j in range(n_courted):
                courting_paid[courted[f, j], f] += paid_out / n_courted
