"""The scenario schema: every key a scenario may hold, with its type, range, unit and meaning.

This is the single place where parameters are declared. Validation (`sim.scenario`), the
ODD parameter tables (`docs/ODD.md`) and the browser explorer's controls all read it, so a
default, a range or a help text is written once.

Units: one model step is one day. Money is in US dollars: salaries per month, funding and
revenue per day. Distances on the grid are in cells (the grid's `cell_km` says how many km).

Where a default comes from the source article, the scenario file cites the paragraph in its
`provenance:` section; every other value is an assumption and is marked so there.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

# ---------------------------------------------------------------------------------------
# Building blocks


class Strict(BaseModel):
    """Base for every section: unknown keys refused, no NaN/inf, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


def param(default, *, unit: str = "", help: str, ge=None, le=None, gt=None, lt=None, **kw):
    """A scalar parameter: default, bounds, unit and one-line help (shown in docs and the UI)."""
    return Field(
        default,
        ge=ge,
        le=le,
        gt=gt,
        lt=lt,
        description=help,
        json_schema_extra={"unit": unit},
        **kw,
    )


def probability(default: float, help: str, unit: str = "probability"):
    """A parameter in [0, 1] (a probability, share or rate per day)."""
    return param(default, ge=0.0, le=1.0, unit=unit, help=help)


