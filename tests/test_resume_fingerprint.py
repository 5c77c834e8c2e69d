"""Resume resumes the same thing: a changed scenario, --set, --seed, --steps or design is refused (issue 11, kind 2).

A sweep records a fingerprint of what defines its runs when it starts; `--resume` compares
the scenario given on the command line (with its `--set`s, `--seed`, `--steps`) with it and
refuses with exit status 2, listing every difference, before any run.
"""

from __future__ import annotations

import json

import pytest
from helpers import SCENARIOS, toy_calibration

import sim.calibration
from sim.calibration import calibrate, load_calibration
from sim.cli import main
from sim.scenario import load_scenario
from sim.sweep import JOURNAL, SweepError, start_sweep

TOY = str(SCENARIOS / "toy_two_towns.yaml")
SWEEP = [
    "sweep={design: grid, replicates: 1, parameters: {factions.Red.salary_usd_month: [120, 200]},"
    " outputs: [killed_total]}",
    "steps=8",
]


def sets(*extra: str) -> list[str]:
    given = {o.partition("=")[0] for o in extra}  # an extra steps= replaces SWEEP's: a key given twice is refused
    return [x for o in (*(o for o in SWEEP if o.partition("=")[0] not in given), *extra) for x in ("--set", o)]


@pytest.fixture
def started(tmp_path):
    """A sweep started with --seed 3 and nothing run yet."""
    config = load_scenario(TOY, SWEEP)
    return start_sweep(
        config, out=tmp_path / "s", root_seed=3, steps=None, scenario_file=TOY, overrides=[], executor_name="test"
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (sets("rules.clashes.lethality=0.09"), ["scenario: rules.clashes.lethality 0.04 -> 0.09"]),
        (sets("steps=9"), ["scenario: steps 8 -> 9"]),
        ([*sets(), "--seed", "4"], ["--seed 3 -> 4"]),
        ([*sets(), "--steps", "5"], ["--steps 8 -> 5"]),
        (
            [
                x
                for o in (SWEEP[0].replace("[killed_total]", "[killed_total, insurgent_peak]"), SWEEP[1])
                for x in ("--set", o)
            ],
            ['scenario: sweep.outputs ["killed_total"] -> ["killed_total", "insurgent_peak"]'],
        ),
        (
            [x for o in (SWEEP[0].replace("[120, 200]", "[120, 250]"), SWEEP[1]) for x in ("--set", o)],
            ["scenario: sweep.parameters.factions.Red.salary_usd_month.1 200 -> 250"],
        ),
        (
            [*sets("rules.clashes.lethality=0.09", "steps=9"), "--seed", "4"],
            ["rules.clashes.lethality 0.04 -> 0.09", "steps 8 -> 9", "--seed 3 -> 4"],
        ),
    ],
)
def test_resume_with_other_inputs_is_refused_listing_each_difference(started, capsys, extra, expected):
    status = main(["sweep", TOY, *extra, "--resume", str(started), "--no-analysis"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot resume" in err
    for fragment in expected:
        assert fragment in err, err
    assert (started / JOURNAL).read_bytes() == b""  # refused before any run (the journal is made empty at the start)
    assert json.loads((started / "manifest.json").read_text())["status"] == "running"


def test_resume_with_the_same_inputs_runs_the_rest(started, capsys):
    assert main(["sweep", TOY, *sets(), "--seed", "3", "--resume", str(started), "--no-analysis"]) == 0
    assert json.loads((started / "manifest.json").read_text())["status"] == "complete"


def test_a_hand_edited_design_is_refused(started, capsys):
    design = started / "design.csv"
    design.write_text(design.read_text().replace("200", "210"))
    assert main(["sweep", TOY, *sets(), "--resume", str(started), "--no-analysis"]) == 2
    err = capsys.readouterr().err  # the checksum in the manifest or the fingerprint finds it first
    assert "design.csv" in err and "changed" in err and err.count("\n") == 1


def test_a_sweep_without_fingerprint_is_still_compared_and_resumable(started, capsys):
    """Sweeps started before fingerprints were recorded: compared by scenario.yaml and manifest."""
    manifest = json.loads((started / "manifest.json").read_text())
    del manifest["fingerprint"]
    (started / "manifest.json").write_text(json.dumps(manifest))
    assert main(["sweep", TOY, *sets("rules.clashes.lethality=0.09"), "--resume", str(started)]) == 2
    assert "rules.clashes.lethality 0.04 -> 0.09" in capsys.readouterr().err
    assert main(["sweep", TOY, *sets(), "--resume", str(started), "--no-analysis"]) == 0


def test_the_fingerprint_is_recorded_at_the_start(started):
    fingerprint = json.loads((started / "manifest.json").read_text())["fingerprint"]
    assert fingerprint["root_seed"] == 3 and fingerprint["steps"] == 8
    assert {"scenario_sha256", "design_sha256", "sha256"} <= set(fingerprint)


CALIBRATION = toy_calibration(samples=4)


def test_calibrate_resume_refuses_another_seed_or_scenario(tmp_path, monkeypatch):
    source = tmp_path / "toy_calibration.yaml"
    source.write_text(CALIBRATION)
    (tmp_path / "toy_two_towns.yaml").write_text((SCENARIOS / "toy_two_towns.yaml").read_text())
    scenario, calibration = load_calibration(source)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # the calibration started, then was stopped before any run

    monkeypatch.setattr(sim.calibration, "run_sweep", interrupted)
    out = tmp_path / "cal"
    with pytest.raises(KeyboardInterrupt):
        calibrate(scenario, calibration, out=out, seed=5, scenario_file=source, plots=False)
    assert (out / "calibration_spec.json").exists()
    monkeypatch.undo()
    with pytest.raises(SweepError, match=r"cannot resume: .*--seed 5 -> 6"):
        calibrate(scenario, calibration, out=out, seed=6, resume=True, scenario_file=source, plots=False)
    changed, _ = load_calibration(source, ["rules.clashes.radius_cells=2"])
    with pytest.raises(SweepError, match=r"scenario: rules\.clashes\.radius_cells 1 -> 2"):
        calibrate(changed, calibration, out=out, resume=True, scenario_file=source, plots=False)
    assert (out / "sweep" / JOURNAL).read_bytes() == b""  # made empty at the start; no run
    result = calibrate(scenario, calibration, out=out, seed=5, resume=True, scenario_file=source, plots=False)
    assert result.summary["root_seed"] == 5 and len(result.draws) == 4


def test_calibrate_cli_resume_with_another_seed_exits_2(tmp_path, monkeypatch, capsys):
    source = tmp_path / "toy_calibration.yaml"
    source.write_text(CALIBRATION)
    (tmp_path / "toy_two_towns.yaml").write_text((SCENARIOS / "toy_two_towns.yaml").read_text())
    monkeypatch.setattr(sim.calibration, "run_sweep", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "cal"
    assert main(["calibrate", str(source), "--seed", "5", "--out", str(out)]) == 130
    assert f"continue with --resume {out}" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["calibrate", str(source), "--seed", "7", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--seed 5 -> 7" in err and len(err.strip().splitlines()) == 1


def test_robustness_resume_lists_every_difference(tmp_path):
    from sim.robustness import RobustnessError, check_resume, plan_robustness, start_robustness

    def plan(**changes):
        options = {"variants": ["salary_parity"], "steps": 5, "points": 2, "replicates": 1, "seed": 5}
        return plan_robustness("baseline", **{**options, **changes})

    directory = start_robustness(plan(), tmp_path / "r")
    changed = plan(seed=6, overrides=["rules.clashes.radius_cells=2"])
    with pytest.raises(RobustnessError) as refused:
        check_resume(directory, changed)
    message = str(refused.value)
    assert "scenario 'baseline' has changed since this job started (at rules.clashes.radius_cells)" in message
    assert "scenario 'salary_parity' has changed" in message and "root_seed changed" in message
    assert len(message.splitlines()) == 1


def test_starting_anew_over_a_started_sweep_says_how_to_resume_it(started, capsys):
    assert main(["sweep", TOY, *sets(), "--out", str(started), "--no-analysis"]) == 2
    err = capsys.readouterr().err
    assert f"--resume {started}" in err and err.count("\n") == 1
