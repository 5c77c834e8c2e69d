"""Scenario YAML -> validated `Scenario`.

Loading (`sim.yaml_source`) is safe and remembers where every key came from; this module
checks the document against the schema (`sim.schema`) and then checks what a schema cannot:
names that refer to nothing, sites off the grid, provenance for keys that do not exist.
Every problem becomes one line with file, line and key path; nothing runs until all pass.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ValidationError

from sim import keypath
from sim.expressions import ExpressionError, parse_expression
from sim.geography import (
    PASSABLE_TERRAIN,
    TERRAIN_CODE,
    build_geography,
    mapped_terrain,
    project,
    river_cells,
    site_cell,
)
from sim.limits import design_problem, memory_problem
from sim.outcomes import KINDS, check_outcome_name, outcome_name, parse
from sim.paths import DEFAULT_SCENARIO, PROJECT_DIR, SCENARIO_DIR, find_project_dir  # noqa: F401 - public here too
from sim.schema import (
    BETWEEN_KEYS,
    TERRAINS,
    Calibration,
    Scenario,
    SweepRange,
    Targets,
    child_type,
    schema_field,
    unwrap,
)
from sim.suggest import close_matches, did_you_mean, unknown
from sim.yaml_source import (
    ECHO_LIMIT,
    MAX_FILE_BYTES,
    MAX_VALUES,
    OVERRIDE_FILE,
    Problem,
    ScenarioError,
    SourcedDocument,
    apply_overrides,
    clipped,
    dump_yaml,
    load_scenario_document,
    no_decimal_point,
    override_key,
    short_override,
)

# Every provenance entry says what kind of source it is: the article (with its paragraph),
# public data, a value fitted by calibration, or an explicit assumption.
PROVENANCE_KINDS = ("article", "external", "calibrated", "assumption")
# Top-level keys that are not model parameters: they cannot be swept or calibrated.
NOT_PARAMETERS = (
    "name", "description", "provenance", "sweep", "targets", "seed", "calibration", "validation", "robustness"
)
# Sections that describe experiments over many runs, or checks on them, not the model:
# left out of trial scenarios.
DESIGN_SECTIONS = ("sweep", "calibration", "robustness", "validation")


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Load, merge `extends`, apply `key.path=value` overrides and validate.

    Raises ScenarioError (one Problem per line) on any bad input.
    """
    return load_scenario_with_document(path, overrides)[0]


