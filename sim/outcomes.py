"""Scalar outcomes of one run, by name, for sweeps, validation and calibration.

An outcome name is `kind` or `kind.subject`, e.g. `killed_total`, `territory_final.IRGC`,
`defections.NDF>IRGC`, `control_change_step.buqrus`. Each kind is a module-level function
of a run's timeseries (and events/meta) returning one float, so sweeps can name outcomes in
YAML and workers can compute them where the run happened.

Every outcome function takes `(ts, events, meta, subject)`: `ts` the run's timeseries (one row
per step, step 0 the initial state, columns as in `sim.recording`), `events` its event log
(one row per event, or None), `meta` its metadata (`first_control_change`), and `subject` the
part of the name after the dot (None if there is none). Counts are summed over the whole run
(the timeseries holds each step's own counts). `meta["sites"]` (written by `sim.runner.run_model`)
gives each site's kind and grid cell for the outcomes about places.

Missing data, one rule for outcomes, sweeps and patterns: a count of nothing is 0 (no clash:
`clashes_total` 0); a share, ratio, median or correlation of nothing is NaN (no clash:
`clashes_at_edges_share` NaN), as is an outcome whose figure the run did not record. A
pattern whose measure is NaN in a run is not shown by that run (`sim.patterns`).
"""

from __future__ import annotations

import dis
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sim.suggest import unknown
from sim.tables import COUNT, FINITE, MAX_COUNT, NON_NEGATIVE, SHARE, Range

if TYPE_CHECKING:
    import pandas as pd  # imported where tables are read: the scenario layer reads outcome names only

DEFAULT_WINDOW_DAYS = 30  # default window of the *_window_peak outcomes (targets.window_days)
DEFAULT_QUIET_DAYS = 14  # default lull that separates two clash episodes (clash_episodes)
DEFAULT_CALM_DAYS = 90  # default horizon of agreements_unbroken


@dataclass(frozen=True)
class OutcomeKind:
    """One kind of outcome: its name, what subject it takes, a line of help, and its function.

    Attributes:
        name: the kind, the part of an outcome name before the dot (`territory_final`).
        subject: what follows the dot: None (nothing), "faction", "militia", "pair" (`A~B`),
            "flow" (`A>B`), "site", "holding" (`faction@site`) or "days" (an optional window length).
        help: one line of description (listed by `outcome_rows`, shown on sweep plots by `sim.analysis`).
        compute: the outcome function, `(ts, events, meta, subject) -> float`.
        label: what a figure calls it, in words, with the subject's placeholders: `{s}` the
            whole subject, `{a}` and `{b}` the two sides of a flow (`A>B`) or pair (`A~B`),
            `{who}` and `{site}` of a holding (`A|B@site`), `{n}` a window length in days
            (`outcome_label` fills them).
        unit: the value's unit in words ("fighters", "share of passable grid cells").
        values: what a value holds (`sim.tables.Range`): counts of people, events and days
            whole and >= 0 (`COUNT`), shares in [0, 1] (`SHARE`), means and rates >= 0, a
            difference any finite number. Readers of sweeps and robustness jobs refuse an
            outcome outside it (`sim.sweep.outcome_problem`), whatever the checksums.
        nan: whether a run that finished may give NaN (the missing-data rule: a share, ratio
            or median of nothing, or a figure not recorded); False for the whole-run counts,
            which are 0 for nothing. A failed run's outcomes are empty whatever the kind.
    """

    name: str
    subject: str | None  # None: no subject; "faction", "militia", "pair", "flow", "site", "holding"
    help: str
    compute: Callable
    label: str = field(kw_only=True)
    unit: str = field(kw_only=True)
    values: Range = field(default=FINITE, kw_only=True)
    nan: bool = field(default=True, kw_only=True)


# Tension (docs/ODD.md §7.7): a unitless index >= 0 per hostile pair; 0 is no tension; it has no
# upper bound. What a value means is set by the scenario's rules: the daily clash chance on
# a front grid cell is p_max * (1 - exp(-T / tension_scale)), so T = tension_scale gives 63 % of
# the ceiling, and a meeting is called when T reaches rules.mediation.tension_threshold.
# The unit of a faction's fighters: people for a militia, insurgent cells for an insurgent faction
# (`outcome_words` says which when it is told the faction's kind).
FIGHTERS_OR_CELLS = "fighters, or insurgent cells"
TENSION_UNIT = "index ≥ 0, no unit; 0 = no tension"


# A table, for the outcomes of `COLUMNS_READ`, is a pandas DataFrame or a mapping of column name
# -> 1-D array with a `step` column (`sim.recording.Recorder.arrays`): these helpers read both,
# with pandas' own methods on a DataFrame (so results on a table read from CSV do not change).


def _col_sum(ts, column: str) -> float:
    return float(ts[column].sum()) if column in ts else float("nan")


def _prefix_sum(ts, prefix: str) -> float:
    # The columns `ts.filter(regex="^prefix")` would keep, summed as numpy arrays: selecting them
    # as a DataFrame cost a millisecond per call, most of a sweep run's outcomes. The columns
    # are counts (whole numbers), so the order of the additions cannot change the sum.
    columns = [np.asarray(ts[column]) for column in list(ts.keys()) if str(column).startswith(prefix)]
    return float(np.column_stack(columns).sum()) if columns else 0.0


def _n_rows(ts) -> int:
    import pandas as pd

    return len(ts) if isinstance(ts, pd.DataFrame) else len(ts["step"])


def _last(values) -> float:
    import pandas as pd

    return float(values.iloc[-1] if isinstance(values, pd.Series) else values[-1])


def _first(values) -> float:
    import pandas as pd

    return float(values.iloc[0] if isinstance(values, pd.Series) else values[0])


def _mean_after_day0(values) -> float:
    import pandas as pd

    # pandas' mean skips NaN; a recorded column has none, where numpy's mean is the same sum / count
    return float(values.iloc[1:].mean() if isinstance(values, pd.Series) else np.mean(values[1:]))


def _last_step(ts) -> int:
    """The last step of a table (0 without one, or without rows)."""
    return int(ts["step"].max()) if ts is not None and "step" in ts and _n_rows(ts) else 0


