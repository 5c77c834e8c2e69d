"""Limits that keep a validated scenario runnable: memory before allocating, design size before running.

The schema (`sim.schema`) bounds every number; what no single bound can catch is a
combination: a 400 x 400 grid with 200 factions, a hundred towns of ten million people, a
grid sweep of nine parameters at nine levels. This module prices those combinations before
anything is allocated or run:

- `estimate_model_bytes(config, steps)`: peak memory of one model run, in bytes, from the
  grid cells x factions (influence layers), the sites (path-distance layers), the recruits
  (town populations x pool share, plus outsiders), the recorded figures (steps x columns)
  and the expected events. tests/test_limits.py holds it within a factor of 2 of the peak
  `tracemalloc` measures on two sizes.
- `available_bytes()`: memory the machine can still give (`MemAvailable` of /proc/meminfo,
  else the free physical pages).
- `memory_problem(config, steps, workers)`: a one-line reason when `workers` such models do
  not fit, else None; `check_memory` raises it as a ScenarioError (exit status 2).
- `design_problem(n_runs, what, cap, key)`: a one-line reason when a design of `n_runs`
  runs exceeds its cap (`sweep.max_runs`, `calibration.max_runs`, `robustness.max_runs`).

- `workers_problem(workers)`: a one-line reason when `workers` local interpreters do not
  fit (the `--workers` argument type of `sim.cli` refuses it, exit status 2).

Where the checks run: `sim.scenario.validate_document` prices one model at the scenario's
steps (or `calibration.steps`, if longer) and applies the design caps with every load;
`sim.sweep.start_sweep` prices the sweep's `--steps` before writing anything;
`sim.runner.run_replicates` prices the replicates it keeps and its workers; and
`sim.runner.run_model` prices the steps actually asked for just before it builds a model.
The event count is an upper estimate (clash chance at its ceiling on every front cell), so
the estimate errs on the side of refusing.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from sim.yaml_source import Problem, ScenarioError

if TYPE_CHECKING:  # annotations only: `--workers N` is checked (`workers_problem`) without the schema
    from sim.schema import Scenario

# Bytes per item of each structure, measured with tracemalloc on numpy 2 / pandas 2 / mesa 3 (re-measured
# when the model stopped building Mesa's grid and recruit agents unless asked for, sim.model, and when the
# shortest paths left scipy's graph for sim.compiled's heap: peaks of 240-930 bytes a cell on 220 x 220 grids)
# (tests/test_limits.py::test_estimate_is_within_a_factor_of_the_measured_peak keeps them honest).
BYTES_PER_RECRUIT = 115  # 9 state arrays (58 bytes), set-up draws, per-day masks, draws and indices (no agent objects)
BYTES_PER_CHOICE = 20  # per reconsidering recruit and option: utilities, availability, noise, scaled copies
BYTES_PER_LAYER_CELL = 8 * 4  # per faction and cell: influence, share, counts, the day's target (kernels: row-sized)
BYTES_PER_SITE_CELL = 8 * 4  # per site and cell: path distances, Dijkstra's output, straight lines, the result
BYTES_PER_CELL = 150  # per cell: terrain, value, control, the shortest paths' heap (8 moves x 16 bytes) and temporaries
BYTES_PER_RECORD = 40  # per step and column: the collector's list entry and value, the DataFrame column
BYTES_PER_EVENT = 800  # per event: a dict of ~8 fields and its DataFrame row
BYTES_PER_PROCESS = 250 * 2**20  # an interpreter with numpy, pandas, scipy and mesa imported


def n_recruits(config: Scenario) -> int:
    """Rows of the recruit arrays (upper bound): each town's pool, plus every militia's fighters and outsiders."""
    share = config.rules.recruitment.pool_share
    pool = sum(round(s.population * share) for s in config.sites.values() if s.kind == "town")
    extra = sum(f.initial_fighters + f.initial_outsiders for f in config.factions.values() if f.kind == "militia")
    return int(pool + extra)


def n_columns(config: Scenario) -> int:
    """Columns of the recorded timeseries (`sim.recording.build_reporters`)."""
    militias = [n for n, f in config.factions.items() if f.kind == "militia"]
    m, f = len(militias), len(config.factions)
    pairs = sum(1 for a, b in config.hostilities if a in militias and b in militias)
    return 1 + f + 11 * m + 1 + m * (m - 1) + 2 * pairs + len(config.sites) + len(config.tribes) * m + 11


def expected_events_per_day(config: Scenario) -> float:
    """An upper estimate of the events logged per day (clashes, attacks, defections, lootings, meetings)."""
    rules = config.rules
    militias = [n for n, f in config.factions.items() if f.kind == "militia"]
    pairs = sum(1 for a, b in config.hostilities if a in militias and b in militias)
    cells = config.grid.width * config.grid.height
    # A front cell needs min_fighters of each side within radius_cells: fighters bound the front.
    reach = (2 * rules.clashes.radius_cells + 1) ** 2
    front = min(cells, n_recruits(config) * reach / rules.clashes.min_fighters)
    clashes = rules.clashes.p_max * front * pairs
    attacks = 0.0
    if any(f.kind == "insurgent" for f in config.factions.values()):
        attacks = rules.insurgency.max_cells * rules.insurgency.attack_rate
    lootings = rules.economy.p_looting * len(config.sites) * pairs
    # One event per pair of militias with defections that day, at most one per reconsidering recruit.
    reconsider = config.rules.recruitment.p_reconsider * n_recruits(config)
    defections = min(len(militias) * max(len(militias) - 1, 0), reconsider)
    return clashes + attacks + lootings + defections + 2 * pairs + 1


def estimate_model_bytes(config: Scenario, steps: int | None = None) -> int:
    """Peak memory of one run of `config` for `steps` days (default: its own), in bytes.

    Counts the recruit arrays and the day's choice arrays, the (F, H, W) influence layers,
    the (S, H*W) path distances, the grid, the recorded figures and the events; not the
    interpreter itself (`BYTES_PER_PROCESS`).
    """
    steps = config.steps if steps is None else int(steps)
    cells = config.grid.width * config.grid.height
    n_f, n_s = len(config.factions), len(config.sites)
    recruits = n_recruits(config)
    choosers = recruits * min(1.0, 1.5 * config.rules.recruitment.p_reconsider + 0.001)
    total = (
        recruits * BYTES_PER_RECRUIT
        + choosers * (n_f + 1) * BYTES_PER_CHOICE
        + n_f * cells * BYTES_PER_LAYER_CELL
        + n_s * cells * BYTES_PER_SITE_CELL
        + cells * BYTES_PER_CELL
        + (steps + 1) * n_columns(config) * BYTES_PER_RECORD
        + steps * expected_events_per_day(config) * BYTES_PER_EVENT
    )
    return int(total)


def estimate_result_bytes(config: Scenario, steps: int | None = None) -> int:
    """Memory one finished run's `RunResult` keeps (timeseries, events, snapshots), in bytes."""
    steps = config.steps if steps is None else int(steps)
    cells = config.grid.width * config.grid.height
    return int(
        (steps + 1) * n_columns(config) * 16
        + steps * expected_events_per_day(config) * 400
        + 3 * len(config.factions) * cells * 4
        + 3 * cells * 2
    )


