"""Event data: ACLED-layout export of a run's events, and compare-events against a synthetic export."""

from __future__ import annotations

import pandas as pd
import pytest
from test_cli import run_cli

import sim
from sim.acled import ACLED_COLUMNS, to_acled
from sim.results import load_run
from sim.scenario import load_scenario


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("acled") / "baseline-run"
    sim.simulate("baseline", seed=3, steps=30, replicates=2).save(out, plots=False)
    return out


def test_export_has_acled_columns_dates_and_coordinates(run_dir):
    done = run_cli("export-acled", run_dir)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(run_dir / "acled_events.csv")
    assert tuple(table.columns) == ACLED_COLUMNS
    assert len(table) > 0
    assert set(table["replicate"]) <= {0, 1}
    config = load_scenario(run_dir / "scenario.yaml")
    dates = pd.to_datetime(table["event_date"], format="%Y-%m-%d")
    start = pd.Timestamp(config.start_date)
    assert dates.min() >= start and dates.max() <= start + pd.Timedelta(days=30)
    assert (table["year"] == dates.dt.year).all()
    b = config.grid.bounds
    located = table.dropna(subset=["latitude", "longitude"])
    assert len(located) == len(table)  # baseline has bounds, every event has a cell or a site
    assert located["latitude"].between(b.lat_min, b.lat_max).all()
    assert located["longitude"].between(b.lon_min, b.lon_max).all()
    assert table["event_type"].isin(["Battles", "Strategic developments"]).all()
    assert pd.api.types.is_integer_dtype(table["fatalities"])
    labels = {f.label for f in config.factions.values()}
    assert set(table["actor1"]) <= labels


def test_fatalities_equal_the_killed_of_clashes_and_attacks(run_dir):
    run = load_run(run_dir)
    config = load_scenario(run_dir / "scenario.yaml")
    table = to_acled(run.events, config, run.maps)
    fighting = run.events[run.events["event"].isin(["clash", "insurgent_attack"])]
    killed = fighting.reindex(columns=["killed_a", "killed_b"]).fillna(0).to_numpy().sum()
    assert table["fatalities"].sum() == killed
    assert (table["event_type"] == "Battles").sum() == len(fighting)
    assert "defection" not in set(table["sub_event_type"])


def test_meeting_outcomes_and_no_bounds():
    config = load_scenario("scenarios/toy_two_towns.yaml")  # a grid without bounds
    events = pd.DataFrame(
        [
            {"replicate": 0, "seed": 1, "step": 5, "event": "meeting", "site": "bridge", "outcome": "agreement"},
            {"replicate": 0, "seed": 1, "step": 6, "event": "meeting", "site": "bridge", "outcome": "failure"},
            {"replicate": 0, "seed": 1, "step": 7, "event": "defection"},
            {"replicate": 0, "seed": 1, "step": 8, "event": "clash", "row": 0, "col": 0, "killed_a": 1, "killed_b": 2},
        ]
    )
    maps = {"site_names": ["bridge"], "site_labels": ["The bridge"], "site_rows": [6], "site_cols": [12]}
    table = to_acled(events, config, maps)
    assert list(table["sub_event_type"]) == ["Agreement", "Other", "Armed clash"]
    assert list(table["location"]) == ["The bridge", "The bridge", "cell 0,0"]
    assert table["latitude"].isna().all() and table["longitude"].isna().all()
    assert list(table["fatalities"]) == [0, 0, 3]
    assert table["event_date"].iloc[0] == "2019-11-06"


def test_compare_events_writes_table_and_plot(run_dir, tmp_path):
    observed = pd.DataFrame(
        {
            "event_id_cnty": ["SYN1", "SYN2", "SYN3", "SYN4"],
            "event_date": ["2019-11-03", "2019-11-20", "2019-12-02", "2020-01-15"],
            "year": [2019, 2019, 2019, 2020],
            "event_type": ["Battles", "Battles", "Strategic developments", "Violence against civilians"],
            "sub_event_type": ["Armed clash", "Armed clash", "Agreement", "Attack"],
            "actor1": ["A", "A", "A", "A"],
            "actor2": ["B", "B", "B", ""],
            "location": ["Town", "Town", "Town", "Town"],
            "latitude": [34.5] * 4,
            "longitude": [40.9] * 4,
            "fatalities": [2, 1, 0, 1],
        }
    )
    path = tmp_path / "observed.csv"
    observed.to_csv(path, index=False)
    out = tmp_path / "cmp"
    done = run_cli("compare-events", run_dir, path, "--out", out)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out / "comparison.csv")
    for column in (
        "month",
        "month_index",
        "event_type",
        "model_count_median",
        "model_count_p5",
        "model_count_p95",
        "model_fatalities_median",
        "observed_count",
        "observed_fatalities",
    ):
        assert column in table.columns
    nov = table[(table["month"] == "2019-11") & (table["event_type"] == "Battles")].iloc[0]
    assert nov["observed_count"] == 2 and nov["observed_fatalities"] == 3
    simulated = table.dropna(subset=["model_count_median"])
    assert len(simulated) > 0
    assert (simulated["model_count_p5"] <= simulated["model_count_median"]).all()
    assert (out / "plots" / "compare_events.png").stat().st_size > 1000


def test_malformed_observed_file_is_one_line_exit_2(run_dir, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,kind\n2019-11-01,Battles\n")
    done = run_cli("compare-events", run_dir, path, "--out", tmp_path / "cmp")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "missing column" in done.stderr
    path.write_text("event_date,event_type,fatalities\nnot-a-date,Battles,1\n")
    done = run_cli("compare-events", run_dir, path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