def territory_final(ts, events, meta, subject):
    """Share of passable grid cells (0-1) the militia `subject` controls on the last step."""
    return _last(ts[f"territory.{subject}"])


def territory_mean(ts, events, meta, subject):
    """Mean over steps 1..last of the share of passable grid cells (0-1) the militia `subject` controls."""
    return _mean_after_day0(ts[f"territory.{subject}"])


def fighters_final(ts, events, meta, subject):
    """Fit fighters of the faction `subject` on the last step (insurgents: insurgent cells, rounded)."""
    return _last(ts[f"fighters.{subject}"])


def killed_total(ts, events, meta, subject=None):
    """Fighters killed, all militias, whole run (persons; 0 if nobody was)."""
    return _prefix_sum(ts, "killed.")


def wounded_total(ts, events, meta, subject=None):
    """Fighters wounded, all militias, whole run (persons; 0 if nobody was)."""
    return _prefix_sum(ts, "wounded.")


def killed_share(ts, events, meta, subject=None):
    """Share of casualties who were killed, killed / (killed + wounded), all militias, whole run.

    A fraction in 0-1; NaN if the run had no casualties.
    """
    killed, wounded = killed_total(ts, events, meta), wounded_total(ts, events, meta)
    return killed / (killed + wounded) if killed + wounded > 0 else float("nan")


def killed(ts, events, meta, subject):
    """Fighters of the militia `subject` killed over the whole run (persons; NaN if no such column)."""
    return _col_sum(ts, f"killed.{subject}")


def defections(ts, events, meta, subject):
    """Fighters who moved from militia A to militia B (`subject` = `A>B`), whole run (NaN if no such column)."""
    return _col_sum(ts, f"defections.{subject}")


def defections_net(ts, events, meta, subject):
    """Defections A>B minus defections B>A (`subject` = `A>B`), whole run; negative if B gained.

    NaN if either direction has no column.
    """
    a, b = subject.split(">")
    return _col_sum(ts, f"defections.{a}>{b}") - _col_sum(ts, f"defections.{b}>{a}")


def desertions_total(ts, events, meta, subject=None):
    """Fighters of all militias who left for civilian life, whole run (persons)."""
    return _prefix_sum(ts, "desertions.")


def clashes_total(ts, events, meta, subject=None):
    """Clashes between rival militias, whole run (count; NaN if the timeseries has no `clashes` column)."""
    return _col_sum(ts, "clashes")


def clashes_at_sites_share(ts, events, meta, subject=None):
    """Share (0-1) of the run's clashes that happened in a named site's grid cell; NaN without clashes."""
    total = _col_sum(ts, "clashes")
    return _col_sum(ts, "clashes_at_sites") / total if total > 0 else float("nan")


def meetings_total(ts, events, meta, subject=None):
    """Mediation meetings held, whole run (count)."""
    return _col_sum(ts, "meetings")


def failed_meeting_share(ts, events, meta, subject=None):
    """Share (0-1) of mediation meetings that failed or escalated, whole run; NaN without meetings."""
    meetings = _col_sum(ts, "meetings")
    failed = _col_sum(ts, "failures") + _col_sum(ts, "escalations")
    return failed / meetings if meetings > 0 else float("nan")


def agreements_total(ts, events, meta, subject=None):
    """Mediation meetings that ended in an agreement, whole run (count)."""
    return _col_sum(ts, "agreements")


def insurgent_peak(ts, events, meta, subject=None):
    """Largest insurgent strength over the run, step 0 included (insurgent cells); 0 without insurgents."""
    return float(ts["insurgent_cells"].max()) if "insurgent_cells" in ts else 0.0


def insurgent_attacks_total(ts, events, meta, subject=None):
    """Insurgent attacks, whole run (count)."""
    return _col_sum(ts, "insurgent_attacks")


def insurgent_growth(ts, events, meta, subject=None):
    """Insurgent strength on the last step minus on step 0 (insurgent cells); 0 if the scenario has no insurgents."""
    if "insurgent_cells" not in ts or _n_rows(ts) == 0:
        return 0.0
    return float(_last(ts["insurgent_cells"]) - _first(ts["insurgent_cells"]))


def _holding(ts, subject) -> tuple[pd.Series, list[str]]:
    """`control.<site>` on steps 1..last (step 0 only in a run without later steps), and the holders named."""
    factions, _, site = subject.partition("@")
    control = ts[f"control.{site}"]
    days = control[ts["step"] >= 1] if "step" in ts else control
    if len(days) == 0:
        days = control
    return days.astype(str), factions.split("|")


def site_held_share(ts, events, meta, subject):
    """Share (0-1) of steps 1..last on which the site is held by the faction (`subject` = `faction@site`).

    `A|B@site` counts the days either A or B holds it. Read from `control.<site>` (a faction
    name, 'contested' or 'none'); step 0 counts only in a run without later steps.
    """
    days, holders = _holding(ts, subject)
    return float(days.isin(holders).mean())


def site_held_final(ts, events, meta, subject):
    """1 if the faction (`faction@site`; `A|B@site`: either) holds the site on the last step, else 0."""
    days, holders = _holding(ts, subject)
    return float(days.iloc[-1] in holders) if len(days) else float("nan")


NAMED_SITE_KINDS = ("town", "crossing", "oil_field")  # places fought over (not headquarters or venues)


def _named_sites(meta) -> dict[str, dict]:
    """The run's towns, crossings and oil fields (`NAMED_SITE_KINDS`): name -> {kind, row, col}."""
    sites = (meta or {}).get("sites") or {}
    return {name: site for name, site in sites.items() if site.get("kind") in NAMED_SITE_KINDS}


def sites_held_final(ts, events, meta, subject):
    """Named towns, crossings and oil fields the faction `subject` holds on the last step (count).

    NaN if the run did not record its sites (`meta["sites"]`).
    """
    sites = _named_sites(meta)
    if not (meta or {}).get("sites"):
        return float("nan")
    held = 0
    for name in sites:
        column = f"control.{name}"
        if column in ts and len(ts):
            held += str(ts[column].iloc[-1]) == subject
    return float(held)