# Physical ceilings shared by many fields. Every number a scenario holds has a finite lower and
# upper bound (tests/test_limits.py walks the schema), chosen so that a validated scenario
# runs: money and counts stay finite over the longest run, Poisson means stay small, and
# exp/logit terms cannot overflow. Each is far above any value the source or a plausible
# variant needs; a value beyond one is a typo, not a scenario.
# The calendar of `start_date`: 1900 to 2199, any date a study of the region needs, within the
# dates pandas can hold (1677 to 2262: event tables, sim.acled). A start near the end also
# limits the steps: the run's last day must be on or before LAST_EVENT_DATE.
FIRST_START = "1900-01-01"
LAST_START = "2199-12-31"
LAST_EVENT_DATE = date(2262, 4, 11)  # pandas.Timestamp.max, to the day
MAX_POPULATION = 10_000_000  # people in one town: above the largest city of the region
MAX_FIGHTERS = 1_000_000  # fighters of one faction: above any armed force of the region
MAX_USD_DAY = 1e9  # USD/day of one flow (funding, revenue, patronage): above a state's military budget
MAX_USD = 1e12  # USD of one stock (cash, reserve, cost): 1e9/day for 1,000 days
MAX_DAYS = 3650  # days of a memory, half-life or recovery: ten years
MAX_CELLS_INDEX = 399  # grid row or column: grid.width and grid.height are at most 400
MAX_TENSION = 1000.0  # tension index: clash chance saturates at a few tension_scale
MAX_LOG_ODDS = 50.0  # log-odds weight: expit(50) is already 1 - 2e-22
MAX_INFLUENCE = 1e6  # fighter-equivalents: as many as MAX_FIGHTERS
MAX_WEIGHT = 1000.0  # a relative (multiplier) weight
MAX_FACTIONS = 200  # factions in one scenario (every pair has a tension and a defection column)
MAX_SITES = 2000  # named sites (each keeps a path-distance layer over the grid)
MAX_TRIBES = 1000  # tribes (each has an alignment over the factions)
MAX_LIST = 10_000  # points of a polyline or polygon, cell overrides
# Every numeric parameter lies within +/- this (sweep values, calibration priors, pattern bounds).
MAX_ABS_VALUE = 1e12
AnyValue = Annotated[float, Field(ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]
# Runs of one design (sweep, calibration, robustness) unless its `max_runs` says otherwise: a
# million baseline runs take about two CPU-months. A larger design is refused at validation
# (`sim.limits.design_problem`) until max_runs is raised on purpose.
DEFAULT_MAX_RUNS = 1_000_000
MAX_RUNS_CEILING = 10**12


def max_runs_param(section: str):
    """The `max_runs` cap of a design section (sweep, calibration, robustness)."""
    return param(
        DEFAULT_MAX_RUNS,
        ge=1,
        le=MAX_RUNS_CEILING,
        unit="runs",
        help=f"largest design accepted; a {section} with more runs is refused until this is raised on purpose",
    )

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", max_length=64)]
# Folders of results/ that are not a scenario's (a scenario's results go to results/<name>/).
RESERVED_SCENARIO_NAMES = {"compare": "comparisons (run.py compare)", "gallery": "the README's figures"}


def _coordinates_in_range(point: Any) -> Any:
    """A [lat, lon] point whose numbers are each in their own range, or ValueError naming which is not.

    Runs before the items' own checks, which only know the wider range of the two: a
    latitude of 200 was refused as 'less than or equal to 180'. Anything but two finite
    numbers is left to those checks, which say what is wrong with it.
    """
    if not isinstance(point, list) or len(point) != 2:
        return point
    wrong = []
    for value, name, limit in ((point[0], "latitude", 90), (point[1], "longitude", 180)):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and math.isfinite(value) and not -limit <= value <= limit:
            shown = repr(value) if len(repr(value)) <= 30 else repr(value)[:29] + "…"
            wrong.append(f"{name} must be between -{limit} and {limit} degrees (got {shown})")
    if wrong:
        raise ValueError("; ".join(wrong))
    return point


# [lat, lon] in degrees: latitude within +/-90, longitude within +/-180, each refused with its
# own range (`_coordinates_in_range`); the items' bound of +/-180 is what the JSON schema shows.
LatLon = Annotated[
    list[Annotated[float, Field(ge=-180, le=180)]],
    Field(min_length=2, max_length=2),
    BeforeValidator(_coordinates_in_range),
]
# timeseries.csv's `control.<site>` columns hold the name of the faction holding the site or
# one of these words (sim.recording); a faction so named could not be told from them, and
# its `territory.<faction>` column would be `territory.contested`'s. Any other identifier
# round-trips through the result files exactly (sim.results reads `NA`, `None`, `null` as text).
CONTROL_WORDS = ("contested", "none")
Terrain = Literal["urban", "rural", "river", "desert", "impassable", "outside"]
TERRAINS: tuple[str, ...] = ("urban", "rural", "river", "desert", "impassable", "outside")
SiteKind = Literal["town", "crossing", "oil_field", "headquarters", "venue", "post"]


# ---------------------------------------------------------------------------------------
# Space


BETWEEN_KEYS = "between_keys"  # the error type of a rule between keys of one section (`between_keys`)


def between_keys(keys: tuple[str, ...], message: str, *, section: bool = False) -> PydanticCustomError:
    """The error of a rule between keys of one section, raised by a validator of one of them or of the section.

    `keys` (in the error's `ctx`) names the keys the rule involves: siblings of the key the
    error is reported at (a field validator's), or with `section` keys of the section it is
    reported at (a model validator's, e.g. `Site`'s lat/lon or row/col). `message` shows
    their values, so no '(got ...)' is added to it (`sim.scenario.validation_problems`),
    and a key of the rule given by `--set` takes the blame (`sim.scenario`).
    """
    text = message.replace("{", "{{").replace("}", "}}")
    return PydanticCustomError(BETWEEN_KEYS, text, {"keys": keys, "section": section})


def unique_names(names: list[str], what: str) -> list[str]:
    """`names` unchanged if no name is listed twice; ValueError naming the repeats otherwise.

    Each name becomes a column of a result table (outcomes.csv, patterns.csv), and a table
    with a repeated column can be neither read back nor resumed.
    """
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique: {', '.join(repeated)} listed more than once")
    return names


MIN_BOUNDS_SPAN_DEG = 0.001  # about 110 m: a grid narrower than this is a typing error, and it keeps projections finite


def _shown_below(value: float, limit: float) -> str:
    """`value` (below `limit`) with the fewest significant digits (3 to 17) that still read as below it.

    `f"{0.0009999999:.3g}"` is '0.001', which reads as the limit itself; this gives
    '0.0009999999'. A value not below the limit is shown with 3 digits.
    """
    for digits in range(3, 18):
        text = f"{value:.{digits}g}"
        if float(text) < limit:
            return text
    return f"{value:.3g}"


class Bounds(Strict):
    """Geographic extent of the grid (degrees); sites given by lat/lon are projected onto it.

    Each side spans at least `MIN_BOUNDS_SPAN_DEG` (0.001 degrees, about 110 m): across a
    narrower grid a river point or a site on the other side of the globe would lie 10^11 and
    more cells away. Each axis is checked on its own, at its `_max` key, so a problem with
    both is reported as two (`BETWEEN_KEYS`).
    """

    lat_min: float = param(..., ge=-90, le=90, unit="degrees N", help="southern edge of the grid")
    lat_max: float = param(..., ge=-90, le=90, unit="degrees N", help="northern edge of the grid")
    lon_min: float = param(..., ge=-180, le=180, unit="degrees E", help="western edge of the grid")
    lon_max: float = param(..., ge=-180, le=180, unit="degrees E", help="eastern edge of the grid")

    @field_validator("lat_max", "lon_max")
    @classmethod
    def _above_min(cls, high: float, info: ValidationInfo) -> float:
        axis = info.field_name.removesuffix("_max")
        low = info.data.get(f"{axis}_min")
        if low is None:  # missing or refused itself: reported as such
            return high
        keys = (f"{axis}_min", f"{axis}_max")
        if low >= high:
            raise between_keys(keys, f"{axis}_min ({low!r}) must be below {axis}_max ({high!r})")
        span = high - low
        if span < MIN_BOUNDS_SPAN_DEG * (1 - 1e-9):  # 40.001 - 40.0 is 0.000999999999999 in floating point
            least = f"at least {MIN_BOUNDS_SPAN_DEG} degrees (about 110 m)"
            got = f"{_shown_below(span, MIN_BOUNDS_SPAN_DEG)} ({high!r} - {low!r})"
            raise between_keys(keys, f"{axis}_max - {axis}_min must be {least}; got {got}")
        return high


class River(Strict):
    """The river as a polyline of [lat, lon] points, with a cultivated (rural) band on each side."""

    path: list[LatLon] = Field(..., min_length=2, max_length=MAX_LIST, description="polyline of [lat, lon] points")
    label: str | None = Field(
        None, min_length=1, max_length=80, description="the river's name in map legends, e.g. Euphrates"
    )
    band_cells: int = param(2, ge=0, le=20, unit="cells", help="width of the cultivated (rural) band on each side")


class CellOverride(Strict):
    """The terrain of one cell, set explicitly (applied last)."""

    row: int = param(..., ge=0, le=MAX_CELLS_INDEX, help="grid row (0 = north edge)")
    col: int = param(..., ge=0, le=MAX_CELLS_INDEX, help="grid column (0 = west edge)")
    terrain: Terrain


class Grid(Strict):
    """The grid of cells (ODD §2): size, extent, default terrain, river, outside areas, overrides."""

    width: int = param(48, ge=2, le=400, unit="cells", help="number of columns")
    height: int = param(40, ge=2, le=400, unit="cells", help="number of rows")
    bounds: Bounds | None = Field(None, description="geographic extent; needed to place sites by lat/lon")
    default_terrain: Terrain = "desert"
    river: River | None = None
    outside: list[Annotated[list[LatLon], Field(max_length=MAX_LIST)]] = Field(
        default_factory=list, max_length=1000, description="polygons of [lat, lon] outside the modelled area"
    )
    cells: list[CellOverride] = Field(
        default_factory=list, max_length=MAX_LIST, description="explicit terrain of single cells"
    )


# ---------------------------------------------------------------------------------------
# Actors


class Site(Strict):
    """A named place on the grid: town, crossing, oil field, headquarters, venue or post."""

    label: str = Field(..., min_length=1, max_length=80)
    kind: SiteKind
    lat: float | None = param(None, ge=-90, le=90, unit="degrees N", help="latitude (or give row/col)")
    lon: float | None = param(None, ge=-180, le=180, unit="degrees E", help="longitude (or give row/col)")
    row: int | None = param(None, ge=0, le=MAX_CELLS_INDEX, help="grid row, instead of lat/lon")
    col: int | None = param(None, ge=0, le=MAX_CELLS_INDEX, help="grid column, instead of lat/lon")
    population: int = param(
        0, ge=0, le=MAX_POPULATION, unit="people", help="residents (towns); sets the recruit pool"
    )
    tribes: list[Identifier] = Field(default_factory=list, description="tribes living here")
    crossing: Literal["border", "river"] | None = Field(None, description="crossing type (kind: crossing)")
    revenue_usd_day: float = param(
        0.0, ge=0, le=MAX_USD_DAY, unit="USD/day", help="income to whoever controls the site"
    )
    value: float = param(1.0, ge=0, le=100, unit="weight", help="strategic weight for deployment and tension")
    owner: Identifier | None = Field(None, description="faction whose headquarters this is (adds it to the faction's)")
    initial_control: Identifier | None = Field(None, description="faction holding the site at step 0")
    theatre: Identifier | None = Field(
        None, description="theatre the site belongs to (`theatres`); a theatre's militias post only to its sites"
    )

    @model_validator(mode="after")
    def _placed_once(self):
        by_latlon = self.lat is not None or self.lon is not None
        by_cell = self.row is not None or self.col is not None
        place = ("lat", "lon", "row", "col")
        if by_latlon and by_cell:
            raise between_keys(place, "give either lat/lon or row/col, not both", section=True)
        if by_latlon and (self.lat is None or self.lon is None):
            raise between_keys(("lat", "lon"), "lat and lon go together", section=True)
        if by_cell and (self.row is None or self.col is None):
            raise between_keys(("row", "col"), "row and col go together", section=True)
        if not (by_latlon or by_cell):
            raise between_keys(place, "a site needs lat/lon or row/col", section=True)
        if self.kind == "crossing" and self.crossing is None:
            message = "a crossing needs `crossing: border` or `crossing: river`"
            raise between_keys(("kind", "crossing"), message, section=True)
        return self


class Tribe(Strict):
    """A tribe and its leader: seat, initial alignment over factions and responsiveness."""

    label: str = Field(..., min_length=1, max_length=80)
    seat: Identifier = Field(..., description="town where the tribe's leader sits")
    initial_alignment: dict[Identifier, Annotated[float, Field(ge=0, le=MAX_WEIGHT)]] = Field(
        default_factory=dict, description="leader's initial weights over factions (normalised)"
    )
    responsiveness: float = probability(
        0.02, "rate at which the leader's alignment follows the factions' pulls (tribal_politics)", unit="1/day"
    )

    @model_validator(mode="after")
    def _weights(self):
        for name, weight in self.initial_alignment.items():
            if not (weight >= 0 and math.isfinite(weight)):
                raise ValueError(f"alignment weight for {name} must be >= 0")
        return self


class Spending(Strict):
    """A faction's spending strategy beyond salaries: patronage and the reserve kept back."""

    courting_usd_day: float = param(
        0.0, ge=0, le=MAX_USD_DAY, unit="USD/day", help="patronage paid to tribal leaders"
    )
    courted_tribes: list[Identifier] = Field(default_factory=list, description="tribes it courts; empty = all tribes")
    reserve_usd: float = param(
        0.0, ge=0, le=MAX_USD, unit="USD", help="budget kept back before opening headquarters"
    )


class Faction(Strict):
    """An armed faction (a militia, or the one insurgent faction): pay, posture, forces, budget, bases."""

    label: str = Field(..., min_length=1, max_length=80)
    kind: Literal["militia", "insurgent"] = "militia"
    patron: Identifier | None = None
    salary_usd_month: float = param(0.0, ge=0, le=100_000, unit="USD/month", help="salary per fighter")
    privileges: float = param(0.0, ge=0, le=1, unit="index 0-1", help="non-salary benefits of membership")
    exempts_conscription: StrictBool = Field(False, description="membership exempts from compulsory service")
    posture: float = probability(0.5, "readiness to escalate", unit="index 0-1")
    initial_fighters: int = param(
        0,
        ge=0,
        le=MAX_FIGHTERS,
        unit="fighters",
        help="fighters drawn from the local pool at step 0 (insurgents: initial insurgent cells)",
    )
    initial_outsiders: int = param(
        0,
        ge=0,
        le=MAX_FIGHTERS,
        unit="fighters",
        help="fighters from outside the local pool at step 0 (e.g. non-local militias)",
    )
    initial_budget_usd: float = param(0.0, ge=0, le=MAX_USD, unit="USD", help="cash at step 0")
    headquarters: list[Identifier] = Field(default_factory=list, description="its headquarters sites")
    recruits_from_tribes: list[Identifier] = Field(
        default_factory=list, description="tribes its initial fighters come from; empty = any"
    )
    deployment_weights: dict[Identifier, Annotated[float, Field(ge=0, le=MAX_WEIGHT)]] = Field(
        default_factory=dict, description="multiplier on the weight of posting fighters to these sites (default 1)"
    )
    spending: Spending = Field(default_factory=Spending)
    theatre: Identifier | None = Field(
        None, description="theatre it fights in (`theatres`); none = not part of any theatre (no spill-over)"
    )
    organisation: Identifier | None = Field(
        None,
        description="the armed organisation it is a branch of, the same in every theatre (default: its own name); "
        "tension spills over between pairs of the same two organisations (rules.spillover)",
    )


class Patron(Strict):
    """An outside backer: funding, arms and their supply route, and whether it gives a green light."""

    label: str = Field(..., min_length=1, max_length=80)
    funding_usd_day: float = param(
        0.0, ge=0, le=MAX_USD_DAY, unit="USD/day", help="money sent to each client faction"
    )
    supply_crossing: Identifier | None = Field(None, description="border crossing its arms come through")
    supply_open: StrictBool = Field(True, description="whether the supply route is open")
    arms_multiplier: float = param(1.3, ge=1, le=5, unit="x", help="combat strength multiplier while arms flow")
    supply_funding_share: float = probability(
        0.3, "share of funding that travels the supply route (lost when it is closed)", unit="share"
    )
    green_light: StrictBool = Field(False, description="patron encourages its client to escalate")
    topup_per_loss: float = param(
        0.0,
        ge=0,
        le=100,
        unit="x per share lost",
        help="extra funding, as a multiple of funding_usd_day, per share of its client's day-0 fighters lost",
    )
    topup_max_share: float = param(
        0.0, ge=0, le=10, unit="x", help="ceiling on the extra funding, as a multiple of funding_usd_day"
    )
    shared_funding: StrictBool = Field(
        False,
        description="funding_usd_day is the patron's total, split among its client militias in all theatres "
        "(rules.spillover.pressure_weight shifts it toward the most tense); false: each client gets funding_usd_day",
    )


class PatronAlignment(Strict):
    """How far two patrons share aims (-1 opposed, +1 the same)."""

    between: list[Identifier] = Field(..., min_length=2, max_length=2)
    value: float = param(0.0, ge=-1, le=1, unit="index -1..1", help="-1 opposed aims, +1 same aims")


class Theatre(Strict):
    """A theatre of the rivalry: a region where branches of the same organisations face each other.

    Sites and factions name theatres in their `theatre:` (`sim.processes.spillover`).
    """

    label: str = Field(..., min_length=1, max_length=80, description="display name")


class Route(Strict):
    """A road between theatres, as a polyline of [lat, lon] points: drawn on the theatre map, read by no rule."""

    label: str = Field(..., min_length=1, max_length=80, description="display name")
    path: list[LatLon] = Field(..., min_length=2, max_length=MAX_LIST, description="polyline of [lat, lon] points")


# ---------------------------------------------------------------------------------------
# Rules


class EconomyRules(Strict):
    """Rules of the economy and looting (ODD §7.2, §7.8; `sim.processes.economy`)."""

    contested_revenue_share: float = probability(
        0.0, "share of a contested site's revenue that still reaches the stronger side", unit="share"
    )
    looting_usd: float = param(500.0, ge=0, le=MAX_USD_DAY, unit="USD", help="taken per looting incident")
    p_looting: float = probability(
        0.02, "daily chance of looting, per hostile pair and site where both have a foothold", unit="1/day"
    )
    pay_memory_days: float = param(
        30.0, ge=1, le=3650, unit="days", help="recruits judge pay by roughly this many days of payments (smoothing)"
    )


class TribalRules(Strict):
    """Rules of tribal politics (ODD §7.3; `sim.processes.tribal_politics`)."""

    weight_payments: float = param(
        1.0, ge=0, le=100, unit="per 1000 USD/day", help="pull of patronage on alignment"
    )
    weight_control: float = param(1.0, ge=0, le=100, unit="per share", help="pull of controlling the tribe's towns")
    weight_casualties: float = param(
        1.0,
        ge=0,
        le=100,
        unit="per % of the tribe's men killed",
        help="push of casualties a faction inflicts, per percent of the tribe's men (its recruit pool) killed",
    )
    casualty_memory_days: float = param(
        60.0, gt=0, le=MAX_DAYS, unit="days", help="how long inflicted casualties are remembered"
    )
    weight_presence: float = param(
        1.0, ge=0, le=100, unit="per share", help="pull of a faction's share of the influence in the tribe's towns"
    )
    anchor_per_day: float = probability(
        0.02,
        "share of the gap back to the leader's initial alignment closed per day (tribal ties are sticky)",
        unit="1/day",
    )


class RecruitmentRules(Strict):
    """Rules of recruitment, defection and desertion (ODD §5, §7.4; `sim.processes.recruitment`)."""

    p_reconsider: float = probability(0.005, "share of recruits reconsidering each day", unit="1/day")
    pool_share: float = probability(0.04, "share of a town's population who would bear arms", unit="share")
    p_liable: float = probability(0.6, "share of the pool subject to conscription", unit="share")
    beta_salary: float = param(2.0, ge=0, le=50, unit="utility per log-USD", help="weight of (log) pay")
    beta_privileges: float = param(1.0, ge=0, le=50, unit="utility per index", help="weight of privileges")
    beta_exemption: float = param(1.5, ge=0, le=50, unit="utility", help="value of exemption for the liable")
    beta_alignment: float = param(2.0, ge=0, le=50, unit="utility per weight", help="pull of the tribal leader")
    beta_risk: float = param(
        10.0,
        ge=0,
        le=1000,
        unit="utility per annual death risk",
        help="fear of dying: weight of a militia's annual death risk",
    )
    nest_scale: float = param(
        0.5,
        gt=0.05,
        le=1,
        unit="index 0-1",
        help="nested logit scale of the 'fight' nest: below 1, militias are closer substitutes than civilian life",
    )
    civilian_attachment: float = param(
        0.0, ge=-20, le=20, unit="utility", help="value of civilian life beyond its income (family, land, safety)"
    )
    switching_cost: float = param(2.5, ge=0, le=50, unit="utility", help="cost of changing militia")
    loyalty_per_year: float = param(1.0, ge=0, le=50, unit="utility/year", help="switching cost added by tenure")
    civilian_income_usd_month: float = param(
        60.0, gt=0, le=100_000, unit="USD/month", help="income outside a militia"
    )
    presence_threshold: float = param(
        0.5,
        ge=0,
        le=MAX_INFLUENCE,
        unit="fighter-equivalents",
        help="influence needed near home for a militia to be an option",
    )
    initial_placement_cells: float = param(
        10.0,
        gt=0,
        le=1000,
        unit="cells",
        help="length scale L of the weight exp(-d/L) by which initial fighters come from towns near headquarters",
    )
    risk_memory_days: float = param(
        30.0, ge=1, le=3650, unit="days", help="memory of a militia's death rate (a moving average, so at least 1 day)"
    )
    hiring_runway_days: float = param(
        30.0,
        ge=0,
        le=3650,
        unit="days",
        help="graded hiring: a militia whose income does not cover its wage bill takes the share "
        "min(1, cash runway / this many days) of its applicants",
    )


class DeploymentRules(Strict):
    """Rules of deployment and new headquarters (ODD §7.5; `sim.processes.deployment`)."""

    p_redeploy: float = probability(0.05, "share of fighters reposted each day", unit="1/day")
    weight_bases: float = param(
        3.0,
        ge=0,
        le=1000,
        unit="x",
        help="posting weight multiplier of own bases (headquarters and the sites held on day 0)",
    )
    weight_contested: float = param(
        2.0, ge=0, le=MAX_WEIGHT, unit="x", help="extra posting weight where control is contested"
    )
    new_hq_cost_usd: float = param(40_000.0, ge=0, le=MAX_USD, unit="USD", help="cost of opening a headquarters")
    max_new_headquarters: int = param(3, ge=0, le=100, unit="headquarters", help="new headquarters a faction may open")
    hq_influence: float = param(
        20.0, ge=0, le=MAX_INFLUENCE, unit="fighter-equivalents", help="influence a headquarters projects"
    )
    min_share_for_new_hq: float = probability(0.3, "influence share a site needs for a new headquarters", unit="share")
    enemy_core_weight: float = probability(
        0.2, "posting weight multiplier of a site a hostile faction holds where this one has no foothold", unit="x"
    )
    enemy_core_share: float = probability(
        0.05, "influence share below which a faction has no foothold at an enemy-held site", unit="share"
    )
    post_scatter_cells: int = param(
        1, ge=0, le=10, unit="cells", help="fighters are posted up to this many cells from their site (passable ground)"
    )
    reach_cells: float = param(
        10.0,
        gt=0,
        le=1000,
        unit="cells",
        help="length scale L of the posting weight exp(-d/L), d the path distance from the faction's nearest base",
    )
    speed_cells_per_day: float = param(
        8.0, gt=0, le=1000, unit="cells/day", help="how far a redeployed fighter travels per day over passable ground"
    )


class InfluenceRules(Strict):
    """Rules of influence and control (ODD §7.6; `sim.processes.influence`)."""

    sigma_cells: float = param(1.5, gt=0, le=50, unit="cells", help="spread of influence around fighters")
    persistence: float = probability(0.9, "share of yesterday's influence kept", unit="share/day")
    control_threshold: float = param(
        0.6, ge=0.5, le=1, unit="share", help="share of influence needed to control a cell"
    )
    min_influence: float = param(
        0.5, ge=0, le=MAX_INFLUENCE, unit="fighter-equivalents", help="below this a cell is nobody's"
    )
    foothold_share: float = param(
        0.25,
        gt=0,
        le=1,
        unit="share",
        help="share of a cell's influence that gives a faction a foothold (contested ground, looting, partitions)",
    )
    kernel_truncation: float = param(
        3.0, gt=0, le=10, unit="sigmas", help="the influence kernel is cut off this many sigma_cells from a fighter"
    )


class TensionRules(Strict):
    """Rules of tension between hostile militias (ODD §7.7-§7.9; `sim.processes.conflict`)."""

    decay_per_day: float = probability(0.03, "share of tension lost per day", unit="1/day")
    gain_contested: float = param(
        0.002,
        ge=0,
        le=100,
        unit="per value-weighted cell/day",
        help="rise per day from cells where both sides have a foothold (influence.foothold_share), weighted by value",
    )
    # Gains per event are at most 100: tension_scale is at most 1000, so one event can already
    # saturate the clash chance; larger gains add nothing but overflow risk.
    gain_poaching: float = param(
        0.01, ge=0, le=100, unit="per defector", help="rise from fighters poached by the rival"
    )
    gain_looting: float = param(0.05, ge=0, le=100, unit="per incident", help="rise from looting")
    gain_failed_meeting: float = param(0.1, ge=0, le=100, unit="per meeting", help="rise after a failed meeting")
    gain_escalation: float = param(
        0.3, ge=0, le=100, unit="per meeting", help="rise after a meeting that escalates"
    )
    background_cell_value: float = param(
        0.05, ge=0, le=100, unit="weight", help="value of a passable cell without a site, in contested-ground tension"
    )


class ClashRules(Strict):
    """Rules of clashes and casualties (ODD §7.7; `sim.processes.conflict`, `sim.processes.casualties`)."""

    min_fighters: int = param(
        5, ge=1, le=MAX_FIGHTERS, unit="fighters", help="each side's fighters near a cell needed for a clash"
    )
    radius_cells: int = param(1, ge=0, le=10, unit="cells", help="neighbourhood counted as 'near'")
    p_max: float = probability(
        0.004,
        "ceiling of the daily clash chance per front cell (very high tension, full posture, no calm)",
        unit="1/day",
    )
    tension_scale: float = param(
        2.0, gt=0, le=MAX_TENSION, unit="tension", help="tension at which the clash chance reaches 63% of its ceiling"
    )
    lethality: float = probability(0.04, "casualty chance per fighter when facing an equal force", unit="per clash")
    strength_exponent: float = param(
        0.5, ge=0, le=2, unit="exponent", help="how strongly the force ratio drives losses (1 = Lanchester square law)"
    )
    p_killed: float = probability(0.38, "share of casualties killed (rest wounded)", unit="share")
    tension_gain_per_clash: float = param(
        0.05, ge=0, le=100, unit="per clash", help="rise in tension after a clash"
    )
    winner_influence: float = param(
        10.0, ge=0, le=MAX_INFLUENCE, unit="fighter-equivalents", help="influence the winner gains there"
    )
    recovery_days: float = param(
        30.0, gt=0, le=MAX_DAYS, unit="days", help="mean time for the wounded to return"
    )
    max_casualty_share: float = probability(
        0.9, "ceiling on a fighter's casualty chance in one clash, whatever the force ratio", unit="per clash"
    )
    posture_floor: float = probability(
        0.5, "clash chance multiplier at posture 0 (it rises linearly to 1 at posture 1)", unit="x"
    )
    green_light_multiplier: float = param(
        1.5, ge=1, le=10, unit="x", help="a patron's green light multiplies its client's posture (capped at 1)"
    )
    detachment_share: float = param(
        0.3,
        gt=0,
        le=1,
        unit="share",
        help="share of each side's fighters near a front cell engaged in a clash (above 0: a clash engages someone)",
    )
    max_detachment: int = param(
        60, ge=1, le=100_000, unit="fighters", help="ceiling on the fighters one side engages in a clash"
    )


class MediationRules(Strict):
    """Rules of mediation (ODD §7.9; `sim.processes.mediation`)."""

    interval_days: int = param(45, ge=1, le=MAX_DAYS, unit="days", help="scheduled meetings every this many days")
    tension_threshold: float = param(1.0, ge=0, le=MAX_TENSION, unit="tension", help="tension that calls a meeting")
    min_days_between: int = param(
        7, ge=1, le=MAX_DAYS, unit="days", help="minimum gap between two meetings of a pair"
    )
    p_success_base: float = probability(0.2, "chance of agreement with neutral patrons and tribes")
    patron_alignment_weight: float = param(
        2.0, ge=0, le=MAX_LOG_ODDS, unit="log-odds per alignment", help="effect of patrons' aims"
    )
    tribal_weight: float = param(
        1.0,
        ge=0,
        le=MAX_LOG_ODDS,
        unit="log-odds per bridge",
        help="effect of tribal leaders tied to both sides (mean 2*min of their weights)",
    )
    tension_weight: float = param(
        0.5, ge=0, le=MAX_LOG_ODDS, unit="log-odds per tension", help="high tension makes agreement harder"
    )
    p_escalation: float = probability(
        0.2, "chance a failed meeting escalates, times the more aggressive side's posture (raised by a green light)"
    )
    neutral_venue_weight: float = param(
        0.3, ge=0, le=MAX_LOG_ODDS, unit="log-odds", help="a neutral venue (kind: venue) raises the chance of agreement"
    )
    calm_half_life_days: float = param(
        15.0, gt=0, le=MAX_DAYS, unit="days", help="half-life of the calm after an agreement"
    )
    tension_drop: float = probability(0.7, "share of tension removed by an agreement", unit="share")
    venues: list[Identifier] = Field(default_factory=list, description="sites where meetings are held, in turn")


class InsurgencyRules(Strict):
    """Rules of the insurgency (ODD §7.10; `sim.processes.insurgency`)."""

    # Cells, growth and attack rate are bounded so the day's attacks, Poisson(cells x attack_rate),
    # number at most 10,000 (max_cells x attack_rate) and each costs a bounded amount of work.
    base_growth_per_day: float = param(
        0.0, ge=0, le=1000, unit="insurgent cells/day", help="growth in insurgent cells with no rivalry at all"
    )
    growth_per_clash: float = param(
        0.3,
        ge=0,
        le=1000,
        unit="insurgent cells per clash",
        help="growth in insurgent cells from a clash between rivals",
    )
    growth_per_casualty: float = param(
        0.0,
        ge=0,
        le=1000,
        unit="insurgent cells per casualty",
        help="growth from each rival militia fighter killed or wounded in clashes",
    )
    growth_per_contested_cell: float = param(
        0.002,
        ge=0,
        le=100,
        unit="insurgent cells per grid cell/day",
        help="growth in insurgent cells from each grid cell where hostile militias both have a foothold",
    )
    decay_per_day: float = probability(0.01, "share of insurgent cells that dissolve per day", unit="1/day")
    max_cells: float = param(200.0, ge=0, le=10_000, unit="insurgent cells", help="ceiling on insurgent cells")
    attack_rate: float = param(
        0.01,
        ge=0,
        le=1,
        unit="attacks per insurgent cell/day",
        help="attacks each insurgent cell makes (at most one a day)",
    )
    attack_casualties: float = param(
        2.0, ge=0, le=100, unit="casualties per attack", help="mean casualties of an attack"
    )
    contested_target_weight: float = param(
        2.0, gt=0, le=100, unit="x", help="weight of fighters on contested grid cells as targets, relative to others"
    )


class StrategyRules(Strict):
    """Rules of the factions' strategic response (ODD §7.12; `sim.processes.strategy`)."""

    review_days: int = param(30, ge=1, le=365, unit="days", help="a militia reviews its salary every this many days")
    max_salary_change: float = probability(
        0.1, "largest relative change of salary at one review", unit="share per review"
    )
    loss_response: float = param(
        1.0,
        ge=0,
        le=100,
        unit="per share lost",
        help="salary rise per share of its fighters lost since the last review",
    )
    target_runway_days: float = param(
        60.0, ge=0, le=3650, unit="days", help="a militia cuts salary when its cash covers fewer days of its deficit"
    )
    salary_floor: float = param(0.5, ge=0, le=1, unit="x initial", help="lowest salary, as a multiple of the initial")
    salary_ceiling: float = param(
        2.0, ge=1, le=10, unit="x initial", help="highest salary, as a multiple of the initial"
    )


class SpilloverRules(Strict):
    """Rules of the spill-over between theatres (ODD §7.13; `sim.processes.spillover`)."""

    strength: float = param(
        0.0,
        ge=0.0,
        le=1.0,
        unit="share",
        title="spill-over strength between theatres",
        help="share of a theatre's net daily rise in tension between two organisations added to their tension in "
        "every other theatre where they face each other (0 = theatres isolated)",
    )
    pressure_weight: float = param(
        0.0,
        ge=0,
        le=MAX_LOG_ODDS,
        unit="per tension",
        title="shift of shared funding toward tension",
        help="how far a patron's shared funding shifts toward its clients under the most tension (0 = even split)",
    )


class Rules(Strict):
    """Every rule parameter, one section per ODD process."""

    economy: EconomyRules = Field(default_factory=EconomyRules)
    tribal: TribalRules = Field(default_factory=TribalRules)
    recruitment: RecruitmentRules = Field(default_factory=RecruitmentRules)
    deployment: DeploymentRules = Field(default_factory=DeploymentRules)
    influence: InfluenceRules = Field(default_factory=InfluenceRules)
    tension: TensionRules = Field(default_factory=TensionRules)
    clashes: ClashRules = Field(default_factory=ClashRules)
    mediation: MediationRules = Field(default_factory=MediationRules)
    insurgency: InsurgencyRules = Field(default_factory=InsurgencyRules)
    strategy: StrategyRules = Field(default_factory=StrategyRules)
    spillover: SpilloverRules = Field(default_factory=SpilloverRules)


class Targets(Strict):
    """The article's figures, kept with the scenario for validation and calibration."""

    window_days: int = param(
        30, ge=1, le=MAX_DAYS, unit="days", help="model days that stand for the article's 'recent clashes'"
    )
    killed_min: float = param(
        25, ge=0, le=MAX_FIGHTERS, unit="people", help="killed in recent clashes: 'more than 25' (§4)"
    )
    wounded: float = param(40, ge=0, le=MAX_FIGHTERS, unit="people", help="wounded in recent clashes: 'about 40' (§4)")
    killed_share: float = probability(0.385, "killed / (killed + wounded) = 25/65 (§4)", unit="share")
    buqrus_wounded: float = param(
        4, ge=0, le=MAX_FIGHTERS, unit="people", help="wounded in the Buqrus crossing clash (§13)"
    )


class SweepRange(Strict):
    """A continuous (or integer) range for a swept parameter."""

    low: float = param(..., ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE, help="lowest value")
    high: float = param(..., ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE, help="highest value")
    log: StrictBool = Field(False, description="sample evenly in log space (low must be > 0)")
    integer: StrictBool = Field(False, description="round samples to whole numbers")

    @model_validator(mode="after")
    def _non_empty(self):
        if not self.low < self.high:
            message = f"empty range: low ({self.low}) must be below high ({self.high})"
            raise between_keys(("low", "high"), message, section=True)
        if self.log and self.low <= 0:
            raise between_keys(("log", "low"), f"a log range needs low > 0 (low is {self.low})", section=True)
        return self

    @property
    def ends(self) -> list:
        """The least and greatest values a design draws: [low, high], or [ceil(low), floor(high)] if `integer`.

        An integer range draws only the whole numbers inside it (`sim.design.scale_unit`,
        `grid_levels`): these are the values validation tries (a sweep's, a calibration's, a
        robustness job's), not the ends rounded, which may lie outside the range. A range
        with no whole number gives ends the wrong way round (`sim.scenario.range_problems`
        refuses it where a design would draw from it).
        """
        if self.integer:
            return [math.ceil(self.low), math.floor(self.high)]
        return [self.low, self.high]


SweepValue = (
    StrictBool
    | Annotated[int, Field(ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]
    | Annotated[float, Field(ge=-MAX_ABS_VALUE, le=MAX_ABS_VALUE)]
    | Annotated[str, Field(max_length=300)]
)
DESIGNS_NEEDING_SAMPLES = ("random", "lhs", "sobol")


class Sweep(Strict):
    """An experimental design over scenario parameters (see `run.py sweep`)."""

    parameters: dict[str, SweepRange | Annotated[list[SweepValue], Field(min_length=1)]] = Field(
        ..., min_length=1, description="scenario key path -> list of values or {low, high, log, integer}"
    )
    design: Literal["grid", "random", "lhs", "sobol"] = Field("grid", description="how design points are drawn")
    samples: int | None = param(
        None,
        ge=1,
        le=1_000_000,
        unit="points",
        help="design points (random, lhs); base samples N for sobol (N*(d+2) points); points per range for grid",
    )
    replicates: int = param(1, ge=1, le=100_000, unit="runs", help="runs per design point")
    seeds: Literal["common", "independent"] = Field(
        "common",
        description="run seeds (sim.seeding): common = replicate k has one seed at every point "
        "(common random numbers); independent = every run its own seed",
    )
    outputs: list[str] = Field(..., min_length=1, description="scalar outcomes computed per run (sim.outcomes)")
    timeseries: StrictBool = Field(False, description="also keep each run's per-step figures (Parquet)")
    max_runs: int = max_runs_param("sweep (design points x replicates)")

    @field_validator("outputs")
    @classmethod
    def _unique_outputs(cls, outputs):
        return unique_names(outputs, "outputs (columns of outcomes.csv)")

    @model_validator(mode="after")
    def _samples_where_needed(self):
        if self.design in DESIGNS_NEEDING_SAMPLES and self.samples is None:
            raise between_keys(("design", "samples"), f"design '{self.design}' needs `samples`", section=True)
        ranges = [k for k, v in self.parameters.items() if isinstance(v, SweepRange)]
        if self.design == "grid" and ranges and self.samples is None:
            message = f"a grid over ranges ({', '.join(ranges)}) needs `samples` (points per range)"
            raise between_keys(("design", "samples", "parameters"), message, section=True)
        if self.design == "sobol":
            lists = [k for k, v in self.parameters.items() if not isinstance(v, SweepRange)]
            if lists:
                message = f"a sobol design needs ranges, not lists ({', '.join(lists)})"
                raise between_keys(("design", "parameters"), message, section=True)
        return self


def number_or_reference(value, what: str):
    """A finite number (ints become floats) or a reference such as `targets.killed_min`; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be a number or a reference such as targets.killed_min")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be finite")
    return float(value) if isinstance(value, int) else value


class Statistic(Strict):
    """A summary statistic: an outcome computed per run, its target and its scale."""

    outcome: str = Field(
        ...,
        min_length=1,
        max_length=200,
        description="outcome name (sim.outcomes), e.g. killed_window_peak or first_clash_wounded.buqrus",
    )
    target: AnyValue | str = Field(
        ..., description="the observed value: a number, or a reference such as targets.killed_min"
    )
    scale: float = param(
        ..., gt=0, le=MAX_ABS_VALUE, unit="outcome units", help="distance unit: how far from the target counts as close"
    )

    @field_validator("target", mode="before")
    @classmethod
    def _number_or_reference(cls, value):
        return number_or_reference(value, "target")


class PredictiveCheck(Strict):
    """A statistic not used for fitting, compared with what the article (or an assumption) says."""

    outcome: str = Field(..., min_length=1, max_length=200, description="outcome name (sim.outcomes)")
    unit: str = Field("", max_length=80, description="the outcome's unit, for tables and plot axes")
    observed: AnyValue | str | None = Field(
        None, description="an observed value (number or targets.<name>): gives a predictive p-value"
    )
    band: Annotated[list[AnyValue], Field(min_length=2, max_length=2)] | None = Field(
        None, description="[low, high]: a plausible range; gives the share of predictive runs inside it"
    )
    basis: Literal["article", "assumption"] = Field(..., description="where the reference comes from")
    why: str = Field(..., min_length=1, max_length=1000, description="the reference's source and argument")

    @field_validator("observed", mode="before")
    @classmethod
    def _number_or_reference(cls, value):
        return None if value is None else number_or_reference(value, "observed")

    @field_validator("band")
    @classmethod
    def _not_empty(cls, band):
        if band is not None and not band[0] < band[1]:
            raise ValueError(f"empty band: {band[0]} must be below {band[1]}")
        return band

    @model_validator(mode="after")
    def _has_a_reference(self):
        if self.observed is None and self.band is None:
            raise between_keys(("observed", "band"), "give `observed`, `band` or both", section=True)
        return self


class Predictive(Strict):
    """Posterior predictive checks of a calibration: new runs at the kept draws."""

    replicates: int = param(1, ge=1, le=10_000, unit="runs", help="new runs per kept draw, each with its own seed")
    checks: list[PredictiveCheck] = Field(..., min_length=1, description="statistics not used for fitting")


class Calibration(Strict):
    """ABC-rejection calibration of scenario parameters (see `run.py calibrate`)."""

    parameters: dict[str, SweepRange] = Field(
        ..., min_length=1, description="scenario key path -> prior {low, high, log}: uniform (log-uniform if log)"
    )
    samples: int = param(..., ge=2, le=1_000_000, unit="draws", help="prior draws")
    replicates: int = param(1, ge=1, le=10_000, unit="runs", help="runs per draw; statistics are averaged")
    accept: float = param(..., gt=0, le=1, unit="share", help="fraction of draws kept (closest to the targets)")
    statistics: list[Statistic] = Field(..., min_length=1, description="summary statistics with targets and scales")
    design: Literal["random", "lhs"] = Field("lhs", description="how prior draws are spread (lhs: Latin hypercube)")
    steps: int | None = param(
        None, ge=1, le=100_000, unit="days", help="days per run (default: the scenario's `steps`)"
    )
    predictive: Predictive | None = Field(None, description="posterior predictive checks (sim.posterior)")
    max_runs: int = max_runs_param("calibration (samples x replicates, plus the predictive runs)")
    point: Literal["medoid", "median"] = Field(
        "medoid",
        description="the calibrated value written: medoid = the kept draw with the least summed distance to the "
        "others in prior-scaled units (a multivariate median, on the posterior's ridge); median = each parameter's "
        "own median (off a ridge when parameters are correlated)",
    )

    @model_validator(mode="after")
    def _keeps_a_draw(self):
        if self.accept * self.samples < 1:
            message = f"accept ({self.accept}) x samples ({self.samples}) keeps no draw; raise one of them"
            raise between_keys(("accept", "samples"), message, section=True)
        return self

    def n_accepted(self, n_draws: int | None = None) -> int:
        """Number of draws kept out of `n_draws` (default: `samples`), at least one."""
        n = self.samples if n_draws is None else n_draws
        return max(1, int(math.floor(self.accept * n + 0.5)))


# --------------------------------------------------------------------------- validation (patterns as data)

FactId = Annotated[str, Field(pattern=r"^F[0-9]{2,3}$")]
Paragraph = Annotated[int, Field(ge=1, le=999)]
ExpressionText = Annotated[str, Field(min_length=1, max_length=500)]
Prose = Annotated[str, Field(min_length=1, max_length=4000)]
Bound = Annotated[float, Field(ge=-1e12, le=1e12)]


class MeasureBounds(Strict):
    """Bounds on a measure: the run shows the pattern when the measure meets every bound given."""

    at_least: Bound | None = Field(None, description="measure >= this")
    at_most: Bound | None = Field(None, description="measure <= this")
    above: Bound | None = Field(None, description="measure > this")
    below: Bound | None = Field(None, description="measure < this")

    @model_validator(mode="after")
    def _some_bound(self):
        bounds = ("at_least", "at_most", "above", "below")
        if all(getattr(self, k) is None for k in bounds):
            raise between_keys(bounds, "give at least one bound: at_least, at_most, above or below", section=True)
        low = max((v for v in (self.at_least, self.above) if v is not None), default=None)
        high = min((v for v in (self.at_most, self.below) if v is not None), default=None)
        if low is not None and high is not None and low > high:
            message = f"no value meets these bounds (lower {low} above upper {high})"
            raise between_keys(bounds, message, section=True)
        return self


class Condition(MeasureBounds):
    """A further condition of a pattern: an outcome expression and its bounds."""

    measure: ExpressionText = Field(..., description="outcome expression (sim.expressions) over sim.outcomes")


class Reference(Strict):
    """The article's figure (or the cut-off) a pattern's measure is drawn against."""

    value: Bound = Field(..., description="where the line is drawn, in the measure's units")
    label: str = Field(..., min_length=1, max_length=120, description="what the line is, e.g. 'article §4: >25 killed'")


class PatternSpec(MeasureBounds):
    """One observation of the source article, as a test of one run (`sim.patterns`)."""

    name: Identifier = Field(..., description="the pattern's name (a column of patterns.csv)")
    kind: Literal["validation", "verification"] = Field(
        ...,
        description="validation: a pattern that emerges, not put in; verification: an input restated, a direct "
        "consequence of one, or a figure the calibration fitted",
    )
    why_kind: Prose = Field(..., description="the argument for the kind: which inputs it restates, or why it emerges")
    paragraphs: list[Paragraph] = Field(
        default_factory=list,
        description="the source's paragraphs (seeds/provenance.yaml); empty for an abstract scenario",
    )
    facts: list[FactId] = Field(default_factory=list, description="fact ids of seeds/provenance.yaml, e.g. F19")
    description: Prose = Field(..., description="what the source says and how the test reads it, cut-offs argued")
    measure: ExpressionText = Field(..., description="the per-run measure: an outcome expression over sim.outcomes")
    label: str = Field(..., min_length=1, max_length=120, description="what the measure is, with its unit")
    also: list[Condition] = Field(default_factory=list, max_length=20, description="further conditions, all must hold")
    threshold: float | None = param(
        None, gt=0, le=1, unit="share of runs", help="share of runs that must show it (default: validation.threshold)"
    )
    reference: Reference | None = Field(None, description="the article's figure, drawn on the measure's histogram")


class EnsembleSpec(Strict):
    """One observation about the set of runs, not about one run (`sim.patterns`)."""

    name: Identifier = Field(..., description="the ensemble pattern's name (a row of ensemble.csv)")
    kind: Literal["validation", "verification"] = Field(..., description="as for a per-run pattern")
    why_kind: Prose = Field(..., description="the argument for the kind")
    paragraphs: list[Paragraph] = Field(default_factory=list, description="the source's paragraphs")
    facts: list[FactId] = Field(default_factory=list, description="fact ids of seeds/provenance.yaml")
    description: Prose = Field(..., description="what the source says and how the statistic reads it")
    statistic: Literal["spearman", "ratio_of_sums", "mean", "median"] = Field(
        ...,
        description="spearman: rank correlation across runs of two measures; ratio_of_sums: sum of the first over "
        "sum of the second (pooled over runs); mean, median: of one measure",
    )
    of: list[ExpressionText] = Field(..., min_length=1, max_length=2, description="the per-run measures it uses")
    label: str = Field(..., min_length=1, max_length=120, description="what the statistic is")
    at_least: Bound | None = Field(None, description="statistic >= this")
    at_most: Bound | None = Field(None, description="statistic <= this")
    ci_low_above: Bound | None = Field(None, description="the 95% interval's lower end > this")
    ci_high_below: Bound | None = Field(None, description="the 95% interval's upper end < this")

    @model_validator(mode="after")
    def _arity_and_criterion(self):
        needed = 2 if self.statistic in ("spearman", "ratio_of_sums") else 1
        if len(self.of) != needed:
            message = f"statistic '{self.statistic}' takes {needed} measure(s) in `of`, got {len(self.of)}"
            raise between_keys(("statistic", "of"), message, section=True)
        criteria = ("at_least", "at_most", "ci_low_above", "ci_high_below")
        if all(getattr(self, k) is None for k in criteria):
            message = "give a criterion: at_least, at_most, ci_low_above or ci_high_below"
            raise between_keys(criteria, message, section=True)
        return self


class VariantExpectationSpec(Strict):
    """The direction a policy variant should move one outcome against the base (`sim.variants`)."""

    outcome: str = Field(..., min_length=1, max_length=200, description="outcome name (sim.outcomes)")
    direction: Literal["+", "-", "not lower"] = Field(
        ..., description="'+': the paired difference's 95% interval above zero; '-': below; 'not lower': non-inferior"
    )
    margin: float = param(0.0, ge=0, le=10, unit="x |base mean|", help="relative amount the interval must clear")
    why: Prose = Field(..., description="the reason, in the source's or the issue's words")


class VariantSpec(Strict):
    """A policy variant of this scenario and what it should change."""

    scenario: str = Field(
        ..., min_length=1, max_length=300, description="the variant's scenario: a name in scenarios/ or a file path"
    )
    rule: Literal["all", "any"] = Field("all", description="the verdict needs all expectations to hold, or any one")
    expect: list[VariantExpectationSpec] = Field(
        ..., min_length=1, max_length=50, description="the outcomes the variant should move, and which way"
    )


class Validation(Strict):
    """Patterns of the source the scenario's runs should show, and its policy variants (`run.py validate-patterns`)."""

    threshold: float = param(0.9, gt=0, le=1, unit="share of runs", help="share of runs each pattern must reach")
    joint_threshold: float = param(
        0.5, gt=0, le=1, unit="share of runs", help="share of runs that must show every validation pattern at once"
    )
    patterns: list[PatternSpec] = Field(..., min_length=1, max_length=200, description="the per-run patterns")
    ensemble: list[EnsembleSpec] = Field(
        default_factory=list, max_length=50, description="patterns about the set of runs"
    )
    outcomes: list[str] = Field(
        default_factory=list, max_length=100, description="further outcomes recorded per run (patterns.csv)"
    )
    variants: list[VariantSpec] = Field(
        default_factory=list, max_length=50, description="policy variants and their expected moves (compare-variants)"
    )
    compare_outcomes: list[str] = Field(
        default_factory=list, max_length=100, description="outcomes compared for every variant (with the expected ones)"
    )

    @field_validator("outcomes", "compare_outcomes")
    @classmethod
    def _unique_outcomes(cls, outcomes, info):
        return unique_names(outcomes, info.field_name)

    @model_validator(mode="after")
    def _unique_names(self):
        names = [p.name for p in self.patterns] + [e.name for e in self.ensemble]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"pattern names must be unique: {', '.join(repeated)}")
        return self


class RobustnessRange(SweepRange):
    """The plausible range of one assumption, with the argument for it (`run.py robustness`)."""

    argument: str = Field(
        ...,
        min_length=10,
        max_length=600,
        description="why this range is plausible (what bounds it, or why half to double)",
    )


class Robustness(Strict):
    """Robustness of the verdicts over the assumptions' plausible ranges (scenario discovery; `run.py robustness`).

    Every assumption-marked parameter (`provenance:` says "assumption") has a range in
    `ranges` or a reason in `fixed`; a provenance key naming a group (`factions`, `rules`)
    is covered by representative ranges under it or by a reason in `fixed`
    (`sim.robustness.uncovered_assumptions`).
    """

    ranges: dict[str, RobustnessRange] = Field(
        ...,
        min_length=1,
        description="scenario key path -> {low, high, log, integer, argument}: a Latin hypercube samples within them",
    )
    fixed: dict[str, Annotated[str, Field(min_length=10, max_length=600)]] = Field(
        default_factory=dict,
        description="scenario key path (or provenance group) -> why that assumption is not varied",
    )
    points: int = param(64, ge=2, le=100_000, unit="points", help="Latin-hypercube points in the space of the ranges")
    replicates: int = param(
        3, ge=1, le=1_000, unit="runs", help="runs per point and scenario (the same seeds at every point)"
    )
    threshold: float = param(
        0.5,
        gt=0,
        le=1,
        unit="share of replicates",
        help="a validation pattern holds at a point when at least this share of the point's runs show it",
    )
    max_runs: int = max_runs_param("robustness job (points x replicates x scenarios)")


class Scenario(Strict):
    """A whole scenario file: run settings, space, actors, rules, targets, provenance, designs."""

    name: Identifier
    description: str = Field(..., min_length=1, max_length=300)
    steps: int = param(365, ge=1, le=100_000, unit="days", help="number of steps to run")
    seed: int = param(0, ge=0, le=2**63 - 1, help="root random seed")
    # The article (seeds/000_*.txt) carries no publication date; it speaks of ISIS losses in
    # "early 2019" as past, so late 2019 is an assumption. Only event dates (sim.acled) use it.
    start_date: str = Field(
        "2019-11-01",
        description="calendar date of step 0 (dates events for ACLED export); the run's last day "
        "(start_date + steps) must be on or before 2262-04-11",
        json_schema_extra={"unit": "ISO date", "formatMinimum": FIRST_START, "formatMaximum": LAST_START},
        # checked when left at its default too: with `steps: 1e5` and no start_date, validate
        # said ok and run refused the scenario (its last day past the calendar)
        validate_default=True,
    )
    grid: Grid
    sites: dict[Identifier, Site] = Field(..., min_length=1, max_length=MAX_SITES)
    tribes: dict[Identifier, Tribe] = Field(default_factory=dict, max_length=MAX_TRIBES)
    factions: dict[Identifier, Faction] = Field(..., min_length=1, max_length=MAX_FACTIONS)
    patrons: dict[Identifier, Patron] = Field(default_factory=dict, max_length=MAX_FACTIONS)
    patron_alignment: list[PatronAlignment] = Field(default_factory=list)
    hostilities: list[Annotated[list[Identifier], Field(min_length=2, max_length=2)]] = Field(default_factory=list)
    theatres: dict[Identifier, Theatre] = Field(
        default_factory=dict, max_length=MAX_FACTIONS, description="theatres of the rivalry (rules.spillover)"
    )
    routes: dict[Identifier, Route] = Field(
        default_factory=dict, max_length=MAX_SITES, description="roads between theatres, for the theatre map"
    )
    rules: Rules = Field(default_factory=Rules)
    targets: Targets = Field(default_factory=Targets)
    provenance: dict[str, str] = Field(
        default_factory=dict,
        description="key path -> 'article §N ...' or 'assumption: ...' for every parameter",
    )
    sweep: Sweep | None = Field(None, description="an experimental design for `run.py sweep`")
    calibration: Calibration | None = Field(None, description="an ABC calibration for `run.py calibrate`")
    validation: Validation | None = Field(
        None, description="patterns of the source and policy variants for `run.py validate-patterns`"
    )
    robustness: Robustness | None = Field(
        None, description="plausible ranges of the assumptions, for `run.py robustness`"
    )

    @field_validator("factions")
    @classmethod
    def _no_control_words(cls, value: dict):
        taken = [name for name in value if name in CONTROL_WORDS]
        if taken:
            raise ValueError(
                f"faction name '{taken[0]}' is reserved: timeseries.csv writes '{CONTROL_WORDS[0]}' and "
                f"'{CONTROL_WORDS[1]}' where no faction holds a site; choose another name"
            )
        return value

    @field_validator("name")
    @classmethod
    def _not_a_results_folder(cls, value: str) -> str:
        # results/<name>/ holds a scenario's results: these folders of results/ hold others
        if value.casefold() in RESERVED_SCENARIO_NAMES:
            raise ValueError(
                f"'{value}' is reserved: results/{value.casefold()}/ holds "
                f"{RESERVED_SCENARIO_NAMES[value.casefold()]}; choose another name"
            )
        return value

    @field_validator("start_date", mode="before")
    @classmethod
    def _iso_date(cls, value):
        if isinstance(value, date):  # YAML reads an unquoted 2019-11-01 as a date
            value = value.isoformat()
        if not isinstance(value, str):
            raise ValueError("must be an ISO date such as 2019-11-01")
        try:
            day = date.fromisoformat(value)
        except ValueError:  # the message adds the value given ("got ...")
            raise ValueError("must be an ISO date such as 2019-11-01") from None
        if not FIRST_START <= day.isoformat() <= LAST_START:
            raise ValueError(f"must be a date from {FIRST_START} to {LAST_START}")
        return day.isoformat()

    @field_validator("start_date")
    @classmethod
    def _ends_in_the_calendar(cls, value: str, info):
        steps = info.data.get("steps")
        if isinstance(steps, int) and (why := calendar_problem(value, steps)):
            raise ValueError(why)
        return value

    def hostile_pairs(self) -> list[tuple[int, int]]:
        """(a, b), a < b, positions in `factions` of the factions hostile to each other.

        The pairs of `hostilities`, and the insurgent faction (if any) with every other:
        insurgents are everyone's enemy. Whose influence contests whose hold on a cell
        (`sim.processes.influence`): the model's (`sim.world.build_world`) and the reader's of
        maps.npz (`sim.results.check_run_contents`).
        """
        names = list(self.factions)
        pairs = {tuple(sorted((names.index(a), names.index(b)))) for a, b in self.hostilities}
        insurgent = next((i for i, f in enumerate(self.factions.values()) if f.kind == "insurgent"), None)
        if insurgent is not None:
            pairs |= {tuple(sorted((insurgent, f))) for f in range(len(names)) if f != insurgent}
        return sorted(pairs)


def calendar_problem(start_date: str, steps: int) -> str | None:
    """Why a run of `steps` days from `start_date` (ISO) would end past LAST_EVENT_DATE, or None.

    Event dates are pandas timestamps (sim.acled): the run's last day must be one.
    """
    if date.fromisoformat(start_date) + timedelta(days=steps) <= LAST_EVENT_DATE:
        return None
    return (
        f"a run of {steps} steps from {start_date} would end after {LAST_EVENT_DATE.isoformat()}, "
        "the last date its events can have: start earlier or run fewer steps"
    )


# ---------------------------------------------------------------------------------------
# Walking the schema by key path (for messages, units and help texts, and UI controls)


def unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...]; of a real union keep its first section type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            sections = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
            if len(options) == 1:
                annotation = options[0]
            elif sections:
                annotation = sections[0]
            else:
                return annotation
        else:
            return annotation


