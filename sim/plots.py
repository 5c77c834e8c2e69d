"""Figures of a run, drawn from its result files alone (never from a model in memory).

    from sim.plots import plot_run
    plot_run("results/baseline/20250101T000000Z")   # -> [.../plots/influence_map.png, ...]

`plot_run` reads a results directory with `sim.results.load_run` and writes six PNGs into
`<directory>/plots/`:

- `influence_map.png`      control and influence at start / middle / end (replicate 0)
- `fighters_territory.png` fighters per faction, insurgent cells, territory shares
- `casualties.png`         cumulative killed and wounded per militia, killed share
- `defections.png`         cumulative defections per direction and a from -> to matrix
- `tension_meetings.png`   tension per hostile pair, meetings (replicate 0), calm
- `insurgency.png`         insurgent cells, insurgent attacks and clashes (7-day sums)

and, when the scenario has `theatres:` (and `grid.bounds`), `theatre_map.png`: the theatres,
the routes between them and the sites on a longitude/latitude map.

With several replicates every time series is the median across replicates per day with a
5-95 % band (`median_band`; cumulative and rolling figures are summed per replicate first,
then the quantiles are taken). Figures use `matplotlib.figure.Figure` with the Agg canvas,
not pyplot, so there is no global state, and every PNG is written atomically.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator, PercentFormatter
from matplotlib.transforms import ScaledTranslation

from sim.figures import (
    BOTTOM_IN,
    CONTESTED_COLOUR,
    CONTESTED_FILL,
    NEUTRAL_COLOUR,
    NOBODY_COLOUR,
    RIVER_COLOUR,
    SITE_STYLE,
    TERRAINS,
    TOP_IN,
    Provenance,
    bbox_around,
    clip_polyline,
    draw_control_map,
    faction_colour,
    faction_label,
    faction_line_colour,
    footer_height,
    new_figure,
    place_labels,
    save_png,
    site_legend_handles,
    terrain_key,
)
from sim.geography import distance_text
from sim.outcomes import TENSION_UNIT
from sim.results import check_plots_dir, load_run

__all__ = ["PLOT_FILES", "faction_colour", "median_band", "plot_run", "replicate_matrix"]

PLOT_FILES = (
    "influence_map.png",
    "fighters_territory.png",
    "casualties.png",
    "defections.png",
    "tension_meetings.png",
    "insurgency.png",
)

DPI = 130
ROLLING_DAYS = 7
QUANTILES = (0.05, 0.95)
DAYS = "time (days since start)"

MEETING_STYLE = {  # outcome -> marker, colour, size
    "agreement": ("^", "#009E73", 50),
    "failure": ("o", "#7F7F7F", 22),
    "escalation": ("x", "#D55E00", 45),
}
# --------------------------------------------------------------------------- statistics


def replicate_matrix(
    frame: pd.DataFrame, column: str, *, cumulative: bool = False, rolling: int | None = None
) -> pd.DataFrame:
    """One column per replicate, one row per step, of `column` (long format in, wide out).

    `cumulative` takes the running sum and `rolling` the sum over the last `rolling` days,
    each within a replicate, before anything is combined across replicates.
    """
    wide = frame.pivot_table(index="step", columns="replicate", values=column, aggfunc="first").sort_index()
    wide = wide.astype(float)
    if cumulative:
        wide = wide.cumsum()
    if rolling:
        wide = wide.rolling(rolling, min_periods=1).sum()
    return wide


def band_of(wide: pd.DataFrame, quantiles: tuple[float, float] = QUANTILES) -> pd.DataFrame:
    """Median and quantile band per row of a step x replicate frame."""
    return pd.DataFrame(
        {
            "median": wide.median(axis=1),
            "low": wide.quantile(quantiles[0], axis=1),
            "high": wide.quantile(quantiles[1], axis=1),
            "n": wide.count(axis=1),
        }
    )


def median_band(
    frame: pd.DataFrame,
    column: str,
    *,
    cumulative: bool = False,
    rolling: int | None = None,
    quantiles: tuple[float, float] = QUANTILES,
) -> pd.DataFrame:
    """Median and 5-95 % band across replicates, per step, of one column of a time series.

    `frame` has columns `replicate`, `step` and `column`. Returns a frame indexed by step
    with `median`, `low`, `high` (the quantiles, linear interpolation) and `n` (replicates).
    Cumulative and rolling sums are taken per replicate first (see `replicate_matrix`).
    """
    return band_of(replicate_matrix(frame, column, cumulative=cumulative, rolling=rolling), quantiles)


# --------------------------------------------------------------------------- drawing helpers


class _Context:
    """What every figure needs to know about the run: names, colours, the footnote."""

    def __init__(self, run):
        self.run = run
        self.ts = run.timeseries
        self.events = run.events
        self.maps = run.maps
        self.names = run.faction_names
        labels = run.maps.get("faction_labels")
        self.labels = [str(x) for x in labels] if labels is not None else list(self.names)
        self.index = {name: i for i, name in enumerate(self.names)}
        columns = set(self.ts.columns)
        self.militias = [n for n in self.names if f"territory.{n}" in columns]
        self.insurgents = [n for n in self.names if n not in self.militias]
        replicates = sorted(self.ts["replicate"].unique()) if "replicate" in self.ts else [0]
        self.replicates = [int(r) for r in replicates]
        self.n_rep = len(self.replicates)
        self.rep0 = self.replicates[0] if self.replicates else 0
        self.manifest = run.manifest
        self.scenario_doc = _read_scenario(run.directory)

    def scenario_name(self) -> str:
        """The run's scenario as its manifest names it (as the footer does), else its scenario.yaml."""
        name = self.manifest.get("scenario") or self.scenario_doc.get("name")
        return str(name) if name else "?"

    def colour(self, name: str) -> str:
        """The colour of `name`'s lines on white (`faction_line_colour`); maps fill with `faction_colour`."""
        return faction_line_colour(self.index[name]) if name in self.index else NEUTRAL_COLOUR

    def label(self, name: str) -> str:
        """`name` with its label for a legend, no parentheses nested (`faction_label`)."""
        return faction_label(name, self.labels[self.index[name]]) if name in self.index else name

    def seed_of(self, replicate: int) -> int | None:
        for entry in self.manifest.get("replicates", []):
            if int(entry.get("replicate", -1)) == replicate:
                return entry.get("seed")
        rows = self.ts.loc[self.ts["replicate"] == replicate, "seed"] if "seed" in self.ts else []
        return int(rows.iloc[0]) if len(rows) else None

    def footnote(self, maps: bool = False) -> str:
        """The footer: the run's provenance (`sim.figures.Provenance`, from manifest.json) and its data files."""
        m = self.manifest
        steps = m.get("steps", int(self.ts["step"].max()) if len(self.ts) else 0)
        seeds = [self.seed_of(r) for r in self.replicates]
        provenance = Provenance.from_manifest(
            m,
            steps=int(steps),
            seeds=tuple(int(s) for s in seeds if s is not None),
            replicates=self.n_rep,
        )
        shown = f"maps show replicate {self.rep0} (seed {self.seed_of(self.rep0)})" if maps and self.n_rep > 1 else ""
        # No directory name here: plots are drawn in a staging directory before it is renamed.
        return provenance.footer(shown, "data: timeseries.csv, events.csv, maps.npz")

    def subtitle(self) -> str:
        if self.n_rep == 1:
            return "one run"
        return f"lines: median of {self.n_rep} replicates per day; shading: 5-95 % range across replicates"

    def series(self, ax, column: str, colour: str, label: str, *, cumulative=False, rolling=None, **style):
        """Median line (and band if several replicates) of one column; returns the band."""
        if column not in self.ts.columns:
            return None
        band = median_band(self.ts, column, cumulative=cumulative, rolling=rolling)
        return self.draw_band(ax, band, colour, label, **style)

    def draw_band(self, ax, band: pd.DataFrame, colour: str, label: str, **style):
        ax.plot(band.index, band["median"], color=colour, label=label, lw=style.pop("lw", 1.8), **style)
        if self.n_rep > 1:
            ax.fill_between(band.index, band["low"], band["high"], color=colour, alpha=0.18, lw=0)
        return band

    def events_of(self, kind: str, replicate: int | None = None) -> pd.DataFrame:
        ev = self.events
        if ev is None or ev.empty or "event" not in ev.columns:
            return pd.DataFrame(columns=["replicate", "step", "event"])
        ev = ev[ev["event"] == kind]
        if replicate is not None and "replicate" in ev.columns:
            ev = ev[ev["replicate"] == replicate]
        return ev


