"""Side-by-side comparison of scenarios, or of finished runs, on common random numbers: `run.py compare`.

A student's first question, "what does salary parity change?", in one call:

    import sim
    comparison = sim.compare(["baseline", "salary_parity"], replicates=30, steps=365, workers=2)
    comparison.differences      # per (scenario, outcome): mean paired difference vs the first, 95% interval
    comparison.outcome_table    # per (scenario, outcome): median and 5-95% range over the runs
    for line in comparison.summary_lines():
        print(line)
    comparison.save("results/compare/my-try")   # CSV, Markdown, overlay plots, manifest

Inputs. Each input is a scenario (a name in scenarios/, a file, or a validated `Scenario`),
optionally with its own `key=value` overrides (`(scenario, ["key=value", ...])`; on the
command line `--set-for WHICH KEY=VALUE`), or a results directory of `run.py run` (read and
checked with `sim.results.load_run`; a damaged file is refused with `ResultFileError`).
`overrides` apply to every scenario input; they do not apply to a results directory, whose
runs are finished (refused).

Common random numbers. Replicate k of every scenario runs with the same seed
(`sim.seeding.replicate_seeds(root, n)`), so the paired difference scenario - first, seed by
seed, is free of the noise the runs share. Results directories are paired by seed: their
seeds and steps must be those of the first results directory (the scenarios given beside
them run at those seeds and steps), otherwise the comparison is refused (exit 2), as
unpaired runs would need another interval.

The runs, outcomes and intervals are those of `run.py compare-variants` (`sim.variants`):
`run_scenarios` maps `sim.runner.run_model` over the project's executors (serial, processes,
Dask; identical results whatever ran them), and `paired_differences` gives the mean
difference and its BCa bootstrap interval (`sim.intervals.bootstrap_interval`, seeded by
`sim.seeding.named_stream`). A difference is "clear" when its 95% interval excludes 0.

Key outcomes (`key_outcomes`, or `outcomes=`): defections both ways between every two
militias a recruit could move between (with theatres, not between militias of two different
theatres unless some recruits live outside every theatre), fighters on the last day per
faction, territory on the last day per militia, clashes, killed, mediation agreements and the
insurgent peak. An outcome a scenario does not have (a faction it lacks) is "not comparable"
for it, not an error.

Files written by `Comparison.save` (a new directory, default results/compare/<UTC timestamp>):
- `outcomes.csv`    per scenario and outcome: median, 5% and 95% quantiles, runs
- `differences.csv` per other scenario and outcome: mean paired difference vs the first
                    scenario, 95% bootstrap interval, pairs, verdict (clear / not clear /
                    not comparable / undefined)
- `runs.csv`        one row per scenario and replicate: seed and outcomes
- `series.csv`      per scenario, key series and day: 5%, median, 95% over the runs
- `COMPARE.md`      the two tables and the summary in Markdown
- `plots/compare_*.png` overlay plots: median line and 5-95% band per scenario, same axes
- `manifest.json`   kind "faction-sim comparison", format 2, inputs, seeds, steps, `files`
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sim.executors import Backend, make_backend
from sim.intervals import CONFIDENCE
from sim.outcomes import check_outcome_name, compute_outcomes, outcome_label, outcome_name
from sim.results import (
    MANIFEST_FORMAT,
    RESULTS_DIR,
    atomic_write_text,
    claim_output_dir,
    display_path,
    file_record,
    git_commit,
    load_run,
    rerun_command,
    versions,
    write_staged,
)
from sim.scenario import load_scenario, resolve_scenario_path
from sim.schema import Scenario
from sim.seeding import replicate_seeds
from sim.variants import MIN_PAIRS, VariantJob, paired_differences, run_scenarios
from sim.yaml_source import (
    OVERRIDE_FILE,
    Problem,
    ScenarioError,
    check_repeated_overrides,
    override_key,
    short_override,
)

__all__ = ["CompareInput", "Comparison", "cli_compare", "compare", "key_outcomes", "prepare", "run_comparison"]

KIND = "faction-sim comparison"  # manifest.json's `kind`
DEFAULT_REPLICATES = 30  # runs per scenario: ~1 s each for a year of the baseline
COMPARE_DIR = RESULTS_DIR / "compare"  # where a comparison goes by default
QUANTILES = (0.05, 0.5, 0.95)
# Timeseries columns the runs send back for the overlay plots (`sim.variants.VariantJob.series`).
SERIES_COLUMNS = ("fighters.", "territory.", "defections.", "killed.", "clashes", "agreements", "insurgent_cells")
# Overlay figures: file stem, title, the series they show (prefix ending in "." or a name), y-axis label.
FIGURES = (
    ("compare_fighters", "Fit fighters per militia", "fighters.", "fit fighters (people)"),
    ("compare_territory", "Territory per militia", "territory.", "share of passable grid cells held (0-1)"),
    ("compare_defections", "Defections between militias", "defections.", "cumulative defections (fighters)"),
    ("compare_violence", "Clashes, deaths, agreements and insurgents", "", ""),
)
VIOLENCE = {  # series of the last figure: panel title, y-axis label
    "clashes": ("Clashes between militias", "cumulative clashes (count)"),
    "killed": ("Killed, all militias", "cumulative killed (people)"),
    "agreements": ("Mediation agreements", "cumulative agreements (count)"),
    "insurgent_cells": ("Insurgent strength", "insurgent cells (count)"),
}
MAX_COLUMNS = 3  # panels per row


def _error(message: str, file: str = "compare") -> ScenarioError:
    """A one-problem ScenarioError about the comparison as asked (exit 2 at the command line)."""
    return ScenarioError([Problem(file=file, key_path="", line=None, message=message)])


def _named_by_option(
    error: ScenarioError, overrides: Sequence[str], own: Sequence[str], option: str = "--set-for"
) -> ScenarioError:
    """`error` with each problem an input's own overrides caused named `option` (`--set-for 2`), not `--set`.

    `load_scenario` names every command-line override `--set` (`sim.yaml_source.OVERRIDE_FILE`).
    A problem is the `--set-for`'s when its key path lies under a key one of `own` sets, and
    under none that a `--set` sets more closely (applied after the `--set`s, `own` wins a tie);
    one without a key path (an assignment without '=') when it quotes one of `own` and no `--set`.
    """
    if not own:
        return error

    def keys(assignments: Sequence[str]) -> list[str]:
        return [".".join(map(str, k)) for a in assignments if (k := override_key(a)) is not None]

    def depth(key_path: str, sets: list[str]) -> int:  # how closely the deepest key of `sets` holds key_path
        return max((len(k) for k in sets if key_path == k or key_path.startswith(k + ".")), default=-1)

    global_keys, own_keys = keys(overrides), keys(own)
    problems = []
    for problem in error.problems:
        if problem.file == OVERRIDE_FILE:
            if problem.key_path:
                mine = depth(problem.key_path, own_keys) >= max(depth(problem.key_path, global_keys), 0)
            else:
                quotes = [a for a in (*overrides, *own) if a and a.strip() and a.strip()[:40] in problem.message]
                mine = bool(quotes) and all(a in own for a in quotes)
            if mine:
                problem = replace(problem, file=option)
        problems.append(problem)
    return ScenarioError(problems)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class CompareInput:
    """One side of the comparison, resolved.

    Attributes:
        label: its name in tables, legends and the summary (the scenario's name, its own
            overrides in brackets, `#k` (its position) if two inputs would share a name).
        source: the scenario or results directory as given (None for a `Scenario` object).
        kind: "scenario" (runs now) or "results" (finished runs read back).
        overrides: the `key=value` overrides applied (scenarios) or recorded (results).
        config: the validated scenario (a results directory's `scenario.yaml`).
        manifest: a results directory's manifest.json (None for a scenario).
        timeseries: a results directory's timeseries (None for a scenario).
        events: a results directory's events (None for a scenario).
    """

    label: str
    source: str | None
    kind: str
    overrides: tuple[str, ...]
    config: Scenario
    manifest: dict | None = None
    timeseries: pd.DataFrame | None = field(default=None, repr=False)
    events: pd.DataFrame | None = field(default=None, repr=False)


@dataclass
class Plan:
    """What a comparison will do: its inputs, seeds, steps and outcomes (`prepare`)."""

    inputs: list[CompareInput]
    root_seed: int
    seeds: list[int]
    steps: int
    outcomes: list[str]
    overrides: list[str]  # applied to every scenario input
    default_outcomes: bool = True  # the outcomes are `key_outcomes` (not named by the caller)

    def command(self) -> str | None:
        """The `run.py compare` command that makes this comparison again (None if an input is a `Scenario` object).

        Sources as re-run commands give paths (`sim.results.display_path`), the seed, steps
        and replicates written out, `--set` for every scenario, `--set-for POSITION` for one.
        """
        if any(i.source is None for i in self.inputs):
            return None
        parts = ["python", "run.py", "compare"]
        parts += [display_path(i.source) if Path(i.source).exists() else i.source for i in self.inputs]
        parts += ["--replicates", len(self.seeds), "--seed", self.root_seed, "--steps", self.steps]
        for setting in self.overrides:
            parts += ["--set", setting]
        for k, item in enumerate(self.inputs):
            if item.kind == "scenario":
                for setting in item.overrides[len(self.overrides):]:
                    parts += ["--set-for", k + 1, setting]
        if not self.default_outcomes:
            parts += ["--outcomes", ",".join(self.outcomes)]
        return rerun_command(parts)


def _read_results(directory: Path) -> tuple[Scenario, dict, pd.DataFrame, pd.DataFrame]:
    """A results directory of `run.py run`: its scenario, manifest, timeseries and events, checked.

    Raises:
        ResultFileError: a damaged or inconsistent file (one line naming it); OutputError: not
            a complete results directory.
    """
    run = load_run(directory, tables=("timeseries", "events"))  # the manifest checked against the runs too
    return run.config, run.manifest, run.timeseries, run.events


def _split(item) -> tuple[str | Path | Scenario, tuple[str, ...]]:
    if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[1], str):
        return item[0], tuple(item[1])
    return item, ()


def _labels(names: list[str], own: list[tuple[str, ...]]) -> list[str]:
    """Each input's label: its name, its own overrides in brackets (long ones cut), `#k` where two are equal."""
    labels = [name + (f" [{', '.join(short_override(x) for x in o)}]" if o else "") for name, o in zip(names, own)]
    return [f"{label} #{k + 1}" if labels.count(label) > 1 else label for k, label in enumerate(labels)]


def key_outcomes(configs: Sequence[Scenario]) -> list[str]:
    """The default outcomes of a comparison, for every faction any of `configs` has.

    Defections both ways between every two militias a recruit could move between
    (`defection_possible`: the Syria-wide scenario's 72 flows between its nine militias are
    then its 12 within theatres), fighters on the last day per militia, territory on the last
    day per militia, then clashes, killed, agreements and the insurgent peak (`sim.outcomes`).
    Names in order of first appearance.
    """
    flows, fighters, territory = [], [], []
    for config in configs:
        militias = [n for n, f in config.factions.items() if f.kind == "militia"]
        flows += possible_flows(config)
        fighters += [f"fighters_final.{m}" for m in militias]  # the insurgents' strength: insurgent_peak
        territory += [f"territory_final.{m}" for m in militias]
    rest = ["clashes_total", "killed_total", "agreements_total", "insurgent_peak"]
    return list(dict.fromkeys([*flows, *fighters, *territory, *rest]))


def possible_flows(config: Scenario) -> list[str]:
    """`defections.<A>B>` of every ordered pair of `config`'s militias between which a recruit could move.

    In the order of the scenario's militias (`defection_possible`).
    """
    militias = [n for n, f in config.factions.items() if f.kind == "militia"]
    return [f"defections.{a}>{b}" for a in militias for b in militias if a != b and defection_possible(config, a, b)]


def defection_possible(config: Scenario, a: str, b: str) -> bool:
    """Whether some recruit of `config` could be a member of militia `a` and defect to militia `b`.

    Without theatres, always. With theatres a recruit joins only militias of its home's
    theatre or of none (`sim.processes.spillover.theatre_options`), so militias of two
    different theatres share no recruit, unless some recruits live outside every theatre:
    townspeople of a town of no theatre, or outsiders living at a headquarters of no theatre
    (`sim.world.build_recruits`). Read from the scenario alone; where a town of no theatre
    shares its cell with a theatre's site (its people then count as that theatre's), the answer
    is yes where the model's is no, which keeps an outcome that stays 0, never drops one.
    """
    if not config.theatres:
        return True
    theatre_a, theatre_b = config.factions[a].theatre, config.factions[b].theatre
    if theatre_a is None or theatre_b is None or theatre_a == theatre_b:
        return True
    homes = {name for name, site in config.sites.items() if site.population > 0}
    for name, spec in config.factions.items():
        homes.update(spec.headquarters)
        homes.update(site_name for site_name, site in config.sites.items() if site.owner == name)
    return any(config.sites[name].theatre is None for name in homes if name in config.sites)


def prepare(
    inputs: Sequence,
    *,
    replicates: int | None = None,
    seed: int | None = None,
    steps: int | None = None,
    outcomes: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
) -> Plan:
    """Resolve and check a comparison before any run (every refusal happens here).

    Args: as `compare`.

    Returns:
        The `Plan`: the inputs (scenarios loaded, results directories read), the seeds and
        steps every input runs (or ran) with, and the outcomes (each checked against at least
        one input).

    Raises:
        ScenarioError: fewer than two inputs; a bad scenario or override; overrides for a
            results directory; results directories whose seeds or steps differ, or differ from
            --seed/--replicates/--steps; an outcome no input has.
        ResultFileError, OutputError: a damaged or incomplete results directory.
        ValueError: replicates < 1.
    """
    if isinstance(inputs, (str, Path)):  # one name is a sequence of letters, not of scenarios
        raise _error(f"give a list of two or more scenarios or results directories, not one: {str(inputs)!r}")
    if len(inputs) < 2:
        raise _error(f"give at least two scenarios or results directories to compare (got {len(inputs)})")
    if replicates is not None and replicates < 1:
        raise ValueError("replicates must be >= 1")
    overrides = list(overrides)
    loaded: list[dict] = []
    for position, item in enumerate(inputs, start=1):
        source, own = _split(item)
        option = f"--set-for {position}"  # what a problem of this input's own overrides is named
        if isinstance(source, Scenario):
            if own or overrides:
                raise _error(f"overrides apply to scenario files, not to the Scenario '{source.name}'")
            loaded.append({"source": None, "kind": "scenario", "own": own, "config": source})
            continue
        path = Path(source)
        if path.is_dir():
            if own or overrides:
                raise _error(
                    f"{path}: a results directory holds finished runs; --set and --set-for apply to scenarios only"
                )
            config, manifest, ts, events = _read_results(path)
            loaded.append(
                {"source": str(source), "kind": "results", "own": (), "config": config, "manifest": manifest,
                 "timeseries": ts, "events": events}
            )
            continue
        for assignment in own:  # the days and seeds are the comparison's: one input's would be ignored
            if override_key(assignment) in (("steps",), ("seed",)):
                key = override_key(assignment)[0]
                raise _error(
                    f"{short_override(assignment)}: every input runs the same days with the same seeds; set {key} "
                    f"for all with --{key} (or --set {key}=...), not for one input",
                    option,
                )
        try:
            config = load_scenario(resolve_scenario_path(source), [*overrides, *own])
        except ScenarioError as error:
            raise _named_by_option(error, overrides, own, option) from None
        loaded.append({"source": str(source), "kind": "scenario", "own": own, "config": config})
    recorded = [tuple(x["manifest"].get("overrides") or ()) if x["kind"] == "results" else x["own"] for x in loaded]
    labels = _labels([x["config"].name for x in loaded], recorded)
    finished = [x for x in loaded if x["kind"] == "results"]
    if finished:
        root_seed, seeds, n_steps = _paired_seeds(finished, replicates, seed, steps)
    else:
        root_seed = loaded[0]["config"].seed if seed is None else int(seed)
        seeds = replicate_seeds(root_seed, DEFAULT_REPLICATES if replicates is None else int(replicates))
        n_steps = loaded[0]["config"].steps if steps is None else int(steps)
    configs = [x["config"] for x in loaded]
    _check_kept_series(configs, len(seeds), n_steps)
    if outcomes is None:
        names = key_outcomes(configs)
    else:
        names = []
        for written in outcomes:
            problems = [check_outcome_name(written, c) for c in configs]
            if all(problems):
                raise _error(f"--outcomes: {written}: {problems[0]}")
            names.append(outcome_name(written, configs[[p is None for p in problems].index(True)]))
        names = list(dict.fromkeys(names))
        if not names:
            raise _error("--outcomes: no outcome named")
    resolved = [
        CompareInput(
            label=label,
            source=x["source"],
            kind=x["kind"],
            overrides=own if x["kind"] == "results" else (*overrides, *own),
            config=x["config"],
            manifest=x.get("manifest"),
            timeseries=x.get("timeseries"),
            events=x.get("events"),
        )
        for label, x, own in zip(labels, loaded, recorded)
    ]
    return Plan(resolved, root_seed, seeds, n_steps, names, overrides, default_outcomes=outcomes is None)


BYTES_PER_VALUE = 24  # a kept series value: 8 bytes, and room for the copies made by the quantiles


def _check_kept_series(configs: Sequence[Scenario], n_runs: int, steps: int) -> None:
    """Refuse a comparison whose kept series (every run's, for the quantiles of the plots) would not fit in memory.

    Raises:
        ScenarioError: the estimate exceeds the memory available (`sim.limits.available_bytes`).
    """
    from sim.limits import available_bytes

    columns = 0
    for config in configs:
        militias = sum(f.kind == "militia" for f in config.factions.values())
        columns += len(config.factions) + militias * (militias + 1) + 3  # fighters, territory, flows, killed, 3 totals
    need, have = columns * n_runs * (steps + 1) * BYTES_PER_VALUE, available_bytes()
    if need > have:
        raise _error(
            f"keeping the series of {n_runs:,} runs x {len(configs)} scenarios of {steps:,} days needs about "
            f"{need / 2**30:.1f} GiB and the machine has {have / 2**30:.1f} GiB available: use fewer --replicates "
            "or --steps"
        )


def _paired_seeds(finished: list[dict], replicates, seed, steps) -> tuple[int, list[int], int]:
    """(root seed, seeds, steps) of the first results directory, after checking the others and the options agree."""
    first = finished[0]
    seeds = [r["seed"] for r in sorted(first["manifest"]["replicates"], key=lambda r: r.get("replicate", 0))]
    n_steps = first["manifest"]["steps"]
    root_seed = first["manifest"].get("root_seed", seeds[0])
    again = "runs are paired by seed: make them with the same --seed, --replicates and --steps"
    for other in finished[1:]:
        theirs = sorted(r["seed"] for r in other["manifest"]["replicates"])
        if other["manifest"]["steps"] != n_steps:
            raise _error(
                f"{other['manifest']['steps']} steps where {first['source']} has {n_steps} ({again})",
                other["source"],
            )
        if theirs != sorted(seeds):
            raise _error(f"its seeds differ from those of {first['source']} ({again})", other["source"])
    if steps is not None and int(steps) != n_steps:
        raise _error(f"--steps {steps} differs from the {n_steps} steps of results directory {first['source']}")
    if replicates is not None and int(replicates) != len(seeds):
        raise _error(
            f"--replicates {replicates} differs from the {len(seeds)} replicates of results directory "
            f"{first['source']}"
        )
    if seed is not None and replicate_seeds(int(seed), len(seeds)) != seeds:
        raise _error(f"--seed {seed} is not the root seed of results directory {first['source']}")
    return int(root_seed), seeds, n_steps


# --------------------------------------------------------------------------- running


def _valid_outcomes(names: Sequence[str], config: Scenario) -> tuple[str, ...]:
    return tuple(n for n in names if check_outcome_name(n, config) is None)


def _finished_runs(item: CompareInput, outcomes: Sequence[str]) -> tuple[list[dict], dict[int, pd.DataFrame]]:
    """The outcome rows and timeseries of a results directory's runs, as `sim.variants.run_outcomes` gives them."""
    from sim.runner import site_table  # the same `meta["sites"]` as a fresh run's

    valid = list(_valid_outcomes(outcomes, item.config))
    sites = site_table(item.config)
    rows, series = [], {}
    events = item.events
    for entry in sorted(item.manifest["replicates"], key=lambda r: r.get("replicate", 0)):
        seed, replicate = entry["seed"], entry.get("replicate", 0)
        ts = item.timeseries[item.timeseries["seed"] == seed].drop(columns=["replicate", "seed"])
        ts = ts.reset_index(drop=True)
        ev = events[events["seed"] == seed].drop(columns=["replicate", "seed"]) if len(events) else None
        meta = {"first_control_change": entry.get("first_control_change") or {}, "sites": sites}
        row = {"scenario": item.label, "replicate": replicate, "seed": seed}
        row.update(compute_outcomes(valid, ts, ev, meta, missing_as_nan=True))
        rows.append(row)
        series[replicate] = ts
    return rows, series


def derived_series(ts: pd.DataFrame) -> dict[str, np.ndarray]:
    """The key series of one run, by name, each one value per step (step 0 first).

    Levels as recorded (`fighters.<faction>`, `territory.<militia>`, `insurgent_cells`);
    per-step counts summed up to each day (`defections.<A>B>`, `clashes`, `agreements`, and
    `killed`: all militias).
    """
    out: dict[str, np.ndarray] = {}
    for column in ts.columns:
        values = pd.to_numeric(ts[column], errors="coerce").to_numpy(dtype=float)
        if column.startswith("fighters.") or column == "insurgent_cells":
            out[column] = values
        elif column.startswith("territory.") and column != "territory.contested":
            out[column] = values
        elif column.startswith("defections.") or column in ("clashes", "agreements"):
            out[column] = np.cumsum(values)
    killed = [c for c in ts.columns if c.startswith("killed.")]
    if killed:
        out["killed"] = np.cumsum(ts[killed].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float).sum(axis=1))
    return out


