"""A sweep's bookkeeping around each run (issue 13: at most a few milliseconds a run), without
changing a single number: a point validated once per worker for its replicates and without the
sections no run reads, the journal fsynced in the background, number overrides read without
the YAML parser, outcome totals without a regex over the columns.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS, every_outcome_name
from hypothesis import given
from hypothesis import strategies as st
from test_sweep import outcomes, start, toy_sweep_config

import sim.sweep
from sim.design import format_value, override_strings
from sim.outcomes import compute_outcomes
from sim.runner import run_model
from sim.scenario import DESIGN_SECTIONS, load_scenario
from sim.sweep import NOT_RUN, Journal, load_sweep, read_journal, run_base, run_sweep, scenario_for
from sim.yaml_source import parse_value


def test_every_run_of_a_sweep_is_the_scenario_file_run_with_its_point_set(tmp_path):
    directory = start(tmp_path, "s")
    run_sweep(directory)
    table = outcomes(directory)
    manifest, _, design = load_sweep(directory)
    assert len(table) == len(design) == 8 and (table.status == "ok").all()
    for record in design.to_dict("records"):
        sets = ["steps=25", *override_strings(record, manifest["parameters"])]
        alone = run_model(load_scenario(SCENARIOS / "toy_two_towns.yaml", sets), int(record["seed"]))
        values = compute_outcomes(manifest["outputs"], alone.timeseries, alone.events, alone.meta)
        row = table[(table.point == record["point"]) & (table.replicate == record["replicate"])].iloc[0]
        assert {name: row[name] for name in values} == pytest.approx(values, abs=0, rel=1e-12), record


def test_the_replicates_of_a_point_validate_it_once(tmp_path, monkeypatch):
    validated = []
    real = sim.sweep.scenario_for

    def counting(base, overrides, **kwargs):
        validated.append(tuple(overrides))
        return real(base, overrides, **kwargs)

    monkeypatch.setattr(sim.sweep, "scenario_for", counting)
    # A base of its own: a worker keeps the points of a base it has seen (this process, in other tests).
    directory = start(tmp_path, "s", f"description=validated once {tmp_path.name}")
    counts = run_sweep(directory)
    assert counts["runs"] == 8  # 4 points x 2 replicates
    points = [v for v in validated if v]
    assert len(points) == len(set(points)) == 4
    assert validated.count(()) == 1  # the base itself, once: the points take its untouched sections


def test_a_run_starts_from_the_scenario_without_the_sections_no_run_reads():
    config = toy_sweep_config()
    base = run_base(config)
    assert set(DESIGN_SECTIONS) | {"provenance"} == set(NOT_RUN)
    assert not set(base) & set(NOT_RUN) and "sweep" in config.model_dump()
    full, point = config.model_dump(), scenario_for(base, []).model_dump()
    assert {k: v for k, v in full.items() if k not in NOT_RUN} == {k: v for k, v in point.items() if k not in NOT_RUN}


def test_journal_lines_are_written_through_at_once_and_fsynced_in_the_background(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    rows = [{"point": i, "replicate": 0, "seed": 1, "status": "ok"} for i in range(3)]

    journal = Journal(tmp_path, sync_interval_s=3600)  # no background fsync during this test
    for row in rows:
        journal.append(row)
    assert [r["point"] for r in read_journal(tmp_path)] == [0, 1, 2]  # readable before any fsync
    assert synced == []
    journal.close()
    assert len(synced) == 1  # on close

    synced.clear()
    (tmp_path / sim.sweep.JOURNAL).unlink()
    journal = Journal(tmp_path, sync_interval_s=0.01)
    journal.append(rows[0])
    deadline = time.monotonic() + 60  # generous: a busy machine may be slow to schedule the thread
    while not synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert synced, "no background fsync within 60 s"
    journal.close()
    assert [r["point"] for r in read_journal(tmp_path)] == [0]


@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).map(format_value),
        st.integers(min_value=-(10**30), max_value=10**30).map(format_value),
        st.from_regex(r"\A-?(0|[1-9][0-9]{0,8}|0[0-9]{1,3})(\.[0-9]{1,6})?([eE][-+]?[0-9]{1,3})?\Z"),
    )
)
def test_a_number_set_reads_as_the_yaml_parser_reads_it(text):
    # With a space around it the text goes through the YAML parser, like any other value.
    def read(value_text):
        try:
            return "ok", parse_value(value_text)
        except sim.yaml_source.ScenarioError as error:
            return "refused", str(error.problems[0].message)

    quick, parsed = read(text), read(f" {text} ")
    assert quick[0] == parsed[0]
    if quick[0] == "ok":
        assert type(quick[1]) is type(parsed[1]) and quick[1] == parsed[1]


def test_totals_over_columns_sum_exactly_the_columns_of_the_prefix():
    from sim.outcomes import KINDS

    columns = {"step": [0, 1, 2], "killed.A": [0, 2, 3], "killed.B": [1, 0, 4], "killed_share": [9, 9, 9]}
    frame = pd.DataFrame({**columns, "wounded.A": [5, 5, 5]})
    assert KINDS["killed_total"].compute(frame, None, {}, None) == 10.0
    assert KINDS["wounded_total"].compute(frame, None, {}, None) == 15.0
    assert KINDS["killed_total"].compute(frame[["step"]], None, {}, None) == 0.0


# Example subjects of each outcome kind in toy_two_towns (as tests/test_figure_provenance.py).
TOY_SUBJECTS = {None: None, "faction": "Blue", "militia": "Blue", "pair": "Blue~Red", "flow": "Blue>Red",
                "site": "bridge", "holding": "Blue|Red@bridge", "days": "30"}  # fmt: skip


@pytest.fixture(scope="module")
def toy_run():
    result = run_model(load_scenario(SCENARIOS / "toy_two_towns.yaml", ["steps=120"]), 3)
    assert {"clash", "meeting", "new_headquarters"} <= {e["event"] for e in result.event_records}
    return result


def test_outcomes_that_do_not_read_the_event_log_are_the_same_without_it(toy_run):
    """A sweep builds a run's event table only for outcomes that read it (`reads_events`)."""
    from sim.outcomes import KINDS, reads_events

    differ = []
    for kind, spec in KINDS.items():
        subject = TOY_SUBJECTS[spec.subject]
        name = kind if subject is None else f"{kind}.{subject}"
        with_log = compute_outcomes([name], toy_run.timeseries, toy_run.events, toy_run.meta, missing_as_nan=True)
        without = compute_outcomes([name], toy_run.timeseries, None, toy_run.meta, missing_as_nan=True)
        if not reads_events(kind):
            assert without == pytest.approx(with_log, abs=0, rel=0, nan_ok=True), kind
        elif without != pytest.approx(with_log, abs=0, rel=0, nan_ok=True):
            differ.append(kind)
    assert {"clash_casualties_mean", "headquarters_opened"} <= set(differ)  # the readers do need the log


