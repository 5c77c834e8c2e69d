"""Strategic response (ODD §7.12): militias adapt their salary to their cash, arrears and losses.

Every `rules.strategy.review_days` days each militia reviews its salary (`salary_change`):

- if it owes arrears, or its cash covers fewer than `target_runway_days` days of its daily
  deficit (wage bill minus income), it cuts the salary by up to `max_salary_change`, more
  the shorter the runway;
- otherwise, if it has lost fighters since the last review (deaths, desertions,
  defections), it raises the salary by `loss_response` x the share lost, at most
  `max_salary_change`;
- the salary stays within [`salary_floor`, `salary_ceiling`] x the scenario's salary.

Hiring is graded by cash (`economy.hiring_share`), patronage is paid only from what a
faction can afford (`economy.affordable_courting`), and patrons top up a client that loses
fighters (`patrons.funding_topup`): together the factions' bounded strategic response.

Sources: article §9 (salaries as the means of competition: fighters defect for higher
pay), §4 (patrons' envoys arrive when losses mount). The rule's form and every value are
assumptions. Deterministic: no random stream.
"""

from __future__ import annotations

import numpy as np

from sim.processes.economy import income_today
from sim.schema import Rules
from sim.world import DAYS_PER_MONTH, World


def salary_change(
    fighters_before: float,
    fighters_now: float,
    arrears: float,
    cash: float,
    deficit_per_day: float,
    max_change: float,
    loss_response: float,
    target_runway_days: float,
) -> float:
    """Relative salary change at one review, in [-max_change, +max_change].

    A cut when arrears are owed (the full `max_change`) or the runway cash / deficit is
    below `target_runway_days` (max_change x (1 - runway / target)); otherwise a rise of
    loss_response x the share of fighters lost since the last review (0 if none was lost).
    The rise is non-decreasing in losses; the cut non-increasing in cash.
    """
    if arrears > 0:
        return -max_change
    if deficit_per_day > 0 and target_runway_days > 0:
        runway = max(cash, 0.0) / deficit_per_day
        if runway < target_runway_days:
            return -max_change * (1.0 - runway / target_runway_days)
    if fighters_before <= 0:
        return 0.0
    lost = max(0.0, (fighters_before - fighters_now) / fighters_before)
    return float(min(max_change, loss_response * lost))


def step(world: World, rules: Rules) -> None:
    """Review salaries on review days (never on day 0); remember today's fighters for the next review."""
    st = rules.strategy
    if world.day == 0 or world.day % st.review_days != 0:
        return
    counts = world.fighters_by_faction()
    site_share = world.site_shares()  # the same for every militia (nothing below changes it)
    # Python numbers, not numpy scalars: the same float64 operations at a fraction of the cost
    # (counts below 2**53 convert to float exactly, as numpy converts them).
    fighters = counts.tolist()
    for f in np.flatnonzero(world.is_militia).tolist():
        salary = float(world.salary[f])
        cost = fighters[f] * salary / DAYS_PER_MONTH
        deficit = cost - income_today(world, rules, f, counts, site_share)
        change = salary_change(
            float(world.fighters_at_review[f]),
            fighters[f],
            float(world.arrears[f]),
            float(world.budget[f]),
            deficit,
            st.max_salary_change,
            st.loss_response,
            st.target_runway_days,
        )
        s0 = float(world.initial_salary[f])
        # np.clip of one float (a bound replaces it only where it lies strictly beyond), as
        # Python's max and min pick: the first argument unless the second is strictly larger
        # (smaller). The bounds are finite (the schema's).
        new = min(max(salary * (1.0 + change), st.salary_floor * s0), st.salary_ceiling * s0)
        if new != salary:
            world.event(
                "salary_review",
                faction=world.faction_names[f],
                salary_before=round(salary, 2),
                salary_after=round(new, 2),
            )
        world.salary[f] = new
        world.fighters_at_review[f] = fighters[f]
