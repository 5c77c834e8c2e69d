#!/usr/bin/env python
"""Sweep benchmark: throughput of sim.sweep's executors and the sweep driver's memory vs run count.

Run from the repository root:

    python benchmarks/bench_sweep.py            # full run (about 2.5 min on 2 idle cores, 4+ under heavy load)
    python benchmarks/bench_sweep.py --quick    # smaller sweeps, one repeat (about 40 s idle, 80 s under load)
    python benchmarks/bench_sweep.py --json out.json

Every sweep runs in a fresh subprocess of this script (hidden option --child), so that no
configuration inherits the imports, threads or leftover memory of another. Only the sweep
itself is timed: interpreter start-up, imports and start_sweep() (design and directory) are
not. Worker start-up (a pool of forkserver processes, or a Dask LocalCluster) is measured
separately and reported both on its own and added to the sweep time.

What is measured (see benchmarks/README.md, "Sweeps"):
0. the machine's own parallel capacity: wall time of two pure-Python busy loops in two
   processes against one loop in one process (2 x t1 / t2; 2.0 would be two free cores);
1. throughput (runs per minute) of one sweep of scenarios/baseline.yaml run serially, on 2
   local worker processes and on a Dask LocalCluster with 2 single-threaded workers, best of
   N with repeats interleaved; speed-up = throughput(2 workers) / throughput(1 worker);
2. peak RSS (ru_maxrss) of the process that runs the sweep, for sweeps of increasing run
   count of the toy scenario with very few steps, serially and with 2 worker processes (for
   the latter also the largest worker's RSS, sampled with psutil when it is installed), and
   the sizes of outcomes.csv and runs.jsonl.

As in bench_model.py, the figures that matter are ratios measured in the same run; the
targets are printed as PASS/MISS and never asserted (the exit status is 0 either way).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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

from benchmarks.bench_model import environment, finish  # noqa: E402
from sim.executors import process_context  # noqa: E402

BASELINE = ROOT / "scenarios" / "baseline.yaml"
TOY = ROOT / "scenarios" / "toy_two_towns.yaml"
ROOT_SEED = 1
SPEEDUP_TARGET = 1.8  # throughput(2 workers) / throughput(1 worker) on a 2-core machine
MEMORY_RATIO_TARGET = 1.2  # peak RSS of the driver at the largest run count / at the smallest
BUSY_LOOP_N = 10_000_000  # about 0.4 s of pure-Python work per process
CHILD_TIMEOUT_S = 900
MARKER = "BENCH_SWEEP_RESULT "

THROUGHPUT_PARAMETER = "factions.IRGC.salary_usd_month"
THROUGHPUT_VALUES = (110, 170, 230, 300)
THROUGHPUT_OUTPUTS = ("killed_total", "territory_final.IRGC", "defections.NDF>IRGC")
MEMORY_PARAMETER = "factions.Red.salary_usd_month"
MEMORY_VALUES = tuple(range(100, 300, 20))  # 10 design points; replicates = runs / 10
MEMORY_OUTPUTS = ("killed_total", "territory_final.Red")

FULL = dict(tp_steps=120, tp_replicates=8, tp_repeats=2, mem_steps=3,
            mem_serial_runs=(250, 1000, 2000), mem_worker_runs=(250, 1000))
QUICK = dict(tp_steps=60, tp_replicates=3, tp_repeats=1, mem_steps=3,
             mem_serial_runs=(100, 400), mem_worker_runs=(100, 400))
WORKERS = 2
EXECUTORS = (("serial", 1, False), ("processes", WORKERS, False), ("dask", WORKERS, True))
LABELS = {"serial": "serial (1 process)", "processes": f"processes ({WORKERS} workers)",
          "dask": f"Dask LocalCluster ({WORKERS} workers)"}


# --------------------------------------------------------------------------- helpers run in other processes


def busy_loop(n: int) -> tuple[int, float, float]:
    """Pure-Python CPU work; returns (pid, start, end) on the system-wide monotonic clock."""
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i & 7
    return os.getpid(), start, time.perf_counter()


def warm_worker(hold_s: float, toy_path: str) -> int:
    """Import the model and run one tiny model (first-run costs), then hold the worker a while."""
    started = time.perf_counter()
    from sim.runner import run_model
    from sim.scenario import load_scenario

    run_model(load_scenario(toy_path, ["steps=2"]), ROOT_SEED)
    time.sleep(max(0.0, hold_s - (time.perf_counter() - started)))
    return os.getpid()


def warm_pool(pool, workers: int, hold_s: float = 0.3, tries: int = 5) -> int:
    """Submit holding tasks until every one of `workers` processes has started and run one."""
    pids: set[int] = set()
    for _ in range(tries):
        futures = [pool.submit(warm_worker, hold_s, str(TOY)) for _ in range(workers)]
        pids.update(f.result() for f in futures)
        if len(pids) >= workers:
            break
    return len(pids)


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def current_rss_kib() -> int | None:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- one sweep (child process)


def sweep_override(parameter: str, values, replicates: int, outputs) -> str:
    vals = ", ".join(str(v) for v in values)
    outs = ", ".join(outputs)
    return (f"sweep={{design: grid, replicates: {replicates}, parameters: {{{parameter}: [{vals}]}}, "
            f"outputs: [{outs}]}}")


def child(spec: dict) -> dict:
    """Run one sweep as described by `spec` in this (fresh) process; return its figures."""
    from sim.executors import make_backend
    from sim.scenario import load_scenario
    from sim.sweep import run_sweep, start_sweep

    try:
        import psutil
    except ImportError:  # optional: only for sampling the workers' RSS
        psutil = None

    rss_after_imports = max_rss_kib()
    overrides = [sweep_override(spec["parameter"], spec["values"], spec["replicates"], spec["outputs"]),
                 f"steps={spec['steps']}"]
    config = load_scenario(spec["scenario"], overrides)
    workers, dask = spec["workers"], spec["dask"]
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        directory = start_sweep(config, out=Path(tmp) / "sweep", root_seed=ROOT_SEED, steps=None,
                                scenario_file=None, overrides=[], executor_name="bench_sweep")

        # Worker start-up: make the executor and have every worker import the model and run a
        # tiny model once. The serial executor runs one tiny model here too (same first-run costs).
        t0 = time.perf_counter()
        backend = make_backend(workers, "local" if dask else None)
        if dask:
            backend.client.wait_for_workers(workers)
            started_workers = len(backend.client.run(warm_worker, 0.0, str(TOY)))
        elif workers > 1:
            started_workers = warm_pool(backend.executor, workers)
        else:
            warm_worker(0.0, str(TOY))
            started_workers = 1
        startup_s = time.perf_counter() - t0

        rss_before_kib = max_rss_kib()
        current_before_kib = current_rss_kib()
        me = psutil.Process() if (psutil is not None and spec.get("sample_workers")) else None
        stamps: list[float] = []
        run_times: list[float] = []  # each run's own time in run_task (row["elapsed_s"])
        worker_peak = [0]
        every = max(1, spec.get("sample_every", 25))

        def sample_workers() -> None:
            for proc in me.children(recursive=True):  # forkserver and its workers
                try:
                    worker_peak[0] = max(worker_peak[0], proc.memory_info().rss // 1024)
                except psutil.Error:
                    pass

        def on_row(row: dict) -> None:
            stamps.append(time.perf_counter())
            run_times.append(float(row.get("elapsed_s", "nan")))
            if me is not None and len(stamps) % every == 0:
                sample_workers()

        c0, t0 = time.process_time(), time.perf_counter()
        counts = run_sweep(directory, on_row=on_row, backend=backend)
        wall_s = time.perf_counter() - t0
        cpu_s = time.process_time() - c0
        peak_kib = max_rss_kib()
        outcomes_bytes = (directory / "outcomes.csv").stat().st_size
        journal_bytes = (directory / "runs.jsonl").stat().st_size

    n = len(stamps)
    tenth = max(1, n // 10)
    first = (stamps[tenth - 1] - t0) / tenth if n else float("nan")
    last = (stamps[-1] - stamps[-tenth - 1]) / tenth if n > tenth else float("nan")
    return dict(
        executor=spec["name"], workers=workers, started_workers=started_workers, runs=counts["runs"],
        failed=counts["failed"], steps=spec["steps"], startup_s=startup_s, sweep_s=wall_s,
        driver_cpu_s=cpu_s, rss_after_imports_kib=rss_after_imports, rss_before_sweep_kib=rss_before_kib,
        current_rss_before_sweep_kib=current_before_kib, peak_rss_kib=peak_kib,
        worker_peak_rss_kib=worker_peak[0] if me is not None else None,
        outcomes_csv_bytes=outcomes_bytes, runs_jsonl_bytes=journal_bytes,
        ms_per_run_first_tenth=first * 1e3, ms_per_run_last_tenth=last * 1e3,
        run_s_sum=sum(run_times), run_s_min=min(run_times, default=float("nan")),
        busy_workers=sum(run_times) / wall_s if wall_s else float("nan"),
    )


def run_child(spec: dict) -> dict:
    """Run `spec` in a fresh interpreter running this script; return the child's figures."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    tail = "\n".join((proc.stderr or "").splitlines()[-20:])
    raise RuntimeError(f"sweep child {spec['name']} failed (exit {proc.returncode}):\n{tail}")


