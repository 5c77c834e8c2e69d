"""The explorer's drawings, as HTML and SVG text made from a `Snapshot` (no matplotlib on the page).

Redrawing must keep up with Play (at least 10 days per second with a redraw every day), so
nothing here lays out a figure at run time:

- the map is the grid as a small PNG (one pixel per cell, `map_png`, ~1 ms) that the
  browser enlarges with `image-rendering: pixelated`, under an SVG of the contested cells
  and the recent clashes (`map_layer_html`); the river, the site markers and the site
  names (`map_sites_html`) and the legend are drawn once per run;
- each chart is an SVG of polylines on fixed axes (`chart_svg`): x from day 0 to a whole
  number of years, y from 0 to a 1-2-5 top that only grows while "keep axes" is on
  (`AxisScales`), so a change shows in the lines, not in the ticks; the previous run (before
  the last parameter change or Reset) is drawn faded under the current one.

Same house style as the static plots (`sim.figures`): Okabe-Ito faction colours by faction
index, cells in the controller's colour, paler where its share of the cell's influence is
smaller, contested cells grey and hatched. Text is sized for the screen: chart text is 13
SVG units in a 420-unit-wide chart (at least 11 px once the chart is 360 px wide, a phone's
width), legends and labels 12 px in HTML.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from sim.explorer.core import DEFECTION_COLUMN, RECENT_CLASH_STEPS, Snapshot
from sim.figures import (
    CONTESTED,
    CONTESTED_COLOUR,
    CONTESTED_FILL,
    KIND_NAMES,
    NEUTRAL_COLOUR,
    NOBODY_COLOUR,
    RIVER_COLOUR,
    SITE_STYLE,
    cell_colours,
    clip_polyline,
    control_shades,
    faction_line_colour,
    terrain_key,
)
from sim.model import CorridorModel

YEAR = 365  # days: the x axis spans whole years
CHART_W, CHART_H = 420, 236  # SVG units
MARGIN = {"left": 58, "right": 12, "top": 10, "bottom": 44}
FONT = 13  # SVG units
DASHES = ("", "6 4", "2 3", "8 3 2 3")
LABELLED_KINDS = tuple(kind for kind, (_, _, labelled) in SITE_STYLE.items() if labelled)


# --------------------------------------------------------------------------- what stays fixed in a run


@dataclass(frozen=True)
class RunInfo:
    """The facts of a model that do not change while it runs (read once per model)."""

    names: tuple[str, ...]
    militias: tuple[int, ...]
    insurgent: int | None
    height: int
    width: int
    terrain: np.ndarray = field(repr=False)
    site_names: tuple[str, ...]
    site_labels: tuple[str, ...]
    site_kinds: tuple[str, ...]
    site_rows: tuple[float, ...]
    site_cols: tuple[float, ...]
    river: tuple[tuple[tuple[float, float], ...], ...] | None  # pieces of (col, row) points near the map
    tension_scale: float
    tension_threshold: float | None
    steps: int | None = None  # the scenario's run length (days): Play pauses there (`sim.explorer.core.Runner`)
    holders: tuple[int, ...] = ()  # the factions that can hold cells (`map_legend_html`); () = every faction
    sites_html: str = ""  # `map_sites_html` and `map_legend_html` of this run, drawn once
    legend_html: str = ""


def run_info(model: CorridorModel) -> RunInfo:
    """The fixed facts of `model` (call between steps, e.g. right after building it)."""
    geo = model.geo
    grid = model.config.grid
    river = None
    if grid.river is not None and grid.bounds is not None:
        b = grid.bounds
        pts = np.array(grid.river.path, dtype=float)
        rows = (b.lat_max - pts[:, 0]) / (b.lat_max - b.lat_min) * grid.height - 0.5
        cols = (pts[:, 1] - b.lon_min) / (b.lon_max - b.lon_min) * grid.width - 0.5
        # Only what can show (a river round the globe would be a 10,000-point SVG line), in
        # pieces: `clip_polyline` separates them by NaN rows, an SVG polyline cannot.
        xy = clip_polyline(np.column_stack([cols, rows]), (-0.5, grid.width - 0.5, -0.5, grid.height - 0.5))
        cuts = np.flatnonzero(np.isnan(xy).any(axis=1))
        pieces = [p[~np.isnan(p).any(axis=1)] for p in np.split(xy, cuts)]
        pieces = [p for p in pieces if len(p) >= 2]
        river = tuple(tuple(zip(p[:, 0].tolist(), p[:, 1].tolist(), strict=True)) for p in pieces) or None
    mediation = getattr(model.rules, "mediation", None)
    # A cell is held by a faction with influence there: militias (posted fighters), and any faction
    # with headquarters or a site it holds on day 0. An insurgent faction has neither (no swatch for it).
    world = model.world
    holders = {f for f in range(len(model.faction_names)) if model.is_militia[f] or world.hq_sites[f]}
    holders |= {int(f) for f in world.initial_site_control if f >= 0}
    info = RunInfo(
        names=tuple(model.faction_names),
        militias=tuple(f for f in range(len(model.faction_names)) if model.is_militia[f]),
        insurgent=model.insurgent,
        height=int(geo.height),
        width=int(geo.width),
        terrain=np.array(geo.terrain, copy=True),
        site_names=tuple(geo.site_names),
        site_labels=tuple(geo.site_labels),
        site_kinds=tuple(geo.site_kinds),
        site_rows=tuple(float(r) for r in geo.site_rows),
        site_cols=tuple(float(c) for c in geo.site_cols),
        river=river,
        tension_scale=float(model.rules.clashes.tension_scale),
        tension_threshold=getattr(mediation, "tension_threshold", None),
        steps=int(model.config.steps),
        holders=tuple(sorted(holders)),
    )
    return dataclasses.replace(info, sites_html=map_sites_html(info), legend_html=map_legend_html(info))


# --------------------------------------------------------------------------- the map


def map_png(snapshot: Snapshot, info: RunInfo) -> bytes:
    """The grid as a PNG of one pixel per cell (H x W), coloured as `sim.figures.cell_colours`."""
    rgb = cell_colours(np.asarray(snapshot.control), np.asarray(snapshot.share), info.terrain)
    image = Image.fromarray(np.round(rgb * 255).astype(np.uint8), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _svg_box(info: RunInfo, body: str, extra: str = "") -> str:
    return (
        f'<svg viewBox="-0.5 -0.5 {info.width} {info.height}" preserveAspectRatio="none" '
        f'class="explorer-map-svg" {extra}>{body}</svg>'
    )


def map_layer_html(snapshot: Snapshot, info: RunInfo) -> str:
    """The map's changing layer: the grid image, hatching over contested cells, crosses at recent clashes."""
    data = base64.b64encode(map_png(snapshot, info)).decode("ascii")
    parts = [
        '<defs><pattern id="explorer-hatch" patternUnits="userSpaceOnUse" width="0.5" height="0.5" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="0.5" stroke="#555" stroke-width="0.12"/>'
        "</pattern></defs>"
    ]
    contested = np.argwhere(np.asarray(snapshot.control) == CONTESTED)
    if len(contested):
        rects = "".join(f'<rect x="{c - 0.5}" y="{r - 0.5}" width="1" height="1"/>' for r, c in contested)
        parts.append(f'<g fill="url(#explorer-hatch)">{rects}</g>')
    if len(snapshot.clashes):
        d = " ".join(
            f"M{c - 0.4} {r - 0.4}L{c + 0.4} {r + 0.4}M{c - 0.4} {r + 0.4}L{c + 0.4} {r - 0.4}"
            for r, c in snapshot.clashes
        )
        parts.append(f'<path d="{d}" stroke="black" stroke-width="2" vector-effect="non-scaling-stroke" fill="none"/>')
    return (
        f'<div class="explorer-map-frame" style="aspect-ratio:{info.width} / {info.height}">'
        f'<img src="data:image/png;base64,{data}" class="explorer-map-image" alt="control of each cell on day '
        f'{snapshot.day}"/>' + _svg_box(info, "".join(parts)) + "</div>"
    )


