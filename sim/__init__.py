"""Agent-based simulation of territorial influence among armed factions (Mesa 3).

Data flow, one module each: scenario YAML (`yaml_source`) -> validated config (`schema`,
`scenario`) -> world state and processes (`world`, `processes`, `geography`) run by the
model (`model`, `agents`) -> recorded data (`recording`, `runner`) -> result files
(`results`) -> plots (`plots`). Many runs go through `executors` (serial, processes or
Dask) with seeds from `seeding`. `api.simulate` is the notebook entry point,
`comparison.compare` puts scenarios side by side; `cli` is the command line behind `run.py`.
"""

from sim.api import Simulation, simulate
from sim.scenario import load_scenario, scenario_from_dict
from sim.yaml_source import ScenarioError

__all__ = ["Comparison", "Simulation", "ScenarioError", "compare", "load_scenario", "scenario_from_dict", "simulate"]


def __getattr__(name: str):
    """`sim.compare` and `sim.Comparison`, imported on first use (they need scipy: `import sim` stays quick)."""
    if name in ("compare", "Comparison"):
        from sim import comparison

        return getattr(comparison, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
