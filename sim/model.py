"""CorridorModel: the Mesa face of one run.

The model builds the world state (`sim.world.build_world`), owns the run's named random
streams and the recorder (`sim.recording.Recorder`, read like Mesa's DataCollector), creates
the Mesa agents (views onto the world state, for Mesa tools; the recruits' agents and Mesa's
grid are built on first use, since no process reads them), and
each step (one day) calls the processes of `sim.processes` in ODD order (docs/ODD.md §3):

    recover wounded -> strategy (salary reviews) -> economy -> tribal politics -> recruitment -> deployment -> influence
    -> tension, looting and clashes -> mediation -> spill-over between theatres -> insurgency
    -> remembered losses -> record

Randomness: every draw comes from one of the named streams (`self.streams`), each derived
from the run's seed and the stream's name (`sim.seeding`), so the same scenario and seed
give the same run bit for bit, and adding draws to one process does not shift the others.
"""

from __future__ import annotations

import itertools

import mesa
from mesa.discrete_space import OrthogonalMooreGrid

from sim.agents import AGENT_IDS, Militia, Recruit, TribalLeader
from sim.processes import (
    casualties,
    conflict,
    deployment,
    economy,
    influence,
    insurgency,
    mediation,
    recruitment,
    spillover,
    strategy,
    tribal_politics,
)
from sim.recording import Recorder
from sim.schema import Scenario
from sim.seeding import RandomStreams
from sim.world import DailyTally, World, build_world

STREAMS = ("setup", "recruitment", "deployment", "clashes", "looting", "mediation", "insurgency")

# World-state fields the model shows as its own attributes (read-only views; arrays are shared).
WORLD_VIEWS = (
    "geo",
    "faction_names",
    "tribe_names",
    "insurgent",
    "is_militia",
    "hostile",
    "hostile_pairs",
    "recruits",
    "influence",
    "share",
    "control",
    "site_control",
    "initial_site_control",
    "fighter_counts",
    "tension",
    "last_agreement",
    "last_meeting",
    "partition",
    "casualty_memory",
    "courting_paid",
    "insurgent_cells",
    "n_rival_contested",
    "first_control_change",
    "recent_clash_cells",
    "events",
    "today",
    "n_factions",
)


def release_model(model: mesa.Model) -> None:
    """Forget `model` in Mesa's class-level agent-id counters (safe to call twice).

    Mesa 3.3 keeps `mesa.Agent._ids`, a counter per model keyed by the model itself, which
    holds every model that ever created a plain Mesa agent (mesa issue #3179; Mesa 3.4+ has
    no such attribute). The project's own agents count in `sim.agents.AGENT_IDS`, which holds
    models weakly, so a CorridorModel is freed without this; it is for agents of other
    classes added to a model by hand. Harmless on versions without the attribute.
    """
    ids = getattr(mesa.Agent, "_ids", None)
    if isinstance(ids, dict):
        ids.pop(model, None)
    AGENT_IDS.pop(model, None)


