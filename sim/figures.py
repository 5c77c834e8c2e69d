"""The figure base shared by every module that draws.

Its users: run plots (`sim.plots`), sweep analysis (`sim.analysis`), pattern validation
(`sim.patterns`), calibration (`sim.calibration`) and the browser explorer
(`sim.explorer.figures`).

- `new_figure`: a `matplotlib.figure.Figure` on the Agg canvas (no pyplot, no global state)
  with the title and subtitle in a fixed strip at the top, the footer in a fixed strip at the
  bottom, and the panels laid out between them;
- `footer`: the footer's text, always naming the scenario, the overrides and the seeds;
- `save_png`: the one PNG writer (atomic);
- the palette: `faction_colour` (Okabe & Ito 2008, colour-blind safe; a faction keeps the
  colour of its index in the scenario), contested, neutral and river colours;
- maps: `draw_control_map` (cells by controlling faction), site markers (`SITE_STYLE`,
  `site_legend_handles`) and `place_labels` (site names without overlaps).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from sim.results import atomic_write_bytes

__all__ = [
    "BLUE",
    "CONTESTED_COLOUR",
    "DPI",
    "GREEN",
    "GREY",
    "NEUTRAL_COLOUR",
    "OKABE_ITO",
    "ORANGE",
    "RIVER_COLOUR",
    "SITE_STYLE",
    "VERMILLION",
    "bbox_around",
    "draw_control_map",
    "faction_colour",
    "footer",
    "new_figure",
    "place_labels",
    "save_png",
    "site_legend_handles",
]

DPI = 130  # pixels per inch of the PNGs unless a module says otherwise
TOP_IN, TITLE_ONLY_IN, BOTTOM_IN = 0.72, 0.42, 0.34  # inches kept for title + subtitle, title alone, footer
FOOTER_COLOUR = "#555555"

# Okabe & Ito (2008) colour-blind-safe palette; a faction keeps the colour of its index.
OKABE_ITO = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
VERMILLION, BLUE, GREEN, PURPLE, ORANGE, SKY_BLUE, YELLOW, BLACK = OKABE_ITO  # by name, for non-faction roles
GREY = "#8C8C8C"
CONTESTED_COLOUR = GREY
NEUTRAL_COLOUR = "#444444"  # figures that belong to no faction (clashes, all militias)
RIVER_COLOUR = SKY_BLUE
TERRAINS = ("urban", "rural", "river", "desert", "impassable", "outside")  # maps.npz codes
CONTESTED, NONE = -2, -1  # control codes in maps.npz

SITE_STYLE = {  # kind -> marker, size (points^2), label on the map?
    "town": ("o", 70, True),
    "crossing": ("D", 42, True),
    "oil_field": ("^", 46, True),
    "headquarters": ("s", 16, False),
    "venue": ("*", 60, False),
    "post": (".", 30, False),
}
KIND_NAMES = {
    "town": "town",
    "crossing": "crossing",
    "oil_field": "oil field",
    "headquarters": "headquarters",
    "venue": "meeting venue",
    "post": "post",
}


def faction_colour(index: int) -> str:
    """The colour of the faction at `index` in the scenario (Okabe-Ito, repeating after eight)."""
    return OKABE_ITO[index % len(OKABE_ITO)]

# --------------------------------------------------------------------------- figures


def new_figure(
    width: float,
    height: float,
    *,
    title: str | None = None,
    subtitle: str | None = None,
    footer: str | None = None,
    layout: bool = True,
    top: float | None = None,
    pad: float = 0.06,
    dpi: float | None = None,
) -> Figure:
    """A figure with its title, subtitle and footer in fixed strips; panels laid out between.

    Args:
        width: the figure's width, inches.
        height: the figure's height, inches (the title and footer strips included).
        title: bold, centred at the top (13 pt).
        subtitle: under the title (9 pt), e.g. what lines and bands show.
        footer: small text at the bottom left (7 pt), normally from `footer()`.
        layout: lay the panels out with matplotlib's constrained layout between the strips;
            False leaves the placing to the caller (faster, for figures redrawn live).
        top: inches kept for the title strip (default 0.72 with a subtitle, 0.42 with a
            title alone, none without a title).
        pad: constrained-layout padding between panels, inches.
        dpi: the figure's own resolution (on screen); PNGs take `save_png`'s.
    """
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    if top is None:
        top = TOP_IN if subtitle is not None else TITLE_ONLY_IN if title is not None else 0.0
    bottom = BOTTOM_IN if footer else 0.0
    if layout:
        fig.set_layout_engine(
            "constrained",
            rect=(0, bottom / height, 1, 1 - (top + bottom) / height),  # left, bottom, width, height
            h_pad=pad,
            w_pad=pad,
        )
    if title is not None:
        fig.text(0.5, 1 - 0.1 / height, title, ha="center", va="top", fontsize=13, fontweight="bold")
    if subtitle is not None:
        fig.text(0.5, 1 - 0.42 / height, subtitle, ha="center", va="top", fontsize=9, color="#333333")
    if footer:
        fig.text(0.01, 0.1 / height, footer, fontsize=7, color=FOOTER_COLOUR, ha="left", va="bottom")
    return fig


def footer(scenario: str, *parts: str, overrides: Sequence[str] = ()) -> str:
    """The footer line: `Scenario 'name' | part | part | overrides: k=v, k=v`.

    `parts` say what else makes the figure reproducible (days, seeds, design, data files);
    empty parts are left out, and so is the overrides part when there are none.
    """
    items = [f"Scenario '{scenario}'", *(p for p in parts if p)]
    if overrides:
        items.append("overrides: " + ", ".join(overrides))
    return " | ".join(items)


# --------------------------------------------------------------------------- maps and site markers


def draw_control_map(ax, control, influence, terrain, river_lines, river_width: float) -> None:
    """Draw a control map on `ax`: cells coloured by controlling faction, contested cells hatched, the river over them.

    A faction's colour is paler where its influence share is lower. The static maps and the
    explorer share this drawing.
    """
    h, w = control.shape
    ax.imshow(
        cell_colours(control, influence, terrain),
        origin="upper",
        interpolation="nearest",
        extent=(-0.5, w - 0.5, h - 0.5, -0.5),
    )
    contested = np.argwhere(control == CONTESTED)
    if len(contested):
        ax.add_collection(
            PolyCollection(
                cell_squares(contested), facecolors="none", edgecolors="#555555", hatch="////", lw=0, zorder=2
            )
        )
    for xy in river_lines:
        ax.plot(
            xy[:, 0],
            xy[:, 1],
            color=RIVER_COLOUR,
            lw=river_width,
            zorder=3,
            solid_capstyle="round",
            path_effects=[patheffects.withStroke(linewidth=river_width * 1.75, foreground="white")],
        )


def site_legend_handles(kinds, marker_scale: float) -> list:
    """Legend entries for the kinds of site present (same markers as on the maps)."""
    handles = []
    for kind, (marker, size, _) in SITE_STYLE.items():
        if kind in kinds:
            filled = kind in ("headquarters", "venue", "post")
            handles.append(
                Line2D(
                    [],
                    [],
                    marker=marker,
                    lw=0,
                    markersize=np.sqrt(size) * marker_scale,
                    markerfacecolor="black" if filled else "white",
                    markeredgecolor="black",
                    label=KIND_NAMES[kind],
                )
            )
    return handles


def save_png(fig: Figure, path: Path, dpi: float = DPI) -> Path:
    """Render a figure to PNG and write it atomically (`sim.results.atomic_write_bytes`).

    White background, `dpi` pixels per inch. Once written, the figure is cleared to free its
    memory.

    Returns:
        `path`.

    Raises:
        OSError: the file cannot be written (nothing is left at `path`, the figure is kept).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    atomic_write_bytes(path, buffer.getvalue())
    fig.clear()
    return path