def _read_scenario(directory: Path) -> dict:
    """The resolved scenario, for optional details (river course, cell size, targets)."""
    try:
        doc = yaml.safe_load((Path(directory) / "scenario.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # optional extras: never fail a figure for them
        return {}
    return doc if isinstance(doc, dict) else {}


def _new_figure(
    width: float,
    height: float,
    ctx: _Context,
    title: str,
    subtitle: str | None = None,
    *,
    layout: bool = True,
    maps: bool = False,
    top: float | None = None,
) -> Figure:
    """A run figure: `sim.figures.new_figure` with the run's subtitle and footnote."""
    subtitle = subtitle if subtitle is not None else ctx.subtitle()
    footnote = ctx.footnote(maps=maps)
    return new_figure(width, height, title=title, subtitle=subtitle, footer=footnote, layout=layout, top=top)


CROWDED_LEGEND = 6  # entries: a legend with more is set beside its panel, not over the lines


def _legend(ax, handles: list | None = None, *, loc: str = "best", **kw):
    """`ax.legend`, set to the right of the panel when it has CROWDED_LEGEND entries or more.

    Inside the panel a long legend (the ten militias of syria_wide.yaml) covers the lines it
    names; figures that may have one are drawn wider (`_legend_room`).
    """
    handles = ax.get_legend_handles_labels()[0] if handles is None else handles
    if len(handles) >= CROWDED_LEGEND:
        return ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kw)
    return ax.legend(handles=handles, loc=loc, **kw)


def _legend_room(ctx: _Context, entries: int | None = None) -> float:
    """Inches to add to a figure's width for legends set beside its panels (0 if none is crowded)."""
    entries = len(ctx.militias) if entries is None else entries
    return 4.2 if entries >= CROWDED_LEGEND else 0.0


def _time_axis(ax, steps: int | None = None) -> None:
    ax.set_xlabel(DAYS)
    ax.grid(True, color="#DDDDDD", lw=0.6)
    ax.set_axisbelow(True)
    if steps:
        ax.set_xlim(0, steps)


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _band_proxy(ctx: _Context) -> list:
    if ctx.n_rep == 1:
        return []
    return [Patch(facecolor="#999999", alpha=0.3, label=f"5-95 % across {ctx.n_rep} replicates")]


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _last_step(ctx: _Context) -> int:
    return int(ctx.ts["step"].max()) if len(ctx.ts) else 0


# --------------------------------------------------------------------------- 1. influence map


def _river_label(ctx: _Context) -> str:
    """'river (<grid.river.label>)', or 'river' when the scenario names none (scenario.yaml is read untrusted)."""
    grid = ctx.scenario_doc.get("grid")
    river = grid.get("river") if isinstance(grid, dict) else None
    name = river.get("label") if isinstance(river, dict) else None
    return f"river ({name[:80]})" if isinstance(name, str) and name.strip() else "river"


def _river_line(ctx: _Context, terrain: np.ndarray) -> list[np.ndarray]:
    """River course in (x, y) image coordinates: from scenario.yaml if it has one, else the cells.

    The scenario's course is cut to the part that can show on the map (`clip_polyline`): a
    path of 10,000 points round the globe cost the influence map seconds of drawing.
    """
    grid = ctx.scenario_doc.get("grid") or {}
    try:
        bounds, path = grid["bounds"], grid["river"]["path"]
        h, w = int(grid["height"]), int(grid["width"])
        pts = np.array(path, dtype=float)
        rows = (bounds["lat_max"] - pts[:, 0]) / (bounds["lat_max"] - bounds["lat_min"]) * h - 0.5
        cols = (pts[:, 1] - bounds["lon_min"]) / (bounds["lon_max"] - bounds["lon_min"]) * w - 0.5
        if h == terrain.shape[0] and w == terrain.shape[1] and len(pts) >= 2:
            return [clip_polyline(np.column_stack([cols, rows]), (-0.5, w - 0.5, -0.5, h - 0.5))]
    except (KeyError, TypeError, ValueError, IndexError):
        pass
    river = np.argwhere(terrain == TERRAINS.index("river"))
    if len(river) < 2:
        return []
    by_row = np.ptp(river[:, 0]) >= np.ptp(river[:, 1])
    key, other = (0, 1) if by_row else (1, 0)
    keys = np.unique(river[:, key])
    means = np.array([river[river[:, key] == k, other].mean() for k in keys])
    xy = np.column_stack([means, keys]) if by_row else np.column_stack([keys, means])
    return [xy.astype(float)]


def _cell_km(ctx: _Context) -> tuple[float, float] | None:
    """(east-west, north-south) km per cell, from the scenario's bounds (None without them)."""
    grid = ctx.scenario_doc.get("grid") or {}
    try:
        b = grid["bounds"]
        mid = np.radians((b["lat_min"] + b["lat_max"]) / 2)
        ew = (b["lon_max"] - b["lon_min"]) * 111.32 * np.cos(mid) / int(grid["width"])
        ns = (b["lat_max"] - b["lat_min"]) * 111.32 / int(grid["height"])
        return float(ew), float(ns)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def scale_bar_cells(km_per_cell: float, width: int) -> int:
    """Length in cells of a map's scale bar: about 25 km, at most a third of the map's width.

    The cap keeps the bar on the map where 25 km is wider than the grid (a grid a few hundred
    metres across would have drawn a bar of thousands of cells off the panel).
    """
    return max(1, min(round(25 / km_per_cell), width // 3))


def scale_bar_label(km_per_cell: float, cells: int) -> str:
    """The label under a scale bar `cells` long: its length east-west, km as whole numbers, metres below 1 km."""
    km = cells * km_per_cell
    return f"{distance_text(km) if km < 0.9995 else f'{km:.0f} km'} east-west"


def keep_inside(ax, text, renderer, pad: float = 2.0) -> None:
    """Move `text` (in data coordinates) the least that puts its box inside `ax`'s, `pad` pixels in.

    A scale bar's label is centred on the bar; with a bar one cell long at the map's left edge
    (a grid of the whole globe: "835 km east-west" under a bar of one 835 km cell) half of it
    fell off the panel. A label wider or taller than the panel is aligned with its left or top.
    """
    box, frame = text.get_window_extent(renderer), ax.get_window_extent(renderer)
    dx = dy = 0.0
    if box.width > frame.width - 2 * pad or box.x0 < frame.x0 + pad:
        dx = frame.x0 + pad - box.x0
    elif box.x1 > frame.x1 - pad:
        dx = frame.x1 - pad - box.x1
    if box.height > frame.height - 2 * pad or box.y1 > frame.y1 - pad:
        dy = frame.y1 - pad - box.y1
    elif box.y0 < frame.y0 + pad:
        dy = frame.y0 + pad - box.y0
    if dx or dy:
        x, y = ax.transData.transform(text.get_position())
        text.set_position(ax.transData.inverted().transform((x + dx, y + dy)))


def scale_bar_origin(height: int, width: int, cells: int, rows: np.ndarray, cols: np.ndarray) -> tuple[float, float]:
    """(x, y) in grid cells where a map's scale bar `cells` long starts: the bottom corner with fewest sites.

    The bar and its label take about max(cells, 12) cells by 4 rows (a label of ~15 characters
    at 7 pt on a map panel); the bottom left is taken unless it holds more sites than the bottom
    right (the north arrow is at the top right). Ties keep the bottom left.
    """
    span = max(cells, 12)
    y0 = height - 1.5
    corners = [(1.0, y0), (max(1.0, width - 2.0 - span), y0)]

    def crowding(x0: float) -> int:
        near_x = (cols >= x0 - 2) & (cols <= x0 + span + 2)
        near_y = rows >= y0 - 5
        return int((near_x & near_y).sum())

    x0, y = min(corners, key=lambda corner: crowding(corner[0]))
    # On a grid a few cells wide (2 x 60) the corners above lie off the map's right edge: keep the bar on it.
    return max(-0.5, min(x0, width - 0.5 - cells)), y


def plot_influence_map(ctx: _Context, path: Path) -> Path:
    """Draw `influence_map.png` to `path` and return `path`.

    Control and influence of the first replicate at each snapshot (start, middle, end), one
    map per snapshot, with the sites, that replicate's clashes and a scale bar in km when the
    scenario has geographic bounds. The key and the list of sites without a label go beside
    or under the maps, wherever leaves no blank band (`map_legend_layout`).
    """
    maps = ctx.maps
    terrain = maps["terrain"]
    control_all, influence_all = maps["control"], maps["influence"]
    snapshot_steps = [int(s) for s in maps["snapshot_steps"]]
    rep_pos = ctx.replicates.index(ctx.rep0) if ctx.rep0 in ctx.replicates else 0
    rep_pos = min(rep_pos, control_all.shape[0] - 1)
    control, influence = control_all[rep_pos], influence_all[rep_pos]
    h, w = terrain.shape
    clash = np.asarray(maps.get("clash_cells", np.zeros((0, 4))), dtype=np.int64).reshape(-1, 4)
    clash = clash[clash[:, 0] == ctx.rep0]

    names = [str(x) for x in maps["site_names"]]
    labels = [str(x) for x in maps["site_labels"]]
    kinds = [str(x) for x in maps["site_kinds"]]
    rows, cols = np.asarray(maps["site_rows"]), np.asarray(maps["site_cols"])

    n_panels = len(snapshot_steps)
    cell_km = _cell_km(ctx)
    km = cell_km[0] if cell_km else None
    panel_w, panel_h = map_panel_size(h, w)
    stretch = (panel_h / h) / (panel_w / w)  # a cell's drawn height over its width: 1 unless the grid is narrow
    river_lines = _river_line(ctx, terrain)
    handles, unlabelled = _map_legend(ctx, control, terrain, kinds, labels, rows, cols, river_lines)
    legend = map_legend_layout(handles, unlabelled, panel_w * n_panels + 0.12 * (n_panels - 1), panel_h)
    fig_w = legend.fig_w
    footer_in = max(BOTTOM_IN, footer_height(ctx.footnote(maps=True), fig_w))
    below_in = legend.below_h + (BELOW_GAP_IN if legend.below_h else 0.0)  # the key or site list under the maps
    fig_h = footer_in + 0.1 + below_in + panel_h + 0.4 + TOP_IN  # 0.4: the panels' titles
    # The scenario's own name: a title that says "along the corridor" fits one scenario, not the toy's two towns.
    title = f"Control and influence in scenario '{ctx.scenario_name()}', replicate {ctx.rep0}"
    if ctx.n_rep > 1:
        title += f" (one of {ctx.n_rep})"
    if abs(stretch - 1) < 0.01:
        subtitle = "north is up; each square is one grid cell of the model"
    else:  # a grid of, say, 2 x 60 cells: its maps would be a hair wide (or high) and unreadable
        subtitle = (
            f"north is up; each rectangle is one grid cell of the model ({w} x {h} cells), drawn "
            + (f"{stretch:.3g} times as high as wide" if stretch > 1 else f"{1 / stretch:.3g} times as wide as high")
        )
    if cell_km:
        subtitle += f" ({distance_text(cell_km[0])} east-west x {distance_text(cell_km[1])} north-south)"
    sub_lines = textwrap.wrap(subtitle, int(fig_w * 14))  # ~14 characters of 9-pt text an inch
    more_top = 0.16 * (len(sub_lines) - 1)  # a line of 9-pt text, for each line the subtitle takes beyond one
    fig_h += more_top
    fig = _new_figure(
        fig_w, fig_h, ctx, title, "\n".join(sub_lines), layout=False, maps=True, top=TOP_IN + more_top
    )
    left, gap = 0.25 / fig_w, 0.12 / fig_w
    height = panel_h / fig_h
    map_bottom = (footer_in + 0.1 + below_in) / fig_h
    axes = [
        fig.add_axes((left + k * (panel_w / fig_w + gap), map_bottom, panel_w / fig_w, height))
        for k in range(n_panels)
    ]
    renderer = fig.canvas.get_renderer()
    which = ("start", "middle", "end")

    for k, ax in enumerate(axes):
        step = snapshot_steps[k]
        draw_control_map(ax, control[k], influence[k], terrain, river_lines, river_width=2.4)
        ax.set_aspect("auto")  # fill the panel: map_panel_size gave it the grid's shape, within bounds
        start = snapshot_steps[k - 1] if k > 0 else -1
        period = clash[(clash[:, 1] > start) & (clash[:, 1] <= step)] if k > 0 else clash[:0]
        if len(period):
            ax.scatter(period[:, 3], period[:, 2], marker="x", s=14, c="black", lw=0.9, zorder=4)
        avoid = []
        for kind, (marker, size, _) in SITE_STYLE.items():
            sel = [i for i, kk in enumerate(kinds) if kk == kind]
            if not sel:
                continue
            ax.scatter(
                cols[sel], rows[sel], marker=marker, s=size, facecolor="white", edgecolor="black", lw=1.0, zorder=6
            )
        for kind in ("headquarters", "venue", "post"):  # drawn again smaller-on-top for clusters
            sel = [i for i, kk in enumerate(kinds) if kk == kind]
            if sel:
                marker, size, _ = SITE_STYLE[kind]
                ax.scatter(
                    cols[sel], rows[sel], marker=marker, s=size, facecolor="black", edgecolor="white", lw=0.5, zorder=7
                )
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        n_clash = len(period)
        span = (
            f"{n_clash} clash{'es' if n_clash != 1 else ''} on days {start + 1}-{step} (x)"
            if k > 0
            else "initial state"
        )
        span = "\n".join(textwrap.wrap(span, max(16, int(panel_w * 12.5))))  # ~12.5 characters of 10-pt text an inch
        ax.set_title(f"Day {step} ({which[k] if k < 3 else k})\n{span}", fontsize=10)
        # North arrow, its size in points from the panel's top right corner: in fractions of the
        # panel it was a stub with the N on it on a map 1.3 in high (a grid 2 cells high).
        corner = ax.transAxes + ScaledTranslation(-NORTH_ARROW_PT[0] / 72, -NORTH_ARROW_PT[1] / 72, fig.dpi_scale_trans)
        north = ax.annotate(
            "N",
            xy=(1, 1),
            xycoords=corner,
            xytext=(0, -NORTH_ARROW_PT[2]),
            textcoords="offset points",
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold",
            arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.0},
        )
        label = None
        if km:
            cells = scale_bar_cells(km, w)
            x0, y0 = scale_bar_origin(h, w, cells, rows, cols)
            ax.plot([x0, x0 + cells], [y0, y0], color="black", lw=2.2, zorder=7, solid_capstyle="butt")
            label = ax.text(
                x0 + cells / 2,
                y0 - 0.6,
                scale_bar_label(km, cells),
                ha="center",
                va="bottom",
                fontsize=7,
                zorder=7,
            )
        fig.canvas.draw()
        if label is not None:
            keep_inside(ax, label, renderer)
        for i in range(len(names)):
            centre = ax.transData.transform((cols[i], rows[i]))
            r = np.sqrt(SITE_STYLE.get(kinds[i], (".", 20, False))[1]) / 2 * fig.dpi / 72
            avoid.append(bbox_around(centre, r))
        avoid.append(north.get_window_extent(renderer))  # no site's name over the north arrow
        if label is not None:
            avoid.append(label.get_window_extent(renderer))
        items = []
        order = sorted(
            [i for i in range(len(names)) if SITE_STYLE.get(kinds[i], (None, 0, False))[2]],
            key=lambda i: (kinds[i] != "town", cols[i]),
        )
        for i in order:
            radius = np.sqrt(SITE_STYLE[kinds[i]][1]) / 2
            items.append((cols[i], rows[i], textwrap.fill(labels[i], 20, break_on_hyphens=False), radius))
        place_labels(ax, renderer, items, avoid)

    _draw_map_legend(fig, legend, handles, map_bottom * fig_h, panel_h)
    return save_png(fig, path)


NORTH_ARROW_PT = (13, 6, 26)  # the arrow's tip left of and below the panel's top right corner; the N below the tip
KEY_TITLE = "Grid-cell colour = controlling faction; paler =\nsmaller share of the grid cell's influence"
KEY_TITLE_WIDE = "Grid-cell colour = controlling faction; paler = smaller share of the grid cell's influence"
KEY_STYLE = {"fontsize": 8, "frameon": False, "title_fontsize": 8, "alignment": "left", "borderaxespad": 0}
LEGEND_COLUMN_IN = 3.6  # the key's column beside the maps, inches
PANEL_TITLES_IN = 0.45  # the panels' titles above the maps; the key beside them starts level with their top
BELOW_GAP_IN = 0.15  # between the maps and a key or list of sites under them, inches
SITE_LIST_PT = 7.2
SITE_LIST_MAX_ROWS = 8  # lines in a column of the sites listed under the maps; sites beyond are counted


@dataclass(frozen=True)
class MapLegendLayout:
    """Where the influence map's key and its list of unlabelled sites go, and the figure's width (inches).

    The list of sites marked without a label goes under the key in its column beside the maps
    where both fit beside them, else under the maps in as many columns as fit their width. The
    key (factions, cell states, site kinds) goes in a column beside the maps where it is no
    taller than they are with their titles (and the list under them, if any), else under them
    in as many columns as fit. Beside maps 3.5 in high, syria_wide's 15 sites listed under the
    key made the figure 2.4 times as tall as its maps; the key beside maps 1.3 in high (a grid
    2 cells high) left a blank band under them.
    """

    fig_w: float
    key_beside: bool
    key_ncol: int  # columns of the key when it is under the maps
    key_below_h: float  # height of the key under the maps (0 when beside)
    sites_beside: bool
    site_header: str  # "Sites marked without a label:" ("" without such sites)
    site_columns: tuple[tuple[str, ...], ...]  # the lines of each column of the list
    site_column_w: float
    sites_below_h: float  # height of the list under the maps (0 when beside or empty)

    @property
    def below_h(self) -> float:
        """Height of what goes under the maps (key, list of sites), inches; 0 for nothing."""
        gap = 0.1 if self.key_below_h and self.sites_below_h else 0.0
        return self.key_below_h + gap + self.sites_below_h


def _size_in(draw) -> tuple[float, float]:
    """(width, height) in inches of the artist `draw(fig)` adds to a scratch figure (a legend, a text)."""
    fig = new_figure(40, 40, layout=False)
    artist = draw(fig)
    box = artist.get_window_extent(fig.canvas.get_renderer())
    return box.width / fig.dpi, box.height / fig.dpi


def _key_size(handles: list, title: str, ncol: int = 1) -> tuple[float, float]:
    def draw(fig):
        ax = fig.add_axes((0, 0, 1, 1))
        ax.axis("off")
        return ax.legend(handles=handles, loc="upper left", title=title, ncol=ncol, **KEY_STYLE)

    return _size_in(draw)


def _text_size(text: str, fontsize: float) -> tuple[float, float]:
    return _size_in(lambda fig: fig.text(0, 0.5, text, fontsize=fontsize))


def deal_columns(entries: list[list[str]], n_cols: int, max_rows: int) -> tuple[list[list[str]], int]:
    """Entries (each its lines) in order into at most `n_cols` columns as short as can be, none split.

    A column holds at most `max_rows` lines (or its one entry, if longer). Returns the columns'
    lines and how many entries did not fit (the last ones).
    """
    if not entries:
        return [], 0
    longest = max(len(e) for e in entries)
    total = sum(len(e) for e in entries)
    cap = max(max_rows, longest)
    rows = min(max(longest, -(-total // n_cols)), cap)
    while True:
        columns: list[list[str]] = [[]]
        shown = 0
        for entry in entries:
            if columns[-1] and len(columns[-1]) + len(entry) > rows:
                if len(columns) == n_cols:
                    break
                columns.append([])
            columns[-1].extend(entry)
            shown += 1
        if shown == len(entries) or rows >= cap:
            return columns, len(entries) - shown
        rows += 1


def map_legend_layout(handles: list, unlabelled: list[list[str]], maps_w: float, panel_h: float) -> MapLegendLayout:
    """Lay out the influence map's key and list of unlabelled sites (`MapLegendLayout`), measured in Agg.

    Args:
        handles: the key's entries (`_map_legend`).
        unlabelled: the sites marked without a label, each as its lines.
        maps_w: width of the row of maps, inches.
        panel_h: height of a map, inches.
    """
    room = panel_h + PANEL_TITLES_IN  # beside the maps, from the top of their titles to their bottom
    key_h = _key_size(handles, KEY_TITLE)[1]
    header, columns, column_w, sites_below_h, sites_beside = "", [], 0.0, 0.0, False
    if unlabelled:
        header = "Sites marked without a label:"
        lines = [line for entry in unlabelled for line in entry]
        column_w, one_column_h = _text_size("\n".join([header, *lines]), SITE_LIST_PT)
        sites_beside = key_h + 0.1 + one_column_h <= room
        if sites_beside:
            columns = [lines]
        else:  # under the maps, in as many columns as fit their width
            n_cols = max(1, int((maps_w + 0.3) // (column_w + 0.3)))
            columns, more = deal_columns(unlabelled, n_cols, SITE_LIST_MAX_ROWS)
            if more:  # hundreds of posts: the figure says how many it leaves out
                shown = len(unlabelled) - more
                header = f"Sites marked without a label ({shown} of {len(unlabelled)}; scenario.yaml has all):"
            tallest = max(columns, key=len)
            sites_below_h = _text_size("\n".join([header, *tallest]), SITE_LIST_PT)[1] + 0.05
    # The key beside the maps may reach down beside the sites listed under them.
    key_beside = key_h <= room + (BELOW_GAP_IN + sites_below_h if sites_below_h else 0.0)
    fig_w = maps_w + (LEGEND_COLUMN_IN + 0.6 if key_beside else 0.5)
    key_ncol, key_below_h = 1, 0.0
    if not key_beside:  # a low map: the key under it, in as few rows as fit the maps' width
        for key_ncol in range(len(handles), 0, -1):
            width, key_below_h = _key_size(handles, KEY_TITLE_WIDE, key_ncol)
            if width <= maps_w:
                break
    return MapLegendLayout(
        fig_w=fig_w,
        key_beside=key_beside,
        key_ncol=key_ncol,
        key_below_h=key_below_h,
        sites_beside=sites_beside,
        site_header=header,
        site_columns=tuple(tuple(c) for c in columns),
        site_column_w=column_w + 0.3,
        sites_below_h=sites_below_h,
    )


def _draw_map_legend(fig, layout: MapLegendLayout, handles: list, maps_bottom_in: float, panel_h: float) -> None:
    """Draw the key and the list of unlabelled sites where `layout` puts them; the maps' bottom in inches."""
    fig_w, fig_h = fig.get_size_inches()
    if layout.key_beside:  # a column right of the maps, its top level with the panels' titles
        lax = fig.add_axes(
            (
                1 - (LEGEND_COLUMN_IN + 0.05) / fig_w,
                (maps_bottom_in - 0.15) / fig_h,
                LEGEND_COLUMN_IN / fig_w,
                (panel_h + 0.15 + PANEL_TITLES_IN) / fig_h,
            )
        )
        lax.axis("off")
        leg = lax.legend(handles=handles, loc="upper left", title=KEY_TITLE, **KEY_STYLE)
        if layout.sites_beside:
            fig.canvas.draw()
            box = leg.get_window_extent(fig.canvas.get_renderer()).transformed(lax.transAxes.inverted())
            text = "\n".join([layout.site_header, *layout.site_columns[0]])
            lax.text(0, box.y0 - 0.03, text, transform=lax.transAxes, fontsize=SITE_LIST_PT, va="top", ha="left")
    top = maps_bottom_in - BELOW_GAP_IN  # what goes under the maps hangs from here
    if not layout.key_beside:
        kax = fig.add_axes(
            (0.25 / fig_w, (top - layout.key_below_h) / fig_h, (fig_w - 0.5) / fig_w, layout.key_below_h / fig_h)
        )
        kax.axis("off")
        kax.legend(handles=handles, loc="upper left", title=KEY_TITLE_WIDE, ncol=layout.key_ncol, **KEY_STYLE)
        top -= layout.key_below_h + 0.1
    if layout.site_columns and not layout.sites_beside:
        header = fig.text(0.25 / fig_w, top / fig_h, layout.site_header, fontsize=SITE_LIST_PT, va="top", ha="left")
        line_h = header.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi
        for k, column in enumerate(layout.site_columns):
            x = 0.25 + k * layout.site_column_w
            fig.text(x / fig_w, (top - line_h) / fig_h, "\n".join(column), fontsize=SITE_LIST_PT, va="top", ha="left")


def _terrain_patches(terrain: np.ndarray) -> list:
    """Legend patches for the impassable ground and the outside of the modelled area a map shows (`terrain_key`)."""
    return [Patch(facecolor=colour, edgecolor="#BBBBBB", label=label) for label, colour in terrain_key(terrain)]


def _map_legend(
    ctx: _Context, control, terrain, kinds, labels, rows, cols, river_lines
) -> tuple[list, list[list[str]]]:
    """The influence map's key entries, and the sites marked without a label (each as its lines; none: [])."""
    present = sorted({int(c) for c in np.unique(control) if c >= 0} | {ctx.index[m] for m in ctx.militias})
    handles = [Patch(facecolor=faction_colour(f), edgecolor="none", label=ctx.label(ctx.names[f])) for f in present]
    handles += [
        Patch(facecolor=CONTESTED_FILL, edgecolor="#555555", hatch="////", lw=0, label="contested"),
        Patch(facecolor=NOBODY_COLOUR, edgecolor="#BBBBBB", label="no militia's influence"),
        *_terrain_patches(terrain),
        Line2D([], [], marker="x", color="black", lw=0, markersize=5, label="clash since the previous map"),
    ]
    if any(len(piece) for piece in river_lines):  # a river on the map, named as the scenario names it
        handles.insert(-1, Line2D([], [], color=RIVER_COLOUR, lw=2.4, label=_river_label(ctx)))
    handles += site_legend_handles(kinds, marker_scale=0.9)
    unlabelled = [i for i in range(len(kinds)) if not SITE_STYLE.get(kinds[i], (None, 0, False))[2]]
    entries = [
        textwrap.wrap(
            f"{'■' if kinds[i] == 'headquarters' else '★' if kinds[i] == 'venue' else '•'} "
            f"{labels[i]} (row {rows[i]}, col {cols[i]})",
            60,
            subsequent_indent="   ",
        )
        for i in unlabelled
    ]
    return handles, entries


MAP_PANEL_IN = 5.2  # width of a map panel of a grid at most as high as wide, inches
MAP_PANEL_MAX_IN = 8.0  # the longest side of a map panel, inches
MAP_MAX_ASPECT = 4.0  # a panel is at most 4 times as high as wide, or as wide as high
THEATRE_MAP_MAX_IN = 12.0  # the longest side of the theatre map's panel, inches
THEATRE_LEGEND_IN = 6.5  # the height the theatre map's legend (factions, theatres, routes, sites) takes, inches


def map_panel_size(height: int, width: int) -> tuple[float, float]:
    """(width, height) in inches of the influence map's panel for a grid of `height` x `width` cells.

    The grid's own shape while it is at most MAP_MAX_ASPECT times as high as wide or as wide
    as high (cells then drawn square); beyond that the panel keeps that ratio and the cells are
    drawn stretched: a 2 x 60 grid made a figure of 2574 x 20482 pixels, a 60 x 2 one
    maps a few pixels high. A panel is MAP_PANEL_IN wide, or less where that would make it
    higher than MAP_PANEL_MAX_IN.
    """
    ratio = min(max(height / max(width, 1), 1 / MAP_MAX_ASPECT), MAP_MAX_ASPECT)
    panel_w = min(MAP_PANEL_IN, MAP_PANEL_MAX_IN / ratio)
    return panel_w, panel_w * ratio


# --------------------------------------------------------------------------- 2. fighters and territory


def plot_fighters_territory(ctx: _Context, path: Path) -> Path:
    """Draw `fighters_territory.png` to `path` and return `path`.

    Three panels over time: fighters per militia (people), insurgent strength (insurgent
    cells) and each militia's share of passable grid cells; medians with 5-95 % bands across replicates.
    """
    fig = _new_figure(10 + _legend_room(ctx), 9.5, ctx, "Fighters and territory over time")
    axes = fig.subplots(3, 1, sharex=True, height_ratios=[3, 1.3, 3])
    ax_f, ax_i, ax_t = axes
    for name in ctx.militias:
        ctx.series(ax_f, f"fighters.{name}", ctx.colour(name), ctx.label(name))
    ax_f.set_ylabel("fighters (people)")
    ax_f.yaxis.set_major_locator(MaxNLocator(integer=True))  # people: no 2.5 on a count axis
    ax_f.set_title("Fighters per militia", loc="left", fontsize=11)
    _legend(ax_f, ax_f.get_legend_handles_labels()[0] + _band_proxy(ctx), fontsize=8)
    ax_f.set_ylim(bottom=0)

    drawn = False
    for name in ctx.insurgents:
        column = f"fighters.{name}"
        if column in ctx.ts.columns:
            ctx.series(ax_i, column, ctx.colour(name), f"{ctx.labels[ctx.index[name]]}: active insurgent cells")
            drawn = True
    if drawn:
        ax_i.set_ylabel("insurgent cells (count)")
        ax_i.set_title("Insurgent cells (each a small clandestine group, not people)", loc="left", fontsize=11)
        ax_i.legend(fontsize=8, loc="upper left")
        ax_i.set_ylim(bottom=0)
        ax_i.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    else:
        _no_data(ax_i, "no insurgent faction in this scenario")

    for name in ctx.militias:
        ctx.series(ax_t, f"territory.{name}", ctx.colour(name), ctx.label(name))
    ctx.series(ax_t, "territory.contested", CONTESTED_COLOUR, "contested", ls="--")
    ax_t.set_ylabel("share of territory\n(% of passable grid cells)")
    ax_t.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax_t.set_title("Territory controlled", loc="left", fontsize=11)
    _legend(ax_t, fontsize=8)
    ax_t.set_ylim(bottom=0)
    for ax in axes:
        _time_axis(ax, _last_step(ctx))
    for ax in axes[:-1]:
        ax.set_xlabel("")
    return save_png(fig, path)


# --------------------------------------------------------------------------- 3. casualties


def _target(ctx: _Context, key: str) -> float | None:
    try:
        return float((ctx.scenario_doc.get("targets") or {})[key])
    except (KeyError, TypeError, ValueError):
        return None


def plot_casualties(ctx: _Context, path: Path) -> Path:
    """Draw `casualties.png` to `path` and return `path`.

    Cumulative killed and wounded per militia (people; clashes and insurgent attacks) on a
    shared scale, and the killed share of all militia casualties so far (%) against the
    scenario's `targets.killed_share` where it has one.
    """
    fig = _new_figure(12, 8.5, ctx, "Casualties")
    grid = fig.add_gridspec(2, 2, height_ratios=[2.2, 1])
    ax_k, ax_w = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax_s = fig.add_subplot(grid[1, :])
    for ax, figure, what in ((ax_k, "killed", "Killed"), (ax_w, "wounded", "Wounded")):
        for name in ctx.militias:
            ctx.series(ax, f"{figure}.{name}", ctx.colour(name), ctx.label(name), cumulative=True)
        ax.set_ylabel(f"{figure}, cumulative (people)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{what} per militia (running total; clashes and insurgent attacks)", loc="left", fontsize=10)
        ax.set_ylim(bottom=0)
        _time_axis(ax, _last_step(ctx))
    ax_k.legend(handles=ax_k.get_legend_handles_labels()[0] + _band_proxy(ctx), fontsize=8, loc="upper left")
    ymax = max(ax_k.get_ylim()[1], ax_w.get_ylim()[1])
    ax_k.set_ylim(0, ymax)
    ax_w.set_ylim(0, ymax)

    killed = [f"killed.{n}" for n in ctx.militias if f"killed.{n}" in ctx.ts.columns]
    wounded = [f"wounded.{n}" for n in ctx.militias if f"wounded.{n}" in ctx.ts.columns]
    if killed and wounded:
        frame = ctx.ts[["replicate", "step"]].assign(
            _killed=ctx.ts[killed].sum(axis=1), _wounded=ctx.ts[wounded].sum(axis=1)
        )
        k = replicate_matrix(frame, "_killed", cumulative=True)
        wd = replicate_matrix(frame, "_wounded", cumulative=True)
        share = k / (k + wd).where((k + wd) > 0)
        band = ctx.draw_band(ax_s, band_of(share), "black", "killed / (killed + wounded), all militias")
        target = _target(ctx, "killed_share")
        if target is not None:
            ax_s.axhline(
                target, color="#7F7F7F", ls="--", lw=1.2, label=f"reference from the scenario's targets: {target:.1%}"
            )
        final = band["median"].dropna()
        if len(final):
            x, y = final.index[-1], final.iloc[-1]
            low, high = band["low"].loc[x], band["high"].loc[x]
            text = f"day {x}: {y:.0%} of casualties killed"
            if ctx.n_rep > 1:
                text += f"\n(5-95 %: {low:.0%}-{high:.0%})"
            ax_s.annotate(
                text,
                (x, y),
                xytext=(-10, 12),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=9,
                arrowprops={"arrowstyle": "-", "lw": 0.7},
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#AAAAAA"},
            )
            ax_s.plot([x], [y], "o", color="black", ms=4)
        ax_s.set_ylim(0, 1)
        ax_s.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax_s.set_ylabel("killed share\nof casualties (%)")
        ax_s.set_title("Killed share of all militia casualties so far", loc="left", fontsize=10)
        ax_s.legend(fontsize=8, loc="best")
    else:
        _no_data(ax_s, "no casualty columns in timeseries.csv")
    _time_axis(ax_s, _last_step(ctx))
    return save_png(fig, path)


# --------------------------------------------------------------------------- 4. defections


DEFECTION = re.compile(r"^defections\.(?P<a>[^>]+)>(?P<b>.+)$")
LINESTYLES = ("-", "--", ":", "-.")


def plot_defections(ctx: _Context, path: Path) -> Path:
    """Draw `defections.png` to `path` and return `path`.

    Cumulative defections per direction that occurred (fighters), and a from -> to matrix
    of total defections over the run (median across replicates).
    """
    fig = _new_figure(13 + _legend_room(ctx), 6.2, ctx, "Defections between militias")
    grid = fig.add_gridspec(1, 2, width_ratios=[2.1, 1])
    ax_l, ax_m = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    pairs = [(m["a"], m["b"], c) for c in ctx.ts.columns if (m := DEFECTION.match(c))]
    totals = {
        (a, b): replicate_matrix(ctx.ts, column).sum(axis=0)  # total per replicate
        for a, b, column in pairs
    }
    drawn = 0
    for a, b, column in pairs:
        if totals[(a, b)].sum() <= 0:
            continue
        style = LINESTYLES[ctx.index.get(b, 0) % len(LINESTYLES)]
        ctx.series(ax_l, column, ctx.colour(a), f"{a} \u2192 {b}", cumulative=True, ls=style)
        drawn += 1
    if drawn:
        ax_l.set_ylabel("defections, cumulative (fighters)")
        ax_l.yaxis.set_major_locator(MaxNLocator(integer=True))
        _legend(
            ax_l,
            ax_l.get_legend_handles_labels()[0] + _band_proxy(ctx),
            fontsize=8,
            loc="upper left",
            title="from \u2192 to (colour: from; line style: to)",
            title_fontsize=8,
        )
        ax_l.set_ylim(bottom=0)
        _time_axis(ax_l, _last_step(ctx))
    else:
        _no_data(ax_l, "no defections in this run")
    ax_l.set_title("Fighters who changed side, running total", loc="left", fontsize=11)

    militias = ctx.militias
    if pairs and militias:
        matrix = np.full((len(militias), len(militias)), np.nan)
        for (a, b), per_rep in totals.items():
            if a in militias and b in militias:
                matrix[militias.index(a), militias.index(b)] = float(np.median(per_rep))
        shown = np.nan_to_num(matrix)
        image = ax_m.imshow(np.ma.masked_invalid(matrix), cmap="Blues", vmin=0, vmax=max(shown.max(), 1))
        vmax = max(shown.max(), 1)
        for i in range(len(militias)):
            for j in range(len(militias)):
                if i == j:
                    ax_m.text(j, i, "\u2014", ha="center", va="center", color="#999999")
                    continue
                v = matrix[i, j]
                text = "n/a" if np.isnan(v) else (f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}")
                ax_m.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=11,
                    fontweight="bold",
                    color="white" if (not np.isnan(v) and v > 0.55 * vmax) else "black",
                )
        # Side by side, names of more than a few militias overlap: set them at a slant.
        slant = len(militias) > 4 or sum(map(len, militias)) > 36
        ax_m.set_xticks(
            range(len(militias)),
            militias,
            rotation=40 if slant else 0,
            ha="right" if slant else "center",
            rotation_mode="anchor",
        )
        ax_m.set_yticks(range(len(militias)), militias)
        ax_m.set_xlabel("to (faction joined)")
        ax_m.set_ylabel("from (faction left)")
        which = f"median over {ctx.n_rep} replicates" if ctx.n_rep > 1 else "one run"
        ax_m.set_title(f"Total defections over {_days(_last_step(ctx))}\n(fighters; {which})", fontsize=10)
        cbar = fig.colorbar(image, ax=ax_m, shrink=0.75)
        cbar.set_label("fighters")
    else:
        _no_data(ax_m, "no defection columns")
    return save_png(fig, path)


# --------------------------------------------------------------------------- 5. tension and meetings


TENSION = re.compile(r"^tension\.(?P<a>[^~]+)~(?P<b>.+)$")
TENSION_AXIS = f"tension ({TENSION_UNIT})"


def _rule(ctx: _Context, section: str, key: str) -> float | None:
    """A number of the run's resolved scenario (`rules.<section>.<key>`), None if it has none."""
    try:
        value = (ctx.scenario_doc.get("rules") or {})[section][key]
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    except (KeyError, TypeError):
        return None


def tension_scale_text(scale: float | None, threshold: float | None) -> str:
    """What a tension value means in a run: where clashes and meetings start (docs/ODD.md §7.7, §7.9)."""
    said = []
    if scale is not None:
        said.append(
            f"at tension {scale:g} the daily clash chance on a front is 63 % of its ceiling (86 % at {2 * scale:g})"
        )
    if threshold is not None:
        said.append(f"a mediation meeting is called at {threshold:g}")
    return "tension: 0 = no tension, no upper bound; " + "; ".join(said) if said else "tension: 0 = no tension"


def plot_tension_meetings(ctx: _Context, path: Path) -> Path:
    """Draw `tension_meetings.png` to `path` and return `path`.

    One panel per hostile pair of militias: tension over time (index), the first
    replicate's mediation meetings marked by outcome, and its calm after agreements (0-1).
    """
    pairs = [(m["a"], m["b"]) for c in ctx.ts.columns if (m := TENSION.match(c))]
    n = max(1, len(pairs))
    note = f"meetings and calm: replicate {ctx.rep0} only; markers at the tension before the meeting"
    if ctx.n_rep == 1:
        note = "meeting markers at the tension before the meeting"
    scale, threshold = _rule(ctx, "clashes", "tension_scale"), _rule(ctx, "mediation", "tension_threshold")
    fig = _new_figure(
        11,
        1.7 + 3.4 * n,
        ctx,
        "Tension between hostile militias, mediation meetings and calm",
        f"{ctx.subtitle()}; {note}\n{tension_scale_text(scale, threshold)}",
        top=0.9,
    )
    axes = np.atleast_1d(fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0])
    meetings = ctx.events_of("meeting", ctx.rep0)
    if not pairs:
        _no_data(axes[0], "no hostile pair of militias in this scenario")
    rep = f"replicate {ctx.rep0}" if ctx.n_rep > 1 else "this run"
    for ax, (a, b) in zip(axes, pairs):
        calm_col, tension_col = f"calm.{a}~{b}", f"tension.{a}~{b}"
        extra = []
        if calm_col in ctx.ts.columns:  # calm of the run whose meetings are marked
            twin = ax.twinx()
            calm = replicate_matrix(ctx.ts, calm_col)[ctx.rep0]
            twin.fill_between(calm.index, 0, calm.values, color="#009E73", alpha=0.18, lw=0, step="post")
            twin.set_ylim(0, 1.5)
            twin.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
            twin.set_ylabel("calm after an agreement (0-1)", color="#00704F")
            twin.tick_params(axis="y", colors="#00704F")
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
            extra.append(Patch(facecolor="#009E73", alpha=0.3, label=f"calm after an agreement, {rep} (right axis)"))
        ctx.series(
            ax, tension_col, "black", f"tension {a}\u2013{b}" + (f", median of {ctx.n_rep}" if ctx.n_rep > 1 else "")
        )
        if ctx.n_rep > 1 and tension_col in ctx.ts.columns:
            own = replicate_matrix(ctx.ts, tension_col)[ctx.rep0]
            ax.plot(own.index, own.values, color="#7F7F7F", lw=0.9, ls="-", label=f"tension, {rep}")
        handles = ax.get_legend_handles_labels()[0] + _band_proxy(ctx) + extra
        if not meetings.empty:
            sides = meetings[["side_a", "side_b"]].astype(str)
            mine = meetings[
                ((sides["side_a"] == a) & (sides["side_b"] == b)) | ((sides["side_a"] == b) & (sides["side_b"] == a))
            ]
            for outcome, (marker, colour, size) in MEETING_STYLE.items():
                sel = mine[mine["outcome"] == outcome]
                ax.scatter(
                    sel["step"],
                    sel["tension"],
                    marker=marker,
                    color=colour,
                    s=size,
                    zorder=5,
                    lw=1.6 if marker == "x" else 0.6,
                    edgecolors="white" if marker != "x" else None,
                )
                handles.append(
                    Line2D(
                        [],
                        [],
                        marker=marker,
                        color=colour,
                        lw=0,
                        markersize=7,
                        markeredgewidth=1.6 if marker == "x" else 0.6,
                        label=f"meeting, {rep}: {outcome} ({len(sel)})",
                    )
                )
        top = np.nanmax([ax.get_ylim()[1], 1e-9]) * 1.5
        for level, style, words in ((threshold, ":", "meeting called"), (scale, "-.", "clash chance 63 % of ceiling")):
            if level is not None and 0 < level <= top:  # the scale's marks that fall within the drawn range
                ax.axhline(level, color="#7F7F7F", ls=style, lw=1.0)
                handles.append(Line2D([], [], color="#7F7F7F", ls=style, lw=1.0, label=f"tension {level:g}: {words}"))
        ax.set_ylim(0, top)
        ax.set_ylabel(textwrap.fill(TENSION_AXIS, 28))
        ax.set_title(f"{ctx.label(a)} vs {ctx.label(b)}", loc="left", fontsize=11)
        ax.legend(handles=handles, fontsize=8, loc="upper left", ncol=2, framealpha=0.9)
        _time_axis(ax, _last_step(ctx))
    for ax in axes[:-1]:
        ax.set_xlabel("")
    return save_png(fig, path)


# --------------------------------------------------------------------------- 6. insurgency


def plot_insurgency(ctx: _Context, path: Path) -> Path:
    """Draw `insurgency.png` to `path` and return `path`.

    Insurgent strength over time (insurgent cells), and insurgent attacks and clashes between rival
    militias as ROLLING_DAYS-day rolling sums (counts).
    """
    fig = _new_figure(11, 8, ctx, "Insurgency")
    ax_c, ax_a = fig.subplots(2, 1, sharex=True)
    insurgent = ctx.insurgents[0] if ctx.insurgents else None
    colour = ctx.colour(insurgent) if insurgent else ctx.colour("")
    column = (
        "insurgent_cells"
        if "insurgent_cells" in ctx.ts.columns
        else (f"fighters.{insurgent}" if insurgent and f"fighters.{insurgent}" in ctx.ts.columns else None)
    )
    if column:
        who = ctx.labels[ctx.index[insurgent]] if insurgent else "insurgents"
        ctx.series(ax_c, column, colour, f"{who}: strength in insurgent cells (fractional)")
        ax_c.set_ylabel("insurgent cells (count)")
        ax_c.set_ylim(bottom=0)
        ax_c.legend(handles=ax_c.get_legend_handles_labels()[0] + _band_proxy(ctx), fontsize=8, loc="upper left")
    else:
        _no_data(ax_c, "no insurgent faction in this scenario")
    ax_c.set_title("Insurgent cells (grow with clashes and contested ground, decay otherwise)", loc="left", fontsize=11)

    if "insurgent_attacks" in ctx.ts.columns:
        ctx.series(ax_a, "insurgent_attacks", colour, "insurgent attacks", rolling=ROLLING_DAYS)
    if "clashes" in ctx.ts.columns:
        ctx.series(ax_a, "clashes", NEUTRAL_COLOUR, "clashes between rival militias", rolling=ROLLING_DAYS, ls="--")
    ax_a.set_ylabel(f"events in the last {ROLLING_DAYS} days (count)")
    ax_a.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_a.set_ylim(bottom=0)
    ax_a.set_title(
        f"Insurgent attacks and clashes between rivals ({ROLLING_DAYS}-day rolling sums)", loc="left", fontsize=11
    )
    ax_a.legend(fontsize=8, loc="upper left")
    for ax in (ax_c, ax_a):
        _time_axis(ax, _last_step(ctx))
    ax_c.set_xlabel("")
    return save_png(fig, path)


# --------------------------------------------------------------------------- entry point


PLOTTERS = {
    "influence_map.png": plot_influence_map,
    "fighters_territory.png": plot_fighters_territory,
    "casualties.png": plot_casualties,
    "defections.png": plot_defections,
    "tension_meetings.png": plot_tension_meetings,
    "insurgency.png": plot_insurgency,
}


THEATRE_MAP = "theatre_map.png"  # drawn besides PLOT_FILES when the run's scenario has `theatres:`
ROUTE_COLOUR = "#7A4A1E"


def _cell_to_lonlat(grid: dict, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (row, col) as (lon, lat) degrees, from the grid's bounds."""
    b, h, w = grid["bounds"], int(grid["height"]), int(grid["width"])
    lon = b["lon_min"] + (np.asarray(col, dtype=float) + 0.5) / w * (b["lon_max"] - b["lon_min"])
    lat = b["lat_max"] - (np.asarray(row, dtype=float) + 0.5) / h * (b["lat_max"] - b["lat_min"])
    return lon, lat


def plot_theatre_map(ctx: _Context, path: Path) -> Path:
    """Draw `theatre_map.png` to `path` and return `path`: the theatres, the routes between them, the sites.

    Needs a scenario with `theatres:` and `grid.bounds` (both in the run's scenario.yaml). The
    background is the control map at the last snapshot of the first replicate; each theatre is
    outlined around its sites and labelled; routes are drawn as lines with their labels; axes
    are longitude and latitude in degrees.
    """
    doc = ctx.scenario_doc
    grid, theatres, routes = doc["grid"], doc.get("theatres") or {}, doc.get("routes") or {}
    b = grid["bounds"]
    maps = ctx.maps
    terrain = maps["terrain"]
    rep_pos = ctx.replicates.index(ctx.rep0) if ctx.rep0 in ctx.replicates else 0
    rep_pos = min(rep_pos, maps["control"].shape[0] - 1)
    control, influence = maps["control"][rep_pos][-1], maps["influence"][rep_pos][-1]
    last = int(maps["snapshot_steps"][-1])
    names = [str(x) for x in maps["site_names"]]
    kinds = [str(x) for x in maps["site_kinds"]]
    lon, lat = _cell_to_lonlat(grid, np.asarray(maps["site_rows"]), np.asarray(maps["site_cols"]))
    sites = doc.get("sites") or {}

    mid = np.radians((b["lat_min"] + b["lat_max"]) / 2)
    aspect = 1 / np.cos(mid)  # degrees of latitude are longer than degrees of longitude
    # The bounds' own shape while at most MAP_MAX_ASPECT times as high as wide or as wide as
    # high (as for the influence map, `map_panel_size`); beyond that, degrees drawn stretched
    # (bounds of 5 x 80 degrees made a map under an inch high).
    shape = (b["lat_max"] - b["lat_min"]) * aspect / (b["lon_max"] - b["lon_min"])
    ratio = min(max(shape, 1 / MAP_MAX_ASPECT), MAP_MAX_ASPECT)
    map_w = min(9.0, THEATRE_MAP_MAX_IN / ratio)
    map_h = map_w * ratio
    fig_w = map_w + 3.9
    footer_in = max(BOTTOM_IN, footer_height(ctx.footnote(maps=True), fig_w))
    panel_h = max(map_h, THEATRE_LEGEND_IN)  # a low map leaves the legend its room
    fig_h = panel_h + TOP_IN + footer_in + 0.9
    title = f"The {len(theatres)} theatres of the rivalry and the routes between them"
    subtitle = (
        f"control on day {last} (replicate {ctx.rep0}); theatres outlined around their sites; "
        "routes as drawn in the scenario"
    )
    fig = _new_figure(fig_w, fig_h, ctx, title, subtitle, layout=False, maps=True)
    ax = fig.add_axes((0.75 / fig_w, (footer_in + 0.55 + panel_h - map_h) / fig_h, map_w / fig_w, map_h / fig_h))
    draw_control_map(ax, control, influence, terrain, [], river_width=1.6)
    # draw_control_map works in cell units: put the image into degrees instead
    image = ax.images[-1]
    image.set_extent((b["lon_min"], b["lon_max"], b["lat_min"], b["lat_max"]))
    for collection in list(ax.collections):  # contested hatching, in cell units: redraw in degrees
        collection.remove()
    h, w = terrain.shape
    contested = np.argwhere(control == -2)
    if len(contested):
        clon, clat = _cell_to_lonlat(grid, contested[:, 0], contested[:, 1])
        ax.scatter(clon, clat, marker="s", s=6, facecolor="none", edgecolor="#555555", lw=0.4, zorder=2)
    river = (grid.get("river") or {}).get("path")
    if river:
        pts = np.array(river, dtype=float)[:, ::-1]  # (lon, lat)
        pts = clip_polyline(pts, (b["lon_min"], b["lon_max"], b["lat_min"], b["lat_max"]))
        ax.plot(pts[:, 0], pts[:, 1], color=RIVER_COLOUR, lw=1.6, zorder=3)
    route_items = []  # labelled with the sites below, so that no label covers another
    for name, route in routes.items():
        pts = np.array(route["path"], dtype=float)
        ax.plot(pts[:, 1], pts[:, 0], color=ROUTE_COLOUR, lw=1.8, ls="--", zorder=4)
        k = max(len(pts) // 2, 1)
        x, y = (pts[k - 1, 1] + pts[k, 1]) / 2, (pts[k - 1, 0] + pts[k, 0]) / 2  # mid-segment, off the towns
        # whole words and place names on a line (a road's name is not cut inside "Homs")
        text = textwrap.fill(route.get("label", name), 24, break_long_words=False, break_on_hyphens=False)
        route_items.append((x, y, text, 1.0))
    theatre_names = []
    for name, theatre in theatres.items():
        members = [i for i, s in enumerate(names) if (sites.get(s) or {}).get("theatre") == name]
        if not members:
            continue
        x0, x1 = lon[members].min() - 0.12, lon[members].max() + 0.12
        y0, y1 = lat[members].min() - 0.10, lat[members].max() + 0.10
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="black", lw=1.3, zorder=5))
        inside = y1 + 0.2 > b["lat_max"]  # no room above the box: its name goes inside, at the top
        label = ax.text(
            x0 + (0.03 if inside else 0.0), y1 - 0.03 if inside else y1 + 0.03, theatre.get("label", name),
            fontsize=10, fontweight="bold", ha="left", va="top" if inside else "bottom", zorder=9,
            path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],
        )
        theatre_names.append(label)
    for kind, (marker, size, _) in SITE_STYLE.items():
        sel = [i for i, k in enumerate(kinds) if k == kind]
        if sel:
            filled = kind in ("headquarters", "venue", "post")
            ax.scatter(
                lon[sel], lat[sel], marker=marker, s=size * 0.6, facecolor="black" if filled else "white",
                edgecolor="black", lw=0.8, zorder=6,
            )
    ax.set_xlim(b["lon_min"], b["lon_max"])
    ax.set_ylim(b["lat_min"], b["lat_max"])
    ax.set_aspect(aspect if ratio == shape else "auto")  # stretched: the panel's shape decides
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labelled = [i for i in range(len(names)) if kinds[i] in ("town", "crossing", "oil_field")]
    avoid = [bbox_around(ax.transData.transform((lon[i], lat[i])), 4 * fig.dpi / 72) for i in range(len(names))]
    avoid += [text.get_window_extent(renderer) for text in theatre_names]  # no site or road over a theatre's name
    items = [
        (lon[i], lat[i], textwrap.fill(str(maps["site_labels"][i]), 20, break_on_hyphens=False), 4.0) for i in labelled
    ]
    place_labels(ax, renderer, items + route_items, avoid, ["black"] * len(items) + [ROUTE_COLOUR] * len(route_items))
    ax.set_xlabel("longitude (degrees east)")
    ax.set_ylabel("latitude (degrees north)")
    lax = fig.add_axes(((map_w + 0.95) / fig_w, (footer_in + 0.55) / fig_h, 2.9 / fig_w, panel_h / fig_h))
    lax.axis("off")
    present = sorted({int(c) for c in np.unique(control) if c >= 0} | {ctx.index[m] for m in ctx.militias})
    handles = [
        Patch(facecolor=faction_colour(f), edgecolor="none", label=textwrap.fill(ctx.label(ctx.names[f]), 34))
        for f in present
    ]
    handles += [
        Patch(facecolor="white", edgecolor="black", lw=1.3, label="theatre (around its sites)"),
        Line2D([], [], color=ROUTE_COLOUR, lw=1.8, ls="--", label="route between theatres"),
        Line2D([], [], color=RIVER_COLOUR, lw=1.6, label="river"),
        Line2D([], [], marker="s", color="#555555", markerfacecolor="none", lw=0, markersize=4, label="contested cell"),
        *_terrain_patches(terrain),
    ]
    handles += site_legend_handles(kinds, marker_scale=0.8)
    lax.legend(handles=handles, loc="upper left", fontsize=7.5, frameon=False, borderaxespad=0)
    return save_png(fig, path)


def plot_run(directory: str | Path) -> list[Path]:
    """Draw every figure of the run in `directory` into `directory/plots/`; return the paths.

    A run whose scenario has `theatres:` and `grid.bounds` also gets `theatre_map.png`
    (`plot_theatre_map`), after the six figures.

    Reads only the result files (`sim.results.load_run`, which checks each of them against
    the manifest); raises `OutputError` when the directory is not a complete results
    directory, and its subclass `ResultFileError` when a file is damaged: nothing is drawn then.
    """
    directory = Path(directory)
    run = load_run(directory)
    check_plots_dir(directory)
    out = directory / "plots"
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        ctx = _Context(run)
        paths = [plotter(ctx, out / name) for name, plotter in PLOTTERS.items()]
        grid = ctx.scenario_doc.get("grid") or {}
        if ctx.scenario_doc.get("theatres") and grid.get("bounds"):
            paths.append(plot_theatre_map(ctx, out / THEATRE_MAP))
    except BaseException:
        if made and not any(out.iterdir()):  # no empty plots/ left behind by a failure
            out.rmdir()
        raise
    return paths
