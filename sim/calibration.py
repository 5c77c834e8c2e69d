"""Calibration: estimate assumed parameters from the article's figures by ABC rejection.

A scenario's `calibration:` section names the parameters to estimate (uniform or
log-uniform priors), the summary statistics (outcomes computed per run, `sim.outcomes`)
with the article's values as targets, how many prior draws to run, and optionally
posterior predictive checks on statistics it does not fit (`sim.posterior`):

    calibration:
      design: lhs                 # lhs | random: how the prior draws are spread
      samples: 300                # prior draws
      replicates: 4               # runs per draw (the distance uses their mean statistics)
      accept: 0.1                 # fraction of draws kept: the closest to the targets
      steps: 365                  # days per run (default: the scenario's steps)
      parameters:
        rules.clashes.lethality: {low: 0.01, high: 0.08}
        rules.clashes.p_max: {low: 0.001, high: 0.01, log: true}
      statistics:
        - {outcome: killed_window_peak, target: targets.killed_min, scale: 10}
        - {outcome: wounded_window_peak, target: targets.wounded, scale: 15}
      predictive:                 # optional: checks on statistics not fitted
        replicates: 4             # new runs per kept draw
        checks:
          - {outcome: annual_clash_toll, band: [30, 400], basis: assumption, why: "..."}

Approximate Bayesian computation by rejection (Pritchard et al. 1999; Beaumont et al. 2002):
draw parameter values from the prior, run the model `replicates` times at each, compute the
statistics, average each over the draw's runs, and keep the `accept` fraction of draws whose
mean statistics are closest to the targets, by the distance

    d = sum over statistics of ((mean statistic - target) / scale) ** 2

The kept draws are a sample of the ABC posterior; its median and 5-95 % quantiles (the 90 %
credible interval) are reported. `scale` says how far from the target a statistic may be
and still count as close (e.g. the uncertainty of the article's figure or the run-to-run
spread of the statistic); with few statistics it matters little, with several it weighs
them against each other. A draw with a statistic that is NaN (e.g. no clash ever at the
site of `first_clash_wounded.<site>`) is infinitely far: it is never kept.

The draws run as a sweep (`sim.sweep`): `out/sweep/` is an ordinary sweep directory, so the
calibration runs on the same executors (`sim.executors`: serial, local processes, Dask),
streams every run to `runs.jsonl`, and resumes after a crash (`resume=True`). Unlike a
default sweep, every draw and replicate gets its own seed: the sweep has `seeds:
independent` (`sim.seeding.run_seed(root, draw, replicate)`, listed in `sweep/design.csv`).
ABC needs the model's randomness to vary between draws, or the posterior would describe one
random stream rather than the model.

Replicates: a draw's statistics are the means over its runs (a run without the statistic,
e.g. no clash at Buqrus, leaves it to the draw's other runs; a draw without it in any run is
never kept), and the distance is computed from those means, so its run-to-run spread falls
about as 1/sqrt(replicates) and the ranking of draws follows the parameters more and the
noise less. What this fits is the parameters at which the *average* run matches the
article's figures (as the method of simulated moments does). The article's figures are one
observation, not an average: the kept draws are narrower than an ABC posterior given a
single observation, which would also keep draws where the observation is merely a plausible
single run. The posterior predictive checks, on single runs, show that run-to-run spread.
ABC-SMC (e.g. pyabc) would reach a smaller threshold with the same runs; it is not used
here because its parallel samplers accept particles in the order workers finish, so the
result depends on the number of workers and their timing (pyabc documents its single-core
sampler for deterministic runs), and because with three parameters and a tenth of the prior
kept, rejection over a Latin hypercube already places tens of draws in the posterior.

A window outcome written without its length (`killed_window_peak`) gets the scenario's
`targets.window_days`. A target may be a number or a reference such as `targets.killed_min`.

Files written into `out/`: `posterior.csv` (kept draws: parameters, mean statistics,
distance), `draws.csv` (every draw, with `accepted`), `calibration.json` (priors, posterior
medians and intervals, threshold, seeds, versions, the predictive checks), `plots/` and
`calibrated.yaml`: a scenario that `extends` the calibrated one and sets the parameters to
the posterior medoid (`calibration.point`, default: the kept draw with the least summed
distance to the others, `posterior_medoid`; or each parameter's median), with a
`provenance:` entry citing the targets, the draws and replicates, the value written, the
median and its interval. With `predictive:`, also `predictive/` (the new
runs, a sweep directory), `predictive.csv` and `plots/predictive.png` (`sim.posterior`).
`run.py run SCENARIO --posterior out/` runs a posterior ensemble: replicate k at kept draw k.
draws.csv, posterior.csv, predictive.csv and the plots are the same for the same root seed
whatever the executor or number of workers (calibration.json and calibrated.yaml also record
dates and versions); `resume=True` continues a calibration, or its predictive runs, after a
crash, and refuses one whose calibration section, scenario, seed or steps differ
(`check_calibration_resume`). The output directory is claimed for the whole job
(`sim.results.claim_output_dir`) and its start (sweep directory and spec) is staged and
renamed into place, so a kill during the start leaves nothing or a resumable calibration.
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from sim import keypath
from sim.executors import Backend, make_backend
from sim.figures import BLUE, GREY, VERMILLION, Provenance, new_figure, save_png
from sim.outcomes import outcome_label, outcome_name
from sim.posterior import (
    PREDICTIVE_DIR,
    PREDICTIVE_STAGE,
    ResolvedCheck,
    plot_predictive,
    resolve_checks,
    run_predictive,
    summarise_predictive,
    write_predictive_table,
)
from sim.results import (
    OutputError,
    atomic_write_text,
    claim_output_dir,
    default_output_dir,
    display_path,
    git_commit,
    read_manifest,
    results_dir_problem,
    versions,
    write_staged,
)
from sim.scenario import (
    calibration_problems,
    check_override_names,
    check_overrides_not_varied,
    not_a_scenario,
    resolve_scenario_path,
    scenario_file,
    scenario_to_dict,
    target_value,
    validate_document,
    validation_problems,
)
from sim.schema import Calibration, Scenario, Statistic, Sweep, SweepRange, Targets, parameter_label
from sim.sweep import (
    SweepError,
    differences,
    load_sweep,
    read_outcomes,
    resume_differences,
    run_sweep,
    start_sweep,
    summarise_differences,
)
from sim.yaml_source import (
    SCENARIO_SUFFIXES,
    Problem,
    ScenarioError,
    SourcedDocument,
    apply_overrides,
    dump_yaml,
    load_scenario_document,
    override_key,
)

__all__ = [
    "Calibration",
    "CalibrationResult",
    "Statistic",
    "calibrate",
    "calibration_problems",
    "cli_calibrate",
    "default_calibration_dir",
    "format_table",
    "load_calibration",
    "resolve_statistics",
]

KIND = "faction-sim calibration"
SECTION = "calibration"
SPEC_FILE = "calibration_spec.json"  # written once the calibration's sweep is set up
SWEEP_SUBDIR = "sweep"
METHOD = "ABC rejection"
QUANTILES = (0.05, 0.5, 0.95)


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ResolvedStatistic:
    """A calibration statistic ready to compare: its outcome as computed, its target as a number, its scale.

    Each statistic adds ((value - target) / scale)^2 to a draw's distance (`distances`).
    """

    name: str  # the outcome name as computed (a window outcome with its length)
    written: str  # the outcome as written in the calibration section
    target: float
    target_source: str  # "targets.killed_min" or "number"
    scale: float

    def as_dict(self) -> dict:
        """The statistic as JSON-ready data (for calibration.json): outcome, written, target, target_source, scale."""
        return {
            "outcome": self.name,
            "written": self.written,
            "target": self.target,
            "target_source": self.target_source,
            "scale": self.scale,
        }


def resolve_statistics(scenario: Scenario, calibration: Calibration) -> list[ResolvedStatistic]:
    """The statistics with outcome names completed and targets looked up; ScenarioError if invalid."""
    doc = SourcedDocument(data={}, origins={}, main_file="<calibration>")
    problems = calibration_problems(scenario, calibration, doc)
    if problems:
        raise ScenarioError(problems)
    out = []
    for stat in calibration.statistics:
        value, source, _ = target_value(stat.target, scenario)
        out.append(ResolvedStatistic(outcome_name(stat.outcome, scenario), stat.outcome, value, source, stat.scale))
    return out


# --------------------------------------------------------------------------- loading


def parse_calibration(raw: Any, doc: SourcedDocument) -> tuple[Calibration | None, list[Problem]]:
    """The `calibration:` section validated, or the problems with it (file, line, key path)."""
    try:
        return Calibration.model_validate(raw), []
    except ValidationError as error:
        return None, validation_problems(error, doc, Calibration, prefix=(SECTION,))


def _document_without_calibration(path: str | Path) -> tuple[SourcedDocument, Any]:
    """The scenario file without its `calibration:` section, and the section (None if it has none).

    Raises:
        ScenarioError: the file is no scenario (a manifest.json, a results file): one line, as
            every command says it (`sim.scenario.not_a_scenario`), not "no `calibration:` section".
    """
    document = load_scenario_document(str(path))
    if (problem := not_a_scenario(document)) is not None:
        raise ScenarioError([problem])
    raw = document.data.pop(SECTION, None)
    return document, raw


def load_calibration(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Scenario, Calibration]:
    """Read a scenario file with a `calibration:` section: (scenario, calibration).

    The scenario is validated without its calibration section; the section is validated
    here. Every problem (scenario or calibration) becomes one line with file, line and key
    path, raised together as a ScenarioError.
    """
    path = scenario_file(path)
    document, raw = _document_without_calibration(path)
    if raw is None:
        raise ScenarioError([document.problem((), "no `calibration:` section (see scenarios/calibrate_baseline.yaml)")])
    if overrides:
        # The section is read apart (`_document_without_calibration`): a --set inside it would
        # start a new, empty one in the scenario and lose the file's
        inside = [o for o in overrides if (override_key(o) or ("",))[0] == "calibration"]
        if inside:
            key = keypath.join(override_key(inside[0]))
            why = "the calibration section is not set with --set: edit `calibration:` in the file"
            raise ScenarioError([Problem("--set", key, None, why)])
        check_override_names(document, overrides)
        document = apply_overrides(document, list(overrides))
    problems: list[Problem] = []
    scenario = None
    try:
        scenario = validate_document(document)
    except ScenarioError as error:
        problems.extend(error.problems)
    calibration, section_problems = parse_calibration(raw, document)
    problems.extend(section_problems)
    if calibration is not None:  # each draw's values replace the scenario's: a --set on one would be ignored
        try:
            check_overrides_not_varied(
                overrides, calibration.parameters, "estimated by the calibration", "`calibration.parameters`"
            )
        except ScenarioError as error:
            problems.extend(error.problems)
    if scenario is not None and calibration is not None:
        problems.extend(calibration_problems(scenario, calibration, document))
    if problems:
        raise ScenarioError(problems)
    return scenario, calibration


def load_scenario_ignoring_calibration(path: str | Path) -> Scenario:
    """A scenario file validated without any `calibration:` section.

    For files such as calibrated.yaml, which extends a file with that section: the schema
    does not know the section, so it is set aside before validation.

    Raises:
        ScenarioError: the rest of the file is not a valid scenario.
    """
    document, _ = _document_without_calibration(scenario_file(path))
    return validate_document(document)


# --------------------------------------------------------------------------- running


@dataclass
class CalibrationResult:
    """What a calibration wrote (`calibrate`, `analyse_calibration`).

    Attributes:
        directory: the calibration's output directory.
        draws: every prior draw: point, parameters, mean statistics, n_runs (runs that
            finished ok), distance (inf if a statistic is missing), accepted.
        posterior: the kept draws, closest first.
        summary: what calibration.json holds (priors, posterior quantiles, threshold, seeds...).
        calibrated_file: the calibrated scenario written (calibrated.yaml).
    """

    directory: Path
    draws: pd.DataFrame  # every draw: point, parameters, statistics, n_runs, distance, accepted
    posterior: pd.DataFrame  # the kept draws, closest first
    summary: dict  # what calibration.json holds
    calibrated_file: Path

    def table(self) -> pd.DataFrame:
        """One row per parameter: prior range, posterior median and 90 % credible interval."""
        rows = []
        for key, p in self.summary["parameters"].items():
            prior = p["prior"]
            rows.append(
                {
                    "parameter": key,
                    "prior": f"[{prior['low']:.4g}, {prior['high']:.4g}]" + (" log" if prior["log"] else ""),
                    "median": p["posterior"]["median"],
                    "q05": p["posterior"]["q05"],
                    "q95": p["posterior"]["q95"],
                    "written": p["calibrated_value"],
                }
            )
        return pd.DataFrame(rows)


def default_calibration_dir(scenario_name: str) -> Path:
    """A new `results/<scenario>/calibration-<UTC timestamp>[-N]` path (`sim.results.default_output_dir`)."""
    return default_output_dir(scenario_name, kind="calibration")


def build_sweep(
    calibration: Calibration, statistics: list[ResolvedStatistic], checks: list[ResolvedCheck] = ()
) -> Sweep:
    """The sweep that runs the prior draws: every draw and replicate with its own seed.

    Its outputs are the statistics, then the predictive checks' outcomes (their values at the
    prior draws are the prior predictive distribution; they play no part in the distance).
    """
    outputs = [s.name for s in statistics]
    outputs += [c.name for c in checks if c.name not in outputs]
    return Sweep(
        parameters=dict(calibration.parameters),
        design=calibration.design,
        samples=calibration.samples,
        replicates=calibration.replicates,
        seeds="independent",  # ABC needs the noise to vary between draws (module notes)
        outputs=outputs,
    )


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def _comparable(scenario: Scenario | dict) -> dict:
    data = scenario_to_dict(scenario) if isinstance(scenario, Scenario) else dict(scenario)
    return {k: v for k, v in data.items() if k not in ("sweep", SECTION)}


def calibrate(
    scenario: Scenario,
    calibration: Calibration,
    *,
    out: str | Path,
    workers: int = 1,
    dask: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    steps: int | None = None,
    scenario_file: str | Path | None = None,
    backend: Backend | None = None,
    plots: bool = True,
    overrides: Sequence[str] = (),
) -> CalibrationResult:
    """Run (or resume) an ABC-rejection calibration into `out`; see the module notes.

    `scenario_file` is the file `calibrated.yaml` extends (without it, calibrated.yaml holds
    the whole resolved scenario). `overrides` are the `--set`s already applied to `scenario`,
    recorded (calibration.json, figure footers) as the job's. `backend` (from `sim.executors.make_backend`) may be made
    beforehand; otherwise one is made from `workers` and `dask`. It is closed at the end.
    """
    out = Path(out)
    sweep_dir = out / SWEEP_SUBDIR
    try:
        statistics = resolve_statistics(scenario, calibration)
        checks = resolve_checks(scenario, calibration.predictive) if calibration.predictive else []
        spec = {
            "kind": KIND,
            "scenario": scenario.name,
            "scenario_file": str(Path(scenario_file).resolve()) if scenario_file else None,
            "calibration": calibration.model_dump(mode="json"),
            "statistics": [s.as_dict() for s in statistics],
        }
        config = scenario.model_copy(update={"sweep": build_sweep(calibration, statistics, checks)})
        # One job per directory, claimed before any run (a no-op if the caller holds it).
        with claim_output_dir(out, existing=resume):
            if resume:
                spec = check_calibration_resume(out, spec, config, seed=seed, steps=steps)
            else:
                root = scenario.seed if seed is None else int(seed)
                if steps is None:
                    steps = calibration.steps
                if backend is None:
                    backend = make_backend(workers, dask)  # reach the cluster before writing anything
                spec.update(
                    overrides=list(overrides),
                    root_seed=root,
                    steps=scenario.steps if steps is None else int(steps),
                    started_utc=datetime.now(UTC).isoformat(timespec="seconds"),
                )
                label = backend.label

                def fill(stage: Path) -> None:
                    start_sweep(
                        config,
                        out=stage / SWEEP_SUBDIR,
                        root_seed=root,
                        steps=steps,
                        scenario_file=str(scenario_file) if scenario_file else None,
                        overrides=list(overrides),  # the rerun commands repeat them (applied already)
                        executor_name=label,
                    )
                    _write_json(stage / SPEC_FILE, spec)

                # Staged, then renamed: a kill at any moment of the start leaves nothing or a
                # calibration that `resume=True` continues.
                write_staged(out, fill)
            if backend is None:
                backend = make_backend(workers, dask)
            run_sweep(sweep_dir, backend=backend, close_backend=False)
            result = analyse_calibration(out, scenario, calibration, statistics, spec, plots=plots)
            if checks:
                posterior_predictive(result, scenario, calibration, checks, backend=backend, plots=plots)
            return result
    finally:
        if backend is not None:
            backend.close()


def check_calibration_resume(
    out: Path, spec: dict, config: Scenario, *, seed: int | None = None, steps: int | None = None
) -> dict:
    """Refuse to resume a calibration these inputs would not have started; returns its saved spec.

    Compares the calibration section, the scenario (`sim.sweep.resume_differences` on the
    calibration's sweep, with the sweep section the calibration gives), and the seed and
    steps when given (None accepts the saved ones).

    Raises:
        SweepError: not a calibration directory (another kind named:
            `sim.results.results_dir_problem`), another scenario's, or any difference (all
            listed on one line).
    """
    out = Path(out)
    if (problem := results_dir_problem(out, KIND)) is not None:  # no such directory, a sweep's...
        raise SweepError(problem)
    if not (out / SPEC_FILE).is_file():
        raise SweepError(f"{out}: not a calibration directory (no {SPEC_FILE})")
    saved = read_manifest(out / SPEC_FILE, KIND)  # a damaged file: ResultFileError, exit 2
    if not isinstance(saved, dict) or saved.get("kind") != KIND or saved.get("scenario") != config.name:
        scenario = saved.get("scenario") if isinstance(saved, dict) else None
        raise SweepError(f"{out}: belongs to scenario '{scenario}', not '{config.name}'")
    section = [f"calibration: {d}" for d in differences(saved.get("calibration"), spec["calibration"])]
    found = resume_differences(out / SWEEP_SUBDIR, config, root_seed=seed, steps=steps)
    # The sweep section is made from the calibration section: its differences are listed there.
    found = section + [d for d in found if not (d.startswith("scenario: sweep.") and section)]
    if found:
        reason = "the calibration section has changed since this calibration started" if section else (
            "not the calibration these inputs define"
        )
        raise SweepError(
            f"{out}: cannot resume: {reason} ({summarise_differences(found)}); "
            "resume with the scenario and options it started with, or start a new calibration"
        )
    return saved


# --------------------------------------------------------------------------- analysis


def _prior_quantile(prior: SweepRange, q: float) -> float:
    if prior.log:
        return float(math.exp(math.log(prior.low) + q * (math.log(prior.high) - math.log(prior.low))))
    return float(prior.low + q * (prior.high - prior.low))


def _width(a: float, b: float, log: bool) -> float:
    return math.log(b) - math.log(a) if log else b - a


def _round_value(value: float, prior: SweepRange) -> float | int:
    """The value written into calibrated.yaml, clipped to the prior range.

    Four significant digits (the Monte Carlo error is larger), whole numbers for integer parameters.
    """
    if prior.integer:
        return int(min(max(round(value), math.ceil(prior.low)), math.floor(prior.high)))
    rounded = float(f"{value:.4g}")
    return float(min(max(rounded, prior.low), prior.high))


def distances(values: pd.DataFrame, statistics: list[ResolvedStatistic]) -> np.ndarray:
    """sum(((statistic - target) / scale)^2) per row; inf where a statistic is missing (NaN)."""
    total = np.zeros(len(values))
    for s in statistics:
        x = values[s.name].to_numpy(dtype=float)
        total = total + ((x - s.target) / s.scale) ** 2
    return np.where(np.isfinite(total), total, np.inf)


def _unit(values: np.ndarray, prior: SweepRange) -> np.ndarray:
    """Values on the prior's unit scale: (x - low) / (high - low), in log space for a log prior."""
    if prior.log:
        return (np.log(values) - np.log(prior.low)) / (np.log(prior.high) - np.log(prior.low))
    return (values - prior.low) / (prior.high - prior.low)


