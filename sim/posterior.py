"""Using a calibration's posterior: ensembles at the kept draws, and posterior predictive checks.

The kept draws of `run.py calibrate` (`posterior.csv`, closest to the targets first) serve
two purposes besides their medians, which a calibrated scenario uses:

**Posterior ensemble** (`run.py run SCENARIO --posterior FILE|DIR`, `sim.simulate(...,
posterior=...)`): replicate k runs with the parameters of draw k mod N, the rows of
posterior.csv in file order, instead of the scenario's values. The parameters are the
columns that are parameters of the scenario (other columns: point, statistics, distance,
are ignored). Seeds are the usual replicate seeds, so an ensemble and a run at the medians
with the same seed share their random numbers replicate by replicate. The run's manifest
records the file, each replicate's draw and values, and a rerun command that sets them.

**Posterior predictive checks** (the `predictive:` part of a `calibration:` section): each
check names an outcome the calibration did not fit and what to compare it with: an observed
value (`observed`, a number or `targets.<name>`) and/or a plausible band (`band: [low,
high]`), with its basis (`article` or `assumption`) and the argument (`why`). After the ABC,
every kept draw runs `replicates` more times with new seeds,

    seed = run_seed(stage_root(root_seed, "posterior_predictive"), point, replicate)

(`sim.seeding`; `point` is the draw's point in the calibration's draws.csv), so no
predictive run repeats a calibration run (those were selected for fitting; reusing them
would flatter the check). The calibration's own runs, one value per run at every prior draw,
give the prior predictive distribution for comparison. For each statistic and each
distribution, over runs (not averages of runs: the article's figures are single
observations):

- the median and the 5 % and 95 % quantiles;
- against an observed value y: the two-sided predictive p-value 2 min(P(T >= y), P(T <= y))
  (capped at 1; Gelman, Meng & Stern 1996, with T the statistic of one predictive run), and
  the upper tail P(T >= y) to tell the side. Near 0: the model rarely produces the
  observation;
- against a band: the share of runs inside it (bounds included).

Runs where the statistic is undefined (NaN, e.g. the mean clash size of a run without
clashes) are counted apart (`n_missing`) and left out of the quantiles and shares.

Files, in the calibration directory: `predictive/` (an ordinary sweep directory, whose
design.csv lists every predictive run with its draw, replicate, seed and values; resumable,
`sim.sweep`), `predictive.csv` (one row per statistic and distribution) and
`plots/predictive.png`. The numbers depend only on the root seed and the calibration, never
on the executor or the number of workers.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim import keypath
from sim.design import format_value
from sim.executors import Backend
from sim.outcomes import outcome_name
from sim.results import atomic_write_text, display_path, results_dir_problem
from sim.scenario import NOT_PARAMETERS, scenario_to_dict, target_value
from sim.schema import Predictive, Scenario, Sweep, SweepRange
from sim.seeding import run_seed, stage_root
from sim.sweep import SweepError, load_sweep, read_outcomes, run_sweep, scenario_for, start_sweep
from sim.yaml_source import ScenarioError

__all__ = [
    "PREDICTIVE_DIR",
    "PREDICTIVE_STAGE",
    "PosteriorDraws",
    "PosteriorError",
    "ResolvedCheck",
    "ensemble_configs",
    "load_posterior",
    "plot_predictive",
    "predictive_design",
    "resolve_checks",
    "run_predictive",
    "summarise_predictive",
    "write_predictive_table",
]

POSTERIOR_FILE = "posterior.csv"
CALIBRATION_KIND = "faction-sim calibration"  # calibration.json's kind (sim.calibration.KIND)
PREDICTIVE_DIR = "predictive"  # the predictive runs' sweep directory, inside the calibration's
PREDICTIVE_STAGE = "posterior_predictive"  # the name of the seeds' stage (sim.seeding.stage_root)
QUANTILES = (0.05, 0.5, 0.95)


class PosteriorError(Exception):
    """A posterior file that cannot be used (missing, unreadable, no parameter columns); exit status 2."""


# --------------------------------------------------------------------------- posterior ensembles


@dataclass(frozen=True)
class PosteriorDraws:
    """The kept draws of a calibration, as `run --posterior` uses them.

    Attributes:
        file: the posterior.csv read.
        parameters: the scenario key paths among its columns, in file order.
        values: one row per draw (file order), one column per parameter.
        points: each draw's point in the calibration's draws.csv (None if the file has no `point` column).
    """

    file: Path
    parameters: tuple[str, ...]
    values: pd.DataFrame
    points: tuple[int, ...] | None

    def __len__(self) -> int:
        """Number of draws."""
        return len(self.values)

    def draw_of(self, replicate: int) -> int:
        """The draw (row of the file, from 0) that replicate `replicate` runs with: replicate mod N."""
        return int(replicate) % len(self.values)

    def overrides(self, replicate: int) -> list[str]:
        """`key=value` strings (as `--set` takes) of replicate `replicate`'s draw; values round-trip exactly."""
        row = self.values.iloc[self.draw_of(replicate)]
        return [f"{key}={format_value(float(row[key]))}" for key in self.parameters]

    def manifest(self, n_replicates: int) -> dict:
        """What a run's manifest records: the file, the rule, and each replicate's draw and `--set` strings."""
        return {
            "file": display_path(str(self.file)),
            "n_draws": len(self),
            "parameters": list(self.parameters),
            "assignment": "replicate k runs with draw k mod n_draws (rows of the file in order), "
            "instead of the scenario's values",
            "replicates": {
                k: {
                    "draw": self.draw_of(k),
                    "point": None if self.points is None else self.points[self.draw_of(k)],
                    "set": self.overrides(k),
                }
                for k in range(n_replicates)
            },
        }


