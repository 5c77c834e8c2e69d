"""The model's agents: militias, tribal leaders and recruits.

Militias and tribal leaders are few and hold their own state. Recruits are many (thousands),
so their state lives in numpy arrays (`RecruitArrays`) that the model updates all at once;
each `Recruit` agent is a thin view onto its row, so Mesa tools (AgentSet, DataCollector,
the browser explorer) still see ordinary agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import mesa
import numpy as np
from mesa.discrete_space import CellAgent, FixedAgent


class RecruitStatus(IntEnum):
    FIT = 0
    WOUNDED = 1
    KILLED = 2


class Militia(CellAgent):
    """An armed faction. Its cell is its first headquarters (or its first site)."""

    def __init__(self, model: mesa.Model, *, index: int, name: str, spec, cell):
        super().__init__(model)
        self.index = index
        self.name = name
        self.label = spec.label
        self.kind = spec.kind
        self.patron = spec.patron
        self.salary_usd_month = spec.salary_usd_month
        self.privileges = spec.privileges
        self.exempts_conscription = spec.exempts_conscription
        self.posture = spec.posture
        self.budget_usd = spec.initial_budget_usd
        self.arrears_usd = 0.0
        self.pay_ratio = 1.0  # share of salaries actually paid, smoothed over ~30 days
        self.death_risk = 0.0  # smoothed daily share of its fighters killed
        self.income_usd = 0.0  # yesterday's income (USD/day)
        self.hiring = True  # takes new members (False while it cannot pay its way)
        self.hq_sites: list[int] = []  # indices of the sites that are its headquarters
        self.new_headquarters = 0
        self.cell = cell

    @property
    def headquarters(self) -> list[int]:
        """Flat cell indices of its headquarters."""
        return [int(self.model.geo.site_flat[s]) for s in self.hq_sites]

    @property
    def is_insurgent(self) -> bool:
        return self.kind == "insurgent"

    @property
    def effective_salary(self) -> float:
        """What a recruit expects to be paid (USD/month): salary times the share actually paid."""
        return self.salary_usd_month * self.pay_ratio

    @property
    def n_fighters(self) -> int:
        return self.model.n_fighters(self.index)


class TribalLeader(FixedAgent):
    """The notable of one tribe, seated in a town; `alignment` is a weight per faction."""

    def __init__(self, model: mesa.Model, *, index: int, tribe: str, spec, cell, alignment: np.ndarray):
        super().__init__(model)
        self.index = index
        self.tribe = tribe
        self.label = spec.label
        self.responsiveness = spec.responsiveness
        self.alignment = alignment
        self.cell = cell

    @property
    def favourite(self) -> str:
        return self.model.faction_names[int(np.argmax(self.alignment))]


@dataclass
class RecruitArrays:
    """State of every recruit (one row each). Sizes are fixed at model start."""

    faction: np.ndarray  # int64, militia index or -1 (civilian)
    status: np.ndarray  # int8, RecruitStatus
    tribe: np.ndarray  # int64, tribe index or -1 (outsider)
    home: np.ndarray  # int64, flat cell index of home
    post: np.ndarray  # int64, flat cell index where posted, -1 if not fighting
    liable: np.ndarray  # bool, subject to conscription
    joined_step: np.ndarray  # int64, step the current membership began
    recover_step: np.ndarray  # int64, step a wounded recruit returns

    def __len__(self) -> int:
        return len(self.faction)

    def fighting(self) -> np.ndarray:
        """Mask of fit recruits in a militia."""
        return (self.faction >= 0) & (self.status == RecruitStatus.FIT)


class Recruit(mesa.Agent):
    """A person who fights or could fight; reads and writes its row of `RecruitArrays`."""

    def __init__(self, model: mesa.Model, row: int):
        super().__init__(model)
        self.row = row

    @property
    def _arrays(self) -> RecruitArrays:
        return self.model.recruits

    @property
    def militia(self) -> str | None:
        f = int(self._arrays.faction[self.row])
        return None if f < 0 else self.model.faction_names[f]

    @property
    def status(self) -> RecruitStatus:
        return RecruitStatus(int(self._arrays.status[self.row]))

    @property
    def tribe(self) -> str | None:
        t = int(self._arrays.tribe[self.row])
        return None if t < 0 else self.model.tribe_names[t]

    @property
    def liable_to_conscription(self) -> bool:
        return bool(self._arrays.liable[self.row])

    @property
    def home_cell(self):
        return self.model.cell_at_flat(int(self._arrays.home[self.row]))

    @property
    def post_cell(self):
        p = int(self._arrays.post[self.row])
        return None if p < 0 else self.model.cell_at_flat(p)
