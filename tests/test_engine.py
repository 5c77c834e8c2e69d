"""The engine (`sim.engine.Engine`) is the model without Mesa: the same numbers, fewer imports.

`sim.runner.run_model` steps an `Engine`; the explorer and Mesa's tools step a
`sim.model.CorridorModel`, the same engine as a `mesa.Model`. These tests hold the two to
the same run bit for bit, and hold the run path (and the command line's one run) to
importing neither Mesa nor pandas, which took about 0.85 s of a one-year run's 2.6 s
(issue 13, target 2).
"""

from __future__ import annotations

import json
import subprocess
import sys

import mesa
import numpy as np
import pytest
from helpers import PROJECT, SCENARIOS

from sim.engine import WORLD_VIEWS, Engine
from sim.model import CorridorModel
from sim.runner import run_model
from sim.scenario import load_scenario


def recorded(model, steps: int) -> tuple[dict[str, np.ndarray], list[dict]]:
    for _ in range(steps):
        model.step()
    table = model.datacollector.get_model_vars_dataframe()
    return {c: table[c].to_numpy() for c in table.columns}, list(model.events)


@pytest.mark.parametrize(
    ("name", "overrides", "seed"),
    [
        ("baseline", [], 5),
        ("isis_resurgence", [], 11),
        ("syria_wide", ["steps=40"], 3),  # four theatres, spill-over, theatre-bound posting
        ("toy_two_towns", [], 0),
    ],
)
def test_the_engine_and_the_mesa_model_run_the_same_days_bit_for_bit(name, overrides, seed):
    config = load_scenario(SCENARIOS / f"{name}.yaml", overrides)
    steps = min(config.steps, 120)
    engine, model = Engine(config, seed=seed), CorridorModel(config, seed=seed)
    assert isinstance(model, mesa.Model) and not isinstance(engine, mesa.Model)
    columns, events = recorded(engine, steps)
    mesa_columns, mesa_events = recorded(model, steps)
    assert engine.steps == model.steps == steps
    assert list(columns) == list(mesa_columns)
    for column, values in columns.items():
        np.testing.assert_array_equal(values, mesa_columns[column], err_msg=column)
    assert events == mesa_events and len(events) > 0
    for view in ("influence", "control", "tension", "fighter_counts"):
        np.testing.assert_array_equal(getattr(engine, view), getattr(model, view), err_msg=view)
    # and run_model, which steps an Engine, records that same run
    result = run_model(config, seed, steps)
    assert list(result.timeseries.columns) == ["step", *columns]
    for column, values in columns.items():
        np.testing.assert_array_equal(result.timeseries[column].to_numpy(), values, err_msg=column)
    assert result.event_records == events


def test_the_engine_counts_its_days_and_records_the_initial_state_as_step_zero(baseline):
    engine = Engine(baseline, seed=2)
    assert engine.steps == 0 and engine.world.day == 0
    assert len(engine.datacollector.get_model_vars_dataframe()) == 1
    for day in (1, 2, 3):
        engine.step()
        assert engine.steps == engine.world.day == day
    assert len(engine.datacollector.get_model_vars_dataframe()) == 4
    assert engine.run_seed == 2 and Engine(baseline).run_seed == baseline.seed
    for view in WORLD_VIEWS:  # the world's fields read as the engine's own (the same objects)
        assert getattr(engine, view) is getattr(engine.world, view), view
    engine.close()
    engine.close()  # safe twice; what it recorded stays readable
    assert len(engine.datacollector.get_model_vars_dataframe()) == 4
    with Engine(baseline, seed=2) as again:  # a context manager, as CorridorModel is
        again.step()
    assert again.steps == 1
    with CorridorModel(baseline, seed=2) as model:
        model.step()
    assert model.steps == 1


def test_a_run_and_a_one_run_command_import_neither_mesa_nor_pandas(tmp_path):
    """Mesa (with scipy.spatial and networkx) and pandas took about 0.85 s of the command's start;
    the tables a run records are made with pandas only where they are read (a notebook, plots,
    a sweep's analysis)."""
    out = tmp_path / "run"
    script = (
        "import json, sys\n"
        "from sim.cli import main\n"
        f"status = main(['run', 'baseline', '--steps', '20', '--no-plots', '--out', {str(out)!r}])\n"
        "heavy = sorted(m for m in ('mesa', 'pandas', 'matplotlib', 'networkx') if m in sys.modules)\n"
        "print(json.dumps([status, heavy]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    status, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 0 and heavy == [], heavy
    assert (out / "manifest.json").is_file() and (out / "timeseries.csv").is_file()


def test_the_python_api_takes_the_days_the_command_line_takes():
    # sim.simulate("baseline", steps=-5) or steps=0 quietly returned day 0 alone, and steps=5.5
    # ran 5 days, where `--steps` and `steps:` refuse them.
    import sim
    from sim.runner import run_length, run_model

    config = load_scenario(SCENARIOS / "toy_two_towns.yaml")
    for bad in (-5, 0, 100_001, 5.5, "30", True):
        with pytest.raises(ValueError, match="steps must be"):
            run_length(config, bad)
    with pytest.raises(ValueError, match="steps must be between 1 and 100,000 days, got 0"):
        sim.simulate("toy_two_towns", steps=0)
    with pytest.raises(ValueError, match="steps must be a whole number of days, got 5.5"):
        run_model(config, 1, steps=5.5)
    with pytest.raises(ValueError, match="replicates must be a whole number >= 1, got 2.5"):
        sim.simulate("toy_two_towns", steps=2, replicates=2.5)
    assert run_length(config, None) == config.steps and run_length(config, np.int64(3)) == 3
    assert len(sim.simulate("toy_two_towns", steps=2).timeseries) == 3  # days 0, 1, 2
