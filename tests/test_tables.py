"""The run tables as CSV without pandas (`sim.tables`): the same files pandas wrote, and the same values back.

`timeseries.csv` and `events.csv` used to be pandas' `to_csv` of `sim.runner.stack_results`;
a run's command now writes them without importing pandas. For real runs the bytes, row
counts and text columns are pandas' own; for any event records (hypothesis), what
`sim.results.read_result_csv` reads back is the table pandas made, value for value.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS
from hypothesis import given
from hypothesis import strategies as st

from sim.results import file_record, read_result_csv
from sim.runner import events_table, run_model, stack_results
from sim.scenario import load_scenario
from sim.tables import events_csv, timeseries_csv


@pytest.fixture(scope="module")
def runs():
    """Two replicates each of scenarios with different factions, sites, events and a theatre grid."""
    made = {}
    for name in ("baseline", "isis_resurgence", "syria_wide", "toy_two_towns"):
        config = load_scenario(SCENARIOS / f"{name}.yaml", ["steps=90"])
        made[name] = [run_model(config, seed, replicate=k) for k, seed in enumerate((7, 8))]
    return made


@pytest.mark.parametrize("name", ["baseline", "isis_resurgence", "syria_wide", "toy_two_towns"])
@pytest.mark.parametrize("table", ["timeseries", "events"])
def test_the_tables_are_the_bytes_pandas_wrote_for_real_runs(runs, name, table):
    results = runs[name]
    frame = stack_results(results, table)
    expected = frame.to_csv(index=False).encode("utf-8")
    written = (timeseries_csv if table == "timeseries" else events_csv)(results)
    assert written.data == expected
    record = file_record(expected, frame)
    assert (written.rows, written.text_columns) == (record["rows"], record["text_columns"])
    assert file_record(written.data, written) == record


def test_runs_of_different_scenarios_or_none_are_refused(runs):
    with pytest.raises(ValueError, match="different columns"):
        timeseries_csv([runs["baseline"][0], runs["toy_two_towns"][0]])
    with pytest.raises(ValueError, match="no runs"):
        timeseries_csv([])


def test_runs_without_events_give_the_header_only():
    quiet = [SimpleNamespace(replicate=0, seed=1, event_records=[])]
    table = events_csv(quiet)
    assert table.data == b"replicate,seed,step,event\n" and table.rows == 0 and table.text_columns == ["event"]


# Event fields as the model writes them: each field holds one kind of value (counts, whole
# numbers written as floats, probabilities, names), or None where it does not apply; names
# that need quoting, NaN, and fields that only some events (or some runs) have.
NAMES = st.text(alphabet='abcXYZ ,"-_', min_size=1, max_size=6)
FIELDS = {
    "count": st.one_of(st.integers(-(10**6), 10**6), st.none()),
    "killed_a": st.one_of(st.integers(0, 500), st.integers(0, 500).map(float)),
    "p_success": st.one_of(st.floats(-1e9, 1e9), st.just(math.nan), st.none()),
    "site": st.one_of(NAMES, st.none()),
    "winner": NAMES,
}
RECORD = st.fixed_dictionaries(
    {"step": st.integers(0, 400), "event": st.sampled_from(["clash", "meeting", "defection"])}, optional=FIELDS
)


def _same(read: pd.Series, made: pd.Series, column: str) -> None:
    for k, (got, want) in enumerate(zip(read.tolist(), made.tolist())):
        want_missing = want is None or want is pd.NA or (isinstance(want, float) and math.isnan(want))
        got_missing = got is None or got is pd.NA or (isinstance(got, float) and math.isnan(got))
        assert got_missing == want_missing, (column, k, got, want)
        if want_missing:
            continue
        if isinstance(want, str) or isinstance(got, str):
            assert str(got) == str(want), (column, k, got, want)
        else:
            assert float(got) == float(want), (column, k, got, want)


@given(st.lists(st.lists(RECORD, max_size=6), min_size=1, max_size=3))
def test_any_events_read_back_as_the_table_pandas_makes(per_run):
    results = [
        SimpleNamespace(replicate=k, seed=100 + k, event_records=records, events=events_table(records))
        for k, records in enumerate(per_run)
    ]
    made = stack_results(results, "events")
    table = events_csv(results)
    assert table.rows == len(made)
    with tempfile.TemporaryDirectory() as scratch:  # read_result_csv reads a file
        path = Path(scratch) / "events.csv"
        path.write_bytes(table.data)
        read = read_result_csv(path, text_columns=table.text_columns, expected_rows=table.rows)
    assert list(read.columns) == list(made.columns)
    for column in made.columns:
        _same(read[column], made[column], column)
    for column in set(read.columns) - set(table.text_columns):  # numbers read back as numbers
        assert read[column].dtype.kind in "iuf", column


def test_where_the_files_differ_from_pandas_counts_stay_whole_and_step_stays_a_number():
    """On purpose: pandas judged each run's events apart, so a count one run lacked altogether became
    floats ("3.0"), and `step` of a set with an event-less run was called text. The values are the same."""
    runs = [
        SimpleNamespace(replicate=0, seed=1, event_records=[{"step": 1, "event": "defection", "count": 3}]),
        SimpleNamespace(replicate=1, seed=2, event_records=[{"step": 2, "event": "meeting", "p": 0.5}]),
        SimpleNamespace(replicate=2, seed=3, event_records=[]),
    ]
    for run in runs:
        run.events = events_table(run.event_records)
    made = stack_results(runs, "events")
    assert "3.0" in made.to_csv(index=False)  # what pandas wrote
    table = events_csv(runs)
    assert table.data.decode().splitlines() == [
        "replicate,seed,step,event,count,p",
        "0,1,1,defection,3,",
        "1,2,2,meeting,,0.5",
    ]
    assert table.text_columns == ["event"]
    records = [{"step": 0, "event": "x", "n": 2**53 + 1}, {"step": 1, "event": "x"}]
    big = [SimpleNamespace(replicate=0, seed=1, event_records=records)]
    assert b",9007199254740993\n" in events_csv(big).data  # an integer of any size, exactly


def test_whole_numbers_in_an_events_field_are_written_as_integers_even_with_gaps():
    records = [
        {"step": 1, "event": "clash", "killed_a": 2.0},
        {"step": 2, "event": "meeting", "p_success": 0.25},
        {"step": 3, "event": "clash", "killed_a": 3},
    ]
    text = events_csv([SimpleNamespace(replicate=0, seed=5, event_records=records)]).data.decode()
    assert text.splitlines() == [
        "replicate,seed,step,event,killed_a,p_success",
        "0,5,1,clash,2,",
        "0,5,2,meeting,,0.25",
        "0,5,3,clash,3,",
    ]
    assert np.float64(0.1).__str__() in events_csv(
        [SimpleNamespace(replicate=0, seed=5, event_records=[{"step": 0, "event": "x", "p": 0.1}])]
    ).data.decode()
