"""Event data: a results directory's events in ACLED's column layout, and a monthly comparison.

Data flow: `events.csv` of a results directory (`sim.results`) -> `acled_events.csv`
(`to_acled`, `run.py export-acled`) -> a comparison directory against an observed ACLED
export the user supplies (`compare_events`, `run.py compare-events`), by default a new
`RESULTS_DIR/events-<UTC timestamp>/` so that no earlier comparison is replaced:

- `comparison.csv`: per month and event type (`monthly_comparison`);
- `comparison_by_place.csv`: per month, event type and place (`monthly_comparison_by_place`);
- `observed_places.csv`: every observed row with the place it was given and how (`place_observed`);
- `compare_events.json`: inputs (observed file and its SHA-256), the matching rule and radius,
  the places with their coordinates, how many observed events matched how, versions;
- `plots/compare_events.png` (per type), `plots/battles_by_place.png` and
  `plots/battle_fatalities_by_place.png` (one panel per place).

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

Places (`build_places`). The places of the per-place comparison are the scenario's sites of a
kind that names a locality (`PLACE_KINDS`: towns, crossings, oil fields); a headquarters,
venue or post belongs to the nearest such site within the radius, or is a place of its own
where none is within it (syria_wide's headquarters at Nubl and Al-Zahraa and near the T4
airbase, its Al-Sukhnah post); a scenario with none of those kinds uses all its sites. One
rule serves both sides: an event belongs to the nearest place within `radius_km`, else to
`ELSEWHERE`. The default radius is `NEAR_SITE_CELLS` times
the longer side of a grid cell (6.4 km on the baseline grid), the distance within which the model
already locates an event at a site; `--match-km` sets another. Site coordinates come from the
results directory's `scenario.yaml`: a site's lat/lon as given, else its cell centre through
`grid.bounds`.

- Model events (`Places.locate`): by the coordinates the export writes (an event at a site:
  the site's own coordinates; at a grid cell: the cell's centre), with the rule observed rows
  follow, so that a run compared with its own export agrees place by place. Without bounds,
  an event at a site takes that site's place and one at a grid cell the nearest place within
  `NEAR_SITE_CELLS` grid cells, whose label the export writes as its `location`.
- Observed events: by coordinates first (nearest place within the radius, km on an
  equirectangular projection); when a row has no coordinates, or the grid has no bounds, by
  name: `location` against the sites' labels and keys, ignoring case, spaces and punctuation
  ("Al Mayadin" = "Al-Mayadin"). Coordinates win over a name: a row with coordinates far from
  every place goes to `ELSEWHERE` whatever its `location` says. Rows that match nothing are
  counted under `ELSEWHERE` (never dropped) and listed in `observed_places.csv`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from sim.geography import KM_PER_DEGREE_LAT, cell_size_km, distance_text
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
# One event's fatalities, at most: far above any recorded event, and low enough that sums over
# millions of events stay exact in float64 (a 32-digit count was read as 1e+32, its digits lost).
MAX_EVENT_FATALITIES = 1_000_000
OBSERVED_PLACE = ("location", "latitude", "longitude")  # a row needs location, or latitude and longitude
MODEL_EVENT_TYPES = ("Battles", "Strategic developments")  # always in the tables, zero if none occur
# The largest match radius, km: half the Earth's circumference (about 20,000 km), beyond which
# every place on Earth is within reach of every event already.
MAX_MATCH_KM = 20_000.0
# ACLED's six event types (its codebook), as its exports spell them: an observed event type that
# differs from one of them in case or spacing only ("battles", "Strategic  Developments", from a
# file edited by hand) is read as that type, not counted as another.
ACLED_EVENT_TYPES = (
    "Battles",
    "Explosions/Remote violence",
    "Violence against civilians",
    "Protests",
    "Riots",
    "Strategic developments",
)
NEAR_SITE_CELLS = 2.0  # a clash within this many grid cells of a site is located at the site
PLACE_KINDS = ("town", "crossing", "oil_field")  # site kinds that name a locality (places)
ELSEWHERE = "elsewhere"  # the place of events near no place
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


def _acled_rows(events: pd.DataFrame, scenario: Scenario, geo_or_maps) -> pd.DataFrame:
    """`to_acled`'s rows plus `_site` (site name or None), `_row`, `_col` (cell, NaN if unknown)."""
    names, labels, site_rows, site_cols = _site_table(geo_or_maps)
    site_index = {name: i for i, name in enumerate(names)}
    faction_label = {name: f.label for name, f in scenario.factions.items()}
    start = date.fromisoformat(scenario.start_date)
    site_lat, site_lon = _site_coordinates(scenario, names, site_rows, site_cols)
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
        site = site if isinstance(site, str) and site in site_index else None
        row, col = ev.get("row"), ev.get("col")
        location = None
        lat = lon = np.nan
        if site is not None:  # at a site: its label and coordinates (its lat/lon as given, else its cell's centre)
            i = site_index[site]
            location, lat, lon = labels[i], site_lat[i], site_lon[i]
            if pd.isna(row) or pd.isna(col):
                row, col = site_rows[i], site_cols[i]
        elif not (pd.isna(row) or pd.isna(col)):  # at a cell: its centre
            lat, lon = _cell_centre(scenario, float(row), float(col))
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
                "location": location,
                "latitude": lat,
                "longitude": lon,
                "fatalities": int(round(killed)),
                "replicate": replicate,
                "seed": ev["seed"],
                "_site": site,
                "_row": np.nan if pd.isna(row) else float(row),
                "_col": np.nan if pd.isna(col) else float(col),
            }
        )
    table = pd.DataFrame(rows_out, columns=[*ACLED_COLUMNS, "_site", "_row", "_col"])
    # An event at a cell is named after the place the comparison gives it (the default radius),
    # so that its name, read back by `place_observed` where there are no coordinates, finds the
    # place its model event has (`place_model`); "cell r,c" near no place.
    at_cell = table["_site"].isna().to_numpy() & table["_row"].notna().to_numpy() & table["_col"].notna().to_numpy()
    if at_cell.any():
        places = build_places(scenario, geo_or_maps)
        found = places.locate(table.loc[at_cell])
        cells = zip(table.loc[at_cell, "_row"].astype(int), table.loc[at_cell, "_col"].astype(int))
        table.loc[at_cell, "location"] = [
            places.labels[p] if p >= 0 else f"cell {r},{c}" for p, (r, c) in zip(found, cells)
        ]
    table["location"] = table["location"].fillna("")
    return table


