"""The figure base shared by every module that draws.

Its users: run plots (`sim.plots`), sweep analysis (`sim.analysis`), pattern validation
(`sim.patterns`), calibration (`sim.calibration`) and the browser explorer
(`sim.explorer.figures`).

- `new_figure`: a `matplotlib.figure.Figure` on the Agg canvas (no pyplot, no global state)
  with the title and subtitle in a fixed strip at the top, the footer in a strip at the
  bottom (one line per line it wraps to), and the panels laid out between them;
- `footer` and `Provenance`: the footer's text, naming the scenario, the overrides, the days,
  the seeds, the replicates, the package version and the git commit (`Provenance.from_manifest`
  reads them once from a job's manifest); `new_figure` wraps it to the figure's width;
- `save_png`: the one PNG writer (atomic);
- the palette: `faction_colour` (Okabe & Ito 2008, colour-blind safe, then Tol's colours
  past eight factions; a faction keeps the colour of its index in the scenario), `faction_line_colour`
  (the same or a darker shade: 3:1 contrast on white, `contrast_ratio`), `faction_label` (a legend's
  "name (label)", no parentheses nested), contested, neutral and river colours;
- maps: `draw_control_map` (grid cells by controlling faction, `cell_colours`, `control_shade`), `terrain_key`
  (legend entries for the impassable and outside cells a map shows), `clip_polyline` (a river's
  course cut to the part that can show on a map), site markers (`SITE_STYLE`,
  `site_legend_handles`) and `place_labels` (site names without overlaps).
"""

from __future__ import annotations

import colorsys
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from sim.interrupts import raise_pending
from sim.results import atomic_write_bytes
from sim.yaml_source import OVERRIDE_SHOWN_CHARS, short_override

__all__ = [
    "BLUE",
    "CONTESTED_COLOUR",
    "CONTESTED_FILL",
    "DPI",
    "GREEN",
    "GREY",
    "IMPASSABLE_COLOUR",
    "NEUTRAL_COLOUR",
    "NOBODY_COLOUR",
    "OKABE_ITO",
    "ORANGE",
    "OUTSIDE_COLOUR",
    "Provenance",
    "RIVER_COLOUR",
    "SITE_STYLE",
    "VERMILLION",
    "bbox_around",
    "clip_polyline",
    "draw_control_map",
    "contrast_ratio",
    "control_shade",
    "control_shades",
    "faction_colour",
    "faction_label",
    "faction_line_colour",
    "footer",
    "footer_height",
    "new_figure",
    "place_labels",
    "save_png",
    "short_commit",
    "site_legend_handles",
    "terrain_key",
    "wrap_footer",
]

DPI = 130  # pixels per inch of the PNGs unless a module says otherwise
TOP_IN, TITLE_ONLY_IN, BOTTOM_IN = 0.72, 0.42, 0.34  # inches kept for title + subtitle, title alone, footer
FOOTER_COLOUR = "#555555"

# Okabe & Ito (2008) colour-blind-safe palette; a faction keeps the colour of its index.
OKABE_ITO = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
VERMILLION, BLUE, GREEN, PURPLE, ORANGE, SKY_BLUE, YELLOW, BLACK = OKABE_ITO  # by name, for non-faction roles
# Factions 8-15 (Syria-wide has ten): colours of Paul Tol's colour-blind-aware schemes
# (https://personal.sron.nl/~pault/: muted, dark, light), picked so that all fifteen faction colours
# are at least 20 CIELAB units (Delta E 1976) apart, the light ones first: black marks (headquarters,
# clashes) stay visible on the first eleven (tests/test_spillover.py checks both); the first three
# are the order furthest (25 units) from Okabe-Ito's (rose was 21 from its reddish purple).
SECOND_PALETTE = ("#999933", "#AA4499", "#EECC66", "#CC6677", "#882255", "#225522", "#663333", "#332288")
GREY = "#8C8C8C"
CONTESTED_COLOUR = GREY
NEUTRAL_COLOUR = "#444444"  # figures that belong to no faction (clashes, all militias)
RIVER_COLOUR = SKY_BLUE
TERRAINS = ("urban", "rural", "river", "desert", "impassable", "outside")  # maps.npz codes
CONTESTED, NONE = -2, -1  # control codes in maps.npz
# The cells of a control map that no faction's colour fills (`cell_colours`); legends take their swatches from here.
NOBODY_COLOUR = "#F4F1EA"  # passable, no militia's influence
CONTESTED_FILL = "#C8C8C8"  # under the contested cells' hatching
IMPASSABLE_COLOUR = "#BDBDBD"
OUTSIDE_COLOUR = "#FFFFFF"
TERRAIN_KEY = {  # terrain -> legend label and colour, for the terrain drawn in its own colour (`terrain_key`)
    "impassable": ("impassable ground", IMPASSABLE_COLOUR),
    "outside": ("outside the modelled area", OUTSIDE_COLOUR),
}

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