def test_the_event_table_is_built_only_when_an_outcome_reads_it_and_then_once(toy_run):
    built = []

    def build():
        built.append(1)
        return toy_run.events

    compute_outcomes(["killed_total", "territory_final.Blue"], toy_run.timeseries, build, toy_run.meta)
    assert built == []
    values = compute_outcomes(["killed_total", "annual_clash_toll", "clash_episodes"], toy_run.timeseries, build,
                              toy_run.meta)  # fmt: skip
    assert built == [1]
    assert values == compute_outcomes(["killed_total", "annual_clash_toll", "clash_episodes"], toy_run.timeseries,
                                      toy_run.events, toy_run.meta)  # fmt: skip


def test_a_runs_event_table_is_built_on_first_use_from_its_records(toy_run):
    from sim.runner import events_table

    table = toy_run.events
    assert table is toy_run.events  # kept
    assert table.equals(events_table(toy_run.event_records)) and len(table) == len(toy_run.event_records)
    assert str(table["killed_a"].dtype) == "Int64"  # whole numbers with gaps stay whole in CSV
    assert list(events_table([]).columns) == ["step", "event"]


def test_an_outcome_that_hides_its_use_of_the_log_counts_as_reading_it(monkeypatch, toy_run):
    """Inner functions, generators and partials that read the log are never judged not to need it."""
    import functools

    import sim.outcomes
    from sim.outcomes import KINDS, OutcomeKind, reads_events

    def nested(ts, events, meta, subject=None):
        return float(sum(1 for e in events["event"] if e == "clash"))  # the generator captures `events`

    def inner(ts, events, meta, subject=None):
        def count():
            return float((events["event"] == "clash").sum())

        return count()

    def with_extra(ts, events, meta, subject=None, kind="clash"):
        return float((events["event"] == kind).sum())

    def timeseries_only(ts, events, meta, subject=None):
        return float(ts["step"].iloc[-1])

    expected = float(sum(e["event"] == "clash" for e in toy_run.event_records))
    kinds = dict(KINDS)
    for name, function in [("t_nested", nested), ("t_inner", inner),
                           ("t_partial", functools.partial(with_extra, kind="clash")),
                           ("t_plain", timeseries_only)]:  # fmt: skip
        kinds[name] = OutcomeKind(name, None, "test", function, label="t", unit="u")
    monkeypatch.setattr(sim.outcomes, "KINDS", kinds)
    for name in ("t_nested", "t_inner", "t_partial"):
        assert reads_events(name)
        assert compute_outcomes([name], toy_run.timeseries, lambda: toy_run.events, toy_run.meta) == {name: expected}
    assert not reads_events("t_plain")


