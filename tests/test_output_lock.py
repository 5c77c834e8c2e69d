"""One job per output directory: a second job on the same directory exits 2 (issue 11, kind 1).

Real processes race for one directory (two `run.py sweep`, two `run.py run`); every command
that writes a directory is refused while another process holds it; a dead job's lock is
taken over; default directories of jobs started in the same second differ.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from helpers import PROJECT, SCENARIOS, writing_commands

from sim.cli import main
from sim.results import claim_output_dir, is_run_directory, load_run, lock_path
from sim.sweep import read_journal, start_sweep

RUN_PY = PROJECT / "run.py"
TOY = str(SCENARIOS / "toy_two_towns.yaml")
SWEEP = [
    "sweep={design: grid, replicates: 2, parameters: {factions.Red.salary_usd_month: [120, 200],"
    " rules.clashes.p_max: [0.004, 0.02]}, outputs: [killed_total, territory_final.Red]}",
    "steps=30",
]
ENV = {**os.environ, "PYTHONPATH": str(PROJECT)}

# A process that claims a directory (or a default one at a fixed time) and holds it until killed.
HOLDER = """
import sys, time
from datetime import datetime
from pathlib import Path
from sim.results import claim_output_dir
target, parent, stamp = sys.argv[1:4]
if target != "-":
    claim = claim_output_dir(Path(target), existing=Path(target).is_dir() and any(Path(target).iterdir()))
else:
    claim = claim_output_dir(None, parent=Path(parent), kind="run", now=datetime.fromisoformat(stamp))
print(claim.directory, flush=True)
time.sleep(600)
"""


# A `run.py` that imports everything first, then waits for the start signal: two of them
# start their commands within a millisecond or so, as two jobs launched together would.
STARTER = """
import os, sys, time
import sim.api, sim.cli, sim.runner, sim.sweep
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.001)
sys.exit(sim.cli.main(sys.argv[2:]))
"""


def started_together(tmp_path: Path, *argvs: list[str]) -> list[tuple[int, str]]:
    """Run `run.py` commands started at the same moment; (exit status, stderr) of each."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, str(go), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for argv in argvs
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    return [(p.wait(timeout=600), p.stderr.read()) for p in procs]


def sweep_args(out: Path, seed: int) -> list[str]:
    args = ["sweep", TOY, "--seed", str(seed), "--out", str(out), "--no-analysis"]
    for override in SWEEP:
        args += ["--set", override]
    return args


