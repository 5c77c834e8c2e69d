"""Robustness of the verdicts over the assumptions (scenario discovery): where do they hold, and where not?

The baseline passes validation and its policy variants move the outcomes as expected *at
the values the scenario assumes*. Many of those values are assumptions (`provenance:` says
so). This module asks how much of the space of plausible assumptions gives the same
verdicts, and where it does not, which assumptions decide it (Bryant & Lempert 2010,
"scenario discovery"; Kwakkel 2017, the EMA Workbench):

1. A scenario's `robustness:` section gives every assumption a plausible range with its
   argument (`ranges:`), or a reason to hold it (`fixed:`); `uncovered_assumptions` lists
   the assumption-marked provenance keys neither covers (a test keeps the baseline's list
   empty, so a new assumption cannot slip past).
2. `build_design`: a Latin hypercube (`scipy.stats.qmc.LatinHypercube`) of `points` points
   over the ranges (log-uniform where `log: true`), drawn from the named stream
   `sim.seeding.named_stream(root_seed, "robustness-design")`: the same scenario and seed
   give the same design, whatever runs it.
3. At every point the base scenario and each policy variant (`sim.variants.variant_expectations`)
   run `replicates` times with the point's values (`--set` overrides, `sim.design.override_strings`)
   on common random numbers: replicate k has the seed `sim.seeding.replicate_seeds(root, replicates)[k]`
   at every point and in every scenario. A key a variant sets itself keeps the variant's
   value (the policy is what the variant is; e.g. `salary_parity`'s IRGC salary); the manifest
   lists those keys. Runs go through `sim.runner.run_model` on `sim.executors` (serial,
   processes or Dask); a worker returns one small row (pattern flags or outcomes), never
   timeseries, and every row is journaled at once (`sim.sweep.Journal`), so a killed job
   resumes with `--resume`, running only what is missing.
4. Per point (`point_table`):
   - each validation pattern's share of the base's runs that show it (`sim.patterns.evaluate_run`,
     the patterns of `sim.patterns.joint_patterns`), and the joint share;
   - **patterns hold** when every validation pattern shows in at least `threshold` of the
     point's runs (default 0.5: in most of them; with 3 replicates, 2 of 3). Issue 9's 90%
     cannot be judged on a handful of runs per point; this asks whether the model still
     *typically* shows each pattern there;
   - **a variant holds** when the mean paired difference variant - base over the point's
     replicates moves each expected outcome the expected way (`Expectation.holds` at the
     mean, margins included), combined by the variant's rule (all, or any);
   - **all hold** when the patterns and every variant hold.
5. `verdict_summary`: the share of points where each verdict holds, with its Wilson 95%
   interval (`sim.intervals.wilson_interval`); the points are an even sample of the space of
   ranges, so the share estimates its volume where the verdict holds.
6. `discover`: where a verdict fails at enough points (`PRIM_MIN_CASES`), PRIM (patient
   rule induction, Friedman & Fisher 1999) finds boxes of the assumption space where it
   fails: `find_boxes` runs `ema_workbench.analysis.prim.Prim` (see `find_boxes` for why
   that implementation) and picks, on each box's peeling trajectory, the box of largest
   coverage whose density reaches `PRIM_DENSITY`; its restricted dimensions are the
   assumptions that decide the failure, with their limits and quasi-p values. Where a
   verdict never fails, PRIM has nothing to find, and the report says so.

A robustness directory (`results/<scenario>/robustness-<UTC timestamp>/`, or `--out`):
- `scenario.yaml`, `variants/<name>.yaml`  the resolved scenarios that ran
- `design.csv`        one row per point: point, one column per assumption (its value)
- `runs.jsonl`        the journal: one JSON line per finished run (point, replicate, scenario)
- `manifest.json`     ranges, variants, seeds, fingerprints, versions, status (written last at start)
- `runs.csv`          every run's row, sorted (written at the end)
- `robustness.csv`    one row per point: values, pattern shares, paired differences, verdict flags
- `summary.csv`       per verdict (and per pattern): points, holds, share, Wilson interval
- `boxes.csv`, `prim_trajectories.csv`  PRIM boxes (restricted dimensions, limits) and trajectories
- `ROBUSTNESS.md`     the report; `plots/` verdict shares, PRIM trade-offs and box limits

    python run.py robustness baseline --points 80 --replicates 3 --workers 2
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import math
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import yaml
from matplotlib.patches import Rectangle
from scipy.stats import qmc

from sim import keypath
from sim.design import override_strings, scale_unit
from sim.executors import Backend, interrupt_behind, make_backend
from sim.figures import BLUE, GREY, ORANGE, VERMILLION, Provenance, new_figure, save_png
from sim.intervals import CONFIDENCE, wilson_interval
from sim.limits import design_problem
from sim.outcomes import check_outcome_name, compute_outcomes, outcome_name
from sim.patterns import JOINT, evaluate_run, joint_patterns
from sim.results import (
    MANIFEST_FORMAT,
    atomic_write_text,
    check_output_dir,
    claim_output_dir,
    display_path,
    failed_count_error,
    file_record,
    git_commit,
    manifest_files,
    read_manifest,
    read_result_csv,
    rerun_command,
    results_dir_problem,
    versions,
    write_staged,
)
from sim.runner import run_model
from sim.scenario import (
    DESIGN_SECTIONS,
    corner_problems,
    extremes,
    load_scenario_with_document,
    resolve_scenario_path,
    robustness_runs,
    scenario_to_dict,
)
from sim.schema import Robustness, Scenario, parameter_label
from sim.seeding import named_stream, replicate_seeds
from sim.sweep import (
    ERROR_CHARS,
    JOURNAL,
    RUN_NUMBERS,
    Journal,
    SweepError,
    check_journal_kept,
    check_numbers,
    differences,
    journaled_map,
    marked_if_interrupted,
    point_error,
    read_journal,
    scenario_for,
    summarise_differences,
)
from sim.variants import Expectation, variant_expectations
from sim.yaml_source import Problem, ScenarioError, SourcedDocument, dump_yaml

__all__ = [
    "ALL_VERDICT",
    "KIND",
    "PATTERNS_VERDICT",
    "PRIM_DENSITY",
    "PRIM_MIN_CASES",
    "Box",
    "Discovery",
    "Plan",
    "RobustnessError",
    "RobustnessJob",
    "RunTask",
    "analyse_robustness",
    "assumption_keys",
    "build_design",
    "check_range_ends",
    "cli_robustness",
    "discover",
    "feature_scores",
    "find_boxes",
    "is_assumption",
    "load_manifest",
    "plan_robustness",
    "point_table",
    "render_markdown",
    "run_robustness",
    "run_task",
    "start_robustness",
    "uncovered_assumptions",
    "verdict_summary",
]

KIND = "faction-sim robustness"
DESIGN_STREAM = "robustness-design"  # the named stream (sim.seeding) of the Latin hypercube
PATTERNS_VERDICT = "patterns"  # verdict: every validation pattern holds at the point
ALL_VERDICT = "all"  # verdict: the patterns and every variant hold at the point

# PRIM settings. Peeling alpha and minimum mass are ema-workbench's defaults (Friedman &
# Fisher 1999 recommend peeling 5-10% at a time); the density target is the usual scenario-
# discovery choice of a box in which most points (80%) are failures (Bryant & Lempert 2010
# report boxes of this density); fewer failing points than PRIM_MIN_CASES are no basis for
# a box; at most PRIM_MAX_BOXES boxes are reported per verdict.
PRIM_DENSITY = 0.8
PRIM_PEEL_ALPHA = 0.05
PRIM_MASS_MIN = 0.05
PRIM_MIN_CASES = 5
PRIM_MAX_BOXES = 3
# A restriction whose quasi-p value (a one-sided binomial test of the box with and without
# it; Bryant & Lempert 2010) exceeds this is dropped, least significant first, as
# ema-workbench's tutorials do by hand with `drop_restriction`: a box names only the
# assumptions that significantly concentrate its points.
PRIM_QP_MAX = 0.05
# PRIM peels whichever assumption best raises the density at each step; with ~90
# assumptions and ~100 points some always do by chance, and the real ones are lost. So the
# assumptions are first ranked by extra-trees feature scores (ema-workbench's
# get_ex_feature_scores; Jaxa-Rozen & Kwakkel 2018 on feature scoring for scenario
# discovery), and PRIM peels only the PRIM_SCREEN best ranked.
PRIM_SCREEN = 6
SCREEN_TREES = 500  # extra trees per ranking: enough for a stable order on ~100 points
# ema-workbench 2.x counts y >= threshold as cases of interest and drops a final box whose
# mean is below it; 3.x has no threshold. A threshold just above 0 on 0/1 failures counts the
# failures and keeps every box in 2.x, as 3.x does; the box is chosen here in both.
_EMA2_THRESHOLD = 1e-9

MANIFEST = "manifest.json"
DESIGN = "design.csv"
RUNS_TABLE = "runs.csv"
TABLE = "robustness.csv"
SUMMARY = "summary.csv"
BOXES = "boxes.csv"
TRAJECTORIES = "prim_trajectories.csv"
SCORES = "feature_scores.csv"
MARKDOWN = "ROBUSTNESS.md"
SHARES_PLOT = "verdict_shares.png"
INSTALL_HINT = "PRIM needs ema-workbench: pip install -e '.[robustness]' (the dev extra includes it)"


class RobustnessError(SweepError):
    """A robustness job cannot start, resume or be analysed (exit status 2, as a sweep's)."""


# --------------------------------------------------------------------------- coverage


def is_assumption(source: str) -> bool:
    """Whether a provenance entry marks an assumption: it starts with "assumption" or says a value is one.

    Any mention counts ("...; the amount is an assumption", "value an assumption", "values
    are assumptions", "cell size an assumption"): better a key too many to cover than one
    that slips past.
    """
    return "assum" in source.lower()


def assumption_keys(scenario: Scenario) -> list[str]:
    """The provenance keys of the scenario that mark assumptions, in provenance order."""
    return [key for key, source in scenario.provenance.items() if is_assumption(source)]


def uncovered_assumptions(scenario: Scenario, section: Robustness | None = None) -> list[str]:
    """Assumption-marked provenance keys that the `robustness:` section neither varies nor fixes.

    A key is covered by a range or a `fixed:` reason of its own; a key naming a group (a
    section such as `factions` or `rules.strategy`) is also covered by a range on any key
    under it (its representative). Without a section, every assumption is uncovered.
    """
    section = scenario.robustness if section is None else section
    if section is None:
        return assumption_keys(scenario)
    data = scenario_to_dict(scenario)
    missing = []
    for key in assumption_keys(scenario):
        if key in section.ranges or key in section.fixed:
            continue
        value = keypath.get(data, key) if keypath.exists(data, key) else None
        group = isinstance(value, (dict, list))
        if group and any(r.startswith(key + ".") for r in section.ranges):
            continue
        missing.append(key)
    return missing


# --------------------------------------------------------------------------- the design


def build_design(section: Robustness, root_seed: int, points: int | None = None) -> pd.DataFrame:
    """The Latin hypercube of a robustness job: one row per point, one column per range.

    Each range is cut into `points` equally likely strata (in log space when `log`) with
    exactly one point in each (`scipy.stats.qmc.LatinHypercube`, points placed at random in
    their strata); unit coordinates become values as in sweeps (`sim.design.scale_unit`;
    integer ranges are cut into one bin per whole number, so their strata hold whole numbers).

    Args:
        section: the scenario's `robustness:` section.
        root_seed: the root seed; the hypercube draws from
            `sim.seeding.named_stream(root_seed, "robustness-design")`.
        points: the number of points (default: `section.points`).

    Returns:
        Columns `point` (0..P-1) then one per range key, in the order of `section.ranges`.
    """
    n = section.points if points is None else int(points)
    keys = list(section.ranges)
    engine = qmc.LatinHypercube(len(keys), rng=named_stream(int(root_seed), DESIGN_STREAM))
    unit = engine.random(n)
    frame = pd.DataFrame({"point": np.arange(n, dtype=np.int64)})
    for i, key in enumerate(keys):
        frame[key] = scale_unit(unit[:, i], section.ranges[key])
    return frame


def check_range_ends(
    scenario: Scenario, section: Robustness, others: Sequence[Scenario] = (), doc: SourcedDocument | None = None
) -> None:
    """Validate the scenario (and `others`, e.g. its variants) at the ends of the ranges, alone and together.

    The schema checks each range against its parameter's bounds when the file loads; this
    also catches what only a whole scenario shows (a rule between two parameters). Every
    range at its low end, then at its high end (two validations per scenario): a failing end
    is then tried key by key to name the culprit. Then the corners of the design, as a
    sweep's are (`sim.scenario.corner_problems`): a high grid.bounds.lat_min with a low
    lat_max fails though each end is valid alone and with the others at the same end. With
    too many ranges to try their corners (the baseline's 86), a point that does not validate
    is a failed run naming the file, the point and its values (`run_task`).

    Args:
        scenario: the base scenario.
        section: its `robustness:` section.
        others: further scenarios run at every point (the variants), each tried with every range.
        doc: the base scenario's document, to give each problem its file and line under
            `robustness.ranges` (default: the scenario's name, no line).

    Raises:
        ScenarioError: one problem per range end that makes a scenario invalid, or one
            combination of ends that does.
    """
    specs = section.ranges
    doc = doc if doc is not None else SourcedDocument(data={}, origins={}, main_file=scenario.name)
    where = ("robustness", "ranges")
    problems: list[Problem] = []
    for config in (scenario, *others):
        base = {k: v for k, v in scenario_to_dict(config).items() if k not in DESIGN_SECTIONS}
        found, together = [], []
        for end in ("low", "high"):
            values = {key: spec.ends[0 if end == "low" else 1] for key, spec in specs.items()}
            try:
                scenario_for(base, override_strings(values, specs))
                continue
            except ScenarioError as error:
                together.append((end, error.problems[0].message))
            for key, spec in specs.items():
                try:
                    scenario_for(base, override_strings({key: values[key]}, {key: spec}))
                except ScenarioError as error:
                    message = f"{end} end {values[key]:g} makes '{config.name}' invalid: {error.problems[0].message}"
                    found.append(doc.problem((*where, key), message))
        if not found:  # each end is valid alone: try them together
            trials = {key: extremes(spec.ends) for key, spec in specs.items()}
            found = corner_problems(base, specs, trials, doc, where, f"the ranges make '{config.name}' invalid")
        if not found:  # only every range at one end together fails, and there are too many corners to say which
            found = [
                doc.problem(where, f"every range at its {end} end makes '{config.name}' invalid: {why}")
                for end, why in together
            ]
        problems += found
    if problems:
        raise ScenarioError(problems)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class VariantPlan:
    """One policy variant of a robustness job: its scenario, expectations and the keys it keeps."""

    name: str
    rule: str  # "all" or "any" of its expectations
    expectations: tuple[Expectation, ...]
    config: Scenario
    kept: tuple[str, ...]  # range keys the variant sets itself: not overridden in it
    file: str | None = None  # its scenario file, named by a point that does not validate in it


@dataclass
class Plan:
    """Everything a robustness job needs before it runs (`plan_robustness`); compared on `--resume`."""

    scenario: Scenario
    section: Robustness
    variants: list[VariantPlan]
    patterns: list[str]
    root_seed: int
    steps: int
    points: int
    replicates: int
    scenario_file: str | None = None
    overrides: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The assumptions varied, in the order of the design's columns."""
        return list(self.section.ranges)

    @property
    def names(self) -> list[str]:
        """The scenarios run at every point: the base, then the variants."""
        return [self.scenario.name, *(v.name for v in self.variants)]

    def outcomes(self) -> list[tuple[str, ...]]:
        """Per scenario (base first), the outcomes its runs record: the base every variant's, a variant its own."""
        per_variant = [tuple(dict.fromkeys(e.outcome for e in v.expectations)) for v in self.variants]
        union = tuple(dict.fromkeys(name for names in per_variant for name in names))
        return [union, *per_variant]

    def job(self) -> RobustnessJob:
        """What every run shares (sent with each task)."""
        configs = [self.scenario, *(v.config for v in self.variants)]
        dicts = tuple(_without_design(c) for c in configs)
        files = [self.scenario_file, *(v.file for v in self.variants)]
        sources = tuple(display_path(f) if f else name for f, name in zip(files, self.names, strict=True))
        return RobustnessJob(dicts, tuple(self.names), tuple(self.outcomes()), self.steps, sources)

    def seeds(self) -> list[int]:
        """Replicate k's seed, the same at every point and in every scenario."""
        return replicate_seeds(self.root_seed, self.replicates)

    def tasks(self, design: pd.DataFrame) -> list[RunTask]:
        """Every run of the job, point by point: each replicate of the base, then of each variant."""
        specs = self.section.ranges
        seeds = self.seeds()
        kept = [(), *(v.kept for v in self.variants)]
        tasks = []
        for row in design.to_dict("records"):
            point = int(row["point"])
            per_scenario = [
                tuple(override_strings(row, {k: s for k, s in specs.items() if k not in skip})) for skip in kept
            ]
            for k, seed in enumerate(seeds):
                for index, overrides in enumerate(per_scenario):
                    tasks.append(RunTask(point, k, index, int(seed), overrides))
        return tasks

    def comparable(self) -> dict:
        """What must not change between the start of a job and its `--resume` (fingerprinted)."""
        return {
            "scenario": self.scenario.name,
            "fingerprints": {
                self.scenario.name: _fingerprint(_without_design(self.scenario)),
                **{v.name: _fingerprint(_without_design(v.config)) for v in self.variants},
            },
            "variants": [_variant_record(v) for v in self.variants],
            "patterns": list(self.patterns),
            "ranges": {k: s.model_dump(mode="json") for k, s in self.section.ranges.items()},
            "threshold": self.section.threshold,
            "root_seed": self.root_seed,
            "steps": self.steps,
            "points": self.points,
            "replicates": self.replicates,
        }


def _without_design(config: Scenario) -> dict:
    return {k: v for k, v in scenario_to_dict(config).items() if k != "robustness"}


def _fingerprint(data) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _variant_record(v: VariantPlan) -> dict:
    return {
        "name": v.name,
        "rule": v.rule,
        "expectations": [
            {"outcome": e.outcome, "direction": e.direction, "margin": e.margin, "why": e.why} for e in v.expectations
        ],
        "kept": list(v.kept),
    }


def _load(
    scenario: str | Path | Scenario, overrides: Sequence[str]
) -> tuple[Scenario, str | None, SourcedDocument | None]:
    """The scenario, its file and its document (None for a `Scenario` given as such)."""
    if isinstance(scenario, Scenario):
        return scenario, None, None
    path = resolve_scenario_path(scenario)
    config, document = load_scenario_with_document(path, list(overrides))
    return config, str(path), document


def plan_robustness(
    scenario: str | Path | Scenario,
    *,
    variants: Sequence[str] | None = None,
    seed: int | None = None,
    steps: int | None = None,
    points: int | None = None,
    replicates: int | None = None,
    overrides: Sequence[str] = (),
) -> Plan:
    """Load and check everything a robustness job needs, before anything runs or is written.

    Args:
        scenario: the base scenario (a name in scenarios/, a file, or a validated `Scenario`)
            with a `robustness:` section.
        variants: the policy variants to judge (default: every variant of
            `sim.variants.variant_expectations(base)`); each is loaded by name as
            `sim.variants` does, with `overrides`.
        seed: the root seed (default: the scenario's).
        steps: days per run (default: the scenario's).
        points: Latin-hypercube points (default: the section's).
        replicates: runs per point and scenario (default: the section's).
        overrides: `key=value` strings applied to the base and variant files.

    Raises:
        RobustnessError: no `robustness:` section, an unknown variant, or PRIM's library missing.
        ScenarioError: a scenario, an override, an expected outcome or a range end is bad.
    """
    if importlib.util.find_spec("ema_workbench") is None:
        raise RobustnessError(INSTALL_HINT)
    config, scenario_file, document = _load(scenario, overrides)
    section = config.robustness
    if section is None:
        raise RobustnessError(f"scenario '{config.name}' has no `robustness:` section")
    varied = [o.partition("=")[0].strip() for o in overrides if o.partition("=")[0].strip() in section.ranges]
    if varied:
        raise RobustnessError(
            f"--set {', '.join(varied)}: the robustness section varies {'it' if len(varied) == 1 else 'them'} "
            "over a range, so a fixed value would be ignored; change the range, or move the key to `fixed:`"
        )
    table = variant_expectations(config)
    chosen = list(table) if variants is None else list(dict.fromkeys(variants))
    unknown = [name for name in chosen if name not in table]
    if unknown:
        raise RobustnessError(f"no variant named {', '.join(unknown)} for '{config.name}' (known: {', '.join(table)})")
    base_data = scenario_to_dict(config)
    plans = []
    for name in chosen:
        rule, expectations = table[name]
        variant, variant_file, _ = _load(name, overrides)
        if variant.name == config.name:
            raise ScenarioError([Problem(name, "name", None, f"the variant has the base's name '{config.name}'")])
        data = scenario_to_dict(variant)
        kept = tuple(
            key
            for key in section.ranges
            if not keypath.exists(data, key) or keypath.get(data, key) != keypath.get(base_data, key)
        )
        plans.append(VariantPlan(name, rule, tuple(expectations), variant, kept, variant_file))
        for e in expectations:
            for who in (config, variant):
                why = check_outcome_name(outcome_name(e.outcome, who), who)
                if why:
                    raise ScenarioError([Problem(name, "expectations", None, f"{e.outcome}: {why} (in '{who.name}')")])
    check_range_ends(config, section, [p.config for p in plans], document)
    n_points = section.points if points is None else int(points)
    n_replicates = section.replicates if replicates is None else int(replicates)
    runs, what = robustness_runs(n_points, n_replicates, 1 + len(plans))
    why = design_problem(runs, what, section.max_runs, "robustness.max_runs")
    if why:  # --points and --replicates go through the same cap as the file
        raise ScenarioError([Problem(scenario_file or config.name, "robustness", None, why)])
    return Plan(
        scenario=config,
        section=section,
        variants=plans,
        patterns=[p.name for p in joint_patterns(config)],
        root_seed=config.seed if seed is None else int(seed),
        steps=config.steps if steps is None else int(steps),
        points=section.points if points is None else int(points),
        replicates=section.replicates if replicates is None else int(replicates),
        scenario_file=scenario_file,
        overrides=list(overrides),
    )


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class RobustnessJob:
    """What every run of a robustness job shares (small and picklable): the scenarios as plain data."""

    scenarios: tuple[dict, ...]  # resolved scenarios, the base first, without their robustness section
    names: tuple[str, ...]
    outcomes: tuple[tuple[str, ...], ...]  # per scenario, the outcomes its runs record
    steps: int
    sources: tuple[str, ...] = ()  # per scenario, its file (or name): named by a point that does not validate


@dataclass(frozen=True)
class RunTask:
    """One run: a point's replicate of one scenario (0: the base), its seed and its `--set` overrides."""

    point: int
    replicate: int
    scenario: int
    seed: int
    overrides: tuple[str, ...]


def run_task(job: RobustnessJob, task: RunTask) -> dict:
    """Run one model and return its small row; a failure becomes a 'failed' row.

    The row holds point, replicate, scenario (name), seed, status, error, elapsed_s; for the
    base, `pattern.<name>` (True, False or None) for each validation pattern and
    `pattern.all_patterns_jointly`; for every scenario, `outcome.<name>` for its outcomes.

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM, also when it reached the run wrapped in another
            error (`sim.executors.interrupt_behind`); nothing else.
    """
    started = time.perf_counter()
    row: dict = {
        "point": task.point,
        "replicate": task.replicate,
        "scenario": job.names[task.scenario],
        "seed": task.seed,
    }
    try:
        config = scenario_for(job.scenarios[task.scenario], task.overrides)
        result = run_model(config, task.seed, job.steps, task.replicate)
        if task.scenario == 0:
            flags = evaluate_run(result, config)
            for pattern in joint_patterns(config):
                row[f"pattern.{pattern.name}"] = flags[pattern.name]
            row[f"pattern.{JOINT}"] = flags[JOINT]
        names = [outcome_name(o, config) for o in job.outcomes[task.scenario]]
        values = compute_outcomes(names, result.table, lambda: result.events, result.meta)
        row.update({f"outcome.{written}": values[name] for written, name in zip(job.outcomes[task.scenario], names)})
        row.update(status="ok", error="")
    except ScenarioError as error:  # a point that does not validate (too many ranges to try their corners)
        source = job.sources[task.scenario] if task.scenario < len(job.sources) else job.names[task.scenario]
        row.update(status="failed", error=point_error(source, task.point, task.overrides, error)[:ERROR_CHARS])
    except Exception as error:  # noqa: BLE001 - recorded, the job goes on
        if (interrupt := interrupt_behind(error)) is not None:  # Ctrl-C/SIGTERM inside a kernel: stop
            raise interrupt from None
        row.update(status="failed", error=f"{type(error).__name__}: {error}".replace("\n", " ")[:ERROR_CHARS])
    row["elapsed_s"] = round(time.perf_counter() - started, 4)
    return row


# --------------------------------------------------------------------------- the directory


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=True) + "\n")


