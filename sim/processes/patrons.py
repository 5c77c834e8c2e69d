"""Patron effects read by several processes: supply route, arms, green light, patrons' aims.

Patrons are parameters, not agents (ODD §2): these functions turn a faction's patron and
the state of its supply crossing into the quantities the economy, influence, clashes and
mediation use. Sources: article §5 (a patron's green light), §9 (salaries paid by patrons),
§11 (the Al-Qaim crossing and the IRGC's supply route).
"""

from __future__ import annotations

import numpy as np

from sim.compiled import kernel
from sim.processes.spillover import client_funding_share
from sim.schema import Rules
from sim.world import World


def supply_open(world: World, f: int) -> bool:
    """Whether faction f's patron supply route is open today.

    Open when the patron has a supply crossing, the scenario has not closed it, and no
    faction hostile to f controls that crossing.
    """
    name = world.patron_of[f]
    if name is None:
        return False
    patron = world.config.patrons[name]
    if patron.supply_crossing is None or not patron.supply_open:
        return False
    holder = world.site_control[world.geo.site_index(patron.supply_crossing)]
    return not (holder >= 0 and world.hostile[f, holder])


def arms_multiplier(world: World) -> np.ndarray:
    """(F,) combat strength per fighter: the patron's `arms_multiplier` while its route is open, else 1; read-only.

    Kept while the sites' control (which opens and closes the routes) is unchanged.
    """
    key = world.site_control.tobytes()
    cached = world.derived.get("arms_multiplier")
    if cached is not None and cached[0] == key and cached[1] is world.config:
        return cached[2]
    mult = [1.0] * world.n_factions
    for f, name in enumerate(world.patron_of):
        if name is not None and supply_open(world, f):
            mult[f] = world.config.patrons[name].arms_multiplier
    value = np.array(mult, dtype=np.float64)
    value.flags.writeable = False
    world.derived["arms_multiplier"] = (key, world.config, value)
    return value


def funding_today(world: World, f: int, fighters: int | None = None) -> float:
    """Patron funding reaching faction f today (USD/day).

    Base funding times (1 + top-up), where the top-up answers the client's losses
    (`funding_topup`); the share `supply_funding_share` of it travels the supply route and
    is lost while the route is closed. A patron with `shared_funding` splits its base funding
    among its clients (`spillover.client_funding_share`; 1 otherwise). `fighters`: f's fit
    fighters now, if the caller has counted them (`World.fighters_by_faction`); counted here
    otherwise, and only when the patron tops up.
    """
    name = world.patron_of[f]
    if name is None:
        return 0.0
    patron = world.config.patrons[name]
    lost = patron.supply_funding_share if (patron.supply_crossing and not supply_open(world, f)) else 0.0
    topup = 0.0  # what funding_topup gives when the patron tops up nothing, without counting fighters
    if patron.topup_per_loss > 0 and patron.topup_max_share > 0:
        fighters = world.n_fighters(f) if fighters is None else int(fighters)
        topup = funding_topup(fighters, world.initial_fighters[f], patron.topup_per_loss, patron.topup_max_share)
    return patron.funding_usd_day * client_funding_share(world, f) * (1.0 + topup) * (1.0 - lost)


def funding_by_faction(world: World, fighters: np.ndarray) -> np.ndarray:
    """(F,) `funding_today` of every faction but the insurgents (0.0), with `fighters` (F,) its fit fighters now.

    The same numbers, computed for all factions in one compiled call (`compiled_funding`) from each
    patron's settings kept per scenario (`_funding_plan`); only patrons with `shared_funding`
    ask `spillover.client_funding_share`, as `funding_today` does.
    """
    out = np.zeros(world.n_factions)
    compiled_funding(np.asarray(fighters, dtype=np.int64), *funding_inputs(world), out)
    return out


def funding_inputs(world: World) -> tuple:
    """What `compiled_funding` reads after the fighters, in its argument order (all but `out`), for today.

    For `funding_by_faction`, and for the economy's day, which calls `compiled_funding` itself.
    """
    plan = _funding_plan(world)
    share = plan["client_share"]
    if plan["shared"]:
        share = share.copy()
        for f in plan["shared"]:
            share[f] = client_funding_share(world, f)
    return (
        world.site_control, world.hostile, plan["funded"], plan["base"], plan["crossing"], plan["route_open"],
        plan["lost_share"], plan["per_loss"], plan["ceiling"],
        np.asarray(world.initial_fighters, dtype=np.float64), share,
    )  # fmt: skip


