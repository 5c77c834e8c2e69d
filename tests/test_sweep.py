"""Sweeps: the same numbers whichever executor ran them, crash-safe and resumable, bad input refused."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers import PROJECT, SCENARIOS

from sim.cli import main
from sim.executors import make_backend
from sim.outcomes import compute_outcomes
from sim.results import ResultFileError, display_path
from sim.runner import run_model
from sim.scenario import load_scenario
from sim.sweep import (
    JOURNAL,
    load_sweep,
    read_journal,
    run_sweep,
    scenario_for,
    start_sweep,
)

RUN_PY = PROJECT / "run.py"
TOY_SWEEP = [
    "sweep={design: grid, replicates: 2, parameters: {factions.Red.salary_usd_month: [120, 200],"
    " rules.clashes.p_max: [0.004, 0.02]}, outputs: [killed_total, defections.Blue>Red, territory_final.Red,"
    " control_change_step.bridge, insurgent_peak]}",
    "steps=25",
]


def without_steps(overrides):
    return [o for o in overrides if not o.startswith("steps=")]


def toy_sweep_config(*extra):
    return load_scenario(SCENARIOS / "toy_two_towns.yaml", [*TOY_SWEEP, *extra])


def start(tmp_path, name, *extra):
    return start_sweep(
        toy_sweep_config(*extra),
        out=tmp_path / name,
        root_seed=11,
        steps=None,
        scenario_file=str(SCENARIOS / "toy_two_towns.yaml"),
        overrides=[],
        executor_name="test",
    )


def outcomes(directory) -> pd.DataFrame:
    return pd.read_csv(Path(directory) / "outcomes.csv").drop(columns=["elapsed_s"])


def test_design_files_and_common_random_numbers(tmp_path):
    directory = start(tmp_path, "s")
    design = pd.read_csv(directory / "design.csv")
    assert len(design) == 4 * 2
    seeds = design.groupby("replicate").seed.nunique()
    assert (seeds == 1).all()  # replicate k has one seed at every point
    assert design.groupby("point").seed.nunique().eq(2).all()
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["kind"] and manifest["n_runs"] == 8 and manifest["status"] == "running"
    assert "--seed" in manifest["rerun_example"] and "--set" in manifest["rerun_example"]


@pytest.mark.slow
def test_serial_processes_and_dask_give_identical_outcomes(tmp_path):
    serial = start(tmp_path, "serial")
    run_sweep(serial, workers=1)
    pooled = start(tmp_path, "pooled")
    run_sweep(pooled, workers=2)
    dask = start(tmp_path, "dask")
    run_sweep(dask, workers=2, dask="local")
    reference = outcomes(serial)
    assert (reference.status == "ok").all() and len(reference) == 8
    pd.testing.assert_frame_equal(reference, outcomes(pooled), check_exact=True)
    pd.testing.assert_frame_equal(reference, outcomes(dask), check_exact=True)
    assert json.loads((serial / "manifest.json").read_text())["status"] == "complete"


def test_a_point_reruns_alone_with_its_seed_and_parameters(tmp_path):
    directory = start(tmp_path, "s")
    run_sweep(directory)
    table = outcomes(directory)
    row = table.iloc[5]
    manifest, config, design = load_sweep(directory)
    from sim.design import override_strings

    record = design[(design.point == row.point) & (design.replicate == row.replicate)].iloc[0].to_dict()
    base = load_scenario(SCENARIOS / "toy_two_towns.yaml", ["steps=25"])
    alone = run_model(
        load_scenario(
            SCENARIOS / "toy_two_towns.yaml", ["steps=25", *override_strings(record, manifest["parameters"])]
        ),
        int(row.seed),
    )
    assert base.steps == 25
    values = compute_outcomes(manifest["outputs"], alone.timeseries, alone.events, alone.meta)
    for name, value in values.items():
        assert row[name] == pytest.approx(value, abs=0, rel=1e-12), name


def test_a_run_that_raises_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import sim.sweep

    real = sim.sweep.run_model

    def flaky(config, seed, steps=None, replicate=0, on_step=None):
        if config.factions["Red"].salary_usd_month == 200 and replicate == 1:
            raise RuntimeError("simulated crash")
        return real(config, seed, steps, replicate)

    monkeypatch.setattr(sim.sweep, "run_model", flaky)
    directory = start(tmp_path, "s")
    counts = run_sweep(directory)
    table = outcomes(directory)
    failed = table[table.status == "failed"]
    assert counts["failed"] == len(failed) == 2
    assert failed.error.str.contains("simulated crash").all()
    assert (table[table.status == "ok"].replicate.isin([0, 1])).all() and len(table) == 8


def test_a_run_whose_timeseries_cannot_be_written_fails_without_outcomes(tmp_path, monkeypatch, capsys):
    """Its row kept the outcomes computed before the write failed: a failed run with outcomes, which
    the journal's check refuses (a failed run records none), and outcomes.csv held them."""
    import sim.sweep

    real = sim.sweep._write_parquet

    def disk_full(directory, task, timeseries):
        if task.point == 1:
            raise OSError(28, "No space left on device")
        real(directory, task, timeseries)

    monkeypatch.setattr(sim.sweep, "_write_parquet", disk_full)
    directory = start(tmp_path, "s", "sweep.timeseries=true")
    assert run_sweep(directory)["failed"] == 2
    failed = [row for row in read_journal(directory) if row["status"] == "failed"]
    assert len(failed) == 2 and all(row["error"] == "OSError: [Errno 28] No space left on device" for row in failed)
    assert not any("killed_total" in row for row in failed)
    table = outcomes(directory)
    assert table[table.status == "failed"].killed_total.isna().all()
    assert main(["analyze", str(directory)]) == 0, capsys.readouterr().err