def _marker(kind: str, x: float, y: float) -> str:
    stroke = 'stroke="black" vector-effect="non-scaling-stroke" stroke-width="1.3"'
    if kind == "town":
        return f'<circle cx="{x}" cy="{y}" r="0.55" fill="white" {stroke}/>'
    if kind == "crossing":
        return f'<path d="M{x} {y - 0.6}L{x + 0.5} {y}L{x} {y + 0.6}L{x - 0.5} {y}Z" fill="white" {stroke}/>'
    if kind == "oil_field":
        return f'<path d="M{x} {y - 0.6}L{x + 0.55} {y + 0.45}L{x - 0.55} {y + 0.45}Z" fill="white" {stroke}/>'
    if kind == "headquarters":
        square = f'x="{x - 0.3}" y="{y - 0.3}" width="0.6" height="0.6"'
        return f'<rect {square} fill="black" stroke="white" stroke-width="0.08"/>'
    if kind == "venue":
        pts = " ".join(
            f"{x + r * math.sin(a):.3f},{y - r * math.cos(a):.3f}"
            for k in range(10)
            for a, r in [(k * math.pi / 5, 0.6 if k % 2 == 0 else 0.25)]
        )
        return f'<polygon points="{pts}" fill="black" stroke="white" stroke-width="0.06"/>'
    return f'<circle cx="{x}" cy="{y}" r="0.22" fill="black"/>'


