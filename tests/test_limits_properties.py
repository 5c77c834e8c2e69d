"""Property: any document the validator accepts runs a few steps with finite outputs; outside the bounds, exit 2.

Documents start from the toy scenario; every rule parameter, and the money, population and
force figures, is drawn anywhere within its schema bounds, with the bounds themselves drawn
often (hypothesis favours edges), plus a random count of extra militias. The grid stays small
so a run of three steps takes well under a second.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.runner import run_model
from sim.scenario import load_scenario, scenario_from_dict, scenario_to_dict
from sim.schema import Rules
from sim.yaml_source import ScenarioError

TOY = "toy_two_towns"


def _bounds(field) -> tuple[float | None, float | None, bool, bool]:
    low = high = None
    open_low = open_high = False
    for item in field.metadata:
        if getattr(item, "ge", None) is not None:
            low = item.ge
        if getattr(item, "gt", None) is not None:
            low, open_low = item.gt, True
        if getattr(item, "le", None) is not None:
            high = item.le
        if getattr(item, "lt", None) is not None:
            high, open_high = item.lt, True
    return low, high, open_low, open_high


def _value(field) -> st.SearchStrategy:
    """Any value of a numeric field within its schema bounds, edges included."""
    low, high, open_low, open_high = _bounds(field)
    if isinstance(field.default, int) and not isinstance(field.default, bool):
        return st.integers(int(low) + open_low, int(high) - open_high)
    edges = [v for v, is_open in ((low, open_low), (high, open_high)) if not is_open]
    inner = st.floats(low, high, exclude_min=open_low, exclude_max=open_high, allow_nan=False)
    return st.one_of(st.sampled_from(edges), inner) if edges else inner


RULE_FIELDS = [
    (section, name, field)
    for section, model in Rules.model_fields.items()
    for name, field in model.annotation.model_fields.items()
    if isinstance(field.default, (int, float)) and not isinstance(field.default, bool)
]

OTHER_FIELDS = {  # key path in the toy -> (section model, field name)
    ("sites", "west_town", "population"): ("Site", "population"),
    ("sites", "bridge", "revenue_usd_day"): ("Site", "revenue_usd_day"),
    ("factions", "Blue", "salary_usd_month"): ("Faction", "salary_usd_month"),
    ("factions", "Blue", "initial_budget_usd"): ("Faction", "initial_budget_usd"),
    ("factions", "Red", "initial_outsiders"): ("Faction", "initial_outsiders"),
    ("factions", "Cells", "initial_fighters"): ("Faction", "initial_fighters"),
    ("patrons", "North", "funding_usd_day"): ("Patron", "funding_usd_day"),
    ("patrons", "South", "topup_per_loss"): ("Patron", "topup_per_loss"),
}


def _field(model_name: str, name: str):
    import sim.schema as schema

    return getattr(schema, model_name).model_fields[name]


@st.composite
def documents(draw) -> dict:
    data = scenario_to_dict(load_scenario(TOY))
    for key in ("validation", "sweep", "calibration", "robustness"):
        data[key] = None
    for section, name, field in RULE_FIELDS:
        if draw(st.booleans()):
            data["rules"][section][name] = draw(_value(field))
    for path, (model_name, name) in OTHER_FIELDS.items():
        if draw(st.booleans()):
            field = _field(model_name, name)
            value = draw(_value(field))
            if name in ("population", "initial_outsiders", "initial_fighters"):
                value = min(value, 200_000)  # counts kept small enough for a quick run
            data[path[0]][path[1]][path[2]] = value
    for i in range(draw(st.integers(0, 3))):
        data["factions"][f"Extra{i}"] = {"label": f"Extra {i}", "initial_outsiders": draw(st.integers(0, 50))}
    data["grid"]["width"] = draw(st.integers(20, 40))
    data["grid"]["height"] = draw(st.integers(8, 16))
    return data


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(documents())
def test_every_accepted_document_runs_with_finite_outputs(data):
    try:
        config = scenario_from_dict(data)
    except ScenarioError as error:  # refused is fine (e.g. a combination a cross-check rules out) ...
        assert all(str(p) for p in error.problems)  # ... as long as it says why
        return
    result = run_model(config, seed=11, steps=3)
    numbers = result.timeseries.select_dtypes("number").to_numpy(dtype=float)
    assert np.isfinite(numbers).all()
    assert len(result.timeseries) == 4


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.sampled_from(RULE_FIELDS),
    st.sampled_from(["above", "below"]),
    st.floats(1e-6, 1e300, allow_nan=False),
)
def test_values_past_a_bound_are_refused(field_spec, side, excess):
    section, name, field = field_spec
    low, high, _, _ = _bounds(field)
    bound = high if side == "above" else low
    value = bound + excess * max(abs(bound), 1.0) if side == "above" else bound - excess * max(abs(bound), 1.0)
    if isinstance(field.default, int):
        value = int(math.floor(value)) if side == "below" else int(math.ceil(value))
        if value == bound:
            value += 1 if side == "above" else -1
    data = scenario_to_dict(load_scenario(TOY))
    data["rules"][section][name] = value
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(data)
    assert f"rules.{section}.{name}" in str(caught.value)
