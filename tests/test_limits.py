"""Whatever validates, runs: bounded numbers, priced memory, capped designs, bounded options.

- Every number the schema accepts has a finite lower and upper bound (a walk over the JSON
  schema, lists, maps and nested sections included).
- A scenario at the bounds runs to completion with finite outputs; values past them are
  refused with exit status 2, and a long bad value is echoed cut short.
- The memory estimate is within a factor of 2 of the peak tracemalloc measures, and a
  scenario that would not fit is refused before anything is allocated.
- Designs (sweep, calibration, robustness) over their `max_runs` cap are refused and say how
  to raise it; the command-line options go through the schema's bounds.
- The insurgents' attack loop costs O(log n) a draw and draws what `Generator.choice` draws.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import limits
from sim.cli import main
from sim.processes.insurgency import TargetPicker
from sim.runner import run_model
from sim.scenario import load_scenario
from sim.schema import Scenario
from sim.world import RecruitArrays
from sim.yaml_source import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
TOY = "toy_two_towns"
NO_ROBUSTNESS = (
    "the robustness extra (EMA Workbench) is not installed (pip install -e '.[robustness]'): only the "
    "run.py robustness caps are untested here; no other command needs it"
)


# --------------------------------------------------------------------------- bounded schema


def numeric_nodes(schema: dict) -> list[tuple[str, dict]]:
    """(key path, JSON-schema node) of every number or integer the schema accepts, anywhere."""
    defs = schema.get("$defs", {})
    found: list[tuple[str, dict]] = []

    def walk(node: dict, path: str, seen: frozenset) -> None:
        if "$ref" in node:
            name = node["$ref"].split("/")[-1]
            if name in seen:
                return
            seen, node = seen | {name}, defs[name]
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, []):
                walk(option, path, seen)
        if node.get("type") in ("number", "integer"):
            found.append((path, node))
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}" if path else name, seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*", seen)
        for child in node.get("patternProperties", {}).values():  # maps keyed by a name
            walk(child, f"{path}.*", seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", seen)
        for i, item in enumerate(node.get("prefixItems", [])):
            walk(item, f"{path}[{i}]", seen)

    walk(schema, "", frozenset())
    return found


def test_every_number_in_the_schema_has_finite_bounds():
    nodes = numeric_nodes(Scenario.model_json_schema())
    assert len(nodes) > 100, "the walk should reach every section"
    unbounded = []
    for path, node in nodes:
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            unbounded.append(path)
    assert not unbounded, f"numbers without a finite lower and upper bound: {unbounded}"


def test_coordinates_are_within_the_globe():
    paths = dict(numeric_nodes(Scenario.model_json_schema()))
    for key in ("sites.*.lat", "grid.bounds.lat_min"):
        assert (paths[key]["minimum"], paths[key]["maximum"]) == (-90, 90)
    for key in ("sites.*.lon", "grid.river.path[][]", "grid.outside[][][]"):
        assert (paths[key]["minimum"], paths[key]["maximum"]) == (-180, 180)


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ("[200, 40.5]", "latitude must be between -90 and 90 degrees (got 200)"),
        ("[95.5, 40.5]", "latitude must be between -90 and 90 degrees (got 95.5)"),
        ("[34.5, 200]", "longitude must be between -180 and 180 degrees (got 200)"),
        (
            "[-200, 181]",
            "latitude must be between -90 and 90 degrees (got -200); "
            "longitude must be between -180 and 180 degrees (got 181)",
        ),
    ],
)
def test_a_point_out_of_range_says_which_coordinate_and_its_own_range(point, message, tmp_path, capsys):
    """A river point of latitude 200 was refused as 'less than or equal to 180' (the longitude's bound)."""
    assert refused(f"grid.river.path.1={point}") == f"--set: grid.river.path.1: {message}"
    assert refused(f"grid.outside.0.2={point}") == f"--set: grid.outside.0.2: {message}"
    scenario = tmp_path / "far.yaml"
    base = (ROOT / "scenarios" / "baseline.yaml").read_text()
    scenario.write_text(base.replace("path: [[35.45, 39.98],", f"path: [{point},"))
    assert main(["validate", str(scenario)]) == 2
    assert capsys.readouterr().err.strip() == f"{scenario}:22: grid.river.path.0: {message}"


def refused(*overrides: str, scenario: str = "baseline") -> str:
    """The ScenarioError text of the scenario with these overrides (fails if it validates)."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario, list(overrides))
    return str(caught.value)


@pytest.mark.parametrize(
    "override",
    [
        "rules.insurgency.attack_rate=100000",  # a Python loop over 2e7 Poisson draws a day
        "grid.river={path: [[10000000, 40.5], [34.5, 40.6]]}",  # a latitude of 1e7 degrees
        "sites.albukamal.population=10000000000",  # 1e10 people: 3 TB of recruits
        "factions.NDF.deployment_weights.albukamal=1.0e+300",  # 'Probabilities contain NaN'
        "rules.insurgency.attack_casualties=1.0e+300",  # 'lam value too large'
        "rules.clashes.recovery_days=1.0e+300",  # an unsafe cast to int64
        "patrons.Russia.funding_usd_day=1.0e+308",  # inf in timeseries.csv
        "sites.albukamal.revenue_usd_day=1.0e+308",
    ],
)
def test_values_that_crashed_or_hung_are_refused(override):
    text = refused(override)
    assert len(text.splitlines()) == 1, text
    assert "less than or equal to" in text or "latitude must be between -90 and 90" in text, text  # by its bound


def test_a_grid_too_narrow_to_project_onto_is_refused_in_one_line(tmp_path, capsys):
    """Bounds 1e-8 degrees wide validated, then a run asked for 47.5 TiB to draw a river 10^11 cells long."""
    text = refused("grid.bounds={lat_min: 34.3, lat_max: 34.30000001, lon_min: 40.0, lon_max: 41.1}")
    least = "grid.bounds.lat_max: lat_max - lat_min must be at least 0.001 degrees"
    assert len(text.splitlines()) == 1 and least in text, text
    scenario = tmp_path / "narrow.yaml"
    base = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    narrow = base.read_text().replace("lon_min: 40.00, lon_max: 41.10", "lon_min: 40.00, lon_max: 40.0000001")
    scenario.write_text(narrow)
    assert main(["validate", str(scenario)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"{scenario}:19: grid.bounds.lon_max: lon_max - lon_min must be")


@pytest.mark.parametrize("lat_max", ["34.3009999999", "34.3009"])
def test_a_span_just_short_of_the_minimum_is_shown_with_the_digits_that_tell_it_apart(lat_max):
    """'{span:.3g}' showed a span of 0.0009999999 degrees as 'got 0.001' next to 'at least 0.001'."""
    text = refused(f"grid.bounds.lat_max={lat_max}")  # the baseline's lat_min is 34.30
    assert len(text.splitlines()) == 1 and "lat_max - lat_min must be at least 0.001 degrees" in text, text
    got = text.split("; got ")[1].split()[0]
    assert float(got) < 0.001 and math.isclose(float(got), float(lat_max) - 34.3, rel_tol=1e-6), text


def test_bounds_too_narrow_both_ways_are_reported_both(tmp_path, capsys):
    """Only the latitude was reported when both spans were too small: now one line for each, at the file's line."""
    scenario = tmp_path / "narrow.yaml"
    base = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    old = "bounds: {lat_min: 34.30, lat_max: 35.45, lon_min: 40.00, lon_max: 41.10}"
    new = "bounds: {lat_min: 34.30, lat_max: 34.3005, lon_min: 40.00, lon_max: 40.0005}"
    scenario.write_text(base.read_text().replace(old, new))
    assert main(["validate", str(scenario)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    least = "must be at least 0.001 degrees (about 110 m); got 0.0005"
    assert lines == [
        f"{scenario}:19: grid.bounds.lat_max: lat_max - lat_min {least} (34.3005 - 34.3)",
        f"{scenario}:19: grid.bounds.lon_max: lon_max - lon_min {least} (40.0005 - 40.0)",
    ], lines
    # The same for edges in the wrong order: each axis says its own.
    text = refused("grid.bounds={lat_min: 35, lat_max: 34, lon_min: 41, lon_max: 40}")
    assert text.splitlines() == [
        "--set: grid.bounds.lat_max: lat_min (35.0) must be below lat_max (34.0)",
        "--set: grid.bounds.lon_max: lon_min (41.0) must be below lon_max (40.0)",
    ], text


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("grid.bounds.lat_min=36", "--set: grid.bounds.lat_min: lat_min (36.0) must be below lat_max (35.45)"),
        ("grid.bounds.lat_max=34.2", "--set: grid.bounds.lat_max: lat_min (34.3) must be below lat_max (34.2)"),
        (
            "grid.bounds.lon_min=41.0999",
            "--set: grid.bounds.lon_min: lon_max - lon_min must be at least 0.001 degrees (about 110 m); "
            "got 0.0001 (41.1 - 41.0999)",
        ),
    ],
)
def test_bounds_made_invalid_by_a_set_option_blame_the_option(override, line, capsys):
    """An override that broke grid.bounds was reported at the file's line 19; the file was fine."""
    assert main(["validate", "baseline", "--set", override]) == 2
    assert capsys.readouterr().err.strip() == line


def test_bounds_the_file_made_invalid_blame_the_file_despite_another_set_option(tmp_path, capsys):
    scenario = tmp_path / "flat.yaml"
    base = (ROOT / "scenarios" / "baseline.yaml").read_text()
    scenario.write_text(base.replace("lat_max: 35.45,", "lat_max: 34.30,"))
    assert main(["validate", str(scenario), "--set", "grid.bounds.lon_max=41.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{scenario}:19: grid.bounds.lat_max: lat_min (34.3) must be below lat_max (34.3)", err


def _base_and_child(tmp_path: Path, child: str, base: str = "baseline", edit: tuple[str, str] = ("", "")) -> Path:
    """A copy of a shipped scenario as base.yaml (with one edit) and child.yaml extending it with `child`."""
    text = (ROOT / "scenarios" / f"{base}.yaml").read_text()
    (tmp_path / "base.yaml").write_text(text.replace(*edit) if edit[0] else text)
    (tmp_path / "child.yaml").write_text("extends: base.yaml\n" + child)
    return tmp_path / "child.yaml"


@pytest.mark.parametrize(
    ("child", "base", "expected"),
    [
        # A rule between keys that the child's override breaks: its line, not the base's lat_max (line 19).
        (
            "grid:\n  bounds:\n    lat_min: 36.0\n",
            "baseline",
            ["{child}:4: grid.bounds.lat_min: lat_min (36.0) must be below lat_max (35.45)"],
        ),
        # Sites of the base put off the grid by the child's bounds: the bounds' line, naming each site.
        (
            "name: moved\ngrid:\n  bounds: {lat_min: 34.3, lat_max: 35.3, lon_min: 40.0, lon_max: 41.1}\n",
            "baseline",
            [
                "{child}:4: grid.bounds.lat_max: sites.deir_ezzor.lat ({base}:32): site is off the grid"
                " (cell row -2, col 6; grid is 40x48)",
                "{child}:4: grid.bounds.lat_max: sites.ndf_hq_deir.lat ({base}:113): site is off the grid"
                " (cell row -1, col 6; grid is 40x48)",
            ],
        ),
        # A section rule (a site's place): the child's section, not the base's site line (18).
        (
            "sites:\n  bridge:\n    lat: 34.5\n",
            TOY,
            ["{child}:3: sites.bridge: give either lat/lon or row/col, not both"],
        ),
        # The base's sites and cell overrides put off the grid by the child's narrower grid.
        (
            "grid:\n  width: 12\n",
            TOY,
            [
                "{child}:3: grid.width: sites.east_town.row ({base}:17): site is off the grid"
                " (cell row 6, col 19; grid is 12x12)",
                "{child}:3: grid.width: sites.bridge.row ({base}:18): site is off the grid"
                " (cell row 6, col 12; grid is 12x12)",
                "{child}:3: grid.width: sites.red_hq.row ({base}:20): site is off the grid"
                " (cell row 5, col 19; grid is 12x12)",
                "{child}:3: grid.width: grid.cells.0 ({base}:13): cell is off the grid",
                "{child}:3: grid.width: grid.cells.1 ({base}:14): cell is off the grid",
            ],
        ),
    ],
)
def test_a_child_scenario_that_breaks_its_base_is_blamed_at_its_own_line(tmp_path, capsys, child, base, expected):
    """With extends:, what the child's override broke was reported at the base file's lines (which were fine)."""
    scenario = _base_and_child(tmp_path, child, base)
    assert main(["validate", str(scenario)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [e.format(child=scenario, base=tmp_path / "base.yaml") for e in expected], lines


def test_in_a_chain_of_three_files_the_middle_file_that_moved_the_grid_is_blamed(tmp_path, capsys):
    # grandchild -> child (moves grid.bounds) -> base: the base's site lines were blamed, as the
    # main file (grandchild) sets none of the keys.
    bounds = "{lat_min: 34.3, lat_max: 35.3, lon_min: 40.0, lon_max: 41.1}"
    child = _base_and_child(tmp_path, f"name: moved\ngrid:\n  bounds: {bounds}\n")
    grandchild = tmp_path / "grandchild.yaml"
    grandchild.write_text("extends: child.yaml\nname: moved_again\n")
    assert main(["validate", str(grandchild)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith(f"{child}:4: grid.bounds.lat_max: sites.") for line in lines), lines
    assert f"sites.deir_ezzor.lat ({tmp_path / 'base.yaml'}:32): site is off the grid" in lines[0], lines
    # A rule between keys of the middle file and the base: the middle file's key.
    edited = _base_and_child(tmp_path, "grid:\n  bounds:\n    lat_min: 36.0\n")
    assert edited == child
    assert main(["validate", str(grandchild)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{child}:4: grid.bounds.lat_min: lat_min (36.0) must be below lat_max (35.45)", err


def test_sites_a_set_option_puts_off_the_grid_blame_the_option(capsys):
    """They were reported at the file's site lines, which were fine."""
    assert main(["validate", "baseline", "--set", "grid.bounds.lat_max=35.3"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("--set: grid.bounds.lat_max: sites.") for line in lines), lines
    assert "sites.deir_ezzor.lat (" in lines[0] and "baseline.yaml:32): site is off the grid" in lines[0], lines


def test_what_the_base_broke_is_still_blamed_on_the_base_when_the_child_sets_another_key(tmp_path, capsys):
    edit = ("lat_max: 35.45,", "lat_max: 34.30,")
    scenario = _base_and_child(tmp_path, "grid:\n  bounds:\n    lon_max: 41.2\n", edit=edit)
    assert main(["validate", str(scenario)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{tmp_path / 'base.yaml'}:19: grid.bounds.lat_max: lat_min (34.3) must be below lat_max (34.3)", err



def test_a_theatre_a_child_scenario_changes_is_blamed_at_its_own_line(tmp_path, capsys):
    """helper-b: a child of syria_wide moving a site or a faction to another theatre was blamed on the
    base's lines that name them (initial_control, deployment_weights, hostilities: all fine there)."""
    scenario = _base_and_child(tmp_path, "sites:\n  palmyra:\n    theatre: damascus\n", "syria_wide")
    base = tmp_path / "base.yaml"
    assert main(["validate", str(scenario)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"{scenario}:4: sites.palmyra.theatre: factions.IRGC_homs.deployment_weights.palmyra ({base}:181): "
        "site 'palmyra' lies in theatre 'damascus', not in the militia's 'homs'",
        f"{scenario}:4: sites.palmyra.theatre: factions.NDF_homs.deployment_weights.palmyra ({base}:195): "
        "site 'palmyra' lies in theatre 'damascus', not in the militia's 'homs'",
        f"{scenario}:4: sites.palmyra.theatre: sites.palmyra.initial_control ({base}:93): "
        "'IRGC_homs' is a militia of theatre 'homs'; the site lies in theatre 'damascus'",
    ], lines
    # A faction moved: every rule it breaks at the child's line, none at the base's.
    _base_and_child(tmp_path, "factions:\n  IRGC_homs:\n    theatre: aleppo\n", "syria_wide")
    assert main(["validate", str(scenario)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 10 and all(line.startswith(f"{scenario}:4: factions.IRGC_homs.theatre: ") for line in lines)
    assert f"hostilities.1 ({base}:289): 'IRGC_homs' (theatre 'aleppo') and 'NDF_homs'" in lines[-1], lines
    # A theatre that does not exist: said once, where it is written, without the rules it would only repeat.
    _base_and_child(tmp_path, "sites:\n  palmyra:\n    theatre: nowhere\n", "syria_wide")
    assert main(["validate", str(scenario)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{scenario}:4: sites.palmyra.theatre: no theatre named 'nowhere' (known: deir_ezzor, homs, damascus, aleppo)"
    ), err
    # The same from --set: the option, not the file's lines.
    assert main(["validate", str(base), "--set", "sites.palmyra.theatre=damascus"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("--set: sites.palmyra.theatre: ") for line in lines), lines


STEPS_SWEEP = """\
extends: toy_two_towns.yaml
name: steps_sweep
sweep:
  design: lhs
  samples: 4
  parameters:
    steps: {low: 5, high: 10, integer: true}
  outputs: [clashes_total]
"""


@pytest.mark.parametrize(
    ("scenario", "override", "line"),
    [
        (TOY, "sites.bridge.lat=34.5", "--set: sites.bridge.lat: give either lat/lon or row/col, not both"),
        (TOY, "sites.bridge.row=null", "--set: sites.bridge.row: row and col go together"),
        (
            TOY,
            "sites.bridge.crossing=null",
            "--set: sites.bridge.crossing: a crossing needs `crossing: border` or `crossing: river`",
        ),
        (
            TOY,
            "validation.patterns.0.at_most=0.5",
            "--set: validation.patterns.0.at_most: no value meets these bounds (lower 0.9 above upper 0.5)",
        ),
        (
            TOY,
            "validation.ensemble.0.statistic=spearman",
            "--set: validation.ensemble.0.statistic: statistic 'spearman' takes 2 measure(s) in `of`, got 1",
        ),
        (
            "calibrate_baseline",
            "calibration.samples=2",
            "--set: calibration.samples: accept (0.1) x samples (2) keeps no draw; raise one of them",
        ),
        (
            "calibrate_baseline",
            "calibration.predictive.checks.0.band=[5, 1]",
            "--set: calibration.predictive.checks.0.band: empty band: 5.0 must be below 1.0",
        ),
        ("sweep_salary_mediation", "sweep.design=lhs", "--set: sweep.design: design 'lhs' needs `samples`"),
        (
            "steps_sweep",
            "sweep.parameters.steps.low=20",
            "--set: sweep.parameters.steps.low: empty range: low (20.0) must be below high (10.0)",
        ),
    ],
)
def test_sections_made_invalid_by_a_set_option_blame_the_option(scenario, override, line, tmp_path, capsys):
    """A rule between keys of a section (a site's place, a pattern's bounds, accept x samples, a sweep range's ends)
    was reported at the section's line in the file when a --set option broke it; the file was fine."""
    if scenario == "steps_sweep":
        (tmp_path / "toy_two_towns.yaml").write_text((ROOT / "scenarios" / f"{TOY}.yaml").read_text())
        scenario = tmp_path / "steps_sweep.yaml"
        scenario.write_text(STEPS_SWEEP)
    assert main(["validate", str(scenario), "--set", override]) == 2
    assert capsys.readouterr().err.strip() == line


def test_a_section_the_file_made_invalid_blames_the_file_despite_a_set_option_in_it(tmp_path, capsys):
    scenario = tmp_path / "toy.yaml"
    base = (ROOT / "scenarios" / f"{TOY}.yaml").read_text()
    scenario.write_text(base.replace("crossing: river, row: 6,", "crossing: river, lat: 34.5, row: 6,"))
    assert main(["validate", str(scenario), "--set", "sites.bridge.value=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{scenario}:18: sites.bridge: give either lat/lon or row/col, not both", err


def test_a_river_that_never_crosses_the_grid_is_refused():
    text = refused("grid.river={path: [[10.0, 10.0], [11.0, 11.0]]}")
    assert len(text.splitlines()) == 1 and "grid.river.path: the river does not cross the grid" in text, text
    assert "edge" not in text, text


@pytest.mark.parametrize("path", ["[[34.3, 40.2], [34.3, 40.9]]", "[[34.5, 41.1], [35.2, 41.1]]"])
def test_a_river_along_the_southern_or_eastern_edge_is_refused_saying_why(path):
    """A cell holds its northern and western edges, so a river along lat_min or lon_max is on no cell."""
    text = refused(f"grid.river={{path: {path}}}")
    assert len(text.splitlines()) == 1 and "grid.river.path: the river does not cross the grid" in text, text
    assert "touches only the southern (lat_min) or eastern (lon_max) edge" in text, text


@pytest.mark.parametrize(
    ("grid", "line", "key", "why"),
    [
        # A town's cell is urban, except under `outside`: nothing is passable.
        ("  default_terrain: outside\n", 3, "grid.default_terrain", "no grid cell is passable"),
        # Passable ground in one corner, more than 6 cells (1 + int(3 x 1.5 + 0.5)) from every site.
        (
            "  width: 60\n  default_terrain: outside\n  cells: [{row: 0, col: 59, terrain: desert}]\n",
            4,
            "grid.default_terrain",
            "no site is within reach of passable ground",
        ),
        # The default is passable, but the overrides cover every cell.
        (
            "  width: 2\n  height: 2\n  cells: ["
            + ", ".join(f"{{row: {r}, col: {c}, terrain: impassable}}" for r in (0, 1) for c in (0, 1))
            + "]\n",
            5,
            "grid.cells",
            "no grid cell is passable",
        ),
    ],
)
def test_a_grid_where_no_faction_could_hold_ground_is_refused_at_the_key_that_made_it(tmp_path, grid, line, key, why):
    """Such scenarios validated and ran, reporting every militia's territory as 0.0 on every day."""
    sites = ""
    if "width: 2" in grid:  # the toy's sites, moved onto the 2 x 2 grid (each its own cell, one per corner)
        cells = {"west_town": (0, 0), "east_town": (0, 1), "bridge": (1, 0), "blue_hq": (1, 1), "red_hq": (1, 1)}
        sites = "sites:\n" + "".join(f"  {n}: {{row: {r}, col: {c}}}\n" for n, (r, c) in cells.items())
    scenario = tmp_path / "no_ground.yaml"
    scenario.write_text(f"extends: {ROOT / 'scenarios' / TOY}.yaml\ngrid:\n{grid}{sites}")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    text = str(caught.value)
    assert text.startswith(f"{scenario}:{line}: {key}: {why}") and len(text.splitlines()) == 1, text
    assert "no faction could hold any ground" in text, text


def test_overrides_that_cover_a_grid_with_outside_polygons_are_blamed_not_the_polygons(tmp_path):
    # The baseline's outside polygons cover a strip only: the overrides take the rest, and the
    # problem said "grid.outside: ... the outside polygons cover the rest" (found by a fresh user).
    every = ", ".join(f"{{row: {r}, col: {c}, terrain: impassable}}" for r in range(40) for c in range(48))
    scenario = tmp_path / "covered.yaml"
    scenario.write_text(f"extends: {ROOT / 'scenarios' / 'baseline'}.yaml\ngrid:\n  cells: [{every}]\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    text = str(caught.value)
    assert text.startswith(f"{scenario}:3: grid.cells: no grid cell is passable (the cell overrides cover"), text


def test_a_grid_whose_only_passable_cells_are_sites_is_accepted():
    """An impassable default with towns on it: the towns' cells are urban, so ground can be held.

    The toy's other sites (the bridge, the two headquarters) need passable cells of their own.
    """
    cells = "grid.cells=[" + ", ".join(
        f"{{row: {r}, col: {c}, terrain: rural}}" for r, c in ((6, 12), (5, 4), (5, 19))
    ) + "]"
    assert load_scenario(TOY, ["grid.default_terrain=impassable", cells]).grid.default_terrain == "impassable"


@pytest.mark.parametrize("terrain", ["impassable", "outside"])
def test_a_site_on_impassable_ground_is_refused_at_the_key_that_made_it(tmp_path, terrain):
    """Its fighters stood there: posts fall back to the site's own cell (22 of 508 on an impassable bridge)."""
    text = refused(f"grid.cells=[{{row: 6, col: 12, terrain: {terrain}}}]", scenario=TOY)
    assert len(text.splitlines()) == 1, text
    assert text.startswith("--set: grid.cells: sites.bridge (") and f"site 'bridge' lies on {terrain} ground" in text
    assert "(cell row 6, col 12)" in text, text
    # In a file: the line of its grid.cells, the site named with its own file and line.
    scenario = tmp_path / "rock.yaml"
    scenario.write_text(
        f"extends: {ROOT / 'scenarios' / TOY}.yaml\ngrid:\n  cells: [{{row: 6, col: 12, terrain: {terrain}}}]\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    text = str(caught.value)
    assert text.startswith(f"{scenario}:3: grid.cells: sites.bridge (") and len(text.splitlines()) == 1, text


@pytest.mark.parametrize(
    ("scenario", "overrides", "blamed"),
    [
        # The site moved onto the toy's impassable column: its move, not the file's site line.
        (TOY, ["sites.bridge.row=0"], "--set: sites.bridge.row: sites.bridge ("),
        # A harmless override elsewhere on the grid is not blamed (the file's grid.cells made (0, 12)).
        (TOY, ["grid.default_terrain=desert", "sites.bridge.row=0"], "--set: sites.bridge.row: sites.bridge ("),
        # A latitude/longitude moved onto the outside polygons.
        ("baseline", ["sites.oil_wells.lon=41.09"], "--set: sites.oil_wells.lon: sites.oil_wells ("),
        # The grid's geometry put a lat/lon site on outside ground.
        ("baseline", ["grid.bounds.lon_max=41.4", "grid.width=3"], "--set: grid.bounds.lon_max: sites.qaim_border ("),
        # The default terrain took the toy's non-town sites (towns stay urban): one line each.
        (TOY, ["grid.default_terrain=impassable"], "--set: grid.default_terrain: sites.bridge ("),
    ],
)
def test_a_site_on_impassable_ground_is_blamed_on_what_put_it_there(scenario, overrides, blamed):
    """Found by helper-73: a site's own move, or its latitude's, was not blamed, and a harmless override was."""
    text = refused(*overrides, scenario=scenario)
    assert text.splitlines()[0].startswith(blamed), text
    assert all("lies on" in line and "ground (cell row" in line for line in text.splitlines()), text


def test_a_river_from_one_end_of_the_globe_to_the_other_costs_what_one_on_the_grid_costs():
    """At the narrowest bounds a river across the globe is 10^7 cells long; only its samples on the grid are made."""
    from sim.geography import river_cells
    from sim.schema import Bounds, River

    base = load_scenario("baseline")
    narrowest = Bounds(lat_min=34.3, lat_max=34.301, lon_min=40.0, lon_max=40.001)
    far = River(path=[[-89.0, -179.0], [89.0, 179.0]])
    scenario = base.model_copy(update={"grid": base.grid.model_copy(update={"bounds": narrowest, "river": far})})
    tracemalloc.start()
    try:
        cells = river_cells(scenario)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak  # the whole segment, sampled, would be about 1 GB
    assert not cells.any()  # the line from (-89, -179) to (89, 179) passes south-east of this grid
    through = River(path=[[-89.0, 40.0005], [89.0, 40.0005]])
    scenario = base.model_copy(update={"grid": base.grid.model_copy(update={"bounds": narrowest, "river": through})})
    cells = river_cells(scenario)
    assert cells[:, base.grid.width // 2].all() and cells.sum() == base.grid.height  # due north through the middle


def _big_outside(height: int, width: int, n_polygons: int, n_points: int) -> Scenario:
    """The baseline on a height x width grid with n_polygons jagged outside areas of n_points each."""
    base = load_scenario("baseline")
    b = base.grid.bounds
    rng = np.random.default_rng(n_points)
    polygons = []
    for k in range(n_polygons):
        t = np.linspace(0, 2 * np.pi, n_points, endpoint=False)
        r = 0.12 * (1 + 0.3 * np.sin(37 * t)) + rng.uniform(0, 0.01, n_points)
        lat = b.lat_min + (0.15 + 0.7 * (k // 2 % 2)) * (b.lat_max - b.lat_min) + r * np.sin(t)
        lon = b.lon_min + (0.15 + 0.7 * (k % 2)) * (b.lon_max - b.lon_min) + r * np.cos(t)
        polygons.append(np.column_stack([lat, lon]).round(5).tolist())
    grid = base.grid.model_copy(update={"height": height, "width": width, "outside": polygons})
    return base.model_copy(update={"grid": grid})


def test_outside_polygons_are_not_tested_edge_by_edge_in_python():
    """4 polygons of 8,000 points on a 400 x 400 grid took 46 s, one Python iteration per edge over every cell.

    Counted, not timed: the Python lines inside_polygon runs for an 8,000-point border (the
    loop over edges ran 16,000 and more).
    """
    import sys

    from sim.geography import cell_centres, inside_polygon

    scenario = _big_outside(60, 60, 1, 8000)
    polygon, centres = np.array(scenario.grid.outside[0], dtype=float), cell_centres(scenario)
    lines = 0

    def count(frame, event, arg):
        nonlocal lines
        if event == "line" and frame.f_code.co_filename.endswith("geography.py"):
            lines += 1
        return count

    sys.settrace(count)
    try:
        inside = inside_polygon(polygon, centres)
    finally:
        sys.settrace(None)
    assert 0 < inside.sum() < len(centres)
    assert lines < 500, lines


def test_outside_polygons_on_the_largest_grid_keep_memory_bounded():
    """The worst border for the search: 10,000 points zigzagging across all 400 rows of the largest grid."""
    from sim.geography import cell_centres, inside_polygon

    scenario = _big_outside(400, 400, 0, 0)
    b = scenario.grid.bounds
    n = 10_000  # MAX_LIST points: 4 million (edge, row) pairs
    lat = np.linspace(b.lat_min, b.lat_max, n)
    lon = np.where(np.arange(n) % 2, b.lon_max + 0.01, b.lon_min - 0.01)
    zigzag, centres = np.column_stack([lat, lon]), cell_centres(scenario)
    tracemalloc.start()
    try:
        inside = inside_polygon(zigzag, centres)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2**20, peak  # about 45 MB measured: the pairs are searched 262,144 at a time
    assert 0.2 < inside.mean() < 0.8  # the teeth: about half of each row


def test_a_run_maps_its_outside_polygons_once(tmp_path, monkeypatch):
    """The geography was built for the run and again for maps.npz: every polygon tested twice."""
    import sim
    import sim.geography

    # Built before counting: loading the baseline validates its own sites against its own
    # outside polygon (4 points), unless an earlier test in this process loaded it already.
    scenario = _big_outside(40, 48, 2, 777)  # a grid no other test maps: nothing kept from before
    calls = []
    real = sim.geography.inside_polygon

    def counted(polygon, points):
        calls.append(len(polygon))
        return real(polygon, points)

    monkeypatch.setattr(sim.geography, "inside_polygon", counted)
    sim.simulate(scenario, steps=2).save(tmp_path / "run", plots=False)
    assert calls == [777, 777], calls  # once per polygon
    maps = np.load(tmp_path / "run" / "maps.npz")
    assert np.array_equal(maps["terrain"], sim.geography.build_geography(scenario).terrain)
    assert calls == [777, 777], calls  # built again: the same grid's terrain, not tested again


def test_long_bad_values_are_echoed_cut_short():
    text = refused("name=" + "x" * 10_000)
    assert len(text) < 300, text
    assert "…" in text
    assert main(["validate", "baseline", "--set", "description=" + "y" * 10_000]) == 2


def test_long_unknown_keys_are_shown_cut_short(capsys):
    """A 20,000-character key printed a 40 KB line (the key path, then the key quoted in the message)."""
    assert main(["validate", "baseline", "--set", "rules." + "k" * 20_000 + "=1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and len(err) < 1000 and "…" in err, err[:2000]
    assert err.startswith("--set: rules.kkk") and "valid keys: clashes, deployment" in err, err  # start and end kept


# --------------------------------------------------------------------------- at the bounds, it runs


def at_the_bounds() -> list[str]:
    """Overrides putting every rule of the toy scenario at its upper bound (money and counts too)."""
    from sim.schema import Rules

    overrides = []
    for section, model in Rules.model_fields.items():
        for name, field in model.annotation.model_fields.items():
            high = next((getattr(m, "le", None) for m in field.metadata if getattr(m, "le", None) is not None), None)
            if high is None or isinstance(field.default, bool) or not isinstance(field.default, (int, float)):
                continue
            value = int(high) if isinstance(field.default, int) else float(high)
            overrides.append(f"rules.{section}.{name}={value}")
    overrides += [
        "rules.influence.control_threshold=1.0",
        "sites.bridge.revenue_usd_day=1000000000.0",
        "patrons.North.funding_usd_day=1000000000.0",
        "patrons.North.topup_per_loss=100",
        "patrons.North.topup_max_share=10",
        "factions.Blue.initial_budget_usd=1000000000000.0",
        "factions.Blue.spending.courting_usd_day=1000000000.0",
        "factions.Red.salary_usd_month=100000",
        "factions.Cells.initial_fighters=1000000",
        "factions.Blue.deployment_weights.bridge=1000",
        "tribes.west.initial_alignment.Blue=1000",
    ]
    # Each key once (a key given twice is refused): a later entry's value replaces the rule's bound.
    return list({o.partition("=")[0]: o for o in overrides}.values())


def test_rules_at_their_upper_bounds_run_with_finite_outputs():
    config = load_scenario(TOY, at_the_bounds())
    result = run_model(config, seed=3, steps=4)
    numbers = result.timeseries.select_dtypes("number").to_numpy(dtype=float)
    assert np.isfinite(numbers).all(), "a figure left the finite range"
    assert len(result.timeseries) == 5


def test_cli_runs_a_document_at_the_bounds(tmp_path):
    args = [a for o in at_the_bounds() for a in ("--set", o)]
    assert main(["validate", TOY, *args]) == 0
    out = tmp_path / "run"
    assert main(["run", TOY, "--steps", "3", "--no-plots", "--out", str(out), *args]) == 0
    series = pd.read_csv(out / "timeseries.csv")
    assert np.isfinite(series.select_dtypes("number").to_numpy(dtype=float)).all()


# --------------------------------------------------------------------------- memory


@pytest.mark.slow  # tracemalloc slows the runs: ~20 s each on a busy machine
@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        (TOY, ["grid.width=220", "grid.height=220"]),  # dominated by the grid and the path distances
        ("baseline", ["grid.width=220", "grid.height=220"]),  # more factions and sites on it
        (TOY, ["sites.west_town.population=2500000", "sites.east_town.population=2500000"]),  # by the recruits
    ],
)
def test_estimate_is_within_a_factor_of_the_measured_peak(name, overrides):
    config = load_scenario(name, overrides)
    tracemalloc.start()
    try:
        run_model(config, seed=1, steps=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = limits.estimate_model_bytes(config, steps=3)
    assert 0.5 <= estimate / peak <= 2.0, f"estimate {estimate / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB"


def test_estimate_grows_with_what_the_model_allocates():
    base = load_scenario(TOY)
    bigger = {
        "grid": load_scenario(TOY, ["grid.width=200"]),
        "recruits": load_scenario(TOY, ["sites.west_town.population=80000"]),
        "steps": base,
    }
    assert limits.estimate_model_bytes(bigger["grid"]) > limits.estimate_model_bytes(base)
    assert limits.estimate_model_bytes(bigger["recruits"]) > limits.estimate_model_bytes(base)
    assert limits.estimate_model_bytes(base, steps=1000) > limits.estimate_model_bytes(base)


def test_a_scenario_that_does_not_fit_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(limits, "available_bytes", lambda: 50 * 2**20)  # a machine with 50 MiB free
    tracemalloc.start()
    try:
        text = refused("grid.width=400", "grid.height=400", scenario=TOY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "does not fit in memory" in text and "available" in text
    assert len(text.splitlines()) == 1
    assert peak < 20 * 2**20, "the refusal allocated the model first"


def test_the_runs_asked_for_are_priced_too(monkeypatch):
    config = load_scenario(TOY)
    monkeypatch.setattr(limits, "available_bytes", lambda: limits.estimate_model_bytes(config) * 3)
    run_model(config, seed=1, steps=2)  # fits
    with pytest.raises(ScenarioError, match="does not fit"):
        run_model(config, seed=1, steps=100_000)  # --steps beyond the scenario's
    from sim.runner import run_replicates

    with pytest.raises(ScenarioError, match="one run, keeping 100,000 results, need about"):
        run_replicates(config, 1, 100_000, steps=2)
    with pytest.raises(ScenarioError, match="2 runs at once, keeping 100,000 results, need about"):
        run_replicates(config, 1, 100_000, steps=2, workers=2)


def test_towns_too_large_for_the_machine_exit_2_without_a_traceback():
    # Sixty towns in a row, around the toy's impassable column 12 (a site may not stand on it).
    towns = [
        a
        for i, col in enumerate(c for c in range(61) if c != 12)
        for a in ("--set", f"sites.T{i}={{label: T{i}, kind: town, row: 1, col: {col}, population: 10000000}}")
    ]
    proc = subprocess.run(
        [sys.executable, "run.py", "validate", TOY, "--set", "rules.recruitment.pool_share=1", "--set", "grid.width=61",
         *towns],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # 6e8 recruits: about 65 GiB, more than this machine (or CI's, 24 GiB) has.
    assert proc.returncode == 2, proc.stderr
    assert "does not fit in memory" in proc.stderr and "up to 600,016,500 recruits (an upper bound)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_too_many_factions_are_refused():
    factions = [f"factions.F{i}={{label: F{i}}}" for i in range(1500)]
    text = refused(*factions, scenario=TOY)
    assert "factions" in text and "at most 200" in text


# --------------------------------------------------------------------------- design size


def test_a_grid_sweep_over_the_cap_is_refused_with_the_way_to_raise_it():
    levels = "[" + ", ".join(str(0.1 * k) for k in range(1, 10)) + "]"
    keys = [
        "rules.recruitment.p_reconsider",
        "rules.recruitment.pool_share",
        "rules.recruitment.p_liable",
        "rules.deployment.p_redeploy",
        "rules.tension.decay_per_day",
        "rules.clashes.lethality",
        "rules.clashes.p_killed",
        "rules.mediation.p_success_base",
        "rules.mediation.tension_drop",
    ]
    sweep = "sweep={parameters: {" + ", ".join(f"{k}: {levels}" for k in keys) + "}, outputs: [clashes_total]}"
    text = refused(sweep)
    assert "387,420,489 runs" in text and "sweep.max_runs=1,000,000" in text
    assert "--set sweep.max_runs=387420489" in text
    assert len(text.splitlines()) == 1


def test_calibration_and_robustness_designs_are_capped():
    text = refused("calibration.max_runs=1000", scenario="calibrate_baseline")
    assert "calibration.max_runs=1,000" in text and "samples" in text
    text = refused("robustness.points=100000", "robustness.replicates=1000")
    assert "robustness.max_runs" in text and "points" in text


def test_robustness_options_go_through_the_cap(tmp_path):
    pytest.importorskip("ema_workbench", reason=NO_ROBUSTNESS)
    from sim.robustness import plan_robustness

    with pytest.raises(ScenarioError, match="robustness.max_runs"):
        plan_robustness("baseline", points=100_000, replicates=1_000)


# --------------------------------------------------------------------------- command-line options


@pytest.mark.parametrize(
    "argv",
    [
        ["explore", "--port", "70000"],
        ["explore", "--port", "-1"],
        ["run", TOY, "--steps", "0"],
        ["run", TOY, "--steps", "100001"],
        ["run", TOY, "--replicates", "100001"],
        ["run", TOY, "--workers", "100000"],
        ["robustness", "baseline", "--points", "1e9"],
        ["robustness", "baseline", "--points", "1000000000"],
        ["robustness", "baseline", "--replicates", "1001"],
        ["sweep", TOY, "--steps", "1000000"],
    ],
)
def test_options_out_of_the_schemas_bounds_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "must be between" in err or "expected a whole number" in err


def test_option_bounds_are_read_from_the_schema():
    from sim.cli import build_parser
    from sim.schema import Robustness

    parser = build_parser()
    steps_high = Scenario.model_fields["steps"].metadata
    high = next(m.le for m in steps_high if getattr(m, "le", None) is not None)
    assert parser.parse_args(["run", TOY, "--steps", str(high)]).steps == high
    points = next(m.le for m in Robustness.model_fields["points"].metadata if getattr(m, "le", None) is not None)
    assert parser.parse_args(["robustness", "baseline", "--points", str(points)]).points == points
    assert parser.parse_args(["explore", "--port", "0"]).port == 0
    assert parser.parse_args(["explore", "--port", "65535"]).port == 65535


# --------------------------------------------------------------------------- the attack loop


def test_target_picker_draws_what_choice_draws():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    pool = np.array([3, 8, 9, 14, 20, 21, 30])
    w = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 2.0])
    faction = np.array([0, 0, 1, 1, 0, 1, 0])
    post = np.array([5, 5, 5, 7, 9, 7, 5])
    picker = TargetPicker(pool, w / w.sum(), faction, post)
    for _ in range(500):
        assert picker.draw(rng_a) == rng_b.choice(pool, p=w / w.sum())
    n = 31
    recruits = RecruitArrays(
        faction=np.full(n, -1),
        status=np.zeros(n, dtype=np.int8),
        tribe=np.full(n, -1),
        home=np.zeros(n, dtype=np.int64),
        post=np.full(n, -1),
        liable=np.zeros(n, dtype=bool),
        joined_step=np.zeros(n, dtype=np.int64),
        recover_step=np.zeros(n, dtype=np.int64),
        arrive_step=np.zeros(n, dtype=np.int64),
    )
    recruits.faction[pool], recruits.post[pool] = faction, post
    assert picker.still_posted(0, 5, recruits).tolist() == [3, 8, 30]
    recruits.post[8] = -1  # hit by the previous attack
    assert picker.still_posted(0, 5, recruits).tolist() == [3, 30]
    assert picker.still_posted(1, 9, recruits).tolist() == []


@pytest.mark.timeout(300)
def test_the_most_attacks_a_day_run_in_bounded_time():
    config = load_scenario(
        TOY,
        [
            "rules.insurgency.attack_rate=1",
            "rules.insurgency.max_cells=10000",
            "factions.Cells.initial_fighters=10000",
            "rules.insurgency.attack_casualties=0",  # attacks that hit nobody: the loop itself is timed
        ],
    )
    result = run_model(config, seed=2, steps=2)
    assert result.timeseries["insurgent_attacks"].iloc[1:].min() > 9000


def test_workers_that_do_not_fit_are_refused_before_starting(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(limits, "available_bytes", lambda: 2**30)  # 1 GiB free: 4 interpreters at most
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as caught:
        main(["run", TOY, "--workers", "8", "--replicates", "2", "--no-plots", "--out", str(out)])
    assert caught.value.code == 2
    assert "8 workers need" in capsys.readouterr().err
    assert not out.exists()


def test_a_sweep_whose_steps_do_not_fit_is_refused_before_writing(monkeypatch, tmp_path, capsys):
    config = load_scenario("sweep_salary_mediation")
    # room for any of its trial values at its own 365 steps (a high p_max prices more events), not for 100,000
    monkeypatch.setattr(limits, "available_bytes", lambda: 10 * limits.estimate_model_bytes(config))
    out = tmp_path / "sweep"
    assert main(["sweep", "sweep_salary_mediation", "--steps", "100000", "--out", str(out)]) == 2
    assert "does not fit in memory" in capsys.readouterr().err
    assert not out.exists()


def test_a_calibrations_own_steps_are_priced(monkeypatch):
    config = load_scenario("calibrate_baseline")
    # room for any of its trial values at its own 365 steps (a high p_max prices more events), not for 100,000
    monkeypatch.setattr(limits, "available_bytes", lambda: 10 * limits.estimate_model_bytes(config))
    text = refused("calibration.steps=100000", scenario="calibrate_baseline")
    assert "does not fit in memory" in text and "100000 steps" in text


def test_robustness_options_over_the_cap_exit_2(capsys):
    pytest.importorskip("ema_workbench", reason=NO_ROBUSTNESS)
    assert main(["robustness", "baseline", "--points", "100000", "--replicates", "1000"]) == 2
    err = capsys.readouterr().err
    assert "700,000,000 runs" in err and "--set robustness.max_runs=700000000" in err


def test_the_explorers_own_entry_refuses_a_port_out_of_range(capsys):
    pytest.importorskip(
        "solara",
        reason="the ui extra is not installed (pip install -e '.[ui]'): only the explorer's own port check is "
        "skipped; nothing else needs it",
    )
    from sim.explorer.server import serve

    assert serve("baseline", port=70000) == 2  # not an OverflowError from bind() (exit 1)
    assert "not a TCP port" in capsys.readouterr().err
    proc = subprocess.run(
        [sys.executable, "-m", "sim.explorer", "baseline", "--port", "70000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "must be between 0 and 65,535" in proc.stderr


def _polygons_file(tmp_path: Path, n_polygons: int, n_points: int) -> Path:
    """A scenario extending the baseline with `n_polygons` outside polygons of `n_points` points each (flow style)."""
    angles = np.linspace(0.0, 2 * np.pi, n_points, endpoint=False)
    polygons = []
    for k in range(n_polygons):
        lat = np.round(34.5 + 0.1 * k + 0.05 * np.sin(angles), 4)
        lon = np.round(40.2 + 0.05 * np.cos(angles), 4)
        polygons.append("[" + ", ".join(f"[{a}, {b}]" for a, b in zip(lat, lon, strict=True)) + "]")
    path = tmp_path / "polygons.yaml"
    path.write_text(
        f"extends: {ROOT / 'scenarios' / 'baseline.yaml'}\nname: polygons\n"
        f"grid:\n  outside: [{', '.join(polygons)}]\n"
    )
    return path


def test_a_scenario_its_results_could_not_read_back_is_refused_before_anything_is_written(tmp_path, capsys):
    """Valid as written, but over the reading limits with its defaults filled in: a sweep failed after it started.

    The sweep left a directory that could be neither resumed nor started again (its own
    scenario.yaml, read back, was over the limits); now validation refuses the file.
    """
    path = _polygons_file(tmp_path, 4, 8_300)  # 99,600 values of points: the file alone is within the limit
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"{path}: written out in full (defaults filled in)"), err
    assert "more than the 100,000 values a scenario file may have: its results could not be read back" in err
    out = tmp_path / "run"
    assert main(["run", str(path), "--steps", "2", "--no-plots", "--out", str(out)]) == 2
    assert not out.exists()


def test_a_large_scenario_is_written_compactly_and_its_results_read_back(tmp_path):
    """Lists of numbers are written on a line each (flow style): one item a line, 726 KB of points became 1.2 MB."""
    import sim

    path = _polygons_file(tmp_path, 4, 3_000)
    out = tmp_path / "run"
    sim.simulate(path, steps=2).save(out, plots=False)
    written = (out / "scenario.yaml").stat().st_size
    assert written < 1.6 * path.stat().st_size, (written, path.stat().st_size)
    assert load_scenario(out / "scenario.yaml") == load_scenario(path)


def test_a_site_moved_in_a_base_file_is_blamed_there_not_on_a_later_harmless_grid_key(tmp_path):
    """c7 extends c2 (which moves the bridge onto the impassable column) and sets only a passable default."""
    base = ROOT / "scenarios" / f"{TOY}.yaml"
    (tmp_path / "c2.yaml").write_text(f"extends: {base}\nname: c2\nsites:\n  bridge: {{row: 0}}\n")
    (tmp_path / "c7.yaml").write_text("extends: c2.yaml\nname: c7\ngrid:\n  default_terrain: desert\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "c7.yaml")
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'c2.yaml'}:4: sites.bridge: site 'bridge' lies on impassable ground"), text


def test_a_swept_value_that_puts_a_site_on_impassable_ground_names_the_sites_file_and_line(tmp_path):
    """Found by helper-73: the site's place read '(sweep)' inside the sweep's value check."""
    base = ROOT / "scenarios" / f"{TOY}.yaml"
    design = "sweep:\n  design: grid\n  outputs: [killed_total]\n  parameters:\n"
    (tmp_path / "s3.yaml").write_text(
        f"extends: {base}\nname: s3\n{design}    grid.default_terrain: [rural, desert, impassable]\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "s3.yaml")
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 's3.yaml'}:7: sweep.parameters.grid.default_terrain: value 'impassable'"), text
    assert f"sites.bridge ({base}:18): site 'bridge' lies on impassable ground" in text, text
    assert len(text.splitlines()) == 1, text
