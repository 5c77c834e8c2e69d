#!/usr/bin/env python
"""The measuring side of the benchmarks: runs in a subprocess against ONE source tree.

The parent benchmark (bench_model.py, bench_sweep.py) starts this file as a script with
`PYTHONPATH=<tree>` and the tree as working directory, so `import sim` is that tree's code:
the working tree or the reference revision checked out by `benchmarks/common.py`. This file
therefore imports nothing from `benchmarks/` and calls only the stable entry points that every
revision has (`sim.scenario.load_scenario`, `sim.model.CorridorModel`, `sim.runner.run_model`,
`sim.sweep.start_sweep` / `run_sweep`, `sim.executors.make_backend`).

    python benchmarks/_child.py serve        # JSON requests on stdin, one per line; answers on stdout
    python benchmarks/_child.py once SPEC    # one request in this fresh process, then exit

Every answer is one stdout line starting with MARKER followed by JSON; anything else the code
prints is ignored by the parent. A request that fails answers {"error": "..."} (one line).
"""

from __future__ import annotations

import csv
import gc
import importlib
import inspect
import json
import os
import resource
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

MARKER = "BENCH_CHILD_RESULT "
SEED = 1


def _answer(payload: dict) -> None:
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# --------------------------------------------------------------------------- this model


_CONFIGS: dict = {}


def config(scenario: str, overrides: list[str]):
    """Load and validate a scenario once per process (loading is not what is timed)."""
    key = (scenario, tuple(overrides))
    if key not in _CONFIGS:
        from sim.scenario import load_scenario

        _CONFIGS[key] = load_scenario(scenario, list(overrides))
    return _CONFIGS[key]


def counts(model) -> dict:
    """Agents of a built model: Mesa agents, recruits (the recruit pool) and fit fighters."""
    out = dict(agents=len(model.agents), recruits=None, fighters=None)
    try:
        out["recruits"] = len(model.recruits)
    except (AttributeError, TypeError):
        pass
    try:
        out["fighters"] = int(sum(int(x) for x in model.fighters_by_faction()))
    except (AttributeError, TypeError, ValueError):
        pass
    return out


def task_info(req: dict) -> dict:
    import mesa
    import numpy as np

    import sim

    return dict(sim_file=str(Path(sim.__file__).resolve()), python=sys.version.split()[0],
                numpy=np.__version__, mesa=mesa.__version__, pid=os.getpid())


def task_run(req: dict) -> dict:
    """Construct CorridorModel and step it `steps` times: wall and CPU times, agent counts."""
    from sim.model import CorridorModel

    cfg = config(req["scenario"], req.get("overrides", []))
    steps = int(req["steps"])
    gc.collect()  # every repeat starts from the same heap state (the collector stays on)
    c0, t0 = time.process_time(), time.perf_counter()
    model = CorridorModel(cfg, seed=req.get("seed", SEED))
    t1 = time.perf_counter()
    at_start = counts(model)  # not timed
    c1, t1b = time.process_time(), time.perf_counter()
    for _ in range(steps):
        model.step()
    t2, c2 = time.perf_counter(), time.process_time()
    build_s, steps_s = t1 - t0, t2 - t1b
    out = dict(build_s=build_s, steps_s=steps_s, total_s=build_s + steps_s,
               cpu_s=c2 - c0 - (t1b - t1), steps_cpu_s=c2 - c1, steps=steps)
    out.update(at_start)
    out["fighters_end"] = counts(model)["fighters"]
    return out


def task_run_model(req: dict) -> dict:
    """sim.runner.run_model(config, seed, steps): a run as a sweep or `run.py run` does it."""
    from sim.runner import run_model

    cfg = config(req["scenario"], req.get("overrides", []))
    gc.collect()
    t0 = time.perf_counter()
    run_model(cfg, req.get("seed", SEED), int(req["steps"]))
    return dict(total_s=time.perf_counter() - t0)


