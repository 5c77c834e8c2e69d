"""Scenario sweeps: run an experimental design, stream results to disk, resume after a crash.

A sweep directory (`results/<scenario>/sweep-<UTC timestamp>/`, or `--out`) holds:
- `scenario.yaml`  the resolved base scenario, with its `sweep:` section
- `design.csv`     one row per design point and replicate: point, replicate, seed, parameters
- `runs.jsonl`     the journal: made empty at the start; one JSON line per finished run,
                   appended as runs finish and fsynced every second in the background
                   (`Journal`), each with the sha256 of its content (`#sha256`); a torn last
                   line from a crash is ignored and cut off on resume; any other damaged
                   line, or one whose content differs from its checksum, or that holds what
                   no run writes whatever its checksum (`check_journal_lines`), is refused,
                   naming it, and nothing is cut off; so is a journal deleted or holding fewer
                   runs than manifest.json counted at the end of a session (`check_journal_kept`)
- `outcomes.csv`   one row per run (ok or failed, with its error), sorted; written at the end
- `timeseries/`    per-run Parquet files `point=NNNNN/replicate=NNNN.parquet` when asked
- `manifest.json`  versions, seeds, how to re-run any point, timings, status (running,
                   complete, incomplete, interrupted), the runs the journal held then
                   (`journal_runs`), the sweep's `fingerprint`, its
                   `format` (2: `sim.results`), and `files`: the rows and sha256 of design.csv
                   and outcomes.csv, checked when read (required: `sim.results.manifest_files`)
- analysis files and `plots/` (`sim.analysis`)

Every run goes through `sim.runner.run_model`, the same function as `run.py run`, mapped
over the design by `sim.executors` (serial, local processes or Dask). Seeds come from
`sim.seeding` as `sweep.seeds` says: "common" (the default) gives replicate k of every point
the same seed (common random numbers), "independent" gives every run its own. Either way a
point re-runs alone with `run.py run SCENARIO --seed S --set ...` and gives the same
numbers, whichever executor ran it. `run_sweep` runs; the analysis is the caller's
(`run.py sweep` calls `sim.analysis.analyze` afterwards unless `--no-analysis`).

One job at a time: `start_sweep` and `run_sweep` claim the directory (`sim.results.OutputLock`);
the start is atomic (scenario, design and manifest are staged in a hidden sibling directory
and renamed into place), so a kill at any moment leaves either nothing or a resumable sweep;
`check_resume` refuses to continue a sweep with a different scenario, seed or steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import BrokenExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pandas as pd
import yaml

from sim.executors import Backend, interrupt_behind, make_backend, progress_bar, signals_held
from sim.limits import check_memory
from sim.outcomes import compute_outcomes, outcome_range
from sim.results import (
    JOURNAL_CHECKSUMS_SINCE,
    MANIFEST_FORMAT,
    SEED_RANGE,
    ResultFileError,
    atomic_write_bytes,
    atomic_write_text,
    check_output_dir,
    claim_output_dir,
    default_output_dir,
    display_path,
    failed_count_error,
    file_record,
    git_commit,
    journal_line,
    manifest_files,
    manifest_format,
    name_the_file,
    read_bytes,
    read_jsonl,
    read_manifest,
    read_result_csv,
    results_dir_problem,
    started_before,
    versions,
    write_staged,
)
from sim.runner import run_model
from sim.scenario import (
    DESIGN_SECTIONS,
    check_overrides_not_varied,
    load_scenario,
    scenario_to_dict,
    scenario_yaml,
    validate_document,
)
from sim.schema import Scenario
from sim.seeding import replicate_seeds, run_seed
from sim.tables import COUNT, NON_NEGATIVE, Range
from sim.yaml_source import ScenarioError, SourcedDocument, apply_overrides

KIND = "faction-sim sweep"
JOURNAL = "runs.jsonl"
ID_COLUMNS = ["point", "replicate", "seed"]


class SweepError(Exception):
    """A sweep cannot start or resume (bad or damaged directory...); exit status 2.

    An unreachable cluster is `sim.executors.ExecutorError` (also exit status 2).
    """


@dataclass(frozen=True)
class RunTask:
    """One run of a sweep: a design point's replicate, its seed and its `--set` overrides."""

    point: int
    replicate: int
    seed: int
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class SweepJob:
    """What every run of a sweep shares (sent with each task: small and picklable)."""

    base: dict  # the resolved base scenario, without its design sections (`run_base`)
    outputs: tuple[str, ...]
    steps: int | None
    timeseries_dir: str | None
    source: str = "<sweep base>"  # the sweep's scenario file (or name): named by a design point that does not validate
    key: str = field(init=False)  # sha256 of `base`: names it in a worker's cache of point scenarios

    def __post_init__(self):
        text = json.dumps(self.base, sort_keys=True, default=str)
        object.__setattr__(self, "key", hashlib.sha256(text.encode()).hexdigest())


# Sections of a scenario that no run reads and no design point can set (`sim.scenario.NOT_PARAMETERS`):
# experiments and checks (`sim.scenario.DESIGN_SECTIONS`) and the sources of the values.
NOT_RUN = (*DESIGN_SECTIONS, "provenance")


def run_base(config: Scenario) -> dict:
    """The scenario a sweep's runs start from: `config` as a dict, without the sections of `NOT_RUN`.

    `sweep`, `calibration`, `robustness` and `validation` describe experiments and checks,
    and `provenance` where each value comes from; the model reads none of them and a design
    point cannot set them, so each point's scenario is validated without them (they were
    three quarters of the cost of validating it, once per run). They stay in the sweep's
    scenario.yaml.
    """
    return {k: v for k, v in scenario_to_dict(config).items() if k not in NOT_RUN}


# ------------------------------------------------------------------------- one run

# A worker's validated scenarios of the latest design points, by (job key, overrides). Runs
# come in order of point, then replicate, so the replicates of a point validate it once per
# worker; a Scenario is never changed by a run (replicates of `run.py run` share one too).
_POINT_SCENARIOS: OrderedDict[tuple[str, tuple[str, ...]], Scenario] = OrderedDict()
POINT_CACHE_SIZE = 8


def point_scenario(job: SweepJob, overrides: tuple[str, ...]) -> Scenario:
    """`scenario_for(job.base, overrides)`, validated once per worker for the replicates of a point.

    Raises:
        ScenarioError: as `scenario_for` (not cached: every replicate of a bad point fails alike).
    """
    key = (job.key, tuple(overrides))
    config = _POINT_SCENARIOS.get(key)
    if config is None:
        config = scenario_for(job.base, overrides, validated_base=_base_scenario(job))
        _POINT_SCENARIOS[key] = config
        while len(_POINT_SCENARIOS) > POINT_CACHE_SIZE:
            _POINT_SCENARIOS.popitem(last=False)
    else:
        _POINT_SCENARIOS.move_to_end(key)
    return config


def run_task(job: SweepJob, task: RunTask) -> dict:
    """Run one design point's replicate; a failure becomes a 'failed' row.

    The row holds point, replicate, seed, then each of `job.outputs` (a finished run's only),
    status ("ok" or "failed"), error ("" or, for a failed run, why: never empty) and elapsed_s.

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM (`sim.interrupts.Terminated`), also when it reached the
            run wrapped in another error (`sim.executors.interrupt_behind`); nothing else.
    """
    started = time.perf_counter()
    row = {"point": task.point, "replicate": task.replicate, "seed": task.seed}
    try:
        config = point_scenario(job, task.overrides)
        result = run_model(config, task.seed, job.steps, task.replicate)
        outcomes = compute_outcomes(list(job.outputs), result.table, lambda: result.events, result.meta)
        if job.timeseries_dir is not None:
            _write_parquet(Path(job.timeseries_dir), task, result.timeseries)
        # only now: a run whose timeseries could not be written failed, and a failed run's row holds
        # no outcomes (`check_journal_lines` refuses one that does)
        row.update(outcomes, status="ok", error="")
    except ScenarioError as error:  # a design point that does not validate: recorded, the sweep goes on
        row.update(status="failed", error=point_error(job.source, task.point, task.overrides, error)[:ERROR_CHARS])
    except Exception as error:  # noqa: BLE001 - recorded, the sweep goes on
        if (interrupt := interrupt_behind(error)) is not None:  # Ctrl-C/SIGTERM inside a kernel: stop
            raise interrupt from None
        row.update(status="failed", error=f"{type(error).__name__}: {error}".replace("\n", " ")[:ERROR_CHARS])
    row["elapsed_s"] = round(time.perf_counter() - started, 4)
    return row


