"""Spill-over between theatres (ODD §7.13): one rivalry, fought in several regions at once.

A scenario with `theatres:` places each militia in one theatre (`factions.<f>.theatre`) as a
branch of an organisation (`factions.<f>.organisation`, default its own name): the IRGC-backed
militias of Homs and of Deir ez-Zor are two factions of one organisation. Tension stays a
property of a pair of factions (`World.tension`), so the tension between the same two
organisations is tracked per theatre without any new state in the other processes.

Set-up (`setup`, once, before the initial deployment): a militia posts fighters only to the
sites of its own theatre (and to sites of no theatre): its posting preference for the sites
of other theatres is set to 0, and it opens new headquarters only there
(`may_open_headquarters`). A recruit joins or defects only to the militias of its home's
theatre and to factions of no theatre (`restrict_recruits`; its initial fighters, too, come
from homes in its theatre: `sim.world.build_recruits`), so recruitment never moves a man
between theatres.

Every day, after mediation (`step`), with s = `rules.spillover.strength`:

    rise_ab = max(0, T_ab - (1 - decay_per_day) T_ab(yesterday's end))
    T_ab   <- T_ab + s x sum of rise_cd over the pairs (c, d) of the same two organisations
                         in every other theatre

rise_ab is the day's net rise of the pair's tension from everything the day brought (contested
ground, looting, clashes, poaching, failed or escalated meetings, less what an agreement
removed); tension that spilled in is not passed on the same day. s = 0 isolates the theatres
and the step does nothing at all; the spill added is non-decreasing in s and never negative.

Patrons' funding across theatres (`client_funding_share`, read by `patrons.funding_today`): a
patron with `shared_funding: true` has one purse, `funding_usd_day`, split among its client
militias in all theatres with weights 1 + k x P_f, k = `rules.spillover.pressure_weight` and
P_f the client's summed tension with its hostile militias (yesterday's, as the economy runs
first): the shares sum to 1, so the patron's money is conserved and moves toward the theatre
under most pressure. Top-ups and the share lost on a closed supply route apply to each
client's part as before.

Sources: article §9 (the clashes are expected to spread to all areas where these militias are
present: Homs, Damascus and Aleppo), §4 and §7 (a struggle between two poles, Russia and
Iran, not a local quarrel). How strongly tension spreads is an assumption (no figure in the
article). Deterministic: no random stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.schema import Rules
from sim.world import World, home_theatres


@dataclass
class SpilloverState:
    """What the spill-over step keeps between days.

    pairs: (P, 2) int, hostile militia pairs (a < b) that have a partner pair of the same two
    organisations in another theatre; links: (P, P) float, links[p, q] = 1 when pair q's rise
    spills into pair p; last: (P,) tension of each pair at the end of the previous day.
    """

    pairs: np.ndarray
    links: np.ndarray
    last: np.ndarray


def organisation(world: World, f: int) -> str:
    """The organisation faction f belongs to (its `organisation`, else its own name)."""
    name = world.faction_names[f]
    return world.config.factions[name].organisation or name


def theatre_of(world: World, f: int) -> str | None:
    """The theatre faction f fights in, or None."""
    return world.config.factions[world.faction_names[f]].theatre


def linked_pairs(world: World) -> SpilloverState | None:
    """The pairs that spill into each other (see `SpilloverState`); None when there are none.

    Two hostile militia pairs are linked when both lie within one theatre each (both factions
    of a pair in the same theatre), the theatres differ, and they join the same two
    organisations.
    """
    keyed = []
    for a, b in world.militia_pairs:
        theatre = theatre_of(world, a)
        if theatre is None or theatre != theatre_of(world, b):
            continue
        keyed.append(((a, b), theatre, frozenset((organisation(world, a), organisation(world, b)))))
    linked = [entry for entry in keyed if any(other[2] == entry[2] and other[1] != entry[1] for other in keyed)]
    if not linked:
        return None
    n = len(linked)
    links = np.zeros((n, n))
    for p, (_, theatre_p, orgs_p) in enumerate(linked):
        for q, (_, theatre_q, orgs_q) in enumerate(linked):
            if orgs_p == orgs_q and theatre_p != theatre_q:
                links[p, q] = 1.0
    pairs = np.array([pair for pair, _, _ in linked], dtype=np.int64).reshape(n, 2)
    return SpilloverState(pairs=pairs, links=links, last=world.tension[pairs[:, 0], pairs[:, 1]].copy())


def restrict_to_theatres(world: World) -> None:
    """Set each theatre militia's posting preference for the sites of other theatres to 0."""
    config = world.config
    site_theatre = [config.sites[s].theatre for s in world.geo.site_names]
    for f, name in enumerate(world.faction_names):
        theatre = config.factions[name].theatre
        if theatre is None:
            continue
        for s, other in enumerate(site_theatre):
            if other is not None and other != theatre:
                world.deploy_preference[f, s] = 0.0


