"""Recruitment, defection and desertion (ODD §7.4): nested logit, civilian life or fighting, then which militia.

Each day a share `rules.recruitment.p_reconsider` of fit recruits reconsider. Recruit i
values civilian life at U_i0 = civilian_attachment and militia f at

    U_if = beta_salary log(salary_f x pay_ratio_f / civilian_income) + beta_privileges privileges_f
           + beta_exemption exempts_f liable_i + beta_alignment a_{tribe(i) f} - beta_risk annual_risk_f
           + log(hiring_f)                                   (if i is not already in f)
           - [member of a militia and the option is not it] (switching_cost + loyalty_per_year x tenure_i)

(all `rules.recruitment.*`; tenure in years; annual_risk_f = 1 - (1 - daily death rate)^365
from the militia's remembered losses, so 0.1 means one fighter in ten killed a year;
hiring_f the share of applicants f takes, `economy.hiring_share`). Leaving a militia for
civilian life costs the switching cost too. A militia is an option if its influence at
i's home reaches `presence_threshold` and it takes applicants, or i already belongs to it.

The choice is a nested logit (McFadden 1978) with the militias in one nest of scale
lambda = `nest_scale`: i fights with probability exp(lambda IV) / (exp(U_i0) + exp(lambda IV)),
IV = log sum_f exp(U_if / lambda) over its options, and then joins f with probability
exp(U_if / lambda) / sum_g exp(U_ig / lambda). With lambda < 1 the militias are closer
substitutes for one another than for civilian life: a pay rise draws fighters from the
rival more than from the civilian pool. Sampled with Gumbel noise in both stages
(`nested_choice`). Moving between militias is a defection (raising the pair's tension by
`rules.tension.gain_poaching` per defector if they are hostile), leaving one a desertion.

Sources: article §1, §9 (defection for higher salaries), §2, §6 (escaping conscription).
Random stream: "recruitment" (who reconsiders, by geometric skips: `sim.compiled.bernoulli_rows`;
then the Gumbel noise of both stages).
"""

from __future__ import annotations

import math

import numpy as np

from sim.compiled import (
    drawn_bernoulli_rows,
    drawn_gumbel,
    exp,
    generator_addresses,
    generator_at,
    kernel,
    log,
    numpy_max,
    numpy_sum,
    power,
    skip_plan,
)
from sim.schema import Rules
from sim.world import DAYS_PER_YEAR, FIT, World, census_add


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