# The colour of a faction's lines on white (time series, bands, bars): its `faction_colour` where that
# has a contrast of 3:1 or more with white (WCAG 2.1's minimum for graphics), else a darker shade of it
# picked by hand: Okabe-Ito's yellow (NDF_damascus in syria_wide.yaml) was 1.3:1 and Tol's sand (ISIS)
# 1.6:1, hard to see. The fifteen stay at least 20 CIELAB units apart (tests/test_plots.py checks both).
LINE_PALETTE = (
    "#D55E00", "#0072B2", "#009E73", "#CC79A7",  # Okabe-Ito as they are
    "#B17300", "#1E96B4", "#8E8500",  # orange, sky blue and yellow, darker
    "#5E6B12", "#AA4499", "#A8663A",  # olive and sand darker (sand as a light brown), purple as it is
    "#CC6677", "#882255", "#225522", "#663333", "#332288",  # Tol's as they are
)  # fmt: skip
MIN_LINE_CONTRAST = 3.0  # against white


def contrast_ratio(colour: str, other: str = "#FFFFFF") -> float:
    """WCAG 2.1 contrast ratio (1 to 21) of two colours given as "#RRGGBB" (or any matplotlib colour)."""

    def luminance(c) -> float:
        linear = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in to_rgb(c)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(colour), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def faction_line_colour(index: int) -> str:
    """The colour ("#RRGGBB") of the lines of the faction at `index` on a white figure: contrast >= 3:1.

    `LINE_PALETTE` for the first fifteen (each the faction's `faction_colour`, or a darker shade
    of it); beyond, `faction_colour` made darker (lower HLS lightness) until the contrast is enough.
    """
    if index < len(LINE_PALETTE):
        return LINE_PALETTE[index]
    colour = faction_colour(index)
    hue, lightness, saturation = colorsys.rgb_to_hls(*to_rgb(colour))
    while contrast_ratio(colour) < MIN_LINE_CONTRAST and lightness > 0:
        lightness = max(0.0, lightness - 0.02)
        r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
        colour = f"#{round(r * 255):02X}{round(g * 255):02X}{round(b * 255):02X}"
    return colour


def faction_label(name: str, label: str) -> str:
    """A faction's name with its label for a legend: "Blue (Blue militia)", or `name` if they are the same.

    Parentheses inside the label become commas, so that none nest: "IRGC_deir (IRGC-backed
    militias, Deir ez-Zor)", not "IRGC_deir (IRGC-backed militias (Deir ez-Zor))".
    """
    if label == name:
        return name
    flat = label
    while (inner := re.sub(r"\s*\(([^()]*)\)", r", \1", flat)) != flat:  # the innermost pair each time
        flat = inner
    flat = re.sub(r"\s*(,\s*)+", ", ", " ".join(flat.replace("(", " ").replace(")", " ").split())).strip(" ,")
    return f"{name} ({flat})" if flat else name