# --------------------------------------------------------------------------- measurements (parent)


def measure_capacity(pool) -> dict:
    """One process's busy loop alone, then two at once; wall times from the workers' own clocks."""
    _, s, e = pool.submit(busy_loop, BUSY_LOOP_N).result()
    one = e - s
    pair = [pool.submit(busy_loop, BUSY_LOOP_N) for _ in range(2)]
    results = [f.result() for f in pair]
    two = max(r[2] for r in results) - min(r[1] for r in results)
    return dict(one_s=one, two_s=two, distinct_pids=len({r[0] for r in results}))


def throughput_spec(name: str, workers: int, dask: bool, p: dict) -> dict:
    return dict(name=name, scenario=str(BASELINE), steps=p["tp_steps"], parameter=THROUGHPUT_PARAMETER,
                values=list(THROUGHPUT_VALUES), replicates=p["tp_replicates"], outputs=list(THROUGHPUT_OUTPUTS),
                workers=workers, dask=dask)


def memory_spec(name: str, workers: int, runs: int, p: dict) -> dict:
    return dict(name=name, scenario=str(TOY), steps=p["mem_steps"], parameter=MEMORY_PARAMETER,
                values=list(MEMORY_VALUES), replicates=runs // len(MEMORY_VALUES), outputs=list(MEMORY_OUTPUTS),
                workers=workers, dask=False, sample_workers=workers > 1, sample_every=25)


