"""Tests for sim.yaml_source: safe, line-aware scenario YAML loading."""

from __future__ import annotations

import copy
import math
import os
import pickle
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import keypath, yaml_source
from sim.yaml_source import (
    Problem,
    ScenarioError,
    SourcedDocument,
    apply_overrides,
    dotted,
    load_scenario_document,
    load_yaml,
    parse_value,
)

NO_LIBYAML = (
    "this PyYAML was built without libyaml (pip install --force-reinstall pyyaml, from a wheel): only the "
    "check that libyaml and PyYAML agree is skipped; PyYAML's own parser and emitter then do everything"
)


def write(directory: Path, name: str, text: str) -> Path:
    """Write dedented text to directory/name and return the path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(call, *args) -> list[Problem]:
    """Run call(*args), expect ScenarioError, return its problems."""
    with pytest.raises(ScenarioError) as info:
        call(*args)
    assert info.value.problems, "ScenarioError must carry at least one problem"
    return info.value.problems


def only_problem(call, *args) -> Problem:
    problems = problems_of(call, *args)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


SCENARIO = """
# a comment line
steps: 200
seed: 7
factions:
  NDF:
    salary: 12.5
    active: true
    notes: null
    headquarters:
      - damascus
      - homs
  IRGC:
    salary: 30
sites:
  albukamal: {lat: 34.45, lon: 40.93}
