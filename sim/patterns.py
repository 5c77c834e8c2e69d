"""Pattern-oriented validation (Grimm et al. 2005): does the model show what the article reports?

Each `Pattern` is one qualitative or order-of-magnitude observation from the source article
(paragraph and fact ids in `seeds/provenance.yaml`), turned into a yes/no test of one run.
A scenario reproduces a pattern when at least `threshold` of its replicate runs show it,
and it passes validation when it reproduces every pattern that applies to it:

    from sim.patterns import validate, write_report
    report = validate("baseline", replicates=100, workers=2)
    report.summary()            # pattern, paragraphs, threshold, share, status
    report.runs                 # one row per run: replicate, seed, one bool per pattern, measures
    write_report(report, "results/baseline/validation")   # patterns.csv, VALIDATION.md, plots/

`run.py validate-patterns SCENARIO` (`cli_validate_patterns`) does the same from the command
line. Checks and measures are module-level functions of a run (anything with `.timeseries`
and `.events` like `sim.runner.RunResult`) and the scenario, so they pickle and can be
evaluated where a run happened. A pattern whose sites or factions a scenario lacks (e.g.
Al-Bukamal in `toy_two_towns`) is not applicable there: reported as n/a, never as failed.

The thresholds (share of runs) were fixed before the baseline was run: 0.8, "most runs"
(docs/ODD.md §1), for every pattern. The operationalisations (window lengths, bounds) are
stated in each pattern's description; where the article gives no number they are
assumptions, and are marked as such.
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
from sim.results import (
    PROJECT_DIR,
    StagedDirectory,
    atomic_write_text,
    check_output_dir,
    default_output_dir,
    display_path,
    git_commit,
    versions,
)
from sim.scenario import load_scenario, resolve_scenario_path
from sim.schema import Scenario

__all__ = [
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

DEFAULT_THRESHOLD = 0.8  # "most baseline runs should show" (docs/ODD.md §1): four runs in five
EDGE_SHARE_MIN = 0.70  # share of a run's clashes at crossings or contested edges
KILLED_SHARE_TOLERANCE = 0.08  # ± around targets.killed_share
WINDOW_LOW, WINDOW_HIGH = 0.5, 4.0  # casualties in the busiest window: within [x/2, 4x] of the article's
FAILED_SHARE_MIN = 0.75  # share of meetings that failed or escalated
CALM_DAYS = 90  # an agreement is followed by a clash of the same pair within this many days
HOLD_SHARE_MIN = 0.90  # share of days Al-Bukamal is held by the IRGC
RHO_MIN = 0.5  # Spearman: cumulative clashes vs insurgent cells
SITE_RADIUS = 2.0  # cells: a clash "at" a site (as the clash event's `site` field)
SITE_KINDS = ("town", "crossing", "oil_field")  # named non-headquarters sites for the flashpoint ranking

PLOTS = ("pattern_shares.png", "pattern_measures.png")
TABLE = "patterns.csv"
SUMMARY = "summary.csv"
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


def check_net_defection(run, scenario) -> bool:
    """Whether more fighters defected NDF>IRGC than IRGC>NDF over the run (`net_defection` > 0)."""
    return net_defection(run, scenario) > 0


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


def _ref_buqrus_wounded(scenario):
    return scenario.targets.buqrus_wounded, f"article §13: {scenario.targets.buqrus_wounded:g} wounded"


# --------------------------------------------------------------------------- the patterns


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        name="net_defection_ndf_to_irgc",
        paragraphs="§9",
        facts="F19",
        description=(
            "Many NDF members defected to the IRGC (higher salaries, greater privileges, escape from "
            "compulsory service), not the reverse. Shown by a run when its total NDF→IRGC defections "
            "(sum of `defections.NDF>IRGC` over all days) exceed its total IRGC→NDF defections. "
            "Measure: the net flow NDF→IRGC (people)."
        ),
        check=check_net_defection,
        measure=net_defection,
        measure_label="net defections NDF→IRGC over the run (people)",
        applicable=applicable_irgc_ndf,
        reference=_ref_zero,
        accept=_acc_positive,
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
        name="killed_share_near_article",
        paragraphs="§4",
        facts="F07",
        description=(
            "More than 25 killed and about 40 wounded: a killed share of casualties of 25/65 ≈ 0.385 "
            "(`targets.killed_share`). Shown when the run's whole-run killed / (killed + wounded), all "
            f"militias, lies within ±{KILLED_SHARE_TOLERANCE} of it (the tolerance is an assumption). "
            "Measure: that share."
        ),
        check=check_killed_share,
        measure=killed_share,
        measure_label="killed / (killed + wounded), whole run",
        applicable=applicable_hostile_militias,
        reference=_ref_share,
        accept=_acc_share,
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
        name="irgc_keeps_albukamal",
        paragraphs="§11",
        facts="F26",
        description=(
            "The IRGC has held Al-Bukamal city since the end of 2017. Shown when `control.albukamal` is "
            f"IRGC on the last day and on at least {HOLD_SHARE_MIN:.0%} of days 1..T (day 0, the initial "
            "state, is not counted). Not applicable to a scenario without a site `albukamal` or a militia "
            "`IRGC`. Measure: the share of days held."
        ),
        check=check_albukamal,
        measure=albukamal_irgc_share,
        measure_label="share of days Al-Bukamal is IRGC-controlled",
        applicable=applicable_albukamal,
        reference=_ref_hold,
        accept=_acc_hold,
    ),
    Pattern(
        name="insurgency_rises_with_rivalry",
        paragraphs="§8, §13",
        facts="F16, F34",
        description=(
            "ISIS cells are likely to grow and exploit the rivals' disputes. Shown when the insurgent cells "
            "on the last day exceed those on day 0, and the Spearman rank correlation over the run's days "
            f"between cumulative clashes and insurgent cells is at least {RHO_MIN} (undefined, so not shown, "
            "if either is constant). Not applicable without an insurgent faction. Measure: the correlation."
        ),
        check=check_insurgency,
        measure=insurgency_rho,
        measure_label="Spearman rho: cumulative clashes vs insurgent cells",
        applicable=applicable_insurgency,
        reference=_ref_rho,
        accept=_acc_rho,
    ),
)

# Extra per-run figures in patterns.csv: (column, function, applies when, histogram reference).
EXTRAS: tuple[tuple[str, Callable, Callable, Callable | None, Callable | None, str], ...] = (
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


def evaluate_run(run, scenario, patterns: Sequence[Pattern] = PATTERNS) -> dict:
    """One row: replicate, seed, one bool (or None if n/a) per pattern, then the measures."""
    row: dict = {"replicate": getattr(run, "replicate", None), "seed": getattr(run, "seed", None)}
    applies = {p.name: p.is_applicable(scenario) for p in patterns}
    for p in patterns:
        row[p.name] = bool(p.check(run, scenario)) if applies[p.name] else None
    for p in patterns:
        if p.measure is not None:
            row[f"measure.{p.name}"] = float(p.measure(run, scenario)) if applies[p.name] else float("nan")
    for column, function, applicable, *_ in EXTRAS:
        row[column] = float(function(run, scenario)) if applicable(scenario) else float("nan")
    return row


def evaluate_runs(runs: Iterable, scenario, patterns: Sequence[Pattern] = PATTERNS) -> pd.DataFrame:
    """Per-run flags and measures of several runs (RunResult-like objects)."""
    rows = [evaluate_run(run, scenario, patterns) for run in runs]
    frame = pd.DataFrame(rows)
    for p in patterns:
        if p.name in frame.columns:
            frame[p.name] = frame[p.name].astype("boolean")
    return frame


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
        """Share of runs that show the pattern (None if it does not apply)."""
        if not self.applicable(name) or self.runs.empty:
            return None
        return float(self.runs[name].fillna(False).astype(bool).mean())

    @property
    def shares(self) -> dict[str, float | None]:
        """Pattern name -> share of runs (0-1) that show it, None where it does not apply."""
        return {p.name: self.share(p.name) for p in self.patterns}

    def status(self, name: str) -> str:
        """'PASS' if enough runs show the pattern (share >= its threshold), else 'FAIL'; 'n/a' if it does not apply."""
        share = self.share(name)
        if share is None:
            return "n/a"
        return "PASS" if share >= pattern_by_name(name, self.patterns).threshold - 1e-12 else "FAIL"

    @property
    def passed(self) -> bool:
        """True only if every applicable pattern shows in at least its threshold share of runs."""
        return all(self.status(p.name) != "FAIL" for p in self.patterns)

    def summary(self) -> pd.DataFrame:
        """One row per pattern, in report order: summary.csv, and the table of VALIDATION.md.

        Columns: pattern, paragraphs (of the article), facts, threshold, share (of runs
        showing it; None if n/a), runs_showing, runs, measure_median (median of the
        pattern's per-run measure, None if it has none or does not apply), status.
        """
        rows = []
        for p in self.patterns:
            share = self.share(p.name)
            measure = self.runs.get(f"measure.{p.name}")
            rows.append(
                {
                    "pattern": p.name,
                    "paragraphs": p.paragraphs,
                    "facts": p.facts,
                    "threshold": p.threshold,
                    "share": share,
                    "runs_showing": None if share is None else int(self.runs[p.name].fillna(False).sum()),
                    "runs": self.replicates,
                    "measure_median": (
                        None if measure is None or share is None or measure.dropna().empty else float(measure.median())
                    ),
                    "status": self.status(p.name),
                }
            )
        return pd.DataFrame(rows)

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
) -> ValidationReport:
    """A report from runs already made (e.g. by `sim.api.simulate`)."""
    started = started or datetime.now(UTC)
    frame = evaluate_runs(runs, scenario, patterns)
    finished = datetime.now(UTC)
    return ValidationReport(
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
    )


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


def format_table(report: ValidationReport) -> str:
    """The plain-text table printed by `run.py validate-patterns`."""
    width = max(len(p.name) for p in report.patterns)
    para = max(len(p.paragraphs) for p in report.patterns)
    lines = [f"{'pattern':<{width}}  {'paragraphs':<{para}}  threshold  share  result"]
    for p in report.patterns:
        lines.append(
            f"{p.name:<{width}}  {p.paragraphs:<{para}}  {p.threshold:>9.2f}  "
            f"{_fmt_share(report.share(p.name)):>5}  {report.status(p.name)}"
        )
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"{report.scenario_name}: {report.replicates} runs, root seed {report.root_seed}: {verdict}")
    return "\n".join(lines)


CALIBRATION_PLACEHOLDER = "See `run.py calibrate` (added separately)."


def render_markdown(
    report: ValidationReport,
    plots_href: str = "plots",
    data_href: str = "",
    calibration: str = CALIBRATION_PLACEHOLDER,
) -> str:
    """The text of VALIDATION.md for a report.

    Args:
        report: the validation to describe.
        plots_href: the plots folder, relative to the Markdown file.
        data_href: the prefix of patterns.csv and summary.csv, relative to the Markdown file.
        calibration: the body of the "Calibration" section.
    """
    sc = report.scenario
    t = sc.targets
    vers = versions()
    lines = [
        f"# Pattern-oriented validation: `{sc.name}`",
        "",
        "Generated by `sim.patterns` from a real run (the command below). Do not edit by hand, except "
        "the Calibration section, which `sim.patterns.write_docs` keeps when it regenerates "
        "docs/VALIDATION.md.",
        "",
        f"- **Verdict: {'PASS' if report.passed else 'FAIL'}** — "
        + (
            "every applicable pattern shows in at least its threshold share of runs."
            if report.passed
            else "at least one applicable pattern falls short of its threshold."
        ),
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
        "one run. The share is the fraction of runs that show it; a pattern is reproduced when the share "
        'reaches its threshold, fixed before any run at 0.8 ("most runs", docs/ODD.md §1). The cut-offs '
        "inside each test are given in its description below; where the article has no number they are "
        "assumptions.",
        "",
        "## Results",
        "",
        "| pattern | paragraphs | facts | threshold | share | median measure | pass |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    summary = report.summary().set_index("pattern")
    for p in report.patterns:
        row = summary.loc[p.name]
        med = row["measure_median"]
        med_text = "" if med is None or (isinstance(med, float) and math.isnan(med)) else f"{med:.3g}"
        lines.append(
            f"| `{p.name}` | {p.paragraphs} | {p.facts} | {p.threshold:.2f} | {_fmt_share(report.share(p.name))} "
            f"| {med_text} | {report.status(p.name)} |"
        )
    lines += [
        "",
        f"![Share of runs showing each pattern]({plots_href}/pattern_shares.png)",
        "",
        f"![Per-run measures]({plots_href}/pattern_measures.png)",
        "",
        "## Patterns",
        "",
    ]
    for i, p in enumerate(report.patterns, 1):
        applies = "" if p.is_applicable(sc) else " *(not applicable to this scenario)*"
        lines += [
            f"{i}. **`{p.name}`** ({p.paragraphs}; {p.facts}; threshold {p.threshold:.2f}){applies}. " + p.description,
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
        "(True/False, empty if n/a), `measure.<pattern>` and the extra figures "
        + ", ".join(f"`{e[0]}`" for e in EXTRAS)
        + ".",
        f"- [`summary.csv`]({data_href}{SUMMARY}): the table above.",
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
    """Horizontal bars: share of runs showing each pattern, with its threshold."""
    n = len(report.patterns)
    height = 1.3 + 0.5 * n
    fig = new_figure(10, height, footer=_footnote(report), pad=0.04)
    ax = fig.add_subplot()
    names = [p.name for p in report.patterns][::-1]
    for y, name in enumerate(names):
        p = pattern_by_name(name, report.patterns)
        share, status = report.share(name), report.status(name)
        colour = {"PASS": PASS_COLOUR, "FAIL": FAIL_COLOUR}.get(status, NA_COLOUR)
        ax.barh(y, share or 0.0, color=colour, height=0.6)
        ax.plot([p.threshold, p.threshold], [y - 0.38, y + 0.38], color="black", lw=1.6)
        text = "n/a" if share is None else f"{share:.0%} {status}"
        ax.text(min((share or 0.0) + 0.01, 1.01), y, text, va="center", fontsize=9)
    ax.set_yticks(range(n), [f"{n_} ({pattern_by_name(n_, report.patterns).paragraphs})" for n_ in names], fontsize=9)
    ax.set_xlim(0, 1.12)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of runs showing the pattern (black tick: threshold)")
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


def write_report(report: ValidationReport, directory: str | Path, plots_href: str = "plots") -> Path:
    """Write patterns.csv, summary.csv, VALIDATION.md and plots/ into `directory` (each file atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / TABLE, report.runs.to_csv(index=False))
    atomic_write_text(directory / SUMMARY, report.summary().to_csv(index=False))
    plot_shares(report, directory / "plots" / PLOTS[0])
    plot_measures(report, directory / "plots" / PLOTS[1])
    atomic_write_text(directory / MARKDOWN, render_markdown(report, plots_href))
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


def write_docs(report: ValidationReport, docs_dir: str | Path | None = None) -> Path:
    """Publish a report as docs/VALIDATION.md with its plots and tables in docs/validation/.

    The body of an existing "Calibration" section of docs/VALIDATION.md is kept.
    """
    docs = Path(docs_dir) if docs_dir is not None else PROJECT_DIR / "docs"
    target = docs / MARKDOWN
    calibration = CALIBRATION_PLACEHOLDER
    if target.is_file():
        calibration = _section(target.read_text(encoding="utf-8"), "Calibration") or calibration
    folder = docs / "validation"
    atomic_write_text(folder / TABLE, report.runs.to_csv(index=False))
    atomic_write_text(folder / SUMMARY, report.summary().to_csv(index=False))
    plot_shares(report, folder / PLOTS[0])
    plot_measures(report, folder / PLOTS[1])
    atomic_write_text(target, render_markdown(report, "validation", "validation/", calibration))
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
    staged = StagedDirectory(final)
    try:
        write_report(report, staged.path)
        directory = staged.commit()
    except BaseException:
        staged.discard()
        raise
    print(directory)
    sys.stdout.flush()
    return 0 if report.passed else 1
