"""The benchmark scripts (benchmarks/) run, measure a reference revision alongside the working tree,
and refuse an unknown revision in one line. Sizes are shrunk to a few steps: these tests check
what the reports contain, never how fast anything is."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks import bench_model, bench_startup, bench_sweep, common

PROJECT = Path(__file__).resolve().parent.parent
HEAD = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

TINY_MODEL = dict(year_repeats=1, calls_steps=2, scales=(1, 2), scaling_steps=2, scaling_repeats=1,
                  epstein_steps=1, epstein_repeats=1, epstein_tries=2, memory_steps=2)


def test_fit_line_recovers_a_line_and_scores_scatter():
    exact = common.fit_line([1, 3, 10, 30], [2.0 + 0.5 * x for x in (1, 3, 10, 30)])
    assert exact["a"] == pytest.approx(2.0) and exact["b"] == pytest.approx(0.5) and exact["r2"] == pytest.approx(1.0)
    scattered = common.fit_line([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0])
    assert 0 < scattered["r2"] < 1


@pytest.mark.parametrize("script", [bench_model, bench_sweep, bench_startup])
def test_unknown_reference_revision_is_one_line_and_exit_2(script, capsys):
    assert script.main(["--quick", "--before", "no-such-revision-0123"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no-such-revision-0123" in err and "unknown revision" in err


def test_reference_tree_is_extracted_fingerprinted_and_removed():
    with common.reference_tree("HEAD") as tree:
        root = tree.root
        assert (root / "sim" / "model.py").is_file() and tree.scenario("baseline") is not None
        assert tree.scenario("no_such_scenario") is None
        assert HEAD in tree.revision
        assert re.fullmatch(r"[0-9a-f]{12}", tree.fingerprint)
    assert not root.exists()


@pytest.mark.slow
def test_bench_model_quick_reports_before_and_after(monkeypatch, capsys, tmp_path):
    """--quick (shrunk) prints both trees' fingerprints and a before | after | ratio column for every figure."""
    monkeypatch.setattr(bench_model, "QUICK", TINY_MODEL)
    monkeypatch.setattr(bench_model, "YEAR", 3)
    tree_scenario = common.Tree.scenario

    def reference_without_toy(self, name):  # as a new scenario (syria_wide) is missing from the reference
        return None if (self.label, name) == ("before", "toy_two_towns") else tree_scenario(self, name)

    monkeypatch.setattr(common.Tree, "scenario", reference_without_toy)
    out_json = tmp_path / "model.json"
    assert bench_model.main(["--quick", "--before", "HEAD", "--scenario", "no_such_scenario", "--scenario",
                             "toy_two_towns", "--no-memory", "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    report = captured.out
    assert re.search(r"before: sim/ fingerprint [0-9a-f]{12}  HEAD = " + HEAD, report)
    assert re.search(r"after: sim/ fingerprint [0-9a-f]{12}  working tree", report)
    assert "load average" in report and "usable CPUs" in report and "NumPy" in report and "Mesa" in report
    for figure in ("seconds per simulated year", "numpy calls per step", "fixed cost per step a",
                   "cost per agent-step b", "R^2 of the fit", "ratio to Epstein"):
        line = next(line for line in report.splitlines() if figure in line)
        assert re.search(r"-?\d[\d,.]*%?\s+-?\d[\d,.]*%?", line), line  # a before and an after value
    assert "after/before" in report
    compile_line = next(line for line in report.splitlines() if "compile time (the difference)" in line)
    assert re.search(r"\d+\.\d{3}\s+\d+\.\d{3}", compile_line), compile_line  # both trees, apart from the year
    assert "no_such_scenario" in captured.err  # a scenario no tree has is skipped, saying so
    toy = report[report.index("A simulated year of toy_two_towns"):]
    assert "before: skipped: scenarios/toy_two_towns.yaml does not exist in HEAD" in toy
    assert re.search(r"seconds per simulated year \(construction \+ steps\)\s+-\s+\d+\.\d{4}\s", toy)
    payload = json.loads(out_json.read_text())
    assert [t["label"] for t in payload["trees"]] == ["before", "after"]
    scaling = payload["results"]["scaling"]["trees"]
    for label in ("before", "after"):
        rows = scaling[label]["rows"]
        assert rows[1]["agents"] > 1.9 * rows[0]["agents"]  # fighters and recruits both doubled
        assert rows[1]["fighters"] > 1.9 * rows[0]["fighters"]


def test_memory_and_call_counts_in_a_fresh_process():
    """The memory and numpy-call figures, measured in a fresh child on the working tree (toy scenario)."""
    tree = common.working_tree()
    toy = str(tree.scenario("toy_two_towns"))
    mem = common.once(tree, task="memory", scenario=toy, steps=2)
    assert 0 < mem["traced_peak_after_build_mib"] <= mem["traced_peak_mib"]
    assert mem["maxrss_after_imports_mib"] <= mem["maxrss_mib"]
    calls = common.once(tree, task="calls", scenario=toy, steps=2)
    assert 0 < calls["numpy_calls_per_step"] <= calls["numpy_calls_all_per_step"]
    assert calls["python_calls_per_step"] > 0


def test_a_failing_child_request_is_one_line():
    with pytest.raises(common.BenchError, match=r"^after \([0-9a-f]{12}\) run: .*no_such\.yaml"):
        common.once(common.working_tree(), task="run", scenario="no_such.yaml", steps=1)


def test_a_child_that_dies_is_one_line_with_its_last_error(tmp_path):
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "__init__.py").write_text(
        "import os, sys\nsys.stderr.write('broken tree: cannot start\\n')\nsys.stderr.flush()\nos._exit(3)\n")
    child = common.Child(common.Tree("before", tmp_path, "test", common.fingerprint(tmp_path)))
    try:
        with pytest.raises(common.BenchError, match=r"^before child exited \(exit 3\) during info: broken tree"):
            child.ask(task="info")
    finally:
        child.close()


def test_bench_startup_quick_reports_before_and_after(monkeypatch, capsys):
    """Each command is timed in a fresh interpreter on both trees: two columns, their ratio, a verdict.

    The commands are replaced by `python -c pass` (the machinery, not run.py, is under test);
    a command that fails stops the benchmark in one line naming the tree and the command.
    """
    monkeypatch.setattr(bench_startup, "QUICK", dict(repeats=1))
    monkeypatch.setattr(bench_startup, "COMMANDS", (("python -c pass", ["-c", "pass"], 30.0),))
    assert bench_startup.main(["--quick", "--before", "HEAD"]) == 0
    report = capsys.readouterr().out
    line = next(line for line in report.splitlines() if line.strip().startswith("python -c pass"))
    assert re.search(r"\d+\.\d{3}\s+\d+\.\d{3}\s+\d+\.\d{2}x\s+<= 30 s\s+PASS", line), line
    assert "before: sim/ fingerprint" in report and "after: sim/ fingerprint" in report
    monkeypatch.setattr(bench_startup, "COMMANDS", (("fails", ["-c", "raise SystemExit('no such thing')"], None),))
    assert bench_startup.main(["--quick", "--no-before"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "after" in err and "no such thing" in err


def test_sweep_child_measures_the_overhead_inside_the_loop_apart_from_the_once_only_work():
    """The target's measure: per run from the first finished run to the last, less those runs' bare model."""
    from benchmarks import _child

    toy = str(PROJECT / "scenarios" / "toy_two_towns.yaml")
    parameter = bench_sweep.MEMORY_PARAMETER
    overrides = [bench_sweep.sweep_override(parameter, (100, 200), 2, bench_sweep.MEMORY_OUTPUTS), "steps=3"]
    r = _child.task_sweep(dict(name="serial", scenario=toy, overrides=overrides, steps=3, workers=1, dask=False,
                               toy=toy, bare_same_runs=True, parameter=parameter))
    assert r["runs"] == 4 and r["failed"] == 0
    assert r["in_loop_overhead_ms"] is not None and r["in_loop_overhead_ms"] == r["in_loop_overhead_ms"]  # not NaN
    # the loop lies inside the sweep, and the bare runs take time: a bound, whatever the machine's speed
    assert r["in_loop_overhead_ms"] * (r["runs"] - 1) / 1e3 < r["sweep_s"]
    assert 0 < r["first_run_at_s"] < r["sweep_s"]
    assert r["once_only_s"] is not None and r["once_only_s"] < r["sweep_s"]
