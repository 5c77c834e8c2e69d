#!/usr/bin/env python
"""Start-up benchmark: wall time of `run.py` commands in fresh interpreters, before and after, in one run.

Run from the repository root:

    python benchmarks/bench_startup.py            # 7 repeats of each command on each tree
    python benchmarks/bench_startup.py --quick    # 3 repeats
    python benchmarks/bench_startup.py --before main~2 --json startup.json

Each command runs as a subprocess with a fresh interpreter (this interpreter, the same
virtual environment), the tree as working directory and `PYTHONPATH=<tree>`: "after" is this
working tree, "before" the reference revision (`--before REV`, default the commit before issue
13's work) extracted into a temporary directory. Repeats alternate between commands and trees,
so a burst of load elsewhere hits all alike; one untimed round first writes both trees' .pyc
files (the reference is a fresh extraction without them). The figure is the median wall time from starting
the process to its exit (time.perf_counter around subprocess.run; output discarded).

Commands and targets (issue 13):
- `python run.py --help`                                    <= 0.2 s
- `python run.py run --help` (a sub-command's help)         (reported; no target)
- `python run.py run baseline --no-plots --out <new dir>`   <= 1 s (a simulated year, results written)
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402
from benchmarks.common import BenchError, median  # noqa: E402

COMMANDS = (
    ("run.py --help", ["run.py", "--help"], 0.2),
    ("run.py run --help", ["run.py", "run", "--help"], None),
    ("run.py run baseline --no-plots (one year)", ["run.py", "run", "baseline", "--no-plots", "--out", "{out}"], 1.0),
)
FULL = dict(repeats=7)
QUICK = dict(repeats=3)
TIMEOUT_S = 600


def children_cpu_s() -> float:
    """User + system CPU seconds of every finished (waited-for) child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(tree: common.Tree, argv: list[str], scratch: Path, n: int) -> tuple[float, float]:
    """(wall s, CPU s) of one fresh `python <argv>` on `tree`; BenchError (one line) if it fails.

    The CPU time is the child's own (and its children's): steadier than the wall time when
    other processes compete for the cores.
    """
    out = scratch / f"{tree.label}_{n}"
    cmd = [sys.executable, *[a.replace("{out}", str(out)) for a in argv]]
    c0 = children_cpu_s()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=tree.root, env=tree.subprocess_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{tree.label}: `{' '.join(argv)}` did not finish within {TIMEOUT_S} s") from None
    elapsed = time.perf_counter() - t0
    cpu = children_cpu_s() - c0
    if proc.returncode != 0:
        last = (proc.stderr or "").strip().splitlines()[-1:] or ["(no message)"]
        raise BenchError(f"{tree.label}: `{' '.join(argv)}` exited {proc.returncode}: {last[0]}")
    return elapsed, cpu


def measure(tree_list, p: dict) -> dict:
    samples = {t.label: {label: [] for label, _, _ in COMMANDS} for t in tree_list}
    cpu = {t.label: {label: [] for label, _, _ in COMMANDS} for t in tree_list}
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        scratch = Path(tmp)
        n = 0
        for _, argv, _ in COMMANDS:  # untimed warm-up: writes each tree's .pyc caches (the reference is fresh)
            for tree in tree_list:
                n += 1
                time_command(tree, argv, scratch, n)
        for _ in range(p["repeats"]):
            for label, argv, _ in COMMANDS:
                for tree in tree_list:  # interleaved
                    n += 1
                    wall, used = time_command(tree, argv, scratch, n)
                    samples[tree.label][label].append(wall)
                    cpu[tree.label][label].append(used)
    rows = []
    for label, _, target in COMMANDS:
        rows.append(dict(command=label, target_s=target,
                         median_s={t.label: median(samples[t.label][label]) for t in tree_list},
                         median_cpu_s={t.label: median(cpu[t.label][label]) for t in tree_list},
                         all_cpu_s={t.label: cpu[t.label][label] for t in tree_list},
                         all_s={t.label: samples[t.label][label] for t in tree_list}))
    return dict(repeats=p["repeats"], rows=rows)


def render(mach, tree_list, mode, res, load_start, load_end) -> str:
    lines = common.header(f"Start-up benchmark ({mode})", mach, tree_list, load_start, load_end)
    labels = [t.label for t in tree_list]
    lines.append(f"Median wall time of a fresh `python <command>` (working directory and PYTHONPATH = the tree), "
                 f"{res['repeats']} repeats interleaved over commands and trees, after one untimed warm-up round")
    lines.append("")
    head = f"   {'command':<44}" + "".join(f"{label + ' s':>10}" for label in labels)
    if len(labels) == 2:
        head += f"{'after/before':>14}"
    lines.append(head + f"{'target':>10}{'verdict':>9}")
    for row in res["rows"]:
        m = row["median_s"]
        line = f"   {row['command']:<44}" + "".join(f"{m[label]:10.3f}" for label in labels)
        if len(labels) == 2:
            line += f"{common.ratio_text(m[labels[0]], m[labels[1]]):>14}"
        target = f"<= {row['target_s']:g} s" if row["target_s"] else ""
        ver = common.verdict(m[labels[-1]], row["target_s"]) if row["target_s"] else ""
        lines.append(line + f"{target:>10}{ver:>9}")
    lines.append("   CPU time of the same (user + system of the process; steadier than wall time under load):")
    for row in res["rows"]:
        m = row["median_cpu_s"]
        line = f"   {'  ' + row['command']:<44}" + "".join(f"{m[label]:10.3f}" for label in labels)
        if len(labels) == 2:
            line += f"{common.ratio_text(m[labels[0]], m[labels[1]]):>14}"
        lines.append(line)
    lines.append("   every repeat, wall s:")
    for row in res["rows"]:
        for label in labels:
            lines.append(f"     {label:>6} {row['command']:<44} " + " / ".join(f"{v:.3f}" for v in row["all_s"][label]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    common.add_before_option(parser)
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    p = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_start = common.loadavg()
    mach = common.machine()
    try:
        with common.trees(None if args.no_before else args.before) as tree_list:
            res = measure(tree_list, p)
            load_end = common.loadavg()
            print(render(mach, tree_list, mode, res, load_start, load_end))
            trees_json = [dict(label=t.label, revision=t.revision, fingerprint=t.fingerprint) for t in tree_list]
    except BenchError as exc:
        print(f"bench_startup: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(f"\n(benchmark wall time {elapsed:.1f} s)")
    common.write_json(args.json, dict(mode=mode, parameters=p, machine=mach, trees=trees_json,
                                      load_average=dict(start=load_start, end=load_end), results=res,
                                      benchmark_wall_s=elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
