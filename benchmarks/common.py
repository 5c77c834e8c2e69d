"""What the benchmark scripts share: the two source trees measured, their subprocesses, the machine.

Before and after in one run. Each benchmark measures two source trees in the same run:
"after" is this working tree, "before" a reference revision (`--before REV`, default
`DEFAULT_BEFORE`, the commit before issue 13's work) extracted with `git archive` into a
temporary directory that is deleted afterwards. Each tree is measured in its own
subprocesses (`benchmarks/_child.py`) started with `PYTHONPATH=<tree>` and the tree as working
directory, with this same interpreter and virtual environment, so the only difference is the
source code. Requests to the two trees alternate (interleaved repeats), so a burst of load
from elsewhere on a shared machine hits both alike; only one child computes at a time.

Source fingerprint: the first 12 hex digits of a sha256 over the path and contents of every
`sim/**/*.py` file of a tree (the same definition the benchmarks have always printed).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).resolve().parent / "_child.py"
MARKER = "BENCH_CHILD_RESULT "
DEFAULT_BEFORE = "2eea2af"  # main just before issue 13's work (speed, start-up, Syria-wide scenario)
CHILD_TIMEOUT_S = 3600


class BenchError(RuntimeError):
    """A benchmark cannot go on (unknown revision, a child that failed); printed as one line."""


def fingerprint(root: Path) -> str:
    """sha256 (first 12 hex digits) over the relative path and bytes of every sim/**/*.py of `root`."""
    digest = hashlib.sha256()
    for path in sorted((root / "sim").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


@dataclass
class Tree:
    """One source tree measured: its label ("before"/"after"), directory, revision, fingerprint."""

    label: str
    root: Path
    revision: str
    fingerprint: str
    env: dict = field(default_factory=dict)

    def scenario(self, name: str) -> Path | None:
        """scenarios/<name>.yaml in this tree, or None if this revision does not have it."""
        path = self.root / "scenarios" / f"{name}.yaml"
        return path if path.is_file() else None

    def subprocess_env(self) -> dict:
        """This process's environment for a child on this tree: PYTHONPATH = the tree, Python's defaults otherwise.

        PYTHONSTARTUP and PYTHONDONTWRITEBYTECODE are dropped: what is measured is a Python as
        installed, which writes each module's compiled bytecode (`__pycache__/*.pyc`) on the
        first import and reads it after. Some sandboxes and CI images set the latter; with it,
        every fresh interpreter compiled all of sim/ from source again (about 0.1 s of every
        start-up measured, which no user pays after a first run).
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.root)
        env.pop("PYTHONSTARTUP", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env


def working_tree() -> Tree:
    head = _git("rev-parse", "--short=12", "HEAD").stdout.strip() or "unknown"
    dirty = _git("status", "--porcelain", "--", "sim", "run.py", "scenarios").stdout.strip()
    revision = f"working tree at {head}" + (" +uncommitted changes" if dirty else "")
    return Tree("after", ROOT, revision, fingerprint(ROOT))


def resolve_revision(rev: str) -> str:
    """The full commit hash of `rev`; BenchError (one line) if the repository does not know it."""
    proc = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise BenchError(f"--before {rev}: unknown revision in {ROOT} (give a commit, branch or tag)")
    return proc.stdout.strip()


@contextlib.contextmanager
def reference_tree(rev: str):
    """Extract revision `rev` (git archive) into a temporary directory; yield its Tree; delete it."""
    commit = resolve_revision(rev)
    with tempfile.TemporaryDirectory(prefix="bench_before_") as tmp:
        proc = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                              capture_output=True)
        if proc.returncode != 0:
            raise BenchError(f"git archive {commit[:12]} failed: {proc.stderr.decode(errors='replace').strip()}")
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.11.4; the archive is our own repository's
                tar.extractall(tmp)  # noqa: S202
        root = Path(tmp)
        yield Tree("before", root, f"{rev} = {commit}", fingerprint(root))


@contextlib.contextmanager
def trees(before: str | None):
    """[before, after] (or [after] alone when `before` is None), the reference removed at the end."""
    after = working_tree()
    if before is None:
        yield [after]
        return
    with reference_tree(before) as ref:
        yield [ref, after]


def add_before_option(parser) -> None:
    parser.add_argument("--before", metavar="REV", default=DEFAULT_BEFORE,
                        help=f"reference revision measured alongside the working tree (default {DEFAULT_BEFORE}, "
                             "the commit before issue 13's work)")
    parser.add_argument("--no-before", action="store_true", help="measure the working tree alone")


# --------------------------------------------------------------------------- children