def child_type(node: Any, part: str | int) -> Any:
    """The type one step down a key path: a dict's values, a list's items, or a field's type."""
    node = unwrap(node)
    origin = get_origin(node)
    if origin is dict:
        return get_args(node)[1]
    if origin is list:
        return get_args(node)[0]
    if isinstance(node, type) and issubclass(node, BaseModel) and isinstance(part, str):
        field = node.model_fields.get(part)
        return field.annotation if field else None
    return None


def whole_number_bounds(key: str) -> tuple[float, float]:
    """The (lowest, highest) whole number a scenario key accepts (its ge/gt/le/lt), -inf/inf where unbounded."""
    field, _ = schema_field(key)
    bounds = _field_bounds(field)
    low = bounds["ge"] if "ge" in bounds else math.floor(bounds["gt"]) + 1 if "gt" in bounds else -math.inf
    high = bounds["le"] if "le" in bounds else math.ceil(bounds["lt"]) - 1 if "lt" in bounds else math.inf
    return low, high


def _field_bounds(field: FieldInfo) -> dict[str, float]:
    """The bounds a pydantic field declares, by name ("ge", "gt", "le", "lt"); no field declares one twice."""
    return {
        name: getattr(item, name)
        for item in field.metadata
        for name in ("ge", "gt", "le", "lt")
        if getattr(item, name, None) is not None
    }


