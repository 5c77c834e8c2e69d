"""Result files: write a run's records to a directory, and read them back.

A results directory holds:
- `scenario.yaml`  the fully resolved scenario (defaults filled in, overrides applied)
- `manifest.json`  versions, seeds, git commit, timings, how to re-run each replicate
- `timeseries.csv` one row per replicate and step, one column per recorded figure
- `events.csv`     clashes, defections, meetings, looting, new headquarters, insurgent attacks
- `maps.npz`       the grid, the sites, influence and control at start/middle/end, clash cells
- `plots/`         the figures drawn from the files above (`sim.plots`)

Writes are atomic: everything is written into a hidden staging directory next to the
target and renamed into place at the end, so an interrupted run never leaves a directory
that looks complete; single files are replaced with `os.replace` after a full write.

One job owns an output directory: every command that writes one claims it first
(`claim_output_dir`: a probe that the location is writable, then an exclusive lock in the
sibling file `.<name>.lock`, see `OutputLock`), before any run, and holds the claim until
it exits. A second job on the same directory is refused (`OutputError`, exit status 2).
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

try:
    import fcntl  # POSIX record locks (OutputLock)
except ImportError:  # Windows: no claim of output directories (a warning says so)
    fcntl = None

from sim.scenario import PROJECT_DIR, scenario_to_dict
from sim.schema import Scenario

if TYPE_CHECKING:  # reading results must not need the model code
    from sim.runner import RunResult

RESULTS_DIR = PROJECT_DIR / "results"  # the checkout's results/, or ./results for an installed package
FILES = ("scenario.yaml", "manifest.json", "timeseries.csv", "events.csv", "maps.npz")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_FILE_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()


class OutputError(Exception):
    """The output location cannot be used (exists and is not empty, not writable...)."""


# --------------------------------------------------------------------------- writing


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all: a temporary file beside it, synced, then renamed.

    Missing parent directories are created. The file gets the ordinary mode of a new file
    (0666 less the umask). On any error the temporary file is removed and the error re-raised;
    an existing `path` is then left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; results are ordinary shared files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` as UTF-8, atomically (`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_create_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a new file `path`, whole or not at all, never replacing an existing file.

    The data go to a temporary file beside `path` (synced), which is then hard-linked to
    `path`: the link fails if `path` appeared meanwhile. Where hard links are not supported
    the file is renamed into place after a last check. Missing parent directories are created.

    Raises:
        OutputError: `path` exists (a file, a directory or a link); nothing is written.
    """
    path = Path(path)
    exists = f"{path}: exists; results are never overwritten: remove it or choose another --out"
    if path.exists() or path.is_symlink():
        raise OutputError(exists)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses an existing path
        except FileExistsError:
            raise OutputError(exists) from None
        except OSError:  # no hard links on this file system
            if path.exists() or path.is_symlink():
                raise OutputError(exists) from None
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_create_text(path: Path, text: str) -> None:
    """Write `text` to a new file `path` as UTF-8 (`atomic_create_bytes`: never replaces a file)."""
    atomic_create_bytes(path, text.encode("utf-8"))


def timestamped_dir(parent: Path, kind: str = "", now: datetime | None = None) -> Path:
    """A path `<parent>/[<kind>-]<UTC timestamp>[-N]` that does not exist yet (N from 2 if needed).

    Two jobs may pick the same path in the same second: a job that writes there claims it
    with `claim_output_dir(None, parent=..., kind=...)`, which moves on to the next free N.
    """
    for candidate in _timestamped_candidates(parent, kind, now):
        if not (candidate.exists() or candidate.is_symlink()):
            return candidate
    raise AssertionError("unreachable")  # the candidates never run out


def _timestamped_candidates(parent: Path, kind: str, now: datetime | None):
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    base = Path(parent) / (f"{kind}-{stamp}" if kind else stamp)
    yield base
    n = 1
    while True:
        n += 1
        yield base.with_name(f"{base.name}-{n}")


def default_output_dir(scenario_name: str, now: datetime | None = None, kind: str = "") -> Path:
    """A new `results/<scenario>/[<kind>-]<UTC timestamp>[-N]` path (runs, sweeps, validations...)."""
    return timestamped_dir(RESULTS_DIR / scenario_name, kind, now)


