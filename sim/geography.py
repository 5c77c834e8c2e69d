"""Space: the grid of cells, their terrain, and where the named sites sit.

Arrays are indexed [row, col] with row 0 on the northern edge, so a picture of an array
(`imshow`) is a map with north up. Latitude/longitude are projected onto the grid linearly
(equirectangular): over a corridor of ~150 km the distortion is well under one cell.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from sim.schema import TERRAINS, Scenario

KM_PER_DEGREE_LAT = 111.32  # mean length of one degree of latitude, km

TERRAIN_CODE = {name: code for code, name in enumerate(TERRAINS)}
UNREACHABLE_DETOUR = 3.0  # a cell no route reaches counts as this many times its straight-line distance
# Cells fighters can stand on and influence can reach.
PASSABLE_TERRAIN = ("urban", "rural", "river", "desert")


@dataclass
class Geography:
    """The grid's terrain and the named sites' cells; arrays are indexed [row, col], row 0 north."""

    height: int
    width: int
    terrain: np.ndarray  # (H, W) int8 codes into TERRAINS
    site_names: list[str]
    site_rows: np.ndarray  # (S,) int
    site_cols: np.ndarray  # (S,) int
    site_kinds: list[str]
    site_labels: list[str]
    cell_km: tuple[float, float] | None  # (north-south, east-west) size of a cell in km
    passable: np.ndarray = field(init=False)  # (H, W) bool

    _site_flat: tuple = field(init=False, repr=False, compare=False)  # (rows, cols, width, flat) it came from

    def __post_init__(self):
        codes = [TERRAIN_CODE[name] for name in PASSABLE_TERRAIN]
        self.passable = np.isin(self.terrain, codes)
        self._site_flat = (None, None, None, None)

    @property
    def n_cells(self) -> int:
        """Number of cells (H x W)."""
        return self.height * self.width

    @property
    def site_flat(self) -> np.ndarray:
        """(S,) flat cell index (row x width + col) of each site; read-only.

        Computed once (the processes read it several times a day) and again only if the site
        arrays or the width are replaced; the site arrays are set-up, never written in place.
        """
        rows, cols, width, flat = self._site_flat
        if rows is not self.site_rows or cols is not self.site_cols or width != self.width:
            flat = np.asarray(self.site_rows * self.width + self.site_cols)
            flat.flags.writeable = False
            self._site_flat = (self.site_rows, self.site_cols, self.width, flat)
        return flat

    def site_index(self, name: str) -> int:
        """Index of a site by name; raises ValueError if unknown."""
        return self.site_names.index(name)

    def path_distances(self, sources: np.ndarray) -> np.ndarray:
        """(len(sources), H*W) path length in cells from each source cell to every cell; read-only.

        Moves go to any of the 8 neighbours that is passable (diagonals cost sqrt 2), so a
        route bends around impassable ground and the area outside the model. A source may
        itself be impassable (one can always leave it). Cells no route reaches get the
        straight-line distance times UNREACHABLE_DETOUR, so they are far but finite.
        (`sim.compiled.shortest_path_lengths`: scipy's Dijkstra, bit for bit.)

        Computed once per process for the same passable grid and sources (`PATH_CACHE_SIZE`
        entries, at most `PATH_CACHE_BYTES` in all): every run of a sweep builds the same map,
        and the routes were about 2.5 ms of each baseline run's set-up.

        Raises:
            ValueError: a source that is not a whole number within the grid.
        """
        from sim.compiled import grid_cells  # here: loading a scenario needs no numba

        h, w = self.height, self.width
        sources = grid_cells(sources, h * w)
        passable = np.ascontiguousarray(self.passable, dtype=bool)
        key = hashlib.sha256(f"{h}x{w}:".encode() + passable.tobytes() + b":" + sources.tobytes()).hexdigest()
        with _PATHS_LOCK:  # a Dask worker may run models in threads
            dist = _PATHS.pop(key, None)
        if dist is None:
            dist = _path_distances(passable, sources, w)
            dist.flags.writeable = False
        with _PATHS_LOCK:
            _PATHS[key] = dist  # (re)inserted last: the most recently used
            while len(_PATHS) > PATH_CACHE_SIZE or sum(d.nbytes for d in _PATHS.values()) > PATH_CACHE_BYTES:
                del _PATHS[next(iter(_PATHS))]  # the least recently used (perhaps this one, if too large)
        return dist

    def terrain_name(self, row: int, col: int) -> str:
        """Terrain of one cell, by name."""
        return TERRAINS[int(self.terrain[row, col])]


PATH_CACHE_SIZE = 4  # maps whose route lengths a process keeps
PATH_CACHE_BYTES = 128 << 20  # and at most this many bytes of them (the Syria-wide map's take about 1 MB)
_PATHS: dict[str, np.ndarray] = {}  # sha256 of (shape, passable, sources) -> read-only (K, H*W) lengths
_PATHS_LOCK = threading.Lock()


def _path_distances(passable: np.ndarray, sources: np.ndarray, width: int) -> np.ndarray:
    """`Geography.path_distances` computed: Dijkstra's lengths, unreachable cells at the detour of the straight line."""
    from sim.compiled import shortest_path_lengths

    dist = shortest_path_lengths(passable, sources)
    sr, sc = np.divmod(sources, width)
    cr, cc = np.divmod(np.arange(passable.size), width)
    straight = np.hypot(cr[None, :] - sr[:, None], cc[None, :] - sc[:, None])
    return np.where(np.isfinite(dist), dist, straight * UNREACHABLE_DETOUR)


def project(lat: float, lon: float, scenario: Scenario) -> tuple[int, int]:
    """(row, col) of the cell containing a latitude/longitude; may fall off the grid."""
    grid = scenario.grid
    b = grid.bounds
    row = int(np.floor((b.lat_max - lat) / (b.lat_max - b.lat_min) * grid.height))
    col = int(np.floor((lon - b.lon_min) / (b.lon_max - b.lon_min) * grid.width))
    return row, col


def site_cell(site, scenario: Scenario) -> tuple[int, int]:
    """(row, col) of a site: its explicit cell, or its lat/lon projected onto the grid."""
    if site.row is not None:
        return site.row, site.col
    return project(site.lat, site.lon, scenario)


def cell_size_km(scenario: Scenario) -> tuple[float, float] | None:
    """(north-south, east-west) size of a cell in km at the grid's mid-latitude; None without bounds."""
    b = scenario.grid.bounds
    if b is None:
        return None
    mid_lat = np.radians((b.lat_min + b.lat_max) / 2)
    ns = (b.lat_max - b.lat_min) * KM_PER_DEGREE_LAT / scenario.grid.height
    # math.cos, the C library's: numpy's float64 cos is Intel's SVML on CPUs with AVX-512
    ew = (b.lon_max - b.lon_min) * KM_PER_DEGREE_LAT * math.cos(mid_lat) / scenario.grid.width
    return float(ns), float(ew)


def distance_text(km: float) -> str:
    """A distance for a map's subtitle or scale bar, or compare-events' radius: metres below 1 km, else km.

    Grids may span as little as 0.001 degrees (`sim.schema.MIN_BOUNDS_SPAN_DEG`), so a cell
    can be a fraction of a metre wide: "0.0 km" said nothing. Three significant digits in
    metres ("4.64 m", "557 m"); from 1 km on, as before ("2.1 km", "835.0 km"); from 100,000 km
    (longer than any distance on Earth; `--match-km` stops at 20,000) three significant digits.
    """
    metres = km * 1000
    if metres < 999.5:  # what rounds to 1000 m reads as 1.0 km
        return f"{metres:.3g} m"
    if km >= 99_999.95:  # what rounds to 100000.0 km
        return f"{km:.3g} km"
    return f"{km:.1f} km"


def cell_centres(scenario: Scenario) -> np.ndarray:
    """(H*W, 2) latitude and longitude (degrees) of every cell's centre, row by row; needs grid.bounds."""
    lat, lon = _cell_centres_latlon(scenario)
    return np.column_stack([lat.ravel(), lon.ravel()])


def _cell_centres_latlon(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    g = scenario.grid
    b = g.bounds
    rows, cols = np.mgrid[0 : g.height, 0 : g.width]
    lat = b.lat_max - (rows + 0.5) / g.height * (b.lat_max - b.lat_min)
    lon = b.lon_min + (cols + 0.5) / g.width * (b.lon_max - b.lon_min)
    return lat, lon


def _rasterise_polyline(points_rc: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean mask (H, W) of the cells a polyline (in fractional row/col) passes through.

    Each segment is sampled four times per cell of its length, at the points
    `np.linspace(start, end, n)` gives, and the cells holding a sample are marked. Only the
    samples that can fall on the grid are computed (`_samples_on_grid`), so a segment that
    runs far off the grid costs no more than one that stays on it.
    """
    mask = np.zeros((height, width), dtype=bool)
    for (r0, c0), (r1, c1) in zip(points_rc[:-1], points_rc[1:]):
        n = int(np.ceil(max(abs(r1 - r0), abs(c1 - c0)) * 4)) + 1  # 4 samples per cell
        i = _samples_on_grid(n, (r0, r1, height), (c0, c1, width))
        rr = np.floor(_linspace_at(r0, r1, n, i)).astype(int)
        cc = np.floor(_linspace_at(c0, c1, n, i)).astype(int)
        keep = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
        mask[rr[keep], cc[keep]] = True
    return mask


def _linspace_at(start: float, stop: float, n: int, i: np.ndarray) -> np.ndarray:
    """`np.linspace(start, stop, n)[i]` for int64 indices i, computed only at i (numpy's formula and order)."""
    start, stop = np.float64(start), np.float64(stop)
    delta = stop - start
    y = i.astype(np.float64)
    if n > 1:
        step = delta / (n - 1)
        y = y / (n - 1) * delta if step == 0 else y * step  # numpy's way round a step that underflows
    else:
        y = y * delta
    y = y + start
    if n > 1:
        y[i == n - 1] = stop
    return y


def _samples_on_grid(n: int, *axes: tuple[float, float, int]) -> np.ndarray:
    """(k,) int64 indices, ascending, of every one of a segment's n samples that may lie on the grid.

    Each axis is (start, stop, size): a sample is on the grid when 0 <= position < size on
    every axis. The range is widened by two samples each way against rounding; samples outside
    the grid that it keeps are dropped by the caller.
    """
    lo, hi = 0, n - 1
    for start, stop, size in axes:
        if n < 2 or start == stop:
            continue
        step = (stop - start) / (n - 1)
        ends = sorted(((0.0 - start) / step, (size - start) / step))
        if not all(math.isfinite(e) for e in ends):  # a step too small to tell: this axis limits nothing
            continue
        lo = max(lo, math.floor(ends[0]) - 2)
        hi = min(hi, math.ceil(ends[1]) + 2)
    return np.arange(lo, hi + 1, dtype=np.int64) if lo <= hi else np.zeros(0, dtype=np.int64)


def river_band(river: np.ndarray, cells: int) -> np.ndarray:
    """(H, W) mask of the cells off the river within `cells` cells of it (Euclidean, centre to centre).

    The cells `scipy.ndimage.distance_transform_edt(~river) <= cells` marks, less the river
    itself: the river dilated by a disc of that radius, one shift per offset (at most 1,257
    for the schema's 20 cells). Written out because importing `scipy.ndimage` for this one
    call cost a run about 0.15 s; with no river cell at all there is no band (scipy would
    measure from a point beyond the grid's corner).

    Args:
        river: (H, W) bool mask of the river's cells.
        cells: the band's half-width, an integer 0..20 (`grid.river.band_cells`).
    """
    height, width = river.shape
    band = np.zeros_like(river, dtype=bool)
    rows, cols = np.nonzero(river)
    if len(rows) == 0:
        return band
    # The band lies in the river's bounding box grown by `cells`: shifting only that window
    # keeps a small river on a large grid cheap.
    top, bottom = max(rows.min() - cells, 0), min(rows.max() + cells + 1, height)
    left, right = max(cols.min() - cells, 0), min(cols.max() + cells + 1, width)
    window = river[top:bottom, left:right]
    grown = np.zeros_like(window)
    h, w = window.shape
    for dr in range(-cells, cells + 1):
        for dc in range(-cells, cells + 1):
            if dr * dr + dc * dc > cells * cells or abs(dr) >= h or abs(dc) >= w:  # outside the disc or window
                continue  # (integers: exact, as scipy's sqrt(d2) <= cells is)
            grown[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] |= window[
                max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
            ]
    band[top:bottom, left:right] = grown & ~window
    return band


POLYGON_PAIRS_PER_CHUNK = 1 << 18  # (edge, row of points) pairs searched at once: about 40 MB of temporaries


def inside_polygon(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(M,) bool: which of `points` (M, 2) lie inside `polygon` (N, 2 vertices, closed implicitly).

    The even-odd rule by Haines' crossings test ("Crossings Multiply", Graphics Gems IV), as
    matplotlib's `Path.contains_points` computes it: the same comparisons in the same
    floating-point arithmetic, so a point on an edge or a vertex falls on the same side
    (tests/test_startup.py compares them). Here so that building a model does not import
    matplotlib (a tenth of a second); a polygon of fewer than 3 vertices contains nothing.

    The test for edge A-B and point (x, y) is: the edge spans y (`(B.y >= y) != (A.y >= y)`)
    and `(B.y - y)(A.x - B.x) >= (B.x - x)(A.y - B.y)` equals `B.y >= y`. For one edge and one
    y the right-hand product is monotone in x (each rounded operation is), so among points of
    equal y sorted by x the crossed ones are a prefix. The points are therefore grouped by y,
    and for each (edge, group) pair the edge spans, a binary search (vectorised over the pairs,
    `POLYGON_PAIRS_PER_CHUNK` at a time) finds where that prefix ends; a running parity of the
    prefixes gives the answer. Work is about pairs x log(group size) instead of edges x points:
    a 400 x 400 grid of cell centres against a polygon of 8,000 vertices took 7 s edge by edge.

    Raises:
        ValueError: a vertex that is not finite (the schema keeps them within the globe).
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    polygon = np.asarray(polygon, dtype=float).reshape(-1, 2)
    m = len(points)
    if len(polygon) < 3 or m == 0:
        return np.zeros(m, dtype=bool)
    if not np.isfinite(polygon).all():
        raise ValueError("polygon vertices must be finite")
    # Points by y, then x: a group is a run of equal y; NaN x last in its group, NaN y last of all.
    order = np.lexsort((points[:, 0], points[:, 1]))
    tx, ty = points[order, 0], points[order, 1]
    new_group = np.ones(m, dtype=bool)
    new_group[1:] = ty[1:] != ty[:-1]
    starts = np.flatnonzero(new_group)
    group_y = ty[starts]
    group_end = np.append(starts[1:], m)
    # Where NaN x begin in each group: the comparisons with NaN are all false there.
    x_is_nan = np.isnan(tx)
    finite_end = group_end - np.add.reduceat(x_is_nan.astype(np.int64), starts)

    a = polygon
    b = np.roll(polygon, -1, axis=0)
    ax_, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    # An edge spans y when min(ay, by) < y <= max(ay, by): groups [first, last) in group_y's order.
    first = np.searchsorted(group_y, np.minimum(ay, by), side="right")
    last = np.searchsorted(group_y, np.maximum(ay, by), side="right")
    counts = last - first
    edges = np.flatnonzero(counts > 0)
    toggles = np.zeros(m + 1, dtype=np.int64)  # parity flips: a prefix [s, k) flips at s and at k
    cum = np.cumsum(counts[edges])
    lo_edge = 0
    while lo_edge < len(edges):
        # Edges whose pairs fit in one chunk (at least one edge, however many groups it spans).
        done = cum[lo_edge - 1] if lo_edge else 0
        hi_edge = max(int(np.searchsorted(cum, done + POLYGON_PAIRS_PER_CHUNK, side="right")), lo_edge + 1)
        chunk = edges[lo_edge:hi_edge]
        n_pairs = counts[chunk]
        edge = np.repeat(chunk, n_pairs)
        offset = np.arange(len(edge)) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
        group = first[edge] + offset
        _toggle_crossed_prefixes(
            toggles, tx, group_y[group], starts[group], finite_end[group], group_end[group],
            ax_[edge], ay[edge], bx[edge], by[edge],
        )
        lo_edge = hi_edge
    parity = (np.cumsum(toggles[:m]) & 1).astype(bool)
    inside = np.empty(m, dtype=bool)
    inside[order] = parity
    return inside


def _toggle_crossed_prefixes(toggles, tx, y, start, finite_end, end, ax_, ay, bx, by) -> None:
    """Add to `toggles` the flips of each (edge, group) pair's crossed points (see `inside_polygon`).

    Every argument after `tx` has one entry per pair: the group's y, its points [start, end) in
    `tx`'s order with x finite in [start, finite_end), and the edge's ends A and B. A pair's
    edge spans y, so A.y != B.y and B.y >= y exactly when B.y > A.y.
    """
    k_lhs = (by - y) * (ax_ - bx)  # the same operations, in the same order, as edge by edge
    d = ay - by
    upward = d < 0  # B above y: a point is crossed where k_lhs >= (bx - x) * d
    lo, hi = start.copy(), finite_end.copy()
    active = np.flatnonzero(lo < hi)
    while len(active):
        # First index where the point is not crossed: crossed is a prefix, monotone in x.
        mid = (lo[active] + hi[active]) // 2
        holds = k_lhs[active] >= (bx[active] - tx[mid]) * d[active]
        crossed = holds == upward[active]
        lo[active] = np.where(crossed, mid + 1, lo[active])
        hi[active] = np.where(crossed, hi[active], mid)
        active = active[lo[active] < hi[active]]
    # Points of NaN x: the comparison is false, so they are crossed when B is below y.
    down = ~upward & (finite_end < end)
    flips = np.concatenate([start, lo, finite_end[down], end[down]])
    toggles += np.bincount(flips, minlength=len(toggles))


def river_cells(scenario: Scenario) -> np.ndarray:
    """(H, W) bool mask of the cells the scenario's river passes through; needs grid.bounds and grid.river.

    The river's [lat, lon] points are projected onto the grid as sites are (`project`, without
    the rounding down) and the polyline between them rasterised (`_rasterise_polyline`).
    """
    g = scenario.grid
    b = g.bounds
    pts = np.array(g.river.path, dtype=float)
    rows = (b.lat_max - pts[:, 0]) / (b.lat_max - b.lat_min) * g.height
    cols = (pts[:, 1] - b.lon_min) / (b.lon_max - b.lon_min) * g.width
    return _rasterise_polyline(np.column_stack([rows, cols]), g.height, g.width)


def _mapped_terrain(scenario: Scenario) -> np.ndarray:
    """(H, W) int8 terrain of the grid's default, river, band and outside polygons (a new array)."""
    g = scenario.grid
    terrain = np.full((g.height, g.width), TERRAIN_CODE[g.default_terrain], dtype=np.int8)
    if g.bounds is not None and g.river is not None:
        river = river_cells(scenario)
        terrain[river_band(river, g.river.band_cells)] = TERRAIN_CODE["rural"]
        terrain[river] = TERRAIN_CODE["river"]
    if g.bounds is not None and g.outside:
        centres = cell_centres(scenario)
        for polygon in g.outside:
            inside = inside_polygon(np.array(polygon, dtype=float), centres)
            terrain[inside.reshape(g.height, g.width)] = TERRAIN_CODE["outside"]
    return terrain


MAPPED_TERRAIN_CACHE_SIZE = 4  # grids whose mapped terrain a process keeps (at most 160 KB each)
_MAPPED_TERRAIN: dict[str, np.ndarray] = {}  # sha256 of the grid's JSON -> read-only (H, W) terrain
_MAPPED_TERRAIN_LOCK = threading.Lock()


def mapped_terrain(scenario: Scenario) -> np.ndarray:
    """`_mapped_terrain` of the scenario's grid, computed once per process for the same grid; a copy.

    A run builds its geography for the model and again when it writes `maps.npz`, and every
    replicate a process runs builds it once more: with large `outside` polygons or a long
    river that work was done twice or more. The key is the sha256 of the validated grid
    section's JSON (6 ms for a grid of 32,000 polygon points), so a grid changed by an
    override or a variant is never served another's terrain.
    """
    g = scenario.grid
    if g.bounds is None or (g.river is None and not g.outside):
        return _mapped_terrain(scenario)  # nothing to save: the default terrain only
    key = hashlib.sha256(g.model_dump_json().encode("utf-8")).hexdigest()
    with _MAPPED_TERRAIN_LOCK:  # a Dask worker may run models in threads
        terrain = _MAPPED_TERRAIN.pop(key, None)
    if terrain is None:
        terrain = _mapped_terrain(scenario)
        terrain.flags.writeable = False
    with _MAPPED_TERRAIN_LOCK:
        _MAPPED_TERRAIN[key] = terrain  # (re)inserted last: the most recently used
        while len(_MAPPED_TERRAIN) > MAPPED_TERRAIN_CACHE_SIZE:
            del _MAPPED_TERRAIN[next(iter(_MAPPED_TERRAIN))]  # the least recently used
    return terrain.copy()


def build_geography(scenario: Scenario) -> Geography:
    """Terrain from the scenario's default, river band, outside polygons and cell overrides.

    The first three come from `mapped_terrain`, computed once per process for the same grid.
    """
    g = scenario.grid
    terrain = mapped_terrain(scenario)

    names = list(scenario.sites)
    rows_cols = [site_cell(scenario.sites[n], scenario) for n in names]
    site_rows = np.array([rc[0] for rc in rows_cols], dtype=np.int64)
    site_cols = np.array([rc[1] for rc in rows_cols], dtype=np.int64)
    for name, (row, col) in zip(names, rows_cols):
        if scenario.sites[name].kind == "town" and terrain[row, col] != TERRAIN_CODE["outside"]:
            terrain[row, col] = TERRAIN_CODE["urban"]
    for override in g.cells:
        terrain[override.row, override.col] = TERRAIN_CODE[override.terrain]

    return Geography(
        height=g.height,
        width=g.width,
        terrain=terrain,
        site_names=names,
        site_rows=site_rows,
        site_cols=site_cols,
        site_kinds=[scenario.sites[n].kind for n in names],
        site_labels=[scenario.sites[n].label for n in names],
        cell_km=cell_size_km(scenario) if g.bounds is not None else None,
    )
