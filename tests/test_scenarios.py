"""Every shipped scenario validates, runs, and cites a source for every parameter."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from helpers import PROJECT, SCENARIOS

from sim.runner import run_model
from sim.scenario import load_scenario, scenario_to_dict

SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))
ARTICLE = PROJECT / "seeds" / "000_dccaa807170f28f0.txt"
FACTS = PROJECT / "seeds" / "provenance.yaml"
# Labels and free text need no source; everything else does.
# Not model parameters: names, the designs of commands, and the validation section (each
# pattern argues its own cut-offs and cites the article in its description).
UNCITED_LEAVES = {"name", "description", "label", "provenance", "sweep", "calibration", "validation", "robustness"}


def leaf_paths(data, prefix=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaf_paths(value, (*prefix, str(key)))
    elif isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        for i, value in enumerate(data):
            yield from leaf_paths(value, (*prefix, str(i)))
    else:
        yield prefix


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenario_validates_and_runs(path):
    config = load_scenario(path)
    result = run_model(config, seed=1, steps=5)
    assert len(result.timeseries) == 6
    assert np.isfinite(result.timeseries.select_dtypes("number").to_numpy()).all()


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_parameter_has_a_source(path):
    config = load_scenario(path)
    resolved = scenario_to_dict(config)
    cited = set(config.provenance)
    missing = []
    for leaf in leaf_paths(resolved):
        if not leaf or leaf[0] in UNCITED_LEAVES or leaf[-1] in UNCITED_LEAVES:
            continue
        prefixes = {".".join(leaf[:i]) for i in range(1, len(leaf) + 1)}
        if not prefixes & cited:
            missing.append(".".join(leaf))
    assert not missing, f"{path.name}: no provenance for {missing[:10]}"


def test_variants_differ_from_the_baseline_only_where_they_say():
    base = scenario_to_dict(load_scenario(SCENARIOS / "baseline.yaml"))
    for path in SCENARIO_FILES:
        raw = yaml.safe_load(path.read_text())
        if raw.get("extends") != "baseline.yaml":
            continue
        variant = scenario_to_dict(load_scenario(path))
        changed = {k for k in base if base[k] != variant[k]} - {"name", "description", "provenance"}
        declared = set(raw) - {"extends", "name", "description", "provenance"}
        assert changed <= declared, f"{path.name} changes {changed - declared} without saying so"
        assert changed, f"{path.name} changes nothing"


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_article_facts_quote_the_article_and_feed_existing_keys():
    article = _collapse(ARTICLE.read_text(encoding="utf-8"))
    facts = yaml.safe_load(FACTS.read_text(encoding="utf-8"))["facts"]
    ids = [f["id"] for f in facts]
    assert len(ids) == len(set(ids))
    base = scenario_to_dict(load_scenario(SCENARIOS / "baseline.yaml"))
    for fact in facts:
        assert _collapse(fact["quote_ar"]) in article, fact["id"]
        assert 1 <= fact["paragraph"] <= 13
        for key in fact["feeds"]:
            node = base
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{fact['id']} feeds missing key {key}"
                node = node[part]


def test_baseline_cites_only_facts_that_exist():
    facts = {f["id"]: f for f in yaml.safe_load(FACTS.read_text(encoding="utf-8"))["facts"]}
    baseline = load_scenario(SCENARIOS / "baseline.yaml")
    for key, source in baseline.provenance.items():
        for fact_id in re.findall(r"\bF\d\d\b", source):
            assert fact_id in facts, f"{key} cites unknown fact {fact_id}"
        for paragraph in re.findall(r"§(\d+)", source):
            assert 1 <= int(paragraph) <= 13


def test_article_copy_is_the_shared_original():
    shared = PROJECT.parent / "shared" / "seeds" / ARTICLE.name
    if not shared.exists():
        pytest.skip(
            f"the source article's original is not at {shared} (it is kept outside the repository, beside the "
            "checkout): only the check that seeds/ holds an unchanged copy is skipped; the copy in seeds/ serves "
            "every other test"
        )
    assert ARTICLE.read_bytes() == shared.read_bytes()


@pytest.mark.parametrize("given", ["'2019-13-01'", "'1 Nov 2019'", "5", "true"])
def test_a_start_date_that_is_no_iso_date_says_so_once(given):
    """One line: the key, what is expected, and the value given, each once."""
    from sim.yaml_source import ScenarioError

    with pytest.raises(ScenarioError) as info:
        load_scenario(SCENARIOS / "toy_two_towns.yaml", [f"start_date={given}"])
    (problem,) = info.value.problems
    shown = yaml.safe_load(given)
    assert str(problem) == f"--set: start_date: must be an ISO date such as 2019-11-01 (got {shown!r})"


def test_a_file_that_extends_another_and_sets_no_name_is_named_by_its_file(tmp_path, capsys):
    # It took the parent's name: results/toy_two_towns/..., "Scenario 'toy_two_towns'" in every
    # footer, for a scenario that changed salaries.
    from sim.cli import main

    child = tmp_path / "red_pay.yaml"
    child.write_text(f"extends: {SCENARIOS / 'toy_two_towns.yaml'}\nfactions:\n  Red: {{salary_usd_month: 150}}\n")
    config = load_scenario(child)
    assert config.name == "red_pay" and config.factions["Red"].salary_usd_month == 150
    grandchild = tmp_path / "red_pay_later.yaml"
    grandchild.write_text("extends: red_pay.yaml\nstart_date: '2020-01-01'\n")
    assert load_scenario(grandchild).name == "red_pay_later"
    named = tmp_path / "other.yaml"
    named.write_text("extends: red_pay.yaml\nname: chosen\n")
    assert load_scenario(named).name == "chosen"  # a name given is kept
    assert load_scenario(SCENARIOS / "toy_two_towns.yaml").name == "toy_two_towns"  # no extends: its own name
    spaced = tmp_path / "red pay, v2.yaml"
    spaced.write_text(child.read_text())
    assert load_scenario(spaced).name == "red_pay_v2"  # what a name cannot hold becomes '_'
    bad = tmp_path / "2020 pay.yaml"
    bad.write_text(child.read_text())
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"{bad}:1: extends: this file sets no `name:` and its file name '2020 pay' does not make a scenario name "
        "(a letter, then letters, digits, '_' or '-', at most 64): add `name:`\n"
    )