def hold(target: Path | None, parent: Path | None = None, stamp: str = "") -> subprocess.Popen:
    """Start a process holding `target` (or a default directory in `parent`); returns once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target) if target else "-", str(parent or "-"), stamp or "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    proc.claimed = Path(line.strip())
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_two_sweeps_started_together_one_owns_the_directory(tmp_path):
    out = tmp_path / "sweep"
    results = started_together(tmp_path, sweep_args(out, 11), sweep_args(out, 12))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert len(loser.strip().splitlines()) == 1
    assert "in use by another job" in loser or "not empty" in loser or "holds a job's results" in loser
    # The surviving directory is one sweep's, whole: its design's runs, each once, in order.
    manifest = json.loads((out / "manifest.json").read_text())
    design = pd.read_csv(out / "design.csv")
    rows = read_journal(out)
    assert manifest["status"] == "complete" and manifest["root_seed"] in (11, 12)
    assert sorted((r["point"], r["replicate"], r["seed"]) for r in rows) == sorted(
        design[["point", "replicate", "seed"]].itertuples(index=False, name=None)
    )
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert outcomes[["point", "replicate", "seed"]].equals(design[["point", "replicate", "seed"]])
    assert not lock_path(out).exists()  # released at the end


def test_two_runs_with_the_same_out_one_owns_it(tmp_path):
    out = tmp_path / "run"
    args = [["run", TOY, "--steps", "40", "--seed", str(s), "--no-plots", "--out", str(out)] for s in (1, 2)]
    results = started_together(tmp_path, *args)
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert len(loser.strip().splitlines()) == 1
    assert "in use by another job" in loser or "not empty" in loser or "holds a job's results" in loser
    run = load_run(out)
    assert is_run_directory(out) and run.manifest["replicates"][0]["seed"] in (1, 2)
    assert set(run.timeseries["seed"]) == {run.manifest["replicates"][0]["seed"]}


@pytest.fixture
def started_sweep(tmp_path):
    from sim.scenario import load_scenario

    config = load_scenario(TOY, SWEEP)
    return start_sweep(
        config, out=tmp_path / "started", root_seed=3, steps=None, scenario_file=TOY, overrides=[], executor_name="test"
    )


@pytest.fixture
def results_dir(tmp_path):
    out = tmp_path / "results"
    assert main(["run", TOY, "--steps", "5", "--no-plots", "--out", str(out)]) == 0
    return out


def commands(tmp_path: Path, target: Path, started: Path, results: Path) -> dict[str, list[str]]:
    observed = tmp_path / "observed.csv"
    observed.write_text("event_date,event_type,fatalities,location\n2019-11-02,Battles,1,Nowhere\n")
    sets = [x for o in SWEEP for x in ("--set", o)]
    return {
        **writing_commands(target, results, observed, sets),
        "sweep --resume": ["sweep", TOY, *sets, "--resume", str(started)],
        "analyze": ["analyze", str(started)],
        "plot": ["plot", str(results)],
    }


def test_every_command_is_refused_while_another_process_holds_its_directory(
    tmp_path, started_sweep, results_dir, capsys, monkeypatch
):
    import sim.engine

    built = []
    real_setup = sim.engine.Engine._setup  # every model, with or without its Mesa face, is set up here

    def counting(self, *args, **kwargs):
        built.append(1)
        real_setup(self, *args, **kwargs)

    monkeypatch.setattr(sim.engine.Engine, "_setup", counting)
    target = tmp_path / "held"
    holders = [hold(target), hold(started_sweep), hold(results_dir)]
    try:
        for name, argv in commands(tmp_path, target, started_sweep, results_dir).items():
            started = time.monotonic()
            status = main(argv)
            err = capsys.readouterr().err
            assert status == 2, (name, err)
            holder = (
                holders[1] if name in ("sweep --resume", "analyze") else holders[2] if name == "plot" else holders[0]
            )
            assert "in use by another job" in err and f"pid {holder.pid}" in err, (name, err)
            # Advice the command can follow: plot, analyze and --resume have no --out to change.
            assert ("--out" in err) == (name not in ("sweep --resume", "analyze", "plot")), (name, err)
            assert len(err.strip().splitlines()) == 1, (name, err)
            assert time.monotonic() - started < 60, name
        assert built == []  # refused before any model was built
        assert (started_sweep / "runs.jsonl").read_bytes() == b"" and not any(target.parent.glob("held/*"))
    finally:
        for proc in holders:
            stop(proc)


def test_a_dead_jobs_lock_is_taken_over(tmp_path):
    out = tmp_path / "out"
    holder = hold(out)
    os.kill(holder.pid, signal.SIGKILL)  # dies holding it: its lock file stays, naming it
    holder.wait()
    stale = lock_path(out)
    assert stale.exists() and json.loads(stale.read_text())["pid"] == holder.pid
    assert main(["run", TOY, "--steps", "5", "--no-plots", "--out", str(out)]) == 0
    assert is_run_directory(out) and not stale.exists()


def test_jobs_claiming_a_default_directory_in_the_same_second_get_different_ones(tmp_path):
    parent = tmp_path / "results" / "toy"
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    holder = hold(None, parent, stamp.isoformat())
    try:
        assert holder.claimed == parent / "run-20260102T030405Z"
        with claim_output_dir(None, parent=parent, kind="run", now=stamp) as mine:
            assert mine.directory == parent / "run-20260102T030405Z-2"  # the other process holds the first
            with claim_output_dir(None, parent=parent, kind="run", now=stamp) as again:
                assert again.directory == parent / "run-20260102T030405Z-3"  # and this process the second
    finally:
        stop(holder)
    with claim_output_dir(None, parent=parent, kind="run", now=stamp) as after:
        assert after.directory == parent / "run-20260102T030405Z"  # the dead holder's claim is free again


def test_a_claim_is_released_and_its_lock_file_removed(tmp_path):
    out = tmp_path / "out"
    with claim_output_dir(out) as claim:
        assert claim.directory == out and lock_path(out).exists()
        info = json.loads(lock_path(out).read_text())
        assert info["pid"] == os.getpid() and info["host"]
    assert not lock_path(out).exists() and not out.exists()


# Processes that claim and release one directory over and over, checking nobody else holds it meanwhile.
CONTENDER = """
import os, sys, time
from pathlib import Path
from sim.results import OutputBusyError, claim_output_dir
target, owner, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
wins = clashes = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        claim = claim_output_dir(target)
    except OutputBusyError:
        continue
    with claim:
        wins += 1
        owner.write_text(str(os.getpid()))
        time.sleep(0.0005)
        clashes += owner.read_text() != str(os.getpid())
print(wins, clashes)
"""


def test_claims_exclude_each_other_while_lock_files_come_and_go(tmp_path):
    """Releasing unlinks the lock file: a job that opened the old file must not also win (inode re-check)."""
    target, owner = tmp_path / "contested", tmp_path / "owner"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(target), str(owner), "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for _ in range(3)
    ]
    counts = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        counts.append(tuple(int(x) for x in out.split()))
    assert sum(wins for wins, _ in counts) > 3
    assert sum(clashes for _, clashes in counts) == 0