def alignment_final(ts, events, meta, subject):
    """Mean over tribes of their leaders' alignment with the militia `subject` on the last step (0-1).

    Unweighted (each tribe counts once); NaN if the scenario has no tribes.
    """
    columns = [c for c in ts.columns if c.startswith("alignment.") and c.endswith(f".{subject}")]
    if not columns:
        return float("nan")
    return float(ts[columns].iloc[-1].mean())


def tension_mean(ts, events, meta, subject):
    """Mean over steps 1..last of the tension of the hostile pair `subject` (`A~B`; index, 0 = none)."""
    return _mean_after_day0(ts[f"tension.{subject}"])


def control_change_step(ts, events, meta, subject):
    """First step (day) at which the site `subject` changed hands; the last step + 1 if it never did."""
    first = (meta or {}).get("first_control_change", {}).get(subject)
    return float(first) if first is not None else _last(ts["step"]) + 1.0


# Outcomes for the article's figures (calibration targets): casualties of clashes between
# rival militias, from the run's `clash` events (insurgent attacks are not clashes).


def _window_days(subject, default: int = DEFAULT_WINDOW_DAYS) -> int:
    """A number of days from an outcome subject such as `30` (`default` if there is none)."""
    if subject is None or subject == "":
        return default
    text = str(subject)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"window length must be a whole number of days >= 1 (got '{subject}')")
    return int(text)


def _event_number(frame: pd.DataFrame, column: str) -> pd.Series:
    import pandas as pd

    if column not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").fillna(0).astype(float)


def _clashes(events) -> pd.DataFrame:
    """Clash events with their step, site, killed and wounded (both sides); in event order."""
    import pandas as pd

    if events is None or len(events) == 0 or "event" not in events:
        return pd.DataFrame({"step": [], "site": [], "killed": [], "wounded": []})
    clashes = events[events["event"] == "clash"]
    return pd.DataFrame(
        {
            "step": pd.to_numeric(clashes["step"], errors="coerce").fillna(0).astype(int),
            "site": clashes["site"] if "site" in clashes else pd.Series(None, index=clashes.index, dtype=object),
            "killed": _event_number(clashes, "killed_a") + _event_number(clashes, "killed_b"),
            "wounded": _event_number(clashes, "wounded_a") + _event_number(clashes, "wounded_b"),
        }
    )


def clash_window_peak(ts, events, subject=None) -> tuple[float, float]:
    """Killed and wounded in the clash window with the most casualties.

    The window is the `subject`-day run of consecutive days (default 30) within steps 1..last
    with the most casualties (killed + wounded, both sides) in clashes between rival militias;
    the earliest such window on ties. A run shorter than the window counts whole.

    Returns:
        (killed, wounded) in that window, in persons; (0, 0) without clashes.

    Raises:
        ValueError: `subject` is not a whole number of days >= 1.
    """
    days = _window_days(subject)
    clashes = _clashes(events)
    last = max(_last_step(ts), int(clashes["step"].max()) if len(clashes) else 0, 1)
    steps = clashes["step"].to_numpy(dtype=np.int64)
    killed_daily = np.bincount(steps, weights=clashes["killed"].to_numpy(dtype=float), minlength=last + 1)[: last + 1]
    wounded_daily = np.bincount(steps, weights=clashes["wounded"].to_numpy(dtype=float), minlength=last + 1)[: last + 1]
    killed_daily[0] = wounded_daily[0] = 0.0  # step 0 is the initial state, not a day of the run
    width = min(days, last)
    cum_k = np.concatenate([[0.0], np.cumsum(killed_daily[1:])])
    cum_w = np.concatenate([[0.0], np.cumsum(wounded_daily[1:])])
    k = cum_k[width:] - cum_k[:-width]  # window starting at day i + 1
    w = cum_w[width:] - cum_w[:-width]
    best = int(np.argmax(k + w))  # first maximum: the earliest window
    return float(k[best]), float(w[best])


def killed_window_peak(ts, events, meta, subject=None):
    """Killed in clashes in the `subject`-day window with the most clash casualties."""
    return clash_window_peak(ts, events, subject)[0]


def wounded_window_peak(ts, events, meta, subject=None):
    """Wounded in clashes in the `subject`-day window with the most clash casualties."""
    return clash_window_peak(ts, events, subject)[1]


def clash_casualties_mean(ts, events, meta, subject=None):
    """Mean casualties (killed + wounded, both sides) per clash between rival militias; NaN if none."""
    clashes = _clashes(events)
    if clashes.empty:
        return float("nan")
    return float((clashes["killed"] + clashes["wounded"]).mean())


def _day0(ts, column: str) -> float:
    import pandas as pd

    if column not in ts or len(ts) == 0:
        return float("nan")
    return float(pd.to_numeric(ts[column], errors="coerce").iloc[0])


def fighters_initial(ts, events, meta, subject):
    """Fit fighters of the faction `subject` on step 0, the initial state (persons; NaN if not recorded)."""
    return _day0(ts, f"fighters.{subject}")


def kept_share(ts, events, meta, subject):
    """Fighters of the faction `subject` on the last step over those on step 0; NaN if none on step 0."""
    import pandas as pd

    start = _day0(ts, f"fighters.{subject}")
    column = f"fighters.{subject}"
    if column not in ts or not start > 0:
        return float("nan")
    return float(pd.to_numeric(ts[column], errors="coerce").iloc[-1]) / start


def defection_share(ts, events, meta, subject):
    """Share (0-1) of the defections between A and B (`subject` = `A>B`) that went A>B; NaN if there were none."""
    a, b = subject.split(">")
    forward, backward = _col_sum(ts, f"defections.{a}>{b}"), _col_sum(ts, f"defections.{b}>{a}")
    total = forward + backward
    return forward / total if total > 0 else float("nan")


def _daily_intake(ts, militia: str) -> np.ndarray:
    """New members of `militia` on each of steps 1..last: civilians who joined plus defectors from any militia."""
    import pandas as pd

    days = ts[ts["step"] >= 1] if "step" in ts else ts
    defectors = [c for c in days.columns if c.startswith("defections.") and c.endswith(f">{militia}")]
    columns = [f"joined.{militia}", *defectors]
    intake = np.zeros(len(days))
    for column in columns:
        if column in days:
            intake += pd.to_numeric(days[column], errors="coerce").fillna(0).to_numpy(dtype=float)
    return intake