def task_calls(req: dict) -> dict:
    """Calls into numpy (and all Python-level calls) per step, in a fresh process.

    Counted: calls made from code outside numpy (the model, Mesa, the standard library) to
      - numpy's Python functions (`call` events of sys.setprofile whose file is in numpy/),
      - numpy's C functions and methods (`c_call` events: ndarray methods, np.zeros, ufunc
        methods such as .reduce, numpy.random.Generator methods),
      - every callable of the `numpy` namespace that sys.setprofile does not report (ufuncs
        such as np.add / np.maximum, C-dispatched functions such as np.concatenate / np.where),
        through counting stand-ins put in the namespace after one warm-up step.
    Not counted: operators on arrays (a + b, a[mask]) and numpy's calls to itself; those calls
    to itself are included in `numpy_calls_all_per_step` (every numpy function or method
    called, from anywhere). Python calls = every `call` event (Python functions, anywhere).
    """
    import numpy as np

    np_dir = os.path.dirname(np.__file__) + os.sep
    tally = dict(numpy=0, python=0, numpy_all=0)
    wrapper_codes: set = set()
    by_name: dict[str, int] = {}

    class Counted:
        """Stands in for a numpy callable: counts calls from outside numpy, delegates the rest."""

        def __init__(self, name, fn):
            self._name, self._fn = name, fn

        def __call__(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            tally["numpy_all"] += 1
            if not caller.startswith(np_dir):
                tally["numpy"] += 1
                by_name[self._name] = by_name.get(self._name, 0) + 1
            return self._fn(*args, **kwargs)

        def __getattr__(self, attr):  # np.add.reduce, np.maximum.accumulate, ...
            return getattr(self._fn, attr)

    wrapper_codes.add(Counted.__call__.__code__)

    def is_numpy_c(func) -> bool:
        owner = getattr(func, "__self__", None)
        module = getattr(func, "__module__", None) or type(owner).__module__ or ""
        return module.split(".")[0] == "numpy"

    def profile(frame, event, arg):
        if event == "call":
            tally["python"] += 1
            code = frame.f_code
            back = frame.f_back
            if code.co_filename.startswith(np_dir):
                tally["numpy_all"] += 1
            if (code.co_filename.startswith(np_dir) and back is not None and back.f_code not in wrapper_codes
                    and not back.f_code.co_filename.startswith(np_dir)):
                tally["numpy"] += 1
                by_name[code.co_name] = by_name.get(code.co_name, 0) + 1
        elif event == "c_call":
            if frame.f_code not in wrapper_codes and is_numpy_c(arg):
                tally["numpy_all"] += 1
            if (frame.f_code not in wrapper_codes and not frame.f_code.co_filename.startswith(np_dir)
                    and is_numpy_c(arg)):
                tally["numpy"] += 1
                name = getattr(arg, "__name__", "?")
                by_name[name] = by_name.get(name, 0) + 1

    from sim.model import CorridorModel

    cfg = config(req["scenario"], req.get("overrides", []))
    steps = int(req["steps"])
    model = CorridorModel(cfg, seed=req.get("seed", SEED))
    # One step outside the count: first-call work (lazy imports, caches, any JIT compilation,
    # which must see numpy's own functions, not the stand-ins) is not per step.
    model.step()
    # The stand-ins go into the namespace only now; code that looks up np.<name> when it runs
    # (`import numpy as np`, as sim/ does) meets them.
    originals = {}
    for name in dir(np):
        fn = getattr(np, name, None)
        if name.startswith("_") or isinstance(fn, (type, types.ModuleType)) or not callable(fn):
            continue
        if isinstance(fn, types.FunctionType):
            continue  # plain Python functions are seen by sys.setprofile
        originals[name] = fn
    for name, fn in originals.items():
        setattr(np, name, Counted(name, fn))

    sys.setprofile(profile)
    try:
        for _ in range(steps):
            model.step()
    finally:
        sys.setprofile(None)
        for name, fn in originals.items():
            setattr(np, name, fn)
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:8]
    return dict(steps=steps, numpy_calls_per_step=tally["numpy"] / steps,
                python_calls_per_step=tally["python"] / steps, numpy_calls_all_per_step=tally["numpy_all"] / steps,
                top_numpy=[(name, n / steps) for name, n in top])


def task_memory(req: dict) -> dict:
    """Peak memory of one run in a fresh process: tracemalloc peak, and ru_maxrss."""
    import tracemalloc

    from sim.model import CorridorModel

    cfg = config(req["scenario"], req.get("overrides", []))
    rss_before = max_rss_kib()
    gc.collect()
    tracemalloc.start()
    try:
        model = CorridorModel(cfg, seed=req.get("seed", SEED))
        _, peak_build = tracemalloc.get_traced_memory()
        for _ in range(int(req["steps"])):
            model.step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # ru_maxrss of a second, untraced run in the same process (tracemalloc's own bookkeeping
    # would inflate it): the whole process's peak, interpreter and imports included.
    del model
    gc.collect()
    model = CorridorModel(cfg, seed=req.get("seed", SEED))
    for _ in range(int(req["steps"])):
        model.step()
    return dict(steps=int(req["steps"]), traced_peak_mib=peak / 2**20, traced_peak_after_build_mib=peak_build / 2**20,
                traced_retained_mib=current / 2**20, maxrss_after_imports_mib=rss_before / 1024,
                maxrss_mib=max_rss_kib() / 1024)