def nested_choice(
    utilities: np.ndarray, available: np.ndarray, nest_scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Nested logit choice per row of (N, 1 + K) utilities: column 0 civilian life, columns 1.. militias.

    Returns (N,) indices. Stage 1 draws civilian life against the militia nest with Gumbel
    noise on U_0 and on lambda x IV; stage 2 takes the best militia by U / lambda plus Gumbel
    noise. For the same draws, raising a militia's utility raises IV and that militia's
    stage-2 score only, so nobody who chose it turns away and others may come to it: its
    share, and so defection to it, is monotone path by path (raising IV may also draw some
    civilians to other militias). Probabilities: `nested_probabilities`.
    """
    utilities = np.ascontiguousarray(utilities, dtype=np.float64)
    available = np.ascontiguousarray(available, dtype=np.bool_)
    # Both stages' noise drawn first: the scores below draw nothing, so the draws are the same.
    noise = rng.gumbel(size=(len(utilities), 2))
    noise2 = rng.gumbel(size=(len(utilities), utilities.shape[1] - 1))
    return _nested_choose(utilities, available, nest_scale, noise, noise2)


@kernel
def _nested_choose(utilities, available, nest_scale, noise, noise2):  # pragma: no cover - compiled
    # `nested_choice` after its draws: the scores (`_nest_scores`), the inclusive values
    # (`_nest_inclusive`), then the choice (`_nest_choose`).
    n, k = len(utilities), utilities.shape[1] - 1
    scaled, shifted = np.empty((n, k)), np.empty((n, k))
    top, any_militia = np.empty(n), np.empty(n, dtype=np.bool_)
    _nest_scores(utilities, available, nest_scale, scaled, shifted, top, any_militia)
    inclusive = np.empty(n)
    _nest_inclusive(available, shifted, top, inclusive)
    return _nest_choose(utilities, scaled, inclusive, any_militia, nest_scale, noise, noise2)


@kernel
def _nest_inclusive(available, shifted, top, inclusive):  # pragma: no cover - compiled
    # top + log(sum exp(U / lambda - top)) over each row's available militias (columns 1.. of
    # `available`), with the C library's exp and log, as numpy's
    # top + log(exp(shifted).sum(axis=1, where=available[:, 1:])): numpy's masked sum starts
    # from 0 and adds each run of consecutive available militias summed pairwise (its masked
    # loop calls the add loop run by run). A row with no militia gets log(0) = -inf.
    n, k = shifted.shape
    grown = np.empty(k)
    for i in range(n):
        for j in range(k):
            grown[j] = math.exp(shifted[i, j])
        total = 0.0
        j = 0
        while j < k:
            if not available[i, 1 + j]:
                j += 1
                continue
            end = j
            while end < k and available[i, 1 + end]:
                end += 1
            if end - j < 8:  # numpy's pairwise sum of fewer than 8 values: one by one from -0.0
                run = -0.0
                for m in range(j, end):
                    run += grown[m]
            else:  # 0.0 + the pairwise sum: the same, the values being exponentials (never -0.0)
                run = numpy_sum(grown[j:end])
            total += run
            j = end
        inclusive[i] = top[i] + math.log(total)


@kernel
def _nest_scores(utilities, available, nest_scale, scaled, shifted, top, any_militia):  # pragma: no cover
    # U / lambda where available (-inf elsewhere); each row's largest (numpy's max: NaN if any;
    # 0 if no militia is available) and U / lambda less it.
    n, k = scaled.shape
    for i in range(n):
        seen = False
        for j in range(k):
            if available[i, 1 + j]:
                scaled[i, j] = utilities[i, 1 + j] / nest_scale
                seen = True
            else:
                scaled[i, j] = -np.inf
        largest = numpy_max(scaled[i])
        any_militia[i] = seen
        top[i] = largest if seen else 0.0
        for j in range(k):
            shifted[i, j] = scaled[i, j] - top[i]


@kernel
def _nest_choose(utilities, scaled, inclusive, any_militia, nest_scale, noise, noise2):  # pragma: no cover
    # Stage 1: fight when lambda IV + noise beats U_0 + noise; stage 2: the first best of
    # U / lambda + noise (numpy's argmax), as a column of `utilities` (0 = civilian life).
    n, k = scaled.shape
    choice = np.zeros(n, dtype=np.int64)
    for i in range(n):
        best, arg = scaled[i, 0] + noise2[i, 0], 0
        for j in range(1, k):
            if np.isnan(best):
                break
            v = scaled[i, j] + noise2[i, j]
            if v > best or np.isnan(v):
                best, arg = v, j
        if any_militia[i] and nest_scale * inclusive[i] + noise[i, 1] > utilities[i, 0] + noise[i, 0]:
            choice[i] = arg + 1
    return choice


def nested_probabilities(utilities: np.ndarray, available: np.ndarray, nest_scale: float) -> np.ndarray:
    """Closed-form nested logit probabilities (N, 1 + K) of (N, 1 + K) utilities (column 0 civilian)."""
    scaled = np.where(available[:, 1:], utilities[:, 1:] / nest_scale, -np.inf)
    any_militia = available[:, 1:].any(axis=1)
    out = np.zeros_like(utilities, dtype=float)
    out[~any_militia, 0] = 1.0
    rows = np.flatnonzero(any_militia)
    if len(rows):
        sc = scaled[rows]
        top = sc.max(axis=1, keepdims=True)
        e = exp(sc - top)
        within = e / e.sum(axis=1, keepdims=True)
        inclusive = top[:, 0] + log(e.sum(axis=1))
        p_fight = 1.0 / (1.0 + exp(utilities[rows, 0] - nest_scale * inclusive))
        out[rows, 0] = 1.0 - p_fight
        out[rows, 1:] = p_fight[:, None] * within
    return out


def annual_risk(daily_rate: np.ndarray) -> np.ndarray:
    """Annual death risk 1 - (1 - daily)^365 of a daily death rate (both shares of fighters)."""
    # np.minimum(np.maximum(.)) is np.clip here (the sign of a zero, where they differ, cannot change 1 - x).
    return 1.0 - power(1.0 - np.minimum(np.maximum(daily_rate, 0.0), 1.0), DAYS_PER_YEAR)


def choice_probabilities(utilities: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Closed-form logit probabilities (N, K) of (N, K) utilities over available options."""
    u = np.where(available, utilities, -np.inf)
    u = u - u.max(axis=1, keepdims=True)
    e = exp(u)
    return e / e.sum(axis=1, keepdims=True)


def utilities(world: World, rules: Rules, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Utilities and availability of each option for the given recruit rows.

    Returns (utilities, available), both (len(rows), F + 1): column 0 is civilian life,
    column 1 + f is militia f (see the module docstring for the equation). Utilities of
    unavailable options are finite or -inf; only `available` ones are ever chosen.
    """
    rec = rules.recruitment
    r = world.recruits
    n_f = world.n_factions
    rows = np.asarray(rows, dtype=np.int64)
    options = world.recruit_options  # theatres: only militias of the home's theatre (spillover.restrict_recruits)
    u = np.empty((len(rows), n_f + 1))
    available = np.empty((len(rows), n_f + 1), dtype=bool)
    _utilities(
        rows, r.faction, r.tribe, r.liable, r.joined_step, r.home, world.day,
        world.salary, world.pay_ratio, world.privileges, world.exempts, world.death_risk, world.hiring,
        world.is_militia, rec.beta_salary, rec.civilian_income_usd_month, rec.beta_privileges,
        rec.beta_exemption, rec.beta_risk, rec.civilian_attachment, rec.beta_alignment, world.alignment,
        rec.switching_cost, rec.loyalty_per_year, world.influence.reshape(n_f, -1), rec.presence_threshold,
        options is not None, options if options is not None else np.zeros((0, n_f), dtype=bool),
        u, available,
    )  # fmt: skip
    return u, available


@kernel
def _militia_terms(
    salary, pay_ratio, privileges, exempts, death_risk, hiring, is_militia, beta_salary, civilian_income,
    beta_privileges, beta_exemption, beta_risk, shared, exemption, risk, hiring_term, hiring_open,
):  # fmt: skip  # pragma: no cover - compiled
    # The terms every recruit shares, per militia, as numpy computed them over the (F,) arrays:
    # beta_salary log(max(salary x pay_ratio, 1e-9) / civilian income) + beta_privileges x privileges,
    # beta_exemption x exempts, beta_risk x `annual_risk`, log(clip(hiring, 1e-12, 1)) and
    # whether a militia hires at all. np.maximum and np.minimum keep a NaN (written out below,
    # where Python's max and min would not), and math.log and math.pow are the C library's.
    for f in range(len(salary)):
        pay = salary[f] * pay_ratio[f]
        pay = pay if pay >= 1e-9 or np.isnan(pay) else 1e-9
        shared[f] = beta_salary * math.log(pay / civilian_income) + beta_privileges * privileges[f]
        exemption[f] = beta_exemption * exempts[f]
        daily = death_risk[f]
        daily = daily if daily >= 0.0 or np.isnan(daily) else 0.0
        daily = daily if daily <= 1.0 or np.isnan(daily) else 1.0
        risk[f] = beta_risk * (1.0 - math.pow(1.0 - daily, DAYS_PER_YEAR))
        h = hiring[f]
        h = h if h >= 1e-12 or np.isnan(h) else 1e-12
        h = h if h <= 1.0 or np.isnan(h) else 1.0
        hiring_term[f] = math.log(h)
        hiring_open[f] = is_militia[f] and hiring[f] > 0


@kernel
def _utilities(
    rows, faction, tribe, liable, joined_step, home, day, salary, pay_ratio, privileges, exempts, death_risk,
    hiring, is_militia, beta_salary, civilian_income, beta_privileges, beta_exemption, beta_risk, civilian,
    beta_alignment, alignment, switching_cost, loyalty_per_year, influence, presence_threshold, has_options,
    options, u, available,
):  # fmt: skip  # pragma: no cover - compiled
    # The militias' shared terms first (`_militia_terms`); then row by row, the arithmetic of the
    # equation in the module docstring in the order numpy's broadcasting did it:
    # ((shared + exemption x liable) - risk) + hiring, + alignment; a member then pays the
    # leaving cost on every option, gets it back on its own and is not re-hired there (each step
    # rounded as it was, so nothing is simplified away).
    n_f = len(salary)
    shared, exemption, risk, hiring_term = np.empty(n_f), np.empty(n_f), np.empty(n_f), np.empty(n_f)
    hiring_open = np.empty(n_f, dtype=np.bool_)
    _militia_terms(
        salary, pay_ratio, privileges, exempts, death_risk, hiring, is_militia, beta_salary, civilian_income,
        beta_privileges, beta_exemption, beta_risk, shared, exemption, risk, hiring_term, hiring_open,
    )  # fmt: skip
    for i in range(len(rows)):
        row = rows[i]
        current = faction[row]
        t = tribe[row]
        is_liable = 1.0 if liable[row] else 0.0
        u[i, 0] = civilian
        available[i, 0] = True
        for f in range(n_f):
            x = ((shared[f] + exemption[f] * is_liable) - risk[f]) + hiring_term[f]
            if t >= 0 and len(alignment):
                x += beta_alignment * alignment[t, f]
            u[i, 1 + f] = x
            ok = influence[f, home[row]] >= presence_threshold and hiring_open[f]
            if has_options:
                ok = ok and options[row, f]
            available[i, 1 + f] = ok
        if current >= 0:  # switching cost (loyalty) for leaving one's militia, growing with tenure
            leave = switching_cost + loyalty_per_year * ((day - joined_step[row]) / DAYS_PER_YEAR)
            for k in range(n_f + 1):
                u[i, k] -= leave
            u[i, 1 + current] += leave
            u[i, 1 + current] -= hiring_term[current]
            available[i, 1 + current] = True


def step(world: World, rules: Rules, rng: np.random.Generator) -> None:
    """Let today's reconsidering recruits choose; record joins, defections and desertions."""
    r = world.recruits
    rec = rules.recruitment
    n_f = world.n_factions
    options = world.recruit_options  # theatres: only militias of the home's theatre (spillover.restrict_recruits)
    t = world.today
    # The census, if known, is then counted from the choosing rows alone (taken out before the
    # choices, added back after them in `_recruitment_day`).
    census, has_census = r.census_to_update(n_f)
    # In one compiled call (`_recruitment_day`): who reconsiders, the draws of `nested_choice`,
    # then what `utilities`, `nested_choice` and `_apply_choices` compute and the tension the
    # defections add (tests/test_fast_paths.py compares it with those calls and the loop over
    # the defections).
    moved, n_pairs = _recruitment_day(
        generator_addresses(rng), len(r), *skip_plan(len(r), rec.p_reconsider),
        r.faction, r.tribe, r.liable, r.joined_step, r.home, r.post, world.day,
        world.salary, world.pay_ratio, world.privileges, world.exempts, world.death_risk, world.hiring,
        world.is_militia, rec.beta_salary, rec.civilian_income_usd_month, rec.beta_privileges,
        rec.beta_exemption, rec.beta_risk, rec.civilian_attachment, rec.beta_alignment, world.alignment,
        rec.switching_cost, rec.loyalty_per_year, world.influence.reshape(n_f, -1), rec.presence_threshold,
        options is not None, options if options is not None else _NO_OPTIONS, rec.nest_scale,
        t.joined, t.desertions, t.defections, world.hostile, world.tension, rules.tension.gain_poaching,
        r.status, census, has_census,
    )  # fmt: skip
    if not moved:
        return
    r.changed(census=census if has_census else None)
    if n_pairs:  # an event per (from, to) pair, in numpy's nonzero order (row by row)
        for a, counts in enumerate(t.defections.tolist()):
            for b, count in enumerate(counts):
                if count:
                    world.event(
                        "defection",
                        from_faction=world.faction_names[a],
                        to_faction=world.faction_names[b],
                        count=count,
                    )


_NO_OPTIONS = np.zeros((0, 0), dtype=bool)  # `recruit_options` outside theatres (never read)


@kernel
def _recruitment_day(
    addresses, n, rate, block, faction, tribe, liable, joined_step, home, post, day, salary, pay_ratio, privileges,
    exempts, death_risk, hiring, is_militia, beta_salary, civilian_income, beta_privileges, beta_exemption,
    beta_risk, civilian, beta_alignment, alignment, switching_cost, loyalty_per_year, influence,
    presence_threshold, has_options, options, nest_scale, joined, desertions, defections, hostile, tension, gain,
    status, census, has_census,
):  # fmt: skip  # pragma: no cover - compiled
    # The step's draws from the "recruitment" stream (`generator_at`), in its order, then
    # the rest of the day: who reconsiders, each recruit with probability p_reconsider by geometric
    # skips (`bernoulli_rows`, (rate, block) its `skip_plan`: about n p draws rather than one per
    # recruit), kept if fit (`_reconsidering`); if any, `nested_choice`'s two blocks of Gumbel
    # draws, (m, 2) then (m, F), one after another as `rng.gumbel(size=m (2 + F))` fills them.
    # Then, on the reconsidering rows, what the step computed after its draws (below). Returns
    # (moved, pairs), (0, 0) if nobody reconsiders.
    rng = generator_at(addresses)
    rows = _reconsidering(status, drawn_bernoulli_rows(rng, n, rate, block))
    m = len(rows)
    if m == 0:
        return 0, 0
    n_f = len(salary)
    draws = np.empty(m * (2 + n_f))
    for j in range(len(draws)):
        draws[j] = drawn_gumbel(rng, 0.0, 1.0)
    noise, noise2 = draws[: 2 * m].reshape(m, 2), draws[2 * m :].reshape(m, n_f)
    # `utilities`, `nested_choice` after its draws (less one: -1 civilian life), `_apply_choices`;
    # with `census` (if has_census) less the rows before the choices and with them after (`census_to_update`);
    # then, if anyone moved, for every nonzero count of today's defections in numpy's nonzero order
    # (row by row), the tension gain x count added to the hostile pair's (lo, hi) entry, as the
    # Python loop over them did; pairs: the (from, to) pairs with defections.
    u = np.empty((len(rows), n_f + 1))
    available = np.empty((len(rows), n_f + 1), dtype=np.bool_)
    _utilities(
        rows, faction, tribe, liable, joined_step, home, day, salary, pay_ratio, privileges, exempts, death_risk,
        hiring, is_militia, beta_salary, civilian_income, beta_privileges, beta_exemption, beta_risk, civilian,
        beta_alignment, alignment, switching_cost, loyalty_per_year, influence, presence_threshold, has_options,
        options, u, available,
    )  # fmt: skip
    choice = _nested_choose(u, available, nest_scale, noise, noise2) - 1
    if has_census:  # the rows' counts out of the census, and back in as they are after the choices
        census_add(census, rows, faction, status, -1)
    moved = _apply_choices(rows, choice, faction, joined_step, post, day, joined, desertions, defections)
    if has_census:
        census_add(census, rows, faction, status, 1)
    n_pairs = 0
    if moved:
        for a in range(defections.shape[0]):
            for b in range(defections.shape[1]):
                if defections[a, b] != 0:
                    n_pairs += 1
                    if hostile[a, b]:
                        lo, hi = min(a, b), max(a, b)
                        tension[lo, hi] += gain * defections[a, b]
    return moved, n_pairs


@kernel
def _reconsidering(status, drawn):  # pragma: no cover - compiled
    # The drawn rows (ascending) of fit recruits, members or not.
    rows = np.empty(len(drawn), dtype=np.int64)
    n = 0
    for i in drawn:
        if status[i] == FIT:
            rows[n] = i
            n += 1
    return rows[:n]


@kernel
def _apply_choices(rows, choice, faction, joined_step, post, day, joined, desertions, defections):  # pragma: no cover
    # Who changed: new faction, joined today, off their post (deserters leave it; the others
    # are posted by deployment); today's joins, desertions and defections (from, to) added up.
    moved = 0
    for i in range(len(rows)):
        row, new = rows[i], choice[i]
        old = faction[row]
        if new == old:
            continue
        moved += 1
        faction[row] = new
        joined_step[row] = day
        post[row] = -1
        if old < 0:
            joined[new] += 1
        elif new < 0:
            desertions[old] += 1
        else:
            defections[old, new] += 1
    return moved