def posterior_medoid(posterior: pd.DataFrame, calibration: Calibration) -> pd.Series:
    """The medoid of the kept draws: the draw with the least summed Euclidean distance to the others.

    Distances are on each prior's unit scale (log for a log prior), so no parameter weighs more
    for its units. A multivariate median that is itself a kept draw: where the statistics pin a
    combination of parameters (a ridge: fewer, deadlier clashes fit as well as more, milder
    ones), it lies on the ridge, where each parameter's own median need not. Ties go to the
    draw listed first (closest to the targets).

    Returns:
        The medoid's row of `posterior` (parameters, statistics, point, distance).
    """
    keys = list(calibration.parameters)
    unit = np.column_stack([_unit(posterior[k].to_numpy(dtype=float), calibration.parameters[k]) for k in keys])
    summed = np.sqrt(((unit[:, None, :] - unit[None, :, :]) ** 2).sum(axis=-1)).sum(axis=1)
    return posterior.iloc[int(np.argmin(summed))]


def analyse_calibration(
    out: Path,
    scenario: Scenario,
    calibration: Calibration,
    statistics: list[ResolvedStatistic],
    spec: dict,
    *,
    plots: bool = True,
) -> CalibrationResult:
    """Read the finished sweep, keep the closest draws, write the calibration's files."""
    out = Path(out)
    sweep_dir = out / SWEEP_SUBDIR
    keys = list(calibration.parameters)
    names = [s.name for s in statistics]
    manifest, swept, design = load_sweep(sweep_dir)  # every file checked (sim.results)
    runs = read_outcomes(sweep_dir, manifest, swept)
    n_runs_expected = len(design)
    if len(runs) < n_runs_expected:
        raise SweepError(f"{sweep_dir}: only {len(runs)} of {n_runs_expected} runs finished; resume to complete it")
    ok = runs[runs["status"] == "ok"]
    points = design[design["replicate"] == 0][["point", *keys]].set_index("point").sort_index()
    means = ok.groupby("point")[names].mean() if len(ok) else pd.DataFrame(columns=names)  # NaN-skipping mean
    n_ok = ok.groupby("point").size() if len(ok) else pd.Series(dtype=int)
    draws = points.join(means, how="left")
    draws["n_runs"] = n_ok.reindex(draws.index).fillna(0).astype(int)
    draws["distance"] = distances(draws, statistics)
    draws = draws.reset_index()
    order = draws.sort_values(["distance", "point"], kind="stable")
    finite = order[np.isfinite(order["distance"])]
    n_keep = calibration.n_accepted(len(draws))
    if finite.empty:
        raise SweepError(
            f"{sweep_dir}: no draw produced every statistic ({', '.join(names)}); see outcomes.csv for failed runs"
        )
    kept = finite.head(n_keep)
    draws["accepted"] = draws["point"].isin(kept["point"])
    posterior = kept.reset_index(drop=True)
    threshold = float(kept["distance"].max())

    medoid = posterior_medoid(posterior, calibration)
    parameters = {}
    for key, prior in calibration.parameters.items():
        values = posterior[key].to_numpy(dtype=float)
        q05, median, q95 = (float(v) for v in np.quantile(values, QUANTILES))
        p05, p95 = _prior_quantile(prior, 0.05), _prior_quantile(prior, 0.95)
        parameters[key] = {
            "prior": {
                "distribution": "log-uniform" if prior.log else "uniform",
                "low": prior.low,
                "high": prior.high,
                "log": prior.log,
                "integer": prior.integer,
                "interval_90": [p05, p95],
            },
            "posterior": {
                "median": median,
                "q05": q05,
                "q95": q95,
                "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "medoid": float(medoid[key]),
            },
            # 90 % interval width over the prior's (in log space for log priors): < 1 means the data informed it
            "interval_width_ratio": _width(q05, q95, prior.log) / _width(p05, p95, prior.log),
            "calibrated_value": _round_value(float(medoid[key]) if calibration.point == "medoid" else median, prior),
        }
    # Rank correlations between parameters among the kept draws: a strong one is a ridge (the
    # statistics pin down a combination of the parameters better than each one alone).
    correlation = (
        posterior[keys].corr(method="spearman").round(4).fillna(0.0).to_dict()
        if len(keys) > 1 and len(posterior) > 2
        else {}
    )
    stats_summary = []
    for s in statistics:
        every = draws[s.name].to_numpy(dtype=float)
        every = every[np.isfinite(every)]
        keep = posterior[s.name].to_numpy(dtype=float)
        stats_summary.append(
            {
                **s.as_dict(),
                "accepted": _quantile_dict(keep),
                "all_draws": _quantile_dict(every),
                "missing_draws": int(draws[s.name].isna().sum()),
            }
        )
    now = datetime.now(UTC)
    summary = {
        "kind": KIND,
        "method": METHOD,
        "scenario": scenario.name,
        "scenario_file": display_path(spec["scenario_file"]) if spec.get("scenario_file") else None,
        "design": calibration.design,
        "n_draws": int(len(draws)),
        "replicates": calibration.replicates,
        "n_runs": int(len(runs)),
        "n_failed_runs": int((runs["status"] != "ok").sum()),
        "n_draws_missing_statistics": int((~np.isfinite(draws["distance"])).sum()),
        "accept_fraction": calibration.accept,
        "n_accepted": int(len(posterior)),
        "point": calibration.point,
        "medoid_point": int(medoid["point"]) if "point" in medoid else None,
        "distance": "sum over statistics of ((statistic - target) / scale)^2; statistics averaged over replicates",
        "threshold_distance": threshold,
        "parameters": parameters,
        "posterior_rank_correlation": correlation,
        "statistics": stats_summary,
        "overrides": list(spec.get("overrides") or []),
        "root_seed": int(spec["root_seed"]),
        "steps": int(spec["steps"]),
        "seeds": "every draw and replicate has its own seed: sweep/design.csv[seed] "
        "(SeedSequence(root_seed, spawn_key=(point, replicate)))",
        "rerun_draw": manifest.get("rerun_point"),
        "sweep_dir": SWEEP_SUBDIR,
        "versions": versions(),
        "git_commit": git_commit(),
        "started_utc": spec.get("started_utc"),
        "finished_utc": now.isoformat(timespec="seconds"),
    }
    atomic_write_text(out / "draws.csv", draws.to_csv(index=False))
    atomic_write_text(out / "posterior.csv", posterior.drop(columns=["accepted"], errors="ignore").to_csv(index=False))
    calibrated = write_calibrated_scenario(out, scenario, calibration, statistics, summary, spec, now)
    summary["calibrated_file"] = calibrated.name
    _write_json(out / "calibration.json", summary)
    if plots:
        plot_calibration(out, draws, posterior, calibration, statistics, summary)
    return CalibrationResult(out, draws, posterior, summary, calibrated)


