"""Pattern-oriented validation (Grimm et al. 2005): does the model show what the article reports?

Each `Pattern` is one qualitative or order-of-magnitude observation from the source article
(paragraph and fact ids in `seeds/provenance.yaml`), turned into a yes/no test of one run.
A scenario reproduces a pattern when at least `threshold` of its replicate runs show it,
and it passes validation when it reproduces every pattern that applies to it:

    from sim.patterns import validate, write_report
    report = validate("baseline", replicates=100, workers=2)
    report.summary()            # pattern, paragraphs, threshold, share and its Wilson interval, status
    report.ensemble_summary()   # ensemble patterns: value, bootstrap interval, status
    report.runs                 # one row per run: replicate, seed, one bool per pattern, measures
    write_report(report, "results/baseline/validation")   # patterns.csv, summary.csv, ensemble.csv,
                                                          # VALIDATION.md, plots/

`run.py validate-patterns SCENARIO` (`cli_validate_patterns`) does the same from the command
line. Checks and measures are module-level functions of a run (anything with `.timeseries`
and `.events` like `sim.runner.RunResult`) and the scenario, so they pickle and can be
evaluated where a run happened. A pattern whose sites or factions a scenario lacks (e.g.
Al-Bukamal in `toy_two_towns`) is not applicable there: reported as n/a, never as failed.

The threshold (share of runs) is 0.9 for every per-run pattern: issue 9 asks that each
pattern of the article show "in at least 90% of runs" over 100 replicates at two root
seeds. Every share is reported with its Wilson 95% interval (`wilson_interval`), and so is
the *joint* share: the share of runs that show every applicable validation pattern at once
(`JOINT`, column `all_patterns_jointly` of patterns.csv), which must reach 0.5 ("all of
them together in most runs"). A pattern that restates an input (the killed share of
casualties is the parameter `rules.clashes.p_killed`) is verification, not validation
(docs/MODEL_BRIEF.md): it is flagged `verification`, reported apart and left out of the
joint share.

Ensemble patterns (`EnsemblePattern`, `ENSEMBLE_PATTERNS`) are statements about the set of
runs, not about one run (insurgent growth rises with the clashes *across* runs; some
meetings escalate): each is a statistic of the per-run table (`ValidationReport.runs`) with
a seeded bootstrap 95% interval, reported in its own table (`ensemble.csv`); with fewer
than `ENSEMBLE_MIN_RUNS` runs they are reported but not judged.

The operationalisations (window lengths, bounds, ratios) are stated and argued in each
pattern's description; where the article gives no number they are assumptions, and are
marked as such.
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter
from scipy import stats

from sim.figures import GREEN, VERMILLION, footer, new_figure, save_png
from sim.intervals import N_BOOTSTRAP, bootstrap_interval, wilson_interval
from sim.results import (
    PROJECT_DIR,
    atomic_write_text,
    check_output_dir,
    default_output_dir,
    display_path,
    git_commit,
    versions,
    write_staged,
)
from sim.scenario import load_scenario, resolve_scenario_path
from sim.schema import Scenario
from sim.seeding import named_stream

__all__ = [
    "ENSEMBLE_PATTERNS",
    "EnsemblePattern",
    "PATTERNS",
    "Pattern",
    "ValidationReport",
    "cli_validate_patterns",
    "evaluate_runs",
    "report_from_runs",
    "render_markdown",
    "validate",
    "write_docs",
    "write_report",
]

DEFAULT_THRESHOLD = 0.9  # issue 9: each pattern "in at least 90% of runs" (100 replicates, two root seeds)
JOINT_THRESHOLD = 0.5  # issue 9: "all of them together in most runs": at least half of the runs
EDGE_SHARE_MIN = 0.70  # share of a run's clashes at crossings or contested edges
KILLED_SHARE_TOLERANCE = 0.08  # ± around targets.killed_share
WINDOW_LOW, WINDOW_HIGH = 0.5, 4.0  # casualties in the busiest window: within [x/2, 4x] of the article's
FAILED_SHARE_MIN = 0.75  # share of meetings that failed or escalated
CALM_DAYS = 90  # an agreement is followed by a clash of the same pair within this many days
HOLD_SHARE_MIN = 0.90  # share of days Al-Bukamal (and Deir ez-Zor) is held
RHO_MIN = 0.5  # Spearman: cumulative clashes vs insurgent cells
SITE_RADIUS = 2.0  # cells: a clash "at" a site (as the clash event's `site` field)
SITE_KINDS = ("town", "crossing", "oil_field")  # named non-headquarters sites for the flashpoint ranking
DEFECTION_RATIO_MIN = 3.0  # "mostly one way": NDF>IRGC at least 3x IRGC>NDF (>= 75% of the two-way flow)
DEFECTION_MIN_SHARE = 0.01  # "many" defected: NDF>IRGC at least 1% of the NDF's day-0 fighters
ROUT_KEEP_MIN = 0.6  # not routed: each rival keeps at least 60% of its day-0 fighters
QUIET_DAYS = 14  # days without a rival clash that separate two clash episodes
EPISODES_MIN = 3  # clash episodes per run (the article's three rounds, §3-§4, §9, §13)
TOLL_LOW, TOLL_HIGH = 30.0, 400.0  # killed in rival-militia clashes per 365 days
ENSEMBLE_MIN_RUNS = 10  # fewer runs: an ensemble pattern is reported but not judged (a bootstrap of a handful)
ESCALATION_SHARE_MAX = 0.5  # "some" meetings escalate: escalations are at most half of all meetings
REGIME_PATRON = "Regime"  # militias of this patron (and the NDF) are "the regime's side" in Deir ez-Zor
JOINT = "all_patterns_jointly"  # the per-run column (and summary row) of the joint pattern

PLOTS = ("pattern_shares.png", "pattern_measures.png")
TABLE = "patterns.csv"
SUMMARY = "summary.csv"
ENSEMBLE = "ensemble.csv"
VARIANTS = "variants.csv"
MARKDOWN = "VALIDATION.md"


# --------------------------------------------------------------------------- the Pattern type


def _always(scenario) -> bool:
    return True


@dataclass(frozen=True)
class Pattern:
    """One observation from the article, as a test of one run.

    `check(run, scenario) -> bool` says whether the run shows it; `measure(run, scenario)
    -> float` (optional) is the per-run statistic the check is about, reported and drawn;
    `applicable(scenario) -> bool` is False when the scenario lacks what the pattern is
    about (then the pattern is n/a). `reference` is the article's figure, or the bound the
    check compares with, drawn on the measure's histogram; `accept` the (low, high) range
    of the measure that passes, where the check is a range on it (None: open end).
    `verification` marks a pattern that restates an input (reported apart, left out of
    the joint share).
    """

    name: str
    paragraphs: str
    facts: str
    description: str
    check: Callable
    threshold: float = DEFAULT_THRESHOLD
    measure: Callable | None = None
    measure_label: str = ""
    applicable: Callable = _always
    reference: Callable | None = None  # scenario -> (value, label) for the histogram
    accept: Callable | None = None  # scenario -> (low, high)
    verification: bool = False  # restates an input: verification, not validation

    def is_applicable(self, scenario) -> bool:
        """Whether the scenario has what the pattern is about (otherwise the pattern is n/a)."""
        return bool(self.applicable(scenario))


@dataclass(frozen=True)
class EnsemblePattern:
    """One observation from the article about the set of runs, not about one run.

    `statistic(runs, rng) -> (value, low, high)` computes it from the per-run table
    (`ValidationReport.runs`: one row per run, the pattern flags, measures and `EXTRAS`
    columns) with a 95% interval drawn with the numpy Generator `rng`; `passes(value, low,
    high) -> bool` says whether it shows; `applicable(scenario) -> bool` as for `Pattern`.
    `statistic_label` names the value (e.g. "Spearman rho across runs"), `criterion` says
    in words when it passes.
    """

    name: str
    paragraphs: str
    facts: str
    description: str
    statistic: Callable
    passes: Callable
    statistic_label: str
    criterion: str
    applicable: Callable = _always

    def is_applicable(self, scenario) -> bool:
        """Whether the scenario has what the pattern is about (otherwise the pattern is n/a)."""
        return bool(self.applicable(scenario))


# --------------------------------------------------------------------------- run accessors


def _ts(run) -> pd.DataFrame:
    ts = run.timeseries
    if "step" in ts.columns:
        ts = ts.sort_values("step", kind="stable")
    return ts


def _events(run, kind: str) -> pd.DataFrame:
    ev = getattr(run, "events", None)
    if ev is None or len(ev) == 0 or "event" not in ev.columns:
        return pd.DataFrame(columns=["step", "event"])
    return ev[ev["event"] == kind]


def _col_total(ts: pd.DataFrame, column: str) -> float:
    return float(pd.to_numeric(ts[column], errors="coerce").fillna(0).sum()) if column in ts.columns else 0.0


def _prefix_frame(ts: pd.DataFrame, prefix: str) -> pd.DataFrame:
    cols = [c for c in ts.columns if c.startswith(prefix)]
    return ts[cols].apply(pd.to_numeric, errors="coerce").fillna(0) if cols else pd.DataFrame(index=ts.index)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats (NaN where missing or not a number)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _last_step(run) -> int:
    ts = run.timeseries
    return int(ts["step"].max()) if "step" in ts.columns and len(ts) else max(len(ts) - 1, 0)


def _militias(scenario) -> list[str]:
    return [n for n, f in scenario.factions.items() if f.kind == "militia"]


def _has_militias(scenario, *names: str) -> bool:
    militias = _militias(scenario)
    return all(n in militias for n in names)


# --------------------------------------------------------------------------- 1. defection


def net_defection(run, scenario) -> float:
    """NDF>IRGC minus IRGC>NDF defections over the whole run (people)."""
    ts = _ts(run)
    return _col_total(ts, "defections.NDF>IRGC") - _col_total(ts, "defections.IRGC>NDF")


def _day0(ts: pd.DataFrame, column: str) -> float:
    """A column's value on day 0 (the initial state); NaN if it is not recorded."""
    if column not in ts.columns or ts.empty:
        return float("nan")
    return float(pd.to_numeric(ts[column], errors="coerce").iloc[0])


def _last(ts: pd.DataFrame, column: str) -> float:
    """A column's value on the last day; NaN if it is not recorded."""
    if column not in ts.columns or ts.empty:
        return float("nan")
    return float(pd.to_numeric(ts[column], errors="coerce").iloc[-1])


def defection_one_way_share(run, scenario) -> float:
    """Share of the defections between the NDF and the IRGC that went NDF>IRGC (0-1); NaN if there were none."""
    ts = _ts(run)
    to_irgc, to_ndf = _col_total(ts, "defections.NDF>IRGC"), _col_total(ts, "defections.IRGC>NDF")
    return to_irgc / (to_irgc + to_ndf) if to_irgc + to_ndf > 0 else float("nan")


def check_net_defection(run, scenario) -> bool:
    """Whether defection ran NDF>IRGC, mostly one way, and in numbers.

    Total NDF>IRGC defections must be at least DEFECTION_RATIO_MIN times the IRGC>NDF ones
    and at least DEFECTION_MIN_SHARE of the NDF's day-0 fighters (and at least one person).
    """
    ts = _ts(run)
    to_irgc, to_ndf = _col_total(ts, "defections.NDF>IRGC"), _col_total(ts, "defections.IRGC>NDF")
    ndf_day0 = _day0(ts, "fighters.NDF")
    many = to_irgc >= max(1.0, DEFECTION_MIN_SHARE * (0.0 if math.isnan(ndf_day0) else ndf_day0))
    return many and to_irgc >= DEFECTION_RATIO_MIN * to_ndf


def applicable_irgc_ndf(scenario) -> bool:
    """Whether the scenario has militias named IRGC and NDF."""
    return _has_militias(scenario, "IRGC", "NDF")


# --------------------------------------------------------------------------- 2. where clashes happen