@pytest.mark.slow
def test_executor_keeps_a_bounded_number_of_runs_in_flight():
    pulled = []

    def tasks():
        for i in range(40):
            pulled.append(i)
            yield i

    with make_backend(2) as backend:
        seen = []
        for index, result in backend.map(_square, tasks()):
            seen.append(index)
            assert result == index * index
            assert len(pulled) - len(seen) <= 4 * 2  # never more than the window ahead
    assert sorted(seen) == list(range(40))


def _square(x):
    return x * x


def test_timeseries_are_kept_as_parquet_when_asked(tmp_path):
    config = toy_sweep_config("sweep.timeseries=true", "sweep.replicates=1")
    directory = start_sweep(
        config, out=tmp_path / "t", root_seed=3, steps=None, scenario_file=None, overrides=[], executor_name="test"
    )
    run_sweep(directory)
    files = sorted((directory / "timeseries").rglob("*.parquet"))
    assert len(files) == 4
    frame = pd.read_parquet(files[0])
    assert frame.step.max() == 25 and "fighters.Red" in frame


def _start_cli_sweep(out: Path) -> subprocess.Popen:
    args = [
        sys.executable,
        str(RUN_PY),
        "sweep",
        str(SCENARIOS / "toy_two_towns.yaml"),
        "--seed",
        "11",
        "--out",
        str(out),
        "--no-analysis",
    ]
    for override in without_steps(TOY_SWEEP):  # steps given below: a key given twice is refused
        args += ["--set", override]
    args += ["--set", "sweep.replicates=6", "--set", "steps=40"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_outcomes(tmp_path):
    whole = _start_cli_sweep(tmp_path / "whole")
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    victim = _start_cli_sweep(tmp_path / "killed")
    journal = tmp_path / "killed" / JOURNAL
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if journal.exists() and len(read_journal(tmp_path / "killed")) >= 5:
            break
        time.sleep(0.02)
    assert victim.poll() is None, "the sweep finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    finished_before = len(read_journal(tmp_path / "killed"))
    assert 5 <= finished_before < 24
    assert not (tmp_path / "killed" / "outcomes.csv").exists()  # no partial file posing as complete
    with open(journal, "ab") as handle:  # as if the kill had torn the last line in half
        handle.write(b'{"point": 3, "replicate"')
    analyze = subprocess.run(
        [sys.executable, str(RUN_PY), "analyze", str(tmp_path / "killed")], capture_output=True, text=True, timeout=120
    )  # unfinished: says how to finish it (was "not a sweep directory (missing outcomes.csv)")
    assert analyze.returncode == 2 and analyze.stderr.count("\n") == 1, analyze.stderr
    assert "an unfinished sweep (no outcomes.csv yet): finish it with python run.py sweep " in analyze.stderr
    assert "toy_two_towns.yaml --resume " in analyze.stderr, analyze.stderr  # its scenario, from the manifest
    assert f"--resume {tmp_path / 'killed'}, then analyze it" in analyze.stderr, analyze.stderr

    resume = [
        sys.executable,
        str(RUN_PY),
        "sweep",
        str(SCENARIOS / "toy_two_towns.yaml"),
        "--resume",
        str(tmp_path / "killed"),
        "--no-analysis",
    ]
    for override in without_steps(TOY_SWEEP):  # steps given below: a key given twice is refused
        resume += ["--set", override]
    resume += ["--set", "sweep.replicates=6", "--set", "steps=40"]  # the sweep's own scenario, or refused
    done = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_journal(tmp_path / "killed")
    assert len(rows) == 24  # only the missing runs were run, none twice
    pd.testing.assert_frame_equal(outcomes(tmp_path / "whole"), outcomes(tmp_path / "killed"), check_exact=True)


def run_cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, str(RUN_PY), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_bad_sweep_input_is_refused_in_one_line(tmp_path, capsys):
    # In-process (sim.cli.main, as run.py calls it): the same exit status and stderr, without
    # a Python start-up per case; the subprocess path is covered by the other CLI tests.
    def run_cli(*args):
        status = main([str(a) for a in args])
        return SimpleNamespace(returncode=status, stderr=capsys.readouterr().err)

    not_a_sweep = tmp_path / "plain"
    not_a_sweep.mkdir()
    done = run_cli("sweep", "sweep_salary_mediation", "--resume", not_a_sweep)
    assert done.returncode == 2 and "not a sweep directory" in done.stderr and len(done.stderr.splitlines()) == 1

    other = start(tmp_path, "toy")
    done = run_cli("sweep", "sweep_salary_mediation", "--resume", other)
    assert done.returncode == 2 and "belongs to scenario" in done.stderr

    done = run_cli("sweep", "baseline", "--out", tmp_path / "x")
    assert done.returncode == 2 and "no `sweep:` section" in done.stderr and not (tmp_path / "x").exists()

    for override, fragment in [
        ("sweep.replicates=0", "greater than or equal to 1"),
        ("sweep.design=lhs", "needs `samples`"),
        ("sweep.parameters={rules.clashes.p_max: {low: 0.5, high: 0.1}}", "empty range"),
        ("sweep.parameters={rules.no_such.key: [1, 2]}", "is not a scenario parameter"),
    ]:
        done = run_cli("sweep", "sweep_salary_mediation", "--set", override, "--out", tmp_path / "y")
        assert done.returncode == 2, override
        assert fragment in done.stderr, (override, done.stderr)
        assert not (tmp_path / "y").exists()


CROSSING_RANGES = """\
extends: {toy}
name: crossing_ranges
steps: 5
grid:
  bounds: {{lat_min: 34.0, lat_max: 35.5, lon_min: 40.0, lon_max: 41.0}}
sweep:
  design: lhs
  samples: 4
  parameters:
    grid.bounds.lat_min: {{low: 34.0, high: {lat_min_high}}}
    grid.bounds.lat_max: {{low: 34.5, high: 35.5}}
    rules.clashes.p_max: [0.004, 0.02]
  outputs: [clashes_total]
"""


def test_ranges_that_together_make_an_invalid_scenario_are_refused_before_any_run(tmp_path, capsys):
    """Sweeping lat_min up to 35 and lat_max down to 34.5 validated; some of its runs then failed.

    Each end is valid alone; the corners of the design are tried together at validation, and
    the failing one is cut down to the values it needs.
    """
    path = tmp_path / "crossing.yaml"
    path.write_text(CROSSING_RANGES.format(toy=SCENARIOS / "toy_two_towns.yaml", lat_min_high=35.0))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{path}:11: sweep.parameters.grid.bounds.lat_max: the swept values make an invalid scenario together at "
        "grid.bounds.lat_min=35.0, grid.bounds.lat_max=34.5: lat_min (35.0) must be below lat_max (34.5)"
    ], err
    assert not out.exists()
    # Ranges that cannot cross are accepted.
    path.write_text(CROSSING_RANGES.format(toy=SCENARIOS / "toy_two_towns.yaml", lat_min_high=34.4))
    assert main(["validate", str(path)]) == 0