def whole_number_key_bounds(key: str) -> tuple[float, float] | None:
    """`whole_number_bounds` of a scenario key whose values are whole numbers (an int field), else None.

    None too for a key path that names no field (a list of mixed values, a key of no section).
    """
    try:
        _, plain = schema_field(key)
    except KeyError:
        return None
    return whole_number_bounds(key) if plain is int else None


def number_key_rule(key: str) -> tuple[type, dict[str, float]] | None:
    """The plain type (int or float) and bounds of a scenario key whose values are numbers, else None.

    The bounds are the field's own, by name: {"ge": 1, "le": 100000} for `steps`. None too for a
    key path that names no field (see `whole_number_key_bounds`).
    """
    try:
        field, plain = schema_field(key)
    except KeyError:
        return None
    if plain not in (int, float):
        return None
    return plain, _field_bounds(field)


def schema_field(key: str) -> tuple[FieldInfo, Any]:
    """The pydantic field (and its plain type) that a dotted scenario key path ends in.

    Entries of named sections (`factions.IRGC...`) and list items are stepped over. Raises
    KeyError when the path does not end in a field of `Scenario`.
    """
    node: Any = Scenario
    field: FieldInfo | None = None
    for part in key.split("."):
        node = unwrap(node)
        origin = get_origin(node)
        if origin is dict:
            node, field = get_args(node)[1], None
        elif origin is list:
            node, field = get_args(node)[0], None
        elif isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            field = node.model_fields[part]
            node = field.annotation
        else:
            raise KeyError(f"'{key}' is not a scenario parameter (at '{part}')")
    if field is None:
        raise KeyError(f"'{key}' names a section, not a parameter")
    return field, unwrap(node)


