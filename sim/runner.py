"""Run models: `run_model` runs one; replicates (and, later, sweeps) map it over seeds.

`run_model` is the one function that runs a model. A single run, a set of replicates on
worker processes, and a sweep all call it, so they cannot drift apart, and a run's numbers
do not depend on where it ran: each run's randomness comes only from its own seed.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sim.model import CorridorModel, release_model
from sim.schema import Scenario
from sim.seeding import replicate_seeds

SNAPSHOT_LABELS = ("start", "middle", "end")


@dataclass
class RunResult:
    """Everything one run records, ready to be written or analysed."""

    replicate: int
    seed: int
    timeseries: pd.DataFrame  # one row per step (0 = initial state), one column per figure
    events: pd.DataFrame  # one row per event: step, event, and its fields
    influence: np.ndarray  # (3, F, H, W) float32 snapshots at start, middle, end
    control: np.ndarray  # (3, H, W) int16 snapshots
    snapshot_steps: np.ndarray  # (3,) the steps of the snapshots
    clash_cells: np.ndarray  # (n, 3) step, row, col of every clash
    elapsed_s: float = 0.0
    meta: dict = field(default_factory=dict)


def run_model(config: Scenario, seed: int, steps: int | None = None, replicate: int = 0, on_step=None) -> RunResult:
    """Build one model from a validated scenario and seed, run it, and return what it recorded.

    `on_step()` (optional) is called after each step, e.g. to advance a progress bar; it
    cannot change the run.
    """
    started = time.perf_counter()
    steps = config.steps if steps is None else int(steps)
    model = CorridorModel(config, seed=seed)
    snapshot_at = sorted({0, steps // 2, steps})
    influence, control = [], []

    def snapshot() -> None:
        influence.append(model.influence.astype(np.float32))
        control.append(model.control.astype(np.int16))

    snapshot()
    for step in range(1, steps + 1):
        model.step()
        if on_step is not None:
            on_step()
        if step in snapshot_at[1:]:
            snapshot()
    while len(influence) < 3:  # steps < 2: repeat the last state so arrays keep their shape
        snapshot()
        snapshot_at.append(snapshot_at[-1])

    timeseries = model.datacollector.get_model_vars_dataframe()
    timeseries.index.name = "step"
    timeseries = timeseries.reset_index()
    events = pd.DataFrame(model.events)
    if events.empty:
        events = pd.DataFrame(columns=["step", "event"])
    else:  # counts stay whole numbers in CSV even where a column has gaps
        for column in events.columns:
            if pd.api.types.is_float_dtype(events[column]) and (events[column].dropna() % 1 == 0).all():
                events[column] = events[column].astype("Int64")
    clash_cells = np.array(model.recent_clash_cells, dtype=np.int64).reshape(-1, 3)
    meta = {"first_control_change": dict(model.first_control_change)}
    release_model(model)
    return RunResult(
        replicate=replicate,
        seed=int(seed),
        timeseries=timeseries,
        events=events,
        influence=np.stack(influence[:3]),
        control=np.stack(control[:3]),
        snapshot_steps=np.array(snapshot_at[:3], dtype=np.int64),
        clash_cells=clash_cells,
        elapsed_s=time.perf_counter() - started,
        meta=meta,
    )


def stack_results(results: list[RunResult], table: str) -> pd.DataFrame:
    """One table ('timeseries' or 'events') of several runs, led by replicate and seed columns."""
    frames = [getattr(r, table).assign(replicate=r.replicate, seed=r.seed) for r in results]
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[["replicate", "seed", *[c for c in stacked.columns if c not in ("replicate", "seed")]]]


def _run_replicate(args: tuple) -> RunResult:
    config, seed, steps, replicate = args
    return run_model(config, seed, steps, replicate)


def process_context():
    """Start worker processes with forkserver (spawn where unavailable), not fork.

    Forking a process that runs threads (pandas, BLAS, a progress bar) can deadlock the child;
    Python 3.12+ warns about it and 3.14 no longer forks by default.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def show_progress() -> bool:
    """Progress bars only on an interactive terminal; batch jobs and CI stay quiet."""
    return sys.stderr.isatty()


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_replicates(
    config: Scenario,
    root_seed: int,
    n_replicates: int,
    steps: int | None = None,
    workers: int = 1,
    on_result=None,
) -> list[RunResult]:
    """Run replicates 0..n-1 (serially or on worker processes); results sorted by replicate.

    `on_result(result)` is called as each run finishes (e.g. to write it to disk), so a
    caller can stream results instead of waiting for all of them.
    """
    seeds = replicate_seeds(root_seed, n_replicates)
    jobs = [(config, seeds[k], steps, k) for k in range(n_replicates)]
    results: list[RunResult] = []
    if n_replicates == 1:  # one run: show its steps instead of a bar of one
        n_steps = config.steps if steps is None else steps
        with tqdm(total=n_steps, desc=config.name, unit="step", disable=not show_progress()) as bar:
            result = run_model(config, seeds[0], steps, 0, on_step=bar.update)
        if on_result:
            on_result(result)
        return [result]
    bar = tqdm(total=n_replicates, desc=config.name, unit="run", disable=not show_progress())
    if workers <= 1:
        for job in jobs:
            result = _run_replicate(job)
            results.append(result)
            if on_result:
                on_result(result)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
            futures = [pool.submit(_run_replicate, job) for job in jobs]
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                if on_result:
                    on_result(result)
                bar.update()
    bar.close()
    return sorted(results, key=lambda r: r.replicate)