def cell_colours(control: np.ndarray, influence: np.ndarray, terrain: np.ndarray) -> np.ndarray:
    """RGB image: controller's colour, paler where its share of the cell's influence is lower."""
    h, w = control.shape
    rgb = np.ones((h, w, 3))
    passable = np.isin(terrain, [TERRAINS.index(t) for t in ("urban", "rural", "river", "desert")])
    rgb[passable] = to_rgb("#F4F1EA")  # nobody's cell
    rgb[terrain == TERRAINS.index("impassable")] = to_rgb("#BDBDBD")
    rgb[terrain == TERRAINS.index("outside")] = (1.0, 1.0, 1.0)
    total = influence.sum(axis=0)
    share = np.divide(influence, total, out=np.zeros_like(influence, dtype=float), where=total > 0)
    for f in range(influence.shape[0]):
        cells = control == f
        if not cells.any():
            continue
        strength = 0.3 + 0.7 * np.clip(share[f][cells], 0.0, 1.0)  # 30 % (weak) .. 100 % (sole)
        colour = np.array(to_rgb(faction_colour(f)))
        rgb[cells] = 1.0 - strength[:, None] * (1.0 - colour[None, :])
    rgb[control == CONTESTED] = to_rgb("#C8C8C8")
    return rgb


def cell_squares(cells: np.ndarray) -> list:
    """Corner lists of the unit squares around (row, col) cells, for a PolyCollection."""
    return [[(c - 0.5, r - 0.5), (c + 0.5, r - 0.5), (c + 0.5, r + 0.5), (c - 0.5, r + 0.5)] for r, c in cells]


