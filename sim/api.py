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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.executors import Backend, default_workers, make_backend
from sim.runner import RunResult, run_length, run_replicates, stack_results
from sim.scenario import load_scenario, resolve_scenario_path
from sim.schema import Scenario

if TYPE_CHECKING:
    import pandas as pd  # only where tables are made: a run and the command line need no pandas


@dataclass
class Simulation:
    """The runs of one scenario (one or several replicates) and how they were made."""

    scenario: Scenario
    results: list[RunResult]
    root_seed: int
    steps: int
    workers: int
    scenario_file: str | None = None
    executor: str = "serial"  # where the runs ran: serial, processes:N or dask:ADDRESS
    overrides: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    posterior: dict | None = None  # the posterior ensemble's record (`PosteriorDraws.manifest`), if any

    @property
    def timeseries(self) -> pd.DataFrame:
        """Every replicate's timeseries stacked: one row per replicate and step, led by `replicate` and `seed`.

        Step 0 is the initial state; then one column per recorded figure (`sim.recording`).
        Built anew on each access.
        """
        return stack_results(self.results, "timeseries")

    @property
    def events(self) -> pd.DataFrame:
        """Every replicate's events stacked: one row per event, led by `replicate` and `seed`, then step and event.

        Built anew on each access.
        """
        return stack_results(self.results, "events")

    def save(self, out: str | Path | None = None, plots: bool = True) -> Path:
        """Write the result files (atomically) to `out` or a new results/<scenario>/<timestamp>/; returns it.

        The directory is claimed while it is written (`sim.results.claim_output_dir`: another
        job writing there is refused), then appears whole (written in a hidden staging
        directory, then renamed).

        Raises:
            OutputError: `out` is not writable, exists and is not empty, or is in use by another job.
        """
        from sim.results import build_manifest, claim_output_dir, write_run_files, write_staged

        def fill(path: Path) -> None:
            manifest = build_manifest(
                self.scenario,
                self.results,
                scenario_file=self.scenario_file,
                overrides=self.overrides,
                root_seed=self.root_seed,
                steps=self.steps,
                workers=self.workers,
                executor=self.executor,
                started=self.started,
                command=sys.argv if sys.argv and sys.argv[0].endswith("run.py") else None,
                posterior=self.posterior,
            )
            write_run_files(path, self.scenario, self.results, manifest)
            if plots:
                from sim.plots import plot_run

                plot_run(path)

        with claim_output_dir(Path(out) if out is not None else None, scenario=self.scenario.name) as claim:
            return write_staged(claim.directory, fill)


def _resolve(scenario: str | Path | Scenario, overrides, scenario_file: str | None) -> tuple[str | None, Scenario]:
    """(scenario file or None, validated scenario) of what `simulate` was given."""
    if isinstance(scenario, Scenario):
        if overrides and scenario_file is None:
            raise ValueError("overrides apply to scenario files; pass a path or change the Scenario")
        return scenario_file, scenario
    if scenario_file is not None:
        raise ValueError("scenario_file goes with a Scenario loaded from it, not with a path or a name")
    path = resolve_scenario_path(scenario)
    return str(path), load_scenario(path, list(overrides))


def simulate(
    scenario: str | Path | Scenario,
    *,
    seed: int | None = None,
    steps: int | None = None,
    replicates: int = 1,
    workers: int | None = 1,
    overrides: list[str] | tuple[str, ...] = (),
    dask: str | None = None,
    backend: Backend | None = None,
    posterior: str | Path | None = None,
    scenario_file: str | None = None,
) -> Simulation:
    """Run a scenario (a path, a name in scenarios/, or a validated Scenario).

    Args:
        scenario: a scenario file, a name in scenarios/, or a validated `Scenario`.
        seed: the run's seed, or the root seed of the replicates (default: the scenario's).
        steps: days per run (default: the scenario's).
        replicates: runs, with seeds `sim.seeding.replicate_seeds(seed, replicates)`.
        workers: local worker processes, or LocalCluster workers with `dask="local"`
            (None: `sim.executors.default_workers()`).
        overrides: `key=value` strings applied to a scenario file (not to a `Scenario`).
        dask: None, "local" or a Dask scheduler address (`sim.executors.make_backend`).
        backend: a backend made beforehand (instead of workers/dask); closed at the end.
        posterior: a calibration's posterior.csv (or its directory): replicate k runs with
            draw k mod N instead of the scenario's values (`sim.posterior`), recorded in the
            manifest.
        scenario_file: with a `Scenario` loaded from a file (`sim.scenario.load_scenario(path,
            overrides)`): that file, recorded in the manifest with `overrides` as if the path had
            been given (the command line loads the scenario once, to refuse bad input early).

    Returns:
        The `Simulation`; its numbers are the same whatever workers or backend ran it.

    Raises:
        ScenarioError: bad scenario or overrides. ExecutorError: the Dask scheduler cannot
        be reached. PosteriorError: an unusable posterior file. ValueError: replicates not a whole
        number >= 1, steps outside 1..100,000 days or not whole (`sim.runner.run_length`),
        or overrides with a `Scenario` and no `scenario_file`.
    """
    try:
        scenario_file, config = _resolve(scenario, overrides, scenario_file)
        if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
            raise ValueError(f"replicates must be a whole number >= 1, got {replicates!r}")
        steps = run_length(config, steps)  # before any worker starts: ValueError for 5.5, 0 or -5 days
        configs, record = None, None
        if posterior is not None:
            from sim.posterior import ensemble_configs, load_posterior

            draws = load_posterior(posterior, config, overrides)
            configs = ensemble_configs(config, draws, replicates)
            record = draws.manifest(replicates)
    except BaseException:
        if backend is not None:
            backend.close()
        raise
    root_seed = config.seed if seed is None else int(seed)
    n_steps = config.steps if steps is None else int(steps)
    n_workers = default_workers() if workers is None else max(1, int(workers))
    started = datetime.now(UTC)
    if backend is None and (dask or (replicates > 1 and n_workers > 1)):
        backend = make_backend(n_workers, dask)
    executor = "serial"
    if backend is not None:
        executor, n_workers = backend.label, backend.workers
    results = run_replicates(config, root_seed, replicates, n_steps, backend=backend, configs=configs)
    return Simulation(
        scenario=config,
        results=results,
        root_seed=root_seed,
        steps=n_steps,
        workers=n_workers,
        executor=executor,
        scenario_file=scenario_file,
        overrides=list(overrides),
        started=started,
        posterior=record,
    )
