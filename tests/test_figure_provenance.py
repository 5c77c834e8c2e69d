"""Every figure the project writes says what it shows (issue 12).

Each job below writes its figures through `sim.figures.save_png`; the tests record every
matplotlib `Figure` as it is saved (its texts, not its pixels) and check:

- the footer names the overrides (a sweep's base `--set`s too), the days, the root seed and
  replicate seeds, the replicates, the package version and the git commit, and fits inside
  the figure (long footers wrap rather than overflow);
- no title, axis label or tick label is a raw outcome name (`defections.Blue>Red`) or a raw
  scenario key path (`factions.Blue.salary_usd_month`): labels come from
  `sim.outcomes.outcome_label` and `sim.schema.parameter_label`;
- the tension axis states its scale; every outcome kind has a label and a unit.

Jobs are kept small (toy scenario, few days and replicates).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib.figure as mfig
import pytest
from helpers import SCENARIOS, toy_calibration

import sim
import sim.figures
from sim.cli import main
from sim.figures import Provenance, footer, new_figure
from sim.outcomes import KINDS, TENSION_UNIT, outcome_label
from sim.results import git_commit, versions
from sim.schema import parameter_label

TOY = str(SCENARIOS / "toy_two_towns.yaml")
SET = "factions.Blue.salary_usd_month=210"  # an override every job carries
VERSION = versions().get("sim", "version unknown")
COMMIT = (git_commit() or "unknown")[:7]

# A raw outcome name (kind.subject, or a kind with an underscore standing alone) or key path.
OUTCOME_KEY = re.compile(
    r"\b(?:" + "|".join(sorted(map(re.escape, KINDS), key=len, reverse=True)) + r")\.[A-Za-z0-9]"
    r"|\b(?:" + "|".join(re.escape(k) for k in KINDS if "_" in k) + r")\b"
)
KEY_PATH = re.compile(r"\b(?:factions|patrons|sites|tribes|rules|grid)\.[A-Za-z_]+\.")


def _describe(fig) -> dict:
    """What a saved figure says: its footer (and whether it fits) and its titles and labels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    footers = [t for t in fig.texts if t.get_gid() == "footer"]
    box = fig.bbox
    fits = [
        (b := t.get_window_extent(renderer)).x0 >= box.x0 and b.x1 <= box.x1 and b.y0 >= box.y0 and b.y1 <= box.y1
        for t in footers
    ]
    labels = [t.get_text() for t in fig.texts if t.get_gid() != "footer"]
    if fig._suptitle is not None:
        labels.append(fig._suptitle.get_text())
    ticks = []
    for ax in fig.axes:
        labels += [ax.get_title(loc) for loc in ("left", "center", "right")]
        labels += [ax.get_xlabel(), ax.get_ylabel()]
        ticks += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
    return {
        "footer": " ".join(t.get_text() for t in footers),
        "fits": bool(footers) and all(fits),
        "labels": [x for x in labels if x],
        "ticks": [x for x in ticks if x],
        "ylabels": [ax.get_ylabel() for ax in fig.axes],
        "path": None,
    }


@pytest.fixture(scope="module")
def record():
    """Record every figure saved while the context is open: a list of `_describe` dicts, with their paths."""

    class Recorder:
        def __init__(self):
            self.figures: list[dict] = []

        def __enter__(self):
            self.patch = pytest.MonkeyPatch()
            original_save, original_write = mfig.Figure.savefig, sim.figures.atomic_write_bytes
            figures = self.figures

            def savefig(fig, *args, **kwargs):
                figures.append(_describe(fig))
                return original_save(fig, *args, **kwargs)

            def write(path, data):
                figures[-1]["path"] = Path(path)
                return original_write(path, data)

            self.patch.setattr(mfig.Figure, "savefig", savefig)
            self.patch.setattr(sim.figures, "atomic_write_bytes", write)
            return self.figures

        def __exit__(self, *exc):
            self.patch.undo()

    return Recorder


def _job(record, action) -> list[dict]:
    with record() as figures:
        action()
    assert figures, "the job drew no figure"
    return figures


@pytest.fixture(scope="module")
def run_figures(record, tmp_path_factory):
    out = tmp_path_factory.mktemp("prov") / "run"
    args = ["run", TOY, "--steps", "12", "--replicates", "2", "--seed", "5", "--set", SET, "--out", str(out)]
    return _job(record, lambda: main(args))