def intake(ts, events, meta, subject):
    """New members of the militia `subject` over steps 1..last: joined civilians plus defectors in (persons)."""
    return float(_daily_intake(ts, subject).sum())


def intake_min_half(ts, events, meta, subject):
    """The smaller of the militia's new members in the first and in the second half of steps 1..last (persons).

    A run of one day is judged on that day; 0 for a run without days.
    """
    daily = _daily_intake(ts, subject)
    if len(daily) == 0:
        return 0.0
    if len(daily) == 1:
        return float(daily[0])
    half = len(daily) // 2
    return float(min(daily[:half].sum(), daily[half:].sum()))


def _events_of(events, kind: str) -> pd.DataFrame:
    import pandas as pd

    if events is None or len(events) == 0 or "event" not in events:
        return pd.DataFrame(columns=["step", "event"])
    return events[events["event"] == kind]


def headquarters_opened(ts, events, meta, subject):
    """Headquarters the faction `subject` opened during the run (`new_headquarters` events; count)."""
    opened = _events_of(events, "new_headquarters")
    if opened.empty or "faction" not in opened:
        return 0.0
    return float((opened["faction"].astype("string") == subject).sum())


def escalations_total(ts, events, meta, subject=None):
    """Mediation meetings that ended in escalation, whole run (count)."""
    return _col_sum(ts, "escalations")


def clashes_at_edges_share(ts, events, meta, subject=None):
    """Share (0-1) of the run's rival-militia clashes on `crossing` or `edge` ground; NaN without clashes.

    The ground is classified when the clash happens (`sim.processes.conflict.ground_type`): a
    crossing within one grid cell, or a contested grid cell or one within two grid cells of ground held by
    someone else.
    """
    import pandas as pd

    clashes = _events_of(events, "clash")
    if clashes.empty:
        return float("nan")
    ground = clashes["ground"].astype("string") if "ground" in clashes else pd.Series("", index=clashes.index)
    return float(ground.isin(["crossing", "edge"]).mean())


NEAR_SITE_CELLS = 2.0  # a clash within this many grid cells (Euclidean) of a site's cell is "at" the site


def _clash_counts_near(events, meta) -> dict[str, int]:
    """Clashes at each named town, crossing and oil field (its `site` field, or within NEAR_SITE_CELLS grid cells)."""
    import pandas as pd

    sites = _named_sites(meta)
    clashes = _events_of(events, "clash")
    if clashes.empty:
        return {name: 0 for name in sites}
    rows = pd.to_numeric(clashes.get("row"), errors="coerce").to_numpy(dtype=float) if "row" in clashes else None
    cols = pd.to_numeric(clashes.get("col"), errors="coerce").to_numpy(dtype=float) if "col" in clashes else None
    named = clashes["site"].astype("string").fillna("").to_numpy() if "site" in clashes else np.full(len(clashes), "")
    counts = {}
    for name, site in sites.items():
        near = named == name
        if rows is not None and cols is not None:
            near = near | (np.hypot(rows - site["row"], cols - site["col"]) <= NEAR_SITE_CELLS)
        counts[name] = int(np.count_nonzero(near))
    return counts


def clashes_near(ts, events, meta, subject):
    """Rival-militia clashes at the site `subject` over the run (count; NaN if the run did not record its sites).

    A clash is at a site when its `site` field names it or its grid cell lies within
    NEAR_SITE_CELLS grid cells of the site's. Only towns, crossings and oil fields count.
    """
    if not (meta or {}).get("sites"):
        return float("nan")
    return float(_clash_counts_near(events, meta).get(subject, 0))


def clashes_near_median(ts, events, meta, subject=None):
    """Median of `clashes_near` over the named towns, crossings and oil fields (count); NaN if there are none."""
    counts = _clash_counts_near(events, meta)
    return float(np.median(list(counts.values()))) if counts else float("nan")


def _clash_days(events) -> np.ndarray:
    clashes = _clashes(events)
    days = np.unique(clashes["step"].to_numpy(dtype=np.int64))
    return days[days >= 1]


def clash_episodes(ts, events, meta, subject=None):
    """Clash episodes: runs of clash days separated by at least `subject` (default 14) days without a clash.

    0 without clashes.
    """
    quiet_days = _window_days(subject, default=DEFAULT_QUIET_DAYS)
    days = _clash_days(events)
    if len(days) == 0:
        return 0.0
    return float(1 + np.count_nonzero(np.diff(days) - 1 >= quiet_days))


def _pair_keys(frame: pd.DataFrame) -> np.ndarray:
    import pandas as pd

    a = frame["side_a"].astype("string").fillna("") if "side_a" in frame else pd.Series("", index=frame.index)
    b = frame["side_b"].astype("string").fillna("") if "side_b" in frame else pd.Series("", index=frame.index)
    return (a.where(a <= b, b) + "~" + b.where(a <= b, a)).to_numpy()


def agreements_unbroken(ts, events, meta, subject=None):
    """Agreements not followed by a clash of the same pair within `subject` (default 90) days (count).

    An agreement whose pair clashes again within the horizon is broken; one with no such clash
    counts only if at least the horizon of the run followed it (otherwise the run ended before
    the calm could be judged). 0 without agreements.
    """
    import pandas as pd

    horizon = _window_days(subject, default=DEFAULT_CALM_DAYS)
    meetings = _events_of(events, "meeting")
    if meetings.empty or "outcome" not in meetings:
        return 0.0
    agreements = meetings[meetings["outcome"] == "agreement"]
    if agreements.empty:
        return 0.0
    clashes = _events_of(events, "clash")
    clash_steps = pd.to_numeric(clashes["step"], errors="coerce").to_numpy(dtype=float) if len(clashes) else np.zeros(0)
    clash_pairs = _pair_keys(clashes) if len(clashes) else np.zeros(0, dtype=object)
    last = _last_step(ts)
    unbroken = 0
    steps = pd.to_numeric(agreements["step"], errors="coerce").to_numpy(dtype=float)
    for step, pair in zip(steps, _pair_keys(agreements)):
        later = clash_steps[(clash_pairs == pair) & (clash_steps > step)]
        if len(later) and later.min() - step <= horizon:
            continue
        if not len(later) and last - step < horizon:
            continue  # censored: the run ended before the calm could be judged
        unbroken += 1
    return float(unbroken)


