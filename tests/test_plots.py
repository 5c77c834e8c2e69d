"""Tests for sim.plots: every figure drawn from the result files alone."""

from __future__ import annotations

import ast
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS

import sim
from sim.plots import PLOT_FILES, median_band, plot_run, replicate_matrix
from sim.results import FILES, OutputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name}: not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small results directory (2 replicates, 30 days), written once for the module."""
    out = tmp_path_factory.mktemp("plots") / "run"
    sim.simulate("baseline", seed=1, steps=30, replicates=2).save(out, plots=False)
    return out


@pytest.fixture(scope="module")
def plotted(run_dir) -> list[Path]:
    return plot_run(run_dir)


@pytest.mark.slow
def test_plot_run_writes_the_six_pngs(run_dir, plotted):
    assert [p.name for p in plotted] == list(PLOT_FILES)
    assert all(p.parent == run_dir / "plots" for p in plotted)
    for path in plotted:
        assert path.is_file()
        assert path.stat().st_size > 10_000, f"{path.name} is suspiciously small"
        width, height = png_size(path)
        assert 600 <= width <= 4000 and 400 <= height <= 3000, (path.name, width, height)
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == sorted(PLOT_FILES)


@pytest.mark.slow
def test_plots_redraw_from_a_copy_of_the_files(run_dir, plotted, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in FILES:
        shutil.copy2(run_dir / name, copy / name)
    paths = plot_run(copy)
    assert sorted(p.name for p in paths) == sorted(p.name for p in plotted)
    assert all(p.parent == copy / "plots" and p.stat().st_size > 10_000 for p in paths)


def test_median_band_on_a_hand_made_frame():
    # five replicates with values 1..5 on step 0 and 10, 20, ..., 50 on step 1
    frame = pd.DataFrame(
        {
            "replicate": [0, 1, 2, 3, 4] * 2,
            "step": [0] * 5 + [1] * 5,
            "x": [3, 1, 5, 2, 4, 30, 10, 50, 20, 40],
        }
    )
    band = median_band(frame, "x")
    assert list(band.index) == [0, 1]
    np.testing.assert_allclose(band["median"], [3.0, 30.0])
    np.testing.assert_allclose(band["low"], [1.2, 12.0])  # 5 % between 1 and 2 (linear)
    np.testing.assert_allclose(band["high"], [4.8, 48.0])
    assert list(band["n"]) == [5, 5]

    # cumulative: per replicate first (1+10, 2+20, ...), then quantiles
    cum = median_band(frame, "x", cumulative=True)
    np.testing.assert_allclose(cum["median"], [3.0, 33.0])
    np.testing.assert_allclose(cum["low"], [1.2, 13.2])
    np.testing.assert_allclose(cum["high"], [4.8, 52.8])

    # one replicate: the band collapses onto the line
    single = median_band(frame[frame["replicate"] == 2], "x")
    np.testing.assert_allclose(single["median"], [5.0, 50.0])
    np.testing.assert_allclose(single["low"], single["high"])


def test_rolling_sum_is_per_replicate():
    frame = pd.DataFrame({"replicate": [0] * 4 + [1] * 4, "step": list(range(4)) * 2, "x": [1, 1, 1, 1, 0, 2, 0, 2]})
    wide = replicate_matrix(frame, "x", rolling=2)
    np.testing.assert_allclose(wide[0], [1, 2, 2, 2])
    np.testing.assert_allclose(wide[1], [0, 2, 2, 2])


@pytest.mark.slow
def test_one_replicate_works(tmp_path):
    out = tmp_path / "single"
    sim.simulate("baseline", seed=2, steps=12).save(out, plots=False)
    paths = plot_run(out)
    assert [p.name for p in paths] == list(PLOT_FILES)
    assert all(png_size(p)[0] >= 600 for p in paths)


@pytest.mark.slow
def test_missing_maps_is_an_output_error(run_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in FILES:
        if name != "maps.npz":
            shutil.copy2(run_dir / name, broken / name)
    with pytest.raises(OutputError, match=r"maps\.npz"):
        plot_run(broken)
    assert not (broken / "plots").exists()


def test_plots_module_does_not_import_the_model():
    source = Path(sim.__file__).with_name("plots.py").read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not imported & {"sim.model", "sim.runner", "sim.api", "sim.agents", "pyplot", "matplotlib.pyplot"}


def test_the_scale_bar_goes_to_the_bottom_corner_without_sites():
    from sim.plots import scale_bar_origin

    h, w = 56, 84
    crowded_left = scale_bar_origin(h, w, 4, np.array([53, 54, 52]), np.array([2, 5, 8]))
    assert crowded_left[0] > w / 2 and crowded_left[1] > h - 3  # bottom right
    empty = scale_bar_origin(h, w, 4, np.array([5, 30]), np.array([10, 70]))
    assert empty == (1.0, h - 1.5)  # bottom left when both are free
    both = scale_bar_origin(h, w, 4, np.array([54, 54, 54]), np.array([3, 75, 78]))
    assert both[0] == 1.0  # the corner with fewer sites


def test_labels_of_a_cluster_in_a_corner_do_not_cover_each_other():
    """Three sites in a map's corner (Damascus, its airport and a headquarters in syria_wide.yaml)."""
    from matplotlib.text import Text

    from sim.figures import new_figure, place_labels

    fig = new_figure(5, 3.5, title="t", subtitle="s", footer="f", layout=False)
    ax = fig.add_axes((0.05, 0.15, 0.9, 0.7))
    ax.set_xlim(-0.5, 83.5)
    ax.set_ylim(55.5, -0.5)
    points = [(3.0, 52.0, "Damascus"), (6.0, 54.0, "Damascus\nInternational\nAirport"), (2.0, 53.0, "HQ")]
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=60)
    renderer = fig.canvas.get_renderer()
    place_labels(ax, renderer, [(x, y, text, 4.0) for x, y, text in points], avoid=[])
    fig.canvas.draw()
    boxes = []
    for text in ax.texts:
        text.update_positions(renderer)
        boxes.append(Text.get_window_extent(text, renderer))
    assert len(boxes) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert not boxes[i].overlaps(boxes[j]), (ax.texts[i].get_text(), ax.texts[j].get_text())


