"""The re-run commands recorded in manifests can be pasted into a shell as they are.

A scenario path or a `--set` value with spaces, quotes or `$` must reach `run.py` as one
argument: the commands are built as argument lists and quoted by `sim.results.rerun_command`
(`shlex.join`). Each test runs the recorded command through `bash -c` and compares the
figures it writes with the original's, field for field as written.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers import PROJECT, SCENARIOS

from sim.patterns import ValidationReport
from sim.results import rerun_command
from sim.scenario import load_scenario
from sim.variants import _command as compare_variants_command

RUN_PY = PROJECT / "run.py"
LABEL = "a value with spaces, 'quotes' and $HOME"  # bash would split, unquote and expand it unquoted


def _python_on_path(tmp_path: Path) -> dict:
    """An environment where `python` is this interpreter (the recorded commands say `python`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(args: list, env: dict, cwd: Path = PROJECT) -> None:
    done = subprocess.run(
        [sys.executable, str(RUN_PY), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def _bash(command: str, env: dict) -> None:
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=PROJECT, env=env, timeout=600)
    assert done.returncode == 0, (command, done.stderr)


def _rows(frame: pd.DataFrame) -> str:
    """The rows as CSV text without the replicate column (a replicate re-run alone is replicate 0).

    Columns empty in every row are dropped too: an events.csv has a column for each event
    field that any of its replicates needed.
    """
    frame = frame.drop(columns=["replicate"], errors="ignore")
    return frame.loc[:, (frame.astype(str) != "").any()].to_csv(index=False)


def _csv(path: Path) -> pd.DataFrame:
    # Every field as the text written, so the comparison is of the bytes, not of parsed numbers.
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_rerun_command_quotes_what_the_shell_would_split() -> None:
    argv = ["python", "run.py", "run", "my dir/s.yaml", "--set", f"factions.Blue.label={LABEL}", "--seed", 5]
    assert shlex.split(rerun_command(argv)) == [str(a) for a in argv]
    assert rerun_command(["python", "run.py", "run", "baseline"]) == "python run.py run baseline"  # plain stays plain


@pytest.mark.slow
def test_a_replicates_recorded_rerun_command_reproduces_it_through_bash(tmp_path) -> None:
    env = _python_on_path(tmp_path)
    spaced = tmp_path / "dir with space"
    spaced.mkdir()
    scenario = spaced / "toy two towns.yaml"
    scenario.write_text((SCENARIOS / "toy_two_towns.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    out = spaced / "out one"
    # Started from another directory with a relative scenario path: the recorded command,
    # run from the project directory as re-run commands are, must still find the file.
    _run(["run", scenario.name, "--steps", 5, "--replicates", 2, "--set", f"factions.Blue.label={LABEL}",
          "--set", "factions.Red.salary_usd_month=175", "--out", out, "--no-plots"], env, cwd=spaced)

    rerun = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["replicates"][1]["rerun"]
    assert f"factions.Blue.label={LABEL}" in shlex.split(rerun)
    again = spaced / "out two"
    _bash(f"{rerun} --out {shlex.quote(str(again))} --no-plots", env)

    for table in ("timeseries.csv", "events.csv"):
        original = _csv(out / table)
        assert _rows(original[original.replicate == "1"]) == _rows(_csv(again / table)), table


@pytest.mark.slow
def test_the_sweeps_rerun_example_reproduces_its_point_through_bash(tmp_path) -> None:
    env = _python_on_path(tmp_path)
    spaced = tmp_path / "dir with space"
    spaced.mkdir()
    scenario = spaced / "toy sweep.yaml"
    scenario.write_text(
        f"extends: {json.dumps(str(SCENARIOS / 'toy_two_towns.yaml'))}\n"
        "sweep:\n"
        "  design: grid\n"
        "  replicates: 1\n"
        "  timeseries: true\n"
        "  parameters:\n"
        "    factions.Red.salary_usd_month: [175, 120]\n"
        "    factions.Red.label: ['Red militia, paid', \"Red's $PATH\"]\n"
        "  outputs: [killed_total]\n",
        encoding="utf-8",
    )
    out = spaced / "sweep out"
    _run(["sweep", scenario, "--steps", 5, "--set", f"factions.Blue.label={LABEL}", "--out", out, "--no-analysis"],
         env)

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    example = shlex.split(manifest["rerun_example"])
    assert f"factions.Blue.label={LABEL}" in example
    assert "factions.Red.label='Red militia, paid'" in example  # the point's values, as --set reads them
    assert shlex.split(manifest["rerun_point"])[3] == str(scenario)
    again = spaced / "one run"
    _bash(f"{manifest['rerun_example']} --out {shlex.quote(str(again))} --no-plots", env)

    recorded = pd.read_parquet(out / "timeseries" / "point=00000" / "replicate=0000.parquet")
    rerun = pd.read_csv(again / "timeseries.csv")  # pandas reads floats back exactly (round trip)
    design = pd.read_csv(out / "design.csv").query("point == 0 and replicate == 0")
    assert rerun.seed.unique().tolist() == design.seed.tolist()  # the Parquet file has no seed column
    assert _rows(recorded) == _rows(rerun.drop(columns=["seed"]))
    outcome = pd.read_csv(out / "outcomes.csv").query("point == 0 and replicate == 0")
    assert outcome.status.tolist() == ["ok"]


def test_validation_and_variant_commands_are_quoted_too() -> None:
    config = load_scenario(SCENARIOS / "toy_two_towns.yaml")
    report = ValidationReport(
        scenario=config, patterns=(), runs=pd.DataFrame({"replicate": [0, 1]}), root_seed=3, steps=config.steps,
        scenario_file="my dir/toy.yaml", overrides=[f"factions.Blue.label={LABEL}"],
    )
    argv = shlex.split(report.command)
    assert argv[3] == "my dir/toy.yaml" and argv[-2:] == ["--set", f"factions.Blue.label={LABEL}"]

    args = SimpleNamespace(replicates=2, seed=3, steps=None, workers=1, dask=None, overrides=[f"a.b={LABEL}"])
    table = compare_variants_command(args, "my dir/base.yaml", ["v one"])
    assert shlex.split(table)[3:6] == ["my dir/base.yaml", "--variant", "v one"]
    assert shlex.split(table)[-1] == f"a.b={LABEL}"
