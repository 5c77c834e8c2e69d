"""The explorer's figures, drawn from a live model: the corridor map and the time-series charts.

Same house style as the static plots (`sim.plots`): the Okabe-Ito faction colours by faction
index (`faction_colour`), cells coloured by the controlling faction and paler where its
share of the cell's influence is smaller, contested cells hatched grey, site markers by
kind. Figures are `matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global
state), so any number of browser sessions can draw at once.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from sim.explorer.core import DEFECTION_COLUMN, RECENT_CLASH_STEPS
from sim.figures import (
    CONTESTED_COLOUR,
    NEUTRAL_COLOUR,
    RIVER_COLOUR,
    SITE_STYLE,
    draw_control_map,
    faction_colour,
    new_figure,
    place_labels,
    site_legend_handles,
)
from sim.model import CorridorModel
from sim.outcomes import TENSION_UNIT

DPI = 90
LINESTYLES = ("-", "--", ":", "-.")


def _new_figure(width: float, height: float, layout: bool = True) -> Figure:
    return new_figure(width, height, layout=layout, pad=0.04, dpi=DPI)  # on screen: no PNG, no footer


def _river_xy(model: CorridorModel) -> np.ndarray | None:
    """The river's course in image coordinates (col, row), from the scenario's polyline."""
    grid = model.config.grid
    if grid.river is None or grid.bounds is None:
        return None
    b = grid.bounds
    pts = np.array(grid.river.path, dtype=float)
    rows = (b.lat_max - pts[:, 0]) / (b.lat_max - b.lat_min) * grid.height - 0.5
    cols = (pts[:, 1] - b.lon_min) / (b.lon_max - b.lon_min) * grid.width - 0.5
    return np.column_stack([cols, rows])


def recent_clashes(model: CorridorModel, days: int = RECENT_CLASH_STEPS) -> np.ndarray:
    """(n, 2) row, col of the clashes of the last `days` steps."""
    cells = [(r, c) for step, r, c in model.recent_clash_cells if step > model.steps - days]
    return np.array(cells, dtype=int).reshape(-1, 2)


def map_figure(model: CorridorModel, width: float = 6.6) -> Figure:
    """The explorer's map of the model now: control per cell, named sites, recent clashes.

    Colour = the controlling faction, intensity = its share of the cell's influence; the
    clashes of the last two weeks are crosses. `width` in inches; the height follows the grid.
    """
    geo = model.geo
    h, w = geo.height, geo.width
    legend_h = 1.05
    map_h = width * h / w
    fig = _new_figure(width, map_h + legend_h + 0.45, layout=False)
    top = 0.4 / fig.get_figheight()
    ax = fig.add_axes((0.01, legend_h / fig.get_figheight(), 0.98, map_h / fig.get_figheight()))
    river = _river_xy(model)
    draw_control_map(ax, model.control, model.influence, geo.terrain, [] if river is None else [river], river_width=2.0)
    clashes = recent_clashes(model)
    if len(clashes):
        ax.scatter(clashes[:, 1], clashes[:, 0], marker="x", s=28, c="black", lw=1.3, zorder=5)
    rows, cols, kinds = geo.site_rows, geo.site_cols, geo.site_kinds
    for kind, (marker, size, _) in SITE_STYLE.items():
        sel = [i for i, k in enumerate(kinds) if k == kind]
        if not sel:
            continue
        filled = kind in ("headquarters", "venue", "post")
        ax.scatter(
            cols[sel],
            rows[sel],
            marker=marker,
            s=size * 0.8,
            facecolor="black" if filled else "white",
            edgecolor="white" if filled else "black",
            lw=0.6 if filled else 1.0,
            zorder=6 if not filled else 7,
        )
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    renderer = fig.canvas.get_renderer()
    labelled = sorted(
        [i for i, k in enumerate(kinds) if SITE_STYLE.get(k, (None, 0, False))[2]],
        key=lambda i: (kinds[i] != "town", cols[i]),
    )
    items = [
        (cols[i], rows[i], textwrap.fill(geo.site_labels[i], 18), np.sqrt(SITE_STYLE[kinds[i]][1]) / 2)
        for i in labelled
    ]
    if items:
        place_labels(ax, renderer, items, [])

    n_clash = len(clashes)
    fig.text(
        0.5,
        1 - top * 0.25,
        f"Day {model.steps}: control and influence along the corridor",
        ha="center",
        va="top",
        fontsize=11,
        fontweight="bold",
    )
    fig.text(
        0.5,
        1 - top * 0.25 - 0.2 / fig.get_figheight(),
        f"{n_clash} clash{'es' if n_clash != 1 else ''} in the last {RECENT_CLASH_STEPS} days (x); north is up",
        ha="center",
        va="top",
        fontsize=8,
        color="#333333",
    )
    present = sorted({int(c) for c in np.unique(model.control) if c >= 0} | set(np.flatnonzero(model.is_militia)))
    handles = [Patch(facecolor=faction_colour(f), edgecolor="none", label=model.faction_names[f]) for f in present]
    handles += [
        Patch(facecolor="#C8C8C8", edgecolor="#555555", hatch="////", lw=0, label="contested"),
        Patch(facecolor="#F4F1EA", edgecolor="#BBBBBB", label="nobody's"),
        Line2D([], [], marker="x", color="black", lw=0, markersize=6, label=f"clash, last {RECENT_CLASH_STEPS} days"),
    ]
    if river is not None:
        handles.append(Line2D([], [], color=RIVER_COLOUR, lw=2.0, label="river"))
    handles += site_legend_handles(kinds, marker_scale=0.8)
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=4,
        fontsize=7.5,
        frameon=False,
        title="colour = controlling faction; paler = smaller share of the cell's influence",
        title_fontsize=7.5,
        bbox_to_anchor=(0.5, 0.0),
    )
    return fig


def charts_figure(model: CorridorModel, width: float = 8.4, height: float = 6.6) -> Figure:
    """The explorer's six charts of the model's recorded figures so far, one line per faction (or pair).

    Panels: fighters, territory, cumulative casualties, cumulative defections, tension and
    insurgent cells. `width` and `height` in inches.
    """
    frame = model.datacollector.get_model_vars_dataframe()
    steps = np.arange(len(frame))
    names = model.faction_names
    militias = [f for f in range(len(names)) if model.is_militia[f]]
    fig = _new_figure(width, height, layout=False)  # fixed margins: a layout engine triples the drawing time
    fig.subplots_adjust(left=0.065, right=0.985, top=0.965, bottom=0.075, hspace=0.32, wspace=0.16)
    axes = fig.subplots(3, 2, sharex=True).ravel()
    ax_f, ax_t, ax_c, ax_d, ax_x, ax_i = axes

    top: dict = {}  # axis -> highest value drawn (y-limits set once at the end, with headroom)

    def line(ax, column, colour, label, cumulative=False, **style):
        if column not in frame.columns:
            return
        values = frame[column].to_numpy(dtype=float)
        values = np.cumsum(values) if cumulative else values
        ax.plot(steps, values, color=colour, label=label, lw=1.6, **style)
        if len(values):
            top[ax] = max(top.get(ax, 0.0), float(np.nanmax(values)))

    for f in militias:
        line(ax_f, f"fighters.{names[f]}", faction_colour(f), names[f])
    ax_f.set_title("Fighters (fit, in a militia)", loc="left", fontsize=9)

    for f in militias:
        line(ax_t, f"territory.{names[f]}", faction_colour(f), names[f])
    line(ax_t, "territory.contested", CONTESTED_COLOUR, "contested", ls="--")
    ax_t.set_title("Territory (share of passable grid cells)", loc="left", fontsize=9)
    ax_t.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))

    for f in militias:
        line(ax_c, f"killed.{names[f]}", faction_colour(f), f"{names[f]} killed", cumulative=True)
        line(ax_c, f"wounded.{names[f]}", faction_colour(f), f"{names[f]} wounded", cumulative=True, ls=":")
    ax_c.set_title("Casualties, running total (killed solid, wounded dotted)", loc="left", fontsize=9)

    drawn = False
    for column in frame.columns:
        m = DEFECTION_COLUMN.match(column)
        if not m or frame[column].sum() <= 0:
            continue
        a, b = names.index(m["a"]), names.index(m["b"])
        line(ax_d, column, faction_colour(a), f"{m['a']} \u2192 {m['b']}", cumulative=True, ls=LINESTYLES[b % 4])
        drawn = True
    ax_d.set_title("Defections, running total (colour: from)", loc="left", fontsize=9)
    if not drawn:
        ax_d.text(0.5, 0.5, "no defections yet", ha="center", va="center", transform=ax_d.transAxes, color="#666666")

    pairs = [c for c in frame.columns if c.startswith("tension.")]
    for k, column in enumerate(pairs):
        line(ax_x, column, NEUTRAL_COLOUR, column.split(".", 1)[1].replace("~", "\u2013"), ls=LINESTYLES[k % 4])
    ax_x.set_title(f"Tension between hostile militias ({TENSION_UNIT})", loc="left", fontsize=9)

    if model.insurgent is not None:
        column = "insurgent_cells" if "insurgent_cells" in frame.columns else f"fighters.{names[model.insurgent]}"
        line(ax_i, column, faction_colour(model.insurgent), names[model.insurgent])
        ax_i.set_title("Insurgent cells", loc="left", fontsize=9)
    else:
        ax_i.text(0.5, 0.5, "no insurgent faction", ha="center", va="center", transform=ax_i.transAxes)
        ax_i.set_title("Insurgent cells", loc="left", fontsize=9)

    last = max(int(steps[-1]) if len(steps) else 0, 10)
    for ax in axes:
        ax.set_ylim(0, max(top.get(ax, 0.0) * 1.12, 1e-9) if top.get(ax, 0.0) > 0 else 1.0)
        ax.grid(True, color="#DDDDDD", lw=0.6)
        ax.set_axisbelow(True)
        ax.set_xlim(0, last)
        ax.tick_params(labelsize=7.5)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", ncol=2 if ax is ax_c else 1, framealpha=0.8)
    for ax in axes[-2:]:
        ax.set_xlabel("day", fontsize=8)
    return fig
