"""Shared fixtures."""

from __future__ import annotations

import pytest
from helpers import SCENARIOS

from sim.scenario import load_scenario


@pytest.fixture(scope="session")
def baseline():
    return load_scenario(SCENARIOS / "baseline.yaml")
