"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

from sim.scenario import load_scenario

PROJECT = Path(__file__).resolve().parent.parent
SCENARIOS = PROJECT / "scenarios"


def scenario(*overrides: str, name: str = "baseline"):
    """The named scenario with `key.path=value` overrides (as on the command line)."""
    return load_scenario(SCENARIOS / f"{name}.yaml", list(overrides))