def _label_positions(info: RunInfo) -> list[tuple[int, str]]:
    """(site index, 'right' or 'left' of its marker): greedy, so names (~0.75 cell per letter) do not overlap."""
    order = sorted(
        (i for i, k in enumerate(info.site_kinds) if k in LABELLED_KINDS),
        key=lambda i: (info.site_kinds[i] != "town", info.site_cols[i]),
    )
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for i in order:
        x, y = info.site_cols[i], info.site_rows[i]
        length = 0.75 * len(info.site_labels[i])
        candidates = [("right", x + 0.8, x + 0.8 + length), ("left", x - 0.8 - length, x - 0.8)]
        if x > info.width * 0.7:
            candidates.reverse()
        best = candidates[0]
        for side, x0, x1 in candidates:
            if x0 < -0.5 or x1 > info.width - 0.5:
                continue
            if not any(x0 < b1 and b0 < x1 and abs(y - yy) < 1.6 for b0, b1, yy, _ in placed):
                best = (side, x0, x1)
                break
        placed.append((best[1], best[2], y, 0))
        out.append((i, best[0]))
    return out


def map_sites_html(info: RunInfo) -> str:
    """The map's fixed layer: the river, the site markers and the names of towns, crossings and oil fields."""
    parts = []
    for piece in info.river or ():
        points = " ".join(f"{x:.2f},{y:.2f}" for x, y in piece)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="white" stroke-width="6" '
            'vector-effect="non-scaling-stroke" '
            f'stroke-linecap="round"/><polyline points="{points}" fill="none" stroke="{RIVER_COLOUR}" stroke-width="3" '
            'vector-effect="non-scaling-stroke" stroke-linecap="round"/>'
        )
    for kind in SITE_STYLE:  # the style's order: small markers drawn last, on top
        for i, k in enumerate(info.site_kinds):
            if k == kind:
                title = f"<title>{html.escape(info.site_labels[i])} ({KIND_NAMES.get(kind, kind)})</title>"
                parts.append(f"<g>{title}{_marker(kind, info.site_cols[i], info.site_rows[i])}</g>")
    labels = []
    for i, side in _label_positions(info):
        left = (info.site_cols[i] + 0.5) / info.width * 100
        top = (info.site_rows[i] + 0.5) / info.height * 100
        labels.append(
            f'<div class="explorer-site-label explorer-site-{side}" style="left:{left:.2f}%;top:{top:.2f}%">'
            f"{html.escape(info.site_labels[i])}</div>"
        )
    return _svg_box(info, "".join(parts)) + "".join(labels)


