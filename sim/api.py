"""The Python entry point for notebooks: load a scenario, run it, get DataFrames.

    import sim
    result = sim.simulate("baseline", seed=1, steps=120, replicates=4,
                          overrides=["factions.NDF.salary_usd_month=200"])
    result.timeseries   # one row per replicate and step, one column per figure
    result.events       # clashes, defections, meetings, ...
    result.save("results/my-try")   # the same files `run.py run` writes, with plots

The command line (`run.py run`) calls exactly this.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from sim.runner import RunResult, default_workers, run_replicates, stack_results
from sim.scenario import load_scenario, resolve_scenario_path
from sim.schema import Scenario


@dataclass
class Simulation:
    """The runs of one scenario (one or several replicates) and how they were made."""

    scenario: Scenario
    results: list[RunResult]
    root_seed: int
    steps: int
    workers: int
    scenario_file: str | None = None
    overrides: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def timeseries(self) -> pd.DataFrame:
        return stack_results(self.results, "timeseries")

    @property
    def events(self) -> pd.DataFrame:
        return stack_results(self.results, "events")

    def save(self, out: str | Path | None = None, plots: bool = True) -> Path:
        """Write the result files (atomically) to `out` or results/<scenario>/<timestamp>/."""
        from sim.results import StagedDirectory, build_manifest, default_output_dir, write_run_files

        final = Path(out) if out is not None else default_output_dir(self.scenario.name)
        staged = StagedDirectory(final)
        try:
            manifest = build_manifest(
                self.scenario,
                self.results,
                scenario_file=self.scenario_file,
                overrides=self.overrides,
                root_seed=self.root_seed,
                steps=self.steps,
                workers=self.workers,
                started=self.started,
                command=sys.argv if sys.argv and sys.argv[0].endswith("run.py") else None,
            )
            write_run_files(staged.path, self.scenario, self.results, manifest)
            if plots:
                from sim.plots import plot_run

                plot_run(staged.path)
            return staged.commit()
        except BaseException:
            staged.discard()
            raise


def simulate(
    scenario: str | Path | Scenario,
    *,
    seed: int | None = None,
    steps: int | None = None,
    replicates: int = 1,
    workers: int | None = 1,
    overrides: list[str] | tuple[str, ...] = (),
) -> Simulation:
    """Run a scenario (a path, a name in scenarios/, or a validated Scenario)."""
    scenario_file = None
    if isinstance(scenario, Scenario):
        if overrides:
            raise ValueError("overrides apply to scenario files; pass a path or change the Scenario")
        config = scenario
    else:
        path = resolve_scenario_path(scenario)
        scenario_file = str(path)
        config = load_scenario(path, list(overrides))
    if replicates < 1:
        raise ValueError("replicates must be >= 1")
    root_seed = config.seed if seed is None else int(seed)
    n_steps = config.steps if steps is None else int(steps)
    n_workers = default_workers() if workers is None else max(1, int(workers))
    started = datetime.now(timezone.utc)
    results = run_replicates(config, root_seed, replicates, n_steps, n_workers)
    return Simulation(
        scenario=config,
        results=results,
        root_seed=root_seed,
        steps=n_steps,
        workers=n_workers,
        scenario_file=scenario_file,
        overrides=list(overrides),
        started=started,
    )
