"""Event data: a results directory's events in ACLED's column layout, and a monthly comparison.

Data flow: `events.csv` of a results directory (`sim.results`) -> `acled_events.csv`
(`to_acled`, `run.py export-acled`) -> `comparison.csv` and `plots/compare_events.png`
against an observed ACLED export the user supplies (`compare_events`, `run.py compare-events`).

ACLED (Armed Conflict Location & Event Data, acleddata.com) names its columns
`event_id_cnty, event_date, year, event_type, sub_event_type, actor1, actor2, location,
latitude, longitude, fatalities, ...`. The mapping of model events:

- clash -> Battles / Armed clash (actor1 side_a, actor2 side_b);
- insurgent_attack -> Battles / Armed clash with actor1 the insurgents: the model's attacks
  are armed raids on fighters, not bombs or shelling, so "Explosions/Remote violence" would
  claim more than the model knows;
- meeting with outcome agreement -> Strategic developments / Agreement; other meetings ->
  Strategic developments / Other;
- looting -> Strategic developments / Looting/property destruction;
- new_headquarters -> Strategic developments / Headquarters or base established;
- defections are not ACLED events (ACLED codes no recruitment or desertion) and are left out.

The model has no civilians as targets, so "Violence against civilians" never occurs.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from sim.schema import Scenario

ACLED_COLUMNS = (
    "event_id_cnty",
    "event_date",
    "year",
    "event_type",
    "sub_event_type",
    "actor1",
    "actor2",
    "location",
    "latitude",
    "longitude",
    "fatalities",
    "replicate",
    "seed",
)
OBSERVED_REQUIRED = ("event_date", "event_type", "fatalities")
NEAR_SITE_CELLS = 2.0  # a clash within this many cells of a site is located at the site
COUNTRY_PREFIX = "SIM"  # synthetic event ids: SIM<replicate>-<n>, never confused with ACLED's
BAND = (5, 95)  # percentiles of the replicate band


class EventDataError(Exception):
    """An observed event file that cannot be compared (missing file, columns or values)."""


def _site_table(geo_or_maps) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Site names, labels, rows, cols from a `Geography` or the arrays of `maps.npz`."""

    def get(key):
        return geo_or_maps[key] if isinstance(geo_or_maps, dict) else getattr(geo_or_maps, key)

    names = [str(x) for x in get("site_names")]
    labels = [str(x) for x in get("site_labels")]
    return names, labels, np.asarray(get("site_rows"), dtype=float), np.asarray(get("site_cols"), dtype=float)


def _classify(event: str, outcome) -> tuple[str, str] | None:
    if event in ("clash", "insurgent_attack"):
        return "Battles", "Armed clash"
    if event == "meeting":
        return "Strategic developments", "Agreement" if outcome == "agreement" else "Other"
    if event == "looting":
        return "Strategic developments", "Looting/property destruction"
    if event == "new_headquarters":
        return "Strategic developments", "Headquarters or base established"
    return None  # defections and anything else: not ACLED events


def to_acled(events: pd.DataFrame, scenario: Scenario, geo_or_maps) -> pd.DataFrame:
    """A run's events in ACLED's column layout, one row per model event that ACLED would code.

    Args:
        events: `events.csv` of a results directory (`sim.results.load_run(...).events`).
        scenario: the run's scenario: `start_date`, faction labels and grid bounds.
        geo_or_maps: a `sim.geography.Geography` or the `maps` of `load_run` (site names,
            labels and cells).

    Returns:
        Columns `ACLED_COLUMNS`: `event_date` is `start_date` + step days (ISO), `location`
        the event's site label, else the label of a site within `NEAR_SITE_CELLS`, else
        "cell r,c"; `latitude`/`longitude` the cell centre (empty if the grid has no bounds);
        `fatalities` the killed of both sides. Defections are left out (see the module).
    """
    names, labels, site_rows, site_cols = _site_table(geo_or_maps)
    site_index = {name: i for i, name in enumerate(names)}
    faction_label = {name: f.label for name, f in scenario.factions.items()}
    start = date.fromisoformat(scenario.start_date)
    grid, bounds = scenario.grid, scenario.grid.bounds
    rows_out = []
    counter: dict[int, int] = {}
    for ev in events.to_dict("records"):
        kind = _classify(str(ev.get("event")), ev.get("outcome"))
        if kind is None:
            continue
        replicate = int(ev["replicate"])
        counter[replicate] = counter.get(replicate, 0) + 1
        day = start + timedelta(days=int(ev["step"]))
        site = ev.get("site")
        row, col = ev.get("row"), ev.get("col")
        location = None
        if isinstance(site, str) and site in site_index:
            i = site_index[site]
            location = labels[i]
            if pd.isna(row) or pd.isna(col):
                row, col = site_rows[i], site_cols[i]
        if location is None and not (pd.isna(row) or pd.isna(col)):
            if names:
                distance = np.hypot(site_rows - float(row), site_cols - float(col))
                nearest = int(np.argmin(distance))
                if distance[nearest] <= NEAR_SITE_CELLS:
                    location = labels[nearest]
            if location is None:
                location = f"cell {int(row)},{int(col)}"
        lat = lon = np.nan
        if bounds is not None and not (pd.isna(row) or pd.isna(col)):
            lat = bounds.lat_max - (float(row) + 0.5) / grid.height * (bounds.lat_max - bounds.lat_min)
            lon = bounds.lon_min + (float(col) + 0.5) / grid.width * (bounds.lon_max - bounds.lon_min)
        if ev["event"] in ("new_headquarters", "looting"):  # one faction acts
            actor1, actor2 = ev.get("faction"), None
        else:
            actor1, actor2 = ev.get("side_a"), ev.get("side_b")
        killed = sum(float(ev[c]) for c in ("killed_a", "killed_b") if c in ev and not pd.isna(ev[c]))
        rows_out.append(
            {
                "event_id_cnty": f"{COUNTRY_PREFIX}{replicate}-{counter[replicate]}",
                "event_date": day.isoformat(),
                "year": day.year,
                "event_type": kind[0],
                "sub_event_type": kind[1],
                "actor1": faction_label.get(actor1, actor1) if isinstance(actor1, str) else "",
                "actor2": faction_label.get(actor2, actor2) if isinstance(actor2, str) else "",
                "location": location or "",
                "latitude": lat,
                "longitude": lon,
                "fatalities": int(round(killed)),
                "replicate": replicate,
                "seed": ev["seed"],
            }
        )
    return pd.DataFrame(rows_out, columns=list(ACLED_COLUMNS))


