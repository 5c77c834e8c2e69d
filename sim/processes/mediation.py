"""Mediation (ODD §7.9): meetings between hostile militias, agreements, calm and partitions.

A pair of hostile militias meets every `rules.mediation.interval_days` days, or sooner when
its tension reaches `tension_threshold`, but never within `min_days_between` days of the
last meeting. Venues rotate through `venues`. A meeting ends in agreement with probability

    logit P = logit(p_success_base) + patron_alignment_weight x patrons' alignment
              + tribal_weight x tribal bridge - tension_weight x T (+ neutral_venue_weight)

(`meeting_success_probability`; the bridge is the mean of 2 min(a_la, a_lb) over tribal
leaders). An agreement cuts tension by `tension_drop`, starts a calm that halves every
`calm_half_life_days` (`calm_after_agreement`), and partitions the sites where either side
has a foothold: each goes to the side with the larger share (the first of the pair on a
tie; headquarters stay with their owner); the other side stops posting there while the
calm lasts (`deployment`). A failed meeting escalates with probability
min(1, p_escalation x the more aggressive side's posture), raising tension by
`rules.tension.gain_escalation`, else by `gain_failed_meeting`.

Sources: article §6-§7 (mediation meetings that failed), §5 (threats in a patron's name).
Random stream: "mediation" (agreement, then escalation).
"""

from __future__ import annotations

import math

import numpy as np

from sim.compiled import expit, kernel, logit, power
from sim.processes.patrons import effective_posture, patron_alignment
from sim.processes.spillover import theatre_venues
from sim.schema import Rules
from sim.world import World


def meeting_success_probability(
    p_base: float,
    patron_alignment: float,
    tribal_bridge: float,
    tension: float,
    patron_weight: float,
    tribal_weight: float,
    tension_weight: float,
    neutral_venue_bonus: float = 0.0,
) -> float:
    """Chance a meeting ends in agreement (logistic in its drivers).

    Starts from p_base at neutral patrons (alignment 0), no bridging tribal leaders, zero
    tension and a venue belonging to one side; patrons with the same aims (+1), tribal
    leaders tied to both sides and a neutral venue raise it, tension lowers it. The drivers
    add to the log-odds, so they multiply the odds: p_base 0 stays 0 and p_base 1 stays 1
    whatever they are (the logistic's ends; the weights are finite, at most 50).
    """
    p_base = float(p_base)
    if p_base <= 0.0 or p_base >= 1.0:  # log-odds -inf or +inf: no finite driver moves them
        return 0.0 if p_base <= 0.0 else 1.0
    z = (
        logit(p_base)
        + patron_weight * patron_alignment
        + tribal_weight * tribal_bridge
        - tension_weight * tension
        + neutral_venue_bonus
    )
    return expit(float(z))


@kernel
def compiled_calm(since, half, half_life):  # pragma: no cover - compiled
    """`calm_after_agreement(since, half_life)` for compiled callers (conflict's day, the recorder).

    `half` is 0.5, passed in so that 0.5 ** x stays the C library's pow (a constant base could
    be rewritten into another function by the compiler).
    """
    return math.pow(half, since / half_life) if np.isfinite(since) and since >= 0 else 0.0


def calm_after_agreement(days_since: float, half_life_days: float) -> float:
    """Calm left from an agreement: 1 on the day it is made, halving every half-life (0 if none)."""
    if not math.isfinite(days_since) or days_since < 0:  # (math's: numpy's isfinite costs more than the rest)
        return 0.0
    return power(0.5, float(days_since) / half_life_days)  # Python's division: a tiny half-life gives inf, no warning


def tribal_bridge(alignment: np.ndarray, a: int, b: int) -> float:
    """How much the tribal leaders (L, F) are tied to both a and b: mean of 2 min(w_a, w_b), in 0..1."""
    if alignment.size == 0:
        return 0.0
    return float(np.mean(2.0 * np.minimum(alignment[:, a], alignment[:, b])))


def calm(world: World, rules: Rules, a: int, b: int) -> float:
    """Today's calm (0..1) between a and b from their latest agreement."""
    return calm_after_agreement(world.day - world.last_agreement[a, b], rules.mediation.calm_half_life_days)


def partition_sites(world: World, rules: Rules, a: int, b: int) -> np.ndarray:
    """(S,) who gets each site in an agreement between a and b: a, b, or -1 (neither has a foothold)."""
    site_share = world.site_shares()
    threshold = rules.influence.foothold_share
    present = (site_share[a] >= threshold) | (site_share[b] >= threshold)
    present[world.hq_sites[a] + world.hq_sites[b]] = False  # each keeps its headquarters
    return np.where(present, np.where(site_share[a] >= site_share[b], a, b), -1)


def step(world: World, rules: Rules, rng: np.random.Generator) -> None:
    """Hold today's due meetings, in pair order, and record their outcomes."""
    med = rules.mediation
    for a, b in world.militia_pairs:
        since = world.day - world.last_meeting[a, b]
        due = world.day % med.interval_days == 0 or world.tension[a, b] >= med.tension_threshold
        if not due or since < med.min_days_between:
            continue
        world.last_meeting[a, b] = world.day
        venues = theatre_venues(world, med.venues, a, b)  # all of them unless the scenario has theatres
        venue = venues[world.meeting_counter % len(venues)] if venues else None
        world.meeting_counter += 1
        neutral = venue is not None and world.config.sites[venue].kind == "venue"
        p_success = meeting_success_probability(
            med.p_success_base,
            patron_alignment(world, a, b),
            tribal_bridge(world.alignment, a, b),
            world.tension[a, b],
            med.patron_alignment_weight,
            med.tribal_weight,
            med.tension_weight,
            neutral_venue_bonus=med.neutral_venue_weight if neutral else 0.0,
        )
        tension_before = float(world.tension[a, b])
        world.today.meetings += 1
        partition = None
        if rng.random() < p_success:
            outcome = "agreement"
            world.tension[a, b] *= 1.0 - med.tension_drop
            world.last_agreement[a, b] = world.day
            world.today.agreements += 1
            world.partition[(a, b)] = partition_sites(world, rules, a, b)
            partition = ";".join(
                f"{world.geo.site_names[s]}={world.faction_names[f]}"
                for s, f in enumerate(world.partition[(a, b)])
                if f >= 0
            )
        else:
            # Posture already carries a patron's green light (effective_posture).
            posture = max(effective_posture(world, rules, a), effective_posture(world, rules, b))
            if rng.random() < min(1.0, med.p_escalation * posture):
                outcome = "escalation"
                world.tension[a, b] += rules.tension.gain_escalation
                world.today.escalations += 1
            else:
                outcome = "failure"
                world.tension[a, b] += rules.tension.gain_failed_meeting
                world.today.failures += 1
        world.event(
            "meeting",
            site=venue,
            side_a=world.faction_names[a],
            side_b=world.faction_names[b],
            outcome=outcome,
            p_success=round(p_success, 6),
            tension=round(tension_before, 6),
            partition=partition,
        )