def _funding_plan(world: World) -> dict:
    """Each faction's patron settings as arrays (F,), kept per scenario: what `funding_today` reads of its patron.

    funded: not an insurgent and has a patron; base: `funding_usd_day`; crossing: the supply
    crossing's site index (-1: none); route_open: the scenario leaves the route open;
    lost_share, per_loss, ceiling: `supply_funding_share`, `topup_per_loss`, `topup_max_share`;
    client_share: 1.0 (patrons that share funding are asked daily: `shared`, their clients).
    """
    cached = world.derived.get("funding_plan")
    if cached is not None and cached[0] is world.config:
        return cached[1]
    n_f = world.n_factions
    plan = {
        "funded": np.zeros(n_f, dtype=np.bool_),
        "base": np.zeros(n_f),
        "crossing": np.full(n_f, -1, dtype=np.int64),
        "route_open": np.zeros(n_f, dtype=np.bool_),
        "lost_share": np.zeros(n_f),
        "per_loss": np.zeros(n_f),
        "ceiling": np.zeros(n_f),
        "client_share": np.ones(n_f),
        "shared": [],
    }
    for f, name in enumerate(world.patron_of):
        if name is None or world.config.factions[world.faction_names[f]].kind == "insurgent":
            continue
        patron = world.config.patrons[name]
        plan["funded"][f] = True
        plan["base"][f] = patron.funding_usd_day
        if patron.supply_crossing:
            plan["crossing"][f] = world.geo.site_index(patron.supply_crossing)
        plan["route_open"][f] = bool(patron.supply_open)
        plan["lost_share"][f] = patron.supply_funding_share
        plan["per_loss"][f] = patron.topup_per_loss
        plan["ceiling"][f] = patron.topup_max_share
        if patron.shared_funding:
            plan["shared"].append(f)
    world.derived["funding_plan"] = (world.config, plan)
    return plan


@kernel
def compiled_funding(
    fighters, site_control, hostile, funded, base, crossing, route_open, lost_share, per_loss, ceiling,
    initial_fighters, client_share, out,
):  # fmt: skip  # pragma: no cover - compiled
    """`funding_by_faction` into `out` (F,), for compiled callers (the economy's day).

    `fighters` (F,) int64 is each faction's fit fighters, the arguments after it `funding_inputs`.
    For each funded faction: `supply_open`, `funding_topup` (Python's max and min as they
    pick: max(0.0, x) is x only if x > 0.0; min(c, y) is y only if y < c), then base x client
    share x (1 + top-up) x (1 - lost), multiplied left to right; `out` is left alone elsewhere.
    """
    for f in range(len(out)):
        if not funded[f]:
            continue
        lost = 0.0
        if crossing[f] >= 0:
            holder = site_control[crossing[f]]
            if not (route_open[f] and not (holder >= 0 and hostile[f, holder])):
                lost = lost_share[f]
        topup = 0.0
        if per_loss[f] > 0 and ceiling[f] > 0 and initial_fighters[f] > 0:
            share_lost = 1.0 - fighters[f] / initial_fighters[f]
            share_lost = share_lost if share_lost > 0.0 else 0.0
            y = per_loss[f] * share_lost
            topup = y if y < ceiling[f] else ceiling[f]
        out[f] = base[f] * client_share[f] * (1.0 + topup) * (1.0 - lost)


def funding_topup(fighters: float, initial_fighters: float, per_loss: float, ceiling: float) -> float:
    """Extra funding, as a multiple of base funding, for a client that has lost fighters.

    min(ceiling, per_loss x share of its day-0 fighters lost): zero while it holds its
    ground, non-decreasing in losses, never above the ceiling. Article §4: when losses
    mount, the patrons' envoys (Iranian and Iraqi figures, Damascus officers) arrive; that
    patrons also pay more is an assumption.
    """
    if initial_fighters <= 0:
        return 0.0
    lost = max(0.0, 1.0 - fighters / initial_fighters)
    return float(min(ceiling, per_loss * lost))


def effective_posture(world: World, rules: Rules, f: int) -> float:
    """Faction f's readiness to escalate (0-1).

    Its posture, times `rules.clashes.green_light_multiplier` where its patron gives a green
    light (article §5), at most 1.
    """
    posture = world.posture[f]
    name = world.patron_of[f]
    if name is not None and world.config.patrons[name].green_light:
        posture = min(1.0, posture * rules.clashes.green_light_multiplier)
    return posture


def patron_alignment(world: World, a: int, b: int) -> float:
    """How far the patrons of a and b share aims: +1 the same patron, the scenario's value, else 0."""
    pa, pb = world.patron_of[a], world.patron_of[b]
    if pa is None or pb is None:
        return 0.0
    if pa == pb:
        return 1.0
    for entry in world.config.patron_alignment:
        if set(entry.between) == {pa, pb}:
            return entry.value
    return 0.0
