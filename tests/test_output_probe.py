"""Outputs are checked before the work: an unwritable --out exits 2 before any run (issue 11, kind 6).

Two places no user can write, root included: a path under a regular file, and a path in
/proc (a file system that takes no new files). Every command that writes refuses them
before it builds a single model, in one line, with exit status 2.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import SCENARIOS, writing_commands

import sim.engine
from sim.cli import main
from sim.results import OutputError, probe_writable

TOY = str(SCENARIOS / "toy_two_towns.yaml")
SWEEP = [
    "--set",
    "sweep={design: grid, replicates: 1, parameters: {factions.Red.salary_usd_month: [120, 200]},"
    " outputs: [killed_total]}",
    "--set",
    "steps=8",
]
UNWRITABLE = Path("/proc/faction-sim-probe/out")  # /proc takes no new files, not even root's


@pytest.fixture
def built(monkeypatch):
    """Every model built during the test (there must be none)."""
    models = []
    real_setup = sim.engine.Engine._setup  # every model, with or without its Mesa face, is set up here

    def counting(self, *args, **kwargs):
        models.append(1)
        real_setup(self, *args, **kwargs)

    monkeypatch.setattr(sim.engine.Engine, "_setup", counting)
    return models


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "results"
    assert main(["run", TOY, "--steps", "5", "--no-plots", "--out", str(out)]) == 0
    return out


def commands(out: Path, results: Path, observed: Path) -> dict[str, list[str]]:
    return {
        **writing_commands(out, results, observed, SWEEP),
        "export-acled": ["export-acled", str(results), "--out", str(out / "events.csv")],
    }


def observed_file(tmp_path: Path) -> Path:
    observed = tmp_path / "observed.csv"
    observed.write_text("event_date,event_type,fatalities,location\n2019-11-02,Battles,1,Nowhere\n")
    return observed


@pytest.mark.parametrize(
    "name",
    [
        "run",
        "sweep",
        "validate-patterns",
        "compare-variants",
        "compare",
        "calibrate",
        "robustness",
        "compare-events",
        "export-acled",
    ],
)
@pytest.mark.parametrize(
    "place",
    ["under a file", "read-only", "a dangling link", "a link loop", "under a link loop", "a long name", "a long path"],
)
def test_an_unwritable_out_is_refused_before_any_run(tmp_path, results_dir, built, capsys, name, place):
    # A dangling symbolic link or a loop looked like a new directory (Path.exists() is False)
    # until the final rename: `run` then lost its finished runs to an internal error.
    expected = {
        "under a file": "is a file, not a directory",
        "read-only": "cannot write in /proc",
        "a dangling link": "a symbolic link to nothing",
        "a link loop": "a symbolic link in a loop",
        "under a link loop": "loop-a is a symbolic link in a loop",
        "a long name": "the path or a name in it is too long for the file system",  # was an internal error
        "a long path": "the path is too long (the files inside would pass the system's",
    }[place]
    if place == "under a file":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory\n")
        out = blocker / "sub" / "out"
    elif place == "read-only":
        out = UNWRITABLE
    elif place == "a long name":
        out = tmp_path / ("x" * 300)
    elif place == "a long path":
        out = tmp_path.joinpath(*["y" * 200] * 19)  # under 4,096 bytes, but not by the 256 the files inside need
    elif place == "a dangling link":
        out = tmp_path / "dangling"
        out.symlink_to(tmp_path / "nowhere")
    else:
        (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
        (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
        out = tmp_path / "loop-a" / ("sub" if place == "under a link loop" else "")
    argv = commands(out, results_dir, observed_file(tmp_path))[name]
    started = time.monotonic()
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    assert built == []  # no model was built: refused before the work
    assert time.monotonic() - started < 60  # the scenario loads, nothing runs
    assert not os.path.exists(out)  # (Path.exists raises for a name too long)
    assert not (tmp_path / "nowhere").exists()


def test_probe_writable_names_what_is_wrong(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="exists and is not a directory"):
        probe_writable(blocker)
    with pytest.raises(OutputError, match=f"{blocker} is a file, not a directory"):
        probe_writable(blocker / "a" / "b")
    with pytest.raises(OutputError, match="cannot write in /proc"):
        probe_writable(UNWRITABLE)
    with pytest.raises(OutputError, match="the path or a name in it is too long"):
        probe_writable(tmp_path / ("x" * 300) / "out")
    probe_writable(tmp_path / "new" / "deeper")  # creatable: fine, and nothing is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_read_only_directory_is_refused_for_other_users_too(tmp_path):
    """chmod only stops users other than root: then the probe must refuse it as well."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.geteuid() == 0:
            probe_writable(locked / "out")  # root writes anyway: the probe agrees with what will happen
        else:
            with pytest.raises(OutputError, match="cannot write in"):
                probe_writable(locked / "out")
    finally:
        locked.chmod(0o755)
    assert list(locked.iterdir()) == []


def test_a_job_refused_after_its_claim_leaves_no_directories_behind(tmp_path, results_dir, capsys):
    """The claim makes missing parents for its lock file; a job that then fails removes them again."""
    bad = tmp_path / "observed.csv"
    bad.write_text("no,usable,columns\n1,2,3\n")
    out = tmp_path / "a" / "b" / "out"
    assert main(["compare-events", str(results_dir), str(bad), "--out", str(out)]) == 2
    assert "observed.csv" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
