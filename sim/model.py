"""CorridorModel: the Mesa model that runs one scenario.

One step is one day and runs the processes of MODEL_BRIEF.md in order: economy, tribal
politics, recruitment and defection, deployment, influence and control, tension and
clashes, mediation, insurgency, recording. The rules themselves are pure functions in
`sim.mechanisms`; this module holds the state and calls them on all agents at once.

Randomness: every draw comes from one of the model's named streams (`self.streams`), each
derived from the run's seed and the stream's name, so the same scenario and seed give the
same run bit for bit, and adding draws to one mechanism does not shift the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mesa
import numpy as np
from mesa.discrete_space import OrthogonalMooreGrid

from sim import mechanisms as mech
from sim.agents import Militia, Recruit, RecruitArrays, RecruitStatus, TribalLeader
from sim.geography import Geography, build_geography
from sim.recording import build_reporters
from sim.schema import Scenario
from sim.seeding import RandomStreams

DAYS_PER_MONTH = 30.4375  # mean Gregorian month, to turn monthly salaries into daily costs
PAY_MEMORY_DAYS = 30.0  # recruits judge pay by roughly the last month's payments (assumption)
CONTEST_SHARE = 0.25  # a faction with this share of a cell's influence is "present" there (assumption)
BACKGROUND_CELL_VALUE = 0.05  # value of an ordinary cell relative to a site of value 1 (assumption)
STREAMS = (
    "setup",
    "recruitment",
    "deployment",
    "clashes",
    "looting",
    "mediation",
    "insurgency",
)


def release_model(model: mesa.Model) -> None:
    """Let a finished model be garbage-collected.

    Mesa 3.3 keeps a class-level `Agent._ids` counter keyed by model, which holds every model
    ever built (mesa issue #3179, fixed in 3.4+): without this, a sweep's memory grows with
    every run. Harmless on versions without the attribute.
    """
    ids = getattr(mesa.Agent, "_ids", None)
    if isinstance(ids, dict):
        ids.pop(model, None)


@dataclass
class DailyTally:
    """What happened today; reset at the start of each step and read by the reporters."""

    n_factions: int
    joined: np.ndarray = field(init=False)
    defections: np.ndarray = field(init=False)  # (F, F) from -> to
    desertions: np.ndarray = field(init=False)
    killed: np.ndarray = field(init=False)
    wounded: np.ndarray = field(init=False)
    clashes: int = 0
    clashes_at_sites: int = 0
    insurgent_attacks: int = 0
    meetings: int = 0
    agreements: int = 0
    failures: int = 0
    escalations: int = 0
    lootings: int = 0
    new_headquarters: int = 0

    def __post_init__(self):
        f = self.n_factions
        self.joined = np.zeros(f, dtype=np.int64)
        self.defections = np.zeros((f, f), dtype=np.int64)
        self.desertions = np.zeros(f, dtype=np.int64)
        self.killed = np.zeros(f, dtype=np.int64)
        self.wounded = np.zeros(f, dtype=np.int64)


class CorridorModel(mesa.Model):
    """Territorial influence among armed factions along a corridor of towns and crossings."""

    def __init__(self, config: Scenario, *, seed: int | None = None):
        seed = config.seed if seed is None else int(seed)
        super().__init__(rng=seed)
        self.config = config
        self.run_seed = seed
        self.streams = RandomStreams(seed, STREAMS)
        self.rules = config.rules
        self.geo: Geography = build_geography(config)
        self.grid = OrthogonalMooreGrid((self.geo.height, self.geo.width), torus=False, random=self.random)

        self.faction_names = list(config.factions)
        self.tribe_names = list(config.tribes)
        self.n_factions = len(self.faction_names)
        self.insurgent = next(
            (i for i, n in enumerate(self.faction_names) if config.factions[n].kind == "insurgent"), None
        )
        self.is_militia = np.array([config.factions[n].kind == "militia" for n in self.faction_names])
        self.hostile = self._hostility_matrix()
        self.hostile_pairs = [
            (a, b) for a in range(self.n_factions) for b in range(a + 1, self.n_factions) if self.hostile[a, b]
        ]
        self.events: list[dict] = []
        self.today = DailyTally(self.n_factions)

        self._build_militias()
        self._build_tribal_leaders()
        self._build_recruits()
        self._init_arrays()
        self._deploy(initial=True)
        self._update_influence(initial=True)

        self.datacollector = mesa.DataCollector(model_reporters=build_reporters(self))
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ construction

    def _hostility_matrix(self) -> np.ndarray:
        h = np.zeros((self.n_factions, self.n_factions), dtype=bool)
        for a, b in self.config.hostilities:
            i, j = self.faction_names.index(a), self.faction_names.index(b)
            h[i, j] = h[j, i] = True
        if self.insurgent is not None:  # insurgents are everyone's enemy
            h[self.insurgent, :] = h[:, self.insurgent] = True
            h[self.insurgent, self.insurgent] = False
        return h

    def cell_at_flat(self, flat: int):
        return self.grid[(flat // self.geo.width, flat % self.geo.width)]

    def _site_flat(self, name: str) -> int:
        i = self.geo.site_index(name)
        return int(self.geo.site_flat[i])

    def _build_militias(self) -> None:
        self.militias: list[Militia] = []
        for index, name in enumerate(self.faction_names):
            spec = self.config.factions[name]
            anchor = spec.headquarters[0] if spec.headquarters else self.geo.site_names[0]
            militia = Militia(self, index=index, name=name, spec=spec, cell=self.cell_at_flat(self._site_flat(anchor)))
            owned = [s for s, site in self.config.sites.items() if site.owner == name and s not in spec.headquarters]
            militia.hq_sites = [self.geo.site_index(s) for s in [*spec.headquarters, *owned]]
            self.militias.append(militia)
        self.patron_of = [self.config.factions[n].patron for n in self.faction_names]

    def _build_tribal_leaders(self) -> None:
        self.leaders: list[TribalLeader] = []
        n_f = self.n_factions
        for index, tribe in enumerate(self.tribe_names):
            spec = self.config.tribes[tribe]
            weights = np.array([spec.initial_alignment.get(f, 0.0) for f in self.faction_names], dtype=float)
            weights[~self.is_militia] = 0.0
            if weights.sum() <= 0:
                weights = self.is_militia.astype(float)
            alignment = weights / weights.sum() if weights.sum() > 0 else np.full(n_f, 1.0 / n_f)
            leader = TribalLeader(
                self,
                index=index,
                tribe=tribe,
                spec=spec,
                cell=self.cell_at_flat(self._site_flat(spec.seat)),
                alignment=alignment,
            )
            self.leaders.append(leader)
        # tribe -> flat cells of the towns where it lives (for "who controls the tribe's towns")
        self.tribe_town_cells = [
            np.array(
                [self._site_flat(s) for s, site in self.config.sites.items() if tribe in site.tribes], dtype=np.int64
            )
            for tribe in self.tribe_names
        ]

    def _build_recruits(self) -> None:
        """The recruit pool: townspeople who would bear arms, plus outsiders to fill militias."""
        rng = self.streams["setup"]
        rules = self.rules.recruitment
        tribe_index = {t: i for i, t in enumerate(self.tribe_names)}
        homes, tribes = [], []
        for name, site in self.config.sites.items():
            if site.kind != "town" or site.population == 0:
                continue
            n = int(round(site.population * rules.pool_share))
            flat = self._site_flat(name)
            site_tribes = [tribe_index[t] for t in site.tribes] or [-1]
            homes.append(np.full(n, flat, dtype=np.int64))
            tribes.append(rng.choice(np.array(site_tribes, dtype=np.int64), size=n))
        home = np.concatenate(homes) if homes else np.zeros(0, dtype=np.int64)
        tribe = np.concatenate(tribes) if tribes else np.zeros(0, dtype=np.int64)
        faction = np.full(len(home), mech.NONE, dtype=np.int64)

        # Initial fighters: drawn from the pool (preferring the faction's tribes and towns
        # near its headquarters); any shortfall comes as outsiders based at its headquarters
        # (e.g. non-local militias brought in by a patron).
        extra_home, extra_tribe, extra_faction = [], [], []
        rows, cols = np.divmod(home, self.geo.width)
        for militia in self.militias:
            spec = self.config.factions[militia.name]
            if militia.is_insurgent or spec.initial_fighters + spec.initial_outsiders == 0:
                continue
            free = faction == mech.NONE
            if spec.recruits_from_tribes:
                allowed = np.isin(tribe, [tribe_index[t] for t in spec.recruits_from_tribes])
                free &= allowed
            anchor = militia.headquarters[0] if militia.headquarters else int(self.geo.site_flat[0])
            ar, ac = divmod(anchor, self.geo.width)
            distance = np.hypot(rows - ar, cols - ac)
            candidates = np.flatnonzero(free)
            n_take = min(spec.initial_fighters, len(candidates))
            if n_take:
                w = np.exp(-distance[candidates] / 10.0)  # 10-cell length scale (assumption)
                chosen = rng.choice(candidates, size=n_take, replace=False, p=w / w.sum())
                faction[chosen] = militia.index
            shortfall = spec.initial_fighters - n_take + spec.initial_outsiders
            if shortfall:
                extra_home.append(np.full(shortfall, anchor, dtype=np.int64))
                extra_tribe.append(np.full(shortfall, -1, dtype=np.int64))
                extra_faction.append(np.full(shortfall, militia.index, dtype=np.int64))
        if extra_home:
            home = np.concatenate([home, *extra_home])
            tribe = np.concatenate([tribe, *extra_tribe])
            faction = np.concatenate([faction, *extra_faction])
        n = len(home)
        liable = rng.random(n) < rules.p_liable
        liable[tribe < 0] = False  # outsiders are not subject to this country's conscription
        self.recruits = RecruitArrays(
            faction=faction,
            status=np.zeros(n, dtype=np.int8),
            tribe=tribe,
            home=home,
            post=np.full(n, -1, dtype=np.int64),
            liable=liable,
            joined_step=np.zeros(n, dtype=np.int64),
            recover_step=np.zeros(n, dtype=np.int64),
        )
        self.recruit_agents = [Recruit(self, row) for row in range(n)]

    def _init_arrays(self) -> None:
        geo = self.geo
        self.site_value = np.array([self.config.sites[s].value for s in geo.site_names])
        self.cell_value = np.where(geo.passable, BACKGROUND_CELL_VALUE, 0.0)
        np.maximum.at(self.cell_value.reshape(-1), geo.site_flat, self.site_value)
        self.site_revenue = np.array([self.config.sites[s].revenue_usd_day for s in geo.site_names])
        self.deploy_preference = np.ones((self.n_factions, len(geo.site_names)))
        for f, name in enumerate(self.faction_names):
            for site, weight in self.config.factions[name].deployment_weights.items():
                self.deploy_preference[f, geo.site_index(site)] = weight
        self.site_control = np.full(len(geo.site_names), mech.NONE, dtype=np.int64)
        for s, name in enumerate(geo.site_names):
            holder = self.config.sites[name].initial_control
            if holder is not None:
                self.site_control[s] = self.faction_names.index(holder)
        self.first_control_change: dict[str, int] = {}
        self.initial_site_control = self.site_control.copy()
        self.influence = np.zeros((self.n_factions, geo.height, geo.width))
        self.share = np.zeros_like(self.influence)
        self.control = np.full((geo.height, geo.width), mech.NONE, dtype=np.int64)
        self.fighter_counts = np.zeros_like(self.influence)
        f = self.n_factions
        self.tension = np.zeros((f, f))
        self.last_agreement = np.full((f, f), -np.inf)
        self.last_meeting = np.full((f, f), -np.inf)
        self.meeting_counter = 0
        # Per hostile pair, the latest agreement's partition: which faction each site went to
        # (-1 = neither); None before any agreement.
        self.partition: dict[tuple[int, int], np.ndarray | None] = {pair: None for pair in self.hostile_pairs}
        self.casualty_memory = np.zeros((max(len(self.tribe_names), 1), f))  # tribe x inflicting faction
        self.courting_paid = np.zeros((max(len(self.tribe_names), 1), f))  # USD/day today
        insurgent_spec = (
            self.config.factions[self.faction_names[self.insurgent]] if self.insurgent is not None else None
        )
        self.insurgent_cells = float(insurgent_spec.initial_fighters) if insurgent_spec else 0.0
        self.recent_clash_cells: list[tuple[int, int, int]] = []  # (step, row, col) for maps
        self.n_rival_contested = 0  # cells where two hostile militias both have a foothold

    # ------------------------------------------------------------------ queries

    def n_fighters(self, f: int) -> int:
        if f == self.insurgent:
            return int(round(self.insurgent_cells))
        return int(np.count_nonzero((self.recruits.faction == f) & (self.recruits.status == RecruitStatus.FIT)))

    def fighters_by_faction(self) -> np.ndarray:
        r = self.recruits
        fighting = r.fighting()
        counts = np.bincount(r.faction[fighting], minlength=self.n_factions).astype(np.int64)
        if self.insurgent is not None:
            counts[self.insurgent] = int(round(self.insurgent_cells))
        return counts

    def arms_multiplier(self) -> np.ndarray:
        """Combat strength per fighter: raised while the patron's supply route is open."""
        mult = np.ones(self.n_factions)
        for f, patron_name in enumerate(self.patron_of):
            if patron_name is None:
                continue
            patron = self.config.patrons[patron_name]
            if self._supply_open(f, patron):
                mult[f] = patron.arms_multiplier
        return mult

    def _supply_open(self, f: int, patron) -> bool:
        if patron.supply_crossing is None:
            return False
        if not patron.supply_open:
            return False
        holder = self.site_control[self.geo.site_index(patron.supply_crossing)]
        return not (holder >= 0 and self.hostile[f, holder])

    def calm(self, a: int, b: int) -> float:
        days = self.steps - self.last_agreement[a, b]
        return mech.calm_after_agreement(days, self.rules.mediation.calm_half_life_days)

    def effective_posture(self, f: int) -> float:
        """Posture, raised by half where the patron gives a green light (§5), at most 1."""
        posture = self.militias[f].posture
        patron = self.patron_of[f]
        if patron is not None and self.config.patrons[patron].green_light:
            posture = min(1.0, posture * 1.5)
        return posture

    # ------------------------------------------------------------------ the step

    def step(self) -> None:
        self.today = DailyTally(self.n_factions)
        self._recover_wounded()
        self._economy()
        self._tribal_politics()
        self._recruitment()
        self._deploy()
        self._update_influence()
        self._tension_and_clashes()
        self._mediation()
        self._insurgency()
        self._remember_losses()
        self.datacollector.collect(self)

    # 1. Economy --------------------------------------------------------------------

    def _economy(self) -> None:
        rules = self.rules.economy
        counts = self.fighters_by_faction()
        tribes = self.tribe_names
        self.courting_paid[:] = 0.0
        for militia in self.militias:
            f = militia.index
            if militia.is_insurgent:
                continue
            income = 0.0
            if militia.patron is not None:
                patron = self.config.patrons[militia.patron]
                lost = (
                    patron.supply_funding_share
                    if (patron.supply_crossing and not self._supply_open(f, patron))
                    else 0.0
                )
                income += patron.funding_usd_day * (1.0 - lost)
            held = self.site_control == f
            income += float(self.site_revenue[held].sum())
            contested = self.site_control == mech.CONTESTED
            if rules.contested_revenue_share > 0 and contested.any():
                site_share = self.share.reshape(self.n_factions, -1)[f, self.geo.site_flat]
                stronger = contested & (
                    site_share == self.share.reshape(self.n_factions, -1)[:, self.geo.site_flat].max(axis=0)
                )
                income += rules.contested_revenue_share * float(self.site_revenue[stronger].sum())
            militia.budget_usd += income
            militia.income_usd = income
            # Salaries first, then arrears: recruits judge a militia by what it pays.
            cost = counts[f] * militia.salary_usd_month / DAYS_PER_MONTH
            # A militia that cannot pay its way stops taking new members (hiring freeze).
            runway = self.rules.recruitment.hiring_runway_days
            militia.hiring = income >= cost or militia.budget_usd >= runway * cost
            paid = min(cost, militia.budget_usd)
            militia.budget_usd -= paid
            militia.arrears_usd += cost - paid
            back_pay = min(militia.arrears_usd, militia.budget_usd)
            militia.budget_usd -= back_pay
            militia.arrears_usd -= back_pay
            ratio_today = 1.0 if cost == 0 else paid / cost
            militia.pay_ratio += (ratio_today - militia.pay_ratio) / PAY_MEMORY_DAYS
            # Patronage to tribal leaders.
            spending = self.config.factions[militia.name].spending
            if spending.courting_usd_day > 0 and tribes:
                courted = spending.courted_tribes or tribes
                budget = min(spending.courting_usd_day, militia.budget_usd)
                militia.budget_usd -= budget
                for t in courted:
                    self.courting_paid[tribes.index(t), f] += budget / len(courted)

    # 2. Tribal politics ------------------------------------------------------------

    def _tribal_politics(self) -> None:
        if not self.leaders:
            return
        rules = self.rules.tribal
        n_t = len(self.leaders)
        control_share = np.zeros((n_t, self.n_factions))
        flat_control = self.control.reshape(-1)
        for t, cells in enumerate(self.tribe_town_cells):
            if len(cells):
                held = flat_control[cells]
                for f in range(self.n_factions):
                    control_share[t, f] = np.mean(held == f)
        pull = (
            rules.weight_payments * self.courting_paid / 1000.0
            + rules.weight_control * control_share
            - rules.weight_casualties * self.casualty_memory[:n_t]
        )
        pull[:, ~self.is_militia] = -np.inf  # no leader aligns with insurgents
        alignment = np.array([leader.alignment for leader in self.leaders])
        responsiveness = np.array([leader.responsiveness for leader in self.leaders])
        alignment = mech.update_alignment(alignment, pull, responsiveness)
        for leader, row in zip(self.leaders, alignment):
            leader.alignment = row
        self.casualty_memory *= np.exp(-1.0 / rules.casualty_memory_days)

    # 3. Recruitment and defection --------------------------------------------------

    def recruit_utilities(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Utility of each option (column 0 = civilian life, 1+f = militia f) for given recruits."""
        rules = self.rules.recruitment
        r = self.recruits
        n_f = self.n_factions
        salary = np.array([m.effective_salary for m in self.militias])
        privileges = np.array([m.privileges for m in self.militias])
        exempts = np.array([m.exempts_conscription for m in self.militias], dtype=float)
        risk = np.array([m.death_risk for m in self.militias])
        alignment = np.array([leader.alignment for leader in self.leaders]) if self.leaders else np.zeros((0, n_f))

        current = r.faction[rows]
        tribe = r.tribe[rows]
        liable = r.liable[rows].astype(float)
        utilities = np.zeros((len(rows), n_f + 1))
        pay_term = rules.beta_salary * np.log(np.maximum(salary, 1e-9) / rules.civilian_income_usd_month)
        utilities[:, 1:] = (
            pay_term[None, :]
            + rules.beta_privileges * privileges[None, :]
            + rules.beta_exemption * exempts[None, :] * liable[:, None]
            - rules.beta_risk * risk[None, :]
        )
        if len(alignment):
            has_tribe = tribe >= 0
            utilities[has_tribe, 1:] += rules.beta_alignment * alignment[tribe[has_tribe]]
        # Switching cost (loyalty) for leaving one's current militia, growing with tenure.
        tenure_years = (self.steps - r.joined_step[rows]) / 365.0
        leave_cost = rules.switching_cost + rules.loyalty_per_year * tenure_years
        member = current >= 0
        utilities[member] -= leave_cost[member, None]
        utilities[member, 1 + current[member]] += leave_cost[member]

        # Options: civilian life always; a militia when present near home or already joined.
        home_influence = self.influence.reshape(n_f, -1)[:, r.home[rows]].T  # (n, F)
        available = np.zeros_like(utilities, dtype=bool)
        available[:, 0] = True
        hiring = np.array([m.hiring for m in self.militias])
        available[:, 1:] = (home_influence >= rules.presence_threshold) & (self.is_militia & hiring)[None, :]
        available[member, 1 + current[member]] = True
        return utilities, available

    def _recruitment(self) -> None:
        rng = self.streams["recruitment"]
        rules = self.rules.recruitment
        r = self.recruits
        fit = r.status == RecruitStatus.FIT
        reconsider = np.flatnonzero(fit & (rng.random(len(r)) < rules.p_reconsider))
        if len(reconsider) == 0:
            return
        utilities, available = self.recruit_utilities(reconsider)
        choice = mech.logit_choice(utilities, available, rng) - 1  # -1 = civilian
        before = r.faction[reconsider]
        changed = choice != before
        rows, old, new = reconsider[changed], before[changed], choice[changed]
        r.faction[rows] = new
        r.joined_step[rows] = self.steps
        r.post[rows[new < 0]] = -1
        joining = rows[new >= 0]
        r.post[joining] = -1  # posted by deployment below
        t = self.today
        np.add.at(t.joined, new[(old < 0) & (new >= 0)], 1)
        np.add.at(t.desertions, old[(old >= 0) & (new < 0)], 1)
        switch = (old >= 0) & (new >= 0)
        np.add.at(t.defections, (old[switch], new[switch]), 1)
        for a, b in zip(*np.nonzero(t.defections)):
            self._event(
                "defection",
                from_faction=self.faction_names[a],
                to_faction=self.faction_names[b],
                count=int(t.defections[a, b]),
            )
            if self.hostile[a, b]:
                lo, hi = min(a, b), max(a, b)
                self.tension[lo, hi] += self.rules.tension.gain_poaching * t.defections[a, b]

    # 4. Deployment -----------------------------------------------------------------

    def _deployment_weights(self) -> np.ndarray:
        rules = self.rules.deployment
        site_share = self.share.reshape(self.n_factions, -1)[:, self.geo.site_flat]  # (F, S)
        contested = self.site_control == mech.CONTESTED
        weights = np.empty((self.n_factions, len(self.geo.site_names)))
        for f in range(self.n_factions):
            held_by_enemy = (
                (self.site_control >= 0) & self.hostile[f, np.maximum(self.site_control, 0)] & (self.site_control != f)
            )
            # Posting weight does not grow with current share (that would let the stronger
            # side empty every contested site of its rival); it falls only where a hostile
            # faction holds the site outright and this one has no foothold (enemy cores).
            w = self.site_value * self.deploy_preference[f]
            w = w * np.where(contested, 1.0 + rules.weight_contested, 1.0)
            w = w * np.where(held_by_enemy & (site_share[f] < 0.05), 0.2, 1.0)
            hq = np.isin(np.arange(len(w)), self.militias[f].hq_sites)  # the sites, not their cells
            w = w * np.where(hq, rules.weight_headquarters, 1.0)
            # Sites an agreement gave to the other side are left while the calm lasts.
            for a, b in self.hostile_pairs:
                if f in (a, b) and self.partition[(a, b)] is not None:
                    other = b if f == a else a
                    ceded = self.partition[(a, b)] == other
                    w = w * np.where(ceded, 1.0 - self.calm(a, b), 1.0)
            if w.sum() <= 0:  # nowhere it wants to be: spread evenly rather than fail
                w = np.ones_like(w)
            weights[f] = w
        return weights

    def _deploy(self, initial: bool = False) -> None:
        rng = self.streams["deployment"]
        r = self.recruits
        fighting = r.fighting()
        if initial:
            self._seed_initial_influence()
        unposted = fighting & (r.post < 0)
        moving = unposted | (fighting & (rng.random(len(r)) < self.rules.deployment.p_redeploy))
        rows = np.flatnonzero(moving)
        if len(rows):
            weights = self._deployment_weights()
            factions = r.faction[rows]
            sites = np.empty(len(rows), dtype=np.int64)
            for f in np.unique(factions):
                mask = factions == f
                w = weights[f]
                sites[mask] = rng.choice(len(w), size=int(mask.sum()), p=w / w.sum())
            # Spread posts over the site's cell and its eight neighbours, on passable ground.
            dr = rng.integers(-1, 2, size=len(rows))
            dc = rng.integers(-1, 2, size=len(rows))
            pr = np.clip(self.geo.site_rows[sites] + dr, 0, self.geo.height - 1)
            pc = np.clip(self.geo.site_cols[sites] + dc, 0, self.geo.width - 1)
            ok = self.geo.passable[pr, pc]
            pr = np.where(ok, pr, self.geo.site_rows[sites])
            pc = np.where(ok, pc, self.geo.site_cols[sites])
            r.post[rows] = pr * self.geo.width + pc
        if not initial:
            self._open_headquarters()

    def _seed_initial_influence(self) -> None:
        """Step-0 influence from the scenario's initial control, so deployment starts from it."""
        seed = np.zeros_like(self.influence)
        for s, holder in enumerate(self.site_control):
            if holder >= 0:
                seed[holder, self.geo.site_rows[s], self.geo.site_cols[s]] += self.rules.deployment.hq_influence
        for militia in self.militias:
            for flat in militia.headquarters:
                seed[militia.index].reshape(-1)[flat] += self.rules.deployment.hq_influence
        self.influence = mech.spread_influence(seed, self.rules.influence.sigma_cells, self.geo.passable)
        self.control, self.share = mech.control_map(
            self.influence, self.rules.influence.control_threshold, self.rules.influence.min_influence
        )

    def _open_headquarters(self) -> None:
        rules = self.rules.deployment
        site_share = self.share.reshape(self.n_factions, -1)[:, self.geo.site_flat]
        for militia in self.militias:
            if militia.is_insurgent or militia.new_headquarters >= rules.max_new_headquarters:
                continue
            reserve = self.config.factions[militia.name].spending.reserve_usd
            if militia.budget_usd - reserve < rules.new_hq_cost_usd:
                continue
            candidates = [
                s
                for s, kind in enumerate(self.geo.site_kinds)
                if kind in ("town", "crossing", "oil_field", "post")
                and s not in militia.hq_sites
                and int(self.geo.site_flat[s]) not in militia.headquarters  # one per cell
                and site_share[militia.index, s] >= rules.min_share_for_new_hq
            ]
            if not candidates:
                continue
            best = max(candidates, key=lambda s: (self.site_value[s] * site_share[militia.index, s], -s))
            militia.budget_usd -= rules.new_hq_cost_usd
            militia.hq_sites.append(best)
            militia.new_headquarters += 1
            self.today.new_headquarters += 1
            self._event("new_headquarters", faction=militia.name, site=self.geo.site_names[best])

    # 5. Influence and control ------------------------------------------------------

    def _update_influence(self, initial: bool = False) -> None:
        rules = self.rules.influence
        r = self.recruits
        fighting = r.fighting()
        n_f, n_cells = self.n_factions, self.geo.n_cells
        flat_index = r.faction[fighting] * n_cells + r.post[fighting]
        counts = np.bincount(flat_index, minlength=n_f * n_cells).reshape(n_f, self.geo.height, self.geo.width)
        self.fighter_counts = counts
        presence = counts * self.arms_multiplier()[:, None, None]
        hq = np.zeros_like(presence)
        for militia in self.militias:
            if militia.headquarters:
                np.add.at(hq[militia.index].reshape(-1), militia.headquarters, self.rules.deployment.hq_influence)
        target = mech.spread_influence(presence + hq, rules.sigma_cells, self.geo.passable)
        if initial:
            self.influence = target
        else:
            self.influence = rules.persistence * self.influence + (1.0 - rules.persistence) * target
        self.control, self.share = mech.control_map(self.influence, rules.control_threshold, rules.min_influence)
        new_site_control = self.control.reshape(-1)[self.geo.site_flat]
        if not initial:
            for s in np.flatnonzero(new_site_control != self.site_control):
                name = self.geo.site_names[s]
                self.first_control_change.setdefault(name, self.steps)
        self.site_control = new_site_control

    # 6. Tension and clashes --------------------------------------------------------

    def _tension_and_clashes(self) -> None:
        rng = self.streams["clashes"]
        rules_t, rules_c = self.rules.tension, self.rules.clashes
        self.tension *= 1.0 - rules_t.decay_per_day
        near = mech.neighbourhood_sum(self.fighter_counts, rules_c.radius_cells)
        arms = self.arms_multiplier()
        site_cells = set(int(x) for x in self.geo.site_flat)
        rival_ground = np.zeros(self.control.shape, dtype=bool)
        for a, b in self.hostile_pairs:
            if not (self.is_militia[a] and self.is_militia[b]):
                continue  # insurgent attacks are handled in _insurgency
            both = (self.share[a] >= CONTEST_SHARE) & (self.share[b] >= CONTEST_SHARE)
            rival_ground |= both
            self.tension[a, b] += rules_t.gain_contested * float((self.cell_value * both).sum())
            self._looting(a, b, both, self.streams["looting"])
            front = np.flatnonzero(((near[a] >= rules_c.min_fighters) & (near[b] >= rules_c.min_fighters)).reshape(-1))
            if len(front) == 0:
                continue
            posture = max(self.effective_posture(a), self.effective_posture(b))
            p = mech.clash_probability(
                self.tension[a, b], self.calm(a, b), posture, rules_c.p_max, rules_c.tension_scale
            )
            hits = front[rng.random(len(front)) < p]
            for flat in hits:
                self._clash(a, b, int(flat), arms, rng, at_site=int(flat) in site_cells)
        # Ground disputed by hostile militias (not merely shared by allies): what insurgents exploit.
        self.n_rival_contested = int(np.count_nonzero(rival_ground))

    def _looting(self, a: int, b: int, both: np.ndarray, rng: np.random.Generator) -> None:
        p = self.rules.economy.p_looting
        if p == 0:
            return
        contested_sites = np.flatnonzero(both.reshape(-1)[self.geo.site_flat])
        for s in contested_sites:
            if rng.random() < p:
                looter, victim = (a, b) if rng.random() < 0.5 else (b, a)
                # Money changes hands: what the looter gains, the victim loses.
                taken = min(self.rules.economy.looting_usd, self.militias[victim].budget_usd)
                self.militias[victim].budget_usd -= taken
                self.militias[looter].budget_usd += taken
                self.tension[a, b] += self.rules.tension.gain_looting
                self.today.lootings += 1
                self._event("looting", faction=self.faction_names[looter], site=self.geo.site_names[s])

    def _fighters_near(self, f: int, flat: int, radius: int) -> np.ndarray:
        r = self.recruits
        rows = np.flatnonzero((r.faction == f) & (r.status == RecruitStatus.FIT) & (r.post >= 0))
        pr, pc = np.divmod(r.post[rows], self.geo.width)
        cr, cc = divmod(flat, self.geo.width)
        close = (np.abs(pr - cr) <= radius) & (np.abs(pc - cc) <= radius)
        return rows[close]

    def _clash(self, a: int, b: int, flat: int, arms: np.ndarray, rng: np.random.Generator, at_site: bool) -> None:
        rules = self.rules.clashes
        side_a = self._fighters_near(a, flat, rules.radius_cells)
        side_b = self._fighters_near(b, flat, rules.radius_cells)
        if len(side_a) == 0 or len(side_b) == 0:
            return
        s_a, s_b = len(side_a) * arms[a], len(side_b) * arms[b]
        cas_a, cas_b = mech.lanchester_casualties(
            len(side_a), len(side_b), s_a, s_b, rules.lethality, rng, rules.strength_exponent
        )
        killed_a, wounded_a = self._inflict(side_a, cas_a, a, b, rng)
        killed_b, wounded_b = self._inflict(side_b, cas_b, b, a, rng)
        winner = a if (s_a - cas_a * arms[a]) >= (s_b - cas_b * arms[b]) else b
        row, col = divmod(flat, self.geo.width)
        ground = self.ground_type(row, col)  # before the winner's gain changes the map
        self.influence[winner, row, col] += rules.winner_influence
        self.tension[a, b] += rules.tension_gain_per_clash
        self.today.clashes += 1
        self.today.clashes_at_sites += int(at_site)
        self.recent_clash_cells.append((self.steps, row, col))
        self._event(
            "clash",
            row=row,
            col=col,
            site=self.nearest_site_name(flat),
            side_a=self.faction_names[a],
            side_b=self.faction_names[b],
            fighters_a=len(side_a),
            fighters_b=len(side_b),
            killed_a=killed_a,
            wounded_a=wounded_a,
            killed_b=killed_b,
            wounded_b=wounded_b,
            winner=self.faction_names[winner],
            ground=ground,
        )

    def _inflict(
        self, candidates: np.ndarray, casualties: int, victim: int, attacker: int | None, rng
    ) -> tuple[int, int]:
        """Turn `casualties` of `candidates` into killed and wounded; update risk and tribes."""
        if casualties == 0 or len(candidates) == 0:
            return 0, 0
        casualties = min(casualties, len(candidates))
        hit = rng.choice(candidates, size=casualties, replace=False)
        killed_n, _ = mech.split_killed(casualties, self.rules.clashes.p_killed, rng)
        killed, wounded = hit[:killed_n], hit[killed_n:]
        r = self.recruits
        r.status[killed] = RecruitStatus.KILLED
        r.post[killed] = -1
        r.status[wounded] = RecruitStatus.WOUNDED
        r.post[wounded] = -1
        stay = rng.exponential(self.rules.clashes.recovery_days, size=len(wounded))
        r.recover_step[wounded] = self.steps + np.ceil(stay).astype(np.int64)
        self.today.killed[victim] += len(killed)
        self.today.wounded[victim] += len(wounded)
        if attacker is not None and len(self.leaders):
            tribes = r.tribe[killed]
            tribes = tribes[tribes >= 0]
            np.add.at(self.casualty_memory[:, attacker], tribes, 1.0)
        return len(killed), len(wounded)

    def _recover_wounded(self) -> None:
        r = self.recruits
        back = (r.status == RecruitStatus.WOUNDED) & (r.recover_step <= self.steps)
        r.status[back] = RecruitStatus.FIT  # they return unposted; deployment posts them

    def _remember_losses(self) -> None:
        """Each militia's remembered daily death rate, which recruits weigh as risk."""
        memory = self.rules.recruitment.risk_memory_days
        counts = self.fighters_by_faction() + self.today.killed  # fighters at the start of the day
        for militia in self.militias:
            rate = self.today.killed[militia.index] / max(counts[militia.index], 1)
            militia.death_risk += (rate - militia.death_risk) / memory

    # 7. Mediation -------------------------------------------------------------------

    def _mediation(self) -> None:
        rng = self.streams["mediation"]
        rules = self.rules.mediation
        alignment = (
            np.array([leader.alignment for leader in self.leaders]) if self.leaders else np.zeros((0, self.n_factions))
        )
        for a, b in self.hostile_pairs:
            if not (self.is_militia[a] and self.is_militia[b]):
                continue
            since = self.steps - self.last_meeting[a, b]
            due = self.steps % rules.interval_days == 0 or self.tension[a, b] >= rules.tension_threshold
            if not due or since < rules.min_days_between:
                continue
            self.last_meeting[a, b] = self.steps
            venue = rules.venues[self.meeting_counter % len(rules.venues)] if rules.venues else None
            self.meeting_counter += 1
            neutral = venue is not None and self.config.sites[venue].kind == "venue"
            p_success = mech.meeting_success_probability(
                rules.p_success_base,
                self.patron_alignment(a, b),
                mech.tribal_bridge(alignment, a, b),
                self.tension[a, b],
                rules.patron_alignment_weight,
                rules.tribal_weight,
                rules.tension_weight,
                neutral_venue_bonus=rules.neutral_venue_weight if neutral else 0.0,
            )
            tension_before = float(self.tension[a, b])
            self.today.meetings += 1
            partition = None
            if rng.random() < p_success:
                outcome = "agreement"
                self.tension[a, b] *= 1.0 - rules.tension_drop
                self.last_agreement[a, b] = self.steps
                self.today.agreements += 1
                # The partition: each site where either side has a foothold goes to the side
                # with the larger share of its influence; the other withdraws while calm lasts.
                site_share = self.share.reshape(self.n_factions, -1)[:, self.geo.site_flat]
                present = (site_share[a] >= CONTEST_SHARE) | (site_share[b] >= CONTEST_SHARE)
                present[self.militias[a].hq_sites + self.militias[b].hq_sites] = False  # each keeps its headquarters
                self.partition[(a, b)] = np.where(present, np.where(site_share[a] >= site_share[b], a, b), -1)
                partition = ";".join(
                    f"{self.geo.site_names[s]}={self.faction_names[f]}"
                    for s, f in enumerate(self.partition[(a, b)])
                    if f >= 0
                )
            else:
                # Posture already carries a patron's green light (effective_posture).
                posture = max(self.effective_posture(a), self.effective_posture(b))
                p_escalate = min(1.0, rules.p_escalation * posture)
                if rng.random() < p_escalate:
                    outcome = "escalation"
                    self.tension[a, b] += self.rules.tension.gain_escalation
                    self.today.escalations += 1
                else:
                    outcome = "failure"
                    self.tension[a, b] += self.rules.tension.gain_failed_meeting
                    self.today.failures += 1
            self._event(
                "meeting",
                site=venue,
                side_a=self.faction_names[a],
                side_b=self.faction_names[b],
                outcome=outcome,
                p_success=round(p_success, 6),
                tension=round(tension_before, 6),
                partition=partition,
            )

    def patron_alignment(self, a: int, b: int) -> float:
        pa, pb = self.patron_of[a], self.patron_of[b]
        if pa is None or pb is None:
            return 0.0
        if pa == pb:
            return 1.0
        for entry in self.config.patron_alignment:
            if set(entry.between) == {pa, pb}:
                return entry.value
        return 0.0

    # 8. Insurgency ------------------------------------------------------------------

    def _insurgency(self) -> None:
        if self.insurgent is None:
            return
        rng = self.streams["insurgency"]
        rules = self.rules.insurgency
        self.insurgent_cells = mech.insurgent_growth(
            self.insurgent_cells,
            self.today.clashes,
            self.n_rival_contested,
            rules.base_growth_per_day,
            rules.growth_per_clash,
            rules.growth_per_contested_cell,
            rules.decay_per_day,
            rules.max_cells,
        )
        n_attacks = int(rng.poisson(self.insurgent_cells * rules.attack_rate))
        if n_attacks == 0:
            return
        r = self.recruits
        targets_pool = np.flatnonzero(r.fighting() & (r.post >= 0) & self.is_militia[np.maximum(r.faction, 0)])
        if len(targets_pool) == 0:
            return
        # Cells strike where control is contested more often (twice the weight; assumption).
        contested = self.control.reshape(-1)[r.post[targets_pool]] == mech.CONTESTED
        w = np.where(contested, 2.0, 1.0)
        for _ in range(n_attacks):
            target = rng.choice(targets_pool, p=w / w.sum())
            f, flat = int(r.faction[target]), int(r.post[target])
            here = self._fighters_near(f, flat, 0)
            killed, wounded = self._inflict(here, int(rng.poisson(rules.attack_casualties)), f, None, rng)
            self.today.insurgent_attacks += 1
            row, col = divmod(flat, self.geo.width)
            self._event(
                "insurgent_attack",
                row=row,
                col=col,
                site=self.nearest_site_name(flat),
                side_a=self.faction_names[self.insurgent],
                side_b=self.faction_names[f],
                killed_b=killed,
                wounded_b=wounded,
            )

    # ------------------------------------------------------------------ helpers

    def ground_type(self, row: int, col: int) -> str:
        """Where a cell lies in the contest: 'crossing' (a crossing within one cell), 'edge'
        (contested, or within two cells of ground held by someone else), or 'core' (deep in one side's area)."""
        near = (np.abs(self.geo.site_rows - row) <= 1) & (np.abs(self.geo.site_cols - col) <= 1)
        if any(self.geo.site_kinds[s] == "crossing" for s in np.flatnonzero(near)):
            return "crossing"
        block = self.control[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3]
        holder = self.control[row, col]
        if holder < 0 or np.any(block != holder):
            return "edge"
        return "core"

    def nearest_site_name(self, flat: int, max_cells: float = 2.0) -> str | None:
        row, col = divmod(flat, self.geo.width)
        d = np.hypot(self.geo.site_rows - row, self.geo.site_cols - col)
        i = int(np.argmin(d))
        return self.geo.site_names[i] if d[i] <= max_cells else None

    def _event(self, kind: str, **fields) -> None:
        self.events.append({"step": self.steps, "event": kind, **fields})