def faction_colour(index: int) -> str:
    """The colour ("#RRGGBB") of the faction at `index` (>= 0) in the scenario; distinct for every index.

    Indices 0-6: Okabe-Ito without its black (the baseline keeps its colours; black marks
    must show on a faction's cells), 7-14: `SECOND_PALETTE`; beyond: hues spaced by the golden
    angle at two lightnesses (distinct, but no longer chosen for colour-blind readers).
    """
    palette = OKABE_ITO[:7] + SECOND_PALETTE
    if index < len(palette):
        return palette[index]
    k = index - len(palette)
    r, g, b = colorsys.hls_to_rgb((k * 0.381966) % 1.0, 0.35 if k % 2 else 0.6, 0.7)
    return f"#{round(r * 255):02X}{round(g * 255):02X}{round(b * 255):02X}"

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
        footer: small text at the bottom left (7 pt), normally from `footer()` or
            `Provenance.footer()`; wrapped to the figure's width (`wrap_footer`), the strip
            growing by a line for each line it takes (`footer_height`).
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
    lines = wrap_footer(footer, width) if footer else []
    bottom = footer_height(footer, width)
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
    if lines:
        fig.text(
            0.1 / width,
            FOOTER_MARGIN_IN / height,
            "\n".join(lines),
            fontsize=FOOTER_PT,
            color=FOOTER_COLOUR,
            ha="left",
            va="bottom",
            linespacing=1.25,
            gid="footer",  # found by tests and tools as the figure's footer
        )
    return fig


def short_commit(commit: str | None) -> str:
    """A manifest's `git_commit` as footers show it: 7 hex digits, `+dirty` kept; 'unknown' for None."""
    if not commit:
        return "unknown"
    text = str(commit)
    head, plus, rest = text.partition("+")
    return head[:7] + plus + rest


def _seeds_text(root_seed, seeds: Sequence[int], replicates: int | None, seeds_note: str) -> str:
    """`N replicates, root seed R (replicate seeds a, b, ..., z)`; the parts that are known."""
    n = replicates if replicates is not None else (len(seeds) or None)
    items = []
    if n is not None:
        items.append(f"{n} replicate{'s' if n != 1 else ''}")
    if root_seed is not None:
        items.append(f"root seed {root_seed}")
    text = ", ".join(items)
    shown = [str(s) for s in seeds]
    if len(shown) > 3:
        shown = [shown[0], shown[1], "...", shown[-1]]
    detail = [f"replicate seed{'s' if len(seeds) != 1 else ''} {', '.join(shown)}"] if shown else []
    if seeds_note:
        detail.append(seeds_note)
    if detail:
        text += f" ({'; '.join(detail)})" if text else "; ".join(detail)
    return text


FOOTER_OVERRIDE_CHARS = OVERRIDE_SHOWN_CHARS  # a longer override is shown by its start and its length
FOOTER_OVERRIDES_CHARS = 1000  # overrides beyond this much text are counted, not shown (the manifest has them all)


def _overrides_text(overrides: list[str]) -> str:
    """'overrides: a=1, b=2', each cut to FOOTER_OVERRIDE_CHARS, as many as fit FOOTER_OVERRIDES_CHARS.

    A footer is measured word by word to wrap it (`wrap_footer`): a 200 KB `--set` value (a
    10,000-point river) took minutes there and then broke Matplotlib's layout. What is cut is
    said, and the manifest the figure was drawn from holds every override whole.
    """
    shown: list[str] = []
    used = 0
    for text in overrides:
        text = short_override(text)
        if shown and used + len(text) > FOOTER_OVERRIDES_CHARS:
            break
        shown.append(text)
        used += len(text) + 2
    more = len(overrides) - len(shown)
    cut = more > 0 or any(len(text) > FOOTER_OVERRIDE_CHARS for text in overrides)
    return (
        "overrides: "
        + ", ".join(shown)
        + (f", and {more} more" if more else "")
        + (" (in full in the manifest)" if cut else "")
    )