def posterior_predictive(
    result: CalibrationResult,
    scenario: Scenario,
    calibration: Calibration,
    checks: list[ResolvedCheck],
    *,
    backend: Backend,
    plots: bool = True,
) -> pd.DataFrame:
    """Run the predictive checks of a finished calibration (`sim.posterior`); returns predictive.csv's table.

    New runs at every kept draw (`predictive.replicates` each, in `out/predictive/`, resumed
    if there) give the posterior predictive distribution; the calibration's own runs at every
    prior draw give the prior predictive one. Writes predictive.csv and plots/predictive.png,
    and adds a `predictive` entry to calibration.json (and to `result.summary`). The backend
    is left open.
    """
    out = result.directory
    summary = result.summary
    keys = list(calibration.parameters)
    replicates = calibration.predictive.replicates
    posterior_runs = run_predictive(
        out / PREDICTIVE_DIR,
        scenario=scenario,
        parameters=dict(calibration.parameters),
        kept=result.posterior[["point", *keys]],
        checks=checks,
        root_seed=summary["root_seed"],
        steps=summary["steps"],
        replicates=replicates,
        backend=backend,
    )
    prior_manifest, prior_config, _ = load_sweep(out / SWEEP_SUBDIR)
    prior_runs = read_outcomes(out / SWEEP_SUBDIR, prior_manifest, prior_config)
    prior_runs = prior_runs[prior_runs["status"] == "ok"]
    distributions = {"prior": prior_runs, "posterior": posterior_runs}
    table = summarise_predictive(distributions, checks)
    write_predictive_table(out / "predictive.csv", table)
    summary["predictive"] = {
        "checks": [c.as_dict() for c in checks],
        "replicates_per_draw": replicates,
        "n_runs": int(len(posterior_runs)),
        "seeds": f"predictive/design.csv[seed]: run_seed(stage_root(root_seed, '{PREDICTIVE_STAGE}'), point, "
        "replicate) (sim.seeding): no predictive run repeats a calibration run",
        "prior": "the calibration's own runs, one value per run, at every prior draw (sweep/outcomes.csv)",
        "p_value": "two-sided predictive p-value 2 min(P(T >= observed), P(T <= observed)) over runs",
        "table": json.loads(table.to_json(orient="records")),
    }
    _write_json(out / "calibration.json", summary)
    if plots:
        provenance = Provenance.from_manifest(
            summary,
            replicates=replicates,
            seeds_note=f"one seed per run, predictive/design.csv, stage '{PREDICTIVE_STAGE}'",
        )
        text = provenance.footer(
            f"{summary['n_accepted']} kept draws x {replicates} new runs",
            f"prior: {summary['n_runs']} runs at {summary['n_draws']} draws",
        )
        plot_predictive(out / "plots" / "predictive.png", distributions, checks, table, text)
    return table


