"""Models are freed: a model nothing refers to any more is garbage-collected, whether it was
built by hand (a notebook), by `run_model`, or by the explorer (each Reset and parameter change
builds a new one), and memory does not grow with the number of models built.

Mesa 3.3 kept every model alive through its class-level agent-id counters (`mesa.Agent._ids`,
about 5 MB per baseline model); the project's agents count ids in a weakly keyed mapping.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import mesa
import pytest
from helpers import scenario

from sim.agents import AGENT_IDS
from sim.model import CorridorModel
from sim.runner import run_model

N_MODELS = 20
ONE_MODEL_BYTES = 4_000_000  # a baseline model holds about 5 MB: more growth than this is a leak


def _collected(refs: list[weakref.ref]) -> int:
    gc.collect()
    return sum(ref() is None for ref in refs)


def _memory_growth(build) -> tuple[int, int]:
    """(models collected, bytes still allocated) after building N_MODELS with `build(seed)`.

    The bytes are counted from after the 5th model, so one-off caches filled by the first
    builds do not count; a model kept alive each time would add N_MODELS - 5 models' worth.
    """
    refs = []
    tracemalloc.start()
    try:
        for seed in range(N_MODELS):
            if seed == 5:
                gc.collect()
                start = tracemalloc.get_traced_memory()[0]
            refs.append(weakref.ref(build(seed)))
        collected = _collected(refs)
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    return collected, growth


@pytest.fixture(scope="module")
def baseline():
    return scenario()


def test_models_built_by_hand_and_dropped_are_collected(baseline):
    def build(seed):
        model = CorridorModel(baseline, seed=seed)
        model.step()
        return model  # dropped by the caller at once

    collected, growth = _memory_growth(build)
    assert collected == N_MODELS
    assert growth < ONE_MODEL_BYTES, f"memory grew by {growth / 1e6:.1f} MB over {N_MODELS - 5} models"


def test_run_model_frees_its_model(baseline, monkeypatch):
    import sim.runner
    from sim.engine import Engine

    built = []

    class Recorded(Engine):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(weakref.ref(self))

    monkeypatch.setattr(sim.runner, "Engine", Recorded)
    for seed in range(10):
        run_model(baseline, seed, steps=2)
    assert len(built) == 10 and _collected(built) == 10


def test_a_closed_model_keeps_its_records_and_leaves_nothing_behind(baseline):
    with CorridorModel(baseline, seed=3) as model:
        model.step()
        mesa.Agent(model)  # an agent of a class the project does not define (counted by Mesa itself)
    table = model.datacollector.get_model_vars_dataframe()
    assert len(table) == 2  # the initial state and one day, still readable after closing
    assert model not in AGENT_IDS
    assert model not in (getattr(mesa.Agent, "_ids", None) or {})  # Mesa 3.3's counters (gone in 3.4+)
    model.close()  # twice is fine
    ref = weakref.ref(model)
    del model
    assert _collected([ref]) == 1


def test_agent_ids_are_one_counter_per_model_from_one(baseline):
    """The same ids as Mesa gives: 1..n across all agent kinds, in order of creation, per model."""
    for seed in (1, 2):
        model = CorridorModel(baseline, seed=seed)
        ids = [agent.unique_id for agent in model.agents]
        assert ids == list(range(1, len(ids) + 1))


def test_the_explorers_rebuilt_models_are_collected():
    """Each parameter change and Reset (`Session.new_model`, `ExplorerModel(source=...)`) builds a model."""
    from sim.explorer.core import ExplorerModel, Session

    session = Session("baseline")
    refs = []
    for k in range(6):
        assert session.propose("seed", str(100 + k))
        model = session.new_model()
        model.step()
        refs.append(weakref.ref(model))
        refs.append(weakref.ref(ExplorerModel(source=session)))
        del model
    assert _collected(refs) == len(refs)
