#!/usr/bin/env python
"""Sweep benchmark: per-run overhead, 2-worker speed-up, 10,000-run projection, driver memory; before and after.

Run from the repository root:

    python benchmarks/bench_sweep.py                # about 5 min on 2 cores, reference 2eea2af alongside
    python benchmarks/bench_sweep.py --quick        # smaller sweeps, one repeat (2-3 min)
    python benchmarks/bench_sweep.py --full         # also the real 10,240-run Sobol sweep (working tree only)
    python benchmarks/bench_sweep.py --no-before --json sweep.json

"after" is this working tree, "before" the reference revision (`--before REV`, default the
commit before issue 13's work) extracted into a temporary directory. Every sweep runs in a
fresh subprocess (benchmarks/_child.py, `PYTHONPATH=<tree>`, the same interpreter), so no
configuration inherits the imports, threads or leftover memory of another. Only the sweep
itself is timed (run_sweep: every run, the journal, outcomes.csv, shutting the workers down);
interpreter start-up, imports and start_sweep() are not. Worker start-up (a pool of
processes, or a Dask LocalCluster) is measured separately.

What is measured (see benchmarks/README.md, "Sweeps"):
0. the machine's free parallel capacity: two pure-Python busy loops in two processes against
   one loop in one process (2 x t1 / t2; 2.0 = two free cores), before and after each repeat;
1. one-year baseline runs (365 steps) swept serially, on 2 worker processes and (full mode)
   on a Dask LocalCluster with 2 workers, both trees, repeats interleaved; from these:
   - per-run overhead outside the model = (serial sweep wall time - the bare model's time on
     the same runs: CorridorModel + 365 steps with each run's parameter value and seed, timed
     in the same process after the sweep) / runs, with the sweep's once-only work (reading its
     scenario, design and journal; outcomes.csv) spread over its few runs;
   - the same inside the loop, the target's measure (target 3 ms): from the first finished
     run to the last, the time not spent in those runs' bare model, per run; and the once-only
     work apart, in seconds (a 10,000-run sweep spreads it over 10,000 runs);
   - the in-loop overhead again in a small serial Sobol sweep (scenarios/sweep_sobol_behaviour.yaml,
     N = 2, or 1 with --quick, base samples x 10 one-year runs), where every run is a design
     point of its own and validates its scenario, as in the 10,000-run target's sweep;
   - the 2-worker speed-up, next to the machine's capacity measured in the same run;
   - a projection of a 10,000-run sweep of one-year runs on 2 workers (10,000 x the 2-worker
     wall time per run + the pool's start-up); target 10 min;
2. peak RSS of the sweep driver vs run count (toy scenario, very few steps; working tree);
3. with --full: `run.py sweep benchmarks/sweep_sobol_10k.yaml --workers 2` for real (10,240
   one-year runs, analysis included) on the working tree; wall time against 10 minutes.
Targets are printed as PASS/MISS and never asserted.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `python benchmarks/bench_sweep.py` works without PYTHONPATH
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402
from benchmarks.common import BenchError, median, ratio_text  # noqa: E402

ROOT_SEED = 1
OVERHEAD_TARGET_MS = 3.0  # per-run overhead outside the model, 1 worker
SWEEP_10K_TARGET_S = 600.0  # a 10,000-run Sobol sweep of one-year runs on 2 cores
PROJECTED_RUNS = 10_000
MEMORY_RATIO_TARGET = 1.2  # peak RSS of the driver at the largest run count / at the smallest
BUSY_LOOP_N = 10_000_000  # about 0.4 s of pure-Python work per process
FULL_DESIGN = Path(__file__).resolve().parent / "sweep_sobol_10k.yaml"
FULL_SWEEP_TIMEOUT_S = 4 * 3600

THROUGHPUT_PARAMETER = "factions.IRGC.salary_usd_month"
THROUGHPUT_VALUES = (110, 170, 230, 300)
THROUGHPUT_OUTPUTS = ("killed_total", "territory_final.IRGC", "defections.NDF>IRGC")
# The in-loop overhead again in the Sobol design of the 10,000-run target (every run its own
# design point, so each run also validates its point's scenario): N base samples x (8 + 2) runs.
SOBOL_SCENARIO = "sweep_sobol_behaviour"
MEMORY_PARAMETER = "factions.Red.salary_usd_month"
MEMORY_VALUES = tuple(range(100, 300, 20))  # 10 design points; replicates = runs / 10
MEMORY_OUTPUTS = ("killed_total", "territory_final.Red")

WORKERS = 2
FULL = dict(tp_steps=365, tp_replicates=4, tp_repeats=2, bare_runs=3, executors=("serial", "processes", "dask"),
            sobol_samples=2, mem_steps=3, mem_serial_runs=(250, 1000, 2000), mem_worker_runs=(250, 1000))
QUICK = dict(tp_steps=365, tp_replicates=2, tp_repeats=1, bare_runs=2, executors=("serial", "processes"),
             sobol_samples=1, mem_steps=3, mem_serial_runs=(100, 400), mem_worker_runs=(100, 400))
EXECUTORS = {"serial": (1, False), "processes": (WORKERS, False), "dask": (WORKERS, True)}
LABELS = {"serial": "serial (1 process)", "processes": f"processes ({WORKERS} workers)",
          "dask": f"Dask LocalCluster ({WORKERS} workers)"}


# --------------------------------------------------------------------------- machine capacity


def busy_loop(n: int) -> tuple[int, float, float]:
    """Pure-Python CPU work; returns (pid, start, end) on the system-wide monotonic clock."""
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i & 7
    return os.getpid(), start, time.perf_counter()


def measure_capacity(pool) -> dict:
    """One process's busy loop alone, then two at once; wall times from the workers' own clocks."""
    _, s, e = pool.submit(busy_loop, BUSY_LOOP_N).result()
    one = e - s
    pair = [pool.submit(busy_loop, BUSY_LOOP_N) for _ in range(2)]
    results = [f.result() for f in pair]
    two = max(r[2] for r in results) - min(r[1] for r in results)
    return dict(one_s=one, two_s=two, distinct_pids=len({r[0] for r in results}))


# --------------------------------------------------------------------------- sweeps


def median_or_none(values) -> float | None:
    """The median of the values that are not None (None if there are none: an older tree's child)."""
    values = [v for v in values if v is not None]
    return median(values) if values else None


def sweep_override(parameter: str, values, replicates: int, outputs) -> str:
    vals = ", ".join(str(v) for v in values)
    outs = ", ".join(outputs)
    return (f"sweep={{design: grid, replicates: {replicates}, parameters: {{{parameter}: [{vals}]}}, "
            f"outputs: [{outs}]}}")


def throughput_spec(tree, name: str, p: dict) -> dict:
    workers, dask = EXECUTORS[name]
    overrides = [sweep_override(THROUGHPUT_PARAMETER, THROUGHPUT_VALUES, p["tp_replicates"], THROUGHPUT_OUTPUTS),
                 f"steps={p['tp_steps']}"]
    return dict(task="sweep", name=name, scenario=str(tree.scenario("baseline")), overrides=overrides,
                steps=p["tp_steps"], workers=workers, dask=dask, toy=str(tree.scenario("toy_two_towns")),
                bare_model_runs=p["bare_runs"] if name == "serial" else 0,
                bare_same_runs=name == "serial", parameter=THROUGHPUT_PARAMETER)


def measure_throughput(tree_list, p: dict) -> tuple[dict, dict]:
    from concurrent.futures import ProcessPoolExecutor

    samples = {t.label: {name: [] for name in p["executors"]} for t in tree_list}
    capacity: list[dict] = []
    pool = ProcessPoolExecutor(max_workers=2)
    try:
        for f in [pool.submit(busy_loop, 1000) for _ in range(4)]:
            f.result()
        for _ in range(p["tp_repeats"]):  # interleaved: a burst of load elsewhere hits every configuration
            capacity.append(measure_capacity(pool))
            for name in p["executors"]:
                for tree in tree_list:
                    samples[tree.label][name].append(common.once(tree, **throughput_spec(tree, name, p)))
            capacity.append(measure_capacity(pool))
    finally:
        pool.shutdown()

    sobol = {tree.label: measure_sobol_overhead(tree, p) for tree in tree_list}
    per_sample = [2 * c["one_s"] / c["two_s"] for c in capacity]
    cap = dict(loop_iterations=BUSY_LOOP_N, samples=len(capacity), all_one_s=[c["one_s"] for c in capacity],
               all_two_s=[c["two_s"] for c in capacity], per_sample_speedup=per_sample,
               median_speedup=statistics.median(per_sample),
               best_speedup=2 * min(c["one_s"] for c in capacity) / min(c["two_s"] for c in capacity))
    n_runs = len(THROUGHPUT_VALUES) * p["tp_replicates"]
    trees = {}
    for tree in tree_list:
        rows = []
        for name in p["executors"]:
            runs = samples[tree.label][name]
            sweep_s = median(r["sweep_s"] for r in runs)
            rows.append(dict(executor=name, label=LABELS[name], workers=EXECUTORS[name][0], runs=n_runs,
                             failed=max(r["failed"] for r in runs),
                             started_workers=min(r["started_workers"] for r in runs),
                             startup_s=median(r["startup_s"] for r in runs), sweep_s=sweep_s,
                             all_sweep_s=[r["sweep_s"] for r in runs], all_startup_s=[r["startup_s"] for r in runs],
                             s_per_run=sweep_s / n_runs, runs_per_min=n_runs / sweep_s * 60,
                             busy_workers=median(r["busy_workers"] for r in runs),
                             driver_cpu_over_wall=median(r["driver_cpu_s"] / r["sweep_s"] for r in runs)))
        by = {row["executor"]: row for row in rows}
        serial = by["serial"]
        bare = [t for r in samples[tree.label]["serial"] for t in r["bare_model_s"]]
        bare_s = median(bare)
        speedup = serial["sweep_s"] / by["processes"]["sweep_s"]
        per_repeat = [s["sweep_s"] / w["sweep_s"]
                      for s, w in zip(samples[tree.label]["serial"], samples[tree.label]["processes"])]
        projected = PROJECTED_RUNS * by["processes"]["s_per_run"] + by["processes"]["startup_s"]
        trees[tree.label] = dict(
            rows=rows, bare_model_s=bare_s, all_bare_model_s=bare,
            overhead_ms=median((r["sweep_s"] - r["same_runs_model_s"]) / n_runs
                               for r in samples[tree.label]["serial"]) * 1e3,
            overhead_cpu_ms=median((r["driver_cpu_s"] - r["same_runs_model_cpu_s"]) / n_runs
                                   for r in samples[tree.label]["serial"]) * 1e3,
            # Per run inside the loop (first finished run to last, less the bare model of those
            # runs), and what the sweep does once (all of the sweep less the loop and its runs).
            in_loop_overhead_ms=median_or_none(r.get("in_loop_overhead_ms") for r in samples[tree.label]["serial"]),
            fixed_cost_s=median_or_none(r.get("once_only_s") for r in samples[tree.label]["serial"]),
            sobol_in_loop_overhead_ms=sobol[tree.label],
            serial_ms_per_run=serial["s_per_run"] * 1e3,
            speedup=speedup, speedup_per_repeat=per_repeat, speedup_of_capacity=speedup / cap["median_speedup"],
            speedup_dask=(serial["sweep_s"] / by["dask"]["sweep_s"]) if "dask" in by else None,
            projected_10k_s=projected, projected_10k_min=projected / 60)
    tp = dict(scenario="scenarios/baseline.yaml", steps=p["tp_steps"], parameter=THROUGHPUT_PARAMETER,
              values=list(THROUGHPUT_VALUES), replicates=p["tp_replicates"], runs=n_runs, repeats=p["tp_repeats"],
              outputs=list(THROUGHPUT_OUTPUTS), sobol_samples=p["sobol_samples"], trees=trees)
    return tp, cap


def measure_sobol_overhead(tree, p: dict) -> float | None:
    """The in-loop overhead per run (ms) of a serial Sobol sweep of one-year runs (SOBOL_SCENARIO, few samples).

    Each run of a Sobol design is a design point of its own, so unlike the grid's replicates
    every run validates its point's scenario: the case of the 10,000-run target. None if the
    tree has no such scenario or the child measured nothing.
    """
    scenario = tree.scenario(SOBOL_SCENARIO)
    if scenario is None:
        return None
    overrides = [f"sweep.samples={p['sobol_samples']}", f"steps={p['tp_steps']}"]
    result = common.once(tree, task="sweep", name="serial", scenario=str(scenario), overrides=overrides,
                         steps=p["tp_steps"], workers=1, dask=False, toy=str(tree.scenario("toy_two_towns")),
                         bare_model_runs=0, bare_same_runs=False, parameter=None)
    return result.get("in_loop_overhead_ms")


def memory_spec(tree, name: str, runs: int, p: dict) -> dict:
    workers, _ = EXECUTORS[name]
    overrides = [sweep_override(MEMORY_PARAMETER, MEMORY_VALUES, runs // len(MEMORY_VALUES), MEMORY_OUTPUTS),
                 f"steps={p['mem_steps']}"]
    toy = str(tree.scenario("toy_two_towns"))
    return dict(task="sweep", name=name, scenario=toy, overrides=overrides, steps=p["mem_steps"], workers=workers,
                dask=False, toy=toy, sample_workers=workers > 1, sample_every=25)


def measure_memory(tree, p: dict) -> dict:
    rows = []
    plan = [("serial", n) for n in p["mem_serial_runs"]] + [("processes", n) for n in p["mem_worker_runs"]]
    for name, n in plan:
        r = common.once(tree, **memory_spec(tree, name, n, p))
        r["growth_kib"] = r["peak_rss_kib"] - r["rss_before_sweep_kib"]
        r["growth_kib_per_run"] = r["growth_kib"] / r["runs"] if r["runs"] else float("nan")
        rows.append(r)
    verdicts = {}
    for name in ("serial", "processes"):
        mine = [r for r in rows if r["executor"] == name]
        if len(mine) >= 2:
            small, large = mine[0], mine[-1]
            ratio = large["peak_rss_kib"] / small["peak_rss_kib"]
            verdicts[name] = dict(runs_small=small["runs"], runs_large=large["runs"], ratio=ratio,
                                  verdict="PASS" if ratio <= MEMORY_RATIO_TARGET else "MISS")
            if small["worker_peak_rss_kib"] and large["worker_peak_rss_kib"]:
                verdicts[name]["worker_ratio"] = large["worker_peak_rss_kib"] / small["worker_peak_rss_kib"]
    return dict(tree=tree.label, scenario="scenarios/toy_two_towns.yaml", steps=p["mem_steps"],
                parameter=MEMORY_PARAMETER, points=len(MEMORY_VALUES), rows=rows, ratios=verdicts,
                target=MEMORY_RATIO_TARGET)


def run_full_sweep(tree) -> dict:
    """`run.py sweep benchmarks/sweep_sobol_10k.yaml --workers 2` on `tree`, for real; its wall time."""
    with tempfile.TemporaryDirectory(prefix="bench_sweep_full_") as tmp:
        out = Path(tmp) / "sweep"
        cmd = [sys.executable, "run.py", "sweep", str(FULL_DESIGN), "--workers", str(WORKERS), "--out", str(out)]
        load_before = common.loadavg()
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=tree.root, env=tree.subprocess_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, timeout=FULL_SWEEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{tree.label}: run.py sweep {FULL_DESIGN.name} did not finish within "
                             f"{FULL_SWEEP_TIMEOUT_S} s") from None
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            last = (proc.stderr or "").strip().splitlines()[-1:] or ["(no message)"]
            raise BenchError(f"{tree.label}: run.py sweep {FULL_DESIGN.name} exited {proc.returncode}: {last[0]}")
        with open(out / "outcomes.csv", newline="") as handle:
            runs = sum(1 for _ in csv.DictReader(handle))
    design = FULL_DESIGN.relative_to(ROOT) if FULL_DESIGN.is_relative_to(ROOT) else FULL_DESIGN
    return dict(tree=tree.label, design=str(design), command=" ".join(cmd[1:]), runs=runs,
                wall_s=wall, wall_min=wall / 60, per_10k_s=wall * PROJECTED_RUNS / runs if runs else None,
                load_before=load_before, load_after=common.loadavg(), target_s=SWEEP_10K_TARGET_S,
                verdict=common.verdict(wall * PROJECTED_RUNS / runs if runs else None, SWEEP_10K_TARGET_S))


# --------------------------------------------------------------------------- report


def versions() -> dict:
    out = {}
    for dist in ("dask", "distributed", "pandas", "psutil"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def render(mach, tree_list, mode, res, load_start, load_end) -> str:
    tp, cap = res["throughput"], res["capacity"]
    labels = [t.label for t in tree_list]
    v = res["packages"]
    lines = common.header(f"Sweep benchmark ({mode})", mach, tree_list, load_start, load_end)
    add = lines.append
    add(f"pandas {v['pandas']}, dask/distributed {v['dask']}/{v['distributed']}. Each sweep runs in a fresh "
        "subprocess on its tree; interpreter start-up, imports and start_sweep() are not timed. Medians of repeats.")
    add("")
    add(f"0. Machine's free parallel capacity: pure-Python busy loop ({cap['loop_iterations']:,} iterations) in 1 vs "
        "2 processes, sampled before and after each repeat: "
        + " / ".join(f"{s:.2f}" for s in cap["per_sample_speedup"])
        + f"; median {cap['median_speedup']:.2f}x, from the best times {cap['best_speedup']:.2f}x "
        "(2.00x = two free cores)")
    add("")
    add(f"1. One-year sweeps: {tp['scenario']}, {tp['steps']} steps, grid {len(tp['values'])} points "
        f"({tp['parameter']}) x {tp['replicates']} replicates = {tp['runs']} runs; {tp['repeats']} repeat(s), "
        "interleaved over executors and trees")
    add(f"   {'tree':<7}{'executor':<30} {'start-up s':>10} {'sweep s':>8} {'ms/run':>8} {'runs/min':>9} {'busy':>5} "
        f"{'driver CPU/wall':>15}")
    for label in labels:
        for r in tp["trees"][label]["rows"]:
            startup = "-" if r["executor"] == "serial" else f"{r['startup_s']:.2f}"
            add(f"   {label:<7}{r['label']:<30} {startup:>10} {r['sweep_s']:8.2f} {r['s_per_run'] * 1e3:8.1f} "
                f"{r['runs_per_min']:9.1f} {r['busy_workers']:5.2f} {r['driver_cpu_over_wall']:15.2f}"
                + (f"  FAILED RUNS {r['failed']}" if r["failed"] else ""))
    add("   (busy = sum of the runs' own times / sweep wall time: how many runs were in progress on average)")
    trees = tp["trees"]

    def row(figure, key, fmt, target="", limit=None, show_ratio=True):
        vals = [trees[label][key] for label in labels]
        cells = ["-" if x is None else format(x, fmt) for x in vals]
        rat = ratio_text(vals[0], vals[-1]) if show_ratio and len(vals) == 2 else ""
        ver = common.verdict(vals[-1], limit) if limit is not None else ""
        return (figure, *cells, rat, target, ver)

    table = [("figure", *labels, "after/before" if len(labels) == 2 else "", "target", "verdict"),
             row("bare model, construction + steps, s/run", "bare_model_s", ".4f"),
             row("serial sweep wall time, ms/run", "serial_ms_per_run", ".1f"),
             row("per-run overhead outside the model, once-only work spread over the runs, ms (1 worker)",
                 "overhead_ms", ".1f"),
             row("  the same in CPU time (steadier under load), ms", "overhead_cpu_ms", ".1f"),
             row("  per run inside the loop (the sweep's once-only work left out), ms", "in_loop_overhead_ms",
                 ".1f", f"<= {OVERHEAD_TARGET_MS:g} ms", OVERHEAD_TARGET_MS),
             row("  the sweep's once-only work (scenario, design, journal, outcomes.csv), s", "fixed_cost_s",
                 ".2f"),
             row(f"  per run inside the loop, Sobol design ({SOBOL_SCENARIO}, N = {tp['sobol_samples']} x 10 runs), ms",
                 "sobol_in_loop_overhead_ms", ".1f", f"<= {OVERHEAD_TARGET_MS:g} ms", OVERHEAD_TARGET_MS),
             row(f"speed-up, {WORKERS} processes vs serial", "speedup", ".2f", show_ratio=False),
             row("  as a share of the machine's median free capacity", "speedup_of_capacity", ".0%",
                 show_ratio=False),
             row(f"speed-up, Dask ({WORKERS} workers) vs serial", "speedup_dask", ".2f", show_ratio=False),
             row(f"projected {PROJECTED_RUNS:,}-run sweep of one-year runs, {WORKERS} workers, min",
                 "projected_10k_min", ".1f", f"<= {SWEEP_10K_TARGET_S / 60:g} min", SWEEP_10K_TARGET_S / 60)]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(table[0]))]
    for r in table:
        add("   " + "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                              for i, c in enumerate(r)).rstrip())
    for label in labels:
        t = trees[label]
        add(f"   {label}: speed-up per repeat " + " / ".join(f"{x:.2f}" for x in t["speedup_per_repeat"])
            + "; every bare model run, s " + " / ".join(f"{x:.4f}" for x in t["all_bare_model_s"]))
    add("   (overhead = (serial sweep wall time - the bare model's time on the same runs, same process) / runs, "
        "the sweep's fixed cost included; in CPU time: the same with the serial driver's CPU time; "
        "inside the loop: (last run's end - first run's end - the time in those runs' own models, timed inside "
        "the sweep) / (runs - 1), the target's measure: a 10,000-run sweep spreads its once-only work over "
        "10,000 runs; once-only work: the sweep's wall time less every run's model and in-loop overhead; "
        f"projection = {PROJECTED_RUNS:,} x the {WORKERS}-worker wall time per run + the pool's start-up, "
        "for runs like "
        "these: the Sobol design's runs vary their parameters)")
    if "memory" in res:
        mem = res["memory"]
        add("")
        add(f"2. Peak memory of the sweep driver vs run count ({mem['tree']} tree only): {mem['scenario']}, "
            f"{mem['steps']} steps, {mem['points']} grid points x runs/{mem['points']} replicates, "
            "one fresh process per sweep")
        add(f"   {'executor':<10} {'runs':>5} {'before MiB':>10} {'peak MiB':>9} {'growth MiB':>10} {'KiB/run':>8} "
            f"{'worker MiB':>10} {'outcomes.csv KiB':>16} {'runs.jsonl KiB':>14} {'ms/run first/last 10%':>22} "
            f"{'sweep s':>8}")
        for r in mem["rows"]:
            worker = "-" if not r["worker_peak_rss_kib"] else f"{r['worker_peak_rss_kib'] / 1024:.0f}"
            ms = f"{r['ms_per_run_first_tenth']:.1f} / {r['ms_per_run_last_tenth']:.1f}"
            add(f"   {r['executor']:<10} {r['runs']:5d} {r['rss_before_sweep_kib'] / 1024:10.0f} "
                f"{r['peak_rss_kib'] / 1024:9.0f} {r['growth_kib'] / 1024:10.0f} {r['growth_kib_per_run']:8.0f} "
                f"{worker:>10} {r['outcomes_csv_bytes'] / 1024:16.1f} {r['runs_jsonl_bytes'] / 1024:14.1f} "
                f"{ms:>22} {r['sweep_s']:8.2f}" + (f"  FAILED RUNS {r['failed']}" if r["failed"] else ""))
        for name, label in (("serial", "serial driver (runs the models itself)"),
                            ("processes", f"{WORKERS}-worker driver")):
            ratio = mem["ratios"].get(name)
            if ratio:
                extra = f"; largest worker {ratio['worker_ratio']:.2f}x" if "worker_ratio" in ratio else ""
                add(f"   {label}: peak RSS at {ratio['runs_large']} runs / at {ratio['runs_small']} runs = "
                    f"{ratio['ratio']:.2f}x   target <= {mem['target']}   {ratio['verdict']}{extra}")
    if "full_sweep" in res:
        f = res["full_sweep"]
        fmt = common.fmt_load
        add("")
        add(f"3. The full Sobol sweep, for real ({f['tree']} tree): python {f['command']}")
        add(f"   {f['runs']:,} runs (outcomes.csv), analysis included: wall time {f['wall_s']:.1f} s "
            f"= {f['wall_min']:.2f} min; "
            f"per 10,000 runs {f['per_10k_s'] / 60:.2f} min   target <= {f['target_s'] / 60:g} min   {f['verdict']}")
        add(f"   load average before {fmt(f['load_before'])}, after {fmt(f['load_after'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweeps, one repeat, no Dask")
    parser.add_argument("--full", action="store_true",
                        help=f"also run the {FULL_DESIGN.name} Sobol sweep (10,240 one-year runs) on the working tree")
    parser.add_argument("--no-memory", action="store_true", help="skip the driver-memory sweeps")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    common.add_before_option(parser)
    args = parser.parse_args(argv)

    mode = "quick" if args.quick else "default"
    if args.full:
        mode += " + full 10,000-run sweep"
    p = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_start = common.loadavg()
    mach = common.machine()
    res: dict = {"packages": versions()}
    try:
        with common.trees(None if args.no_before else args.before) as tree_list:
            for tree in tree_list:
                if tree.scenario("baseline") is None or tree.scenario("toy_two_towns") is None:
                    raise BenchError(f"{tree.label}: scenarios/baseline.yaml or toy_two_towns.yaml missing")
            res["throughput"], res["capacity"] = measure_throughput(tree_list, p)
            if not args.no_memory:
                res["memory"] = measure_memory(tree_list[-1], p)
            if args.full:
                res["full_sweep"] = run_full_sweep(tree_list[-1])
            load_end = common.loadavg()
            print(render(mach, tree_list, mode, res, load_start, load_end))
            trees_json = [dict(label=t.label, revision=t.revision, fingerprint=t.fingerprint) for t in tree_list]
    except BenchError as exc:
        print(f"bench_sweep: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(f"\n(benchmark wall time {elapsed:.1f} s)")
    common.write_json(args.json, dict(mode=mode, parameters=p, machine=mach, trees=trees_json,
                                      load_average=dict(start=load_start, end=load_end), results=res,
                                      benchmark_wall_s=elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