"""


# --- Problem / ScenarioError / dotted ------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (
            Problem("s.yaml", "factions.NDF.salary", 12, "must be >= 0"),
            "s.yaml:12: factions.NDF.salary: must be >= 0",
        ),
        (Problem("s.yaml", "steps", None, "must be an int"), "s.yaml: steps: must be an int"),
        (Problem("s.yaml", "", 3, "bad"), "s.yaml:3: bad"),
        (Problem("s.yaml", "", None, "no such file"), "s.yaml: no such file"),
        (Problem("--set", "a.b", None, "oops"), "--set: a.b: oops"),
    ],
)
def test_problem_str(problem: Problem, text: str) -> None:
    assert str(problem) == text


def test_problem_is_frozen() -> None:
    problem = Problem("a", "b", 1, "c")
    with pytest.raises(AttributeError):
        problem.line = 2  # type: ignore[misc]


def test_scenario_error_one_line_per_problem_and_pickles() -> None:
    problems = [Problem("a.yaml", "x", 1, "first"), Problem("a.yaml", "", None, "second")]
    error = ScenarioError(problems)
    assert error.problems == problems
    assert str(error) == "a.yaml:1: x: first\na.yaml: second"
    restored = pickle.loads(pickle.dumps(error))
    assert restored.problems == problems and str(restored) == str(error)


def test_dotted() -> None:
    assert dotted(("a", 0, "b")) == "a.0.b"
    assert dotted(()) == ""
    assert dotted(("factions", "NDF", "headquarters", 0)) == "factions.NDF.headquarters.0"


# --- load_yaml: values and lines -------------------------------------------------------


def test_load_values_like_safe_load(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "s.yaml", SCENARIO))
    assert doc.data == {
        "steps": 200,
        "seed": 7,
        "factions": {
            "NDF": {"salary": 12.5, "active": True, "notes": None, "headquarters": ["damascus", "homs"]},
            "IRGC": {"salary": 30},
        },
        "sites": {"albukamal": {"lat": 34.45, "lon": 40.93}},
    }
    assert type(doc.data["steps"]) is int and type(doc.data["factions"]["NDF"]["salary"]) is float


def test_main_file_is_the_path_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", SCENARIO)
    assert load_yaml(path).main_file == str(path)
    assert load_yaml(str(path)).main_file == str(path)


def test_line_numbers_for_nested_keys_and_list_items(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", SCENARIO)
    doc = load_yaml(path)
    file = str(path)
    assert doc.origins[("steps",)] == (file, 2)
    assert doc.origins[("factions",)] == (file, 4)
    assert doc.origins[("factions", "NDF")] == (file, 5)  # the key's line, not the value's
    assert doc.origins[("factions", "NDF", "salary")] == (file, 6)
    assert doc.origins[("factions", "NDF", "headquarters", 0)] == (file, 10)
    assert doc.origins[("factions", "NDF", "headquarters", 1)] == (file, 11)
    assert doc.origins[("factions", "IRGC", "salary")] == (file, 13)
    assert doc.origins[("sites", "albukamal", "lat")] == (file, 15)


def test_where_and_problem_fall_back_to_ancestors(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", SCENARIO)
    doc = load_yaml(path)
    # A key that does not exist is located at its nearest existing ancestor.
    assert doc.where(("factions", "NDF", "budget")) == (str(path), 5)
    assert doc.where(("nope", "deeper")) == (str(path), None)
    assert doc.where(()) == (str(path), None)
    problem = doc.problem(("factions", "NDF", "salary"), "must be >= 0 (got -5)")
    assert problem == Problem(str(path), "factions.NDF.salary", 6, "must be >= 0 (got -5)")
    assert str(problem) == f"{path}:6: factions.NDF.salary: must be >= 0 (got -5)"
    assert doc.problem((), "missing steps") == Problem(str(path), "", None, "missing steps")


def test_where_on_a_hand_built_document() -> None:
    doc = SourcedDocument(data={"a": {"b": 1}}, origins={("a",): ("f.yaml", 3)}, main_file="main.yaml")
    assert doc.where(("a", "b")) == ("f.yaml", 3)
    assert doc.where(("z",)) == ("main.yaml", None)


def test_nan_and_inf_are_kept_as_floats(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "s.yaml", "a: .nan\nb: .inf\nc: -.inf\n"))
    assert math.isnan(doc.data["a"]) and doc.data["b"] == math.inf and doc.data["c"] == -math.inf


def test_standard_explicit_tags_and_quoted_values_are_fine(tmp_path: Path) -> None:
    text = "a: !!str 5\nb: !!int '7'\nc: !!float 1\nd: '2024-01-01'\ne: !!bool 'true'\nf: !!null ''\n"
    doc = load_yaml(write(tmp_path, "s.yaml", text))
    assert doc.data == {"a": "5", "b": 7, "c": 1.0, "d": "2024-01-01", "e": True, "f": None}


def test_utf8_with_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes("\ufeffname: Dayr az-Zawr ديرالزور\n".encode("utf-8"))
    assert load_yaml(path).data == {"name": "Dayr az-Zawr ديرالزور"}


def test_load_yaml_does_not_process_extends(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "steps: 1\n")
    doc = load_yaml(write(tmp_path, "child.yaml", "extends: base.yaml\nseed: 2\n"))
    assert doc.data == {"extends": "base.yaml", "seed": 2}


# --- load_yaml: aliases --------------------------------------------------------------


def test_ordinary_aliases_are_expanded_into_independent_copies(tmp_path: Path) -> None:
    text = """
    defaults: &defaults
      salary: 10
      hq: [a, b]
    NDF: *defaults
    """
    path = write(tmp_path, "s.yaml", text)
    doc = load_yaml(path)
    assert doc.data["NDF"] == {"salary": 10, "hq": ["a", "b"]}
    assert doc.data["NDF"] is not doc.data["defaults"]  # no shared mutable objects
    assert doc.origins[("NDF",)] == (str(path), 4)
    assert doc.origins[("NDF", "salary")] == (str(path), 2)  # where the value was written


def laughs(levels: int = 9) -> str:
    """The classic 'billion laughs' document: 9 ** levels strings from a few hundred bytes."""
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_fast(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.yaml", laughs(9))
    start = time.perf_counter()
    problems = problems_of(load_yaml, path)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"alias bomb took {elapsed:.2f}s"  # safety bound, not a benchmark
    message = "document expands to more than 100000 values (alias bomb?)"
    assert problems == [Problem(str(path), "", None, message)]


def test_too_many_values_without_aliases_are_not_called_an_alias_bomb(tmp_path: Path) -> None:
    """A file of 120,000 plain values (1 MB, no alias) was refused as '... (alias bomb?)'."""
    text = "steps: 1\nvalues: [" + ", ".join(["123456"] * 120_000) + "]\n"
    assert 900_000 < len(text) < 1024 * 1024 and "&" not in text and "*" not in text
    message = "document has 120,005 values, more than the limit of 100,000 (keys count too)"
    path = write(tmp_path, "big.yaml", text)
    assert problems_of(load_yaml, path) == [Problem(str(path), "", None, message)]


def test_too_many_values_with_aliases_are_blamed_on_them_only_if_written_out_they_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(yaml_source, "MAX_VALUES", 10)
    aliased = write(tmp_path, "aliased.yaml", "a: &x [1, 2, 3]\nb: *x\nc: *x\n")  # 8 values written, 16 expanded
    assert only_problem(load_yaml, aliased).message == "document expands to more than 10 values (alias bomb?)"
    big = write(tmp_path, "big.yaml", "a: &x [1, 2, 3]\nb: *x\nc: [1, 2, 3, 4]\n")  # 13 written: too many anyway
    assert only_problem(load_yaml, big).message == "document has 13 values, more than the limit of 10 (keys count too)"


def test_moderate_alias_use_under_the_limit_is_fine(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "s.yaml", laughs(3)))  # 9**3 = 729 strings
    assert len(doc.data["lol3"]) == 9 and doc.data["lol3"][0][0][0] == "lol"


def test_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "a: &x [1, *x]\n"))
    assert "contains itself" in problem.message and problem.line == 1


# --- load_yaml: limits ---------------------------------------------------------------


def nested_lists(depth: int) -> str:
    return "a: " + "[" * depth + "]" * depth + "\n"


def test_nesting_up_to_the_limit_is_allowed(tmp_path: Path) -> None:
    # `a:` is one mapping, plus 63 lists = 64 levels.
    load_yaml(write(tmp_path, "s.yaml", nested_lists(63)))


def test_nesting_over_the_limit_is_refused(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", nested_lists(64)))
    assert "nested more than 64 levels deep" in problem.message and problem.line == 1


def test_extremely_deep_nesting_is_a_problem_not_a_recursion_error(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", nested_lists(300_000)))
    assert "nested more than 64 levels deep" in problem.message


def test_nesting_built_up_through_aliases_is_refused(tmp_path: Path) -> None:
    # Each anchor is only 30 levels deep in the text, but expands to 90.
    text = (
        "a: &a " + "[" * 30 + "]" * 30 + "\n"
        "b: &b " + "[" * 30 + "*a" + "]" * 30 + "\n"
        "c: " + "[" * 30 + "*b" + "]" * 30 + "\n"
    )
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", text))
    assert "nested more than 64 levels deep" in problem.message


def test_file_over_one_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * (1024 * 1024) + "\n", encoding="utf-8")
    problem = only_problem(load_yaml, path)
    assert problem.file == str(path) and "1 MiB" in problem.message


# --- load_yaml: refused content ----------------------------------------------------------


def test_python_tag_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    text = f'steps: 1\nrun: !!python/object/apply:os.system ["touch {marker}"]\n'
    path = write(tmp_path, "evil.yaml", text)
    problem = only_problem(load_yaml, path)
    assert problem == Problem(
        str(path),
        "run",
        2,
        "tag '!!python/object/apply:os.system' is not allowed in a scenario (only plain YAML values)",
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!!python/tuple [1, 2]", "!!python/tuple"),
        ("!!set {a, b}", "!!set"),
        ("!!omap [{a: 1}]", "!!omap"),
        ("!!pairs [{a: 1}]", "!!pairs"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!custom 3", "!custom"),
    ],
)
def test_non_plain_tags_are_refused(tmp_path: Path, value: str, shown: str) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", f"ok: 1\nx:\n  y: {value}\n"))
    assert (problem.key_path, problem.line) == ("x.y", 3)
    assert problem.message == f"tag '{shown}' is not allowed in a scenario (only plain YAML values)"


def test_standard_tag_on_wrong_kind_of_node_is_refused(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "x: !!str {a: 1}\n"))
    assert problem.message == "tag '!!str' cannot be used on a mapping"


def test_invalid_explicit_scalar_is_a_problem(tmp_path: Path) -> None:
    text = "a: !!int abc\nb: !!bool maybe\nc: !!int ''\n"
    problems = problems_of(load_yaml, write(tmp_path, "s.yaml", text))
    assert [(p.key_path, p.line) for p in problems] == [("a", 1), ("b", 2), ("c", 3)]
    assert problems[0].message == "'abc' is not a valid !!int"


@pytest.mark.parametrize("value", ["2024-01-01", "2024-01-01 10:30:00", "!!timestamp 2024-01-01"])
def test_timestamps_are_refused(tmp_path: Path, value: str) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", f"steps: 1\nstart: {value}\n"))
    assert problem.message == "dates are not supported here; quote it"
    assert (problem.key_path, problem.line) == ("start", 2)


def test_merge_key_is_refused(tmp_path: Path) -> None:
    text = """
    base: &base {salary: 1}
    NDF:
      <<: *base
      active: true
    """
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", text))
    assert (problem.key_path, problem.line) == ("NDF.<<", 3)
    assert "merge keys ('<<') are not supported" in problem.message


def test_duplicate_key_reported_at_second_occurrence(tmp_path: Path) -> None:
    text = """
    factions:
      NDF:
        salary: 1
        active: true
        salary: 2
    """
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", text))
    assert problem.message == "duplicate key 'salary' (first at line 3)"
    assert (problem.key_path, problem.line) == ("factions.NDF.salary", 5)


def test_quoted_and_plain_spellings_of_a_key_are_duplicates(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "a: 1\n'a': 2\n"))
    assert problem.message == "duplicate key 'a' (first at line 1)" and problem.line == 2


@pytest.mark.parametrize(
    ("key", "reads_as"),
    [("1", "a number"), ("yes", "true/false"), ("on", "true/false"), ("~", "null"), ("1.5", "a number")],
)
def test_non_string_keys_are_refused(tmp_path: Path, key: str, reads_as: str) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", f"factions:\n  {key}: x\n"))
    assert problem.message.startswith("keys must be text; quote it")
    assert reads_as in problem.message
    assert (problem.key_path, problem.line) == (f"factions.{key}", 2)


def test_collection_key_is_refused(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "a: 1\n? [x, y]\n: 2\n"))
    assert problem.message.startswith("keys must be text; quote it") and problem.line == 2


def test_quoted_keys_that_look_like_other_types_are_fine(tmp_path: Path) -> None:
    assert load_yaml(write(tmp_path, "s.yaml", "'1': a\n'yes': b\n")).data == {"1": "a", "yes": "b"}


def test_several_problems_are_collected(tmp_path: Path) -> None:
    text = "a: !!python/name:os.system\nb: 2024-01-01\nc: 1\nc: 2\n"
    problems = problems_of(load_yaml, write(tmp_path, "s.yaml", text))
    assert [p.line for p in problems] == [1, 2, 4]


def test_problem_count_is_capped(tmp_path: Path) -> None:
    text = "".join(f"k{i}: !bad {i}\n" for i in range(500))
    problems = problems_of(load_yaml, write(tmp_path, "s.yaml", text))
    assert len(problems) <= 51 and "too many problems" in problems[-1].message


def test_problems_in_an_aliased_node_are_reported_once(tmp_path: Path) -> None:
    text = "a: &a [!bad 1]\nb: *a\nc: *a\n"
    problems = problems_of(load_yaml, write(tmp_path, "s.yaml", text))
    assert len(problems) == 1 and problems[0].key_path == "a.0"


# --- load_yaml: broken files ---------------------------------------------------------


def test_syntax_error_has_a_line_and_no_yaml_exception_escapes(tmp_path: Path) -> None:
    text = "steps: 1\nfactions:\n  NDF: [1, 2\n  IRGC: 3\nseed: 1\n"
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", text))
    assert problem.line is not None and 3 <= problem.line <= 5
    assert problem.message and not problem.message.endswith(".")


def test_bad_indentation_is_a_problem(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "a:\n  b: 1\n c: 2\n"))
    assert problem.line == 3


def test_multiple_documents_are_refused(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "a: 1\n---\nb: 2\n"))
    assert "single document" in problem.message and problem.line == 2


def test_undefined_alias_is_a_problem(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "a: 1\nb: *nope\n"))
    assert "undefined alias" in problem.message and problem.line == 2


def test_control_character_is_a_problem_with_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"a: 1\nb: x\x01y\n")
    problem = only_problem(load_yaml, path)
    assert problem.line == 2 and "U+0001" in problem.message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes("a: 1\nname: caf\u00e9\n".encode("latin-1"))
    problem = only_problem(load_yaml, path)
    assert problem == Problem(str(path), "", 2, "not UTF-8 text")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "--- \n...\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    assert only_problem(load_yaml, path) == Problem(str(path), "", None, "the file is empty")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert only_problem(load_yaml, path) == Problem(str(path), "", None, "no such file")


def test_directory(tmp_path: Path) -> None:
    problem = only_problem(load_yaml, tmp_path)
    assert problem.file == str(tmp_path) and "directory" in problem.message


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n- b\n", "a list"), ("42\n", "a number"), ("hello\n", "a plain value")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", text))
    assert problem.message.startswith("the top level must be a mapping") and got in problem.message
    assert problem.line == 1


# --- extends -------------------------------------------------------------------------


BASE = """
steps: 100
seed: 1
factions:
  NDF:
    salary: 10
    headquarters: [damascus, homs, hama]
  IRGC:
    salary: 30