def measure_throughput(p: dict) -> tuple[dict, dict]:
    from concurrent.futures import ProcessPoolExecutor

    samples: dict[str, list[dict]] = {name: [] for name, _, _ in EXECUTORS}
    capacity: list[dict] = []
    pool = ProcessPoolExecutor(max_workers=2, mp_context=process_context())
    try:
        warmed = warm_pool(pool, 2)
        for _ in range(p["tp_repeats"]):  # interleaved: a burst of load elsewhere hits every configuration
            capacity.append(measure_capacity(pool))
            for name, workers, dask in EXECUTORS:
                samples[name].append(run_child(throughput_spec(name, workers, dask, p)))
            capacity.append(measure_capacity(pool))
    finally:
        pool.shutdown()

    n_runs = len(THROUGHPUT_VALUES) * p["tp_replicates"]
    rows = []
    for name, workers, _ in EXECUTORS:
        runs = samples[name]
        best_sweep = min(r["sweep_s"] for r in runs)
        best_with_startup = min(r["startup_s"] + r["sweep_s"] for r in runs)
        fastest = min(runs, key=lambda r: r["sweep_s"])
        rows.append(dict(executor=name, label=LABELS[name], workers=workers, runs=n_runs,
                         failed=max(r["failed"] for r in runs), started_workers=min(r["started_workers"] for r in runs),
                         best_startup_s=min(r["startup_s"] for r in runs), best_sweep_s=best_sweep,
                         all_sweep_s=[r["sweep_s"] for r in runs], all_startup_s=[r["startup_s"] for r in runs],
                         runs_per_min=n_runs / best_sweep * 60,
                         runs_per_min_with_startup=n_runs / best_with_startup * 60,
                         driver_cpu_over_wall=fastest["driver_cpu_s"] / fastest["sweep_s"],
                         busy_workers=fastest["busy_workers"], mean_run_s=fastest["run_s_sum"] / n_runs))
    serial = rows[0]["runs_per_min"]
    for row in rows:
        row["vs_serial"] = row["runs_per_min"] / serial
        row["vs_serial_with_startup"] = row["runs_per_min_with_startup"] / rows[0]["runs_per_min_with_startup"]
        row["run_time_vs_serial"] = row["mean_run_s"] / rows[0]["mean_run_s"]
    by_name = {row["executor"]: row for row in rows}
    speedup = by_name["processes"]["vs_serial"]

    one = min(c["one_s"] for c in capacity)
    two = min(c["two_s"] for c in capacity)
    per_sample = [2 * c["one_s"] / c["two_s"] for c in capacity]
    repeats = []
    for k in range(p["tp_repeats"]):  # capacity was sampled just before and just after each repeat
        repeats.append(dict(capacity_before=per_sample[2 * k], capacity_after=per_sample[2 * k + 1],
                            speedup_processes=samples["serial"][k]["sweep_s"] / samples["processes"][k]["sweep_s"],
                            speedup_dask=samples["serial"][k]["sweep_s"] / samples["dask"][k]["sweep_s"]))
    cap = dict(loop_iterations=BUSY_LOOP_N, samples=len(capacity), warmed_processes=warmed,
               best_one_s=one, best_two_s=two, all_one_s=[c["one_s"] for c in capacity],
               all_two_s=[c["two_s"] for c in capacity], speedup=2 * one / two,
               per_sample_speedup=per_sample, median_speedup=statistics.median(per_sample))
    tp = dict(scenario="scenarios/baseline.yaml", steps=p["tp_steps"], parameter=THROUGHPUT_PARAMETER,
              values=list(THROUGHPUT_VALUES), replicates=p["tp_replicates"], runs=n_runs, repeats=p["tp_repeats"],
              outputs=list(THROUGHPUT_OUTPUTS), rows=rows, speedup_processes=speedup,
              speedup_dask=by_name["dask"]["vs_serial"], per_repeat=repeats, target=SPEEDUP_TARGET,
              verdict="PASS" if speedup >= SPEEDUP_TARGET else "MISS",
              speedup_vs_machine_capacity=speedup / cap["speedup"])
    return tp, cap


