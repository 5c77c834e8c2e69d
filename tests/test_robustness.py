"""Robustness of the verdicts (`sim.robustness`, `run.py robustness`): the Latin hypercube over
the assumptions' ranges, coverage of every assumption, runs on the executors (same numbers
with any number of workers, resumable), per-point verdicts, PRIM boxes and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS, scenario
from scipy.stats import qmc

from sim.cli import main
from sim.robustness import (
    ALL_VERDICT,
    DESIGN,
    MANIFEST,
    PATTERNS_VERDICT,
    PRIM_MIN_CASES,
    TABLE,
    Discovery,
    RobustnessError,
    analyse_robustness,
    assumption_keys,
    build_design,
    check_range_ends,
    check_resume,
    discover,
    feature_scores,
    find_boxes,
    is_assumption,
    plan_robustness,
    plot_box_limits,
    plot_tradeoff,
    point_table,
    run_robustness,
    run_task,
    start_robustness,
    uncovered_assumptions,
    verdict_summary,
)
from sim.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from sim.schema import Robustness
from sim.yaml_source import Problem, ScenarioError

STEPS = 15  # days per run in these tests: enough to exercise every path, not to judge the model


# --------------------------------------------------------------------------- the design


def _unit(values: np.ndarray, spec) -> np.ndarray:
    if spec.log:
        return np.log(values / spec.low) / math.log(spec.high / spec.low)
    return (values - spec.low) / (spec.high - spec.low)


def test_design_is_a_latin_hypercube_within_the_ranges(baseline):
    section = baseline.robustness
    n = 40
    design = build_design(section, 7, points=n)
    assert list(design.columns) == ["point", *section.ranges]
    assert list(design["point"]) == list(range(n))
    for key, spec in section.ranges.items():
        values = design[key].to_numpy(dtype=float)
        assert values.min() >= spec.low and values.max() <= spec.high, key
        if spec.integer:
            assert pd.api.types.is_integer_dtype(design[key]), key
            continue
        # one point in each of the n equally likely strata of every dimension
        strata = np.floor(_unit(values, spec) * n).astype(int)
        assert sorted(strata) == list(range(n)), key


def test_design_depends_only_on_the_section_and_the_seed(baseline):
    section = baseline.robustness
    a, b = build_design(section, 7, points=12), build_design(section, 7, points=12)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not build_design(section, 8, points=12).equals(a)
    assert len(build_design(section, 7)) == section.points


# --------------------------------------------------------------------------- coverage of the assumptions


def test_is_assumption_reads_every_wording_of_the_provenance():
    assert is_assumption("assumption: one year of days")
    assert is_assumption("article §9 (F19): NDF pays less; the amount is an assumption")
    assert is_assumption("article §10 (F23): the IRGC expands; value an assumption")
    assert is_assumption("article §4, §7: two poles; values are assumptions")
    assert not is_assumption("article §4 (F07): 25/65 = 0.38")
    assert not is_assumption("calibrated: ABC posterior median")


def test_no_assumption_of_the_baseline_is_left_uncovered(baseline):
    """Every assumption-marked provenance key has a range or a reason to be held (a new one fails here)."""
    assert len(assumption_keys(baseline)) > 50
    assert uncovered_assumptions(baseline) == []
    data = scenario_to_dict(baseline)
    section = baseline.robustness
    for key in section.ranges:  # every range holds the baseline's own value
        value = data
        for part in key.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert section.ranges[key].low <= value <= section.ranges[key].high, key


def test_a_new_assumption_is_reported_until_it_is_covered(baseline):
    data = scenario_to_dict(baseline)
    data["provenance"]["rules.clashes.radius_cells"] = "assumption: the neighbourhood counted as near"
    assert uncovered_assumptions(scenario_from_dict(data)) == ["rules.clashes.radius_cells"]
    data["robustness"]["fixed"]["rules.clashes.radius_cells"] = "a structural choice of the clash rule"
    assert uncovered_assumptions(scenario_from_dict(data)) == []


def test_a_group_is_covered_by_a_representative_or_a_reason(baseline):
    data = scenario_to_dict(baseline)
    del data["robustness"]["fixed"]["tribes"]
    assert uncovered_assumptions(scenario_from_dict(data)) == []  # its representatives cover it
    for key in [k for k in data["robustness"]["ranges"] if k.startswith("tribes.")]:
        del data["robustness"]["ranges"][key]
    assert uncovered_assumptions(scenario_from_dict(data)) == ["tribes"]


@pytest.mark.parametrize(
    "ranges, fixed, message",
    [
        ({"rules.no_such.key": {"low": 1, "high": 2}}, {}, "'rules.no_such.key' is not a scenario parameter"),
        ({"factions.NDF.exempts_conscription": {"low": 0, "high": 1}}, {}, "is not a numeric parameter"),
        ({"rules.mediation.interval_days": {"low": 20, "high": 90}}, {}, "is a whole number: add `integer: true`"),
        ({"rules.clashes.p_max": {"low": 0.001, "high": 0.01, "integer": True}}, {}, "is not a whole number"),
        ({"rules.clashes.p_max": {"low": 0.5, "high": 1.5}}, {}, "high 1.5 is above the parameter's maximum (1)"),
        ({"rules.clashes.p_max": {"low": 0.01, "high": 0.001}}, {}, "empty range"),
        ({"rules.mediation.interval_days": {"low": 20.2, "high": 20.8, "integer": True}}, {}, "no whole number"),
        (
            {"rules.mediation.interval_days": {"low": -0.5, "high": 0.5, "integer": True}},
            {},
            "low -0.5 (drawn as 0) is below the parameter's minimum (1)",
        ),
        ({"rules.clashes.p_max": {"low": 0.001, "high": 0.01}}, {"rules.clashes.p_max": "held on purpose"}, "not both"),
        ({"rules.clashes.p_max": {"low": 0.001, "high": 0.01}}, {"rules.nothing.here": "held on purpose"}, "neither"),
    ],
)
def test_bad_ranges_are_refused_with_their_key(ranges, fixed, message):
    data = scenario_to_dict(scenario())
    data["robustness"] = {
        "ranges": {k: {"argument": "an argument for the test", **v} for k, v in ranges.items()},
        "fixed": fixed,
    }
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(data)
    assert message in str(error.value)
    assert "robustness." in str(error.value)


def test_an_integer_range_is_checked_at_the_whole_numbers_it_draws():
    """interval_days (at least 1) over [0.5, 3.5] draws 1, 2 and 3, yet was refused: 'low 0.5 is below the minimum'."""
    data = scenario_to_dict(scenario())
    spec = {"low": 0.5, "high": 3.5, "integer": True, "argument": "an argument for the test"}
    data["robustness"] = {"ranges": {"rules.mediation.interval_days": spec}}
    section = scenario_from_dict(data).robustness
    check_range_ends(scenario(), section)
    assert set(build_design(section, 1, points=12)["rules.mediation.interval_days"]) == {1, 2, 3}


def test_range_ends_are_tried_on_the_whole_scenario():
    """A range the schema accepts field by field can still break the scenario at one end (lat_min < lat_max)."""
    config = scenario()
    section = Robustness.model_validate(
        {"ranges": {"grid.bounds.lat_min": {"low": 34.0, "high": 36.0, "argument": "a range past the northern edge"}}}
    )
    with pytest.raises(ScenarioError) as error:
        check_range_ends(config, section)
    text = str(error.value)
    assert "robustness.ranges.grid.bounds.lat_min" in text and "high end 36" in text and "low end" not in text


CROSSING_RANGES = """\
extends: {toy}
name: crossing_robustness
grid:
  bounds: {{lat_min: 34.0, lat_max: 35.5, lon_min: 40.0, lon_max: 41.0}}