def _cell_centre(scenario: Scenario, row: float, col: float) -> tuple[float, float]:
    """(lat, lon) of a cell's centre through `grid.bounds`, degrees; (NaN, NaN) without bounds."""
    grid, bounds = scenario.grid, scenario.grid.bounds
    if bounds is None:
        return np.nan, np.nan
    lat = bounds.lat_max - (row + 0.5) / grid.height * (bounds.lat_max - bounds.lat_min)
    lon = bounds.lon_min + (col + 0.5) / grid.width * (bounds.lon_max - bounds.lon_min)
    return lat, lon


def _site_coordinates(scenario: Scenario, names, site_rows, site_cols) -> tuple[np.ndarray, np.ndarray]:
    """(S,) lat and (S,) lon of the sites, degrees: a site's lat/lon as given, else its cell's centre.

    NaN without bounds.
    """
    lat, lon = np.full(len(names), np.nan), np.full(len(names), np.nan)
    if scenario.grid.bounds is None:
        return lat, lon
    for i, name in enumerate(names):
        site = scenario.sites.get(name)
        if site is not None and site.lat is not None:
            lat[i], lon[i] = site.lat, site.lon
        else:
            lat[i], lon[i] = _cell_centre(scenario, float(site_rows[i]), float(site_cols[i]))
    return lat, lon


def to_acled(events: pd.DataFrame, scenario: Scenario, geo_or_maps) -> pd.DataFrame:
    """A run's events in ACLED's column layout, one row per model event that ACLED would code.

    Args:
        events: `events.csv` of a results directory (`sim.results.load_run(...).events`).
        scenario: the run's scenario: `start_date`, faction labels and grid bounds.
        geo_or_maps: a `sim.geography.Geography` or the `maps` of `load_run` (site names,
            labels and cells).

    Returns:
        Columns `ACLED_COLUMNS`: `event_date` is `start_date` + step days (ISO), `location`
        the event's site label, else the label of the place the comparison gives its cell
        (`build_places` with the default radius), else "cell r,c"; `latitude`/`longitude` the
        site's own coordinates (its lat/lon as given, else its cell's centre) for an event at
        a site, else the event's cell centre (empty if the grid has no bounds); `fatalities`
        the killed of both sides. Defections are left out (see the module).
    """
    return _acled_rows(events, scenario, geo_or_maps)[list(ACLED_COLUMNS)]


# --------------------------------------------------------------------------- places


