"""Start-up (issue 13): `import sim`, the parser, `--help` and argument errors import nothing heavy;
commands import what they use, and `run.py run` reads its scenario once.

Properties, not timings: which modules a step imports is what sets how long it takes, and
it does not depend on how loaded the machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from helpers import PROJECT, SCENARIOS
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim import cli
from sim.geography import inside_polygon

# The libraries that take most of a second to import between them; none is needed to parse
# the command line or to say what is wrong with it.
HEAVY = ("numpy", "pandas", "mesa", "scipy", "matplotlib", "pydantic", "networkx", "yaml", "sim.scenario")


def imported_after(code: str) -> list[str]:
    """The HEAVY modules (and their submodules) a fresh interpreter holds after running `code`."""
    probe = (
        "import sys\n"
        f"{code}\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


def parsed(argv: list[str]) -> str:
    """Code that runs `run.py ARGV` up to argparse's exit (help or an argument error)."""
    return (
        "import contextlib, io\n"
        "from sim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code in (0, 2), stop.code\n"
        "    else:\n"
        "        raise AssertionError('argparse did not stop')\n"
    )


def test_import_sim_and_the_cli_load_nothing_heavy():
    assert imported_after("import sim") == []
    assert imported_after("import sim.cli; sim.cli.build_parser()") == []


def test_help_of_every_command_and_argument_errors_load_nothing_heavy():
    commands = sorted(cli.COMMANDS)
    code = "\n".join(parsed([command, "--help"]) for command in commands)
    code += "\n" + parsed(["--help"])
    code += "\n" + parsed([])  # no command
    code += "\n" + parsed(["run"])  # a missing argument
    code += "\n" + parsed(["run", "baseline", "--steps", "many"])  # not a number
    code += "\n" + parsed(["sweep", "x", "--seed", "-1"])  # out of range, bounds in the code
    code += "\n" + parsed(["run", "baseline", "--workers", "0"])  # out of range
    code += "\n" + parsed(["nonsense"])  # no such command
    assert imported_after(code) == []
    # --workers N is checked against the memory there is (`sim.limits`, which reads YAML errors' types)
    loaded = imported_after(parsed(["run", "baseline", "--workers", "2", "--steps", "x"]))
    assert [m for m in loaded if m.split(".")[0] != "yaml"] == []


def test_an_option_bounded_by_the_schema_is_still_checked_when_given(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "baseline", "--steps", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--steps: must be between 1 and" in err and "(as steps)" in err and len(err.splitlines()) == 1


def test_the_public_names_of_sim_are_reached_lazily():
    from sim.api import Simulation, simulate
    from sim.comparison import Comparison, compare
    from sim.scenario import load_scenario, scenario_from_dict
    from sim.yaml_source import ScenarioError

    expected = {
        "Comparison": Comparison,
        "Simulation": Simulation,
        "ScenarioError": ScenarioError,
        "compare": compare,
        "load_scenario": load_scenario,
        "scenario_from_dict": scenario_from_dict,
        "simulate": simulate,
    }
    assert sorted(sim.__all__) == sorted(expected)
    for name, value in expected.items():
        assert getattr(sim, name) is value
        assert name in dir(sim)
    namespace: dict = {}
    exec("from sim import *", namespace)  # noqa: S102 - the star import a notebook may use
    assert {name: namespace[name] for name in expected} == expected
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        sim.nothing_here  # noqa: B018


def test_sim_simulate_runs_from_a_fresh_interpreter():
    code = "import sim; s = sim.simulate('toy_two_towns', steps=3); print(len(s.timeseries))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=300, check=True
    )
    assert done.stdout.strip() == "4"  # the initial state and three days


def test_run_reads_the_scenario_once(tmp_path, monkeypatch):
    import sim.scenario

    reads = []
    original = sim.scenario.load_scenario_document

    def counting(path, *args, **kwargs):
        reads.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(sim.scenario, "load_scenario_document", counting)
    out = tmp_path / "run"
    status = cli.main(["run", str(SCENARIOS / "toy_two_towns.yaml"), "--steps", "3", "--no-plots", "--out", str(out)])
    assert status == cli.EXIT_OK
    assert len(reads) == 1, reads