SWEEPS = {
    "grid": "{design: grid, replicates: 2, parameters: {factions.Red.salary_usd_month: [120, 200], "
    "rules.clashes.p_max: [0.004, 0.02]}, outputs: [defections.Blue>Red, tension_mean.Blue~Red]}",
    "one": "{design: grid, replicates: 2, parameters: {rules.clashes.p_max: [0.004, 0.02]}, "
    "outputs: [defections_net.Red>Blue, killed_total]}",
    "sobol": "{design: sobol, samples: 2, replicates: 1, parameters: {rules.clashes.p_max: {low: 0.004, high: 0.02}, "
    "factions.Red.salary_usd_month: {low: 120, high: 200}}, outputs: [territory_final.Blue, territory_final.Red]}",
    "random": "{design: random, samples: 3, replicates: 1, parameters: {rules.clashes.p_max: {low: 0.004, high: 0.02}, "
    "factions.Red.salary_usd_month: {low: 120, high: 200}}, outputs: [territory_final.Blue]}",
}


@pytest.fixture(scope="module")
def sweep_figures(record, tmp_path_factory):
    base = tmp_path_factory.mktemp("prov-sweep")
    figures = []
    for name, sweep in SWEEPS.items():
        args = ["sweep", TOY, "--set", f"sweep={sweep}", "--set", SET, "--steps", "9", "--out", str(base / name)]
        with warnings.catch_warnings():  # a design this small may leave an outcome constant (no Sobol index)
            warnings.simplefilter("ignore", UserWarning)
            figures += _job(record, lambda args=args: main(args))
    return figures


@pytest.fixture(scope="module")
def pattern_figures(record, tmp_path_factory):
    out = tmp_path_factory.mktemp("prov-pat") / "patterns"
    args = ["validate-patterns", TOY, "--replicates", "3", "--steps", "10", "--set", SET, "--out", str(out)]
    return _job(record, lambda: main(args))


@pytest.fixture(scope="module")
def calibration_figures(record, tmp_path_factory):
    from sim.calibration import cli_calibrate

    folder = tmp_path_factory.mktemp("prov-cal")
    shutil.copy(SCENARIOS / "toy_two_towns.yaml", folder / "toy_two_towns.yaml")
    text = toy_calibration(samples=6).replace("calibration:\n", "calibration:\n  replicates: 2\n")
    text += (
        "  predictive:\n    replicates: 2\n    checks:\n"
        "      - {outcome: clash_casualties_mean, unit: casualties per clash, band: [1, 30], basis: assumption,"
        " why: a test}\n"
    )
    scenario = folder / "toy_calibration.yaml"
    scenario.write_text(text)
    args = argparse.Namespace(
        scenario=str(scenario), overrides=[SET], out=folder / "out", workers=1, dask=None, seed=None, resume=None
    )
    return _job(record, lambda: cli_calibrate(args))


TOY_ROBUSTNESS = """\
extends: toy_two_towns.yaml
name: toy_robustness
robustness:
  points: 4
  replicates: 1
  ranges:
    rules.clashes.p_max: {low: 0.002, high: 0.02, argument: a range for a test}
    factions.Red.salary_usd_month: {low: 120, high: 200, argument: a range for a test}
"""


@pytest.fixture(scope="module")
def robustness_figures(record, tmp_path_factory):
    from sim.robustness import analyse_robustness, plan_robustness, run_robustness, start_robustness

    folder = tmp_path_factory.mktemp("prov-rob")
    shutil.copy(SCENARIOS / "toy_two_towns.yaml", folder / "toy_two_towns.yaml")
    (folder / "toy_robustness.yaml").write_text(TOY_ROBUSTNESS)
    sets = ["rules.clashes.p_killed=0.4"]
    plan = plan_robustness(folder / "toy_robustness.yaml", steps=6, points=4, replicates=1, seed=5, overrides=sets)
    directory = start_robustness(plan, folder / "rob")
    run_robustness(directory, plan, workers=1)
    return _job(record, lambda: analyse_robustness(directory, plots=True))


@pytest.fixture(scope="module")
def event_figures(record, tmp_path_factory):
    from sim.acled import compare_events

    base = tmp_path_factory.mktemp("prov-acled")
    sim.simulate("toy_two_towns", seed=11, steps=20, replicates=2, overrides=[SET]).save(base / "run", plots=False)
    observed = base / "observed.csv"
    observed.write_text("event_date,event_type,fatalities,location\n2019-11-02,Battles,1,West town\n")
    return _job(record, lambda: compare_events(base / "run", observed, base / "cmp"))


@pytest.fixture(scope="module")
def compare_figures(record, tmp_path_factory):
    out = tmp_path_factory.mktemp("prov-cmp") / "cmp"
    args = ["compare", TOY, TOY, "--steps", "7", "--replicates", "2", "--seed", "5", "--set", SET]
    return _job(record, lambda: main([*args, "--set-for", "2", "rules.clashes.p_max=0.02", "--out", str(out)]))