RUNS_FOR_OUTCOMES = [("toy_two_towns", ["steps=120"]),
                     ("isis_resurgence", ["steps=60", "rules.insurgency.attack_rate=0.05"])]  # fmt: skip


@pytest.mark.parametrize(("scenario", "overrides"), RUNS_FOR_OUTCOMES)
def test_outcomes_from_the_columns_they_read_equal_those_from_the_whole_table(scenario, overrides, toy_run):
    """A sweep hands its outcomes only the columns they read (`columns_read`), as arrays: the same values."""
    from sim.outcomes import COLUMNS_READ, KINDS, columns_read

    config = load_scenario(SCENARIOS / f"{scenario}.yaml", overrides)
    run = toy_run if scenario == "toy_two_towns" else run_model(config, 5)
    names = every_outcome_name(config)
    assert set(COLUMNS_READ) <= set(KINDS)
    for name in names:
        narrow = compute_outcomes([name], run.table, run.events, run.meta, missing_as_nan=True)
        whole = compute_outcomes([name], run.timeseries, run.events, run.meta, missing_as_nan=True)
        assert narrow == pytest.approx(whole, abs=0, rel=0, nan_ok=True), name
    # All at once (one table of every column they read) and the values moved in these runs.
    together = compute_outcomes(names, run.table, run.events, run.meta, missing_as_nan=True)
    assert together == pytest.approx(compute_outcomes(names, run.timeseries, run.events, run.meta,
                                                      missing_as_nan=True), abs=0, rel=0, nan_ok=True)  # fmt: skip
    assert sum(v not in (0.0,) and v == v for v in together.values()) > len(names) // 3
    assert columns_read([n for n in names if n.partition(".")[0] in COLUMNS_READ])  # every listed kind together


def test_a_table_function_is_asked_once_for_the_columns_the_outcomes_read(monkeypatch, toy_run):
    import sim.outcomes
    from sim.outcomes import KINDS, OutcomeKind

    asked = []

    def table(columns):
        asked.append(columns)
        return toy_run.table(columns)

    values = compute_outcomes(["killed_total", "territory_final.Blue", "tension_mean.Red~Blue"], table, None,
                              toy_run.meta)  # fmt: skip
    assert asked == [["killed.", "territory.Blue", "tension.Red~Blue", "tension.Blue~Red"]]
    wanted = {"step", "killed.Blue", "killed.Red", "territory.Blue", "tension.Blue~Red"}
    arrays = toy_run.table(asked[0])
    assert list(arrays) == [c for c in toy_run.timeseries.columns if c in wanted] and len(wanted) == 5
    for name, column in arrays.items():  # the table's values, read-only
        assert np.array_equal(column, toy_run.timeseries[name].to_numpy()) and not column.flags.writeable
    assert values["killed_total"] == toy_run.timeseries.filter(regex="^killed\\.").to_numpy().sum()
    # A kind that does not say what it reads gets the whole table.
    kinds = dict(KINDS)
    kinds["t_any"] = OutcomeKind("t_any", None, "test", lambda ts, e, m, s=None: float(len(ts.columns)), label="t",
                                 unit="u")  # fmt: skip
    monkeypatch.setattr(sim.outcomes, "KINDS", kinds)
    asked.clear()
    values = compute_outcomes(["killed_total", "t_any"], table, None, toy_run.meta)
    assert values["t_any"] == len(toy_run.timeseries.columns)
    assert asked == [None]