# Characters of a failed run's error kept in its row; a journal line or outcomes.csv row with a
# longer one was written by no run, and is refused (`check_journal_lines`, `too_long_error`).
ERROR_CHARS = 500


def too_long_error(error) -> str | None:
    """Why a run's recorded `error` is one no run wrote: longer than `ERROR_CHARS`; None if not (or not a text)."""
    if not isinstance(error, str) or len(error) <= ERROR_CHARS:
        return None
    return f"{_shown(error)} ({len(error):,} characters), longer than the {ERROR_CHARS} a run records"


def point_error(source: str, point: int, overrides: Iterable[str], error: ScenarioError) -> str:
    """The error of a design point that does not validate: the file, the point's values, each problem.

    e.g. "ScenarioError: sweep.yaml: design point 3 (grid.bounds.lat_min=34.8,
    grid.bounds.lat_max=34.7): grid.bounds.lat_max: lat_min (34.8) must be below lat_max (34.7)".
    `source` is the scenario's file (or name); the problems' own file ('--set' for a varied
    value, '<sweep base>' for the rest) is left out. Sweeps' and robustness jobs' runs
    (`sim.robustness.run_task`) both say so. Where the values would push the problems past
    `ERROR_CHARS` (a robustness job varies 86), only those of the keys a problem names are
    shown, and the count of the others, which design.csv holds.
    """
    problems = "; ".join(f"{p.key_path}: {p.message}" if p.key_path else p.message for p in error.problems)
    overrides = list(overrides)

    def text(values: list[str]) -> str:
        return f"ScenarioError: {source}: design point {point} ({', '.join(values)}): {problems}".replace("\n", " ")

    if len(text(overrides)) <= ERROR_CHARS:
        return text(overrides)
    named = {p.key_path for p in error.problems}
    shown = [o for o in overrides if o.partition("=")[0] in named]
    return text([*shown, f"{len(overrides) - len(shown)} more values in design.csv"])


_BASE_SCENARIOS: OrderedDict[str, Scenario | None] = OrderedDict()  # a worker's validated bases, by job key


def _base_scenario(job: SweepJob) -> Scenario | None:
    """`job.base` validated, once per worker (None if it does not validate alone: then points validate whole)."""
    if job.key not in _BASE_SCENARIOS:
        try:
            _BASE_SCENARIOS[job.key] = scenario_for(job.base, [])
        except ScenarioError:
            _BASE_SCENARIOS[job.key] = None
        while len(_BASE_SCENARIOS) > POINT_CACHE_SIZE:
            _BASE_SCENARIOS.popitem(last=False)
    return _BASE_SCENARIOS[job.key]


def scenario_for(base: dict, overrides: Iterable[str], validated_base: Scenario | None = None) -> Scenario:
    """The validated scenario of one design point: the base scenario dict with `key=value` overrides applied.

    `validated_base`: `base` as validated (`scenario_for(base, [])`), if known: the sections no
    override touches are taken from it instead of being validated again (`validate_document`).

    Raises:
        ScenarioError: an override does not apply, or the result does not validate.
    """
    document = SourcedDocument(data=base, origins={}, main_file="<sweep base>")
    known = None if validated_base is None else (base, validated_base)
    return validate_document(apply_overrides(document, list(overrides)), validated=known)


def _write_parquet(directory: Path, task: RunTask, timeseries: pd.DataFrame) -> None:
    import io

    path = directory / f"point={task.point:05d}" / f"replicate={task.replicate:04d}.parquet"
    buffer = io.BytesIO()
    timeseries.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


# ------------------------------------------------------------------------- the sweep


def default_sweep_dir(scenario_name: str) -> Path:
    """A new `results/<scenario>/sweep-<UTC timestamp>[-N]` path (`sim.results.default_output_dir`)."""
    return default_output_dir(scenario_name, kind="sweep")


def design_with_replicates(config: Scenario, root_seed: int) -> pd.DataFrame:
    """design.csv: every design point times every replicate, with the run's seed.

    Seeds follow `sweep.seeds` (`sim.seeding`): "common" gives replicate k the seed
    `replicate_seeds(root, replicates)[k]` at every point (common random numbers: points
    differ by their parameters, not their noise); "independent" gives every run its own
    `run_seed(root, point, replicate)` (e.g. the draws of a calibration).

    Returns:
        One row per run, sorted by (point, replicate): point, replicate, seed, then one
        column per parameter.
    """
    from sim.design import build_design

    sweep = config.sweep
    points = build_design(sweep, root_seed)
    common = replicate_seeds(root_seed, sweep.replicates)
    rows = []
    for k in range(sweep.replicates):
        block = points.copy()
        block.insert(1, "replicate", k)
        if sweep.seeds == "independent":
            seeds = [run_seed(root_seed, point, k) for point in block["point"]]
        else:
            seeds = [common[k]] * len(block)
        block.insert(2, "seed", pd.Series(seeds, index=block.index, dtype="int64"))
        rows.append(block)
    design = pd.concat(rows, ignore_index=True).sort_values(["point", "replicate"], kind="stable")
    return design.reset_index(drop=True)


SEEDS_NOTE = {
    "common": "replicate k of every point has seed design.csv[seed] (common random numbers: "
    "sim.seeding.replicate_seeds(root_seed, replicates)); one replicate uses the root seed",
    "independent": "every point and replicate has its own seed, design.csv[seed] "
    "(sim.seeding.run_seed: SeedSequence(root_seed, spawn_key=(point, replicate)))",
}


def read_journal(
    directory: Path,
    repair: bool = False,
    *,
    design: pd.DataFrame | None = None,
    scenarios: Collection[str] | None = None,
) -> list[dict]:
    """Finished runs from the journal (`sim.results.read_jsonl`).

    A torn last line (a crash mid-write) is dropped, and cut off the file with `repair`.
    Each line's checksum is verified (`sim.results.read_jsonl`); the directory's manifest.json
    says whether every line must have one (`journal_signed`). What each line holds is checked
    too, whatever its checksum (`check_journal_lines`, with the sweep's `design` or the
    robustness job's `scenarios` when given), before anything is cut off.

    Reading is bounded: more lines than twice the manifest's `n_runs` (and 16), a line longer
    than `sim.results.MAX_JOURNAL_LINE`, or a journal that is not a regular file (a link to
    /dev/zero) is refused.

    Raises:
        ResultFileError: a line before the last is not a JSON object, or differs from its
            checksum, or lacks one where it is due, or holds what no run wrote
            (`check_journal_lines`) (the journal is damaged; the message names the line, and
            nothing is cut off); too long or not a regular file; or manifest.json is damaged.
    """
    directory = Path(directory)
    path = directory / "manifest.json"
    manifest = read_manifest(path) if path.is_file() else {}
    # A line per run, and a few more for a run journaled twice (finalize_outcomes keeps the last).
    n_runs = manifest.get("n_runs")
    max_lines = 2 * n_runs + 16 if isinstance(n_runs, int) else None
    signed = journal_signed(manifest) if path.is_file() else False
    journal = directory / JOURNAL

    def check(rows: list[dict]) -> None:
        check_journal_lines(journal, rows, manifest, design=design, scenarios=scenarios)

    return read_jsonl(journal, repair=repair, signed=signed, max_lines=max_lines, check=check)


# What a run's numbers hold, in a journal line (`run_task` of sweeps and robustness jobs), design.csv
# and outcomes.csv: its ids, its seed (`sim.seeding`) and its time in seconds. Outcomes: `outcome_problem`.
RUN_NUMBERS = {"point": COUNT, "replicate": COUNT, "seed": SEED_RANGE, "elapsed_s": NON_NEGATIVE}
STATUSES = ("ok", "failed")  # a run's status in the journal and outcomes.csv