def available_bytes() -> int:
    """Memory the machine can give now, in bytes: MemAvailable of /proc/meminfo, else the free pages.

    Read at most every `AVAILABLE_TTL_S` seconds (a sweep checks every run, twice: the reading
    was a tenth of its bookkeeping per run; a coarse guard does not need fresher numbers).
    """
    now = time.monotonic()
    if _AVAILABLE and now - _AVAILABLE[0] < AVAILABLE_TTL_S:
        return _AVAILABLE[1]
    have = _read_available_bytes()
    _AVAILABLE[:] = [now, have]
    return have


AVAILABLE_TTL_S = 0.5
_AVAILABLE: list = []  # [time.monotonic() of the latest reading, its bytes]


def _read_available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2**62  # no way to tell: do not refuse


def _size(n_bytes: float) -> str:
    """Bytes as a short human figure: 1.2 GiB, 310 MiB."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:.1f} {unit}"
    return f"{n_bytes / 2**10:.0f} KiB"


def memory_problem(config: Scenario, steps: int | None = None, workers: int = 1, kept: int = 0) -> str | None:
    """Why `workers` runs of `config` at once, keeping `kept` results, would not fit in memory; None if they would."""
    one = estimate_model_bytes(config, steps)
    need = workers * (one + BYTES_PER_PROCESS) if workers > 1 else one
    need += kept * estimate_result_bytes(config, steps)
    have = available_bytes()
    if need <= have:
        return None
    parts = (
        f"up to {n_recruits(config):,} recruits (an upper bound), {len(config.factions)} factions on "
        f"{config.grid.width}x{config.grid.height} grid cells, {len(config.sites)} sites, "
        f"{config.steps if steps is None else steps} steps"
    )
    who = f"{workers} runs at once need" if workers > 1 else "one run needs"
    if kept:
        who = f"{who.rsplit(' ', 1)[0]}, keeping {kept:,} results, need"
    return (
        f"the scenario does not fit in memory: {who} about {_size(need)} ({parts}) and the machine has "
        f"{_size(have)} available; shrink the grid, the factions, the populations or the steps"
        + (", or use fewer workers" if workers > 1 else "")
    )


def workers_problem(workers: int) -> str | None:
    """Why `workers` local worker processes would not fit in memory (an interpreter each), or None."""
    need, have = workers * BYTES_PER_PROCESS, available_bytes()
    if need <= have:
        return None
    return (
        f"{workers} workers need about {_size(need)} for their interpreters alone and the machine has "
        f"{_size(have)} available; use at most {max(1, have // BYTES_PER_PROCESS)} workers"
    )


def check_memory(
    config: Scenario, steps: int | None = None, workers: int = 1, kept: int = 0, source: str = ""
) -> None:
    """Raise ScenarioError (exit status 2) if `memory_problem` finds one; allocate nothing.

    Also if the steps asked for (more than the validated scenario's, e.g. by --steps) would
    end the run past the calendar its events can be dated in (`sim.schema.calendar_problem`).
    """
    why = memory_problem(config, steps, workers, kept)
    if why:
        raise ScenarioError([Problem(source or config.name, "", None, why)])
    from sim.schema import calendar_problem  # here: this module is imported without the schema

    if steps is not None and (why := calendar_problem(config.start_date, int(steps))):
        raise ScenarioError([Problem(source or config.name, "start_date", None, why)])


def design_problem(n_runs: int, what: str, cap: int, key: str) -> str | None:
    """Why a design of `n_runs` runs is refused under its cap `key` (e.g. sweep.max_runs), or None.

    `what` says how the count was made, e.g. "64 points x 10 replicates".
    """
    if n_runs <= cap:
        return None
    return (
        f"the design has {n_runs:,} runs ({what}); the cap is {key}={cap:,}: "
        f"raise it explicitly with --set {key}={n_runs} if you mean it"
    )