def test_a_runs_timeseries_is_made_on_first_use_and_not_carried_between_processes(toy_run):
    import pickle

    from sim.runner import RunResult

    fields = ("replicate", "seed", "recorded", "event_records", "influence", "control", "snapshot_steps",
              "clash_cells", "elapsed_s", "meta")  # fmt: skip
    fresh = RunResult(**{f: getattr(toy_run, f) for f in fields})
    assert fresh._timeseries is None
    narrow = fresh.table(["fighters."])
    assert fresh._timeseries is None  # a few columns do not make the whole table
    table = fresh.timeseries
    assert table is fresh.timeseries and fresh.table() is table
    pd.testing.assert_frame_equal(table, fresh.recorded.get_model_vars_dataframe(step_column="step"))
    assert list(narrow) == ["step", *[c for c in table if c.startswith("fighters.")]]
    pd.testing.assert_frame_equal(pd.DataFrame(narrow), table[list(narrow)])
    sent = pickle.loads(pickle.dumps(fresh))
    assert sent._timeseries is None and sent._events is None
    pd.testing.assert_frame_equal(sent.timeseries, table)
    assert len(pickle.dumps(fresh)) < 1.2 * len(pickle.dumps(sent))


# Keys of several sections, and values that validate or not (wrong types, out of range, not finite).
_POINT_KEYS = ["rules.recruitment.beta_salary", "rules.clashes.p_max", "rules.mediation.p_success_base",
               "factions.Blue.salary_usd_month", "factions.Red.initial_fighters", "sites.bridge.population",
               "grid.width", "steps", "name", "rules.insurgency.growth_per_clash", "rules.no_such_key"]  # fmt: skip
_POINT_VALUES = ["0.5", "3", "-1", "0", "1e9", ".nan", "'text'", "null", "[1, 2]", "{a: 1}", "250", "true"]


@given(st.lists(st.tuples(st.sampled_from(_POINT_KEYS), st.sampled_from(_POINT_VALUES)), max_size=4))
def test_a_point_validated_against_its_validated_base_is_the_point_validated_whole(assignments):
    """`scenario_for(..., validated_base=)` takes the untouched sections from the base: same scenario, same errors."""
    from sim.yaml_source import ScenarioError

    base = run_base(toy_sweep_config())
    known = scenario_for(base, [])
    overrides = [f"{key}={value}" for key, value in assignments]
    try:
        whole = scenario_for(base, overrides)
    except ScenarioError as error:
        with pytest.raises(ScenarioError) as shortcut:
            scenario_for(base, overrides, validated_base=known)
        assert str(shortcut.value) == str(error)
        return
    quick = scenario_for(base, overrides, validated_base=known)
    assert quick == whole and quick.model_dump() == whole.model_dump()
    assert base == run_base(toy_sweep_config())  # the base is never changed
    untouched = {name for name in base if not any(key.split(".")[0] == name for key, _ in assignments)}
    # taken as they were, not validated again: the same objects (a mapping of them is a new dict)
    assert all(getattr(quick, name) is getattr(known, name) for name in untouched & {"rules", "grid"})
    if "sites" in untouched:
        assert all(quick.sites[name] is site for name, site in known.sites.items())


@pytest.mark.parametrize("steps", [1, 30])
def test_a_short_runs_result_keeps_its_own_rows_within_the_memory_estimate(steps, baseline):
    """A run shorter than its scenario keeps (and pickles) its own rows, not a buffer for the scenario's steps."""
    import pickle

    from sim.limits import estimate_result_bytes

    result = run_model(baseline, 3, steps)
    assert len(result.recorded.ints) == len(result.timeseries) == steps + 1
    kept = sum(a.nbytes for a in (result.recorded.ints, result.recorded.floats, result.recorded.sites))
    assert kept + result.influence.nbytes + result.control.nbytes <= estimate_result_bytes(baseline, steps)
    assert len(pickle.dumps(result)) <= 2 * estimate_result_bytes(baseline, steps)