def _last_day(ts, clashes) -> int:
    """The run's last step (at least 1), from the timeseries or, failing that, the clash events."""
    return max(_last_step(ts), int(clashes["step"].max()) if len(clashes) else 0, 1)


def annual_clash_toll(ts, events, meta, subject=None):
    """Killed (both sides) in rival-militia clashes per 365 days: whole-run clash killed x 365 / days run.

    Persons per year; 0 without clashes. Insurgent attacks are not clashes and are left out.
    """
    clashes = _clashes(events)
    return float(clashes["killed"].sum()) * 365.0 / _last_day(ts, clashes)


def clash_days_per_month(ts, events, meta, subject=None):
    """Distinct days (1..last) with at least one rival-militia clash, per 30 days of the run; 0 without clashes."""
    clashes = _clashes(events)
    days = np.unique(clashes["step"].to_numpy(dtype=np.int64))
    return float(np.count_nonzero(days >= 1)) * 30.0 / _last_day(ts, clashes)


def first_clash_wounded(ts, events, meta, subject):
    """Wounded (both sides) in the first clash recorded at the site `subject`; NaN if none was.

    A clash event's `site` is the nearest site within two grid cells of the clash.
    """
    clashes = _clashes(events)
    here = clashes[clashes["site"] == subject]
    if here.empty:
        return float("nan")
    return float(here.sort_values("step", kind="stable")["wounded"].iloc[0])


DIFFERENCE = Range(-MAX_COUNT, MAX_COUNT, True)  # a count minus another (defections_net)
YES_NO = Range(0, 1, True)  # 1 = yes, 0 = no
DAYS_PER_MONTH = Range(0, 30)  # days with a clash per 30 days of the run