def edge_clash_share(run, scenario) -> float:
    """Share of the run's clashes on ground `crossing` or `edge` (NaN without clashes)."""
    clashes = _events(run, "clash")
    if clashes.empty:
        return float("nan")
    ground = clashes["ground"] if "ground" in clashes.columns else pd.Series("", index=clashes.index)
    return float(ground.isin(["crossing", "edge"]).mean())


def check_edge_clashes(run, scenario) -> bool:
    """Whether at least EDGE_SHARE_MIN of the run's clashes were on crossing or edge ground; False without clashes."""
    share = edge_clash_share(run, scenario)
    return not math.isnan(share) and share >= EDGE_SHARE_MIN


# --------------------------------------------------------------------------- 3, 4. casualties


def _casualty_series(run) -> tuple[pd.Series, pd.Series]:
    """Killed and wounded per day, all militias, every cause (`killed.*`, `wounded.*`)."""
    ts = _ts(run)
    killed = _prefix_frame(ts, "killed.").sum(axis=1).reset_index(drop=True)
    wounded = _prefix_frame(ts, "wounded.").sum(axis=1).reset_index(drop=True)
    return killed.astype(float), wounded.astype(float)


def _clash_casualty_series(run) -> tuple[pd.Series, pd.Series]:
    """Killed and wounded per day in clashes between hostile militias (both sides; clash events)."""
    last = _last_step(run)
    killed, wounded = np.zeros(last + 1), np.zeros(last + 1)
    clashes = _events(run, "clash")
    if len(clashes):
        step = pd.to_numeric(clashes["step"], errors="coerce").fillna(0).astype(int).clip(0, last).to_numpy()

        def col(name):
            if name not in clashes.columns:
                return np.zeros(len(clashes))
            return pd.to_numeric(clashes[name], errors="coerce").fillna(0).to_numpy(dtype=float)

        np.add.at(killed, step, col("killed_a") + col("killed_b"))
        np.add.at(wounded, step, col("wounded_a") + col("wounded_b"))
    return pd.Series(killed), pd.Series(wounded)


def _busiest(killed: pd.Series, wounded: pd.Series, days: int) -> tuple[float, float, int]:
    if killed.empty:
        return 0.0, 0.0, 0
    rk = killed.rolling(days, min_periods=1).sum()
    rw = wounded.rolling(days, min_periods=1).sum()
    i = int(np.argmax((rk + rw).to_numpy()))  # the first window with the most casualties
    return float(rk.iloc[i]), float(rw.iloc[i]), i


def busiest_window(run, scenario) -> tuple[float, float, int]:
    """(killed, wounded, last day) of the `targets.window_days`-day window with most clash casualties.

    Counts casualties of clashes between hostile militias only: the article's figures are the
    IRGC and NDF members killed and wounded in the clashes between them (§4, F07), so losses
    to insurgent attacks are left out (they are in `busiest_window_all`).
    """
    return _busiest(*_clash_casualty_series(run), scenario.targets.window_days)


def busiest_window_all(run, scenario) -> tuple[float, float, int]:
    """The same, from `killed.*` + `wounded.*`: all militias, clashes and insurgent attacks."""
    return _busiest(*_casualty_series(run), scenario.targets.window_days)


def window_killed(run, scenario) -> float:
    """Killed (both sides) in rival-militia clashes in the busiest window (`busiest_window`), persons."""
    return busiest_window(run, scenario)[0]


def window_wounded(run, scenario) -> float:
    """Wounded (both sides) in rival-militia clashes in the busiest window (`busiest_window`), persons."""
    return busiest_window(run, scenario)[1]


def window_killed_all(run, scenario) -> float:
    """Killed, all militias and causes, in the busiest window (`busiest_window_all`), persons."""
    return busiest_window_all(run, scenario)[0]


def window_wounded_all(run, scenario) -> float:
    """Wounded, all militias and causes, in the busiest window (`busiest_window_all`), persons."""
    return busiest_window_all(run, scenario)[1]


def _window_bounds(target: float) -> tuple[float, float]:
    return target * WINDOW_LOW, target * WINDOW_HIGH


def check_casualty_order(run, scenario) -> bool:
    """Whether the busiest window's clash casualties are of the article's order.

    Killed must lie within [WINDOW_LOW, WINDOW_HIGH] x `targets.killed_min` and wounded
    within the same multiples of `targets.wounded` (`busiest_window`).
    """
    killed, wounded, _ = busiest_window(run, scenario)
    k_lo, k_hi = _window_bounds(scenario.targets.killed_min)
    w_lo, w_hi = _window_bounds(scenario.targets.wounded)
    return k_lo <= killed <= k_hi and w_lo <= wounded <= w_hi


def killed_share(run, scenario) -> float:
    """Share of casualties who were killed, killed / (killed + wounded): all militias and causes, whole run.

    NaN without casualties.
    """
    killed, wounded = _casualty_series(run)
    total = killed.sum() + wounded.sum()
    return float(killed.sum() / total) if total > 0 else float("nan")


def check_killed_share(run, scenario) -> bool:
    """Whether the run's `killed_share` is within KILLED_SHARE_TOLERANCE of `targets.killed_share`.

    False without casualties.
    """
    share = killed_share(run, scenario)
    return not math.isnan(share) and abs(share - scenario.targets.killed_share) <= KILLED_SHARE_TOLERANCE + 1e-12


# --------------------------------------------------------------------------- 5. Buqrus


def _site_cells(scenario) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Site names, rows, columns and kinds, placed by the model's own projection (`sim.geography`)."""
    from sim.geography import site_cell

    names = list(scenario.sites)
    cells = [site_cell(scenario.sites[n], scenario) for n in names]
    rows = np.array([rc[0] for rc in cells], dtype=float)
    cols = np.array([rc[1] for rc in cells], dtype=float)
    return names, rows, cols, [scenario.sites[n].kind for n in names]


def site_clash_counts(run, scenario) -> dict[str, int]:
    """Clashes at each named town, crossing and oil field over the run: site name -> count.

    A clash counts at a site if its `site` is that site, or if its cell lies within 2 cells
    (Euclidean) of the site's cell. Sites of other kinds are left out.
    """
    names, rows, cols, kinds = _site_cells(scenario)
    clashes = _events(run, "clash")
    counts: dict[str, int] = {}
    if clashes.empty:
        return {n: 0 for n, k in zip(names, kinds) if k in SITE_KINDS}
    c_rows, c_cols = _numbers(clashes, "row"), _numbers(clashes, "col")
    c_site = clashes["site"].astype("string").fillna("").to_numpy() if "site" in clashes else np.full(len(clashes), "")
    for name, r, c, kind in zip(names, rows, cols, kinds):
        if kind not in SITE_KINDS:
            continue
        near = np.hypot(c_rows - r, c_cols - c) <= SITE_RADIUS
        counts[name] = int(np.count_nonzero(near | (c_site == name)))
    return counts


def buqrus_clashes(run, scenario) -> float:
    """Clashes at Buqrus over the run (`site_clash_counts`; 0 if it has none or is not a counted site)."""
    return float(site_clash_counts(run, scenario).get("buqrus", 0))


def buqrus_site_median(run, scenario) -> float:
    """Median clashes over the named towns, crossings and oil fields (`site_clash_counts`); NaN if there are none."""
    counts = site_clash_counts(run, scenario)
    return float(np.median(list(counts.values()))) if counts else float("nan")


def buqrus_excess(run, scenario) -> float:
    """Clashes at Buqrus minus the median over the named towns, crossings and oil fields."""
    counts = site_clash_counts(run, scenario)
    if not counts:
        return float("nan")
    return float(counts.get("buqrus", 0) - np.median(list(counts.values())))


def buqrus_wounded_per_clash(run, scenario) -> float:
    """Median wounded (both sides) per clash at Buqrus; NaN if none (for reference only)."""
    names, rows, cols, _ = _site_cells(scenario)
    clashes = _events(run, "clash")
    if clashes.empty or "buqrus" not in names:
        return float("nan")
    i = names.index("buqrus")
    near = np.hypot(_numbers(clashes, "row") - rows[i], _numbers(clashes, "col") - cols[i]) <= SITE_RADIUS
    named = clashes["site"].astype("string").fillna("").to_numpy() == "buqrus" if "site" in clashes else False
    at = clashes[near | named]
    if at.empty:
        return float("nan")
    wounded = np.nan_to_num(_numbers(at, "wounded_a")) + np.nan_to_num(_numbers(at, "wounded_b"))
    return float(np.median(wounded))


def check_buqrus(run, scenario) -> bool:
    """Whether Buqrus had at least one clash and at least the median of the named towns, crossings and oil fields."""
    counts = site_clash_counts(run, scenario)
    here = counts.get("buqrus", 0)
    return here >= 1 and here >= float(np.median(list(counts.values())))


def applicable_buqrus(scenario) -> bool:
    """Whether the scenario has a site named buqrus and at least two militias."""
    return "buqrus" in scenario.sites and len(_militias(scenario)) >= 2


# --------------------------------------------------------------------------- 6, 7. meetings and calm


def failed_meeting_share(run, scenario) -> float:
    """Share (0-1) of the run's mediation meetings that failed or escalated; NaN without meetings."""
    ts = _ts(run)
    meetings = _col_total(ts, "meetings")
    if meetings <= 0:
        return float("nan")
    return (_col_total(ts, "failures") + _col_total(ts, "escalations")) / meetings


def check_meetings_fail(run, scenario) -> bool:
    """Whether at least FAILED_SHARE_MIN of the run's meetings failed or escalated; False without meetings."""
    share = failed_meeting_share(run, scenario)
    return not math.isnan(share) and share >= FAILED_SHARE_MIN


def _pair_keys(frame: pd.DataFrame) -> pd.Series:
    a = frame["side_a"].astype("string").fillna("")
    b = frame["side_b"].astype("string").fillna("")
    return a.where(a <= b, b) + "~" + b.where(a <= b, a)


def _calm_waits(run) -> list[tuple[int, int | None]]:
    """For each agreement: (its step, days until the pair's next clash, or None if none came)."""
    meetings = _events(run, "meeting")
    if meetings.empty or "outcome" not in meetings.columns:
        return []
    agreements = meetings[meetings["outcome"] == "agreement"]
    if agreements.empty:
        return []
    clashes = _events(run, "clash")
    clash_steps = pd.to_numeric(clashes["step"]).to_numpy() if len(clashes) else np.zeros(0)
    clash_pairs = _pair_keys(clashes).to_numpy() if len(clashes) else np.zeros(0, dtype=object)
    waits = []
    for step, pair in zip(pd.to_numeric(agreements["step"]).to_numpy(), _pair_keys(agreements).to_numpy()):
        later = clash_steps[(clash_pairs == pair) & (clash_steps > step)]
        waits.append((int(step), int(later.min() - step) if len(later) else None))
    return waits


def longest_calm(run, scenario) -> float:
    """Longest calm after an agreement, in days; NaN if the run had no agreement.

    A calm lasts from an agreement to the pair's next clash, or to the run's last step if none came.
    """
    waits = _calm_waits(run)
    if not waits:
        return float("nan")
    end = _last_step(run)
    return float(max(w if w is not None else end - s for s, w in waits))


def check_calm_short(run, scenario) -> bool:
    """Whether every agreement was followed by a clash of the same pair within CALM_DAYS days.

    An agreement with no later clash counts against only if at least CALM_DAYS days of the
    run followed it (otherwise the run ended before the calm could be judged). True for a
    run without agreements.
    """
    end = _last_step(run)
    for step, wait in _calm_waits(run):
        if wait is not None and wait <= CALM_DAYS:
            continue
        if wait is None and end - step < CALM_DAYS:
            continue  # censored: the run ended before the calm could be judged
        return False
    return True


def applicable_hostile_militias(scenario) -> bool:
    """Whether some hostile pair of the scenario is two militias."""
    militias = set(_militias(scenario))
    return any(a in militias and b in militias for a, b in scenario.hostilities)


