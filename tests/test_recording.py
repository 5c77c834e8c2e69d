"""The model's recorder gives the table Mesa's DataCollector gives with the same reporters, value for value."""

from __future__ import annotations

import pickle
import subprocess
import sys

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


@pytest.mark.parametrize("builder", ["blocks", "by column"])
@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [("baseline", BUSY), ("toy_two_towns", BUSY), ("isis_resurgence", [])],
)
def test_recorder_table_equals_the_datacollectors(scenario, overrides, builder, monkeypatch):
    if builder == "by column":  # what pandas without `create_dataframe_from_blocks` (pandas < 3) gets
        monkeypatch.setitem(sys.modules, "pandas.api.internals", None)
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


def test_control_labels_are_objects_where_pandas_does_not_infer_str():
    # pandas < 3's default, or pandas 3 with its deprecated `future.infer_string` off from the start
    # (a fresh process: the tables' layouts, labels included, are kept once made).
    code = """
import warnings
import mesa, pandas as pd
warnings.simplefilter("ignore")
try:
    pd.set_option("future.infer_string", False)
except (KeyError, pd.errors.OptionError):
    print("no such option")  # str columns cannot be switched off
    raise SystemExit(0)
from sim.model import CorridorModel
from sim.recording import build_reporters
from sim.scenario import load_scenario
model = CorridorModel(load_scenario("scenarios/toy_two_towns.yaml"), seed=2)
collector = mesa.DataCollector(model_reporters=build_reporters(model))
collector.collect(model)
for _ in range(5):
    model.step()
    collector.collect(model)
ours, theirs = model.datacollector.get_model_vars_dataframe(), collector.get_model_vars_dataframe()
assert (ours.dtypes == object).sum() >= 2, ours.dtypes
pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
print("same")
"""
    root = SCENARIOS.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if done.stdout.strip() == "no such option":
        pytest.skip(
            "this pandas has no future.infer_string option (pandas >= 4 always makes str columns; pip install "
            "'pandas<4' to run it): the check of object label columns is skipped; str columns are checked above"
        )
    assert done.stdout.strip() == "same"


def test_a_table_is_its_own_copy_and_round_trips_through_parquet(tmp_path, baseline):
    model, _ = _run_with_both(baseline, seed=3, steps=8)
    table = model.datacollector.get_model_vars_dataframe(step_column="step")
    before = table.copy(deep=True)
    # Changing the table changes neither the recorder nor a second table made from it.
    table.loc[2, "fighters.IRGC"] = -1
    table.loc[2, "control.albukamal"] = "somebody"
    table.loc[2, "tension.IRGC~NDF"] = -1.0
    again = model.datacollector.get_model_vars_dataframe(step_column="step")
    pd.testing.assert_frame_equal(again, before, check_exact=True)
    assert table.loc[3, "control.albukamal"] == before.loc[3, "control.albukamal"]
    model.step()  # recording more rows later leaves a table made earlier as it was
    pd.testing.assert_frame_equal(again, before, check_exact=True)
    path = tmp_path / "ts.parquet"
    again.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(path), before, check_exact=True)


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


def test_a_table_of_some_columns_is_those_columns_of_the_whole_table(baseline):
    model, _ = _run_with_both(baseline, seed=5, steps=6)
    whole = model.datacollector.get_model_vars_dataframe(step_column="step")
    wanted = ["control.", "killed.NDF", "tension.IRGC~NDF", "no_such_column", "fighters."]
    some = model.datacollector.get_model_vars_dataframe(step_column="step", columns=wanted)
    kept = [c for c in whole.columns if c.startswith(("control.", "fighters.")) or c in wanted]
    assert len(kept) > 10 and "no_such_column" not in some
    pd.testing.assert_frame_equal(some, whole[["step", *kept]], check_exact=True)
    pd.testing.assert_frame_equal(model.datacollector.get_model_vars_dataframe(columns=[]), whole[[]])


def test_renaming_one_tables_columns_leaves_other_tables_alone(baseline):
    model, mesa_collector = _run_with_both(baseline, seed=6, steps=3)
    first = model.datacollector.get_model_vars_dataframe(step_column="step")
    first.columns.name = "figure"  # a common pandas habit, in place
    first.columns.set_names("figure", inplace=True)
    second = model.datacollector.get_model_vars_dataframe()
    assert second.columns.name is None and second.columns is not first.columns
    pd.testing.assert_frame_equal(second, mesa_collector.get_model_vars_dataframe(), check_exact=True)


def test_a_compacted_recorder_keeps_its_rows_and_records_on(baseline):
    model, mesa_collector = _run_with_both(baseline, seed=7, steps=4)
    recorder = model.datacollector
    assert len(recorder.ints) == baseline.steps + 1  # sized for the whole run
    recorder.compact()
    assert len(recorder.ints) == len(recorder.floats) == len(recorder.sites) == recorder.n == 5
    for _ in range(3):  # more rows after compacting: the arrays grow again
        model.step()
        mesa_collector.collect(model)
    pd.testing.assert_frame_equal(recorder.get_model_vars_dataframe(), mesa_collector.get_model_vars_dataframe(),
                                  check_exact=True)  # fmt: skip


def test_daily_tally_keeps_each_figure_apart_and_records_the_tallies_in_order():
    import numpy as np

    from sim.recording import DAILY_TALLIES
    from sim.world import TALLIES, DailyTally

    t = DailyTally(3)
    for name in ("joined", "desertions", "killed", "wounded", "defections"):
        assert getattr(t, name).dtype == np.int64 and not getattr(t, name).any()
    assert t.defections.shape == (3, 3)
    t.joined[1] += 2
    t.defections[2, 0] += 5
    for k, name in enumerate(TALLIES):
        setattr(t, name, getattr(t, name) + 10 + k)  # as a process counts: world.today.clashes += 1
    assert t.joined.tolist() == [0, 2, 0] and not t.desertions.any() and not t.killed.any() and not t.wounded.any()
    assert t.defections.sum() == 5 and t.defections[2, 0] == 5
    assert all(type(getattr(t, name)) is int for name in TALLIES)
    assert t.recorded.tolist() == [getattr(t, name) for name in DAILY_TALLIES]
    assert "clash_casualties" in TALLIES and "clash_casualties" not in DAILY_TALLIES
    assert not DailyTally(3).joined.any()  # a new day starts from zero
