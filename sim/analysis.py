"""Sweep analysis: summaries per design point, sensitivity indices, and sweep plots.

    from sim.analysis import analyze
    analyze("results/baseline/sweep-20250101T000000Z")   # -> [summary.csv, sobol.csv, plots/...]

Reads a sweep directory's files alone (never a model in memory):

- `design.csv`    one row per design point and replicate: `point, replicate, seed`, the
                  parameter columns, and `sobol_block, sobol_column` for Sobol designs
- `outcomes.csv`  one row per finished run: `point, replicate, seed, status` ('ok' or
                  'failed'), `error`, the parameter columns, one column per outcome
- `manifest.json` at least `design`, `parameters`, `outputs`, `scenario`, `replicates`,
                  `root_seed`

Only runs with `status == 'ok'` are used. `analyze` writes, atomically:

- `summary.csv`   per design point: parameters, `n_ok`, `n_failed`, and per outcome the
                  median and 5 % / 95 % quantiles across replicates (`summarize`)
- `sobol.csv`     Sobol designs: first-order (S1) and total (ST) indices with bootstrap
                  confidence intervals (`sobol_analysis`)
- `screening.csv` other designs: Spearman rank correlation of each numeric parameter with
                  each outcome over all runs (`screening`)
- `plots/`        `outcomes_vs_<param>.png` (one swept parameter), `heatmap_<outcome>.png`
                  (two parameters on a grid), `sobol_indices.png` (Sobol designs), or
                  `screening.png` (a tornado chart, every other case)

Figures follow `sim.plots`: `matplotlib.figure.Figure` with the Agg canvas (no pyplot),
Okabe-Ito colours, a title, a subtitle saying what lines and bands show, and a footnote
with the scenario, design, points and replicates; PNGs are written atomically.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import tempfile
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import stats

from sim.figures import BLUE, GREY, ORANGE, VERMILLION, Provenance, new_figure, save_png, zero_axis_range
from sim.outcomes import KINDS, outcome_label, outcome_words, parse
from sim.results import (
    OutputError,
    ResultFileError,
    atomic_write_text,
    check_plots_dir,
    directory_kind,
    name_the_final_file,
    read_manifest,
)
from sim.schema import parameter_label, schema_field

__all__ = [
    "SCREENING_COLUMNS",
    "SOBOL_TABLE_COLUMNS",
    "analyze",
    "outcome_label",
    "parameter_label",
    "safe_name",
    "saltelli_2010",
    "screening",
    "sobol_analysis",
    "summarize",
]

QUANTILES = (0.05, 0.95)
SOBOL_TABLE_COLUMNS = ["outcome", "parameter", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high", "n_base"]
SCREENING_COLUMNS = ["outcome", "parameter", "spearman_rho", "p_value", "n"]
BCA_MAX_BASE = 4096  # above this the BCa jackknife (O(N^2)) is slow; percentile intervals are used


# --------------------------------------------------------------------------- inputs


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}")


def _ok_runs(outcomes: pd.DataFrame, outputs: Sequence[str]) -> pd.DataFrame:
    """The successful runs, with outcome columns as floats (blank cells -> NaN)."""
    _require(outcomes, ["point", "status", *outputs], "outcomes")
    ok = outcomes.loc[outcomes["status"].astype(str) == "ok"].copy()
    for name in outputs:
        ok[name] = pd.to_numeric(ok[name], errors="coerce").astype(float)
    return ok


# --------------------------------------------------------------------------- summaries


def summarize(outcomes: pd.DataFrame, parameters: Sequence[str], outputs: Sequence[str]) -> pd.DataFrame:
    """Per design point: its parameters, run counts, and each outcome's median and 5-95 % range.

    Columns: `point`, the parameter values, `n_ok`, `n_failed`, and per outcome across the
    point's ok replicates `<out>.median`, `<out>.q05`, `<out>.q95` (quantiles by linear
    interpolation, as in `sim.plots`); one row per point, sorted by point.

    Every point that appears in `outcomes` gets a row; one whose runs all failed has
    `n_ok = 0` and NaN statistics. NaN outcome values of ok runs (e.g. a share of zero
    events) are left out of that outcome's statistics.

    Raises:
        ValueError: `outcomes` lacks `point`, `status`, a parameter or an outcome column.
    """
    parameters, outputs = list(parameters), list(outputs)
    _require(outcomes, ["point", "status", *parameters, *outputs], "outcomes")
    ok = _ok_runs(outcomes, outputs)
    points = outcomes.groupby("point", sort=True)
    summary = points[parameters].first() if parameters else pd.DataFrame(index=points.size().index)
    status = outcomes["status"].astype(str)
    summary["n_ok"] = (status == "ok").groupby(outcomes["point"]).sum().astype(int)
    summary["n_failed"] = (status != "ok").groupby(outcomes["point"]).sum().astype(int)
    grouped = ok.groupby("point")[outputs]
    median, low, high = grouped.median(), grouped.quantile(QUANTILES[0]), grouped.quantile(QUANTILES[1])
    for name in outputs:
        summary[f"{name}.median"] = median[name].reindex(summary.index)
        summary[f"{name}.q05"] = low[name].reindex(summary.index)
        summary[f"{name}.q95"] = high[name].reindex(summary.index)
    return summary.reset_index()


# --------------------------------------------------------------------------- Sobol indices


def _sobol_blocks(design: pd.DataFrame, d: int) -> np.ndarray:
    """Design points as a (d + 2, N) array: rows A, B, AB_0 .. AB_{d-1}; column = base sample.

    Within each block, base sample j is the block's j-th point in point order (the order in
    which `sim.design.build_design` writes them).
    """
    _require(design, ["point", "sobol_block", "sobol_column"], "design (a sobol design)")
    points = design.drop_duplicates("point").sort_values("point")
    block, column = points["sobol_block"].astype(str), points["sobol_column"].astype(int)
    rows = [points.loc[block == "A", "point"], points.loc[block == "B", "point"]]
    rows += [points.loc[(block == "AB") & (column == i), "point"] for i in range(d)]
    n = len(rows[0])
    sizes = [len(r) for r in rows]
    if n == 0 or any(size != n for size in sizes):
        raise ValueError(f"design: not a Saltelli design for {d} parameter(s): block sizes A, B, AB_0.. = {sizes}")
    if (block == "AB").sum() != d * n:
        raise ValueError(f"design: AB rows with sobol_column outside 0..{d - 1}")
    return np.vstack([r.to_numpy(dtype=np.int64) for r in rows])


def saltelli_2010(f_a, f_b, f_ab):
    """First-order and total Sobol indices by the estimators of Saltelli et al. (2010).

    Saltelli, A., Annoni, P., Azzini, I., Campolongo, F., Ratto, M. and Tarantola, S. (2010),
    "Variance based sensitivity analysis of model output. Design and estimator for the total
    sensitivity index", Computer Physics Communications 181(2): 259-270,
    doi:10.1016/j.cpc.2009.09.018. Table 2, estimator (b) for S1,
    mean(f_B * (f_AB_i - f_A)) / V, and (f) (Jansen's) for ST, mean((f_A - f_AB_i)^2) / (2 V),
    with V the variance of f_A and f_B pooled.

    This is the estimator `scipy.stats.sobol_indices` uses by default, written out so it can
    be bootstrapped with a seeded generator and applied when N is not a power of 2 (scipy
    refuses those).

    Args:
        f_a: outcomes at the base samples of matrix A, shape (..., n).
        f_b: outcomes at the base samples of matrix B, shape (..., n).
        f_ab: outcomes at A with column i taken from B, shape (d, ..., n), row i for parameter i.
            All three centred on the mean of f_a and f_b (as scipy does).

    Returns:
        An array (2, d, ...): S1 then ST, one per parameter (then the batch axes of f_a).
        NaN where f_a and f_b together have zero variance (numpy's warnings are silenced).
    """
    var = np.var(np.concatenate([f_a, f_b], axis=-1), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.mean(f_b * (f_ab - f_a), axis=-1) / var
        total = 0.5 * np.mean((f_a - f_ab) ** 2, axis=-1) / var
    return np.stack([first, total])


def sobol_analysis(
    outcomes: pd.DataFrame,
    design: pd.DataFrame,
    parameters: Sequence[str],
    outputs: Sequence[str],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    ci_method: str = "auto",
) -> pd.DataFrame:
    """First-order (S1) and total (ST) Sobol indices with bootstrap confidence intervals.

    Each design point's outcome is the mean over its ok replicates, so the indices describe
    the model's expected outcome; with few replicates the run-to-run noise adds to the
    variance and to every ST (it belongs to no parameter). f_A (N,), f_B (N,) and f_AB
    (d, N) are rebuilt from the design's blocks and passed to
    `scipy.stats.sobol_indices(func={'f_A': (1, N), 'f_B': (1, N), 'f_AB': (d, 1, N)}, n=N)`.

    A base sample j is dropped from A, B and every AB_i (with a warning) when any of its
    d + 2 points has no ok run, or (for that outcome only) a NaN mean. The remaining base
    samples no longer form a power of 2, which scipy refuses; the same estimator
    (`saltelli_2010`) is then applied directly.

    Confidence intervals: `scipy.stats.bootstrap` over base samples, exactly as
    `SobolResult.bootstrap` resamples them, but with `rng=numpy.random.default_rng(seed)`
    (scipy's method draws from NumPy's global state, so its intervals are not reproducible).
    `ci_method` 'BCa' (scipy's choice), 'percentile', or 'auto': BCa up to N = 4096 base
    samples, percentile above (BCa's jackknife costs O(N^2); at that size they agree closely).

    Returns columns `outcome, parameter, S1, S1_low, S1_high, ST, ST_low, ST_high, n_base`
    (`n_base`: base samples used). An outcome that is constant over the design gets NaN.
    """
    parameters, outputs = list(parameters), list(outputs)
    d = len(parameters)
    blocks = _sobol_blocks(design, d)
    n_total = blocks.shape[1]
    ok = _ok_runs(outcomes, outputs)
    means = ok.groupby("point")[outputs].mean()

    ran = np.isin(blocks, means.index.to_numpy()).all(axis=0)
    if not ran.all():
        bad = np.unique(blocks[:, ~ran][~np.isin(blocks[:, ~ran], means.index.to_numpy())])
        warnings.warn(
            f"sobol: {len(bad)} design point(s) have no successful run (e.g. point "
            f"{', '.join(map(str, bad[:5]))}); dropping {int((~ran).sum())} of {n_total} base samples "
            f"from A, B and every AB_i ({int(ran.sum())} left)",
            stacklevel=2,
        )

    rows = []
    for name in outputs:
        values = means[name].reindex(blocks.ravel()).to_numpy(dtype=float).reshape(blocks.shape)
        usable = np.isfinite(values).all(axis=0)
        if (ran & ~usable).any():
            warnings.warn(
                f"sobol: outcome '{name}' is NaN at {int((ran & ~usable).sum())} more base sample(s); "
                f"dropped for this outcome ({int(usable.sum())} of {n_total} left)",
                stacklevel=2,
            )
        estimates, low, high = _sobol_one(values[:, usable], d, n_resamples, confidence, seed, ci_method, name)
        for i, parameter in enumerate(parameters):
            rows.append(
                {
                    "outcome": name,
                    "parameter": parameter,
                    "S1": estimates[0, i],
                    "S1_low": low[0, i],
                    "S1_high": high[0, i],
                    "ST": estimates[1, i],
                    "ST_low": low[1, i],
                    "ST_high": high[1, i],
                    "n_base": int(usable.sum()),
                }
            )
    return pd.DataFrame(rows, columns=SOBOL_TABLE_COLUMNS)


def _sobol_one(values: np.ndarray, d: int, n_resamples: int, confidence: float, seed: int, ci_method: str, name: str):
    """(estimates, low, high), each (2, d), for one outcome's (d + 2, n) block values."""
    nan = np.full((2, d), np.nan)
    n = values.shape[1]
    if n < 2:
        warnings.warn(f"sobol: outcome '{name}' has {n} usable base sample(s); no indices", stacklevel=3)
        return nan, nan, nan
    f_a, f_b, f_ab = values[0], values[1], values[2:]
    if np.var(np.concatenate([f_a, f_b])) == 0:
        warnings.warn(f"sobol: outcome '{name}' is constant over the design; no indices", stacklevel=3)
        return nan, nan, nan
    if n & (n - 1) == 0:
        res = stats.sobol_indices(func={"f_A": f_a[None, :], "f_B": f_b[None, :], "f_AB": f_ab[:, None, :]}, n=n)
        estimates = np.stack([np.ravel(res.first_order), np.ravel(res.total_order)])
    else:
        centre = np.mean([f_a, f_b])
        estimates = saltelli_2010(f_a - centre, f_b - centre, f_ab - centre)

    centre = np.mean([f_a, f_b])  # scipy centres once on the full sample, then resamples
    a, b, ab = f_a - centre, f_b - centre, f_ab - centre

    def statistic(index, axis=-1):
        return saltelli_2010(a[index], b[index], ab[:, index])

    method = ci_method if ci_method != "auto" else ("BCa" if n <= BCA_MAX_BASE else "percentile")
    batch = max(1, min(int(n_resamples), 2**22 // (n * (d + 2))))  # bound memory: batch x n x (d+2) floats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # resamples with zero variance give NaN
        boot = stats.bootstrap(
            (np.arange(n),),
            statistic,
            vectorized=True,
            n_resamples=int(n_resamples),
            confidence_level=confidence,
            method=method,
            batch=batch,
            rng=np.random.default_rng(seed),
        )
    return estimates, np.asarray(boot.confidence_interval.low), np.asarray(boot.confidence_interval.high)


# --------------------------------------------------------------------------- screening


def _numeric(series: pd.Series) -> bool:
    """Numbers or bools (an empty column counts as numeric: nothing says otherwise)."""
    return pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series) or series.dropna().empty


def screening(outcomes: pd.DataFrame, parameters: Sequence[str], outputs: Sequence[str]) -> pd.DataFrame:
    """Spearman rank correlation of each numeric parameter with each outcome, over all ok runs.

    Bool parameters count as numeric (False < True). Parameters with other values (text,
    mixed lists) are skipped with a warning naming them. Pairs with a NaN outcome are left
    out; a parameter or outcome that does not vary gives NaN. Columns:
    `outcome, parameter, spearman_rho, p_value, n` (`n`: runs used).
    """
    parameters, outputs = list(parameters), list(outputs)
    _require(outcomes, list(parameters), "outcomes")
    ok = _ok_runs(outcomes, outputs)
    numeric = [p for p in parameters if _numeric(outcomes[p])]
    skipped = [p for p in parameters if p not in numeric]
    if skipped:
        warnings.warn(f"screening: skipping non-numeric parameter(s) {', '.join(skipped)}", stacklevel=2)
    rows = []
    for name in outputs:
        for parameter in numeric:
            pair = pd.DataFrame({"x": ok[parameter].astype(float), "y": ok[name]}).dropna()
            rho = p_value = np.nan
            if len(pair) >= 3 and pair["x"].nunique() > 1 and pair["y"].nunique() > 1:
                result = stats.spearmanr(pair["x"], pair["y"])
                rho, p_value = float(result.statistic), float(result.pvalue)
            rows.append(
                {"outcome": name, "parameter": parameter, "spearman_rho": rho, "p_value": p_value, "n": len(pair)}
            )
    return pd.DataFrame(rows, columns=SCREENING_COLUMNS)


# --------------------------------------------------------------------------- labels


def safe_name(text: str) -> str:
    """`text` made safe for a file name (runs of other characters become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "unnamed"


def parameter_info(path: str) -> tuple[str, str]:
    """(unit, help) of a scenario key path from `sim.schema`, or ('', '') when unknown."""
    try:
        field, _ = schema_field(path)
    except KeyError:
        return "", ""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("unit", "") or ""), str(field.description or "")


def outcome_info(name: str) -> tuple[str, str]:
    """(unit, help) of an outcome name (`sim.outcomes`), or ('', '') when unknown."""
    kind, _ = parse(name)
    spec = KINDS.get(kind)
    if spec is None:
        return "", ""
    return spec.unit, spec.help.replace("`", "")


# Labels come from one place: `sim.outcomes.outcome_label` (the outcome registry) and
# `sim.schema.parameter_label` (the schema); they are re-exported here for older callers.


def _format(value) -> str:
    """A compact label for a parameter level or a cell value."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "n/a"
        return f"{value:.3g}"
    return str(value)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) if text else ""


# --------------------------------------------------------------------------- figures


TITLE_IN = 0.8  # inches kept for the title lines (subtitles here run to two lines)


class _Sweep:
    """What every sweep figure needs: the manifest, counts, the footnote (`sim.figures.Provenance`)."""

    def __init__(self, manifest: dict, design: pd.DataFrame, outcomes: pd.DataFrame, design_name: str):
        self.manifest = manifest
        self.design = design_name
        self.n_points = int(design["point"].nunique()) if "point" in design else 0
        self.replicates = int(manifest.get("replicates") or 1)
        status = outcomes["status"].astype(str) if "status" in outcomes else pd.Series(dtype=str)
        self.n_ok, self.n_failed = int((status == "ok").sum()), int((status != "ok").sum())
        self.provenance = Provenance.from_manifest(manifest, **_sweep_seeds(design))

    def footnote(self, extra: str = "") -> str:
        runs = f"{self.n_ok} ok runs" + (f", {self.n_failed} failed (left out)" if self.n_failed else "")
        design = f"{self.design} design, {self.n_points} points x {self.replicates} replicate(s)"
        return self.provenance.footer(design, runs, extra)

    def figure(self, width: float, height: float, title: str, subtitle: str, footnote: str = "") -> Figure:
        return new_figure(width, height, title=title, subtitle=subtitle, footer=self.footnote(footnote), top=TITLE_IN)


def _sweep_seeds(design: pd.DataFrame) -> dict:
    """The seeds a sweep's footer names: the replicate seeds (common random numbers) or where they are."""
    if {"point", "replicate", "seed"} <= set(design.columns) and len(design):
        common = bool((design.groupby("replicate")["seed"].nunique() == 1).all())  # common random numbers
    else:
        common = False
    if common:
        first = design[design["point"] == design["point"].iloc[0]].sort_values("replicate")
        return {"seeds": tuple(int(x) for x in first["seed"]), "seeds_note": "the same at every point"}
    return {"seeds": (), "seeds_note": "one seed per run, design.csv"}


def _panels(fig: Figure, n: int, ncols: int) -> list:
    nrows = math.ceil(n / ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _grid_lines(ax, axis: str = "both") -> None:
    ax.grid(True, axis=axis, color="#DDDDDD", lw=0.6)
    ax.set_axisbelow(True)


def _looks_logarithmic(values: np.ndarray) -> bool:
    """Positive values spread over two decades or more, or evenly spaced in log (geomspace)."""
    values = np.unique(values[np.isfinite(values)])
    if len(values) < 3 or values.min() <= 0:
        return False
    logs = np.diff(np.log(values))
    even_in_log = np.allclose(logs, logs[0], rtol=1e-6) and not np.allclose(np.diff(values), values[1] - values[0])
    return bool(even_in_log or values.max() / values.min() >= 100)


def _numeric_axis(values: pd.Series) -> bool:
    return _numeric(values) and not pd.api.types.is_bool_dtype(values)


def plot_outcomes_vs(
    ctx: _Sweep, summary: pd.DataFrame, ok: pd.DataFrame, parameter: str, outputs: list[str], path: Path
) -> Path:
    """Draw each outcome against one parameter, one panel per outcome, and write the PNG to `path`.

    A line joins the per-point medians (`summary`, from `summarize`); with several replicates
    a band shows the 5-95 % range and dots the single ok runs (`ok`). The x axis is
    logarithmic when the values look it (`_looks_logarithmic`); text or bool levels get one
    slot each, in design order. Returns `path`.
    """
    n = len(outputs)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    several = ctx.replicates > 1
    subtitle = (
        f"line: median of {ctx.replicates} replicates per design point; shading: 5-95 % range across replicates; "
        "dots: single runs"
        if several
        else "one run per design point"
    )
    width = max(7.0, 4.6 * ncols + 0.6)  # room for the parameter's words in the title
    title = _wrap(f"Outcomes against {parameter_label(parameter)}", int(width * 10))
    fig = ctx.figure(width, 3.5 * nrows + 1.3, title, subtitle, "data: summary.csv")
    rows = summary.sort_values(parameter)
    numeric = _numeric_axis(rows[parameter])
    if numeric:
        x = rows[parameter].to_numpy(dtype=float)
        x_runs = ok[parameter].to_numpy(dtype=float)
    else:  # text or bool levels: one slot each, in the order they first appear in the design
        levels = list(dict.fromkeys(summary[parameter].tolist()))
        slot = {level: i for i, level in enumerate(levels)}
        rows = summary.assign(_x=summary[parameter].map(slot)).sort_values("_x")
        x = rows["_x"].to_numpy(dtype=float)
        x_runs = ok[parameter].map(slot).to_numpy(dtype=float)
    log_x = numeric and _looks_logarithmic(x)
    for ax, name in zip(_panels(fig, n, ncols), outputs):
        words, unit = outcome_words(name)
        median = rows[f"{name}.median"].to_numpy(dtype=float)
        if not np.isfinite(median).any():
            _no_data(ax, "no successful run with a value")
            ax.set_title(_wrap(words, 55), loc="left", fontsize=10)
            continue
        if several:
            ax.fill_between(x, rows[f"{name}.q05"], rows[f"{name}.q95"], color=BLUE, alpha=0.18, lw=0)
            ax.scatter(x_runs, ok[name], s=7, color=GREY, alpha=0.5, lw=0, zorder=2)
        ax.plot(x, median, color=BLUE, lw=1.8, marker="o" if len(x) <= 30 else None, ms=4, zorder=3)
        zero_axis_range(ax, median, ok[name], *((rows[f"{name}.q05"], rows[f"{name}.q95"]) if several else ()))
        if log_x:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(levels)), [_format(v) for v in levels])
        ax.set_xlabel(_wrap(parameter_label(parameter), 60))
        ax.set_ylabel(_wrap(f"median ({unit})" if unit else "median", 40))
        ax.set_title(_wrap(words, 55), loc="left", fontsize=10)
        _grid_lines(ax)
    return save_png(fig, path)


def plot_heatmap(ctx: _Sweep, summary: pd.DataFrame, parameters: list[str], name: str, path: Path) -> Path:
    """Draw one outcome's median over a two-parameter grid as a heatmap and write the PNG to `path`.

    `parameters` is (rows, columns). Cells without a successful run are grey. When the grid
    has at most 625 cells, each is annotated with its value ("n/a" where no run succeeded,
    "(n=k)" where only k replicates did). Returns `path`.
    """
    rows_p, cols_p = parameters
    row_levels = _sorted_levels(summary[rows_p])
    col_levels = _sorted_levels(summary[cols_p])
    table = summary.pivot_table(index=rows_p, columns=cols_p, values=f"{name}.median", aggfunc="first", dropna=False)
    table = table.reindex(index=row_levels, columns=col_levels)
    counts = summary.pivot_table(index=rows_p, columns=cols_p, values="n_ok", aggfunc="first", dropna=False)
    counts = counts.reindex(index=row_levels, columns=col_levels)
    values = table.to_numpy(dtype=float)
    nr, nc = values.shape
    width = min(16.0, max(7.0, 0.95 * nc + 3.6))
    height = min(12.0, max(5.0, 0.55 * nr + 2.6))
    words, unit = outcome_words(name)
    which = f"median of {ctx.replicates} replicates per square" if ctx.replicates > 1 else "one run per square"
    if np.isnan(values).any():  # no run succeeded there, or the outcome is undefined in each (a share of no meetings)
        which += "; n/a: no run with a value (none succeeded, or the outcome is undefined in each)"
    if ctx.replicates > 1 and (counts.to_numpy(dtype=float) < ctx.replicates).any():
        which += "; (n=k): only k replicates succeeded"
    subtitle = _wrap(f"each square: one design point; {which}", int(width * 14))
    fig = ctx.figure(width, height, _wrap(outcome_label(name), int(width * 10)), subtitle, "data: summary.csv")
    ax = fig.add_subplot()
    if not np.isfinite(values).any():
        _no_data(ax, "no successful run with a value")
        return save_png(fig, path)
    finite = values[np.isfinite(values)]
    vmin, vmax = float(finite.min()), float(finite.max())
    if vmin == vmax:  # one colour: a scale around it, not past 0 or 1 for a value within them (a share)
        vmin, vmax = (0.0, 1.0) if 0.0 <= vmin <= 1.0 else (vmin - 0.5, vmax + 0.5)
    cmap = "viridis"
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", aspect="auto")
    ax.set_facecolor("#E6E6E6")  # cells without a value
    if nr * nc <= 625:
        size = 9 if max(nr, nc) <= 10 else 7
        for i in range(nr):
            for j in range(nc):
                v = values[i, j]
                count = counts.iloc[i, j]
                text = "n/a" if not np.isfinite(v) else _format(v)
                if np.isfinite(v) and ctx.replicates > 1 and pd.notna(count) and count < ctx.replicates:
                    text += f"\n(n={int(count)})"
                colour = "black"
                if np.isfinite(v):
                    r, g, b = to_rgb(image.cmap(image.norm(v)))
                    colour = "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=size, color=colour)
    ax.set_xticks(range(nc), [_format(v) for v in col_levels], rotation=45 if nc > 8 else 0)
    ax.set_yticks(range(nr), [_format(v) for v in row_levels])
    ax.set_xlabel(_wrap(parameter_label(cols_p), int(width * 9)))
    ax.set_ylabel(_wrap(parameter_label(rows_p), int(height * 8)))
    colourbar = fig.colorbar(image, ax=ax, shrink=0.85)
    colourbar.set_label(_wrap(f"median ({unit})" if unit else "median", int(height * 8)))
    return save_png(fig, path)


def _sorted_levels(values: pd.Series) -> list:
    levels = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(levels)
    except TypeError:
        return levels


def plot_sobol(
    ctx: _Sweep, table: pd.DataFrame, parameters: list[str], outputs: list[str], path: Path, note: str
) -> Path:
    """Draw the Sobol indices (`sobol_analysis`'s table) and write the PNG to `path`.

    One panel per outcome: S1 and ST per parameter as bars with their bootstrap intervals,
    and the sum of S1. `note` is added to the subtitle. Returns `path`.
    """
    n = len(outputs)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    d = len(parameters)
    labels = [_wrap(parameter_label(p), 34) for p in parameters]
    label_width = max(len(line) for label in labels for line in label.split("\n"))
    fig = ctx.figure(
        (4.2 + 0.06 * label_width) * ncols + 0.4,
        (0.75 * d + 1.9) * nrows + 1.4,
        "Sobol sensitivity indices",
        "S1 (first order): share of the outcome's variance due to the parameter alone; "
        "ST (total): including its interactions\n" + note,
        "data: sobol.csv",
    )
    y = np.arange(d)
    for k, (ax, name) in enumerate(zip(_panels(fig, n, ncols), outputs)):
        rows = table[table["outcome"] == name].set_index("parameter").reindex(parameters)
        ax.set_title(_wrap(outcome_label(name), 50), loc="left", fontsize=10)
        if not np.isfinite(rows[["S1", "ST"]].to_numpy(dtype=float)).any():
            _no_data(ax, "no indices (constant outcome or no usable runs)")
            if k % ncols == 0:  # keep the parameter names for the panels to its right
                ax.set_ylim(d - 0.5, -0.5)
                ax.set_yticks(y, labels, fontsize=8)
            continue
        for offset, key, colour, label in ((-0.2, "S1", BLUE, "S1 first order"), (0.2, "ST", ORANGE, "ST total")):
            est = rows[key].to_numpy(dtype=float)
            low, high = rows[f"{key}_low"].to_numpy(dtype=float), rows[f"{key}_high"].to_numpy(dtype=float)
            err = np.vstack([np.clip(est - low, 0, None), np.clip(high - est, 0, None)])
            err = np.where(np.isfinite(err), err, 0.0)
            ax.barh(
                y + offset,
                est,
                height=0.38,
                color=colour,
                label=label,
                xerr=err,
                error_kw={"ecolor": "#333333", "elinewidth": 1, "capsize": 2.5},
            )
        ax.axvline(0, color="#444444", lw=0.8)
        ax.set_yticks(y, labels if k % ncols == 0 else [""] * d, fontsize=8)  # same order in every panel
        ax.invert_yaxis()
        lows = rows[["S1_low", "ST_low", "S1", "ST"]].to_numpy(dtype=float)
        highs = rows[["S1_high", "ST_high", "S1", "ST"]].to_numpy(dtype=float)
        left = min(-0.05, np.nanmin(lows) - 0.05) if np.isfinite(lows).any() else -0.05
        right = max(1.0, np.nanmax(highs) + 0.05) if np.isfinite(highs).any() else 1.0
        ax.set_xlim(left, right)
        ax.set_xlabel("index (share of variance)")
        total_s1 = float(np.nansum(rows["S1"].to_numpy(dtype=float)))
        ax.text(
            0.98,
            0.02,
            f"sum of S1 = {total_s1:.2f}\n(1 - sum: interactions and noise)",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="#333333",
        )
        _grid_lines(ax, "x")
    handles = [
        Patch(color=BLUE, label="S1 first order"),
        Patch(color=ORANGE, label="ST total"),
        Line2D([], [], color="#333333", lw=1, label="95 % bootstrap CI"),
    ]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False)
    return save_png(fig, path)


def plot_screening(
    ctx: _Sweep, table: pd.DataFrame, parameters: list[str], outputs: list[str], path: Path, skipped: list[str]
) -> Path:
    """Draw the screening correlations (`screening`'s table) and write the PNG to `path`.

    One panel per outcome: Spearman's rho per numeric parameter, largest |rho| on top, with
    its p-value; `skipped` (non-numeric parameters) are named in the footer. Returns `path`.
    """
    n = len(outputs)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    d = max(1, len(parameters))
    label_width = max([len(line) for p in parameters for line in _wrap(parameter_label(p), 34).split("\n")] + [10])
    subtitle = (
        f"Spearman rank correlation between each parameter and the outcome over all {ctx.n_ok} ok runs "
        "(every design point and replicate); bars sorted by |rho|, largest on top"
    )
    extra = f"not numeric, left out: {'; '.join(parameter_label(p) for p in skipped)}" if skipped else ""
    footnote = "data: screening.csv" + (f" | {extra}" if extra else "")
    fig = ctx.figure(
        (4.2 + 0.06 * label_width) * ncols + 0.4,
        (0.7 * d + 1.8) * nrows + 1.4,
        "Screening: which parameters move each outcome",
        subtitle,
        footnote,
    )
    for ax, name in zip(_panels(fig, n, ncols), outputs):
        ax.set_title(_wrap(outcome_label(name), 50), loc="left", fontsize=10)
        rows = table[table["outcome"] == name]
        if rows.empty:
            _no_data(ax, "no numeric parameter")
            continue
        rows = rows.assign(_key=rows["spearman_rho"].abs().fillna(-1)).sort_values("_key", ascending=False)
        rho = rows["spearman_rho"].to_numpy(dtype=float)
        y = np.arange(len(rows))
        colours = [BLUE if r >= 0 else VERMILLION for r in np.nan_to_num(rho)]
        ax.barh(y, np.nan_to_num(rho), height=0.6, color=colours)
        for yi, r, p in zip(y, rho, rows["p_value"].to_numpy(dtype=float)):
            if not np.isfinite(r):
                ax.text(0.02, yi, "n/a (no variation)", va="center", fontsize=8, color="#666666")
                continue
            p_text = "p<0.001" if p < 0.001 else f"p={p:.2g}"
            ax.text(
                -0.03 if r >= 0 else 0.03,
                yi,
                f"{r:+.2f} ({p_text})",
                va="center",  # across the zero line
                ha="right" if r >= 0 else "left",
                fontsize=8,
            )
        ax.axvline(0, color="#444444", lw=0.8)
        ax.set_yticks(y, [_wrap(parameter_label(p), 34) for p in rows["parameter"]], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(-1.05, 1.05)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        ax.set_xlabel("Spearman rho (rank correlation, -1..1)")
        _grid_lines(ax, "x")
    handles = [Patch(color=BLUE, label="rises with the parameter"), Patch(color=VERMILLION, label="falls")]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False)
    return save_png(fig, path)


# --------------------------------------------------------------------------- entry point


def _how_to_finish(directory: Path) -> str:
    """'finish it with python run.py sweep <its scenario> --resume DIR, then analyze it', or the calibration's."""
    if (directory.parent / "calibration_spec.json").is_file():  # a calibration's sweep: the calibration resumes it
        parent = shlex.quote(str(directory.parent))
        return f"it is a calibration's: finish it with python run.py calibrate SCENARIO --resume {parent}"
    scenario = "SCENARIO"
    try:
        manifest = read_manifest(directory / "manifest.json")
        named = manifest.get("scenario_file") or manifest.get("scenario")
        if isinstance(named, str) and named and named.isprintable():
            scenario = shlex.quote(named)
    except ResultFileError:
        pass  # the resume will say what is wrong with it
    return f"finish it with python run.py sweep {scenario} --resume {shlex.quote(str(directory))}, then analyze it"


def _read_inputs(directory: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """manifest.json, design.csv and outcomes.csv, each checked (`sim.results`, `sim.sweep.read_design`).

    The journal runs.jsonl, when there, is checked too (`sim.sweep.read_journal`: each line's checksum;
    `sim.sweep.check_journal_kept`: not deleted or cut short since manifest.json counted its runs).
    A sweep's scenario.yaml, when there, gives the types of list-swept parameters.
    """
    from sim.scenario import load_scenario
    from sim.sweep import (
        JOURNAL,
        KIND,
        check_journal_kept,
        check_outcomes,
        read_design,
        read_journal,
        read_outcomes,
    )
    from sim.yaml_source import ScenarioError

    missing = [n for n in ("design.csv", "outcomes.csv", "manifest.json") if not (directory / n).is_file()]
    journalled = (directory / JOURNAL).is_file()
    if missing == ["outcomes.csv"] and (journalled or directory_kind(directory) == KIND):  # started, never finished
        if not journalled:  # its journal deleted too: a resume is refused (`check_journal_kept`), so say why now
            try:
                check_journal_kept(directory, read_manifest(directory / "manifest.json"), 0)
            except ResultFileError as error:
                unfinished = f"{directory}: an unfinished sweep (no outcomes.csv yet)"
                raise OutputError(f"{unfinished} that cannot be resumed: {error}") from None
        raise OutputError(f"{directory}: an unfinished sweep (no outcomes.csv yet): {_how_to_finish(directory)}")
    if missing:
        raise OutputError(f"{directory}: not a sweep directory (missing {', '.join(missing)})")
    manifest = read_manifest(directory / "manifest.json", required=("design", "parameters", "outputs"))
    if manifest.get("kind", KIND) != KIND:
        raise ResultFileError(f"{directory / 'manifest.json'}: not a sweep manifest (kind: {manifest['kind']!r})")
    config = None
    if (directory / "scenario.yaml").is_file():
        try:
            config = load_scenario(directory / "scenario.yaml")
        except ScenarioError as error:
            raise ResultFileError(f"{directory / 'scenario.yaml'}: damaged ({error.problems[0].message})") from None
    design = read_design(directory, manifest, config)
    outcomes = read_outcomes(directory, manifest, config)
    journal = read_journal(directory, design=design) if (directory / JOURNAL).exists() else []  # outcomes.csv's source
    check_journal_kept(directory, manifest, len({(line.get("point"), line.get("replicate")) for line in journal}))
    check_outcomes(outcomes, design, journal, manifest, directory / "outcomes.csv")
    return manifest, design, outcomes


def analyze(directory: str | Path) -> list[Path]:
    """Summaries, sensitivity tables and plots of the sweep in `directory`; returns the paths.

    Writes `summary.csv`, then `sobol.csv` (Sobol designs) or `screening.csv` (others), then
    the figures into `directory/plots/` (see the module notes). Everything is written first
    into a hidden staging directory inside `directory` and moved into place at the end, each
    file with one rename: an analysis cut short (Ctrl-C, an error in a plot) leaves the
    directory's earlier summaries and plots as they were, not some new files beside old ones.
    Raises `OutputError` when a file is missing or unreadable.
    """
    directory = Path(directory)
    manifest, design, outcomes = _read_inputs(directory)
    check_plots_dir(directory)  # before summary.csv replaces the earlier one
    for column in [*manifest["parameters"], *manifest["outputs"], "status"]:
        if column not in outcomes.columns:
            if len(outcomes):
                raise OutputError(f"{directory / 'outcomes.csv'}: missing column '{column}'")
            outcomes[column] = pd.Series(dtype=float)
    staging = Path(tempfile.mkdtemp(prefix=".analysis-", dir=directory))
    try:
        staged = _write_analysis(staging, manifest, design, outcomes)
        written = []
        for path in staged:  # renames within one file system: each file appears whole
            final = directory / path.relative_to(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, final)
            written.append(final)
        return written
    except OSError as error:  # a full disk: the file as it was to be, not in the staging directory
        name_the_final_file(error, staging, directory)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_analysis(directory: Path, manifest: dict, design: pd.DataFrame, outcomes: pd.DataFrame) -> list[Path]:
    """Write `analyze`'s files into `directory` (its staging directory); returns their paths, in order."""
    design_name = manifest["design"]
    if isinstance(design_name, dict):  # tolerate a manifest that stores the whole sweep spec
        design_name = design_name.get("design", "grid")
    parameters, outputs = list(manifest["parameters"]), list(manifest["outputs"])
    written: list[Path] = []

    summary = summarize(outcomes, parameters, outputs)
    atomic_write_text(directory / "summary.csv", summary.to_csv(index=False))
    written.append(directory / "summary.csv")

    ctx = _Sweep(manifest, design, outcomes, design_name)
    plots = directory / "plots"
    ok = _ok_runs(outcomes, outputs)
    if design_name == "sobol":
        table = sobol_analysis(outcomes, design, parameters, outputs)
        atomic_write_text(directory / "sobol.csv", table.to_csv(index=False))
        written.append(directory / "sobol.csv")
        n_base = int(table["n_base"].max()) if len(table) else 0
        n_total = int((design.drop_duplicates("point")["sobol_block"] == "A").sum())
        method = "BCa" if n_base <= BCA_MAX_BASE else "percentile"
        note = (
            f"bars: estimates from {n_base} base samples (of {n_total}), each point the mean of its replicates; "
            f"whiskers: 95 % bootstrap CI ({method}, 1000 resamples)"
        )
        written.append(plot_sobol(ctx, table, parameters, outputs, plots / "sobol_indices.png", note))
        return written

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = screening(outcomes, parameters, outputs)
    for warning in caught:
        warnings.warn(warning.message, stacklevel=2)
    atomic_write_text(directory / "screening.csv", table.to_csv(index=False))
    written.append(directory / "screening.csv")
    if len(parameters) == 1:
        path = plots / f"outcomes_vs_{safe_name(parameters[0])}.png"
        written.append(plot_outcomes_vs(ctx, summary, ok, parameters[0], outputs, path))
    elif len(parameters) == 2 and design_name == "grid":
        for name in outputs:
            written.append(plot_heatmap(ctx, summary, parameters, name, plots / f"heatmap_{safe_name(name)}.png"))
    else:
        skipped = [p for p in parameters if p not in set(table["parameter"])]
        written.append(plot_screening(ctx, table, parameters, outputs, plots / "screening.png", skipped))
    return written
