"""Unquoted scalars that YAML 1.1 reads differently from YAML 1.2 are refused, not reinterpreted.

`salary_usd_month: 0150` would be 104 (octal) to PyYAML's `safe_load`, `2:30` would be 150
(base 60), `exempts_conscription: on` would be true. The loader (`sim.yaml_source`) reads by
the YAML 1.2 core schema and refuses every plain scalar the two versions read differently,
in files and in `--set` alike, with one line saying what to write. Exponents (`1e5`,
`1e-3`) are numbers. What the project writes (`dump_yaml`) reads back unchanged.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from helpers import SCENARIOS
from hypothesis import given
from hypothesis import strategies as st

from sim import cli
from sim.scenario import load_scenario
from sim.yaml_source import ScenarioError, apply_overrides, dump_yaml, load_yaml, parse_value

NO_LIBYAML = (
    "this PyYAML was built without libyaml (pip install --force-reinstall pyyaml, from a wheel): only the "
    "check that libyaml and PyYAML agree is skipped; PyYAML's own parser and emitter then do everything"
)

TOY = SCENARIOS / "toy_two_towns.yaml"

# (key path, plain scalar YAML 1.1 reads differently, part of the message, the spelling meant)
SALARY = "factions.Blue.salary_usd_month"
EXEMPTS = "factions.Red.exempts_conscription"
SURPRISES = [
    (SALARY, "0150", "leading zero makes YAML 1.1 read an octal number (104); write 150", "150"),
    ("steps", "08", "a leading zero makes YAML 1.1 read text, YAML 1.2 8; write 8", "8"),
    ("steps", "2:30", "YAML 1.1 reads a base-60 number (150), YAML 1.2 text; write 150", "150"),
    ("steps", "1:30:00", "base-60 number (5400), YAML 1.2 text; write 5400", "5400"),
    (SALARY, "1:30.5", "base-60 number (90.5), YAML 1.2 text; write 90.5", "90.5"),
    (EXEMPTS, "on", "YAML 1.1 reads true, YAML 1.2 text; booleans are only true/false", "true"),
    (EXEMPTS, "Off", "write false", "false"),
    (EXEMPTS, "yes", "write true", "true"),
    (EXEMPTS, "NO", "write false", "false"),
    (EXEMPTS, "y", "write true", "true"),
    (EXEMPTS, "n", "write false", "false"),
    ("steps", "0o17", "YAML 1.2 reads an octal number (15), YAML 1.1 text; write 15", "15"),
    ("steps", "0b101", "YAML 1.1 reads a binary number (5), YAML 1.2 text; write 5", "5"),
    ("steps", "1_000", "YAML 1.1 reads the number 1000, YAML 1.2 text; write 1000 without '_'", "1000"),
    ("start_date", "2019-11-01", "dates are not supported here; quote it", '"2019-11-01"'),
]
IDS = [text for _, text, _, _ in SURPRISES]


def _extending(tmp_path: Path, key: str, value: str) -> Path:
    """A scenario extending the toy that sets `key` (dotted) to the YAML text `value`, one key per line."""
    lines = [f"extends: {TOY}"]
    for depth, part in enumerate(key.split(".")[:-1]):
        lines.append("  " * depth + f"{part}:")
    lines.append("  " * (key.count(".")) + f"{key.split('.')[-1]}: {value}")
    path = tmp_path / "scenario.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _validate(capsys, *argv) -> tuple[int, list[str], str]:
    """`run.py validate ARGV...` in process: (exit status, stderr lines, stdout)."""
    status = cli.main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, err.splitlines(), out


@pytest.mark.parametrize(("key", "text", "fragment", "meant"), SURPRISES, ids=IDS)
def test_surprise_in_a_file_is_refused_with_file_line_key_and_the_spelling_meant(
    tmp_path, capsys, key, text, fragment, meant
) -> None:
    path = _extending(tmp_path, key, text)
    status, err, _ = _validate(capsys, path)
    assert status == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"{path}:{key.count('.') + 2}: {key}: ")
    assert fragment in err[0]


@pytest.mark.parametrize(("key", "text", "fragment", "meant"), SURPRISES, ids=IDS)
def test_surprise_in_set_is_refused_with_the_spelling_meant(capsys, key, text, fragment, meant) -> None:
    status, err, _ = _validate(capsys, TOY, "--set", f"{key}={text}")
    assert status == 2
    assert len(err) == 1 and err[0].startswith(f"--set: {key}: ")
    assert fragment in err[0]


@pytest.mark.parametrize(("key", "text", "fragment", "meant"), SURPRISES, ids=IDS)
def test_the_spelling_meant_is_accepted_in_a_file_and_in_set(tmp_path, capsys, key, text, fragment, meant) -> None:
    assert _validate(capsys, _extending(tmp_path, key, meant))[0] == 0
    assert _validate(capsys, TOY, "--set", f"{key}={meant}")[0] == 0


def test_the_values_meant_are_what_the_scenario_gets() -> None:
    config = load_scenario(
        TOY,
        ["factions.Blue.salary_usd_month=150", "steps=1e2", "factions.Red.exempts_conscription=false",
         "start_date='2019-11-01'"],
    )
    assert config.factions["Blue"].salary_usd_month == 150.0
    assert config.steps == 100
    assert config.factions["Red"].exempts_conscription is False
    assert config.start_date == "2019-11-01"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("-0x1F", "YAML 1.1 reads a signed hex number (-31), YAML 1.2 text; write -31"),
        ("+017", "a leading zero makes YAML 1.1 read an octal number (15); write 17"),
        ("0x_1F", "YAML 1.1 reads the number 31, YAML 1.2 text; write 31 without '_'"),
        ("1" * 5000, "is too long; quote it if you mean text"),
    ],
)
def test_other_numbers_only_yaml_11_reads_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_value(text)
    assert fragment in str(info.value) and len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e5", 100000),  # a whole number with an exponent is an int: `--set steps=1e3` works
        ("1E2", 100),
        ("2e+3", 2000),
        ("1e-3", 0.001),
        ("1.5e3", 1500.0),
        ("1.0e5", 100000.0),  # a decimal point makes a float, as everywhere in YAML
        ("-.5", -0.5),
        ("1e19", 10**19),  # a whole number up to the largest float (1e308) is an integer
        ("1e308", 10**308),
        ("0x1F", 31),  # YAML 1.1 and 1.2 agree
        ("+5", 5),
        ("01.5", 1.5),
        ("0", 0),
        ("-0", 0),
        ("true", True),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("=", "="),
    ],
)
def test_numbers_and_words_both_versions_would_mean_alike_are_read(text: str, expected) -> None:
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_set_1e5_is_100000_and_files_read_exponents_as_numbers(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("a: 1e-3\nb: 1e2\nc: [1e5, 2.5E-1]\n", encoding="utf-8")
    doc = load_yaml(path)
    assert doc.data == {"a": 0.001, "b": 100, "c": [100000, 0.25]}
    assert apply_overrides(doc, ["x=1e5"]).data["x"] == 100000


def test_inf_and_nan_are_numbers_that_the_schema_refuses(capsys) -> None:
    status, err, _ = _validate(capsys, TOY, "--set", "factions.Blue.salary_usd_month=.inf")
    assert status == 2 and err == ["--set: factions.Blue.salary_usd_month: input should be a finite number (got inf)"]


@pytest.mark.parametrize(
    ("key", "text"),
    [(key, text) for key in (SALARY, "rules.influence.sigma_cells") for text in ("1e400", "-1e400", "1.5E+999")]
    + [("steps", "1.5E+999")],  # a decimal point: no whole number, whatever the key
)
def test_a_number_beyond_a_float_is_echoed_as_written_in_a_file_and_in_set(tmp_path, capsys, key, text) -> None:
    # float() makes it inf: the message said "got inf", a value nobody wrote.
    message = f"{key}: input should be a finite number (got {text}, beyond the range of a float, ±1.8e+308)"
    path = _extending(tmp_path, key, text)
    status, err, _ = _validate(capsys, path)
    assert status == 2 and err == [f"{path}:{key.count('.') + 2}: {message}"]
    status, err, _ = _validate(capsys, TOY, "--set", f"{key}={text}")
    assert status == 2 and err == [f"--set: {message}"]
    assert cli.main(["run", str(TOY), "--set", f"{key}={text}", "--steps", "2", "--no-plots"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"--set: {message}"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [("1e18", "1e18"), ("1e19", "1e19"), ("1e61", "1e61"), ("25e306", "25e306"), ("123456789012345678", None)],
)
def test_a_whole_number_with_a_large_exponent_is_out_of_an_integer_keys_range(tmp_path, capsys, text, shown) -> None:
    # From 1e19 up (a float beyond int64) the message was "input should be a valid integer (got 1e+19)":
    # not what 1e18 got, and 1e19 is a whole number. Up to the largest float it is one, out of range.
    # Echoed as its exponent wrote it (it was "got 10000000000000000000", 20 digits to count, and
    # "got 2.5e+307"); a number without trailing zeros digit for digit.
    shown = shown or text
    message = f"steps: input should be less than or equal to 100000 (got {shown})"
    path = _extending(tmp_path, "steps", text)
    status, err, _ = _validate(capsys, path)
    assert status == 2 and err == [f"{path}:2: {message}"]
    status, err, _ = _validate(capsys, TOY, "--set", f"steps={text}")
    assert status == 2 and err == [f"--set: {message}"]
    mantissa, _, power = text.partition("e")
    assert apply_overrides(load_yaml(TOY), [f"x={text}"]).data["x"] == int(mantissa) * 10 ** int(power or 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e400", "less than or equal to 100000 (got 1e400)"),
        ("-1e400", "greater than or equal to 1 (got -1e400)"),
        ("1E+400", "less than or equal to 100000 (got 1E+400)"),
        ("1e5000", "less than or equal to 100000 (got 1e5000)"),
        ("1e99999999999", "less than or equal to 100000 (got 1e99999999999)"),
        ("9" * 5000, f"less than or equal to 100000 (got {'9' * 59}…)"),
    ],
)
def test_a_whole_number_beyond_a_float_is_out_of_an_integer_keys_range_as_the_option_says(
    tmp_path, capsys, text, message
) -> None:
    # `--steps 1e400` said "must be between 1 and 100,000" but `--set steps=1e400` (and `steps: 1e400`
    # in a file) "input should be a finite number (... beyond the range of a float)": the same whole
    # number, out of the key's range either way, as 1e61 is. 5,000 nines said "too long; quote it".
    path = _extending(tmp_path, "steps", text)
    status, err, _ = _validate(capsys, path)
    assert status == 2 and err == [f"{path}:2: steps: input should be {message}"]
    status, err, _ = _validate(capsys, TOY, "--set", f"steps={text}")
    assert status == 2 and err == [f"--set: steps: input should be {message}"]
    with pytest.raises(SystemExit) as stop:
        cli.build_parser().parse_args(["run", str(TOY), f"--steps={text}"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --steps: must be between 1 and 100,000 (as steps)" in err, err
    status, err, _ = _validate(capsys, TOY, "--set", f"{SALARY}={text}")  # a decimal key: beyond a float's range
    assert status == 2 and len(err) == 1 and ("beyond the range of a float" in err[0] or "too long" in err[0]), err


@pytest.mark.parametrize(
    ("key", "text", "meant"),
    [("steps", "1.5e3", "1500"), ("steps", "1.0", "1"), ("steps", "2.5E4", "25000"), ("seed", "1.5e18", "15e17"),
     ("seed", "-0.0", "0")],
)  # fmt: skip
def test_a_whole_number_with_a_decimal_point_is_refused_alike_by_set_and_the_option(capsys, key, text, meant) -> None:
    # `--set steps=1.5e3` said "input should be a valid integer (got 1500.0)", `--steps 1.5e3`
    # "expected a whole number": neither said why 1500 was no whole number. Both now say the rule
    # they follow (a whole number has no decimal point, as in a scenario file) and what to write.
    # (Only for a number in the key's range: out of it, both say the range, below.)
    hint = f"a whole number has no decimal point: write {meant}"
    status, err, _ = _validate(capsys, TOY, "--set", f"{key}={text}")
    assert status == 2 and len(err) == 1 and err[0].startswith(f"--set: {key}: input should be a valid integer (got ")
    assert err[0].endswith(f"; {hint})"), err
    with pytest.raises(SystemExit) as stop:
        cli.build_parser().parse_args(["run", str(TOY), f"--{key}={text}"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert f"argument --{key}: expected a whole number, got {text!r} ({hint}) (see" in err, err
    for fraction in ("1.5", "1e-3"):  # not a whole number: no hint
        assert "decimal point" not in " ".join(_validate(capsys, TOY, "--set", f"steps={fraction}")[1])
    for tiny in ("1e-400", "2.5e-999"):  # reads as 0.0 but is not 0: no "write 0" (helper-88)
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["run", str(TOY), f"--steps={tiny}"])
        err = capsys.readouterr().err
        assert f"expected a whole number, got {tiny!r} (see" in err, err


@pytest.mark.parametrize(
    ("key", "text", "meant"),
    [("steps", "1.5e3", "1500"), ("steps", "1500.0", "1500"), ("steps", "9.05e1", None), ("seed", "1.5e18", "15e17"),
     ("steps", "!!float 2", "2")],
)  # fmt: skip
def test_a_number_with_a_decimal_point_at_a_whole_number_key_is_echoed_as_written(tmp_path, capsys, key, text, meant):
    hint = f"; a whole number has no decimal point: write {meant}" if meant else ""
    message = f"input should be a valid integer (got {text}{hint})"
    # `--set steps=1.5e3` said "got 1500.0" (the float it was read as), `--steps 1.5e3` "got '1.5e3'";
    # `--set seed=1.5e18` said "got 1.5e+18". Files, --set and the option echo what was written.
    path = _extending(tmp_path, key, text)
    status, err, _ = _validate(capsys, path)
    assert status == 2 and err == [f"{path}:2: {key}: {message}"]
    status, err, _ = _validate(capsys, TOY, "--set", f"{key}={text}")
    assert status == 2 and err == [f"--set: {key}: {message}"]
    if not text.startswith("!!"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["run", str(TOY), f"--{key}={text}"])
        assert f"argument --{key}: expected a whole number, got {text!r} (" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "bound"),
    [(text, "greater than or equal to 1") for text in ("00", "-00", "0o0", "0b0", "-0x1", "-2.0E3")]
    + [(text, "less than or equal to 100000") for text in ("1.5e9", "1.5e20", "1.5e300", "100_001", "0100001")],
)  # fmt: skip
def test_a_hint_never_names_a_number_out_of_the_keys_range(tmp_path, capsys, text, bound) -> None:
    # `--steps 00` and `--set steps=00` said "write 0", `--steps 1.5e9` and `--set steps=1.5e9`
    # "write 1500000000": values that steps (1 to 100,000) refuses in turn. A whole number meant
    # outside the range is refused as 0 and 1e400 are, in each place, echoed as written.
    path = _extending(tmp_path, "steps", text)
    status, err, _ = _validate(capsys, path)
    assert status == 2 and err == [f"{path}:2: steps: input should be {bound} (got {text})"]
    status, err, _ = _validate(capsys, TOY, "--set", f"steps={text}")
    assert status == 2 and err == [f"--set: steps: input should be {bound} (got {text})"]
    zero = _validate(capsys, TOY, "--set", "steps=0")[1]
    assert zero == ["--set: steps: input should be greater than or equal to 1 (got 0)"]
    for option in (f"--steps={text}", "--steps=0"):
        with pytest.raises(SystemExit) as stop:
            cli.build_parser().parse_args(["run", str(TOY), option])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1, err
        assert f"argument --steps: must be between 1 and 100,000 (as steps), got {option[8:]}" in err, err
        assert "write" not in err, err


def test_a_hint_to_drop_a_leading_zero_names_the_number_as_set_does(capsys) -> None:
    # `--seed -00` said "write -0", `--set seed=-00` "write 0".
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", str(TOY), "--seed=-00"])
    err = capsys.readouterr().err
    assert "-00: a leading zero is refused, as in a scenario file and --set" in err, err
    assert "; write 0 (see" in err, err
    assert "; write 0 (or quote it" in _validate(capsys, TOY, "--set", "seed=-00")[1][0]


@pytest.mark.parametrize("text", ["1e-400", "-2.5e-999", "0.000001e-320"])
@pytest.mark.parametrize("key", [SALARY, "rules.influence.sigma_cells"])
def test_a_number_too_near_zero_for_a_float_is_refused_as_written(tmp_path, capsys, key, text) -> None:
    # float() makes it 0.0: a salary of 0, or "greater than 0 (got 0.0)" for a width nobody set to 0.
    message = (
        f"{key}: input should be a number a float can hold (got {text}, nearer 0 than a float can be,"
        " 4.9e-324: it would read as 0; write 0 if that is meant)"
    )
    path = _extending(tmp_path, key, text)
    status, err, _ = _validate(capsys, path)
    assert status == 2 and err == [f"{path}:{key.count('.') + 2}: {message}"]
    status, err, _ = _validate(capsys, TOY, "--set", f"{key}={text}")
    assert status == 2 and err == [f"--set: {message}"]
    for zero in ("0e-400", "0.0e-5000", "-0.0"):  # zero written as zero is zero
        assert _validate(capsys, TOY, "--set", f"{SALARY}={zero}")[0] == 0
    assert _validate(capsys, TOY, "--set", f"{SALARY}=5e-324")[0] == 0  # the smallest float there is


def test_null_where_a_value_is_needed_says_null(capsys) -> None:
    status, err, _ = _validate(capsys, TOY, "--set", "factions.Blue.label=~")
    assert status == 2 and err == ["--set: factions.Blue.label: input should be a valid string (got null)"]


@pytest.mark.parametrize("text", ["on", "0150", "1e5", "2:30", "y", "2019-11-01", "1_000", "null", "0o17"])
def test_quoted_scalars_stay_text(tmp_path, capsys, text: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"a: '{text}'\nb: \"{text}\"\nc: !!str {text}\n", encoding="utf-8")
    assert load_yaml(path).data == {"a": text, "b": text, "c": text}
    assert parse_value(f"'{text}'") == text
    assert _validate(capsys, TOY, "--set", f"factions.Blue.label='{text}'")[0] == 0


def test_explicit_tags_do_not_bring_yaml_11_back(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("a: !!int 0150\nb: !!bool yes\nc: !!float 1\nd: !!int 0x1F\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_yaml(path)
    assert [(p.key_path, p.line) for p in info.value.problems] == [("a", 1), ("b", 2)]


def test_keys_y_and_n_are_text_but_yes_and_on_are_refused(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("x: 1\ny: 2\nn: 3\n", encoding="utf-8")
    assert load_yaml(path).data == {"x": 1, "y": 2, "n": 3}
    path.write_text("on: 1\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"keys must be text; quote it \('on' reads as true/false\)"):
        load_yaml(path)


def test_every_project_scenario_still_loads() -> None:
    for path in sorted(SCENARIOS.glob("*.yaml")):
        load_yaml(path)  # raises ScenarioError on a refused scalar


# --- what the project writes reads back unchanged -----------------------------------------

TRICKY_TEXT = [
    "on", "off", "yes", "No", "y", "n", "Y", "true", "null", "~", "", "0150", "08", "0o17", "0x1F", "-0x1F",
    "0b101", "1_000", "2:30", "1:30:00", "1e5", "1e-3", "-.5", ".inf", ".nan", "2019-11-01", "2019-11-01 10:00:00",
    "<<", "=", "+5", "1.0", "a value with spaces", " lead", "trail ", "#x", "a: b", "- a", "'", '"',
]
scalars = st.one_of(
    st.sampled_from(TRICKY_TEXT),
    st.text(alphabet=st.sampled_from("0123456789eE+-._:xobyn onYN~"), max_size=8),
    # any text a value may hold: no control characters but tab and line breaks (the loader refuses them)
    st.text(st.characters(exclude_categories=("Cc", "Cs"), include_characters="\t\n\x85"), max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
documents = st.dictionaries(
    st.one_of(st.sampled_from(TRICKY_TEXT), st.text(min_size=1, max_size=8)),
    st.one_of(scalars, st.lists(scalars, max_size=4)),
    max_size=6,
)


def _same(a, b) -> bool:
    """Equal, and of the same type all the way down (1 and 1.0 and True differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@given(documents)
def test_dump_yaml_reads_back_unchanged_with_our_loader_and_with_safe_load(tmp_path_factory, data) -> None:
    text = dump_yaml(data, sort_keys=False, allow_unicode=True)
    path = tmp_path_factory.mktemp("dump") / "s.yaml"
    path.write_text(text, encoding="utf-8")
    if data:  # an empty mapping is `{}`, which is no scenario
        assert _same(load_yaml(path).data, data), text
    assert _same(yaml.safe_load(text), data), text


@pytest.mark.skipif(not yaml.__with_libyaml__, reason=NO_LIBYAML)
@pytest.mark.parametrize(
    "options", [{}, {"width": 100}, {"width": 2**31}, {"default_flow_style": None}]  # the last: scenario_yaml
)
def test_libyaml_writes_a_scenario_as_pyyaml_would(options) -> None:
    """dump_yaml uses libyaml's emitter for speed; a scenario's text is PyYAML's emitter's, character for character.

    (On other text the two may differ in style, not in what reads back: libyaml escapes characters
    beyond U+FFFF and writes an empty key plainly; the round trip above covers that.)
    """
    from sim import yaml_source
    from sim.scenario import scenario_to_dict

    for path in sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml")):
        data = scenario_to_dict(load_scenario(path))
        pyyaml = yaml.dump(data, Dumper=yaml_source._ScenarioDumper, sort_keys=False, allow_unicode=True, **options)
        assert dump_yaml(data, sort_keys=False, allow_unicode=True, **options) == pyyaml, path.name


def test_plain_safe_dump_would_not_have_round_tripped() -> None:
    """Why `dump_yaml` exists: PyYAML writes these strings unquoted, and they read back as other values."""
    for text in ("1e5", "y", "08", "-.5"):
        assert yaml.safe_dump({"a": text}) == f"a: {text}\n"
        assert dump_yaml({"a": text}) != f"a: {text}\n"


def test_a_run_writes_a_scenario_yaml_that_reads_back_as_the_scenario(tmp_path, capsys) -> None:
    overrides = ["description='0150'", "factions.Blue.label='on'", "factions.Red.label='1e5'", "name='y'"]
    out = tmp_path / "run"
    argv = ["run", str(TOY), "--steps", "2", "--no-plots", "--out", str(out)]
    assert cli.main([*argv, *(x for o in overrides for x in ("--set", o))]) == 0
    capsys.readouterr()
    written = load_scenario(out / "scenario.yaml")  # the scenario as resolved (--steps is the run's, not in it)
    assert written == load_scenario(TOY, overrides)
    assert (written.description, written.factions["Blue"].label, written.factions["Red"].label) == ("0150", "on", "1e5")


# Words a letter may start that YAML 1.1 or 1.2 reads as a boolean or null, in mixed case, and
# with the final newline their patterns' `$` also matches before.
LETTER_WORDS = ["yes", "no", "on", "off", "y", "n", "true", "false", "null"]
WORD_SPELLINGS = sorted(
    {spelling for w in LETTER_WORDS for spelling in (w, w.upper(), w.title(), w.swapcase()[:1] + w[1:].upper())}
)


@pytest.mark.parametrize("text", [*WORD_SPELLINGS, *(w + "\n" for w in WORD_SPELLINGS), "yes ", "Null\n", "nulls"])
def test_plain_scalars_starting_with_a_letter_resolve_as_in_full_for_every_word(text: str) -> None:
    from sim.yaml_source import _plain_tag, _resolve_plain_tag

    assert _plain_tag(text) == _resolve_plain_tag(text)


@given(
    st.text(alphabet=st.sampled_from("aAnNyYoOtTfFeElLsSuUx0123456789 .:-+_<=~\n\r\u2028é#"), max_size=12)
    | st.sampled_from(WORD_SPELLINGS).flatmap(lambda w: st.tuples(st.just(w), st.text("\n :x", max_size=2)))
    .map("".join)
    | st.text(max_size=80)
)
def test_the_quick_resolution_of_plain_scalars_is_the_full_one(text: str) -> None:
    """`_plain_tag`'s shortcuts (text starting with a letter, a cache of short scalars) change no answer."""
    from sim.yaml_source import _plain_tag, _resolve_plain_tag

    assert _plain_tag(text) == _resolve_plain_tag(text)
    assert _plain_tag(text) == _resolve_plain_tag(text)  # from the cache this time


@given(st.from_regex(r"[-+]?[0-9]{1,42}(\.[0-9]{0,20})?([eE][-+]?[0-9]{1,4})?", fullmatch=True))
def test_plain_decimal_numbers_resolve_quickly_as_in_full(text: str) -> None:
    """Decimal numbers take a shortcut (a big polygon has tens of thousands): the same tag as the full path."""
    from sim.yaml_source import _plain_tag, _resolve_plain_tag

    assert _plain_tag(text) == _resolve_plain_tag(text)


@pytest.mark.parametrize(
    ("char", "name", "escape"),
    [
        ("\x85", "U+0085 (next line)", "\\N"),
        ("\u2028", "U+2028 (line separator)", "\\L"),
        ("\u2029", "U+2029 (paragraph separator)", "\\P"),
    ],
)
def test_a_yaml_11_line_break_is_named_at_its_line(tmp_path, capsys, char, name, escape) -> None:
    # PyYAML and libyaml break the line there (YAML 1.1), YAML 1.2 does not: in a comment it made
    # every later line number wrong and the error "expected '<document start>'" at line 12, and a
    # bad value further down was never reported.
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {TOY}\n# a comment{char} pasted from the article\nseed: -5\n", encoding="utf-8")
    status, err, _ = _validate(capsys, path)
    message = f"{name} at column 12: YAML 1.1 reads it as a line break, YAML 1.2 does not; delete it, or write it"
    message += f" as {escape}"
    assert status == 2 and len(err) == 1 and err[0].startswith(f"{path}:2: {message} in a double-quoted string"), err
    status, err, _ = _validate(capsys, TOY, "--set", f"factions.Blue.label=a{char}b")
    assert status == 2 and err[0].startswith(f"--set: factions.Blue.label: {name} at column 2: "), err
    assert _validate(capsys, TOY, "--set", f'factions.Blue.label="a{escape}b"')[0] == 0  # written escaped: fine
