"""Scalar outcomes of one run, by name, for sweeps, validation and calibration.

An outcome name is `kind` or `kind.subject`, e.g. `killed_total`, `territory_final.IRGC`,
`defections.NDF>IRGC`, `control_change_step.buqrus`. Each kind is a module-level function
of a run's timeseries (and events/meta) returning one float, so sweeps can name outcomes in
YAML and workers can compute them where the run happened.

Every outcome function takes `(ts, events, meta, subject)`: `ts` the run's timeseries (one row
per step, step 0 the initial state, columns as in `sim.recording`), `events` its event log
(one row per event, or None), `meta` its metadata (`first_control_change`), and `subject` the
part of the name after the dot (None if there is none). Counts are summed over the whole run
(the timeseries holds each step's own counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_WINDOW_DAYS = 30  # default window of the *_window_peak outcomes (targets.window_days)


@dataclass(frozen=True)
class OutcomeKind:
    """One kind of outcome: its name, what subject it takes, a line of help, and its function.

    Attributes:
        name: the kind, the part of an outcome name before the dot (`territory_final`).
        subject: what follows the dot: None (nothing), "faction", "militia", "pair" (`A~B`),
            "flow" (`A>B`), "site", "holding" (`faction@site`) or "days" (an optional window length).
        help: one line of description (listed by `outcome_rows`, shown on sweep plots by `sim.analysis`).
        compute: the outcome function, `(ts, events, meta, subject) -> float`.
    """

    name: str
    subject: str | None  # None: no subject; "faction", "militia", "pair", "flow", "site", "holding"
    help: str
    compute: Callable


def _col_sum(ts: pd.DataFrame, column: str) -> float:
    return float(ts[column].sum()) if column in ts else float("nan")


def _prefix_sum(ts: pd.DataFrame, prefix: str) -> float:
    return float(ts.filter(regex=f"^{prefix}").to_numpy().sum())


def territory_final(ts, events, meta, subject):
    """Share of passable cells (0-1) the militia `subject` controls on the last step."""
    return float(ts[f"territory.{subject}"].iloc[-1])


def territory_mean(ts, events, meta, subject):
    """Mean over steps 1..last of the share of passable cells (0-1) the militia `subject` controls."""
    return float(ts[f"territory.{subject}"].iloc[1:].mean())


def fighters_final(ts, events, meta, subject):
    """Fit fighters of the faction `subject` on the last step (insurgents: rounded cells)."""
    return float(ts[f"fighters.{subject}"].iloc[-1])


def killed_total(ts, events, meta, subject=None):
    """Fighters killed, all militias, whole run (persons; 0 if nobody was)."""
    return _prefix_sum(ts, r"killed\.")


def wounded_total(ts, events, meta, subject=None):
    """Fighters wounded, all militias, whole run (persons; 0 if nobody was)."""
    return _prefix_sum(ts, r"wounded\.")


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
    return _prefix_sum(ts, r"desertions\.")


def clashes_total(ts, events, meta, subject=None):
    """Clashes between rival militias, whole run (count; NaN if the timeseries has no `clashes` column)."""
    return _col_sum(ts, "clashes")


def clashes_at_sites_share(ts, events, meta, subject=None):
    """Share (0-1) of the run's clashes that happened in a named site's cell; NaN without clashes."""
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
    """Largest insurgent strength over the run, step 0 included (cells); 0 if the scenario has no insurgents."""
    return float(ts["insurgent_cells"].max()) if "insurgent_cells" in ts else 0.0


def insurgent_attacks_total(ts, events, meta, subject=None):
    """Insurgent attacks, whole run (count)."""
    return _col_sum(ts, "insurgent_attacks")


def insurgent_growth(ts, events, meta, subject=None):
    """Insurgent strength on the last step minus on step 0 (cells); 0 if the scenario has no insurgents."""
    if "insurgent_cells" not in ts or len(ts) == 0:
        return 0.0
    return float(ts["insurgent_cells"].iloc[-1] - ts["insurgent_cells"].iloc[0])


def site_held_share(ts, events, meta, subject):
    """Share (0-1) of steps 1..last on which the faction holds the site (`subject` = `faction@site`).

    Read from `control.<site>` (a faction name, 'contested' or 'none'); step 0 counts only
    in a run without later steps.
    """
    faction, _, site = subject.partition("@")
    control = ts[f"control.{site}"]
    days = control[ts["step"] >= 1] if "step" in ts else control
    if len(days) == 0:
        days = control
    return float((days.astype(str) == faction).mean())


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
    return float(ts[f"tension.{subject}"].iloc[1:].mean())


def control_change_step(ts, events, meta, subject):
    """First step (day) at which the site `subject` changed hands; the last step + 1 if it never did."""
    first = (meta or {}).get("first_control_change", {}).get(subject)
    return float(first) if first is not None else float(ts["step"].iloc[-1] + 1)


# Outcomes for the article's figures (calibration targets): casualties of clashes between
# rival militias, from the run's `clash` events (insurgent attacks are not clashes).


def _window_days(subject) -> int:
    """The window length in days from an outcome subject such as `30` (default 30)."""
    if subject is None or subject == "":
        return DEFAULT_WINDOW_DAYS
    text = str(subject)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"window length must be a whole number of days >= 1 (got '{subject}')")
    return int(text)


def _event_number(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").fillna(0).astype(float)


def _clashes(events) -> pd.DataFrame:
    """Clash events with their step, site, killed and wounded (both sides); in event order."""
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
    last = int(ts["step"].max()) if ts is not None and "step" in ts and len(ts) else 0
    last = max(last, int(clashes["step"].max()) if len(clashes) else 0, 1)
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


def _last_day(ts, clashes) -> int:
    """The run's last step (at least 1), from the timeseries or, failing that, the clash events."""
    last = int(ts["step"].max()) if ts is not None and "step" in ts and len(ts) else 0
    return max(last, int(clashes["step"].max()) if len(clashes) else 0, 1)


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

    A clash event's `site` is the nearest site within two cells of the clash.
    """
    clashes = _clashes(events)
    here = clashes[clashes["site"] == subject]
    if here.empty:
        return float("nan")
    return float(here.sort_values("step", kind="stable")["wounded"].iloc[0])


KINDS: dict[str, OutcomeKind] = {
    k.name: k
    for k in [
        OutcomeKind(
            "territory_final", "militia", "share of passable cells controlled on the last day", territory_final
        ),
        OutcomeKind("territory_mean", "militia", "mean share of passable cells controlled", territory_mean),
        OutcomeKind("fighters_final", "faction", "fighters on the last day (insurgents: cells)", fighters_final),
        OutcomeKind("killed_total", None, "killed, all militias, whole run", killed_total),
        OutcomeKind("wounded_total", None, "wounded, all militias, whole run", wounded_total),
        OutcomeKind("killed_share", None, "killed / (killed + wounded)", killed_share),
        OutcomeKind("killed", "militia", "killed of one militia, whole run", killed),
        OutcomeKind("defections", "flow", "fighters who moved from A to B (`A>B`), whole run", defections),
        OutcomeKind("defections_net", "flow", "A>B minus B>A defections", defections_net),
        OutcomeKind("desertions_total", None, "fighters who left for civilian life", desertions_total),
        OutcomeKind("clashes_total", None, "clashes between rival militias", clashes_total),
        OutcomeKind("clashes_at_sites_share", None, "share of clashes in a named site's cell", clashes_at_sites_share),
        OutcomeKind("meetings_total", None, "mediation meetings held", meetings_total),
        OutcomeKind("failed_meeting_share", None, "share of meetings that failed or escalated", failed_meeting_share),
        OutcomeKind("agreements_total", None, "meetings that ended in agreement", agreements_total),
        OutcomeKind("insurgent_peak", None, "largest number of insurgent cells", insurgent_peak),
        OutcomeKind("insurgent_attacks_total", None, "insurgent attacks", insurgent_attacks_total),
        OutcomeKind("insurgent_growth", None, "insurgent cells on the last day minus day 0", insurgent_growth),
        OutcomeKind(
            "site_held_share",
            "holding",
            "share of days 1..T a faction holds a site (`site_held_share.IRGC@albukamal`)",
            site_held_share,
        ),
        OutcomeKind(
            "alignment_final", "militia", "tribal leaders' mean alignment with a militia, last day", alignment_final
        ),
        OutcomeKind("tension_mean", "pair", "mean tension of a hostile pair (`A~B`)", tension_mean),
        OutcomeKind(
            "control_change_step", "site", "first day a site's control changed (steps+1 if never)", control_change_step
        ),
        OutcomeKind(
            "killed_window_peak",
            "days",
            "killed in rival-militia clashes in the N-day window (`killed_window_peak.30`) with the most clash "
            "casualties (article §4: 'more than 25' in the recent clashes)",
            killed_window_peak,
        ),
        OutcomeKind(
            "wounded_window_peak",
            "days",
            "wounded in rival-militia clashes in the same N-day window (`wounded_window_peak.30`) "
            "(article §4: 'about 40')",
            wounded_window_peak,
        ),
        OutcomeKind(
            "clash_casualties_mean",
            None,
            "mean casualties (killed + wounded, both sides) per rival-militia clash, NaN if none",
            clash_casualties_mean,
        ),
        OutcomeKind(
            "annual_clash_toll",
            None,
            "killed (both sides) in rival-militia clashes per 365 days (persons/year)",
            annual_clash_toll,
        ),
        OutcomeKind(
            "clash_days_per_month",
            None,
            "days with at least one rival-militia clash, per 30 days of the run",
            clash_days_per_month,
        ),
        OutcomeKind(
            "first_clash_wounded",
            "site",
            "wounded (both sides) in the first clash at a site, NaN if none there "
            "(article §13: 4 at `first_clash_wounded.buqrus`)",
            first_clash_wounded,
        ),
    ]
}


def parse(name: str) -> tuple[str, str | None]:
    """Split an outcome name at its first dot: `defections.NDF>IRGC` -> ("defections", "NDF>IRGC").

    The subject is None if the name has no dot (or nothing after it). The kind is not checked.
    """
    kind, _, subject = name.partition(".")
    return kind, (subject or None)


def check_outcome_name(name: str, scenario) -> str | None:
    """Why an outcome name is not valid for this scenario, or None if it is."""
    kind, subject = parse(name)
    if kind not in KINDS:
        return f"unknown outcome '{kind}'; known: {', '.join(KINDS)}"
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
        return f"no militia named '{subject}' (known: {', '.join(militias)})"
    if spec.subject == "faction" and subject not in scenario.factions:
        return f"no faction named '{subject}'"
    if spec.subject == "site" and subject not in scenario.sites:
        return f"no site named '{subject}'"
    if spec.subject == "flow":
        a, sep, b = subject.partition(">")
        if not sep or a not in militias or b not in militias or a == b:
            return f"'{subject}' is not a flow between two militias (write A>B)"
    if spec.subject == "holding":
        faction, sep, site = subject.partition("@")
        if not sep or faction not in scenario.factions or site not in scenario.sites:
            return f"'{subject}' is not a faction and a site (write FACTION@SITE, e.g. IRGC@albukamal)"
    if spec.subject == "pair":
        a, sep, b = subject.partition("~")
        pairs = {frozenset(p) for p in scenario.hostilities}
        if not sep or frozenset((a, b)) not in pairs:
            return f"'{subject}' is not a hostile pair (write A~B as in hostilities)"
    return None


def outcome_name(written: str, scenario) -> str:
    """The outcome name as computed: other names are returned unchanged.

    A window outcome written without its length (`killed_window_peak`) gets the scenario's
    `targets.window_days` (`killed_window_peak.30`).
    """
    kind, subject = parse(written)
    if kind in KINDS and KINDS[kind].subject == "days" and subject is None:
        return f"{kind}.{scenario.targets.window_days}"
    return written


def compute_outcomes(names: list[str], timeseries: pd.DataFrame, events: pd.DataFrame, meta: dict) -> dict[str, float]:
    """The named outcomes of one run.

    Args:
        names: outcome names, already checked (`check_outcome_name`) and completed (`outcome_name`).
        timeseries: the run's timeseries, one row per step.
        events: the run's event log (None or empty if it had none).
        meta: the run's metadata (`first_control_change`).

    Returns:
        name -> value, in the order of `names`. A pair may be named in either order (`A~B`, `B~A`).

    Raises:
        KeyError: an unknown outcome kind, or a subject with no column in the timeseries.
    """
    values = {}
    for name in names:
        kind, subject = parse(name)
        if KINDS[kind].subject == "pair" and f"tension.{subject}" not in timeseries:
            a, b = subject.split("~")
            subject = f"{b}~{a}"  # hostilities may list the pair in either order
        values[name] = float(KINDS[kind].compute(timeseries, events, meta, subject))
    return values


def outcome_rows(kinds: dict[str, OutcomeKind] = KINDS) -> list[tuple[str, str]]:
    """(name pattern, help) of every outcome kind, e.g. ("killed.<militia>", ...), for documentation."""
    rows = []
    for kind in kinds.values():
        pattern = kind.name if kind.subject is None else f"{kind.name}.<{kind.subject}>"
        rows.append((pattern, kind.help))
    return rows
