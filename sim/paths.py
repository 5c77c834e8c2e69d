"""Where the project's files are: the project directory, its `scenarios/`, the default scenario.

Kept apart from `sim.scenario` (which needs pydantic and the schema) so that the command
line can name them while it builds its parser, before any heavy import.
"""

from __future__ import annotations

from pathlib import Path


def find_project_dir() -> Path:
    """The project directory: the checkout `sim/` sits in, else the current directory.

    In a checkout (or an editable install) scenarios and results live beside `sim/`. After a
    normal `pip install`, `sim/` sits in site-packages, which is no place for results: the
    directory the command runs in takes the checkout's role (its `scenarios/` and `results/`).
    """
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "scenarios").is_dir():
        return checkout
    return Path.cwd()


PROJECT_DIR = find_project_dir()
SCENARIO_DIR = PROJECT_DIR / "scenarios"
# The scenario a command runs when none is named (explore, compare-variants, the docs'
# parameter tables): the one place sim/ names a scenario.
DEFAULT_SCENARIO = "baseline"