KINDS: dict[str, OutcomeKind] = {
    k.name: k
    for k in [
        OutcomeKind(
            "territory_final",
            "militia",
            "share of passable grid cells controlled on the last day",
            territory_final,
            label="Territory held by {s} at the end",
            unit="share of passable grid cells",
            values=SHARE,
        ),
        OutcomeKind(
            "territory_mean",
            "militia",
            "mean share of passable grid cells controlled",
            territory_mean,
            label="Territory held by {s}, mean over the run",
            unit="share of passable grid cells",
            values=SHARE,
        ),
        OutcomeKind(
            "fighters_final",
            "faction",
            "fighters on the last day (insurgents: insurgent cells)",
            fighters_final,
            label="{s} fighters on the last day",
            unit=FIGHTERS_OR_CELLS,
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "killed_total",
            None,
            "killed, all militias, whole run",
            killed_total,
            label="Killed, all militias",
            unit="people",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "wounded_total",
            None,
            "wounded, all militias, whole run",
            wounded_total,
            label="Wounded, all militias",
            unit="people",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "killed_share",
            None,
            "killed / (killed + wounded)",
            killed_share,
            label="Killed share of militia casualties",
            unit="share of killed + wounded",
            values=SHARE,
        ),
        OutcomeKind(
            "killed",
            "militia",
            "killed of one militia, whole run",
            killed,
            label="Killed of {s}",
            unit="people",
            values=COUNT,
        ),
        OutcomeKind(
            "defections",
            "flow",
            "fighters who moved from A to B (`A>B`), whole run",
            defections,
            label="{a}→{b} defections",
            unit="fighters",
            values=COUNT,
        ),
        OutcomeKind(
            "defections_net",
            "flow",
            "A>B minus B>A defections",
            defections_net,
            label="Net {a}→{b} defections (minus {b}→{a})",
            unit="fighters",
            values=DIFFERENCE,
        ),
        OutcomeKind(
            "desertions_total",
            None,
            "fighters who left for civilian life",
            desertions_total,
            label="Desertions to civilian life, all militias",
            unit="fighters",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "clashes_total",
            None,
            "clashes between rival militias",
            clashes_total,
            label="Clashes between rival militias",
            unit="clashes",
            values=COUNT,
        ),
        OutcomeKind(
            "clashes_at_sites_share",
            None,
            "share of clashes in a named site's grid cell",
            clashes_at_sites_share,
            label="Share of clashes in a named site's grid cell",
            unit="share of clashes",
            values=SHARE,
        ),
        OutcomeKind(
            "meetings_total",
            None,
            "mediation meetings held",
            meetings_total,
            label="Mediation meetings held",
            unit="meetings",
            values=COUNT,
        ),
        OutcomeKind(
            "failed_meeting_share",
            None,
            "share of meetings that failed or escalated",
            failed_meeting_share,
            label="Share of meetings that failed or escalated",
            unit="share of meetings",
            values=SHARE,
        ),
        OutcomeKind(
            "agreements_total",
            None,
            "meetings that ended in agreement",
            agreements_total,
            label="Mediation meetings that agreed",
            unit="meetings",
            values=COUNT,
        ),
        OutcomeKind(
            "insurgent_peak",
            None,
            "largest number of insurgent cells",
            insurgent_peak,
            label="Peak insurgent strength",
            unit="insurgent cells",
            values=NON_NEGATIVE,
            nan=False,
        ),
        OutcomeKind(
            "insurgent_attacks_total",
            None,
            "insurgent attacks",
            insurgent_attacks_total,
            label="Insurgent attacks",
            unit="attacks",
            values=COUNT,
        ),
        OutcomeKind(
            "insurgent_growth",
            None,
            "insurgent cells on the last day minus day 0",
            insurgent_growth,
            label="Insurgent growth, last day minus day 0",
            unit="insurgent cells",
            values=FINITE,
            nan=False,
        ),
        OutcomeKind(
            "site_held_share",
            "holding",
            "share of days 1..T a faction holds a site (`site_held_share.IRGC@albukamal`)",
            site_held_share,
            label="Share of days {who} holds {site}",
            unit="share of days",
            values=SHARE,
        ),
        OutcomeKind(
            "alignment_final",
            "militia",
            "tribal leaders' mean alignment with a militia, last day",
            alignment_final,
            label="Tribal leaders' alignment with {s} at the end",
            unit="index 0-1",
            values=SHARE,
        ),
        OutcomeKind(
            "tension_mean",
            "pair",
            "mean tension of a hostile pair (`A~B`)",
            tension_mean,
            label="Mean tension {a}–{b}",
            unit=TENSION_UNIT,
            values=NON_NEGATIVE,
        ),
        OutcomeKind(
            "control_change_step",
            "site",
            "first day a site's control changed (steps+1 if never)",
            control_change_step,
            label="First day {s} changed hands, last day + 1 if never",  # a figure of 31s in a 30-day run says "never"
            unit="day",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "killed_window_peak",
            "days",
            "killed in rival-militia clashes in the N-day window (`killed_window_peak.30`) with the most clash "
            "casualties (article §4: 'more than 25' in the recent clashes)",
            killed_window_peak,
            label="Killed in clashes, busiest {n}-day window",
            unit="people",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "wounded_window_peak",
            "days",
            "wounded in rival-militia clashes in the same N-day window (`wounded_window_peak.30`) "
            "(article §4: 'about 40')",
            wounded_window_peak,
            label="Wounded in clashes, busiest {n}-day window",
            unit="people",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "clash_casualties_mean",
            None,
            "mean casualties (killed + wounded, both sides) per rival-militia clash, NaN if none",
            clash_casualties_mean,
            label="Casualties per clash, killed + wounded",
            unit="people per clash",
            values=NON_NEGATIVE,
        ),
        OutcomeKind(
            "fighters_initial",
            "faction",
            "fighters on day 0, the initial state",
            fighters_initial,
            label="{s} fighters on day 0",
            unit=FIGHTERS_OR_CELLS,
            values=COUNT,
        ),
        OutcomeKind(
            "kept_share",
            "faction",
            "fighters on the last day / on day 0",
            kept_share,
            label="Fighters of {s} kept, last day / day 0",
            unit="ratio",
            values=NON_NEGATIVE,
        ),
        OutcomeKind(
            "defection_share",
            "flow",
            "share of the defections between A and B that went A>B (`A>B`)",
            defection_share,
            label="Share of {a}–{b} defections that went {a}→{b}",
            unit="share of defections",
            values=SHARE,
        ),
        OutcomeKind(
            "intake",
            "militia",
            "new members (joined civilians + defectors in), whole run",
            intake,
            label="New members of {s}",
            unit="people",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "intake_min_half",
            "militia",
            "new members in the weaker half of the run (first or second)",
            intake_min_half,
            label="New members of {s}, weaker half of the run",
            unit="people",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "headquarters_opened",
            "faction",
            "headquarters opened during the run",
            headquarters_opened,
            label="Headquarters opened by {s}",
            unit="headquarters",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "escalations_total",
            None,
            "mediation meetings that ended in escalation",
            escalations_total,
            label="Mediation meetings that escalated",
            unit="meetings",
            values=COUNT,
        ),
        OutcomeKind(
            "site_held_final",
            "holding",
            "1 if a faction (`A|B`: either) holds a site on the last day, else 0 (`site_held_final.NDF@deir_ezzor`)",
            site_held_final,
            label="{who} holds {site} on the last day",
            unit="1 = yes, 0 = no",
            values=YES_NO,
        ),
        OutcomeKind(
            "sites_held_final",
            "faction",
            "named towns, crossings and oil fields held on the last day",
            sites_held_final,
            label="Towns, crossings and oil fields held by {s} at the end",
            unit="sites",
            values=COUNT,
        ),
        OutcomeKind(
            "clashes_at_edges_share",
            None,
            "share of clashes on crossing or contested-edge ground, NaN without clashes",
            clashes_at_edges_share,
            label="Share of clashes on crossing or contested-edge ground",
            unit="share of clashes",
            values=SHARE,
        ),
        OutcomeKind(
            "clashes_near",
            "site",
            "clashes within two grid cells of a named site",
            clashes_near,
            label="Clashes near {s}",
            unit="clashes",
            values=COUNT,
        ),
        OutcomeKind(
            "clashes_near_median",
            None,
            "median of clashes_near over named towns, crossings and oil fields",
            clashes_near_median,
            label="Clashes near a named site, median over the sites",
            unit="clashes",
            values=NON_NEGATIVE,
        ),
        OutcomeKind(
            "clash_episodes",
            "days",
            "clash episodes separated by N quiet days (`clash_episodes.14`, default 14)",
            clash_episodes,
            label="Clash episodes, {n} quiet days apart",
            unit="episodes",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "agreements_unbroken",
            "days",
            "agreements not followed by a clash of the same pair within N days (`agreements_unbroken.90`)",
            agreements_unbroken,
            label="Agreements unbroken for {n} days",
            unit="agreements",
            values=COUNT,
            nan=False,
        ),
        OutcomeKind(
            "annual_clash_toll",
            None,
            "killed (both sides) in rival-militia clashes per 365 days (people/year)",
            annual_clash_toll,
            label="Killed in rival-militia clashes per year",
            unit="people/year",
            values=NON_NEGATIVE,
            nan=False,
        ),
        OutcomeKind(
            "clash_days_per_month",
            None,
            "days with at least one rival-militia clash, per 30 days of the run",
            clash_days_per_month,
            label="Days with a rival-militia clash per 30 days",
            unit="days per 30 days",
            values=DAYS_PER_MONTH,
            nan=False,
        ),
        OutcomeKind(
            "first_clash_wounded",
            "site",
            "wounded (both sides) in the first clash at a site, NaN if none there "
            "(article §13: 4 at `first_clash_wounded.buqrus`)",
            first_clash_wounded,
            label="Wounded in the first clash at {s}",
            unit="people",
            values=COUNT,
        ),
    ]
}


DAYS_DEFAULTS = {"clash_episodes": DEFAULT_QUIET_DAYS, "agreements_unbroken": DEFAULT_CALM_DAYS}


