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

`manifest.json` also records, under `files`, each data file's sha256 and, for the CSVs,
their rows and text columns. Every reader of result files (plots, analyses, resumes, the
ACLED export, posterior ensembles) goes through the reading functions below
(`read_manifest`, `read_result_csv`, `read_maps`, `read_jsonl`), which refuse a damaged
file with `ResultFileError` (exit status 2): one line, `<path>: <what is wrong>` (empty,
not UTF-8, truncated JSON, a JSON key given twice, a JSON file larger than `MAX_JSON_FILE`
(refused before it is read), a row cut off, extra fields, a duplicate header, a row count or
checksum that differs from the manifest's, a non-number in a numeric column, a damaged
archive). CSVs are read with the empty field as the only missing value, so names such as
`NA`, `None` or `null` read back as themselves.

Checksums only show that files are as written; a directory from someone else can carry
checksums that match edited contents. So what a run's files hold is checked too, by every
reader of a run (`load_run`): the manifest in itself (`run_manifest_problem`), scenario.yaml
validated, timeseries.csv's columns those a run of the scenario records
(`sim.tables.timeseries_columns`), and the tables and maps against the manifest, the scenario
and each value's range (`check_run_contents`, ranges from `sim.tables.FIGURE_RANGES` and
`EVENT_FIELDS`).

Manifest formats (`manifest_format`): what a manifest promises about its directory.
- format 1 (written before `files` was recorded: no `kind` for a run, no `fingerprint` for
  a sweep, no `format` key, and a `started_utc` before `FILES_SINCE`): read with the checks
  that need no counts or checksums. A manifest with none of these marks that started later
  (or gives no start) lost them: refused, so that deleting `format`, `kind` and `files`
  together cannot switch the checks off either. An explicit `"format": 1` is believed only
  of such a manifest (an old start, no `kind` or `fingerprint`); otherwise it is format 2.
- format 2 (`"format": 2`; also any run manifest with `kind` "faction-sim run" and any
  sweep manifest with a `fingerprint`, written before `format` was): `files` must list each
  data file the reader opens, with its sha256 (and, for CSVs, rows and text columns); a
  manifest that lacks it, or has it malformed, is refused naming manifest.json
  (`manifest_files`), so that deleting `files` cannot switch the checks off.
  Journals (`runs.jsonl`) of a directory whose manifest says `"format": 2` carry a checksum
  on every line (`JOURNAL_CHECKSUM`, see `read_jsonl`); so must those of a manifest without
  `format` that started after `JOURNAL_CHECKSUMS_SINCE` (its `format` was deleted).

One job owns an output directory: every command that writes one claims it first
(`claim_output_dir`: a probe that the location is writable, then an exclusive lock in the
sibling file `.<name>.lock`, see `OutputLock`), before any run, and holds the claim until
it exits. A second job on the same directory is refused (`OutputError`, exit status 2).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import math
import os
import platform
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

try:
    import fcntl  # POSIX record locks (OutputLock)
except ImportError:  # Windows: no claim of output directories (a warning says so)
    fcntl = None

from sim.scenario import PROJECT_DIR, scenario_yaml
from sim.schema import Scenario
from sim.tables import (
    CONTROL_FIGURE,
    COUNT,
    EVENT_FIELDS,
    EVENT_KINDS,
    EVENT_REQUIRED,
    FINITE,
    LATER_FIGURES,
    NON_NEGATIVE,
    CsvTable,
    Range,
    events_csv,
    figure_range,
    timeseries_columns,
    timeseries_csv,
)

if TYPE_CHECKING:  # reading results must not need the model code
    import pandas as pd  # imported where a table is read: writing a run's files needs no pandas

    from sim.runner import RunResult

RESULTS_DIR = PROJECT_DIR / "results"  # the checkout's results/, or ./results for an installed package
FILES = ("scenario.yaml", "manifest.json", "timeseries.csv", "events.csv", "maps.npz")
RUN_KIND = "faction-sim run"  # manifest.json's `kind` for a run's results directory
MANIFEST_FORMAT = 2  # manifest.json's `format` written now (module docstring: what each promises)
# When manifests began to record `files` (and runs their `kind`): a manifest without a format
# that started later lost them (`manifest_format`).
FILES_SINCE = datetime(2026, 12, 2, 0, 20, 18, tzinfo=UTC)
# When journal lines began to carry checksums and manifests their `format` (`sim.sweep.journal_signed`).
JOURNAL_CHECKSUMS_SINCE = datetime(2026, 12, 2, 1, 50, 12, tzinfo=UTC)
# The key of each journal line's checksum: '#' keeps it apart from every outcome or column name.
JOURNAL_CHECKSUM = "#sha256"
# Text columns of the run's tables, for directories whose manifest does not list them (made
# before it did): the event fields that hold names or labels, and the sites' control columns.
EVENT_TEXT_COLUMNS = (
    "event", "faction", "from_faction", "to_faction", "site", "side_a", "side_b", "winner", "outcome",
    "ground", "partition",
)
TIMESERIES_TEXT_PREFIXES = ("control.",)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_FILE_MODE = 0o666 & ~_umask()
_DIR_MODE = 0o777 & ~_umask()


class OutputError(Exception):
    """The output location cannot be used (exists and is not empty, not writable...)."""


CHANGED = "content differs from the sha256 in manifest.json (changed or damaged since it was written)"


CHANGED_LINE = "content differs from its checksum (changed or damaged since it was written)"


class ResultFileError(OutputError):
    """A result file that is damaged or not what it should be; exit status 2.

    The message is one line: `<path>: <what is wrong>` (and the line, where there is one).
    """


# --------------------------------------------------------------------------- writing


def name_the_file(error: BaseException, path: Path, temporary: str | None = None) -> None:
    """Give an OSError raised while `path` was written that file's name, where it names none or `temporary`.

    A full disk raises ENOSPC from `write`, `flush` or `fsync`, which know only a file
    descriptor: without this the command line could say "cannot write: No space left on
    device" and not which file; the hidden temporary file written in its place means nothing
    to a reader. Other errors are left as they are.
    """
    if isinstance(error, OSError) and error.filename2 is None and error.filename in (None, temporary):
        error.filename = str(path)


def name_the_final_file(error: BaseException, staging: Path, final: Path) -> None:
    """Where an OSError names a file inside the hidden `staging` directory, name it as it would be in `final`.

    The staging directory is removed as the error unwinds; the reader needs the place the
    file was to have (`final/plots/x.png`), not `final/.staging-x/plots/x.png`.
    """
    if isinstance(error, OSError) and isinstance(error.filename, str):
        inside = Path(error.filename)
        if inside.is_relative_to(staging):
            error.filename = str(Path(final) / inside.relative_to(staging))


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
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        name_the_file(error, path, tmp)
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
    except OSError as error:
        name_the_file(error, path, tmp)
        raise
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


# Files that mark a started job's directory (sweep and robustness manifests, a calibration's spec).
RESUMABLE_MARKS = ("manifest.json", "calibration_spec.json")


def resumable_job(directory: Path) -> bool:
    """Whether `directory` holds a job that `--resume` continues.

    A sweep or robustness job (a manifest with its design.csv) or a calibration (its
    calibration_spec.json) is one; a run or a comparison is not.
    """
    directory = Path(directory)
    started = (directory / "manifest.json").is_file() and (directory / "design.csv").is_file()
    return started or (directory / "calibration_spec.json").is_file()


def check_output_dir(out: Path) -> None:
    """Refuse an output directory that exists with files in it (never overwrite results).

    Raises:
        OutputError: `out` exists and is a file, or a directory that is not empty.
    """
    out = Path(out)
    check_path_length(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if resumable_job(out):
            raise OutputError(
                f"{out}: holds a job's results; continue an interrupted sweep, calibration or robustness job "
                f"with --resume {shlex.quote(str(out))}, or choose another --out"
            )
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
    check_path_length(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory}: exists and is not a directory")
    ancestor = directory
    while not ancestor.exists() and ancestor.parent != ancestor:
        if ancestor.is_symlink():  # exists() is False through a dangling link or a loop: the final rename would fail
            link = "" if ancestor == directory else f"{ancestor} is "
            raise OutputError(f"{directory}: {link}{_unusable_link(ancestor)}")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{directory}: cannot be created: {ancestor} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"{directory}: cannot write in {ancestor} ({error.strerror or error})") from None


# Room left under a results directory for the longest path written inside it (a sweep's
# runs/<point>/<replicate>/plots/<figure>.png and staging names are far shorter).
_PATH_ROOM_INSIDE = 256


def check_path_length(directory: Path) -> None:
    """Refuse an output path the file system cannot hold (OutputError, one line), before anything is written.

    A name, or the whole path, longer than the file system allows (`os.stat` fails with
    ENAMETOOLONG, which `Path.exists` raises rather than answers), or a path so long that the files inside it
    would pass the system's limit on a path (PATH_MAX) less `_PATH_ROOM_INSIDE` bytes.
    """
    try:
        os.stat(directory)
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise OutputError(f"{directory}: the path or a name in it is too long for the file system") from None
    except ValueError:  # a NUL byte: refused where the path is read
        return
    limit = _path_max()
    if limit and len(os.fsencode(os.path.abspath(directory))) > limit - _PATH_ROOM_INSIDE:
        raise OutputError(
            f"{directory}: the path is too long (the files inside would pass the system's {limit}-byte limit)"
        )