def footer(
    scenario: str,
    *parts: str,
    overrides: Sequence[str] = (),
    steps: int | None = None,
    root_seed: int | None = None,
    seeds: Sequence[int] = (),
    replicates: int | None = None,
    seeds_note: str = "",
    version: str | None = None,
    commit: str | None = None,
    provenance: bool = False,
) -> str:
    """The footer line: `Scenario 'name' | overrides | days | seeds | part | ... | version, commit`.

    Args:
        scenario: the scenario's name.
        parts: what else makes the figure reproducible (design, data files); empty parts
            are left out.
        overrides: the `--set key=value` overrides, as written (for a sweep: its base's).
        steps: days per run.
        root_seed: the root seed of the replicates.
        seeds: the replicate seeds, in replicate order (more than three: the first two and
            the last are shown).
        replicates: number of replicates (default: the number of `seeds`).
        seeds_note: how the seeds were derived, where `seeds` cannot list them.
        version: the package's version (`versions()["sim"]` of a manifest).
        commit: the manifest's `git_commit` (full hash, `+dirty`; None outside a git checkout).
        provenance: state every item even when it is empty or unknown ("no overrides",
            "commit unknown"); `Provenance.footer` sets it. Without it (the short form
            `footer(scenario, part, overrides=...)`), only the items given are shown.

    Returns:
        One line; `new_figure` wraps it to the figure's width.
    """
    items = [f"Scenario '{scenario}'"]
    if overrides:
        items.append(_overrides_text([str(o) for o in overrides]))
    elif provenance:
        items.append("no overrides")
    if steps is not None:
        items.append(f"{steps} day{'s' if steps != 1 else ''} per run")
    seeds_text = _seeds_text(root_seed, seeds, replicates, seeds_note)
    if seeds_text:
        items.append(seeds_text)
    items.extend(p for p in parts if p)
    if provenance or version is not None or commit is not None:
        items.append(f"faction-sim {version or 'version unknown'}, commit {short_commit(commit)}")
    return " | ".join(items)


@dataclass(frozen=True)
class Provenance:
    """What every figure of a job names in its footer, read once from the job's manifest.

    Attributes:
        scenario: the scenario's name.
        overrides: the `--set` overrides of the job (a sweep's or a robustness job's base).
        steps: days per run.
        root_seed: the root seed.
        seeds: replicate seeds in replicate order (empty when `seeds_note` says where they are).
        replicates: number of replicates (per point, for designs).
        seeds_note: how seeds were derived when they are not listed (e.g. one per run).
        version: the package version that ran the model (`versions.sim`).
        commit: the git commit that ran the model (`git_commit`: full hash, `+dirty`, or None).
    """

    scenario: str
    overrides: tuple[str, ...] = ()
    steps: int | None = None
    root_seed: int | None = None
    seeds: tuple[int, ...] = ()
    replicates: int | None = None
    seeds_note: str = ""
    version: str | None = None
    commit: str | None = None

    @classmethod
    def from_manifest(cls, manifest: Mapping, **changes) -> Provenance:
        """Provenance from a job's manifest (run, sweep, robustness, calibration or predictive record).

        Reads `scenario`, `overrides`, `steps`, `root_seed`, the replicate seeds (a run's
        `replicates[*].seed`, a robustness job's `replicate_seeds`), the number of
        replicates (`n_replicates`, or `replicates` when it is a number), `versions.sim` and
        `git_commit`; a key that is missing is left unknown. `changes` replace fields.
        """
        m = manifest or {}
        entries = m.get("replicates")
        seeds: list[int] = []
        if isinstance(entries, list):
            seeds = [int(e["seed"]) for e in entries if isinstance(e, Mapping) and e.get("seed") is not None]
        elif isinstance(m.get("replicate_seeds"), list):
            seeds = [int(s) for s in m["replicate_seeds"]]
        n = m.get("n_replicates")
        if n is None and isinstance(entries, int) and not isinstance(entries, bool):
            n = entries
        if n is None and seeds:
            n = len(seeds)
        versions = m.get("versions") if isinstance(m.get("versions"), Mapping) else {}
        steps, root = m.get("steps"), m.get("root_seed")
        fields = {
            "scenario": str(m.get("scenario", "?")),
            "overrides": tuple(str(o) for o in (m.get("overrides") or ())),
            "steps": int(steps) if isinstance(steps, (int, float)) and not isinstance(steps, bool) else None,
            "root_seed": int(root) if isinstance(root, int) and not isinstance(root, bool) else None,
            "seeds": tuple(seeds),
            "replicates": int(n) if n is not None else None,
            "version": versions.get("sim"),
            "commit": m.get("git_commit"),
        }
        fields.update(changes)
        return cls(**fields)

    def footer(self, *parts: str) -> str:
        """The footer text (`footer`) naming every field, then `parts`."""
        return footer(
            self.scenario,
            *parts,
            overrides=self.overrides,
            steps=self.steps,
            root_seed=self.root_seed,
            seeds=self.seeds,
            replicates=self.replicates,
            seeds_note=self.seeds_note,
            version=self.version,
            commit=self.commit,
            provenance=True,
        )


