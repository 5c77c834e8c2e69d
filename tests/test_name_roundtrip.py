"""Names survive the round trip through the result files.

Every name the validator accepts (`sim.schema.Identifier`: `NA`, `None`, `null`, `NaN`,
`true`, `e5`... included) is written to timeseries.csv, events.csv and maps.npz and read back
(`sim.results`, `run.py plot`) as itself; labels (free text with commas, quotes, `>`, `~`)
come back exactly from maps.npz. Names that the result files could not tell apart from their
own words (`contested`, `none` in the control columns) are refused by the validator.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import SCENARIOS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim import cli
from sim.recording import CONTROL_LABEL_CONTESTED, CONTROL_LABEL_NONE
from sim.results import load_run, read_result_csv
from sim.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from sim.schema import CONTROL_WORDS
from sim.yaml_source import ScenarioError

TOY = SCENARIOS / "toy_two_towns.yaml"
# Strings that pandas (by default), YAML or a number parser would read as something else.
TRICKY = [
    "NA", "N_A", "N-A", "NaN", "nan", "NAN", "None", "none_", "null", "NULL", "Null", "nil", "NaT", "na",
    "true", "True", "FALSE", "yes", "no", "on", "off", "inf", "Infinity", "e5", "E10", "e-5", "x1e5",
    "n", "y", "T", "F", "NA-1", "_", "A-", "contested_", "none-",
]
identifiers = st.one_of(
    st.sampled_from(TRICKY),
    st.from_regex(r"\A[A-Za-z][A-Za-z0-9_\-]{0,12}\Z"),
).filter(lambda name: name not in CONTROL_WORDS)
labels = st.text(
    # Latin letters, digits, punctuation and symbols (the plots' font has them), and the separators.
    alphabet=st.characters(max_codepoint=0x24F, categories=("L", "N", "P", "S", "Zs"))
    | st.sampled_from(list(',"\'>~;=|')),
    min_size=1,
    max_size=30,
).filter(lambda text: text.strip() == text and text.strip())

FACTIONS, SITES, TRIBES, PATRONS = ("Blue", "Red", "Cells"), (
    "west_town", "east_town", "bridge", "blue_hq", "red_hq",
), ("west", "east"), ("North", "South")
OLD = (*FACTIONS, *SITES, *TRIBES, *PATRONS)


def renamed(value, names: dict):
    """`value` with every key or string equal to an old name replaced by its new name."""
    if isinstance(value, dict):
        return {names.get(k, k) if isinstance(k, str) else k: renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, names) for v in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


def toy_with(new_names: list[str], new_labels: list[str]):
    """The toy scenario with its factions, sites, tribes and patrons renamed and relabelled."""
    base = scenario_to_dict(load_scenario(TOY))
    base.pop("validation", None)
    names = dict(zip(OLD, new_names))
    data = renamed(base, names)
    for section in ("factions", "sites"):
        for entry, label in zip(data[section].values(), new_labels):
            entry["label"] = label
    data["rules"]["clashes"]["p_max"] = 0.5  # clashes and meetings within a few days
    data["rules"]["mediation"]["interval_days"] = 4  # meetings too
    return scenario_from_dict(data), names


def check_round_trip(directory: Path, config, names: dict) -> None:
    run = load_run(directory)
    factions, sites = list(config.factions), list(config.sites)
    assert run.faction_names == factions
    assert [str(s) for s in run.maps["site_names"]] == sites
    assert [str(s) for s in run.maps["site_labels"]] == [s.label for s in config.sites.values()]
    assert [str(s) for s in run.maps["faction_labels"]] == [f.label for f in config.factions.values()]
    ts = run.timeseries
    for site in sites:
        column = ts[f"control.{site}"]
        assert column.notna().all()
        assert set(column) <= {*factions, CONTROL_LABEL_CONTESTED, CONTROL_LABEL_NONE}
    assert f"fighters.{names['Blue']}" in ts and f"defections.{names['Blue']}>{names['Red']}" in ts
    # Every name in the event log reads back as one of the scenario's names, never as missing.
    written = pd.read_csv(directory / "events.csv", dtype=str, keep_default_na=False)
    events = run.events
    for column, allowed in (
        ("side_a", factions), ("side_b", factions), ("from_faction", factions), ("to_faction", factions),
        ("faction", factions), ("winner", factions), ("site", sites),
    ):
        if column in events:
            present = written[column] != ""
            assert events[column][present].tolist() == written[column][present].tolist()
            assert set(events[column][present]) <= set(allowed)
            assert events[column][~present].isna().all()
    meetings = events[events["event"] == "meeting"]
    assert meetings[["side_a", "side_b"]].notna().all().all()


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    new_names=st.lists(identifiers, min_size=len(OLD), max_size=len(OLD), unique=True),
    new_labels=st.lists(labels, min_size=5, max_size=5),
)
@pytest.mark.slow
def test_every_accepted_name_survives_a_run_its_files_and_its_plots(tmp_path_factory, new_names, new_labels):
    config, names = toy_with(new_names, new_labels)
    out = tmp_path_factory.mktemp("names") / "run"
    sim.simulate(config, seed=3, steps=25, replicates=2).save(out, plots=False)
    check_round_trip(out, config, names)
    assert cli.main(["plot", str(out)]) == 0
    assert len(list((out / "plots").glob("*.png"))) == 6
    shutil.rmtree(out)


def test_the_trickiest_names_survive_a_run_and_its_plots(tmp_path, capsys):
    """One run with names pandas reads as missing by default (fast; the property test above draws more)."""
    new_names = ["NA", "null", "NaN", "None", "N-A", "nan", "true", "inf", "e5", "NULL", "yes", "Infinity"]
    new_labels = ['a, "quoted" label', "A > B ~ C", "it's; x=y|z", "NA", "None"]
    config, names = toy_with(new_names, new_labels)
    out = tmp_path / "run"
    sim.simulate(config, seed=3, steps=25, replicates=2).save(out, plots=False)
    check_round_trip(out, config, names)
    events = load_run(out).events
    assert {"NA", "null"} <= set(events["side_a"].dropna()) | set(events["side_b"].dropna())  # drawn from
    assert cli.main(["plot", str(out)]) == 0, capsys.readouterr().err


@given(st.lists(identifiers, min_size=1, max_size=6, unique=True))
def test_text_columns_read_back_exactly(tmp_path_factory, values):
    frame = pd.DataFrame({"step": range(len(values)), "name": values, "x": [1.5] * len(values)})
    frame.loc[0, "x"] = float("nan")
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text(frame.to_csv(index=False))
    back = read_result_csv(path, text_columns={"name"}, expected_rows=len(values))
    assert back["name"].tolist() == values
    assert back["x"].isna().tolist() == [True] + [False] * (len(values) - 1)


def test_names_written_to_yaml_read_back_as_themselves(tmp_path):
    new_names = ["NA", "null", "NaN", "None", "N-A", "nan", "true", "inf", "e5", "NULL", "yes", "Infinity"]
    config, _ = toy_with(new_names, ["a", "b", "c", "d", "e"])
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump(scenario_to_dict(config), sort_keys=False))
    again = load_scenario(path)
    assert list(again.factions) == list(config.factions) and list(again.sites) == list(config.sites)


@pytest.mark.parametrize("word", CONTROL_WORDS)
def test_a_faction_named_like_a_control_word_is_refused(word):
    data = renamed(scenario_to_dict(load_scenario(TOY)), {"Red": word})
    data.pop("validation", None)
    with pytest.raises(ScenarioError, match=f"faction name '{word}' is reserved"):
        scenario_from_dict(data)


def test_the_reserved_words_are_the_ones_the_recorder_writes():
    assert set(CONTROL_WORDS) == {CONTROL_LABEL_CONTESTED, CONTROL_LABEL_NONE}


def test_an_unquoted_null_faction_in_yaml_says_to_quote_it(tmp_path):
    path = tmp_path / "null.yaml"
    path.write_text(f"extends: {TOY}\nfactions:\n  null: {{label: X, initial_fighters: 10}}\n")
    with pytest.raises(ScenarioError, match="quote it"):
        load_scenario(path)


def test_swept_values_read_back_from_design_csv_as_themselves(tmp_path):
    from sim.sweep import load_sweep, start_sweep

    sweep = (
        "sweep={design: grid, replicates: 1, parameters: {factions.Red.label: [NA, None, 'null'],"
        " factions.Red.exempts_conscription: [true, false], factions.Red.salary_usd_month: [120, 200.5]},"
        " outputs: [killed_total]}"
    )
    config = load_scenario(TOY, [sweep])
    directory = start_sweep(
        config, out=tmp_path / "s", root_seed=1, steps=2, scenario_file=str(TOY), overrides=[], executor_name="test"
    )
    _, _, design = load_sweep(directory)
    assert sorted(set(design["factions.Red.label"])) == ["NA", "None", "null"]
    assert [type(v) for v in design["factions.Red.exempts_conscription"]] == [bool] * len(design)
    assert set(design["factions.Red.salary_usd_month"]) == {120, 200.5}


@pytest.mark.parametrize("name", ["compare", "Gallery"])
def test_a_scenario_named_like_a_folder_of_results_is_refused(name):
    # results/<name>/ would mix its runs with the comparisons or the README's figures
    data = scenario_to_dict(load_scenario(TOY))
    data["name"] = name
    with pytest.raises(ScenarioError, match=f"'{name}' is reserved: results/{name.casefold()}/ holds"):
        scenario_from_dict(data)