# --------------------------------------------------------------------------- 8. Al-Bukamal


def albukamal_irgc_share(run, scenario) -> float:
    """Share of days 1..T on which control.albukamal is IRGC (day 0 is the initial state)."""
    ts = _ts(run)
    if "control.albukamal" not in ts.columns:
        return float("nan")
    days = ts[ts["step"] >= 1] if "step" in ts.columns else ts
    if days.empty:
        days = ts
    return float((days["control.albukamal"].astype(str) == "IRGC").mean())


def check_albukamal(run, scenario) -> bool:
    """Whether the IRGC holds Al-Bukamal on the last day and on at least HOLD_SHARE_MIN of days 1..T.

    False if the run did not record `control.albukamal`.
    """
    ts = _ts(run)
    if "control.albukamal" not in ts.columns or ts.empty:
        return False
    last = str(ts["control.albukamal"].iloc[-1])
    return last == "IRGC" and albukamal_irgc_share(run, scenario) >= HOLD_SHARE_MIN


def applicable_albukamal(scenario) -> bool:
    """Whether the scenario has a site named albukamal and a militia named IRGC."""
    return "albukamal" in scenario.sites and _has_militias(scenario, "IRGC")


# --------------------------------------------------------------------------- 9. insurgency


def insurgency_rho(run, scenario) -> float:
    """Spearman rank correlation, over the days of the run, of cumulative clashes and insurgent cells."""
    ts = _ts(run)
    if "insurgent_cells" not in ts.columns or "clashes" not in ts.columns or len(ts) < 3:
        return float("nan")
    cum = pd.to_numeric(ts["clashes"], errors="coerce").fillna(0).cumsum().to_numpy(dtype=float)
    cells = pd.to_numeric(ts["insurgent_cells"], errors="coerce").to_numpy(dtype=float)
    if np.ptp(cum) == 0 or np.ptp(cells) == 0:
        return float("nan")
    return float(stats.spearmanr(cum, cells).statistic)


def insurgent_growth(run, scenario) -> float:
    """Insurgent cells on the last day minus on day 0."""
    ts = _ts(run)
    if "insurgent_cells" not in ts.columns or ts.empty:
        return float("nan")
    cells = pd.to_numeric(ts["insurgent_cells"], errors="coerce")
    return float(cells.iloc[-1] - cells.iloc[0])


def check_insurgency(run, scenario) -> bool:
    """Whether the insurgency grew with the clashes.

    Insurgent cells must end higher than they started (`insurgent_growth` > 0) and rise with
    cumulative clashes (`insurgency_rho` >= RHO_MIN); False where either is undefined.
    """
    growth, rho = insurgent_growth(run, scenario), insurgency_rho(run, scenario)
    return not (math.isnan(growth) or math.isnan(rho)) and growth > 0 and rho >= RHO_MIN


def applicable_insurgency(scenario) -> bool:
    """Whether the scenario has an insurgent faction and a hostile pair of militias."""
    return any(f.kind == "insurgent" for f in scenario.factions.values()) and applicable_hostile_militias(scenario)


# --------------------------------------------------------------------------- 10, 11. the IRGC expands


def _irgc_daily_intake(run) -> np.ndarray:
    """New IRGC members on each of days 1..T: `joined.IRGC` plus every `defections.*>IRGC` (people)."""
    ts = _ts(run)
    days = ts[ts["step"] >= 1] if "step" in ts.columns else ts
    columns = ["joined.IRGC", *[c for c in days.columns if c.startswith("defections.") and c.endswith(">IRGC")]]
    intake = np.zeros(len(days))
    for column in columns:
        intake += np.nan_to_num(_numbers(days, column))
    return intake


def irgc_intake(run, scenario) -> float:
    """New IRGC members over days 1..T: civilians who joined plus defectors from any militia (people)."""
    return float(_irgc_daily_intake(run).sum())