FOOTER_PT = 7  # footer font size, points
FOOTER_LINE_IN = FOOTER_PT * 1.25 / 72  # one footer line, inches
FOOTER_MARGIN_IN = 0.1  # space below and above the footer's lines, inches


def wrap_footer(text: str, width: float) -> list[str]:
    """The footer's lines so that each fits `width` inches at FOOTER_PT points.

    Lines break between ` | ` items where they can, else between words; a word longer
    than the line stays whole on its own line. Widths are measured with the Agg renderer.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    measure = TextToPath()
    prop = FontProperties(size=FOOTER_PT)
    # Points, with a margin of 0.1 in on each side, less 4% because the Agg renderer's hinted
    # glyphs come out a little wider than the outlines measured here (a commit's last digit was cut).
    room = (width - 0.2) * 72 * 0.96

    def fits(line: str) -> bool:
        return measure.get_text_width_height_descent(line, prop, ismath=False)[0] <= room

    lines: list[str] = []
    current = ""
    for item in text.split(" | "):
        candidate = f"{current} | {item}" if current else item
        if fits(candidate):
            current = candidate
            continue
        if current:
            lines.append(current + " |")
            current = ""
        if fits(item):
            current = item
            continue
        for word in item.split(" "):  # an item wider than the line: break between words
            candidate = f"{current} {word}" if current else word
            if fits(candidate) or not current:
                current = candidate
            else:
                lines.append(current)
                current = word
    if current:
        lines.append(current)
    return lines


def footer_height(text: str | None, width: float) -> float:
    """Inches a footer takes at the bottom of a figure `width` inches wide (0 without a footer)."""
    if not text:
        return 0.0
    return 2 * FOOTER_MARGIN_IN + FOOTER_LINE_IN * len(wrap_footer(text, width))


# --------------------------------------------------------------------------- maps and site markers


def draw_control_map(ax, control, influence, terrain, river_lines, river_width: float) -> None:
    """Draw a control map on `ax`: grid cells coloured by controlling faction, contested ones hatched, the river on top.

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


MAP_MARGIN = 0.1  # clip_polyline's margin: a tenth of the map's longer side, 37 points and more on every map drawn