def check_journal_lines(
    path: Path,
    rows: list[dict],
    manifest: dict,
    *,
    design: pd.DataFrame | None = None,
    scenarios: Collection[str] | None = None,
) -> None:
    """Refuse journal lines that no run of the job wrote, whatever their checksums say.

    A line's checksum shows only that it is as written: a journal passed on may carry
    checksums that match edited lines, and `--resume` copied them into outcomes.csv (an
    `Infinity` that `analyze` then refused there, blaming the file the command had written).
    Each line (record k is line k + 1) must hold:
    - `point` and `replicate`, and for a sweep (a manifest with `outputs`) `seed`, `status`,
      `error` and `elapsed_s` (every run writes them); the ids and seed whole numbers >= 0
      (elapsed_s any number >= 0), the seed at most 2**63 - 1 (`RUN_NUMBERS`);
    - `status` "ok" or "failed", `error` a text and `elapsed_s` a number >= 0, where given;
      where the run failed (status failed), `error` a text that is not empty (why it failed);
      `error` at most `ERROR_CHARS` (500) characters, as a run keeps;
    - for a sweep, each of its `outputs` where the run finished (status ok);
    - each outcome (a sweep's `outputs`, a robustness job's `outcome.<name>`) a number as
      `outcome_problem` says (within 1e100 in size and its kind's values: a count whole and
      >= 0, a share in [0, 1]...), or NaN or null (empty) where its run failed or its kind
      can be NaN; none but empty where its run failed (a failed run records no outcomes);
      each `pattern.<name>` true, false or null;
    - with `scenarios` (a robustness job's), `scenario`, one of them; with `design` (a sweep's
      design.csv), its point and replicate a run of design.csv, with that run's seed.

    Raises:
        ResultFileError: `<path>: line N: <key> is <the value as the line writes it>, not
            <what it holds>` (or `... is missing`, `... is not in design.csv`) for the first
            line with a problem.
    """
    import numpy as np

    outputs = manifest.get("outputs")
    sweep = isinstance(outputs, list)
    required = {
        "point", "replicate", *(("seed", "status", "error", "elapsed_s") if sweep else ()),
        *(("scenario",) if scenarios else ()),
    }  # fmt: skip
    outcomes = {str(name) for name in outputs} if sweep else set()
    outcomes |= {key for row in rows for key in row if key.startswith("outcome.")}
    found: list[tuple[int, str]] = []  # (line, problem): the first of each check; the earliest is refused

    def numbers(key: str, what: str, empty_ok: bool) -> tuple[list[int], list]:
        """(lines, values) of `key` up to the first line where it is missing (if required) or no number."""
        lines, values = [], []
        for number, row in enumerate(rows, start=1):
            if key not in row:
                if key in required:
                    found.append((number, f"{key} is missing"))
                    break
                continue
            value = float("nan") if row[key] is None and empty_ok else row[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                found.append((number, f"{key} is {_shown(row[key])}, not {what}"))
                break
            lines.append(number)
            values.append(value)
        return lines, values

    for key, allowed in RUN_NUMBERS.items():
        lines, values = numbers(key, allowed.describe(), empty_ok=False)
        bad = allowed.outside(np.asarray(values))  # whole numbers compared exactly (seeds reach 2**63 - 1)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            found.append((lines[k], f"{key} is {_shown(values[k])}, not {allowed.describe()}"))
    recorded = {str(name) for name in outputs} if sweep else set()
    for key in sorted(outcomes):
        # a finished run records each of the sweep's outputs (`run_task`); a failed one, none
        if key in recorded and (
            missing := next((n for n, row in enumerate(rows, 1) if key not in row and row.get("status") == "ok"), None)
        ):
            found.append((missing, f"{key} is missing, where the run finished (status ok)"))
        lines, values = numbers(key, OUTCOME_VALUES, empty_ok=True)
        finished = [rows[number - 1].get("status", "ok") == "ok" for number in lines]
        failed = [rows[number - 1].get("status") == "failed" for number in lines]
        if (problem := outcome_problem(key.removeprefix("outcome."), values, finished, failed)) is not None:
            k, what = problem
            found.append((lines[k], f"{key} is {_shown(values[k])}, not {what}"))

    def texts(key: str, allowed: Collection[str] | None, what: str) -> None:
        for number, row in enumerate(rows, start=1):
            value = row.get(key, "")
            if key in required and key not in row:
                found.append((number, f"{key} is missing"))
                return
            if not isinstance(value, str) or (key in row and allowed is not None and value not in allowed):
                found.append((number, f"{key} is {_shown(value)}, not {what}"))
                return

    texts("status", STATUSES, " or ".join(f'"{s}"' for s in STATUSES))
    texts("error", None, "a text")
    # a run keeps at most ERROR_CHARS of its error (`run_task`): a longer one was written by hand
    for number, row in enumerate(rows, start=1):
        if (why := too_long_error(row.get("error"))) is not None:
            found.append((number, f"error is {why}"))
            break
    # a failed run records why (`run_task`): a line turned from "ok" to "failed" by hand has no error
    for number, row in enumerate(rows, start=1):
        error = row.get("error", "")
        if row.get("status") == "failed" and isinstance(error, str) and not error.strip():  # not a text: above
            shown = _shown(error) if "error" in row else "missing"
            found.append((number, f"error is {shown}, where the run failed (status failed; a failed run records why)"))
            break
    # and a finished run records none (`run_task` writes ""): an error beside "ok" is a line edited or damaged
    for number, row in enumerate(rows, start=1):
        error = row.get("error", "")
        if row.get("status") == "ok" and isinstance(error, str) and error:
            found.append((number, f"error is {_shown(error)}, where the run finished (status ok; it records no error)"))
            break
    if scenarios is not None:
        texts("scenario", list(scenarios), f"one of the job's scenarios ({_shown(', '.join(scenarios))})")
    for number, row in enumerate(rows, start=1):
        flag = next((k for k, v in row.items() if k.startswith("pattern.") and not any(v is f for f in FLAGS)), None)
        if flag is not None:
            found.append((number, f"{flag} is {_shown(row[flag])}, not true, false or null"))
            break
    last = min(found)[0] if found else len(rows) + 1  # lines before it have whole-number ids
    if design is not None and last > 1:
        planned = dict(zip(zip(design["point"], design["replicate"], strict=True), design["seed"], strict=True))
        for number, row in enumerate(rows[: last - 1], start=1):
            point, replicate = row["point"], row["replicate"]
            if (point, replicate) not in planned:
                found.append((number, f"point {point}, replicate {replicate} is not in design.csv"))
                break
            if "seed" in row and row["seed"] != planned[point, replicate]:
                wanted = planned[point, replicate]
                found.append((number, f"seed is {_shown(row['seed'])}, not design.csv's {wanted} for this run"))
                break
    if found:
        number, problem = min(found)
        raise ResultFileError(f"{path}: line {number}: {problem}")


FLAGS = (True, False, None)  # a pattern's flag in a robustness job's journal: shown, not shown, not judged (not 1 or 0)


def check_journal_kept(directory: Path, manifest: dict, finished: int) -> None:
    """Refuse a journal that has lost finished runs: deleted, emptied or cut short since they were recorded.

    A sweep or robustness job started by this version creates its journal, empty, with its
    other files (manifest.json then says `"journal": "runs.jsonl"`), and manifest.json records
    how many distinct runs the journal held (`journal_runs`) whenever a session ends or is
    interrupted, after the journal's lines are fsynced. A journal missing, or holding fewer
    runs than that (`finished`: distinct runs read from it), lost runs the job had finished:
    resuming would run them again without saying so, and an analysis would check outcomes.csv
    against less than it came from. A job killed outright (kill -9) records nothing more, so
    the runs of its last session are journalled only; an older job has neither record and is
    not checked.

    Raises:
        ResultFileError: `<journal>: missing ...` or `<journal>: holds N of the M finished runs
            manifest.json counted ...`; or `manifest.json: journal_runs is ...` for a count that
            is not a whole number of the job's runs (0 to its `n_runs`), or missing where a
            session of this version ended (status complete or incomplete).
    """
    path = Path(directory) / JOURNAL
    fix = "restore it, or start the job again in a new directory (--out)"
    made_here = manifest.get("journal") == JOURNAL  # a job of this version: it keeps both records
    if made_here and not os.path.lexists(path):
        raise ResultFileError(f"{path}: missing (the record of the job's finished runs, made at its start); {fix}")
    recorded = manifest.get("journal_runs")
    where = Path(directory) / "manifest.json"
    n_runs = manifest.get("n_runs")
    most = n_runs if type(n_runs) is int and n_runs >= 0 else None
    if "journal_runs" in manifest and not (
        type(recorded) is int and 0 <= recorded and (most is None or recorded <= most)
    ):  # manifest.json is untrusted: a count that no job writes switched the check off
        within = f"0 to {most:,}" if most is not None else "0 or more"
        raise ResultFileError(
            f"{where}: journal_runs is {json.dumps(recorded)[:40]}, not a count of the job's runs ({within}; "
            "changed or damaged)"
        )
    if made_here and recorded is None and manifest.get("status") in ("complete", "incomplete"):
        raise ResultFileError(
            f"{where}: journal_runs is missing, which a session that ended writes (changed or damaged)"
        )
    if recorded is not None and finished < recorded:
        raise ResultFileError(
            f"{path}: holds {finished:,} of the {recorded:,} finished runs manifest.json counted "
            f"(deleted or cut short since); {fix}"
        )


def journal_signed(manifest: dict) -> bool:
    """Whether a sweep's (or robustness job's) journal must have a checksum on every line.

    So it must when its manifest says `"format": 2` or later, or has no `format` but started
    after journals had checksums (`sim.results.JOURNAL_CHECKSUMS_SINCE`: its `format` was
    deleted); a sweep begun by an older version and resumed now has a first part without
    (`sim.results.read_jsonl`). A `"format": 1` is believed only where `manifest_format`
    believes it (an old start, no `fingerprint`), so that writing it does not switch the
    checksums off.
    """
    if "format" not in manifest:
        return not started_before(manifest, JOURNAL_CHECKSUMS_SINCE)
    return manifest_format(manifest) >= MANIFEST_FORMAT


class Journal:
    """Append-only, one JSON line per finished run (the sweep's crash-safe record).

    Each line is handed to the operating system as its run finishes, so a crash of the job
    (an error, Ctrl-C, kill -9, running out of memory) loses no finished run. Against a crash
    of the machine itself the lines are fsynced by a background thread, every
    `sync_interval_s` while there are new ones, and once more on `close`: an fsync costs
    milliseconds on many disks (tens when the disk is busy), more than a short run's own
    bookkeeping, and the runs no longer wait for it. A machine crash can lose the runs of the
    last interval; `--resume` runs them again like any run not journalled.

    Each line carries the checksum of its content (`sim.results.journal_line`), so a value
    changed afterwards is refused when the journal is read (`read_journal`).
    """

    SYNC_INTERVAL_S = 1.0

    def __init__(self, directory: Path, sync_interval_s: float = SYNC_INTERVAL_S):
        self.handle = open(Path(directory) / JOURNAL, "ab")
        self.sync_interval_s = sync_interval_s
        self._written = threading.Event()  # lines written since the last fsync
        self._closing = threading.Event()
        self._syncer = threading.Thread(target=self._sync_while_open, name="journal-fsync", daemon=True)
        self._syncer.start()

    def append(self, row: dict) -> None:
        """Append one run's row as a JSON line, written through to the operating system at once."""
        try:
            self.handle.write(journal_line(row))
            self.handle.flush()
        except OSError as error:  # a full disk: say which file (the runs journalled before it are kept)
            name_the_file(error, Path(self.handle.name))
            raise
        self._written.set()

    def sync(self) -> None:
        """Write every line so far through to the disk (before manifest.json counts the runs it holds)."""
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def _sync_while_open(self) -> None:
        while not self._closing.wait(self.sync_interval_s):
            if self._written.is_set():
                self._written.clear()  # before the fsync: a line written during it waits for the next
                try:
                    os.fsync(self.handle.fileno())
                except OSError:  # a failing disk: `close` fsyncs again, and raises it where it is handled
                    return

    def close(self) -> None:
        """Stop the background fsyncs, fsync every line written, close the journal file."""
        self._closing.set()
        self._syncer.join()
        try:
            try:
                os.fsync(self.handle.fileno())
            finally:
                self.handle.close()  # writes what a failed append left buffered: may fail again
        except OSError as error:
            name_the_file(error, Path(self.handle.name))
            raise


def _manifest(
    config: Scenario, design: pd.DataFrame, root_seed: int, steps: int, scenario_file, overrides, executor
) -> dict:
    sweep = config.sweep
    parameters = list(sweep.parameters)
    where = display_path(scenario_file) if scenario_file else config.name
    # iloc[:1] keeps each column's dtype (iloc[0] would turn a row with floats all-float,
    # losing the 63-bit seed's precision and printing integers as 10.0).
    example = design.iloc[:1].to_dict("records")[0] if len(design) else {}
    from sim.design import override_strings
    from sim.results import rerun_command

    def sets(assignments) -> list[str]:
        return [x for s in assignments for x in ("--set", s)]

    command = ["python", "run.py", "run", where]
    fixed = ["--steps", steps, *sets(overrides)]  # after the seed, as in the example
    example_sets = sets([*overrides, *(override_strings(example, sweep.parameters) if example else [])])
    return {
        "kind": KIND,
        "format": MANIFEST_FORMAT,
        "scenario": config.name,
        "scenario_file": display_path(scenario_file) if scenario_file else None,
        "overrides": list(overrides),
        "design": sweep.design,
        "parameters": parameters,
        "outputs": list(sweep.outputs),
        "samples": sweep.samples,
        "replicates": sweep.replicates,
        "n_points": int(design["point"].nunique()) if len(design) else 0,
        "n_runs": len(design),
        "root_seed": int(root_seed),
        "steps": int(steps),
        "seeds": SEEDS_NOTE[sweep.seeds],
        "rerun_point": (
            f"{rerun_command(command)} --seed <seed from design.csv> {rerun_command(fixed)}"
            " --set <parameter>=<value> for each parameter of the point"
        ),
        "rerun_example": rerun_command(
            [*command, "--seed", int(example.get("seed", root_seed)), "--steps", steps, *example_sets]
        ),
        "executor": executor,
        "versions": versions(),
        "git_commit": git_commit(),
        "status": "running",
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def finalize_outcomes(directory: Path, design: pd.DataFrame, parameters: list[str], outputs: list[str]) -> pd.DataFrame:
    """outcomes.csv from the journal: one row per finished run, sorted, with its parameters."""
    frame = outcomes_frame(read_journal(directory, design=design), design, parameters, outputs)
    atomic_write_text(Path(directory) / "outcomes.csv", frame.to_csv(index=False))
    return frame


def outcomes_frame(rows: list[dict], design: pd.DataFrame, parameters: list[str], outputs: list[str]) -> pd.DataFrame:
    """The table outcomes.csv holds for the journal's `rows` (`finalize_outcomes`)."""
    columns = ["point", "replicate", "seed", "status", "error", *parameters, *outputs, "elapsed_s"]
    if not rows:
        frame = pd.DataFrame(columns=columns)
    else:
        runs = pd.DataFrame(rows).drop_duplicates(["point", "replicate"], keep="last")
        params = design[["point", "replicate", *parameters]]
        frame = runs.merge(params, on=["point", "replicate"], how="left")
        for name in outputs:
            if name not in frame:
                frame[name] = float("nan")
        frame = frame[columns].sort_values(["point", "replicate"]).reset_index(drop=True)
    return frame


def check_kept_outcomes(directory: Path, manifest: dict, config: Scenario, design: pd.DataFrame, rows: list[dict]):
    """Refuse to resume a sweep whose outcomes.csv changed since the sweep wrote it.

    `--resume` writes outcomes.csv anew from the journal at its end: an edited one (a value,
    a status, a row deleted) was overwritten without a word, as if the earlier work were
    unchanged. So the one there must be what the sweep wrote: its checksum and rows those
    manifest.json recorded, its rows those its design and journal (`rows`, as read now) give,
    and its failed runs manifest.json's `n_failed` (`check_outcomes`; the runs a later session
    journalled, not yet in it, are not asked for). Also taken: the table the journal gives
    now (a session interrupted after writing it, before manifest.json recorded it), and none
    at all (a sweep that has not finished a session; one deleted is the journal's again).

    Raises:
        ResultFileError: `<outcomes.csv>: <what is wrong>; restore it, or delete it and --resume
            writes it again from runs.jsonl`.
    """
    path = Path(directory) / "outcomes.csv"
    if not os.path.lexists(path):
        return
    try:
        outcomes = read_outcomes(directory, manifest, config)
        check_outcomes(outcomes, design, rows, manifest, path, every_run=False)
    except ResultFileError as error:
        if not str(error).startswith(f"{path}: "):  # manifest.json's count, which the outcomes do not bear out
            raise
        parameters, outputs = list(manifest.get("parameters", [])), list(manifest.get("outputs", []))
        expected = outcomes_frame(rows, design, parameters, outputs).to_csv(index=False).encode("utf-8")
        try:  # read no more than the table the journal gives: a larger file is not it
            data = read_bytes(path, allow_empty=True, max_bytes=len(expected))
        except ResultFileError:
            data = None
        if data == expected:
            return  # written from the journal as it is, then interrupted before manifest.json recorded it
        fix = f"restore it, or delete it and --resume writes it again from {JOURNAL}"
        raise ResultFileError(f"{error}; {fix}") from None


def start_sweep(
    config: Scenario,
    *,
    out: Path | None,
    root_seed: int | None,
    steps: int | None,
    scenario_file: str | None,
    overrides: list[str],
    executor_name: str,
    design: pd.DataFrame | None = None,
    design_note: str | None = None,
) -> Path:
    """Create the sweep directory with its scenario, design and manifest; returns it.

    `design` (optional) is a design.csv made by the caller instead of `design_with_replicates`:
    one row per run with point, replicate, seed and one column per parameter of
    `config.sweep.parameters` (e.g. a calibration's kept draws, `sim.posterior`); the manifest
    then gives `design_note` as its design.

    The directory (`out`, or a new `results/<scenario>/sweep-<UTC timestamp>[-N]`) is claimed
    (`sim.results.claim_output_dir`, a no-op if the caller holds the claim) and the three files
    are staged in a hidden sibling directory renamed into place: a kill at any moment leaves
    either no directory or a sweep that `run_sweep` continues. The manifest records the
    sweep's `fingerprint` (checked by `check_resume`).

    Raises:
        SweepError: the scenario has no `sweep:` section.
        ScenarioError: an override sets a key the design sweeps (`check_overrides_not_varied`).
        OutputError: `out` exists and is not empty, cannot be written, or another job holds it.
        ValueError: a given design lacks a column.
    """
    if config.sweep is None:
        raise SweepError(f"scenario '{config.name}' has no `sweep:` section")
    check_overrides_not_varied(overrides, config.sweep.parameters, "swept by the design", "`sweep.parameters`")
    if out is not None:
        out = Path(out)
        check_output_dir(out)  # refuse before building the design (says --resume if a sweep is there)
    root = config.seed if root_seed is None else int(root_seed)
    n_steps = config.steps if steps is None else int(steps)
    check_memory(config, n_steps)  # --steps may ask for more than the validated scenario's: refuse now
    if design is None:
        design = design_with_replicates(config, root)
    else:
        missing = [c for c in (*ID_COLUMNS, *config.sweep.parameters) if c not in design]
        if missing:
            raise ValueError(f"a given design needs the columns {', '.join(missing)}")
    scenario_text = scenario_yaml(config)
    design_text = design.to_csv(index=False)
    design_bytes = design_text.encode("utf-8")
    manifest = _manifest(config, design, root, n_steps, scenario_file, overrides, executor_name)
    manifest["files"] = {"design.csv": file_record(design_bytes, design)}
    if design_note is not None:
        manifest["design"] = design_note
    manifest["fingerprint"] = fingerprint(scenario_text, design_text, root, n_steps)

    manifest["journal"] = JOURNAL  # made empty now: a journal missing later is one deleted (`check_journal_kept`)

    def fill(stage: Path) -> None:
        atomic_write_text(stage / "scenario.yaml", scenario_text)
        atomic_write_text(stage / "design.csv", design_text)
        atomic_write_text(stage / JOURNAL, "")
        _write_json(stage / "manifest.json", manifest)

    # Claimed (unless the caller holds the claim), staged, renamed: a kill at any moment
    # leaves either no sweep directory or one with its scenario, design and manifest.
    with claim_output_dir(out, scenario=config.name, kind="sweep") as claim:
        return write_staged(claim.directory, fill)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(scenario_text: str, design_text: str, root_seed: int, steps: int) -> dict:
    """What defines a sweep's runs, hashed: recorded in manifest.json at the start, checked on resume.

    The resolved scenario (with its `sweep:` section: design, parameters, outputs, replicates,
    seeds) as written to scenario.yaml, design.csv as written, the root seed and the steps.
    Nothing that depends on the code version or the executor: a sweep resumes under another
    version or on other workers (the runs' numbers do not depend on the executor).

    Returns:
        {"scenario_sha256", "design_sha256", "root_seed", "steps", "sha256"} (the last over the others).
    """
    items = {
        "scenario_sha256": _sha256(json.dumps(yaml.safe_load(scenario_text), sort_keys=True, allow_nan=True)),
        "design_sha256": _sha256(design_text),
        "root_seed": int(root_seed),
        "steps": int(steps),
    }
    return {**items, "sha256": _sha256(json.dumps(items, sort_keys=True))}


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(old, new, path: str = "") -> list[str]:
    """Every key path where two plain data structures (dicts, lists, scalars) differ, as 'path old -> new'.

    A key present on one side only shows `(none)` on the other; lists of different lengths
    are shown whole.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in dict.fromkeys([*old, *new]):
            where = f"{path}.{key}" if path else str(key)
            if key not in old:
                found.append(f"{where} (none) -> {_shown(new[key])}")
            elif key not in new:
                found.append(f"{where} {_shown(old[key])} -> (none)")
            else:
                found += differences(old[key], new[key], where)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new)):
            found += differences(a, b, f"{path}.{i}" if path else str(i))
        return found
    if old == new or (isinstance(old, float) and isinstance(new, float) and old != old and new != new):
        return []
    return [f"{path or '(the whole value)'} {_shown(old)} -> {_shown(new)}"]


def summarise_differences(items: list[str], limit: int = 8) -> str:
    """'a; b; c (and 4 more)': the first `limit` differences on one line."""
    shown = "; ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def resume_differences(
    directory: Path, config: Scenario, root_seed: int | None = None, steps: int | None = None
) -> list[str]:
    """What differs between the sweep in `directory` and the one these inputs would start.

    Args:
        directory: a sweep directory.
        config: the scenario as loaded now (the command line's file with its `--set`s).
        root_seed: `--seed` as given now; None (not given) accepts the sweep's.
        steps: `--steps` as given now; None (not given) accepts the sweep's.

    Returns:
        One item per difference, e.g. "scenario: rules.clashes.p_max 0.004 -> 0.02",
        "--steps 25 -> 30", "design.csv: changed since the sweep started"; empty if none.
        Sweeps started before fingerprints were recorded are compared the same way (their
        scenario.yaml and manifest), only the check of design.csv against its hash is missing.

    Raises:
        SweepError: not a sweep directory, another scenario's, or damaged (`load_sweep`).
    """
    directory = Path(directory)
    manifest, _, _ = load_sweep(directory, expected_scenario=config.name)
    scenario_text = (directory / "scenario.yaml").read_text(encoding="utf-8")
    now = yaml.safe_load(scenario_yaml(config))
    found = [f"scenario: {d}" for d in differences(yaml.safe_load(scenario_text), now)]
    if root_seed is not None and int(root_seed) != manifest.get("root_seed"):
        found.append(f"--seed {manifest.get('root_seed')} -> {int(root_seed)}")
    if steps is not None and int(steps) != manifest.get("steps"):
        found.append(f"--steps {manifest.get('steps')} -> {int(steps)}")
    saved = manifest.get("fingerprint")
    if isinstance(saved, dict):
        design_text = (directory / "design.csv").read_text(encoding="utf-8")
        on_disk = fingerprint(scenario_text, design_text, manifest.get("root_seed", 0), manifest.get("steps", 0))
        if on_disk["scenario_sha256"] != saved.get("scenario_sha256"):
            found.append("scenario.yaml: changed since the sweep started")
        if on_disk["design_sha256"] != saved.get("design_sha256"):
            found.append("design.csv: changed since the sweep started")
    return found


def check_resume(directory: Path, config: Scenario, root_seed: int | None = None, steps: int | None = None) -> dict:
    """Refuse to resume a sweep that these inputs would not have started; returns its manifest.

    Raises:
        SweepError: not this scenario's sweep, or anything in `resume_differences`, all listed
            on one line.
    """
    found = resume_differences(directory, config, root_seed, steps)
    if found:
        raise SweepError(
            f"{directory}: cannot resume: not the sweep these inputs define ({summarise_differences(found)}); "
            "resume with the scenario and options it started with, or start a new sweep with --out"
        )
    return load_sweep(directory)[0]


def load_sweep(directory: Path, expected_scenario: str | None = None) -> tuple[dict, Scenario, pd.DataFrame]:
    """Read back a sweep directory made by `start_sweep`, checking its files.

    Args:
        directory: the sweep directory.
        expected_scenario: if given, the directory must belong to the scenario of this name
            (e.g. `--resume` of another scenario's sweep is refused).

    Returns:
        (manifest, scenario with its `sweep:` section, design with one row per run; a
        parameter swept over a list of values has those values, with their types).

    Raises:
        SweepError: no such directory, not a directory, another kind of directory (a run's...:
            `sim.results.results_dir_problem`), no manifest, another scenario's sweep, or its
            scenario.yaml cannot be read.
        ResultFileError: manifest.json or design.csv is damaged (`sim.results`: truncated,
            not a sweep's manifest, rows cut off, a row count or checksum that differs from
            the manifest's...).
    """
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if (problem := results_dir_problem(directory, KIND)) is not None:  # no such directory, a run's...
        raise SweepError(problem)
    if not manifest_path.is_file():
        raise SweepError(f"{directory}: not a sweep directory (no manifest.json)")
    manifest = read_manifest(manifest_path, KIND, required=("parameters", "outputs", "steps"))
    if expected_scenario is not None and manifest.get("scenario") != expected_scenario:
        raise SweepError(f"{directory}: belongs to scenario '{manifest.get('scenario')}', not '{expected_scenario}'")
    try:
        config = load_scenario(directory / "scenario.yaml")
    except ScenarioError as error:
        raise SweepError(f"{directory}: sweep files are damaged ({error.problems[0]})") from None
    if config.sweep is None:
        raise SweepError(f"{directory / 'scenario.yaml'}: has no `sweep:` section; the sweep files are damaged")
    design = read_design(directory, manifest, config)
    return manifest, config, design


def _recorded(directory: Path, manifest: dict, name: str) -> dict:
    """The manifest's record of `name`, checked (`sim.results.manifest_files`: required in format 2)."""
    return manifest_files(manifest, Path(directory) / "manifest.json", [name])[name]


def _text_parameters(config: Scenario | None, manifest: dict) -> tuple[dict, list[str]]:
    """(parameters swept over lists with a non-number among their values, parameters of unknown type)."""
    if config is None or config.sweep is None:
        return {}, list(manifest.get("parameters", []))
    text = {}
    for key, spec in config.sweep.parameters.items():
        if isinstance(spec, list) and any(isinstance(v, (bool, str)) for v in spec):
            text[key] = spec
    return text, []


def _as_listed(frame: pd.DataFrame, path: Path, key: str, options: list) -> pd.Series:
    """A text column of a list-swept parameter back to the list's values (as pandas wrote them)."""
    by_text: dict[str, object] = {}
    for option in options:
        by_text.setdefault(str(option), option)
    values = []
    for row, text in enumerate(frame[key]):
        if text not in by_text:
            raise ResultFileError(f"{path}: line {row + 2}, column {key}: {text!r} is not one of the sweep's values")
        values.append(by_text[text])
    return pd.Series(values, index=frame.index, dtype=object)


def read_design(directory: Path, manifest: dict, config: Scenario | None = None) -> pd.DataFrame:
    """design.csv of a sweep, checked against its manifest (`sim.results.read_result_csv`).

    With the sweep's scenario, a parameter swept over a list gets the list's own values back
    (`'NA'` stays a string, `True` a bool); without it such a column is read as numbers if
    it holds only numbers, else as text.

    Raises:
        ResultFileError: missing, damaged, missing the id or parameter columns, a row count
            (`n_runs`) or checksum that differs from the manifest's, or an id or seed outside
            its range (`RUN_NUMBERS`: whole numbers >= 0), whatever the checksum.
    """
    path = Path(directory) / "design.csv"
    record = _recorded(directory, manifest, "design.csv")
    text, auto = _text_parameters(config, manifest)
    n_runs = manifest.get("n_runs")
    design = read_result_csv(
        path,
        text_columns={*text, "sobol_block"},  # sim.design's Sobol block label: A, B or AB
        auto_columns=auto,
        expected_columns=[*ID_COLUMNS, *manifest.get("parameters", [])],
        expected_rows=record.get("rows", n_runs if isinstance(n_runs, int) else None),
        sha256=record.get("sha256"),
    )
    check_numbers(design, RUN_NUMBERS, path)  # whatever its checksum: ids and seeds a design gives
    for key, options in text.items():
        design[key] = _as_listed(design, path, key, options)
    return design


def read_outcomes(directory: Path, manifest: dict, config: Scenario | None = None) -> pd.DataFrame:
    """outcomes.csv of a sweep, checked against its manifest (`sim.results.read_result_csv`).

    Columns point, replicate, seed, status, error, the parameters, the outputs, elapsed_s;
    `status` and `error` are text, the outputs numbers, the parameters as `read_design`.

    Raises:
        ResultFileError: missing, damaged, missing a column, or a row count or checksum that
            differs from the one the manifest recorded when the file was written.
    """
    path = Path(directory) / "outcomes.csv"
    record = _recorded(directory, manifest, "outcomes.csv")
    text, auto = _text_parameters(config, manifest)
    columns = [*ID_COLUMNS, "status", "error", *manifest.get("parameters", []), *manifest.get("outputs", [])]
    outcomes = read_result_csv(
        path,
        text_columns={"status", "error", *text},
        auto_columns=auto,
        expected_columns=columns,
        expected_rows=record.get("rows"),
        sha256=record.get("sha256"),
    )
    for key, options in text.items():
        outcomes[key] = _as_listed(outcomes, path, key, options)
    return outcomes


# Outcomes are finite or NaN (`sim.expressions` makes a non-finite result NaN); a magnitude
# beyond this one only an edited file holds, and the analysis's squares of it would overflow.
MAX_OUTCOME_MAGNITUDE = 1e100
OUTCOME_RANGE = Range(-MAX_OUTCOME_MAGNITUDE, MAX_OUTCOME_MAGNITUDE)  # or NaN (empty)
OUTCOME_VALUES = f"an outcome (finite, at most {MAX_OUTCOME_MAGNITUDE:g} in size, or empty)"


def outcome_problem(name: str, values, finished, failed=None) -> tuple[int, str] | None:
    """The first of the outcome `name`'s values (of runs, NaN: empty) that no run gives, and what it should be.

    A value is within `OUTCOME_RANGE` (`OUTCOME_VALUES`) and its kind's values
    (`sim.outcomes.outcome_range`: counts whole and >= 0, shares in [0, 1]...), or empty: a
    failed run's (`finished` False), or a finished run's of a kind that can be NaN (a
    share of nothing). A run that failed (`failed` True; status "failed") records no
    outcomes (`run_task`): its value is empty. `finished` and `failed` (default: none
    failed) are bools, one per value; a run of another status is neither. Used for the
    journal's lines (`check_journal_lines`) and outcomes.csv (`check_outcomes`) alike.

    Returns:
        (index of the value, what it should be: "an outcome (finite, ...)", "a whole number in
        [0, 1e+15] (what killed_total holds)", "empty (a failed run records no outcomes)"...),
        or None if every value is one a run gives.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    failed = np.zeros(len(values), dtype=bool) if failed is None else np.asarray(failed, dtype=bool)
    allowed, nan_ok = outcome_range(name)
    empty = np.isnan(values)
    checks = [
        (OUTCOME_RANGE.outside(values) & ~empty, OUTCOME_VALUES),
        (allowed.outside(values) & ~empty, f"{allowed.describe()} (what {name} holds)"),
        (
            empty & np.asarray(finished, dtype=bool) & (not nan_ok),
            f"{allowed.describe()} (what {name} holds; empty only where its run failed)",
        ),
        (failed & ~empty, "empty (a failed run records no outcomes)"),
    ]
    bad = np.logical_or.reduce([mask for mask, _ in checks])
    if not bad.any():
        return None
    k = int(np.flatnonzero(bad)[0])
    return k, next(what for mask, what in checks if mask[k])


def check_numbers(frame: pd.DataFrame, ranges: dict[str, Range], path: Path) -> None:
    """Refuse a column of a sweep's (or robustness job's) CSV holding a number outside its range (`RUN_NUMBERS`).

    Raises:
        ResultFileError: `<path>: line N, column C: <value> is not <range>` for the first such
            value of the first column (in the order of `ranges`) that has one.
    """
    import numpy as np

    for column, allowed in ranges.items():
        if column not in frame.columns:
            continue
        bad = allowed.outside(frame[column].to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = _plain(frame[column].iloc[row])
            raise ResultFileError(f"{path}: line {row + 2}, column {column}: {value!r} is not {allowed.describe()}")


def check_outcomes(
    outcomes: pd.DataFrame,
    design: pd.DataFrame,
    journal: list[dict],
    manifest: dict,
    path: Path,
    *,
    every_run: bool = True,
) -> None:
    """Refuse an outcomes.csv that its design and journal did not give, whatever its checksum.

    Every run (point, replicate) of design.csv, each once, with design.csv's seed and
    parameter values; its ids and elapsed_s within `RUN_NUMBERS`; its status one of
    `STATUSES`; its outputs values a run
    gives (`outcome_problem`: within `MAX_OUTCOME_MAGNITUDE` and the kind's values, or empty
    where the run failed or the kind can be NaN; none but empty where it failed); a failed
    run's error not empty (`run_task` records why) and no error longer than `ERROR_CHARS`
    (what a run keeps); its status and outputs those the journal
    (runs.jsonl, when it has the run) recorded; and its failed runs as many as manifest.json's
    `n_failed` (written with it at the end of each session), when the manifest gives one.

    Raises:
        ResultFileError: `<path>: line N: <what differs>` for the first such row, or
            `<manifest.json>: n_failed is N, but outcomes.csv has M failed runs ...`.
    """
    import math

    import numpy as np

    parameters = list(manifest.get("parameters", []))
    outputs = [c for c in manifest.get("outputs", []) if c in outcomes.columns]
    check_numbers(outcomes, RUN_NUMBERS, path)
    if "status" in outcomes.columns and (unknown := ~outcomes["status"].isin(STATUSES).to_numpy()).any():
        # analyze counts every status but "ok" as failed: an "error" where no journal has the run went unnoticed
        row = int(np.flatnonzero(unknown)[0])
        value = outcomes["status"].iloc[row]
        shown = repr(value) if isinstance(value, str) else "empty"
        raise ResultFileError(
            f"{path}: line {row + 2}, column status: {shown} is not {' or '.join(repr(s) for s in STATUSES)}"
        )
    key = ["point", "replicate"]
    repeated = outcomes.duplicated(key, keep="first").to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise ResultFileError(
            f"{path}: line {row + 2}: point {outcomes['point'].iloc[row]}, replicate "
            f"{outcomes['replicate'].iloc[row]} is listed twice"
        )
    columns = [c for c in ["seed", *parameters] if c in design.columns and c in outcomes.columns]
    planned = design.drop_duplicates(key).set_index(key)[columns]
    for row, (point, replicate) in enumerate(zip(outcomes["point"], outcomes["replicate"], strict=True)):
        if (point, replicate) not in planned.index:
            raise ResultFileError(f"{path}: line {row + 2}: point {point}, replicate {replicate} is not in design.csv")
    if every_run and len(outcomes) < len(planned):  # written when every run had finished: each run of design.csv
        listed = set(zip(outcomes["point"], outcomes["replicate"], strict=True))
        point, replicate = next(run for run in planned.index if run not in listed)
        missing = f"missing: {len(planned) - len(listed):,} of its {len(planned):,} runs"
        raise ResultFileError(
            f"{path}: point {point}, replicate {replicate} of design.csv is missing ({missing}); "
            "a finished sweep's outcomes.csv holds every run"
        )
    expected = planned.loc[list(zip(outcomes["point"], outcomes["replicate"], strict=True))].reset_index(drop=True)
    for column in columns:
        found, wanted = outcomes[column].reset_index(drop=True), expected[column]
        differs = ~((found == wanted) | (found.isna() & wanted.isna()))
        if differs.any():
            row = int(np.flatnonzero(differs.to_numpy())[0])
            raise ResultFileError(
                f"{path}: line {row + 2}, column {column}: {_plain(found.iloc[row])!r} where design.csv has "
                f"{_plain(wanted.iloc[row])!r}"
            )
    values = outcomes[outputs].to_numpy(dtype=float) if outputs else np.empty((len(outcomes), 0))
    status = outcomes["status"] if "status" in outcomes.columns else pd.Series("ok", index=outcomes.index)
    finished, failed = (status == "ok").to_numpy(), (status == "failed").to_numpy()
    problems = [(found[0], col, found[1]) for col, name in enumerate(outputs)
                if (found := outcome_problem(name, values[:, col], finished, failed)) is not None]  # fmt: skip
    if problems:
        row, col, what = min(problems)  # the first line's, and on it the first column's
        shown = "empty" if math.isnan(values[row, col]) else repr(float(values[row, col]))
        raise ResultFileError(f"{path}: line {row + 2}, column {outputs[col]}: {shown} is not {what}")
    # a failed run records why (`run_task`): a row turned from "ok" to "failed" by hand has no error
    errors = outcomes["error"] if "error" in outcomes.columns else pd.Series(math.nan, index=outcomes.index)
    explained = errors.map(lambda error: isinstance(error, str) and bool(error.strip())).to_numpy(dtype=bool)
    if (unexplained := failed & ~explained).any():
        row = int(np.flatnonzero(unexplained)[0])
        why = "where the run failed (status failed; a failed run records why)"
        raise ResultFileError(f"{path}: line {row + 2}, column error: empty, {why}")
    for row, error in enumerate(errors):  # a run keeps at most ERROR_CHARS of its error (`run_task`)
        if (why := too_long_error(error)) is not None:
            raise ResultFileError(f"{path}: line {row + 2}, column error: {why}")
    # and a finished run records none (`run_task` writes ""): an error beside "ok" was written by no run
    given = errors.map(lambda error: isinstance(error, str) and bool(error)).to_numpy(dtype=bool)
    if (contradicted := finished & given).any():
        row = int(np.flatnonzero(contradicted)[0])
        shown = _shown(errors.iloc[row])
        raise ResultFileError(
            f"{path}: line {row + 2}, column error: {shown}, where the run finished (status ok; it records no error)"
        )
    recorded = {(line.get("point"), line.get("replicate")): line for line in journal}  # the last line of a run wins
    for row, (point, replicate) in enumerate(zip(outcomes["point"], outcomes["replicate"], strict=True)):
        line = recorded.get((point, replicate))
        if line is None:
            continue
        if "status" in outcomes.columns and line.get("status") != outcomes["status"].iloc[row]:
            raise ResultFileError(f"{path}: line {row + 2}, column status: differs from {JOURNAL}")
        # a run's error as the journal recorded it (the row written from the same record); empty reads as NaN
        logged_error, error = line.get("error"), errors.iloc[row]
        if isinstance(logged_error, str) and (error if isinstance(error, str) else "") != logged_error:
            raise ResultFileError(f"{path}: line {row + 2}, column error: differs from {JOURNAL}")
        for col, name in enumerate(outputs):
            logged = line.get(name)
            logged = float("nan") if logged is None else logged
            if not isinstance(logged, (int, float)) or isinstance(logged, bool):
                raise ResultFileError(f"{path}: line {row + 2}, column {name}: {JOURNAL} holds no number for it")
            found = values[row, col]
            both_nan = math.isnan(found) and math.isnan(logged)
            if not (both_nan or math.isclose(found, logged, rel_tol=1e-12, abs_tol=0.0)):
                raise ResultFileError(
                    f"{path}: line {row + 2}, column {name}: {float(found)!r} where {JOURNAL} recorded {logged!r}"
                )
    if "n_failed" in manifest:  # written with outcomes.csv: a count that disagrees with it was changed since
        counted = int((outcomes["status"] != "ok").sum()) if "status" in outcomes.columns else 0
        if error := failed_count_error(Path(path).parent / "manifest.json", manifest, counted, Path(path).name):
            raise error


def _plain(value):
    """A numpy scalar as the Python value it holds (for messages: 0.5, not np.float64(0.5))."""
    return value.item() if hasattr(value, "item") else value


@contextmanager
def marked_if_interrupted(manifest: dict, manifest_path: Path) -> Iterator[None]:
    """Write status "interrupted" to `manifest_path` if Ctrl-C or SIGTERM stops the block.

    For the work after a job's runs (closing the backend, writing outcomes.csv and the final
    manifest): an interrupt there left the manifest saying "running" (seen with a Dask
    LocalCluster, whose closing takes a while). `journaled_map` marks interrupts during the runs
    itself; a manifest already marked is left as it is. Resuming finishes the job.
    """
    try:
        yield
    except (KeyboardInterrupt, BrokenExecutor):
        if manifest.get("status") != "interrupted":
            with signals_held():  # as in `journaled_map`: a second signal does not cut the record short
                manifest.update(status="interrupted", interrupted_utc=datetime.now(UTC).isoformat(timespec="seconds"))
                _write_json(Path(manifest_path), manifest)
        raise


def journaled_map(
    backend,
    function,
    tasks,
    journal: Journal,
    total: int,
    desc: str,
    initial: int,
    n_failed: int,
    on_row=None,
    *,
    manifest: dict,
    manifest_path: Path,
) -> tuple[int, int, dict]:
    """Run `function` over `tasks` on `backend`, appending each row to `journal` as it finishes.

    A progress bar (on a terminal) counts from `initial` of `total` and shows the failed runs.
    Used by sweeps and robustness jobs alike. If interrupted (Ctrl-C, or SIGTERM through the
    command line), `manifest` gets status "interrupted", the time and this session and is
    written to `manifest_path` before the interrupt goes on, so a directory never says
    "running" after its job stopped.

    Returns:
        (runs made now, failed runs in all, this session: runs, wall_time_s, executor, workers).
    """
    n_run = 0
    started = time.perf_counter()

    def session() -> dict:
        return {
            "runs": n_run,
            "wall_time_s": round(time.perf_counter() - started, 3),
            "executor": backend.label,
            "workers": backend.workers,
        }

    try:
        with progress_bar(total, desc, initial=initial) as bar:
            bar.set_postfix(failed=n_failed)
            for _, row in backend.map(function, tasks, bar=bar):
                journal.append(row)
                n_run += 1
                if row["status"] != "ok":
                    n_failed += 1
                    bar.set_postfix(failed=n_failed)
                if on_row is not None:
                    on_row(row)
    except (KeyboardInterrupt, BrokenExecutor):  # a worker killed (before it ignored signals, OOM)
        with signals_held():  # a second signal (`timeout`'s to the group, Slurm's) waits until this is recorded
            manifest.update(
                status="interrupted",
                interrupted_utc=datetime.now(UTC).isoformat(timespec="seconds"),
                last_session=session(),
            )
            try:  # the runs it holds, once they are on disk (`check_journal_kept`); tasks are runs not journalled
                journal.sync()
                manifest["journal_runs"] = initial + n_run
            except OSError:  # a failing disk: no record rather than one the journal may not keep
                pass
            _write_json(Path(manifest_path), manifest)
        raise
    return n_run, n_failed, session()


def run_sweep(
    directory: Path,
    *,
    workers: int = 1,
    dask: str | None = None,
    on_row: Callable[[dict], None] | None = None,
    backend: Backend | None = None,
    close_backend: bool = True,
) -> dict:
    """Run every run of the sweep in `directory` not yet in its journal.

    Runs go through `sim.executors` (`Backend.map`): at most a window of runs in flight,
    each finished run appended to the journal at once. Nothing is analysed here: the caller
    runs `sim.analysis.analyze(directory)` if it wants summaries and plots.

    Args:
        directory: a sweep directory made by `start_sweep`.
        workers: local worker processes (1: serial) of the backend to make
            (`sim.executors.make_backend`) when `backend` is not given.
        dask: with `workers`, the backend to make when `backend` is not given: None (local),
            "local" (a Dask LocalCluster) or a scheduler address.
        on_row: called with each run's row (as journalled) as it finishes.
        backend: a backend made beforehand, so that an unreachable cluster is reported
            before anything is written. Closed at the end either way, unless
            `close_backend` is False (the caller then closes it, e.g. after further runs).
        close_backend: False to leave a given `backend` open (a backend made here is always closed).

    Returns:
        Counts: runs (run now), total (runs in the design), done_before (already in the
        journal), failed (failed runs in outcomes.csv), todo (runs this call had to do),
        finished (rows in outcomes.csv).

    The directory is claimed for the call (`sim.results.claim_output_dir`; a no-op if the
    caller holds it). After Ctrl-C (or SIGTERM through `run.py`) the manifest says
    "interrupted" before the interrupt goes on, also when it comes after the last run (while
    the backend closes or outcomes.csv is written; `marked_if_interrupted`).

    Raises:
        SweepError: not a sweep directory, or damaged.
        OutputError: another job holds the directory, or it cannot be written.
        ExecutorError: the backend cannot start (`sim.executors.make_backend`).
    """
    close = close_backend or backend is None
    try:
        with claim_output_dir(directory, existing=True):
            return _run_claimed(directory, backend, close, workers, dask, on_row)
    except BaseException:
        if backend is not None and close:
            backend.close()  # idempotent: closing an executor twice is harmless
        raise


def _run_claimed(directory, backend, close, workers, dask, on_row) -> dict:
    manifest, config, design = load_sweep(directory)
    # Marked "interrupted" from here on: starting the workers takes seconds (a signal then left "running").
    with marked_if_interrupted(manifest, Path(directory) / "manifest.json"):
        backend = backend if backend is not None else make_backend(workers, dask)
        try:
            parameters, outputs = manifest["parameters"], manifest["outputs"]
            done_rows = read_journal(directory, repair=True, design=design)
            done = {(int(r["point"]), int(r["replicate"])) for r in done_rows}
            check_journal_kept(directory, manifest, len(done))
            check_kept_outcomes(directory, manifest, config, design, done_rows)  # before it is written anew
            n_failed = sum(r.get("status") != "ok" for r in done_rows)
            timeseries_dir = str(Path(directory) / "timeseries") if config.sweep.timeseries else None
            job = SweepJob(
                run_base(config),
                outputs=tuple(outputs),
                steps=manifest["steps"],
                timeseries_dir=timeseries_dir,
                source=manifest.get("scenario_file") or config.name,
            )
            from sim.design import override_strings

            declared = config.sweep.parameters  # values go back to their declared types
            tasks = [
                RunTask(int(r["point"]), int(r["replicate"]), int(r["seed"]), tuple(override_strings(r, declared)))
                for r in design.to_dict("records")
                if (int(r["point"]), int(r["replicate"])) not in done
            ]
            journal = Journal(directory)
            try:
                n_run, n_failed, session = journaled_map(
                    backend, partial(run_task, job), tasks, journal, len(design), f"sweep {config.name}",
                    len(done), n_failed, on_row, manifest=manifest, manifest_path=Path(directory) / "manifest.json",
                )  # fmt: skip
            finally:
                journal.close()
        finally:
            if close:
                backend.close()
        frame = finalize_outcomes(directory, design, parameters, outputs)
        files = dict(manifest.get("files") or {})
        files["outcomes.csv"] = file_record((Path(directory) / "outcomes.csv").read_bytes(), frame)
        manifest.pop("interrupted_utc", None)
        manifest.update(
            files=files,
            status="complete" if len(frame) == len(design) else "incomplete",
            finished_utc=datetime.now(UTC).isoformat(timespec="seconds"),
            last_session=session,
            n_failed=int((frame.status != "ok").sum()) if len(frame) else 0,
            journal_runs=len(frame),  # one row per distinct run journalled (closed, so fsynced: `check_journal_kept`)
        )
        _write_json(Path(directory) / "manifest.json", manifest)
    return {
        "runs": n_run,
        "total": len(design),
        "done_before": len(done),
        "failed": manifest["n_failed"],
        "todo": len(tasks),
        "finished": len(frame),
    }