def check_irgc_recruits(run, scenario) -> bool:
    """Whether the IRGC took in new members in each half of the run (days 1..T/2 and T/2+1..T).

    New members are civilians who joined (`joined.IRGC`) and defectors from any militia
    (`defections.*>IRGC`). A run of a single day is judged on that day; False without days.
    """
    intake = _irgc_daily_intake(run)
    if len(intake) == 0:
        return False
    half = max(len(intake) // 2, 1)
    halves = [intake[:half], intake[half:]] if len(intake) > 1 else [intake]
    return all(part.sum() > 0 for part in halves)


def irgc_new_headquarters(run, scenario) -> float:
    """Headquarters the IRGC opened during the run (`new_headquarters` events with faction IRGC)."""
    events = _events(run, "new_headquarters")
    if events.empty or "faction" not in events.columns:
        return 0.0
    return float((events["faction"].astype("string") == "IRGC").sum())


def check_irgc_opens_headquarters(run, scenario) -> bool:
    """Whether the IRGC opened at least one new headquarters during the run."""
    return irgc_new_headquarters(run, scenario) >= 1


def applicable_irgc(scenario) -> bool:
    """Whether the scenario has a militia named IRGC."""
    return _has_militias(scenario, "IRGC")


# --------------------------------------------------------------------------- 12, 13. the NDF's ground


def _control_days(run, site: str) -> pd.Series:
    """`control.<site>` on days 1..T as strings (day 0 if the run has no later day); empty if not recorded."""
    ts = _ts(run)
    column = f"control.{site}"
    if column not in ts.columns or ts.empty:
        return pd.Series(dtype=str)
    days = ts[ts["step"] >= 1] if "step" in ts.columns else ts
    if days.empty:
        days = ts
    return days[column].astype(str)


def held_share(run, site: str, holders: Iterable[str]) -> float:
    """Share of days 1..T on which `control.<site>` is one of `holders`; NaN if not recorded."""
    control = _control_days(run, site)
    return float(control.isin(list(holders)).mean()) if len(control) else float("nan")


def holder_at_end(run, site: str) -> str | None:
    """Who holds `site` on the last day (`control.<site>`: a faction, 'contested' or 'none'); None if not recorded."""
    control = _control_days(run, site)
    return str(control.iloc[-1]) if len(control) else None


def ndf_west_share(run, scenario) -> float:
    """Share of days 1..T on which the NDF controls Al-Bukamal's western countryside (`control.albukamal_west`)."""
    return held_share(run, "albukamal_west", ["NDF"])


def check_ndf_holds_west(run, scenario) -> bool:
    """Whether the NDF controls `albukamal_west` on the last day; False if it is not recorded."""
    return holder_at_end(run, "albukamal_west") == "NDF"


def applicable_ndf_west(scenario) -> bool:
    """Whether the scenario has a site named albukamal_west and a militia named NDF."""
    return "albukamal_west" in scenario.sites and _has_militias(scenario, "NDF")


def regime_side(scenario) -> list[str]:
    """The NDF and the militias whose patron is the regime (`REGIME_PATRON`), e.g. Military Security."""
    side = ["NDF"] if "NDF" in scenario.factions else []
    for name, faction in scenario.factions.items():
        if faction.kind == "militia" and faction.patron == REGIME_PATRON and name not in side:
            side.append(name)
    return side


def deir_ezzor_share(run, scenario) -> float:
    """Share of days 1..T on which Deir ez-Zor is held by the NDF or the regime (`regime_side`)."""
    return held_share(run, "deir_ezzor", regime_side(scenario))


def check_deir_ezzor(run, scenario) -> bool:
    """Whether the NDF or the regime holds Deir ez-Zor on the last day and on at least HOLD_SHARE_MIN of days 1..T."""
    return (
        holder_at_end(run, "deir_ezzor") in regime_side(scenario)
        and deir_ezzor_share(run, scenario) >= HOLD_SHARE_MIN - 1e-12
    )


def applicable_deir_ezzor(scenario) -> bool:
    """Whether the scenario has a site named deir_ezzor and a militia named NDF."""
    return "deir_ezzor" in scenario.sites and _has_militias(scenario, "NDF")


# --------------------------------------------------------------------------- 14. neither rival routed


RIVALS = ("IRGC", "NDF")


def kept_share(run, faction: str) -> float:
    """Fighters of `faction` on the last day over those on day 0; NaN if not recorded or none on day 0."""
    ts = _ts(run)
    start, end = _day0(ts, f"fighters.{faction}"), _last(ts, f"fighters.{faction}")
    return end / start if start > 0 else float("nan")


def sites_held_at_end(run, scenario, faction: str) -> list[str]:
    """The named towns, crossings and oil fields (`SITE_KINDS`) that `faction` controls on the last day."""
    return [
        name for name, site in scenario.sites.items() if site.kind in SITE_KINDS and holder_at_end(run, name) == faction
    ]


def min_kept_share(run, scenario) -> float:
    """The smaller of the IRGC's and the NDF's `kept_share` (0-1 or more); NaN if either is undefined."""
    shares = [kept_share(run, f) for f in RIVALS]
    return float("nan") if any(math.isnan(x) for x in shares) else float(min(shares))


def check_neither_routed(run, scenario) -> bool:
    """Whether the IRGC and the NDF each keep ROUT_KEEP_MIN of their day-0 fighters and hold a named site at the end.

    A named site is a town, crossing or oil field (`SITE_KINDS`), not a headquarters compound.
    """
    for faction in RIVALS:
        share = kept_share(run, faction)
        if math.isnan(share) or share < ROUT_KEEP_MIN - 1e-12 or not sites_held_at_end(run, scenario, faction):
            return False
    return True


# --------------------------------------------------------------------------- 15. episodes


def clash_days(run) -> np.ndarray:
    """The sorted distinct days (>= 1) with at least one rival-militia clash (clash events)."""
    clashes = _events(run, "clash")
    if clashes.empty:
        return np.zeros(0, dtype=int)
    days = pd.to_numeric(clashes["step"], errors="coerce").dropna().astype(int).to_numpy()
    return np.unique(days[days >= 1])


def clash_episodes(run, scenario) -> float:
    """Clash episodes of the run: runs of clash days separated by at least QUIET_DAYS days without a clash."""
    days = clash_days(run)
    if len(days) == 0:
        return 0.0
    quiet = np.diff(days) - 1  # clash-free days between consecutive clash days
    return float(1 + np.count_nonzero(quiet >= QUIET_DAYS))


def check_clash_episodes(run, scenario) -> bool:
    """Whether the run had at least EPISODES_MIN clash episodes (`clash_episodes`)."""
    return clash_episodes(run, scenario) >= EPISODES_MIN


# --------------------------------------------------------------------------- 16. annual toll


def clash_killed_total(run, scenario) -> float:
    """Killed (both sides) in rival-militia clashes over the run (clash events), persons."""
    return float(_clash_casualty_series(run)[0].sum())


def annual_clash_toll(run, scenario) -> float:
    """Killed in rival-militia clashes per 365 days: `clash_killed_total` x 365 / days run."""
    days = max(_last_step(run), 1)
    return clash_killed_total(run, scenario) * 365.0 / days


def check_annual_toll(run, scenario) -> bool:
    """Whether `annual_clash_toll` lies within [TOLL_LOW, TOLL_HIGH]."""
    return TOLL_LOW <= annual_clash_toll(run, scenario) <= TOLL_HIGH


# --------------------------------------------------------------------------- per-run figures for the ensemble patterns


def clashes_total(run, scenario) -> float:
    """Rival-militia clashes over the run (clash events)."""
    return float(len(_events(run, "clash")))


def meetings_total(run, scenario) -> float:
    """Mediation meetings over the run (`meetings`)."""
    return _col_total(_ts(run), "meetings")


def escalations_total(run, scenario) -> float:
    """Meetings that ended in escalation over the run (`escalations`)."""
    return _col_total(_ts(run), "escalations")


# --------------------------------------------------------------------------- ensemble statistics


def _column(runs: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(runs[name], errors="coerce").to_numpy(dtype=float) if name in runs else np.zeros(0)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def insurgency_rho_across_runs(runs: pd.DataFrame, rng: np.random.Generator) -> tuple[float, float, float]:
    """Spearman rho across runs between clashes (`clashes_total`) and insurgent growth (`insurgent_growth`).

    Returns:
        (rho, low, high): the 95% interval resamples runs (`bootstrap_interval`); NaN where
        undefined (fewer than 3 runs with both values, or either constant).
    """
    x, y = _column(runs, "clashes_total"), _column(runs, "insurgent_growth")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    rho = _spearman(x, y)
    if math.isnan(rho):
        return rho, float("nan"), float("nan")
    return (rho, *bootstrap_interval((x, y), _spearman, rng))


def _ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray) -> float:
    total = float(np.sum(denominator))
    return float(np.sum(numerator) / total) if total > 0 else float("nan")


def escalation_share(runs: pd.DataFrame, rng: np.random.Generator) -> tuple[float, float, float]:
    """Share of all meetings, pooled over runs, that ended in escalation (`escalations` / `meetings`).

    Returns:
        (share, low, high): the 95% interval resamples runs, keeping each run's meetings
        together (a cluster bootstrap); NaN without meetings.
    """
    escalations, meetings = _column(runs, "escalations"), _column(runs, "meetings")
    share = _ratio_of_sums(escalations, meetings)
    if math.isnan(share):
        return share, float("nan"), float("nan")
    return (share, *bootstrap_interval((escalations, meetings), _ratio_of_sums, rng))


def passes_positive(value: float, low: float, high: float) -> bool:
    """Whether the interval lies above zero (low > 0); False where it is undefined."""
    return not math.isnan(low) and low > 0


def passes_some_escalation(value: float, low: float, high: float) -> bool:
    """Whether escalation is a real outcome (interval above 0) but not most meetings (share <= ESCALATION_SHARE_MAX)."""
    return not (math.isnan(value) or math.isnan(low)) and low > 0 and value <= ESCALATION_SHARE_MAX + 1e-12


# --------------------------------------------------------------------------- references for plots


def _ref_zero(scenario):
    return 0.0, "0: no net flow"


def _ref_zero_median(scenario):
    return 0.0, "the median site"


def _ref_edge(scenario):
    return EDGE_SHARE_MIN, f"{EDGE_SHARE_MIN:.0%}"


def _ref_killed(scenario):
    return scenario.targets.killed_min, f"article §4: >{scenario.targets.killed_min:g} killed"


def _acc_killed(scenario):
    return _window_bounds(scenario.targets.killed_min)


def _ref_wounded(scenario):
    return scenario.targets.wounded, f"article §4: ~{scenario.targets.wounded:g} wounded"


def _acc_wounded(scenario):
    return _window_bounds(scenario.targets.wounded)


def _ref_share(scenario):
    return scenario.targets.killed_share, f"article §4: {scenario.targets.killed_share:.3f}"


def _acc_share(scenario):
    t = scenario.targets.killed_share
    return t - KILLED_SHARE_TOLERANCE, t + KILLED_SHARE_TOLERANCE


def _ref_failed(scenario):
    return 1.0, "article: every meeting failed"


def _acc_failed(scenario):
    return FAILED_SHARE_MIN, None


def _ref_calm(scenario):
    return float(CALM_DAYS), f"{CALM_DAYS} days"


def _acc_calm(scenario):
    return None, float(CALM_DAYS)


def _ref_hold(scenario):
    return HOLD_SHARE_MIN, f"{HOLD_SHARE_MIN:.0%} of days"


def _acc_hold(scenario):
    return HOLD_SHARE_MIN, None


def _ref_rho(scenario):
    return RHO_MIN, f"rho = {RHO_MIN}"


def _acc_rho(scenario):
    return RHO_MIN, None


def _acc_positive(scenario):
    return 0.0, None


def _acc_edge(scenario):
    return EDGE_SHARE_MIN, None


def _ref_one_way(scenario):
    share = DEFECTION_RATIO_MIN / (DEFECTION_RATIO_MIN + 1)
    return share, f"{share:.0%}: {DEFECTION_RATIO_MIN:g} to 1"


def _acc_one_way(scenario):
    return DEFECTION_RATIO_MIN / (DEFECTION_RATIO_MIN + 1), None


def _acc_at_least_one(scenario):
    return 1.0, None


def _ref_rout(scenario):
    return ROUT_KEEP_MIN, f"{ROUT_KEEP_MIN:.0%} of day-0 fighters"


def _acc_rout(scenario):
    return ROUT_KEEP_MIN, None


def _ref_episodes(scenario):
    return float(EPISODES_MIN), f"{EPISODES_MIN} episodes"


def _acc_episodes(scenario):
    return float(EPISODES_MIN), None


def _ref_toll(scenario):
    return TOLL_LOW, f"band {TOLL_LOW:g}-{TOLL_HIGH:g} killed/year"


def _acc_toll(scenario):
    return TOLL_LOW, TOLL_HIGH


def _ref_buqrus_wounded(scenario):
    return scenario.targets.buqrus_wounded, f"article §13: {scenario.targets.buqrus_wounded:g} wounded"


# --------------------------------------------------------------------------- the patterns


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        name="net_defection_ndf_to_irgc",
        paragraphs="§9",
        facts="F19, F20",
        description=(
            "Many NDF members defected to the IRGC (higher salaries, greater privileges, escape from "
            "compulsory service); the article reports no flow the other way. Shown by a run when its total "
            "NDF→IRGC defections (sum of `defections.NDF>IRGC`) are at least "
            f"{DEFECTION_RATIO_MIN:g} times its IRGC→NDF defections, i.e. at least "
            f"{DEFECTION_RATIO_MIN / (DEFECTION_RATIO_MIN + 1):.0%} of the flow between the two goes to the "
            "IRGC ('mostly one way': the same three-in-four cut-off as `meetings_mostly_fail`, where the "
            "article also reports one direction only), and at least "
            f"{DEFECTION_MIN_SHARE:.0%} of the NDF's day-0 fighters (and one person): 'many' members, not a "
            "handful (the article gives no count; the 1% floor is an assumption). Measure: the NDF→IRGC "
            "share of the two-way flow (the net flow is `net_defection`)."
        ),
        check=check_net_defection,
        measure=defection_one_way_share,
        measure_label="share of NDF↔IRGC defections going NDF→IRGC",
        applicable=applicable_irgc_ndf,
        reference=_ref_one_way,
        accept=_acc_one_way,
    ),
    Pattern(
        name="irgc_recruits",
        paragraphs="§10",
        facts="F23",
        description=(
            "The IRGC tries to raise its influence by recruiting new fighters (§10): a continuing effort, "
            "not a single intake. Shown when the IRGC takes in new members (civilians who joined, "
            "`joined.IRGC`, plus defectors from any militia, `defections.*>IRGC`) in the first half of the "
            "run and again in the second half. Halves rather than quarters or months: the article says the "
            "recruiting goes on, not at what rate (assumption). Measure: new IRGC members over the run."
        ),
        check=check_irgc_recruits,
        measure=irgc_intake,
        measure_label="new IRGC members over the run (people)",
        applicable=applicable_irgc,
        accept=_acc_at_least_one,
    ),
    Pattern(
        name="irgc_opens_headquarters",
        paragraphs="§10",
        facts="F23",
        description=(
            "The IRGC opens new headquarters (§10). Shown when the run records at least one "
            "`new_headquarters` event of the IRGC (the article gives no number: one is the least that "
            "shows it). Measure: headquarters the IRGC opened."
        ),
        check=check_irgc_opens_headquarters,
        measure=irgc_new_headquarters,
        measure_label="new IRGC headquarters over the run",
        applicable=applicable_irgc,
        accept=_acc_at_least_one,
    ),
    Pattern(
        name="irgc_keeps_albukamal",
        paragraphs="§11",
        facts="F26",
        description=(
            "The IRGC has held Al-Bukamal city since the end of 2017 and rules it (§11). Shown when "
            f"`control.albukamal` is IRGC on the last day and on at least {HOLD_SHARE_MIN:.0%} of days 1..T "
            "(day 0, the initial state, is not counted; the 10% allows a few weeks contested, which the "
            "article's 'tension' in the city (§10) permits; an assumption). Not applicable to a scenario "
            "without a site `albukamal` or a militia `IRGC`. Measure: the share of days held."
        ),
        check=check_albukamal,
        measure=albukamal_irgc_share,
        measure_label="share of days Al-Bukamal is IRGC-controlled",
        applicable=applicable_albukamal,
        reference=_ref_hold,
        accept=_acc_hold,
    ),
    Pattern(
        name="ndf_holds_western_countryside",
        paragraphs="§10",
        facts="F25",
        description=(
            "The NDF reinforced its posts in Al-Bukamal's western countryside with fighters and military "
            "points (§10): it is there, and strong, when the article is written. Shown when "
            "`control.albukamal_west` is NDF on the last day. Control (the NDF dominant among the rivals "
            "there) is the recorded stand-in for 'holds posts': the runs record no fighters per site, and a "
            "'contested' label cannot tell NDF posts under pressure from no NDF at all, so contested does "
            "not count. Not applicable without a site `albukamal_west` or a militia `NDF`. Measure: the "
            "share of days 1..T the NDF controls it."
        ),
        check=check_ndf_holds_west,
        measure=ndf_west_share,
        measure_label="share of days the NDF controls albukamal_west",
        applicable=applicable_ndf_west,
    ),
    Pattern(
        name="deir_ezzor_stays_with_ndf_or_regime",
        paragraphs="§2, §4",
        facts="F08",
        description=(
            "Deir ez-Zor has its own NDF leader (§2) and is where the regime's officers and the patrons' "
            "envoys come to meet (§4); the article reports tension there (§10), never a change of "
            "hands. Shown when `control.deir_ezzor` is the NDF or a regime militia (patron "
            f"`{REGIME_PATRON}`, e.g. Military Security) on the last day and on at least "
            f"{HOLD_SHARE_MIN:.0%} of days 1..T, the same standard as the IRGC's hold on Al-Bukamal. "
            "Not applicable without a site `deir_ezzor` or a militia `NDF`. Measure: the share of days held."
        ),
        check=check_deir_ezzor,
        measure=deir_ezzor_share,
        measure_label="share of days Deir ez-Zor is NDF- or regime-held",
        applicable=applicable_deir_ezzor,
        reference=_ref_hold,
        accept=_acc_hold,
    ),
    Pattern(
        name="neither_rival_routed",
        paragraphs="§4, §8, §12",
        facts="F09, F17, F18",
        description=(
            "The rivalry is a struggle between two poles that cannot vanish (§4), expected to continue (§8) "
            "with both sides competing for the area's resources (§12): neither side is beaten within the "
            "year. Shown when the IRGC and the NDF each end the run with at least "
            f"{ROUT_KEEP_MIN:.0%} of their day-0 fighters (`fighters.*`) and each controls at least one "
            "named town, crossing or oil field on the last day (a headquarters compound alone does not "
            f"count). The {ROUT_KEEP_MIN:.0%} cut-off is an assumption: the NDF loses 'many' men to "
            "defection (§9, no count given) yet reinforces its posts (§10), so it cannot be shrinking fast; "
            "issue 9 called a loss of half (1,500 to about 760 NDF fighters) absorption, and 60% leaves "
            "room for the defections while excluding that. Measure: the smaller of the two kept shares."
        ),
        check=check_neither_routed,
        measure=min_kept_share,
        measure_label="smaller of IRGC, NDF fighters kept (last day / day 0)",
        applicable=applicable_irgc_ndf,
        reference=_ref_rout,
        accept=_acc_rout,
    ),
    Pattern(
        name="clashes_recur_in_episodes",
        paragraphs="§3, §4, §6, §9, §13",
        facts="F05, F07, F14, F20, F32",
        description=(
            "Clashes come in rounds separated by meetings and lulls: 'repeated clashes', the latest two days "
            "before the meeting (§3); the 'recent clashes' that killed more than 25 (§4); the clashes after "
            "the defections (§9); the latest dispute at Buqrus (§13); renewed clashes expected (§6). An "
            "episode is a run of days with rival-militia clashes (clash events) in which no gap reaches "
            f"{QUIET_DAYS} clash-free days; shown when the run has at least {EPISODES_MIN} episodes. "
            f"{EPISODES_MIN}: the article itself names three rounds within months (§9, §3-§4, §13), so a "
            f"year should show at least as many; one continuous war, or a single burst, does not. The "
            f"{QUIET_DAYS}-day lull is an assumption (the article separates clash and meeting by two days "
            "and calls them one round). Measure: the number of episodes."
        ),
        check=check_clash_episodes,
        measure=clash_episodes,
        measure_label="clash episodes (separated by ≥ 14 quiet days)",
        applicable=applicable_hostile_militias,
        reference=_ref_episodes,
        accept=_acc_episodes,
    ),
    Pattern(
        name="clashes_at_crossings_and_edges",
        paragraphs="§3, §13",
        facts="F28, F31",
        description=(
            "Clashes are concentrated where control is disputed (the Buqrus crossing, Al-Bukamal, the "
            "crossings and resources both sides want), not deep inside one side's area. Shown when at least "
            f"{EDGE_SHARE_MIN:.0%} of the run's clashes have `ground` `crossing` (a crossing within one cell) "
            "or `edge` (a contested cell, or one within two cells of ground held by someone else), as the "
            "model classifies each clash when it happens; a run with no clash does not show it. "
            f"The {EDGE_SHARE_MIN:.0%} cut-off is an assumption (the article gives no share). "
            "Measure: that share."
        ),
        check=check_edge_clashes,
        measure=edge_clash_share,
        measure_label="share of clashes at crossings or contested edges",
        applicable=applicable_hostile_militias,
        reference=_ref_edge,
        accept=_acc_edge,
    ),
    Pattern(
        name="buqrus_is_a_flashpoint",
        paragraphs="§13",
        facts="F31, F32",
        description=(
            "The latest dispute was over the crossing at Buqrus, east of Al-Mayadin, with 4 wounded. "
            "A clash is at a site when its `site` field names it or its cell lies within "
            f"{SITE_RADIUS:g} cells (Euclidean) of the site's cell. Shown when at least one clash is at "
            "Buqrus and Buqrus has at least the median number of clashes over the named sites that are not "
            "headquarters or venues (towns, crossings, the oil field; Buqrus included). Not applicable to a "
            "scenario without a site `buqrus`. Measure: clashes at Buqrus minus that median (the count "
            "itself is `buqrus_clashes`)."
        ),
        check=check_buqrus,
        measure=buqrus_excess,
        measure_label="clashes at Buqrus minus the median site's",
        applicable=applicable_buqrus,
        reference=_ref_zero_median,
        accept=_acc_positive,
    ),
    Pattern(
        name="casualties_of_the_articles_order",
        paragraphs="§4",
        facts="F07",
        description=(
            "The recent clashes killed more than 25 IRGC and NDF members and wounded about 40. Counted "
            "from the run's clash events (killed and wounded of both sides in clashes between hostile "
            "militias): the article's figures are the losses in those clashes, so losses to insurgent "
            "attacks, which `killed.*` and `wounded.*` also hold, are left out (they are reported as "
            "`window_killed_all` and `window_wounded_all`). The article's 'recent clashes' are the run's "
            "busiest `targets.window_days`-day window: the window with the largest rolling sum of clash "
            "killed + wounded. Shown when, in that window, killed lies within "
            f"[{WINDOW_LOW:g}, {WINDOW_HIGH:g}] × `targets.killed_min` and wounded within "
            f"[{WINDOW_LOW:g}, {WINDOW_HIGH:g}] × `targets.wounded`: the article's order of magnitude (the "
            "bounds are an assumption). Measure: killed in the window (wounded: `window_wounded`)."
        ),
        check=check_casualty_order,
        measure=window_killed,
        measure_label="killed in the busiest window (people)",
        applicable=applicable_hostile_militias,
        reference=_ref_killed,
        accept=_acc_killed,
    ),
    Pattern(
        name="annual_clash_toll_plausible",
        paragraphs="§4, §6, §8",
        facts="F07, F14, F18",
        description=(
            "A year of this rivalry costs lives on the scale of its rounds, not of a war. Counted from the "
            "clash events (killed of both sides in rival-militia clashes, insurgent attacks left out), "
            f"scaled to 365 days; shown when it lies within [{TOLL_LOW:g}, {TOLL_HIGH:g}]. Lower bound: the "
            "'recent clashes' alone killed more than 25 (§4) and renewed fighting is expected (§6, §8), so "
            f"a year with fewer than {TOLL_LOW:g} killed would make the article's round the whole year's "
            f"fighting. Upper bound: {TOLL_HIGH:g} is sixteen rounds of the article's size (one every three "
            "weeks all year), beyond which the rivalry would be open war between the two militias, which the "
            "article does not describe (disputes, threats and meetings, §3-§6, §9). Both bounds are "
            "assumptions of order of magnitude: the article is the only source used here; conflict-event "
            "data for the Deir ez-Zor governorate (e.g. ACLED's records of clashes between pro-government "
            "groups) are the check to make before relying on the band. Measure: killed per 365 days."
        ),
        check=check_annual_toll,
        measure=annual_clash_toll,
        measure_label="killed in rival clashes per 365 days (people)",
        applicable=applicable_hostile_militias,
        reference=_ref_toll,
        accept=_acc_toll,
    ),
    Pattern(
        name="killed_share_near_article",
        paragraphs="§4",
        facts="F07",
        description=(
            "More than 25 killed and about 40 wounded: a killed share of casualties of 25/65 ≈ 0.385 "
            "(`targets.killed_share`). Shown when the run's whole-run killed / (killed + wounded), all "
            f"militias, lies within ±{KILLED_SHARE_TOLERANCE} of it (the tolerance is an assumption). "
            "Verification, not validation: the share killed is an input (`rules.clashes.p_killed`), so this "
            "checks that the model does what it is told; it is reported apart and left out of the joint "
            "share. Measure: that share."
        ),
        check=check_killed_share,
        measure=killed_share,
        measure_label="killed / (killed + wounded), whole run",
        applicable=applicable_hostile_militias,
        reference=_ref_share,
        accept=_acc_share,
        verification=True,
    ),
    Pattern(
        name="meetings_mostly_fail",
        paragraphs="§3, §6, §9, §13",
        facts="F06, F14, F21, F33",
        description=(
            "Every meeting the article reports ended without agreement (§3, §9, §13) or made things worse "
            "(§6). Shown when the run held at least one meeting and at least "
            f"{FAILED_SHARE_MIN:.0%} of its meetings ended in failure or escalation (the cut-off is an "
            "assumption: the article reports failures only, but of a handful of meetings). "
            "Measure: that share."
        ),
        check=check_meetings_fail,
        measure=failed_meeting_share,
        measure_label="share of meetings that failed or escalated",
        applicable=applicable_hostile_militias,
        reference=_ref_failed,
        accept=_acc_failed,
    ),
    Pattern(
        name="calm_does_not_last",
        paragraphs="§8",
        facts="F18",
        description=(
            "'If fighting stops it will be temporary, because the motive remains.' Shown when every "
            f"agreement is followed by a clash between the same pair within {CALM_DAYS} days (later days "
            f"only), or the run ends less than {CALM_DAYS} days after it; a run without any agreement shows "
            f"it (calm never came). The {CALM_DAYS}-day horizon is an assumption. Measure: the longest wait "
            "from an agreement to the pair's next clash (to the run's end if none came)."
        ),
        check=check_calm_short,
        measure=longest_calm,
        measure_label="longest calm after an agreement (days)",
        applicable=applicable_hostile_militias,
        reference=_ref_calm,
        accept=_acc_calm,
    ),
    Pattern(
        name="insurgency_rises_with_rivalry",
        paragraphs="§8, §13",
        facts="F16, F34",
        description=(
            "ISIS cells are likely to grow and exploit the rivals' disputes. Shown when the insurgent cells "
            "on the last day exceed those on day 0, and the Spearman rank correlation over the run's days "
            f"between cumulative clashes and insurgent cells is at least {RHO_MIN} (undefined, so not shown, "
            "if either is constant). Within one run; the same across runs is the ensemble pattern "
            "`insurgency_tracks_rivalry_across_runs`. Not applicable without an insurgent faction. "
            "Measure: the correlation."
        ),
        check=check_insurgency,
        measure=insurgency_rho,
        measure_label="Spearman rho: cumulative clashes vs insurgent cells",
        applicable=applicable_insurgency,
        reference=_ref_rho,
        accept=_acc_rho,
    ),
)