INTEGER_RANGE = """\
extends: {toy}
name: integer_range
steps: 5
sweep:
  design: {design}
  samples: 3
  parameters:
    rules.clashes.min_fighters: {{low: {low}, high: {high}, integer: true}}
  outputs: [clashes_total]
"""


@pytest.mark.parametrize("design", ["grid", "lhs"])
def test_an_integer_range_is_validated_at_the_whole_numbers_the_design_draws(design, tmp_path, capsys):
    """Integer ranges were tried at their ends rounded, but the design draws ceil(low)..floor(high).

    min_fighters (at least 1) over [0.4, 3.6] draws 1, 2 and 3, yet was refused at round(0.4) = 0;
    [5.2, 5.8] draws nothing, yet validated (lhs: the sweep then stopped with an internal error;
    grid: validate did).
    """
    from sim.design import build_design

    path = tmp_path / "integer.yaml"
    path.write_text(INTEGER_RANGE.format(toy=SCENARIOS / "toy_two_towns.yaml", design=design, low=0.4, high=3.6))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    drawn = set(build_design(load_scenario(path).sweep, 1)["rules.clashes.min_fighters"])
    assert drawn <= {1, 2, 3} and len(drawn) == 3, drawn
    path.write_text(INTEGER_RANGE.format(toy=SCENARIOS / "toy_two_towns.yaml", design=design, low=5.2, high=5.8))
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"{path}:8: sweep.parameters.rules.clashes.min_fighters: integer range [5.2, 5.8] contains no whole number"
    ), err
    assert not out.exists()


