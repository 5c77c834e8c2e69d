"""Engine: one run's state and its day, without Mesa.

The engine builds the world state (`sim.world.build_world`), owns the run's named random
streams and the recorder (`sim.recording.Recorder`, read like Mesa's DataCollector), and each
step (one day) calls the processes of `sim.processes` in ODD order (docs/ODD.md §3):

    recover wounded -> strategy (salary reviews) -> economy -> tribal politics -> recruitment -> deployment -> influence
    -> tension, looting and clashes -> mediation -> spill-over between theatres -> insurgency
    -> remembered losses -> record

`sim.model.CorridorModel` is the same engine as a Mesa model (agents, grid, AgentSets) for
Mesa's tools and the explorer; `sim.runner.run_model` steps an `Engine` itself, so a run, a
sweep's worker or the command line need not import Mesa (about half a second). Both give the
same numbers for the same scenario and seed: Mesa's own generators are never drawn from.

Randomness: every draw comes from one of the named streams (`self.streams`), each derived
from the run's seed and the stream's name (`sim.seeding`), so the same scenario and seed
give the same run bit for bit, and adding draws to one process does not shift the others.
"""

from __future__ import annotations

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


class Engine:
    """One run of a scenario: its world state, random streams and recorder, stepped a day at a time.

    Args:
        config: a validated scenario (`sim.scenario.load_scenario`).
        seed: the run's seed (default: the scenario's `seed`).

    `steps` counts the days run (0 after construction, which records the initial state as
    step 0); `step()` runs the next day and records it. The world's fields (`WORLD_VIEWS`)
    read as the engine's own attributes:

        engine = Engine(config, seed=1)
        for _ in range(365):
            engine.step()
        table = engine.datacollector.get_model_vars_dataframe()
    """

    def __init__(self, config: Scenario, *, seed: int | None = None):
        self.steps = 0
        self._setup(config, config.seed if seed is None else int(seed))

    def _setup(self, config: Scenario, seed: int) -> None:
        """Everything but the day counter (a Mesa model keeps its own `steps`): the world, placed and recorded."""
        self.config = config
        self.rules = config.rules
        self.run_seed = seed
        self.streams = RandomStreams(seed, STREAMS)
        self.world: World = build_world(config, self.streams["setup"])
        self.spillover_state = spillover.setup(self.world)  # theatres: posting restricted, linked pairs (None without)
        deployment.step(self.world, self.rules, self.streams["deployment"], initial=True)
        influence.step(self.world, self.rules, initial=True)
        self.datacollector = Recorder(self, capacity=config.steps + 1)
        self.datacollector.collect(self)

    def step(self) -> None:
        """Advance `steps` by one and run that day (`day`)."""
        self.steps += 1
        self.day()

    def day(self) -> None:
        """Day `steps`: the processes in ODD order, then the recorder records the day."""
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

    def close(self) -> None:
        """Nothing to release (a Mesa model releases Mesa's per-model state); safe to call twice."""

    def __enter__(self):  # `with Engine(...) as engine:`, as with a CorridorModel (whose close() does release)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
    setattr(Engine, _name, property(lambda self, _n=_name: getattr(self.world, _n), doc=f"World.{_name}"))
