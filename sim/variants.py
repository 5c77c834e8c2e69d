"""Variant comparison: does each policy variant move the outcomes the way a policy student expects?

A variant is a scenario file that extends the base (`scenarios/salary_parity.yaml` extends
`baseline.yaml`). `compare_variants` runs the base and every variant at the *same* replicate
seeds (common random numbers: `sim.seeding.replicate_seeds(root, n)`, replicate k has one
seed in every scenario), computes scalar outcomes per run (`sim.outcomes`), and for each
(variant, outcome) the paired difference variant - base seed by seed: its mean and a 95%
bootstrap interval that resamples the per-seed differences (`sim.intervals.bootstrap_interval`,
BCa, seeded). Pairing removes the between-seed noise the two runs share, so a smaller
effect shows with the same number of runs.

    from sim.variants import compare_variants, render_variant_table
    table = compare_variants("baseline", ["salary_parity", "patrons_agree"], replicates=100, seed=1, workers=4)
    print(render_variant_table(table))     # Markdown: variant, outcome, expected, mean, CI, verdict
    table.attrs["runs"]                    # one row per scenario and replicate: the outcomes

`run.py compare-variants [BASE] [--variant NAME ...]` (`cli_compare_variants`) does the same
and writes `variants.csv`, `variant_runs.csv` and `VARIANTS.md` into a new directory;
`sim.patterns.write_docs(report, variants=table)` puts the table into docs/VALIDATION.md.

Each run goes through `sim.runner.run_model` (the one function that runs a model), mapped by
`sim.executors` (serial, processes or Dask) as `validate-patterns` does; a worker returns
only the run's outcomes (and, if asked, some timeseries columns). `run_scenarios` is that
loop, shared with `run.py compare` (`sim.comparison`), which also reuses `paired_differences`.
The expected signs (`EXPECTATIONS`) are issue 9's: salary parity and the NDF's exemption
lower NDF->IRGC defection; closing the supply route weakens the IRGC; agreeing patrons lower
clashes, raise agreements and lower the insurgent peak by a policy-relevant amount; an ISIS
resurgence raises insurgent activity; courting tribes helps the IRGC, which courts them.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from sim.executors import Backend, make_backend, progress_bar
from sim.intervals import CONFIDENCE, bootstrap_interval
from sim.outcomes import check_outcome_name, compute_outcomes, outcome_name
from sim.results import (
    atomic_write_text,
    claim_output_dir,
    rerun_command,
    write_staged,
)
from sim.runner import run_model
from sim.scenario import DEFAULT_SCENARIO, load_scenario, resolve_scenario_path, variant_path
from sim.schema import Scenario
from sim.seeding import named_stream, replicate_seeds
from sim.yaml_source import Problem, ScenarioError

__all__ = [
    "Expectation",
    "cli_compare_variants",
    "compare_variants",
    "default_outcomes",
    "paired_differences",
    "render_variant_table",
    "run_scenarios",
    "run_variants",
    "variant_expectations",
]

TABLE = "variants.csv"
RUNS_TABLE = "variant_runs.csv"
MARKDOWN = "VARIANTS.md"


@dataclass(frozen=True)
class Expectation:
    """The direction a variant should move one outcome, relative to the base.

    Attributes:
        outcome: the outcome name (`sim.outcomes`).
        direction: "+" (raises it: the interval of the mean difference lies above zero,
            or above `margin` x |base mean| if a margin is given), "-" (lowers it: the
            interval lies below zero, or below -`margin` x |base mean|), or "not lower"
            (non-inferiority: the interval lies above -`margin` x |base mean|).
        margin: the relative amount the interval must clear (0: zero itself).
        why: the reason, with the issue's or the article's words.
    """

    outcome: str
    direction: str
    margin: float = 0.0
    why: str = ""

    def holds(self, low: float, high: float, base_mean: float) -> bool | None:
        """Whether the interval [low, high] of the mean difference shows the expected move (None if undefined)."""
        if math.isnan(low) or math.isnan(high):
            return None
        bound = self.margin * abs(base_mean) if not math.isnan(base_mean) else 0.0
        if self.direction == "+":
            return low > bound
        if self.direction == "-":
            return high < -bound
        if self.direction == "not lower":
            return low > -bound
        raise ValueError(f"unknown direction {self.direction!r} (use '+', '-' or 'not lower')")

    @property
    def label(self) -> str:
        """The direction as printed: '+', '-', '- (>= 10%)', 'not lower (by > 5%)'."""
        if self.direction == "not lower":
            return f"not lower (by > {self.margin:.0%})" if self.margin else "not lower"
        return f"{self.direction} (≥ {self.margin:.0%})" if self.margin else self.direction


def variant_expectations(base: Scenario) -> dict[str, tuple[str, tuple[Expectation, ...]]]:
    """The base scenario's policy variants (`validation.variants`): variant -> (rule, its expectations).

    The key is the variant as the base names it (a name in scenarios/ or a file path); the
    rule is "all" (every expectation must hold) or "any" (one is enough). Empty if the base
    lists no variants.
    """
    if base.validation is None:
        return {}
    return {
        v.scenario: (v.rule, tuple(Expectation(e.outcome, e.direction, e.margin, e.why) for e in v.expect))
        for v in base.validation.variants
    }


def default_outcomes(base: Scenario) -> list[str]:
    """The outcomes compared by default: `validation.compare_outcomes`, then every expected one not among them."""
    if base.validation is None:
        return []
    names = list(base.validation.compare_outcomes)
    for _, expectations in variant_expectations(base).values():
        names += [e.outcome for e in expectations]
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class VariantJob:
    """What every run of a comparison shares (sent with each task: small and picklable)."""

    configs: tuple[Scenario, ...]  # the base first, then the variants
    outcomes: tuple[tuple[str, ...], ...]  # per scenario, the outcome names it can compute
    steps: int
    labels: tuple[str, ...] = ()  # per scenario, its name in the tables (default: the scenario's own name)
    series: tuple[str, ...] = ()  # timeseries columns each run also returns: exact names, or prefixes ending in "."


SERIES = "series"  # the key of a run's returned timeseries columns (`run_outcomes` with `VariantJob.series`)


def run_outcomes(job: VariantJob, task: tuple[int, int, int]) -> dict:
    """Run one model (`sim.runner.run_model`) and return its outcomes; `task` is (scenario, replicate, seed).

    With `job.series`, the row also holds, under `SERIES`, the run's `step` and the
    timeseries columns asked for (a DataFrame, one row per step).
    """
    index, replicate, seed = task
    result = run_model(job.configs[index], seed, job.steps, replicate)
    label = job.labels[index] if job.labels else job.configs[index].name
    row = {"scenario": label, "replicate": replicate, "seed": seed}
    row.update(compute_outcomes(list(job.outcomes[index]), result.table, lambda: result.events, result.meta))
    if job.series:
        row[SERIES] = result.recorded.get_model_vars_dataframe(step_column="step", columns=job.series)
    return row


def run_scenarios(
    job: VariantJob,
    seeds: Sequence[int],
    backend: Backend,
    desc: str = "runs",
) -> tuple[list[dict], dict[tuple[int, int], pd.DataFrame]]:
    """Run every scenario of `job` at every seed (common random numbers); the one loop of the comparisons.

    Replicate k runs with `seeds[k]` in every scenario. The runs are mapped by `backend`
    (closed at the end) with the project's progress bar (`sim.executors.progress_bar`,
    shown on a terminal only), and their rows are put in a fixed order (scenario, then
    replicate), so the result does not depend on the backend or on the order runs finish.

    Returns:
        (rows, series): one outcome row per run (`run_outcomes`, without `SERIES`), and,
        with `job.series`, each run's timeseries columns keyed by (scenario index, replicate).
    """
    tasks = [(i, k, s) for i in range(len(job.configs)) for k, s in enumerate(seeds)]
    found: dict[tuple[int, int], dict] = {}
    try:
        with progress_bar(len(tasks), desc) as bar:
            for index, row in backend.map(partial(run_outcomes, job), tasks, bar=bar):
                found[tasks[index][:2]] = row
    finally:
        backend.close()
    rows, series = [], {}
    for key in sorted(found):
        row = found[key]
        if SERIES in row:
            series[key] = row.pop(SERIES)
        rows.append(row)
    return rows, series


def _error(message: str) -> ScenarioError:
    """A one-problem ScenarioError about the comparison as asked (exit 2 at the command line)."""
    return ScenarioError([Problem(file="compare-variants", key_path="", line=None, message=message)])


def _directory(scenario: str | Path | Scenario) -> Path | None:
    """The folder of a scenario file (where its variants' relative paths start), None for a `Scenario`."""
    if isinstance(scenario, Scenario):
        return None
    return resolve_scenario_path(scenario).parent


def _load(scenario: str | Path | Scenario, overrides: Sequence[str]) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(resolve_scenario_path(scenario), list(overrides))


def run_variants(
    base: str | Path | Scenario,
    variants: Sequence[str | Path | Scenario],
    replicates: int,
    seed: int | None = None,
    workers: int = 1,
    steps: int | None = None,
    outcomes: Sequence[str] = (),
    *,
    overrides: Sequence[str] = (),
    dask: str | None = None,
    backend: Backend | None = None,
) -> pd.DataFrame:
    """Run the base and each variant at the same replicate seeds; one row of outcomes per run.

    Args:
        base: the base scenario (a name in scenarios/, a file, or a validated `Scenario`).
        variants: the variant scenarios, likewise.
        replicates: runs per scenario (>= 1); replicate k has the same seed in every scenario.
        seed: the root seed (default: the base scenario's).
        workers: local worker processes (1: serial), as `sim.executors.make_backend`.
        steps: days per run (default: the base scenario's; the same for every scenario).
        outcomes: outcome names (`sim.outcomes`); a name a scenario lacks (e.g. a site it
            does not have) is left empty for it.
        overrides: `key=value` strings applied to every scenario file.
        dask: None, "local" or a Dask scheduler address.
        backend: a backend made beforehand (instead of workers/dask); closed at the end.

    Returns:
        Columns scenario, replicate, seed and one per outcome, sorted by scenario order and
        replicate; `attrs` holds root_seed, steps and the scenario names.

    Raises:
        ScenarioError: a scenario or override is bad, or a variant has the base's name.
        ValueError: replicates < 1.
    """
    try:
        if replicates < 1:
            raise ValueError("replicates must be >= 1")
        configs = [_load(base, overrides)] + [_load(v, overrides) for v in variants]
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise _error(f"the base and the variants need distinct names, got {', '.join(names)}")
    except BaseException:
        if backend is not None:
            backend.close()
        raise
    root_seed = configs[0].seed if seed is None else int(seed)
    n_steps = configs[0].steps if steps is None else int(steps)
    per_scenario = []
    for config in configs:
        valid = [outcome_name(o, config) for o in outcomes if check_outcome_name(o, config) is None]
        per_scenario.append(tuple(valid))
    job = VariantJob(tuple(configs), tuple(per_scenario), n_steps)
    backend = backend if backend is not None else make_backend(workers, dask)
    rows, _ = run_scenarios(job, replicate_seeds(root_seed, replicates), backend, "variants")
    columns = ["scenario", "replicate", "seed", *[outcome_name(o, configs[0]) for o in outcomes]]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    order = {name: i for i, name in enumerate(names)}
    frame = frame.sort_values(["scenario", "replicate"], key=lambda c: c.map(order) if c.name == "scenario" else c)
    frame = frame.reset_index(drop=True)
    frame.attrs.update(root_seed=root_seed, steps=n_steps, base=names[0], variants=names[1:])
    return frame


# --------------------------------------------------------------------------- paired differences


# Below this many pairs of runs a difference is reported but not judged: a bootstrap interval of a
# mean over 2-9 seeds is far too narrow (3 pairs called 7 of 17 outcomes of a do-nothing change
# clear, where 30 pairs of the same seeds called none but the one it affects). Shared by
# compare-variants and compare (`sim.comparison`).
MIN_PAIRS = 10


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


def paired_differences(
    runs: pd.DataFrame,
    base: str,
    variants: Sequence[str],
    outcomes: Sequence[str],
    root_seed: int,
    expectations: dict[str, tuple[Expectation, ...]] | None = None,
    confidence: float = CONFIDENCE,
    rules: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Per (variant, outcome): the mean paired difference variant - base over seeds, its bootstrap interval, verdict.

    Runs are paired by seed (a seed missing in either scenario, or an undefined outcome,
    drops the pair). The interval resamples the per-seed differences (`bootstrap_interval`,
    BCa), drawing from `sim.seeding.named_stream(root_seed, "variant-bootstrap:<variant>:<outcome>")`,
    so each row's interval is reproducible and independent of the other rows.

    Args:
        runs: one row per run: scenario, seed and one column per outcome (`run_variants`).
        base: the base scenario's name.
        variants: the variants' names, in table order.
        outcomes: the outcome columns to compare.
        root_seed: the root seed of the bootstrap streams.
        expectations: variant name -> its `Expectation`s (default: none).
        confidence: the intervals' coverage.
        rules: variant name -> "all" or "any", how its expectations combine (default "all").

    Returns:
        One row per (variant, outcome), in order: variant, outcome, expected (label, empty if
        none), why, base_mean, variant_mean, mean_diff, ci_low, ci_high, relative_diff
        (mean_diff / |base_mean|), n_pairs, as_expected (True/False; None without
        expectation, or with fewer than `MIN_PAIRS` pairs: not judged), variant_rule ('all' or 'any': how the variant's
        expectations combine).
    """
    expectations = expectations or {}
    rules = rules or {}
    base_runs = runs[runs["scenario"] == base].set_index("seed")
    rows = []
    for variant in variants:
        other = runs[runs["scenario"] == variant].set_index("seed")
        seeds = base_runs.index.intersection(other.index).sort_values()  # an order independent of the rows
        wanted = {e.outcome: e for e in expectations.get(variant, ())}
        for outcome in outcomes:
            if outcome not in runs.columns:
                continue
            b = pd.to_numeric(base_runs.loc[seeds, outcome], errors="coerce").to_numpy(dtype=float)
            v = pd.to_numeric(other.loc[seeds, outcome], errors="coerce").to_numpy(dtype=float)
            keep = ~(np.isnan(b) | np.isnan(v))
            b, v = b[keep], v[keep]
            diff = v - b
            mean_diff = float(diff.mean()) if len(diff) else float("nan")
            base_mean = float(b.mean()) if len(b) else float("nan")
            rng = named_stream(int(root_seed), f"variant-bootstrap:{variant}:{outcome}")
            low, high = bootstrap_interval((diff,), _mean, rng, confidence) if len(diff) else (math.nan, math.nan)
            expectation = wanted.get(outcome)
            rows.append(
                {
                    "variant": variant,
                    "outcome": outcome,
                    "expected": expectation.label if expectation else "",
                    "why": expectation.why if expectation else "",
                    "base_mean": base_mean,
                    "variant_mean": float(v.mean()) if len(v) else float("nan"),
                    "mean_diff": mean_diff,
                    "ci_low": low,
                    "ci_high": high,
                    "relative_diff": mean_diff / abs(base_mean) if base_mean else float("nan"),
                    "n_pairs": int(len(diff)),
                    "as_expected": (
                        expectation.holds(low, high, base_mean) if expectation and len(diff) >= MIN_PAIRS else None
                    ),
                    "variant_rule": rules.get(variant, "all"),
                }
            )
    table = pd.DataFrame(rows)
    if len(table):
        table["as_expected"] = table["as_expected"].astype("boolean")
    return table


def variant_verdicts(table: pd.DataFrame) -> dict[str, bool | None]:
    """Variant -> whether it moves its outcomes as expected (its rule: all or any of its rows); None if undecided.

    A variant without expectations is left out; an undefined row (no interval) makes the
    variant undecided unless the rule is already met or failed without it.
    """
    verdicts: dict[str, bool | None] = {}
    for variant, rows in table[table["expected"] != ""].groupby("variant", sort=False):
        values = [None if pd.isna(x) else bool(x) for x in rows["as_expected"]]
        rule = rows["variant_rule"].iloc[0]
        if rule == "any":
            verdicts[variant] = True if any(v is True for v in values) else (None if None in values else False)
        else:
            verdicts[variant] = False if any(v is False for v in values) else (None if None in values else True)
    return verdicts


def compare_variants(
    base: str | Path | Scenario,
    variants: Sequence[str | Path | Scenario] | None = None,
    replicates: int = 100,
    seed: int | None = None,
    workers: int = 1,
    steps: int | None = None,
    outcomes: Sequence[str] | None = None,
    *,
    overrides: Sequence[str] = (),
    dask: str | None = None,
    backend: Backend | None = None,
) -> pd.DataFrame:
    """Run the base and the variants on common random numbers and compare them (`run_variants`, `paired_differences`).

    Args:
        base: the base scenario (name, file or `Scenario`).
        variants: the variant scenarios (default: the base's `validation.variants`).
        replicates: runs per scenario; replicate k has the same seed in every scenario.
        seed: the root seed of the replicates and of the bootstraps (default: the base's).
        workers: local worker processes (1: serial).
        steps: days per run (default: the base scenario's).
        outcomes: the outcomes to compare (default `default_outcomes(base)`).
        overrides: `key=value` strings applied to every scenario file.
        dask: None, "local" or a Dask scheduler address.
        backend: a backend made beforehand; closed at the end.

    Returns:
        The table of `paired_differences`, judged against the base's expectations
        (`variant_expectations`: a variant is matched by the name its file gives it); `attrs`
        holds the per-run table (`runs`), the root seed, steps, replicates, base and variant names.

    Raises:
        ScenarioError: bad scenarios or overrides, or no variants or outcomes to compare.
    """
    started = time.perf_counter()
    base_config = _load(base, overrides)
    planned = variant_expectations(base_config)
    if variants is None:
        variants = list(planned)
    if outcomes is None:
        outcomes = default_outcomes(base_config)
    if not variants or not outcomes:
        raise _error(
            f"scenario '{base_config.name}' lists no variants (validation.variants) or outcomes to compare: "
            "name them (--variant NAME)"
        )
    expectations, rules = {}, {}
    for key, (rule, items) in planned.items():
        path = variant_path(key, _directory(base))
        if path is None:
            continue
        name = load_scenario(path, list(overrides)).name
        expectations[name], rules[name] = items, rule
    runs = run_variants(
        base,
        variants,
        replicates,
        seed,
        workers,
        steps,
        outcomes,
        overrides=overrides,
        dask=dask,
        backend=backend,
    )
    names = [c for c in runs.columns if c not in ("scenario", "replicate", "seed")]
    table = paired_differences(
        runs, runs.attrs["base"], runs.attrs["variants"], names, runs.attrs["root_seed"], expectations, rules=rules
    )
    table.attrs.update(
        runs=runs,
        root_seed=runs.attrs["root_seed"],
        steps=runs.attrs["steps"],
        replicates=int(replicates),
        base=runs.attrs["base"],
        variants=list(runs.attrs["variants"]),
        workers=int(workers),
        elapsed_s=time.perf_counter() - started,
    )
    return table


# --------------------------------------------------------------------------- writing


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.3g}"


def _verdict(value, n_pairs: int = MIN_PAIRS) -> str:
    if n_pairs < MIN_PAIRS:
        return f"too few runs ({n_pairs} < {MIN_PAIRS} pairs)"
    if value is None or pd.isna(value):
        return "undefined"
    return "yes" if bool(value) else "**no**"


def render_variant_table(table: pd.DataFrame) -> str:
    """The variant comparison as Markdown: the expected moves with their intervals and verdicts, then the rest.

    Args:
        table: the table of `compare_variants` (or `paired_differences`).

    Returns:
        Markdown text: a sentence on the method, one table of the (variant, outcome) pairs
        with an expected direction, one verdict line per variant, and the other outcomes
        in a collapsed block.
    """
    attrs = table.attrs
    n = attrs.get("replicates", int(table["n_pairs"].max()) if len(table) else 0)
    method = (
        f"Each variant against `{attrs.get('base', 'the base')}` on common random numbers: {n} replicate seeds "
        f"(root seed {attrs.get('root_seed', '?')}, {attrs.get('steps', '?')} days), the same in every scenario. "
        "Per outcome, the mean of the paired differences variant - base (seed by seed) and its "
        f"{CONFIDENCE:.0%} bootstrap interval (BCa, resampling the per-seed differences, seeded). "
        "'As expected' means the interval excludes zero on the expected side, or the stated margin: "
        "'- (≥ 10%)' asks for a cut of at least 10% of the base mean, 'not lower (by > 5%)' that a loss of "
        "more than 5% of it is excluded. The expectations are data: the base scenario's `validation.variants`."
    )
    if attrs.get("command"):
        method += f" Command: `{attrs['command']}`."
    header = [
        "| variant | outcome | expected | base mean | variant mean | mean difference | 95% interval | relative "
        "| as expected |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]

    def line(row) -> str:
        rel = "n/a" if pd.isna(row.relative_diff) else f"{row.relative_diff:+.0%}"
        return (
            f"| `{row.variant}` | `{row.outcome}` | {row.expected or '—'} | {_num(row.base_mean)} "
            f"| {_num(row.variant_mean)} | {_num(row.mean_diff)} | [{_num(row.ci_low)}, {_num(row.ci_high)}] "
            f"| {rel} | {_verdict(row.as_expected, row.n_pairs) if row.expected else ''} |"
        )

    expected = table[table["expected"] != ""] if len(table) else table
    others = table[table["expected"] == ""] if len(table) else table
    lines = [method, "", *header, *(line(r) for r in expected.itertuples())]
    verdicts = variant_verdicts(table) if len(table) else {}
    if verdicts:
        lines += [""]
        for variant, verdict in verdicts.items():
            rule = expected.loc[expected["variant"] == variant, "variant_rule"].iloc[0]
            whys = "; ".join(w for w in dict.fromkeys(expected.loc[expected["variant"] == variant, "why"]) if w)
            whys = whys[:1].upper() + whys[1:]
            pairs = int(expected.loc[expected["variant"] == variant, "n_pairs"].min())
            lines.append(
                f"- `{variant}` ({rule} of its expected moves): {_verdict(verdict, pairs).replace('**', '')}. {whys}."
            )
    if len(others):
        lines += [
            "",
            "<details><summary>other outcomes (no expected direction)</summary>",
            "",
            *header,
            *(line(r) for r in others.itertuples()),
            "",
            "</details>",
        ]
    return "\n".join(lines)


def _command(args, base: str, variants: Sequence[str]) -> str:
    parts = ["python", "run.py", "compare-variants", base]
    for v in variants:
        parts += ["--variant", v]
    parts += ["--replicates", str(args.replicates)]
    if getattr(args, "seed", None) is not None:
        parts += ["--seed", str(args.seed)]
    if getattr(args, "steps", None) is not None:
        parts += ["--steps", str(args.steps)]
    parts += ["--workers", str(getattr(args, "workers", 1) or 1)]
    if getattr(args, "dask", None):
        parts += ["--dask", args.dask]
    for o in getattr(args, "overrides", None) or []:
        parts += ["--set", o]
    return rerun_command(parts)


def write_variants(table: pd.DataFrame, directory: str | Path) -> Path:
    """Write variants.csv, variant_runs.csv (if the table carries its runs) and VARIANTS.md into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / TABLE, table.to_csv(index=False))
    runs = table.attrs.get("runs")
    if runs is not None:
        atomic_write_text(directory / RUNS_TABLE, runs.to_csv(index=False))
    title = f"# Variants of `{table.attrs.get('base', 'the base')}`"
    atomic_write_text(directory / MARKDOWN, f"{title}\n\n{render_variant_table(table)}\n")
    return directory


def cli_compare_variants(args) -> int:
    """`run.py compare-variants`: run base and variants on common seeds, print the table, write the directory.

    Usage: `run.py compare-variants [BASE] [--variant NAME ...] [--replicates N] [--seed N]
    [--steps N] [--workers N] [--dask ADDR] [--set K=V ...] [--out DIR]`. Returns 0 if every
    variant with expectations moves as expected, 1 otherwise.

    Bad input raises `ScenarioError` (or `OutputError` for --out, `ExecutorError` for an
    unreachable scheduler), which the caller maps to exit 2.
    """
    overrides = list(getattr(args, "overrides", None) or [])
    base = getattr(args, "base", None) or DEFAULT_SCENARIO
    out = getattr(args, "out", None)
    base_config = load_scenario(resolve_scenario_path(base), overrides)  # bad input: before any run
    variants = list(getattr(args, "variants", None) or variant_expectations(base_config))
    if not variants:
        raise _error(f"scenario '{base_config.name}' lists no variants (validation.variants): name them (--variant)")
    for v in variants:
        load_scenario(resolve_scenario_path(v), overrides)
    # Claimed (writable, not in use, empty) before any run, held until the table is written.
    with claim_output_dir(Path(out) if out is not None else None, scenario=base_config.name, kind="variants") as claim:
        return _compare_claimed(args, claim.directory, base, variants, overrides)


def _compare_claimed(args, final: Path, base: str, variants: list[str], overrides: list[str]) -> int:
    table = compare_variants(
        base,
        variants,
        replicates=args.replicates,
        seed=getattr(args, "seed", None),
        workers=getattr(args, "workers", None) or 1,
        steps=getattr(args, "steps", None),
        overrides=overrides,
        dask=getattr(args, "dask", None),
    )
    table.attrs["command"] = _command(args, base, variants)
    expected = table.loc[table["expected"] != ""]
    shown = expected[["variant", "outcome", "expected", "mean_diff", "ci_low", "ci_high"]].copy()
    # In words, as VARIANTS.md says it (pandas printed <NA> for "too few runs to judge")
    verdict_words = zip(expected["as_expected"], expected["n_pairs"], strict=True)
    shown["as expected"] = [_verdict(v, n).replace("**", "") for v, n in verdict_words]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.to_string(index=False))
    directory = write_staged(final, lambda path: write_variants(table, path))
    verdicts = variant_verdicts(table)
    print(_verdict_line(table, verdicts))
    print(directory)
    sys.stdout.flush()
    return 0 if verdicts and all(v is True for v in verdicts.values()) else 1


def _verdict_line(table: pd.DataFrame, verdicts: dict[str, bool | None]) -> str:
    """One line: how many variants move as expected, or why none is judged (exit 1 unless all do)."""
    pairs = int(table["n_pairs"].min()) if len(table) else 0
    if pairs < MIN_PAIRS:
        return f"not judged: too few runs ({pairs} < {MIN_PAIRS} pairs of runs; --replicates {MIN_PAIRS} or more)"
    if not verdicts:
        return "not judged: no variant states an expected move (validation.variants)"
    failed = [name for name, v in verdicts.items() if v is False]
    undecided = [name for name, v in verdicts.items() if v is None]
    line = f"{sum(v is True for v in verdicts.values())} of {len(verdicts)} variants move as expected"
    if failed:
        line += f"; not as expected: {', '.join(failed)}"
    if undecided:
        line += f"; undefined: {', '.join(undecided)}"
    return line
