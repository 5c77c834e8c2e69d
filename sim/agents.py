"""The model's agents as Mesa sees them: militias, tribal leaders and recruits.

All state lives in the world state (`sim.world.World`), which the processes update for all
agents at once; each agent here is a thin view onto its faction, leader or recruit row, so
Mesa tools (AgentSet, DataCollector, the browser explorer) still see ordinary agents and
reading an agent always shows the current state.
"""

from __future__ import annotations

import itertools
import weakref

import mesa
import numpy as np
from mesa.discrete_space import CellAgent, FixedAgent

from sim.world import RecruitArrays, RecruitStatus

__all__ = ["AGENT_IDS", "Militia", "Recruit", "RecruitArrays", "RecruitStatus", "TribalLeader"]


class AgentIdsByModel(weakref.WeakKeyDictionary):
    """Per-model counters of agent ids (1, 2, ...), holding their models only weakly.

    Mesa 3.3 numbers agents with `next(self._ids[model])`, where `mesa.Agent._ids` is a
    class-level defaultdict keyed by model: it holds every model ever built, so models built
    by hand (notebooks, the explorer's Reset) were never freed (mesa issue #3179; Mesa 3.4+
    numbers agents on the model and has no `_ids`). The project's agents share this mapping
    instead, so they get exactly the ids Mesa would give (one counter per model, from 1,
    shared by all agent kinds), and a model's entry goes when the model is collected.
    """

    def __getitem__(self, model):
        try:
            return super().__getitem__(model)
        except KeyError:
            counter = self[model] = itertools.count(1)
            return counter


AGENT_IDS = AgentIdsByModel()  # read by Mesa 3.3's Agent.__init__ through `self._ids`; unused by 3.4+


class _PlacedOnFirstUse:
    """Mixin: the agent's Mesa cell is looked up on first use of the model's grid.

    `home_flat` is the flat cell index (row * width + col) it stands on; the model's `grid`
    property, when it builds the grid, calls `place` on each such agent.
    """

    home_flat: int

    @property
    def cell(self):
        """Its Mesa grid cell (building the model's grid on first use)."""
        if self._mesa_cell is None:
            _ = self.model.grid  # building it places every militia and leader
        return self._mesa_cell

    @cell.setter
    def cell(self, cell) -> None:
        self._set_cell(cell)

    def place(self, cell) -> None:
        """Put the agent on `cell` (done once, by the model when it builds its grid)."""
        self._mesa_cell = cell
        cell.add_agent(self)


class Militia(_PlacedOnFirstUse, CellAgent):
    """An armed faction (index f of the world's factions). Its cell is its first headquarters."""

    _ids = AGENT_IDS

    def __init__(self, model: mesa.Model, *, index: int, name: str, spec, flat: int):
        super().__init__(model)
        self.index = index
        self.name = name
        self.label = spec.label
        self.kind = spec.kind
        self.patron = spec.patron
        self.home_flat = flat

    def _set_cell(self, cell) -> None:  # Mesa's moving cell agent: leaves its old cell
        CellAgent.cell.fset(self, cell)

    @property
    def _world(self):
        return self.model.world

    @property
    def salary_usd_month(self) -> float:
        """Salary per fighter (USD/month)."""
        return float(self._world.salary[self.index])

    @property
    def privileges(self) -> float:
        """Non-salary benefits of membership (index 0-1)."""
        return float(self._world.privileges[self.index])

    @property
    def exempts_conscription(self) -> bool:
        """Whether membership exempts from compulsory service."""
        return bool(self._world.exempts[self.index])

    @property
    def posture(self) -> float:
        """Readiness to escalate (index 0-1), before any patron's green light."""
        return float(self._world.posture[self.index])

    @property
    def budget_usd(self) -> float:
        """Cash (USD)."""
        return float(self._world.budget[self.index])

    @property
    def arrears_usd(self) -> float:
        """Salaries owed (USD)."""
        return float(self._world.arrears[self.index])

    @property
    def pay_ratio(self) -> float:
        """Share of salaries actually paid, smoothed (0-1)."""
        return float(self._world.pay_ratio[self.index])

    @property
    def death_risk(self) -> float:
        """Remembered daily share of its fighters killed."""
        return float(self._world.death_risk[self.index])

    @property
    def income_usd(self) -> float:
        """Latest daily income (USD/day)."""
        return float(self._world.income[self.index])

    @property
    def hiring(self) -> float:
        """Share of applicants it takes today (graded hiring: 1 while it can pay its way, 0 when broke)."""
        return float(self._world.hiring[self.index])

    @property
    def hq_sites(self) -> list[int]:
        """Indices of the sites that are its headquarters."""
        return self._world.hq_sites[self.index]

    @property
    def new_headquarters(self) -> int:
        """Headquarters opened during the run."""
        return int(self._world.new_headquarters[self.index])

    @property
    def headquarters(self) -> list[int]:
        """Flat cell indices of its headquarters."""
        return self._world.headquarters(self.index)

    @property
    def is_insurgent(self) -> bool:
        """Whether this is the insurgent faction (off the map, no economy)."""
        return self.kind == "insurgent"

    @property
    def effective_salary(self) -> float:
        """What a recruit expects to be paid (USD/month): salary times the share actually paid."""
        return self.salary_usd_month * self.pay_ratio

    @property
    def n_fighters(self) -> int:
        """Fit fighters (insurgents: rounded insurgent cells)."""
        return self._world.n_fighters(self.index)