JOBS = {  # fixture -> (days, replicates, overrides, whether the replicate seeds are listed)
    "run_figures": (12, 2, [SET], True),
    "sweep_figures": (9, None, [SET], None),
    "pattern_figures": (10, 3, [SET], True),
    "calibration_figures": (8, 2, [SET], False),
    "robustness_figures": (6, 1, ["rules.clashes.p_killed=0.4"], True),
    "event_figures": (20, 2, [SET], True),
    "compare_figures": (7, 2, [SET, "rules.clashes.p_max=0.02"], True),
}


@pytest.mark.slow
@pytest.mark.parametrize("job", list(JOBS))
def test_every_figure_is_footed_with_its_provenance(job, request):
    days, replicates, overrides, listed = JOBS[job]
    figures = request.getfixturevalue(job)
    for fig in figures:
        text, where = fig["footer"], fig["path"]
        assert text, f"{where}: no footer"
        for override in overrides:
            assert override in text, f"{where}: footer lacks the override {override}: {text}"
        assert f"{days} days per run" in text, f"{where}: {text}"
        assert "root seed" in text, f"{where}: {text}"
        if replicates is not None:
            assert f"{replicates} replicate" in text, f"{where}: {text}"
        if listed:
            assert "replicate seed" in text, f"{where}: {text}"
        assert f"faction-sim {VERSION}" in text and f"commit {COMMIT}" in text, f"{where}: {text}"
        assert fig["fits"], f"{where}: the footer overflows the figure: {text}"


@pytest.mark.slow
@pytest.mark.parametrize("job", list(JOBS))
def test_no_title_or_axis_label_is_a_raw_key(job, request):
    for fig in request.getfixturevalue(job):
        for text in fig["labels"] + fig["ticks"]:
            flat = text.replace("\n", " ")
            assert not OUTCOME_KEY.search(flat), f"{fig['path']}: raw outcome name in {text!r}"
            assert not KEY_PATH.search(flat), f"{fig['path']}: raw key path in {text!r}"


@pytest.mark.slow
def test_every_figure_writer_is_covered(run_figures, sweep_figures, pattern_figures, calibration_figures,
                                        robustness_figures, event_figures, compare_figures):  # fmt: skip
    names = {f["path"].name for job in (run_figures, sweep_figures, pattern_figures, calibration_figures,
                                        robustness_figures, event_figures, compare_figures) for f in job}  # fmt: skip
    expected = {
        "influence_map.png", "tension_meetings.png", "heatmap_defections.Blue_Red.png",
        "outcomes_vs_rules.clashes.p_max.png", "sobol_indices.png", "screening.png", "pattern_shares.png",
        "statistics.png", "predictive.png", "verdict_shares.png", "compare_events.png", "compare_fighters.png",
    }  # fmt: skip
    assert expected <= names, sorted(expected - names)


@pytest.mark.slow
def test_the_tension_axis_states_its_scale(run_figures):
    (tension,) = [f for f in run_figures if f["path"].name == "tension_meetings.png"]
    label = next(y for y in tension["ylabels"] if "tension" in y).replace("\n", " ")
    assert "0 = no tension" in label and "no unit" in label
    assert any("63 % of its ceiling" in t and "meeting is called at" in t for t in tension["labels"])


# --------------------------------------------------------------------------- footer and labels, unit level


def test_the_short_footer_form_still_works():
    assert footer("toy", "a part", "", overrides=["k=1"]) == "Scenario 'toy' | overrides: k=1 | a part"
    assert footer("toy", "a part") == "Scenario 'toy' | a part"


def test_provenance_reads_a_manifest_and_says_what_it_does_not_know():
    manifest = {
        "scenario": "toy", "overrides": ["a.b=1"], "steps": 30, "root_seed": 7, "n_replicates": 5,
        "replicates": [{"replicate": k, "seed": 100 + k} for k in range(5)],
        "versions": {"sim": "9.9"}, "git_commit": "0123456789abcdef+dirty",
    }  # fmt: skip
    text = Provenance.from_manifest(manifest).footer("data: x.csv")
    assert text == (
        "Scenario 'toy' | overrides: a.b=1 | 30 days per run | 5 replicates, root seed 7 "
        "(replicate seeds 100, 101, ..., 104) | data: x.csv | faction-sim 9.9, commit 0123456+dirty"
    )
    bare = Provenance.from_manifest({"scenario": "toy"}).footer()
    assert bare == "Scenario 'toy' | no overrides | faction-sim version unknown, commit unknown"


def test_a_long_footer_wraps_inside_a_narrow_figure():
    overrides = [f"factions.Faction{k}.salary_usd_month={100 + k}" for k in range(12)]
    text = Provenance(scenario="toy", overrides=tuple(overrides), steps=365, root_seed=1, replicates=3).footer()
    fig = new_figure(4.0, 3.0, title="t", footer=text)
    ax = fig.add_subplot()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (foot,) = [t for t in fig.texts if t.get_gid() == "footer"]
    box = foot.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y0 >= 0
    assert foot.get_text().count("\n") >= 3  # wrapped onto several lines, every override kept
    assert all(o in foot.get_text().replace("\n", " ") for o in overrides)
    assert ax.get_window_extent(renderer).y0 >= box.y1  # the panels sit above the footer


