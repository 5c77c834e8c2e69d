#!/usr/bin/env python
"""Performance benchmark for CorridorModel (sim/), measured against Mesa's own example.

Run from the repository root:

    python benchmarks/bench_model.py            # full run (about a minute)
    python benchmarks/bench_model.py --quick    # CI smoke run (well under 30 s)
    python benchmarks/bench_model.py --json out.json --profile

Everything is measured in one process, one run after another, so the figures that matter are
the ratios (model vs Mesa example, 10x vs 1x agents): on a shared machine the absolute times
move with the load, the ratios much less. Each figure is the best (minimum) of N repeats;
repeats of different configurations are interleaved so that a burst of load elsewhere hits
all of them instead of one. The targets are printed as PASS/MISS and never asserted.

What is measured (see benchmarks/README.md):
1. baseline: scenarios/baseline.yaml, construction + 365 steps, wall time, best of N;
2. agent-steps per second (len(model.agents) x steps / time spent in step()) of this model and
   of mesa.examples.advanced.epstein_civil_violence at about the same number of agents, both
   with the DataCollector they ship with, and their ratio;
3. scaling: time per step at 1x, 2x, 5x and 10x the baseline's agents, per agent relative to 1x;
4. peak traced memory (tracemalloc) of the baseline run (a separate, untimed run).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import gc
import hashlib
import importlib
import inspect
import io
import json
import math
import os
import platform
import pstats
import sys
import time
import tracemalloc
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `python benchmarks/bench_model.py` works without PYTHONPATH
    sys.path.insert(0, str(ROOT))

import mesa  # noqa: E402
import numpy as np  # noqa: E402

from sim.model import CorridorModel  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402

BASELINE = ROOT / "scenarios" / "baseline.yaml"
SEED = 1
BASELINE_TARGET_S = 2.0  # construction + 365 steps of the baseline, one process
RATIO_TARGET = 30.0  # agent-steps/s of this model over Mesa's Epstein example
LINEAR_TOLERANCE = 1.2  # per-agent step cost at 10x may be at most this times the 1x cost
SCALES = (1, 2, 5, 10)

FULL = dict(baseline_steps=365, baseline_repeats=3, epstein_steps=50, epstein_repeats=2,
            scaling_steps=365, scaling_repeats=3, memory_steps=365)
QUICK = dict(baseline_steps=365, baseline_repeats=2, epstein_steps=10, epstein_repeats=1,
             scaling_steps=60, scaling_repeats=2, memory_steps=60)


# --------------------------------------------------------------------------- this model


def scaled_overrides(k: float) -> list[str]:
    """Overrides that multiply the recruit pool (hence the agent count) by about k.

    The pool is round(population * pool_share) per town plus each faction's
    initial_outsiders, so both are scaled by k.
    """
    if k == 1:
        return []
    base = load_scenario(str(BASELINE))
    overrides = [f"rules.recruitment.pool_share={base.rules.recruitment.pool_share * k!r}"]
    for name, spec in base.factions.items():
        if spec.initial_outsiders:
            overrides.append(f"factions.{name}.initial_outsiders={int(round(spec.initial_outsiders * k))}")
    return overrides


def run_corridor(cfg, steps: int) -> dict:
    """Build one model and step it; return the timings (wall and CPU) and agent counts."""
    gc.collect()  # start each repeat from the same heap state (gc stays enabled)
    c0, t0 = time.process_time(), time.perf_counter()
    model = CorridorModel(cfg, seed=SEED)
    t1 = time.perf_counter()
    for _ in range(steps):
        model.step()
    t2, c2 = time.perf_counter(), time.process_time()
    return dict(
        agents=len(model.agents),
        recruits=len(model.recruits),
        build_s=t1 - t0,
        steps_s=t2 - t1,
        total_s=t2 - t0,
        cpu_s=c2 - c0,
    )


# --------------------------------------------------------------------------- Mesa's example


def import_epstein() -> tuple[types.ModuleType, str]:
    """Import Mesa's epstein_civil_violence model module.

    `mesa/examples/__init__.py` imports every example, and some need optional packages
    (alliance_formation needs networkx). If that fails, load only this example by giving
    the two parent packages empty stand-ins for the duration of the import (its own
    modules are imported from Mesa's installed files, unchanged).
    """
    name = "mesa.examples.advanced.epstein_civil_violence.model"
    try:
        return importlib.import_module(name), "mesa.examples"
    except ImportError as exc:
        reason = f"direct import failed ({exc}); loaded the example's files alone"
    base = Path(mesa.__file__).parent / "examples"
    stand_ins = {"mesa.examples": base, "mesa.examples.advanced": base / "advanced"}
    saved = {pkg: sys.modules.get(pkg) for pkg in stand_ins}
    try:
        for pkg, path in stand_ins.items():
            module = types.ModuleType(pkg)
            module.__path__ = [str(path)]
            sys.modules[pkg] = module
        module = importlib.import_module(name)
    finally:
        for pkg, previous in saved.items():
            if previous is None:
                sys.modules.pop(pkg, None)
            else:
                sys.modules[pkg] = previous
    return module, reason


def epstein_api(module) -> tuple[str, float, float]:
    """Which constructor this Mesa version has, and its default densities."""
    params = inspect.signature(module.EpsteinCivilViolence).parameters
    if "scenario" in params:  # Mesa >= 3.5: width, height, scenario=EpsteinScenario(...)
        scenario = module.EpsteinScenario
        return "scenario", float(scenario.citizen_density), float(scenario.cop_density)
    return "kwargs", float(params["citizen_density"].default), float(params["cop_density"].default)


def make_epstein(module, api: str, side: int):
    if api == "scenario":
        return module.EpsteinCivilViolence(width=side, height=side, scenario=module.EpsteinScenario(rng=SEED))
    return module.EpsteinCivilViolence(width=side, height=side, seed=SEED)


def run_epstein(module, api: str, side: int, steps: int) -> dict:
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    model = make_epstein(module, api, side)
    t1 = time.perf_counter()
    for _ in range(steps):
        model.step()
    t2, c2 = time.perf_counter(), time.process_time()
    return dict(agents=len(model.agents), build_s=t1 - t0, steps_s=t2 - t1, total_s=t2 - t0, cpu_s=c2 - c0)


# --------------------------------------------------------------------------- measurements


def best(runs: list[dict], key: str) -> float:
    return min(r[key] for r in runs)


def measure_baseline_and_comparison(p: dict) -> dict:
    cfg = load_scenario(str(BASELINE))
    module, how = import_epstein()
    api, citizen_density, cop_density = epstein_api(module)

    # Size Epstein's grid from this model's agent count (a quick build, untimed).
    target_agents = len(CorridorModel(cfg, seed=SEED).agents)
    side = max(2, int(round(math.sqrt(target_agents / (citizen_density + cop_density)))))

    base_runs, ep_runs = [], []
    for rep in range(max(p["baseline_repeats"], p["epstein_repeats"])):
        if rep < p["baseline_repeats"]:
            base_runs.append(run_corridor(cfg, p["baseline_steps"]))
        if rep < p["epstein_repeats"]:
            ep_runs.append(run_epstein(module, api, side, p["epstein_steps"]))

    best_total = min(base_runs, key=lambda r: r["total_s"])
    model_rate = best_total["agents"] * p["baseline_steps"] / best(base_runs, "steps_s")
    ep_agents = ep_runs[0]["agents"]
    ep_rate = ep_agents * p["epstein_steps"] / best(ep_runs, "steps_s")
    return dict(
        baseline=dict(
            steps=p["baseline_steps"],
            repeats=p["baseline_repeats"],
            agents=best_total["agents"],
            recruits=best_total["recruits"],
            best_total_s=best_total["total_s"],
            best_build_s=best(base_runs, "build_s"),
            best_steps_s=best(base_runs, "steps_s"),
            cpu_over_wall=best_total["cpu_s"] / best_total["total_s"],
            all_total_s=[r["total_s"] for r in base_runs],
            target_s=BASELINE_TARGET_S,
            verdict="PASS" if best_total["total_s"] < BASELINE_TARGET_S else "MISS",
        ),
        comparison=dict(
            model=dict(agents=best_total["agents"], steps=p["baseline_steps"], repeats=p["baseline_repeats"],
                       best_steps_s=best(base_runs, "steps_s"), agent_steps_per_s=model_rate),
            epstein=dict(agents=ep_agents, grid=f"{side}x{side}", steps=p["epstein_steps"],
                         repeats=p["epstein_repeats"], citizen_density=citizen_density, cop_density=cop_density,
                         constructor=api, import_path=how, best_build_s=best(ep_runs, "build_s"),
                         best_steps_s=best(ep_runs, "steps_s"), agent_steps_per_s=ep_rate),
            ratio=model_rate / ep_rate,
            target_ratio=RATIO_TARGET,
            verdict="PASS" if model_rate / ep_rate >= RATIO_TARGET else "MISS",
        ),
    )


def measure_scaling(p: dict) -> dict:
    configs = {k: load_scenario(str(BASELINE), scaled_overrides(k)) for k in SCALES}
    runs: dict[int, list[dict]] = {k: [] for k in SCALES}
    for _ in range(p["scaling_repeats"]):
        for k in SCALES:  # interleaved, so load bursts spread over all sizes
            runs[k].append(run_corridor(configs[k], p["scaling_steps"]))
    rows = []
    for k in SCALES:
        agents = runs[k][0]["agents"]
        per_step = best(runs[k], "steps_s") / p["scaling_steps"]
        rows.append(dict(scale=k, agents=agents, recruits=runs[k][0]["recruits"], overrides=scaled_overrides(k),
                         best_build_s=best(runs[k], "build_s"), ms_per_step=per_step * 1e3,
                         us_per_agent_step=per_step / agents * 1e6))
    ref = rows[0]["us_per_agent_step"]
    for row in rows:
        row["per_agent_vs_1x"] = row["us_per_agent_step"] / ref
        row["step_time_vs_1x"] = row["ms_per_step"] / rows[0]["ms_per_step"]
        row["agents_vs_1x"] = row["agents"] / rows[0]["agents"]
    worst = rows[-1]["per_agent_vs_1x"]
    return dict(steps=p["scaling_steps"], repeats=p["scaling_repeats"], rows=rows,
                per_agent_10x_vs_1x=worst, tolerance=LINEAR_TOLERANCE,
                verdict="PASS" if worst <= LINEAR_TOLERANCE else "MISS")


def measure_memory(steps: int) -> dict:
    """Peak memory traced by tracemalloc (Python and numpy allocations) over one baseline run."""
    cfg = load_scenario(str(BASELINE))
    gc.collect()
    tracemalloc.start()
    try:
        model = CorridorModel(cfg, seed=SEED)
        _, peak_build = tracemalloc.get_traced_memory()
        for _ in range(steps):
            model.step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return dict(steps=steps, peak_mib=peak / 2**20, peak_after_build_mib=peak_build / 2**20,
                retained_mib=current / 2**20)


def profile_baseline(steps: int, top: int = 10) -> str:
    """cProfile one baseline run; the top entries by cumulative time whose file is in sim/."""
    cfg = load_scenario(str(BASELINE))
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
    out.write(f"cProfile of the baseline ({steps} steps incl. construction), profiled total {total:.2f} s\n")
    out.write(f"top {top} by cumulative time, functions in sim/:\n")
    out.write(f"  {'cumulative s':>12} {'share':>6} {'own s':>7} {'calls':>8}  function\n")
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in entries[:top]:
        where = f"{Path(filename).relative_to(ROOT)}:{line}({func})"
        out.write(f"  {cumtime:12.3f} {cumtime / total:6.1%} {tottime:7.3f} {ncalls:8d}  {where}\n")
    collect = [v for k, v in stats.stats.items() if k[2] == "collect" and k[0].endswith("datacollection.py")]
    if collect:
        cum = sum(v[3] for v in collect)
        share = f"{cum / total:.1%}"
        out.write(f"  (outside sim/: mesa DataCollector.collect {cum:.3f} s, {share} of the profiled total)\n")
    return out.getvalue()


# --------------------------------------------------------------------------- report


def environment() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    digest = hashlib.sha256()
    for path in sorted((ROOT / "sim").rglob("*.py")):  # ties the figures to the code measured
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return dict(
        date=_dt.date.today().isoformat(),
        sim_sha256=digest.hexdigest()[:12],
        python=platform.python_version(),
        mesa=mesa.__version__,
        numpy=np.__version__,
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        usable_cpus=usable,
    )


def render(env: dict, mode: str, res: dict) -> str:
    b, c, s = res["baseline"], res["comparison"], res["scaling"]
    lines = []
    add = lines.append
    add(f"CorridorModel benchmark ({mode}) - {env['date']}")
    add(f"Python {env['python']}, Mesa {env['mesa']}, numpy {env['numpy']}, "
        f"CPUs {env['usable_cpus']} usable / {env['cpu_count']}, {env['platform']}")
    add(f"sim/ source fingerprint (sha256 of sim/**/*.py): {env['sim_sha256']}")
    add("All times: time.perf_counter, one process; best (minimum) of N repeats, repeats interleaved.")
    add("")
    add("1. Baseline (scenarios/baseline.yaml, seed 1, construction + steps, DataCollector on)")
    add(f"   agents {b['agents']} ({b['recruits']} recruits), {b['steps']} steps, best of {b['repeats']}")
    add(f"   {'construction':<28} {b['best_build_s']:8.3f} s")
    add(f"   {'steps':<28} {b['best_steps_s']:8.3f} s")
    add(f"   {'total (best repeat)':<28} {b['best_total_s']:8.3f} s   target < {b['target_s']:.1f} s   {b['verdict']}")
    add(f"   {'all repeats':<28} " + ", ".join(f"{t:.3f}" for t in b["all_total_s"]) + " s")
    add(f"   {'CPU time / wall time':<28} {b['cpu_over_wall']:8.2f}   (~1.0 = one core busy)")
    add("")
    m, e = c["model"], c["epstein"]
    add("2. Throughput: agent-steps per second (len(model.agents) x steps / time in step(); construction excluded;")
    add("   each model runs its own DataCollector every step, as shipped)")
    add(f"   {'model':<34} {'agents':>7} {'steps':>6} {'best':>5} {'s in step()':>12} {'agent-steps/s':>14}")
    add(f"   {'CorridorModel (baseline)':<34} {m['agents']:7d} {m['steps']:6d} {m['repeats']:5d} "
        f"{m['best_steps_s']:12.3f} {m['agent_steps_per_s']:14,.0f}")
    add(f"   {'Mesa epstein_civil_violence ' + e['grid']:<34} {e['agents']:7d} {e['steps']:6d} {e['repeats']:5d} "
        f"{e['best_steps_s']:12.3f} {e['agent_steps_per_s']:14,.0f}")
    add(f"   ratio {c['ratio']:.1f}x   target >= {c['target_ratio']:.0f}x   {c['verdict']}")
    add(f"   (Epstein: default densities citizen {e['citizen_density']} + cop {e['cop_density']}, "
        f"constructor style '{e['constructor']}', import: {e['import_path']})")
    add("")
    add(f"3. Scaling: time per step vs agents ({s['steps']} steps, best of {s['repeats']}, construction excluded)")
    add(
        f"   {'scale':>5} {'agents':>7} {'x agents':>8} {'ms/step':>8} {'x time':>7} "
        f"{'us/agent-step':>14} {'per-agent vs 1x':>16}"
    )
    for r in s["rows"]:
        add(f"   {str(r['scale']) + 'x':>5} {r['agents']:7d} {r['agents_vs_1x']:8.2f} {r['ms_per_step']:8.3f} "
            f"{r['step_time_vs_1x']:7.2f} {r['us_per_agent_step']:14.4f} {r['per_agent_vs_1x']:16.2f}")
    add(f"   per-agent cost at 10x = {s['per_agent_10x_vs_1x']:.2f} x 1x (allowed <= {s['tolerance']}): "
        f"growth no worse than linear: {'YES' if s['verdict'] == 'PASS' else 'NO'}   {s['verdict']}")
    if "memory" in res:
        mem = res["memory"]
        add("")
        add(f"4. Peak memory (tracemalloc, separate untimed baseline run, {mem['steps']} steps)")
        add(f"   peak {mem['peak_mib']:.1f} MiB (after construction {mem['peak_after_build_mib']:.1f} MiB; "
            f"still held at end {mem['retained_mib']:.1f} MiB)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (CI smoke run, < 30 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one baseline run and print the top 10 sim/ entries")
    args = parser.parse_args(argv)

    mode = "quick" if args.quick else "full"
    p = QUICK if args.quick else FULL
    env = environment()
    started = time.perf_counter()
    results = measure_baseline_and_comparison(p)
    results["scaling"] = measure_scaling(p)
    if not args.no_memory:
        results["memory"] = measure_memory(p["memory_steps"])
    print(render(env, mode, results))
    if args.profile:
        print()
        print(profile_baseline(p["baseline_steps"]).rstrip())
    return finish(args.json, mode, p, env, results, started)


def finish(json_path, mode, parameters, env, results, started) -> int:
    """Print the benchmark's wall time and write its figures as JSON when asked (both scripts)."""
    elapsed = time.perf_counter() - started
    print(f"\n(benchmark wall time {elapsed:.1f} s)")
    if json_path:
        payload = dict(mode=mode, parameters=parameters, environment=env, results=results, benchmark_wall_s=elapsed)
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