ENSEMBLE_PATTERNS: tuple[EnsemblePattern, ...] = (
    EnsemblePattern(
        name="insurgency_tracks_rivalry_across_runs",
        paragraphs="§8, §13",
        facts="F16, F34",
        description=(
            "ISIS cells grow as the rivals fight and exploit their disputes (§8, §13): a run with more "
            "fighting between the rivals should leave a stronger insurgency than a run with less, whatever "
            "the day-to-day trend within each run. The statistic is the Spearman rank correlation across "
            "runs between the run's rival-militia clashes (`clashes_total`) and its insurgent growth "
            "(`insurgent_growth`: cells on the last day minus day 0), with a 95% bootstrap interval "
            f"(BCa, {N_BOOTSTRAP} resamples of the runs, seeded from the root seed). Shown when the "
            "interval lies above zero. Not applicable without an insurgent faction."
        ),
        statistic=insurgency_rho_across_runs,
        passes=passes_positive,
        statistic_label="Spearman rho across runs: clashes vs insurgent growth",
        criterion="95% interval above 0",
        applicable=applicable_insurgency,
    ),
    EnsemblePattern(
        name="meetings_sometimes_escalate",
        paragraphs="§5, §6",
        facts="F10, F11, F14",
        description=(
            "One of the meetings the article reports ended with a commander pointing his weapon at the "
            "other side's leaders and made things worse (§5, §6); the others simply failed. 'Some meetings "
            "escalate' is a statement about meetings in general, not about every run (a run with two "
            "meetings may well have no escalation), so it is judged on all meetings pooled over the runs: "
            "the share that ended in escalation (`escalations` / `meetings`), with a 95% bootstrap interval "
            "that resamples whole runs. Shown when the interval lies above zero (escalation happens) and the "
            f"share is at most {ESCALATION_SHARE_MAX:.0%} (escalation is the exception among the failures; an "
            "assumption, the article reporting one escalation among several failed meetings)."
        ),
        statistic=escalation_share,
        passes=passes_some_escalation,
        statistic_label="share of all meetings that escalated",
        criterion=f"95% interval above 0 and share ≤ {ESCALATION_SHARE_MAX:g}",
        applicable=applicable_hostile_militias,
    ),
)

