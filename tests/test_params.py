"""`run.py params`: what a parameter means, read from the schema and the chosen scenario (sim.params)."""

from __future__ import annotations

import csv
import io

import pytest

from sim.cli import main
from sim.docs import FALLBACK_HELP
from sim.params import WIDTH, parameters
from sim.scenario import load_scenario
from sim.schema import schema_field

SALARY = "factions.IRGC.salary_usd_month"


@pytest.fixture(scope="module")
def baseline():
    return load_scenario("baseline")


def params_cli(capsys, *argv) -> tuple[int, str, str]:
    status = main(["params", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_listing_gives_key_unit_default_range_source_and_help_within_100_columns(capsys, baseline):
    status, out, err = params_cli(capsys)
    assert status == 0 and err == ""
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    listed = parameters(baseline)
    assert f"{len(listed)} parameters" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("factions.<faction>.salary_usd_month "))
    row, help_line = lines[at].split(), lines[at + 1]
    assert row[1:] == ["USD/month", "0", "[0,", "100", "000]"]  # unit, schema default, range
    field, _ = schema_field(SALARY)
    assert help_line.strip().startswith(field.description)
    assert "[article §9, assumption]" in help_line  # IRGC and NDF cite §9; MILSEC and ISIS fall to 'factions'


def test_help_and_units_are_the_schemas_own(baseline):
    """No second copy: every parameter's help and unit is its schema field's (or sim.docs' fallback)."""
    for param in parameters(baseline):
        if not param.values or "<key.path>" in param.key:
            continue
        field, _ = schema_field(param.values[0].key)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        assert param.help == (field.description or FALLBACK_HELP[f"{param.model}.{param.field}"]), param.key
        assert param.unit == extra.get("unit", ""), param.key


@pytest.mark.parametrize(
    ("pattern", "expected", "not_expected"),
    [
        ("SALARY", "factions.<faction>.salary_usd_month", "rules.clashes.p_max"),  # substring, any case
        ("rules.clashes.*", "rules.clashes.p_max", "rules.tension.decay_per_day"),  # glob on the key path
        ("*.irgc.post*", "factions.<faction>.posture", "factions.<faction>.privileges"),  # glob, concrete key
        ("lanchester", "rules.clashes.strength_exponent", "rules.clashes.p_max"),  # a word of the help
    ],
)
def test_a_pattern_filters_on_key_paths_and_help_words(capsys, pattern, expected, not_expected):
    status, out, _ = params_cli(capsys, pattern)
    keys = {line.split()[0] for line in out.splitlines() if line and not line.startswith((" ", "KEY"))}
    assert status == 0 and expected in keys and not_expected not in keys


def test_one_key_in_full_shows_the_scenarios_value_and_its_citation(capsys, baseline):
    status, out, _ = params_cli(capsys, SALARY)
    assert status == 0
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    assert out.startswith("factions.<faction>.salary_usd_month\n")
    words = " ".join(out.split())  # wrapped lines joined
    irgc = baseline.factions["IRGC"].salary_usd_month
    assert f"IRGC: {irgc:g} source: {baseline.provenance[SALARY]}" in words
    assert "others: NDF" in words
    for label, text in [("unit", "USD/month"), ("type", "float"), ("range", "[0, 100 000]"), ("default", "0")]:
        assert f"{label} {text}" in words
    assert 'docs/ODD.md §7.14 Parameters, table "Factions' in words
    assert f"--set {SALARY}=VALUE" in words


def test_a_text_key_is_shown_set_quoted(capsys, tmp_path):
    # unquoted, a date is refused (YAML 1.1 reads a date, 1.2 text): the hint works as written
    status, out, _ = params_cli(capsys, "start_date")
    assert status == 0
    assert "set with    --set start_date='\"VALUE\"'" in out, out
    from sim.cli import main

    assert main(["validate", "toy_two_towns", "--set", 'start_date="2019-11-05"']) == 0


def test_a_generic_key_and_another_scenario(capsys):
    status, out, _ = params_cli(capsys, "rules.clashes.p_max", "--scenario", "toy_two_towns")
    words = " ".join(out.split())
    assert status == 0 and "in scenario 'toy_two_towns'" in words
    assert "§7.7 Tension and clashes" in words  # the ODD process section of the rule
    status, out, _ = params_cli(capsys, "factions.<name>.posture", "--scenario", "toy_two_towns")
    assert status == 0 and "Blue:" in out and "Red:" in out
    status, out, _ = params_cli(capsys, "name")
    assert status == 0 and "default     none: required (the scenario must give it)" in out


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("factions.IRGC.salery_usd_month", "not a scenario parameter (did you mean 'factions.IRGC.salary_usd_month'?)"),
        ("rules.clashes.pmax", "(did you mean 'rules.clashes.p_max'?)"),
        ("factions.IRGC.salry", "(did you mean 'factions.IRGC.salary_usd_month'?)"),  # its unit words drowned it
        ("factions.<faction>.salery_usd_month", "(did you mean 'factions.<faction>.salary_usd_month'?)"),
        ("factions.IRGX.salary_usd_month", "scenario 'baseline' has no faction 'IRGX' (did you mean 'IRGC'?"),
        ("zzzqqq", "no parameter key path or help text matches this"),
        ("rules.clashs.*", "no parameter key path or help word matches this pattern"),
    ],
)
def test_an_unknown_key_or_a_pattern_matching_nothing_exits_2_with_one_line(capsys, query, message):
    status, out, err = params_cli(capsys, query)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_an_unknown_scenario_exits_2(capsys):
    status, _, err = params_cli(capsys, "--scenario", "baselin")
    assert status == 2 and "did you mean 'baseline'?" in err


def test_markdown_and_csv(capsys, baseline):
    status, out, _ = params_cli(capsys, "rules.clashes.*", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and len(rows) == sum(p.key.startswith("rules.clashes.") for p in parameters(baseline))
    p_max = next(r for r in rows if r["key"] == "rules.clashes.p_max")
    assert p_max["unit"] == "1/day" and p_max["range"] == "[0, 1]" and p_max["source (baseline)"] == "calibrated"
    status, out, _ = params_cli(capsys, "rules.clashes.*", "--format", "markdown")
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("| Key | Unit |") and len(lines) == len(rows) + 2
