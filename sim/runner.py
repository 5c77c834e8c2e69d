"""Run models: `run_model` runs one; `run_replicates` maps it over replicate seeds.

`run_model` is the one function that runs a model. A single run, a set of replicates, a
validation, a calibration and a sweep all call it, so they cannot drift apart; the many-run
commands map it with `sim.executors` (serial, worker processes or Dask), and a run's numbers
do not depend on where it ran: each run's randomness comes only from its own seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from sim.engine import Engine
from sim.executors import Backend, make_backend, progress_bar
from sim.geography import site_cell
from sim.interrupts import raise_pending
from sim.limits import check_memory
from sim.recording import Recorder
from sim.schema import Scenario
from sim.seeding import replicate_seeds

if TYPE_CHECKING:
    import pandas as pd  # imported where tables are made: a run, and the command line, need no pandas

SNAPSHOT_LABELS = ("start", "middle", "end")


@dataclass
class RunResult:
    """Everything one run records, ready to be written or analysed."""

    replicate: int
    seed: int
    recorded: Recorder  # what the model recorded each step (`timeseries` is its table)
    event_records: list[dict]  # one dict per event: step, event, and its fields (`events` is their table)
    influence: np.ndarray  # (3, F, H, W) float32 snapshots at start, middle, end
    control: np.ndarray  # (3, H, W) int16 snapshots
    snapshot_steps: np.ndarray  # (3,) the steps of the snapshots
    clash_cells: np.ndarray  # (n, 3) step, row, col of every clash
    elapsed_s: float = 0.0
    meta: dict = field(default_factory=dict)
    _timeseries: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)
    _events: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def timeseries(self) -> pd.DataFrame:
        """The run's timeseries: one row per step (0 = the initial state), `step` then one column per figure.

        Built on first use from what the model recorded, like `events`: a sweep's outcomes
        read a few columns (`table`), and making the whole table was most of what a sweep
        did per run around its model.
        """
        if self._timeseries is None:
            self._timeseries = self.recorded.get_model_vars_dataframe(step_column="step")
        return self._timeseries

    def table(self, columns: Sequence[str] | None = None) -> pd.DataFrame | dict[str, np.ndarray]:
        """The timeseries (a DataFrame), or `step` and the given columns as read-only arrays.

        `columns`: names, or prefixes ending in "." (`Recorder.arrays`); None gives
        `timeseries`. For `sim.outcomes.compute_outcomes`, which asks for what its outcomes
        read (`sim.outcomes.columns_read`).
        """
        return self.timeseries if columns is None else self.recorded.arrays(columns)

    @property
    def events(self) -> pd.DataFrame:
        """The event log as a table, one row per event: step, event, and its fields (built on first use).

        Built when first asked for, not by every run: a sweep whose outcomes read only the
        timeseries never needs it, and building it (pandas' inference over a year's events)
        cost more than the rest of a run's bookkeeping. Columns that hold whole numbers with
        gaps are Int64, so counts stay whole numbers in CSV.
        """
        if self._events is None:
            self._events = events_table(self.event_records)
        return self._events

    def __getstate__(self) -> dict:
        # The tables are made again where they are needed: a result sent between processes carries its records once.
        return {**self.__dict__, "_timeseries": None, "_events": None}


def events_table(records: list[dict]) -> pd.DataFrame:
    """A table of event records (dicts): one row each, columns in order of first appearance.

    A float column whose values are all whole numbers (or missing) becomes Int64: counts with
    gaps (a field only some events have) stay whole numbers in CSV.
    """
    import pandas as pd

    events = pd.DataFrame(records)
    if events.empty:
        return pd.DataFrame(columns=["step", "event"])
    for column in events.columns:
        if pd.api.types.is_float_dtype(events[column]) and (events[column].dropna() % 1 == 0).all():
            events[column] = events[column].astype("Int64")
    return events


def site_table(config: Scenario) -> dict[str, dict]:
    """Each site's kind and grid cell: name -> {"kind", "row", "col"} (for outcomes about places)."""
    table = {}
    for name, site in config.sites.items():
        row, col = site_cell(site, config)
        table[name] = {"kind": site.kind, "row": int(row), "col": int(col)}
    return table


def run_length(config: Scenario, steps: int | None) -> int:
    """Days to run: the scenario's `steps`, or `steps`, a whole number within the schema's range of `steps`.

    Raises:
        ValueError: `steps` is not a whole number (5.5, "30", True) or is outside the range the
            scenario file and `--steps` accept (1..100,000 days): a run of -5 or 0 days quietly
            recorded day 0 alone, and 5.5 ran 5 days.
    """
    if steps is None:
        return config.steps
    from sim.schema import whole_number_bounds

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"steps must be a whole number of days, got {steps!r}")
    low, high = whole_number_bounds("steps")
    if not low <= steps <= high:
        raise ValueError(f"steps must be between {low} and {high:,} days, got {steps}")
    return int(steps)