def check_output_dir(out: Path) -> None:
    """Refuse an output directory that exists with files in it (never overwrite results).

    Raises:
        OutputError: `out` exists and is a file, or a directory that is not empty.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise OutputError(f"{out}: directory exists and is not empty; choose another --out")


def probe_writable(directory: Path) -> None:
    """Check, before any work, that `directory` can be created (or written, if it exists).

    A test file is created and removed in `directory` if it exists, else in its nearest
    existing ancestor. Works for root too where permission bits do not apply: a path under
    a regular file or on a read-only file system is refused all the same.

    Raises:
        OutputError: `directory` or one of its ancestors is a file, or the place cannot be written.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory}: exists and is not a directory")
    ancestor = directory
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{directory}: cannot be created: {ancestor} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"{directory}: cannot write in {ancestor} ({error.strerror or error})") from None


class OutputBusyError(OutputError):
    """Another live job holds the output directory (`OutputLock`)."""


def lock_path(directory: Path) -> Path:
    """The lock file of an output directory: `<parent>/.<name>.lock` (beside it, so it survives the rename)."""
    directory = Path(directory)
    return directory.parent / f".{directory.name}.lock"


_HELD: dict[str, OutputLock] = {}  # lock files this process holds, by real path
_HELD_GUARD = threading.Lock()


def _staging_pattern(name: str) -> re.Pattern:
    # tempfile.mkdtemp's 8 random characters: never matches another directory's staging name
    return re.compile(rf"^\.{re.escape(name)}\.partial-[a-z0-9_]{{8}}$")


class OutputLock:
    """One job's exclusive claim of an output directory, held until `release` (or process death).

    The lock is a POSIX record lock (`fcntl.lockf`) on the sibling file `lock_path(directory)`,
    which holds the owner's pid, host, command and start time for the refusal message. Why
    this kind of lock:
    - the kernel drops it when the owning process dies, however it dies (SIGKILL, a crash),
      so a dead job's lock file is simply taken over: no pid guessing, no stale-lock timeout;
    - it is not inherited by forked worker processes (only the driver holds it; workers of a
      process pool or Dask write run files but never claim the directory);
    - it works across hosts on NFS (v4, or v3 with lockd), where `flock` is emulated by it.
    After locking, the file's inode is compared with the path's: a releasing owner unlinks the
    file while still holding it, so a job that opened the old file tries again on the new one.
    Within one process, claims of the same directory nest (the inner one is a no-op).

    Use `claim_output_dir` rather than this class directly; both work as context managers.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = lock_path(self.directory)
        self._key = str(Path(os.path.realpath(self.path.parent)) / self.path.name)
        self._fd: int | None = None
        self._nested = False
        self._pid = os.getpid()
        self._created: list[Path] = []  # parent directories this claim made (removed again if left empty)

    def acquire(self) -> OutputLock:
        """Take the lock now or raise.

        Raises:
            OutputBusyError: another live process holds it (the message names it).
            OutputError: the lock file cannot be created (parent not writable...).
        """
        with _HELD_GUARD:
            outer = _HELD.get(self._key)
            if outer is not None and outer._pid == os.getpid():
                self._nested = True
                return self
            self._created = _missing_ancestors(self.path.parent)
            for _ in range(100):  # a retry only follows an owner's release: never many
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise OutputError(
                        f"{self.directory}: cannot create {self.path.parent} ({error.strerror})"
                    ) from None
                try:
                    fd = self._open()
                except FileNotFoundError:  # the parent was removed meanwhile by a job that gave up
                    continue
                if fd is None:
                    return self  # no locks on this file system: warned
                try:
                    now, held = os.stat(self.path), os.fstat(fd)
                    same = (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)
            else:
                raise OutputError(f"{self.directory}: cannot take its lock {self.path} (it keeps changing)")
            self._fd = fd
            _HELD[self._key] = self
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._remove_staging_leftovers()
        return self

    def _open(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), _FILE_MODE)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise OutputError(f"{self.directory}: cannot create its lock file {self.path} ({error.strerror})") from None
        try:
            if fcntl is None:
                raise OSError(errno.ENOSYS, "no POSIX locks on this platform")
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EAGAIN):
                holder = _describe_holder(fd)
                os.close(fd)
                raise OutputBusyError(
                    f"{self.directory}: in use by another job ({holder}); wait for it to end or choose another --out"
                ) from None
            os.close(fd)
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                print(
                    f"warning: {self.path.parent}: no file locks here ({error.strerror}); "
                    "nothing stops two jobs from writing the same directory",
                    file=sys.stderr,
                )
                return None
            raise OutputError(f"{self.directory}: cannot lock {self.path} ({error.strerror})") from None
        return fd

    def _remove_staging_leftovers(self) -> None:
        """Delete hidden staging directories of this directory left by dead jobs (all made under this lock)."""
        pattern = _staging_pattern(self.directory.name)
        try:
            entries = list(self.directory.parent.iterdir())
        except OSError:
            return
        for entry in entries:
            if pattern.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)

    def release(self) -> None:
        """Give the directory up: unlink the lock file while still holding it, then close it. Idempotent.

        Parent directories the claim created are removed again if they are empty (a job
        refused for bad input leaves nothing behind).
        """
        if self._nested or self._fd is None:
            return
        with _HELD_GUARD:
            _HELD.pop(self._key, None)
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass  # the file stays; the next job takes it over (the kernel lock goes with the close)
            os.close(self._fd)
            self._fd = None
            for created in reversed(self._created):  # deepest first; stops at the first non-empty one
                try:
                    created.rmdir()
                except OSError:
                    break

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _missing_ancestors(directory: Path) -> list[Path]:
    """`directory` and its ancestors that do not exist yet, outermost first."""
    missing = []
    directory = Path(os.path.abspath(directory))
    while not directory.exists() and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    return missing[::-1]


def _describe_holder(fd: int) -> str:
    """'pid 123 on host h since 2026-01-01T00:00:00+00:00: run.py sweep ...' from a lock file."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process that has just started"
    command = str(info.get("command", ""))[:120]
    return f"pid {info['pid']} on host {info.get('host', '?')} since {info.get('started_utc', '?')}" + (
        f": {command}" if command else ""
    )