def _quantile_dict(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"n": 0, "median": None, "q05": None, "q95": None}
    q05, median, q95 = (float(v) for v in np.quantile(values, QUANTILES))
    return {"n": int(len(values)), "median": median, "q05": q05, "q95": q95}


# --------------------------------------------------------------------------- calibrated.yaml


def _nested(pairs: dict[str, Any]) -> dict:
    """{"a.b.c": 1} -> {"a": {"b": {"c": 1}}}."""
    root: dict = {}
    for dotted_path, value in pairs.items():
        keypath.set(root, dotted_path, value, create=True)
    return root


def _sources(statistics: list[ResolvedStatistic]) -> str:
    """'article §4, §13' from the targets' help texts, plus any targets given as numbers."""
    paragraphs: list[int] = []
    numbers = []
    for s in statistics:
        if s.target_source.startswith("targets."):
            help_text = Targets.model_fields[s.target_source.split(".", 1)[1]].description or ""
            found = [int(p) for p in re.findall(r"§(\d+)", help_text)]
            paragraphs += found
            if not found:
                numbers.append(f"{s.target_source}={s.target:g}")
        else:
            numbers.append(f"{s.name}={s.target:g}")
    parts = []
    if paragraphs:
        parts.append("article " + ", ".join(f"§{p}" for p in sorted(set(paragraphs))))
    if numbers:
        parts.append("targets " + ", ".join(numbers))
    return " and ".join(parts)


