"""Agent-based simulation of territorial influence among armed factions (Mesa 3).

Data flow, one module each: scenario YAML (`yaml_source`) -> validated config (`schema`,
`scenario`) -> world state and processes (`world`, `processes`, `geography`) run by the
model (`model`, `agents`) -> recorded data (`recording`, `runner`) -> result files
(`results`) -> plots (`plots`). Many runs go through `executors` (serial, processes or
Dask) with seeds from `seeding`. `api.simulate` is the notebook entry point; `cli` is the
command line behind `run.py`.
"""

from sim.api import Simulation, simulate
from sim.scenario import load_scenario, scenario_from_dict
from sim.yaml_source import ScenarioError

__all__ = ["Simulation", "ScenarioError", "load_scenario", "scenario_from_dict", "simulate"]