@pytest.mark.slow
def test_long_legends_are_set_beside_their_panels_not_over_the_lines(tmp_path, monkeypatch):
    """With ten militias (syria_wide.yaml) the legends would cover the lines they name."""
    import sim.plots

    found = {}  # figure -> (legend box, panel box, figure box) of each long legend, before saving
    save_png = sim.plots.save_png

    def measure_then_save(fig, path):
        fig.canvas.draw()
        found[Path(path).name] = [
            (ax.get_legend().get_window_extent().frozen(), ax.get_window_extent().frozen(), fig.bbox.frozen())
            for ax in fig.axes
            if ax.get_legend() is not None and len(ax.get_legend().texts) >= 6
        ]
        return save_png(fig, path)

    monkeypatch.setattr(sim.plots, "save_png", measure_then_save)
    out = tmp_path / "run"
    # Recruits reconsider often, so that defections run in many directions (9-11 of the 72 at
    # seeds 1-4 and the default; at the scenario's rate 20 days gave 5 or 6, too few for a long legend).
    sim.simulate("syria_wide", steps=30, overrides=["rules.recruitment.p_reconsider=0.2"]).save(out, plots=False)
    plot_run(out)
    for name in ("fighters_territory.png", "defections.png"):
        assert found[name], f"{name}: no long legend to check"
        for legend, panel, figure in found[name]:
            assert legend.x0 >= panel.x1, f"{name}: a long legend covers its panel"
            assert legend.x1 <= figure.x1 + 1, f"{name}: a long legend runs off the figure"


def test_clip_polyline_keeps_exactly_the_segments_that_meet_the_grown_box():
    from sim.figures import clip_polyline

    box = (0.0, 10.0, 0.0, 10.0)  # grown by 1 on each side: [-1, 11] x [-1, 11]
    inside = np.array([[-0.5, 2.0], [3.0, 4.0], [10.5, 9.0]])
    assert np.array_equal(clip_polyline(inside, box), inside)  # wholly inside: unchanged, to the bit
    # Both ends far outside, through the box: kept, its ends moved onto the grown box's edge.
    through = clip_polyline(np.array([[-1e8, 5.0], [1e8, 5.0]]), box)
    assert np.array_equal(through, [[-1.0, 5.0], [11.0, 5.0]])
    # Ends outside on either side of the corner (-1, -1), whose bounding box holds the grown box:
    missing = clip_polyline(np.array([[-50.0, 40.0], [40.0, -50.0]]), box)  # x + y = -10 passes beyond it
    assert missing.shape == (0, 2)
    cutting = clip_polyline(np.array([[-50.0, 50.0], [50.0, -50.0]]), box)  # x + y = 0 cuts across it
    assert np.allclose(cutting, [[-1.0, 1.0], [1.0, -1.0]])
    # In, far out, back in: two pieces with a NaN row between them; the far point is gone.
    xy = np.array([[2.0, 2.0], [5.0, 5.0], [5.0, 1e9], [8.0, 8.0], [9.0, 9.0]])
    out = clip_polyline(xy, box)
    gap = np.flatnonzero(np.isnan(out[:, 0]))
    assert len(gap) == 1
    assert np.array_equal(out[: gap[0]], [[2.0, 2.0], [5.0, 5.0], [5.0, 11.0]])
    assert np.allclose(out[gap[0] + 1 :], [[(11 - 1e9) / (8 - 1e9) * 3 + 5, 11.0], [8.0, 8.0], [9.0, 9.0]])
    # A segment beside the box, and one point far away: nothing is drawn.
    assert clip_polyline(np.array([[20.0, -5.0], [20.0, 50.0]]), box).shape == (0, 2)
    assert clip_polyline(np.array([[1e6, 1e6]]), box).shape == (0, 2)