class CorridorModel(mesa.Model):
    """Territorial influence among armed factions along a corridor of towns and crossings.

    Args:
        config: a validated scenario (`sim.scenario.load_scenario`).
        seed: the run's seed (default: the scenario's `seed`).

    A model is freed like any Python object once nothing refers to it (its agents' ids are
    kept in a weakly keyed mapping, `sim.agents.AGENT_IDS`). `close()`, or a `with` block,
    also lets go of anything Mesa itself keeps per model; what the model recorded stays
    readable after closing:

        with CorridorModel(config, seed=1) as model:
            for _ in range(100):
                model.step()
        table = model.datacollector.get_model_vars_dataframe()
    """

    def __init__(self, config: Scenario, *, seed: int | None = None):
        seed = config.seed if seed is None else int(seed)
        super().__init__(rng=seed)
        self.config = config
        self.rules = config.rules
        self.run_seed = seed
        self.streams = RandomStreams(seed, STREAMS)
        self.world: World = build_world(config, self.streams["setup"])
        self.spillover_state = spillover.setup(self.world)  # theatres: posting restricted, linked pairs (None without)
        self._grid = None  # Mesa's grid, built on first use (`grid`): no process reads it
        self._build_agents()
        deployment.step(self.world, self.rules, self.streams["deployment"], initial=True)
        influence.step(self.world, self.rules, initial=True)
        self.datacollector = Recorder(self, capacity=config.steps + 1)
        self.datacollector.collect(self)

    def _build_agents(self) -> None:
        """The militias and tribal leaders now; the recruits' agents on first use (`recruit_agents`).

        Recruit agents are views onto rows of the recruit arrays that no process reads; building
        one Mesa agent per recruit took most of a model's construction (116,639 in the
        Syria-wide scenario). With Mesa 3.3 their ids are reserved here, right after the
        leaders', so they are the ids they would have had if built now, whenever they are built.
        """
        w, config = self.world, self.config
        self.militias: list[Militia] = []
        for index, name in enumerate(w.faction_names):
            spec = config.factions[name]
            anchor = spec.headquarters[0] if spec.headquarters else w.geo.site_names[0]
            flat = int(w.geo.site_flat[w.geo.site_index(anchor)])
            self.militias.append(Militia(self, index=index, name=name, spec=spec, flat=flat))
        self.leaders: list[TribalLeader] = []
        for index, tribe in enumerate(w.tribe_names):
            spec = config.tribes[tribe]
            flat = int(w.geo.site_flat[w.geo.site_index(spec.seat)])
            self.leaders.append(TribalLeader(self, index=index, tribe=tribe, spec=spec, flat=flat))
        self._first_recruit_id: int | None = None
        if isinstance(getattr(mesa.Agent, "_ids", None), dict):  # Mesa 3.3: ids from `_ids` (AGENT_IDS here)
            self._first_recruit_id = next(AGENT_IDS[self])
            AGENT_IDS[self] = itertools.count(self._first_recruit_id + len(w.recruits))
        # (Mesa 3.4+ numbers agents on the model: the recruits then take the next ids when built.)
        self._recruit_agents: list[Recruit] | None = None

    @property
    def recruit_agents(self) -> list[Recruit]:
        """One `Recruit` agent per row of the recruit arrays (built, and registered with Mesa, on first use)."""
        if self._recruit_agents is None:
            first, n = self._first_recruit_id, len(self.world.recruits)
            if first is None:
                self._recruit_agents = [Recruit(self, row) for row in range(n)]
            else:
                self._recruit_agents = [Recruit(self, row, unique_id=first + row) for row in range(n)]
        return self._recruit_agents

    @property
    def grid(self) -> OrthogonalMooreGrid:
        """Mesa's grid of the scenario's cells (Moore neighbourhood, no torus), built on first use.

        Building it places each militia on its first headquarters' cell and each leader on its seat.
        """
        if self._grid is None:
            geo = self.world.geo
            self._grid = OrthogonalMooreGrid((geo.height, geo.width), torus=False, random=self.random)
            for agent in (*self.militias, *self.leaders):
                agent.place(self.cell_at_flat(agent.home_flat))
        return self._grid

    # Mesa's views of all agents: they include the recruits' agents, so reading them builds those.
    @property
    def agents(self) -> mesa.agent.AgentSet:
        """Every agent of the model (Mesa's AgentSet; builds the recruits' agents on first use)."""
        _ = self.recruit_agents
        return self._all_agents

    @property
    def agents_by_type(self) -> dict[type, mesa.agent.AgentSet]:
        """Mesa's AgentSet per agent class (builds the recruits' agents on first use)."""
        _ = self.recruit_agents
        return self._agents_by_type

    @property
    def agent_types(self) -> list[type]:
        """The agent classes of the model (builds the recruits' agents on first use)."""
        _ = self.recruit_agents
        return list(self._agents_by_type)

    def remove_all_agents(self) -> None:
        """Mesa's `remove_all_agents`, the recruits' agents included."""
        _ = self.recruit_agents
        super().remove_all_agents()

    def close(self) -> None:
        """Release what Mesa keeps per model outside it (`release_model`); safe to call twice.

        The recorded data and the world state stay readable; stepping a closed model is not
        supported.
        """
        release_model(self)

    def __enter__(self) -> CorridorModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def cell_at_flat(self, flat: int):
        """The Mesa grid cell of a flat cell index (row * width + col)."""
        return self.grid[(flat // self.world.geo.width, flat % self.world.geo.width)]

    def step(self) -> None:
        """One day: the processes in ODD order, then the recorder records the day."""
        w, rules, streams = self.world, self.rules, self.streams
        w.day = self.steps
        w.today = DailyTally(w.n_factions)
        # Masks and counts of the recruits are remembered during the day (each process that
        # changes the recruits says so), and forgotten after it, for code that writes by hand.
        w.recruits.remember(True)
        try:
            casualties.recover_wounded(w)
            strategy.step(w, rules)
            economy.step(w, rules)
            tribal_politics.step(w, rules)
            recruitment.step(w, rules, streams["recruitment"])
            deployment.step(w, rules, streams["deployment"])
            influence.step(w, rules)
            conflict.step(w, rules, streams["clashes"], streams["looting"])
            mediation.step(w, rules, streams["mediation"])
            spillover.step(w, rules, self.spillover_state)
            insurgency.step(w, rules, streams["insurgency"])
            casualties.remember_losses(w, rules)
            self.datacollector.collect(self)
        finally:
            w.recruits.remember(False)

    # --- queries used by recorders, tests and the explorer

    def n_fighters(self, f: int) -> int:
        """Fit fighters of faction f (insurgents: rounded insurgent cells)."""
        return self.world.n_fighters(f)

    def fighters_by_faction(self):
        """(F,) fit fighters per faction."""
        return self.world.fighters_by_faction()

    def calm(self, a: int, b: int) -> float:
        """Today's calm (0..1) between factions a and b from their latest agreement."""
        return mediation.calm(self.world, self.rules, a, b)


for _name in WORLD_VIEWS:
    setattr(CorridorModel, _name, property(lambda self, _n=_name: getattr(self.world, _n), doc=f"World.{_name}"))