options: {fast: true}
"""

CHILD = """
extends: base.yaml
seed: 2
factions:
  NDF:
    headquarters: [deir_ez_zor]
options: 5
"""


def test_extends_deep_merges_child_over_parent(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    doc = load_scenario_document(write(tmp_path, "child.yaml", CHILD))
    assert doc.data == {
        "steps": 100,  # inherited
        "seed": 2,  # scalar replaced
        "factions": {
            "NDF": {"salary": 10, "headquarters": ["deir_ez_zor"]},  # mapping merged, list replaced
            "IRGC": {"salary": 30},
        },
        "options": 5,  # a scalar may replace a mapping
    }
    assert "extends" not in doc.data


def test_extends_origins_point_at_the_supplying_file(tmp_path: Path) -> None:
    base = str(write(tmp_path, "base.yaml", BASE))
    child = str(write(tmp_path, "child.yaml", CHILD))
    doc = load_scenario_document(child)
    assert doc.main_file == child
    assert doc.origins[("seed",)] == (child, 2)
    assert doc.origins[("steps",)] == (base, 1)
    assert doc.origins[("factions", "NDF", "salary")] == (base, 5)
    assert doc.origins[("factions", "IRGC", "salary")] == (base, 8)
    assert doc.origins[("factions", "NDF", "headquarters")] == (child, 5)
    assert doc.origins[("factions", "NDF", "headquarters", 0)] == (child, 5)
    # The parent's longer list is gone, and so are its item origins.
    assert ("factions", "NDF", "headquarters", 2) not in doc.origins
    assert ("options", "fast") not in doc.origins and doc.origins[("options",)] == (child, 6)
    assert ("extends",) not in doc.origins
    # An error on an inherited value names the parent file and line.
    assert str(doc.problem(("factions", "IRGC", "salary"), "must be >= 0")) == (
        f"{base}:8: factions.IRGC.salary: must be >= 0"
    )


def test_child_mapping_may_replace_parent_scalar(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "options: 1\n")
    doc = load_scenario_document(write(tmp_path, "child.yaml", "extends: base.yaml\noptions: {a: 1}\n"))
    assert doc.data == {"options": {"a": 1}}


def test_extends_chain_with_relative_paths(tmp_path: Path) -> None:
    root = str(write(tmp_path, "common/root.yaml", "steps: 1\nseed: 1\nname: root\n"))
    mid = str(write(tmp_path, "common/mid.yaml", "extends: root.yaml\nseed: 2\n"))
    leaf = str(write(tmp_path, "scenarios/leaf.yaml", "extends: ../common/mid.yaml\nname: leaf\n"))
    doc = load_scenario_document(leaf)
    assert doc.data == {"steps": 1, "seed": 2, "name": "leaf"}
    # Parent paths are shown without "scenarios/../" when that names the same file.
    assert doc.origins[("steps",)] == (root, 1)
    assert doc.origins[("seed",)] == (mid, 2)
    assert doc.origins[("name",)] == (leaf, 2)


def test_extends_cycle_is_detected(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "steps: 1\nextends: b.yaml\n")
    b = write(tmp_path, "b.yaml", "seed: 1\n\nextends: a.yaml\n")
    problem = only_problem(load_scenario_document, a)
    assert problem.message == f"extends cycle: {a} -> {b} -> {a}"
    assert (problem.file, problem.key_path, problem.line) == (str(b), "extends", 3)


def test_file_extending_itself_is_a_cycle(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "extends: a.yaml\n")
    problem = only_problem(load_scenario_document, a)
    assert problem.message.startswith("extends cycle:") and problem.line == 1


def test_missing_parent_is_reported_at_the_child(tmp_path: Path) -> None:
    child = write(tmp_path, "child.yaml", "seed: 1\nextends: nowhere.yaml\n")
    problem = only_problem(load_scenario_document, child)
    assert (problem.file, problem.key_path, problem.line) == (str(child), "extends", 2)
    assert "no such file" in problem.message and "nowhere.yaml" in problem.message


def test_extending_a_device_or_a_fifo_says_it_is_not_a_regular_file(tmp_path: Path) -> None:
    """`extends: /dev/zero` said 'no such file', though the file is there (validating it directly says what it is)."""
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    device = tmp_path / "null.yaml"
    device.symlink_to(os.devnull)
    for target in (str(fifo), str(device)):
        child = write(tmp_path, "child.yaml", f"seed: 1\nextends: {target}\n")
        problem = only_problem(load_scenario_document, child)
        assert (problem.file, problem.key_path, problem.line) == (str(child), "extends", 2)
        assert f"cannot extend '{target}': is not a regular file" in problem.message, problem.message


@pytest.mark.parametrize("target", ["/etc/passwd", "secrets.txt", "base.yaml.bak", "base", os.devnull])
def test_extends_refuses_a_file_that_is_not_a_scenario_file(tmp_path: Path, target: str) -> None:
    """`extends: /etc/shadow` read the file and echoed its lines as unknown keys: scenario files are untrusted."""
    secret = "root:*:20228:0:99999:7:::\nsecret_key: hunter2\nother: 1\n"
    for name in ("secrets.txt", "base.yaml.bak", "base"):
        write(tmp_path, name, secret)
    child = write(tmp_path, "child.yaml", f"seed: 1\nextends: {target}\n")
    problem = only_problem(load_scenario_document, child)
    assert (problem.file, problem.key_path, problem.line) == (str(child), "extends", 2)
    assert problem.message == (
        f"cannot extend '{target}': not a scenario file (its name must end in .yaml or .yml)"
    )


def test_extends_refuses_a_yaml_named_link_to_another_file(tmp_path: Path) -> None:
    """A `base.yaml` that is a symlink to /etc/passwd is refused too, without reading it."""
    (tmp_path / "base.yaml").symlink_to("/etc/passwd")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\n")
    problem = only_problem(load_scenario_document, child)
    assert (problem.file, problem.key_path, problem.line) == (str(child), "extends", 1)
    assert problem.message.startswith("cannot extend 'base.yaml': it is a link to /etc/passwd, not a scenario file")
    assert "root" not in problem.message


@pytest.mark.parametrize("name", ["base.yml", "base.YAML"])
def test_extends_accepts_yml_and_any_case(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, "steps: 1\n")
    doc = load_scenario_document(write(tmp_path, "child.yaml", f"extends: {name}\nseed: 2\n"))
    assert doc.data == {"steps": 1, "seed": 2}


@pytest.mark.parametrize("value", ["5", "[a.yaml]", "null", "''"])
def test_extends_must_be_a_file_name(tmp_path: Path, value: str) -> None:
    child = write(tmp_path, "child.yaml", f"seed: 1\nextends: {value}\n")
    problem = only_problem(load_scenario_document, child)
    assert (problem.file, problem.key_path, problem.line) == (str(child), "extends", 2)


def test_problems_inside_the_parent_name_the_parent(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", "steps: 1\nwhen: 2024-01-01\n")
    problem = only_problem(load_scenario_document, write(tmp_path, "child.yaml", "extends: base.yaml\n"))
    assert (problem.file, problem.line, problem.key_path) == (str(base), 2, "when")


def test_document_without_extends_is_returned_as_is(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", SCENARIO)
    assert load_scenario_document(path) == load_yaml(path)


# --- apply_overrides ------------------------------------------------------------------


@pytest.fixture()
def doc(tmp_path: Path) -> SourcedDocument:
    return load_yaml(write(tmp_path, "s.yaml", SCENARIO))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        ("0.5", 0.5),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ("IRGC", "IRGC"),
        ("''", ""),
        ("'5'", "5"),
        ("null", None),
        ("", None),
        ("{a: 1, b: [x]}", {"a": 1, "b": ["x"]}),
        ("a=b", "a=b"),  # only the first '=' splits
        ("hello world", "hello world"),
    ],
)
def test_override_values_are_typed_like_yaml(doc: SourcedDocument, text: str, expected: object) -> None:
    new = apply_overrides(doc, [f"factions.NDF.salary={text}"])
    value = new.data["factions"]["NDF"]["salary"]
    assert value == expected and type(value) is type(expected)


def test_override_nan_stays_a_float(doc: SourcedDocument) -> None:
    assert math.isnan(apply_overrides(doc, ["steps=.nan"]).data["steps"])


def test_override_key_keeps_every_character_but_the_spaces_around_it(doc: SourcedDocument) -> None:
    """`steps = 3` is steps; a line separator, NBSP or control character at a key's end is part of the key."""
    assert apply_overrides(doc, [" steps\t= 3"]).data["steps"] == 3
    for odd in ("\u2028", "\x85", "\xa0", "\x1c", "\u3000"):
        new = apply_overrides(doc, [f"steps{odd}=3", f"{odd}steps=4"])
        assert new.data["steps"] == doc.data["steps"], repr(odd)  # not set: other keys
        assert new.data[f"steps{odd}"] == 3 and new.data[f"{odd}steps"] == 4  # the schema refuses them later


