"""The world state that the processes read and change, and its initialisation (ODD §2, §5).

`World` holds everything one run knows: what is fixed at set-up (geography, factions,
hostilities, site values) and what changes from day to day (recruit arrays, budgets and
arrears, influence, control, tension, agreements and their partitions, tribal alignment
and remembered casualties, insurgent strength, today's tally and the event log). The
process modules in `sim.processes` are functions over a `World`, so each rule can be read,
tested and changed in one file; `sim.model.CorridorModel` is the Mesa face that builds a
`World`, owns the random streams and calls the processes in ODD order.

Array shapes: F factions (militias and, if any, one insurgent faction), S named sites,
L tribal leaders (one per tribe), H x W grid cells, N recruits. Money is in US dollars.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from sim.compiled import exp, flagged_rows, kernel
from sim.geography import Geography, build_geography
from sim.schema import Scenario

NONE = -1  # "no militia" / "nobody's cell"
CONTESTED = -2  # a cell where no faction's share passes the control threshold

# Units, not behaviour: calendar conversions used where rules mix days, months and years.
DAYS_PER_MONTH = 30.4375  # mean Gregorian month: monthly salaries -> daily wage bill
DAYS_PER_YEAR = 365.0  # tenure in years, for loyalty
PAYMENT_UNIT_USD_DAY = 1000.0  # rules.tribal.weight_payments is per 1,000 USD/day of patronage


class RecruitStatus(IntEnum):
    """Health of a recruit."""

    FIT = 0
    WOUNDED = 1
    KILLED = 2


# The same codes as plain ints: comparing an array with a plain int skips the enum's
# attribute lookup (a Python call each time on Python 3.11), which hot paths do many times a day.
FIT, WOUNDED, KILLED = int(RecruitStatus.FIT), int(RecruitStatus.WOUNDED), int(RecruitStatus.KILLED)


@dataclass
class RecruitArrays:
    """State of every recruit, one row each (N rows, fixed at model start).

    While the model steps, the masks and counts below are computed once and remembered until a
    process changes the arrays (it then calls `changed`), since several processes ask for them
    each day; outside a step (`remember(False)`, the default) they are computed on every call,
    so code that writes the arrays by hand between steps needs no call.
    """

    faction: np.ndarray  # (N,) int64, militia index or NONE (civilian)
    status: np.ndarray  # (N,) int8, RecruitStatus
    tribe: np.ndarray  # (N,) int64, tribe index or -1 (outsider)
    home: np.ndarray  # (N,) int64, flat cell index of home
    post: np.ndarray  # (N,) int64, flat cell index where posted, -1 if not fighting
    liable: np.ndarray  # (N,) bool, subject to conscription
    joined_step: np.ndarray  # (N,) int64, day the current membership began
    recover_step: np.ndarray  # (N,) int64, day a wounded recruit returns
    arrive_step: np.ndarray  # (N,) int64, day a fighter reaches its post (travel, deployment)
    # Remembered masks and counts (key -> read-only array), or None when not remembering.
    _memo: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.faction)

    def remember(self, on: bool) -> None:
        """Start (True) or stop (False) remembering masks and counts; either way, forget what was remembered."""
        self._memo = {} if on else None

    def changed(self, census: np.ndarray | None = None) -> None:
        """Forget remembered masks and counts: call after writing faction, status, post or arrive_step.

        `census`: the census after the change, where the caller knows it without counting
        (`known_census` and the change's own tallies): it is remembered, so that the day's
        next reader need not count the recruits again.
        """
        if self._memo is not None:
            self._memo.clear()
            if census is not None:
                census.flags.writeable = False
                self._memo[("census", len(census) - 1)] = census

    def known_census(self, n_factions: int) -> np.ndarray | None:
        """The remembered `census(n_factions)` (read-only), or None if it is not remembered now."""
        return self._memo.get(("census", n_factions)) if self._memo else None

    def census_to_update(self, n_factions: int) -> tuple[np.ndarray, bool]:
        """(a copy of the remembered census, True), or (an empty (0, 3) array, False) if none is remembered now.

        For a kernel that changes the faction or status of a few rows: it takes them out of the
        copy (`census_add`, -1) before its change and counts them back after (+1), so that the
        census after the change is counted from those rows alone, not from every recruit; the
        caller then hands it to `changed` (None when there was none: the next reader counts).
        The empty array is never read; it gives the kernel one signature.
        """
        known = self.known_census(n_factions)
        return (_NO_CENSUS, False) if known is None else (known.copy(), True)

    def _remembered(self, key, compute) -> np.ndarray:
        memo = self._memo
        if memo is None:
            return compute()
        value = memo.get(key)
        if value is None:
            value = memo[key] = compute()
            value.flags.writeable = False
        return value

    def fighting(self) -> np.ndarray:
        """(N,) bool mask of fit recruits in a militia (read-only while remembered)."""
        return self._remembered("fighting", lambda: (self.faction >= 0) & (self.status == FIT))

    def fighting_rows(self) -> np.ndarray:
        """(n,) int64 rows of `fighting()`, ascending."""
        return self._remembered("fighting_rows", lambda: self.fighting().nonzero()[0])

    def on_post(self, day: int) -> np.ndarray:
        """(N,) bool mask of fit militia members standing at their post on `day` (not travelling)."""
        return self._remembered(
            ("on_post", day), lambda: self.fighting() & (self.post >= 0) & (self.arrive_step <= day)
        )

    def on_post_rows(self, day: int) -> np.ndarray:
        """(n,) int64 rows of `on_post(day)`, ascending.

        Fighters are a fraction of the recruits: selecting them first makes per-fighter work
        proportional to the fighters rather than to all recruits.
        """
        return self._remembered(
            ("on_post_rows", day), lambda: on_post_rows_of(self.faction, self.status, self.post, self.arrive_step, day)
        )

    def known_on_post_rows(self, day: int) -> np.ndarray | None:
        """The remembered `on_post_rows(day)` (read-only), or None if it is not remembered now."""
        return self._memo.get(("on_post_rows", day)) if self._memo is not None else None

    def remember_on_post_rows(self, day: int, rows: np.ndarray) -> None:
        """Remember `rows` as `on_post_rows(day)`, found by a caller that counted them itself (as `on_post_rows_of`)."""
        if self._memo is not None:
            rows.flags.writeable = False
            self._memo[("on_post_rows", day)] = rows

    def census(self, n_factions: int) -> np.ndarray:
        """(n_factions + 1, 3) int64 counts: row 0 civilians, row 1 + f militia f; column the `RecruitStatus`."""
        return self._remembered(("census", n_factions), lambda: _census(self.faction, self.status, n_factions))


_NO_CENSUS = np.zeros((0, 3), dtype=np.int64)  # `census_to_update` when no census is remembered (never read)


@kernel
def census_add(census, rows, faction, status, sign):  # pragma: no cover - compiled
    """Add `sign` (+1 or -1) to each row's (1 + faction, status) count of `census` (`RecruitArrays.census`)."""
    # Each row's (1 + faction, status) count changed by sign (+1 or -1).
    for i in rows:
        census[faction[i] + 1, status[i]] += sign


@kernel
def on_post_rows_of(faction, status, post, arrive_step, day):  # pragma: no cover - compiled
    """(n,) int64 rows, ascending, of fit militia members at their post on `day` (`RecruitArrays.on_post_rows`)."""
    return flagged_rows(on_post_mask(faction, status, post, arrive_step, day))


@kernel
def on_post_mask(faction, status, post, arrive_step, day):  # pragma: no cover - compiled
    """(N,) bool `RecruitArrays.on_post(day)`, in one pass without a branch (it vectorises)."""
    mask = np.empty(len(faction), dtype=np.bool_)
    for i in range(len(faction)):
        mask[i] = (faction[i] >= 0) & (status[i] == FIT) & (post[i] >= 0) & (arrive_step[i] <= day)
    return mask


@kernel
def _fighters_near(posted, faction, post, f, row, col, radius, width):  # pragma: no cover - compiled
    # The posted rows of faction f whose post is within `radius` cells (Chebyshev) of (row, col).
    rows = np.empty(len(posted), dtype=np.int64)
    n = 0
    for i in posted:
        if faction[i] == f:
            r, c = post[i] // width, post[i] % width  # posts of posted fighters are >= 0
            if abs(r - row) <= radius and abs(c - col) <= radius:
                rows[n] = i
                n += 1
    return rows[:n].copy()


@kernel
def _census(faction, status, n_factions):  # pragma: no cover - compiled
    # Recruits by (1 + faction, status): np.bincount((faction + 1) * 3 + status) as (n_factions + 1, 3).
    # Four partial counts, one per row modulo 4, added up at the end: neighbouring rows often
    # add to the same count, and each addition would otherwise wait for the one before it.
    partial = np.zeros((4, (n_factions + 1) * 3), dtype=np.int64)
    for i in range(len(faction)):
        partial[i & 3, (faction[i] + 1) * 3 + status[i]] += 1
    counts = np.zeros((n_factions + 1, 3), dtype=np.int64)
    add_partial_counts(partial, counts)
    return counts


@kernel
def add_partial_counts(partial, census):  # pragma: no cover - compiled
    """Add the (4, (F + 1) x 3) partial counts of a census pass (one per row modulo 4) into `census` (F + 1, 3)."""
    flat = census.reshape(-1)
    for k in range(4):
        for j in range(len(flat)):
            flat[j] += partial[k, j]


# The day's tallies of events, in the order the recorder records them (`sim.recording.DAILY_TALLIES`),
# then those it does not record.
RECORDED_TALLIES = (
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
TALLIES = (*RECORDED_TALLIES, "clash_casualties")  # clash_casualties: killed + wounded of both sides in clashes


class DailyTally:
    """What happened today; made anew at the start of each step and read by the recorders.

    Arrays (int64): `joined`, `desertions`, `killed`, `wounded` (F,) each, and `defections`
    (F, F) from -> to; whole-number tallies (`TALLIES`: clashes, meetings, ...) read and
    written as attributes (`world.today.clashes += 1`), kept in `counts` (their order), of
    which `recorded` is the part the recorder reads. All are views of one zeroed block, made
    with one allocation (a step makes one tally).
    """

    __slots__ = ("n_factions", "joined", "desertions", "killed", "wounded", "defections", "counts", "recorded")

    def __init__(self, n_factions: int):
        f = n_factions
        block = np.zeros(4 * f + f * f + len(TALLIES), dtype=np.int64)
        self.n_factions = f
        self.joined, self.desertions = block[:f], block[f : 2 * f]
        self.killed, self.wounded = block[2 * f : 3 * f], block[3 * f : 4 * f]
        self.defections = block[4 * f : 4 * f + f * f].reshape(f, f)
        self.counts = block[4 * f + f * f :]
        self.recorded = self.counts[: len(RECORDED_TALLIES)]

    def __repr__(self) -> str:
        tallies = ", ".join(f"{name}={getattr(self, name)}" for name in TALLIES)
        return f"DailyTally(n_factions={self.n_factions}, joined={self.joined.tolist()}, {tallies})"


def _tally(i: int) -> property:
    def get(self) -> int:
        return int(self.counts[i])

    def set(self, value: int) -> None:
        self.counts[i] = value

    return property(get, set, doc=f"today's {TALLIES[i]} (a whole number)")


for _i, _name in enumerate(TALLIES):
    setattr(DailyTally, _name, _tally(_i))


@dataclass(eq=False)
class World:
    """Fixed set-up and daily state of one run. Build it with `build_world`."""

    # --- fixed at set-up
    config: Scenario
    geo: Geography
    faction_names: list[str]
    tribe_names: list[str]
    insurgent: int | None  # index of the insurgent faction, if any
    is_militia: np.ndarray  # (F,) bool
    hostile: np.ndarray  # (F, F) bool, symmetric
    hostile_pairs: list[tuple[int, int]]  # (a, b) with a < b
    patron_of: list[str | None]  # (F,) patron name of each faction
    site_value: np.ndarray  # (S,) strategic weight
    cell_value: np.ndarray  # (H, W) strategic weight of each cell (its best site, or the background value)
    site_revenue: np.ndarray  # (S,) USD/day to whoever controls the site
    deploy_preference: np.ndarray  # (F, S) posting weight multipliers
    tribe_town_cells: list[np.ndarray]  # per tribe, flat cells of the towns where it lives
    responsiveness: np.ndarray  # (L,) 1/day
    initial_alignment: np.ndarray  # (L, F) leaders' alignment on day 0 (rows sum to 1)
    tribe_men: np.ndarray  # (L,) the tribe's men in the recruit pool (fighters and civilians) on day 0
    salary: np.ndarray  # (F,) USD/month
    privileges: np.ndarray  # (F,) index 0-1
    exempts: np.ndarray  # (F,) float 0/1: membership exempts from conscription
    posture: np.ndarray  # (F,) index 0-1
    initial_site_control: np.ndarray  # (S,) faction index, NONE or CONTESTED at step 0
    site_distance: np.ndarray  # (S, H*W) path length in cells from each site to every cell
    initial_salary: np.ndarray  # (F,) USD/month, the scenario's salary (strategy bounds are relative to it)
    initial_fighters: np.ndarray  # (F,) fit fighters on day 0 (patrons' top-up measures losses against it)
    # --- daily state
    recruits: RecruitArrays
    budget: np.ndarray  # (F,) USD
    arrears: np.ndarray  # (F,) USD owed in salaries
    pay_ratio: np.ndarray  # (F,) share of salaries actually paid, smoothed
    death_risk: np.ndarray  # (F,) smoothed daily share of its fighters killed
    income: np.ndarray  # (F,) yesterday's income, USD/day
    hiring: np.ndarray  # (F,) float 0-1, share of applicants it takes (graded hiring)
    fighters_at_review: np.ndarray  # (F,) fit fighters at the last strategy review
    hq_sites: list[list[int]]  # per faction, indices of its headquarters sites
    new_headquarters: np.ndarray  # (F,) int, headquarters opened during the run
    alignment: np.ndarray  # (L, F) each leader's weights over factions (rows sum to 1)
    site_control: np.ndarray  # (S,) faction index, NONE or CONTESTED
    influence: np.ndarray  # (F, H, W) fighter-equivalents
    share: np.ndarray  # (F, H, W) each faction's share of a cell's influence
    control: np.ndarray  # (H, W) faction index, NONE or CONTESTED
    fighter_counts: np.ndarray  # (F, H, W) posted fit fighters
    tension: np.ndarray  # (F, F), upper triangle used (a < b)
    last_agreement: np.ndarray  # (F, F) day of the latest agreement, -inf if none
    last_meeting: np.ndarray  # (F, F) day of the latest meeting, -inf if none
    partition: dict[tuple[int, int], np.ndarray | None]  # per hostile pair, site -> faction (or -1) of its agreement
    casualty_memory: np.ndarray  # (max(L, 1), F) tribesmen killed, by inflicting faction, decaying
    courting_paid: np.ndarray  # (max(L, 1), F) patronage received today, USD/day
    insurgent_cells: float = 0.0
    recruit_options: np.ndarray | None = None  # (N, F) bool, militias a recruit may join (theatres only; `spillover`)
    meeting_counter: int = 0
    n_rival_contested: int = 0  # cells where two hostile militias both have a foothold
    day: int = 0
    first_control_change: dict[str, int] = field(default_factory=dict)
    recent_clash_cells: list[tuple[int, int, int]] = field(default_factory=list)  # (day, row, col)
    events: list[dict] = field(default_factory=list)
    today: DailyTally = field(init=False)

    def __post_init__(self):
        self.today = DailyTally(self.n_factions)
        # Quantities derived from slowly changing state (headquarters, bases), each kept with
        # the state it was computed from and recomputed when that differs: name -> (key, value).
        self.derived: dict[str, tuple] = {}
        self.nearest_sites: dict[tuple[int, float], str | None] = nearest_sites_of(self.geo)  # kept, shared
        self.site_flat = self.geo.site_flat  # (S,) flat cell of each site (`Geography.site_flat`, computed once)

    # --- derived quantities

    @property
    def n_factions(self) -> int:
        """Number of factions F."""
        return len(self.faction_names)

    @property
    def militia_pairs(self) -> list[tuple[int, int]]:
        """Hostile pairs of two militias (insurgent attacks are not clashes)."""
        return [(a, b) for a, b in self.hostile_pairs if self.is_militia[a] and self.is_militia[b]]

    def base_state(self) -> dict:
        """Bases, base distances and headquarters cells, recomputed only when the headquarters changed.

        A new dict each time it is recomputed: processes keep what they derive from the bases in
        it (under keys of their own), and so recompute that too when the bases change.
        """
        # The key: the headquarters lists as they were (list equality, cheaper than building
        # tuples on every call, a few times a day) and the initial control's bytes.
        cached = self.derived.get("bases")
        if (
            cached is None
            or cached[0][0] != self.hq_sites
            or cached[0][1] != self.initial_site_control.tobytes()
        ):
            key = ([list(h) for h in self.hq_sites], self.initial_site_control.tobytes())
            bases = []
            for f in range(self.n_factions):
                held = [int(s) for s in np.flatnonzero(self.initial_site_control == f)]
                bases.append(list(dict.fromkeys([*self.hq_sites[f], *held])))
            n_s = len(self.geo.site_names)
            distance = np.full((self.n_factions, n_s), np.inf)
            site_flat = self.site_flat
            to_sites = self.site_distance[:, site_flat]  # (S, S)
            is_base = np.zeros((self.n_factions, n_s), dtype=bool)
            for f, b in enumerate(bases):
                if b:
                    distance[f] = to_sites[b].min(axis=0)
                    is_base[f, b] = True
            hq_cells = [[int(site_flat[s]) for s in self.hq_sites[f]] for f in range(self.n_factions)]
            state = {"bases": bases, "distance": distance, "is_base": is_base, "hq": hq_cells}
            # `is_base()`'s read-only view, made once (making one cost about 1 us, every day)
            state["is_base_view"] = is_base.view()
            state["is_base_view"].flags.writeable = False
            cached = self.derived["bases"] = (key, state)
        return cached[1]

    def bases(self, f: int) -> list[int]:
        """Site indices of faction f's bases: its headquarters and the sites it held on day 0."""
        return list(self.base_state()["bases"][f])

    def is_base(self) -> np.ndarray:
        """(F, S) bool: whether each site is one of each faction's bases (read-only)."""
        return self.base_state()["is_base_view"]

    def base_distance(self) -> np.ndarray:
        """(F, S) path distance in cells from each faction's nearest base to each site (inf if it has none)."""
        return self.base_state()["distance"].copy()

    def headquarters(self, f: int) -> list[int]:
        """Flat cell indices of faction f's headquarters."""
        return list(self.base_state()["hq"][f])

    def fighters_by_faction(self) -> np.ndarray:
        """(F,) int64 fit fighters per faction; the insurgents' entry is their rounded insurgent cells."""
        counts = self.recruits.census(self.n_factions)[1:, FIT].astype(np.int64)  # a copy
        if self.insurgent is not None:
            counts[self.insurgent] = int(round(self.insurgent_cells))
        return counts

    def n_fighters(self, f: int) -> int:
        """Fit fighters of faction f (insurgents: rounded insurgent cells)."""
        if f == self.insurgent:
            return int(round(self.insurgent_cells))
        r = self.recruits
        return int(np.count_nonzero((r.faction == f) & (r.status == FIT)))

    def site_shares(self) -> np.ndarray:
        """(F, S) each faction's share of the influence on each site's cell."""
        return self.share.reshape(self.n_factions, -1)[:, self.site_flat]

    def fighters_near(self, f: int, flat: int, radius: int) -> np.ndarray:
        """Rows of faction f's posted fit fighters within `radius` cells (Chebyshev) of a cell."""
        r = self.recruits
        cr, cc = divmod(flat, self.geo.width)
        # the same rows, ascending, as a scan of every recruit: today's posted rows, filtered
        return _fighters_near(r.on_post_rows(self.day), r.faction, r.post, f, cr, cc, radius, self.geo.width)

    def nearest_site_name(self, flat: int, max_cells: float = 2.0) -> str | None:
        """Name of the site nearest a cell if within `max_cells` (for event records), else None.

        Kept per (cell, max_cells): the sites never move, and events recur at the same cells;
        shared by the worlds of one map (`nearest_sites_of`).
        """
        key = (flat, max_cells)
        if key not in self.nearest_sites:
            row, col = divmod(flat, self.geo.width)
            d = np.hypot(self.geo.site_rows - row, self.geo.site_cols - col)
            i = int(np.argmin(d))
            self.nearest_sites[key] = self.geo.site_names[i] if d[i] <= max_cells else None
        return self.nearest_sites[key]

    def event(self, kind: str, **fields) -> None:
        """Append one record to the event log, stamped with today's day."""
        self.events.append({"step": self.day, "event": kind, **fields})


# `World.nearest_site_name`'s answers per map: they depend on the sites' cells and names and the
# grid's width only, and a run's events find the same cells as the runs before it on that map
# (a sweep's or a benchmark's runs in one process), where each world finding them afresh cost
# about 10 us a cell. The maps of the last few scenarios are kept.
_NEAREST_SITES: dict[tuple, dict] = {}
_NEAREST_SITES_KEPT = 8
_NEAREST_SITES_LOCK = threading.Lock()


def nearest_sites_of(geo: Geography) -> dict:
    """The (cell, max_cells) -> site name (or None) answers kept for `geo`'s sites and width (a dict to add to)."""
    rows, cols = geo.site_rows, geo.site_cols
    key = (geo.width, tuple(geo.site_names), rows.dtype.str, rows.tobytes(), cols.dtype.str, cols.tobytes())
    with _NEAREST_SITES_LOCK:
        kept = _NEAREST_SITES.get(key)
        if kept is None:
            while len(_NEAREST_SITES) >= _NEAREST_SITES_KEPT:
                del _NEAREST_SITES[next(iter(_NEAREST_SITES))]
            kept = _NEAREST_SITES[key] = {}
        return kept


# --------------------------------------------------------------------------- initialisation


def _initial_alignment(config: Scenario, names: list[str], is_militia: np.ndarray) -> np.ndarray:
    n_f = len(names)
    rows = []
    for spec in config.tribes.values():
        weights = np.array([spec.initial_alignment.get(f, 0.0) for f in names], dtype=float)
        weights[~is_militia] = 0.0
        if weights.sum() <= 0:
            weights = is_militia.astype(float)
        rows.append(weights / weights.sum() if weights.sum() > 0 else np.full(n_f, 1.0 / n_f))
    return np.array(rows) if rows else np.zeros((0, n_f))


def home_theatres(config: Scenario, geo: Geography, home: np.ndarray) -> np.ndarray:
    """(N,) int theatre code of each home cell in (N,) flat `home`: 1 + index in `config.theatres`, 0 for none.

    A cell takes the theatre of the sites on it (the first site listed with a theatre when
    several share the cell); a cell with no site, or only sites of no theatre, is 0.
    """
    code = np.zeros(geo.height * geo.width, dtype=np.int64)
    theatres = list(config.theatres)
    for name in reversed(geo.site_names):  # reversed: the first site listed on a cell wins
        theatre = config.sites[name].theatre
        if theatre is not None:
            code[int(geo.site_flat[geo.site_index(name)])] = 1 + theatres.index(theatre)
    return code[home]


def build_recruits(
    config: Scenario, geo: Geography, hq_sites: list[list[int]], rng: np.random.Generator
) -> RecruitArrays:
    """The recruit pool at step 0 (ODD §5): townspeople who would bear arms, plus outsiders.

    Each town contributes round(population x `rules.recruitment.pool_share`) recruits, each of
    a tribe drawn uniformly from the town's tribes. Each militia's initial fighters are drawn
    without replacement from the free pool (its tribes only, if it names any), weighted by
    exp(-d / `rules.recruitment.initial_placement_cells`) with d the distance in cells from
    home to its first headquarters (with theatres, a theatre militia's only from homes in its
    theatre or in none: `home_theatres`); any shortfall, plus its `initial_outsiders`, come
    as outsiders (tribe -1, not liable) living at that headquarters. A share
    `rules.recruitment.p_liable` of the local pool is liable to conscription.

    Draws from `rng` (the "setup" stream), in this order: tribes per town, fighters per
    militia, liability.
    """
    rules = config.rules.recruitment
    names = list(config.factions)
    tribe_index = {t: i for i, t in enumerate(config.tribes)}
    homes, tribes = [], []
    for name, site in config.sites.items():
        if site.kind != "town" or site.population == 0:
            continue
        n = int(round(site.population * rules.pool_share))
        flat = int(geo.site_flat[geo.site_index(name)])
        site_tribes = [tribe_index[t] for t in site.tribes] or [-1]
        homes.append(np.full(n, flat, dtype=np.int64))
        tribes.append(rng.choice(np.array(site_tribes, dtype=np.int64), size=n))
    home = np.concatenate(homes) if homes else np.zeros(0, dtype=np.int64)
    tribe = np.concatenate(tribes) if tribes else np.zeros(0, dtype=np.int64)
    faction = np.full(len(home), NONE, dtype=np.int64)

    extra_home, extra_tribe, extra_faction = [], [], []
    rows, cols = np.divmod(home, geo.width)
    home_code = home_theatres(config, geo, home) if config.theatres else None
    for index, name in enumerate(names):
        spec = config.factions[name]
        if spec.kind == "insurgent" or spec.initial_fighters + spec.initial_outsiders == 0:
            continue
        free = faction == NONE
        if spec.recruits_from_tribes:
            free &= np.isin(tribe, [tribe_index[t] for t in spec.recruits_from_tribes])
        if config.theatres and spec.theatre is not None:  # a theatre militia's men live in its theatre (ODD §7.13)
            free &= np.isin(home_code, [0, 1 + list(config.theatres).index(spec.theatre)])
        anchor = int(geo.site_flat[hq_sites[index][0]]) if hq_sites[index] else int(geo.site_flat[0])
        ar, ac = divmod(anchor, geo.width)
        distance = np.hypot(rows - ar, cols - ac)
        candidates = np.flatnonzero(free)
        n_take = min(spec.initial_fighters, len(candidates))
        if n_take:
            # A tiny placement scale overflows the division to inf: weight exp(-inf) = 0, handled below.
            with np.errstate(over="ignore"):
                w = exp(-distance[candidates] / rules.initial_placement_cells)
                if np.count_nonzero(w) < n_take:  # weights underflowed (far homes, a short placement scale)
                    near = distance[candidates]
                    w = exp(-(near - near.min()) / rules.initial_placement_cells)  # the nearest homes weigh 1
            if np.count_nonzero(w) >= n_take:
                chosen = rng.choice(candidates, size=n_take, replace=False, p=w / w.sum())
            else:  # still too few: the weighting's limit, the n_take nearest homes
                chosen = candidates[np.argsort(distance[candidates], kind="stable")[:n_take]]
            faction[chosen] = index
        shortfall = spec.initial_fighters - n_take + spec.initial_outsiders
        if shortfall:
            extra_home.append(np.full(shortfall, anchor, dtype=np.int64))
            extra_tribe.append(np.full(shortfall, -1, dtype=np.int64))
            extra_faction.append(np.full(shortfall, index, dtype=np.int64))
    if extra_home:
        home = np.concatenate([home, *extra_home])
        tribe = np.concatenate([tribe, *extra_tribe])
        faction = np.concatenate([faction, *extra_faction])
    n = len(home)
    liable = rng.random(n) < rules.p_liable
    liable[tribe < 0] = False  # outsiders are not subject to this country's conscription
    return RecruitArrays(
        faction=faction,
        status=np.zeros(n, dtype=np.int8),
        tribe=tribe,
        home=home,
        post=np.full(n, -1, dtype=np.int64),
        liable=liable,
        joined_step=np.zeros(n, dtype=np.int64),
        recover_step=np.zeros(n, dtype=np.int64),
        arrive_step=np.zeros(n, dtype=np.int64),
    )


def build_world(config: Scenario, setup_rng: np.random.Generator) -> World:
    """The world at step 0, before the initial deployment (ODD §5).

    Raises nothing for a validated scenario (`sim.scenario` checks every cross-reference).
    """
    geo = build_geography(config)
    names = list(config.factions)
    specs = [config.factions[n] for n in names]
    n_f, n_s = len(names), len(geo.site_names)
    insurgent = next((i for i, s in enumerate(specs) if s.kind == "insurgent"), None)
    is_militia = np.array([s.kind == "militia" for s in specs])
    hostile = np.zeros((n_f, n_f), dtype=bool)
    for a, b in config.hostile_pairs():
        hostile[a, b] = hostile[b, a] = True
    hostile_pairs = [(a, b) for a in range(n_f) for b in range(a + 1, n_f) if hostile[a, b]]

    hq_sites = []
    for name, spec in zip(names, specs):
        owned = [s for s, site in config.sites.items() if site.owner == name and s not in spec.headquarters]
        hq_sites.append([geo.site_index(s) for s in [*spec.headquarters, *owned]])

    site_value = np.array([config.sites[s].value for s in geo.site_names])
    cell_value = np.where(geo.passable, config.rules.tension.background_cell_value, 0.0)
    np.maximum.at(cell_value.reshape(-1), geo.site_flat, site_value)
    deploy_preference = np.ones((n_f, n_s))
    for f, spec in enumerate(specs):
        for site, weight in spec.deployment_weights.items():
            deploy_preference[f, geo.site_index(site)] = weight
    site_control = np.full(n_s, NONE, dtype=np.int64)
    for s, name in enumerate(geo.site_names):
        holder = config.sites[name].initial_control
        if holder is not None:
            site_control[s] = names.index(holder)
    tribe_names = list(config.tribes)
    tribe_town_cells = [
        np.array(
            [int(geo.site_flat[geo.site_index(s)]) for s, site in config.sites.items() if tribe in site.tribes],
            dtype=np.int64,
        )
        for tribe in tribe_names
    ]
    recruits = build_recruits(config, geo, hq_sites, setup_rng)
    alignment0 = _initial_alignment(config, names, is_militia)
    initial_fighters = np.bincount(recruits.faction[recruits.faction >= 0], minlength=n_f).astype(float)
    n_l = max(len(tribe_names), 1)
    insurgent_cells = float(specs[insurgent].initial_fighters) if insurgent is not None else 0.0
    return World(
        config=config,
        geo=geo,
        faction_names=names,
        tribe_names=tribe_names,
        insurgent=insurgent,
        is_militia=is_militia,
        hostile=hostile,
        hostile_pairs=hostile_pairs,
        patron_of=[s.patron for s in specs],
        site_value=site_value,
        cell_value=cell_value,
        site_revenue=np.array([config.sites[s].revenue_usd_day for s in geo.site_names]),
        deploy_preference=deploy_preference,
        tribe_town_cells=tribe_town_cells,
        responsiveness=np.array([config.tribes[t].responsiveness for t in tribe_names]),
        salary=np.array([s.salary_usd_month for s in specs], dtype=float),
        privileges=np.array([s.privileges for s in specs], dtype=float),
        exempts=np.array([s.exempts_conscription for s in specs], dtype=float),
        posture=np.array([s.posture for s in specs], dtype=float),
        initial_site_control=site_control.copy(),
        site_distance=geo.path_distances(geo.site_flat),
        initial_salary=np.array([s.salary_usd_month for s in specs], dtype=float),
        initial_fighters=initial_fighters,
        recruits=recruits,
        budget=np.array([s.initial_budget_usd for s in specs], dtype=float),
        arrears=np.zeros(n_f),
        pay_ratio=np.ones(n_f),
        death_risk=np.zeros(n_f),
        income=np.zeros(n_f),
        hiring=np.ones(n_f),
        fighters_at_review=initial_fighters.copy(),
        hq_sites=hq_sites,
        new_headquarters=np.zeros(n_f, dtype=np.int64),
        alignment=alignment0.copy(),
        initial_alignment=alignment0,
        tribe_men=np.bincount(recruits.tribe[recruits.tribe >= 0], minlength=len(tribe_names)).astype(float),
        site_control=site_control,
        influence=np.zeros((n_f, geo.height, geo.width)),
        share=np.zeros((n_f, geo.height, geo.width)),
        control=np.full((geo.height, geo.width), NONE, dtype=np.int64),
        fighter_counts=np.zeros((n_f, geo.height, geo.width)),
        tension=np.zeros((n_f, n_f)),
        last_agreement=np.full((n_f, n_f), -np.inf),
        last_meeting=np.full((n_f, n_f), -np.inf),
        partition={pair: None for pair in hostile_pairs},
        casualty_memory=np.zeros((n_l, n_f)),
        courting_paid=np.zeros((n_l, n_f)),
        insurgent_cells=insurgent_cells,
    )