def run_model(config: Scenario, seed: int, steps: int | None = None, replicate: int = 0, on_step=None) -> RunResult:
    """Build one model from a validated scenario and seed, run it, and return what it recorded.

    `steps` (default: the scenario's) as `run_length` accepts it (ValueError otherwise).
    `on_step()` (optional) is called after each step, e.g. to advance a progress bar; it
    cannot change the run.
    """
    started = time.perf_counter()
    steps = run_length(config, steps)
    check_memory(config, steps)  # the steps asked for may be more than the scenario's (validated)
    model = Engine(config, seed=seed)  # the model without its Mesa face (`sim.model.CorridorModel`): same numbers
    snapshot_at = sorted({0, steps // 2, steps})
    influence, control = [], []

    def snapshot() -> None:
        influence.append(model.influence.astype(np.float32))
        control.append(model.control.astype(np.int16))

    snapshot()
    later = frozenset(snapshot_at[1:])
    for step in range(1, steps + 1):
        model.step()
        if on_step is not None:
            on_step()
        if step in later:
            snapshot()
    while len(influence) < 3:  # steps < 2: repeat the last state so arrays keep their shape
        snapshot()
        snapshot_at.append(snapshot_at[-1])

    clash_cells = np.array(model.recent_clash_cells, dtype=np.int64).reshape(-1, 3)
    meta = {"first_control_change": dict(model.first_control_change), "sites": site_table(config)}
    model.close()
    model.datacollector.compact()  # the result keeps the run's own rows, not a buffer sized for the scenario's steps
    return RunResult(
        replicate=replicate,
        seed=int(seed),
        recorded=model.datacollector,
        event_records=list(model.events),
        influence=np.stack(influence[:3]),
        control=np.stack(control[:3]),
        snapshot_steps=np.array(snapshot_at[:3], dtype=np.int64),
        clash_cells=clash_cells,
        elapsed_s=time.perf_counter() - started,
        meta=meta,
    )


def stack_results(results: list[RunResult], table: str) -> pd.DataFrame:
    """One table ('timeseries' or 'events') of several runs, led by replicate and seed columns."""
    import pandas as pd

    frames = [getattr(r, table).assign(replicate=r.replicate, seed=r.seed) for r in results]
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[["replicate", "seed", *[c for c in stacked.columns if c not in ("replicate", "seed")]]]


def run_replicate(config: Scenario, steps: int | None, replicate_seed: tuple) -> RunResult:
    """One replicate for a map: `replicate_seed` is (replicate, seed) or (replicate, seed, its own scenario)."""
    replicate, seed, *own = replicate_seed
    return run_model(own[0] if own else config, seed, steps, replicate)


def run_replicates(
    config: Scenario,
    root_seed: int,
    n_replicates: int,
    steps: int | None = None,
    workers: int = 1,
    on_result: Callable[[RunResult], None] | None = None,
    *,
    dask: str | None = None,
    backend: Backend | None = None,
    configs: list[Scenario] | None = None,
) -> list[RunResult]:
    """Run replicates 0..n-1 with seeds `sim.seeding.replicate_seeds(root_seed, n)`.

    Args:
        config: the validated scenario.
        root_seed: the root seed (one replicate runs with the root seed itself).
        n_replicates: how many runs (>= 1).
        steps: days per run (default: the scenario's).
        workers: local worker processes (1: serial, in this process) of the backend to make
            (`sim.executors.make_backend`) when `backend` is not given; it is closed at the end.
        dask: with `workers`, the backend to make when `backend` is not given: None (local),
            "local" (a Dask LocalCluster) or a scheduler address.
        on_result: called with each result as its run finishes (e.g. to write it to disk),
            so a caller can stream results instead of waiting for all of them.
        backend: a backend made beforehand (e.g. to report an unreachable scheduler before
            anything else); closed at the end.
        configs: one scenario per replicate (e.g. posterior draws, `sim.posterior`), run
            instead of `config`; None runs `config` every time.

    Returns:
        The results sorted by replicate; identical whatever the backend.
    """
    seeds = replicate_seeds(root_seed, n_replicates)
    # Every result is kept until the end, and `workers` models run at once: refuse before any runs.
    check_memory(config, steps, 1 if (backend is not None or dask) else workers, kept=n_replicates)
    if configs is not None and len(configs) != n_replicates:
        raise ValueError(f"{len(configs)} scenarios for {n_replicates} replicates")
    if n_replicates == 1 and backend is None and not dask:
        # One local run: run it here and show its steps instead of a bar of one.
        n_steps = config.steps if steps is None else steps
        with progress_bar(n_steps, config.name, unit="step") as bar:

            def on_step() -> None:
                bar.update()
                raise_pending()  # a Ctrl-C Python swallowed in a finalizer meanwhile (sim.interrupts)

            result = run_model(configs[0] if configs else config, seeds[0], steps, 0, on_step=on_step)
        if on_result:
            on_result(result)
        return [result]
    backend = backend if backend is not None else make_backend(workers, dask)
    results: list[RunResult] = []
    try:
        with progress_bar(n_replicates, config.name) as bar:
            task = partial(run_replicate, config, steps)
            items = [(k, seed) if configs is None else (k, seed, configs[k]) for k, seed in enumerate(seeds)]
            for _, result in backend.map(task, items, bar=bar):
                results.append(result)
                if on_result:
                    on_result(result)
    finally:
        backend.close()
    return sorted(results, key=lambda r: r.replicate)
