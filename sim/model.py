"""CorridorModel: the Mesa face of one run.

The run itself is `sim.engine.Engine`: the world state (`sim.world.build_world`), the run's
named random streams, the recorder (`sim.recording.Recorder`, read like Mesa's
DataCollector) and the day's processes in ODD order (docs/ODD.md §3). `CorridorModel` is
that engine as a `mesa.Model`: Mesa counts its steps, and it has Mesa agents (views onto the
world state, for Mesa tools; the recruits' agents and Mesa's grid are built on first use,
since no process reads them). The explorer and Mesa's tools use it; `sim.runner.run_model`
steps an `Engine` without Mesa. Both give the same numbers for the same scenario and seed:
no process draws from Mesa's generators (`random`, `rng`).
"""

from __future__ import annotations

import itertools

import mesa
from mesa.discrete_space import OrthogonalMooreGrid

from sim.agents import AGENT_IDS, Militia, Recruit, TribalLeader
from sim.engine import STREAMS, WORLD_VIEWS, Engine  # noqa: F401 - STREAMS and WORLD_VIEWS public here too
from sim.schema import Scenario


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


class CorridorModel(Engine, mesa.Model):
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
        mesa.Model.__init__(self, rng=seed)  # Mesa counts `steps`; its generators are never drawn from
        self._setup(config, seed)  # the engine: world, streams, initial placement, recorder (step 0)
        self._grid = None  # Mesa's grid, built on first use (`grid`): no process reads it
        self._build_agents()

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

    def cell_at_flat(self, flat: int):
        """The Mesa grid cell of a flat cell index (row * width + col)."""
        return self.grid[(flat // self.world.geo.width, flat % self.world.geo.width)]

    def step(self) -> None:
        """One day (`Engine.day`); Mesa's wrapper has advanced `steps` first."""
        self.day()