# Extra per-run figures in patterns.csv: (column, function, applies when, histogram reference).
EXTRAS: tuple[tuple[str, Callable, Callable, Callable | None, Callable | None, str], ...] = (
    ("net_defection", net_defection, applicable_irgc_ndf, _ref_zero, _acc_positive, "net defections NDF→IRGC"),
    ("clashes_total", clashes_total, applicable_hostile_militias, None, None, "rival-militia clashes over the run"),
    (
        "clash_killed_total",
        clash_killed_total,
        applicable_hostile_militias,
        None,
        None,
        "killed in rival clashes over the run (people)",
    ),
    ("meetings", meetings_total, applicable_hostile_militias, None, None, "meetings over the run"),
    ("escalations", escalations_total, applicable_hostile_militias, None, None, "meetings that escalated"),
    (
        "window_wounded",
        window_wounded,
        applicable_hostile_militias,
        _ref_wounded,
        _acc_wounded,
        "wounded in the busiest window (people)",
    ),
    (
        "window_killed_all",
        window_killed_all,
        applicable_hostile_militias,
        _ref_killed,
        _acc_killed,
        "killed in the busiest window, all causes (people)",
    ),
    (
        "window_wounded_all",
        window_wounded_all,
        applicable_hostile_militias,
        _ref_wounded,
        _acc_wounded,
        "wounded in the busiest window, all causes (people)",
    ),
    ("buqrus_clashes", buqrus_clashes, applicable_buqrus, None, None, "clashes at Buqrus over the run"),
    (
        "buqrus_site_median",
        buqrus_site_median,
        applicable_buqrus,
        None,
        None,
        "median clashes over named towns, crossings and oil fields",
    ),
    (
        "buqrus_wounded_per_clash",
        buqrus_wounded_per_clash,
        applicable_buqrus,
        _ref_buqrus_wounded,
        None,
        "median wounded per Buqrus clash (reference only, not a pattern)",
    ),
    (
        "insurgent_growth",
        insurgent_growth,
        applicable_insurgency,
        None,
        _acc_positive,
        "insurgent cells: last day minus day 0",
    ),
)


def _paragraph_key(text: str) -> tuple[int, str]:
    digits = "".join(ch for ch in text if ch.isdigit())
    return (int(digits) if digits else 0, text)


def pattern_by_name(name: str, patterns: Sequence[Pattern] = PATTERNS) -> Pattern:
    """The pattern of that name among `patterns`.

    Raises:
        KeyError: none has that name.
    """
    for p in patterns:
        if p.name == name:
            return p
    raise KeyError(f"no pattern named {name!r}")


# --------------------------------------------------------------------------- evaluating runs


def joint_patterns(scenario, patterns: Sequence[Pattern] = PATTERNS) -> list[Pattern]:
    """The patterns the joint share is about: every applicable validation (not verification) pattern."""
    return [p for p in patterns if p.is_applicable(scenario) and not p.verification]


def evaluate_run(run, scenario, patterns: Sequence[Pattern] = PATTERNS) -> dict:
    """One row: replicate, seed, one bool (or None if n/a) per pattern, the joint flag, then the measures.

    The joint flag (`JOINT`) is True when the run shows every pattern of `joint_patterns`
    at once; None when none applies.
    """
    row: dict = {"replicate": getattr(run, "replicate", None), "seed": getattr(run, "seed", None)}
    applies = {p.name: p.is_applicable(scenario) for p in patterns}
    for p in patterns:
        row[p.name] = bool(p.check(run, scenario)) if applies[p.name] else None
    joint = joint_patterns(scenario, patterns)
    row[JOINT] = all(row[p.name] for p in joint) if joint else None
    for p in patterns:
        if p.measure is not None:
            row[f"measure.{p.name}"] = float(p.measure(run, scenario)) if applies[p.name] else float("nan")
    for column, function, applicable, *_ in EXTRAS:
        row[column] = float(function(run, scenario)) if applicable(scenario) else float("nan")
    return row


def evaluate_runs(runs: Iterable, scenario, patterns: Sequence[Pattern] = PATTERNS) -> pd.DataFrame:
    """Per-run flags (one per pattern and the joint `JOINT`), measures and extras of several runs (RunResult-like)."""
    rows = [evaluate_run(run, scenario, patterns) for run in runs]
    frame = pd.DataFrame(rows)
    for name in [p.name for p in patterns] + [JOINT]:
        if name in frame.columns:
            frame[name] = frame[name].astype("boolean")
    return frame


def evaluate_ensemble(
    runs: pd.DataFrame, scenario, rng: np.random.Generator, patterns: Sequence[EnsemblePattern] = ENSEMBLE_PATTERNS
) -> pd.DataFrame:
    """One row per ensemble pattern: its value, 95% interval and status on the per-run table.

    Args:
        runs: the per-run table (`evaluate_runs`).
        scenario: the scenario the runs are of (for applicability).
        rng: the Generator of the bootstraps (seed it for a reproducible interval).
        patterns: the ensemble patterns.

    Returns:
        Columns pattern, paragraphs, facts, statistic (what the value is), value, ci_low,
        ci_high, criterion, runs, status ('PASS', 'FAIL'; 'n/a' where it does not apply;
        'too few runs' below ENSEMBLE_MIN_RUNS runs, where it is reported but not judged;
        an undefined value fails).
    """
    rows = []
    for p in patterns:
        value = low = high = float("nan")
        status = "n/a"
        if p.is_applicable(scenario):
            value, low, high = (float(x) for x in p.statistic(runs, rng))
            if len(runs) < ENSEMBLE_MIN_RUNS:
                status = "too few runs"
            else:
                status = "PASS" if p.passes(value, low, high) else "FAIL"
        rows.append(
            {
                "pattern": p.name,
                "paragraphs": p.paragraphs,
                "facts": p.facts,
                "statistic": p.statistic_label,
                "value": value,
                "ci_low": low,
                "ci_high": high,
                "criterion": p.criterion,
                "runs": len(runs),
                "status": status,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the report


@dataclass
class ValidationReport:
    """Which patterns a scenario's runs show, and whether each shows in enough of them."""

    scenario: Scenario
    patterns: tuple[Pattern, ...]
    runs: pd.DataFrame  # replicate, seed, one bool column per pattern (NA if n/a), measures
    root_seed: int
    steps: int
    workers: int = 1
    scenario_file: str | None = None
    overrides: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    dask: str | None = None  # the Dask scheduler the runs ran on ("local"), if any
    finished: datetime = field(default_factory=lambda: datetime.now(UTC))
    elapsed_s: float = 0.0
    ensemble_patterns: tuple[EnsemblePattern, ...] = ENSEMBLE_PATTERNS
    _ensemble: pd.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def scenario_name(self) -> str:
        """The name of the scenario validated."""
        return self.scenario.name

    @property
    def replicates(self) -> int:
        """How many runs the report holds (one row of `runs` each)."""
        return len(self.runs)

    def applicable(self, name: str) -> bool:
        """Whether the pattern `name` applies to this scenario.

        Raises:
            KeyError: no pattern of that name in the report.
        """
        return pattern_by_name(name, self.patterns).is_applicable(self.scenario)

    def share(self, name: str) -> float | None:
        """Share of runs that show the pattern, or all of them for `JOINT` (None if it does not apply)."""
        if name == JOINT:
            if not joint_patterns(self.scenario, self.patterns) or self.runs.empty:
                return None
        elif not self.applicable(name) or self.runs.empty:
            return None
        return float(self.runs[name].fillna(False).astype(bool).mean())

    def interval(self, name: str) -> tuple[float, float] | None:
        """Wilson 95% interval of `share(name)` (`sim.intervals.wilson_interval`); None if it does not apply."""
        if self.share(name) is None:
            return None
        return wilson_interval(int(self.runs[name].fillna(False).astype(bool).sum()), self.replicates)

    @property
    def shares(self) -> dict[str, float | None]:
        """Pattern name -> share of runs (0-1) that show it, None where it does not apply."""
        return {p.name: self.share(p.name) for p in self.patterns}

    @property
    def joint_share(self) -> float | None:
        """Share of runs that show every applicable validation pattern at once (None if none applies)."""
        return self.share(JOINT)

    def threshold(self, name: str) -> float:
        """The share of runs a pattern (or `JOINT`) must reach."""
        return JOINT_THRESHOLD if name == JOINT else pattern_by_name(name, self.patterns).threshold

    def status(self, name: str) -> str:
        """'PASS' if enough runs show the pattern (share >= its threshold), else 'FAIL'; 'n/a' if it does not apply.

        `name` may be a pattern, `JOINT`, or an ensemble pattern (its status from `ensemble_summary`).
        """
        if name in {p.name for p in self.ensemble_patterns}:
            table = self.ensemble_summary().set_index("pattern")
            return str(table.loc[name, "status"])
        share = self.share(name)
        if share is None:
            return "n/a"
        return "PASS" if share >= self.threshold(name) - 1e-12 else "FAIL"

    @property
    def passed(self) -> bool:
        """True only if every applicable pattern, the joint share and every applicable ensemble pattern pass."""
        names = [p.name for p in self.patterns] + [JOINT] + [p.name for p in self.ensemble_patterns]
        return all(self.status(name) != "FAIL" for name in names)

    def ensemble_summary(self) -> pd.DataFrame:
        """The ensemble patterns' table (`evaluate_ensemble`): ensemble.csv, and its table in VALIDATION.md.

        The bootstraps draw from `sim.seeding.named_stream(root_seed, "validation-bootstrap")`,
        so the intervals are the same each time the report is made from the same runs.
        Computed once, on first use.
        """
        if self._ensemble is None:
            rng = named_stream(self.root_seed, "validation-bootstrap")
            self._ensemble = evaluate_ensemble(self.runs, self.scenario, rng, self.ensemble_patterns)
        return self._ensemble

    def summary(self) -> pd.DataFrame:
        """One row per per-run pattern, in report order, then the joint row: summary.csv, the table of VALIDATION.md.

        Columns: pattern, level ('validation', 'verification' for a pattern that restates an
        input, or 'joint' for `JOINT`), paragraphs (of the article), facts, threshold, share
        (of runs showing it; None if n/a), share_low and share_high (its Wilson 95%
        interval), runs_showing, runs, measure_median (median of the pattern's per-run
        measure, None if it has none or does not apply), status.
        """
        rows = []
        for p in self.patterns:
            share = self.share(p.name)
            measure = self.runs.get(f"measure.{p.name}")
            rows.append(
                self._row(
                    p.name,
                    "verification" if p.verification else "validation",
                    p.paragraphs,
                    p.facts,
                    None if measure is None or share is None or measure.dropna().empty else float(measure.median()),
                )
            )
        paragraphs = sorted({x.strip() for p in self.patterns for x in p.paragraphs.split(",")}, key=_paragraph_key)
        rows.append(self._row(JOINT, "joint", ", ".join(paragraphs), "", None))
        return pd.DataFrame(rows)

    def _row(self, name: str, level: str, paragraphs: str, facts: str, median: float | None) -> dict:
        share = self.share(name)
        low, high = self.interval(name) or (None, None)
        return {
            "pattern": name,
            "level": level,
            "paragraphs": paragraphs,
            "facts": facts,
            "threshold": self.threshold(name),
            "share": share,
            "share_low": low,
            "share_high": high,
            "runs_showing": None if share is None else int(self.runs[name].fillna(False).sum()),
            "runs": self.replicates,
            "measure_median": median,
            "status": self.status(name),
        }

    @property
    def command(self) -> str:
        """The command line that re-runs this validation."""
        where = display_path(self.scenario_file) if self.scenario_file else self.scenario.name
        parts = [
            "python",
            "run.py",
            "validate-patterns",
            where,
            "--replicates",
            str(self.replicates),
            "--seed",
            str(self.root_seed),
            "--workers",
            str(self.workers),
        ]
        if self.dask:
            parts += ["--dask", self.dask]
        if self.steps != self.scenario.steps:
            parts += ["--steps", str(self.steps)]
        for o in self.overrides:
            parts += ["--set", o]
        return " ".join(parts)

    @property
    def python_call(self) -> str:
        """The `sim.patterns.validate(...)` call that re-runs this validation from Python."""
        where = display_path(self.scenario_file) if self.scenario_file else self.scenario.name
        steps = f", steps={self.steps}" if self.steps != self.scenario.steps else ""
        overrides = f", overrides={self.overrides!r}" if self.overrides else ""
        dask = f", dask={self.dask!r}" if self.dask else ""
        return (
            f"sim.patterns.validate({where!r}, {self.replicates}, seed={self.root_seed}, "
            f"workers={self.workers}{steps}{overrides}{dask})"
        )


def report_from_runs(
    runs: Sequence,
    scenario: Scenario,
    *,
    root_seed: int,
    steps: int,
    workers: int = 1,
    scenario_file: str | None = None,
    overrides: Sequence[str] = (),
    started: datetime | None = None,
    patterns: Sequence[Pattern] = PATTERNS,
    dask: str | None = None,
    ensemble_patterns: Sequence[EnsemblePattern] = ENSEMBLE_PATTERNS,
) -> ValidationReport:
    """A report from runs already made (e.g. by `sim.api.simulate`)."""
    started = started or datetime.now(UTC)
    frame = evaluate_runs(runs, scenario, patterns)
    finished = datetime.now(UTC)
    report = ValidationReport(
        scenario=scenario,
        patterns=tuple(patterns),
        runs=frame,
        root_seed=int(root_seed),
        steps=int(steps),
        workers=int(workers),
        scenario_file=scenario_file,
        overrides=list(overrides),
        started=started,
        dask=dask,
        finished=finished,
        elapsed_s=(finished - started).total_seconds(),
        ensemble_patterns=tuple(ensemble_patterns),
    )
    report.ensemble_summary()  # the bootstraps, once
    return report


def validate(
    scenario: str | Path | Scenario,
    replicates: int,
    seed: int | None = None,
    workers: int | None = 1,
    steps: int | None = None,
    *,
    overrides: Sequence[str] = (),
    patterns: Sequence[Pattern] = PATTERNS,
    dask: str | None = None,
    backend=None,
) -> ValidationReport:
    """Run `replicates` runs of a scenario (`sim.api.simulate`) and test every pattern on each.

    `workers`, `dask` and `backend` choose where the runs execute, as in `sim.api.simulate`;
    the report is the same whichever it is.
    """
    from sim.api import simulate

    started = datetime.now(UTC)
    if backend is not None:
        dask = backend.address
    simulation = simulate(
        scenario,
        seed=seed,
        steps=steps,
        replicates=replicates,
        workers=workers,
        overrides=list(overrides),
        dask=dask,
        backend=backend,
    )
    return report_from_runs(
        simulation.results,
        simulation.scenario,
        root_seed=simulation.root_seed,
        steps=simulation.steps,
        workers=simulation.workers,
        scenario_file=simulation.scenario_file,
        overrides=simulation.overrides,
        started=started,
        patterns=patterns,
        dask=dask,
    )


# --------------------------------------------------------------------------- writing


def _fmt_share(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.2f}"


def _fmt_interval(interval: tuple[float, float] | None, digits: str = ".2f") -> str:
    if interval is None or any(x is None or (isinstance(x, float) and math.isnan(x)) for x in interval):
        return "n/a" if interval is None else "undefined"
    return f"[{interval[0]:{digits}}, {interval[1]:{digits}}]"


def _fmt_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3g}"


def format_table(report: ValidationReport) -> str:
    """The plain-text tables printed by `run.py validate-patterns`: per-run patterns, joint share, ensemble patterns."""
    names = [p.name for p in report.patterns] + [JOINT]
    width = max(len(n) for n in names)
    para = max(len(p.paragraphs) for p in report.patterns)
    lines = [f"{'pattern':<{width}}  {'paragraphs':<{para}}  threshold  share  95% interval  result"]
    for name in names:
        paragraphs = "" if name == JOINT else pattern_by_name(name, report.patterns).paragraphs
        flag = " (verification)" if name != JOINT and pattern_by_name(name, report.patterns).verification else ""
        lines.append(
            f"{name:<{width}}  {paragraphs:<{para}}  {report.threshold(name):>9.2f}  "
            f"{_fmt_share(report.share(name)):>5}  {_fmt_interval(report.interval(name)):>12}  "
            f"{report.status(name)}{flag}"
        )
    ensemble = report.ensemble_summary()
    if len(ensemble):
        lines.append("")
        e_width = max(len(n) for n in ensemble["pattern"])
        lines.append(f"{'ensemble pattern':<{e_width}}  value   95% interval      criterion  result")
        for row in ensemble.itertuples():
            lines.append(
                f"{row.pattern:<{e_width}}  {_fmt_value(row.value):>5}  "
                f"{_fmt_interval((row.ci_low, row.ci_high), '.3g'):>16}  {row.criterion}  {row.status}"
            )
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"{report.scenario_name}: {report.replicates} runs, root seed {report.root_seed}: {verdict}")
    return "\n".join(lines)