def _name_key(text: str) -> str:
    """A name for matching: case-folded, accents, spaces and punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", str(text).casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def _km(lat0, lon0, lat1, lon1) -> np.ndarray:
    """Distance in km between points (degrees), equirectangular: fine over tens of km."""
    mid = np.radians((np.asarray(lat0, dtype=float) + np.asarray(lat1, dtype=float)) / 2)
    dy = (np.asarray(lat1, dtype=float) - lat0) * KM_PER_DEGREE_LAT
    dx = (np.asarray(lon1, dtype=float) - lon0) * KM_PER_DEGREE_LAT * np.cos(mid)
    return np.hypot(dx, dy)


@dataclass
class Places:
    """The places of a per-place comparison and the rule that puts an event at one (see the module).

    Attributes:
        names: (P,) site keys of the places, in the scenario's order.
        labels: (P,) their labels (the `place` column of the tables).
        rows, cols: (P,) their cells.
        lat, lon: (P,) their coordinates, degrees N/E (the site's own, else its cell centre);
            None if the grid has no bounds.
        cell_km: (north-south, east-west) size of a cell, km; None without bounds.
        radius_km: an event belongs to the nearest place within this distance, km; None
            without bounds (then model events use `NEAR_SITE_CELLS` cells, observed ones names).
        radius_rule: how `radius_km` was chosen (for the record).
        bounds: the grid's (lat_min, lat_max, lon_min, lon_max), or None.
        site_place: every site's key -> index of its place, or None (elsewhere).
        by_name: normalised site label or key -> index of its place.
    """

    names: list[str]
    labels: list[str]
    rows: np.ndarray
    cols: np.ndarray
    lat: np.ndarray | None
    lon: np.ndarray | None
    cell_km: tuple[float, float] | None
    radius_km: float | None
    radius_rule: str
    bounds: tuple[float, float, float, float] | None
    site_place: dict[str, int | None] = field(default_factory=dict)
    by_name: dict[str, int] = field(default_factory=dict)

    @property
    def all_labels(self) -> list[str]:
        """The places' labels and `ELSEWHERE`, the order of the tables and plots."""
        return [*self.labels, ELSEWHERE]

    def at_cells(self, rows, cols) -> np.ndarray:
        """(n,) index of the nearest place within the radius of each cell, -1 for elsewhere (or no cell)."""
        rows = np.asarray(rows, dtype=float).reshape(-1, 1)
        cols = np.asarray(cols, dtype=float).reshape(-1, 1)
        if not self.names or not len(rows):
            return np.full(len(rows), -1, dtype=int)
        dr, dc = rows - self.rows[None, :], cols - self.cols[None, :]
        if self.cell_km is not None:
            distance, limit = np.hypot(dr * self.cell_km[0], dc * self.cell_km[1]), self.radius_km
        else:
            distance, limit = np.hypot(dr, dc), NEAR_SITE_CELLS
        distance = np.where(np.isnan(distance), np.inf, distance)
        nearest = np.argmin(distance, axis=1)
        return np.where(distance[np.arange(len(rows)), nearest] <= limit, nearest, -1)

    def at_coordinates(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """(n,) index of the nearest place within `radius_km` (-1: none), and (n,) its distance in km.

        Coordinates that are NaN, or any coordinates when the grid has no bounds, give -1 and NaN.
        """
        lat = np.asarray(lat, dtype=float).reshape(-1, 1)
        lon = np.asarray(lon, dtype=float).reshape(-1, 1)
        n = len(lat)
        if self.lat is None or not self.names or not n:
            return np.full(n, -1, dtype=int), np.full(n, np.nan)
        distance = _km(self.lat[None, :], self.lon[None, :], lat, lon)
        known = ~np.isnan(distance).any(axis=1)
        nearest = np.argmin(np.where(np.isnan(distance), np.inf, distance), axis=1)
        km = np.where(known, distance[np.arange(n), nearest], np.nan)
        return np.where(known & (km <= self.radius_km), nearest, -1), km

    def locate(self, rows: pd.DataFrame) -> np.ndarray:
        """(n,) index of the place of each model event (`_acled_rows` rows), -1 for elsewhere.

        Where the grid has bounds, by the coordinates the export writes (`latitude`,
        `longitude`: a site's own, else its cell's centre), with `at_coordinates`, as
        `place_observed` places an observed row: a run compared with its own export
        (`run.py export-acled`) then agrees place by place. Without bounds, an event at a site
        takes the site's place (`site_place`) and one at a cell the nearest place within
        `NEAR_SITE_CELLS` cells (`at_cells`).
        """
        if self.lat is not None:
            return self.at_coordinates(rows["latitude"], rows["longitude"])[0]
        found = self.at_cells(rows["_row"], rows["_col"])
        for k, site in enumerate(rows["_site"]):
            if isinstance(site, str):
                place = self.site_place.get(site)
                found[k] = -1 if place is None else place
        return found

    def at_name(self, name) -> int:
        """Index of the place whose site label or key is `name` (case, spaces, punctuation ignored), else -1."""
        if not isinstance(name, str) or not name.strip():
            return -1
        return self.by_name.get(_name_key(name), -1)


def build_places(scenario: Scenario, geo_or_maps, radius_km: float | None = None) -> Places:
    """The places of `scenario` (sites of a `PLACE_KINDS` kind, and other sites far from all of them) and the radius.

    Args:
        scenario: the run's scenario (`scenario.yaml` of the results directory): site kinds,
            lat/lon and the grid's bounds.
        geo_or_maps: a `Geography` or the `maps` of `load_run` (the sites' cells).
        radius_km: the matching radius, km (> 0); default `NEAR_SITE_CELLS` times the longer
            side of a cell.

    Raises:
        EventDataError: `radius_km` is given but the grid has no bounds (no km to measure),
            or it is not > 0.
    """
    names, labels, site_rows, site_cols = _site_table(geo_or_maps)
    kinds = [scenario.sites[n].kind if n in scenario.sites else "" for n in names]
    chosen = [i for i, k in enumerate(kinds) if k in PLACE_KINDS] or list(range(len(names)))
    places = _places(scenario, names, labels, site_rows, site_cols, chosen, radius_km)
    # A headquarters, post or venue with no locality within the radius is a place of its own
    # (syria_wide's Nubl and Al-Zahraa, Al-Sukhnah, the T4 base): its events, and the observed
    # events there, would otherwise be counted only under ELSEWHERE.
    site_lat, site_lon = _site_coordinates(scenario, names, site_rows, site_cols)

    def nearest(places: Places) -> np.ndarray:  # each site's nearest place, as its events find it (`Places.locate`)
        if places.lat is not None:
            return places.at_coordinates(site_lat, site_lon)[0]
        return places.at_cells(site_rows, site_cols)

    own = nearest(places)
    isolated = [i for i in range(len(names)) if i not in chosen and own[i] < 0]
    if isolated:
        chosen = sorted(chosen + isolated)
        places = _places(scenario, names, labels, site_rows, site_cols, chosen, radius_km)
        own = nearest(places)
    for i, name in enumerate(names):
        place = chosen.index(i) if i in chosen else (int(own[i]) if own[i] >= 0 else None)
        places.site_place[name] = place
    for i in sorted(range(len(names)), key=lambda i: i not in chosen):  # the places' own names first
        place = places.site_place[names[i]]
        for key in (_name_key(labels[i]), _name_key(names[i])):
            if place is not None and key:
                places.by_name.setdefault(key, place)
    return places


def _places(scenario: Scenario, names, labels, site_rows, site_cols, chosen: list[int], radius_km) -> Places:
    """The `Places` of the sites `chosen` (indices into names), without `site_place` and `by_name` yet."""
    bounds = scenario.grid.bounds
    cell_km = cell_size_km(scenario)
    if radius_km is not None and not 0 < radius_km <= MAX_MATCH_KM:
        raise EventDataError(f"--match-km must be > 0 and at most {MAX_MATCH_KM:,.0f} km, got {radius_km}")
    if cell_km is None:
        if radius_km is not None:
            raise EventDataError(
                f"scenario '{scenario.name}' has no grid.bounds: distances in km are unknown, so --match-km "
                "cannot be used (observed events are matched by name)"
            )
        rule = f"no grid bounds: model events within {NEAR_SITE_CELLS:g} grid cells of a place, observed ones by name"
        lat = lon = None
    else:
        if radius_km is None:
            radius_km = NEAR_SITE_CELLS * max(cell_km)
            longer = distance_text(max(cell_km))
            rule = f"default: {NEAR_SITE_CELLS:g} grid cells x {longer} (the longer side of a grid cell)"
        else:
            rule = "set with --match-km"
        site_lat, site_lon = _site_coordinates(scenario, names, site_rows, site_cols)
        lat, lon = site_lat[chosen], site_lon[chosen]
    return Places(
        names=[names[i] for i in chosen],
        labels=[labels[i] for i in chosen],
        rows=site_rows[chosen],
        cols=site_cols[chosen],
        lat=lat,
        lon=lon,
        cell_km=cell_km,
        radius_km=None if cell_km is None else float(radius_km),
        radius_rule=rule,
        bounds=None if bounds is None else (bounds.lat_min, bounds.lat_max, bounds.lon_min, bounds.lon_max),
    )


def place_model(rows: pd.DataFrame, places: Places) -> pd.DataFrame:
    """`_acled_rows` output with `place` (a label or `ELSEWHERE`) and `place_site` (site key or ""): `Places.locate`."""
    index = places.locate(rows).tolist()
    return rows.assign(
        place=[places.labels[i] if i >= 0 else ELSEWHERE for i in index],
        place_site=[places.names[i] if i >= 0 else "" for i in index],
    )


def place_observed(observed: pd.DataFrame, places: Places) -> pd.DataFrame:
    """Observed rows (`read_observed`) with the place each belongs to, and how it was found.

    Returns:
        `observed` plus `place` (a place label or `ELSEWHERE`), `place_site` (site key, "" for
        elsewhere), `matched_by` ("coordinates", "name" or "none"), `distance_km` (to the
        nearest place, NaN without coordinates or bounds) and `inside_grid` (the coordinates
        lie within the grid's bounds; NaN if unknown). Same rows, same order.
    """
    index, km = places.at_coordinates(observed["latitude"], observed["longitude"])
    has_xy = observed["latitude"].notna().to_numpy() & observed["longitude"].notna().to_numpy()
    use_xy = has_xy & (places.lat is not None)
    matched_by, final = [], []
    for i, name in enumerate(observed["location"]):
        if use_xy[i]:
            final.append(int(index[i]))
            matched_by.append("coordinates" if index[i] >= 0 else "none")
        else:
            j = places.at_name(name)
            final.append(j)
            matched_by.append("name" if j >= 0 else "none")
    inside = pd.array([pd.NA] * len(observed), dtype="boolean")
    if places.bounds is not None:
        lat_min, lat_max, lon_min, lon_max = places.bounds
        within = observed["latitude"].between(lat_min, lat_max) & observed["longitude"].between(lon_min, lon_max)
        inside[has_xy] = within.to_numpy()[has_xy]
    return observed.assign(
        place=[places.labels[i] if i >= 0 else ELSEWHERE for i in final],
        place_site=[places.names[i] if i >= 0 else "" for i in final],
        matched_by=matched_by,
        distance_km=np.round(km, 3),
        inside_grid=inside,
    )


# --------------------------------------------------------------------------- the observed file


def _bad_rows(path: Path, table: pd.DataFrame, bad: pd.Series, what: Callable[[int], str]) -> None:
    """Raise EventDataError naming the first bad row (1 = the first row under the header) and how many more."""
    if not bad.any():
        return
    i = int(np.flatnonzero(bad.to_numpy())[0])
    more = int(bad.sum()) - 1
    ident = table["event_id_cnty"].iloc[i] if "event_id_cnty" in table.columns else ""
    where = f"data row {i + 1}" + (f" ({ident})" if ident else "") + (f" and {more} more" if more else "")
    raise EventDataError(f"{path}: {where}: {what(i)}")


def _event_dates(text: pd.Series) -> pd.Series:
    """ACLED's event dates as datetimes: ISO (2019-11-01) or day month-name year (01 November 2019).

    Anything else (05/11/2019: day or month first?) is NaT, so it is refused rather than guessed.
    """
    text = text.astype("string").str.strip()
    iso = pd.to_datetime(text, errors="coerce", format="%Y-%m-%d")
    named = pd.to_datetime(text, errors="coerce", format="%d %B %Y")
    return iso.fillna(named)


def _acled_spelling(event_type: str) -> str:
    """ACLED's spelling of one of its event types written in another case or spacing; other types as given."""
    spaced = " ".join(event_type.split()).replace(" /", "/").replace("/ ", "/")  # "Explosions / Remote violence"
    return _CANONICAL_TYPES.get(spaced.casefold(), event_type)


_CANONICAL_TYPES = {name.casefold(): name for name in ACLED_EVENT_TYPES}


def read_observed(path: str | Path) -> pd.DataFrame:
    """Read an observed ACLED export: `event_date`, `event_type`, `fatalities` and where each event was.

    Every row needs a place: `latitude` and `longitude` (degrees), or a `location` name, or
    both. The file is read as UTF-8 (a byte-order mark is allowed); other columns are kept as text.

    Returns:
        The table with `event_date` as datetimes, `fatalities` as numbers (events' killed),
        `latitude`/`longitude` as numbers (NaN where empty or absent), `location` as text
        ("" where empty or absent), `event_type` stripped, with ACLED's own spelling where it is
        one of its six types written in another case or spacing (`ACLED_EVENT_TYPES`).

    Raises:
        EventDataError: one line naming the file and the problem: missing or unreadable file,
            not UTF-8, empty or header only, a missing column, an empty event type, a date,
            fatality count or coordinate that does not parse, or a row with neither
            coordinates nor location (the first bad row is named, with how many more there are).
    """
    from sim.yaml_source import not_a_regular_file

    path = Path(path)
    if (why_not := not_a_regular_file(path)) is not None:  # a directory, a loop...: said as what it is
        raise EventDataError(f"{path}: {why_not}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise EventDataError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise EventDataError(
            f"{path}: not UTF-8 text (byte {raw[error.start]:#04x} on line {line}); export or save it as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise EventDataError(f"{path}: empty file (no header, no events)")
    header = next(csv.reader(io.StringIO(text)), [])
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # pandas would rename the second 'event_type' to 'event_type.1' and read the first
        raise EventDataError(f"{path}: column(s) {', '.join(map(repr, repeated))} more than once in the header")
    try:
        with warnings.catch_warnings():
            # A row with more fields than the header: pandas took the first field as the row's
            # name and shifted the rest ("event_date 'Battles' is not a date"); with
            # index_col=False it drops the extra field with a ParserWarning, refused here.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.ParserWarning:
        raise EventDataError(
            f"{path}: a row has more fields than the header ({len(header)}); quote a field that holds a comma"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise EventDataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in OBSERVED_REQUIRED if c not in table.columns]
    if missing:
        raise EventDataError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(OBSERVED_REQUIRED)})")
    has_location = "location" in table.columns
    has_xy = "latitude" in table.columns and "longitude" in table.columns
    if not (has_location or has_xy):
        raise EventDataError(
            f"{path}: missing column(s) {', '.join(c for c in OBSERVED_PLACE if c not in table.columns)} "
            "(need location, or latitude and longitude, to place the events)"
        )
    if table.empty:
        raise EventDataError(f"{path}: no events (a header and no rows)")
    table = table.apply(lambda column: column.str.strip())
    _bad_rows(path, table, table["event_type"] == "", lambda i: "event_type is empty")
    table["event_type"] = table["event_type"].map(_acled_spelling)
    dates = _event_dates(table["event_date"])
    _bad_rows(
        path,
        table,
        dates.isna(),
        lambda i: f"event_date {table['event_date'].iloc[i]!r} is not a date as ACLED writes it "
        "(2019-11-01 or 01 November 2019; 05/11/2019 is ambiguous)",
    )
    fatalities = pd.to_numeric(table["fatalities"], errors="coerce")
    fatalities = fatalities.where(np.isfinite(fatalities) & (fatalities % 1 == 0))  # counts: whole and finite
    _bad_rows(
        path,
        table,
        fatalities.isna() | (fatalities < 0) | (fatalities > MAX_EVENT_FATALITIES),
        lambda i: f"fatalities {table['fatalities'].iloc[i]!r} is not a whole count in [0, {MAX_EVENT_FATALITIES:,}]",
    )
    location = table["location"] if has_location else pd.Series("", index=table.index)
    lat = lon = pd.Series(np.nan, index=table.index)
    if has_xy:
        for column, limit in (("latitude", 90), ("longitude", 180)):
            value = pd.to_numeric(table[column], errors="coerce")
            bad = (table[column] != "") & (value.isna() | (value.abs() > limit))
            _bad_rows(
                path,
                table,
                bad,
                lambda i, c=column, lim=limit: f"{c} {table[c].iloc[i]!r} is not a number of degrees in -{lim}..{lim}",
            )
        lat, lon = pd.to_numeric(table["latitude"], errors="coerce"), pd.to_numeric(table["longitude"], errors="coerce")
        _bad_rows(path, table, lat.isna() != lon.isna(), lambda i: "latitude and longitude go together")
    _bad_rows(
        path,
        table,
        lat.isna() & (location == ""),
        lambda i: "no coordinates (latitude, longitude) and no location: the event cannot be placed",
    )
    return table.assign(event_date=dates, fatalities=fatalities, latitude=lat, longitude=lon, location=location)


# --------------------------------------------------------------------------- monthly tables


def _months(first: pd.Timestamp, last: pd.Timestamp) -> pd.PeriodIndex:
    return pd.period_range(first.to_period("M"), last.to_period("M"), freq="M")


def _monthly(
    model: pd.DataFrame,
    observed: pd.DataFrame,
    keys: list[str],
    combos: list[tuple],
    start: str,
    steps: int,
    replicates,
    month_first: bool,
) -> pd.DataFrame:
    """Model band and observed totals per month and per value of `keys` (every combination in `combos`)."""
    t0 = pd.Timestamp(start)
    model_months = _months(t0, t0 + pd.Timedelta(days=steps))
    obs_months = (
        _months(observed["event_date"].min(), observed["event_date"].max())
        if len(observed)
        else pd.PeriodIndex([], freq="M")
    )
    months = model_months.union(obs_months).sort_values()
    replicates = sorted({int(r) for r in replicates})
    levels = ["month", *keys]
    if month_first:
        cells = [(m, *c) for m in months for c in combos]
    else:
        cells = [(m, *c) for c in combos for m in months]
    frame = pd.DataFrame(cells, columns=levels)

    quantities = ("count", "fatalities")
    if len(model_months) and replicates and combos:
        m = model.assign(month=pd.to_datetime(model["event_date"]).dt.to_period("M"))
        per_run = m.groupby([*levels, "replicate"]).agg(count=("event_date", "size"), fatalities=("fatalities", "sum"))
        full = pd.MultiIndex.from_tuples(
            [(mo, *c, r) for mo in model_months for c in combos for r in replicates], names=[*levels, "replicate"]
        )
        per_run = per_run.reindex(full, fill_value=0).astype(float)
        stats = {}
        for what in quantities:
            grouped = per_run[what].groupby(level=levels, sort=False)
            stats[f"model_{what}_median"] = grouped.median()
            stats[f"model_{what}_p5"] = grouped.quantile(BAND[0] / 100)
            stats[f"model_{what}_p95"] = grouped.quantile(BAND[1] / 100)
            stats[f"model_{what}_mean"] = grouped.mean()
        frame = frame.join(pd.DataFrame(stats).round(6), on=levels)  # 6 decimals: no float noise in the CSV
    else:
        for what in quantities:
            for suffix in ("median", "p5", "p95", "mean"):
                frame[f"model_{what}_{suffix}"] = np.nan

    o = observed.assign(month=observed["event_date"].dt.to_period("M"))
    obs = o.groupby(levels).agg(observed_count=("event_date", "size"), observed_fatalities=("fatalities", "sum"))
    frame = frame.join(obs.astype(float), on=levels)
    in_obs = frame["month"].isin(obs_months)
    for what in quantities:
        column = f"observed_{what}"
        frame[column] = frame[column].where(~in_obs | frame[column].notna(), 0.0).where(in_obs)

    frame.insert(1, "month_index", [(month - t0.to_period("M")).n for month in frame["month"]])
    frame.insert(2 + len(keys), "n_replicates", len(replicates))
    frame["month"] = frame["month"].astype(str)
    return frame.reset_index(drop=True)


def _event_types(model: pd.DataFrame, observed: pd.DataFrame) -> list[str]:
    found = set(model["event_type"]) | set(observed["event_type"].astype(str))
    return [*MODEL_EVENT_TYPES, *sorted(found - set(MODEL_EVENT_TYPES))]


def monthly_comparison(model: pd.DataFrame, observed: pd.DataFrame, start: str, steps: int, replicates) -> pd.DataFrame:
    """Per month and event type: model count and fatalities (median, 5-95%, mean over replicates), observed.

    Args:
        model: `to_acled` rows.
        observed: `read_observed` rows.
        start: the scenario's `start_date` (ISO).
        steps: days simulated.
        replicates: the replicate numbers of the run (a replicate without events counts 0).

    Returns:
        One row per month and event type (`MODEL_EVENT_TYPES` always, then any other type
        found), months in order: month (YYYY-MM), month_index (0 = the start month),
        event_type, n_replicates, model_count_{median,p5,p95,mean} (events per month),
        model_fatalities_{median,p5,p95,mean} (killed per month), observed_count,
        observed_fatalities. Model columns are empty for months not simulated, observed
        ones for months outside the observed file's first and last date. Means add up over
        event types and places; medians and percentiles do not.
    """
    observed = observed.assign(event_type=observed["event_type"].astype(str))
    combos = [(kind,) for kind in _event_types(model, observed)]
    return _monthly(model, observed, ["event_type"], combos, start, steps, replicates, month_first=True)


def monthly_comparison_by_place(
    model: pd.DataFrame, observed: pd.DataFrame, places: Places, start: str, steps: int, replicates
) -> pd.DataFrame:
    """Per event type, place and month: the columns of `monthly_comparison` for each place.

    Args:
        model: `to_acled` rows with a `place` column (`place_model`).
        observed: `read_observed` rows with a `place` column (`place_observed`).
        places: the places (`build_places`); every place and `ELSEWHERE` get rows, zero if empty.
        start: the scenario's `start_date` (ISO).
        steps: days simulated.
        replicates: the replicate numbers of the run (a replicate without events counts 0).

    Returns:
        One row per (event_type, place, month), in that order (places in the scenario's
        order, `ELSEWHERE` last): month, month_index, event_type, place, place_site (the
        site key, "" for elsewhere), n_replicates, model_{count,fatalities}_{median,p5,p95,mean},
        observed_count, observed_fatalities. Summed over places, counts, fatalities and
        model means equal those of `monthly_comparison` (nothing is dropped).
    """
    observed = observed.assign(event_type=observed["event_type"].astype(str))
    combos = [(kind, place) for kind in _event_types(model, observed) for place in places.all_labels]
    table = _monthly(model, observed, ["event_type", "place"], combos, start, steps, replicates, month_first=False)
    site_of = dict(zip(places.labels, places.names))
    table.insert(4, "place_site", [site_of.get(p, "") for p in table["place"]])
    return table


# --------------------------------------------------------------------------- plots


def _count_axis(ax) -> None:
    """A y axis of counts, after the panel is drawn: from 0, whole-number ticks, and at least up to 1.

    `MaxNLocator(integer=True)` falls back to fractions when fewer than two whole numbers are in
    view: a panel whose every value is 0 (matplotlib's range 0..0.055) was labelled 0.000, 0.006, ...
    """
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))


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
            _count_axis(ax)  # events and killed per month: whole numbers
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    return save_png(fig, path)