def is_claimed_here(directory: Path) -> bool:
    """Whether this process holds the claim of `directory` (`claim_output_dir`)."""
    lock = OutputLock(directory)
    with _HELD_GUARD:
        outer = _HELD.get(lock._key)
        return outer is not None and outer._pid == os.getpid()


def claim_output_dir(
    out: Path | None,
    *,
    parent: Path | None = None,
    scenario: str | None = None,
    kind: str = "",
    existing: bool = False,
    now: datetime | None = None,
) -> OutputLock:
    """Claim an output directory for this job, before any work: probe, lock, check.

    Args:
        out: the directory (`--out`, or `--resume` with `existing=True`); None for a new
            `<parent>/[<kind>-]<UTC timestamp>[-N]`, where the first N whose lock is free and
            whose directory does not exist is taken (two jobs started in the same second get
            different directories).
        parent: where a default directory goes (with `out=None`).
        scenario: instead of `parent`, a scenario's name: the default goes to `RESULTS_DIR/<scenario>/`.
        kind: the default directory's prefix (`sweep`, `calibration`...).
        existing: `out` is a directory to continue (`--resume`): it must be writable, and
            may be non-empty.
        now: the time of a default directory's name (default: now, UTC).

    Returns:
        The held `OutputLock`; its `directory` is the claimed path. Release it (or use it as
        a context manager) when the job ends; process death releases it too.

    Raises:
        OutputError: not writable (`probe_writable`), in use by another job (`OutputBusyError`),
            or (new directories) exists and is not empty.
    """
    if out is None:
        if parent is None and scenario is not None:
            parent = RESULTS_DIR / scenario
        if parent is None:
            raise ValueError("claim_output_dir needs `out`, `parent` or `scenario`")
        probe_writable(parent)
        for candidate in _timestamped_candidates(parent, kind, now):
            if candidate.exists() or candidate.is_symlink() or is_claimed_here(candidate):
                continue  # (a claim of this process would nest: a new directory is wanted)
            try:
                lock = OutputLock(candidate).acquire()
            except OutputBusyError:
                continue
            if candidate.exists() or candidate.is_symlink():  # finished meanwhile by the job that held it
                lock.release()
                continue
            return lock
    out = Path(out)
    if existing:
        if not out.is_dir():
            raise OutputError(f"{out}: no such directory")
        probe_writable(out)
    else:
        probe_writable(out)
    lock = OutputLock(out).acquire()
    if not existing:
        try:
            check_output_dir(out)
        except BaseException:
            lock.release()
            raise
    return lock


