"""Shared fixtures."""

from __future__ import annotations

import pytest
from helpers import SCENARIOS
from hypothesis import settings

from sim.scenario import load_scenario


@pytest.fixture(scope="session")
def baseline():
    return load_scenario(SCENARIOS / "baseline.yaml")


# Property tests draw their examples from a fixed seed (derandomize) and keep no example
# database, so a run of the suite is the same on every machine and in CI; no deadline,
# since a loaded machine must not turn a slow example into a failure.
settings.register_profile("project", derandomize=True, database=None, deadline=None)
settings.load_profile("project")