def _point_words(summary: dict) -> str:
    """How the calibrated values were chosen, in words: 'posterior medoid' or 'posterior median'."""
    return "posterior medoid" if summary.get("point", "median") == "medoid" else "posterior median"


def write_calibrated_scenario(
    out: Path,
    scenario: Scenario,
    calibration: Calibration,
    statistics: list[ResolvedStatistic],
    summary: dict,
    spec: dict,
    now: datetime,
) -> Path:
    """`calibrated.yaml`: the calibrated scenario with the parameters at the posterior point (`calibration.point`).

    It `extends` the scenario file (by a relative path) when that file still resolves to the
    calibrated scenario; otherwise (no file, a file not named *.yaml/*.yml, which `extends:`
    refuses, or the file changed) it holds the whole scenario.
    """
    values = {key: p["calibrated_value"] for key, p in summary["parameters"].items()}
    resolved = _comparable(scenario)
    for key, value in values.items():
        keypath.set(resolved, key, value)
    # A path through a list cannot be merged key by key: write the whole list.
    written: dict[str, Any] = {}
    for key in values:
        parts = key.split(".")
        prefix = next(
            (
                ".".join(parts[:i])
                for i in range(1, len(parts))
                if isinstance(keypath.get(resolved, ".".join(parts[:i])), list)
            ),
            key,
        )
        written[prefix] = keypath.get(resolved, prefix)
    date = now.strftime("%Y-%m-%d")
    provenance = {
        key: (
            f"calibrated to {_sources(statistics)} by {METHOD}, {summary['n_draws']} draws x "
            f"{summary['replicates']} replicates of {summary['steps']} days, {summary['n_accepted']} kept: "
            f"{_point_words(summary)} {p['calibrated_value']:.4g}; posterior median "
            f"{p['posterior']['median']:.4g} [5-95%: {p['posterior']['q05']:.4g}, "
            f"{p['posterior']['q95']:.4g}] (run.py calibrate, {date})"
        )
        for key, p in summary["parameters"].items()
    }
    name = f"{re.sub(r'^calibrate_', '', scenario.name)}_calibrated"[:64]
    short = ", ".join(k.rsplit(".", 1)[-1] for k in values)
    description = f"{scenario.name} with {short} at the ABC {_point_words(summary)}"[:300]
    source = spec.get("scenario_file")
    extends = None
    has_section = False
    # `extends:` takes only a file named *.yaml/*.yml: any other holds the whole scenario.
    if source and Path(source).suffix.lower() in SCENARIO_SUFFIXES and Path(source).exists():
        try:
            document, raw = _document_without_calibration(source)
            has_section = raw is not None
            if _comparable(validate_document(document)) == _comparable(scenario):
                extends = os.path.relpath(Path(source).resolve(), out.resolve()).replace(os.sep, "/")
        except ScenarioError:
            extends = None
    header = [
        f"# Calibrated scenario written by `run.py calibrate` on {date} ({METHOD}).",
        f"# {summary['n_accepted']} of {summary['n_draws']} prior draws kept (distance <= "
        f"{summary['threshold_distance']:.4g}); the parameters are set to the {_point_words(summary)}.",
        "# Statistics and targets: " + "; ".join(f"{s.name} -> {s.target:g} (scale {s.scale:g})" for s in statistics),
        "# Details: calibration.json, posterior.csv and plots/ beside this file.",
    ]
    if extends is not None:
        data: dict[str, Any] = {"extends": extends, "name": name, "description": description}
        data.update(_nested(written))
        if has_section:
            data[SECTION] = None  # the calibrated scenario is not itself a calibration spec
        data["provenance"] = provenance
    else:
        header.append("# The whole scenario is written out: it no longer matches a scenario file.")
        data = {**resolved, "name": name, "description": description}
        data["provenance"] = {**resolved.get("provenance", {}), **provenance}
    text = "\n".join(header) + "\n\n" + dump_yaml(data, sort_keys=False, allow_unicode=True, width=2**31)
    path = out / "calibrated.yaml"
    atomic_write_text(path, text)
    load_scenario_ignoring_calibration(path)  # what we wrote must validate (raises ScenarioError otherwise)
    return path


