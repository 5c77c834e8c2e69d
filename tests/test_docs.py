"""The documentation keeps up with the code.

- Every parameter declared in `sim/schema.py` has a row in the generated tables, with a
  meaning (a new parameter without help text fails here); the rows come from pydantic's JSON
  schema, the check walks `model_fields`.
- `docs/ODD.md` holds the tables as generated now (a changed default, range, help text or
  baseline value forces `python -m sim.docs`).
- Every process `CorridorModel.step()` calls is described in ODD §3 and §7, in order, and
  every §7 subsection names methods that exist (a new process without docs fails here).
- Provenance lookup: article sources are found per entity; uncited keys are assumptions.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from sim import docs, processes
from sim.engine import Engine
from sim.model import CorridorModel
from sim.scenario import load_scenario
from sim.schema import Scenario

ROOT = Path(__file__).resolve().parent.parent
ODD = ROOT / "docs" / "ODD.md"
BASELINE = ROOT / "scenarios" / "baseline.yaml"


@pytest.fixture(scope="module")
def baseline() -> Scenario:
    return load_scenario(BASELINE)


@pytest.fixture(scope="module")
def odd_text() -> str:
    return ODD.read_text(encoding="utf-8")


def _section(text: str, number: int) -> str:
    """The text of ODD section `## <number>.` up to the next `## ` heading."""
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", text, flags=re.DOTALL | re.MULTILINE)
    assert match, f"ODD.md has no section '## {number}.'"
    return match.group(0)


# --- every schema parameter has a row ---------------------------------------------------


def _models_in(annotation) -> list[type[BaseModel]]:
    """Pydantic sections reachable through Optional, Annotated, list and dict."""
    origin = get_origin(annotation)
    if origin in (Annotated, Union, UnionType, list, dict):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _schema_leaves(model: type[BaseModel], seen: set | None = None) -> set[tuple[str, str]]:
    """(section class, field) of every field that is not itself a section, from `model` down."""
    seen = set() if seen is None else seen
    leaves: set[tuple[str, str]] = set()
    if model in seen:
        return leaves
    seen.add(model)
    for name, field in model.model_fields.items():
        if model is Scenario and name == "provenance":
            continue  # the Source column itself, not a parameter
        sections = _models_in(field.annotation)
        if sections:
            for section in sections:
                leaves |= _schema_leaves(section, seen)
        else:
            leaves.add((model.__name__, name))
    return leaves


def test_every_schema_parameter_has_a_row():
    rows = docs.parameter_rows()
    documented = {(row["model"], row["field"]) for row in rows}
    missing = _schema_leaves(Scenario) - documented
    assert not missing, f"parameters without a row in the ODD tables: {sorted(missing)}"
    assert len(rows) == len({row["key"] for row in rows}), "duplicate key paths"
    for row in rows:
        assert row["key"].split(".")[-1] == row["field"]
        assert row["description"], f"{row['key']}: no help text (add `help=`/`description=` in sim/schema.py)"


def _holds_entries(annotation) -> bool:
    """Whether a field's sections sit inside a dict or list (their keys take a placeholder)."""
    origin = get_origin(annotation)
    if origin in (dict, list):
        return True
    return origin in (Annotated, Union, UnionType) and any(_holds_entries(a) for a in get_args(annotation))


def _key_paths(model: type[BaseModel], prefix: str = "") -> tuple[set[str], set[str]]:
    """From `model_fields` down: key paths (`*` for a map or list entry) of the fields that are
    not sections, and of the fields that hold sections (and may also take plain values)."""
    leaves: set[str] = set()
    holders: set[str] = set()
    for name, field in model.model_fields.items():
        if model is Scenario and name == "provenance":
            continue
        key = prefix + name
        sections = _models_in(field.annotation)
        if not sections:
            leaves.add(key)
            continue
        holders.add(key)
        below = f"{key}.*." if _holds_entries(field.annotation) else f"{key}."
        for section in sections:
            more_leaves, more_holders = _key_paths(section, below)
            leaves |= more_leaves
            holders |= more_holders
    return leaves, holders