def test_a_loaded_scenario_with_its_file_records_what_the_path_would(tmp_path):
    path = SCENARIOS / "toy_two_towns.yaml"
    overrides = ["factions.Red.salary_usd_month=90"]
    by_path = sim.simulate(str(path), steps=3, overrides=overrides)
    loaded = sim.load_scenario(path, overrides)
    by_config = sim.simulate(loaded, steps=3, overrides=overrides, scenario_file=str(path))
    assert by_config.scenario_file == by_path.scenario_file == str(path)
    assert by_config.overrides == by_path.overrides == overrides
    assert by_config.timeseries.equals(by_path.timeseries)
    manifests = []
    for name, simulation in (("a", by_path), ("b", by_config)):
        manifest = json.loads((simulation.save(tmp_path / name, plots=False) / "manifest.json").read_text())
        manifests.append({k: manifest[k] for k in ("scenario_file", "overrides", "root_seed", "steps")})
    assert manifests[0] == manifests[1]


def test_overrides_or_a_file_without_a_loaded_scenario_are_refused():
    loaded = sim.load_scenario(SCENARIOS / "toy_two_towns.yaml")
    with pytest.raises(ValueError, match="overrides apply to scenario files"):
        sim.simulate(loaded, steps=1, overrides=["steps=2"])
    with pytest.raises(ValueError, match="scenario_file goes with a Scenario"):
        sim.simulate("toy_two_towns", steps=1, scenario_file="x.yaml")


def test_a_run_without_plots_imports_no_matplotlib_nor_scipys_special_functions_or_images(tmp_path):
    """The river band, mediation's logistic, the Gaussian weights and the shortest paths are written out,
    and numba's BLAS check is spared scipy.linalg, to spare a run 0.5 s."""
    out = str(tmp_path / "run")  # the default scenario: its map has polygons outside the model, and a river
    argv = ["run", "baseline", "--steps", "3", "--no-plots", "--out", out]
    code = f"from sim.cli import main\nassert main({argv!r}) == 0\n"
    unused = ("matplotlib", "scipy.special", "scipy.ndimage", "scipy.stats", "pandas", "scipy.sparse", "scipy.linalg")
    assert [m for m in imported_after(code) if any(m == u or m.startswith(u + ".") for u in unused)] == []


@given(
    river=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), min_size=1, max_size=40),
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    cells=st.integers(0, 20),
)
def test_the_river_band_is_scipys_distance_transform_within_the_band(river, shape, cells):
    """river_band marks exactly the cells off the river whose Euclidean distance transform is <= the band."""
    from scipy import ndimage

    from sim.geography import river_band

    mask = np.zeros(shape, dtype=bool)
    for row, col in river:
        mask[row % shape[0], col % shape[1]] = True
    expected = (ndimage.distance_transform_edt(~mask) <= cells) & ~mask
    assert (river_band(mask, cells) == expected).all()
    assert not river_band(np.zeros(shape, dtype=bool), cells).any()  # no river, no band


@given(
    polygon=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=0, max_size=8),
    closed=st.booleans(),
    scale=st.sampled_from([1.0, 0.1, 1 / 3]),
)
def test_inside_polygon_agrees_with_matplotlib_also_on_edges_and_vertices(polygon, closed, scale):
    from matplotlib.path import Path

    vertices = np.array(polygon + polygon[:1] if closed and polygon else polygon, dtype=float).reshape(-1, 2) * scale
    grid = np.arange(-4, 4.5, 0.5) * scale  # vertices, edge midpoints and points between them
    points = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    expected = Path(vertices).contains_points(points) if len(vertices) else np.zeros(len(points), dtype=bool)
    assert (inside_polygon(vertices, points) == expected).all()


def test_inside_polygon_agrees_with_matplotlib_on_every_scenario_map():
    from matplotlib.path import Path

    from sim.geography import cell_centres

    rng = np.random.default_rng(7)
    checked = 0
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = sim.load_scenario(path)
        if scenario.grid.bounds is None:
            continue
        centres = cell_centres(scenario)
        for polygon in scenario.grid.outside:
            vertices = np.array(polygon, dtype=float)
            points = np.concatenate([centres, vertices, rng.uniform(centres.min(0) - 1, centres.max(0) + 1, (2000, 2))])
            assert (inside_polygon(vertices, points) == Path(vertices).contains_points(points)).all(), path.name
            checked += 1
    assert checked > 0


