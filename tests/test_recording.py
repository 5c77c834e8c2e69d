"""The model's recorder gives the table Mesa's DataCollector gives with the same reporters, value for value."""

from __future__ import annotations

import pickle

import mesa
import pandas as pd
import pytest
from helpers import SCENARIOS

from sim.model import CorridorModel
from sim.recording import Recorder, build_reporters
from sim.scenario import load_scenario

# Overrides that make every recorded figure move within a few days: lootings, agreements,
# insurgent attacks, defections and salary reviews.
BUSY = [
    "rules.economy.p_looting=0.3",
    "rules.mediation.p_success_base=0.6",
    "rules.mediation.tension_threshold=0.3",
    "rules.insurgency.attack_rate=0.05",
    "rules.recruitment.p_reconsider=0.05",
    "rules.strategy.review_days=3",
]


def _run_with_both(config, seed: int, steps: int, capacity: int | None = None):
    model = CorridorModel(config, seed=seed)
    if capacity is not None:
        model.datacollector = Recorder(model, capacity=capacity)
        model.datacollector.collect(model)
    mesa_collector = mesa.DataCollector(model_reporters=build_reporters(model))
    mesa_collector.collect(model)
    for _ in range(steps):
        model.step()
        mesa_collector.collect(model)
    return model, mesa_collector


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [("baseline", BUSY), ("toy_two_towns", BUSY), ("isis_resurgence", [])],
)
def test_recorder_table_equals_the_datacollectors(scenario, overrides):
    config = load_scenario(SCENARIOS / f"{scenario}.yaml", overrides)
    model, mesa_collector = _run_with_both(config, seed=4, steps=25)
    ours = model.datacollector.get_model_vars_dataframe()
    theirs = mesa_collector.get_model_vars_dataframe()
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert ours.drop(columns=[c for c in ours if c.startswith("control.")]).diff().abs().sum().gt(0).sum() > 10
    # With a step column (what a run's timeseries is): the DataCollector's table, its index a column.
    theirs.index.name = "step"
    stepped = model.datacollector.get_model_vars_dataframe(step_column="step")
    pd.testing.assert_frame_equal(stepped, theirs.reset_index(), check_exact=True)
    assert {"contested", "none"} & set(stepped[[c for c in stepped if c.startswith("control.")]].stack())


def test_model_vars_read_like_the_datacollectors(baseline):
    model, mesa_collector = _run_with_both(baseline, seed=2, steps=6)
    ours, theirs = model.datacollector.model_vars, mesa_collector.model_vars
    assert list(ours) == list(theirs)
    for name, values in theirs.items():
        column = ours[name]
        assert len(column) == len(values) and list(column) == values and column[-1] == values[-1]
        assert [type(v) for v in column] == [type(v) for v in values]
        assert column[1:3] == values[1:3]


def test_recorder_grows_past_its_capacity_and_pickles():
    config = load_scenario(SCENARIOS / "toy_two_towns.yaml", BUSY)
    model, mesa_collector = _run_with_both(config, seed=1, steps=9, capacity=2)
    copy = pickle.loads(pickle.dumps(model.datacollector))
    expected = mesa_collector.get_model_vars_dataframe()
    pd.testing.assert_frame_equal(copy.get_model_vars_dataframe(), expected, check_exact=True)
    pd.testing.assert_frame_equal(model.datacollector.get_model_vars_dataframe(), expected, check_exact=True)