def test_every_scenarios_river_is_drawn_whole_on_its_map():
    """The maps of ordinary scenarios do not change: each river lies within the grown map."""
    from sim.figures import clip_polyline
    from sim.scenario import load_scenario

    checked = 0
    for path in sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml")):
        grid = load_scenario(path).grid
        if grid.river is None or grid.bounds is None:
            continue
        b, pts = grid.bounds, np.array(grid.river.path, dtype=float)
        rows = (b.lat_max - pts[:, 0]) / (b.lat_max - b.lat_min) * grid.height - 0.5
        cols = (pts[:, 1] - b.lon_min) / (b.lon_max - b.lon_min) * grid.width - 0.5
        xy = np.column_stack([cols, rows])
        assert np.array_equal(clip_polyline(xy, (-0.5, grid.width - 0.5, -0.5, grid.height - 0.5)), xy), path.name
        lonlat = pts[:, ::-1]
        assert np.array_equal(clip_polyline(lonlat, (b.lon_min, b.lon_max, b.lat_min, b.lat_max)), lonlat), path.name
        checked += 1
    assert checked >= 2


@pytest.mark.slow
def test_a_river_round_the_globe_is_drawn_only_where_it_crosses_the_map(tmp_path, monkeypatch):
    """10,000 river points spanning the globe, the baseline's river among them: the map draws a few dozen."""
    import matplotlib.colors
    import yaml

    import sim.plots

    baseline = sim.load_scenario("baseline").grid.river.path
    rng = np.random.default_rng(3)
    n_far = 10_000 - len(baseline)
    far = np.column_stack([rng.uniform(-89, 89, n_far), rng.uniform(-179, 179, n_far)]).round(4).tolist()
    path = far[:5000] + [list(p) for p in baseline] + far[5000:]
    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml").read_text())
    doc["grid"]["river"]["path"] = path
    scenario = tmp_path / "river_round_the_globe.yaml"
    scenario.write_text(yaml.safe_dump(doc, default_flow_style=None, width=10**6))  # a file, as a user writes it
    out = tmp_path / "run"
    sim.simulate(scenario, steps=2).save(out, plots=False)

    drawn = {}  # figure -> the river lines' points, NaN gaps left out
    save_png = sim.plots.save_png

    def count_then_save(fig, png):
        river = matplotlib.colors.to_rgba(sim.plots.RIVER_COLOUR)
        lines = [
            ln.get_xydata() for ax in fig.axes for ln in ax.lines if matplotlib.colors.to_rgba(ln.get_color()) == river
        ]
        drawn[Path(png).name] = [xy[~np.isnan(xy).any(axis=1)] for xy in lines]
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", count_then_save)
    plot_run(out)
    panels = drawn["influence_map.png"]
    assert len(panels) == 3  # one river per snapshot map
    grid = sim.load_scenario("baseline").grid
    b, pts = grid.bounds, np.array(baseline, dtype=float)
    rows = (b.lat_max - pts[:, 0]) / (b.lat_max - b.lat_min) * grid.height - 0.5
    cols = (pts[:, 1] - b.lon_min) / (b.lon_max - b.lon_min) * grid.width - 0.5
    on_grid = np.column_stack([cols, rows])
    for xy in panels:
        assert len(xy) < 200, len(xy)  # 10,000 before the river was clipped to the map
        starts = [i for i in range(len(xy) - len(on_grid) + 1) if np.array_equal(xy[i : i + len(on_grid)], on_grid)]
        assert starts, "the baseline's course is not drawn whole"
        assert np.abs(xy).max() < 60  # the grown map: 48 x 40 cells and 4.8 beyond