def _swatch(colour: str, text: str, extra: str = "") -> str:
    return (
        f'<span class="explorer-key"><span class="explorer-swatch" style="background:{colour};{extra}"></span>'
        f"{html.escape(text)}</span>"
    )


def map_legend_html(info: RunInfo) -> str:
    """The map's legend, 12 px text.

    Faction colours, contested, nobody's, impassable ground and the outside of the modelled
    area where the grid has them, clashes, the river, site kinds.
    """
    # Swatches in the colours the map shows: each faction's from the palest (a small share of the
    # cell's influence) to the full colour (`cell_colours`), for the factions that can hold cells
    # only (the insurgents' colour was listed and never on the map); the contested cells' hatching
    # rising to the right, as the map's (it fell: CSS's 45deg is the direction of the gradient).
    items = []
    for f in info.holders or range(len(info.names)):
        palest, fullest = control_shades(f)
        shades = f"width:22px;background-image:linear-gradient(90deg,{palest},{fullest})"
        items.append(_swatch(fullest, info.names[f], shades))
    hatch = "background-image:repeating-linear-gradient(135deg,#555 0 1px,transparent 1px 4px)"
    items.append(_swatch(CONTESTED_FILL, "contested", hatch))
    items.append(_swatch(NOBODY_COLOUR, "nobody's", "border:1px solid #bbb"))
    items += [_swatch(colour, label, "border:1px solid #bbb") for label, colour in terrain_key(info.terrain)]
    items.append(f'<span class="explorer-key"><b>&times;</b>&nbsp;clash, last {RECENT_CLASH_STEPS} days</span>')
    if info.river:
        items.append(_swatch(RIVER_COLOUR, "river", "height:4px"))
    kinds = [k for k in SITE_STYLE if k in info.site_kinds]
    for kind in kinds:
        svg = f'<svg viewBox="-1 -1 2 2" width="12" height="12">{_marker(kind, 0, 0)}</svg>'
        items.append(f'<span class="explorer-key">{svg}&nbsp;{html.escape(KIND_NAMES.get(kind, kind))}</span>')
    return (
        '<div class="explorer-legend">' + "".join(items) + "</div>"
        '<div class="explorer-note">Colour: the faction that controls the cell; paler: a smaller share of the '
        "cell's influence. North is up.</div>"
    )


# --------------------------------------------------------------------------- the charts


@dataclass(frozen=True)
class Line:
    """One line of a chart: a recorded column (running total when `cumulative`)."""

    column: str
    label: str
    colour: str
    dash: str = ""
    cumulative: bool = False


@dataclass(frozen=True)
class Panel:
    """One chart: its title, its y-axis label (with the unit) and how to find its lines."""

    key: str
    title: str
    y_label: str
    percent: bool = False


PANELS = (
    Panel("fighters", "Fighters per militia", "fighters (fit, in service)"),
    Panel("territory", "Territory (share of passable grid cells)", "grid cells held (%)", percent=True),
    Panel("casualties", "Casualties, running total (killed solid, wounded dotted)", "people"),
    Panel("defections", "Defections, running total", "fighters (colour: left)"),
    Panel("tension", "Tension between hostile militias (index ≥ 0, no unit)", "tension (0 = none)"),
    Panel("insurgents", "Insurgent cells", "insurgent cells"),
)