def theatre_options(world: World) -> np.ndarray:
    """(T + 1, F) bool: row 1 + t, the factions a recruit living in theatre t may join; row 0, homes of no theatre.

    A faction of no theatre (the insurgent, a militia outside the theatres) is open to all; a
    theatre's militia only to the men of its own theatre and of homes in no theatre.
    """
    theatres = list(world.config.theatres)
    mask = np.ones((len(theatres) + 1, world.n_factions), dtype=bool)
    for f in range(world.n_factions):
        theatre = theatre_of(world, f)
        if theatre is not None:
            mask[1:, f] = False
            mask[1 + theatres.index(theatre), f] = True
    return mask


def restrict_recruits(world: World) -> None:
    """Set `world.recruit_options` (N, F): each recruit may join or defect only within its home's theatre."""
    codes = home_theatres(world.config, world.geo, world.recruits.home)
    world.recruit_options = theatre_options(world)[codes]


def may_open_headquarters(world: World, f: int, s: int) -> bool:
    """Whether faction f may open a headquarters at site s: always without theatres; else s in f's theatre or none."""
    if not world.config.theatres:
        return True
    theatre = theatre_of(world, f)
    site_theatre = world.config.sites[world.geo.site_names[s]].theatre
    return theatre is None or site_theatre is None or site_theatre == theatre


def setup(world: World) -> SpilloverState | None:
    """Prepare a world with theatres (see the module docstring); None and no change without them."""
    if not world.config.theatres:
        return None
    restrict_to_theatres(world)
    restrict_recruits(world)
    return linked_pairs(world)


def theatre_venues(world: World, venues: list[str], a: int, b: int) -> list[str]:
    """The meeting venues of pair (a, b): those in its theatre (or of no theatre) when a has a theatre.

    Without theatres, or when none of `venues` lies in the pair's theatre, all `venues`.
    """
    theatre = theatre_of(world, a) if world.config.theatres else None
    if theatre is None:
        return venues
    sites = world.config.sites
    local = [v for v in venues if sites[v].theatre in (None, theatre)]
    return local or venues


def spill(tension: np.ndarray, last: np.ndarray, links: np.ndarray, strength: float, decay: float) -> np.ndarray:
    """Tension of the linked pairs after today's spill-over: (P,) from (P,) tension, last and (P, P) links.

    tension + strength x links @ max(0, tension - (1 - decay) last). Never below `tension`;
    non-decreasing in `strength`; equal to `tension` when strength is 0 or no linked pair rose.
    """
    rise = np.maximum(tension - (1.0 - decay) * last, 0.0)
    # Written out rather than `links @ rise`: BLAS picks its kernel (and order of sums) by CPU.
    return tension + strength * (links * rise).sum(axis=1)


def step(world: World, rules: Rules, state: SpilloverState | None) -> None:
    """One day of spill-over (after mediation); does nothing without linked pairs or at strength 0."""
    strength = rules.spillover.strength
    if state is None or strength == 0:
        return
    a, b = state.pairs[:, 0], state.pairs[:, 1]
    updated = spill(world.tension[a, b], state.last, state.links, strength, rules.tension.decay_per_day)
    world.tension[a, b] = updated
    state.last = updated.copy()


def pressure(world: World, f: int) -> float:
    """Faction f's summed tension with the militias hostile to it (index >= 0)."""
    return _pressure(world.tension, world.militia_pairs, f)


def _pressure(tension: np.ndarray, militia_pairs: list[tuple[int, int]], f: int) -> float:
    total = 0.0
    for a, b in militia_pairs:  # a Python sum in pair order: the same float however often it is asked
        if f in (a, b):
            total += float(tension[a, b])
    return total


def _client_weights(world: World, patron: str) -> dict[int, float]:
    """{client militia g: 1 + k P_g} of a patron, kept until the tension or k changes (asked once per client a day)."""
    k = world.config.rules.spillover.pressure_weight
    key = (world.tension.tobytes(), k)
    cached = world.derived.get(("client_weights", patron))
    if cached is not None and cached[0] == key:
        return cached[1]
    pairs = world.militia_pairs
    clients = [g for g in range(world.n_factions) if world.patron_of[g] == patron and world.is_militia[g]]
    weights = {g: 1.0 + k * _pressure(world.tension, pairs, g) for g in clients}
    world.derived[("client_weights", patron)] = (key, weights)
    return weights


def client_funding_share(world: World, f: int) -> float:
    """Share (0-1) of its patron's `funding_usd_day` that reaches faction f (before top-up and route losses).

    1 unless the patron has `shared_funding`; then (1 + k P_f) / sum over the patron's client
    militias g of (1 + k P_g), k = `rules.spillover.pressure_weight`, P = `pressure`. The shares
    of a patron's clients sum to 1 (money is conserved); k = 0 splits evenly.
    """
    name = world.patron_of[f]
    if name is None or not world.config.patrons[name].shared_funding:
        return 1.0
    weights = _client_weights(world, name)
    if f not in weights:
        return 1.0
    return weights[f] / sum(weights.values())