def test_override_sets_nested_value_and_origin(doc: SourcedDocument) -> None:
    new = apply_overrides(doc, ["factions.NDF.salary=-5", "sites.albukamal.lat=1"])
    assert new.data["factions"]["NDF"]["salary"] == -5
    assert new.origins[("factions", "NDF", "salary")] == ("--set", None)
    assert new.origins[("factions", "NDF", "active")] == doc.origins[("factions", "NDF", "active")]
    assert str(new.problem(("factions", "NDF", "salary"), "must be >= 0 (got -5)")) == (
        "--set: factions.NDF.salary: must be >= 0 (got -5)"
    )


def test_override_replacing_a_subtree_drops_its_old_origins(doc: SourcedDocument) -> None:
    new = apply_overrides(doc, ["factions.NDF={salary: 1}"])
    assert new.data["factions"]["NDF"] == {"salary": 1}
    assert new.origins[("factions", "NDF")] == ("--set", None)
    assert new.origins[("factions", "NDF", "salary")] == ("--set", None)
    assert ("factions", "NDF", "headquarters", 0) not in new.origins


def test_override_list_item_by_index(doc: SourcedDocument) -> None:
    new = apply_overrides(doc, ["factions.NDF.headquarters.1=raqqa"])
    assert new.data["factions"]["NDF"]["headquarters"] == ["damascus", "raqqa"]
    assert new.origins[("factions", "NDF", "headquarters", 1)] == ("--set", None)
    first = ("factions", "NDF", "headquarters", 0)
    assert new.origins[first] == doc.origins[first]