class StagedDirectory:
    """A hidden sibling directory that becomes `final` only when everything is written.

    `final` is claimed (`OutputLock`) from creation to `commit` or `discard`, unless this
    process already holds it (then the outer claim goes on).
    """

    def __init__(self, final: Path):
        self.final = Path(final)
        self._lock = OutputLock(self.final).acquire()
        try:
            check_output_dir(self.final)
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.partial-", dir=self.final.parent))
            os.chmod(self.path, _DIR_MODE)
        except OSError as error:
            self._lock.release()
            raise OutputError(f"{self.final}: cannot stage it in {self.final.parent} ({error.strerror})") from None
        except BaseException:
            self._lock.release()
            raise

    def commit(self) -> Path:
        """Rename the staging directory to `final` (which may exist only if empty) and return `final`.

        Raises:
            OutputError: something was written to `final` since the staging directory was made.
        """
        try:
            check_output_dir(self.final)
            if self.final.is_dir():
                self.final.rmdir()  # empty: checked above
            os.replace(self.path, self.final)
        finally:
            self._lock.release()
        return self.final

    def discard(self) -> None:
        """Delete the staging directory and everything in it (after a failure); `final` is untouched."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.release()


def write_staged(final: Path, fill: Callable[[Path], None]) -> Path:
    """Write a results directory atomically: `fill(staging_path)` writes it, then it becomes `final`.

    On any exception (including KeyboardInterrupt) the staging directory is deleted and the
    exception re-raised, so `final` is either complete or untouched. `final` is claimed
    (`OutputLock`) meanwhile, unless this process holds it already.

    Raises:
        OutputError: `final` exists and is not empty (before or after `fill`), or another
            job holds it.
    """
    staged = StagedDirectory(final)
    try:
        fill(staged.path)
        return staged.commit()
    except BaseException:
        staged.discard()
        raise


def git_commit() -> str | None:
    """The project's git commit, with `+dirty` if tracked files have changes; None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions of Python, the main libraries and this package (for manifests); uninstalled ones are left out."""
    found = {"python": platform.python_version()}
    for package in ("mesa", "numpy", "scipy", "pandas", "pydantic", "matplotlib", "pyyaml"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    try:
        found["sim"] = metadata.version("faction-sim")
    except metadata.PackageNotFoundError:
        pass
    return found


def display_path(path: str) -> str:
    """A path relative to the current directory when it lies inside it (shorter re-run commands)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def build_manifest(
    config: Scenario,
    results: list[RunResult],
    *,
    scenario_file: str | None,
    overrides: list[str],
    root_seed: int,
    steps: int,
    workers: int,
    started: datetime,
    command: list[str] | None = None,
    executor: str | None = None,
    posterior: dict | None = None,
) -> dict:
    """The `manifest.json` of a run or set of replicates, finished now.

    Args:
        config: the resolved scenario that ran.
        results: the runs, one per replicate.
        scenario_file: the YAML file it came from (None for a built-in scenario by name).
        overrides: the `--set key=value` overrides applied, as written.
        root_seed: the root seed of the replicates.
        steps: days per run.
        workers: worker processes used.
        started: when the command started (UTC); with the time now it gives `wall_time_s`.
        command: the command line, if known.
        executor: the backend's label (`serial`, `processes:N`, `dask:ADDRESS`).
        posterior: a posterior ensemble's record (`sim.posterior.PosteriorDraws.manifest`):
            kept as `posterior`, and each replicate's draw, values and `--set`s in its entry.

    Returns:
        A JSON-ready dict: seeds and timings, a `rerun` command per replicate, library
        versions, git commit, platform, start and finish times (UTC) and wall time (s).
    """
    finished = datetime.now(UTC)
    where = display_path(scenario_file) if scenario_file else config.name
    set_args = "".join(f" --set {o}" for o in overrides)
    draws = dict((posterior or {}).get("replicates", {}))

    def rerun(r: RunResult) -> str:
        draw_args = "".join(f" --set {o}" for o in draws.get(r.replicate, {}).get("set", []))
        return f"python run.py run {where} --seed {r.seed} --steps {steps}{set_args}{draw_args}"

    def posterior_draw(r: RunResult) -> dict:
        if r.replicate not in draws:
            return {}
        entry = draws[r.replicate]
        return {"posterior_draw": entry["draw"], "posterior_point": entry["point"], "posterior_set": entry["set"]}

    return {
        "scenario": config.name,
        "scenario_file": display_path(scenario_file) if scenario_file else None,
        "overrides": list(overrides),
        "root_seed": int(root_seed),
        "n_replicates": len(results),
        "steps": int(steps),
        "workers": int(workers),
        "executor": executor,  # serial, processes:N or dask:ADDRESS (sim.executors)
        "replicates": [
            {
                "replicate": r.replicate,
                "seed": r.seed,
                "elapsed_s": round(r.elapsed_s, 4),
                "first_control_change": r.meta.get("first_control_change", {}),
                **posterior_draw(r),
                "rerun": rerun(r),
            }
            for r in results
        ],
        "posterior": None if posterior is None else {k: v for k, v in posterior.items() if k != "replicates"},
        "versions": versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": finished.isoformat(timespec="seconds"),
        "wall_time_s": round((finished - started).total_seconds(), 3),
        "command": command,
    }


def write_run_files(directory: Path, config: Scenario, results: list[RunResult], manifest: dict) -> None:
    """Write the five data files of a run into `directory` (normally a staging directory)."""
    directory = Path(directory)
    text = yaml.safe_dump(scenario_to_dict(config), sort_keys=False, allow_unicode=True)
    atomic_write_text(directory / "scenario.yaml", text)

    from sim.geography import build_geography  # local: reading results needs neither
    from sim.runner import stack_results

    for table in ("timeseries", "events"):
        atomic_write_text(directory / f"{table}.csv", stack_results(results, table).to_csv(index=False))

    geo = build_geography(config)
    clash = [np.column_stack([np.full(len(r.clash_cells), r.replicate), r.clash_cells]) for r in results]
    arrays = {
        "terrain": geo.terrain,
        "site_names": np.array(geo.site_names),
        "site_labels": np.array(geo.site_labels),
        "site_kinds": np.array(geo.site_kinds),
        "site_rows": geo.site_rows,
        "site_cols": geo.site_cols,
        "faction_names": np.array(list(config.factions)),
        "faction_labels": np.array([f.label for f in config.factions.values()]),
        "influence": np.stack([r.influence for r in results]),
        "control": np.stack([r.control for r in results]),
        "snapshot_steps": results[0].snapshot_steps,
        "clash_cells": np.concatenate(clash) if clash else np.zeros((0, 4), dtype=np.int64),
    }
    buffer_path = directory / "maps.npz"
    fd, tmp = tempfile.mkstemp(prefix=".maps.", suffix=".npz", dir=directory)
    os.close(fd)
    try:
        os.chmod(tmp, _FILE_MODE)
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, buffer_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The manifest goes last: its presence marks a complete set of files.
    atomic_write_text(directory / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- reading


@dataclass
class LoadedRun:
    """A results directory read back by `load_run`.

    Attributes:
        directory: where it was read from.
        manifest: `manifest.json`.
        timeseries: `timeseries.csv`, one row per replicate and step.
        events: `events.csv`, one row per event (empty, with its key columns, if there were none).
        maps: the arrays of `maps.npz` by name (`terrain`, `influence` (replicates, 3, F, H, W),
            `control` (replicates, 3, H, W), `snapshot_steps`, `clash_cells` (n, 4: replicate,
            step, row, col), site and faction names...).
    """

    directory: Path
    manifest: dict
    timeseries: pd.DataFrame
    events: pd.DataFrame
    maps: dict[str, np.ndarray]

    @property
    def faction_names(self) -> list[str]:
        """The scenario's faction names, in the order of the maps' faction axis."""
        return [str(x) for x in self.maps["faction_names"]]


def is_run_directory(directory: Path) -> bool:
    """Whether `directory` holds the five data files of a run (`FILES`), i.e. `load_run` can read it."""
    directory = Path(directory)
    return all((directory / name).is_file() for name in FILES)


def load_run(directory: str | Path) -> LoadedRun:
    """Read a results directory back (for plots, notebooks and analyses).

    Raises:
        OutputError: one of the five data files (`FILES`) is missing.
    """
    directory = Path(directory)
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise OutputError(f"{directory}: not a complete results directory (missing {', '.join(missing)})")
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    timeseries = pd.read_csv(directory / "timeseries.csv")
    try:
        events = pd.read_csv(directory / "events.csv")
    except pd.errors.EmptyDataError:
        events = pd.DataFrame(columns=["replicate", "seed", "step", "event"])
    with np.load(directory / "maps.npz", allow_pickle=False) as data:
        maps = {key: data[key] for key in data.files}
    return LoadedRun(directory, manifest, timeseries, events, maps)
