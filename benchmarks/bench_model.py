#!/usr/bin/env python
"""Model benchmark: speed, scaling and memory of CorridorModel (sim/), before and after, in one run.

Run from the repository root:

    python benchmarks/bench_model.py                         # full run, reference 2eea2af alongside
    python benchmarks/bench_model.py --quick                 # fewer steps and repeats (about a minute)
    python benchmarks/bench_model.py --scenario syria_wide   # also a named scenario (year + memory)
    python benchmarks/bench_model.py --before main~3 --json out.json
    python benchmarks/bench_model.py --no-before             # the working tree alone

"after" is this working tree; "before" is the reference revision (`--before REV`, default
the commit before issue 13's work), extracted into a temporary directory. Each is measured
in its own subprocess (benchmarks/_child.py, PYTHONPATH pointing at that tree, the same
interpreter), and requests alternate between them, so load from elsewhere hits both alike.
Figures are medians of the repeats. Targets are printed PASS/MISS, never asserted.

What is measured (see benchmarks/README.md):
1. a simulated year: construction + 365 steps of CorridorModel (one core), median of repeats,
   and the same through sim.runner.run_model (what a sweep or `run.py run` pays); target 60 ms;
2. numpy calls and Python calls per step (a fresh process, sys.setprofile plus counting
   wrappers, averaged over the steps);
3. scaling: fighters and recruit pool multiplied together by 1, 3, 10, 30; time per step,
   the fit time per step = a + b x agents (a = fixed cost per step, b = cost per agent-step)
   with R^2, and the per-agent cost at 30x relative to 1x;
4. throughput against Mesa's epstein_civil_violence example at an EQUAL number of agents;
5. peak memory of one run in a fresh process: tracemalloc peak and ru_maxrss;
1b. the numba kernels' compile time, apart: a year with an empty kernel cache less a year with it.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `python benchmarks/bench_model.py` works without PYTHONPATH
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402
from benchmarks.common import BenchError, median, ratio_text  # noqa: E402

YEAR = 365  # steps (days) in a simulated year
YEAR_TARGET_S = 0.060  # issue 13: a simulated year of the baseline, one core
SCENARIO_YEAR_TARGET_S = {"syria_wide": 5.0}  # issue 13: a simulated year of the Syria-wide scenario
SCENARIO_YEAR_REPEATS = 3  # at most, for scenarios other than the baseline (larger, slower)
RATIO_TARGET = 30.0  # agent-steps/s of this model over Mesa's Epstein example
SEED = 1

FULL = dict(year_repeats=5, calls_steps=YEAR, scales=(1, 3, 10, 30), scaling_steps=120, scaling_repeats=3,
            epstein_steps=50, epstein_repeats=3, epstein_tries=300, memory_steps=YEAR)
QUICK = dict(year_repeats=2, calls_steps=30, scales=(1, 3, 10, 30), scaling_steps=20, scaling_repeats=1,
             epstein_steps=5, epstein_repeats=1, epstein_tries=30, memory_steps=30)


def agent_count(run: dict) -> int:
    """The agents of the fit and of the Epstein comparison: the recruit pool (fighters included).

    `len(model.recruits)` when the model has it (every person who may fight: fighters and the
    civilians who may enlist); the handful of faction and tribal-leader agents are left out so
    that the count means the same however a revision represents recruits.
    """
    return int(run["recruits"]) if run.get("recruits") is not None else int(run["agents"])


# --------------------------------------------------------------------------- measurements


def measure_year(kids, name: str, p: dict) -> dict:
    """Construction + 365 steps, and run_model for 365 steps, per tree; one warm-up, then repeats."""
    out = {}
    paths = {kid.tree.label: kid.tree.scenario(name) for kid in kids}
    active = [kid for kid in kids if paths[kid.tree.label] is not None]
    for kid in kids:
        if paths[kid.tree.label] is None:
            out[kid.tree.label] = dict(skipped=f"scenarios/{name}.yaml does not exist in {kid.tree.revision}")
    samples = {kid.tree.label: dict(first=None, runs=[], run_model=[]) for kid in active}
    repeats = p["year_repeats"] if name == "baseline" else min(p["year_repeats"], SCENARIO_YEAR_REPEATS)
    for kid in active:  # first run in each process: imports, caches, any compilation
        samples[kid.tree.label]["first"] = kid.ask(task="run", scenario=str(paths[kid.tree.label]), steps=YEAR)
    for _ in range(repeats):
        for kid in active:  # interleaved
            s = samples[kid.tree.label]
            s["runs"].append(kid.ask(task="run", scenario=str(paths[kid.tree.label]), steps=YEAR))
            s["run_model"].append(kid.ask(task="run_model", scenario=str(paths[kid.tree.label]), steps=YEAR)["total_s"])
    for label, s in samples.items():
        runs = s["runs"]
        out[label] = dict(
            agents=agent_count(runs[0]), mesa_agents=runs[0]["agents"], fighters=runs[0]["fighters"],
            fighters_end=runs[0].get("fighters_end"),
            first_total_s=s["first"]["total_s"], build_s=median(r["build_s"] for r in runs),
            steps_s=median(r["steps_s"] for r in runs), total_s=median(r["total_s"] for r in runs),
            ms_per_step=median(r["steps_s"] for r in runs) / YEAR * 1e3,
            cpu_over_wall=median(r["cpu_s"] / r["total_s"] for r in runs), cpu_s=median(r["cpu_s"] for r in runs),
            all_total_s=[r["total_s"] for r in runs], run_model_s=median(s["run_model"]),
            all_run_model_s=s["run_model"], repeats=len(runs))
    return out


def measure_compile(tree_list, name: str) -> dict:
    """A year in a fresh process with an empty kernel cache (compiling), then again with that cache.

    The difference is what compiling the numba kernels costs the first run on a machine (later
    runs load them from the cache; a tree without compiled code shows about 0). Each run's
    time is construction + steps, as in 1.; the cache directory is deleted afterwards.
    """
    out = {}
    for tree in tree_list:
        path = tree.scenario(name)
        if path is None:
            out[tree.label] = dict(skipped=f"not in {tree.revision}")
            continue
        with tempfile.TemporaryDirectory(prefix="bench_numba_cache_") as cache:
            env = {"NUMBA_CACHE_DIR": cache}
            cold = common.once(tree, env=env, task="run", scenario=str(path), steps=YEAR)
            files = sum(1 for _ in Path(cache).rglob("*.nbc"))
            warm = common.once(tree, env=env, task="run", scenario=str(path), steps=YEAR)
        out[tree.label] = dict(cold_s=cold["total_s"], warm_s=warm["total_s"],
                               compile_s=max(cold["total_s"] - warm["total_s"], 0.0), cached_kernels=files)
    return out


def measure_calls(tree_list, name: str, steps: int) -> dict:
    out = {}
    for tree in tree_list:
        path = tree.scenario(name)
        out[tree.label] = (common.once(tree, task="calls", scenario=str(path), steps=steps) if path
                           else dict(skipped=f"not in {tree.revision}"))
    return out


def measure_scaling(kids, p: dict) -> dict:
    scales = p["scales"]
    cfgs = {}
    for kid in kids:
        path = str(kid.tree.scenario("baseline"))
        cfgs[kid.tree.label] = {k: kid.ask(task="scaled_overrides", scenario=path, k=k)["overrides"] for k in scales}
    runs = {kid.tree.label: {k: [] for k in scales} for kid in kids}
    for _ in range(p["scaling_repeats"]):
        for k in scales:
            for kid in kids:  # interleaved over sizes and trees
                runs[kid.tree.label][k].append(kid.ask(task="run", scenario=str(kid.tree.scenario("baseline")),
                                                       overrides=cfgs[kid.tree.label][k], steps=p["scaling_steps"]))
    out = {}
    for label, by_k in runs.items():
        rows = []
        for k in scales:
            agents = agent_count(by_k[k][0])
            per_step = median(r["steps_s"] for r in by_k[k]) / p["scaling_steps"]
            cpu_per_step = median(r.get("steps_cpu_s") for r in by_k[k]) / p["scaling_steps"]
            rows.append(dict(scale=k, agents=agents, fighters=by_k[k][0]["fighters"],
                             fighters_end=by_k[k][0].get("fighters_end"), ms_per_step=per_step * 1e3,
                             cpu_ms_per_step=cpu_per_step * 1e3,
                             us_per_agent_step=per_step / agents * 1e6, overrides=cfgs[label][k]))
        for row in rows:
            row["agents_vs_1x"] = row["agents"] / rows[0]["agents"]
            row["fighters_vs_1x"] = (row["fighters"] / rows[0]["fighters"]) if rows[0]["fighters"] else None
            row["fighters_end_vs_1x"] = (row["fighters_end"] / rows[0]["fighters_end"]
                                         if rows[0].get("fighters_end") else None)
            row["per_agent_vs_1x"] = row["us_per_agent_step"] / rows[0]["us_per_agent_step"]
        fit = common.fit_line([r["agents"] for r in rows], [r["ms_per_step"] / 1e3 for r in rows])
        cpu_fit = common.fit_line([r["agents"] for r in rows], [r["cpu_ms_per_step"] / 1e3 for r in rows])
        out[label] = dict(rows=rows, fixed_ms_per_step=fit["a"] * 1e3, ns_per_agent_step=fit["b"] * 1e9, r2=fit["r2"],
                          cpu_fixed_ms_per_step=cpu_fit["a"] * 1e3, cpu_ns_per_agent_step=cpu_fit["b"] * 1e9,
                          cpu_r2=cpu_fit["r2"],
                          per_agent_top_vs_1x=rows[-1]["per_agent_vs_1x"],
                          fixed_share_at_1x=fit["a"] / (rows[0]["ms_per_step"] / 1e3))
    return dict(steps=p["scaling_steps"], repeats=p["scaling_repeats"], scales=list(scales), trees=out)


def measure_epstein(kids, year: dict, p: dict) -> dict:
    """Mesa's Epstein example at the same number of agents as the working tree's baseline."""
    after = kids[-1]  # Epstein does not depend on sim/: run it in the working tree's process
    target = year[after.tree.label]["agents"]
    size = after.ask(task="epstein_size", agents=target, max_tries=p["epstein_tries"])
    runs = []
    for _ in range(p["epstein_repeats"]):
        runs.append(after.ask(task="epstein", side=size["side"], seed=size["seed"], steps=p["epstein_steps"]))
    ep_rate = runs[0]["agents"] * p["epstein_steps"] / median(r["steps_s"] for r in runs)
    models = {}
    for label, y in year.items():
        if "skipped" in y:
            continue
        rate = y["agents"] * YEAR / y["steps_s"]
        models[label] = dict(agents=y["agents"], agent_steps_per_s=rate, ratio=rate / ep_rate,
                             verdict="PASS" if rate / ep_rate >= RATIO_TARGET else "MISS")
    return dict(epstein=dict(size, steps=p["epstein_steps"], repeats=p["epstein_repeats"],
                             steps_s=median(r["steps_s"] for r in runs), agent_steps_per_s=ep_rate,
                             equal=size["agents"] == target),
                models=models, target=RATIO_TARGET)


def measure_memory(tree_list, name: str, steps: int) -> dict:
    out = {}
    for tree in tree_list:
        path = tree.scenario(name)
        out[tree.label] = (common.once(tree, task="memory", scenario=str(path), steps=steps) if path
                           else dict(skipped=f"not in {tree.revision}"))
    return out


def profile_baseline(steps: int, top: int = 10) -> str:
    """cProfile one baseline run of the working tree (in this process); the top sim/ entries by cumulative time."""
    from sim.model import CorridorModel
    from sim.scenario import load_scenario

    cfg = load_scenario(str(ROOT / "scenarios" / "baseline.yaml"))
    profiler = cProfile.Profile()
    profiler.enable()
    model = CorridorModel(cfg, seed=SEED)
    for _ in range(steps):
        model.step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    sim_dir = str(ROOT / "sim")
    entries = [(key, value) for key, value in stats.stats.items() if key[0].startswith(sim_dir)]
    entries.sort(key=lambda kv: kv[1][3], reverse=True)
    out = io.StringIO()
    out.write(f"cProfile of the working tree's baseline ({steps} steps incl. construction), "
              f"profiled total {total:.2f} s\n")
    out.write(f"top {top} by cumulative time, functions in sim/:\n")
    out.write(f"  {'cumulative s':>12} {'share':>6} {'own s':>7} {'calls':>8}  function\n")
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in entries[:top]:
        where = f"{Path(filename).relative_to(ROOT)}:{line}({func})"
        out.write(f"  {cumtime:12.3f} {cumtime / total:6.1%} {tottime:7.3f} {ncalls:8d}  {where}\n")
    collect = [v for k, v in stats.stats.items() if k[2] == "collect" and k[0].endswith("datacollection.py")]
    if collect:
        cum = sum(v[3] for v in collect)
        out.write(f"  (outside sim/: mesa DataCollector.collect {cum:.3f} s, "
                  f"{cum / total:.1%} of the profiled total)\n")
    return out.getvalue()


# --------------------------------------------------------------------------- report


def environment() -> dict:
    """Date, the working tree's sim/ fingerprint, versions and CPUs (also used by bench_explorer.py)."""
    import mesa
    import numpy as np

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    digest = hashlib.sha256()
    for path in sorted((ROOT / "sim").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return dict(date=_dt.date.today().isoformat(), sim_sha256=digest.hexdigest()[:12],
                python=platform.python_version(), mesa=mesa.__version__, numpy=np.__version__,
                platform=platform.platform(), cpu_count=os.cpu_count(), usable_cpus=usable)


class Table:
    """Rows of: figure | before | after | after/before | target | verdict (after)."""

    def __init__(self, labels: list[str]):
        self.labels = labels
        self.rows: list[tuple] = []

    def add(self, figure: str, values: dict, fmt: str, target: str = "", limit: float | None = None,
            ratio: bool = True) -> None:
        cells = []
        for label in self.labels:
            v = values.get(label)
            cells.append("-" if v is None else (v if isinstance(v, str) else format(v, fmt)))
        nums = [values.get(label) for label in self.labels]
        rat = (ratio_text(nums[0], nums[-1]) if ratio and len(nums) == 2
               and all(isinstance(n, (int, float)) for n in nums) else "")
        last = nums[-1]
        ver = common.verdict(last, limit) if limit is not None and isinstance(last, (int, float)) else ""
        self.rows.append((figure, *cells, rat, target, ver))

    def render(self, indent: str = "   ") -> list[str]:
        head = ("figure", *self.labels, "after/before" if len(self.labels) == 2 else "", "target", "verdict")
        widths = [max(len(str(r[i])) for r in [head, *self.rows]) for i in range(len(head))]
        out = []
        for r in [head, *self.rows]:
            out.append(indent + "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                                          for i, c in enumerate(r)).rstrip())
        return out


def pick(d: dict, key: str) -> dict:
    return {label: v.get(key) for label, v in d.items() if isinstance(v, dict) and "skipped" not in v}


def render(mach, tree_list, mode, p, res, load_start, load_end) -> str:
    labels = [t.label for t in tree_list]
    lines = common.header(f"CorridorModel benchmark ({mode})", mach, tree_list, load_start, load_end)
    add = lines.append
    add("Each tree runs in its own subprocess (PYTHONPATH = that tree, same interpreter); requests alternate "
        "between them. Figures are medians of repeats; 'after/before' < 1 means after is smaller/faster.")
    for name, year in res["year"].items():
        add("")
        reps = next((y["repeats"] for y in year.values() if "repeats" in y), 0)
        add(f"1. A simulated year of {name}: construction + {YEAR} steps of CorridorModel, seed {SEED}, one core; "
            f"median of {reps} repeats after one warm-up run")
        for label, y in year.items():
            if "skipped" in y:
                add(f"   {label}: skipped: {y['skipped']}")
        target = SCENARIO_YEAR_TARGET_S.get(name, YEAR_TARGET_S if name == "baseline" else None)
        t = Table(labels)
        t.add("agents (recruit pool, fighters included)", pick(year, "agents"), ",d", ratio=False)
        t.add("fit fighters at day 0", pick(year, "fighters"), ",d", ratio=False)
        t.add(f"fit fighters after {YEAR} days", pick(year, "fighters_end"), ",d", ratio=False)
        t.add("construction s", pick(year, "build_s"), ".4f")
        t.add(f"{YEAR} steps s", pick(year, "steps_s"), ".4f")
        t.add("seconds per simulated year (construction + steps)", pick(year, "total_s"), ".4f",
              f"<= {target:g} s" if target else "", target)
        t.add("  the same through sim.runner.run_model", pick(year, "run_model_s"), ".4f",
              f"<= {target:g} s" if target else "", target)
        t.add("  first run in the process (imports, caches, compiling)", pick(year, "first_total_s"), ".4f")
        t.add("ms per step (mean over the year)", pick(year, "ms_per_step"), ".3f")
        t.add("  CPU time of the same (less sensitive to load) s", pick(year, "cpu_s"), ".4f")
        t.add("CPU time / wall time (~1.0 = one core)", pick(year, "cpu_over_wall"), ".2f", ratio=False)
        lines.extend(t.render())
        for label, y in year.items():
            if "all_total_s" in y:
                add(f"   {label} repeats, construction + steps s: " + " / ".join(f"{v:.4f}" for v in y["all_total_s"])
                    + "; run_model s: " + " / ".join(f"{v:.4f}" for v in y["all_run_model_s"]))
    if "compile" in res:
        add("")
        add(f"1b. Compiling the numba kernels: a baseline year in a fresh process with an empty NUMBA_CACHE_DIR "
            f"(compiles), then in another with that cache (loads); construction + {YEAR} steps each")
        t = Table(labels)
        t.add("first run on a machine, empty cache s", pick(res["compile"], "cold_s"), ".3f")
        t.add("the next run, kernels loaded from the cache s", pick(res["compile"], "warm_s"), ".3f")
        t.add("compile time (the difference) s", pick(res["compile"], "compile_s"), ".3f")
        t.add("compiled kernels cached", pick(res["compile"], "cached_kernels"), ",d", ratio=False)
        lines.extend(t.render())
    add("")
    calls = res["calls"]
    add(f"2. Calls per step (baseline, a fresh process, {p['calls_steps']} steps after one uncounted step; "
        "see README for what counts as a numpy call)")
    t = Table(labels)
    t.add("numpy calls per step (calls into numpy from outside it)", pick(calls, "numpy_calls_per_step"), ",.0f")
    t.add("  numpy functions/methods called, numpy's own calls included", pick(calls, "numpy_calls_all_per_step"),
          ",.0f")
    t.add("Python function calls per step", pick(calls, "python_calls_per_step"), ",.0f")
    lines.extend(t.render())
    for label, c in calls.items():
        if "top_numpy" in c:
            add(f"   {label} most called: " + ", ".join(f"{n} {v:.0f}" for n, v in c["top_numpy"]))
    add("")
    s = res["scaling"]
    add(f"3. Scaling: fighters AND recruit pool multiplied together by k (town populations, initial fighters and "
        f"outsiders, and the money that pays them: budgets, reserves, patrons' funding, revenue), {s['steps']} steps, "
        f"median of {s['repeats']}, construction excluded")
    add(f"   {'tree':<7}{'k':>4} {'agents':>9} {'x':>6} {'fighters day 0':>15} {'x':>6} {'at the end':>11} {'x':>6} "
        f"{'ms/step':>9} {'us/agent-step':>14} {'per agent vs 1x':>16}")
    for label, tr in s["trees"].items():
        for r in tr["rows"]:
            fx = f"{r['fighters_vs_1x']:.1f}" if r["fighters_vs_1x"] else "-"
            fe = f"{r['fighters_end_vs_1x']:.1f}" if r.get("fighters_end_vs_1x") else "-"
            add(f"   {label:<7}{r['scale']:>3}x {r['agents']:9,d} {r['agents_vs_1x']:6.1f} {r['fighters'] or 0:15,d} "
                f"{fx:>6} {r.get('fighters_end') or 0:11,d} {fe:>6} {r['ms_per_step']:9.3f} "
                f"{r['us_per_agent_step']:14.4f} {r['per_agent_vs_1x']:16.2f}")
    top = s["scales"][-1]
    t = Table(labels)
    t.add("fixed cost per step a, ms (fit)", pick(s["trees"], "fixed_ms_per_step"), ".3f")
    t.add("cost per agent-step b, ns (fit)", pick(s["trees"], "ns_per_agent_step"), ".1f")
    t.add("R^2 of the fit time/step = a + b x agents", pick(s["trees"], "r2"), ".4f", ratio=False)
    t.add("share of a 1x step that is fixed cost (a / time)", pick(s["trees"], "fixed_share_at_1x"), ".0%",
          ratio=False)
    t.add("the same fit on CPU time: a, ms", pick(s["trees"], "cpu_fixed_ms_per_step"), ".3f")
    t.add("  b, ns", pick(s["trees"], "cpu_ns_per_agent_step"), ".1f")
    t.add("  R^2", pick(s["trees"], "cpu_r2"), ".4f", ratio=False)
    t.add(f"per-agent cost at {top}x / at 1x", pick(s["trees"], "per_agent_top_vs_1x"), ".2f", ratio=False)
    lines.extend(t.render())
    add(f"   (the ratio at {top}x falls below 1 whenever fixed cost dominates: read a and b, not the ratio alone)")
    add("")
    e = res["epstein"]
    ep = e["epstein"]
    same = "EQUAL" if ep["equal"] else f"closest found ({ep['agents']:,d} vs {ep['target']:,d})"
    add(f"4. Throughput against Mesa's epstein_civil_violence at equal agents ({same}: Epstein {ep['side']}x"
        f"{ep['side']} grid, seed {ep['seed']} found in {ep['tries']} tries; densities {ep['citizen_density']} + "
        f"{ep['cop_density']}; constructor '{ep['api']}', import {ep['import_path']})")
    add(f"   Epstein: {ep['agents']:,d} agents x {ep['steps']} steps, median of {ep['repeats']}: "
        f"{ep['agent_steps_per_s']:,.0f} agent-steps/s (its own per-agent DataCollector on)")
    t = Table(labels)
    t.add("CorridorModel baseline agents", pick(e["models"], "agents"), ",d", ratio=False)
    t.add("CorridorModel agent-steps/s (year figures above)", pick(e["models"], "agent_steps_per_s"), ",.0f")
    t.add("ratio to Epstein", pick(e["models"], "ratio"), ",.1f", f">= {e['target']:.0f}x")
    lines.extend(t.render())
    if "memory" in res:
        for name, mem in res["memory"].items():
            add("")
            add(f"5. Peak memory, {name}: one run of {p['memory_steps']} steps in a fresh process")
            for label, m in mem.items():
                if "skipped" in m:
                    add(f"   {label}: skipped: {m['skipped']}")
            t = Table(labels)
            t.add("tracemalloc peak MiB (Python + numpy allocations)", pick(mem, "traced_peak_mib"), ".1f")
            t.add("  of which after construction MiB", pick(mem, "traced_peak_after_build_mib"), ".1f")
            t.add("ru_maxrss of the process MiB (interpreter + imports + run)", pick(mem, "maxrss_mib"), ".0f")
            t.add("  ru_maxrss after imports, before the model MiB", pick(mem, "maxrss_after_imports_mib"), ".0f")
            lines.extend(t.render())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (about a minute)")
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME",
                        help="also measure scenarios/NAME.yaml (year and memory); repeatable")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one baseline year of the working tree and print the top 10 sim/ entries")
    common.add_before_option(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench_model: {exc}", file=sys.stderr)
        return 2


def run(args) -> int:
    mode = "quick" if args.quick else "full"
    p = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_start = common.loadavg()
    mach = common.machine()
    names = ["baseline"] + [n for n in args.scenario if n != "baseline"]
    with common.trees(None if args.no_before else args.before) as tree_list:
        for name in names[1:]:
            if not any(t.scenario(name) for t in tree_list):
                print(f"bench_model: scenario {name}: scenarios/{name}.yaml exists in no tree measured; skipped",
                      file=sys.stderr)
        names = [n for n in names if any(t.scenario(n) for t in tree_list)]
        res: dict = {"year": {}}
        with common.children(tree_list) as kids:
            for name in names:
                res["year"][name] = measure_year(kids, name, p)
            res["scaling"] = measure_scaling(kids, p)
            res["epstein"] = measure_epstein(kids, res["year"]["baseline"], p)
        res["compile"] = measure_compile(tree_list, "baseline")
        res["calls"] = measure_calls(tree_list, "baseline", p["calls_steps"])
        if not args.no_memory:
            res["memory"] = {name: measure_memory(tree_list, name, p["memory_steps"]) for name in names}
        load_end = common.loadavg()
        print(render(mach, tree_list, mode, p, res, load_start, load_end))
        if args.profile:
            print()
            print(profile_baseline(YEAR).rstrip())
        elapsed = time.perf_counter() - started
        print(f"\n(benchmark wall time {elapsed:.1f} s)")
        common.write_json(args.json, dict(
            mode=mode, parameters=p, machine=mach, load_average=dict(start=load_start, end=load_end),
            trees=[dict(label=t.label, revision=t.revision, fingerprint=t.fingerprint, env=t.env) for t in tree_list],
            results=res, benchmark_wall_s=elapsed))
    return 0


def finish(json_path, mode, parameters, env, results, started) -> int:
    """Print the benchmark's wall time and write its figures as JSON when asked (bench_explorer.py)."""
    elapsed = time.perf_counter() - started
    print(f"\n(benchmark wall time {elapsed:.1f} s)")
    if json_path:
        payload = dict(mode=mode, parameters=parameters, environment=env, results=results, benchmark_wall_s=elapsed)
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