def _parse(stdout: str, what: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise BenchError(f"{what}: no answer")


class Child:
    """A persistent `_child.py serve` process on one tree: one request at a time, answers as dicts."""

    def __init__(self, tree: Tree):
        self.tree = tree
        self.stderr = tempfile.TemporaryFile(mode="w+")  # kept for the message if the child dies
        self.proc = subprocess.Popen([sys.executable, str(CHILD), "serve"], cwd=tree.root,
                                     env=tree.subprocess_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)

    def last_error_line(self) -> str:
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else "(no message)"

    def ask(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                code = self.proc.wait()
                raise BenchError(f"{self.tree.label} child exited (exit {code}) during {request['task']}: "
                                 f"{self.last_error_line()}")
            if line.startswith(MARKER):
                answer = json.loads(line[len(MARKER):])
                if "error" in answer:
                    tree = f"{self.tree.label} ({self.tree.fingerprint})"
                    raise BenchError(f"{tree} {request['task']}: {answer['error']}")
                return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


@contextlib.contextmanager
def children(tree_list: list[Tree]):
    """One persistent child per tree; the child's versions recorded in tree.env; all closed at the end."""
    started = []
    try:
        for tree in tree_list:
            child = Child(tree)
            started.append(child)
            info = child.ask(task="info")
            if not Path(info["sim_file"]).is_relative_to(tree.root.resolve()):
                raise BenchError(f"{tree.label}: imported sim from {info['sim_file']}, not from {tree.root}")
            tree.env.update(info)
        yield started
    finally:
        for child in started:
            child.close()


def once(tree: Tree, timeout_s: float = CHILD_TIMEOUT_S, env: dict | None = None, **request) -> dict:
    """Run one request in a fresh `_child.py once` process on `tree` (fresh imports, own ru_maxrss).

    `env`: variables to set in that process besides the tree's (e.g. NUMBA_CACHE_DIR).
    """
    try:
        proc = subprocess.run([sys.executable, str(CHILD), "once", json.dumps(request)], cwd=tree.root,
                              env={**tree.subprocess_env(), **(env or {})}, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{tree.label} {request['task']}: no answer within {timeout_s:.0f} s") from None
    answer = _parse(proc.stdout, f"{tree.label} {request['task']} (exit {proc.returncode}): "
                                 + " ".join((proc.stderr or "").strip().splitlines()[-1:]))
    if "error" in answer:
        raise BenchError(f"{tree.label} ({tree.fingerprint}) {request['task']}: {answer['error']}")
    return answer


# --------------------------------------------------------------------------- machine and statistics


def loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages (other users of the machine included)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    """This machine, interpreter and library versions (the same venv serves both trees)."""
    import mesa
    import numpy as np

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return dict(date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                python=platform.python_version(), numpy=np.__version__, mesa=mesa.__version__,
                platform=platform.platform(), cpu_count=os.cpu_count(), usable_cpus=usable,
                executable=sys.executable)


def fmt_load(load: list[float] | None) -> str:
    """A load average as '1.2/0.9/0.8' (1, 5, 15 min), or 'n/a'."""
    return "/".join(map(str, load)) if load else "n/a"


def header(title: str, mach: dict, tree_list: list[Tree], load_start, load_end) -> list[str]:
    """The lines every report starts with: machine, load, versions, the trees and fingerprints."""
    fmt = fmt_load
    lines = [f"{title} - {mach['date']}",
             f"machine: {mach['usable_cpus']} usable CPUs / {mach['cpu_count']}, {mach['platform']}; "
             f"load average (1/5/15 min, other users included) at start {fmt(load_start)}, at end {fmt(load_end)}",
             f"Python {mach['python']}, NumPy {mach['numpy']}, Mesa {mach['mesa']} ({mach['executable']})"]
    for tree in tree_list:
        lines.append(f"{tree.label:>6}: sim/ fingerprint {tree.fingerprint}  {tree.revision}")
    return lines


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def fit_line(xs: list[float], ys: list[float]) -> dict:
    """Least-squares y = a + b x, with R^2 (1 = every point on the line)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    b = sxy / sxx if sxx else float("nan")
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return dict(a=a, b=b, r2=1 - ss_res / ss_tot if ss_tot else float("nan"))


def ratio_text(before: float | None, after: float | None) -> str:
    """'after/before' as 'N.NNx' (below 1 = after is smaller), or '-' if either is missing."""
    if before is None or after is None or before != before or after != after or before == 0:
        return "-"
    return f"{after / before:.2f}x"


def verdict(value: float | None, limit: float) -> str:
    if value is None or value != value:
        return "n/a"
    if value < 0:  # a difference of two timings below zero: the noise exceeds what is measured
        return "NOISE"
    return "PASS" if value <= limit else "MISS"


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {path}")