CALIBRATION_PLACEHOLDER = "See `run.py calibrate` (added separately)."
VARIANTS_PLACEHOLDER = (
    "See `run.py compare-variants` (`sim.variants.compare_variants`): pass its table to "
    "`sim.patterns.write_docs(report, variants=table)` to publish it here."
)


def render_markdown(
    report: ValidationReport,
    plots_href: str = "plots",
    data_href: str = "",
    calibration: str = CALIBRATION_PLACEHOLDER,
    variants: str | None = None,
    replications: Sequence[ValidationReport] = (),
) -> str:
    """The text of VALIDATION.md for a report.

    Args:
        report: the validation to describe.
        plots_href: the plots folder, relative to the Markdown file.
        data_href: the prefix of patterns.csv, summary.csv and ensemble.csv, relative to the Markdown file.
        calibration: the body of the "Calibration" section.
        variants: the body of a "Variants" section (`sim.variants.render_variant_table`), or
            None for no such section.
        replications: validations of the same scenario at other root seeds, shown side by
            side with `report` in a "Replication at other root seeds" section.
    """
    sc = report.scenario
    t = sc.targets
    vers = versions()
    lines = [
        f"# Pattern-oriented validation: `{sc.name}`",
        "",
        "Generated by `sim.patterns` from a real run (the command below). Do not edit by hand, except "
        "the Calibration section, which `sim.patterns.write_docs` keeps when it regenerates "
        "docs/VALIDATION.md (and the Variants section, kept until a new variant table is given).",
        "",
        f"- **Verdict: {'PASS' if report.passed else 'FAIL'}** — "
        + (
            "every applicable pattern shows in at least its threshold share of runs, the patterns show "
            "jointly in enough runs, and every ensemble pattern holds."
            if report.passed
            else "at least one applicable pattern, the joint share or an ensemble pattern falls short."
        ),
        f"- Joint share: {_fmt_share(report.joint_share)} of runs show every applicable validation pattern "
        f"at once (Wilson 95% interval {_fmt_interval(report.interval(JOINT))}; threshold {JOINT_THRESHOLD:.2f})",
        f"- Scenario: `{sc.name}` ({sc.description})"
        + (f", file `{display_path(report.scenario_file)}`" if report.scenario_file else ""),
        f"- Overrides: {', '.join(f'`{o}`' for o in report.overrides) if report.overrides else 'none'}",
        f"- Runs: {report.replicates} replicates of {report.steps} days; root seed {report.root_seed} "
        "(replicate seeds derived with `numpy.random.SeedSequence`, listed below and in `patterns.csv`)",
        f"- Command: `{report.command}` (in Python: `{report.python_call}`)",
        f"- Date: {report.finished.strftime('%Y-%m-%d %H:%M UTC')} (validation took {report.elapsed_s:.0f} s "
        f"on {report.workers} worker{'s' if report.workers != 1 else ''})",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in vers.items())}; git commit {git_commit() or 'unknown'}; "
        f"{platform.platform()}",
        f"- Article targets used (`targets`): window {t.window_days} days, killed > {t.killed_min:g}, "
        f"wounded ≈ {t.wounded:g}, killed share {t.killed_share}, Buqrus wounded {t.buqrus_wounded:g}",
        "",
        "Method (Grimm et al. 2005, pattern-oriented modelling): each pattern is one observation of the "
        "source article (paragraph §, fact ids in `seeds/provenance.yaml`), turned into a yes/no test of "
        "one run. The share is the fraction of runs that show it, with its Wilson 95% interval; a pattern "
        f"is reproduced when the share reaches its threshold, {DEFAULT_THRESHOLD:.2f} for every pattern "
        "(issue 9: each pattern 'in at least 90% of runs'). The joint share is the fraction of runs that "
        "show every applicable validation pattern at once; it must reach "
        f"{JOINT_THRESHOLD:.2f} ('all of them together in most runs'). A pattern that restates an input is "
        "verification, not validation: it is marked so and left out of the joint share. Ensemble patterns "
        "are statements about the set of runs (a correlation across runs, a pooled share), each with a "
        f"seeded bootstrap 95% interval (with fewer than {ENSEMBLE_MIN_RUNS} runs they are reported, not "
        "judged). The cut-offs inside each test are given and argued in its "
        "description below; where the article has no number they are assumptions.",
        "",
        "## Results",
        "",
        "| pattern | kind | paragraphs | facts | threshold | share | 95% interval | median measure | pass |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    summary = report.summary().set_index("pattern")
    for name in [p.name for p in report.patterns] + [JOINT]:
        row = summary.loc[name]
        med = row["measure_median"]
        med_text = "" if med is None or (isinstance(med, float) and math.isnan(med)) else f"{med:.3g}"
        label = f"**`{name}`**" if name == JOINT else f"`{name}`"
        lines.append(
            f"| {label} | {row['level']} | {row['paragraphs']} | {row['facts']} | {row['threshold']:.2f} "
            f"| {_fmt_share(report.share(name))} | {_fmt_interval(report.interval(name))} | {med_text} "
            f"| {report.status(name)} |"
        )
    ensemble = report.ensemble_summary()
    lines += [
        "",
        "### Ensemble patterns",
        "",
        "| pattern | paragraphs | facts | statistic | value | 95% interval | criterion | pass |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    for row in ensemble.itertuples():
        lines.append(
            f"| `{row.pattern}` | {row.paragraphs} | {row.facts} | {row.statistic} | {_fmt_value(row.value)} "
            f"| {_fmt_interval((row.ci_low, row.ci_high), '.3g')} | {row.criterion} | {row.status} |"
        )
    lines += [
        "",
        f"![Share of runs showing each pattern]({plots_href}/pattern_shares.png)",
        "",
        f"![Per-run measures]({plots_href}/pattern_measures.png)",
        "",
    ]
    if replications:
        lines += [render_replication_table([report, *replications]), ""]
    if variants is not None:
        lines += ["## Variants", "", variants.strip(), ""]
    lines += ["## Patterns", ""]
    for i, p in enumerate(report.patterns, 1):
        applies = "" if p.is_applicable(sc) else " *(not applicable to this scenario)*"
        kind = "verification; " if p.verification else ""
        lines += [
            f"{i}. **`{p.name}`** ({kind}{p.paragraphs}; {p.facts}; threshold {p.threshold:.2f}){applies}. "
            + p.description,
            "",
        ]
    for i, p in enumerate(report.ensemble_patterns, len(report.patterns) + 1):
        applies = "" if p.is_applicable(sc) else " *(not applicable to this scenario)*"
        lines += [
            f"{i}. **`{p.name}`** (ensemble; {p.paragraphs}; {p.facts}; {p.criterion}){applies}. " + p.description,
            "",
        ]
    lines += [
        "## Calibration",
        "",
        calibration.strip(),
        "",
        "## Files",
        "",
        f"- [`patterns.csv`]({data_href}{TABLE}): one row per run: replicate, seed, one column per pattern "
        f"(True/False, empty if n/a), `{JOINT}` (every applicable validation pattern at once), "
        "`measure.<pattern>` and the extra figures " + ", ".join(f"`{e[0]}`" for e in EXTRAS) + ".",
        f"- [`summary.csv`]({data_href}{SUMMARY}): the results table above, with the Wilson interval bounds.",
        f"- [`ensemble.csv`]({data_href}{ENSEMBLE}): the ensemble patterns' table.",
    ]
    if variants is not None:
        lines.append(
            f"- [`variants.csv`]({data_href}{VARIANTS}): the variant comparison, one row per variant and outcome."
        )
    lines += [
        f"- `{plots_href}/`: the two figures above.",
        "",
        "## Seeds",
        "",
        "<details><summary>replicate seeds</summary>",
        "",
        ", ".join(
            f"{int(r)}: {int(s)}"
            for r, s in zip(report.runs["replicate"], report.runs["seed"])
            if pd.notna(r) and pd.notna(s)
        ),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def _footnote(report: ValidationReport) -> str:
    seeds = f"{report.replicates} replicates, root seed {report.root_seed}"
    return footer(report.scenario_name, f"{report.steps} days", seeds, "data: patterns.csv", overrides=report.overrides)


PASS_COLOUR, FAIL_COLOUR, NA_COLOUR = GREEN, VERMILLION, "#BBBBBB"


def plot_shares(report: ValidationReport, path: Path) -> Path:
    """Horizontal bars: share of runs showing each pattern and all of them jointly, Wilson 95% intervals, thresholds."""
    names = ([p.name for p in report.patterns] + [JOINT])[::-1]
    n = len(names)
    height = 1.3 + 0.5 * n
    fig = new_figure(10, height, footer=_footnote(report), pad=0.04)
    ax = fig.add_subplot()
    labels = []
    for y, name in enumerate(names):
        share, status, threshold = report.share(name), report.status(name), report.threshold(name)
        colour = {"PASS": PASS_COLOUR, "FAIL": FAIL_COLOUR}.get(status, NA_COLOUR)
        ax.barh(y, share or 0.0, color=colour, height=0.6, hatch="//" if name == JOINT else None)
        interval = report.interval(name)
        if interval is not None:
            ax.plot(interval, [y, y], color="#333333", lw=1.0)
        ax.plot([threshold, threshold], [y - 0.38, y + 0.38], color="black", lw=1.6)
        text = "n/a" if share is None else f"{share:.0%} {status}"
        ax.text(min(max(share or 0.0, interval[1] if interval else 0.0) + 0.01, 1.01), y, text, va="center", fontsize=9)
        if name == JOINT:
            labels.append("all patterns jointly")
        else:
            p = pattern_by_name(name, report.patterns)
            labels.append(f"{name} ({p.paragraphs}){' [verification]' if p.verification else ''}")
    ax.set_yticks(range(n), labels, fontsize=9)
    ax.set_xlim(0, 1.12)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of runs showing the pattern (line: Wilson 95% interval; black tick: threshold)")
    ax.grid(True, axis="x", color="#DDDDDD", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_title(
        f"Patterns of the article in '{report.scenario_name}': share of {report.replicates} runs "
        f"({'PASS' if report.passed else 'FAIL'})",
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    return save_png(fig, path)


def _histograms(report: ValidationReport) -> list[tuple[str, str, tuple | None, tuple | None]]:
    """(column, label, reference, accept range) for each measure that applies."""
    sc = report.scenario
    items = []
    for p in report.patterns:
        if p.measure is None or not p.is_applicable(sc):
            continue
        items.append(
            (
                f"measure.{p.name}",
                f"{p.name}\n{p.measure_label}",
                p.reference(sc) if p.reference else None,
                p.accept(sc) if p.accept else None,
            )
        )
        if p.name == "casualties_of_the_articles_order":
            items.append(
                (
                    "window_wounded",
                    "casualties_of_the_articles_order\nwounded in the busiest window (people)",
                    _ref_wounded(sc),
                    _acc_wounded(sc),
                )
            )
        if p.name == "buqrus_is_a_flashpoint":
            items.append(
                (
                    "buqrus_wounded_per_clash",
                    "(reference, not a pattern)\nmedian wounded per clash at Buqrus",
                    _ref_buqrus_wounded(sc),
                    None,
                )
            )
    return items


def plot_measures(report: ValidationReport, path: Path) -> Path:
    """Histograms of the per-run measures, the passing range shaded and the article's figure marked."""
    items = _histograms(report)
    cols = 3
    rows = max(1, math.ceil(len(items) / cols))
    height = 1.0 + 2.9 * rows
    fig = new_figure(13, height, footer=_footnote(report), pad=0.04)
    fig.suptitle(
        f"Per-run measures of the patterns, '{report.scenario_name}' ({report.replicates} runs); "
        "green: range that shows the pattern; dashed: the article's figure or the cut-off",
        fontsize=11,
        fontweight="bold",
    )
    for k, (column, label, ref, accept) in enumerate(items):
        ax = fig.add_subplot(rows, cols, k + 1)
        values = pd.to_numeric(report.runs.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        values = values[np.isfinite(values)]
        if values.empty:
            ax.text(0.5, 0.5, "no value in any run", ha="center", va="center", transform=ax.transAxes, color="#666666")
        else:
            ax.hist(values, bins=min(30, max(5, int(np.sqrt(len(values))) * 2)), color="#0072B2", alpha=0.85)
        lo_data = float(values.min()) if len(values) else 0.0
        hi_data = float(values.max()) if len(values) else 1.0
        if ref is not None:
            lo_data, hi_data = min(lo_data, ref[0]), max(hi_data, ref[0])
        pad = 0.05 * (hi_data - lo_data or 1.0)
        ax.set_xlim(lo_data - pad, hi_data + pad)
        if accept is not None:
            lo = accept[0] if accept[0] is not None else lo_data - pad
            hi = accept[1] if accept[1] is not None else hi_data + pad
            ax.axvspan(lo, hi, color=PASS_COLOUR, alpha=0.12, lw=0)
        if ref is not None:
            ax.axvline(ref[0], color="black", ls="--", lw=1.2, label=ref[1])
            ax.legend(fontsize=7, loc="best")
        nan_runs = report.replicates - len(values)
        ax.set_title(label + (f"  [{nan_runs} runs undefined]" if nan_runs else ""), fontsize=8.5, loc="left")
        ax.set_ylabel("runs", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#EEEEEE", lw=0.5)
        ax.set_axisbelow(True)
    return save_png(fig, path)


def _write_tables(report: ValidationReport, folder: Path) -> None:
    atomic_write_text(folder / TABLE, report.runs.to_csv(index=False))
    atomic_write_text(folder / SUMMARY, report.summary().to_csv(index=False))
    atomic_write_text(folder / ENSEMBLE, report.ensemble_summary().to_csv(index=False))


def write_report(
    report: ValidationReport, directory: str | Path, plots_href: str = "plots", variants: pd.DataFrame | None = None
) -> Path:
    """Write patterns.csv, summary.csv, ensemble.csv, VALIDATION.md and plots/ into `directory` (each file atomically).

    With `variants` (a table of `sim.variants.compare_variants`), also variants.csv and a
    Variants section in VALIDATION.md.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_tables(report, directory)
    plot_shares(report, directory / "plots" / PLOTS[0])
    plot_measures(report, directory / "plots" / PLOTS[1])
    section = None
    if variants is not None:
        from sim.variants import render_variant_table

        atomic_write_text(directory / VARIANTS, variants.to_csv(index=False))
        section = render_variant_table(variants)
    atomic_write_text(directory / MARKDOWN, render_markdown(report, plots_href, variants=section))
    return directory


def _section(text: str, title: str) -> str | None:
    """The body of a `## title` section of a Markdown text, or None."""
    lines = text.splitlines()
    try:
        start = lines.index(f"## {title}") + 1
    except ValueError:
        return None
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip() or None


def render_replication_table(reports: Sequence[ValidationReport]) -> str:
    """A Markdown section: each pattern's share [Wilson 95% interval] and status, one column per root seed.

    Also the joint share and the ensemble patterns' values [bootstrap 95% interval]. The
    reports must validate the same patterns (the same scenario, usually).
    """
    head = "| pattern | " + " | ".join(f"root seed {r.root_seed} ({r.replicates} runs)" for r in reports) + " |"
    lines = [
        "## Replication at other root seeds",
        "",
        "The same validation at independent root seeds (no run in common): a pattern that holds only at "
        "one root seed would be a property of those random streams, not of the model. Share of runs "
        "[Wilson 95% interval] and result.",
        "",
        head,
        "|---|" + "---:|" * len(reports),
    ]
    first = reports[0]
    for name in [p.name for p in first.patterns] + [JOINT]:
        cells = []
        for r in reports:
            share = r.share(name)
            cells.append(
                "n/a" if share is None else f"{_fmt_share(share)} {_fmt_interval(r.interval(name))} {r.status(name)}"
            )
        label = f"**`{name}`**" if name == JOINT else f"`{name}`"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for p in first.ensemble_patterns:
        cells = []
        for r in reports:
            row = r.ensemble_summary().set_index("pattern").loc[p.name]
            cells.append(
                f"{_fmt_value(row['value'])} {_fmt_interval((row['ci_low'], row['ci_high']), '.3g')} {row['status']}"
            )
        lines.append(f"| `{p.name}` (ensemble) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_docs(
    report: ValidationReport,
    docs_dir: str | Path | None = None,
    variants: pd.DataFrame | None = None,
    replications: Sequence[ValidationReport] = (),
) -> Path:
    """Publish a report as docs/VALIDATION.md with its plots and tables in docs/validation/.

    The body of an existing "Calibration" section of docs/VALIDATION.md is kept. With
    `variants` (the table of `sim.variants.compare_variants`), the "Variants" section shows
    it and docs/validation/variants.csv holds it; without, an existing "Variants" section is
    kept as it is. `replications` (the same validation at other root seeds) add a side-by-side
    table; their per-run tables are written as docs/validation/patterns_seed<root>.csv.
    """
    docs = Path(docs_dir) if docs_dir is not None else PROJECT_DIR / "docs"
    target = docs / MARKDOWN
    calibration, section = CALIBRATION_PLACEHOLDER, None
    if target.is_file():
        text = target.read_text(encoding="utf-8")
        calibration = _section(text, "Calibration") or calibration
        section = _section(text, "Variants")
    folder = docs / "validation"
    _write_tables(report, folder)
    if variants is not None:
        from sim.variants import render_variant_table

        atomic_write_text(folder / VARIANTS, variants.to_csv(index=False))
        section = render_variant_table(variants)
    plot_shares(report, folder / PLOTS[0])
    plot_measures(report, folder / PLOTS[1])
    for other in replications:
        atomic_write_text(folder / f"patterns_seed{other.root_seed}.csv", other.runs.to_csv(index=False))
    atomic_write_text(
        target, render_markdown(report, "validation", "validation/", calibration, section, replications)
    )
    return target


# --------------------------------------------------------------------------- command line


def default_validation_dir(scenario_name: str, now: datetime | None = None) -> Path:
    """A new `results/<scenario>/validation-<UTC timestamp>[-N]` path (`sim.results.default_output_dir`)."""
    return default_output_dir(scenario_name, now, kind="validation")


def cli_validate_patterns(args) -> int:
    """`run.py validate-patterns`: run the replicates, print the table, write the report directory.

    Usage: `run.py validate-patterns SCENARIO [--replicates N] [--seed N] [--workers N]
    [--dask ADDR] [--steps N] [--set K=V ...] [--out DIR]`. Returns 0 if every applicable
    pattern passes, 1 otherwise.

    Bad input raises `ScenarioError` (or `OutputError` for --out, `ExecutorError` for an
    unreachable scheduler), which the caller maps to exit 2.
    """
    overrides = list(getattr(args, "overrides", None) or [])
    out = getattr(args, "out", None)
    replicates = getattr(args, "replicates", None) or 100
    path = resolve_scenario_path(args.scenario)
    config = load_scenario(path, overrides)  # raises ScenarioError on bad input, before any run
    if out is not None:
        check_output_dir(Path(out))
    report = validate(
        path,
        replicates,
        seed=getattr(args, "seed", None),
        workers=getattr(args, "workers", None) or 1,
        steps=getattr(args, "steps", None),
        overrides=overrides,
        dask=getattr(args, "dask", None),  # reached (or refused) before any run
    )
    print(format_table(report))
    final = Path(out) if out is not None else default_validation_dir(config.name)
    directory = write_staged(final, lambda path: write_report(report, path))
    print(directory)
    sys.stdout.flush()
    return 0 if report.passed else 1