def _yaml(data: dict) -> str:
    return dump_yaml(data, sort_keys=False, allow_unicode=True)


def _command(plan: Plan, workers: int, dask: str | None, variants_given: bool) -> str:
    where = display_path(plan.scenario_file) if plan.scenario_file else plan.scenario.name
    parts = ["python", "run.py", "robustness", where, "--points", str(plan.points)]
    parts += ["--replicates", str(plan.replicates), "--seed", str(plan.root_seed), "--steps", str(plan.steps)]
    if variants_given:
        for v in plan.variants:
            parts += ["--variant", v.name]
    parts += ["--workers", str(workers)] + (["--dask", dask] if dask else [])
    for o in plan.overrides:
        parts += ["--set", o]
    return rerun_command(parts)


def start_robustness(plan: Plan, out: Path | None = None, *, executor: str = "serial", command: str = "") -> Path:
    """Create the job's directory: resolved scenarios, design, then the manifest (last); returns it.

    Raises:
        OutputError: `out` exists and is not empty, cannot be written, or another job holds it.
    """
    design = build_design(plan.section, plan.root_seed, plan.points)
    seeds = plan.seeds()
    example = override_strings(design.iloc[0].to_dict(), plan.section.ranges) if len(design) else []
    where = display_path(plan.scenario_file) if plan.scenario_file else plan.scenario.name
    run = ["python", "run.py", "run", where]
    base_sets = [x for o in plan.overrides for x in ("--set", o)]
    example_sets = [x for s in example for x in ("--set", s)]
    manifest = {
        "kind": KIND,
        "format": MANIFEST_FORMAT,  # checksummed journal, design.csv recorded in `files` (sim.results)
        **plan.comparable(),
        "scenario_file": display_path(plan.scenario_file) if plan.scenario_file else None,
        "overrides": list(plan.overrides),
        "fixed": dict(plan.section.fixed),
        "values": {key: keypath.get(scenario_to_dict(plan.scenario), key) for key in plan.keys},
        "uncovered_assumptions": uncovered_assumptions(plan.scenario),
        "replicate_seeds": [int(s) for s in seeds],
        "seeds": "common random numbers: replicate k has replicate_seeds[k] at every point and in every scenario",
        "design": f"Latin hypercube (scipy.stats.qmc.LatinHypercube), named stream '{DESIGN_STREAM}' of the root seed",
        "n_runs": plan.points * plan.replicates * len(plan.names),
        "rerun_point": (
            f"{rerun_command(run)} --seed <replicate seed> {rerun_command(['--steps', plan.steps, *base_sets])}"
            " --set <key>=<value> for each assumption of the point (design.csv)"
        ),
        "rerun_example": rerun_command(
            [*run, "--seed", int(seeds[0]), "--steps", plan.steps, *base_sets, *example_sets]
        ),
        "command": command,
        "executor": executor,
        "versions": versions(),
        "git_commit": git_commit(),
        "status": "running",
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    design_text = design.to_csv(index=False)
    manifest["files"] = {DESIGN: file_record(design_text.encode("utf-8"), design)}
    manifest["journal"] = JOURNAL  # made empty now: a journal missing later is one deleted (`check_journal_kept`)

    def fill(stage: Path) -> None:
        atomic_write_text(stage / "scenario.yaml", _yaml(scenario_to_dict(plan.scenario)))
        for v in plan.variants:
            atomic_write_text(stage / "variants" / f"{v.name}.yaml", _yaml(_without_design(v.config)))
        atomic_write_text(stage / DESIGN, design_text)
        atomic_write_text(stage / JOURNAL, "")
        _write_json(stage / MANIFEST, manifest)

    # Claimed (a no-op if the caller holds the claim), staged, renamed: a kill at any moment
    # of the start leaves either nothing or a job that `--resume` continues.
    with claim_output_dir(out, scenario=plan.scenario.name, kind="robustness") as claim:
        return write_staged(claim.directory, fill)


def load_manifest(directory: Path, expected_scenario: str | None = None) -> dict:
    """The manifest of a robustness directory.

    Raises:
        RobustnessError: no such directory, not a robustness directory (another kind named:
            `sim.results.results_dir_problem`), or another scenario's.
    """
    directory = Path(directory)
    if (problem := results_dir_problem(directory, KIND)) is not None:  # no such directory, a sweep's...
        raise RobustnessError(problem)
    if not (directory / MANIFEST).is_file():
        raise RobustnessError(f"{directory}: not a robustness directory (no {MANIFEST})")
    manifest = read_manifest(directory / MANIFEST)  # damaged: ResultFileError (exit 2), naming the file
    if manifest.get("kind") != KIND:
        raise RobustnessError(f"{directory}: not a robustness directory (its manifest is not a robustness job's)")
    if expected_scenario is not None and manifest.get("scenario") != expected_scenario:
        raise RobustnessError(
            f"{directory}: belongs to scenario '{manifest.get('scenario')}', not '{expected_scenario}'"
        )
    return manifest


def read_design(directory: Path, manifest: dict) -> pd.DataFrame:
    """design.csv of a robustness job: one row per point (`manifest["points"]`), `point` and each assumption.

    Checked against the manifest's `files` record where it has one (required in format 2,
    `sim.results.manifest_files`).

    Raises:
        ResultFileError: missing or damaged (`sim.results.read_result_csv`), a column
            missing, a non-number, not one row per point, a point that is not a whole number
            >= 0 (`sim.sweep.check_numbers`), or a checksum that differs from the manifest's
            (or a format-2 manifest without the record).
    """
    points = manifest.get("points")
    record = manifest_files(manifest, Path(directory) / MANIFEST, [DESIGN])[DESIGN]
    design = read_result_csv(
        Path(directory) / DESIGN,
        expected_columns=["point", *manifest.get("ranges", {})],
        expected_rows=points if isinstance(points, int) else None,
        sha256=record.get("sha256"),
    )
    check_numbers(design, RUN_NUMBERS, Path(directory) / DESIGN)  # whatever its checksum: points whole, >= 0
    return design


def check_resume(directory: Path, plan: Plan) -> dict:
    """Refuse to resume a job whose scenario, variants or design have changed; returns its manifest.

    Raises:
        RobustnessError: another scenario's directory, or anything in `Plan.comparable` differs
            (the message names the first difference).
    """
    directory = Path(directory)
    manifest = load_manifest(directory, expected_scenario=plan.scenario.name)
    now = plan.comparable()
    saved_names = [v.get("name") for v in manifest.get("variants", [])]
    now_names = [v.name for v in plan.variants]
    if saved_names != now_names:
        raise RobustnessError(
            f"{directory}: the job's variants changed since it started (were {', '.join(saved_names) or 'none'}, "
            f"now {', '.join(now_names) or 'none'}); start a new job instead of --resume"
        )
    found = []
    for key, value in now.items():
        saved = manifest.get(key)
        if saved == value:
            continue
        if key == "fingerprints":
            saved = saved or {}
            configs = {plan.scenario.name: plan.scenario, **{v.name: v.config for v in plan.variants}}
            for name in dict.fromkeys([*value, *saved]):
                if saved.get(name) == value.get(name):
                    continue
                stored = directory / ("scenario.yaml" if name == plan.scenario.name else f"variants/{name}.yaml")
                paths = []
                if stored.exists() and name in configs:
                    old = yaml.safe_load(stored.read_text(encoding="utf-8")) or {}
                    old.pop("robustness", None)
                    new = yaml.safe_load(_yaml(_without_design(configs[name])))
                    paths = [d.split(" ", 1)[0] for d in differences(old, new)]
                at = f" (at {summarise_differences(paths)})" if paths else ""
                found.append(f"scenario '{name}' has changed since this job started{at}")
            continue
        found.append(
            f"the job's {key} changed since it started (was {json.dumps(saved)[:80]}, now {json.dumps(value)[:80]})"
        )
    if found:
        raise RobustnessError(f"{directory}: {'; '.join(found)}; start a new job instead of --resume")
    return manifest


def run_robustness(
    directory: Path,
    plan: Plan,
    *,
    workers: int = 1,
    dask: str | None = None,
    backend: Backend | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> dict:
    """Run every run of the job in `directory` not yet in its journal; then write runs.csv.

    Args:
        directory: made by `start_robustness` for this plan (checked with `check_resume`).
        plan: the job (`plan_robustness`).
        workers: local worker processes (1: serial) when `backend` is not given.
        dask: None, "local" or a scheduler address, when `backend` is not given.
        backend: a backend made beforehand (`sim.executors.make_backend`); closed at the end.
        on_row: called with each finished run's row after it is journaled (e.g. to stop a
            test part-way).

    Returns:
        Counts: runs (this session), total, done_before, failed (all sessions), finished.

    Raises:
        RobustnessError: the directory is not this plan's job.
    """
    try:
        with claim_output_dir(directory, existing=True):  # one job per directory (no-op if the caller holds it)
            return _run_claimed(directory, plan, backend, workers, dask, on_row)
    except BaseException:
        if backend is not None:
            backend.close()  # safe to call twice
        raise


def _run_claimed(directory: Path, plan: Plan, backend, workers, dask, on_row) -> dict:
    manifest = check_resume(directory, plan)
    # Marked "interrupted" from here on (also after the last run): starting the workers takes seconds.
    with marked_if_interrupted(manifest, Path(directory) / MANIFEST):
        design = read_design(directory, manifest)  # a damaged design is refused before workers start
        backend = backend if backend is not None else make_backend(workers, dask)
        try:
            names = plan.names
            done_rows = read_journal(directory, repair=True, scenarios=names)
            done = {(int(r["point"]), int(r["replicate"]), r["scenario"]) for r in done_rows}
            check_journal_kept(directory, manifest, len(done))
            tasks = [t for t in plan.tasks(design) if (t.point, t.replicate, names[t.scenario]) not in done]
            n_failed = sum(r.get("status") != "ok" for r in done_rows)
            total = len(design) * plan.replicates * len(names)
            journal = Journal(directory)
            try:
                n_run, _, session = journaled_map(
                    backend, partial(run_task, plan.job()), tasks, journal, total, f"robustness {plan.scenario.name}",
                    len(done), n_failed, on_row, manifest=manifest, manifest_path=Path(directory) / MANIFEST,
                )  # fmt: skip
            finally:
                journal.close()
        finally:
            backend.close()
        runs = _runs_frame(read_journal(directory, scenarios=names), names)
        atomic_write_text(Path(directory) / RUNS_TABLE, runs.to_csv(index=False))
        manifest.pop("interrupted_utc", None)
        manifest.update(
            status="complete" if len(runs) == total else "incomplete",
            finished_utc=datetime.now(UTC).isoformat(timespec="seconds"),
            n_failed=int((runs["status"] != "ok").sum()) if len(runs) else 0,
            last_session=session,
            journal_runs=len(runs),  # one row per distinct run journalled (closed, so fsynced: `check_journal_kept`)
        )
        _write_json(Path(directory) / MANIFEST, manifest)
    return {
        "runs": n_run,
        "total": total,
        "done_before": len(done),
        "failed": manifest["n_failed"],
        "finished": len(runs),
    }


def _runs_frame(rows: list[dict], names: Sequence[str]) -> pd.DataFrame:
    """The journal's rows, one per run (the last of duplicates), sorted by point, replicate and scenario order."""
    if not rows:
        return pd.DataFrame(columns=["point", "replicate", "scenario", "seed", "status", "error", "elapsed_s"])
    frame = pd.DataFrame(rows).drop_duplicates(["point", "replicate", "scenario"], keep="last")
    order = {name: i for i, name in enumerate(names)}
    frame["_order"] = frame["scenario"].map(order)
    frame = frame.sort_values(["point", "replicate", "_order"]).drop(columns="_order").reset_index(drop=True)
    first = ["point", "replicate", "scenario", "seed", "status", "error"]
    rest = sorted(c for c in frame.columns if c not in first and c != "elapsed_s")
    return frame[[*first, *rest, "elapsed_s"]]


# --------------------------------------------------------------------------- per point


def _expectations(manifest: dict) -> list[tuple[str, str, list[Expectation]]]:
    return [(v["name"], v["rule"], [Expectation(**e) for e in v["expectations"]]) for v in manifest.get("variants", [])]


def _combine(values: list[bool | None], rule: str) -> bool | None:
    if rule == "any":
        return True if any(v is True for v in values) else (None if None in values or not values else False)
    return False if any(v is False for v in values) else (None if None in values or not values else True)


def point_table(design: pd.DataFrame, runs: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """One row per point: its assumptions, the base's pattern shares, paired differences and verdicts.

    Args:
        design: design.csv (point, one column per assumption).
        runs: one row per run (`runs.csv`, or the journal's rows as a DataFrame).
        manifest: the job's manifest (scenario, variants with expectations, patterns, threshold).

    Returns:
        Columns: point, the assumptions, `runs_ok` (base runs that finished), `runs_failed`
        (all scenarios), `share.<pattern>` and `share.all_patterns_jointly`, `holds.pattern.<pattern>`
        (shown in at least `threshold` of the runs), `holds.patterns` (all of them),
        for each variant `diff.<variant>.<outcome>` (mean paired difference) and
        `holds.<variant>`, then `holds.all`. A verdict is NA where it cannot be judged (no
        finished run, or an undefined outcome).
    """
    base = manifest["scenario"]
    patterns = list(manifest["patterns"])
    threshold = float(manifest["threshold"])
    variants = _expectations(manifest)
    ok = runs[runs["status"] == "ok"] if len(runs) else runs
    rows = []
    for point in design["point"]:
        here = ok[ok["point"] == point] if len(ok) else ok
        row: dict = {"point": int(point)}
        base_runs = here[here["scenario"] == base].set_index("replicate") if len(here) else pd.DataFrame()
        row["runs_ok"] = len(base_runs)
        row["runs_failed"] = int(((runs["point"] == point) & (runs["status"] != "ok")).sum()) if len(runs) else 0
        shares = {}
        for name in [*patterns, JOINT]:
            column = f"pattern.{name}"
            flags = base_runs[column].dropna() if column in base_runs else pd.Series(dtype=float)
            shares[name] = float(flags.astype(float).mean()) if len(flags) else float("nan")
            row[f"share.{name}"] = shares[name]
        for name in patterns:
            row[f"holds.pattern.{name}"] = None if math.isnan(shares[name]) else shares[name] >= threshold - 1e-12
        if not patterns or any(math.isnan(shares[p]) for p in patterns):
            row[f"holds.{PATTERNS_VERDICT}"] = None
        else:
            row[f"holds.{PATTERNS_VERDICT}"] = all(row[f"holds.pattern.{p}"] for p in patterns)
        for name, rule, expectations in variants:
            other = here[here["scenario"] == name].set_index("replicate") if len(here) else pd.DataFrame()
            pairs = base_runs.index.intersection(other.index).sort_values()
            results = []
            for e in expectations:
                column = f"outcome.{e.outcome}"
                if column in base_runs and column in other:
                    b = pd.to_numeric(base_runs.loc[pairs, column], errors="coerce").to_numpy(dtype=float)
                    v = pd.to_numeric(other.loc[pairs, column], errors="coerce").to_numpy(dtype=float)
                    keep = ~(np.isnan(b) | np.isnan(v))
                    b, v = b[keep], v[keep]
                else:
                    b = v = np.array([])
                mean = float((v - b).mean()) if len(b) else float("nan")
                row[f"diff.{name}.{e.outcome}"] = mean
                results.append(e.holds(mean, mean, float(b.mean())) if len(b) else None)
            row[f"holds.{name}"] = _combine(results, rule)
        verdicts = [row[f"holds.{PATTERNS_VERDICT}"], *(row[f"holds.{n}"] for n, _, _ in variants)]
        row[f"holds.{ALL_VERDICT}"] = _combine(verdicts, "all")
        rows.append(row)
    table = design.merge(pd.DataFrame(rows), on="point", how="left")
    for column in [c for c in table.columns if c.startswith("holds.")]:
        table[column] = table[column].astype("boolean")
    return table


def verdicts(manifest: dict) -> list[tuple[str, str]]:
    """(verdict, what it asks) for every verdict of a job: the patterns, each variant, all at once."""
    threshold = float(manifest["threshold"])
    out = [
        (
            PATTERNS_VERDICT,
            f"every validation pattern ({len(manifest['patterns'])}) shows in at least {threshold:.0%} "
            "of the point's runs",
        )
    ]
    for name, rule, expectations in _expectations(manifest):
        moves = ", ".join(f"`{e.outcome}` {e.label}" for e in expectations)
        joined = "all of" if rule == "all" else "any of"
        out.append((name, f"the mean paired difference moves {joined}: {moves}"))
    out.append((ALL_VERDICT, "the patterns and every variant hold at once"))
    return out


def verdict_summary(table: pd.DataFrame, manifest: dict, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The share of points where each verdict (and each validation pattern) holds, with its Wilson interval.

    Returns:
        One row per verdict, then one per pattern ("pattern: <name>", holding where it shows in
        at least `threshold` of the point's runs): kind (verdict or pattern), verdict,
        description, points (judged), holds, fails, share, ci_low, ci_high.
    """
    threshold = float(manifest["threshold"])
    rows = []

    def add(kind: str, name: str, description: str, flags: pd.Series) -> None:
        judged = flags.dropna()
        k, n = int(judged.astype(bool).sum()), len(judged)
        low, high = wilson_interval(k, n, confidence)
        rows.append(
            {
                "kind": kind,
                "verdict": name,
                "description": description,
                "points": n,
                "holds": k,
                "fails": n - k,
                "share": k / n if n else float("nan"),
                "ci_low": low,
                "ci_high": high,
            }
        )

    for name, description in verdicts(manifest):
        add("verdict", name, description, table[f"holds.{name}"])
    for pattern in manifest["patterns"]:
        add(
            "pattern",
            pattern,
            f"shows in at least {threshold:.0%} of the point's runs",
            table[f"holds.pattern.{pattern}"],
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- PRIM


@dataclass
class Box:
    """One PRIM box: where the cases of interest (failures) concentrate.

    Attributes:
        number: 1 for the first box found, 2 for the next (among the points left outside box 1)...
        coverage: the share of all cases of interest that lie in the box.
        density: the share of the points in the box that are cases of interest.
        mass: the share of all points that lie in the box.
        n: points in the box; k: cases of interest among them.
        reached: whether the density reaches the target (`PRIM_DENSITY`).
        limits: the restricted dimensions, most significant first: dimension, lower, upper
            (the box's limits; NaN where that side is not restricted), data_low, data_high
            (the points' extent), qp_lower, qp_upper (quasi-p values of each restriction,
            Bryant & Lempert 2010: a one-sided binomial test; NaN where not restricted).
        trajectory: the peeling and pasting trajectory: id, coverage, density, mass, res_dim, n, k.
        chosen: the id of the chosen box on the trajectory.
    """

    number: int
    coverage: float
    density: float
    mass: float
    n: int
    k: int
    reached: bool
    limits: pd.DataFrame
    trajectory: pd.DataFrame
    chosen: int

    @property
    def lift(self) -> float:
        """Density over the share of cases among the points the box was sought in (1: no better than chance)."""
        base = float(self.trajectory["density"].iloc[0])
        return self.density / base if base > 0 else float("nan")

    @property
    def dimensions(self) -> list[str]:
        """The restricted dimensions (the assumptions that decide), most significant first."""
        return list(self.limits["dimension"])


def _prim_library():
    """ema-workbench's PRIM module (its import warns that an optional parallel backend is missing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim
    return prim


def prim_version() -> str:
    """The installed ema-workbench's version ('missing' if it is not installed)."""
    try:
        return metadata.version("ema-workbench")
    except metadata.PackageNotFoundError:
        return "missing"


def find_boxes(
    x: pd.DataFrame,
    cases: np.ndarray | pd.Series,
    *,
    density: float = PRIM_DENSITY,
    max_boxes: int = PRIM_MAX_BOXES,
    min_cases: int = PRIM_MIN_CASES,
    peel_alpha: float = PRIM_PEEL_ALPHA,
    mass_min: float = PRIM_MASS_MIN,
) -> list[Box]:
    """PRIM boxes of the input space where `cases` is True (e.g. the points where a verdict fails).

    Runs ema-workbench's PRIM (`ema_workbench.analysis.prim.Prim`, Kwakkel 2017), the
    reference implementation of scenario discovery, maintained with its literature: peeling
    and pasting for real, integer and categorical inputs, the lenient objective of Kwakkel &
    Jaxa-Rozen (2016), quasi-p values, and tests of its own. A hand-written PRIM would have
    to re-derive and re-test all of that. Works with ema-workbench 2.5 (Python 3.11) and
    3.x (Python >= 3.12), whose constructors differ.

    On each box's trajectory the box kept is the one of largest coverage whose density
    reaches `density` (ties: the denser, then the one with fewer restricted dimensions);
    if none reaches it, the densest. Its restricted assumptions whose limits' quasi-p values
    all exceed `PRIM_QP_MAX` are then dropped, least significant first (`drop_restriction`;
    an assumption limited at both ends stays while one end is significant), so a box
    names only assumptions that significantly concentrate the cases. The first box is always returned (flagged by
    `Box.reached`); further boxes are sought among the points outside the earlier ones while
    at least `min_cases` cases remain, and kept only if they reach the density.

    Args:
        x: one row per point, one numeric column per input (integers are treated as floats,
            so a limit on a whole-number input may fall between two whole numbers).
        cases: one bool per row, True for a case of interest.
        density: the density a box should reach.
        max_boxes: at most this many boxes.
        min_cases: no box is sought with fewer cases of interest than this.
        peel_alpha: the share of points peeled at each step.
        mass_min: the smallest share of all points a box may hold.

    Returns:
        The boxes found, in order (empty if fewer than `min_cases` cases, or no significant
        restriction concentrates them).
    """
    y = np.asarray(cases, dtype=bool).astype(int)
    if len(y) != len(x):
        raise ValueError(f"{len(y)} cases for {len(x)} points")
    if int(y.sum()) < min_cases:
        return []
    # Every input as a float: ema-workbench 2.5 pastes a float limit into an integer column,
    # which pandas >= 3 refuses; peeling by quantiles is the same for whole numbers.
    x = x.reset_index(drop=True).astype(np.float64)
    prim = _prim_library()
    keywords = {"peel_alpha": peel_alpha, "paste_alpha": peel_alpha, "mass_min": mass_min}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's own deprecation notices
        if "threshold" in inspect.signature(prim.Prim).parameters:  # ema-workbench 2.x
            finder = prim.Prim(x, y, threshold=_EMA2_THRESHOLD, **keywords)
        else:  # 3.x
            finder = prim.Prim(x, y, **keywords)
        boxes: list[Box] = []
        covered = np.zeros(len(y), dtype=bool)
        while len(boxes) < max_boxes and int(y[~covered].sum()) >= min_cases:
            found = finder.find_box()
            if found is None:
                break
            box = _choose(found, x, density, len(boxes) + 1)
            if box is None or (boxes and not box.reached):
                break
            boxes.append(box)
            covered[np.asarray(found.yi)] = True
            if not box.reached:
                break
    return boxes


def _trajectory(found) -> pd.DataFrame:
    trajectory = found.peeling_trajectory.reset_index(drop=True)
    columns = ["id", "coverage", "density", "mass", "res_dim", "n", "k"]
    return trajectory[columns].astype({"id": int, "res_dim": int, "n": int, "k": int})


def _limits(found, x: pd.DataFrame, i: int) -> pd.DataFrame:
    """The restricted dimensions of box `i` on a trajectory, most significant first (see `Box.limits`)."""
    lims, init = found.box_lims[i].reset_index(drop=True), found.box_lims[0].reset_index(drop=True)
    qps = getattr(found, "p_values", None)  # ema-workbench 3.x
    qps = qps if qps is not None else found.qp  # 2.x
    qp = qps[i] if i < len(qps) else {}
    rows = []
    for dim in x.columns:
        lower, upper = float(lims.loc[0, dim]), float(lims.loc[1, dim])
        low0, high0 = float(init.loc[0, dim]), float(init.loc[1, dim])
        if lower <= low0 and upper >= high0:
            continue
        q_low, q_high = (list(qp.get(dim, [-1, -1])) + [-1, -1])[:2]
        rows.append(
            {
                "dimension": dim,
                "lower": lower if lower > low0 else float("nan"),
                "upper": upper if upper < high0 else float("nan"),
                "data_low": low0,
                "data_high": high0,
                "qp_lower": float(q_low) if q_low is not None and q_low >= 0 else float("nan"),
                "qp_upper": float(q_high) if q_high is not None and q_high >= 0 else float("nan"),
            }
        )
    limits = pd.DataFrame(
        rows, columns=["dimension", "lower", "upper", "data_low", "data_high", "qp_lower", "qp_upper"]
    )
    significance = limits[["qp_lower", "qp_upper"]].min(axis=1, skipna=True).fillna(1.0)
    limits = limits.assign(qp=significance).sort_values("qp", kind="stable").reset_index(drop=True)
    return limits


def _choose(found, x: pd.DataFrame, density: float, number: int) -> Box | None:
    """Pick a box on one PRIM trajectory, drop its insignificant restrictions, describe it (see `find_boxes`).

    None if no box restricts anything, or no restriction is significant.
    """
    trajectory = _trajectory(found)
    candidates = trajectory[trajectory["res_dim"] > 0]
    if candidates.empty:
        return None
    good = candidates[candidates["density"] >= density - 1e-12]
    pool = good if not good.empty else candidates
    order = ["coverage", "density", "res_dim"] if not good.empty else ["density", "coverage", "res_dim"]
    pick = int(pool.sort_values(order, ascending=[False, False, True], kind="stable").index[0])
    found.select(pick)
    limits = _limits(found, x, pick)
    while len(limits) and limits["qp"].iloc[-1] > PRIM_QP_MAX:
        found.drop_restriction(limits["dimension"].iloc[-1], pick)  # appended to the trajectory, and selected
        pick = len(found.peeling_trajectory) - 1
        limits = _limits(found, x, pick)
    if limits.empty:
        return None
    trajectory = _trajectory(found)
    chosen = trajectory.loc[pick]
    return Box(
        number=number,
        coverage=float(chosen["coverage"]),
        density=float(chosen["density"]),
        mass=float(chosen["mass"]),
        n=int(chosen["n"]),
        k=int(chosen["k"]),
        reached=bool(chosen["density"] >= density - 1e-12),
        limits=limits.drop(columns="qp"),
        trajectory=trajectory,
        chosen=pick,
    )


@dataclass
class Discovery:
    """What scenario discovery found for one verdict: the points it describes, and the boxes around them.

    `target` is "fails" (boxes where the verdict fails) or "holds" (where it holds: sought
    too when the verdict fails at most points, since there the exceptions are the news).
    """

    verdict: str
    target: str  # "fails" or "holds"
    points: int  # points where the verdict could be judged
    cases: int  # points of the target kind among them
    status: str  # "boxes", "none", "everywhere", "too few", "dense already", "no box"
    message: str
    boxes: list[Box] = field(default_factory=list)
    scores: pd.Series | None = None  # extra-trees feature score per assumption, best first (when PRIM ran)

    @property
    def label(self) -> str:
        """`<verdict>_<target>`: the stem of its plots' file names."""
        return f"{self.verdict}_{self.target}"


def _discovery(verdict: str, target: str, x: pd.DataFrame, cases: np.ndarray, seed: int) -> Discovery:
    """PRIM boxes around the `cases` of one verdict, or the reason there are none (`seed`: the screening's)."""
    n, k = len(cases), int(cases.sum())
    other = "holds" if target == "fails" else "fails"
    if n == 0:
        return Discovery(verdict, target, 0, 0, "none", "no point could be judged")
    if k == 0:
        return Discovery(verdict, target, n, 0, "none", f"{other} at all {n} points: PRIM has nothing to describe")
    if k == n:
        return Discovery(verdict, target, n, k, "everywhere", f"{target} at all {n} points: no box is needed")
    if k < PRIM_MIN_CASES:
        message = f"{target} at {k} of {n} points, too few for a box (PRIM needs {PRIM_MIN_CASES})"
        return Discovery(verdict, target, n, k, "too few", message)
    if k / n >= PRIM_DENSITY:
        message = (
            f"{target} at {k} of {n} points, already {PRIM_DENSITY:.0%} or more of the whole space: "
            f"see where it {other} instead"
        )
        return Discovery(verdict, target, n, k, "dense already", message)
    scores = feature_scores(x, cases, seed=seed)
    boxes = find_boxes(x[list(scores.index[:PRIM_SCREEN])], cases)
    if not boxes:
        message = f"{target} at {k} of {n} points; no significant restriction concentrates them"
        return Discovery(verdict, target, n, k, "no box", message, scores=scores)
    message = f"{target} at {k} of {n} points; {len(boxes)} box(es)"
    return Discovery(verdict, target, n, k, "boxes", message, boxes, scores=scores)


def feature_scores(x: pd.DataFrame, cases: np.ndarray | pd.Series, seed: int = 0) -> pd.Series:
    """How much each input tells the cases apart: extra-trees feature scores, best first.

    `ema_workbench.analysis.feature_scoring.get_ex_feature_scores` (an `ExtraTreesClassifier`
    of `SCREEN_TREES` trees, a third of the inputs per split, as Jaxa-Rozen & Kwakkel 2018
    recommend), seeded with `seed`, so the ranking is reproducible. Scores sum to 1.

    Returns:
        Score per input (column of `x`), in decreasing order (ties: column order).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis.feature_scoring import get_ex_feature_scores

        table, _ = get_ex_feature_scores(
            x.reset_index(drop=True).astype(np.float64),
            np.asarray(cases, dtype=bool).astype(int),
            nr_trees=SCREEN_TREES,
            random_state=int(seed),
        )
    scores = pd.Series(table.iloc[:, 0].to_numpy(dtype=float), index=list(table.index), name="score")
    order = {c: i for i, c in enumerate(x.columns)}
    ranked = sorted(scores.index, key=lambda c: (-scores[c], order[c]))
    return scores[ranked]


def discover(table: pd.DataFrame, manifest: dict) -> list[Discovery]:
    """PRIM boxes (`find_boxes`) of the space where each verdict fails, and where it holds if it mostly fails.

    The verdicts are those of `verdicts(manifest)`, then each validation pattern on its own
    (`pattern.<name>`: which assumptions break which pattern). For every one: the boxes
    where it fails (or why there are none: it never fails, too few failures, failures
    already fill `PRIM_DENSITY` of the space...); and, when it fails at more than half of
    the points, the boxes where it still holds. PRIM peels the `PRIM_SCREEN` assumptions of
    highest feature score (`feature_scores`, seeded from the root seed and the verdict).

    Args:
        table: `point_table`'s table.
        manifest: the job's manifest (the assumptions are `manifest["ranges"]`).

    Returns:
        One `Discovery` per verdict (then per pattern) and target, "fails" first.
    """
    keys = list(manifest["ranges"])
    root = int(manifest.get("root_seed", 0))
    found: list[Discovery] = []
    names = [name for name, _ in verdicts(manifest)] + [f"pattern.{p}" for p in manifest["patterns"]]
    for name in names:
        flags = table[f"holds.{name}"]
        judged = flags.notna().to_numpy()
        holds = flags[judged].astype(bool).to_numpy()
        x = table.loc[judged, keys]
        for target, cases in (("fails", ~holds), ("holds", holds)):
            if target == "holds" and not (len(holds) and (~holds).mean() > 0.5 and holds.any()):
                continue
            seed = int(named_stream(root, f"robustness-screen:{name}:{target}").integers(2**31 - 1))
            found.append(_discovery(name, target, x, cases, seed))
    return found


def boxes_frame(found: list[Discovery], manifest: dict) -> pd.DataFrame:
    """boxes.csv: one row per restricted dimension of every box."""
    ranges = manifest["ranges"]
    rows = []
    for d in found:
        for box in d.boxes:
            head = {
                "verdict": d.verdict,
                "describes": d.target,
                "box": box.number,
                "coverage": box.coverage,
                "density": box.density,
                "lift": box.lift,
                "mass": box.mass,
                "points_in_box": box.n,
                "cases_in_box": box.k,
                "density_reached": box.reached,
            }
            for limit in box.limits.itertuples():
                spec = ranges.get(limit.dimension, {})
                rows.append(
                    {
                        **head,
                        "dimension": limit.dimension,
                        "lower": limit.lower,
                        "upper": limit.upper,
                        "range_low": spec.get("low"),
                        "range_high": spec.get("high"),
                        "qp_lower": limit.qp_lower,
                        "qp_upper": limit.qp_upper,
                    }
                )
    columns = [
        "verdict", "describes", "box", "coverage", "density", "lift", "mass", "points_in_box", "cases_in_box",
        "density_reached", "dimension", "lower", "upper", "range_low", "range_high", "qp_lower", "qp_upper",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def trajectories_frame(found: list[Discovery]) -> pd.DataFrame:
    """prim_trajectories.csv: every box's peeling trajectory, with the chosen step flagged."""
    frames = []
    for d in found:
        for box in d.boxes:
            t = box.trajectory.copy()
            t.insert(0, "box", box.number)
            t.insert(0, "describes", d.target)
            t.insert(0, "verdict", d.verdict)
            t["chosen"] = t["id"] == box.chosen
            frames.append(t)
    columns = ["verdict", "describes", "box", "id", "coverage", "density", "mass", "res_dim", "n", "k", "chosen"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def scores_frame(found: list[Discovery]) -> pd.DataFrame:
    """feature_scores.csv: each screened verdict's assumptions ranked by feature score."""
    rows = [
        {"verdict": d.verdict, "describes": d.target, "rank": rank, "assumption": key, "score": float(score)}
        for d in found
        if d.scores is not None
        for rank, (key, score) in enumerate(d.scores.items(), start=1)
    ]
    return pd.DataFrame(rows, columns=["verdict", "describes", "rank", "assumption", "score"])


# --------------------------------------------------------------------------- plots


def _footer(manifest: dict) -> str:
    provenance = Provenance.from_manifest(manifest, seeds_note="the same at every point and in every scenario")
    return provenance.footer(
        f"{manifest['points']} Latin-hypercube points",
        f"PRIM: ema-workbench {manifest.get('prim', {}).get('version', prim_version())}",
    )


def plot_shares(summary: pd.DataFrame, manifest: dict, path: Path) -> Path:
    """Bars: the share of points where each verdict and each pattern holds, with Wilson intervals."""
    n = len(summary)
    fig = new_figure(
        9.0,
        1.6 + 0.28 * n,
        title="Where the verdicts hold: share of the assumption space",
        subtitle=(
            f"{manifest['points']} Latin-hypercube points over {len(manifest['ranges'])} assumptions; "
            f"blue: verdicts, grey: single patterns; bars: {CONFIDENCE:.0%} Wilson intervals"
        ),
        footer=_footer(manifest),
    )
    ax = fig.add_subplot(1, 1, 1)
    labels = [("verdict: " if r.kind == "verdict" else "pattern: ") + r.verdict for r in summary.itertuples()]
    y = np.arange(n)[::-1]
    colours = [BLUE if r.kind == "verdict" else GREY for r in summary.itertuples()]
    share = summary["share"].to_numpy(dtype=float)
    low, high = summary["ci_low"].to_numpy(dtype=float), summary["ci_high"].to_numpy(dtype=float)
    err = np.clip(np.nan_to_num(np.vstack([share - low, high - share])), 0.0, None)
    ax.barh(y, np.nan_to_num(share), color=colours, xerr=err, ecolor="#333333", capsize=2)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of points where it holds")
    ax.grid(axis="x", alpha=0.3)
    return save_png(fig, path)


def _unit(values: np.ndarray, spec: dict) -> np.ndarray:
    """Positions of values within a declared range, 0 at low and 1 at high (log-scaled when the range is)."""
    low, high = float(spec["low"]), float(spec["high"])
    values = np.asarray(values, dtype=float)
    if spec.get("log"):
        return (np.log(values) - math.log(low)) / (math.log(high) - math.log(low))
    return (values - low) / (high - low)


def plot_tradeoff(discovery: Discovery, manifest: dict, path: Path) -> Path:
    """PRIM's coverage/density trade-off: every step of each box's peeling trajectory, the chosen box ringed."""
    target = discovery.target
    fig = new_figure(
        8.0,
        5.8,
        title=f"Where '{discovery.verdict}' {target}: PRIM peeling trajectory",
        subtitle=(
            f"it {target} at {discovery.cases} of {discovery.points} points; each dot a box on the trajectory, "
            f"coloured by the assumptions it restricts; dashed: density target {PRIM_DENSITY:.0%}"
        ),
        footer=_footer(manifest),
    )
    ax = fig.add_subplot(1, 1, 1)
    markers = ("o", "s", "^")
    top = max(1, *(int(b.trajectory["res_dim"].max()) for b in discovery.boxes))
    cmap = matplotlib.colormaps["viridis"].resampled(top + 1)
    points = None
    notes = []
    for box in discovery.boxes:
        t = box.trajectory
        points = ax.scatter(
            t["coverage"], t["density"], c=t["res_dim"], cmap=cmap, vmin=-0.5, vmax=top + 0.5, s=24,
            marker=markers[(box.number - 1) % len(markers)], label=f"box {box.number}", zorder=3,
        )  # fmt: skip
        chosen = t.loc[box.chosen]
        ax.scatter([chosen["coverage"]], [chosen["density"]], s=170, facecolors="none", edgecolors=VERMILLION, lw=1.6)
        ax.annotate(str(box.number), (chosen["coverage"], chosen["density"]), xytext=(7, 5),
                    textcoords="offset points", fontsize=9, color=VERMILLION, fontweight="bold")  # fmt: skip
        notes.append(
            f"box {box.number}: coverage {box.coverage:.2f}, density {box.density:.2f}, "
            f"mass {box.mass:.2f}, {len(box.limits)} assumption(s)"
        )
    ax.text(0.02, 0.03, "\n".join(notes), transform=ax.transAxes, fontsize=8, color=VERMILLION, va="bottom")
    ax.axhline(PRIM_DENSITY, color=GREY, ls="--", lw=1)
    ax.set_xlim(0, 1.03)
    ax.set_ylim(0, 1.03)
    ax.set_xlabel(f"coverage: share of the points where it {target} that lie inside the box")
    ax.set_ylabel(f"density: share of the box's points where it {target}")
    ax.grid(alpha=0.3)
    if len(discovery.boxes) > 1:
        ax.legend(loc="lower right", fontsize=8)
    if points is not None:
        bar = fig.colorbar(points, ax=ax, ticks=range(top + 1))
        bar.set_label("assumptions restricted")
    return save_png(fig, path)


def _limits_text(limit) -> str:
    said = []
    if not math.isnan(limit.lower):
        said.append(f"≥ {limit.lower:.4g}")
    if not math.isnan(limit.upper):
        said.append(f"≤ {limit.upper:.4g}")
    return " and ".join(said)


def _qp_text(limit) -> str:
    values = [q for q in (limit.qp_lower, limit.qp_upper) if not math.isnan(q)]
    return ", ".join(f"{q:.2g}" for q in values) if values else "n/a"


def plot_box_limits(discovery: Discovery, table: pd.DataFrame, manifest: dict, path: Path) -> Path:
    """Each box's restricted assumptions: the declared range, the box's limits, and the points of both kinds."""
    ranges = manifest["ranges"]
    target = discovery.target
    rows = [(box, limit) for box in discovery.boxes for limit in box.limits.itertuples()]
    fig = new_figure(
        9.5,
        1.9 + 0.8 * max(len(rows), 1),
        title=f"Where '{discovery.verdict}' {target}: the assumptions that decide it",
        subtitle=(
            f"each row: one assumption's declared range (log-scaled where declared); shaded: the box; "
            f"dots: points where it {target} (red) or not (grey)"
        ),
        footer=_footer(manifest),
    )
    ax = fig.add_subplot(1, 1, 1)
    flags = table[f"holds.{discovery.verdict}"]
    judged = flags.notna().to_numpy()
    holds = flags[judged].astype(bool).to_numpy()
    cases = holds if target == "holds" else ~holds
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, int(judged.sum()))  # display only
    labels = []
    for i, (box, limit) in enumerate(rows):
        y = len(rows) - 1 - i
        spec = ranges[limit.dimension]
        lower = limit.lower if not math.isnan(limit.lower) else spec["low"]
        upper = limit.upper if not math.isnan(limit.upper) else spec["high"]
        a, b = _unit(np.array([lower, upper]), spec)
        ax.add_patch(
            Rectangle((a, y - 0.32), b - a, 0.64, facecolor=ORANGE, alpha=0.22, edgecolor=ORANGE, lw=1.2, zorder=1)
        )
        values = _unit(table.loc[judged, limit.dimension].to_numpy(dtype=float), spec)
        ax.scatter(values[~cases], y + jitter[~cases], s=8, color=GREY, alpha=0.7, lw=0, zorder=2)
        ax.scatter(values[cases], y + jitter[cases], s=10, color=VERMILLION, alpha=0.9, lw=0, zorder=3)
        labels.append(
            f"box {box.number}: {textwrap.fill(parameter_label(limit.dimension), 45)}\n"
            f"{_limits_text(limit)} (qp {_qp_text(limit)}); range [{spec['low']:g}, {spec['high']:g}]"
        )
    ax.set_yticks(np.arange(len(rows))[::-1], labels, fontsize=7)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["low", "", "middle", "", "high"])
    ax.set_xlabel("position within the declared range")
    ax.grid(axis="x", alpha=0.3)
    return save_png(fig, path)


# --------------------------------------------------------------------------- the report


def _fmt(x, digits: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:{digits}}"


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a '|' would end the cell)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _discovery_lines(d: Discovery, manifest: dict, plots_href: str) -> list[str]:
    """One discovery in Markdown: what was found, each box with its restricted assumptions, its plots."""
    lines = ["", d.message[:1].upper() + d.message[1:] + "."]
    if d.scores is not None:
        top = ", ".join(f"`{key}` {score:.3f}" for key, score in d.scores.iloc[:PRIM_SCREEN].items())
        lines += ["", f"Assumptions that best tell where it {d.target} (feature scores, PRIM peels these): {top}."]
    for box in d.boxes:
        reached = "" if box.reached else f" (below the {PRIM_DENSITY:.0%} density target)"
        lines += [
            "",
            f"Where it {d.target}, box {box.number}{reached}: coverage {box.coverage:.2f}, "
            f"density {box.density:.2f} ({box.lift:.1f} times the share among the points searched), "
            f"mass {box.mass:.2f} ({box.k} of its {box.n} points).",
            "",
            "| assumption | box | declared range | quasi-p |",
            "|---|---|---|---|",
        ]
        for limit in box.limits.itertuples():
            spec = manifest["ranges"][limit.dimension]
            lines.append(
                f"| `{limit.dimension}` | {_limits_text(limit)} | [{spec['low']:g}, {spec['high']:g}]"
                f"{' log' if spec.get('log') else ''} | {_qp_text(limit)} |"
            )
    if d.boxes:
        lines += [
            "",
            f"![trade-off]({plots_href}/prim_tradeoff_{d.label}.png)",
            f"![limits]({plots_href}/prim_box_{d.label}.png)",
        ]
    return lines


def render_markdown(
    manifest: dict, summary: pd.DataFrame, found: list[Discovery], table: pd.DataFrame, plots_href: str = "plots"
) -> str:
    """The text of ROBUSTNESS.md: method, shares with intervals, PRIM boxes, ranges and fixed assumptions."""
    threshold = float(manifest["threshold"])
    n_keys = len(manifest["ranges"])
    lines = [
        f"# Robustness of the verdicts: `{manifest['scenario']}`",
        "",
        (
            f"{manifest['points']} points of a Latin hypercube over {n_keys} assumptions (their plausible ranges "
            f"below, log-uniform where marked), {manifest['replicates']} replicate run(s) per point of the base "
            f"and of each policy variant, {manifest['steps']} days each, on common random numbers (replicate k has "
            f"the same seed at every point and in every scenario; root seed {manifest['root_seed']}). At a point, "
            f"the **patterns hold** when every validation pattern ({len(manifest['patterns'])}, "
            "`sim.patterns.joint_patterns`) shows in at least "
            f"{threshold:.0%} of the base's runs; a **variant holds** when the mean paired difference variant - base "
            "over the point's replicates moves its expected outcomes the expected way (margins included, "
            "all or any as the variant's rule says); **all** holds when both do. Shares of points come with "
            f"{CONFIDENCE:.0%} Wilson intervals: the points are an even sample of the space of ranges, so a share "
            "estimates the part of that space where the verdict holds."
        ),
    ]
    if manifest.get("command"):
        lines += ["", f"Command: `{manifest['command']}`"]
    failed = int(table["runs_failed"].sum()) if "runs_failed" in table else 0
    if failed:
        lines += ["", f"{failed} run(s) failed (see runs.csv); verdicts use the runs that finished."]
    lines += [
        "",
        "## Where the verdicts hold",
        "",
        "| verdict | what it asks | points | holds | share | 95% interval |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in summary[summary["kind"] == "verdict"].itertuples():
        lines.append(
            f"| `{r.verdict}` | {r.description} | {r.points} | {r.holds} | {_fmt(r.share)} "
            f"| [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] |"
        )
    lines += [
        "",
        f"Each validation pattern (shows in at least {threshold:.0%} of a point's runs):",
        "",
        "| pattern | points | holds | share | 95% interval |",
        "|---|---:|---:|---:|---|",
    ]
    for r in summary[summary["kind"] == "pattern"].sort_values("share", kind="stable").itertuples():
        lines.append(
            f"| `{r.verdict}` | {r.points} | {r.holds} | {_fmt(r.share)} | [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] |"
        )
    lines += ["", f"![Shares]({plots_href}/{SHARES_PLOT})", "", "## Where they fail (and hold): PRIM boxes", ""]
    lines.append(
        f"PRIM (patient rule induction; ema-workbench {manifest.get('prim', {}).get('version', prim_version())}) "
        "peels the space of assumptions toward the points where a verdict fails; where a verdict fails at most "
        "points, also toward the points where it still holds. With this many assumptions and this few points "
        "some assumption always seems to help by chance, so the assumptions are first ranked by extra-trees "
        f"feature scores (ema-workbench's `get_ex_feature_scores`, {SCREEN_TREES} trees, seeded; scores sum to 1, "
        f"so an assumption that tells nothing scores about 1/{n_keys} = {1 / n_keys:.3f}) and PRIM peels "
        f"the {PRIM_SCREEN} best ranked ({PRIM_PEEL_ALPHA:.0%} at a time, boxes of at least {PRIM_MASS_MIN:.0%} of "
        "the points). On each trajectory the box kept is the one of largest coverage (share of those points "
        f"inside) whose density (share of the box's points that are such points) reaches {PRIM_DENSITY:.0%}, else "
        f"the densest; an assumption is then dropped from the box when the quasi-p values (Bryant & Lempert 2010) "
        f"of both its limits exceed {PRIM_QP_MAX}, so a box names only assumptions that significantly concentrate "
        "its points (an assumption limited at both ends keeps both limits when one of them is significant: read "
        "each limit's own quasi-p in the table). A box found on a "
        "hundred points is a lead, not a proof: check it with a sweep over its assumptions."
    )
    verdict_names = list(dict.fromkeys(d.verdict for d in found))
    for verdict in [v for v in verdict_names if not v.startswith("pattern.")]:
        lines += ["", f"### `{verdict}`"]
        for d in (d for d in found if d.verdict == verdict):
            lines += _discovery_lines(d, manifest, plots_href)
    singles = [d for d in found if d.verdict.startswith("pattern.")]
    if singles:
        lines += ["", "### Each validation pattern on its own", ""]
        lines += [f"- `{d.verdict[len('pattern.') :]}`: {d.message}." for d in singles if not d.boxes]
        for d in (d for d in singles if d.boxes):
            lines += ["", f"#### `{d.verdict[len('pattern.') :]}`", *_discovery_lines(d, manifest, plots_href)]
    kept = [(v["name"], v["kept"]) for v in manifest.get("variants", []) if v.get("kept")]
    lines += ["", "## Assumptions varied", ""]
    if kept:
        lines.append(
            "A key a variant sets itself keeps the variant's value at every point (the policy is what the variant "
            "is): " + "; ".join(f"`{n}`: " + ", ".join(f"`{k}`" for k in keys) for n, keys in kept) + "."
        )
        lines.append("")
    values = manifest.get("values", {})
    lines += [
        f"| assumption | `{manifest['scenario']}` | low | high | scale | argument |",
        "|---|---:|---:|---:|---|---|",
    ]
    for key, spec in manifest["ranges"].items():
        scale = "log" if spec.get("log") else "linear"
        if spec.get("integer"):
            scale += ", whole numbers"
        value = values.get(key)
        shown = "n/a" if value is None else f"{value:g}"
        if value is not None and not spec["low"] <= value <= spec["high"]:
            shown += " (outside)"
        lines.append(
            f"| `{key}` | {shown} | {spec['low']:g} | {spec['high']:g} | {scale} | {_cell(spec['argument'])} |"
        )
    lines += ["", "## Assumptions held fixed", "", "| assumption | why |", "|---|---|"]
    for key, why in manifest.get("fixed", {}).items():
        lines.append(f"| `{key}` | {_cell(why)} |")
    uncovered = manifest.get("uncovered_assumptions", [])
    lines += [
        "",
        "Assumption-marked provenance keys neither varied nor fixed: "
        + (", ".join(f"`{k}`" for k in uncovered) if uncovered else "none")
        + ".",
    ]
    return "\n".join(lines) + "\n"


def analyse_robustness(directory: Path, plots: bool = True) -> dict:
    """Judge every point and write the report files of a robustness directory (see the module notes).

    Uses the finished runs in the journal; points without any are left unjudged (NA).

    Returns:
        {"table": point_table, "summary": verdict_summary, "discoveries": discover's list,
        "files": the paths written}.

    Raises:
        RobustnessError: not a robustness directory.
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    manifest.setdefault("prim", {}).update(
        library="ema_workbench.analysis.prim.Prim",
        version=prim_version(),
        density=PRIM_DENSITY,
        peel_alpha=PRIM_PEEL_ALPHA,
        mass_min=PRIM_MASS_MIN,
        min_cases=PRIM_MIN_CASES,
        qp_max=PRIM_QP_MAX,
        screen=PRIM_SCREEN,
        screen_trees=SCREEN_TREES,
    )
    design = read_design(directory, manifest)
    names = [manifest["scenario"], *(v["name"] for v in manifest.get("variants", []))]
    runs = _runs_frame(read_journal(directory, scenarios=names), names)
    check_journal_kept(directory, manifest, len(runs))  # an analysis of fewer runs than were made, refused
    if manifest.get("status") in ("complete", "incomplete") and manifest.get("journal_runs") == len(runs):
        # the journal as the last session left it, which counted its failed runs: a count that differs was changed
        failed = int((runs["status"] != "ok").sum()) if len(runs) else 0
        if "n_failed" in manifest and (error := failed_count_error(directory / MANIFEST, manifest, failed, JOURNAL)):
            raise error
    table = point_table(design, runs, manifest)
    summary = verdict_summary(table, manifest)
    found = discover(table, manifest)
    files = []
    for name, frame in ((TABLE, table), (SUMMARY, summary), (BOXES, boxes_frame(found, manifest))):
        atomic_write_text(directory / name, frame.to_csv(index=False))
        files.append(directory / name)
    atomic_write_text(directory / TRAJECTORIES, trajectories_frame(found).to_csv(index=False))
    atomic_write_text(directory / SCORES, scores_frame(found).to_csv(index=False))
    files += [directory / TRAJECTORIES, directory / SCORES]
    if plots:
        plot_dir = directory / "plots"
        for stale in plot_dir.glob("prim_*.png"):  # an earlier analysis's boxes
            stale.unlink()
        files.append(plot_shares(summary, manifest, plot_dir / SHARES_PLOT))
        for d in found:
            if d.boxes:
                files.append(plot_tradeoff(d, manifest, plot_dir / f"prim_tradeoff_{d.label}.png"))
                files.append(plot_box_limits(d, table, manifest, plot_dir / f"prim_box_{d.label}.png"))
    atomic_write_text(directory / MARKDOWN, render_markdown(manifest, summary, found, table))
    files.append(directory / MARKDOWN)
    _write_json(directory / MANIFEST, manifest)
    return {"table": table, "summary": summary, "discoveries": found, "files": files}


# --------------------------------------------------------------------------- command line


def cli_robustness(args) -> int:
    """`run.py robustness SCENARIO`: plan, start (or resume), run, analyse; print the shares and the directory.

    Options: `[--points N] [--replicates N] [--seed N] [--steps N] [--variant NAME ...]
    [--workers N] [--dask ADDR] [--set K=V ...] [--out DIR | --resume DIR]`.

    Everything that can be refused (the scenario and its variants, the ranges' ends, `--out`,
    a `--resume` directory of another scenario or of a changed job, the cluster) is checked
    before anything is written or run. Prints the share of points where each verdict holds
    and the directory; returns 0 (the shares are findings, not failures).

    Raises:
        ScenarioError, OutputError, RobustnessError, ExecutorError: bad input (exit status 2).
    """
    from sim.results import OutputError

    resume = getattr(args, "resume", None)
    out = getattr(args, "out", None)
    if resume is not None and out is not None:
        raise OutputError("give either --out or --resume")
    if out is not None:
        check_output_dir(Path(out))  # before the scenarios load: the quickest refusal first
    saved = load_manifest(resume) if resume is not None else {}

    def option(name: str):
        value = getattr(args, name, None)
        return value if value is not None else saved.get({"seed": "root_seed"}.get(name, name))

    given_variants = list(getattr(args, "variants", None) or [])
    if resume is not None and not given_variants:
        given_variants = [v["name"] for v in saved.get("variants", [])]
    overrides = list(getattr(args, "overrides", None) or [])
    plan = plan_robustness(
        args.scenario,
        variants=given_variants if (given_variants or resume is not None) else None,
        seed=option("seed"),
        steps=option("steps"),
        points=option("points"),
        replicates=option("replicates"),
        overrides=overrides,
    )
    workers = int(getattr(args, "workers", 1) or 1)
    dask = getattr(args, "dask", None)
    if resume is not None:
        claim = claim_output_dir(resume, existing=True)
    else:
        claim = claim_output_dir(Path(out) if out is not None else None, scenario=plan.scenario.name, kind="robustness")
    args.claimed = claim.directory  # for the message after an interruption
    with claim:  # one job per directory, from before the first run to the report
        if resume is not None:
            check_resume(resume, plan)
        backend = make_backend(workers, dask)  # reach the cluster before writing anything
        try:
            if resume is None and plan.steps != plan.scenario.steps:  # said once the job goes ahead
                import warnings

                # The verdicts' patterns are written for the scenario's runs (annual tolls, episodes, growth)
                warnings.warn(
                    f"the verdicts' patterns are written for {plan.scenario.name}'s {plan.scenario.steps}-day "
                    f"runs and are judged here on {plan.steps}-day runs (--steps): read them with that in mind",
                    stacklevel=2,
                )
            if resume is not None:
                directory = Path(resume)
            else:
                command = _command(plan, workers, dask, bool(getattr(args, "variants", None)))
                directory = start_robustness(plan, claim.directory, executor=backend.label, command=command)
        except BaseException:
            backend.close()
            raise
        counts = run_robustness(directory, plan, backend=backend)
        report = analyse_robustness(directory)
    summary = report["summary"]
    shown = summary[summary["kind"] == "verdict"]
    for r in shown.itertuples():
        interval = f"95% [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
        print(f"{r.verdict}: holds at {r.holds} of {r.points} points ({_fmt(r.share)}, {interval})")
    print(directory)
    sys.stdout.flush()
    if counts["failed"]:
        print(f"{counts['failed']} of {counts['total']} runs failed (see runs.csv)", file=sys.stderr)
    if counts["finished"] < counts["total"]:
        print(f"only {counts['finished']} of {counts['total']} runs finished: continue with --resume", file=sys.stderr)
    return 0