def test_every_leaf_field_has_a_row_by_key_path():
    """Computed from pydantic's `model_fields`, independently of the JSON schema the rows come from."""
    leaves, holders = _key_paths(Scenario)
    keys = {re.sub(r"<[^>]+>", "*", row["key"]) for row in docs.parameter_rows()}
    assert leaves - keys == set(), "leaf fields without a row"
    # The only other rows: fields that take sections or plain values (sweep.parameters).
    assert keys - leaves <= holders
    assert keys - leaves == {"sweep.parameters"}
    assert len(leaves) >= 160


def test_rows_carry_schema_defaults_units_and_ranges():
    rows = {row["key"]: row for row in docs.parameter_rows()}
    p_killed = rows["rules.clashes.p_killed"]
    field = Scenario.model_fields["rules"].default_factory().clashes
    assert p_killed["default_value"] == field.p_killed
    assert p_killed["range"] == "[0, 1]"
    assert p_killed["unit"] == "share"
    assert rows["rules.influence.sigma_cells"]["range"] == "(0, 50]"
    assert rows["seed"]["range"] == "[0, 2^63-1]"  # as --seed and --set seed= say it
    assert rows["factions.<faction>.salary_usd_month"]["unit"] == "USD/month"
    assert rows["factions.<faction>.spending.courting_usd_day"]["section"] == "factions"
    assert rows["grid.bounds.lat_min"]["default"].startswith("required if `grid.bounds`")
    assert rows["patron_alignment.<i>.value"]["section"] == "patron_alignment"
    # defaults pydantic's JSON schema leaves out (default_factory) are filled in
    assert rows["grid.outside"]["default_value"] == [] and rows["grid.outside"]["default"] == "[]"
    assert rows["tribes.<tribe>.initial_alignment"]["default"] == "{}"
    # wording taken from the JSON schema: enum, id pattern, StrictBool, unions, maps, lists
    assert rows["grid.default_terrain"]["type"] == "one of urban, rural, river, desert, impassable, outside"
    assert rows["sites.<site>.crossing"]["type"] == "one of border, river or null"
    assert rows["sites.<site>.owner"]["type"] == "id or null"
    assert rows["patrons.<patron>.supply_open"]["type"] == "bool"
    assert rows["calibration.statistics.<i>.target"]["type"] == "float or text"
    assert rows["factions.<faction>.deployment_weights"]["type"] == "map id → float"
    assert rows["sweep.parameters"]["type"] == "map text → SweepRange or list of bool or int or float or text"
    assert rows["grid.outside"]["type"] == "list of polygons of [lat, lon]"
    assert rows["hostilities"]["type"] == "list of [id, id]"
    assert rows["grid.river.path"]["range"] == "length ≥ 2"
    assert rows["patron_alignment.<i>.between"]["range"] == "length 2"
    assert rows["sites.<site>.lat"]["range"] == "[-90, 90]"  # bounds inside anyOf (float | None)
    assert rows["calibration.statistics.<i>.scale"]["default"] == "required if `calibration` is given"


def test_every_row_is_rendered(baseline):
    tables = docs.render_parameter_tables(baseline)
    for row in docs.parameter_rows():
        assert f"| `{row['key']}` |" in tables, row["key"]
    header = "| Key | Unit | Default | Range | Baseline | Source | Meaning |"
    assert tables.count(header) == len({row["section"] for row in docs.parameter_rows()})
    for line in tables.splitlines():
        if line.startswith("| `"):
            assert line.count(" | ") == 6, f"a cell breaks the table: {line[:80]}"


# --- ODD.md is up to date ----------------------------------------------------------------


def test_odd_tables_are_current(tmp_path):
    copy = tmp_path / "ODD.md"
    shutil.copy(ODD, copy)
    assert docs.update_odd(copy, BASELINE) is False, "docs/ODD.md is stale: run `python -m sim.docs`"
    assert copy.read_text(encoding="utf-8") == ODD.read_text(encoding="utf-8")