robustness:
  points: 4
  replicates: 1
  ranges:
    grid.bounds.lat_min: {{low: 34.0, high: {lat_min_high}, argument: "the southern edge, for the test"}}
    grid.bounds.lat_max: {{low: 34.5, high: 35.5, argument: "the northern edge, for the test"}}
    rules.clashes.p_max: {{low: 0.004, high: 0.02, argument: "the clash ceiling, for the test"}}
"""


def test_ranges_that_cross_are_refused_at_the_corner_where_they_do(tmp_path, capsys):
    """A high lat_min with a low lat_max passed: only every range at its low end, then at its high end, was tried.

    Each end is valid alone and with the others at the same end; the corners of the design
    are tried as a sweep's are, and the failing one is cut down to the values it needs.
    """
    path = tmp_path / "crossing.yaml"
    path.write_text(CROSSING_RANGES.format(toy=SCENARIOS / "toy_two_towns.yaml", lat_min_high=35.0))
    out = tmp_path / "out"
    assert main(["robustness", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{path}:10: robustness.ranges.grid.bounds.lat_max: the ranges make 'crossing_robustness' invalid together "
        "at grid.bounds.lat_min=35.0, grid.bounds.lat_max=34.5: lat_min (35.0) must be below lat_max (34.5)"
    ], err
    assert not out.exists()
    # Ranges that cannot cross are accepted.
    path.write_text(CROSSING_RANGES.format(toy=SCENARIOS / "toy_two_towns.yaml", lat_min_high=34.4))
    assert plan_robustness(path).keys == ["grid.bounds.lat_min", "grid.bounds.lat_max", "rules.clashes.p_max"]


# --------------------------------------------------------------------------- the plan


@pytest.fixture(scope="module")
def small_plan():
    """The baseline with one variant, 4 points x 2 replicates of 15 days."""
    return plan_robustness("baseline", variants=["salary_parity"], steps=STEPS, points=4, replicates=2, seed=5)


def test_variants_keep_the_keys_they_set_themselves(small_plan):
    (parity,) = small_plan.variants
    assert parity.kept == ("factions.IRGC.salary_usd_month",)
    design = build_design(small_plan.section, small_plan.root_seed, small_plan.points)
    tasks = small_plan.tasks(design)
    assert len(tasks) == 4 * 2 * 2
    base, variant = tasks[0], tasks[1]
    assert (base.point, base.replicate, base.scenario) == (0, 0, 0) and variant.scenario == 1
    assert base.seed == variant.seed  # common random numbers
    assert any(o.startswith("factions.IRGC.salary_usd_month=") for o in base.overrides)
    assert not any(o.startswith("factions.IRGC.salary_usd_month=") for o in variant.overrides)
    assert len(variant.overrides) == len(base.overrides) - 1


def test_unknown_variants_and_scenarios_without_a_section_are_refused():
    with pytest.raises(RobustnessError, match="no variant named nope"):
        plan_robustness("baseline", variants=["nope"])
    with pytest.raises(RobustnessError, match="no `robustness:` section"):
        plan_robustness(SCENARIOS / "toy_two_towns.yaml")
    # A --set on a varied key would be silently overwritten by the design: refused.
    with pytest.raises(RobustnessError, match="varies it over a range"):
        plan_robustness("baseline", variants=["salary_parity"], overrides=["factions.NDF.privileges=0.2"])


def test_a_point_that_does_not_validate_names_the_file_the_point_and_its_values(small_plan, monkeypatch):
    """A failed run's error was 'ScenarioError: --set: <key>: <message>': no file, no point, no other value.

    With the baseline's 86 ranges the corners of the design are too many to try, so a point
    can still fail to validate (here a rule is made up to refuse one value).
    """
    import sim.robustness

    real = sim.robustness.scenario_for
    refused = "factions.NDF.privileges="

    def refusing(base, overrides, *args, **kwargs):
        if any(o.startswith(refused) for o in overrides):
            raise ScenarioError([Problem("--set", "factions.NDF.privileges", None, "too much for the NDF")])
        return real(base, overrides, *args, **kwargs)

    monkeypatch.setattr(sim.robustness, "scenario_for", refusing)
    job = small_plan.job()
    design = build_design(small_plan.section, small_plan.root_seed, small_plan.points)
    files = {0: "scenarios/baseline.yaml", 1: "scenarios/salary_parity.yaml"}
    for task in small_plan.tasks(design)[:2]:  # point 0, replicate 0: the base, then the variant
        row = run_task(job, task)
        assert row["status"] == "failed"
        (value,) = [o for o in task.overrides if o.startswith(refused)]
        others = len(task.overrides) - 1  # 85 in the base; the variant keeps the IRGC salary it sets itself
        assert row["error"] == (
            f"ScenarioError: {files[task.scenario]}: design point 0 ({value}, {others} more values in design.csv): "
            "factions.NDF.privileges: too much for the NDF"
        ), row["error"]


# --------------------------------------------------------------------------- runs: workers, resume


@pytest.fixture(scope="module")
def serial_run(small_plan, tmp_path_factory):
    directory = start_robustness(small_plan, tmp_path_factory.mktemp("rob") / "serial")
    counts = run_robustness(directory, small_plan, workers=1)
    assert counts == {"runs": 16, "total": 16, "done_before": 0, "failed": 0, "finished": 16}
    analyse_robustness(directory, plots=False)
    return directory


def _table(directory) -> pd.DataFrame:
    return pd.read_csv(directory / TABLE)


def _runs(directory) -> pd.DataFrame:
    return pd.read_csv(directory / "runs.csv").drop(columns="elapsed_s")


@pytest.mark.slow
def test_one_and_two_workers_give_the_same_results(small_plan, serial_run, tmp_path):
    directory = start_robustness(small_plan, tmp_path / "two")
    run_robustness(directory, small_plan, workers=2)
    analyse_robustness(directory, plots=False)
    pd.testing.assert_frame_equal(_runs(serial_run), _runs(directory), check_exact=True)
    pd.testing.assert_frame_equal(_table(serial_run), _table(directory), check_exact=True)
    for name in ("summary.csv", "boxes.csv"):
        assert (serial_run / name).read_text() == (directory / name).read_text()


@pytest.mark.slow
def test_dask_gives_the_same_results(small_plan, serial_run, tmp_path):
    directory = start_robustness(small_plan, tmp_path / "dask")
    run_robustness(directory, small_plan, workers=2, dask="local")
    analyse_robustness(directory, plots=False)
    pd.testing.assert_frame_equal(_runs(serial_run), _runs(directory), check_exact=True)
    pd.testing.assert_frame_equal(_table(serial_run), _table(directory), check_exact=True)


def test_an_interrupted_job_resumes_to_the_same_table(small_plan, serial_run, tmp_path):
    directory = start_robustness(small_plan, tmp_path / "cut")
    seen = []

    def stop_after_five(row):
        seen.append(row)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_robustness(directory, small_plan, on_row=stop_after_five)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["status"] == "interrupted" and not (directory / TABLE).exists()
    counts = run_robustness(directory, small_plan)
    assert counts["done_before"] == 5 and counts["runs"] == 11 and counts["finished"] == 16
    analyse_robustness(directory, plots=False)
    pd.testing.assert_frame_equal(_runs(serial_run), _runs(directory), check_exact=True)
    pd.testing.assert_frame_equal(_table(serial_run), _table(directory), check_exact=True)


def test_an_interrupt_wrapped_in_a_kernels_error_stops_the_job_and_is_no_failed_run(small_plan, tmp_path, monkeypatch):
    """As for sweeps: Ctrl-C/SIGTERM whose handler ran inside a compiled kernel reaches the run as a
    SystemError caused by the interrupt; the job stops ("interrupted"), no run recorded as failed."""
    import sim.robustness

    interrupt, calls = KeyboardInterrupt(), []
    real = sim.robustness.run_model

    def interrupted_in_the_fourth_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            error = SystemError("CPUDispatcher(...) returned a result with an exception set")
            error.__cause__ = interrupt
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(sim.robustness, "run_model", interrupted_in_the_fourth_run)
    directory = start_robustness(small_plan, tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt) as raised:
        run_robustness(directory, small_plan)
    assert raised.value is interrupt
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["status"] == "interrupted" and manifest["last_session"]["runs"] == 3


@pytest.mark.parametrize("where", ["make_backend", "_runs_frame"])
def test_an_interrupt_before_the_first_or_after_the_last_run_marks_the_job_interrupted(
    small_plan, tmp_path, monkeypatch, where
):
    """A signal in the seconds a process pool takes to start (`make_backend`), or while the
    backend closes or runs.csv is written (`_runs_frame`), left the manifest "running"."""
    import sim.robustness

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.robustness, where, interrupted)
    directory = start_robustness(small_plan, tmp_path / where)
    with pytest.raises(KeyboardInterrupt):
        run_robustness(directory, small_plan)
    assert json.loads((directory / MANIFEST).read_text())["status"] == "interrupted"
    monkeypatch.undo()
    counts = run_robustness(directory, small_plan)
    assert counts["finished"] == 16 and json.loads((directory / MANIFEST).read_text())["status"] == "complete"
    if where == "_runs_frame":
        assert counts["runs"] == 0  # every run was kept


def test_resume_refuses_a_changed_scenario_or_design(small_plan, serial_run):
    changed = plan_robustness(
        "baseline",
        variants=["salary_parity"],
        steps=STEPS,
        points=4,
        replicates=2,
        seed=5,
        overrides=["rules.clashes.radius_cells=2"],
    )
    with pytest.raises(RobustnessError, match=r"scenario 'baseline' has changed .*\(at rules\.clashes\.radius_cells\)"):
        check_resume(serial_run, changed)
    more_points = plan_robustness("baseline", variants=["salary_parity"], steps=STEPS, points=5, replicates=2, seed=5)
    with pytest.raises(RobustnessError, match="points changed"):
        check_resume(serial_run, more_points)
    fewer_variants = plan_robustness("baseline", variants=[], steps=STEPS, points=4, replicates=2, seed=5)
    with pytest.raises(RobustnessError, match="variants changed since it started"):
        check_resume(serial_run, fewer_variants)
    assert check_resume(serial_run, small_plan)["scenario"] == "baseline"


def test_the_cli_refuses_bad_input_in_one_line(serial_run, tmp_path, capsys):
    assert main(["robustness", "baseline", "--out", str(serial_run)]) == 2
    assert "--resume" in capsys.readouterr().err  # a started job: says how to continue it
    assert main(["robustness", str(SCENARIOS / "toy_two_towns.yaml"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "no `robustness:` section" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()
    changed = ["robustness", "baseline", "--resume", str(serial_run), "--set", "rules.clashes.radius_cells=2"]
    assert main(changed) == 2
    err = capsys.readouterr().err
    assert "has changed since this job started" in err and len(err.strip().splitlines()) == 1
    assert main(["robustness", "baseline", "--resume", str(tmp_path)]) == 2
    assert "not a robustness directory" in capsys.readouterr().err


# --------------------------------------------------------------------------- verdicts per point


def _manifest(**extra) -> dict:
    manifest = {
        "scenario": "base",
        "patterns": ["p1", "p2"],
        "threshold": 0.5,
        "ranges": {"a": {"low": 0.0, "high": 1.0, "argument": "x" * 10}},
        "variants": [
            {
                "name": "cut",
                "rule": "all",
                "expectations": [{"outcome": "y", "direction": "-", "margin": 0.1, "why": ""}],
            },
            {
                "name": "either",
                "rule": "any",
                "expectations": [
                    {"outcome": "y", "direction": "+", "margin": 0.0, "why": ""},
                    {"outcome": "z", "direction": "+", "margin": 0.0, "why": ""},
                ],
            },
        ],
    }
    manifest.update(extra)
    return manifest


def _row(point, replicate, scenario, **values) -> dict:
    row = {"point": point, "replicate": replicate, "scenario": scenario, "seed": replicate, "status": "ok", "error": ""}
    row.update(values)
    return row


def test_point_verdicts_follow_the_threshold_the_signs_and_the_rules():
    design = pd.DataFrame({"point": [0, 1], "a": [0.2, 0.8]})
    runs = pd.DataFrame(
        [
            # point 0: p1 in 2 of 3 runs (holds at 0.5), p2 in all; y falls by 20% (cut holds), z rises (either)
            _row(0, 0, "base", **{"pattern.p1": True, "pattern.p2": True, "outcome.y": 10.0, "outcome.z": 1.0}),
            _row(0, 1, "base", **{"pattern.p1": True, "pattern.p2": True, "outcome.y": 10.0, "outcome.z": 1.0}),
            _row(0, 2, "base", **{"pattern.p1": False, "pattern.p2": True, "outcome.y": 10.0, "outcome.z": 1.0}),
            *[_row(0, k, "cut", **{"outcome.y": 8.0}) for k in range(3)],
            *[_row(0, k, "either", **{"outcome.y": 9.0, "outcome.z": 2.0}) for k in range(3)],
            # point 1: p1 in 1 of 3 runs (fails); y falls by 5% only (cut fails: margin 10%); nothing rises
            _row(1, 0, "base", **{"pattern.p1": True, "pattern.p2": True, "outcome.y": 10.0, "outcome.z": 1.0}),
            _row(1, 1, "base", **{"pattern.p1": False, "pattern.p2": True, "outcome.y": 10.0, "outcome.z": 1.0}),
            _row(1, 2, "base", **{"pattern.p1": False, "pattern.p2": None, "outcome.y": 10.0, "outcome.z": 1.0}),
            *[_row(1, k, "cut", **{"outcome.y": 9.5}) for k in range(3)],
            *[_row(1, k, "either", **{"outcome.y": 9.0, "outcome.z": 1.0}) for k in range(3)],
        ]
    )
    runs["pattern.all_patterns_jointly"] = runs["pattern.p1"] & runs["pattern.p2"].fillna(False)
    manifest = _manifest()
    table = point_table(design, runs, manifest)
    assert list(table["share.p1"]) == pytest.approx([2 / 3, 1 / 3])
    assert list(table["share.p2"]) == [1.0, 1.0]  # an n/a flag is left out of the share
    assert list(table[f"holds.{PATTERNS_VERDICT}"]) == [True, False]
    assert list(table["diff.cut.y"]) == pytest.approx([-2.0, -0.5])
    assert list(table["holds.cut"]) == [True, False]
    assert list(table["holds.either"]) == [True, False]
    assert list(table[f"holds.{ALL_VERDICT}"]) == [True, False]
    summary = verdict_summary(table, manifest).set_index("verdict")
    assert summary.loc["cut", "share"] == 0.5 and summary.loc["cut", "points"] == 2
    assert summary.loc["cut", "ci_low"] < 0.5 < summary.loc["cut", "ci_high"]
    assert summary.loc["p1", "kind"] == "pattern" and summary.loc["p1", "holds"] == 1


def test_a_point_without_finished_runs_is_not_judged():
    design = pd.DataFrame({"point": [0], "a": [0.5]})
    runs = pd.DataFrame([{**_row(0, 0, "base"), "status": "failed", "error": "RuntimeError: boom"}])
    table = point_table(design, runs, _manifest(variants=[]))
    assert table["runs_ok"].iloc[0] == 0 and table["runs_failed"].iloc[0] == 1
    assert pd.isna(table[f"holds.{PATTERNS_VERDICT}"].iloc[0]) and pd.isna(table[f"holds.{ALL_VERDICT}"].iloc[0])


# --------------------------------------------------------------------------- PRIM


def _synthetic(n=80, d=12, seed=3):
    """A Latin hypercube where the verdict fails (with 10% noise) exactly when assumption `a0` is above 240.

    `a1` is a whole number (0-9), as integer ranges are.
    """
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(qmc.LatinHypercube(d, rng=rng).random(n), columns=[f"a{i}" for i in range(d)])
    x["a0"] = 100 + 200 * x["a0"]
    x["a1"] = np.floor(10 * x["a1"]).astype(np.int64)
    fails = (x["a0"] > 240).to_numpy() & (rng.random(n) < 0.9)
    return x, fails


def test_prim_finds_the_box_where_failure_is_known():
    x, fails = _synthetic()
    boxes = find_boxes(x, fails)
    assert boxes, "no box found"
    box = boxes[0]
    assert box.dimensions == ["a0"]  # only the deciding assumption, the others dropped as insignificant
    assert 225 <= box.limits["lower"].iloc[0] <= 245 and math.isnan(box.limits["upper"].iloc[0])
    assert box.coverage >= 0.9 and box.density >= 0.8 and box.reached
    assert box.limits["qp_lower"].iloc[0] < 1e-6
    assert box.trajectory["id"].iloc[box.chosen] == box.chosen


def test_feature_scores_rank_the_deciding_assumption_first_and_are_reproducible():
    x, fails = _synthetic()
    scores = feature_scores(x, fails, seed=11)
    assert scores.index[0] == "a0" and scores.iloc[0] > 2 * scores.iloc[1]
    assert sorted(scores.index) == sorted(x.columns) and scores.sum() == pytest.approx(1.0)
    pd.testing.assert_series_equal(scores, feature_scores(x, fails, seed=11))


def test_find_boxes_handles_the_ema_workbench_3_api(monkeypatch):
    """ema-workbench 3.x (Python >= 3.12) has no `threshold` argument and names quasi-p values `p_values`.

    The installed library is either (2.x on Python 3.11, 3.x on newer): the 3.x face is put on
    whichever it is, so the same boxes must come out of both faces on every Python.
    """
    import inspect

    import sim.robustness as robustness

    real = robustness._prim_library()
    has_threshold = "threshold" in inspect.signature(real.Prim).parameters  # 2.x

    class Box3:
        def __init__(self, box):
            self._box = box

        def __getattr__(self, name):
            if name == "qp":
                raise AttributeError(name)
            if name == "p_values":
                return self._box.qp if has_threshold else self._box.p_values
            return getattr(self._box, name)

    class Prim3:
        def __init__(self, x, y, peel_alpha=0.05, paste_alpha=0.05, mass_min=0.05, update_function="default"):
            threshold = {"threshold": 1e-9} if has_threshold else {}
            self._prim = real.Prim(
                x, y, **threshold, peel_alpha=peel_alpha, paste_alpha=paste_alpha, mass_min=mass_min
            )

        def find_box(self):
            box = self._prim.find_box()
            return None if box is None else Box3(box)

    x, fails = _synthetic()
    expected = find_boxes(x, fails)
    monkeypatch.setattr(robustness, "_prim_library", lambda: type("prim3", (), {"Prim": Prim3}))
    got = find_boxes(x, fails)
    assert [b.dimensions for b in got] == [b.dimensions for b in expected]
    pd.testing.assert_frame_equal(got[0].limits, expected[0].limits)


def test_discovery_says_so_when_there_is_nothing_to_find(tmp_path):
    x, fails = _synthetic()
    table = x.assign(point=range(len(x)), **{"holds.patterns": ~fails, "holds.all": True})
    manifest = {
        "scenario": "s",
        "patterns": [],
        "threshold": 0.5,
        "variants": [],
        "ranges": {c: {"low": float(x[c].min()), "high": float(x[c].max()), "argument": "x" * 10} for c in x},
        "points": len(x),
        "replicates": 1,
        "steps": 10,
        "root_seed": 1,
    }
    found = {(d.verdict, d.target): d for d in discover(table, manifest)}
    assert found[("patterns", "fails")].status == "boxes"
    assert found[("patterns", "fails")].boxes[0].dimensions == ["a0"]
    assert found[("patterns", "fails")].scores.index[0] == "a0"
    assert found[("all", "fails")].status == "none"
    assert "nothing to describe" in found[("all", "fails")].message
    assert ("all", "holds") not in found  # it mostly holds: no need to say where it holds
    few = table.assign(**{"holds.patterns": [i >= PRIM_MIN_CASES - 1 for i in range(len(x))]})
    assert {d.status for d in discover(few, manifest) if d.verdict == "patterns"} == {"too few"}
    mostly = table.assign(**{"holds.patterns": fails})  # holds only where a0 is high: 'holds' is the news
    statuses = {d.target: d.status for d in discover(mostly, manifest) if d.verdict == "patterns"}
    assert statuses == {"fails": "boxes", "holds": "boxes"}
    d = found[("patterns", "fails")]
    assert plot_tradeoff(d, manifest, tmp_path / "t.png").stat().st_size > 10_000
    assert plot_box_limits(d, table, manifest, tmp_path / "b.png").stat().st_size > 10_000
    empty = Discovery("all", "fails", 80, 0, "none", "holds at all 80 points")
    assert empty.label == "all_fails" and empty.boxes == []


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_end_to_end_writes_every_file(tmp_path, capsys):
    out = tmp_path / "rob"
    args = ["robustness", "baseline", "--points", "5", "--replicates", "1", "--steps", str(STEPS)]
    assert main([*args, "--variant", "salary_parity", "--seed", "3", "--out", str(out)]) == 0
    printed, err = capsys.readouterr()
    # shorter runs than the patterns were written for: said, once (exit 0 all the same)
    assert f"are judged here on {STEPS}-day runs (--steps)" in err and err.count("\n") == 1, err
    assert "patterns: holds at" in printed and "salary_parity: holds at" in printed and str(out) in printed
    for name in (
        "scenario.yaml",
        "variants/salary_parity.yaml",
        DESIGN,
        MANIFEST,
        "runs.jsonl",
        "runs.csv",
        TABLE,
        "summary.csv",
        "boxes.csv",
        "prim_trajectories.csv",
        "feature_scores.csv",
        "ROBUSTNESS.md",
        "plots/verdict_shares.png",
    ):
        assert (out / name).exists(), name
    table = pd.read_csv(out / TABLE)
    assert len(table) == 5 and {"holds.patterns", "holds.salary_parity", "holds.all"} <= set(table.columns)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["status"] == "complete" and manifest["n_runs"] == 10 and manifest["uncovered_assumptions"] == []
    assert manifest["prim"]["library"] == "ema_workbench.analysis.prim.Prim"
    report = (out / "ROBUSTNESS.md").read_text()
    assert "## Where the verdicts hold" in report and "## Assumptions held fixed" in report
    rerun = load_scenario(out / "scenario.yaml")
    assert rerun.robustness is not None and rerun.name == "baseline"