def test_a_design_point_that_does_not_validate_names_the_sweep_file_and_its_values(tmp_path, monkeypatch):
    """A failed point's error was 'ScenarioError: <sweep base>: grid.bounds: ...': no file, no swept value."""
    import sim.sweep
    from sim.yaml_source import Problem, ScenarioError

    real = sim.sweep.point_scenario

    def refusing(job, overrides):  # as a rule the corners of the design cannot catch would
        if "factions.Red.salary_usd_month=200" in overrides:
            raise ScenarioError([Problem("--set", "factions.Red.salary_usd_month", None, "too much for Red")])
        return real(job, overrides)

    monkeypatch.setattr(sim.sweep, "point_scenario", refusing)
    directory = start(tmp_path, "s")
    assert run_sweep(directory)["failed"] == 4
    failed = outcomes(directory).query("status == 'failed'")
    for row in failed.to_dict("records"):
        assert row["error"] == (
            f"ScenarioError: {display_path(SCENARIOS / 'toy_two_towns.yaml')}: design point {row['point']} "
            f"(factions.Red.salary_usd_month=200, rules.clashes.p_max={row['rules.clashes.p_max']}): "
            "factions.Red.salary_usd_month: too much for Red"
        ), row["error"]


@pytest.mark.slow
def test_unreachable_dask_scheduler_fails_fast(tmp_path):
    started = time.monotonic()
    done = run_cli("sweep", "sweep_salary_mediation", "--dask", "tcp://127.0.0.1:9", "--out", tmp_path / "d")
    assert done.returncode == 2
    assert "cannot reach the Dask scheduler" in done.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "d").exists()


def test_scenario_for_applies_overrides_to_the_base():
    config = toy_sweep_config()
    base = config.model_dump(mode="json")
    base.pop("sweep")
    changed = scenario_for(base, ["factions.Red.salary_usd_month=999"])
    assert changed.factions["Red"].salary_usd_month == 999