@pytest.mark.parametrize(
    ("bounds", "subtitle", "bar"),
    [
        # 0.002 degrees over 24 x 12 cells: 9.28 m by 18.6 m cells; they read "0.0 km".
        ("{lat_min: 34.0, lat_max: 34.002, lon_min: 40.0, lon_max: 40.002}", "(7.69 m east-west x 18.6 m", "61.5 m"),
        # The whole globe: one cell is 1,670 km wide and the bar's label, centred on it, fell off the panel.
        ("{lat_min: -90, lat_max: 90, lon_min: -180, lon_max: 180}", "(1669.8 km east-west x 1669.8 km", "1670 km"),
    ],
)
def test_the_map_says_its_scale_readably_and_on_its_panels(tmp_path, monkeypatch, bounds, subtitle, bar):
    import sim.plots

    scenario = tmp_path / "scaled.yaml"
    scenario.write_text(f"extends: {SCENARIOS / 'toy_two_towns.yaml'}\ngrid:\n  bounds: {bounds}\n")
    out = tmp_path / "run"
    sim.simulate(scenario, steps=2).save(out, plots=False)
    figures = {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        fig.canvas.draw()
        figures[Path(png).name] = [
            (text.get_text(), text.get_window_extent(), ax.get_window_extent().frozen())
            for ax in fig.axes
            for text in ax.texts
        ] + [(text.get_text(), None, None) for text in fig.texts]
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", keep_then_save)
    plot_run(out)
    texts = figures["influence_map.png"]
    assert any(subtitle in text for text, _, _ in texts), [t for t, _, _ in texts if "east-west" in t]
    labels = [(box, frame) for text, box, frame in texts if text == f"{bar} east-west"]
    assert len(labels) == 3, [t for t, _, _ in texts if "east-west" in t]  # one scale bar per snapshot map
    for box, frame in labels:  # within its map panel
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (box, frame)
    assert not any("0.0 km" in text for text, _, _ in texts)


@pytest.mark.parametrize(
    ("scenario", "river"),
    [
        ("baseline", "river (Euphrates)"),  # grid.river.label
        ("toy_two_towns", None),  # no river: no river in the legend ("river (Euphrates)" was on every map)
        ("unnamed", "river"),  # a river the scenario does not name
    ],
)
def test_the_map_legend_names_the_river_the_scenario_names(tmp_path, monkeypatch, scenario, river):
    import sim.plots

    if scenario == "unnamed":
        scenario = tmp_path / "unnamed.yaml"
        text = (SCENARIOS / "baseline.yaml").read_text(encoding="utf-8")
        unnamed = re.sub(r"^    label: Euphrates.*\n", "", text, count=1, flags=re.MULTILINE)
        assert unnamed != text
        scenario.write_text(unnamed, encoding="utf-8")
    out = tmp_path / "run"
    sim.simulate(scenario, steps=2).save(out, plots=False)
    legends = _legend_texts(out, monkeypatch)
    named = [t for t in legends["influence_map.png"] if t.startswith("river")]
    assert named == ([river] if river else []), legends["influence_map.png"]


def test_an_axis_of_zeros_runs_from_zero_to_one():
    # No agreements in any run: matplotlib drew the flat line on -0.04..0.04, a count below zero.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from sim.figures import zero_axis_range

    ax = Figure().subplots()
    ax.plot([0, 1, 2], [0, 0, 0])
    zero_axis_range(ax, np.zeros(3), np.array([np.nan, 0.0]))
    assert ax.get_ylim() == (0.0, 1.0)
    other = Figure().subplots()
    other.plot([0, 1], [0, 2])
    before = other.get_ylim()
    zero_axis_range(other, np.array([0.0, 2.0]))
    assert other.get_ylim() == before  # only an all-zero axis is changed


def _legend_texts(run: Path, monkeypatch) -> dict[str, list[str]]:
    """{figure file: the texts of its axes' legends} of `plot_run(run)`, taken as each figure is saved."""
    import sim.plots

    legends = {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        legends[Path(png).name] = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", keep_then_save)
    plot_run(run)
    return legends


def _narrow_scenario(directory: Path, width: int, height: int) -> Path:
    """The toy with a grid of width x height cells, its sites moved onto it (bounds: a scale in km)."""
    long = max(width, height)
    along = {"west_town": long // 5, "blue_hq": long // 5 - 1, "bridge": long // 2, "east_town": 4 * long // 5}
    along["red_hq"] = along["east_town"] - 1
    across = {"west_town": 0, "blue_hq": 0, "bridge": 0, "east_town": 1, "red_hq": 1}
    sites = "".join(
        f"  {name}: {{row: {a if height > width else b}, col: {b if height > width else a}}}\n"
        for name, a, b in ((name, along[name], across[name]) for name in along)
    )
    scenario = directory / f"narrow_{width}x{height}.yaml"
    scenario.write_text(
        f"extends: {SCENARIOS / 'toy_two_towns.yaml'}\n"
        f"grid:\n  width: {width}\n  height: {height}\n  cells: []\n"
        f"  bounds: {{lat_min: 34.0, lat_max: {34.0 + 0.05 * height}, lon_min: 40.0, lon_max: {40.0 + 0.05 * width}}}\n"
        f"sites:\n{sites}"
    )
    return scenario


@pytest.mark.parametrize(("width", "height"), [(2, 60), (60, 2), (2, 200)])
def test_the_map_of_a_narrow_grid_is_a_readable_figure_of_bounded_size(tmp_path, monkeypatch, width, height):
    """A grid 2 cells wide made a 2574 x 13722 px influence_map.png; 60 x 2, maps a few pixels high."""
    import sim.plots

    out = tmp_path / "run"
    sim.simulate(_narrow_scenario(tmp_path, width, height), steps=2).save(out, plots=False)
    seen = {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        if Path(png).name == "influence_map.png":
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            seen["figure"] = fig.bbox.frozen()
            seen["texts"] = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts]
            seen["texts"] += [(ax.title.get_text(), ax.title.get_window_extent(renderer)) for ax in fig.axes]
            seen["texts"] += [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes for t in ax.texts]
            seen["panels"] = [ax.get_window_extent().frozen() for ax in fig.axes if ax.images]
            seen["legends"] = [ax.get_legend().get_window_extent(renderer) for ax in fig.axes if ax.get_legend()]
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", keep_then_save)
    plot_run(out)
    png_w, png_h = png_size(out / "plots" / "influence_map.png")
    # 400: maps 1.3 in high with their key beside them and the sites listed under them (no blank band)
    assert 800 <= png_w <= 3000 and 400 <= png_h <= 2000, (png_w, png_h)
    assert len(seen["panels"]) == 3
    for panel in seen["panels"]:  # each map readable: between 1:4 and 4:1, and an inch or more across
        assert 0.25 - 1e-6 <= panel.height / panel.width <= 4 + 1e-6, panel
        assert min(panel.width, panel.height) >= 120, panel
    figure = seen["figure"]
    (legend,) = seen["legends"]
    assert figure.x0 <= legend.x0 and legend.x1 <= figure.x1 and figure.y0 <= legend.y0 and legend.y1 <= figure.y1
    texts = dict(seen["texts"])
    assert any(text.startswith("Control and influence") for text in texts)  # the title
    assert any("times as" in text and "km east-west" in text.replace("\n", " ") for text in texts), list(texts)
    assert any(text.startswith("Scenario 'narrow_") for text in texts)  # the footer
    bar = [text for text, _ in seen["texts"] if text.endswith(" km east-west")]
    assert len(bar) == 3, list(texts)  # the scale bar's label on every map
    for text, box in seen["texts"]:  # none cut off at the figure's edges
        assert figure.x0 - 1 <= box.x0 and box.x1 <= figure.x1 + 1, text
        assert figure.y0 - 1 <= box.y0 and box.y1 <= figure.y1 + 1, text


@pytest.mark.parametrize("lon_max", [41.15, 80.0])
def test_the_theatre_map_of_narrow_bounds_stays_readable(tmp_path, monkeypatch, lon_max):
    """Bounds of 3 x 44 degrees drew syria_wide's theatre map under an inch high, its legend run off the figure."""
    import sim.plots

    out = tmp_path / "run"
    bounds = f"grid.bounds={{lat_min: 33.25, lat_max: 36.50, lon_min: 35.95, lon_max: {lon_max}}}"
    sim.simulate("syria_wide", steps=2, overrides=[bounds]).save(out, plots=False)
    seen = {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        if Path(png).name == "theatre_map.png":
            fig.canvas.draw()
            seen["figure"] = fig.bbox.frozen()
            seen["map"] = [ax.get_window_extent().frozen() for ax in fig.axes if ax.images][0]
            seen["legend"] = [ax.get_legend().get_window_extent() for ax in fig.axes if ax.get_legend()][0]
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", keep_then_save)
    plot_run(out)
    png_w, png_h = png_size(out / "plots" / "theatre_map.png")
    assert 1000 <= png_w <= 3000 and 700 <= png_h <= 3000, (png_w, png_h)
    panel, legend, figure = seen["map"], seen["legend"], seen["figure"]
    assert 0.25 - 1e-6 <= panel.height / panel.width <= 4 + 1e-6, panel
    assert figure.y0 <= legend.y0 and legend.y1 <= figure.y1, (legend, figure)  # the legend within the figure


@pytest.mark.parametrize("width", [2, 3, 4, 48])
def test_the_scale_bar_stays_on_a_map_only_a_few_cells_wide(width):
    """On a grid 2 cells wide the bar started at x = 1 and ran off the map's right edge (x = 1.5)."""
    from sim.plots import scale_bar_cells, scale_bar_origin

    cells = scale_bar_cells(2.0, width)
    x0, _ = scale_bar_origin(60, width, cells, np.array([5]), np.array([0]))
    assert -0.5 <= x0 and x0 + cells <= width - 0.5, (x0, cells)


def _cielab(colour: str) -> np.ndarray:
    """CIELAB (D65) of a "#RRGGBB" colour."""
    srgb = np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)]) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])  # relative to D65 white
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_faction_lines_stand_out_on_white_and_from_each_other():
    """syria_wide's NDF_damascus (Okabe-Ito's yellow, 1.3:1 on white) and ISIS (Tol's sand, 1.6:1) were hard to see."""
    from sim.figures import contrast_ratio, faction_colour, faction_line_colour

    assert contrast_ratio("#FFFFFF") == 1.0 and round(contrast_ratio("#000000"), 6) == 21.0
    colours = [faction_line_colour(i) for i in range(60)]
    assert len(set(colours)) == len(colours)
    low = {i: (c, round(contrast_ratio(c), 2)) for i, c in enumerate(colours) if contrast_ratio(c) < 3.0}
    assert not low, low  # WCAG 2.1's minimum contrast for graphics
    lab = np.array([_cielab(c) for c in colours[:15]])
    gaps = np.linalg.norm(lab[:, None] - lab[None, :], axis=2) + np.eye(15) * 1e9
    assert gaps.min() >= 20, np.unravel_index(gaps.argmin(), gaps.shape)  # Delta E 1976: far apart
    # A colour that was dark enough is kept (but olive, 7, made way for the darker yellow): the
    # baseline's lines look as they did.
    for i in set(range(60)) - {7}:
        if contrast_ratio(faction_colour(i)) >= 3.0:
            assert colours[i] == faction_colour(i), i