def _path_max() -> int:
    """The system's longest path in bytes (PATH_MAX; 4096 on Linux), or 0 if it does not say."""
    try:
        return int(os.pathconf("/", "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):  # AttributeError: no os.pathconf (Windows)
        return 0


def _unusable_link(link: Path) -> str:
    """Why the symbolic link `link`, which leads to no directory, cannot hold results: "a symbolic link ..."."""
    try:
        os.stat(link)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link in a loop (too many levels of symbolic links)"
    except ValueError:
        pass
    return f"a symbolic link to nothing ({os.readlink(link)!r} does not exist); results are not written through it"


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

    def __init__(self, directory: Path, *, existing: bool = False):
        self.directory = Path(directory)
        self.existing = existing  # a directory to continue or read (plot, analyze, --resume): no --out to change
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
                advice = "wait for it to end" + ("" if self.existing else " or choose another --out")
                raise OutputBusyError(f"{self.directory}: in use by another job ({holder}); {advice}") from None
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
        if (problem := not_a_directory(out)) is not None:
            raise OutputError(problem)
        probe_writable(out)
    else:
        probe_writable(out)
    lock = OutputLock(out, existing=existing).acquire()
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
    except BaseException as error:
        staged.discard()
        name_the_final_file(error, staged.path, final)
        raise


def git_commit() -> str | None:
    """The project's git commit, with `+dirty` if tracked source files have changes; None outside a git checkout.

    Files under `results/` are outputs, not source: the README's gallery is tracked there, and
    `make gallery` rewriting it must not mark the figures it draws next as made by dirty code.
    """
    git = ["git", "-C", str(PROJECT_DIR)]
    commands = (
        [*git, "rev-parse", "HEAD"],
        [*git, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
    )
    started = []
    try:
        # Both at once: each takes a few milliseconds of a one-year run's second.
        for command in commands:
            started.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            )
        (commit, _), (dirty, _) = (process.communicate(timeout=5) for process in started)
        if started[0].returncode != 0:
            return None
        return commit.strip() + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


_VERSIONED = {  # distribution -> module: the libraries a manifest records the versions of
    "mesa": "mesa",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "pydantic": "pydantic",
    "matplotlib": "matplotlib",
    "pyyaml": "yaml",
}


def versions() -> dict[str, str]:
    """Versions of Python, the main libraries and this package (for manifests); uninstalled ones are left out."""
    found = {"python": platform.python_version()}
    for package, module in _VERSIONED.items():
        # An imported package's own __version__ is its installed version, read without scanning
        # the installed distributions (a few milliseconds each).
        version = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(version, str) and version:
            found[package] = version
            continue
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    try:
        found["sim"] = metadata.version("faction-sim")
    except metadata.PackageNotFoundError:
        pass
    return found


def rerun_command(argv: Iterable[object]) -> str:
    """`argv` as one command line that a POSIX shell (bash, sh, zsh) runs as exactly these arguments.

    Every re-run command the project records or prints goes through here, so a path or a
    `--set` value with a space, a quote or a `$` can be copied and pasted: `shlex.join`
    quotes each argument that needs it (`'a value with spaces'`). Items are turned into
    text with `str` (seeds, steps).
    """
    return shlex.join(str(part) for part in argv)


def display_path(path: str) -> str:
    """A path as re-run commands give it: relative to the project directory when inside it, else absolute.

    Re-run commands (`python run.py ...`) are run from the project directory (where run.py
    is), whatever directory the recorded job was started from, so a path relative to that
    directory would name another file, or none.
    """
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(PROJECT_DIR.resolve()))
    except ValueError:
        return str(resolved)


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
    draws = dict((posterior or {}).get("replicates", {}))

    def rerun(r: RunResult) -> str:
        sets = [*overrides, *draws.get(r.replicate, {}).get("set", [])]
        argv = ["python", "run.py", "run", where, "--seed", r.seed, "--steps", steps]
        return rerun_command(argv + [x for o in sets for x in ("--set", o)])

    def posterior_draw(r: RunResult) -> dict:
        if r.replicate not in draws:
            return {}
        entry = draws[r.replicate]
        return {"posterior_draw": entry["draw"], "posterior_point": entry["point"], "posterior_set": entry["set"]}

    return {
        "kind": RUN_KIND,
        "format": MANIFEST_FORMAT,
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


def file_record(data: bytes, frame: pd.DataFrame | CsvTable | None = None) -> dict:
    """What manifest.json records of one written file, to check it when it is read back.

    Returns `{"sha256": ...}`, plus for a table written from `frame` (a DataFrame, or a
    `sim.tables.CsvTable`): `rows` (data rows) and `text_columns` (the columns that hold
    text; every other column holds numbers).
    """
    record: dict = {"sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(frame, CsvTable):
        record["rows"] = frame.rows
        record["text_columns"] = list(frame.text_columns)
    elif frame is not None:
        import pandas as pd

        record["rows"] = len(frame)
        record["text_columns"] = [
            str(c) for c in frame.columns
            if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        ]
    return record


def write_run_files(directory: Path, config: Scenario, results: list[RunResult], manifest: dict) -> None:
    """Write the five data files of a run into `directory` (normally a staging directory).

    The manifest is written last, with a `files` entry (`file_record`) for the other four.
    """
    directory = Path(directory)
    files: dict[str, dict] = {}
    text = scenario_yaml(config)
    atomic_write_text(directory / "scenario.yaml", text)
    files["scenario.yaml"] = file_record(text.encode("utf-8"))

    from sim.geography import build_geography  # local: reading results does not need it

    for name, table in (("timeseries.csv", timeseries_csv(results)), ("events.csv", events_csv(results))):
        atomic_write_bytes(directory / name, table.data)
        files[name] = file_record(table.data, table)

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
        files["maps.npz"] = file_record(Path(tmp).read_bytes())
        os.replace(tmp, buffer_path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        name_the_file(error, buffer_path, tmp)
        raise
    # The manifest goes last: its presence marks a complete set of files.
    manifest = {**manifest, "files": files}
    atomic_write_text(directory / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- reading


def _not_regular(path: Path) -> str | None:
    """`<path>: is not a regular file...` for a FIFO, a device or a socket (or a link to one), else None.

    Asked before opening: opening a FIFO waits for a writer, and a link to /dev/zero never ends.
    A missing or unreadable file gives None: opening it then says why.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):  # a directory: open() names it
        return None
    return f"{path}: is not a regular file (a device, a FIFO or a link to one)"


def read_bytes(
    path: str | Path, *, sha256: str | None = None, allow_empty: bool = False, max_bytes: int | None = None
) -> bytes:
    """The bytes of a result file, checked against the manifest's sha256 when it gives one.

    With `max_bytes`, a larger file is refused before it is read (and no more than that is
    ever read, should it grow meanwhile).

    Raises:
        ResultFileError: no such file, not a regular file (a FIFO, a device), unreadable,
            larger than `max_bytes`, empty (unless `allow_empty`), or its sha256 differs
            from `sha256`.
    """
    path = Path(path)
    try:
        if (problem := _not_regular(path)) is not None:
            raise ResultFileError(problem)
        with open(path, "rb") as handle:
            if max_bytes is not None and os.fstat(handle.fileno()).st_size > max_bytes:
                raise ResultFileError(f"{path}: {_too_large(max_bytes)}")
            data = handle.read() if max_bytes is None else _read_at_most(handle, max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise ResultFileError(f"{path}: {_too_large(max_bytes)}")
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
    except OSError as error:
        raise ResultFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    if not data and not allow_empty:
        raise ResultFileError(f"{path}: empty file")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ResultFileError(f"{path}: {CHANGED}")
    return data


def _read_at_most(handle, limit: int) -> bytes:
    """Up to `limit` bytes of an open file, read in pieces of at most 16 MiB.

    `handle.read(limit)` sets aside `limit` bytes first: a bound of many gigabytes (a manifest
    that says a CSV has a million rows) ran out of memory before a byte was read.
    """
    pieces, total = [], 0
    while total < limit:
        piece = handle.read(min(16 * 1024 * 1024, limit - total))
        if not piece:
            break
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces)


def _too_large(max_bytes: int) -> str:
    return f"larger than {max_bytes // (1024 * 1024)} MiB, far more than any job writes; not read (changed or damaged)"


def read_text(
    path: str | Path, *, sha256: str | None = None, allow_empty: bool = False, max_bytes: int | None = None
) -> str:
    """A result file as UTF-8 text (`read_bytes`, then decoded).

    Raises:
        ResultFileError: as `read_bytes`, or not UTF-8 (the message gives the byte offset and line).
    """
    data = read_bytes(path, sha256=sha256, allow_empty=allow_empty, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ResultFileError(f"{path}: not UTF-8 (byte offset {error.start}, line {line})") from None


# The largest JSON file (a manifest, calibration.json...) read from results. A sweep's
# manifest does not grow with its runs (measured: 2.6 KB for 2 runs and for 16, so for
# 100,000 too: its runs are in design.csv and runs.jsonl); a run's grows by about 260 bytes
# per replicate (baseline, measured), so 64 MiB is some 250,000 replicates, far more than
# one run's maps fit in memory. Larger is refused before it is read.
MAX_JSON_FILE = 64 * 1024 * 1024  # bytes


class _DuplicateKey(ValueError):
    """A JSON object names one key twice (`_unique_keys`)."""


class _LongNumber(ValueError):
    """A JSON whole number longer than any a result file holds (`_json_int`)."""


# Digits of the longest whole number a result file holds (seeds: 19); Python refuses to read
# one of over 4,300 (an internal error), and one of thousands is no seed, count or step anyway.
MAX_JSON_INT_DIGITS = 30


def _json_int(text: str) -> int:
    """`json.loads`' parse_int: int(text), refusing more than MAX_JSON_INT_DIGITS digits (`_LongNumber`)."""
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise _LongNumber(f"a whole number of {digits:,} digits, more than any result holds ({MAX_JSON_INT_DIGITS})")
    return int(text)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """`json.loads`' object_pairs_hook: the object as a dict, refusing a key given twice.

    Python's json keeps the last of two equal keys silently, so `"steps": 30, "steps": 31`
    would be read as 31 by one reader and as 30 by another program.
    """
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


def read_manifest(path: str | Path, kind: str | None = None, *, required: Collection[str] = ()) -> dict:
    """A manifest (or any JSON object file) of a results directory, checked.

    Args:
        path: the JSON file.
        kind: the `kind` it must have (e.g. `RUN_KIND`, `sim.sweep.KIND`). A run's manifest
            written before runs recorded their kind is taken if it has the keys `required`.
        required: keys it must have.

    Raises:
        ResultFileError: no such file, larger than `MAX_JSON_FILE` (refused before it is
            read), empty, not UTF-8, truncated or damaged JSON (line and column), a key given
            twice in one object, nested too deeply, not a JSON object, a field of the wrong
            type or range (`manifest_fields_problem`), of another kind, or missing a required key.
    """
    path = Path(path)
    text = read_text(path, max_bytes=MAX_JSON_FILE)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_int=_json_int)
    except _LongNumber as error:
        raise ResultFileError(f"{path}: {error} (changed or damaged)") from None
    except json.JSONDecodeError as error:
        raise ResultFileError(
            f"{path}: truncated or damaged JSON at line {error.lineno}, column {error.colno} ({error.msg})"
        ) from None
    except _DuplicateKey as error:
        twice = f"the key {_shown(str(error))} is given twice in one object"
        raise ResultFileError(f"{path}: {twice} (changed or damaged)") from None
    except RecursionError:  # json recurses once per nested [ or {: no manifest nests that deep
        raise ResultFileError(f"{path}: damaged JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ResultFileError(f"{path}: not a JSON object (a {type(data).__name__})")
    if (problem := manifest_fields_problem(data)) is not None:
        raise ResultFileError(f"{path}: {problem} (changed or damaged)")
    found = data.get("kind")
    if kind is not None and found != kind and not (found is None and kind == RUN_KIND and required):
        raise ResultFileError(f"{path}: not a {kind.removeprefix('faction-sim ')} manifest (kind: {found!r})")
    missing = [key for key in required if key not in data]
    if missing:
        raise ResultFileError(f"{path}: missing {', '.join(repr(k) for k in missing)}")
    return data


def _whole(value, least: int = 0) -> bool:
    """Whether `value` is a JSON whole number (not a bool, not a float such as NaN) >= `least`."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _shown(value) -> str:
    """`value`'s repr, cut to 40 characters: a message stays one short line whatever the file holds."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def failed_count_error(manifest_path: Path, manifest: dict, counted: int, source: str) -> ResultFileError | None:
    """The error of a manifest whose `n_failed` differs from the `counted` failed runs of `source`; None if equal.

    `source` names the file the runs were counted in (outcomes.csv, runs.jsonl). `n_failed`
    has passed `manifest_fields_problem` (a whole number), so it is shown as written.
    """
    if manifest.get("n_failed") == counted:
        return None
    runs = f"{counted:,} failed run{'s' if counted != 1 else ''}"
    stated = json.dumps(manifest["n_failed"])[:40]
    return ResultFileError(f"{manifest_path}: n_failed is {stated}, but {source} has {runs} (changed or damaged)")


def manifest_fields_problem(manifest: dict) -> str | None:
    """What is wrong with the fields every reader takes from a manifest as numbers, or None.

    Checked where present, in every manifest (run, sweep, robustness, calibration) when it is
    read (`read_manifest`), so that no reader meets a NaN or a text where it counts days,
    replicates or seeds: `steps`, `n_replicates`, `n_runs` and `root_seed` (or null) whole numbers >= 0;
    `n_failed` (a sweep's or robustness job's failed runs) a whole number from 0 to `n_runs`;
    `replicate_seeds` (a robustness job's) a list of them; `replicates` a whole number >= 1
    (a sweep's runs per point) or a list of objects whose `seed` and `replicate` are whole
    numbers >= 0 (a run's replicates).

    Returns:
        One phrase naming the key path ("steps is not a whole number >= 0 (nan)"), or None.
    """
    for key in ("steps", "n_replicates", "n_runs", "root_seed"):
        if key in manifest and not _whole(manifest[key]) and not (key == "root_seed" and manifest[key] is None):
            return f"{key} is not a whole number >= 0 ({_shown(manifest[key])})"
    if "n_failed" in manifest:  # a count of the runs, checked against them by `sim.sweep.check_outcomes`
        n_failed, n_runs = manifest["n_failed"], manifest.get("n_runs")
        if not _whole(n_failed) or (_whole(n_runs) and n_failed > n_runs):
            within = f"0 to {n_runs:,}" if _whole(n_runs) else "0 or more"
            return f"n_failed is {json.dumps(n_failed)[:40]}, not a count of the job's runs ({within})"
    seeds = manifest.get("replicate_seeds", [])
    if not isinstance(seeds, list) or not all(_whole(seed) for seed in seeds):
        return f"replicate_seeds is not a list of whole numbers >= 0 ({_shown(seeds)})"
    if "replicates" not in manifest:
        return None
    entries = manifest["replicates"]
    if isinstance(entries, list):
        for number, entry in enumerate(entries):
            if not isinstance(entry, dict):
                return f"replicates.{number} is not an object"
            for key in ("seed", "replicate"):
                if key in entry and not _whole(entry[key]):
                    return f"replicates.{number}.{key} is not a whole number >= 0 ({_shown(entry[key])})"
        return None
    if not _whole(entries, 1):
        return f"replicates is neither a whole number >= 1 nor a list of replicates ({_shown(entries)})"
    return None


def manifest_format(manifest: dict) -> int:
    """The format of a manifest (module docstring): 1 or 2; -1 malformed, 0 lost (see below).

    Its `format`, else 2 for a run manifest with `kind` "faction-sim run" or a manifest with a
    sweep `fingerprint` (both came with `files`), else 1 if its `started_utc` is before
    `FILES_SINCE` (every older manifest has it), else 0: a manifest whose `format`, `kind`
    and `files` were deleted, refused by `manifest_files`, so that deleting them all does not
    pass it off as an old one. An explicit `"format": 1` is believed only of a manifest that
    could be old (started before `FILES_SINCE`, without `kind` "faction-sim run" or a
    `fingerprint`); any other is taken as format 2, so that writing `"format": 1` and deleting
    `files` does not switch the checksums off either.
    """
    found = manifest.get("format")
    newer = manifest.get("kind") == RUN_KIND or "fingerprint" in manifest
    if isinstance(found, int) and not isinstance(found, bool):
        if found == 1 and (newer or not started_before(manifest, FILES_SINCE)):
            return MANIFEST_FORMAT  # a format 1 that cannot be old: checked as what it is
        return found
    if "format" in manifest:
        return -1  # present but not an integer: refused by `manifest_files`
    if newer:
        return 2
    return 1 if started_before(manifest, FILES_SINCE) else 0


def started_before(manifest: dict, when: datetime) -> bool:
    """Whether the manifest's `started_utc` is a time before `when` (False if missing or not a time).

    How a manifest is known to come from before a record was written (`FILES_SINCE`,
    `JOURNAL_CHECKSUMS_SINCE`): every manifest has its start, so deleting a record does not
    make a new manifest pass for an old one.
    """
    try:
        started = datetime.fromisoformat(manifest["started_utc"])
    except (KeyError, TypeError, ValueError):
        return False
    return (started if started.tzinfo is not None else started.replace(tzinfo=UTC)) < when


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def manifest_files(manifest: dict, path: str | Path, names: Collection[str]) -> dict[str, dict]:
    """The `files` records of `names` in a manifest read from `path`, checked.

    For a format-1 manifest (written before `files` was recorded) the records present are
    returned and a missing one is `{}` (the reader then checks what needs no record). For a
    format-2 manifest each of `names` must have a record `{"sha256": 64 hex digits, "rows":
    int >= 0 (optional), "text_columns": [str, ...] (optional)}`.

    Returns:
        {name: record} for each of `names`.

    Raises:
        ResultFileError: `<path>: ...`: `files` missing or not an object, a record missing or
            malformed, or a `format` that is not a known one.
    """
    version = manifest_format(manifest)
    files = manifest.get("files")
    if version == 1:
        files = files if isinstance(files, dict) else {}
        return {name: files[name] if isinstance(files.get(name), dict) else {} for name in names}
    if version == 0:
        raise ResultFileError(
            f"{path}: `format` and `files` are missing, and it was not written before manifests had them"
            f" (started_utc {_shown(manifest.get('started_utc'))}); the files cannot be checked (changed or damaged)"
        )
    if version != MANIFEST_FORMAT:
        found = json.dumps(manifest.get("format"))[:40]  # as the file writes it: null, true, "2", 3
        raise ResultFileError(f"{path}: format {found} is not one this version reads (1 or 2)")
    if not isinstance(files, dict):
        what = "missing" if files is None else f"not an object (a {type(files).__name__})"
        raise ResultFileError(f"{path}: `files` is {what}; the files cannot be checked (changed or damaged)")
    records = {}
    for name in names:
        record = files.get(name)
        problem = None
        if not isinstance(record, dict):
            problem = "missing" if record is None else "not an object"
        elif not isinstance(record.get("sha256"), str) or not _SHA256.match(record["sha256"]):
            problem = "has no valid sha256"
        elif "rows" in record and (
            not isinstance(record["rows"], int) or isinstance(record["rows"], bool) or record["rows"] < 0
        ):
            problem = "has rows that are not a count"
        elif "text_columns" in record and not (
            isinstance(record["text_columns"], list) and all(isinstance(c, str) for c in record["text_columns"])
        ):
            problem = "has text_columns that are not a list of names"
        if problem:
            raise ResultFileError(f"{path}: files.{name} {problem}; the file cannot be checked (changed or damaged)")
        records[name] = record
    return records


def _csv_records(path: Path, text: str) -> tuple[list[str], list[int]]:
    """The header and each record's field count, checked as the csv module reads them.

    Returns (header, line of each data record); raises ResultFileError on a bad structure.
    """
    if text.startswith("\ufeff"):  # the writer never puts one: an editor saved it so ("missing column replicate")
        raise ResultFileError(f"{path}: starts with a byte-order mark (U+FEFF), which the project never writes")
    if not text.endswith("\n"):
        last = text.count("\n") + 1
        raise ResultFileError(f"{path}: row cut off at line {last} (the file does not end with a newline)")
    if '"' not in text:  # fast path, no quoting: one record per line
        lines = text.split("\n")[:-1]
        header = lines[0].split(",")
        counts = [line.count(",") + 1 for line in lines]
        records = [(n + 1, c) for n, c in enumerate(counts)]
    else:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        records, header = [], []
        try:
            for row in reader:
                if not header:
                    header = row
                records.append((reader.line_num, len(row)))
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                where = f"row cut off at line {reader.line_num} (a quoted field is not closed)"
                raise ResultFileError(f"{path}: {where}") from None
            raise ResultFileError(f"{path}: damaged CSV at line {reader.line_num} ({error})") from None
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ResultFileError(f"{path}: duplicate header {', '.join(map(repr, duplicates))}")
    width = len(header)
    for line, count in records[1:]:
        if count > width:
            raise ResultFileError(f"{path}: extra fields on line {line} ({count} fields, the header has {width})")
        if count < width:
            raise ResultFileError(
                f"{path}: row cut off at line {line} ({count} fields, the header has {width})"
            )
    return header, [line for line, _ in records[1:]]


def read_result_csv(
    path: str | Path,
    *,
    text_columns: Collection[str] | Callable[[str], bool] = (),
    auto_columns: Collection[str] | Callable[[str], bool] = (),
    expected_columns: Collection[str] = (),
    known_columns: Collection[str] | None = None,
    expected_rows: int | None = None,
    sha256: str | None = None,
    allow_empty: bool = False,
    counts_from: str = "manifest.json",
    known_from: str = "the columns expected",
) -> pd.DataFrame:
    """Read a result CSV written by this package, checking that it is whole.

    Every field is read as written: the empty field is the only missing value (NaN), so a
    name such as `NA`, `None`, `null` or `NaN` in a text column reads back as itself. Columns
    in `text_columns` (a collection, or a predicate on the column name) are text (str, NaN
    where empty); columns in `auto_columns` are numbers if every value is one, else text
    (e.g. a swept parameter of unknown type); every other column must hold numbers (int64
    where all are whole and none is missing, else float64; `inf` and `-inf` are numbers).

    Args:
        path: the CSV file.
        text_columns: the text columns.
        auto_columns: columns (or a predicate) that are numbers or text, whichever their values are.
        expected_columns: columns it must have.
        known_columns: the columns it may have, if it may have no others (None: any others).
        expected_rows: the number of data rows the manifest gives, if it gives one.
        sha256: the checksum the manifest gives, if it gives one (checked last, after the
            checks that say what is wrong).
        allow_empty: an empty file (0 bytes) reads as an empty frame instead of an error.
        counts_from: the file that gave `expected_rows` and `sha256`, for the messages.
        known_from: what `known_columns` are, for the messages ("unknown column 'x', not one of
            <known_from>").

    Returns:
        One row per data line, the columns in file order.

    Raises:
        ResultFileError: `<path>: <what is wrong>`: no such file, empty, not UTF-8 (byte
            offset), a row cut off (the last line without its newline, or with fewer fields
            than the header), extra fields on line N, a duplicate header, missing columns (the
            first few named), a column not in `known_columns`,
            N rows where the manifest says M, a non-numeric value in a numeric column (line),
            or a checksum that differs from the manifest's.
    """
    frame, _ = _read_result_csv(
        path, text_columns=text_columns, auto_columns=auto_columns, expected_columns=expected_columns,
        known_columns=known_columns, expected_rows=expected_rows, sha256=sha256, allow_empty=allow_empty,
        counts_from=counts_from, known_from=known_from,
    )  # fmt: skip
    return frame


MISSING_NAMED = 5  # missing columns a message names (then how many more)
MAX_CSV_FIELD = 4096  # bytes a field of a result CSV may take (a number takes at most 24, a quoted name a few dozen)
MAX_CSV_HEADER = 4 * 1024 * 1024  # bytes of a header line: thousands of columns of long names


def _csv_size_bound(path: Path, rows: int | None) -> int | None:
    """The most bytes a result CSV of `rows` data rows can take (header + rows x fields x `MAX_CSV_FIELD`), or None.

    From its header's field count: a file much larger than its manifest's rows allow (damaged,
    or replaced by something else) is refused before it is read, rather than read whole into
    memory (a 3 GiB timeseries.csv took 28 s and 6.4 GB). None when the rows are not known (a
    directory from before they were recorded), or the header cannot be read here (the reader
    then says why).

    Raises:
        ResultFileError: the file is larger than the bound, or its header line longer than
            `MAX_CSV_HEADER`.
    """
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        return None
    try:
        if _not_regular(path) is not None:
            return None
        with open(path, "rb") as handle:
            header = handle.readline(MAX_CSV_HEADER + 1)
        size = os.stat(path).st_size
    except OSError:
        return None
    if len(header) > MAX_CSV_HEADER:
        raise ResultFileError(f"{path}: a header line over {MAX_CSV_HEADER // 2**20} MiB; not read (changed, damaged)")
    fields = header.count(b",") + 1
    bound = len(header) + rows * fields * (MAX_CSV_FIELD + 1)
    if size > bound:
        raise ResultFileError(
            f"{path}: {size:,} bytes, more than {rows:,} rows of {fields:,} fields can take ({bound:,}); not read "
            "(changed or damaged)"
        )
    return bound


def _read_result_csv(
    path: str | Path,
    *,
    text_columns: Collection[str] | Callable[[str], bool] = (),
    auto_columns: Collection[str] | Callable[[str], bool] = (),
    expected_columns: Collection[str] = (),
    known_columns: Collection[str] | None = None,
    expected_rows: int | None = None,
    sha256: str | None = None,
    allow_empty: bool = False,
    counts_from: str = "manifest.json",
    known_from: str = "the columns expected",
    size_rows: int | None = None,
) -> tuple[pd.DataFrame, list[int]]:
    """`read_result_csv`, and the line of the file where each data row begins (for messages).

    `size_rows` (default `expected_rows`): the rows whose size bounds the bytes read (`_csv_size_bound`).
    """
    import pandas as pd

    path = Path(path)
    bound = _csv_size_bound(path, expected_rows if size_rows is None else size_rows)
    text = read_text(path, allow_empty=allow_empty, max_bytes=bound)
    if not text:
        return pd.DataFrame(columns=list(expected_columns)), []
    header, lines = _csv_records(path, text)
    present = set(header)
    missing = [c for c in expected_columns if c not in present]
    if missing:  # the first few named: a faction renamed in the header takes a dozen columns away
        more = f" and {len(missing) - MISSING_NAMED} more" if len(missing) > MISSING_NAMED else ""
        named = ", ".join(missing[:MISSING_NAMED]) + more
        raise ResultFileError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {named}")
    if known_columns is not None:  # before the values: an unknown column of text is not called a bad number
        known = set(known_columns)
        unknown = [c for c in header if c not in known]
        if unknown:
            raise ResultFileError(f"{path}: unknown column {_shown(unknown[0])}, not one of {known_from}")
    if expected_rows is not None and len(lines) != expected_rows:
        raise ResultFileError(f"{path}: {len(lines)} rows where {counts_from} says {expected_rows}")
    is_text = text_columns if callable(text_columns) else set(text_columns).__contains__
    is_auto = auto_columns if callable(auto_columns) else set(auto_columns).__contains__
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype={c: object for c in header if is_text(c) or is_auto(c)},
            keep_default_na=False,
            na_values=[""],  # the writer's NaN and None; nothing else is missing
        )
    except (pd.errors.ParserError, ValueError) as error:  # checked above; kept as a last net
        raise ResultFileError(f"{path}: damaged CSV ({str(error).strip().splitlines()[-1]})") from None
    for column in frame.columns:
        values = frame[column]
        if is_text(column) or values.dtype.kind in "iuf":
            continue
        if values.dtype.kind == "O":
            numbers = _to_numbers(values)
        else:  # e.g. bool, from a column of True/False: not numbers
            numbers = pd.Series(np.nan, index=values.index)
        bad = numbers.isna() & values.notna()
        if is_auto(column):
            if not bad.any():
                frame[column] = numbers
            continue
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            what = _long_number(values.iloc[row]) or f"non-numeric value {str(values.iloc[row])!r}"
            raise ResultFileError(f"{path}: {what} in numeric column {column} at line {lines[row]}")
        frame[column] = numbers
    if sha256 is not None and hashlib.sha256(text.encode("utf-8")).hexdigest() != sha256:
        raise ResultFileError(f"{path}: {CHANGED}")
    return frame, lines


def _to_numbers(values: pd.Series) -> pd.Series:
    """`pd.to_numeric(values, errors="coerce")`, with a whole number beyond a float's range (over 308 digits) as NaN.

    pandas raised OverflowError for such a number (read as a Python int), and every reader
    of the file stopped with an internal error instead of naming it.
    """
    import pandas as pd

    try:
        return pd.to_numeric(values, errors="coerce")
    except OverflowError:
        return pd.to_numeric(values.map(lambda value: None if _beyond_float(value) else value), errors="coerce")


def _beyond_float(value) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    except (TypeError, ValueError):
        return False
    return False


def _long_number(value) -> str | None:
    """'a whole number of N digits, beyond a float's range (...)' for such a field, else None (it is no number)."""
    text = str(value)
    if re.fullmatch(r"[+-]?\d{309,}", text):  # too long for a float (and, past 4,300 digits, for Python to read)
        return f"a whole number of {len(text.lstrip('+-')):,} digits, beyond a float's range ({text[:12]}...)"
    return None


def read_maps(path: str | Path, *, sha256: str | None = None, n_replicates: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of a run's maps.npz, checked for completeness and consistent shapes.

    Checks: a readable zip archive holding `MAP_ARRAYS` and no other, influence (R, T, F, H, W), control
    (R, T, H, W) and terrain (H, W) on one grid, F faction names, one name, label, kind, row
    and column per site, T snapshot steps, R == `n_replicates` (the manifest's) when given.

    Raises:
        ResultFileError: `<path>: <what is wrong>` (zip error, missing array, wrong shape, or
            a checksum that differs from the manifest's).
    """
    path = Path(path)
    data = read_bytes(path)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            maps = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as error:
        raise ResultFileError(f"{path}: damaged archive ({type(error).__name__}: {error})".splitlines()[0]) from None
    missing = [key for key in MAP_ARRAYS if key not in maps]
    if missing:
        raise ResultFileError(f"{path}: missing array{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    unknown = [key for key in maps if key not in MAP_ARRAYS]
    if unknown:  # the writer's arrays are fixed (`MAP_ARRAYS`): another was added by something else
        raise ResultFileError(f"{path}: array {_shown(unknown[0])} is none that a run writes ({', '.join(MAP_ARRAYS)})")
    influence, control, terrain = maps["influence"], maps["control"], maps["terrain"]
    n_sites = len(maps["site_names"]) if maps["site_names"].ndim == 1 else -1
    problems = []
    if terrain.ndim != 2:
        problems.append(f"terrain has shape {terrain.shape}, not (rows, cols)")
    elif control.ndim != 4:
        problems.append(f"control has shape {control.shape}, not (replicates, snapshots, rows, cols)")
    elif control.shape[2:] != terrain.shape:  # which one was cut, the scenario's grid says (`check_run_contents`)
        rows, cols = control.shape[2:]
        problems.append(
            f"control's grid is {rows} x {cols} cells, terrain's {terrain.shape[0]} x {terrain.shape[1]} (the arrays "
            "disagree)"
        )
    elif influence.shape != (*control.shape[:2], len(maps["faction_names"]), *terrain.shape):
        wanted = (*control.shape[:2], len(maps["faction_names"]), *terrain.shape)
        problems.append(f"influence has shape {influence.shape}, not {wanted}")
    elif maps["snapshot_steps"].shape != (control.shape[1],):
        problems.append(f"snapshot_steps has shape {maps['snapshot_steps'].shape}, not ({control.shape[1]},)")
    elif n_replicates is not None and control.shape[0] != n_replicates:
        problems.append(f"{control.shape[0]} replicates where manifest.json says {n_replicates}")
    for key in ("site_labels", "site_kinds", "site_rows", "site_cols"):
        if key in maps and maps[key].shape != (n_sites,):
            problems.append(f"{key} has shape {maps[key].shape}, not ({n_sites},) as site_names")
            break
    if "clash_cells" in maps and (maps["clash_cells"].ndim != 2 or maps["clash_cells"].shape[1] != 4):
        problems.append(f"clash_cells has shape {maps['clash_cells'].shape}, not (n, 4)")
    if problems:
        raise ResultFileError(f"{path}: {problems[0]}")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ResultFileError(f"{path}: {CHANGED}")
    return maps


def journal_line(row: dict) -> bytes:
    """One journal line for `row`: its JSON with a checksum (`JOURNAL_CHECKSUM`) and a newline.

    The checksum is the sha256 of the row's canonical JSON (`_canonical`, without the
    checksum); `read_jsonl` recomputes it, so a value changed after writing is found.
    """
    line = dict(row)
    line[JOURNAL_CHECKSUM] = hashlib.sha256(_canonical(row)).hexdigest()
    return json.dumps(line, allow_nan=True).encode() + b"\n"


def _canonical(row: dict) -> bytes:
    # Sorted keys, no spaces, ASCII: the same bytes for the same values, however the line was spaced.
    return json.dumps(row, allow_nan=True, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


MAX_JOURNAL_LINE = 1024 * 1024  # bytes: a run's row is well under 100 KiB even with hundreds of outputs


def _journal_lines(path: Path, max_lines: int | None) -> tuple[list[bytes], bytes]:
    """(the whole lines of a journal, without their newlines; the torn last line or b""), bounded.

    Raises:
        ResultFileError: not a regular file, unreadable, a line longer than `MAX_JOURNAL_LINE`,
            or more than `max_lines` lines (more than the job has runs).
    """
    lines: list[bytes] = []
    try:
        if (problem := _not_regular(path)) is not None:
            raise ResultFileError(problem)
        with open(path, "rb") as handle:
            while chunk := handle.readline(MAX_JOURNAL_LINE + 1):
                if len(chunk) > MAX_JOURNAL_LINE:
                    too_long = f"is longer than {MAX_JOURNAL_LINE // 1024} KiB"
                    raise ResultFileError(f"{path}: line {len(lines) + 1} {too_long}; the journal is damaged")
                if not chunk.endswith(b"\n"):
                    return lines, chunk  # the last line, torn by a crash mid-write
                if max_lines is not None and len(lines) >= max_lines:
                    too_many = f"more than {max_lines} lines, more than its job can have written"
                    raise ResultFileError(f"{path}: {too_many}; the journal is damaged")
                lines.append(chunk[:-1])
    except OSError as error:
        raise ResultFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    return lines, b""


def read_jsonl(
    path: str | Path,
    *,
    repair: bool = False,
    signed: bool = False,
    max_lines: int | None = None,
    check: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """The records of a journal (one JSON object per line, appended as runs finish).

    A last line without its newline was torn by a crash mid-write: it is left out, and cut
    off the file when `repair` is set (so that appending goes on after the last whole line).
    Any other line that is not a JSON object means the journal is damaged: refused, naming
    the line, and nothing is cut off. A missing file has no records.

    Each line written by `journal_line` carries the checksum of its content under
    `JOURNAL_CHECKSUM`; it is verified and left out of the record returned, so records read
    back are exactly the rows journaled. Lines without one were written before checksums
    were: they are taken only before the journal's first checksummed line (a journal begun
    by an older version and resumed by this one) and only when `signed` is False (the
    directory's manifest is of format 2, whose journals are checksummed from the first line).

    What is read is bounded: a journal that is not a regular file (a link to /dev/zero, a
    FIFO), a line longer than `MAX_JOURNAL_LINE`, or more than `max_lines` lines (the job's
    runs, when known) is refused before it fills the memory.

    `check`, if given, is called with the records (record k from line k + 1) before a torn
    last line is cut off, and raises `ResultFileError` for records no job wrote (what each
    holds: `sim.sweep.check_journal_lines`); the journal is then kept as it is too.

    Raises:
        ResultFileError: `<path>: line N ...`: not a JSON object, content that differs from
            its checksum, or no checksum where one is due, too long, too many lines, not a
            regular file, or refused by `check` (the journal is kept as it is).
    """
    path = Path(path)
    if not os.path.lexists(path):
        return []
    lines, torn = _journal_lines(path, max_lines)
    rows = []
    checksummed = False
    for number, raw in enumerate(lines, start=1):
        try:
            row = json.loads(raw, parse_int=_json_int)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, _LongNumber) as error:
            if isinstance(error, RecursionError):  # json recurses once per nested [ or {
                reason = "nested too deeply"
            elif isinstance(error, _LongNumber):
                reason = str(error)
            else:
                reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
            raise ResultFileError(
                f"{path}: line {number} is not a JSON object ({reason}); the journal is damaged"
            ) from None
        if not isinstance(row, dict):
            raise ResultFileError(f"{path}: line {number} is not a JSON object; the journal is damaged")
        if JOURNAL_CHECKSUM in row:
            checksum = row.pop(JOURNAL_CHECKSUM)
            if checksum != hashlib.sha256(_canonical(row)).hexdigest():
                raise ResultFileError(f"{path}: line {number}: {CHANGED_LINE}")
            checksummed = True
        elif checksummed or signed:
            where = "after checksummed lines" if checksummed else "in a journal of a format-2 directory"
            raise ResultFileError(
                f"{path}: line {number}: has no checksum {where} (changed or damaged since it was written)"
            )
        rows.append(row)
    if check is not None:
        check(rows)
    if repair and torn:
        with open(path, "r+b") as handle:
            handle.truncate(sum(len(line) + 1 for line in lines))
            os.fsync(handle.fileno())
    return rows


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
        config: `scenario.yaml`, validated (`sim.scenario.load_scenario`).
    """

    directory: Path
    manifest: dict
    timeseries: pd.DataFrame
    events: pd.DataFrame
    maps: dict[str, np.ndarray]
    config: Scenario | None = None

    @property
    def faction_names(self) -> list[str]:
        """The scenario's faction names, in the order of the maps' faction axis."""
        return [str(x) for x in self.maps["faction_names"]]


# Every array a run's maps.npz holds (every version wrote all of them): a reader needs each,
# the plots' site labels and kinds, and the clash cells that `check_run_contents` compares
# with events.csv (a missing one was a KeyError, or no clashes drawn).
MAP_ARRAYS = (
    "terrain", "control", "influence", "snapshot_steps", "site_names", "site_labels", "site_kinds", "site_rows",
    "site_cols", "faction_names", "faction_labels", "clash_cells",
)  # fmt: skip
# The dtype of each numeric array of maps.npz, as every version wrote it (`sim.runner.run_model`,
# `sim.geography.build_geography`, `save`): influence float32 (the control check allows for its
# rounding, `_check_influence_and_control`), a float64 one was written by something else.
MAP_DTYPES = {
    "terrain": np.int8, "control": np.int16, "influence": np.float32, "snapshot_steps": np.int64,
    "site_rows": np.int64, "site_cols": np.int64, "clash_cells": np.int64,
}  # fmt: skip
EVENT_KEY_COLUMNS = ["replicate", "seed", "step", "event"]


def is_run_directory(directory: Path) -> bool:
    """Whether `directory` holds the five data files of a run (`FILES`), i.e. `load_run` can read it."""
    directory = Path(directory)
    return all((directory / name).is_file() for name in FILES)


def _table_text_columns(record: dict, table: str):
    """The text columns of a run's table: the manifest's list, else the rule for older directories."""
    if "text_columns" in record:
        return set(record["text_columns"])
    if table == "events":
        return set(EVENT_TEXT_COLUMNS)
    return lambda column: str(column).startswith(TIMESERIES_TEXT_PREFIXES)


# Each kind of output directory (its manifest.json's `kind`; a calibration's is in
# calibration.json, or calibration_spec.json while it runs) as a message names it, and the
# command that reads it, so that a directory given to a command that reads another kind
# says what it is and where it goes (`results_dir_problem`). The kinds are those of
# sim.sweep, sim.calibration, sim.robustness and sim.comparison (each is here:
# tests/test_damaged_results.py).
DIRECTORY_KINDS = {
    RUN_KIND: ("a run's results directory", "run.py plot, compare, export-acled and compare-events read it"),
    "faction-sim sweep": ("a sweep directory", "run.py analyze reads it"),
    "faction-sim calibration": ("a calibration directory", "run.py run --posterior reads it"),
    "faction-sim robustness": ("a robustness directory", "run.py robustness --resume continues it"),
    "faction-sim comparison": ("a comparison directory", "written by run.py compare"),
}


def directory_kind(directory: Path) -> str | None:
    """The `kind` its manifest.json (or calibration.json) declares, or None if none can be read.

    None also for a damaged manifest: the reader of the wanted kind then names the damage.
    """
    for name in ("manifest.json", "calibration.json", "calibration_spec.json"):
        path = directory / name
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device could block
                continue
            found = read_manifest(path).get("kind")
        except (OSError, ValueError, ResultFileError):
            continue
        if isinstance(found, str):
            return found
    return None


def not_a_directory(directory: str | Path) -> str | None:
    """Why `directory` is no directory ("no such directory", "not a directory (a file)"...), or None."""
    directory = Path(directory)
    try:
        info = os.stat(directory)
    except (FileNotFoundError, NotADirectoryError):
        return f"{directory}: no such directory"
    except ValueError:  # e.g. an embedded NUL in the name
        return f"{directory}: not a valid directory name"
    except OSError as error:
        return f"{directory}: cannot read it ({error.strerror or error})"
    if not stat.S_ISDIR(info.st_mode):
        return f"{directory}: not a directory" + (" (a file)" if stat.S_ISREG(info.st_mode) else "")
    return None


def check_plots_dir(directory: str | Path) -> None:
    """Refuse to draw into `directory/plots` when it is there and not a directory (a file, a dangling link).

    Called by `plot` and `analyze` before they write anything, so that none of their files
    is replaced and then the figures fail.

    Raises:
        OutputError: `<directory>/plots: not a directory (...); move it away to draw the figures`.
    """
    plots = Path(directory) / "plots"
    if os.path.lexists(plots) and not plots.is_dir():
        what = "a file" if plots.is_file() else "a link to nothing" if plots.is_symlink() else "a special file"
        raise OutputError(f"{plots}: not a directory ({what}); move it away to draw the figures")


def results_dir_problem(directory: str | Path, kind: str = RUN_KIND) -> str | None:
    """Why `directory` is not an output directory of `kind`: one line starting with its path; None if it may be.

    Every command that reads a results directory asks this first (`load_run`, `load_sweep`,
    `sim.acled`), so that each says alike: "no such directory", "not a directory (a file)",
    or, for another kind of directory (`DIRECTORY_KINDS`), what it is and the command that
    reads it (`plot` given a sweep: "a sweep directory, not a run's results directory
    (run.py analyze reads it)"). A directory of no known kind may still be one written
    before kinds were recorded: the reader checks its files.
    """
    directory = Path(directory)
    if (problem := not_a_directory(directory)) is not None:
        return problem
    found = directory_kind(directory)
    if found is not None and found != kind and found in DIRECTORY_KINDS:
        what, reader = DIRECTORY_KINDS[found]
        wanted = DIRECTORY_KINDS.get(kind, (f"a {kind.removeprefix('faction-sim ')} directory",))[0]
        return f"{directory}: {what}, not {wanted} ({reader})"
    return None


def run_manifest_problem(manifest: dict) -> str | None:
    """What is wrong with a run's manifest.json in itself, or None (every reader of a run asks: `load_run`).

    Beyond `manifest_fields_problem`: `steps` given; `replicates` a list of one or more
    entries, each with its `seed`, no replicate number and no seed twice, as many as
    `n_replicates`; `root_seed` (if given) a whole number; `overrides` (if given) a list of
    texts; each `first_control_change` (if given) an object. What it says of the runs is
    checked against their files by `check_run_contents`.

    Returns:
        One phrase naming the key path, or None.
    """
    if "steps" not in manifest:
        return "steps is missing"
    entries = manifest.get("replicates")
    if not isinstance(entries, list) or not entries:
        return f"replicates is not a list of one or more replicates ({_shown(entries)})"
    for number, entry in enumerate(entries):
        if "seed" not in entry:
            return f"replicates.{number} has no seed"
        if not isinstance(entry.get("first_control_change", {}), dict):
            return f"replicates.{number}.first_control_change is not an object"
    numbers = [_replicate_number(entry, k) for k, entry in enumerate(entries)]
    for key, values in (("replicate", numbers), ("seed", [entry["seed"] for entry in entries])):
        seen: set[int] = set()
        for number, value in enumerate(values):
            if value in seen:
                repeated = f"replicates.{number}.{key} {_shown(value)} is an earlier replicate's"
                return f"replicates repeat a seed or a replicate number ({repeated})"
            seen.add(value)
    if manifest.get("n_replicates") != len(entries):
        return f"n_replicates is {_shown(manifest.get('n_replicates'))}, but replicates lists {len(entries)}"
    if "root_seed" in manifest and not _whole(manifest["root_seed"]):
        return f"root_seed is not a whole number >= 0 ({_shown(manifest['root_seed'])})"
    overrides = manifest.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        return f"overrides is not a list of KEY=VALUE texts ({_shown(overrides)})"
    for number, override in enumerate(overrides):  # each goes into figure footers and rerun commands
        if "=" not in override or not override.isprintable():
            return f"overrides.{number} is not a KEY=VALUE text on one line ({_shown(override)})"
    return None


def _replicate_number(entry: dict, position: int) -> int:
    """A manifest entry's replicate number (its position in the list where it gives none)."""
    return entry.get("replicate", position)


def load_manifest_of_run(directory: str | Path) -> dict:
    """The manifest.json of a run's results directory, checked (`read_manifest`, `run_manifest_problem`)."""
    path = Path(directory) / "manifest.json"
    manifest = read_manifest(path, RUN_KIND, required=("n_replicates", "replicates"))
    if (problem := run_manifest_problem(manifest)) is not None:
        raise ResultFileError(f"{path}: {problem} (changed or damaged)")
    return manifest


def _run_config(directory: Path) -> Scenario:
    """The run's scenario.yaml, validated as any scenario (`sim.scenario.load_scenario`).

    Raises:
        ScenarioError: its first problem only (one line, naming the file, line and key path,
            as every reader of a scenario says it; exit status 2).
    """
    from sim.scenario import ScenarioError, load_scenario_with_document

    try:
        config, document = load_scenario_with_document(directory / "scenario.yaml")
    except ScenarioError as error:
        raise ScenarioError(error.problems[:1]) from None
    if len(document.files) > 1:  # written whole (`sim.scenario.scenario_yaml`): an `extends:` reads files elsewhere
        raise ResultFileError(
            f"{directory / 'scenario.yaml'}: extends {document.files[-2]}; a run's scenario.yaml is written whole"
        )
    return config


def _first_outside(values: np.ndarray, allowed: Range, *, missing_ok: bool = False) -> int | None:
    """The first row whose value is not finite, outside `allowed` or (if `allowed.whole`) not whole; None if none.

    NaN (an empty cell) counts as outside unless `missing_ok`.
    """
    values = np.asarray(values)
    bad = allowed.outside(values)  # NaN included
    if missing_ok and values.dtype.kind not in "iu":
        bad &= ~np.isnan(values.astype(float))
    where = np.flatnonzero(bad)
    return int(where[0]) if len(where) else None


def _cell(value) -> str:
    """A table value as a message shows it: 'empty', 'inf', '-3', '0.5', "'Ghost'"."""
    if isinstance(value, str):
        return _shown(value)
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return "empty"
    if isinstance(value, int | np.integer) or float(value).is_integer():
        return str(int(value)) if abs(float(value)) < 1e16 else repr(float(value))
    return repr(float(value))


def _numbers(frame: pd.DataFrame, column: str, path: Path, lines: list[int]) -> np.ndarray:
    """A column as numbers (int or float array); a text that is no number (a column the manifest calls text) refused."""
    values = frame[column]
    if values.dtype.kind in "iuf":
        return values.to_numpy()
    numbers = _to_numbers(values)
    bad = numbers.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        what = _long_number(values.iloc[row]) or f"{_cell(values.iloc[row])}, not a number"
        raise ResultFileError(f"{path}: {column} at line {lines[row]} is {what}")
    return numbers.to_numpy(dtype=float)


def _check_range(frame, column, allowed: Range, path: Path, lines: list[int], *, missing_ok: bool = False) -> None:
    values = _numbers(frame, column, path, lines)
    row = _first_outside(values, allowed, missing_ok=missing_ok)
    if row is not None:
        shown = _cell(values[row])
        raise ResultFileError(f"{path}: {column} at line {lines[row]} is {shown}, not {allowed.describe()}")


def _check_names(frame, column, known: Collection[str], what: str, path: Path, lines: list[int], *, missing_ok=False):
    values = frame[column]
    bad = ~values.isin(list(known))
    if missing_ok:  # (not `~False`: that is -1, and Python 3.13 deprecates it)
        bad &= ~values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ResultFileError(f"{path}: {column} at line {lines[row]} is {_cell(values.iloc[row])}, not {what}")


SEED_RANGE = Range(0, 2**63 - 1, True)  # a run's seed (`sim.seeding`)


def _check_runs_column_keys(frame, path: Path, lines: list[int], seeds: dict[int, int], steps: int | None) -> None:
    """replicate, seed and step of a run's table: the manifest's replicates with their seeds, steps 0..`steps`.

    With `steps` None, steps are only whole numbers >= 0 (the caller checks them against the manifest).
    """
    _check_range(frame, "replicate", COUNT, path, lines)
    _check_range(frame, "seed", SEED_RANGE, path, lines)  # seeds reach 2**63 - 1: above COUNT's 1e15
    _check_range(frame, "step", COUNT if steps is None else Range(0, steps, True), path, lines)
    replicates = frame["replicate"].to_numpy()
    unknown = ~np.isin(replicates, list(seeds))
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        listed = ", ".join(map(str, sorted(seeds)))
        raise ResultFileError(
            f"{path}: replicate at line {lines[row]} is {_cell(replicates[row])}, "
            f"not one of manifest.json's replicates ({_shown(listed)})"
        )
    expected = np.array([seeds[int(r)] for r in replicates], dtype=object)
    wrong = frame["seed"].to_numpy().astype(object) != expected
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise ResultFileError(
            f"{path}: seed at line {lines[row]} is {_cell(frame['seed'].iloc[row])}, not the seed manifest.json gives"
            f" replicate {int(replicates[row])} ({seeds[int(replicates[row])]})"
        )


CONTROL_CODES = (-2, -1)  # maps.npz's control: contested, none (`sim.world.CONTESTED`, `NONE`), then 0..F-1 a faction


def check_run_contents(
    directory: Path, manifest: dict, config: Scenario, tables: dict[str, tuple[pd.DataFrame, list[int]]], maps: dict
) -> None:
    """Check what a run's files say against its manifest and its scenario, and each value against its range.

    Whatever the checksums (a directory from someone else may carry matching ones for edited
    contents), every reader of a run (`load_run`) refuses:
    - timeseries.csv: a replicate the manifest does not list, a seed that is not its
      replicate's, rows of a replicate that are not steps 0 to `steps` in order (the
      manifest is named when every replicate agrees on other steps), a figure outside its
      range (`sim.tables.FIGURE_RANGES`: counts whole and >= 0, shares in [0, 1], every
      number finite), a site's control that is not a faction, "contested" or "none";
    - events.csv: the same for replicate, seed and step (0 to `steps`), an event type not
      in `sim.tables.EVENT_KINDS`, and each field as `sim.tables.EVENT_FIELDS` says
      (factions and sites of the scenario, cells on the grid, counts, shares);
    - maps.npz: an array missing (`MAP_ARRAYS`: every run writes each), arrays of another
      dtype, a grid or factions or sites (names, labels, kinds) that are not the scenario's,
      terrain codes, terrain that is not the scenario's (`sim.geography.build_geography`: its
      impassable ground and area outside), control codes outside contested, none and the
      factions, influence that is not finite and >= 0, snapshot steps outside 0 to `steps` or
      not from 0 to `steps` in order, sites and clash cells off the grid, sites not on the
      scenario's cells, clash cells of replicates the manifest does not list, clash cells that
      are not events.csv's clashes (replicate, step, row and column, as a set), influence on
      impassable ground where no clash was, control that the stored influence does not give
      (`_check_influence_and_control`), control at a snapshot that is not timeseries.csv's of
      that step (territory shares, the sites' holders: `_check_control_against_timeseries`).

    Raises:
        ResultFileError: the first problem found: one line naming the file, the column and line.
    """
    from sim.schema import TERRAINS

    steps = manifest["steps"]
    seeds = {_replicate_number(e, k): e["seed"] for k, e in enumerate(manifest["replicates"])}
    factions, sites = list(config.factions), list(config.sites)
    height, width = config.grid.height, config.grid.width
    labels = [*factions, "contested", "none"]
    where = directory / "manifest.json"

    ts, lines = tables["timeseries"]
    path = directory / "timeseries.csv"
    _check_runs_column_keys(ts, path, lines, seeds, None)  # steps: by replicate, below
    rows_of = ts.groupby("replicate", sort=False).indices
    last = {}
    for replicate in seeds:
        if replicate not in rows_of:
            raise ResultFileError(f"{where}: replicate {replicate} has no rows in timeseries.csv (the two disagree)")
        rows = rows_of[replicate]
        found = ts["step"].to_numpy()[rows]
        if not np.array_equal(found, np.arange(len(rows))):
            row = rows[int(np.flatnonzero(found != np.arange(len(rows)))[0])] if len(found) else rows[0]
            raise ResultFileError(
                f"{path}: the rows of replicate {replicate} are not steps 0 to {steps} in order (line {lines[row]})"
            )
        last[replicate] = len(rows) - 1
    if any(n != steps for n in last.values()):
        if len(set(last.values())) == 1:
            n = next(iter(last.values()))
            raise ResultFileError(
                f"{where}: steps is {steps}, but timeseries.csv's rows are not steps 0 to {steps}: they are steps 0"
                f" to {n} for every replicate (the two disagree)"
            )
        replicate = next(r for r, n in last.items() if n != steps)
        raise ResultFileError(
            f"{path}: the rows of replicate {replicate} are not steps 0 to {steps} (they end at {last[replicate]})"
        )
    for column in ts.columns[3:] if list(ts.columns[:3]) == ["replicate", "seed", "step"] else ts.columns:
        if column in ("replicate", "seed", "step"):
            continue
        if str(column).startswith(f"{CONTROL_FIGURE}."):
            _check_names(ts, column, labels, "a faction of the scenario, 'contested' or 'none'", path, lines)
            continue
        allowed = figure_range(str(column))
        if allowed is not None or ts[column].dtype.kind in "iuf":
            _check_range(ts, column, allowed or FINITE, path, lines)

    events, lines = tables["events"]
    path = directory / "events.csv"
    if len(events):
        _check_runs_column_keys(events, path, lines, seeds, steps)
        types = f"an event type of the model ({', '.join(EVENT_KINDS)})"
        _check_names(events, "event", EVENT_KINDS, types, path, lines)
        for kind, fields in EVENT_REQUIRED.items():  # a field deleted would read as 0 (export-acled's fatalities)
            rows = (events["event"] == kind).to_numpy()
            if not rows.any():
                continue
            for field in fields:
                empty = rows & (events[field].isna().to_numpy() if field in events.columns else True)
                if np.any(empty):
                    row = int(np.flatnonzero(empty)[0])
                    raise ResultFileError(f"{path}: the {kind} at line {lines[row]} has no {field}")
        cells = {"row": Range(0, height - 1, True), "col": Range(0, width - 1, True)}
        for column in events.columns:
            kind = EVENT_FIELDS.get(str(column))
            if column in ("replicate", "seed", "step", "event") or kind == "text":
                continue
            if kind == "faction":
                _check_names(events, column, factions, "a faction of the scenario", path, lines, missing_ok=True)
            elif kind == "site":
                _check_names(events, column, sites, "a site of the scenario", path, lines, missing_ok=True)
            elif kind in cells or isinstance(kind, Range):
                _check_range(events, column, cells.get(kind, kind), path, lines, missing_ok=True)
            elif events[column].dtype.kind in "iuf":  # a field this version does not know: finite, if a number
                _check_range(events, column, FINITE, path, lines, missing_ok=True)

    path = directory / "maps.npz"
    kinds = {
        "terrain": "iu", "control": "iu", "snapshot_steps": "iu", "site_rows": "iu", "site_cols": "iu",
        "clash_cells": "iu", "influence": "f", "site_names": "U", "faction_names": "U", "site_labels": "U",
        "site_kinds": "U", "faction_labels": "U",
    }  # fmt: skip
    for key, allowed_kinds in kinds.items():
        if key in maps and maps[key].dtype.kind not in allowed_kinds:
            what = {"iu": "whole numbers", "f": "numbers", "U": "texts"}[allowed_kinds]
            raise ResultFileError(f"{path}: {key} holds {maps[key].dtype}, not {what}")
        if key in MAP_DTYPES and maps[key].dtype != MAP_DTYPES[key]:  # numbers of another width: not the writer's
            wanted = np.dtype(MAP_DTYPES[key])
            raise ResultFileError(f"{path}: {key} holds {maps[key].dtype}, not {wanted} as a run writes")
    if maps["terrain"].shape != (height, width):
        raise ResultFileError(
            f"{path}: the grid is {maps['terrain'].shape}, not the scenario's ({height}, {width}) rows and columns"
        )
    for key, names in (("faction_names", factions), ("site_names", sites)):
        if [str(x) for x in maps[key]] != names:
            raise ResultFileError(f"{path}: {key} are not those of scenario.yaml ({_shown(', '.join(names))})")
    # The plots' and the ACLED export's words for each site and faction: the scenario's
    for key, what, names, wanted in (
        ("site_labels", "site", sites, [s.label for s in config.sites.values()]),
        ("site_kinds", "site", sites, [s.kind for s in config.sites.values()]),
        ("faction_labels", "faction", factions, [f.label for f in config.factions.values()]),
    ):
        found, word = [str(x) for x in np.asarray(maps[key]).reshape(-1)], key.split("_")[1][:-1]  # label, kind
        if len(found) != len(wanted):
            raise ResultFileError(
                f"{path}: {key} holds {len(found)} {word}{'s' if len(found) != 1 else ''}, not one per {what} of "
                f"scenario.yaml ({len(wanted)})"
            )
        for name, label, label_wanted in zip(names, found, wanted, strict=True):
            if label != label_wanted:
                raise ResultFileError(
                    f"{path}: {key} gives {_shown(label)} for {what} {_shown(name)}, where scenario.yaml gives "
                    f"{_shown(label_wanted)}"
                )

    def outside(key: str, values: np.ndarray, allowed: Range, what: str | None = None) -> None:
        flat = np.asarray(values).reshape(-1)
        k = _first_outside(flat, allowed)
        if k is not None:
            # an array has no empty cells: its NaN is a NaN
            shown = "NaN" if isinstance(flat[k], float | np.floating) and np.isnan(flat[k]) else _cell(flat[k])
            raise ResultFileError(f"{path}: {key} holds {shown}, not {what or allowed.describe()}")

    outside("terrain", maps["terrain"], Range(0, len(TERRAINS) - 1, True), f"a terrain code (0 to {len(TERRAINS) - 1})")
    from sim.geography import build_geography  # the scenario's grid and sites, as the run drew them

    geography = build_geography(config)
    differs = maps["terrain"] != geography.terrain
    if differs.any():  # the maps' impassable ground and the area outside are the scenario's
        row, col = (int(i[0]) for i in np.nonzero(differs))
        found, wanted = TERRAINS[int(maps["terrain"][row, col])], TERRAINS[int(geography.terrain[row, col])]
        raise ResultFileError(
            f"{path}: terrain differs from scenario.yaml's in {int(differs.sum()):,} of {differs.size:,} cells "
            f"(first at row {row}, column {col}: {found} where scenario.yaml gives {wanted})"
        )
    low = min(CONTROL_CODES)
    outside(
        "control", maps["control"], Range(low, len(factions) - 1, True),
        f"a control code ({low} to {len(factions) - 1}: contested, none or a faction)",
    )  # fmt: skip
    outside("influence", maps["influence"], NON_NEGATIVE)
    outside("snapshot_steps", maps["snapshot_steps"], Range(0, steps, True), f"a step from 0 to {steps}")
    snapshots = [int(x) for x in maps["snapshot_steps"]]
    if snapshots and (snapshots[0] != 0 or snapshots[-1] != steps or snapshots != sorted(snapshots)):
        raise ResultFileError(
            f"{path}: snapshot_steps are {_shown(snapshots)}, not the run's start, middle and end in order "
            f"(0 to {steps})"
        )
    on_rows, a_row = Range(0, height - 1, True), f"a row of the grid (0 to {height - 1})"
    on_cols, a_col = Range(0, width - 1, True), f"a column of the grid (0 to {width - 1})"
    outside("site_rows", maps["site_rows"], on_rows, a_row)
    outside("site_cols", maps["site_cols"], on_cols, a_col)
    # where the maps draw each site: the scenario's cell
    cells = zip(geography.site_rows.tolist(), geography.site_cols.tolist(), strict=True)
    for name, row, col, cell in zip(sites, maps["site_rows"].tolist(), maps["site_cols"].tolist(), cells,
                                    strict=True):  # fmt: skip
        if (row, col) != tuple(cell):
            raise ResultFileError(
                f"{path}: site_rows and site_cols put {_shown(name)} at row {row}, column {col}, not at "
                f"scenario.yaml's cell (row {cell[0]}, column {cell[1]})"
            )
    clash = maps["clash_cells"]
    if len(clash):
        unknown = ~np.isin(clash[:, 0], list(seeds))
        if unknown.any():
            raise ResultFileError(
                f"{path}: clash_cells holds replicate {_cell(clash[unknown][0, 0])}, not one of manifest.json's"
            )
        outside("clash_cells' steps", clash[:, 1], Range(0, steps, True), f"a step from 0 to {steps}")
        outside("clash_cells' rows", clash[:, 2], on_rows, a_row)
        outside("clash_cells' columns", clash[:, 3], on_cols, a_col)
    # Each clash is logged as an event where its cell is noted (`sim.processes.conflict.clash`):
    # the maps' clash cells are events.csv's clashes (compared as sets of rows: their order is not drawn)
    is_clash = (events["event"] == "clash").to_numpy() if len(events) else np.zeros(0, dtype=bool)
    logged = np.zeros((0, 4), dtype=np.int64)  # without clashes events.csv may have no row and col columns
    if is_clash.any():  # each with its row and col (`EVENT_REQUIRED`), whole numbers on the grid (above)
        logged = events.loc[is_clash, ["replicate", "step", "row", "col"]].to_numpy(dtype=np.int64)
    if (problem := _clash_cells_problem(np.asarray(clash, dtype=np.int64), logged)) is not None:
        raise ResultFileError(f"{path}: {problem}")
    _check_influence_and_control(path, manifest, config, maps, geography.passable)
    _check_control_against_timeseries(path, manifest, maps, (ts, tables["timeseries"][1], rows_of), geography)


def _influence_rules(manifest: dict, config: Scenario, where: Path) -> list[tuple[float, float]]:
    """(control_threshold, min_influence) each replicate ran with, in the manifest's order.

    scenario.yaml's, unless the replicate ran with a posterior draw that sets them (its
    `posterior_set`, `--set` texts: `sim.posterior.PosteriorDraws.overrides`).

    Raises:
        ResultFileError: a `posterior_set` that is not a list of texts, or that gives either
            rule a value that is no finite number (naming manifest.json).
    """
    keys = {"rules.influence.control_threshold": 0, "rules.influence.min_influence": 1}
    rules = []
    for number, entry in enumerate(manifest["replicates"]):
        values = [config.rules.influence.control_threshold, config.rules.influence.min_influence]
        sets = entry.get("posterior_set", [])
        if not isinstance(sets, list) or not all(isinstance(text, str) for text in sets):
            raise ResultFileError(f"{where}: replicates.{number}.posterior_set is not a list of KEY=VALUE texts")
        for text in sets:
            key, _, value = (part.strip() for part in text.partition("="))
            if key not in keys:
                continue
            try:
                values[keys[key]] = float(value)
            except ValueError:
                values[keys[key]] = math.nan
            if not math.isfinite(values[keys[key]]):
                raise ResultFileError(
                    f"{where}: replicates.{number}.posterior_set gives {key} {_shown(value)}, not a number"
                )
        rules.append((values[0], values[1]))
    return rules


def possible_control(
    influence: np.ndarray, control: np.ndarray, hostile: np.ndarray, threshold: float, min_influence: float
) -> np.ndarray:
    """(H, W) bool: where `control` (H, W) is what `sim.processes.influence.control_map` makes of `influence` (F, H, W).

    maps.npz keeps the model's float64 influence as float32 (`sim.runner.run_model`): each
    stored value is within a relative 2^-24 of the model's (an absolute 2^-149 where it is
    subnormal). So a cell passes where control_map gives its control for some influence within
    16 times that error of the stored (of the dtype stored; plus 1e-12 for float64 sums in
    another order): the faction that may have the most influence, where its share against its
    rivals (`hostile`, (F, F) bool) may reach `threshold`; contested where a faction that may
    lead may fall short of it; none where the cell's total may be below `min_influence` (at
    least 1e-12). Cells near a boundary pass either way; elsewhere exactly one code passes.
    """
    info = np.finfo(influence.dtype)
    error = 16 * float(info.eps) + 1e-12
    stored = influence.astype(np.float64)
    low = np.maximum(stored * (1 - error) - float(info.smallest_subnormal), 0.0)
    high = stored * (1 + error) + float(info.smallest_subnormal)  # > 0: no division by zero below
    least = max(float(min_influence), 1e-12)
    may_be_none = low.sum(axis=0) < least
    may_be_held = high.sum(axis=0) >= least
    may_lead = high >= low.max(axis=0)
    hostile = np.asarray(hostile, dtype=np.float64)
    share_high = high / (high + np.tensordot(hostile, low, axes=1))
    rivals_high = np.tensordot(hostile, high, axes=1)
    share_low = np.divide(low, low + rivals_high, out=np.zeros_like(low), where=low > 0)
    may_hold = may_lead & (share_high >= threshold)
    may_fall_short = (may_lead & (share_low < threshold)).any(axis=0)
    faction = np.clip(control, 0, len(stored) - 1).astype(np.intp)
    ok = (control >= 0) & may_be_held & np.take_along_axis(may_hold, faction[None], axis=0)[0]
    ok |= (control == min(CONTROL_CODES)) & may_be_held & may_fall_short  # contested
    ok |= (control == max(CONTROL_CODES)) & may_be_none  # nobody's
    return ok


def _control_of_cell(influence: np.ndarray, hostile: np.ndarray, threshold: float, min_influence: float) -> int:
    """`control_map`'s code for one cell's influence (F,) (float64, as the model computes it)."""
    if influence.sum() < max(min_influence, 1e-12):
        return max(CONTROL_CODES)
    leader = int(np.argmax(influence))
    share = influence[leader] / (influence[leader] + float(influence[np.asarray(hostile[leader], dtype=bool)].sum()))
    return leader if share >= threshold else min(CONTROL_CODES)


def _check_influence_and_control(
    path: Path, manifest: dict, config: Scenario, maps: dict, passable: np.ndarray
) -> None:
    """Influence and control of maps.npz (shapes and ranges checked) against each other and the scenario.

    The model spreads influence only over passable ground (`sim.processes.influence`); on
    impassable ground a cell gets influence only where a clash was (its winner gains some,
    which then fades): influence elsewhere there is refused. Control is computed from influence
    each day (`control_map`); a snapshot is taken after the day's clashes, whose winners gain
    influence at the clash cell without a new control map: control that the stored influence
    does not give (`possible_control`, the replicate's rules: `_influence_rules`) is refused,
    but for the cells of clashes on the snapshot's step.

    Raises:
        ResultFileError: one line naming maps.npz, the array, the cell, replicate and step.
    """
    from sim.schema import TERRAINS

    factions = list(config.factions)
    hostile = np.zeros((len(factions), len(factions)), dtype=bool)
    for a, b in config.hostile_pairs():
        hostile[a, b] = hostile[b, a] = True
    rules = _influence_rules(manifest, config, path.parent / "manifest.json")
    influence, control, clash = maps["influence"], maps["control"], np.asarray(maps["clash_cells"], dtype=np.int64)
    terrain = maps["terrain"]

    def code(value: int) -> str:
        return _shown(factions[value]) if value >= 0 else "contested" if value == min(CONTROL_CODES) else "none"

    for k, entry in enumerate(manifest["replicates"]):
        replicate = _replicate_number(entry, k)
        clashes = clash[clash[:, 0] == replicate]
        threshold, min_influence = rules[k]
        for t, step in enumerate(int(x) for x in maps["snapshot_steps"]):
            where = f"replicate {replicate}, step {step}"
            clashed = np.zeros(passable.shape, dtype=bool)  # cells of the clashes so far
            so_far = clashes[clashes[:, 1] <= step]
            clashed[so_far[:, 2], so_far[:, 3]] = True
            stray = (influence[k, t] != 0) & ~passable & ~clashed
            if stray.any():
                f, row, col = (int(i[0]) for i in np.nonzero(stray))
                raise ResultFileError(
                    f"{path}: influence holds {_cell(influence[k, t, f, row, col])} for {_shown(factions[f])} at row "
                    f"{row}, column {col} ({where}): {TERRAINS[int(terrain[row, col])]} ground where no clash was, "
                    "which the model gives no influence"
                )
            today = np.zeros(passable.shape, dtype=bool)
            now = clashes[clashes[:, 1] == step]
            today[now[:, 2], now[:, 3]] = True
            wrong = ~possible_control(influence[k, t], control[k, t], hostile, threshold, min_influence) & ~today
            if wrong.any():
                row, col = (int(i[0]) for i in np.nonzero(wrong))
                cell = influence[k, t, :, row, col].astype(np.float64)
                expected = _control_of_cell(cell, hostile, threshold, min_influence)
                ground = "" if passable[row, col] else f", {TERRAINS[int(terrain[row, col])]} ground"
                raise ResultFileError(
                    f"{path}: control gives {code(int(control[k, t, row, col]))} at row {row}, column {col} ({where}"
                    f"{ground}), where the influence stored there gives {code(expected)} (control_threshold "
                    f"{threshold:g}, min_influence {min_influence:g}, the scenario's hostilities)"
                )


def _check_control_against_timeseries(path: Path, manifest: dict, maps: dict, timeseries: tuple, geography) -> None:
    """The maps' control at each snapshot against timeseries.csv's row of that replicate and step.

    Both are the day's control (`sim.recording`): territory.<faction> and territory.contested
    are the shares of passable cells so held, control.<site> the holder of the site's cell.
    So control relabelled with its influence alike (Blue's cells and influence given to Red),
    which `possible_control` cannot see, is refused. `timeseries` is (frame, file lines,
    frame rows by replicate: steps 0 to `steps` in order, checked).

    Raises:
        ResultFileError: one line naming maps.npz, the step, replicate, column and line.
    """
    ts, lines, rows_of = timeseries
    factions = [str(x) for x in maps["faction_names"]]
    passable, n_passable = geography.passable, int(np.count_nonzero(geography.passable))

    def code(value: int) -> str:
        return factions[value] if value >= 0 else "contested" if value == min(CONTROL_CODES) else "none"

    codes = {f"territory.{name}": f for f, name in enumerate(factions)} | {"territory.contested": min(CONTROL_CODES)}
    shares = [(column, value) for column, value in codes.items() if column in ts.columns]
    held = [(f"control.{name}", row, col) for name, row, col in
            zip(geography.site_names, geography.site_rows.tolist(), geography.site_cols.tolist(), strict=True)
            if f"control.{name}" in ts.columns]  # fmt: skip
    for k, entry in enumerate(manifest["replicates"]):
        replicate = _replicate_number(entry, k)
        for t, step in enumerate(int(x) for x in maps["snapshot_steps"]):
            control, row = maps["control"][k, t], rows_of[replicate][step]
            where = f"{path}: control at step {step} of replicate {replicate}"
            for column, value in shares:
                count, said = int(np.count_nonzero((control == value) & passable)), float(ts[column].iloc[row])
                if not abs(said * n_passable - count) < 0.5:  # a share of whole cells, however it was written
                    raise ResultFileError(
                        f"{where} gives {_shown(code(value))} {count:,} of the {n_passable:,} passable cells, where "
                        f"timeseries.csv's {column} at line {lines[row]} says {_cell(said)} (the two disagree)"
                    )
            for column, cell_row, cell_col in held:
                holder, said = code(int(control[cell_row, cell_col])), str(ts[column].iloc[row])
                if holder != said:
                    raise ResultFileError(
                        f"{where} gives site {column.removeprefix('control.')} (row {cell_row}, column {cell_col}) to "
                        f"{_shown(holder)}, where timeseries.csv's {column} at line {lines[row]} says {_shown(said)} "
                        "(the two disagree)"
                    )


def _clash_cells_problem(drawn: np.ndarray, logged: np.ndarray) -> str | None:
    """What differs between maps.npz's clash cells and events.csv's clashes, both (n, 4) replicate, step, row, col."""
    if drawn.shape == logged.shape and np.array_equal(drawn[np.lexsort(drawn.T)], logged[np.lexsort(logged.T)]):
        return None
    from collections import Counter

    drawn_rows, logged_rows = Counter(map(tuple, drawn.tolist())), Counter(map(tuple, logged.tolist()))
    counts = f"{len(drawn):,} in clash_cells, {len(logged):,} in events.csv; the two disagree"
    if extra := sorted((drawn_rows - logged_rows).elements()):
        replicate, step, row, col = extra[0]
        return (
            f"clash_cells holds a clash of replicate {replicate} on step {step} at row {row}, column {col} that "
            f"events.csv does not log ({counts})"
        )
    replicate, step, row, col = sorted((logged_rows - drawn_rows).elements())[0]
    return (
        f"clash_cells lacks the clash of replicate {replicate} on step {step} at row {row}, column {col} that "
        f"events.csv logs ({counts})"
    )


def load_run(directory: str | Path, *, tables: Collection[str] = ("timeseries", "events")) -> LoadedRun:
    """Read a results directory back (for plots, notebooks and analyses), checking every file.

    The manifest's `files` entry (row counts, text columns, sha256) is checked; it must be
    there and whole in a manifest of format 2 (`manifest_files`); a directory written before
    it was recorded (format 1) is read with the other checks. Whatever the checksums, the
    manifest must be whole in itself (`run_manifest_problem`), scenario.yaml must validate
    and have the manifest's scenario name, timeseries.csv must have the columns a run of the
    scenario records and no others (`sim.tables.timeseries_columns`; a format-1 directory may
    lack `sim.tables.LATER_FIGURES`), and what the files hold must agree with the
    manifest and the scenario, each value within its range (`check_run_contents`). `tables`
    may leave out a table not needed (it is then an empty frame; it is read and checked all
    the same).

    Raises:
        OutputError: no such directory, not a directory, another kind of directory (a sweep's...:
            `results_dir_problem`), or one of the five data files (`FILES`) is missing.
        ResultFileError: a file is damaged (`read_manifest`, `read_result_csv`, `read_maps`),
            lacks a column or has an unknown one (timeseries.csv), or holds what cannot be
            (`run_manifest_problem`, `check_run_contents`).
        ScenarioError: scenario.yaml does not validate (its first problem: one line).
    """
    import pandas as pd

    directory = Path(directory)
    if (problem := results_dir_problem(directory, RUN_KIND)) is not None:
        raise OutputError(problem)
    missing = [name for name in FILES if not (directory / name).is_file()]
    odd = [name for name in missing if os.path.lexists(directory / name)]  # there, but no regular file
    if odd:
        what = "a directory" if (directory / odd[0]).is_dir() else "not a regular file (a link, a FIFO, a device)"
        raise ResultFileError(f"{directory / odd[0]}: {what}, where the run's {odd[0]} should be")
    if missing:
        raise OutputError(f"{directory}: not a complete results directory (missing {', '.join(missing)})")
    manifest = load_manifest_of_run(directory)
    files = manifest_files(manifest, directory / "manifest.json", [n for n in FILES if n != "manifest.json"])
    if "sha256" in files["scenario.yaml"]:
        read_bytes(directory / "scenario.yaml", sha256=files["scenario.yaml"]["sha256"])
    config = _run_config(directory)
    if manifest.get("scenario") != config.name:  # the name the figures' footers and `compare` show
        raise ResultFileError(
            f"{directory / 'manifest.json'}: scenario is {_shown(manifest.get('scenario'))}, not scenario.yaml's "
            f"name {_shown(config.name)}"
        )
    read = {}
    steps, n_replicates = manifest.get("steps"), manifest.get("n_replicates")  # whole numbers where present
    # The timeseries holds a row per day and replicate: the most its size may be read for,
    # whatever its row count says (a count edited to a million set gigabytes aside).
    most = (steps + 1) * n_replicates if isinstance(steps, int) and isinstance(n_replicates, int) else None
    # The timeseries holds the figures a run of its scenario records, no more and no fewer
    # (`sim.tables.timeseries_columns`): a figure deleted or renamed was plotted as absent
    # (the plots leave out a column that is not there), and compare takes its figures by
    # prefix: an added `killed.X` was summed into the militias' killed, a `fighters.X` drawn.
    keys = ["replicate", "seed", "step"]
    figures = timeseries_columns(config)
    later = manifest_format(manifest) == 1  # written before the recorder's later figures, perhaps
    required = {
        "timeseries": keys + [c for c in figures if not (later and c.split(".", 1)[0] in LATER_FIGURES)],
        "events": [*keys, "event"],
    }
    for table in ("timeseries", "events"):  # both read and checked, even where one is not wanted
        record = files.get(f"{table}.csv", {})
        rows = record.get("rows")
        if table == "timeseries" and most is not None:
            rows_read = min(rows, most) if isinstance(rows, int) and not isinstance(rows, bool) else most
        else:
            rows_read = rows
        read[table] = _read_result_csv(
            directory / f"{table}.csv",
            text_columns=_table_text_columns(record, table),
            expected_columns=required[table],
            known_columns=keys + figures if table == "timeseries" else None,  # events: fields of any version
            known_from="the columns a run of scenario.yaml records",
            size_rows=rows_read,
            expected_rows=record.get("rows"),
            sha256=record.get("sha256"),
            allow_empty=table == "events" and "rows" not in record,  # older runs without events: 0 bytes
        )
    if read["events"][0].empty and not len(read["events"][0].columns):
        read["events"] = (pd.DataFrame(columns=EVENT_KEY_COLUMNS), [])
    maps = read_maps(
        directory / "maps.npz",
        sha256=files.get("maps.npz", {}).get("sha256"),
        n_replicates=manifest["n_replicates"],
    )
    check_run_contents(directory, manifest, config, read, maps)
    frames = {table: read[table][0] if table in tables else pd.DataFrame() for table in read}
    return LoadedRun(directory, manifest, frames["timeseries"], frames["events"], maps, config)