def bbox_around(centre, radius: float) -> Bbox:
    """The display-space square of half-side `radius` around `centre` (a marker, for `place_labels`)."""
    x, y = centre
    return Bbox([[x - radius, y - radius], [x + radius, y + radius]])


def place_labels(ax, renderer, items: list[tuple[float, float, str, float]], avoid: list) -> None:
    """Label points without overlaps: try offsets around each point, nearest first.

    `items` are (x, y, text, marker radius in points); `avoid` are display-space boxes
    (markers) that labels must not cover. A label that fits nowhere goes to the freest
    candidate with a leader line.
    """
    axes_box = ax.get_window_extent(renderer)
    placed: list = []
    directions = [(1, 0.6), (1, -0.6), (-1, 0.6), (-1, -0.6), (0, 1), (0, -1), (1, 0), (-1, 0), (-1, 1.6), (-1, -1.6)]
    for x, y, text, radius in items:
        best, best_score = None, None
        for distance in (radius + 3, radius + 11, radius + 22, radius + 36, radius + 52):
            for dx, dy in directions:
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
                far = distance > radius + 12
                ann = ax.annotate(
                    text,
                    (x, y),
                    xytext=(dx * distance, dy * distance),
                    textcoords="offset points",
                    ha=ha,
                    va=va,
                    fontsize=7.5,
                    zorder=8,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                    arrowprops={"arrowstyle": "-", "color": "#333333", "lw": 0.6, "shrinkA": 0, "shrinkB": 2}
                    if far
                    else None,
                )
                box = ann.get_window_extent(renderer).expanded(1.04, 1.08)
                inside = (
                    box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and box.y0 >= axes_box.y0 and box.y1 <= axes_box.y1
                )
                hits = sum(box.overlaps(o) for o in placed) * 3 + sum(box.overlaps(o) for o in avoid)
                score = hits + (0 if inside else 10)
                if score == 0:
                    if best is not None:
                        best.remove()
                    best, best_score = ann, 0
                    break
                if best_score is None or score < best_score:
                    if best is not None:
                        best.remove()
                    best, best_score = ann, score
                else:
                    ann.remove()
            if best_score == 0:
                break
        placed.append(best.get_window_extent(renderer).expanded(1.04, 1.08))