def measure_memory(p: dict) -> dict:
    rows = []
    plan = [("serial", 1, n) for n in p["mem_serial_runs"]] + [("processes", WORKERS, n) for n in p["mem_worker_runs"]]
    for name, workers, n in plan:
        r = run_child(memory_spec(name, workers, n, p))
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
    return dict(scenario="scenarios/toy_two_towns.yaml", steps=p["mem_steps"], parameter=MEMORY_PARAMETER,
                points=len(MEMORY_VALUES), rows=rows, ratios=verdicts, target=MEMORY_RATIO_TARGET)


# --------------------------------------------------------------------------- report


def loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages: how busy the (shared) machine was, other users included."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def versions() -> dict:
    out = {}
    for dist in ("dask", "distributed", "pandas", "pyarrow", "psutil"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def render(env: dict, mode: str, res: dict) -> str:
    tp, cap, mem = res["throughput"], res["capacity"], res["memory"]
    v = env["packages"]
    lines = []
    add = lines.append
    add(f"Sweep benchmark ({mode}) - {env['date']}")
    add(f"Python {env['python']}, Mesa {env['mesa']}, numpy {env['numpy']}, pandas {v['pandas']}, "
        f"dask/distributed {v['dask']}/{v['distributed']}, CPUs {env['usable_cpus']} usable / {env['cpu_count']}, "
        f"{env['platform']}")
    add(f"sim/ source fingerprint (sha256 of sim/**/*.py): {env['sim_sha256']}")
    add(f"Worker processes start with '{env['start_method']}'. Each sweep runs in a fresh subprocess; "
        "interpreter start-up, imports and start_sweep() are not timed.")
    la = res["load_average"]
    if la.get("start"):
        fmt = "/".join
        add(f"Load average (1/5/15 min; {env['usable_cpus']} CPUs, includes other users): "
            f"start {fmt(map(str, la['start']))}, after throughput {fmt(map(str, la['after_throughput']))}, "
            f"end {fmt(map(str, la['end']))}")
    add("")
    add(f"0. Machine parallel capacity: pure-Python busy loop ({cap['loop_iterations']:,} iterations) "
        f"in 1 vs 2 processes, best of {cap['samples']}")
    add(f"   {'1 process, 1 loop':<32} {cap['best_one_s']:7.3f} s")
    add(f"   {'2 processes, 1 loop each':<32} {cap['best_two_s']:7.3f} s wall")
    add(f"   capacity = 2 x t1 / t2 = {cap['speedup']:.2f}x from the best t1 and t2 (2.00x = two free cores)")
    add("   per sample (t1 then t2, taken before and after each throughput repeat): "
        + " / ".join(f"{s:.2f}" for s in cap["per_sample_speedup"]) + f"; median {cap['median_speedup']:.2f}x")
    add("")
    add(f"1. Throughput: {tp['scenario']}, {tp['steps']} steps, grid {len(tp['values'])} points "
        f"({tp['parameter']}: {'/'.join(map(str, tp['values']))}) x {tp['replicates']} replicates = "
        f"{tp['runs']} runs; best of {tp['repeats']}, repeats interleaved")
    add(f"   {'executor':<30} {'start-up s':>10} {'sweep s':>8} {'runs/min':>9} {'vs serial':>9} "
        f"{'runs/min incl. start-up':>23} {'vs serial':>9} {'busy':>5} {'s/run':>6} {'vs serial':>9} "
        f"{'driver CPU/wall':>15}")
    for r in tp["rows"]:
        startup = "-" if r["executor"] == "serial" else f"{r['best_startup_s']:.2f}"
        add(f"   {r['label']:<30} {startup:>10} {r['best_sweep_s']:8.2f} {r['runs_per_min']:9.1f} "
            f"{r['vs_serial']:8.2f}x {r['runs_per_min_with_startup']:23.1f} {r['vs_serial_with_startup']:8.2f}x "
            f"{r['busy_workers']:5.2f} {r['mean_run_s']:6.3f} {r['run_time_vs_serial']:8.2f}x "
            f"{r['driver_cpu_over_wall']:15.2f}")
    add("   (busy = sum of the runs' own times / sweep wall time, i.e. how many runs were in progress on average;")
    add("    s/run = mean time of one run inside its worker; a run that takes longer with 2 workers than serially")
    add("    means the two workers slowed each other down: speed-up is about busy / (s/run vs serial))")
    for r in tp["rows"]:
        add(f"   {r['executor']:<10} sweep s per repeat: " + " / ".join(f"{s:.2f}" for s in r["all_sweep_s"])
            + ("" if r["executor"] == "serial" else
               "; start-up s: " + " / ".join(f"{s:.2f}" for s in r["all_startup_s"]))
            + (f"; FAILED RUNS {r['failed']}" if r["failed"] else ""))
    add(f"   speed-up, {WORKERS} processes vs serial: {tp['speedup_processes']:.2f}x   target >= {tp['target']}x   "
        f"{tp['verdict']}")
    add(f"   speed-up, Dask ({WORKERS} workers) vs serial: {tp['speedup_dask']:.2f}x")
    add(f"   machine capacity in the same run: {cap['speedup']:.2f}x best, {cap['median_speedup']:.2f}x median; "
        f"the sweep's best speed-up is {tp['speedup_vs_machine_capacity']:.0%} of the best capacity")
    for k, r in enumerate(tp["per_repeat"], 1):
        add(f"   repeat {k}: capacity {r['capacity_before']:.2f}x before, {r['capacity_after']:.2f}x after; "
            f"speed-up in this repeat: processes {r['speedup_processes']:.2f}x, Dask {r['speedup_dask']:.2f}x")
    add("")
    add(f"2. Peak memory of the sweep driver vs run count: {mem['scenario']}, {mem['steps']} steps, "
        f"{mem['points']} grid points x runs/{mem['points']} replicates, one fresh process per sweep")
    add("   (peak = ru_maxrss of the process that calls run_sweep; 'before' = ru_maxrss after start-up, before "
        "run_sweep; worker = largest child RSS sampled every 25 runs)")
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweeps, one repeat (under a minute idle)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)  # internal: run one sweep
    args = parser.parse_args(argv)

    if args.child:
        print(MARKER + json.dumps(child(json.loads(args.child))), flush=True)
        return 0

    mode = "quick" if args.quick else "full"
    p = QUICK if args.quick else FULL
    env = environment()
    env["packages"] = versions()
    env["start_method"] = process_context().get_start_method()
    started = time.perf_counter()
    results = {"load_average": {"start": loadavg()}}
    results["throughput"], results["capacity"] = measure_throughput(p)
    results["load_average"]["after_throughput"] = loadavg()
    results["memory"] = measure_memory(p)
    results["load_average"]["end"] = loadavg()
    print(render(env, mode, results))
    return finish(args.json, mode, p, env, results, started)


if __name__ == "__main__":
    sys.exit(main())