# --------------------------------------------------------------------------- plots


DPI = 120
PRIOR_COLOUR, POSTERIOR_COLOUR, TARGET_COLOUR = GREY, BLUE, VERMILLION


def _figure(width: float, height: float, footer_text: str):
    return new_figure(width, height, footer=footer_text, pad=3 / 72)  # matplotlib's default pad, 3 points


def _log_axis(ax, which: str) -> None:
    """A log axis labelled with plain numbers (0.002, 0.005, 0.01), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _bins(prior: SweepRange, n: int) -> np.ndarray:
    if prior.log:
        return np.geomspace(prior.low, prior.high, n + 1)
    return np.linspace(prior.low, prior.high, n + 1)


def plot_calibration(
    out: Path,
    draws: pd.DataFrame,
    posterior: pd.DataFrame,
    calibration: Calibration,
    statistics: list[ResolvedStatistic],
    summary: dict,
) -> list[Path]:
    """posterior_<param>.png per parameter, pairs.png (>= 2 parameters), statistics.png."""
    plots = Path(out) / "plots"
    written = []
    n_keep, n_all = len(posterior), len(draws)
    kept = f"{METHOD}, {n_keep} of {n_all} draws kept (distance <= {summary['threshold_distance']:.3g})"
    provenance = Provenance.from_manifest(summary, seeds_note="one seed per draw and replicate, sweep/design.csv")
    footer_text = provenance.footer(f"replicates per draw; {kept}")
    n_bins = int(np.clip(round(math.sqrt(max(n_keep, 1)) * 1.5), 6, 30))
    for key, prior in calibration.parameters.items():
        info = summary["parameters"][key]
        fig = _figure(6.4, 4.2, footer_text)
        ax = fig.subplots()
        values = posterior[key].to_numpy(dtype=float)
        bins = _bins(prior, n_bins)
        if prior.log:
            _log_axis(ax, "x")
            # densities per unit log10(x), so a log-uniform prior is flat
            logs = np.log10(values)
            edges = np.log10(bins)
            heights, _ = np.histogram(logs, bins=edges, density=True)
            ax.bar(
                bins[:-1],
                heights,
                width=np.diff(bins),
                align="edge",
                color=POSTERIOR_COLOUR,
                alpha=0.55,
                label=f"posterior ({n_keep} kept draws)",
            )
            prior_density = 1.0 / (math.log10(prior.high) - math.log10(prior.low))
            ax.set_ylabel("density per unit log10")
        else:
            ax.hist(
                values,
                bins=bins,
                density=True,
                color=POSTERIOR_COLOUR,
                alpha=0.55,
                label=f"posterior ({n_keep} kept draws)",
            )
            prior_density = 1.0 / (prior.high - prior.low)
            ax.set_ylabel("density")
        ax.plot(
            [prior.low, prior.high],
            [prior_density, prior_density],
            color=PRIOR_COLOUR,
            lw=2,
            label=f"prior ({info['prior']['distribution']})",
        )
        post = info["posterior"]
        ax.axvspan(
            post["q05"],
            post["q95"],
            color=POSTERIOR_COLOUR,
            alpha=0.12,
            label=f"90% interval [{post['q05']:.3g}, {post['q95']:.3g}]",
        )
        ax.axvline(post["median"], color="black", lw=1.5, label=f"median {post['median']:.3g}")
        ax.set_xlim(prior.low, prior.high)
        ax.set_xlabel(textwrap.fill(parameter_label(key), 70))
        ax.set_title("Posterior of the calibrated parameter", fontsize=11)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(True, color="#DDDDDD", lw=0.6)
        ax.set_axisbelow(True)
        written.append(save_png(fig, plots / f"posterior_{_file_part(key)}.png", dpi=DPI))

    keys = list(calibration.parameters)
    if len(keys) >= 2:
        d = len(keys)
        fig = _figure(2.6 * d + 0.6, 2.6 * d + 0.4, footer_text)
        axes = fig.subplots(d, d, squeeze=False)
        for i, yk in enumerate(keys):
            for j, xk in enumerate(keys):
                ax = axes[i][j]
                px, py = calibration.parameters[xk], calibration.parameters[yk]
                if i == j:
                    ax.hist(posterior[xk], bins=_bins(px, n_bins), color=POSTERIOR_COLOUR, alpha=0.6)
                    if px.log:
                        _log_axis(ax, "x")
                    ax.set_yticks([])
                else:
                    ax.scatter(draws[xk], draws[yk], s=5, color=PRIOR_COLOUR, alpha=0.35, lw=0, label="all draws")
                    ax.scatter(posterior[xk], posterior[yk], s=12, color=POSTERIOR_COLOUR, lw=0, label="kept")
                    if px.log:
                        _log_axis(ax, "x")
                    if py.log:
                        _log_axis(ax, "y")
                    ax.set_ylim(py.low, py.high)
                ax.set_xlim(px.low, px.high)
                if i == d - 1:
                    ax.set_xlabel(textwrap.fill(parameter_label(xk), 32), fontsize=7)
                if j == 0 and i != j:
                    ax.set_ylabel(textwrap.fill(parameter_label(yk), 32), fontsize=7)
                ax.tick_params(labelsize=7)
        axes[0][-1].legend(*axes[-1][0].get_legend_handles_labels(), fontsize=7, frameon=False, loc="upper right")
        fig.suptitle("Kept draws (blue) among all prior draws (grey); diagonal: kept draws", fontsize=11)
        written.append(save_png(fig, plots / "pairs.png", dpi=DPI))

    n = len(statistics)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(4.0 * ncols, 3.2 * nrows + 0.3, footer_text)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, s in zip(axes, statistics):
        every = draws[s.name].to_numpy(dtype=float)
        every = every[np.isfinite(every)]
        keep = posterior[s.name].to_numpy(dtype=float)
        if len(every):
            lo, hi = min(every.min(), s.target), max(every.max(), s.target)
            edges = np.linspace(lo, hi if hi > lo else lo + 1, 31)
            ax.hist(every, bins=edges, color=PRIOR_COLOUR, alpha=0.5, label=f"all draws ({len(every)})")
            ax.hist(keep, bins=edges, color=POSTERIOR_COLOUR, alpha=0.8, label=f"kept ({len(keep)})")
        ax.axvline(s.target, color=TARGET_COLOUR, lw=2, label=f"target {s.target:g}")
        ax.set_title(textwrap.fill(outcome_label(s.name), 45), fontsize=9)
        ax.set_ylabel("draws")
        ax.legend(fontsize=7, frameon=False)
        ax.grid(True, color="#DDDDDD", lw=0.6)
        ax.set_axisbelow(True)
    fig.suptitle("Statistics of the kept draws against all draws and the targets", fontsize=11)
    written.append(save_png(fig, plots / "statistics.png", dpi=DPI))
    return written


# --------------------------------------------------------------------------- command line


def cli_calibrate(args) -> int:
    """`run.py calibrate SCENARIO [--set KEY=VALUE ...] [--workers N] [--dask ADDR] [--seed S] [--out|--resume DIR]`.

    `args` attributes: scenario (path or name), workers, dask, seed, out (Path or None),
    resume (Path or None); optional: steps, overrides. Bad input raises ScenarioError,
    an unusable directory OutputError or SweepError, an unreachable Dask scheduler
    ExecutorError (the CLI maps all of them to exit status 2).
    """
    path = resolve_scenario_path(args.scenario)
    overrides = list(getattr(args, "overrides", None) or [])
    scenario, calibration = load_calibration(path, overrides)
    resume = getattr(args, "resume", None)
    out = getattr(args, "out", None)
    if resume is not None and out is not None:
        raise OutputError("give either --out or --resume")
    if resume is None:
        claim = claim_output_dir(out, scenario=scenario.name, kind="calibration")
    else:
        claim = claim_output_dir(resume, existing=True)
    args.claimed = claim.directory  # for the message after an interruption
    workers = int(getattr(args, "workers", 1) or 1)
    dask = getattr(args, "dask", None)
    with claim:  # held from before the first run to the last file
        backend = make_backend(workers, dask)  # reach the cluster before writing anything
        result = calibrate(
            scenario,
            calibration,
            out=claim.directory,
            workers=workers,
            dask=dask,
            seed=getattr(args, "seed", None),
            resume=resume is not None,
            steps=getattr(args, "steps", None),
            scenario_file=path,  # calibrated.yaml extends it only if the --sets changed nothing
            backend=backend,
            overrides=overrides,
        )
    print(format_table(result))
    print(result.directory)
    return 0


def format_table(result: CalibrationResult) -> str:
    """The calibration as text for the terminal.

    One line per parameter (prior range, posterior median, 90 % interval), then a line with
    the draws kept, the distance threshold and the calibrated scenario's file name.
    """
    s = result.summary
    table = result.table()
    header = ("parameter", "prior", "posterior median", "90% interval")
    rows = [(r.parameter, r.prior, f"{r.median:.4g}", f"[{r.q05:.4g}, {r.q95:.4g}]") for r in table.itertuples()]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append(
        f"{METHOD}: {s['n_accepted']} of {s['n_draws']} draws kept (distance <= {s['threshold_distance']:.4g}); "
        f"calibrated scenario: {result.calibrated_file.name}"
    )
    return "\n".join(lines)