@pytest.mark.parametrize(
    ("name", "label", "expected"),
    [
        ("IRGC_deir", "IRGC-backed militias (Deir ez-Zor)", "IRGC_deir (IRGC-backed militias, Deir ez-Zor)"),
        ("MILSEC", "Military Security (regime, Deir ez-Zor)", "MILSEC (Military Security, regime, Deir ez-Zor)"),
        ("Blue", "Blue militia", "Blue (Blue militia)"),  # no parentheses: as it was
        ("Blue", "Blue", "Blue"),
        ("a", "b ((c) d) e", "a (b, c d e)"),
        ("a", "()", "a"),
        ("a", "p (q", "a (p q)"),  # an unbalanced one cannot nest either
    ],
)
def test_faction_labels_in_legends_nest_no_parentheses(name, label, expected):
    from sim.figures import faction_label

    assert faction_label(name, label) == expected


def _nested_parentheses(text: str) -> bool:
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth > 1:
            return True
    return False


@pytest.mark.slow
def test_syria_wide_figures_draw_every_line_visibly_and_label_it_without_nesting(tmp_path, monkeypatch):
    import sim.plots
    from sim.figures import contrast_ratio

    out = tmp_path / "run"
    sim.simulate("syria_wide", steps=2).save(out, plots=False)
    lines, texts = {}, {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        fig.canvas.draw()
        name = Path(png).name
        texts[name] = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        lines[name] = [
            (line.get_label(), line.get_color())
            for ax in fig.axes
            for line in ax.get_lines()
            if len(line.get_xdata()) > 1 and line.get_linestyle() != "None"
        ]
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", keep_then_save)
    plot_run(out)
    assert any("NDF_damascus" in text for text in texts["fighters_territory.png"])
    for name in ("fighters_territory.png", "casualties.png", "defections.png", "insurgency.png"):
        faint = [(label, colour) for label, colour in lines[name] if contrast_ratio(colour) < 3.0]
        assert not faint, (name, faint)
    nested = [(name, text) for name, found in texts.items() for text in found if _nested_parentheses(text)]
    assert not nested, nested


@pytest.mark.parametrize(("cells", "impassable"), [(None, True), ("[]", False)])
def test_the_map_legend_has_an_entry_for_impassable_ground_only_where_the_map_has_it(
    tmp_path, monkeypatch, cells, impassable
):
    """The toy's two impassable cells were grey with no legend entry; 'outside' was listed on a grid without it."""
    import sim.plots

    scenario: str | Path = "toy_two_towns"
    if cells is not None:
        scenario = tmp_path / "open.yaml"
        scenario.write_text(f"extends: {SCENARIOS / 'toy_two_towns.yaml'}\ngrid:\n  cells: {cells}\n")
    out = tmp_path / "run"
    sim.simulate(scenario, steps=2).save(out, plots=False)
    legends = _legend_texts(out, monkeypatch)
    legend = legends["influence_map.png"]
    assert ("impassable ground" in legend) == impassable, legend
    assert "outside the modelled area" not in legend  # the toy's grid has no outside cells


def test_the_terrain_key_names_the_grey_and_white_terrain_a_map_shows():
    from sim.figures import IMPASSABLE_COLOUR, OUTSIDE_COLOUR, TERRAINS, cell_colours, terrain_key

    terrain = np.full((3, 4), TERRAINS.index("rural"))
    assert terrain_key(terrain) == []
    terrain[0, 0], terrain[2, 3] = TERRAINS.index("impassable"), TERRAINS.index("outside")
    key = dict(terrain_key(terrain))
    assert key == {"impassable ground": IMPASSABLE_COLOUR, "outside the modelled area": OUTSIDE_COLOUR}
    # the colours the map draws those cells in
    rgb = cell_colours(np.full((3, 4), -1), np.zeros((2, 3, 4)), terrain)
    from matplotlib.colors import to_rgb

    assert np.allclose(rgb[0, 0], to_rgb(IMPASSABLE_COLOUR)) and np.allclose(rgb[2, 3], to_rgb(OUTSIDE_COLOUR))


def test_the_map_title_names_the_scenario_run_not_the_corridor(tmp_path, monkeypatch):
    """The toy's map (two towns and a crossing) was titled 'Control and influence along the corridor'."""
    import sim.plots

    out = tmp_path / "run"
    sim.simulate("toy_two_towns", steps=2).save(out, plots=False)
    titles = {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        titles[Path(png).name] = [t.get_text() for t in fig.texts if t.get_fontweight() == "bold"]
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", keep_then_save)
    plot_run(out)
    assert titles["influence_map.png"] == ["Control and influence in scenario 'toy_two_towns', replicate 0"]
    assert not any("corridor" in title.lower() for found in titles.values() for title in found), titles


def _influence_map_layout(fig) -> dict:
    """The influence map's map panels, the blank (inches) under them and each panel's north arrow (points long)."""
    from matplotlib.text import Annotation

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.images]
    boxes = [ax.get_window_extent(renderer) for ax in panels]
    left, right, bottom = min(b.x0 for b in boxes), max(b.x1 for b in boxes), min(b.y0 for b in boxes)
    under = [t.get_window_extent(renderer) for t in fig.texts if t.get_text().strip()]  # the footer, listed sites
    under += [ax.get_legend().get_window_extent(renderer) for ax in fig.axes if ax.get_legend()]
    under = [b for b in under if b.x1 > left and b.x0 < right and b.y1 <= bottom + 1]  # under the maps
    arrows = [
        t.arrow_patch.get_window_extent(renderer).height * 72 / fig.dpi
        for ax in panels
        for t in ax.texts
        if isinstance(t, Annotation) and t.get_text() == "N"
    ]
    return {
        "blank_in": (bottom - max(b.y1 for b in under)) / fig.dpi,
        "panel_h_in": boxes[0].height / fig.dpi,
        "figure_h_in": fig.get_figheight(),
        "arrows_pt": arrows,
    }


def _influence_map_of(run: Path, monkeypatch) -> dict:
    import sim.plots

    seen = {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        if Path(png).name == "influence_map.png":
            seen.update(_influence_map_layout(fig))
        return save_png(fig, png)

    monkeypatch.setattr(sim.plots, "save_png", keep_then_save)
    plot_run(run)
    return seen


def test_the_map_of_a_grid_two_cells_high_has_a_full_north_arrow_and_no_blank_band(tmp_path, monkeypatch):
    """Maps 1.3 in high: the north arrow was a stub under its N, and a blank band lay under the maps by the key."""
    out = tmp_path / "run"
    sim.simulate(_narrow_scenario(tmp_path, 60, 2), steps=2).save(out, plots=False)
    layout = _influence_map_of(out, monkeypatch)
    assert layout["panel_h_in"] < 1.5  # a low map
    assert len(layout["arrows_pt"]) == 3 and min(layout["arrows_pt"]) >= 12, layout["arrows_pt"]
    assert layout["blank_in"] < 0.4, layout  # the key under the maps, not a band of nothing


def _label_gaps_pt(fig) -> list[tuple[float, str, str]]:
    """(points between their boxes, text, text) for each pair of texts on a map panel (white boxes included)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = [ax for ax in fig.axes if ax.images]
    boxes = []
    for text in ax.texts:
        patch = text.get_bbox_patch()
        box = patch.get_window_extent(renderer) if patch is not None else Text.get_window_extent(text, renderer)
        boxes.append((text.get_text().replace("\n", " "), box))
    gaps = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            dx = max(box_b.x0 - box_a.x1, box_a.x0 - box_b.x1)
            dy = max(box_b.y0 - box_a.y1, box_a.y0 - box_b.y1)
            gaps.append((max(dx, dy) * 72 / fig.dpi, a, b))  # negative where they overlap
    return gaps


@pytest.fixture(scope="module")
def syria_figures(tmp_path_factory) -> dict:
    """syria_wide's influence map layout and theatre map label gaps (2 days, plotted once for the module)."""
    import sim.plots

    out = tmp_path_factory.mktemp("syria") / "run"
    sim.simulate("syria_wide", steps=2).save(out, plots=False)
    seen = {}
    save_png = sim.plots.save_png

    def keep_then_save(fig, png):
        if Path(png).name == "influence_map.png":
            seen["influence_map"] = _influence_map_layout(fig)
        if Path(png).name == "theatre_map.png":
            seen["label_gaps"] = _label_gaps_pt(fig)
        return save_png(fig, png)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim.plots, "save_png", keep_then_save)
        plot_run(out)
    return seen


def test_syria_wides_map_is_as_tall_as_its_maps_need(syria_figures):
    """Its 15 sites without a label, listed under the key beside the maps, made the figure 2.4 times their height."""
    layout = syria_figures["influence_map"]
    assert layout["blank_in"] < 0.4, layout  # the listed sites under the maps
    assert layout["figure_h_in"] < 1.8 * layout["panel_h_in"], layout  # 2.4 times before


def test_sites_listed_under_the_maps_fill_columns_in_order_none_split():
    from sim.plots import deal_columns

    entries = [["a"], ["b", "  b2"], ["c"], ["d"], ["e", "  e2", "  e3"]]
    columns, more = deal_columns(entries, 3, 8)
    assert more == 0 and columns == [["a", "b", "  b2"], ["c", "d"], ["e", "  e2", "  e3"]]
    assert deal_columns(entries, 1, 8) == ([[line for entry in entries for line in entry]], 0)
    columns, more = deal_columns(entries, 2, 3)  # at most 3 lines a column: the last entries are counted
    assert columns == [["a", "b", "  b2"], ["c", "d"]] and more == 1
    assert deal_columns([], 4, 8) == ([], 0)


def test_the_key_of_low_maps_goes_under_them_in_columns():
    from matplotlib.patches import Patch

    from sim.plots import LEGEND_COLUMN_IN, map_legend_layout

    handles = [Patch(facecolor="red", label=f"faction {k}") for k in range(10)]
    low = map_legend_layout(handles, [], maps_w=15.84, panel_h=1.3)
    assert not low.key_beside and low.key_ncol > 1 and 0 < low.key_below_h < 1.0
    assert low.fig_w == pytest.approx(15.84 + 0.5)
    high = map_legend_layout(handles, [], maps_w=15.84, panel_h=2.6)
    assert high.key_beside and high.below_h == 0 and high.fig_w == pytest.approx(15.84 + LEGEND_COLUMN_IN + 0.6)
    sites = [[f"■ headquarters {k} (row {k}, col 3)"] for k in range(40)]
    listed = map_legend_layout(handles, sites, maps_w=15.84, panel_h=2.6)
    assert not listed.sites_beside and len(listed.site_columns) > 1 and listed.sites_below_h < 1.5


def test_labels_on_the_theatre_map_keep_clear_of_each_other(syria_figures):
    """'M5 highway (Damascus-Homs-...)', 'Desert road (Homs-...)' and 'Homs' touched (0.4 and 1.2 points apart)."""
    crowded = [(round(gap, 2), a, b) for gap, a, b in syria_figures["label_gaps"] if gap < 2.0]
    assert len(syria_figures["label_gaps"]) > 100 and not crowded, crowded