class TribalLeader(_PlacedOnFirstUse, FixedAgent):
    """The notable of one tribe (index l), seated in a town; `alignment` is its weight per faction."""

    _ids = AGENT_IDS

    def __init__(self, model: mesa.Model, *, index: int, tribe: str, spec, flat: int):
        super().__init__(model)
        self.index = index
        self.tribe = tribe
        self.label = spec.label
        self.responsiveness = spec.responsiveness
        self.home_flat = flat

    def _set_cell(self, cell) -> None:  # Mesa's fixed agent: refuses to move once placed
        _ = self.cell  # placed first, so that Mesa's rule applies
        FixedAgent.cell.fset(self, cell)

    @property
    def alignment(self) -> np.ndarray:
        """(F,) weights over factions, summing to 1."""
        return self.model.world.alignment[self.index]

    @property
    def favourite(self) -> str:
        """Name of the faction with the largest weight."""
        return self.model.faction_names[int(np.argmax(self.alignment))]


class Recruit(mesa.Agent):
    """A person who fights or could fight; reads and writes its row of `RecruitArrays`.

    `unique_id`, if given, is the agent's id (the model reserves the recruits' ids when it is
    built and creates their agents on first use); otherwise the next id, as for any Mesa agent.
    """

    _ids = AGENT_IDS

    def __init__(self, model: mesa.Model, row: int, *, unique_id: int | None = None):
        if unique_id is None:
            super().__init__(model)
        else:  # what mesa.Agent.__init__ does, with the reserved id
            self.model = model
            self.unique_id = unique_id
            self.pos = None
            model.register_agent(self)
        self.row = row

    @property
    def _arrays(self) -> RecruitArrays:
        return self.model.recruits

    @property
    def militia(self) -> str | None:
        """Name of its militia, or None for a civilian."""
        f = int(self._arrays.faction[self.row])
        return None if f < 0 else self.model.faction_names[f]

    @property
    def status(self) -> RecruitStatus:
        """Fit, wounded or killed."""
        return RecruitStatus(int(self._arrays.status[self.row]))

    @property
    def tribe(self) -> str | None:
        """Its tribe, or None for an outsider."""
        t = int(self._arrays.tribe[self.row])
        return None if t < 0 else self.model.tribe_names[t]

    @property
    def liable_to_conscription(self) -> bool:
        """Whether it is subject to conscription."""
        return bool(self._arrays.liable[self.row])

    @property
    def home_cell(self):
        """The grid cell of its home town."""
        return self.model.cell_at_flat(int(self._arrays.home[self.row]))

    @property
    def post_cell(self):
        """The grid cell where it is posted, or None."""
        p = int(self._arrays.post[self.row])
        return None if p < 0 else self.model.cell_at_flat(p)