def panel_lines(panel: Panel, info: RunInfo, columns) -> list[Line]:
    """The lines of `panel` for this run (`columns`: the recorded column names)."""
    names, present = info.names, set(columns)
    out: list[Line] = []
    if panel.key == "fighters":
        out = [Line(f"fighters.{names[f]}", names[f], faction_line_colour(f)) for f in info.militias]
    elif panel.key == "territory":
        out = [Line(f"territory.{names[f]}", names[f], faction_line_colour(f)) for f in info.militias]
        out.append(Line("territory.contested", "contested", CONTESTED_COLOUR, DASHES[1]))
    elif panel.key == "casualties":
        for f in info.militias:
            out.append(Line(f"killed.{names[f]}", f"{names[f]} killed", faction_line_colour(f), cumulative=True))
            out.append(Line(f"wounded.{names[f]}", f"{names[f]} wounded", faction_line_colour(f), DASHES[2], True))
    elif panel.key == "defections":
        for column in columns:
            m = DEFECTION_COLUMN.match(column)
            if m and m["a"] in names and m["b"] in names:
                a, b = names.index(m["a"]), names.index(m["b"])
                label = f"{m['a']} \u2192 {m['b']}"
                out.append(Line(column, label, faction_line_colour(a), DASHES[b % len(DASHES)], True))
    elif panel.key == "tension":
        pairs = [c for c in columns if c.startswith("tension.")]
        out = [
            Line(c, c.split(".", 1)[1].replace("~", "\u2013"), NEUTRAL_COLOUR, DASHES[k % len(DASHES)])
            for k, c in enumerate(pairs)
        ]
    elif panel.key == "insurgents" and info.insurgent is not None:
        column = "insurgent_cells" if "insurgent_cells" in present else f"fighters.{names[info.insurgent]}"
        out = [Line(column, names[info.insurgent], faction_line_colour(info.insurgent))]
    return [line for line in out if line.column in present]


def _values(series: dict, line: Line) -> np.ndarray:
    values = np.asarray(series[line.column], dtype=float)
    return np.cumsum(values) if line.cumulative else values


def nice_top(value: float) -> tuple[float, float]:
    """(top, tick step): the smallest 1-2-5 multiple of a step at or above `value`, with 2..5 ticks."""
    if not value > 0 or not math.isfinite(value):
        return 1.0, 0.25
    raw = value / 4
    exponent = math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * 10**exponent
        if step >= raw:
            break
    return math.ceil(value / step - 1e-9) * step, step


class AxisScales:
    """The y-axis top of each chart: fixed while `keep` is on (it only grows), else fitted to the data.

    Also keeps each chart's last static layer (axes, previous run), redrawn only when what it
    shows changes.
    """

    def __init__(self, keep: bool = True):
        self.keep = keep
        self.tops: dict[str, tuple[float, float]] = {}
        self.static: dict[str, tuple[tuple, str]] = {}
        self.world: tuple | None = None  # the factions and grid the tops were set for

    def for_world(self, world: tuple) -> None:
        """Start afresh when the run's world (factions, grid) changes: another scenario's scale means nothing here."""
        if world != self.world:
            self.tops.clear()
            self.static.clear()
            self.world = world

    def top(self, panel: Panel, highest: float) -> tuple[float, float]:
        """(top, tick step) for `panel` whose data (current and previous run) reach `highest`."""
        if panel.percent:
            return 1.0, 0.25
        top, step = nice_top(highest * 1.05)
        kept = self.tops.get(panel.key)
        if self.keep and kept is not None and kept[0] >= top:
            return kept
        self.tops[panel.key] = (top, step)
        return top, step


def x_extent(*days: int) -> int:
    """The x axis's end: the smallest whole number of years covering `days` (at least one year)."""
    return YEAR * max(1, math.ceil(max(days) / YEAR))