def clip_polyline(xy: np.ndarray, box: tuple[float, float, float, float], margin: float = MAP_MARGIN) -> np.ndarray:
    """The part of a polyline that can show on a map: (K, 2) points, NaN rows between pieces.

    Keeps the segments that meet `box` = (x0, x1, y0, y1) grown on every side by `margin`
    times its longer side (Liang-Barsky's parameters, vectorised over the segments, so a
    segment with both ends outside that crosses the box is kept). Points inside the grown box
    are kept exactly; a kept segment's end beyond it is moved onto its edge, and a piece ends
    there. Matplotlib draws a NaN row as a gap, so one `plot` call draws every piece. A
    polyline wholly inside the grown box comes back unchanged (the baseline's river), so the map
    looks the same; one of 10,000 points round the globe keeps only the few that cross the map.

    Args:
        xy: (N, 2) finite points in the map's data coordinates.
        box: the map's (x_min, x_max, y_min, y_max) in the same coordinates.
        margin: how far beyond the box, as a fraction of its longer side, the line is kept: the
            line's width and round caps must not reach into the box from beyond it.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    x0, x1, y0, y1 = (float(v) for v in box)
    grow = margin * max(x1 - x0, y1 - y0)
    x0, x1, y0, y1 = x0 - grow, x1 + grow, y0 - grow, y1 + grow
    if len(xy) < 2:
        return xy[(xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)]
    start, end = xy[:-1], xy[1:]
    d = end - start
    t_in, t_out = np.zeros(len(d)), np.ones(len(d))
    keep = np.ones(len(d), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, q in (  # the segment start + t * d is on the box's side of each edge where p * t <= q
            (-d[:, 0], start[:, 0] - x0),
            (d[:, 0], x1 - start[:, 0]),
            (-d[:, 1], start[:, 1] - y0),
            (d[:, 1], y1 - start[:, 1]),
        ):
            t = q / p
            keep &= (p != 0) | (q >= 0)  # parallel to this edge and beyond it
            t_in = np.where(p < 0, np.maximum(t_in, t), t_in)
            t_out = np.where(p > 0, np.minimum(t_out, t), t_out)
    keep &= t_in <= t_out
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    k = np.flatnonzero(keep)
    if len(k) == 0:
        return np.zeros((0, 2))
    a = np.where(inside[k, None], start[k], start[k] + t_in[k, None] * d[k])
    b = np.where(inside[k + 1, None], end[k], start[k] + t_out[k, None] * d[k])
    # A piece goes on through a point inside the grown box between two kept segments.
    joined = np.zeros(len(keep) + 1, dtype=bool)
    joined[1:-1] = keep[:-1] & keep[1:] & inside[1:-1]
    rows = np.stack([a, b, np.full_like(a, np.nan)], axis=1)  # (K, 3, 2): start, end, gap
    shown = np.column_stack([~joined[k], np.ones(len(k), dtype=bool), ~joined[k + 1]])
    return rows[shown][:-1]  # no gap after the last piece


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


def zero_axis_range(ax, *series) -> None:
    """Give an axis whose every drawn value is 0 (no agreements in any run) the range 0..1.

    matplotlib draws a flat series at 0 on -0.04..0.04, which shows a count or a share below
    zero. Other axes are left as they are. `series`: the arrays drawn (NaN ignored).
    """
    values = np.concatenate([np.asarray(v, dtype=float).ravel() for v in series]) if series else np.empty(0)
    values = values[np.isfinite(values)]
    if values.size and not values.any():
        ax.set_ylim(0.0, 1.0)


def save_png(fig: Figure, path: Path, dpi: float = DPI) -> Path:
    """Render a figure to PNG and write it atomically (`sim.results.atomic_write_bytes`).

    White background, `dpi` pixels per inch. Once written, the figure is cleared to free its
    memory.

    Returns:
        `path`.

    Raises:
        OSError: the file cannot be written (nothing is left at `path`, the figure is kept).
        KeyboardInterrupt: the command line's Ctrl-C or SIGTERM that Python swallowed in a
            finalizer while the figure was drawn (`sim.interrupts`), after the file is written.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    atomic_write_bytes(path, buffer.getvalue())
    fig.clear()
    raise_pending()  # a Ctrl-C Python swallowed in a finalizer while drawing (sim.interrupts)
    return path


def cell_colours(control: np.ndarray, influence: np.ndarray, terrain: np.ndarray) -> np.ndarray:
    """RGB image: controller's colour, paler where its share of the cell's influence is lower."""
    h, w = control.shape
    rgb = np.ones((h, w, 3))
    passable = np.isin(terrain, [TERRAINS.index(t) for t in ("urban", "rural", "river", "desert")])
    rgb[passable] = to_rgb(NOBODY_COLOUR)
    rgb[terrain == TERRAINS.index("impassable")] = to_rgb(IMPASSABLE_COLOUR)
    rgb[terrain == TERRAINS.index("outside")] = to_rgb(OUTSIDE_COLOUR)
    total = influence.sum(axis=0)
    share = np.divide(influence, total, out=np.zeros_like(influence, dtype=float), where=total > 0)
    for f in range(influence.shape[0]):
        cells = control == f
        if not cells.any():
            continue
        rgb[cells] = control_shade(faction_colour(f), share[f][cells])
    rgb[control == CONTESTED] = to_rgb(CONTESTED_FILL)
    return rgb