def _read_table(file: Path, expected_rows: int | None = None) -> pd.DataFrame:
    """posterior.csv, whole (`sim.results.read_result_csv`): any column may be text until it is used."""
    from sim.results import ResultFileError, read_result_csv
    from sim.yaml_source import not_a_regular_file

    if (why_not := not_a_regular_file(file)) is not None:  # a directory, a loop...: said as what it is
        raise PosteriorError(f"{file}: {why_not}")
    try:
        table = read_result_csv(
            file, auto_columns=lambda column: True, expected_rows=expected_rows, counts_from=CALIBRATION_SUMMARY
        )
    except ResultFileError as error:
        raise PosteriorError(f"{file}: not a readable CSV file ({str(error).removeprefix(f'{file}: ')})") from None
    if table.empty:
        raise PosteriorError(f"{file}: holds no draws")
    return table


def load_posterior(path: str | Path, scenario: Scenario, overrides: Sequence[str] = ()) -> PosteriorDraws:
    """Read a calibration's kept draws (a posterior.csv, or the calibration directory holding one).

    Every column that is a numeric parameter of `scenario` is taken as a parameter; each draw
    must make a valid scenario with them. A column named like a scenario key (its first part
    is a section of the scenario: `rules.clashes.p_maxx`) that the scenario lacks is an error,
    not skipped; so is a parameter the `overrides` (`--set`) also set, which the draws would
    silently replace.

    With calibration.json beside the file (as `run.py calibrate` writes it), the draws must
    have been fitted to this scenario's world (`check_fitted_scenario`), their parameters
    must be the calibration's, and their number its `n_accepted`.

    Raises:
        PosteriorError: no such file, another kind of directory (a sweep's...:
            `sim.results.results_dir_problem`), not a CSV (or a damaged one: cut off, extra fields...),
            no rows, no parameter column, a column that names no parameter, a parameter also
            overridden, a value that is not a finite number, a draw the scenario refuses, or
            draws fitted to another scenario's world or parameters (one line, naming the file).
        ResultFileError: calibration.json beside it is damaged.
    """
    path = Path(path)
    if path.is_dir() and (problem := results_dir_problem(path, CALIBRATION_KIND)) is not None:  # a sweep's...
        raise PosteriorError(problem)
    file = path / POSTERIOR_FILE if path.is_dir() else path
    if path.is_dir() and not os.path.lexists(file) and (path / "calibration_spec.json").is_file():
        raise PosteriorError(  # started, not finished: its kept draws come at the end
            f"{path}: an unfinished calibration (no {POSTERIOR_FILE} yet): finish it with "
            f"python run.py calibrate SCENARIO --resume {shlex.quote(str(path))}"
        )
    summary = _calibration_summary(file)
    n_accepted = summary.get("n_accepted") if summary else None
    table = _read_table(file, n_accepted if isinstance(n_accepted, int) else None)
    if summary is not None:
        check_fitted_scenario(file, summary, scenario)  # before the columns: say why they do not fit
    dumped = scenario_to_dict(scenario)
    sections = set(type(scenario).model_fields) - set(NOT_PARAMETERS)
    overridden = {o.partition("=")[0].strip() for o in overrides}
    parameters = []
    for column in table.columns:
        key = str(column)
        if key.split(".")[0] in NOT_PARAMETERS:
            continue
        if not keypath.exists(dumped, key):
            if key.split(".")[0] in sections:
                raise PosteriorError(f"{file}: column {key}: not a parameter of scenario '{scenario.name}'")
            continue  # a statistic or bookkeeping column (distance, n_runs, ...)
        if key in overridden:
            raise PosteriorError(
                f"{file}: column {key}: also set by --set; the draws would replace it (drop one of the two)"
            )
        value = keypath.get(dumped, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parameters.append(key)
    if not parameters:
        raise PosteriorError(
            f"{file}: no column is a numeric parameter of scenario '{scenario.name}' "
            f"(columns: {', '.join(map(str, table.columns[:8]))}{' ...' if len(table.columns) > 8 else ''})"
        )
    values = table[parameters].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise PosteriorError(f"{file}: line {row + 2}, column {parameters[col]}: not a finite number")
    points = None
    if "point" in table:
        point_values = pd.to_numeric(table["point"], errors="coerce")
        if point_values.notna().all():
            points = tuple(int(p) for p in point_values)
    fitted = (summary or {}).get("parameters")
    if isinstance(fitted, dict) and set(fitted) != set(parameters):
        raise PosteriorError(
            f"{file}: its parameters ({', '.join(parameters)}) are not those of {file.parent / CALIBRATION_SUMMARY} "
            f"({', '.join(fitted)}): the file belongs to another calibration"
        )
    draws = PosteriorDraws(file=file, parameters=tuple(parameters), values=values.reset_index(drop=True), points=points)
    base = {k: v for k, v in dumped.items() if k not in ("sweep", "calibration")}
    for j in range(len(draws)):
        try:
            scenario_for(base, draws.overrides(j))
        except ScenarioError as error:
            raise PosteriorError(f"{file}: line {j + 2}: {error.problems[0].message}") from None
    return draws


CALIBRATION_SUMMARY = "calibration.json"  # beside posterior.csv: the calibration's scenario and parameters


def _world(scenario: Scenario) -> dict[str, list]:
    """What a posterior's draws presuppose: the factions, sites, tribes and patrons by name, the grid's size."""
    return {
        "factions": sorted(scenario.factions),
        "sites": sorted(scenario.sites),
        "tribes": sorted(scenario.tribes),
        "patrons": sorted(scenario.patrons),
        "grid": [scenario.grid.width, scenario.grid.height],
    }


def _fitted_scenario(directory: Path, summary: dict) -> Scenario | None:
    """The scenario a calibration was fitted to: its sweep's resolved copy, its file, or its name in scenarios/."""
    from sim.scenario import load_scenario, resolve_scenario_path

    name = summary.get("scenario")
    candidates = [directory / "sweep" / "scenario.yaml", summary.get("scenario_file"), name]
    for candidate in candidates:
        if not isinstance(candidate, (str, Path)) or not candidate:
            continue
        path = resolve_scenario_path(candidate)
        if not Path(path).is_file():
            continue
        try:
            return load_scenario(path)
        except ScenarioError:
            continue
    return None


def _calibration_summary(file: Path) -> dict | None:
    """calibration.json beside a posterior.csv (checked, `sim.results.read_manifest`), or None if there is none.

    Raises:
        ResultFileError: it is damaged or not a calibration's.
    """
    from sim.results import read_manifest

    path = Path(file).parent / CALIBRATION_SUMMARY
    return read_manifest(path, CALIBRATION_KIND) if path.is_file() else None


def check_fitted_scenario(file: Path, summary: dict, scenario: Scenario) -> None:
    """Refuse a posterior fitted to another scenario's world.

    A posterior.csv written by `run.py calibrate` has calibration.json (`summary`) beside it,
    naming the scenario it was fitted to and its parameters. The draws apply to that
    scenario, or to one with the same factions, sites, tribes, patrons and grid size (e.g.
    the base scenario a calibration scenario extends, or a policy variant of it). A
    posterior.csv on its own (no calibration.json) is taken as it is.

    Raises:
        PosteriorError: the worlds differ (the message names both scenarios and the first
            difference), or the scenario it was fitted to cannot be found to compare.
    """
    summary_path = Path(file).parent / CALIBRATION_SUMMARY
    name = summary.get("scenario")
    if name == scenario.name:
        return
    other = _fitted_scenario(Path(file).parent, summary)
    if other is None:
        raise PosteriorError(
            f"{file}: fitted to scenario '{name}' ({summary_path}), which cannot be found to check that its "
            f"draws apply to scenario '{scenario.name}'"
        )
    mine, theirs = _world(scenario), _world(other)
    differs = next((key for key in mine if mine[key] != theirs[key]), None)
    if differs is not None:
        raise PosteriorError(
            f"{file}: fitted to scenario '{name}', whose {differs} ({', '.join(map(str, theirs[differs]))}) are not "
            f"those of scenario '{scenario.name}' ({', '.join(map(str, mine[differs]))}); run it with the scenario "
            "it was fitted to"
        )


def ensemble_configs(scenario: Scenario, draws: PosteriorDraws, n_replicates: int) -> list[Scenario]:
    """The scenario of every replicate: `scenario` with replicate k's draw applied (one validation per draw)."""
    base = {k: v for k, v in scenario_to_dict(scenario).items() if k not in ("sweep", "calibration")}
    by_draw: dict[int, Scenario] = {}
    configs = []
    for k in range(n_replicates):
        j = draws.draw_of(k)
        if j not in by_draw:
            by_draw[j] = scenario_for(base, draws.overrides(k))
        configs.append(by_draw[j])
    return configs


# --------------------------------------------------------------------------- predictive checks


@dataclass(frozen=True)
class ResolvedCheck:
    """A predictive check ready to compute: the outcome as computed, its references as numbers."""

    name: str  # the outcome as computed (a window outcome with its length)
    written: str
    unit: str
    observed: float | None
    observed_source: str | None  # "targets.buqrus_wounded" or "number"
    band: tuple[float, float] | None
    basis: str
    why: str

    def as_dict(self) -> dict:
        """JSON-ready: outcome, written, unit, observed, observed_source, band, basis, why."""
        return {
            "outcome": self.name,
            "written": self.written,
            "unit": self.unit,
            "observed": self.observed,
            "observed_source": self.observed_source,
            "band": list(self.band) if self.band else None,
            "basis": self.basis,
            "why": self.why,
        }


def resolve_checks(scenario: Scenario, predictive: Predictive) -> list[ResolvedCheck]:
    """The checks with outcome names completed and `targets.<name>` references looked up.

    The section's problems (bad outcome names, bad references) are found earlier, by
    `sim.scenario.calibration_problems`.
    """
    out = []
    for check in predictive.checks:
        observed, source = None, None
        if check.observed is not None:
            observed, source, _ = target_value(check.observed, scenario)
        band = (float(check.band[0]), float(check.band[1])) if check.band is not None else None
        out.append(
            ResolvedCheck(
                name=outcome_name(check.outcome, scenario),
                written=check.outcome,
                unit=check.unit,
                observed=observed,
                observed_source=source,
                band=band,
                basis=check.basis,
                why=check.why,
            )
        )
    return out


def predictive_design(kept: pd.DataFrame, parameters: list[str], root_seed: int, replicates: int) -> pd.DataFrame:
    """design.csv of the predictive runs: every kept draw (its `point`) times `replicates`.

    Seeds: `run_seed(stage_root(root_seed, PREDICTIVE_STAGE), point, replicate)`. Sorted by
    (point, replicate), as a sweep's design is.
    """
    root = stage_root(root_seed, PREDICTIVE_STAGE)
    rows = []
    for record in kept[["point", *parameters]].to_dict("records"):
        point = int(record["point"])
        for k in range(replicates):
            rows.append(
                {
                    "point": point,
                    "replicate": k,
                    "seed": run_seed(root, point, k),
                    **{p: float(record[p]) for p in parameters},
                }
            )
    design = pd.DataFrame(rows, columns=["point", "replicate", "seed", *parameters])
    design["seed"] = design["seed"].astype("int64")
    return design.sort_values(["point", "replicate"], kind="stable").reset_index(drop=True)


def run_predictive(
    directory: Path,
    *,
    scenario: Scenario,
    parameters: dict[str, SweepRange],
    kept: pd.DataFrame,
    checks: list[ResolvedCheck],
    root_seed: int,
    steps: int,
    replicates: int,
    backend: Backend,
) -> pd.DataFrame:
    """Run (or resume) the predictive runs in `directory`; return their outcomes.csv (ok runs).

    `kept` holds the kept draws (`point` and one column per parameter). A directory left by
    an earlier call is resumed if its design is the one these draws and seeds give, and
    refused (SweepError) otherwise. The backend is left open.
    """
    directory = Path(directory)
    keys = list(parameters)
    design = predictive_design(kept, keys, root_seed, replicates)
    if (directory / "manifest.json").exists():
        _, _, saved = load_sweep(directory, expected_scenario=scenario.name)
        same = list(saved.columns) == list(design.columns) and len(saved) == len(design)
        if same:
            same = (
                saved[["point", "replicate", "seed"]].to_numpy() == design[["point", "replicate", "seed"]].to_numpy()
            ).all()
            same = same and np.array_equal(saved[keys].to_numpy(dtype=float), design[keys].to_numpy(dtype=float))
        if not same:
            raise SweepError(f"{directory}: its predictive runs are not those of this calibration's kept draws")
    else:
        if directory.exists() and not (directory / "runs.jsonl").exists():
            shutil.rmtree(directory)  # a start interrupted before its manifest: nothing ran
        sweep = Sweep(
            parameters=dict(parameters),
            design="random",  # placeholder: the design is given (the kept draws)
            samples=len(kept),
            replicates=replicates,
            seeds="independent",
            outputs=[c.name for c in checks],
        )
        start_sweep(
            scenario.model_copy(update={"sweep": sweep}),
            out=directory,
            root_seed=stage_root(root_seed, PREDICTIVE_STAGE),
            steps=steps,
            scenario_file=None,
            overrides=[],
            executor_name=backend.label,
            design=design,
            design_note=f"given: the {len(kept)} kept draws of the calibration (points of ../draws.csv)",
        )
    run_sweep(directory, backend=backend, close_backend=False)
    manifest, config, _ = load_sweep(directory)
    runs = read_outcomes(directory, manifest, config)  # checked against its manifest (sim.results)
    if len(runs) < len(design):
        raise SweepError(f"{directory}: only {len(runs)} of {len(design)} predictive runs finished; resume")
    return runs[runs["status"] == "ok"].reset_index(drop=True)


def _quantiles(values: np.ndarray) -> tuple[float, float, float]:
    if len(values) == 0:
        return (math.nan, math.nan, math.nan)
    q05, median, q95 = (float(v) for v in np.quantile(values, QUANTILES))
    return q05, median, q95


def summarise_predictive(distributions: dict[str, pd.DataFrame], checks: list[ResolvedCheck]) -> pd.DataFrame:
    """predictive.csv: one row per check and distribution (e.g. "prior", "posterior").

    Columns: statistic, unit, basis, distribution, n_runs, n_missing, median, q05, q95,
    mean, observed, observed_source, p_value (two-sided), p_upper (P(T >= observed)),
    band_low, band_high, share_in_band; empty where a check has no observed value or band.
    """
    rows = []
    for check in checks:
        for label, runs in distributions.items():
            raw = pd.to_numeric(runs[check.name], errors="coerce").to_numpy(dtype=float) if len(runs) else np.array([])
            values = raw[np.isfinite(raw)]
            q05, median, q95 = _quantiles(values)
            row = {
                "statistic": check.name,
                "unit": check.unit,
                "basis": check.basis,
                "distribution": label,
                "n_runs": int(len(raw)),
                "n_missing": int(len(raw) - len(values)),
                "median": median,
                "q05": q05,
                "q95": q95,
                "mean": float(values.mean()) if len(values) else math.nan,
                "observed": check.observed,
                "observed_source": check.observed_source,
                "p_value": math.nan,
                "p_upper": math.nan,
                "band_low": check.band[0] if check.band else math.nan,
                "band_high": check.band[1] if check.band else math.nan,
                "share_in_band": math.nan,
            }
            if check.observed is not None and len(values):
                upper = float(np.mean(values >= check.observed))
                lower = float(np.mean(values <= check.observed))
                row["p_upper"] = upper
                row["p_value"] = min(1.0, 2.0 * min(upper, lower))
            if check.band is not None and len(values):
                low, high = check.band
                row["share_in_band"] = float(np.mean((values >= low) & (values <= high)))
            rows.append(row)
    return pd.DataFrame(rows)


def write_predictive_table(path: Path, table: pd.DataFrame) -> Path:
    """Write predictive.csv (floats to 6 significant digits: identical text for identical runs)."""
    atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
    return path


# --------------------------------------------------------------------------- plot



def share_text(share: float) -> str:
    """A share (0-1) as a percentage that reads 100% or 0% only when it is exactly that.

    Whole percent, with more decimals where rounding would reach 100% or 0%: 0.995 reads
    "99.5%", not "100%" (which hid the one run in 200 outside a band), 0.004 "0.4%"; past
    three decimals "> 99.999%" or "< 0.001%". NaN reads "n/a".
    """
    if not np.isfinite(share):
        return "n/a"
    for decimals in range(4):
        text = f"{share:.{decimals}%}"
        if (float(text[:-1]) < 100 or share >= 1) and (float(text[:-1]) > 0 or share <= 0):
            return text
    return "> 99.999%" if share > 0.5 else "< 0.001%"


def plot_predictive(
    path: Path,
    distributions: dict[str, pd.DataFrame],
    checks: list[ResolvedCheck],
    table: pd.DataFrame,
    footer_text: str,
) -> Path:
    """plots/predictive.png: per check, the prior and posterior predictive histograms with the references.

    `distributions` must hold "prior" and "posterior" (runs with one column per check).
    Prior runs far beyond the posterior and the references (outside the prior's 2-98 %) are
    left off the axis; the panel says how many.
    """
    from sim.figures import BLUE, GREY, VERMILLION, new_figure, save_png
    from sim.outcomes import outcome_words

    n = len(checks)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = new_figure(
        4.6 * ncols,
        4.4 * nrows + 1.1,
        title="Posterior predictive checks: statistics not used for fitting",
        subtitle="one value per run; grey: runs at every prior draw, blue: new runs at the kept draws; "
        "shaded: plausible band; line: observed value",
        footer=footer_text,
    )
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, check in zip(axes, checks):
        values = {}
        for label, runs in distributions.items():
            raw = pd.to_numeric(runs[check.name], errors="coerce").to_numpy(dtype=float) if len(runs) else np.array([])
            values[label] = raw[np.isfinite(raw)]
        prior, post = values.get("prior", np.array([])), values.get("posterior", np.array([]))
        ends = [*(check.band or ()), *([check.observed] if check.observed is not None else [])]
        if len(post):
            ends += [float(post.min()), float(post.max())]
        if len(prior):
            ends += [float(np.quantile(prior, 0.02)), float(np.quantile(prior, 0.98))]
        lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, 41)
        off_axis = int(np.count_nonzero((prior < lo) | (prior > hi)))
        if len(prior):
            ax.hist(
                prior[(prior >= lo) & (prior <= hi)],
                bins=edges,
                weights=np.full(np.count_nonzero((prior >= lo) & (prior <= hi)), 1.0 / len(prior)),
                color=GREY,
                alpha=0.55,
                label=f"prior predictive ({len(prior)} runs" + (f"; {off_axis} off the axis)" if off_axis else ")"),
            )
        if len(post):
            row = table[(table["statistic"] == check.name) & (table["distribution"] == "posterior")].iloc[0]
            ax.hist(
                post,
                bins=edges,
                weights=np.full(len(post), 1.0 / len(post)),
                color=BLUE,
                alpha=0.7,
                label=f"posterior predictive ({len(post)} runs): median {row['median']:.3g} "
                f"[{row['q05']:.3g}, {row['q95']:.3g}]",
            )
        if check.band is not None:
            share = table[(table["statistic"] == check.name) & (table["distribution"] == "posterior")][
                "share_in_band"
            ].iloc[0]
            ax.axvspan(
                *check.band,
                color=VERMILLION,
                alpha=0.12,
                label=f"band [{check.band[0]:g}, {check.band[1]:g}] ({check.basis}): "
                f"{share_text(share)} of posterior runs",
            )
        if check.observed is not None:
            p = table[(table["statistic"] == check.name) & (table["distribution"] == "posterior")]["p_value"].iloc[0]
            ax.axvline(
                check.observed,
                color=VERMILLION,
                lw=2,
                label=f"observed {check.observed:g} ({check.basis}): p = {p:.2f}",
            )
        ax.set_xlim(lo, hi)
        words, unit = outcome_words(check.name)
        unit = check.unit or unit  # the check's own unit, where the scenario gives one
        ax.set_title(textwrap.fill(words, 50), fontsize=10)
        ax.set_xlabel(f"{words} ({unit})" if unit else words, fontsize=9, wrap=True)
        ax.set_ylabel("share of runs")
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0.0, -0.2))
        ax.grid(True, color="#DDDDDD", lw=0.6)
        ax.set_axisbelow(True)
    return save_png(fig, Path(path), dpi=120)
