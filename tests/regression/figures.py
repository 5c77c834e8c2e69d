"""Summary figures of a few short runs, pinned in `tests/regression/pinned.json`.

The pinned file is the model's regression baseline: `tests/test_regression.py` checks that
every figure is reproduced exactly, so a refactoring that changes a draw, its order or an
arithmetic step shows up at once. It changes only on purpose, through
`make regression-update` (`python -m tests.regression.update`), which prints what changed.
The same idea as Starsim's `baseline.yaml` and `update_baseline.py`.

Runs: every variant scenario at one seed, the four main ones at two seeds, and two "stress"
runs whose overrides push rarely taken paths (frequent looting, contested revenue, agreements
and partitions, insurgent attacks, courting, a closed supply route) so that a change to any
rule's draws or arithmetic is likely to move a figure.

Figures per run (scenario x seed x STEPS days): fighters and territory at the end per
faction, killed and wounded per militia, defections by direction, desertions and joins,
clashes, meetings by outcome, lootings, new headquarters, insurgent peak and attacks,
control of every named site at the end, final budgets, tension and leaders' alignment,
and a digest of the whole event log (every clash, meeting and defection, in order).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from sim.runner import run_model
from sim.scenario import load_scenario, resolve_scenario_path

PINNED = Path(__file__).with_name("pinned.json")
SCENARIOS = ("baseline", "patrons_agree", "tribes_courted_by_irgc", "toy_two_towns")
SEEDS = (1, 20191101)
VARIANTS = ("isis_resurgence", "ndf_exemption", "salary_parity", "supply_route_closed")
STRESS = (
    "rules.economy.p_looting=0.3",
    "rules.economy.contested_revenue_share=0.5",
    "rules.mediation.p_success_base=0.6",
    "rules.mediation.tension_threshold=0.3",
    "rules.insurgency.attack_rate=0.05",
    "rules.deployment.max_new_headquarters=6",
    "rules.recruitment.p_reconsider=0.02",
    "rules.strategy.review_days=7",
    "rules.strategy.max_salary_change=0.3",
    "rules.clashes.detachment_share=0.8",
    "rules.deployment.speed_cells_per_day=2",
    "rules.insurgency.growth_per_casualty=0.5",
    "rules.tribal.anchor_per_day=0",
)
STRESS_BASELINE = (
    *STRESS,
    "factions.NDF.spending.courting_usd_day=2000",
    "patrons.Iran.supply_open=false",
    "patrons.Russia.topup_max_share=3",
)
# label -> (scenario, seed, overrides); a label is "scenario/seed" or "scenario+stress/seed".
RUNS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    **{f"{s}/{seed}": (s, seed, ()) for s in SCENARIOS for seed in SEEDS},
    **{f"{s}/3": (s, 3, ()) for s in VARIANTS},
    "baseline+stress/7": ("baseline", 7, STRESS_BASELINE),
    "toy_two_towns+stress/7": ("toy_two_towns", 7, STRESS),
}
STEPS = 120
# Columns that are a state (kept at the final step); all other per-step columns are counts (summed).
STATE_FIGURES = (
    "fighters",
    "territory",
    "budget",
    "arrears",
    "tension",
    "calm",
    "alignment",
    "wounded_now",
    "salary",
    "salary_offered",
    "hiring",
)


def _number(value) -> float | int | str:
    """JSON-safe exact number: ints stay ints, floats keep every bit (repr round-trips)."""
    if isinstance(value, (np.integer, int)):
        return int(value)
    value = float(value)
    return value if np.isfinite(value) else repr(value)


def run_figures(
    scenario: str, seed: int, steps: int = STEPS, overrides: tuple[str, ...] = ()
) -> dict[str, float | int | str]:
    """The pinned figures of one run: a flat {name: number or label} mapping."""
    config = load_scenario(resolve_scenario_path(scenario), list(overrides))
    result = run_model(config, seed, steps)
    ts, events = result.timeseries, result.events
    last = ts.iloc[-1]
    out: dict[str, float | int | str] = {}
    for column in ts.columns:
        if column == "step":
            continue
        head = column.split(".", 1)[0]
        if head in STATE_FIGURES:
            out[f"final.{column}"] = _number(last[column])
        elif head == "control":
            out[f"final.{column}"] = str(last[column])
        elif head == "insurgent_cells":
            out["peak.insurgent_cells"] = _number(ts[column].max())
            out["final.insurgent_cells"] = _number(last[column])
        else:  # per-step counts: killed, wounded, defections, joined, desertions and the daily tallies
            out[f"total.{column}"] = _number(ts[column].sum())
    log = events.to_csv(index=False, float_format="%.17g").encode()
    out["events.count"] = len(events)
    out["events.sha256"] = hashlib.sha256(log).hexdigest()
    return dict(sorted(out.items()))


def all_figures() -> dict[str, dict]:
    """Figures of every pinned run, keyed by its label (see RUNS)."""
    return {label: run_figures(s, seed, STEPS, overrides) for label, (s, seed, overrides) in RUNS.items()}


def load_pinned() -> dict:
    return json.loads(PINNED.read_text())


def differences(old: dict, new: dict) -> list[str]:
    """One line per figure that differs (added, removed or changed), sorted; every figure exactly.

    Exactly on every x86-64 CPU: the model takes exp, log and pow from the C library, not
    from numpy, whose own SIMD versions on CPUs with AVX-512 moved the leaders' alignment by
    up to 17 units in the last place (`sim.compiled`).
    """
    lines = []
    for run in sorted(set(old) | set(new)):
        a, b = old.get(run, {}), new.get(run, {})
        for key in sorted(set(a) | set(b)):
            if key not in a:
                lines.append(f"{run}: {key} added = {b[key]!r}")
            elif key not in b:
                lines.append(f"{run}: {key} removed (was {a[key]!r})")
            elif a[key] != b[key]:
                lines.append(f"{run}: {key} {a[key]!r} -> {b[key]!r}")
    return lines
