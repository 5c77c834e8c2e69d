"""Agent-based simulation of territorial influence among armed factions (Mesa 3).

Data flow, one module each: scenario YAML (`yaml_source`) -> validated config (`schema`,
`scenario`) -> world state and processes (`world`, `processes`, `geography`) run by the
model (`model`, `agents`) -> recorded data (`recording`, `runner`) -> result files
(`results`) -> plots (`plots`). Many runs go through `executors` (serial, processes or
Dask) with seeds from `seeding`. `api.simulate` is the notebook entry point,
`comparison.compare` puts scenarios side by side; `cli` is the command line behind `run.py`.

The public names below are imported on first use (PEP 562), so `import sim` and
`python run.py --help` load neither numpy, pandas, Mesa, scipy, matplotlib nor pydantic;
`sim.simulate`, `from sim import Simulation` and the rest work as if imported here.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

# Public name -> the module that defines it (imported when the name is first used).
_PUBLIC = {
    "Comparison": "sim.comparison",
    "Simulation": "sim.api",
    "ScenarioError": "sim.yaml_source",
    "compare": "sim.comparison",
    "load_scenario": "sim.scenario",
    "scenario_from_dict": "sim.scenario",
    "simulate": "sim.api",
}

__all__ = ["Comparison", "ScenarioError", "Simulation", "compare", "load_scenario", "scenario_from_dict", "simulate"]

if TYPE_CHECKING:  # for type checkers and editors; at run time `__getattr__` below imports them
    from sim.api import Simulation, simulate
    from sim.comparison import Comparison, compare
    from sim.scenario import load_scenario, scenario_from_dict
    from sim.yaml_source import ScenarioError


def __getattr__(name: str):
    """A public name (`sim.simulate`, ...) from its module, imported on first use and kept in `sim`.

    Raises:
        AttributeError: `name` is neither public here nor a submodule already imported.
    """
    if name not in _PUBLIC:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """The public names, the submodules imported so far and the module's own dunders (for completion)."""
    loaded = {name for name, value in globals().items() if isinstance(value, ModuleType) or name.startswith("__")}
    return sorted(loaded | set(_PUBLIC))
