"""Recruitment, defection and desertion (ODD §7.4): a multinomial logit choice among militias.

Each day a share `rules.recruitment.p_reconsider` of fit recruits reconsider. Recruit i
values civilian life at 0 and militia f at

    U_if = beta_salary log(salary_f x pay_ratio_f / civilian_income) + beta_privileges privileges_f
           + beta_exemption exempts_f liable_i + beta_alignment a_{tribe(i) f} - beta_risk risk_f
           - [member of another militia] (switching_cost + loyalty_per_year x tenure_i)

(all `rules.recruitment.*`; tenure in years). A militia is an option if it is hiring and its
influence at i's home reaches `presence_threshold`, or i already belongs to it. The choice
is logit: P(f) = exp(U_if) / sum_g exp(U_ig) over options (`logit_choice`, Gumbel-max).
Moving between militias is a defection (raising the pair's tension by
`rules.tension.gain_poaching` per defector if they are hostile), leaving one a desertion.

Sources: article §1, §9 (defection for higher salaries), §2, §6 (escaping conscription).
Random stream: "recruitment" (who reconsiders, then the Gumbel noise).
"""

from __future__ import annotations

import numpy as np

from sim.schema import Rules
from sim.world import DAYS_PER_YEAR, RecruitStatus, World


def logit_choice(utilities: np.ndarray, available: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random-utility (multinomial logit) choice, one per row of (N, K) utilities; returns (N,) indices.

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
    """Closed-form logit probabilities (N, K) of (N, K) utilities over available options."""
    u = np.where(available, utilities, -np.inf)
    u = u - u.max(axis=1, keepdims=True)
    e = np.exp(u)
    return e / e.sum(axis=1, keepdims=True)


def utilities(world: World, rules: Rules, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Utilities and availability of each option for the given recruit rows.

    Returns (utilities, available), both (len(rows), F + 1): column 0 is civilian life,
    column 1 + f is militia f (see the module docstring for the equation).
    """
    rec = rules.recruitment
    r = world.recruits
    n_f = world.n_factions
    salary = world.salary * world.pay_ratio
    current = r.faction[rows]
    tribe = r.tribe[rows]
    liable = r.liable[rows].astype(float)
    u = np.zeros((len(rows), n_f + 1))
    pay_term = rec.beta_salary * np.log(np.maximum(salary, 1e-9) / rec.civilian_income_usd_month)
    u[:, 1:] = (
        pay_term[None, :]
        + rec.beta_privileges * world.privileges[None, :]
        + rec.beta_exemption * world.exempts[None, :] * liable[:, None]
        - rec.beta_risk * world.death_risk[None, :]
    )
    if len(world.alignment):
        has_tribe = tribe >= 0
        u[has_tribe, 1:] += rec.beta_alignment * world.alignment[tribe[has_tribe]]
    # Switching cost (loyalty) for leaving one's current militia, growing with tenure.
    tenure_years = (world.day - r.joined_step[rows]) / DAYS_PER_YEAR
    leave_cost = rec.switching_cost + rec.loyalty_per_year * tenure_years
    member = current >= 0
    u[member] -= leave_cost[member, None]
    u[member, 1 + current[member]] += leave_cost[member]

    # Options: civilian life always; a militia when present near home or already joined.
    home_influence = world.influence.reshape(n_f, -1)[:, r.home[rows]].T  # (n, F)
    available = np.zeros_like(u, dtype=bool)
    available[:, 0] = True
    available[:, 1:] = (home_influence >= rec.presence_threshold) & (world.is_militia & world.hiring)[None, :]
    available[member, 1 + current[member]] = True
    return u, available


def step(world: World, rules: Rules, rng: np.random.Generator) -> None:
    """Let today's reconsidering recruits choose; record joins, defections and desertions."""
    r = world.recruits
    fit = r.status == RecruitStatus.FIT
    reconsider = np.flatnonzero(fit & (rng.random(len(r)) < rules.recruitment.p_reconsider))
    if len(reconsider) == 0:
        return
    u, available = utilities(world, rules, reconsider)
    choice = logit_choice(u, available, rng) - 1  # -1 = civilian
    before = r.faction[reconsider]
    changed = choice != before
    rows, old, new = reconsider[changed], before[changed], choice[changed]
    r.faction[rows] = new
    r.joined_step[rows] = world.day
    r.post[rows] = -1  # deserters leave their post; the others are posted by deployment
    t = world.today
    np.add.at(t.joined, new[(old < 0) & (new >= 0)], 1)
    np.add.at(t.desertions, old[(old >= 0) & (new < 0)], 1)
    switch = (old >= 0) & (new >= 0)
    np.add.at(t.defections, (old[switch], new[switch]), 1)
    for a, b in zip(*np.nonzero(t.defections)):
        world.event(
            "defection",
            from_faction=world.faction_names[a],
            to_faction=world.faction_names[b],
            count=int(t.defections[a, b]),
        )
        if world.hostile[a, b]:
            lo, hi = min(a, b), max(a, b)
            world.tension[lo, hi] += rules.tension.gain_poaching * t.defections[a, b]