def load_scenario_with_document(
    path: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[Scenario, SourcedDocument]:
    """`load_scenario`, and the document it validated: where each key came from, to locate later problems.

    Raises ScenarioError (one Problem per line) on any bad input.
    """
    path = scenario_file(path)
    document = load_scenario_document(str(path))
    if overrides:
        check_override_names(document, overrides)
        document = apply_overrides(document, list(overrides))
    config = validate_document(document)
    small = path.stat().st_size <= _SMALL_SCENARIO_BYTES and _count_values(document.data) <= _SMALL_SCENARIO_VALUES
    if not small and (problem := written_size_problem(config, str(path))) is not None:
        raise ScenarioError([problem])
    return config, document


def _is_bare_name(path: str | Path) -> bool:
    """A scenario named as in scenarios/ (`baseline`), not a file path (`x.yaml`, `dir/x`)."""
    text = str(path)
    return Path(text).suffix not in (".yaml", ".yml") and "/" not in text and os.sep not in text


def resolve_scenario_path(path: str | Path) -> Path:
    """Accept a path, or a bare scenario name found in the project's `scenarios/`.

    Returns the path as given when neither exists (`scenario_file` refuses that instead).

    Raises:
        ScenarioError: an empty or blank name (Path("") is the current directory: `run ''` was
            read as "." and refused as a directory).
    """
    if not str(path).strip():
        raise ScenarioError([Problem(repr(str(path)), "", None, "an empty scenario name or path; name a scenario")])
    p = Path(path)
    if p.exists() or not _is_bare_name(path):
        return p
    candidate = SCENARIO_DIR / f"{path}.yaml"
    return candidate if candidate.exists() else p


def scenario_file(path: str | Path) -> Path:
    """The scenario file a path or a bare name stands for (`resolve_scenario_path`), which must exist.

    Raises:
        ScenarioError: neither the file nor a scenario of that name in scenarios/ exists; the
            one-line message suggests the closest scenario names (or file names beside the
            path) and lists the scenarios, e.g. "unknown scenario 'baselin' (did you mean
            'baseline'? scenarios: baseline, ...)".
    """
    resolved = resolve_scenario_path(path)
    if resolved.exists() or resolved.is_symlink():  # a link in a loop or to nothing: the reader says which
        return resolved
    if _is_bare_name(path):
        names = sorted(p.stem for p in SCENARIO_DIR.glob("*.y*ml"))
        where = f"scenarios in {_shown(SCENARIO_DIR)}"
        message = f"unknown scenario '{path}' {unknown(str(path), names, where)}"
        raise ScenarioError([Problem("", "", None, message)])
    folder = resolved.parent
    siblings = sorted(p.name for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    found = close_matches(resolved.name, siblings, n=1)
    hint = f" (did you mean '{folder / found[0]}'?)" if found else ""
    raise ScenarioError([Problem(str(path), "", None, f"no such file{hint}")])


def _shown(directory: Path) -> str:
    """A directory as a reader would type it: relative to the current one where it lies below it."""
    try:
        return f"{directory.resolve().relative_to(Path.cwd().resolve())}/"
    except ValueError:
        return f"{directory}/"


def check_override_names(document: SourcedDocument, overrides: list[str] | tuple[str, ...]) -> None:
    """Refuse a `--set` whose key path steps into an entry the scenario lacks (a misspelled faction).

    `--set factions.IRGX.salary_usd_month=1` would otherwise create a faction 'IRGX' and fail
    on its missing label. A path through a named section of the schema (`sites`, `tribes`,
    `factions`, `patrons`: maps whose entries are sections) may only end at a new entry (a
    whole new entity given as a mapping), not pass through one.

    Raises:
        ScenarioError: one problem per such override, e.g. "scenario 'baseline' has no faction
            'IRGX' (did you mean 'IRGC'? factions: IRGC, NDF, ...)". Malformed overrides are
            left to `apply_overrides`, which says what is wrong with them.
    """
    problems = []
    for assignment in overrides:
        if (segments := override_key(assignment)) is None:
            continue
        why = missing_entry(document.data, segments)
        if why:
            problems.append(Problem(OVERRIDE_FILE, keypath.join(segments), None, why))
    if problems:
        raise ScenarioError(problems)


def check_overrides_not_varied(
    overrides: list[str] | tuple[str, ...], varied: Iterable[str], by: str, instead: str
) -> None:
    """Refuse a `--set` on a key a design varies: each run's value would replace it unseen.

    A sweep (or calibration) applies its design point's values over the scenario with the
    `--set`s already in it, so `--set factions.IRGC.salary_usd_month=999` on a swept key ran
    the design's values while the manifest and figure footers listed the override. A key
    that contains a varied one, or lies inside one, is refused too (part of it would be replaced).

    Args:
        overrides: `key.path=value` strings (malformed ones are left to `apply_overrides`).
        varied: the dotted key paths the design sets in each run.
        by: what varies them, e.g. "swept by the design".
        instead: where to change them, e.g. "`sweep.parameters`".

    Raises:
        ScenarioError: one problem per such override, e.g. "--set: factions.IRGC.salary_usd_month:
            --set factions.IRGC.salary_usd_month=999 would be ignored: the key is swept by the
            design; change `sweep.parameters` instead".
    """
    keys = []
    for key in varied:
        try:
            keys.append(keypath.parts(key))
        except keypath.KeyPathError:
            continue
    problems = []
    for assignment in overrides:
        if (segments := override_key(assignment)) is None:
            continue
        hit = next((k for k in keys if k[: len(segments)] == segments or segments[: len(k)] == k), None)
        if hit is None:
            continue
        key = keypath.join(hit)
        what = "the key is" if hit == segments else f"{key} is"
        message = f"--set {short_override(assignment)} would be ignored: {what} {by}; change {instead} instead"
        problems.append(Problem(OVERRIDE_FILE, keypath.join(segments), None, message))
    if problems:
        raise ScenarioError(problems)


def missing_entry(data: dict, segments: tuple[str, ...] | str) -> str | None:
    """Why a key path passes through an entry of a named section that `data` lacks; None if it does not.

    Args:
        data: A scenario as plain data (a document's, or `scenario_to_dict`'s).
        segments: The key path, dotted or as its segments.

    Returns:
        One line such as "scenario 'baseline' has no faction 'IRGX' (did you mean 'IRGC'?
        factions: IRGC, NDF, ...)", or None when every named entry on the path exists (the
        path may still end in a key the schema refuses: validation says so).
    """
    segments = keypath.parts(segments)
    node_type: Any = Scenario
    node: Any = data
    for position, part in enumerate(segments):
        plain = unwrap(node_type)
        if get_origin(plain) is dict:
            entry_type = unwrap(get_args(plain)[1])
            named = isinstance(entry_type, type) and issubclass(entry_type, BaseModel)
            present = isinstance(node, dict) and part in node
            if named and not present and position < len(segments) - 1:
                section = segments[position - 1] if position else "entries"
                names = list(node) if isinstance(node, dict) else []
                singular = section[:-1] if section.endswith("s") else section
                name = data.get("name", "this scenario") if isinstance(data, dict) else "this scenario"
                return f"scenario '{name}' has no {singular} '{part}' {unknown(part, names, section)}"
        node_type = child_type(node_type, part)
        if node_type is None:
            return None
        node = node.get(part) if isinstance(node, dict) else None
    return None


def scenario_from_dict(data: dict, source: str = "<dict>") -> Scenario:
    """Validate a plain dict (from a notebook or the browser explorer) as a scenario."""
    return validate_document(SourcedDocument(data=data, origins={}, main_file=source))


def validate_document(document: SourcedDocument, *, validated: tuple[dict, Scenario] | None = None) -> Scenario:
    """The document validated against the schema, then across sections.

    Args:
        document: the scenario as loaded (and overridden).
        validated: optionally (data, the scenario it validated to), where `document` was made
            from `data` by `apply_overrides`: the top-level sections the document still
            shares with `data` (the very same objects, untouched) are taken from that
            scenario as they are instead of being validated again. Sections are frozen models
            and validate alone, so the result is the same; the whole scenario's own checks
            and those across sections run as always. For a sweep, whose design points each
            change a few keys of one base (tests/test_sweep_overhead.py).

    Raises:
        ScenarioError: every problem found, each with file, line and key path.
    """
    data = document.data
    if (problem := not_a_scenario(document)) is not None:
        raise ScenarioError([problem])
    if validated is not None and isinstance(data, dict):
        source, known = validated
        fields = Scenario.model_fields
        data = {k: getattr(known, k) if k in fields and k in source and v is source[k] else v for k, v in data.items()}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(in_file_order(validation_problems(error, document))) from None
    problems = cross_reference_problems(scenario, document)
    if problems:
        raise ScenarioError(in_file_order(problems))
    # Last, as it prices the whole scenario: refuse before any array is allocated.
    # A calibration may run longer than the scenario (calibration.steps): price the longer.
    steps = max(scenario.steps, (scenario.calibration.steps or 0) if scenario.calibration else 0)
    why = memory_problem(scenario, steps)
    if why:
        raise ScenarioError([Problem(document.main_file or "<scenario>", "", None, why)])
    return scenario


def not_a_scenario(document: SourcedDocument) -> Problem | None:
    """One problem for a mapping with none of a scenario's required keys (a manifest, a results file).

    Such a file got a line per required key missing and a line per key of its own (24 for a
    sweep's manifest.json, 38 for a calibration.json), none of which says what is wrong. A
    file that `extends:` a scenario has the required keys of its base here.
    """
    data = document.data
    required = [name for name, f in Scenario.model_fields.items() if f.is_required()]
    if not isinstance(data, dict) or not data or any(key in data for key in required):
        return None  # not a mapping, or empty: the schema's own message; a scenario, however broken: validate it
    keys = [str(key) for key in data]
    shown = ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")
    file, line = document.where((next(iter(data)),))
    return Problem(
        file or document.main_file,
        "",
        line,
        f"not a scenario: it has none of a scenario's required keys ({', '.join(required)}; see "
        f"scenarios/baseline.yaml), only {shown}",
    )


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """The problems sorted by line within each file (those with no line first), files in order of first mention."""
    files: dict[str, int] = {}
    for problem in problems:
        files.setdefault(problem.file, len(files))
    return sorted(problems, key=lambda p: (files[p.file], p.line is not None, p.line or 0))


# ---------------------------------------------------------------------------------------


TYPE_MISMATCH = {"list_type", "dict_type", "model_type", "model_attributes_type", "is_instance_of"}


SCALAR_MISMATCH = {"bool_type", "int_type", "float_type", "string_type", "bool_parsing", "int_parsing", "float_parsing"}
_UNION_MEMBERS = re.compile(r"union\[([^\[\]]*)\]")


def _tidy_union_errors(errors: list[dict]) -> list[dict]:
    """Pydantic's errors for a union field, reduced to those the input meant: one per place.

    Union-branch tags are dropped from locations (`list[union[bool,constrained-int,...]]` and
    then `bool`, `constrained-int`, ... after it). At one place, the 'wrong type' complaints of
    branches the input did not mean are dropped when a branch says more (NaN in a list of
    values: "a finite number", not also "a valid boolean", "a valid integer", "a valid
    string"), or, when every branch only says "wrong type", they are said in one line; and a
    branch's 'wrong type' is dropped where another branch found the input's shape right and
    complains deeper in it (a range `{low, high: 1e308}`: its `high`, not "a valid list").
    """
    cleaned = []
    for error in errors:
        loc, members = [], set()
        for part in error["loc"]:
            if isinstance(part, str) and "[" in part:
                for listed in _UNION_MEMBERS.findall(part):
                    members.update(listed.split(","))
                continue
            if isinstance(part, str) and part in members:
                continue
            loc.append(part)
        cleaned.append({**error, "loc": tuple(loc)})
    by_loc: dict[tuple, list[dict]] = {}
    for error in cleaned:
        by_loc.setdefault(error["loc"], []).append(error)
    mismatch = TYPE_MISMATCH | SCALAR_MISMATCH
    kept = []
    for siblings in by_loc.values():
        meant = [e for e in siblings if e["type"] not in mismatch]
        if meant:
            kept += meant
        elif len(siblings) > 1:  # every branch: wrong type; one line naming what would do
            wanted = " or ".join(dict.fromkeys(e["msg"].removeprefix("Input should be ") for e in siblings))
            kept.append({**siblings[0], "msg": f"Input should be {wanted}"})
        else:
            kept += siblings
    places = [e["loc"] for e in kept]

    def deeper(loc: tuple) -> bool:
        return any(len(place) > len(loc) and place[: len(loc)] == loc for place in places)

    return [e for e in kept if not (e["type"] in mismatch and deeper(e["loc"]))]


def validation_problems(
    error: ValidationError, document: SourcedDocument, model: type[BaseModel] = Scenario, prefix: tuple = ()
) -> list[Problem]:
    """A pydantic ValidationError as one Problem per error, located in `document`.

    Args:
        error: raised by `model.model_validate`.
        document: where the validated data came from (for file and line).
        model: the pydantic model that was validated (for the valid keys of a section).
        prefix: the key path of the validated data inside the document, e.g.
            `("calibration",)` when only that section was validated.
    """
    return [_problem(document, e, model, prefix) for e in _tidy_union_errors(error.errors())]


def _problem(document: SourcedDocument, error: dict, model: type[BaseModel], prefix: tuple) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        valid = _valid_keys(model, loc[:-1])
        key = f"'{loc[-1]}'" if len(str(loc[-1])) <= ECHO_LIMIT else clipped(str(loc[-1]))  # a long key, cut short
        message = f"unknown key {key}" + (f" {unknown(str(loc[-1]), valid, 'valid keys')}" if valid else "")
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = error["msg"]
        message = message[0].lower() + message[1:]
        message = message.replace("Value error, ", "").replace("value error, ", "")
        if kind == BETWEEN_KEYS:
            context = error["ctx"]
            return _between_keys_problem(document, (*prefix, *loc), context["keys"], message, context.get("section"))
        if isinstance(value, (int, float, str, bool)):
            shown = clipped(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
            hint = no_decimal_point(value) if kind == "int_type" and type(value) is float else None
            message += f" (got {shown}; {hint})" if hint else f" (got {shown})"
        elif value is None and kind != "none_required":  # `~`, `null` or an empty value in YAML
            message += " (got null)"
    return document.problem((*prefix, *loc), message)


def _between_keys_problem(
    document: SourcedDocument, path: tuple, keys: tuple[str, ...], message: str, section: bool = False
) -> Problem:
    """The problem of a rule between keys (`sim.schema.between_keys`), blamed on the key that broke it.

    The rule is reported at `path`: one of the keys, or with `section` the section the keys
    belong to (a model validator's rule, e.g. a site's lat/lon or row/col). Its message shows
    the values of the keys, so none is added. Which key takes the blame is `_blamed`'s choice:
    a key given by `--set` (with `--set grid.bounds.lat_min=36` the file's lat_max, 35.45, is
    fine, the override is not; with `--set sites.bridge.lat=34.5` the file's row/col are), else
    one the main file sets when `path` comes from the file it `extends:` (a child that sets
    lat_min: 36 over its base's bounds); keys the scenario does not give (defaults) take no
    blame; else the file and line of `path`, as any problem's.
    """
    parent, own = (path, ()) if section else (path[:-1], (path[-1],))
    blamed = _blamed(document, path, [(*parent, key) for key in (*own, *keys)])
    if blamed[0] == OVERRIDE_FILE:
        return Problem(OVERRIDE_FILE, keypath.join(blamed[1]), None, message)
    return document.problem(blamed[1], message)


def _blamed(document: SourcedDocument, path: tuple, keys: list[tuple]) -> tuple[str, tuple]:
    """(file, key path) a problem found at `path`, which the values of `keys` decide together, is reported at.

    The first of `keys` given by a `--set` option; else, when `path` comes from a file that
    another file of the `extends:` chain extends (a base), the first of `keys` set by the latest
    such file (the main file, or one between): that file changed it, so its line is where to
    look (a base's sites fall off the grid because a child moved grid.bounds; the base's
    lat_max is fine until a child sets lat_min above it); else `path` where it comes from.
    `keys` may include `path`.
    """
    for key in keys:
        origin = document.origins.get(key)
        if origin is not None and origin[0] == OVERRIDE_FILE:
            return OVERRIDE_FILE, key
    # Along the extends: chain (base first), a key set by a file that extends the one `path`
    # comes from overrode it there: the latest such file is where to look (main, or a middle file).
    rank = {file: i for i, file in enumerate(document.files or (document.main_file,))}
    here = document.where(path)[0]
    if here not in rank:  # e.g. a default: nothing overrode it
        return here, path
    later = [(rank[o[0]], -i, key) for i, key in enumerate(keys) if (o := document.origins.get(key)) and o[0] in rank]
    later = [item for item in later if item[0] > rank.get(here, -1)]
    if later:
        _, _, key = max(later)  # the latest file; the first such key in `keys`
        return document.origins[key][0], key
    return here, path


def _problem_blamed(document: SourcedDocument, path: tuple, keys: list[tuple], message: str) -> Problem:
    """The problem `message` of `path`, reported at the key of `keys` that `_blamed` picks.

    When that is not `path` (a site off the grid blamed on the grid.bounds that moved it),
    the message starts with `path` and where it is, so the line still names what is wrong.
    """
    file, blamed = _blamed(document, path, keys)
    if blamed == path:
        return document.problem(path, message)
    at = document.where(path)
    where = at[0] if at[1] is None else f"{at[0]}:{at[1]}"
    text = f"{keypath.join(path)} ({where}): {message}"
    if file == OVERRIDE_FILE:
        return Problem(OVERRIDE_FILE, keypath.join(blamed), None, text)
    return document.problem(blamed, text)


def _valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the schema section at `loc` (for 'unknown key' messages)."""
    node: Any = model
    for part in loc:
        node = child_type(node, part)
    node = unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return sorted(node.model_fields)
    return []


def cross_reference_problems(s: Scenario, doc: SourcedDocument) -> list[Problem]:
    """Checks across sections: every name refers to something, every site is on the grid."""
    problems: list[Problem] = []

    def need(collection: dict, name: str | None, path: tuple, what: str) -> None:
        if name is not None and name not in collection:
            problems.append(doc.problem(path, f"no {what} named '{name}' {unknown(name, collection, 'known')}"))

    g = s.grid
    placed = True  # every site and cell override on the grid: its terrain can be built
    for name, site in s.sites.items():
        for i, tribe in enumerate(site.tribes):
            need(s.tribes, tribe, ("sites", name, "tribes", i), "tribe")
        need(s.factions, site.owner, ("sites", name, "owner"), "faction")
        for faction_name, faction in s.factions.items():
            if site.owner is not None and name in faction.headquarters and faction_name != site.owner:
                problems.append(
                    doc.problem(
                        ("sites", name, "owner"),
                        f"owned by '{site.owner}' but listed as headquarters of '{faction_name}'",
                    )
                )
        need(s.factions, site.initial_control, ("sites", name, "initial_control"), "faction")
        holder = s.factions.get(site.initial_control) if site.initial_control is not None else None
        if holder is not None and holder.kind == "insurgent":
            problems.append(
                doc.problem(
                    ("sites", name, "initial_control"),
                    f"'{site.initial_control}' is the insurgent faction, which is not on the map and holds no ground",
                )
            )
        if site.lat is not None:
            if g.bounds is None:
                problems.append(doc.problem(("sites", name, "lat"), "placing by lat/lon needs grid.bounds"))
                placed = False
                continue
            row, col = project(site.lat, site.lon, s)
            key, keys = "lat", ("lat", "lon")
            by_row = (("bounds", "lat_max"), ("bounds", "lat_min"), ("height",))
            by_col = (("bounds", "lon_min"), ("bounds", "lon_max"), ("width",))
        else:
            row, col = site.row, site.col
            key, keys = "row", ("row", "col")
            by_row, by_col = (("height",),), (("width",),)
        if not (0 <= row < g.height and 0 <= col < g.width):
            placed = False
            # The site's own keys, then the grid's keys that put it off (a child's new bounds, a --set height).
            off = (by_row if not 0 <= row < g.height else ()) + (by_col if not 0 <= col < g.width else ())
            problems.append(
                _problem_blamed(
                    doc,
                    ("sites", name, key),
                    [("sites", name, k) for k in keys] + [("grid", *k) for k in off],
                    f"site is off the grid (cell row {row}, col {col}; grid is {g.height}x{g.width})",
                )
            )
    for i, override in enumerate(g.cells):
        if override.row >= g.height or override.col >= g.width:
            placed = False
            cell = ("grid", "cells", i)
            off = [("grid", "height")] if override.row >= g.height else []
            off += [("grid", "width")] if override.col >= g.width else []
            problems.append(_problem_blamed(doc, cell, [cell, *off], "cell is off the grid"))
    if (g.river is not None or g.outside) and g.bounds is None:
        problems.append(doc.problem(("grid",), "river and outside polygons need grid.bounds"))
    elif g.river is not None and not river_cells(s).any():
        where = "its path passes through no cell within grid.bounds"
        b = g.bounds
        if any(b.lat_min <= lat <= b.lat_max and b.lon_min <= lon <= b.lon_max for lat, lon in g.river.path):
            # On the box but in no cell: a cell holds its northern and western edges (`project` floors),
            # so the southern edge (lat_min) and the eastern edge (lon_max) belong to no cell.
            where += "; it touches only the southern (lat_min) or eastern (lon_max) edge, which no cell includes"
        river = ("grid", "river", "path")
        edges = [("grid", "bounds", k) for k in ("lat_min", "lat_max", "lon_min", "lon_max")]
        problems.append(_problem_blamed(doc, river, [river, *edges], f"the river does not cross the grid ({where})"))
    if placed:
        problems.extend(ground_problems(s, doc))

    for name, tribe in s.tribes.items():
        need(s.sites, tribe.seat, ("tribes", name, "seat"), "site")
        if tribe.seat in s.sites and s.sites[tribe.seat].kind != "town":
            problems.append(doc.problem(("tribes", name, "seat"), f"seat '{tribe.seat}' is not a town"))
        for faction in tribe.initial_alignment:
            need(s.factions, faction, ("tribes", name, "initial_alignment", faction), "faction")

    insurgents = [n for n, f in s.factions.items() if f.kind == "insurgent"]
    if len(insurgents) > 1:
        problems.append(doc.problem(("factions", insurgents[1], "kind"), "at most one insurgent faction is supported"))
    for name, faction in s.factions.items():
        need(s.patrons, faction.patron, ("factions", name, "patron"), "patron")
        for i, site in enumerate(faction.headquarters):
            need(s.sites, site, ("factions", name, "headquarters", i), "site")
        for i, tribe in enumerate(faction.recruits_from_tribes):
            need(s.tribes, tribe, ("factions", name, "recruits_from_tribes", i), "tribe")
        for site in faction.deployment_weights:
            need(s.sites, site, ("factions", name, "deployment_weights", site), "site")
            if faction.deployment_weights.get(site, 0) < 0:
                problems.append(doc.problem(("factions", name, "deployment_weights", site), "must be >= 0"))
        for i, tribe in enumerate(faction.spending.courted_tribes):
            need(s.tribes, tribe, ("factions", name, "spending", "courted_tribes", i), "tribe")

    for name, patron in s.patrons.items():
        need(s.sites, patron.supply_crossing, ("patrons", name, "supply_crossing"), "site")
        site = s.sites.get(patron.supply_crossing) if patron.supply_crossing else None
        if site is not None and site.kind != "crossing":
            problems.append(
                doc.problem(("patrons", name, "supply_crossing"), f"'{patron.supply_crossing}' is not a crossing")
            )
    for i, entry in enumerate(s.patron_alignment):
        for j, patron in enumerate(entry.between):
            need(s.patrons, patron, ("patron_alignment", i, "between", j), "patron")
        if entry.between[0] == entry.between[1]:
            problems.append(doc.problem(("patron_alignment", i, "between"), "a patron cannot be aligned with itself"))
    for i, pair in enumerate(s.hostilities):
        for j, faction in enumerate(pair):
            need(s.factions, faction, ("hostilities", i, j), "faction")
        if pair[0] == pair[1]:
            problems.append(doc.problem(("hostilities", i), "a faction cannot be hostile to itself"))
    for i, venue in enumerate(s.rules.mediation.venues):
        need(s.sites, venue, ("rules", "mediation", "venues", i), "site")
    problems.extend(theatre_problems(s, doc))

    # The plain-data form, for the checks that look keys up in it (a design point's scenario has none of them)
    dumped = s.model_dump() if (s.sweep is not None or s.robustness is not None or s.provenance) else {}
    if s.sweep is not None:
        problems.extend(_sweep_problems(s, dumped, doc))
    if s.calibration is not None:
        problems.extend(calibration_problems(s, s.calibration, doc))
    if s.validation is not None:
        problems.extend(validation_problems_of(s, doc))
    if s.robustness is not None:
        problems.extend(robustness_problems(s, dumped, doc))
    for key, source in s.provenance.items():
        if not keypath.exists(dumped, key):
            problems.append(doc.problem(("provenance", key), f"provenance names a key that does not exist: '{key}'"))
        if not source.lower().startswith(PROVENANCE_KINDS):
            problems.append(
                doc.problem(("provenance", key), f"a source must start with one of: {', '.join(PROVENANCE_KINDS)}")
            )
    return problems


def ground_problems(s: Scenario, doc: SourcedDocument) -> list[Problem]:
    """A grid with no passable cell, or none within reach of a site, is refused.

    Fighters stand, and influence reaches, only on passable ground (`PASSABLE_TERRAIN`), and
    all of a faction's presence is at its sites: headquarters at theirs, fighters posted up to
    `rules.deployment.post_scatter_cells` from one, each spread by the influence kernel up to
    int(kernel_truncation x sigma_cells + 0.5) cells further (`sim.processes.influence`). Such
    a scenario ran and reported every militia's territory as 0.0 on every day. The terrain is
    the one the model builds (`build_geography`: its outside polygons are computed once per
    process per grid, so the run reuses them); about 0.1 s for a 400 x 400 grid with 32,000
    polygon points, a fraction of a millisecond for the scenarios shipped.

    The problem is reported at the key that made the ground impassable: `grid.default_terrain`
    when it is not passable, else `grid.outside` (its polygons cover the rest), else
    `grid.cells` (the overrides do).

    A site on impassable or outside ground is refused too, one problem per site: its fighters
    stand on the site's own cell when their scattered post is not passable (ODD §7.5), so they
    would stand there (found by a fresh user: 22 of 508 posted fighters on an impassable bridge).
    """
    g = s.grid
    geo = build_geography(s)
    passable = geo.passable
    if g.default_terrain not in PASSABLE_TERRAIN:
        key, cause = ("grid", "default_terrain"), f"default_terrain '{g.default_terrain}' is not passable"
    elif g.outside and not np.isin(mapped_terrain(s), [TERRAIN_CODE[t] for t in PASSABLE_TERRAIN]).any():
        key, cause = ("grid", "outside"), "the outside polygons cover the rest"
    else:  # the default, river and polygons leave passable ground: the overrides (or towns' cells) took it
        key, cause = ("grid", "cells"), "the cell overrides cover the rest"
    if not passable.any():
        message = (
            f"no grid cell is passable ({cause}; passable terrain is {'/'.join(PASSABLE_TERRAIN)}, and a town's"
            " cell is urban unless outside): fighters could stand nowhere and no faction could hold any ground"
        )
        return [doc.problem(key, message)]
    if not s.sites:
        return []
    influence = s.rules.influence
    # The kernel's radius as `sim.processes.influence._gaussian_weights` computes it (scipy's).
    reach = s.rules.deployment.post_scatter_cells + int(influence.kernel_truncation * influence.sigma_cells + 0.5)
    if not any(
        passable[max(row - reach, 0) : row + reach + 1, max(col - reach, 0) : col + reach + 1].any()
        for row, col in (site_cell(site, s) for site in s.sites.values())
    ):
        message = (
            f"no site is within reach of passable ground ({cause}): every cell within {reach} cells of each site"
            " (rules.deployment.post_scatter_cells plus the influence kernel's radius) is impassable or outside,"
            " so no faction could hold any ground"
        )
        return [doc.problem(key, message)]
    # A site's own cell is where its fighters stand when their scattered post is impassable
    # (`sim.processes.deployment`): on impassable or outside ground they would stand there.
    on_rock = []
    for name, site in s.sites.items():
        row, col = site_cell(site, s)
        if 0 <= row < g.height and 0 <= col < g.width and not passable[row, col]:
            terrain = TERRAINS[int(geo.terrain[row, col])]
            message = (
                f"site '{name}' lies on {terrain} ground (cell row {row}, col {col}): fighters posted to it"
                f" would stand there; passable terrain is {'/'.join(PASSABLE_TERRAIN)} (move the site, or"
                " change that cell with grid.cells, grid.default_terrain or grid.outside)"
            )
            site_key = ("sites", name)
            # Blamed on what put the site there (its own place or kind, or the grid's geometry for
            # a latitude/longitude) or on the one key that made its cell impassable, if an override
            # or a later file set it; else on the site.
            place = [(*site_key, field) for field in ("row", "col", "lat", "lon", "kind")]
            bounds = [("grid", "bounds", edge) for edge in ("lat_min", "lat_max", "lon_min", "lon_max")]
            geometry = [*bounds, ("grid", "width"), ("grid", "height")] if site.row is None else []
            blame = [*place, *geometry, _impassable_by(s, row, col), site_key]
            on_rock.append(_problem_blamed(doc, site_key, blame, message))
    return on_rock


def _impassable_by(s: Scenario, row: int, col: int) -> tuple:
    """The key that made cell (row, col) impassable, in the order `build_geography` applies them.

    Its `grid.cells` override, else the outside polygons that cover it, else `grid.default_terrain`.
    """
    g = s.grid
    if any(cell.row == row and cell.col == col for cell in g.cells):
        return ("grid", "cells")
    if g.outside and g.default_terrain != "outside" and mapped_terrain(s)[row, col] == TERRAIN_CODE["outside"]:
        return ("grid", "outside")
    return ("grid", "default_terrain")


def theatre_problems(s: Scenario, doc: SourcedDocument) -> list[Problem]:
    """Theatres named by sites and factions must exist; a faction's headquarters lie in its own theatre.

    With theatres: each theatre has a site; every militia has a theatre (the insurgent need
    not); a theatre militia has a base (a headquarters or a site it owns) in its theatre (its
    outsiders live there; it posts only in its theatre), some site of its theatre it would post
    to (value and deployment weight > 0), and names no other theatre's site in its
    `deployment_weights`. A rule between a faction's and a site's theatre is reported where
    the latest file of an `extends:` chain (or a `--set`) changed one of them (`_problem_blamed`):
    a child's `sites.palmyra.theatre` at its own line, not at the base's lines that name
    palmyra. A theatre that does not exist is reported once, at its key, and the rules that
    compare it with another are left out (they would only repeat it).

    Routes must lie within the grid's bounds (they are drawn on its map).
    """
    problems: list[Problem] = []

    def site_theatre(site) -> str | None:  # None for no theatre or one already reported unknown
        return site.theatre if site is not None and site.theatre in s.theatres else None

    for section, entries in (("sites", s.sites), ("factions", s.factions)):
        for name, entry in entries.items():
            if entry.theatre is not None and entry.theatre not in s.theatres:
                why = f"no theatre named '{entry.theatre}' {unknown(entry.theatre, s.theatres, 'known')}"
                problems.append(doc.problem((section, name, "theatre"), why))
    for theatre in s.theatres:
        if not any(site.theatre == theatre for site in s.sites.values()):
            problems.append(doc.problem(("theatres", theatre), "a theatre needs at least one site (sites.<s>.theatre)"))
    for name, faction in s.factions.items():
        if s.theatres and faction.theatre is None and faction.kind != "insurgent":
            why = "in a scenario with theatres every militia needs a theatre (only the insurgent may have none)"
            problems.append(doc.problem(("factions", name, "theatre"), why))
        if faction.theatre is not None and faction.kind == "insurgent":
            why = "the insurgent acts over the whole map; only militias have a theatre"
            problems.append(doc.problem(("factions", name, "theatre"), why))
        if faction.theatre is None or faction.theatre not in s.theatres:
            continue
        its_theatre = ("factions", name, "theatre")
        for i, hq in enumerate(faction.headquarters):
            site = s.sites.get(hq)
            if site_theatre(site) is not None and site.theatre != faction.theatre:
                why = f"headquarters '{hq}' lies in theatre '{site.theatre}', not in the faction's '{faction.theatre}'"
                path = ("factions", name, "headquarters", i)
                problems.append(_problem_blamed(doc, path, [path, ("sites", hq, "theatre"), its_theatre], why))
        bases = [*faction.headquarters, *(site for site, spec in s.sites.items() if spec.owner == name)]
        if faction.kind != "insurgent" and not any(
            b in s.sites and s.sites[b].theatre == faction.theatre for b in bases
        ):
            why = f"a militia of theatre '{faction.theatre}' needs a headquarters (or a site it owns) in that theatre"
            path = ("factions", name, "headquarters")
            moved = [("sites", b, "theatre") for b in bases if b in s.sites]  # a base moved to another theatre
            problems.append(_problem_blamed(doc, path, [path, its_theatre, *moved], why))
        own = [n for n, site in s.sites.items() if site.theatre == faction.theatre]
        if faction.kind != "insurgent" and own and not any(
            s.sites[n].value > 0 and faction.deployment_weights.get(n, 1.0) > 0 for n in own
        ):  # else it could post only by the posting rule's fallback (§7.5: spread evenly where allowed)
            why = f"no site of theatre '{faction.theatre}' has both value > 0 and a deployment weight > 0"
            path = ("factions", name, "deployment_weights")
            problems.append(_problem_blamed(doc, path, [path, its_theatre], why))
        for site_name in faction.deployment_weights:
            site = s.sites.get(site_name)
            if site_theatre(site) is not None and site.theatre != faction.theatre:
                why = f"site '{site_name}' lies in theatre '{site.theatre}', not in the militia's '{faction.theatre}'"
                path = ("factions", name, "deployment_weights", site_name)
                keys = [path, ("sites", site_name, "theatre"), its_theatre]
                problems.append(_problem_blamed(doc, path, keys, why))
    problems += _cross_theatre_problems(s, doc)
    bounds = s.grid.bounds
    for name, route in s.routes.items():
        if bounds is None:
            problems.append(doc.problem(("routes", name, "path"), "routes need grid.bounds"))
            continue
        for i, (lat, lon) in enumerate(route.path):
            if not (bounds.lat_min <= lat <= bounds.lat_max and bounds.lon_min <= lon <= bounds.lon_max):
                why = f"point [{lat}, {lon}] lies outside grid.bounds"
                problems.append(doc.problem(("routes", name, "path", i), why))
    return problems


def _cross_theatre_problems(s: Scenario, doc: SourcedDocument) -> list[Problem]:
    """References that would let a theatre militia reach past its theatre (none without theatres).

    A site's `owner` and `initial_control` are militias of the site's theatre; a militia
    recruits from tribes seated in its theatre; hostile militias share a theatre (theatres are
    linked only through spill-over and the patrons' shared purse, `sim.processes.spillover`).
    """
    if not s.theatres:
        return []

    def theatre_of(faction: str) -> str | None:  # None also for a theatre that does not exist (reported at it)
        spec = s.factions.get(faction)
        return None if spec is None or spec.kind == "insurgent" or spec.theatre not in s.theatres else spec.theatre

    problems: list[Problem] = []
    for name, site in s.sites.items():
        for key in ("owner", "initial_control"):
            holder = getattr(site, key)
            theatre = theatre_of(holder) if holder else None
            if site.theatre in s.theatres and theatre is not None and theatre != site.theatre:
                why = f"'{holder}' is a militia of theatre '{theatre}'; the site lies in theatre '{site.theatre}'"
                path = ("sites", name, key)
                keys = [path, ("sites", name, "theatre"), ("factions", holder, "theatre")]
                problems.append(_problem_blamed(doc, path, keys, why))
    for name, faction in s.factions.items():
        theatre = theatre_of(name)
        for i, tribe in enumerate(faction.recruits_from_tribes):
            seat_name = s.tribes[tribe].seat if tribe in s.tribes else None
            seat = s.sites.get(seat_name) if seat_name is not None else None
            if theatre is not None and seat is not None and seat.theatre in s.theatres and seat.theatre != theatre:
                why = f"tribe '{tribe}' is seated in theatre '{seat.theatre}', not in the militia's '{theatre}'"
                path = ("factions", name, "recruits_from_tribes", i)
                keys = [path, ("tribes", tribe, "seat"), ("sites", seat_name, "theatre"), ("factions", name, "theatre")]
                problems.append(_problem_blamed(doc, path, keys, why))
    for i, (a, b) in enumerate(s.hostilities):
        ta, tb = theatre_of(a), theatre_of(b)
        if ta is not None and tb is not None and ta != tb:
            why = f"'{a}' (theatre '{ta}') and '{b}' (theatre '{tb}'): hostile militias must share a theatre"
            path = ("hostilities", i)
            keys = [path, ("factions", a, "theatre"), ("factions", b, "theatre")]
            problems.append(_problem_blamed(doc, path, keys, why))
    return problems


def not_a_parameter(data: dict, key: str) -> str:
    """The message for a key path (swept, calibrated, ranged) that names no parameter of the scenario in `data`.

    "'KEY' is not a scenario parameter", then why where it can be told: an entry the scenario
    lacks (`missing_entry`), or a misspelled key of a section with its likely correction.
    """
    text = f"'{key}' is not a scenario parameter"
    try:
        segments = keypath.parts(key)
    except keypath.KeyPathError as error:
        return f"{text}: {error.message}"
    why = missing_entry(data, segments)
    if why:
        return f"{text}: {why}"
    node: Any = Scenario
    for position, part in enumerate(segments):
        plain = unwrap(node)
        if isinstance(plain, type) and issubclass(plain, BaseModel) and part not in plain.model_fields:
            where = keypath.join(segments[:position]) or "the top level"
            return f"{text}: no key '{part}' in {where}{did_you_mean(part, plain.model_fields)}"
        node = child_type(node, part)
        if node is None:
            break
    return text


def _parameter_problems(
    s: Scenario, dumped: dict, doc: SourcedDocument, path: tuple, key: str, trial_values: list
) -> list[Problem]:
    """A swept or calibrated key must be a scenario parameter, valid at every trial value."""
    if key.split(".")[0] in NOT_PARAMETERS or not keypath.exists(dumped, key):
        return [doc.problem(path, not_a_parameter(dumped, key))]
    base = {k: v for k, v in scenario_to_dict(s).items() if k not in DESIGN_SECTIONS}
    for value in trial_values:
        try:
            # The scenario's own origins, so that a problem names the file and line of what it is about.
            trial = SourcedDocument(data=base, origins=dict(doc.origins), main_file=doc.main_file, files=doc.files)
            validate_document(apply_overrides(trial, [f"{key}={json.dumps(value)}"]))
        except ScenarioError as error:
            why = error.problems[0].message
            if "valid integer" in why and isinstance(value, float) and value.is_integer():
                # ranges are sampled as floats: the value may be a range's end written without a decimal point
                why = why.replace(f"; {no_decimal_point(value)})", ")")
                why += "; a range over a whole-number parameter needs `integer: true`"
            return [doc.problem(path, f"value {clipped(value)} is not valid here: {why}")]
    return []


def range_problems(doc: SourcedDocument, path: tuple, spec: SweepRange) -> list[Problem]:
    """An integer range with no whole number inside it: a design would have nothing to draw (`sim.design`)."""
    low, high = spec.ends
    if low > high:
        return [doc.problem(path, f"integer range [{spec.low}, {spec.high}] contains no whole number")]
    return []


def _sweep_problems(s: Scenario, dumped: dict, doc: SourcedDocument) -> list[Problem]:
    """Swept key paths must exist, every swept value must make a valid scenario, and so must their corners together."""
    problems = []
    trials = {}
    for key, values in s.sweep.parameters.items():
        path = ("sweep", "parameters", key)
        if isinstance(values, SweepRange) and (empty := range_problems(doc, path, values)):
            problems += empty
            continue
        trial_values = values.ends if isinstance(values, SweepRange) else list(values)  # what the design draws
        problems += _parameter_problems(s, dumped, doc, path, key, trial_values)
        trials[key] = extremes(trial_values)
    if not problems:
        base = {k: v for k, v in scenario_to_dict(s).items() if k not in DESIGN_SECTIONS}
        where, words = ("sweep", "parameters"), "the swept values make an invalid scenario"
        problems += corner_problems(base, s.sweep.parameters, trials, doc, where, words)
    for i, name in enumerate(s.sweep.outputs):
        why = check_outcome_name(name, s)
        if why:
            problems.append(doc.problem(("sweep", "outputs", i), why))
    if not problems:
        from sim.design import design_size

        points = design_size(s.sweep)
        why = design_problem(
            points * s.sweep.replicates,
            f"{points:,} {s.sweep.design} design points x {s.sweep.replicates:,} replicates",
            s.sweep.max_runs,
            "sweep.max_runs",
        )
        if why:
            problems.append(doc.problem(("sweep",), why))
    return problems


# Combinations of varied values tried together at validation (`corner_problems`, about 2 ms
# each): every corner of the design up to this many (6 ranges), else the corners of every pair
# of parameters up to this many (112 for 8 ranges; 1024 is 23 ranges, about 2 s).
MAX_CORNERS = 64
MAX_PAIR_CORNERS = 1024


def extremes(values: list) -> list:
    """The values of a swept (or ranged) parameter whose combinations with the others are tried (`corner_problems`).

    A range's ends (as given), a list of numbers' least and greatest, every distinct value of
    any other list (text, true/false).
    """
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sorted({min(values), max(values)}, key=values.index)
    distinct = []
    for value in values:
        if not any(type(v) is type(value) and v == value for v in distinct):
            distinct.append(value)
    return distinct


def corner_problems(
    base: dict, specs: Mapping[str, Any], trials: dict[str, list], doc: SourcedDocument, section: tuple, words: str
) -> list[Problem]:
    """Values of parameters that are valid one by one but make an invalid scenario together (at most one problem).

    Each value was tried alone on the base scenario (a sweep's `_parameter_problems`, a
    robustness job's `sim.robustness.check_range_ends`); a rule between two varied keys
    (grid.bounds.lat_min and lat_max both varied) only shows in their combinations. The
    corners of the design (every combination of each parameter's `trials`, its `extremes`)
    are tried, or where there are more than `MAX_CORNERS` the corners of every pair of
    parameters (up to `MAX_PAIR_CORNERS`; beyond that none is tried, and a failing point is a
    failed run naming its values: `sim.sweep.point_error`). A rule that holds at the corners
    holds inside the ranges when it is linear in them, as grid.bounds' are. The first failing
    combination is cut down to the values it needs (each dropped in turn while the rest still
    fails) and reported at the key under `section` that the scenario's problem names (else at
    `section`), e.g. "sweep.parameters.grid.bounds.lat_max: <words> together at
    grid.bounds.lat_min=35.0, grid.bounds.lat_max=34.5: lat_min (35.0) must be below lat_max (34.5)".

    Args:
        base: the scenario as plain data, without its design sections (`DESIGN_SECTIONS`).
        specs: key path -> its spec (`sweep.parameters`, `robustness.ranges`), which types the
            values (`sim.design.override_strings`).
        trials: key path -> the values whose combinations are tried.
        doc: the document the parameters were given in (for file and line).
        section: the key path of the parameters in `doc`, e.g. ("sweep", "parameters").
        words: what the values do, e.g. "the swept values make an invalid scenario".
    """
    import itertools

    from sim.design import override_strings

    keys = list(trials)
    if len(keys) < 2:
        return []
    n_corners = math.prod(len(trials[k]) for k in keys)
    pairs = list(itertools.combinations(keys, 2))
    if n_corners <= MAX_CORNERS:
        combinations = (dict(zip(keys, values, strict=True)) for values in itertools.product(*trials.values()))
    elif sum(len(trials[a]) * len(trials[b]) for a, b in pairs) <= MAX_PAIR_CORNERS:
        combinations = ({a: x, b: y} for a, b in pairs for x in trials[a] for y in trials[b])
    else:  # too many to try here: a failing design point is a failed run naming its values (sim.sweep)
        return []
    try:
        known = (base, validate_document(SourcedDocument(data=base, origins={}, main_file="<trial>")))
    except ScenarioError:  # valid only with the varied values: each combination is validated whole
        known = None

    def failure(combination: dict) -> Problem | None:
        sets = override_strings(combination, {k: specs[k] for k in combination})
        try:
            trial = SourcedDocument(data=base, origins={}, main_file="<trial>")
            validate_document(apply_overrides(trial, sets), validated=known)
        except ScenarioError as error:
            return error.problems[0]
        return None

    for combination in combinations:
        found = failure(combination)
        if found is None:
            continue
        for key in list(combination):
            rest = {k: v for k, v in combination.items() if k != key}
            again = failure(rest) if len(rest) >= 2 else None
            if again is not None:
                combination, found = rest, again
        sets = ", ".join(override_strings(combination, {k: specs[k] for k in combination}))
        where, why = (*section, found.key_path), found.message
        if found.key_path not in combination:  # e.g. a site the combination puts off the grid
            where, why = section, f"{found.key_path}: {why}" if found.key_path else why
        return [doc.problem(where, f"{words} together at {sets}: {why}")]
    return []


def _expression_problems(s: Scenario, doc: SourcedDocument, path: tuple, text: str) -> list[Problem]:
    """An outcome expression must parse and name only outcomes this scenario can compute."""
    try:
        expression = parse_expression(text)
    except ExpressionError as error:
        return [doc.problem(path, f"not an outcome expression: {error}")]
    problems = []
    for name in expression.outcomes:
        why = check_outcome_name(name, s)
        if why:
            problems.append(doc.problem(path, f"'{name}': {why}"))
    return problems


def validation_problems_of(s: Scenario, doc: SourcedDocument) -> list[Problem]:
    """Every expression and outcome of the `validation:` section must be computable; variant files must exist."""
    v = s.validation
    problems = []
    for i, p in enumerate(v.patterns):
        problems += _expression_problems(s, doc, ("validation", "patterns", i, "measure"), p.measure)
        for j, c in enumerate(p.also):
            problems += _expression_problems(s, doc, ("validation", "patterns", i, "also", j, "measure"), c.measure)
    for i, e in enumerate(v.ensemble):
        for j, text in enumerate(e.of):
            problems += _expression_problems(s, doc, ("validation", "ensemble", i, "of", j), text)
    for key in ("outcomes", "compare_outcomes"):
        for i, name in enumerate(getattr(v, key)):
            why = check_outcome_name(name, s)
            if why:
                problems.append(doc.problem(("validation", key, i), why))
    here = Path(doc.main_file).parent if doc.main_file and not doc.main_file.startswith("<") else SCENARIO_DIR
    for i, variant in enumerate(v.variants):
        if variant_path(variant.scenario, here) is None:
            problems.append(
                doc.problem(
                    ("validation", "variants", i, "scenario"),
                    f"no scenario file '{variant.scenario}'"
                    + did_you_mean(variant.scenario, [p.stem for p in SCENARIO_DIR.glob("*.y*ml")]),
                )
            )
        for j, expectation in enumerate(variant.expect):
            why = check_outcome_name(expectation.outcome, s)
            if why:
                problems.append(doc.problem(("validation", "variants", i, "expect", j, "outcome"), why))
    return problems


def variant_path(name: str, directory: Path | None = None) -> Path | None:
    """The file of a variant named in `validation.variants`: a path relative to `directory`, or a name in scenarios/.

    None if there is no such file.
    """
    for candidate in (
        (directory / name) if directory is not None else None,
        (directory / f"{name}.yaml") if directory is not None else None,
        SCENARIO_DIR / f"{name}.yaml",
        Path(name),
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def target_value(target: float | str, scenario: Scenario) -> tuple[float | None, str, str | None]:
    """A calibration statistic's target: (value, source, problem).

    `target` is a number (source "number") or a reference such as "targets.killed_min"
    (source: the reference). On a bad reference, value is None and problem says why.
    """
    if not isinstance(target, str):
        return float(target), "number", None
    section, _, field = target.partition(".")
    fields = list(Targets.model_fields)
    if section != "targets" or field not in fields:
        return (
            None,
            target,
            f"'{target}' is not a target; write a number or one of: " + ", ".join(f"targets.{f}" for f in fields),
        )
    return float(getattr(scenario.targets, field)), target, None


def _statistic_problems(scenario: Scenario, calibration: Calibration, doc: SourcedDocument) -> list[Problem]:
    problems = []
    seen: dict[str, int] = {}
    for i, stat in enumerate(calibration.statistics):
        path = ("calibration", "statistics", i)
        name = outcome_name(stat.outcome, scenario)
        why = check_outcome_name(name, scenario)
        kind, subject = parse(name)
        if why is None and KINDS[kind].subject == "days":
            if not (subject.isdigit() and int(subject) >= 1):
                why = f"'{subject}' is not a window length; write {kind}.<days>, e.g. {kind}.30"
        if why:
            problems.append(doc.problem((*path, "outcome"), why))
        elif name in seen:
            problems.append(doc.problem((*path, "outcome"), f"'{name}' is already statistic {seen[name]}"))
        seen.setdefault(name, i)
        _, _, target_problem = target_value(stat.target, scenario)
        if target_problem:
            problems.append(doc.problem((*path, "target"), target_problem))
    return problems


def _predictive_problems(scenario: Scenario, calibration: Calibration, doc: SourcedDocument) -> list[Problem]:
    """A predictive check must name a valid outcome not fitted, with an existing target reference."""
    if calibration.predictive is None:
        return []
    problems = []
    fitted = {outcome_name(s.outcome, scenario) for s in calibration.statistics}
    seen: set[str] = set()
    for i, check in enumerate(calibration.predictive.checks):
        path = ("calibration", "predictive", "checks", i)
        name = outcome_name(check.outcome, scenario)
        why = check_outcome_name(name, scenario)
        if why:
            problems.append(doc.problem((*path, "outcome"), why))
        elif name in fitted:
            message = f"'{name}' is a fitted statistic: a check needs one not fitted"
            problems.append(doc.problem((*path, "outcome"), message))
        elif name in seen:
            problems.append(doc.problem((*path, "outcome"), f"'{name}' is already checked"))
        seen.add(name)
        if check.observed is not None:
            _, _, target_problem = target_value(check.observed, scenario)
            if target_problem:
                problems.append(doc.problem((*path, "observed"), target_problem))
    return problems


def calibration_problems(scenario: Scenario, calibration: Calibration, doc: SourcedDocument) -> list[Problem]:
    """The problems of a `calibration:` section that a schema cannot see; empty if there are none.

    Every calibrated key path must be a numeric parameter valid at both ends of its prior,
    every statistic and predictive check must name a valid outcome (a check one that is not
    fitted), and every target reference must exist. Problems are located in `doc` under
    `calibration.`.
    """
    problems = []
    dumped = scenario_to_dict(scenario)
    for key, prior in calibration.parameters.items():
        path = ("calibration", "parameters", key)
        if keypath.exists(dumped, key) and key.split(".")[0] not in NOT_PARAMETERS:
            value = keypath.get(dumped, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                message = f"'{key}' is not a numeric parameter (it holds {type(value).__name__})"
                problems.append(doc.problem(path, message))
                continue
        empty = range_problems(doc, path, prior)
        problems += empty or _parameter_problems(scenario, dumped, doc, path, key, prior.ends)
    why = design_problem(*calibration_runs(calibration), calibration.max_runs, "calibration.max_runs")
    if why:
        problems.append(doc.problem(("calibration",), why))
    return problems + _statistic_problems(scenario, calibration, doc) + _predictive_problems(scenario, calibration, doc)


def calibration_runs(calibration: Calibration) -> tuple[int, str]:
    """Runs of a calibration: (samples x replicates + kept draws x predictive replicates, how counted)."""
    fitting = calibration.samples * calibration.replicates
    what = f"{calibration.samples:,} samples x {calibration.replicates:,} replicates"
    if calibration.predictive is None:
        return fitting, what
    kept, again = calibration.n_accepted(), calibration.predictive.replicates
    return fitting + kept * again, f"{what} + {kept:,} kept draws x {again:,} predictive replicates"


def robustness_runs(points: int, replicates: int, n_scenarios: int) -> tuple[int, str]:
    """Runs of a robustness job: (points x replicates x scenarios, how counted)."""
    return (
        points * replicates * n_scenarios,
        f"{points:,} points x {replicates:,} replicates x {n_scenarios} scenarios (the base and its variants)",
    )


def _bounds(key: str) -> list[tuple[str, float]]:
    """The schema's bounds on a parameter: [("ge", 0.0), ("le", 1.0)...]; empty if none or not a field."""
    try:
        field, _ = schema_field(key)
    except KeyError:  # an entry of a plain map (e.g. tribes.<tribe>.initial_alignment.<faction>)
        return []
    found = []
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(item, name, None)
            if value is not None:
                found.append((name, float(value)))
    return found


_BOUND_FAILS = {  # bound -> (does a value break it?, how to say so)
    "ge": (lambda v, b: v < b, "below the parameter's minimum"),
    "gt": (lambda v, b: v <= b, "at or below the parameter's exclusive minimum"),
    "le": (lambda v, b: v > b, "above the parameter's maximum"),
    "lt": (lambda v, b: v >= b, "at or above the parameter's exclusive maximum"),
}


def robustness_problems(s: Scenario, dumped: dict, doc: SourcedDocument) -> list[Problem]:
    """The problems of a `robustness:` section that a schema cannot see; empty if there are none.

    Each range must name a numeric scenario parameter (not a section, a flag or text), be
    `integer: true` exactly when the parameter is a whole number, and lie within the
    parameter's schema bounds; each `fixed:` key must name a scenario key or a provenance
    entry, and not also have a range. These checks are cheap (no trial validation), so they
    run with every load; `sim.robustness` validates the scenario at the ranges' ends before
    it runs anything.
    """
    section = s.robustness
    problems = []
    for key, spec in section.ranges.items():
        path = ("robustness", "ranges", key)
        if key.split(".")[0] in NOT_PARAMETERS or not keypath.exists(dumped, key):
            problems.append(
                doc.problem(
                    path,
                    f"{not_a_parameter(dumped, key)} (if an override removed it, "
                    "also --set robustness=null to drop the robustness section)",
                )
            )
            continue
        value = keypath.get(dumped, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            message = f"'{key}' is not a numeric parameter (it holds {keypath.describe(value)})"
            problems.append(doc.problem(path, message))
            continue
        if isinstance(value, int) and not spec.integer:
            problems.append(doc.problem(path, f"'{key}' is a whole number: add `integer: true`"))
        elif isinstance(value, float) and spec.integer:
            problems.append(doc.problem(path, f"'{key}' is not a whole number: drop `integer: true`"))
        elif empty := range_problems(doc, path, spec):
            problems += empty
            continue
        for bound_name, bound in _bounds(key):
            fails, words = _BOUND_FAILS[bound_name]
            for end, given, drawn in zip(("low", "high"), (spec.low, spec.high), spec.ends, strict=True):
                if fails(drawn, bound):  # an integer range draws whole numbers inside it (SweepRange.ends)
                    shown = f"{given:g}" if drawn == given else f"{given:g} (drawn as {drawn})"
                    problems.append(doc.problem((*path, end), f"{end} {shown} is {words} ({bound:g})"))
    n_scenarios = 1 + (len(s.validation.variants) if s.validation is not None else 0)
    why = design_problem(
        *robustness_runs(section.points, section.replicates, n_scenarios), section.max_runs, "robustness.max_runs"
    )
    if why:
        problems.append(doc.problem(("robustness",), why))
    for key in section.fixed:
        path = ("robustness", "fixed", key)
        if key in section.ranges:
            problems.append(doc.problem(path, f"'{key}' has a range too: vary it or fix it, not both"))
        elif not (keypath.exists(dumped, key) or key in s.provenance):
            problems.append(doc.problem(path, f"'{key}' is neither a scenario key nor a provenance entry"))
    return problems


def scenario_to_dict(scenario: Scenario) -> dict:
    """The fully resolved scenario (defaults filled in) as plain data, for writing as YAML."""
    return scenario.model_dump(mode="json")


def scenario_yaml(scenario: Scenario) -> str:
    """The scenario as the project writes it (a run's and a sweep's `scenario.yaml`): `scenario_to_dict` as YAML.

    Lists and mappings of plain values are written on one line (flow style): written one item
    a line, a 726 KB file of polygon points came out at 1.2 MB, over the 1 MiB a scenario file
    may have, and the results could not be read back.
    """
    return _written(scenario_to_dict(scenario))


def _written(data: dict) -> str:
    return dump_yaml(data, sort_keys=False, allow_unicode=True, default_flow_style=None)


# A scenario this small cannot be written out past the reading limits (defaults add a few
# thousand values at most); a larger one is written out once at loading to check.
_SMALL_SCENARIO_BYTES = 64 * 1024
_SMALL_SCENARIO_VALUES = 5_000


def _count_values(data: Any) -> int:
    """Keys and values in plain data, as the loader counts them against MAX_VALUES (the whole document too)."""
    count, stack = 1, [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += 2 * len(item)
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            count += len(item)
            stack.extend(v for v in item if isinstance(v, (dict, list)))
    return count


def written_size_problem(scenario: Scenario, file: str) -> Problem | None:
    """Why the scenario, written out in full (`scenario_yaml`), could not be read back, or None.

    Results and sweeps write the scenario with every default filled in, and read it back with
    the limits of any scenario file (MAX_FILE_BYTES, MAX_VALUES): a scenario that fits them
    only as written by hand is refused before anything is written, not after.
    """
    data = scenario_to_dict(scenario)
    size, values = len(_written(data).encode("utf-8")), _count_values(data)
    if size <= MAX_FILE_BYTES and values <= MAX_VALUES:
        return None
    what = f"{size / 2**20:.2f} MiB" if size > MAX_FILE_BYTES else f"{values:,} values"
    limit = f"{MAX_FILE_BYTES // 2**20} MiB" if size > MAX_FILE_BYTES else f"{MAX_VALUES:,} values"
    return Problem(
        file, "", None,
        f"written out in full (defaults filled in), as its results keep it, the scenario has {what}, more than "
        f"the {limit} a scenario file may have: its results could not be read back; use fewer points or values",
    )  # fmt: skip


def list_scenarios(directory: Path = SCENARIO_DIR) -> list[tuple[str, str]]:
    """(file name, description) of every scenario in a directory; unreadable ones say why."""
    rows = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            rows.append((path.name, load_scenario(path).description))
        except ScenarioError as error:
            rows.append((path.name, f"INVALID: {error.problems[0]}"))
    return rows