# --------------------------------------------------------------------------- Mesa's example


def import_epstein() -> tuple[types.ModuleType, str]:
    """Import Mesa's epstein_civil_violence model module.

    `mesa/examples/__init__.py` imports every example, and some need optional packages
    (alliance_formation needs networkx). If that fails, load only this example by giving
    the two parent packages empty stand-ins for the duration of the import (its own
    modules are imported from Mesa's installed files, unchanged).
    """
    import mesa

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


def make_epstein(module, api: str, side: int, seed: int):
    if api == "scenario":
        return module.EpsteinCivilViolence(width=side, height=side, scenario=module.EpsteinScenario(rng=seed))
    return module.EpsteinCivilViolence(width=side, height=side, seed=seed)


def task_epstein_size(req: dict) -> dict:
    """A square grid and a seed at which Epstein has exactly `agents` agents (or the closest found).

    The grid side gives the expected count at Mesa's default densities; the realised count
    varies with the seed (agents are placed cell by cell at random), so seeds are tried in
    order, within `max_tries` and `budget_s`.
    """
    module, how = import_epstein()
    api, citizen, cop = epstein_api(module)
    target = int(req["agents"])
    side = max(2, int(round((target / (citizen + cop)) ** 0.5)))
    best = None
    started = time.perf_counter()
    for seed in range(1, int(req.get("max_tries", 200)) + 1):
        n = len(make_epstein(module, api, side, seed).agents)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (seed, n)
        if n == target or time.perf_counter() - started > float(req.get("budget_s", 40.0)):
            break
    return dict(side=side, seed=best[0], agents=best[1], target=target, tries=seed, api=api,
                citizen_density=citizen, cop_density=cop, import_path=how)


def task_epstein(req: dict) -> dict:
    module, _how = import_epstein()
    api, _c, _p = epstein_api(module)
    gc.collect()
    t0 = time.perf_counter()
    model = make_epstein(module, api, int(req["side"]), int(req["seed"]))
    t1 = time.perf_counter()
    for _ in range(int(req["steps"])):
        model.step()
    t2 = time.perf_counter()
    return dict(agents=len(model.agents), build_s=t1 - t0, steps_s=t2 - t1, steps=int(req["steps"]))


# --------------------------------------------------------------------------- one sweep


def _warm_worker(hold_s: float, toy_path: str) -> int:
    """Import the model and run one tiny model (first-run costs), then hold the worker a while."""
    started = time.perf_counter()
    from sim.runner import run_model
    from sim.scenario import load_scenario

    run_model(load_scenario(toy_path, ["steps=2"]), SEED)
    time.sleep(max(0.0, hold_s - (time.perf_counter() - started)))
    return os.getpid()


def _warm_pool(pool, workers: int, toy: str, hold_s: float = 0.3, tries: int = 5) -> int:
    pids: set[int] = set()
    for _ in range(tries):
        futures = [pool.submit(_warm_worker, hold_s, toy) for _ in range(workers)]
        pids.update(f.result() for f in futures)
        if len(pids) >= workers:
            break
    return len(pids)