def test_override_list_index_out_of_range(doc: SourcedDocument) -> None:
    problem = only_problem(apply_overrides, doc, ["factions.NDF.headquarters.2=raqqa"])
    assert (problem.file, problem.key_path, problem.line) == ("--set", "factions.NDF.headquarters.2", None)
    assert "out of range" in problem.message


def test_override_non_number_into_list(doc: SourcedDocument) -> None:
    problem = only_problem(apply_overrides, doc, ["factions.NDF.headquarters.first=x"])
    assert "is a list" in problem.message


def test_override_digit_segment_on_a_mapping_is_a_key(doc: SourcedDocument) -> None:
    new = apply_overrides(doc, ["sites.0=x"])
    assert new.data["sites"]["0"] == "x"


def test_override_creates_missing_mappings(doc: SourcedDocument) -> None:
    new = apply_overrides(doc, ["factions.SDF.salary=3"])
    assert new.data["factions"]["SDF"] == {"salary": 3}
    assert new.origins[("factions", "SDF")] == ("--set", None)
    assert new.origins[("factions", "SDF", "salary")] == ("--set", None)


def test_override_into_a_scalar_is_refused(doc: SourcedDocument) -> None:
    problem = only_problem(apply_overrides, doc, ["steps.x=1"])
    assert (problem.file, problem.key_path, problem.line) == ("--set", "steps.x", None)
    assert "steps" in problem.message and "200" in problem.message