SUBJECTS = {None: None, "faction": "Blue", "militia": "Blue", "pair": "Blue~Red", "flow": "Blue>Red",
            "site": "bridge", "holding": "Blue|Red@bridge", "days": "30"}  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_outcome_kind_has_a_label_and_a_unit(kind):
    spec = KINDS[kind]
    assert spec.label.strip() and spec.unit.strip()
    subject = SUBJECTS[spec.subject]
    name = kind if subject is None else f"{kind}.{subject}"
    label = outcome_label(name)
    assert label.endswith(f"({spec.unit})") and "{" not in label
    assert not OUTCOME_KEY.search(label)


def test_outcome_and_parameter_labels_in_words():
    assert outcome_label("defections.NDF>IRGC") == "NDF\u2192IRGC defections (fighters)"
    assert outcome_label("territory_final.IRGC") == "Territory held by IRGC at the end (share of passable grid cells)"
    assert outcome_label("tension_mean.A~B").endswith(f"({TENSION_UNIT})") and "0 = no tension" in TENSION_UNIT
    assert outcome_label("no_such_kind.x") == "no_such_kind.x"
    assert parameter_label("factions.IRGC.salary_usd_month") == "IRGC: salary per fighter (USD/month)"
    assert parameter_label("rules.clashes.p_max") == "Clashes: ceiling of the daily clash chance per front cell (1/day)"
    assert parameter_label("rules.recruitment.beta_salary") == "Recruitment: weight of (log) pay (utility per log-USD)"
    assert parameter_label("no.such.key") == "no.such.key"


def test_the_commit_is_dirty_for_changed_source_not_for_changed_results(tmp_path, monkeypatch):
    """`make gallery` rewrites tracked figures under results/; the next figures' commit must stay clean."""
    import sim.results

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "sim").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "sim" / "model.py").write_text("x = 1\n")
    (tmp_path / "results" / "figure.png").write_text("old\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    monkeypatch.setattr(sim.results, "PROJECT_DIR", tmp_path)
    clean = git_commit()
    assert clean and len(clean) == 40 and not clean.endswith("+dirty")
    (tmp_path / "results" / "figure.png").write_text("new\n")
    assert git_commit() == clean
    (tmp_path / "sim" / "model.py").write_text("x = 2\n")
    assert git_commit() == clean + "+dirty"
    monkeypatch.setattr(sim.results, "PROJECT_DIR", tmp_path / "results")  # inside it, but not a checkout of its own
    assert git_commit() == clean + "+dirty"
    monkeypatch.setattr(sim.results, "PROJECT_DIR", tmp_path.parent / "no-such-directory")
    assert git_commit() is None


def test_recorded_versions_are_the_installed_distributions_whether_imported_or_not():
    """versions() reads an imported package's __version__ and asks the installed metadata otherwise: the same."""
    from importlib import metadata

    found = versions()
    for package, version in found.items():
        if package not in ("python", "sim"):
            assert version == metadata.version(package), package
    code = "from sim.results import versions; print(repr(versions()))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert fresh.stdout.strip() == repr(found)


def test_a_footer_names_long_or_many_overrides_cut_short_and_says_so():
    """A 200 KB --set (a 10,000-point river) made the footer minutes to wrap and broke the layout."""
    from sim.figures import FOOTER_OVERRIDE_CHARS, FOOTER_OVERRIDES_CHARS, wrap_footer

    river = "grid.river.path=[" + ", ".join(f"[35.{k:04d}, 40.{k:04d}]" for k in range(10_000)) + "]"
    text = footer("toy", overrides=["a.b=1", river])
    assert text.startswith("Scenario 'toy' | overrides: a.b=1, grid.river.path=[[35.0000, 40.0000]")
    assert f"… ({len(river):,} characters) (in full in the manifest)" in text
    assert len(text) < 200 + FOOTER_OVERRIDE_CHARS
    assert len(wrap_footer(text, 8.0)) <= 3

    many = [f"factions.F{k:03d}.salary_usd_month={100 + k}" for k in range(100)]  # 34 characters each
    text = footer("toy", overrides=many)
    n_shown = text.count("salary_usd_month")
    assert 0.8 * FOOTER_OVERRIDES_CHARS <= n_shown * 36 <= FOOTER_OVERRIDES_CHARS
    assert text.endswith(f"F{n_shown - 1:03d}.salary_usd_month={100 + n_shown - 1}, "
                         f"and {100 - n_shown} more (in full in the manifest)")  # fmt: skip
    short = footer("toy", overrides=many[:n_shown])
    assert "more" not in short and "manifest" not in short