def plot_by_place(
    table: pd.DataFrame, path: Path, footer_text: str, event_type: str = "Battles", what: str = "count"
) -> Path:
    """Small multiples, one panel per place: monthly `event_type` events (or fatalities), model against observed.

    Args:
        table: `monthly_comparison_by_place` rows.
        path: the PNG to write.
        footer_text: the footer (`sim.figures.footer`).
        event_type: the ACLED event type drawn.
        what: "count" (events / month) or "fatalities" (killed / month).

    Returns:
        `path`.
    """
    from matplotlib.ticker import MaxNLocator

    from sim.figures import NEUTRAL_COLOUR, OKABE_ITO, new_figure, save_png

    unit = {"count": "events / month", "fatalities": "killed / month"}[what]
    part = table[table["event_type"] == event_type]
    places = list(dict.fromkeys(part["place"])) or [ELSEWHERE]
    ncols = min(3, len(places))
    nrows = -(-len(places) // ncols)
    noun = "events" if what == "count" else "fatalities"
    zero = part.loc[part["month_index"] == 0, "month"]
    xlabel = "months since the start" + (f" (0 = {zero.iloc[0]})" if len(zero) else "")
    fig = new_figure(
        3.6 * ncols + 0.4,
        1.2 + 2.3 * nrows,
        title=f"{event_type}: {noun} per month and place, model against observed",
        subtitle="line: model median over replicates; band: 5-95%; dots: observed file",
        footer=footer_text,
    )
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    for k, place in enumerate(places):
        ax = axes[k // ncols][k % ncols]
        rows = part[part["place"] == place]
        x = rows["month_index"].to_numpy()
        ax.fill_between(x, rows[f"model_{what}_p5"], rows[f"model_{what}_p95"], color=OKABE_ITO[1], alpha=0.25)
        ax.plot(x, rows[f"model_{what}_median"], color=OKABE_ITO[1], label="model median")
        ax.plot(x, rows[f"observed_{what}"], "o", color=NEUTRAL_COLOUR, markersize=4, label="observed", clip_on=False)
        ax.set_title(place if len(place) <= 40 else place[:39] + "…", fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _count_axis(ax)
        ax.tick_params(labelsize=8, labelbottom=True)
        if k == 0:
            ax.legend(fontsize=7)
    for k in range(len(places), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    return save_png(fig, path)


# --------------------------------------------------------------------------- commands


def _run_scenario(directory: Path) -> tuple[Scenario, dict, pd.DataFrame, dict]:
    from sim.results import load_run

    run = load_run(directory, tables=("events",))  # checked against its manifest (exit 2 if damaged)
    return run.config, run.manifest, run.events, run.maps


def export_acled(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write a results directory's events as ACLED rows (`to_acled`) to a new file, atomically.

    Args:
        results_dir: a results directory of `run.py run`.
        out: the CSV to write (default `RESULTS_DIR/acled_events.csv`); it must not exist.

    Returns:
        The path written.

    Raises:
        OutputError: `out` (or the default file) exists, checked before any work and again
            at the write; or `results_dir` is not a complete results directory (no such
            directory, a sweep's...: `sim.results.results_dir_problem`).
    """
    from sim.results import OutputError, atomic_create_text, check_path_length, probe_writable, results_dir_problem

    directory = Path(results_dir)
    if (problem := results_dir_problem(directory)) is not None:  # before its default output is probed
        raise OutputError(problem)
    path = Path(out) if out is not None else directory / "acled_events.csv"
    check_path_length(path)
    if path.exists() or path.is_symlink():
        raise OutputError(f"{path}: exists; results are never overwritten: remove it or choose another --out")
    probe_writable(path.parent)  # a place that cannot be written is refused before the work
    scenario, _, events, maps = _run_scenario(directory)
    atomic_create_text(path, to_acled(events, scenario, maps).to_csv(index=False))
    return path


@dataclass
class EventComparison:
    """What `compare_events` wrote and how the observed events were placed.

    Attributes:
        directory: the comparison directory.
        paths: the files written in it.
        n_observed: observed events (rows of the file).
        matched: observed events by how they were placed: "coordinates", "name", "none".
        n_outside_grid: observed events whose coordinates lie outside the grid's bounds.
        radius_km: the matching radius, km (None without grid bounds).
        period: one line when only some observed events fall in the simulated period, else None.
    """

    directory: Path
    paths: list[Path]
    n_observed: int
    matched: dict[str, int]
    n_outside_grid: int
    radius_km: float | None
    period: str | None = None

    def summary(self) -> str:
        """One line: how many observed events were placed by coordinates, by name, or nowhere."""
        radius = f"within {distance_text(self.radius_km)}" if self.radius_km is not None else "no grid bounds"
        return (
            f"observed events: {self.n_observed}; placed by coordinates ({radius}): {self.matched['coordinates']}, "
            f"by name: {self.matched['name']}, {ELSEWHERE} (no place matched): {self.matched['none']} "
            f"({self.n_outside_grid} outside the grid); see observed_places.csv"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compare_events(
    results_dir: str | Path,
    observed_path: str | Path,
    out: str | Path | None = None,
    *,
    match_km: float | None = None,
) -> EventComparison:
    """Compare a results directory's events with an observed ACLED export, per type and per place.

    Args:
        results_dir: a results directory of `run.py run`.
        observed_path: the observed CSV in ACLED's layout (`read_observed`).
        out: the comparison directory; it must not exist or be empty. Default: a new
            `results_dir/events-<UTC timestamp>[-N]`, so an earlier comparison is never replaced.
        match_km: the radius within which an event belongs to a place, km (default: see
            `build_places`).

    Returns:
        The directory, the files written (see the module) and the matching counts. The
        directory appears whole or not at all (written in a staging directory, then renamed).

    Raises:
        EventDataError: the observed file cannot be used (also: none of its events falls in the
            simulated period), or `match_km` cannot be.
        OutputError: `out` exists and is not empty (checked before any work), or
            `results_dir` is not a complete results directory (no such directory, a sweep's...:
            `sim.results.results_dir_problem`).
    """
    from sim.results import OutputError, claim_output_dir, results_dir_problem

    directory = Path(results_dir)
    # Before the claim, which would create the default's parent (or a directory in a sweep's).
    if (problem := results_dir_problem(directory)) is not None:
        raise OutputError(problem)
    # Claimed (writable, not in use, empty) before any work, held until the files are in place.
    with claim_output_dir(Path(out) if out is not None else None, parent=directory, kind="events") as claim:
        return _compare_claimed(directory, observed_path, claim.directory, match_km)


def _compare_claimed(directory: Path, observed_path, final: Path, match_km: float | None) -> EventComparison:
    from sim.figures import Provenance
    from sim.results import display_path, git_commit, versions, write_staged

    observed_path = Path(observed_path)
    observed = read_observed(observed_path)  # refuse bad input before any work
    scenario, manifest, events, maps = _run_scenario(directory)
    steps = int(manifest.get("steps", scenario.steps))
    period = _period_overlap(observed_path, observed, directory, scenario.start_date, steps)
    places = build_places(scenario, maps, match_km)
    model = place_model(_acled_rows(events, scenario, maps), places)
    observed = place_observed(observed, places)
    replicates = [r["replicate"] for r in manifest.get("replicates", [])] or sorted(set(model["replicate"]))
    by_type = monthly_comparison(model, observed, scenario.start_date, steps, replicates)
    by_place = monthly_comparison_by_place(model, observed, places, scenario.start_date, steps, replicates)

    matched = {how: int((observed["matched_by"] == how).sum()) for how in ("coordinates", "name", "none")}
    n_outside = int(observed["inside_grid"].eq(False).sum())  # NA (no coordinates or bounds) is not counted
    radius = "places by grid cell or name"
    if places.radius_km is not None:
        radius = f"places within {distance_text(places.radius_km)}"
    # The model's provenance is the run's (its manifest: the code that made the events).
    provenance = Provenance.from_manifest(manifest, scenario=scenario.name, steps=steps, replicates=len(replicates))
    text = provenance.footer(
        f"day 0 = {scenario.start_date}",
        f"model {directory.name}/events.csv",
        f"observed {observed_path.name}",
        radius,
    )
    record = {
        "results_dir": display_path(str(directory)),
        "observed_file": display_path(str(observed_path)),
        "observed_sha256": _sha256(observed_path),
        "n_observed": len(observed),
        "scenario": scenario.name,
        "start_date": scenario.start_date,
        "steps": steps,
        "replicates": len(replicates),
        "root_seed": manifest.get("root_seed"),
        "band_percentiles": list(BAND),
        "matching": {
            # 6 significant digits, not 3 decimals: a --match-km of 0.0004 was recorded as 0.0
            "radius_km": None if places.radius_km is None else float(f"{places.radius_km:.6g}"),
            "radius_rule": places.radius_rule,
            "place_kinds": list(PLACE_KINDS),
            "observed_placed_by": matched,
            "observed_outside_grid": n_outside,
        },
        "places": [
            {
                "site": name,
                "label": label,
                "row": int(places.rows[i]),
                "col": int(places.cols[i]),
                "lat": None if places.lat is None else round(float(places.lat[i]), 5),
                "lon": None if places.lon is None else round(float(places.lon[i]), 5),
            }
            for i, (name, label) in enumerate(zip(places.names, places.labels))
        ],
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "versions": versions(),
    }
    observed_out = observed.assign(
        data_row=np.arange(1, len(observed) + 1), event_date=observed["event_date"].dt.strftime("%Y-%m-%d")
    )
    first = ["data_row", "event_id_cnty", "event_date", "event_type", "location", "latitude", "longitude"]
    first = [c for c in first if c in observed_out.columns]
    last = ["fatalities", "place", "place_site", "matched_by", "distance_km", "inside_grid"]
    observed_out = observed_out[first + last]
    names = [
        "comparison.csv",
        "comparison_by_place.csv",
        "observed_places.csv",
        "compare_events.json",
        "plots/compare_events.png",
        "plots/battles_by_place.png",
        "plots/battle_fatalities_by_place.png",
    ]

    def fill(stage: Path) -> None:
        from sim.results import atomic_write_text

        for name, table in (
            ("comparison.csv", by_type),
            ("comparison_by_place.csv", by_place),
            ("observed_places.csv", observed_out),
        ):
            atomic_write_text(stage / name, table.to_csv(index=False))
        atomic_write_text(stage / "compare_events.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        plot_comparison(by_type, stage / "plots" / "compare_events.png", text)
        plot_by_place(by_place, stage / "plots" / "battles_by_place.png", text, "Battles", "count")
        plot_by_place(by_place, stage / "plots" / "battle_fatalities_by_place.png", text, "Battles", "fatalities")

    final = write_staged(final, fill)
    return EventComparison(
        directory=final,
        paths=[final / name for name in names],
        n_observed=len(observed),
        matched=matched,
        n_outside_grid=n_outside,
        radius_km=places.radius_km,
        period=period,
    )


def _period_overlap(observed_path: Path, observed: pd.DataFrame, directory: Path, start: str, steps: int) -> str | None:
    """None if every observed event falls in the simulated days, else one line saying how many do.

    The tables cover every month of either period (model columns empty outside the run's,
    observed ones outside the file's); a partial overlap is compared as it is, and said.

    Raises:
        EventDataError: no observed event falls in the simulated period (start to start +
            steps days): every row of the tables would compare one side with nothing.
    """
    first_day = pd.Timestamp(start)
    last_day = first_day + pd.Timedelta(days=steps)
    dates = observed["event_date"]
    first, last = dates.min(), dates.max()
    inside = int(dates.between(first_day, last_day).sum())
    simulated = f"{first_day:%Y-%m-%d} to {last_day:%Y-%m-%d}"
    seen = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    if inside == 0:
        raise EventDataError(
            f"{observed_path}: its events ({seen}) and the simulated period of {directory} ({simulated}) "
            "do not overlap: set the scenario's start_date within the observed period, or give the matching file"
        )
    if inside == len(observed):
        return None
    return (
        f"periods overlap in part: {inside} of {len(observed)} observed events ({seen}) fall in the simulated "
        f"period ({simulated}); months outside it have no model values"
    )