def _run_scenario(directory: Path) -> tuple[Scenario, dict, pd.DataFrame, dict]:
    from sim.results import load_run
    from sim.scenario import load_scenario

    run = load_run(directory)
    return load_scenario(Path(directory) / "scenario.yaml"), run.manifest, run.events, run.maps


def export_acled(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write a results directory's events as ACLED rows (`to_acled`), atomically.

    Args:
        results_dir: a results directory of `run.py run`.
        out: the CSV to write (default `RESULTS_DIR/acled_events.csv`).

    Returns:
        The path written.
    """
    from sim.results import atomic_write_text

    directory = Path(results_dir)
    scenario, _, events, maps = _run_scenario(directory)
    table = to_acled(events, scenario, maps)
    path = Path(out) if out is not None else directory / "acled_events.csv"
    atomic_write_text(path, table.to_csv(index=False))
    return path


def read_observed(path: str | Path) -> pd.DataFrame:
    """Read an observed ACLED export: at least `event_date`, `event_type`, `fatalities`.

    Returns:
        The table with `event_date` as datetimes and `fatalities` as numbers.

    Raises:
        EventDataError: the file is missing or unreadable, lacks a required column, or has a
            date or fatality count that does not parse (one-line message).
    """
    path = Path(path)
    if not path.is_file():
        raise EventDataError(f"{path}: no such file")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise EventDataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
    missing = [c for c in OBSERVED_REQUIRED if c not in table.columns]
    if missing:
        raise EventDataError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(OBSERVED_REQUIRED)})")
    dates = pd.to_datetime(table["event_date"], errors="coerce", format="mixed")
    if dates.isna().any():
        bad = int(dates.isna().idxmax())
        raise EventDataError(f"{path}: row {bad + 2}: event_date {table['event_date'][bad]!r} is not a date")
    fatalities = pd.to_numeric(table["fatalities"], errors="coerce")
    if fatalities.isna().any() or (fatalities < 0).any():
        bad = int((fatalities.isna() | (fatalities < 0)).idxmax())
        raise EventDataError(f"{path}: row {bad + 2}: fatalities {table['fatalities'][bad]!r} is not a count >= 0")
    return table.assign(event_date=dates, fatalities=fatalities)


def _months(first: pd.Timestamp, last: pd.Timestamp) -> pd.PeriodIndex:
    return pd.period_range(first.to_period("M"), last.to_period("M"), freq="M")


def monthly_comparison(model: pd.DataFrame, observed: pd.DataFrame, start: str, steps: int, replicates) -> pd.DataFrame:
    """Per month and event type: model count and fatalities (median, 5-95% over replicates), observed.

    Args:
        model: `to_acled` rows.
        observed: `read_observed` rows.
        start: the scenario's `start_date` (ISO).
        steps: days simulated.
        replicates: the replicate numbers of the run (a replicate without events counts 0).

    Returns:
        Columns month (YYYY-MM), month_index (0 = the start month), event_type, n_replicates,
        model_count_{median,p5,p95}, model_fatalities_{median,p5,p95}, observed_count,
        observed_fatalities. Model columns are empty for months not simulated, observed ones
        for months outside the observed file's first and last date.
    """
    t0 = pd.Timestamp(start)
    model_months = _months(t0, t0 + pd.Timedelta(days=steps))
    obs_months = (
        _months(observed["event_date"].min(), observed["event_date"].max())
        if len(observed)
        else pd.PeriodIndex([], freq="M")
    )
    months = model_months.union(obs_months).sort_values()
    types = sorted(set(model["event_type"]) | set(observed["event_type"].astype(str)))
    replicates = sorted(int(r) for r in replicates)
    m = model.assign(month=pd.to_datetime(model["event_date"]).dt.to_period("M"))
    grouped = m.groupby(["month", "event_type", "replicate"]).agg(
        count=("event_id_cnty", "size"), fatalities=("fatalities", "sum")
    )
    o = observed.assign(month=observed["event_date"].dt.to_period("M"), event_type=observed["event_type"].astype(str))
    obs = o.groupby(["month", "event_type"]).agg(count=("event_date", "size"), fatalities=("fatalities", "sum"))
    rows = []
    for month in months:
        for kind in types:
            row = {
                "month": str(month),
                "month_index": (month - t0.to_period("M")).n,
                "event_type": kind,
                "n_replicates": len(replicates),
            }
            for what in ("count", "fatalities"):
                if month in model_months and replicates:
                    values = np.array(
                        [grouped[what].get((month, kind, r), 0) if len(grouped) else 0 for r in replicates],
                        dtype=float,
                    )
                    row[f"model_{what}_median"] = float(np.median(values))
                    row[f"model_{what}_p5"] = float(np.percentile(values, BAND[0]))
                    row[f"model_{what}_p95"] = float(np.percentile(values, BAND[1]))
                else:
                    row[f"model_{what}_median"] = row[f"model_{what}_p5"] = row[f"model_{what}_p95"] = np.nan
            for what in ("count", "fatalities"):
                row[f"observed_{what}"] = (
                    (float(obs[what].get((month, kind), 0)) if len(obs) else 0.0) if month in obs_months else np.nan
                )
            rows.append(row)
    return pd.DataFrame(rows)


def plot_comparison(table: pd.DataFrame, path: Path, footer_text: str) -> Path:
    """Monthly events and fatalities per event type: model median and 5-95% band, observed points."""
    from matplotlib.ticker import MaxNLocator

    from sim.figures import NEUTRAL_COLOUR, OKABE_ITO, new_figure, save_png

    types = list(dict.fromkeys(table["event_type"]))
    n = max(1, len(types))
    fig = new_figure(
        10,
        1.2 + 2.4 * n,
        title="Model events against observed events, per month",
        subtitle="line: model median over replicates; band: 5-95%; dots: observed file",
        footer=footer_text,
    )
    axes = fig.subplots(n, 2, squeeze=False)
    for i, kind in enumerate(types):
        part = table[table["event_type"] == kind]
        x = part["month_index"].to_numpy()
        for j, (what, unit) in enumerate((("count", "events / month"), ("fatalities", "killed / month"))):
            ax = axes[i][j]
            ax.fill_between(x, part[f"model_{what}_p5"], part[f"model_{what}_p95"], color=OKABE_ITO[1], alpha=0.25)
            ax.plot(x, part[f"model_{what}_median"], color=OKABE_ITO[1], label="model median")
            ax.plot(x, part[f"observed_{what}"], "o", color=NEUTRAL_COLOUR, markersize=4, label="observed")
            ax.set_title(f"{kind}: {what}", fontsize=10)
            ax.set_ylabel(unit)
            ax.set_xlabel("month since the start date (months)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    return save_png(fig, path)


def compare_events(results_dir: str | Path, observed_path: str | Path, out: str | Path | None = None) -> list[Path]:
    """Compare a results directory's events with an observed ACLED export; write the table and plot.

    Args:
        results_dir: a results directory of `run.py run`.
        observed_path: the observed CSV in ACLED's layout (`read_observed`).
        out: output directory (default `results_dir`); gets `comparison.csv` and
            `plots/compare_events.png`.

    Returns:
        The paths written.

    Raises:
        EventDataError: the observed file cannot be used.
        OutputError: `results_dir` is not a complete results directory.
    """
    from sim.figures import footer
    from sim.results import atomic_write_text

    observed = read_observed(observed_path)  # refuse bad input before any work
    directory = Path(results_dir)
    scenario, manifest, events, maps = _run_scenario(directory)
    model = to_acled(events, scenario, maps)
    replicates = [r["replicate"] for r in manifest.get("replicates", [])] or sorted(set(model["replicate"]))
    steps = int(manifest.get("steps", scenario.steps))
    table = monthly_comparison(model, observed, scenario.start_date, steps, replicates)
    out_dir = Path(out) if out is not None else directory
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "comparison.csv"
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    atomic_write_text(csv_path, buffer.getvalue())
    seeds = f"root seed {manifest.get('root_seed')}, {len(replicates)} replicates"
    days = f"{steps} days from {scenario.start_date}"
    text = footer(
        scenario.name, seeds, days, f"model {directory.name}/events.csv", f"observed {Path(observed_path).name}"
    )
    png = plot_comparison(table, out_dir / "plots" / "compare_events.png", text)
    return [csv_path, png]