def _series_quantiles(
    labels: list[str], per_run: dict[str, list[pd.DataFrame]], flows: frozenset[str] | None = None
) -> pd.DataFrame:
    """Per scenario, series and step: the 5%, median and 95% over the runs (long table).

    `flows`: the `defections.<A>B>` series to keep (`_shown_flows`); None keeps every one.
    """
    frames = []
    for label in labels:
        runs = [derived_series(ts) for ts in per_run.get(label, [])]
        if not runs:
            continue
        steps = per_run[label][0]["step"].to_numpy()
        for name in dict.fromkeys(n for run in runs for n in run):
            if flows is not None and name.startswith("defections.") and name not in flows:
                continue
            stacked = np.vstack([run[name] for run in runs if name in run])
            low, mid, high = np.nanquantile(stacked, QUANTILES, axis=0)
            frames.append(
                pd.DataFrame({"scenario": label, "series": name, "step": steps, "q05": low, "median": mid, "q95": high})
            )
    columns = ["scenario", "series", "step", "q05", "median", "q95"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _shown_flows(plan: Plan) -> frozenset[str]:
    """The defection series of series.csv and the plots (`defections.<A>B>`).

    Those of the flows some input's recruits could make (`defection_possible`, as the default
    outcomes), and any the outcomes name (both ways of a `defections_net.<A>B>`).
    """
    flows = {name for item in plan.inputs for name in possible_flows(item.config)}
    for name in plan.outcomes:
        kind, _, pair = name.partition(".")
        if kind in ("defections", "defections_net") and ">" in pair:
            a, b = pair.split(">", 1)
            flows.update({f"defections.{a}>{b}"} | ({f"defections.{b}>{a}"} if kind == "defections_net" else set()))
    return frozenset(flows)


def run_comparison(plan: Plan, *, workers: int = 1, dask: str | None = None, backend: Backend | None = None):
    """Run the scenario inputs of `plan` (results directories are read) and compare them; a `Comparison`.

    The runs go through `sim.variants.run_scenarios` (the one loop of the comparisons, over
    `sim.executors`); the numbers do not depend on `workers`, `dask` or `backend`.
    """
    started = datetime.now(UTC)
    labels = [i.label for i in plan.inputs]
    fresh = [k for k, i in enumerate(plan.inputs) if i.kind == "scenario"]
    rows_by_input: dict[int, list[dict]] = {}
    ts_by_label: dict[str, list[pd.DataFrame]] = {}
    executor = "serial"
    if fresh:
        job = VariantJob(
            configs=tuple(plan.inputs[k].config for k in fresh),
            outcomes=tuple(_valid_outcomes(plan.outcomes, plan.inputs[k].config) for k in fresh),
            steps=plan.steps,
            labels=tuple(labels[k] for k in fresh),
            series=SERIES_COLUMNS,
        )
        backend = backend if backend is not None else make_backend(workers, dask)
        executor = backend.label
        rows, series = run_scenarios(job, plan.seeds, backend, "compare")
        for row in rows:
            rows_by_input.setdefault(labels.index(row["scenario"]), []).append(row)
        for (index, _), ts in sorted(series.items()):
            ts_by_label.setdefault(job.labels[index], []).append(ts)
    elif backend is not None:
        backend.close()
    for k, item in enumerate(plan.inputs):
        if item.kind == "results":
            rows, series = _finished_runs(item, plan.outcomes)
            rows_by_input[k] = rows
            ts_by_label[item.label] = [series[r] for r in sorted(series)]
    columns = ["scenario", "replicate", "seed", *plan.outcomes]
    runs = pd.DataFrame([row for k in range(len(plan.inputs)) for row in rows_by_input[k]]).reindex(columns=columns)
    differences = _differences(runs, plan)
    return Comparison(
        plan=plan,
        runs=runs,
        differences=differences,
        outcome_table=_outcome_table(runs, plan),
        series=_series_quantiles(labels, ts_by_label, _shown_flows(plan)),
        executor=executor,
        started=started,
    )


def _faction_kinds(*configs: Scenario) -> dict[str, str]:
    """Each faction's kind ("militia", "insurgent") in `configs`; one of two kinds is left out (its label says both)."""
    kinds: dict[str, str] = {}
    mixed: set[str] = set()
    for config in configs:
        for name, faction in config.factions.items():
            if kinds.setdefault(name, faction.kind) != faction.kind:
                mixed.add(name)
    return {name: kind for name, kind in kinds.items() if name not in mixed}


def _outcome_table(runs: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Per scenario and outcome: median, 5% and 95% over the runs, and how many runs define it."""
    rows = []
    for item in plan.inputs:
        mine = runs[runs["scenario"] == item.label]
        valid = set(_valid_outcomes(plan.outcomes, item.config))
        kinds = _faction_kinds(item.config)
        for outcome in plan.outcomes:
            values = pd.to_numeric(mine[outcome], errors="coerce").dropna().to_numpy(dtype=float)
            low, mid, high = np.quantile(values, QUANTILES) if len(values) else (math.nan,) * 3
            rows.append(
                {
                    "scenario": item.label,
                    "outcome": outcome,
                    "label": outcome_label(outcome, kinds),
                    "median": float(mid),
                    "q05": float(low),
                    "q95": float(high),
                    "n_runs": int(len(values)),
                    "defined": outcome in valid,
                }
            )
    return pd.DataFrame(rows)


VERDICTS = ("clear", "not clear", "too few runs", "not comparable", "undefined")


def _differences(runs: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """`sim.variants.paired_differences` of every other input vs the first, with a verdict per row.

    Verdicts: "clear" (the 95% interval excludes 0), "not clear", "too few runs" (fewer than
    `MIN_PAIRS` pairs: the difference and interval are reported but not judged), "not
    comparable" (the outcome does not exist in one of the two scenarios, e.g. a faction it
    lacks), "undefined" (no pair of runs where both define it).
    """
    base, others = plan.inputs[0], plan.inputs[1:]
    table = paired_differences(runs, base.label, [o.label for o in others], plan.outcomes, plan.root_seed)
    base_valid = set(_valid_outcomes(plan.outcomes, base.config))
    valid = {o.label: set(_valid_outcomes(plan.outcomes, o.config)) for o in others}
    kinds = {o.label: _faction_kinds(base.config, o.config) for o in others}  # for each row's label
    verdicts = []
    for row in table.itertuples():
        if row.outcome not in base_valid or row.outcome not in valid[row.variant]:
            verdicts.append("not comparable")
        elif row.n_pairs == 0:
            verdicts.append("undefined")
        elif row.n_pairs < MIN_PAIRS:
            verdicts.append("too few runs")
        else:
            verdicts.append("clear" if row.ci_low > 0 or row.ci_high < 0 else "not clear")
    out = pd.DataFrame(
        {
            "scenario": table["variant"],
            "versus": base.label,
            "outcome": table["outcome"],
            "label": [
                outcome_label(o, kinds[v]) for o, v in zip(table["outcome"], table["variant"], strict=True)
            ],
            "versus_mean": table["base_mean"],
            "scenario_mean": table["variant_mean"],
            "mean_diff": table["mean_diff"],
            "ci_low": table["ci_low"],
            "ci_high": table["ci_high"],
            "n_pairs": table["n_pairs"],
            "verdict": verdicts,
        }
    )
    out.loc[out["verdict"] == "not comparable", ["mean_diff", "ci_low", "ci_high"]] = math.nan
    return out


# --------------------------------------------------------------------------- the result


def _num(x: float) -> str:
    """A number as people read it: 3 significant digits, whole numbers from 1000 with thousands separators."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    text = f"{x:.3g}"
    return "0" if text in ("-0", "0") else text


@dataclass
class Comparison:
    """A comparison's tables (`run_comparison`); `save` writes them with plots and a manifest.

    Attributes:
        plan: inputs, seeds, steps, outcomes.
        runs: one row per input and replicate: scenario (label), replicate, seed, one column per outcome.
        differences: per other input and outcome (vs the first): scenario, versus, outcome,
            label, versus_mean, scenario_mean, mean_diff, ci_low, ci_high (95% bootstrap),
            n_pairs, verdict (`VERDICTS`).
        outcome_table: per input and outcome: scenario, outcome, label, median, q05, q95,
            n_runs, defined (False: not an outcome of this scenario).
        series: per input, key series (`derived_series`) and step: q05, median, q95.
    """

    plan: Plan
    runs: pd.DataFrame
    differences: pd.DataFrame
    outcome_table: pd.DataFrame
    series: pd.DataFrame
    executor: str = "serial"
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def labels(self) -> list[str]:
        """The inputs' labels, the first being the reference."""
        return [i.label for i in self.plan.inputs]

    def _method(self) -> str:
        n, days = len(self.plan.seeds), self.plan.steps
        return (
            f"{n} runs of {days} days per scenario on common random numbers (replicate k has the same seed in "
            f"every scenario; root seed {self.plan.root_seed}). Differences are the mean over seeds of "
            f"scenario - {self.labels[0]}, with a {CONFIDENCE:.0%} bootstrap interval (BCa, resampling seeds); "
            f"'clear' means the interval excludes 0; with fewer than {MIN_PAIRS} pairs of runs no difference is "
            "judged ('too few runs')."
        )

    def summary_lines(self) -> list[str]:
        """The plain-language summary: per other scenario, one line per clear difference, then the rest in a line each.

        E.g. "salary_parity vs baseline: NDF→IRGC defections (fighters) down by 201 [196, 206] (clear)".
        """
        n, days = len(self.plan.seeds), self.plan.steps
        lines = [f"Each scenario vs {self.labels[0]}: mean paired difference over {n} seed{'s' * (n != 1)} of "
                 f"{days}-day runs "
                 f"[{CONFIDENCE:.0%} bootstrap interval]"]
        if n < MIN_PAIRS:
            lines.append(
                f"Only {n} seed{'s' * (n != 1)}: below {MIN_PAIRS} pairs of runs no difference is called clear "
                f"(a bootstrap interval over so few seeds is far too narrow); use --replicates 30 or more"
            )
        for label in self.labels[1:]:
            mine = self.differences[self.differences["scenario"] == label]
            for verdict, tag in (("clear", "clear"), ("too few runs", "not judged: too few runs")):
                rows = mine[(mine["verdict"] == verdict) & (mine["mean_diff"] != 0)]
                for row in rows.itertuples():
                    down = row.mean_diff < 0
                    size, low, high = (-row.mean_diff, -row.ci_high, -row.ci_low) if down else (
                        row.mean_diff, row.ci_low, row.ci_high)
                    interval = f" [{_num(low)}, {_num(high)}]" if not math.isnan(low) else ""
                    lines.append(
                        f"{label} vs {self.labels[0]}: {row.label} {'down' if down else 'up'} by {_num(size)}"
                        f"{interval} ({tag})"
                    )
            same = mine["verdict"].isin(["not clear", "too few runs"]) & (mine["mean_diff"] == 0)
            same &= (mine["ci_low"] == 0) & (mine["ci_high"] == 0) | (mine["n_pairs"] == 1)
            if same.any():
                names = ", ".join(mine.loc[same, "label"])
                lines.append(f"{label} vs {self.labels[0]}: the same in every pair of runs: {names}")
            mine = mine[~same & ~((mine["verdict"] == "too few runs") & (mine["mean_diff"] != 0))]
            for verdict, words in (
                ("not clear", "no clear difference in"),
                ("too few runs", "no mean difference (too few runs to judge) in"),
                ("undefined", "no pair of runs defines"),
                ("not comparable", "not comparable (not an outcome of both scenarios)"),
            ):
                rows = mine[mine["verdict"] == verdict]
                if len(rows):
                    names = ", ".join(rows["label"])
                    lines.append(f"{label} vs {self.labels[0]}: {words}: {names}")
        return lines

    def markdown(self) -> str:
        """The comparison as Markdown: method, outcomes per scenario, paired differences, summary, plots."""
        labels = self.labels
        lines = [f"# Comparison: {' vs '.join(f'`{x}`' for x in labels)}", "", self._method(), ""]
        if self.plan.command():
            lines += [f"Command: `{self.plan.command()}`", ""]
        lines += ["## Inputs", "", "| scenario | from | overrides |", "|---|---|---|"]
        for item in self.plan.inputs:
            source = item.source or item.config.name
            where = f"results directory `{source}`" if item.kind == "results" else f"scenario `{source}`"
            lines.append(f"| `{item.label}` | {where} | {', '.join(f'`{o}`' for o in item.overrides) or '—'} |")
        lines += ["", "## Key outcomes per scenario", "", "Median [5%, 95%] over the runs; — : not an outcome "
                  "of this scenario.", ""]
        lines += ["| outcome | " + " | ".join(f"`{x}`" for x in labels) + " |", "|---|" + "---:|" * len(labels)]
        table = self.outcome_table.set_index(["scenario", "outcome"])
        kinds = _faction_kinds(*(i.config for i in self.plan.inputs))
        for outcome in self.plan.outcomes:
            cells = []
            for label in labels:
                row = table.loc[(label, outcome)]
                cells.append(
                    f"{_num(row['median'])} [{_num(row['q05'])}, {_num(row['q95'])}]" if row["n_runs"] else "—"
                )
            lines.append(f"| {outcome_label(outcome, kinds)} | " + " | ".join(cells) + " |")
        lines += ["", f"## Paired differences vs `{labels[0]}`", "",
                  "| scenario | outcome | mean difference | 95% interval | pairs | verdict |",
                  "|---|---|---:|---:|---:|---|"]
        for row in self.differences.itertuples():
            verdict = f"**{row.verdict}**" if row.verdict == "clear" else row.verdict
            lines.append(
                f"| `{row.scenario}` | {row.label} | {_num(row.mean_diff)} | [{_num(row.ci_low)}, {_num(row.ci_high)}] "
                f"| {row.n_pairs} | {verdict} |"
            )
        lines += ["", "## Summary", "", *(f"- {x}" for x in self.summary_lines()[1:]), ""]
        lines += ["## Plots", "", "Median (line) and 5-95% band (shaded) over the runs, one colour per scenario.", ""]
        for stem, title, *_ in FIGURES:
            lines.append(f"![{title}](plots/{stem}.png)")
        return "\n".join(lines) + "\n"

    def manifest(self, code: dict | None = None) -> dict:
        """manifest.json without `files`: kind, format, inputs, seeds, steps, outcomes, versions, commit, times.

        `code`: the `versions` and `git_commit` entries when already read (`write` reads them once
        for the manifest and the plots' footers); read here otherwise.
        """
        finished = datetime.now(UTC)
        return {
            "kind": KIND,
            "format": MANIFEST_FORMAT,
            "inputs": [
                {"label": i.label, "kind": i.kind, "source": i.source, "scenario": i.config.name,
                 "overrides": list(i.overrides)}
                for i in self.plan.inputs
            ],
            "overrides": list(self.plan.overrides),
            "root_seed": int(self.plan.root_seed),
            "seeds": [int(s) for s in self.plan.seeds],
            "n_replicates": len(self.plan.seeds),
            "steps": int(self.plan.steps),
            "outcomes": list(self.plan.outcomes),
            "confidence": CONFIDENCE,
            "executor": self.executor,
            **(code or _code()),
            "started_utc": self.started.isoformat(timespec="seconds"),
            "finished_utc": finished.isoformat(timespec="seconds"),
            "command": self.plan.command(),
        }

    def write(self, directory: Path, plots: bool = True) -> None:
        """Write the files (module docstring) into `directory` (normally a staging directory); manifest last."""
        directory = Path(directory)
        files: dict[str, dict] = {}
        tables = {
            "outcomes.csv": self.outcome_table,
            "differences.csv": self.differences,
            "runs.csv": self.runs,
            "series.csv": self.series,
        }
        for name, frame in tables.items():
            data = frame.to_csv(index=False)
            atomic_write_text(directory / name, data)
            files[name] = file_record(data.encode("utf-8"), frame)
        text = self.markdown()
        atomic_write_text(directory / "COMPARE.md", text)
        files["COMPARE.md"] = file_record(text.encode("utf-8"))
        code = _code()  # one `git` call for the footers and the manifest: they name the same commit
        if plots:
            plot_comparison(self, directory / "plots", code)
        manifest = {**self.manifest(code), "files": files}
        atomic_write_text(directory / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")

    def save(self, out: str | Path | None = None, plots: bool = True) -> Path:
        """Write the comparison to `out` or a new results/compare/<UTC timestamp>/ (claimed, staged); returns it.

        Raises:
            OutputError: `out` is not writable, exists and is not empty, or another job holds it.
        """
        with claim_output_dir(Path(out) if out is not None else None, parent=COMPARE_DIR) as claim:
            return write_staged(claim.directory, lambda path: self.write(path, plots))


def compare(
    inputs: Sequence,
    *,
    replicates: int | None = None,
    seed: int | None = None,
    steps: int | None = None,
    outcomes: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    workers: int = 1,
    dask: str | None = None,
    backend: Backend | None = None,
) -> Comparison:
    """Compare scenarios (or finished runs) on common random numbers: each vs the first.

    Args:
        inputs: two or more of: a scenario (name in scenarios/, file, or `Scenario`); a pair
            (scenario, ["key=value", ...]) with that input's own overrides; a results
            directory of `run.py run`.
        replicates: runs per scenario (default 30, or the results directories' count).
        seed: root seed (default: the first scenario's, or the results directories').
        steps: days per run (default: the first scenario's, or the results directories').
        outcomes: outcome names (`sim.outcomes`; default `key_outcomes` of the inputs).
        overrides: `key=value` strings applied to every scenario input.
        workers: local worker processes (1: serial); results do not depend on it.
        dask: None, "local" or a Dask scheduler address.
        backend: a backend made beforehand (instead of workers/dask); closed at the end.

    Returns:
        The `Comparison` (tables as DataFrames; `save` writes them).

    Raises:
        ScenarioError: bad inputs (see `prepare`). ResultFileError: a damaged results
        directory. ExecutorError: the Dask scheduler cannot be reached. ValueError: replicates < 1.
    """
    try:
        plan = prepare(inputs, replicates=replicates, seed=seed, steps=steps, outcomes=outcomes, overrides=overrides)
    except BaseException:
        if backend is not None:
            backend.close()
        raise
    return run_comparison(plan, workers=workers, dask=dask, backend=backend)


# --------------------------------------------------------------------------- plots


def scenario_colour(index: int) -> str:
    """The colour of the comparison's input at `index`: black for the reference, then Okabe-Ito colours."""
    from sim.figures import BLACK, OKABE_ITO

    others = [c for c in OKABE_ITO if c != BLACK]
    return BLACK if index == 0 else others[(index - 1) % len(others)]


def _panels(series_names: list[str], prefix: str, leave_out: frozenset[str] = frozenset()) -> list[tuple]:
    """(series, panel title, y label) of one figure; `leave_out`: series shown elsewhere (the insurgents' strength)."""
    if prefix:
        return [
            (n, n.removeprefix(prefix).replace(">", "→"), "")
            for n in series_names
            if n.startswith(prefix) and n not in leave_out
        ]
    return [(n, *VIOLENCE[n]) for n in VIOLENCE if n in series_names]


def _code() -> dict:
    """The `versions` and `git_commit` entries of a manifest (`sim.results`), read now."""
    return {"versions": versions(), "git_commit": git_commit()}


def plot_comparison(comparison: Comparison, directory: Path, code: dict | None = None) -> list[Path]:
    """The overlay plots: per key series, median line and 5-95% band per scenario, one colour each, same axes.

    `code`: the manifest's `versions` and `git_commit` entries for the footers (`_code()` if None).
    Returns the PNGs written (`sim.figures.save_png`), one per figure of `FIGURES` that has a series.
    """
    from matplotlib.lines import Line2D

    from sim.figures import Provenance, new_figure, save_png, zero_axis_range

    code = code or _code()
    series = comparison.series
    names = list(dict.fromkeys(series["series"]))
    insurgents = frozenset(  # their fighters.<name> column counts insurgent cells: drawn as insurgent strength
        f"fighters.{n}" for i in comparison.plan.inputs for n, f in i.config.factions.items() if f.kind == "insurgent"
    )
    labels = comparison.labels
    plan = comparison.plan
    own = [f"{o} ({i.label})" for i in plan.inputs for o in i.overrides if o not in plan.overrides]
    foot = Provenance(
        scenario=" vs ".join(labels),
        overrides=(*plan.overrides, *own),
        steps=plan.steps,
        root_seed=plan.root_seed,
        seeds=tuple(plan.seeds),
        replicates=len(plan.seeds),
        version=code["versions"].get("sim"),
        commit=code["git_commit"],
    ).footer("replicates per scenario, replicate k with the same seed in each (common random numbers)")
    written = []
    grouped = {key: frame for key, frame in series.groupby(["series", "scenario"], sort=False)}
    for stem, title, prefix, ylabel in FIGURES:
        panels = _panels(names, prefix, insurgents)
        if not panels:
            continue
        ncols = min(MAX_COLUMNS, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig = new_figure(
            4.2 * ncols,
            2.9 * nrows + 1.5,
            title=title,
            subtitle=f"median (line) and 5-95% band (shaded) over {len(plan.seeds)} runs per scenario",
            footer=foot,
        )
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, (name, panel_title, panel_ylabel) in enumerate(panels):
            ax = axes[k // ncols][k % ncols]
            drawn = []
            for i, label in enumerate(labels):
                frame = grouped.get((name, label))
                if frame is None:
                    continue
                colour = scenario_colour(i)
                ax.fill_between(frame["step"], frame["q05"], frame["q95"], color=colour, alpha=0.18, lw=0)
                ax.plot(frame["step"], frame["median"], color=colour, lw=1.6)
                drawn += [frame["q05"], frame["q95"], frame["median"]]
            zero_axis_range(ax, *drawn)
            ax.set_title(panel_title, fontsize=10)
            ax.set_xlabel("day", fontsize=9)
            ax.set_ylabel(panel_ylabel or ylabel, fontsize=9)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3, lw=0.5)
        for k in range(len(panels), nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        handles = [Line2D([], [], color=scenario_colour(i), lw=2, label=label) for i, label in enumerate(labels)]
        axes[0][0].legend(handles=handles, fontsize=8, loc="best")
        written.append(save_png(fig, Path(directory) / f"{stem}.png"))
    return written


# --------------------------------------------------------------------------- command line


def inputs_with_overrides(inputs: Sequence[str], overrides_for: Sequence[Sequence[str]]) -> list:
    """The inputs as `compare` takes them, each with its own `--set-for WHICH KEY=VALUE` overrides.

    WHICH is the input's position (1, 2, ...) or the input as written (a scenario file may
    also be named by its file name without the extension).

    Raises:
        ScenarioError: WHICH names no input, or several (then its position is needed); one
            input's key given twice (`check_repeated_overrides`).
    """
    own: list[list[str]] = [[] for _ in inputs]
    for which, setting in overrides_for:
        if which.isascii() and which.isdigit():  # str.isdigit alone takes '٢' (int() reads it as 2)
            if which.startswith("0") and which.strip("0"):  # as whole numbers everywhere else: '02' is not silently 2
                raise _error(f"{which}: a leading zero is refused; write {which.lstrip('0') or '0'}", "--set-for")
            position = int(which)
            if not 1 <= position <= len(inputs):
                raise _error(f"{which}: there are inputs 1 to {len(inputs)} only", "--set-for")
            matches = [position - 1]
        else:
            matches = [k for k, x in enumerate(inputs) if x == which or Path(x).stem == which]
        if not matches:
            raise _error(
                f"{which}: no input is {which!r} (inputs: {', '.join(inputs)}; or give a position 1 to "
                f"{len(inputs)})",
                "--set-for",
            )
        if len(matches) > 1:
            where = ", ".join(str(k + 1) for k in matches)
            raise _error(f"{which}: inputs {where} are all {which!r}: give a position instead", "--set-for")
        own[matches[0]].append(setting)
    for position, settings in enumerate(own, start=1):
        check_repeated_overrides(settings, f"--set-for {position}")
    return [(x, tuple(o)) if o else x for x, o in zip(inputs, own)]


def cli_compare(args) -> int:
    """`run.py compare`: resolve the inputs, claim the output directory, run, write, print the summary and the path.

    Everything that can be refused (inputs, overrides, outcomes, seeds of results
    directories, --out) is refused before any run: ScenarioError, ResultFileError,
    OutputError or ExecutorError, which the command line maps to exit status 2. Returns 0.
    """
    outcomes = None
    if args.outcomes is not None:
        outcomes = [name.strip() for text in args.outcomes for name in text.split(",") if name.strip()]
    plan = prepare(
        inputs_with_overrides(args.inputs, args.overrides_for),
        replicates=args.replicates,
        seed=args.seed,
        steps=args.steps,
        outcomes=outcomes,
        overrides=args.overrides,
    )
    with claim_output_dir(args.out, parent=COMPARE_DIR) as claim:
        comparison = run_comparison(plan, workers=args.workers, dask=args.dask)
        out = comparison.save(claim.directory, plots=not args.no_plots)
    print("\n".join(comparison.summary_lines()))
    print(out)
    sys.stdout.flush()
    return 0