def crossings_edge_by_edge(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The reference: sim.geography.inside_polygon as it was, one edge at a time over every point.

    Haines' crossings test, matplotlib's comparisons; kept here to pin the rule (points on edges
    and vertices included) now that the function searches edge and row pairs instead.
    """
    points = np.asarray(points, dtype=float)
    polygon = np.asarray(polygon, dtype=float)
    inside = np.zeros(len(points), dtype=bool)
    if len(polygon) < 3:
        return inside
    tx, ty = points[:, 0], points[:, 1]
    with np.errstate(invalid="ignore"):  # inf x times a flat edge's 0: a NaN that compares false, as it did
        for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0)):
            above = by >= ty
            crosses = (above != (ay >= ty)) & ((((by - ty) * (ax - bx)) >= ((bx - tx) * (ay - by))) == above)
            inside ^= crosses
    return inside


@given(
    polygon=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=0, max_size=12),
    closed=st.booleans(),
    scale=st.sampled_from([1.0, 0.1, 1 / 3, 1e-7]),
    odd=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5]), min_size=2, max_size=8),
)
def test_inside_polygon_is_the_edge_by_edge_crossings_test_on_lattice_polygons(polygon, closed, scale, odd):
    """On a lattice every vertex, edge point and row is shared: the ties the rule must settle as before."""
    vertices = np.array(polygon + polygon[:1] if closed and polygon else polygon, dtype=float).reshape(-1, 2) * scale
    grid = np.arange(-4, 4.5, 0.5) * scale
    points = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    points = np.concatenate([points, np.array(odd[: len(odd) // 2 * 2]).reshape(-1, 2), vertices])
    assert (inside_polygon(vertices, points) == crossings_edge_by_edge(vertices, points)).all()


def test_inside_polygon_is_the_edge_by_edge_crossings_test_on_random_polygons():
    """Seeded random polygons (self-crossing, star-shaped, up to thousands of vertices) and points."""
    rng = np.random.default_rng(20261203)
    for trial in range(240):
        kind = trial % 3
        n = int(rng.integers(1000, 3000)) if kind and trial % 8 == 1 else int(rng.integers(3, 40))
        if kind == 0:  # self-crossing: vertices anywhere
            vertices = rng.uniform(-1, 1, (n, 2))
        else:  # star-shaped, a jagged ring like an outside area's border
            t = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = rng.uniform(0.3, 1.0, n)
            vertices = np.column_stack([r * np.cos(t), r * np.sin(t)])
        if kind == 2:
            vertices = np.round(vertices * 8) / 8  # shared rows and vertices on the points' lattice
        lattice = np.stack(np.meshgrid(*[np.arange(-1.25, 1.26, 1 / 8)] * 2), axis=-1).reshape(-1, 2)
        on_edges = vertices + rng.uniform(0, 1, (n, 1)) * (np.roll(vertices, -1, axis=0) - vertices)
        points = np.concatenate([rng.uniform(-1.2, 1.2, (500, 2)), lattice, vertices, on_edges])
        expected = crossings_edge_by_edge(vertices, points)
        assert (inside_polygon(vertices, points) == expected).all(), trial


def test_inside_polygon_is_the_edge_by_edge_crossings_test_on_cell_centres_of_a_large_grid():
    """Cell centres as build_geography passes them: rows of equal latitude, against a long jagged border."""
    from sim.geography import cell_centres

    scenario = sim.load_scenario("baseline", ["grid.width=400", "grid.height=300"])
    centres = cell_centres(scenario)
    b = scenario.grid.bounds
    rng = np.random.default_rng(5)
    t = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    r = 0.3 * (1 + 0.3 * np.sin(37 * t)) + rng.uniform(0, 0.02, len(t))
    mid = ((b.lat_min + b.lat_max) / 2, (b.lon_min + b.lon_max) / 2)
    polygon = np.column_stack([mid[0] + r * np.sin(t), mid[1] + r * np.cos(t)])
    polygon = np.concatenate([polygon, centres[rng.integers(0, len(centres), 50)]])  # vertices on cell centres
    some = centres[:: 7]  # the reference takes a second per 10^9 comparisons
    inside = inside_polygon(polygon, centres)
    assert (inside[:: 7] == crossings_edge_by_edge(polygon, some)).all()
    assert 0 < inside.sum() < len(centres)


def _scipy_path_distances(passable: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """The shortest-path lengths scipy's Dijkstra gives on the grid's graph of 8 moves onto passable cells."""
    from scipy import sparse
    from scipy.sparse import csgraph

    h, w = passable.shape
    rows, cols, costs = [], [], []
    for r in range(h):
        for c in range(w):
            for dr, dc in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
                if 0 <= r + dr < h and 0 <= c + dc < w and passable[r + dr, c + dc]:
                    rows.append(r * w + c)
                    cols.append((r + dr) * w + c + dc)
                    costs.append(np.hypot(dr, dc))
    graph = sparse.csr_matrix((costs, (rows, cols)), shape=(h * w, h * w))
    return np.atleast_2d(csgraph.dijkstra(graph, directed=True, indices=np.asarray(sources, dtype=np.int64)))


@settings(max_examples=150, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 14), st.integers(1, 14)),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
    n_sources=st.integers(1, 4),
)
def test_grid_shortest_paths_are_scipys_dijkstra_bit_for_bit(shape, density, seed, n_sources):
    """sim.compiled.shortest_path_lengths gives scipy's numbers exactly (ties settled in another order add the same)."""
    from sim.compiled import shortest_path_lengths

    rng = np.random.default_rng(seed)
    passable = rng.random(shape) < density
    sources = rng.integers(0, passable.size, n_sources)  # impassable sources too: one can always leave one
    out = shortest_path_lengths(passable, sources)
    expected = _scipy_path_distances(passable, sources)
    assert np.array_equal(out, expected)


def test_path_distances_on_every_scenario_map_are_scipys(tmp_path):
    """The model's site distances (with UNREACHABLE_DETOUR where no route goes) on each shipped map."""
    from sim.geography import UNREACHABLE_DETOUR, build_geography
    from sim.scenario import load_scenario

    maps = set()
    for path in sorted((PROJECT / "scenarios").glob("*.yaml")):
        geo = build_geography(load_scenario(path))
        key = (geo.passable.tobytes(), geo.passable.shape, tuple(geo.site_flat))
        if key in maps:
            continue
        maps.add(key)
        expected = _scipy_path_distances(geo.passable, geo.site_flat)
        rows, cols = np.divmod(np.arange(geo.passable.size), geo.width)
        straight = np.hypot(rows[None, :] - geo.site_rows[:, None], cols[None, :] - geo.site_cols[:, None])
        expected = np.where(np.isfinite(expected), expected, straight * UNREACHABLE_DETOUR)
        assert np.array_equal(geo.path_distances(geo.site_flat), expected), path.name
    assert len(maps) >= 3  # the corridor, Syria and the toy map at least


def test_path_distances_are_kept_per_map_read_only_and_never_served_to_another_map():
    """A process computes a map's routes once; a changed map (terrain, sources, shape) gets its own."""
    import dataclasses

    from sim import geography
    from sim.geography import build_geography
    from sim.scenario import load_scenario

    geo = build_geography(load_scenario(PROJECT / "scenarios" / "baseline.yaml"))
    first = geo.path_distances(geo.site_flat)
    assert geo.path_distances(geo.site_flat.copy()) is first  # the same map: kept, not recomputed
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = 1.0
    # A wall across the map: the routes change, and are not the kept ones.
    terrain = geo.terrain.copy()
    terrain[:, geo.width // 2] = geography.TERRAIN_CODE["outside"]
    walled = dataclasses.replace(geo, terrain=terrain)
    assert not np.array_equal(walled.passable, geo.passable)
    other = walled.path_distances(walled.site_flat)
    assert other is not first and not np.array_equal(other, first)
    assert np.array_equal(other, geography._path_distances(walled.passable, walled.site_flat, walled.width))
    assert geo.path_distances(geo.site_flat[:3]).shape == (3, geo.passable.size)  # other sources, other entry
    # Bounded: at most PATH_CACHE_SIZE maps kept, the least recently used dropped first.
    for k in range(geography.PATH_CACHE_SIZE + 2):
        geo.path_distances(geo.site_flat[: k + 1])
    assert len(geography._PATHS) <= geography.PATH_CACHE_SIZE
    assert geo.path_distances(geo.site_flat) is not first and np.array_equal(geo.path_distances(geo.site_flat), first)


def test_path_distances_refuse_a_cell_off_the_grid():
    from sim.geography import build_geography
    from sim.scenario import load_scenario

    geo = build_geography(load_scenario(PROJECT / "scenarios" / "toy_two_towns.yaml"))
    n = geo.passable.size
    huge = np.array([2**64 - 1], dtype=np.uint64)
    for bad in ([n], [-1], [2**64], [0, 2**70], [np.inf], [np.nan], [1.5], huge, ["a"], [Fraction(1, 2)], [None]):
        with pytest.raises(ValueError, match=f"source cells must be whole numbers in 0..{n - 1}"):
            geo.path_distances(bad)
    assert geo.path_distances([3.0]).tobytes() == geo.path_distances(np.array([3], dtype=np.int32)).tobytes()
    from sim.compiled import shortest_path_lengths

    for shape in ((5,), (2, 3, 4), ()):
        with pytest.raises(ValueError, match="passable must be a 2-D"):
            shortest_path_lengths(np.ones(shape, dtype=bool), [0])


def test_numba_answers_as_ever_after_a_run_that_spared_scipy_linalg(tmp_path):
    """A run loads numba's arraymath without importing scipy.linalg (sim.compiled), yet numba finds
    BLAS as it would have: np.convolve (whose inner products use BLAS when numba finds it) and
    np.dot in numba code give numpy's numbers, and scipy.linalg imports as usual afterwards."""
    out = str(tmp_path / "run")
    code = (
        "import numpy as np, numba, sys\n"
        "from sim.cli import main\n"
        f"assert main({['run', 'toy_two_towns', '--steps', '2', '--no-plots', '--out', out]!r}) == 0\n"
        "assert 'scipy.linalg' not in sys.modules\n"
        "import numba.np.arraymath, numba.np.linalg\n"
        "assert numba.np.arraymath._HAVE_BLAS is True\n"
        "assert numba.np.arraymath.ensure_blas is numba.np.linalg.ensure_blas\n"
        "rng = np.random.default_rng(3)\n"
        "a, b = rng.standard_normal(2000), rng.standard_normal(300)\n"
        "assert np.array_equal(numba.njit(lambda x, y: np.convolve(x, y))(a, b), np.convolve(a, b))\n"
        "m = np.arange(6.0).reshape(2, 3)\n"
        "assert (numba.njit(lambda x, y: np.dot(x, y))(m, m.T) == m @ m.T).all()\n"
        "import scipy.linalg\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_the_blas_answer_without_scipy_linalg_is_numbas(monkeypatch, tmp_path):
    """sim.compiled._blas_installed: no error where scipy installed cython_blas (this environment);
    ImportError where the file is missing, as numba's ensure_blas would raise."""
    import importlib.util

    from sim.compiled import _blas_installed

    _blas_installed()
    fake = tmp_path / "scipy"
    (fake / "linalg").mkdir(parents=True)
    spec = importlib.util.spec_from_file_location("scipy", fake / "__init__.py", submodule_search_locations=[str(fake)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec if name == "scipy" else None)
    with pytest.raises(ImportError):
        _blas_installed()


def test_two_threads_loading_numba_at_once_leave_numbas_own_check(tmp_path):
    """sim.compiled._load_arraymath_without_blas_check called by two threads at the same moment (in a
    fresh process) puts numba's ensure_blas back, not the stand-in (a lock; helper-71's race)."""
    code = (
        "import sys, threading\n"
        "sys.setswitchinterval(1e-6)\n"
        "import numba\n"
        "from sim import compiled\n"
        "gate = threading.Barrier(2)\n"
        "def go():\n"
        "    gate.wait()\n"
        "    compiled._load_arraymath_without_blas_check()\n"
        "threads = [threading.Thread(target=go) for _ in range(2)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "import numba.np.linalg, numba.np.arraymath\n"
        "assert numba.np.linalg.ensure_blas is not compiled._blas_installed\n"
        "assert numba.np.arraymath.ensure_blas is numba.np.linalg.ensure_blas\n"
        "assert numba.np.arraymath._HAVE_BLAS is True and 'scipy.linalg' not in sys.modules\n"
        "print('ok')\n"
    )
    for _ in range(4):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=300)
        assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_a_run_loads_each_kernel_once():
    """A year of the baseline calls every kernel with one set of argument types (a fresh process):
    each further signature is another compiled kernel to load, 2-13 ms of every run's start-up."""
    code = (
        "import importlib, pkgutil\n"
        "from numba.core.registry import CPUDispatcher\n"
        "import sim.processes, sim.world, sim.recording, sim.compiled\n"
        "from sim.runner import run_model\n"
        "from sim.scenario import load_scenario\n"
        "run_model(load_scenario('scenarios/baseline.yaml'), seed=1, steps=40)\n"
        "modules = [sim.world, sim.recording, sim.compiled] + [importlib.import_module('sim.processes.' + m.name)"
        " for m in pkgutil.iter_modules(sim.processes.__path__)]\n"
        "twice = [f'{m.__name__}.{n}' for m in modules for n, d in vars(m).items()"
        " if isinstance(d, CPUDispatcher) and d.__module__ == m.__name__ and len(d.signatures) > 1]\n"
        "print(twice)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