def task_sweep(spec: dict) -> dict:
    """Run one sweep (run_sweep) in this fresh process; its wall time, the runs' own times, RSS.

    With `bare_model_runs` > 0 the bare model (the runner's model + steps, the sweep's base
    scenario) is also timed that many times before the sweep: the model's own time per run,
    against which the sweep's per-run overhead is measured.
    """
    from sim.executors import make_backend
    from sim.scenario import load_scenario
    from sim.sweep import run_sweep, start_sweep

    model_class = _runner_model_class()

    try:
        import psutil
    except ImportError:  # optional: only for sampling the workers' RSS
        psutil = None

    rss_after_imports = max_rss_kib()
    cfg = load_scenario(spec["scenario"], list(spec["overrides"]))
    bare, bare_cpu = [], []
    if spec.get("bare_model_runs"):
        base = load_scenario(spec["scenario"], [o for o in spec["overrides"] if not o.startswith("sweep=")])
        for _ in range(int(spec["bare_model_runs"]) + 1):  # the first is a warm-up
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            model = model_class(base, seed=SEED)
            for _ in range(int(spec["steps"])):
                model.step()
            bare.append(time.perf_counter() - t0)
            bare_cpu.append(time.process_time() - c0)
        bare, bare_cpu = bare[1:], bare_cpu[1:]
        del model
    workers, dask = spec["workers"], spec["dask"]
    toy = spec["toy"]
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        directory = start_sweep(cfg, out=Path(tmp) / "sweep", root_seed=SEED, steps=None,
                                scenario_file=None, overrides=[], executor_name="bench_sweep")
        t0 = time.perf_counter()
        backend = make_backend(workers, "local" if dask else None)
        if dask:
            backend.client.wait_for_workers(workers)
            started_workers = len(backend.client.run(_warm_worker, 0.0, toy))
        elif workers > 1:
            started_workers = _warm_pool(backend.executor, workers, toy)
        else:
            _warm_worker(0.0, toy)
            started_workers = 1
        startup_s = time.perf_counter() - t0

        rss_before_kib = max_rss_kib()
        me = psutil.Process() if (psutil is not None and spec.get("sample_workers")) else None
        stamps: list[float] = []
        run_times: list[float] = []
        worker_peak = [0]
        every = max(1, spec.get("sample_every", 25))

        def on_row(row: dict) -> None:
            stamps.append(time.perf_counter())
            run_times.append(float(row.get("elapsed_s", "nan")))
            if me is not None and len(stamps) % every == 0:
                for proc in me.children(recursive=True):  # forkserver and its workers
                    try:
                        worker_peak[0] = max(worker_peak[0], proc.memory_info().rss // 1024)
                    except psutil.Error:
                        pass

        # Serial: the model's own time (construction and steps) of each run, timed inside the run
        # itself, so the time around it needs no second, noisy measurement of the same runs.
        in_model: list[float] = []
        restore = _time_models(in_model) if workers == 1 and not dask else None
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            result = run_sweep(directory, on_row=on_row, backend=backend)
        finally:
            if restore is not None:
                restore()
        wall_s = time.perf_counter() - t0
        cpu_s = time.process_time() - c0
        peak_kib = max_rss_kib()
        outcomes_bytes = (directory / "outcomes.csv").stat().st_size
        journal_bytes = (directory / "runs.jsonl").stat().st_size
        same_s, same_cpu_s = _bare_same_runs(spec, directory) if spec.get("bare_same_runs") else (None, None)
    # In-loop overhead: from the first finished run to the last, the time not spent in the
    # models of the runs in between (timed inside the sweep; serial runs follow one another),
    # per run. It leaves out what a sweep does once, before its first run (reading the sweep's
    # scenario, the design and the journal) and after its last (outcomes.csv), which `sweep_s`
    # includes.
    in_loop_ms = once_only_s = None
    if len(stamps) > 1 and len(in_model) == len(stamps):
        in_loop_ms = (stamps[-1] - stamps[0] - sum(in_model[1:])) / (len(stamps) - 1) * 1e3
        # The rest of the sweep's time, with every run's model and bookkeeping taken out.
        once_only_s = wall_s - sum(in_model) - in_loop_ms * 1e-3 * len(stamps)

    n = len(stamps)
    tenth = max(1, n // 10)
    first = (stamps[tenth - 1] - t0) / tenth if n else float("nan")
    last = (stamps[-1] - stamps[-tenth - 1]) / tenth if n > tenth else float("nan")
    return dict(
        executor=spec["name"], workers=workers, started_workers=started_workers, runs=result["runs"],
        failed=result["failed"], steps=spec["steps"], startup_s=startup_s, sweep_s=wall_s,
        driver_cpu_s=cpu_s, rss_after_imports_kib=rss_after_imports, rss_before_sweep_kib=rss_before_kib,
        peak_rss_kib=peak_kib, worker_peak_rss_kib=worker_peak[0] if me is not None else None,
        outcomes_csv_bytes=outcomes_bytes, runs_jsonl_bytes=journal_bytes,
        ms_per_run_first_tenth=first * 1e3, ms_per_run_last_tenth=last * 1e3,
        run_s_sum=sum(run_times), busy_workers=sum(run_times) / wall_s if wall_s else float("nan"),
        bare_model_s=bare, bare_model_cpu_s=bare_cpu,
        same_runs_model_s=same_s, same_runs_model_cpu_s=same_cpu_s,
        in_loop_overhead_ms=in_loop_ms, once_only_s=once_only_s,
        first_run_at_s=(stamps[0] - t0) if stamps else None,
    )


def _runner_model_name() -> str:
    """The name of the class `sim.runner.run_model` builds in that module: `Engine` (the model without
    Mesa, since issue 13's start-up work), or `CorridorModel` in trees from before it."""
    import sim.runner

    return "Engine" if hasattr(sim.runner, "Engine") else "CorridorModel"


def _runner_model_class():
    """The class `sim.runner.run_model` steps (`_runner_model_name`): the bare model of a sweep's runs."""
    import sim.runner

    return getattr(sim.runner, _runner_model_name())


def _time_models(into: list[float]):
    """Time every run's model (construction + its steps) as `sim.runner` runs it; returns an undo.

    `sim.runner.run_model` builds its model from a name in its module (`_runner_model_name`):
    a function that builds the real one and times it and its `step` (an instance attribute, so
    Mesa's own wrapping of `step` in subclasses is not doubled) is put there, one entry per
    model in `into`. The runs' numbers do not change (the same model, the same calls).
    """
    import sim.runner

    name = _runner_model_name()
    real = getattr(sim.runner, name)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        model = real(*args, **kwargs)
        into.append(time.perf_counter() - t0)
        step = model.step

        def timed_step():
            t1 = time.perf_counter()
            step()
            into[-1] += time.perf_counter() - t1

        model.step = timed_step
        return model

    setattr(sim.runner, name, timed)

    def restore():
        setattr(sim.runner, name, real)

    return restore


def _bare_same_runs(spec: dict, directory: Path) -> tuple[float, float]:
    """The bare model's time (the runner's model + steps) summed over the sweep's own runs: (wall s, CPU s).

    Each finished run of `outcomes.csv` is rebuilt from the scenario, the sweep's other
    overrides and its point's parameter value, with its own seed, so the sweep's time minus
    this is what the sweep spends outside the model on exactly these runs (the design's points
    differ in cost: a higher salary buys more fighters).
    """
    from sim.scenario import load_scenario

    model_class = _runner_model_class()
    parameter = spec["parameter"]
    base = [o for o in spec["overrides"] if not o.startswith("sweep=")]
    wall = cpu = 0.0
    with open(directory / "outcomes.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["status"] == "ok"]
    for row in rows:
        cfg = load_scenario(spec["scenario"], [*base, f"{parameter}={row[parameter]}"])
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        model = model_class(cfg, seed=int(row["seed"]))
        for _ in range(int(spec["steps"])):
            model.step()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        del model
    return wall, cpu


def task_scaled_overrides(req: dict) -> dict:
    """Overrides that multiply the fighters and the recruit pool of a scenario by k, together.

    Every town's population (the recruit pool is population x pool_share, so it grows k-fold
    without leaving pool_share's range [0, 1]), and every faction's initial_fighters (drawn
    from that pool) and initial_outsiders (fighters from outside it) are multiplied by k; so is
    the money that pays fighters (factions' initial budgets and reserves, patrons' funding,
    sites' revenue), so that k times the fighters can still be paid and stay about k times as
    many over the run instead of being laid off (the world is k copies, economically).
    """
    cfg = config(req["scenario"], [])
    k = float(req["k"])
    overrides = []
    if k != 1:
        for name, site in cfg.sites.items():
            if getattr(site, "population", 0):
                overrides.append(f"sites.{name}.population={int(round(site.population * k))}")
            revenue = getattr(site, "revenue_usd_day", 0)
            if revenue:
                overrides.append(f"sites.{name}.revenue_usd_day={revenue * k!r}")
        for name, spec in cfg.factions.items():
            for key in ("initial_fighters", "initial_outsiders"):
                value = getattr(spec, key, 0)
                if value:
                    overrides.append(f"factions.{name}.{key}={int(round(value * k))}")
            if getattr(spec, "initial_budget_usd", 0):
                overrides.append(f"factions.{name}.initial_budget_usd={spec.initial_budget_usd * k!r}")
            reserve = getattr(getattr(spec, "spending", None), "reserve_usd", 0)
            if reserve:
                overrides.append(f"factions.{name}.spending.reserve_usd={reserve * k!r}")
        for name, patron in (getattr(cfg, "patrons", None) or {}).items():
            if getattr(patron, "funding_usd_day", 0):
                overrides.append(f"patrons.{name}.funding_usd_day={patron.funding_usd_day * k!r}")
    return dict(overrides=overrides)


TASKS = dict(info=task_info, scaled_overrides=task_scaled_overrides, run=task_run, run_model=task_run_model,
             calls=task_calls, memory=task_memory,
             epstein_size=task_epstein_size, epstein=task_epstein, sweep=task_sweep)


def handle(req: dict) -> dict:
    try:
        return TASKS[req["task"]](req)
    except Exception as exc:  # reported to the parent as one line; the parent decides
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return {"error": f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"}


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "serve":
        while True:
            line = sys.stdin.readline()  # one request at a time: the parent waits for each answer
            if not line:
                return 0
            if line.strip():
                _answer(handle(json.loads(line)))
    if len(argv) == 2 and argv[0] == "once":
        _answer(handle(json.loads(argv[1])))
        return 0
    print("usage: _child.py serve | once SPEC", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