def _tick(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.0%}"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _points(values: np.ndarray, sx, sy) -> str:
    """SVG points "x y x y ..." in tenths of a unit (the polylines sit in a group scaled by 0.1)."""
    xy = np.empty(2 * len(values), dtype=np.int64)
    xy[0::2] = np.rint(sx(np.arange(len(values))) * 10)
    xy[1::2] = np.rint(sy(values) * 10)
    return " ".join(map(str, xy.tolist()))


def chart_svg(
    panel: Panel, info: RunInfo, snapshot: Snapshot, previous: Snapshot | None, scales: AxisScales
) -> tuple[str, str, list[Line]]:
    """One chart as two SVG texts of the same size, and the lines drawn (for the legend).

    The first SVG holds what changes seldom: the axes, ticks and labels, the tension scale and
    the previous run's lines, faded; the second, laid over it, the current run's lines (day 0
    as a dot, so a chart is not blank before the first step). Redrawing a day then sends
    and re-renders only the second in the browser.
    """
    lines = panel_lines(panel, info, snapshot.series)
    old = [] if previous is None or previous.run == snapshot.run else panel_lines(panel, info, previous.series)
    highest = 0.0
    for source, group in ((snapshot, lines), (previous, old)):
        for line in group:
            values = _values(source.series, line)
            if len(values):
                highest = max(highest, float(np.nanmax(values)))
    if panel.key == "tension":
        highest = max(highest, info.tension_scale, info.tension_threshold or 0.0)
    top, step = scales.top(panel, highest)
    days = x_extent(snapshot.day, previous.day if old else 0)
    x0, x1 = MARGIN["left"], CHART_W - MARGIN["right"]
    y0, y1 = CHART_H - MARGIN["bottom"], MARGIN["top"]

    def sx(day):
        return x0 + (x1 - x0) * np.asarray(day, dtype=float) / days

    def sy(value):
        return y0 - (y0 - y1) * np.clip(np.asarray(value, dtype=float), 0, top * 1.02) / top

    now = [f'<svg viewBox="0 0 {CHART_W} {CHART_H}" class="explorer-lines-svg"><g transform="scale(0.1)">']
    for line in lines:
        values = _values(snapshot.series, line)
        dash = f' stroke-dasharray="{_tenfold(line.dash)}"' if line.dash else ""
        if len(values) == 1:
            cx, cy = float(sx(0)) * 10, float(sy(values[0])) * 10
            now.append(f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="30" fill="{line.colour}"/>')
        else:
            now.append(
                f'<polyline points="{_points(values, sx, sy)}" fill="none" stroke="{line.colour}" '
                f'stroke-width="18"{dash}/>'
            )
    now.append("</g></svg>")
    key = (snapshot.run, previous.run if old else None, top, days, tuple(line.column for line in lines))
    cached = scales.static.get(panel.key)
    if cached is not None and cached[0] == key:
        return cached[1], "".join(now), lines
    axes = _axes_svg(panel, info, previous, old, lines, top, step, days, sx, sy)
    scales.static[panel.key] = (key, axes)
    return axes, "".join(now), lines


def _tenfold(dash: str) -> str:
    """A dash pattern in the tenths of the scaled groups."""
    return " ".join(str(10 * float(x)).removesuffix(".0") for x in dash.split())


def _axes_svg(panel, info, previous, old, lines, top, step, days, sx, sy) -> str:
    """A chart's static layer: grid, ticks, axis labels, the tension scale, the previous run faded."""
    x0, x1 = MARGIN["left"], CHART_W - MARGIN["right"]
    y0, y1 = CHART_H - MARGIN["bottom"], MARGIN["top"]
    out = [
        f'<svg viewBox="0 0 {CHART_W} {CHART_H}" class="explorer-chart-svg" role="img" '
        f'aria-label="{html.escape(panel.title)}" font-size="{FONT}" font-family="sans-serif">'
    ]
    ticks = np.arange(0, top + step / 2, step)
    for value in ticks:
        y = float(sy(value))
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(
            f'<text x="{x0 - 5}" y="{y + 4.5:.1f}" text-anchor="end" fill="#333">{_tick(value, panel.percent)}</text>'
        )
    step_days = 30 if days <= YEAR else 90 * (days // (2 * YEAR) + 1)
    month_ticks = list(range(0, days + 1, step_days))
    for k, day in enumerate(month_ticks):
        x = float(sx(day))
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#666"/>')
        if k % 2 == 0 or len(month_ticks) <= 7:
            out.append(f'<text x="{x:.1f}" y="{y0 + 17}" text-anchor="middle" fill="#333">{day}</text>')
    out.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#666"/>')
    out.append(f'<line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}" stroke="#666"/>')
    out.append(f'<text x="{(x0 + x1) / 2}" y="{CHART_H - 6}" text-anchor="middle" fill="#222">day of the run</text>')
    out.append(
        f'<text transform="translate(13 {(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" fill="#222" '
        f'font-size="{FONT - 1}">{html.escape(panel.y_label)}</text>'
    )
    if panel.key == "tension":
        y = float(sy(info.tension_scale))
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" stroke-dasharray="2 4"/>')
        out.append(
            f'<text x="{x1 - 2}" y="{y - 4:.1f}" text-anchor="end" fill="#555">scale {info.tension_scale:g}: '
            "clash chance at 63% of its ceiling</text>"
        )
    out.append('<g transform="scale(0.1)">')
    for line in old:
        values = _values(previous.series, line)
        dash = f' stroke-dasharray="{_tenfold(line.dash)}"' if line.dash else ""
        out.append(
            f'<polyline points="{_points(values, sx, sy)}" fill="none" stroke="{line.colour}" stroke-opacity="0.3" '
            f'stroke-width="25"{dash} class="explorer-previous"/>'
        )
    out.append("</g>")
    if not lines:
        empty = "no defections yet" if panel.key == "defections" else "nothing to show in this scenario"
        out.append(f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle" fill="#666">{empty}</text>')
    out.append("</svg>")
    return "".join(out)


def legend_html(lines: list[Line], previous: bool) -> str:
    """A chart's legend in HTML (12 px), one key per line, plus the faded previous run when shown."""
    keys = []
    for line in lines:
        kind = "solid" if not line.dash else "dotted" if line.dash == DASHES[2] else "dashed"
        style = f"border-top:2.5px {kind} {line.colour}"
        keys.append(
            f'<span class="explorer-key"><span class="explorer-dash" style="{style}"></span>'
            f"{html.escape(line.label)}</span>"
        )
    if previous:
        keys.append(
            '<span class="explorer-key explorer-key-previous"><span class="explorer-dash" '
            'style="border-top:3px solid #999;opacity:0.4"></span>previous run (faded)</span>'
        )
    return '<div class="explorer-legend">' + "".join(keys) + "</div>"


# --------------------------------------------------------------------------- the monitors


def monitors(snapshot: Snapshot, info: RunInfo) -> list[tuple[str, str, str]]:
    """(name, value, note) of the numbers shown above the map: day, fighters, killed, defections, tension."""
    series, names = snapshot.series, info.names
    out = [("Day", str(snapshot.day), _day_note(snapshot.day, info.steps))]
    for f in info.militias:
        column = f"fighters.{names[f]}"
        if column in series:
            out.append((f"{names[f]} fighters", f"{int(series[column][-1]):,}", ""))
    if info.insurgent is not None:
        column = "insurgent_cells" if "insurgent_cells" in series else f"fighters.{names[info.insurgent]}"
        if column in series:
            out.append((f"{names[info.insurgent]} insurgent cells", f"{float(series[column][-1]):,.0f}", ""))
    killed = sum(float(np.sum(series[f"killed.{names[f]}"])) for f in info.militias if f"killed.{names[f]}" in series)
    out.append(("Killed so far", f"{killed:,.0f}", "all militias"))
    out.append(("Defections so far", f"{sum(snapshot.defections.values()):,}", "fighters who changed side"))
    for column in series:
        if column.startswith("tension."):
            pair = column.split(".", 1)[1].replace("~", "\u2013")
            out.append((f"Tension {pair}", f"{float(series[column][-1]):.2f}", f"index; scale {info.tension_scale:g}"))
    return out


def _day_note(day: int, steps: int | None) -> str:
    """The day monitor's note: how far through the scenario's run, or that Step or Play went beyond it."""
    if steps is None:
        return ""
    if day < steps:
        return f"of {steps:,}"
    return f"the scenario's end ({steps:,})" if day == steps else f"past the scenario's {steps:,}"


def monitors_html(snapshot: Snapshot) -> str:
    """The monitors as HTML: one box per number (`monitors`), the step's error in red if there is one."""
    boxes = []
    for name, value, note in monitors(snapshot, snapshot.info):
        slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower())
        note_html = f'<span class="explorer-monitor-note">{html.escape(note)}</span>' if note else ""
        boxes.append(
            f'<div class="explorer-monitor explorer-monitor-{slug}"><span class="explorer-monitor-name">'
            f'{html.escape(name)}</span><span class="explorer-monitor-value">{html.escape(value)}</span>'
            f"{note_html}</div>"
        )
    if snapshot.error:
        boxes.append(f'<div class="explorer-step-error">{html.escape(snapshot.error)}</div>')
    return "".join(boxes)


def events_html(snapshot: Snapshot) -> str:
    """The latest events and the defections so far, as HTML."""
    out = [f'<div class="explorer-events-title">Latest events (day {snapshot.day})</div>']
    if snapshot.events:
        out += [f'<div class="explorer-event">\u2022 {html.escape(line)}</div>' for line in snapshot.events]
    else:
        out.append('<div class="explorer-event">No meeting, clash or attack yet: press Step or Play.</div>')
    if snapshot.defections:
        text = ", ".join(f"{pair.replace('>', ' → ')}: {n}" for pair, n in snapshot.defections.items())
        out.append(f'<div class="explorer-note">Defections so far: {html.escape(text)}</div>')
    return "".join(out)


def _world(info: RunInfo | None) -> tuple | None:
    """What makes two runs comparable on one chart: the factions and the grid."""
    return None if info is None else (info.names, info.height, info.width, info.site_names)


def draw(snapshot: Snapshot, previous: Snapshot | None, scales: AxisScales) -> dict[str, str]:
    """Everything the page shows of a run, as HTML by region (the page's widgets take these as they are).

    Keys: "monitors", "map_title", "map_layer", "map_sites", "map_legend", "events", and for
    each of PANELS "chart-<key>" (axes and previous run), "lines-<key>" (the current run's
    lines, laid over the axes) and "legend-<key>". `snapshot.info` must be the run's `RunInfo`;
    `previous` (or None) is drawn faded in the charts.
    """
    info = snapshot.info
    world = _world(info)
    scales.for_world(world)
    # The previous run is drawn under this one only if it ran in the same world (same factions and
    # grid): after a change of scenario its lines are another conflict's, not a baseline to compare.
    shown_previous = (
        previous
        if previous is not None and previous.run != snapshot.run and _world(previous.info) == world
        else None
    )
    parts = {
        "monitors": monitors_html(snapshot),
        "map_title": f"Control map, day {snapshot.day}",  # any scenario's: the page's heading names it
        "map_layer": map_layer_html(snapshot, info),
        "map_sites": info.sites_html,
        "map_legend": info.legend_html,
        "events": events_html(snapshot),
    }
    for panel in PANELS:
        axes, now, lines = chart_svg(panel, info, snapshot, shown_previous, scales)
        parts[f"chart-{panel.key}"] = axes
        parts[f"lines-{panel.key}"] = now
        parts[f"legend-{panel.key}"] = legend_html(lines, shown_previous is not None)
    return parts
