"""A job killed at any moment of its start leaves nothing or a resumable directory (issue 11, kind 3).

The start of a sweep, a calibration and a robustness job is staged in a hidden sibling
directory and renamed into place. Each file write ends in an `os.replace`, and so does the
final rename: stopping the process before or after each of them (an exception, or a real
SIGKILL) must leave either no directory, so that the same `--out` starts afresh, or a
complete start that `--resume` continues.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT, SCENARIOS, toy_calibration

from sim.cli import main
from sim.results import lock_path
from sim.scenario import load_scenario
from sim.sweep import start_sweep

TOY = str(SCENARIOS / "toy_two_towns.yaml")
SWEEP = [
    "sweep={design: grid, replicates: 1, parameters: {factions.Red.salary_usd_month: [120, 200]},"
    " outputs: [killed_total]}",
    "steps=8",
]
SETS = [x for o in SWEEP for x in ("--set", o)]
START_REPLACES = 5  # scenario.yaml, design.csv, runs.jsonl (empty), manifest.json, then the staged directory


def interrupt_at(monkeypatch, parent: Path, k: int, when: str) -> None:
    """Raise KeyboardInterrupt before or after the k-th os.replace into `parent`."""
    real = os.replace
    calls = []

    def replace(src, dst, *args, **kwargs):
        mine = str(parent) in str(dst)
        if mine:
            calls.append(dst)
        if mine and len(calls) == k and when == "before":
            raise KeyboardInterrupt
        real(src, dst, *args, **kwargs)
        if mine and len(calls) == k and when == "after":
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replace)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("k", range(1, START_REPLACES + 1))
def test_a_sweep_stopped_during_its_start_leaves_nothing_or_a_resumable_sweep(tmp_path, monkeypatch, k, when):
    out = tmp_path / "s"
    config = load_scenario(TOY, SWEEP)
    interrupt_at(monkeypatch, tmp_path, k, when)
    with pytest.raises(KeyboardInterrupt):
        start_sweep(config, out=out, root_seed=3, steps=None, scenario_file=TOY, overrides=[], executor_name="t")
    monkeypatch.undo()
    if k == START_REPLACES and when == "after":
        assert (out / "manifest.json").exists()  # renamed whole: a resumable sweep
        assert main(["sweep", TOY, *SETS, "--resume", str(out), "--no-analysis"]) == 0
    else:
        assert leftovers(tmp_path) == []  # nothing at all: no directory, no staging, no lock
        assert main(["sweep", TOY, *SETS, "--seed", "3", "--out", str(out), "--no-analysis"]) == 0
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


KILLER = """
import os, signal, sys
k, when, parent = int(sys.argv[1]), sys.argv[2], sys.argv[3]
real, calls = os.replace, []
def replace(src, dst, *args, **kwargs):
    mine = parent in str(dst)
    if mine:
        calls.append(dst)
    if mine and len(calls) == k and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst, *args, **kwargs)
    if mine and len(calls) == k and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from sim.cli import main
sys.exit(main(sys.argv[4:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("k", "when"), [(k, w) for k in range(1, START_REPLACES + 1) for w in ("before", "after")])
def test_a_sweep_killed_9_during_its_start_can_be_restarted_or_resumed(tmp_path, k, when):
    out = tmp_path / "s"
    argv = ["sweep", TOY, *SETS, "--seed", "3", "--out", str(out), "--no-analysis"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(k), when, str(tmp_path), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == -9, done.stderr  # killed where asked
    if k == START_REPLACES and when == "after":
        assert (out / "manifest.json").exists()
        assert main(["sweep", TOY, *SETS, "--resume", str(out), "--no-analysis"]) == 0
    else:
        assert not out.exists()
        assert all(name.startswith(".s.") for name in leftovers(tmp_path))  # hidden: a staging dir, the lock
        assert main(argv) == 0  # the same --out starts afresh; the dead job's leftovers are cleared
        assert leftovers(tmp_path) == ["s"]
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    assert not lock_path(out).exists()


CALIBRATION = toy_calibration(samples=3)
CALIBRATION_REPLACES = 7  # sweep/: scenario, design, journal, manifest, its rename; the spec; the rename of out/


@pytest.mark.parametrize(
    ("k", "when"), [*((k, "before") for k in range(1, CALIBRATION_REPLACES + 1)), (CALIBRATION_REPLACES, "after")]
)
def test_a_calibration_stopped_during_its_start_leaves_nothing_or_a_resumable_one(tmp_path, monkeypatch, k, when):
    from sim.calibration import calibrate, load_calibration

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    source = inputs / "toy_calibration.yaml"
    source.write_text(CALIBRATION)
    (inputs / "toy_two_towns.yaml").write_text(Path(TOY).read_text())
    scenario, calibration = load_calibration(source)
    where = tmp_path / "runs"
    out = where / "cal"
    interrupt_at(monkeypatch, where, k, when)
    with pytest.raises(KeyboardInterrupt):
        calibrate(scenario, calibration, out=out, seed=2, scenario_file=source, plots=False)
    monkeypatch.undo()
    if when == "after":
        assert (out / "calibration_spec.json").exists() and (out / "sweep" / "manifest.json").exists()
        result = calibrate(scenario, calibration, out=out, seed=2, resume=True, scenario_file=source, plots=False)
    else:
        assert leftovers(where) == []
        result = calibrate(scenario, calibration, out=out, seed=2, scenario_file=source, plots=False)
    assert len(result.draws) == 3


def test_a_robustness_job_stopped_during_its_start_leaves_nothing(tmp_path, monkeypatch):
    from sim.robustness import load_manifest, plan_robustness, start_robustness

    plan = plan_robustness("baseline", variants=["salary_parity"], steps=5, points=2, replicates=1, seed=5)
    out = tmp_path / "r"
    for k in range(1, 6):  # scenario.yaml, the variant, design.csv, runs.jsonl, manifest.json (the rename is the 6th)
        interrupt_at(monkeypatch, tmp_path, k, "before")
        with pytest.raises(KeyboardInterrupt):
            start_robustness(plan, out)
        monkeypatch.undo()
        assert leftovers(tmp_path) == [], k
    assert load_manifest(start_robustness(plan, out))["status"] == "running"