@pytest.mark.parametrize("assignment", ["steps", "=5", "  =5"])
def test_override_without_key_or_equals(doc: SourcedDocument, assignment: str) -> None:
    problem = only_problem(apply_overrides, doc, [assignment])
    assert (problem.file, problem.key_path, problem.line) == ("--set", "", None)
    assert repr(assignment) in problem.message


def test_override_empty_segment(doc: SourcedDocument) -> None:
    problem = only_problem(apply_overrides, doc, ["factions..x=1"])
    assert problem.key_path == "factions..x" and "empty key" in problem.message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("!!python/object/apply:os.system ['true']", "tag '!!python/object/apply:os.system' is not allowed"),
        ("!!python/name:os.system", "is not allowed"),
        ("2024-01-01", "dates are not supported here; quote it"),
        ("[1, 2", ""),  # syntax error: any message
        ("{a: 1, a: 2}", "duplicate key 'a'"),
        ("Note: hello", "quote it"),  # would silently become a mapping
        ("- a", "quote it"),
        ("#ff0000", "comment"),
    ],
)
def test_override_value_problems(doc: SourcedDocument, value: str, fragment: str) -> None:
    problems = problems_of(apply_overrides, doc, [f"factions.NDF.salary={value}"])
    assert len(problems) == 1
    problem = problems[0]
    assert problem.file == "--set" and problem.line is None
    assert problem.key_path.startswith("factions.NDF.salary")
    assert fragment in problem.message


def test_override_python_tag_is_not_executed(doc: SourcedDocument, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    with pytest.raises(ScenarioError):
        apply_overrides(doc, [f"steps=!!python/object/apply:os.system ['touch {marker}']"])
    assert not marker.exists()


def test_override_alias_bomb_is_refused(doc: SourcedDocument) -> None:
    # The same laughs, as one flow list: [&l0 [..9 values..], &l1 [*l0 x9], ..., &l9 [*l8 x9]]
    levels = ["&l0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    levels += [f"&l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)]
    value = "[" + ", ".join(levels) + "]"
    problem = only_problem(apply_overrides, doc, [f"steps={value}"])
    assert "alias bomb" in problem.message and problem.file == "--set"