def _both_ways(separator: str, head: str):
    """The columns of a flow or pair subject in both directions (`defections.A>B` and `defections.B>A`)."""

    def columns(subject):
        a, _, b = str(subject).partition(separator)
        return (f"{head}.{a}{separator}{b}", f"{head}.{b}{separator}{a}")

    return columns


def _one(head: str):
    return lambda subject: (f"{head}.{subject}",)


def _fixed(*columns: str):
    return lambda subject: columns


# The timeseries columns each kind reads, from its subject: names, or prefixes ending in "."
# (`step` comes with every table). These kinds also read a table given as a mapping of column
# -> array (`sim.recording.Recorder.arrays`), which a sweep hands them: making a pandas table
# of a year's ~80 columns, and reading it, cost a sweep more per run than anything else around
# its model. A kind not listed here gets the whole timeseries as a DataFrame.
# tests/test_sweep_overhead.py checks that every kind listed gives the same value from these
# columns as arrays as from the whole table.
COLUMNS_READ: dict[str, Callable[[str | None], tuple[str, ...]]] = {
    "territory_final": _one("territory"),
    "territory_mean": _one("territory"),
    "fighters_final": _one("fighters"),
    "killed_total": _fixed("killed."),
    "wounded_total": _fixed("wounded."),
    "killed_share": _fixed("killed.", "wounded."),
    "killed": _one("killed"),
    "defections": _one("defections"),
    "defections_net": _both_ways(">", "defections"),
    "defection_share": _both_ways(">", "defections"),
    "desertions_total": _fixed("desertions."),
    "clashes_total": _fixed("clashes"),
    "clashes_at_sites_share": _fixed("clashes", "clashes_at_sites"),
    "meetings_total": _fixed("meetings"),
    "failed_meeting_share": _fixed("meetings", "failures", "escalations"),
    "agreements_total": _fixed("agreements"),
    "escalations_total": _fixed("escalations"),
    "insurgent_peak": _fixed("insurgent_cells"),
    "insurgent_attacks_total": _fixed("insurgent_attacks"),
    "insurgent_growth": _fixed("insurgent_cells"),
    "tension_mean": _both_ways("~", "tension"),
    # from the event log and meta, with at most the run's last step from the timeseries
    **{kind: _fixed() for kind in (
        "control_change_step", "killed_window_peak", "wounded_window_peak", "clash_casualties_mean",
        "headquarters_opened", "clashes_at_edges_share", "clashes_near", "clashes_near_median", "clash_episodes",
        "agreements_unbroken", "annual_clash_toll", "clash_days_per_month", "first_clash_wounded",
    )},  # fmt: skip
}


def columns_read(names: list[str]) -> list[str] | None:
    """The timeseries columns the named outcomes read (names, or prefixes ending in "."), or None.

    None (they need the whole table, as a DataFrame) if any of them is of a kind `COLUMNS_READ`
    does not list. `step` is not named: every table has it.
    """
    wanted: dict[str, None] = {}
    for name in names:
        kind, subject = parse(name)
        if kind not in COLUMNS_READ:
            return None
        wanted.update(dict.fromkeys(COLUMNS_READ[kind](subject)))
    return list(wanted)


def parse(name: str) -> tuple[str, str | None]:
    """Split an outcome name at its first dot: `defections.NDF>IRGC` -> ("defections", "NDF>IRGC").

    The subject is None if the name has no dot (or nothing after it). The kind is not checked.
    """
    kind, _, subject = name.partition(".")
    return kind, (subject or None)


def outcome_range(name: str) -> tuple[Range, bool]:
    """What an outcome of this name holds: (its kind's `values`, whether a run that finished may give NaN).

    A name of a kind this version does not know (a newer version's): any finite number, or NaN.
    """
    kind = KINDS.get(parse(name)[0])
    return (kind.values, kind.nan) if kind is not None else (FINITE, True)


def check_outcome_name(name: str, scenario) -> str | None:
    """Why an outcome name is not valid for this scenario, or None if it is."""
    kind, subject = parse(name)
    if kind not in KINDS:
        return f"unknown outcome '{kind}' {unknown(kind, KINDS, 'known')}"
    spec = KINDS[kind]
    if spec.subject is None:
        return None if subject is None else f"outcome '{kind}' takes no subject"
    if spec.subject == "days":  # optional window length: killed_window_peak or killed_window_peak.45
        if subject is None or (subject.isdigit() and int(subject) >= 1):
            return None
        return f"'{subject}' is not a window length (a whole number of days)"
    if subject is None:
        return f"outcome '{kind}' needs a subject: {kind}.<{spec.subject}>"
    militias = [n for n, f in scenario.factions.items() if f.kind == "militia"]
    if spec.subject == "militia" and subject not in militias:
        return f"no militia named '{subject}' {unknown(subject, militias, 'known')}"
    if spec.subject == "faction" and subject not in scenario.factions:
        return f"no faction named '{subject}' {unknown(subject, scenario.factions, 'known')}"
    if spec.subject == "site" and subject not in scenario.sites:
        return f"no site named '{subject}' {unknown(subject, scenario.sites, 'known')}"
    if spec.subject == "flow":
        a, sep, b = subject.partition(">")
        if not sep or a not in militias or b not in militias or a == b:
            flows = [f"{x}>{y}" for x in militias for y in militias if x != y]
            return f"'{subject}' is not a flow between two militias (write A>B) {unknown(subject, flows, 'flows')}"
    if spec.subject == "holding":
        factions, sep, site = subject.partition("@")
        if not sep or any(f not in scenario.factions for f in factions.split("|")) or site not in scenario.sites:
            return f"'{subject}' is not a faction and a site (write FACTION@SITE, e.g. IRGC@albukamal)"
    if spec.subject == "pair":
        a, sep, b = subject.partition("~")
        pairs = {frozenset(p) for p in scenario.hostilities}
        if not sep or frozenset((a, b)) not in pairs:
            known = unknown(subject, [f"{x}~{y}" for x, y in scenario.hostilities], "pairs")
            return f"'{subject}' is not a hostile pair (write A~B as in hostilities) {known}"
    return None