def test_update_odd_rewrites_a_stale_copy_atomically(tmp_path):
    text = ODD.read_text(encoding="utf-8")
    begin = text.index(docs.BEGIN_MARKER) + len(docs.BEGIN_MARKER)
    end = text.index(docs.END_MARKER)
    stale = text[:begin] + "\n| `rules.clashes.p_killed` | share | 0.5 | ... |\n" + text[end:]
    copy = tmp_path / "ODD.md"
    copy.write_text(stale, encoding="utf-8")
    assert docs.update_odd(copy, BASELINE) is True
    assert copy.read_text(encoding="utf-8") == text
    assert docs.update_odd(copy, BASELINE) is False
    assert [p.name for p in tmp_path.iterdir()] == ["ODD.md"], "temporary file left behind"


def test_update_odd_refuses_a_file_without_markers(tmp_path):
    copy = tmp_path / "ODD.md"
    copy.write_text("# no markers here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        docs.update_odd(copy, BASELINE)
    assert copy.read_text(encoding="utf-8") == "# no markers here\n"


@pytest.mark.slow
def test_check_command(tmp_path):
    command = [sys.executable, "-m", "sim.docs", "--check"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    stale = tmp_path / "ODD.md"
    stale.write_text(f"x\n{docs.BEGIN_MARKER}\nold\n{docs.END_MARKER}\n", encoding="utf-8")
    bad = subprocess.run(
        [*command, "--odd", str(stale)], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "python -m sim.docs" in bad.stdout
    assert "old" in stale.read_text(encoding="utf-8"), "--check must not write"


# --- every process of the step is documented ---------------------------------------------


PROCESS_MODULES = {
    info.name: importlib.import_module(f"sim.processes.{info.name}")
    for info in pkgutil.iter_modules(processes.__path__)
}


def _step_methods() -> list[str]:
    """Process functions the day calls (`Engine.day`, which `CorridorModel.step` runs), `module.function`, in order."""
    assert "self.day()" in inspect.getsource(CorridorModel.step)
    tree = ast.parse(textwrap.dedent(inspect.getsource(Engine.day)))
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in PROCESS_MODULES:
                calls.append((node.lineno, f"{owner.id}.{node.func.attr}"))
    return [name for _, name in sorted(calls)]


def test_step_processes_are_described_in_order(odd_text):
    methods = _step_methods()
    assert len(methods) >= 8
    overview, submodels = _section(odd_text, 3), _section(odd_text, 7)
    positions = []
    for name in methods:
        assert f"`{name}`" in overview, f"ODD §3 does not mention step process `{name}`"
        assert re.search(rf"^### 7\.\d+ .*`{re.escape(name)}`", submodels, flags=re.MULTILINE), (
            f"no ODD §7 subsection for `{name}`"
        )
        positions.append(overview.index(f"`{name}`"))
    assert positions == sorted(positions), "ODD §3 lists the processes in a different order from Engine.day"


def test_submodel_headings_name_existing_functions(odd_text):
    headings = re.findall(r"^### (7\.\d+) (.*)$", _section(odd_text, 7), flags=re.MULTILINE)
    assert headings, "ODD §7 has no subsections"
    for number, title in headings:
        names = re.findall(r"`([A-Za-z_][\w.]*)`", title)
        if number == headings[-1][0]:
            continue  # the parameter tables
        assert names, f"§{number} {title!r} names no function"
        for name in names:
            module, _, function = name.partition(".")
            assert module in PROCESS_MODULES, f"§{number}: {name} is not in a process module"
            assert callable(getattr(PROCESS_MODULES[module], function, None)), f"§{number}: no sim.processes.{name}"


def test_every_process_function_is_described(odd_text):
    """Each public function of every process module is named in an ODD §7 heading."""
    headings = "\n".join(re.findall(r"^### 7\.\d+ .*$", _section(odd_text, 7), flags=re.MULTILINE))
    missing = [
        f"{name}.{function}"
        for name, module in PROCESS_MODULES.items()
        for function, obj in vars(module).items()
        if inspect.isfunction(obj) and obj.__module__ == module.__name__ and not function.startswith("_")
        and f"`{name}.{function}`" not in headings
    ]
    assert not missing, f"process functions not named in an ODD §7 heading: {missing}"


def test_parameter_markers_sit_in_section_7(odd_text):
    assert odd_text.count(docs.BEGIN_MARKER) == 1 and odd_text.count(docs.END_MARKER) == 1
    assert docs.BEGIN_MARKER in _section(odd_text, 7)


# --- provenance lookup ------------------------------------------------------------------


def test_provenance_finds_the_article_source(baseline):
    source = docs.provenance_source(baseline.provenance, "factions.IRGC.salary_usd_month")
    assert source.startswith("article §9") and "F19" in source
    # a key without its own entry falls back to its section's entry
    assert docs.provenance_source(baseline.provenance, "factions.MILSEC.salary_usd_month").startswith("assumption")
    row = next(r for r in docs.parameter_rows(baseline) if r["key"] == "factions.<faction>.salary_usd_month")
    assert "IRGC: article §9 (F19)" in row["source"]
    assert "NDF: article §9 (F19)" in row["source"]
    assert row["baseline_values"]["factions.IRGC.salary_usd_month"] == 200


def test_uncited_key_is_an_assumption(baseline):
    assert docs.provenance_source({}, "rules.clashes.p_max") == docs.UNCITED
    assert docs.UNCITED.startswith("assumption")
    uncited = baseline.model_copy(
        update={"provenance": {k: v for k, v in baseline.provenance.items() if not k.startswith("rules")}}
    )
    row = next(r for r in docs.parameter_rows(uncited) if r["key"] == "rules.influence.sigma_cells")
    assert row["source"].startswith("assumption")
    assert row["baseline"] == ""  # the baseline keeps the default


def test_baseline_values_only_where_they_differ(baseline):
    rows = {row["key"]: row for row in docs.parameter_rows(baseline)}
    assert rows["rules.clashes.p_killed"]["baseline"] == ""  # 0.38 is also the default
    assert rows["steps"]["baseline"] == ""
    exempt = rows["factions.<faction>.exempts_conscription"]
    assert exempt["baseline"] == "IRGC: true"
    assert "NDF: article §9 (F19)" in exempt["source"]  # cited although it keeps the default


def test_keys_named_in_the_prose_exist(odd_text):
    """A renamed or removed parameter must not survive in the hand-written text."""
    begin, end = odd_text.index(docs.BEGIN_MARKER), odd_text.index(docs.END_MARKER)
    prose = odd_text[:begin] + odd_text[end:]
    keys = {row["key"] for row in docs.parameter_rows()}
    pattern = r"`((?:rules\.\w+|targets|grid|(?:sites|tribes|factions|patrons)\.<\w+>)(?:\.\w+)+)`"
    named = set(re.findall(pattern, prose))
    assert named, "no scenario keys found in the ODD prose"
    unknown = sorted(k for k in named if not any(key == k or key.startswith(k + ".") for key in keys))
    assert not unknown, f"ODD.md names scenario keys that the schema does not have: {unknown}"


# ----------------------------------------------------------------------------- README promises


def _guarantees() -> list[str]:
    """The promises of README.md's "Guarantees" section: one string per bullet."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Guarantees", 1)[1].split("\n## ", 1)[0]
    return re.split(r"\n- ", section)[1:]


def test_every_readme_guarantee_names_tests_that_exist():
    promises = _guarantees()
    assert len(promises) >= 15
    for promise in promises:
        named = re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", promise)
        assert named, f"a promise without a test: {promise[:80]!r}"
        for path, name in named:
            source = (ROOT / path).read_text(encoding="utf-8")
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} (named in README) does not exist"