def test_override_problems_are_collected(doc: SourcedDocument) -> None:
    problems = problems_of(apply_overrides, doc, ["steps.x=1", "nonsense", "seed=3", "a.b=!!binary aGk="])
    assert [p.key_path for p in problems] == ["steps.x", "", "a.b"]


def test_later_overrides_see_earlier_ones(doc: SourcedDocument) -> None:
    new = apply_overrides(doc, ["extra={a: 1}", "extra.b=2", "extra.a=3"])
    assert new.data["extra"] == {"a": 3, "b": 2}


def test_apply_overrides_does_not_mutate_its_input(doc: SourcedDocument) -> None:
    data_before = copy.deepcopy(doc.data)
    origins_before = dict(doc.origins)
    headquarters = doc.data["factions"]["NDF"]["headquarters"]
    assignments = ["factions.NDF.headquarters.0=x", "steps=1", "factions.SDF.salary=2", "sites=[]"]
    new = apply_overrides(doc, assignments)
    assert doc.data == data_before and doc.origins == origins_before
    assert headquarters == ["damascus", "homs"]
    assert new is not doc and new.data["factions"]["NDF"]["headquarters"] is not headquarters
    assert new.main_file == doc.main_file
    with pytest.raises(ScenarioError):
        apply_overrides(doc, ["steps=1", "steps.x=2"])
    assert doc.data == data_before and doc.origins == origins_before


def test_apply_overrides_rejects_a_bare_string(doc: SourcedDocument) -> None:
    with pytest.raises(TypeError):
        apply_overrides(doc, "steps=1")  # type: ignore[arg-type]


def test_no_overrides_gives_an_equal_copy(doc: SourcedDocument) -> None:
    new = apply_overrides(doc, [])
    assert new == doc and new.data is not doc.data


# --- apply_overrides copies only what it changes ---------------------------------------

_NESTED = {"a": {"b": {"c": 1, "d": [1, 2, {"e": 3}]}, "f": [4, 5]}, "g": {"h": 6}, "i": 7}
_PATHS = ["a.b.c", "a.b.d.0", "a.b.d.2.e", "a.b.d.2.new", "a.f.1", "g.h", "g.new.deep", "i", "new", "a.b"]
_VALUES = ["9", "'x'", "[1, 2]", "{k: 1}", "null", "2.5"]


@given(st.lists(st.tuples(st.sampled_from(_PATHS), st.sampled_from(_VALUES)), min_size=1, max_size=5))
def test_overrides_change_the_new_document_as_a_deep_copy_would_and_never_the_original(assignments):
    """The new document shares the parts no assignment touches (`keypath.unshare`), yet reads as a deep copy."""
    original = SourcedDocument(data=copy.deepcopy(_NESTED), origins={}, main_file="<test>")
    before = copy.deepcopy(original.data)
    texts = [f"{path}={value}" for path, value in assignments]
    expected = copy.deepcopy(_NESTED)  # what each assignment does to a deep copy, one after another
    try:
        for path, value in assignments:
            keypath.set(expected, path, parse_value(value), create=True)
    except keypath.KeyPathError:  # e.g. a path through a value an earlier assignment made a number
        with pytest.raises(ScenarioError):
            apply_overrides(original, texts)
        assert original.data == before
        return
    new = apply_overrides(original, texts)
    assert new.data == expected
    assert original.data == before  # the original is never changed
    touched = {path.split(".")[0] for path, _ in assignments}
    for key in ("a", "g"):
        if key not in touched:
            assert new.data[key] is original.data[key]  # shared, not copied
    # A second round on the new document leaves the first one as it was.
    snapshot = copy.deepcopy(new.data)
    for again in ("a.b.d.2.e=100", "g.h=100", "a.f.0=100"):
        try:
            apply_overrides(new, [again])
        except ScenarioError:  # the first round made that path a number
            pass
    assert new.data == snapshot and original.data == before


# --- libyaml and PyYAML read the same -----------------------------------------------

_FRAGMENTS = [
    "a", "b_1", "key", "x: 1", "y: -2.5e3", "z: .inf", "n: null", "t: true", "on", "yes", "08", "0o17", "0x1F",
    "1_000", "2024-01-02", "'q'", '"d\\n"', '"\\x41"', "- ", "-", ": ", ":", "? ", "[", "]", "{", "}", ", ", "&a ",
    "*a", "!!str ", "!!int ", "!!float ", "!custom ", "# c", "|", ">-", "\n", "\n  ", "\n    ", "\n- ", "\t", " ",
    "%YAML 1.1\n---\n", "---\n", "...\n", "'it''s'", "é", "\u2028", "\x85", "\ufeff", "@", "`", "~", "=",
]


def _load_both(directory: Path, text: str) -> tuple[object, object]:
    """load_yaml's outcome (data and lines, or the problems) with libyaml and with PyYAML's parser alone."""
    from sim import yaml_source

    path = directory / "doc.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")

    def outcome():
        try:
            doc = load_yaml(path)
        except ScenarioError as error:
            return ("problems", [str(problem) for problem in error.problems])
        return ("data", repr(doc.data), sorted(doc.origins.items(), key=repr))

    with_libyaml = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yaml_source, "_FastScenarioLoader", None)
        python_only = outcome()
    return with_libyaml, python_only