@pytest.mark.slow
def test_the_manifest_rerun_command_reproduces_the_first_run(tmp_path):
    directory = start(tmp_path, "s")
    run_sweep(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    command = manifest["rerun_example"].split()
    assert command[:3] == ["python", "run.py", "run"]
    out = tmp_path / "alone"
    done = subprocess.run(
        [sys.executable, str(RUN_PY), *command[2:], "--out", str(out), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT,
    )
    assert done.returncode == 0, done.stderr
    run_manifest = json.loads((out / "manifest.json").read_text())
    timeseries = pd.read_csv(out / "timeseries.csv")
    events = pd.read_csv(out / "events.csv")
    meta = {"first_control_change": run_manifest["replicates"][0]["first_control_change"]}
    values = compute_outcomes(manifest["outputs"], timeseries, events, meta)
    first = outcomes(directory).iloc[0]
    for name, value in values.items():
        assert first[name] == pytest.approx(value, rel=1e-12), name


def test_finished_runs_leave_no_model_behind():
    """Memory stays flat over many runs: no finished model is kept alive (mesa#3179 on 3.3)."""
    import gc
    import weakref

    import sim.runner
    from sim.engine import Engine

    config = load_scenario(SCENARIOS / "toy_two_towns.yaml", ["steps=2"])
    built = []
    original = sim.runner.Engine

    class Watched(Engine):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(weakref.ref(self))

    sim.runner.Engine = Watched
    try:
        for seed in range(5):
            run_model(config, seed)
    finally:
        sim.runner.Engine = original
    gc.collect()
    assert len(built) == 5
    assert all(ref() is None for ref in built)


def _die_once_then_square(directory, x):
    """A run whose worker process dies the first time it runs it (as if killed or out of memory)."""
    marker = Path(directory) / f"died-{x}"
    if x == 3 and not marker.exists():
        marker.write_text("")
        os._exit(1)
    return x * x


@pytest.mark.slow
def test_dask_reruns_the_runs_of_a_worker_that_dies(tmp_path):
    from functools import partial

    with make_backend(2, "local") as backend:
        results = sorted(result for _, result in backend.map(partial(_die_once_then_square, str(tmp_path)), range(8)))
    assert (tmp_path / "died-3").exists()  # the worker did die...
    assert results == [x * x for x in range(8)]  # ...and its run was done again elsewhere
    # Once closed, Dask's late teardown messages (INFO with a traceback) stay out of the job's log.
    assert logging.getLogger("distributed.batched").getEffectiveLevel() >= logging.ERROR


@pytest.mark.slow
def test_the_sweep_command_analyses_after_the_runs_unless_told_not_to(tmp_path):
    """run_sweep only runs; `run.py sweep` then calls the analysis (summary.csv, plots/)."""
    common = ["sweep", SCENARIOS / "toy_two_towns.yaml", "--seed", 11, "--workers", 2]
    for override in without_steps(TOY_SWEEP):  # steps given below: a key given twice is refused
        common += ["--set", override]
    common += ["--set", "sweep.replicates=1", "--set", "steps=10"]
    done = run_cli(*common, "--out", tmp_path / "a")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a" / "summary.csv").is_file() and list((tmp_path / "a" / "plots").glob("*.png"))
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["executor"] == "processes:2" and manifest["status"] == "complete"
    done = run_cli(*common, "--out", tmp_path / "b", "--no-analysis")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "b" / "summary.csv").exists() and (tmp_path / "b" / "outcomes.csv").is_file()


def test_an_interrupted_sweep_says_so_in_its_manifest(tmp_path):
    directory = start(tmp_path, "cut")
    seen = []

    def stop_after_three(row):
        seen.append(row)
        if len(seen) == 3:
            raise KeyboardInterrupt  # as Ctrl-C would, between two runs

    with pytest.raises(KeyboardInterrupt):
        run_sweep(directory, on_row=stop_after_three)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["last_session"]["runs"] == 3
    assert not (directory / "outcomes.csv").exists()
    assert manifest["journal_runs"] == 3  # counted once the journal's lines were on disk
    lost = tmp_path / "lost"
    shutil.copytree(directory, lost)
    counts = run_sweep(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert counts["done_before"] == 3 and manifest["status"] == "complete" and "interrupted_utc" not in manifest
    assert manifest["journal_runs"] == counts["total"]
    # The interrupted sweep's journal cut to two runs: resuming would run the third again unsaid.
    (lost / "runs.jsonl").write_bytes(b"".join((lost / "runs.jsonl").read_bytes().splitlines(keepends=True)[:2]))
    with pytest.raises(ResultFileError, match=r"runs.jsonl: holds 2 of the 3 finished runs manifest.json counted"):
        run_sweep(lost)
    assert len((lost / "runs.jsonl").read_bytes().splitlines()) == 2 and not (lost / "outcomes.csv").exists()


def test_a_second_signal_while_the_interrupt_is_recorded_waits_for_the_record(tmp_path, monkeypatch):
    # GNU timeout and Slurm signal the process, then its group: the second signal, raised while the
    # first was recorded, left the manifest "running" with no count of the journal's runs.
    import sim.sweep

    directory = start(tmp_path, "twice")
    real_write = sim.sweep._write_json
    seconds = []

    def write_with_a_second_signal(path, data):
        if data.get("status") == "interrupted" and not seconds:
            seconds.append(1)
            signal.raise_signal(signal.SIGINT)  # held back until the record is written
        real_write(path, data)

    monkeypatch.setattr(sim.sweep, "_write_json", write_with_a_second_signal)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    seen = []

    def stop_after_two(row):
        seen.append(row)
        if len(seen) == 2:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(directory, on_row=stop_after_two)
    finally:
        signal.signal(signal.SIGINT, previous)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert seconds and manifest["status"] == "interrupted" and manifest["journal_runs"] == 2


def _wrapped_interrupt(interrupt: KeyboardInterrupt) -> SystemError:
    """What a signal's exception becomes when its handler runs inside a numba dispatcher's call."""
    try:
        try:
            raise interrupt
        except KeyboardInterrupt as cause:
            message = "CPUDispatcher(<function _pair_ground>) returned a result with an exception set"
            raise SystemError(message) from cause
    except SystemError as error:
        return error


@pytest.mark.parametrize("kind", ["sigint", "sigterm"])
def test_an_interrupt_wrapped_in_a_kernels_error_stops_the_sweep_and_is_no_failed_run(tmp_path, monkeypatch, kind):
    """CI once saw a SIGTERM'd sweep finish with exit 0 and "1 of 24 runs failed": the handler ran
    inside a compiled kernel's call and the interrupt came back as a SystemError, recorded as a
    failure. The interrupt (Ctrl-C or SIGTERM's `Terminated`) must stop the sweep as it does
    between runs: manifest "interrupted", the runs before it kept, none marked failed."""
    import sim.sweep
    from sim.cli import Terminated

    interrupt = KeyboardInterrupt() if kind == "sigint" else Terminated()
    real, calls = sim.sweep.run_model, []

    def interrupted_in_the_third_run(config, seed, steps=None, replicate=0, on_step=None):
        calls.append(seed)
        if len(calls) == 3:
            raise _wrapped_interrupt(interrupt)
        return real(config, seed, steps, replicate)

    monkeypatch.setattr(sim.sweep, "run_model", interrupted_in_the_third_run)
    directory = start(tmp_path, "cut")
    with pytest.raises(KeyboardInterrupt) as raised:
        run_sweep(directory)
    assert raised.value is interrupt
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["last_session"]["runs"] == 2
    assert [row["status"] for row in read_journal(directory)] == ["ok", "ok"]
    monkeypatch.setattr(sim.sweep, "run_model", real)
    counts = run_sweep(directory)
    assert counts["done_before"] == 2 and counts["failed"] == 0 and len(outcomes(directory)) == 8


def test_the_cli_reports_a_wrapped_interrupt_as_the_interrupt_not_an_internal_error(monkeypatch, capsys):
    """Exit 143/130 with the interrupt's one line, not exit 1 "internal error: SystemError"."""
    from sim import cli

    cases = [(cli.Terminated(), 143, "terminated (SIGTERM)"), (KeyboardInterrupt(), 130, "interrupted")]
    for interrupt, status, said in cases:

        def command(args, interrupt=interrupt):
            raise _wrapped_interrupt(interrupt)

        monkeypatch.setitem(cli.COMMANDS, "list", command)
        assert cli.main(["list"]) == status
        err = capsys.readouterr().err
        assert err.startswith(said) and "internal error" not in err and "SystemError" not in err


def _interrupted(directory) -> None:
    """run_sweep, patched to be interrupted, raises it and leaves the manifest "interrupted", with the time."""
    with pytest.raises(KeyboardInterrupt):
        run_sweep(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "interrupted_utc" in manifest


def _resumed(directory) -> dict:
    """run_sweep again, unpatched: the manifest is "complete", without the interrupt's time; its counts."""
    counts = run_sweep(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "interrupted_utc" not in manifest
    return counts


def test_an_interrupt_after_the_last_run_marks_the_manifest_interrupted(tmp_path, monkeypatch):
    """Seen with --dask local (the cluster closes slowly): a signal after the last run, while the
    backend closed or outcomes.csv was written, left the manifest saying "running"."""
    import sim.sweep

    real = sim.sweep.finalize_outcomes

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.sweep, "finalize_outcomes", interrupted)
    directory = start(tmp_path, "late")
    _interrupted(directory)
    assert len(read_journal(directory)) == 8  # every run kept
    monkeypatch.setattr(sim.sweep, "finalize_outcomes", real)
    counts = _resumed(directory)
    assert counts["runs"] == 0 and counts["finished"] == 8


@pytest.mark.parametrize("where", ["make_backend", "SweepJob"])
def test_an_interrupt_while_the_workers_start_marks_the_manifest_interrupted(tmp_path, monkeypatch, where):
    """Seen by a fresh-user check: a signal in the seconds a process pool takes to start, before any
    run, left the manifest "running"; the workers started are stopped too."""
    import sim.sweep

    closed = []
    real_make = sim.sweep.make_backend

    def make_then_watch(*args, **kwargs):
        backend = real_make(*args, **kwargs)
        real_close = backend.close
        backend.close = lambda: (closed.append(1), real_close())
        return backend

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.sweep, "make_backend", interrupted if where == "make_backend" else make_then_watch)
    if where == "SweepJob":
        monkeypatch.setattr(sim.sweep, "SweepJob", interrupted)
    directory = start(tmp_path, "early")
    _interrupted(directory)
    assert closed == ([1] if where == "SweepJob" else [])
    monkeypatch.undo()
    assert _resumed(directory)["finished"] == 8


def test_an_interrupt_during_the_analysis_says_the_runs_are_done_and_how_to_redo_it(tmp_path, monkeypatch, capsys):
    """The runs are complete (manifest "complete"); only the summaries and plots were cut short."""
    import sim.analysis
    from sim import cli

    def interrupted(directory):
        raise cli.Terminated

    monkeypatch.setattr(sim.analysis, "analyze", interrupted)
    out = tmp_path / "analysed"
    args = ["sweep", str(SCENARIOS / "toy_two_towns.yaml"), "--seed", "11", "--out", str(out)]
    for override in TOY_SWEEP:
        args += ["--set", override]
    assert cli.main(args) == 143
    err = capsys.readouterr().err.strip()
    assert err == f"terminated (SIGTERM) during the analysis; every run is kept: redo it with run.py analyze {out}"
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_sigterm_interrupts_a_sweep_cleanly(tmp_path):
    """SIGTERM (a scheduler's stop, `kill PID`): exit 143, manifest "interrupted", lock released, resumable."""
    from sim.results import lock_path

    victim = _start_cli_sweep(tmp_path / "term")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if (tmp_path / "term" / JOURNAL).exists() and len(read_journal(tmp_path / "term")) >= 2:
            break
        time.sleep(0.02)
    assert victim.poll() is None, "the sweep finished before it could be stopped"
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(timeout=120) == 143, victim.stderr.read()
    assert "terminated (SIGTERM); finished runs are kept" in victim.stderr.read()
    manifest = json.loads((tmp_path / "term" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and not lock_path(tmp_path / "term").exists()


def test_an_output_listed_twice_is_refused_before_any_run(tmp_path, capsys):
    # Each output is a column of outcomes.csv: a sweep listing one twice ran every run, then
    # wrote a table with a repeated column that neither analyze nor --resume could read.
    scenario = tmp_path / "dup.yaml"
    scenario.write_text(
        f"extends: {SCENARIOS / 'toy_two_towns.yaml'}\n"
        "name: dup_outputs\n"
        "sweep:\n"
        "  parameters:\n"
        "    factions.Red.salary_usd_month: [100, 200]\n"
        "  outputs: [killed_total, clashes_total, killed_total]\n"
    )
    out = tmp_path / "sweep"
    assert main(["sweep", str(scenario), "--steps", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{scenario}:6: sweep.outputs: " in err and "killed_total listed more than once" in err, err
    assert not out.exists()
    # The validation's per-run outcomes and the variants' compared outcomes are columns too.
    for key in ("validation.outcomes", "validation.compare_outcomes"):
        assert main(["validate", "toy_two_towns", "--set", f"{key}=[clashes_total, clashes_total]"]) == 2
        assert f"--set: {key}: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        ("[100, .nan]", ":5: sweep.parameters.factions.Red.salary_usd_month.1: input should be a finite number"),
        ("{low: 100, high: 1e308}", ":5: sweep.parameters.factions.Red.salary_usd_month.high: input should be less"),
        ("[100, {a: 1}]", ":5: sweep.parameters.factions.Red.salary_usd_month.1: input should be a valid boolean or"),
        ("5", ":5: sweep.parameters.factions.Red.salary_usd_month: input should be a valid dictionary or instance"),
    ],
)
def test_a_bad_swept_value_is_one_line_not_one_per_union_branch(tmp_path, capsys, spec, line):
    # NaN in a list of values gave 5 lines (the range branch's "a valid dictionary", then
    # ".1.bool", ".1.constrained-int", ".1.constrained-float", ".1.constrained-str").
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"extends: {SCENARIOS / 'toy_two_towns.yaml'}\nname: one_line\nsweep:\n  design: lhs\n  samples: 4\n"
        f"  parameters: {{factions.Red.salary_usd_month: {spec}}}\n  outputs: [killed_total]\n".replace(
            "  design: lhs\n  samples: 4\n", "" if spec.startswith("[") else "  design: lhs\n  samples: 4\n"
        )
    )
    assert main(["validate", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and line.replace(":5:", f":{err.split(':')[1]}:") in err, err


@pytest.mark.parametrize(
    "override", ["factions.Red.salary_usd_month=999", "factions.Red={label: R, salary_usd_month: 999}"]
)
def test_a_set_on_a_swept_key_is_refused_before_anything_is_written(tmp_path, capsys, override):
    # `--set` on a key the design sweeps ran the design's values while the manifest listed the override.
    scenario = tmp_path / "swept.yaml"
    scenario.write_text(
        f"extends: {SCENARIOS / 'toy_two_towns.yaml'}\nname: swept\nsteps: 5\n"
        "sweep: {design: grid, replicates: 1, parameters: {factions.Red.salary_usd_month: [90, 100]},"
        " outputs: [killed_total]}\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", str(scenario), "--set", override, "--no-analysis", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("--set: factions.Red") and "swept by the design" in err[0], err
    assert "factions.Red.salary_usd_month" in err[0] and "change `sweep.parameters` instead" in err[0], err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["swept.yaml"]


def test_a_range_over_a_whole_number_parameter_says_to_add_integer_true(tmp_path, capsys):
    design = (
        "sweep={design: lhs, samples: 4, replicates: 1, outputs: [killed_total], "
        "parameters: {rules.clashes.max_detachment: {low: 5, high: 20}}}"
    )
    assert main(["sweep", "toy_two_towns", "--steps", "5", "--set", design, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith(
        "input should be a valid integer (got 5.0); a range over a whole-number parameter needs `integer: true`"
    ), err
    assert not (tmp_path / "s").exists()


def test_analyze_and_plot_agree_on_an_unfinished_sweep_whose_journal_was_deleted(tmp_path, capsys):
    # analyze said "not a sweep directory (missing outcomes.csv)", plot "a sweep directory"
    directory = start(tmp_path, "s")  # started (its empty journal made with it), no run finished
    (directory / JOURNAL).unlink()
    assert main(["analyze", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a sweep directory" not in err, err
    unfinished = f"error: {directory}: an unfinished sweep (no outcomes.csv yet) that cannot be resumed: "
    assert err.startswith(unfinished), err
    assert f"{directory / JOURNAL}: missing (the record of the job's finished runs" in err, err
    assert main(["plot", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {directory}: a sweep directory, not a run's results directory (run.py analyze reads it)\n"


def test_analyze_on_a_calibrations_unfinished_sweep_says_to_resume_the_calibration(tmp_path, capsys):
    # "sweep SCENARIO --resume DIR" is refused there ("not the sweep these inputs define")
    (tmp_path / "cal").mkdir()
    sweep = start(tmp_path / "cal", "sweep")  # started, no run finished yet
    (sweep / "runs.jsonl").write_text("")
    (tmp_path / "cal" / "calibration_spec.json").write_text("{}")
    assert main(["analyze", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"it is a calibration's: finish it with python run.py calibrate SCENARIO --resume {tmp_path / 'cal'}" in err