def outcome_name(written: str, scenario) -> str:
    """The outcome name as computed: other names are returned unchanged.

    A window outcome written without its length (`killed_window_peak`) gets the scenario's
    `targets.window_days` (`killed_window_peak.30`); `clash_episodes` and `agreements_unbroken`
    get their defaults (`DAYS_DEFAULTS`).
    """
    kind, subject = parse(written)
    if kind in KINDS and KINDS[kind].subject == "days" and subject is None:
        return f"{kind}.{DAYS_DEFAULTS.get(kind, scenario.targets.window_days)}"
    return written


def reads_events(kind: str) -> bool:
    """Whether the outcome kind's function reads the event log at all (False: the timeseries and meta suffice).

    Read off the function's bytecode: a plain function that never loads its `events` argument,
    and hands it to no inner function, lambda or generator, does not need it. Anything else
    counts as reading it: a function that hands it on (`killed_share` to `killed_total`), one
    whose inner code captures it, and any callable that is not a plain function (a
    `functools.partial`, an object with `__call__`). The answer errs toward building the log.
    """
    function = KINDS[kind].compute
    if function not in _READS_EVENTS:
        _READS_EVENTS[function] = _loads_events(function)
    return _READS_EVENTS[function]


def _loads_events(function) -> bool:
    code = getattr(function, "__code__", None)
    if code is None or "events" not in code.co_varnames:
        return True  # not a plain function of (ts, events, meta, subject): assume it reads the log
    if "events" in code.co_cellvars:  # an inner function, lambda or generator captures it
        return True
    names = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname.startswith("LOAD_FAST"):  # LOAD_FAST_LOAD_FAST (3.13) loads a pair
            value = instruction.argval
            names.update(value if isinstance(value, tuple) else (value,))
    return "events" in names


_READS_EVENTS: dict[Callable, bool] = {}  # by function, so a kind given a new function is judged anew


def compute_outcomes(
    names: list[str],
    timeseries: pd.DataFrame | Callable[[list[str] | None], pd.DataFrame | Mapping[str, np.ndarray]],
    events: pd.DataFrame | Callable[[], pd.DataFrame] | None,
    meta: dict,
    missing_as_nan: bool = False,
) -> dict[str, float]:
    """The named outcomes of one run.

    Args:
        names: outcome names, already checked (`check_outcome_name`) and completed (`outcome_name`).
        timeseries: the run's timeseries, one row per step; or a function that makes a table,
            called once with what the named outcomes read (`columns_read`): a list of columns
            (names, or prefixes ending in ".") for a mapping of `step` and those columns to
            1-D arrays, or None for the whole timeseries as a DataFrame
            (`sim.runner.RunResult.table`).
        events: the run's event log (None or empty if it had none), or a function that builds
            it (called once, and only if a named outcome reads the log: `reads_events`).
        meta: the run's metadata (`first_control_change`, `sites`).
        missing_as_nan: an outcome whose figure the run did not record is NaN (the missing-data
            rule) instead of an error.

    Returns:
        name -> value, in the order of `names`. A pair may be named in either order (`A~B`, `B~A`).

    Raises:
        KeyError: an unknown outcome kind, or a subject with no column in the timeseries.
    """
    values = {}
    if callable(timeseries):
        timeseries = timeseries(columns_read(names))
    if callable(events):
        events = events() if any(parse(name)[0] in KINDS and reads_events(parse(name)[0]) for name in names) else None
    for name in names:
        kind, subject = parse(name)
        if KINDS[kind].subject == "pair" and f"tension.{subject}" not in timeseries:
            a, b = subject.split("~")
            subject = f"{b}~{a}"  # hostilities may list the pair in either order
        try:
            values[name] = float(KINDS[kind].compute(timeseries, events, meta, subject))
        except KeyError:
            if not missing_as_nan:
                raise
            values[name] = float("nan")
    return values


def outcome_words(name: str, kinds: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(label, unit) of an outcome name in words: `defections.NDF>IRGC` -> ("NDF→IRGC defections", "fighters").

    The kind's `label` (`KINDS`) with the subject filled in (a window outcome without its
    length gets its default), and its `unit`. A name whose kind is unknown, or whose subject
    does not have the kind's form, gives (name, "").

    `kinds`: each faction's kind ("militia" or "insurgent", `Faction.kind`), where known: a
    faction's fighters are then counted in "fighters" (a militia) or "insurgent cells" (an
    insurgent faction), not "fighters, or insurgent cells".
    """
    kind, subject = parse(name)
    spec = KINDS.get(kind)
    if spec is None:
        return name, ""
    parts = {"s": subject or ""}
    if spec.subject in ("flow", "pair"):
        a, sep, b = (subject or "").partition(">" if spec.subject == "flow" else "~")
        if not sep:
            return name, ""
        parts.update(a=a, b=b)
    elif spec.subject == "holding":
        who, sep, site = (subject or "").partition("@")
        if not sep:
            return name, ""
        parts.update(who=" or ".join(who.split("|")), site=site)
    elif spec.subject == "days":
        parts["n"] = subject or str(DAYS_DEFAULTS.get(kind, DEFAULT_WINDOW_DAYS))
    elif spec.subject is not None and not subject:
        return name, ""
    unit = spec.unit
    if unit == FIGHTERS_OR_CELLS and kinds and subject in kinds:
        unit = "insurgent cells" if kinds[subject] == "insurgent" else "fighters"
    return spec.label.format(**parts), unit


def outcome_label(name: str, kinds: Mapping[str, str] | None = None) -> str:
    """A figure's words for an outcome name, with its unit: `defections.NDF>IRGC` -> "NDF→IRGC defections (fighters)".

    From `outcome_words` (`kinds`: each faction's kind, where known); a name it does not know is
    returned unchanged.
    """
    words, unit = outcome_words(name, kinds)
    return f"{words} ({unit})" if unit else words


def outcome_rows(kinds: dict[str, OutcomeKind] = KINDS) -> list[tuple[str, str]]:
    """(name pattern, help) of every outcome kind, e.g. ("killed.<militia>", ...), for documentation."""
    rows = []
    for kind in kinds.values():
        pattern = kind.name if kind.subject is None else f"{kind.name}.<{kind.subject}>"
        rows.append((pattern, kind.help))
    return rows