LABEL_CONTEXT = {"factions", "patrons", "sites", "tribes"}  # named sections: the entry's name leads its label


def field_words(field: FieldInfo, name: str) -> str:
    """A schema field's meaning in a few words: its `title`, else the first clause of its help.

    The help (`description`) is cut at the first "; " or ": " and loses a closing aside in
    brackets; a field with neither gives its `name` with spaces. The one source of the
    words of `parameter_label` (figures, explorer) and `run.py params`.
    """
    words = field.title or field.description or name.replace("_", " ")
    for stop in ("; ", ": "):
        head, found, _ = words.partition(stop)
        if found and head:
            words = head
    if words.endswith(")") and " (" in words:  # a closing aside: "... per front cell (very high tension, ...)"
        words = words[: words.rindex(" (")]
    return words


def parameter_label(key: str) -> str:
    """A figure's words for a scenario key path, with its unit, from the schema.

    `factions.IRGC.salary_usd_month` -> "IRGC: salary per fighter (USD/month)";
    `rules.clashes.p_max` -> "Clashes: ceiling of the daily clash chance per front cell (1/day)".
    The words are the field's `title` where it has one, else the first clause of its help
    (`description`, up to the first "; " or ": ", without a closing aside in brackets); the
    named entry (faction, patron, site, tribe) or the rules section leads. A path that is not
    a scenario parameter is returned unchanged.
    """
    try:
        field, _ = schema_field(key)
    except KeyError:
        return key
    words = field_words(field, key.rsplit(".", 1)[-1])
    parts = key.split(".")
    context = ""
    if parts[0] in LABEL_CONTEXT and len(parts) > 2:
        context = parts[1]
    elif parts[0] == "rules" and len(parts) > 2:
        context = parts[1].replace("_", " ").capitalize()
    text = f"{context}: {words}" if context else words[:1].upper() + words[1:]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    unit = str(extra.get("unit", "") or "")
    return f"{text} ({unit})" if unit else text
