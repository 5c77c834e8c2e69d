"""`run.py compare` and `sim.compare` (sim.comparison): scenarios or finished runs side by side on
common random numbers, paired differences with bootstrap intervals, tables, overlay plots and
the plain-language summary; every bad input refused on one line with exit status 2."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil

import pytest
from helpers import SCENARIOS

import sim
from sim import comparison as C
from sim.cli import build_parser, main
from sim.outcomes import outcome_label
from sim.results import manifest_files, read_manifest, read_result_csv
from sim.scenario import load_scenario
from sim.seeding import replicate_seeds

TOY = str(SCENARIOS / "toy_two_towns.yaml")
FEW = ["--steps", "30", "--replicates", "3"]
RED_PAID_LIKE_BLUE = "factions.Red.salary_usd_month=120"  # the toy's Red pays 150, Blue 120
DATA_FILES = ("outcomes.csv", "differences.csv", "runs.csv", "series.csv", "COMPARE.md")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def toy_pair(tmp_path_factory):
    """The toy against itself with Red's pay cut to Blue's (input 2 only), written with plots."""
    out = tmp_path_factory.mktemp("compare") / "toy"
    comparison = sim.compare([TOY, (TOY, [RED_PAID_LIKE_BLUE])], replicates=3, steps=30)
    comparison.save(out)
    return comparison, out


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    """Two results directories of `run.py run` (the toy, and the toy with Red paid like Blue), 3 x 30 days."""
    root = tmp_path_factory.mktemp("runs")
    first, second = root / "toy", root / "toy-red-paid-less"
    assert main(["run", TOY, *FEW, "--no-plots", "--out", str(first)]) == 0
    assert main(["run", TOY, *FEW, "--no-plots", "--set", RED_PAID_LIKE_BLUE, "--out", str(second)]) == 0
    return first, second


# --------------------------------------------------------------------------- common random numbers


def test_identical_scenarios_differ_by_exactly_zero_with_a_degenerate_interval():
    comparison = sim.compare([TOY, TOY], replicates=3, steps=30)
    assert comparison.labels == ["toy_two_towns #1", "toy_two_towns #2"]
    runs = comparison.runs
    seeds = replicate_seeds(load_scenario(TOY).seed, 3)
    for label in comparison.labels:  # replicate k: one seed in every scenario
        assert list(runs.loc[runs["scenario"] == label, "seed"]) == seeds
    diffs = comparison.differences
    assert len(diffs) == len(comparison.plan.outcomes) > 0
    assert (diffs["mean_diff"] == 0).all() and (diffs["ci_low"] == 0).all() and (diffs["ci_high"] == 0).all()
    assert set(diffs["verdict"]) == {"too few runs"}  # 3 pairs < C.MIN_PAIRS
    assert "the same in every pair of runs" in "\n".join(comparison.summary_lines())


def test_salary_parity_lowers_ndf_to_irgc_defections_clearly_and_the_summary_says_so(tmp_path, capsys):
    """Issue 9's expectation, with fixed seeds: the IRGC paying the NDF's salary cuts NDF->IRGC defection."""
    out = tmp_path / "c"
    few = ["--steps", "60", "--replicates", "10", "--no-plots"]  # C.MIN_PAIRS: fewer are not judged
    outcomes = ["--outcomes", "defections.NDF>IRGC,clashes_total"]
    assert main(["compare", "baseline", "salary_parity", *few, *outcomes, "--out", str(out)]) == 0
    table = read_result_csv(out / "differences.csv", text_columns=["scenario", "versus", "outcome", "label", "verdict"])
    row = table.set_index("outcome").loc["defections.NDF>IRGC"]
    assert row["verdict"] == "clear" and row["ci_high"] < 0 < row["versus_mean"]
    assert row["mean_diff"] == pytest.approx(row["scenario_mean"] - row["versus_mean"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("Each scenario vs baseline: mean paired difference over 10 seeds of 60-day runs")
    size = f"{-row['mean_diff']:.3g}"
    assert lines[1].startswith(f"salary_parity vs baseline: NDF→IRGC defections (fighters) down by {size} [")
    assert lines[1].endswith("(clear)")
    assert lines[-1] == str(out)


@pytest.mark.slow  # a process pool
def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        args = ["compare", TOY, TOY, "--set-for", "2", RED_PAID_LIKE_BLUE, "--steps", "10", "--replicates", "2"]
        args.append("--no-plots")
        assert main([*args, "--workers", workers, "--out", str(out)]) == 0
        outs.append(out)
    for name in DATA_FILES:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    manifests = [json.loads((o / "manifest.json").read_text()) for o in outs]
    assert manifests[0]["executor"] == "serial" and manifests[1]["executor"].startswith("processes")
    # The recorded command makes the same comparison again.
    command = shlex.split(manifests[0]["command"])
    assert command[:3] == ["python", "run.py", "compare"] and ["--set-for", "2", RED_PAID_LIKE_BLUE] == command[-3:]
    again = tmp_path / "again"
    assert main([*command[2:], "--no-plots", "--out", str(again)]) == 0
    for name in DATA_FILES[:-1]:  # the CSVs (COMPARE.md shows the inputs as given: a path written otherwise)
        assert (again / name).read_bytes() == (outs[0] / name).read_bytes(), name


# --------------------------------------------------------------------------- results directories


def test_results_directories_compare_as_the_scenarios_that_made_them(tmp_path, run_dirs, capsys):
    first, second = run_dirs
    fresh, read, mixed = tmp_path / "fresh", tmp_path / "read", tmp_path / "mixed"
    paid = ["--set-for", "2", RED_PAID_LIKE_BLUE, "--no-plots"]
    assert main(["compare", TOY, TOY, *paid, *FEW, "--out", str(fresh)]) == 0
    assert main(["compare", str(first), str(second), "--no-plots", "--out", str(read)]) == 0
    # A scenario beside a results directory runs at its seeds and steps.
    assert main(["compare", str(first), TOY, *paid, "--out", str(mixed)]) == 0
    for name in ("differences.csv", "runs.csv", "series.csv", "outcomes.csv"):
        assert (fresh / name).read_bytes() == (read / name).read_bytes() == (mixed / name).read_bytes(), name
    manifest = json.loads((read / "manifest.json").read_text())
    assert [i["kind"] for i in manifest["inputs"]] == ["results", "results"]
    assert manifest["inputs"][1]["label"] == f"toy_two_towns [{RED_PAID_LIKE_BLUE}]"


@pytest.mark.parametrize(
    ("make_other", "expected"),
    [
        (["--seed", "5"], "its seeds differ from those of"),
        (["--steps", "31"], "31 steps where"),
    ],
)
def test_results_directories_that_cannot_be_paired_are_refused(tmp_path, run_dirs, capsys, make_other, expected):
    first, _ = run_dirs
    other = tmp_path / "other"
    few = ["--replicates", "3", *(["--steps", "30"] if "--steps" not in make_other else [])]
    assert main(["run", TOY, *few, *make_other, "--no-plots", "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["compare", str(first), str(other), "--out", str(tmp_path / "c")]) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"{other}: ") and expected in line and "--seed, --replicates and --steps" in line
    assert not (tmp_path / "c").exists()
    assert main(["compare", str(first), TOY, "--steps", "40", "--out", str(tmp_path / "c")]) == 2
    assert "--steps 40 differs from the 30 steps" in _one_line_error(capsys)


def test_a_damaged_results_directory_is_refused_naming_the_file(tmp_path, run_dirs, capsys):
    first, second = run_dirs
    damaged = tmp_path / "damaged"
    shutil.copytree(second, damaged)
    table = damaged / "timeseries.csv"
    table.write_bytes(table.read_bytes()[:-40])  # a row cut off
    assert main(["compare", str(first), str(damaged), "--out", str(tmp_path / "c")]) == 2
    assert _one_line_error(capsys).startswith(f"error: {table}: ")
    assert main(["compare", str(first), str(second), "--set", "steps=5", "--out", str(tmp_path / "c")]) == 2
    assert "results directory holds finished runs" in _one_line_error(capsys)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda m: m["replicates"][1].update(seed=m["replicates"][0]["seed"]), "repeat a seed"),
        (lambda m: m["replicates"][0].update(seed="7"), "replicates.0.seed is not a whole number"),
        (lambda m: m.update(steps=29), "are not steps 0 to 29"),
        (lambda m: m.update(overrides="steps=3"), "overrides is not a list"),
        # into every footer: an escape sequence printed "Glyph 27 missing" warnings, a newline broke the line
        (lambda m: m.update(overrides=["a=1\x1b[31mRED"]), "overrides.0 is not a KEY=VALUE text on one line"),
        (lambda m: m.update(overrides=["$(rm -rf /)"]), "overrides.0 is not a KEY=VALUE text on one line"),
    ],
)
def test_a_manifest_that_does_not_match_its_runs_is_refused(tmp_path, run_dirs, capsys, edit, expected):
    """manifest.json is not covered by its own checksums: what compare reads of it is checked against the runs."""
    first, second = run_dirs
    edited = tmp_path / "edited"
    shutil.copytree(second, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    edit(manifest)
    (edited / "manifest.json").write_text(json.dumps(manifest))
    assert main(["compare", str(edited), str(first), "--out", str(tmp_path / "c")]) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"error: {edited}/") and expected in line
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------- per-scenario overrides


def test_set_applies_to_every_scenario_and_set_for_to_one():
    inputs = C.inputs_with_overrides([TOY, "toy_two_towns"], [["2", RED_PAID_LIKE_BLUE]])
    assert inputs == [TOY, ("toy_two_towns", (RED_PAID_LIKE_BLUE,))]
    plan = C.prepare(inputs, replicates=2, steps=5, overrides=["factions.Blue.salary_usd_month=100"])
    blue = [i.config.factions["Blue"].salary_usd_month for i in plan.inputs]
    red = [i.config.factions["Red"].salary_usd_month for i in plan.inputs]
    assert blue == [100, 100] and red == [150, 120]
    assert plan.inputs[1].label == f"toy_two_towns [{RED_PAID_LIKE_BLUE}]"
    # By its name as written, or its file name without .yaml, when that names one input.
    by_name = C.inputs_with_overrides([TOY, "baseline"], [["toy_two_towns", RED_PAID_LIKE_BLUE]])
    assert by_name == [(TOY, (RED_PAID_LIKE_BLUE,)), "baseline"]


def test_set_for_changes_the_runs_of_its_input_only(toy_pair):
    comparison, _ = toy_pair
    assert comparison.plan.inputs[1].overrides == (RED_PAID_LIKE_BLUE,)
    assert (comparison.differences["mean_diff"] != 0).any()  # the same seeds, another scenario


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nosuch_scenario", "baseline"], "nosuch_scenario"),
        (["baseline"], "give at least two scenarios or results directories to compare (got 1)"),
        (["baseline", "baseline", "--set-for", "3", "steps=5"], "--set-for: 3: there are inputs 1 to 2 only"),
        (["baseline", "baseline", "--set-for", "baseline", "steps=5"], "give a position instead"),
        (["baseline", "salary_parity", "--set-for", "nope", "steps=5"], "no input is 'nope'"),
        # a position is ASCII digits without a leading zero, as whole numbers everywhere else
        (["baseline", "baseline", "--set-for", "02", "steps=5"], "--set-for: 02: a leading zero is refused; write 2"),
        (["baseline", "baseline", "--set-for", "0", "steps=5"], "--set-for: 0: there are inputs 1 to 2 only"),
        (["baseline", "baseline", "--set-for", "\u0662", "steps=5"], "no input is '\u0662'"),
        (["baseline", "salary_parity", "--outcomes", "nope"], "--outcomes: nope: unknown outcome 'nope'"),
        (["baseline", "salary_parity", "--set", "factions.NOPE.salary_usd_month=3"], "factions.NOPE"),
        (["baseline", "salary_parity", "--steps", "0"], "--steps: must be between 1"),
        (["baseline", "salary_parity", "--replicates", "many"], "expected a whole number"),
        # the days and seeds are the comparison's: one input's own were labelled on it and ignored
        (["baseline", "baseline", "--set-for", "2", "steps=5"], "--set-for 2: steps=5: every input runs the same days"),
        (["baseline", "baseline", "--set-for", "1", "seed=3"], "set seed for all with --seed"),
        (["baseline", "baseline", "--set-for", "2", " steps = 7"], "set steps for all with --steps"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, expected):
    out = tmp_path / "c"
    try:
        status = main(["compare", *args, "--out", str(out)])
    except SystemExit as exit_:  # argparse refuses bad arguments itself
        status = exit_.code
    assert status == 2
    assert expected in _one_line_error(capsys)
    assert not out.exists()



@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set-for", "2", "factions.Red.salary_usd_month=-5"],
         "--set-for 2: factions.Red.salary_usd_month: input should be greater than or equal to 0 (got -5)"),
        (["--set-for", "2", "factions.Red.salary_usd_month"],
         "--set-for 2: expected key.path=value, got 'factions.Red.salary_usd_month' (no '=')"),
        (["--set-for", "1", "factions.Red.colour=1"], "--set-for 1: factions.Red.colour: unknown key 'colour'"),
        (["--set-for", "2", "factions.Red.salary_usd_month=["],
         "--set-for 2: factions.Red.salary_usd_month: while parsing"),
        # --set's own problems are still --set's, with a --set-for of another key beside them
        (["--set", "factions.Blue.salary_usd_month=-3", "--set-for", "2", "factions.Red.salary_usd_month=90"],
         "--set: factions.Blue.salary_usd_month: input should be greater than or equal to 0"),
        # a key both give: the --set-for's value, applied after the --set's
        (["--set", "factions.Red.salary_usd_month=90", "--set-for", "2", "factions.Red.salary_usd_month=-1"],
         "--set-for 2: factions.Red.salary_usd_month: input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_a_set_for_option_s_problem_names_set_for(tmp_path, capsys, args, expected):
    # helper-b: every problem of a --set-for was reported as "--set: ...", an option not given.
    out = tmp_path / "c"
    assert main(["compare", TOY, TOY, *args, *FEW, "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert err.startswith(expected), err
    assert not out.exists()


def test_a_comparison_whose_series_would_not_fit_in_memory_is_refused_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sim.limits.available_bytes", lambda: 50 * 2**20)  # 50 MiB
    out = tmp_path / "c"
    assert main(["compare", TOY, TOY, "--replicates", "5000", "--out", str(out)]) == 2
    assert "use fewer --replicates or --steps" in _one_line_error(capsys) and not out.exists()


def test_outcomes_missing_in_one_scenario_are_not_comparable():
    comparison = sim.compare(["baseline", TOY], replicates=2, steps=5)
    verdicts = comparison.differences.set_index("outcome")["verdict"]
    assert verdicts["defections.NDF>IRGC"] == verdicts["fighters_final.Blue"] == "not comparable"
    assert verdicts["clashes_total"] != "not comparable"  # both scenarios have clashes
    table = comparison.outcome_table.set_index(["scenario", "outcome"])
    assert not table.loc[("toy_two_towns", "fighters_final.IRGC"), "defined"]
    assert any("not comparable (not an outcome of both scenarios)" in x for x in comparison.summary_lines())
    assert "| IRGC fighters on the last day (fighters) | " in comparison.markdown()


# --------------------------------------------------------------------------- outputs


def test_the_directory_has_tables_plots_and_a_format_2_manifest(toy_pair):
    comparison, out = toy_pair
    manifest = read_manifest(out / "manifest.json", C.KIND)
    assert manifest["format"] == 2 and manifest["steps"] == 30 and manifest["n_replicates"] == 3
    records = manifest_files(manifest, out / "manifest.json", DATA_FILES)
    for name in DATA_FILES:
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == records[name]["sha256"]
    differences = read_result_csv(
        out / "differences.csv",
        text_columns=records["differences.csv"]["text_columns"],
        expected_rows=records["differences.csv"]["rows"],
        sha256=records["differences.csv"]["sha256"],
    )
    assert list(differences["outcome"]) == comparison.plan.outcomes
    assert {p.name for p in (out / "plots").iterdir()} == {f"{stem}.png" for stem, *_ in C.FIGURES}


def test_plots_overlay_every_scenario_with_words_units_and_a_footer(toy_pair, tmp_path, monkeypatch):
    comparison, _ = toy_pair
    drawn = {}

    def keep(fig, path, dpi=None):
        drawn[path.name] = fig
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr("sim.figures.save_png", keep)
    C.plot_comparison(comparison, tmp_path)
    fig = drawn["compare_fighters.png"]
    texts = [t.get_text() for t in fig.texts]
    assert "Fit fighters per militia" in texts
    foot = next(t for t in texts if t.startswith("Scenario "))
    assert "toy_two_towns vs toy_two_towns [factions.Red.salary_usd_month=120]" in foot
    assert "30 days per run" in foot and "3 replicates, root seed" in foot and RED_PAID_LIKE_BLUE in foot
    assert "common random numbers" in foot and "faction-sim " in foot and ", commit " in foot
    ax = fig.axes[0]
    assert ax.get_xlabel() == "day" and "fighters" in ax.get_ylabel() and ax.get_title() == "Blue"
    assert len(ax.lines) == 2 and len(ax.collections) == 2  # a median line and a band per scenario
    assert ax.lines[0].get_color() != ax.lines[1].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == comparison.labels
    violence = drawn["compare_violence.png"].axes
    assert [a.get_ylabel() for a in violence if a.get_visible()][:2] == [
        "cumulative clashes (count)",
        "cumulative killed (people)",
    ]


def test_markdown_tables_give_quantiles_differences_and_verdicts(toy_pair):
    comparison, out = toy_pair
    text = (out / "COMPARE.md").read_text()
    assert text.startswith("# Comparison: `toy_two_towns` vs `toy_two_towns [factions.Red.salary_usd_month=120]`")
    assert "| outcome | `toy_two_towns` | `toy_two_towns [factions.Red.salary_usd_month=120]` |" in text
    table = comparison.outcome_table.set_index(["scenario", "outcome"])
    row = table.loc[("toy_two_towns", "fighters_final.Blue")]
    cell = f"{C._num(row['median'])} [{C._num(row['q05'])}, {C._num(row['q95'])}]"
    assert f"| Blue fighters on the last day (fighters) | {cell} |" in text
    assert "| scenario | outcome | mean difference | 95% interval | pairs | verdict |" in text
    assert "![Fit fighters per militia](plots/compare_fighters.png)" in text


def test_compare_help_explains_every_argument_and_ends_with_examples():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["compare"]
    for action in sub._actions:
        assert action.help, action.dest
    assert sub.epilog.startswith("examples:\n  python run.py compare baseline salary_parity")
    replicates = next(a for a in sub._actions if a.dest == "replicates")
    assert f"default {C.DEFAULT_REPLICATES}," in replicates.help  # the help says the default the code uses
    assert "--set-for" in sub.format_help() and sub.format_help().rstrip().endswith(sub.epilog.strip().splitlines()[-1])


def test_a_factions_fighters_are_labelled_in_its_own_unit():
    # Every fighters_final.<faction> was "(fighters, or insurgent cells)": a militia's fighters are
    # people, an insurgent faction's strength is insurgent cells.
    outcomes = ["fighters_final.Blue", "fighters_final.Cells", "fighters_initial.Cells"]
    comparison = sim.compare([TOY, (TOY, [RED_PAID_LIKE_BLUE])], replicates=2, steps=5, outcomes=outcomes)
    words = {
        "fighters_final.Blue": "Blue fighters on the last day (fighters)",
        "fighters_final.Cells": "Cells fighters on the last day (insurgent cells)",
        "fighters_initial.Cells": "Cells fighters on day 0 (insurgent cells)",
    }
    for table in (comparison.outcome_table, comparison.differences):
        assert dict(zip(table["outcome"], table["label"], strict=True)) == words
    text = comparison.markdown()
    assert all(f"| {label} |" in text for label in words.values()) and "or insurgent cells" not in text
    assert "or insurgent cells" not in "\n".join(comparison.summary_lines())
    # without the factions' kinds, or where two scenarios give a name two kinds, both units
    assert outcome_label("fighters_final.Cells") == "Cells fighters on the last day (fighters, or insurgent cells)"
    both = C._faction_kinds(load_scenario(TOY), load_scenario(TOY, ["factions.Cells.kind=militia"]))
    assert "Cells" not in both and both["Blue"] == "militia"
    assert outcome_label("fighters_final.Cells", both).endswith("(fighters, or insurgent cells)")


def test_outcome_label_says_the_outcome_in_words_with_its_unit():
    assert outcome_label("defections.NDF>IRGC") == "NDF→IRGC defections (fighters)"
    assert outcome_label("fighters_final.IRGC") == "IRGC fighters on the last day (fighters, or insurgent cells)"
    assert outcome_label("insurgent_peak") == "Peak insurgent strength (insurgent cells)"
    assert outcome_label("not_an_outcome") == "not_an_outcome"
    # "never" is the last day + 1: a heatmap of 31s in 30-day runs must say what 31 means
    assert outcome_label("control_change_step.buqrus") == "First day buqrus changed hands, last day + 1 if never (day)"


def test_with_fewer_than_min_pairs_no_difference_is_called_clear():
    """3 seeds called 7 of 17 outcomes of a do-nothing change 'clear' (a BCa interval over 3 seeds is too narrow)."""
    comparison = sim.compare([TOY, (TOY, [RED_PAID_LIKE_BLUE])], replicates=3, steps=30)
    diffs = comparison.differences
    assert (diffs["n_pairs"] == 3).all() and "clear" not in set(diffs["verdict"])
    assert set(diffs["verdict"]) <= {"too few runs", "not comparable"}
    lines = comparison.summary_lines()
    assert lines[1].startswith(f"Only 3 seeds: below {C.MIN_PAIRS} pairs of runs no difference is called clear")
    judged = [line for line in lines if line.endswith("(clear)")]
    assert not judged and any(line.endswith("(not judged: too few runs)") for line in lines)


def test_the_insurgents_are_compared_by_their_strength_not_as_fighters():
    comparison = sim.compare(["baseline", "salary_parity"], replicates=2, steps=3)
    outcomes = set(comparison.differences["outcome"])
    assert "insurgent_peak" in outcomes and "fighters_final.ISIS" not in outcomes
    assert {"fighters_final.IRGC", "fighters_final.NDF"} <= outcomes


def test_an_out_that_holds_a_comparison_is_refused_without_suggesting_resume(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["compare", TOY, TOY, "--steps", "3", "--replicates", "2", "--no-plots", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["compare", TOY, TOY, "--steps", "3", "--replicates", "2", "--no-plots", "--out", str(out)]) == 2
    error = _one_line_error(capsys)
    assert "not empty; choose another --out" in error and "--resume" not in error


def test_one_name_instead_of_a_list_is_refused_as_such():
    from sim.yaml_source import ScenarioError

    with pytest.raises(ScenarioError, match="give a list of two or more"):
        sim.compare("baseline")


def test_a_long_override_is_cut_in_labels_and_kept_whole_in_the_manifest(tmp_path, capsys):
    """A 10,000-point river by --set made every label 200 KB: tables of 45 MB, figures unreadable, 410 s."""
    from sim.yaml_source import OVERRIDE_SHOWN_CHARS

    long_value = "factions.Red.salary_usd_month=150." + "0" * 3000 + "1"
    out = tmp_path / "long"
    assert main(["compare", TOY, TOY, "--set-for", "2", long_value, *FEW, "--no-plots", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert long_value not in printed and f"({len(long_value):,} characters)" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    label = manifest["inputs"][1]["label"]
    assert label == f"toy_two_towns [{long_value[: OVERRIDE_SHOWN_CHARS - 1]}… ({len(long_value):,} characters)]"
    assert long_value in (out / "manifest.json").read_text()  # the command that makes it again, whole
    assert max(len(line) for line in (out / "runs.csv").read_text().splitlines()) < 1000


def test_default_defection_flows_leave_out_only_flows_no_recruit_can_make():
    """Key outcomes list the defection flows a recruit could make: in the Syria-wide scenario the
    flows within each theatre; the flows between militias of different theatres, left out, stay 0
    in runs (no recruit can make them); with a town of no theatre (its men may join any militia),
    every flow is listed."""
    import numpy as np

    from sim.engine import Engine

    config = load_scenario(SCENARIOS / "syria_wide.yaml")
    militias = [n for n, f in config.factions.items() if f.kind == "militia"]
    every = {f"defections.{a}>{b}" for a in militias for b in militias if a != b}
    listed = {name for name in C.key_outcomes([config]) if name.startswith("defections.")}
    theatre = {m: config.factions[m].theatre for m in militias}
    assert listed == {f"defections.{a}>{b}" for a in militias for b in militias if a != b and theatre[a] == theatre[b]}
    assert len(every - listed) == len(every) - len(listed) > 0
    left_out = sorted(every - listed)
    for seed in (1, 2):
        engine = Engine(config, seed=seed)
        for _ in range(150):
            engine.step()
        table = engine.datacollector.get_model_vars_dataframe(columns=left_out + sorted(listed))
        assert not table[left_out].to_numpy().any()
        assert table[sorted(listed)].to_numpy().any()  # the flows kept do happen
    town = next(name for name, site in config.sites.items() if site.population > 0)
    opened = load_scenario(SCENARIOS / "syria_wide.yaml", [f"sites.{town}.theatre=null"])
    assert {name for name in C.key_outcomes([opened]) if name.startswith("defections.")} == every
    assert np.all([C.defection_possible(opened, a, b) for a in militias for b in militias])


def test_the_series_and_plots_show_the_flows_the_tables_show():
    """series.csv (and the defections figure drawn from it) keeps the defection flows of the default
    outcomes, plus any flow the outcomes name (both ways of a net one), not every pair recorded."""
    inputs = [SCENARIOS / "syria_wide.yaml", SCENARIOS / "syria_wide_isolated.yaml"]
    plan = C.prepare(inputs, replicates=1, steps=3)
    shown = {n for n in C.run_comparison(plan).series["series"] if n.startswith("defections.")}
    assert shown == {n for n in plan.outcomes if n.startswith("defections.")} and len(shown) == 12
    named = ["defections.NDF_deir>IRGC_homs", "defections_net.IRGC_aleppo>NDF_homs"]
    plan = C.prepare(inputs, replicates=1, steps=3, outcomes=named)
    shown_named = {n for n in C.run_comparison(plan).series["series"] if n.startswith("defections.")}
    both_ways = {"defections.IRGC_aleppo>NDF_homs", "defections.NDF_homs>IRGC_aleppo"}
    assert shown_named == shown | {"defections.NDF_deir>IRGC_homs"} | both_ways