def control_shade(colour: str, share) -> np.ndarray:
    """RGB in 0..1, shape (..., 3), of cells held by the faction of `colour` with `share` (...) of their influence.

    The colour at 30 % strength over white for a share of 0, at full strength for a share of
    1 (the faction alone there): a weaker hold is paler.
    """
    strength = 0.3 + 0.7 * np.clip(np.asarray(share, dtype=float), 0.0, 1.0)  # 30 % (weak) .. 100 % (sole)
    c = np.array(to_rgb(colour))
    return 1.0 - strength[..., None] * (1.0 - c)


def control_shades(index: int) -> tuple[str, str]:
    """The palest and the fullest colour ("#RRGGBB") the maps fill a cell of the faction at `index` with."""
    palest, fullest = control_shade(faction_colour(index), [0.0, 1.0])
    return tuple("#" + "".join(f"{round(v * 255):02X}" for v in rgb) for rgb in (palest, fullest))


def terrain_key(terrain: np.ndarray) -> list[tuple[str, str]]:
    """Legend entries (label, "#RRGGBB") for the terrain a control map shows in its own colour, where present.

    Impassable ground is grey and the outside of the modelled area white whoever is near
    (`cell_colours`); a map without such cells gets no entry for them. `terrain`: (H, W) codes
    of TERRAINS.
    """
    codes = set(np.unique(np.asarray(terrain)).tolist())
    return [TERRAIN_KEY[name] for name in TERRAIN_KEY if TERRAINS.index(name) in codes]


def cell_squares(cells: np.ndarray) -> list:
    """Corner lists of the unit squares around (row, col) cells, for a PolyCollection."""
    return [[(c - 0.5, r - 0.5), (c + 0.5, r - 0.5), (c + 0.5, r + 0.5), (c - 0.5, r + 0.5)] for r, c in cells]


def bbox_around(centre, radius: float) -> Bbox:
    """The display-space square of half-side `radius` around `centre` (a marker, for `place_labels`)."""
    x, y = centre
    return Bbox([[x - radius, y - radius], [x + radius, y + radius]])


LABEL_PT = 7.5  # the font size of labels on maps
LABEL_CLEARANCE_PT = 3.0  # between the white boxes of two labels placed by `place_labels`, points


def place_labels(
    ax, renderer, items: list[tuple[float, float, str, float]], avoid: list, colours: list[str] | None = None
) -> None:
    """Label points without overlaps: try offsets around each point, nearest first.

    `items` are (x, y, text, marker radius in points); `avoid` are display-space boxes
    (markers, fixed texts) that labels must not cover; `colours`, one text colour per item
    (default black). A label that fits nowhere goes to the freest candidate with a leader line.
    Labels keep LABEL_CLEARANCE_PT between their white boxes: boxes that merely did not overlap
    touched, and on syria_wide's theatre map "M5 highway (Damascus-Homs-...)" ran into
    "Desert road (Homs-...)" and that into "Homs" (0.4 and 1.2 points apart).
    """
    axes_box = ax.get_window_extent(renderer)
    # Each label's own box grown by its white box's pad (0.15 of the 7.5-pt font) and half the clearance.
    grow = (0.15 * LABEL_PT + LABEL_CLEARANCE_PT / 2) * renderer.points_to_pixels(1.0)
    placed: list = []
    directions = [(1, 0.6), (1, -0.6), (-1, 0.6), (-1, -0.6), (0, 1), (0, -1), (1, 0), (-1, 0), (-1, 1.6), (-1, -1.6)]
    for n, (x, y, text, radius) in enumerate(items):
        colour = colours[n] if colours else "black"
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
                    fontsize=LABEL_PT,
                    color=colour,
                    zorder=8,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                    arrowprops={"arrowstyle": "-", "color": "#333333", "lw": 0.6, "shrinkA": 0, "shrinkB": 2}
                    if far
                    else None,
                )
                # The label's own box: an annotation's extent includes its leader line, which
                # crosses the markers between label and point and made far places look worse.
                ann.update_positions(renderer)  # (what the annotation's own extent does first)
                box = Text.get_window_extent(ann, renderer).padded(grow)
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
        placed.append(Text.get_window_extent(best, renderer).padded(grow))