@pytest.mark.skipif(not __import__("yaml").__with_libyaml__, reason=NO_LIBYAML)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30))
def test_libyaml_reads_every_document_as_pyyaml_does(fragments):
    """Scenario files are read by libyaml for speed: same values, same lines, same problems as PyYAML's own parser."""
    import tempfile

    text = "".join(fragments)
    with tempfile.TemporaryDirectory() as directory:
        with_libyaml, python_only = _load_both(Path(directory), text)
    assert with_libyaml == python_only, text


def test_libyaml_and_pyyaml_agree_on_every_project_scenario_and_on_refused_text(tmp_path):
    """The project's scenarios (their values and the line of every key), and text only PyYAML's reader explains."""
    root = Path(__file__).resolve().parents[1] / "scenarios"
    texts = [p.read_text(encoding="utf-8") for p in sorted(root.glob("*.yaml"))]
    texts += ["a: [" * 70 + "]" * 70, "[" * 1_200 + "]" * 1_200, "a: \x07", "a: b\n  c: d", "a: 1\na: 2", "&x a: *x"]
    for text in texts:
        with_libyaml, python_only = _load_both(tmp_path, text)
        assert with_libyaml == python_only, text[:80]


def test_a_key_with_invisible_characters_is_reported_on_one_line_with_them_escaped(tmp_path):
    """A byte-order mark or zero-width space in a key, or a line separator, prints as an escape, never raw."""
    from sim.scenario import load_scenario

    for shown in ["\\ufeff", "\\u200b", "\\u2028", "\\x85", "\\t"]:  # YAML's escapes in the file, too
        path = write(tmp_path, "s.yaml", f'name: x\n"se{shown}ed": 1\n')
        with pytest.raises(ScenarioError) as info:
            load_scenario(path)
        lines = [str(problem) for problem in info.value.problems]  # also: description, grid, ... missing
        assert all(len(line.splitlines()) == 1 and line.isprintable() for line in lines), lines
        assert any(f":2: se{shown}ed: unknown key 'se{shown}ed'" in line for line in lines), lines


def test_a_tab_pyyaml_refuses_is_named_with_what_to_do(tmp_path):
    problems = problems_of(load_yaml, write(tmp_path, "s.yaml", "name: x\nsteps: 30\t\n"))
    assert len(problems) == 1 and problems[0].line == 2
    assert "a tab is not allowed here: use spaces, or put the value in quotes" in problems[0].message


@given(st.text(min_size=1, max_size=300), st.integers(4, 80))
def test_a_clipped_value_is_a_whole_quoted_string_then_an_ellipsis(value, limit):
    """Never an escape cut in half: the shown part reads back (ast.literal_eval) as the value's beginning."""
    import ast

    from sim.yaml_source import clipped

    shown = clipped(value, limit)
    assert len(shown) <= limit
    if shown == repr(value):
        return
    assert shown.endswith("…")
    start = ast.literal_eval(shown[:-1])
    assert value.startswith(start) and len(repr(start)) <= limit - 1
    assert len(repr(value[: len(start) + 1])) > limit - 1  # the longest start that fits


def test_a_control_character_in_a_value_is_refused_at_its_line(tmp_path):
    """An escape such as \\e in a label validated, and `params` printed it raw to the terminal (colours, bells)."""
    for escape, code in (("\\e[31m", "U+001B"), ("\\x07", "U+0007"), ("\\r", "U+000D"), ("\\x9b", "U+009B")):
        path = write(tmp_path, "s.yaml", f'name: x\nfactions:\n  Red:\n    label: "R{escape}ed"\n')
        with pytest.raises(ScenarioError) as info:
            load_scenario_document(path)
        assert [str(p) for p in info.value.problems] == [
            f"{path}:4: factions.Red.label: control character {code} in the text (an escape such as \\e or \\x1b in"
            " a double-quoted string): text may hold tabs and line breaks, no other control characters; delete it"
        ]
    kept = write(tmp_path, "t.yaml", 'name: x\ndescription: "a\\tb\\nc"\n')
    assert load_scenario_document(kept).data["description"] == "a\tb\nc"  # tab and newline are text
    with pytest.raises(ScenarioError, match=r"^--set: name: control character U\+001B"):
        apply_overrides(load_scenario_document(kept), ['name="\\e"'])


def test_a_key_longer_than_yamls_limit_is_named_as_such(tmp_path: Path) -> None:
    # PyYAML stops a simple key at 1,024 characters and says only "could not find expected ':'"
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", "steps: 1\n" + "k" * 1100 + ": 1\n"))
    assert problem.line == 2
    assert problem.message.endswith("(a key is at most 1,024 characters long in YAML: this one is longer)")
    problem = only_problem(load_yaml, write(tmp_path, "t.yaml", "steps: 1\nkey without colon\nx: 1\n"))
    assert "1,024" not in problem.message  # a short line without its ':' says no such thing


def test_an_unclosed_quote_is_named_where_it_opens(tmp_path: Path) -> None:
    # PyYAML's problem mark is the end of the file: the line the quote opened on is the one to fix
    text = 'steps: 1\ndescription: "never closed\nseed: 3\nx: 1\n\n'
    problem = only_problem(load_yaml, write(tmp_path, "s.yaml", text))
    assert problem.line == 2 and "while scanning a quoted scalar" in problem.message, problem
