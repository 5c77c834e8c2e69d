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

from sim.processes.patrons import funding_today
from sim.schema import Rules
from sim.world import CONTESTED, DAYS_PER_MONTH, World


def income_today(
    world: World, rules: Rules, f: int, fighters: np.ndarray | None = None, site_share: np.ndarray | None = None
) -> float:
    """Faction f's income today (USD/day): patron funding, revenue held, a share of contested revenue.

    `fighters` (F,) and `site_share` (F, S), if given, are today's `World.fighters_by_faction()`
    and `World.site_shares()` (a caller asking for every faction counts them once).
    """
    income = funding_today(world, f, None if fighters is None else fighters[f])
    held = world.site_control == f
    income += float(world.site_revenue[held].sum())
    contested = world.site_control == CONTESTED
    share = rules.economy.contested_revenue_share
    if share > 0 and contested.any():
        site_share = world.site_shares() if site_share is None else site_share
        stronger = contested & (site_share[f] == site_share.max(axis=0))
        income += share * float(world.site_revenue[stronger].sum())
    return income


def hiring_share(income: float, cost: float, cash: float, runway_days: float) -> float:
    """Share (0-1) of applicants a militia takes today (graded hiring).

    1 while income covers the wage bill `cost` (USD/day) or `runway_days` is 0; otherwise
    min(1, cash / (runway_days x (cost - income))). Non-decreasing in cash and income.
    """
    deficit = cost - income
    need = runway_days * deficit  # cash that would cover the runway; may underflow to 0 for tiny values
    if deficit <= 0 or runway_days <= 0 or need <= 0:
        return 1.0
    return float(min(1.0, max(cash, 0.0) / need))


def affordable_courting(
    wanted: float, cash: float, reserve: float, income: float, cost: float, runway_days: float
) -> float:
    """Patronage (USD/day) a faction pays today: what it wants, at most its cash beyond reserve and runway.

    The runway is the cash its deficit (cost - income, if positive) needs for `runway_days`.
    Never negative, never more than `wanted`, non-decreasing in cash.
    """
    spare = cash - reserve - runway_days * max(cost - income, 0.0)
    return float(min(wanted, max(spare, 0.0)))


def smoothed_pay_ratio(previous: float, paid: float, cost: float, memory_days: float) -> float:
    """Pay ratio after today's payment: previous + (paid/cost - previous) / memory (1 if nothing is owed).

    Stays in [0, 1] when previous is, since 0 <= paid <= cost and memory >= 1 (the schema's
    lower bound of `rules.economy.pay_memory_days`; below 1 the update would overshoot).
    """
    ratio_today = 1.0 if cost == 0 else paid / cost
    return previous + (ratio_today - previous) / memory_days


def step(world: World, rules: Rules) -> None:
    """Run one day of the economy for every militia (see the module docstring for the rule)."""
    counts = world.fighters_by_faction()
    site_share = world.site_shares()
    tribes = world.tribe_names
    world.courting_paid[:] = 0.0
    for f, name in enumerate(world.faction_names):
        if world.config.factions[name].kind == "insurgent":
            continue
        income = income_today(world, rules, f, counts, site_share)
        world.budget[f] += income
        world.income[f] = income
        # Salaries first, then arrears: recruits judge a militia by what it pays.
        cost = counts[f] * world.salary[f] / DAYS_PER_MONTH
        runway = rules.recruitment.hiring_runway_days
        world.hiring[f] = hiring_share(income, cost, world.budget[f], runway)
        paid = min(cost, world.budget[f])
        world.budget[f] -= paid
        world.arrears[f] += cost - paid
        back_pay = min(world.arrears[f], world.budget[f])
        world.budget[f] -= back_pay
        world.arrears[f] -= back_pay
        world.pay_ratio[f] = smoothed_pay_ratio(world.pay_ratio[f], paid, cost, rules.economy.pay_memory_days)
        # Patronage to tribal leaders.
        spending = world.config.factions[name].spending
        if spending.courting_usd_day > 0 and tribes:
            courted = spending.courted_tribes or tribes
            budget = affordable_courting(
                spending.courting_usd_day, world.budget[f], spending.reserve_usd, income, cost, runway
            )
            world.budget[f] -= budget
            for t in courted:
                world.courting_paid[tribes.index(t), f] += budget / len(courted)
