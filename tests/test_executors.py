"""One execution path (sim.executors): the bounded map, and the same numbers on every backend.

The cross-backend tests run each many-run command (replicates, validate-patterns, calibrate,
sweep) serially, on two local processes and on a Dask cluster reached by its address (one
LocalCluster shared by the module), and compare the results bit for bit.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import partial

import pandas as pd
import pytest
from helpers import PROJECT, SCENARIOS

from sim.api import simulate
from sim.calibration import Calibration, calibrate
from sim.executors import (
    GROUP_MAX,
    Backend,
    ExecutorError,
    InlineExecutor,
    QuietBar,
    exception_chain,
    group_size,
    interrupt_behind,
    make_backend,
    map_unordered,
)
from sim.patterns import validate
from sim.scenario import load_scenario
from sim.seeding import replicate_seeds, run_seed
from sim.sweep import run_sweep, start_sweep

TOY = SCENARIOS / "toy_two_towns.yaml"


# --------------------------------------------------------------------------- the map


def _square(x: int) -> int:
    return x * x


def _fail_on(bad: int, x: int) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


@pytest.mark.parametrize("workers", [1, 2])
def test_map_yields_every_item_once_with_its_index(workers):
    with make_backend(workers) as backend:
        pairs = list(backend.map(_square, iter(range(25))))
    assert sorted(pairs) == [(i, i * i) for i in range(25)]
    assert backend.kind == ("serial" if workers == 1 else "processes")


def test_the_serial_backend_hands_on_each_result_before_the_next_run():
    pulled = []

    def items():
        for i in range(10):
            pulled.append(i)
            yield i

    with make_backend(1) as backend:
        for n_seen, (index, _) in enumerate(backend.map(_square, items()), start=1):
            assert index == n_seen - 1 and len(pulled) == n_seen  # window 1: streaming, in order


def test_a_call_that_raises_stops_the_map_and_cancels_what_is_pending():
    ran = []

    def record(x):
        ran.append(x)
        return _fail_on(3, x)

    with pytest.raises(ValueError, match="bad item 3"):
        list(map_unordered(InlineExecutor(), record, range(100), window=1))
    assert ran == [0, 1, 2, 3]  # nothing after the failure was started
    with make_backend(2) as backend, pytest.raises(ValueError, match="bad item 5"):
        list(backend.map(partial(_fail_on, 5), range(40)))
    with pytest.raises(ValueError, match="window"):
        list(map_unordered(InlineExecutor(), _square, range(3), window=0))


class CountingExecutor(Executor):
    """Hands each call on to `inner` and keeps its future: how many tasks a map submitted, and their fate."""

    def __init__(self, inner: Executor):
        self.inner = inner
        self.futures = []

    def submit(self, fn, /, *args, **kwargs):
        future = self.inner.submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 24, 25, 67])
@pytest.mark.parametrize("group", [1, 3, 8])
def test_a_grouped_map_yields_the_same_pairs_as_an_ungrouped_one_and_counts_every_item(n, group):
    ungrouped = list(map_unordered(InlineExecutor(), _square, range(n), window=1))
    for executor in (InlineExecutor(), ThreadPoolExecutor(max_workers=3)):
        counting, bar = CountingExecutor(executor), QuietBar(total=n)
        with executor:
            pairs = list(map_unordered(counting, _square, iter(range(n)), window=2, bar=bar, group=group))
        assert sorted(pairs) == ungrouped == [(i, i * i) for i in range(n)]
        assert bar.n == n  # the bar counts items, not tasks
        assert len(counting.futures) == -(-n // group)  # ceil(n / group) tasks, the last one short
    with pytest.raises(ValueError, match="group"):
        list(map_unordered(InlineExecutor(), _square, range(3), window=1, group=0))


def test_an_exception_in_a_group_propagates_and_the_pending_groups_are_cancelled():
    started = []
    release = threading.Event()

    def record(x):
        started.append(x)
        if x == 1:
            time.sleep(0.2)  # meanwhile the map submits its window: 3 more groups, queued
            raise ValueError(f"bad item {x}")
        if x == 3:
            release.wait(10)  # the pool's one thread stays busy: the groups behind stay cancellable
        return x

    pool = ThreadPoolExecutor(max_workers=1)
    counting = CountingExecutor(pool)
    try:
        with pytest.raises(ValueError, match="bad item 1"):
            list(map_unordered(counting, record, range(40), window=4, group=3))
        assert len(counting.futures) == 4  # the window: 4 tasks of 3 items
        assert counting.futures[2].cancelled() and counting.futures[3].cancelled()
    finally:
        release.set()
        pool.shutdown(wait=True)
    assert started[:2] == [0, 1] and set(started) <= {0, 1, 3, 4, 5}  # no group after the next one ran


def test_group_sizes_leave_four_tasks_per_worker_and_stay_small():
    sizes = [group_size(n, 2) for n in (0, 1, 7, 15, 16, 24, 32, 63, 64, 320, 10_240)]
    assert sizes == [1, 1, 1, 1, 2, 3, 4, 7, 8, 8, 8]
    assert group_size(320, 8) == 8 and group_size(100, 8) == 3 and group_size(5, 0) == 1
    for workers in (1, 2, 3, 8):
        for n in range(300):
            k = group_size(n, workers)
            assert 1 <= k <= GROUP_MAX
            assert k == 1 or n // k >= 4 * workers  # still >= 4 groups a worker for load balance


def test_only_a_dask_backend_groups_and_only_items_of_known_length():
    def submitted(kind: str, items) -> int:
        counting = CountingExecutor(InlineExecutor())
        bar = QuietBar(total=320)
        pairs = list(Backend(counting, kind, 2).map(_square, items, bar=bar))
        assert sorted(pairs) == [(i, i * i) for i in range(320)] and bar.n == 320
        return len(counting.futures)

    assert submitted("dask", list(range(320))) == 40  # 320 runs on 2 workers: groups of 8
    assert submitted("dask", iter(range(320))) == 320  # a generator's length is unknown: one a task
    assert submitted("processes", list(range(320))) == 320
    assert submitted("serial", list(range(320))) == 320


def test_an_unreachable_scheduler_is_refused_quickly():
    started = time.monotonic()
    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler"):
        make_backend(1, "tcp://127.0.0.1:9", connect_timeout_s=1)
    assert time.monotonic() - started < 20


def test_a_malformed_scheduler_address_is_named_as_such():
    # Dask refuses it before trying: "cannot reach ... within 5 s" was the wrong story
    with pytest.raises(ExecutorError) as caught:
        make_backend(1, "nonsense", connect_timeout_s=1)
    assert str(caught.value) == (
        "--dask nonsense: not a scheduler address (missing port number in address 'nonsense'); "
        "give one such as tcp://host:8786"
    )


def _sim_imports(module: str) -> list[str]:
    tree = ast.parse((PROJECT / "sim" / f"{module}.py").read_text(encoding="utf-8"))
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    return [name for name in imported if name and name.split(".")[0] == "sim"]


def test_executors_imports_nothing_from_sim():
    """The lowest layer: no import cycle can go through it. Its one project import, `sim.interrupts`
    (the swallowed-interrupt check after each run), imports nothing from sim either."""
    assert _sim_imports("executors") == ["sim.interrupts"]
    assert _sim_imports("interrupts") == []


# --------------------------------------------------------------------------- same numbers everywhere


@pytest.fixture(scope="module")
def scheduler():
    """The address of a 2-worker Dask LocalCluster, reached as an external scheduler."""
    distributed = pytest.importorskip(
        "distributed",
        reason="Dask's distributed package is not installed (pip install 'dask[distributed]'): the checks that "
        "runs on a Dask cluster (--dask) give the same numbers are skipped; other executors are tested",
    )
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def backends(address: str) -> list[dict]:
    """Keyword arguments for serial, local processes and Dask."""
    return [{"workers": 1}, {"workers": 2}, {"workers": 2, "dask": address}]


@pytest.mark.slow
def test_replicates_are_identical_on_every_backend(scheduler):
    runs = [simulate(TOY, seed=5, steps=20, replicates=3, **kw) for kw in backends(scheduler)]
    assert [r.executor for r in runs] == ["serial", "processes:2", f"dask:{scheduler}"]
    assert [r.seed for r in runs[0].results] == replicate_seeds(5, 3)
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0].timeseries, other.timeseries, check_exact=True)
        pd.testing.assert_frame_equal(runs[0].events, other.events, check_exact=True)


@pytest.mark.slow
def test_a_dask_map_groups_its_items_and_yields_each_once(scheduler):
    with make_backend(2, dask=scheduler) as backend:
        counting, bar = CountingExecutor(backend.executor), QuietBar(total=67)
        backend.executor = counting
        pairs = list(backend.map(_square, list(range(67)), bar=bar))
    assert sorted(pairs) == [(i, i * i) for i in range(67)] and bar.n == 67
    assert len(counting.futures) == 9  # 67 items on 2 workers: groups of 8, the last of 3
    with make_backend(2, dask=scheduler) as backend, pytest.raises(ValueError, match="bad item 30"):
        list(backend.map(partial(_fail_on, 30), list(range(67))))


@pytest.mark.slow
def test_validate_patterns_is_identical_on_every_backend(scheduler):
    reports = [validate(TOY, 3, seed=3, steps=30, **kw) for kw in backends(scheduler)]
    for other in reports[1:]:
        pd.testing.assert_frame_equal(reports[0].runs, other.runs, check_exact=True)
    assert "--dask" in reports[2].command and "--dask" not in reports[0].command


def _tiny_calibration() -> Calibration:
    return Calibration.model_validate(
        {
            "design": "lhs",
            "samples": 6,
            "replicates": 2,
            "accept": 0.5,
            "parameters": {"rules.clashes.lethality": {"low": 0.01, "high": 0.1}},
            "statistics": [{"outcome": "killed_window_peak.20", "target": 5, "scale": 2}],
        }
    )


@pytest.mark.slow
def test_calibration_is_identical_on_every_backend_with_independent_seeds(scheduler, tmp_path):
    base = load_scenario(TOY, ["steps=20"])
    results = [
        calibrate(base, _tiny_calibration(), out=tmp_path / f"c{i}", seed=7, plots=False, **kw)
        for i, kw in enumerate(backends(scheduler))
    ]
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0].draws, other.draws, check_exact=True)
    # The design is written once, with run_seed for every draw and replicate (never rewritten).
    sweep_dir = tmp_path / "c0" / "sweep"
    design = pd.read_csv(sweep_dir / "design.csv")
    assert len(design) == 12 and design["seed"].nunique() == 12
    assert list(design["seed"]) == [run_seed(7, p, r) for p, r in zip(design["point"], design["replicate"])]
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    assert f"--seed {design['seed'].iloc[0]} " in manifest["rerun_example"]
    assert "own seed" in manifest["seeds"]
    assert load_scenario(sweep_dir / "scenario.yaml").sweep.seeds == "independent"


@pytest.mark.slow
def test_a_sweep_with_independent_seeds_is_identical_on_every_backend(scheduler, tmp_path):
    config = load_scenario(
        TOY,
        [
            # 2 points x 10 replicates: on 2 Dask workers, tasks of 2 runs (`group_size`)
            "sweep={design: grid, replicates: 10, seeds: independent, parameters: "
            "{factions.Red.salary_usd_month: [120, 200]}, outputs: [killed_total, territory_final.Red]}",
            "steps=20",
        ],
    )
    tables = []
    for i, kw in enumerate(backends(scheduler)):
        directory = start_sweep(
            config, out=tmp_path / f"s{i}", root_seed=11, steps=None, scenario_file=None, overrides=[],
            executor_name="test",
        )
        counts = run_sweep(directory, **kw)
        assert counts["finished"] == counts["total"] == 20
        assert not (directory / "plots").exists()  # run_sweep does not analyse
        tables.append(pd.read_csv(directory / "outcomes.csv").drop(columns=["elapsed_s"]))
    design = pd.read_csv(tmp_path / "s0" / "design.csv")
    assert list(design["seed"]) == [run_seed(11, p, r) for p, r in zip(design["point"], design["replicate"])]
    for other in tables[1:]:
        pd.testing.assert_frame_equal(tables[0], other, check_exact=True)


def _listening_socket(reply: bytes | None):
    """A local TCP server that accepts connections and sends `reply` (or nothing, ever)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if reply is not None:
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return server, held


@pytest.mark.parametrize(
    "reply",
    [None, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4],
    ids=["silent-peer", "http-peer"],
)
def test_a_port_that_is_not_a_dask_scheduler_is_refused_in_bounded_time(reply):
    """A dashboard or any other service on the port: refused, never a hang or a crash."""
    server, held = _listening_socket(reply)
    started = time.monotonic()
    try:
        with pytest.raises(ExecutorError, match="Dask scheduler"):
            make_backend(1, f"tcp://127.0.0.1:{server.getsockname()[1]}", connect_timeout_s=1)
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_a_scheduler_without_workers_is_refused(monkeypatch):
    from distributed import LocalCluster

    import sim.executors

    monkeypatch.setattr(sim.executors, "WORKER_WAIT_S", 2.0)
    with LocalCluster(n_workers=0, dashboard_address=":0", processes=False) as cluster:
        with pytest.raises(ExecutorError, match="has no workers"):
            make_backend(1, cluster.scheduler_address, connect_timeout_s=5)


# --------------------------------------------------------------------------- a LocalCluster's teardown


def test_a_closed_connection_is_dropped_from_a_workers_log_and_nothing_else():
    """DroppedCommFilter: the heartbeat that meets a closing scheduler is not logged; other errors are."""
    distributed = pytest.importorskip(
        "distributed",
        reason="Dask's distributed package is not installed (pip install 'dask[distributed]'): the filter of a "
        "LocalCluster's teardown logs is untested (skipped); nothing else uses it",
    )
    from tornado.iostream import StreamClosedError

    from sim.executors import DroppedCommFilter

    def record(error: BaseException | None) -> logging.LogRecord:
        exc_info = (type(error), error, error.__traceback__) if error is not None else None
        return logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, "message", (), exc_info)

    def raised(error: BaseException, cause: BaseException | None = None) -> BaseException:
        try:
            raise error from cause
        except BaseException as caught:
            return caught

    closed = raised(distributed.comm.core.CommClosedError("in <TCP (closed)>"), StreamClosedError())
    keep = DroppedCommFilter().filter
    assert not keep(record(closed))  # CI's case: CommClosedError raised from StreamClosedError
    assert not keep(record(raised(OSError("wrapped"), closed)))  # caused by one
    assert not keep(record(raised(StreamClosedError())))
    assert keep(record(raised(ValueError("a run's own error"))))
    assert keep(record(raised(OSError("disk full"))))
    assert keep(record(None))


def _log_in_a_worker() -> str:
    """Run in a LocalCluster worker: log a closed connection and another error, as Dask would."""
    import signal

    from distributed.comm.core import CommClosedError

    log = logging.getLogger("distributed.worker")
    try:
        raise CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker>: Stream is closed")
    except CommClosedError:
        log.exception("Failed to communicate with scheduler during heartbeat.")
    log.error("KEPT-MARKER a worker error that is not about a closed connection")
    return "ignored" if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else "default"


@pytest.mark.slow
def test_a_local_clusters_workers_drop_closed_connections_from_their_logs_only():
    """The workers that `make_backend(dask="local")` starts keep their errors but not the teardown's."""
    pytest.importorskip(
        "distributed",
        reason="Dask's distributed package is not installed (pip install 'dask[distributed]'): the logs of "
        "LocalCluster workers (--dask local) are untested (skipped); other executors are tested",
    )
    script = (
        "import sys, logging\n"
        f"sys.path.insert(0, {str(PROJECT / 'tests')!r})\n"
        "from test_executors import _log_in_a_worker\n"
        "from sim.executors import make_backend\n"
        "with make_backend(2, 'local') as backend:\n"
        "    print(sorted(backend.client.run(_log_in_a_worker).values()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['ignored', 'ignored']"  # and they ignore Ctrl-C, as before
    assert done.stderr.count("KEPT-MARKER") == 2  # each worker's other error reaches the terminal
    assert "heartbeat" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_interrupt_behind_finds_an_interrupt_anywhere_in_the_chain_and_nothing_else():
    interrupt = KeyboardInterrupt()
    outer = SystemError("returned a result with an exception set")
    outer.__cause__ = interrupt
    assert interrupt_behind(interrupt) is interrupt
    assert interrupt_behind(outer) is interrupt
    middle = RuntimeError("while handling")
    middle.__context__ = outer
    assert interrupt_behind(middle) is interrupt  # through __context__ too
    plain = ValueError("bad")
    plain.__context__ = TypeError("earlier")
    assert interrupt_behind(plain) is None
    loop_a, loop_b = RuntimeError("a"), RuntimeError("b")
    loop_a.__cause__, loop_b.__context__ = loop_b, loop_a  # a cycle ends, and says no interrupt
    assert interrupt_behind(loop_a) is None


def test_an_exception_chain_lists_each_exception_once_in_order_and_stops_at_its_limit():
    first, second, third = ValueError("1"), TypeError("2"), KeyError("3")
    first.__cause__, second.__context__ = second, third
    assert list(exception_chain(first)) == [first, second, third]
    third.__context__ = first  # a cycle: each once
    assert list(exception_chain(first)) == [first, second, third]
    assert list(exception_chain(first, limit=2)) == [first, second]
    assert list(exception_chain(None)) == []
    long = [RuntimeError(str(k)) for k in range(40)]
    for a, b in zip(long, long[1:]):
        a.__cause__ = b
    assert len(list(exception_chain(long[0]))) == 16  # the default limit


def test_the_serial_executor_raises_a_wrapped_interrupt_instead_of_storing_it():
    """Other errors go into the future (the map re-raises them where the caller reads results);
    an interrupt stops the caller at once, however it arrived."""
    interrupt = KeyboardInterrupt()

    def wrapped():
        error = SystemError("returned a result with an exception set")
        error.__cause__ = interrupt
        raise error

    with pytest.raises(KeyboardInterrupt) as raised:
        InlineExecutor().submit(wrapped)
    assert raised.value is interrupt
    future = InlineExecutor().submit(_boom_with_context)
    assert isinstance(future.exception(), RuntimeError)


def _boom_with_context():
    try:
        raise ValueError("first")
    except ValueError:
        raise RuntimeError("second") from None


@pytest.mark.slow
def test_closing_a_local_cluster_after_ctrl_c_silences_every_dask_logger_even_those_with_own_levels():
    """Dask's logging config sets `tornado.application: error` and `distributed.client: warning`
    itself, which a parent's level does not override: after Ctrl-C on `--dask local` a cancelled
    future was once logged by tornado.application with a 20-line traceback. After the close
    (while the interrupt unwinds) no Dask or Tornado logger lets an error through; before it,
    they did (so the check is not vacuous)."""
    pytest.importorskip(
        "distributed",
        reason="Dask's distributed package is not installed (pip install 'dask[distributed]'): the teardown "
        "of a LocalCluster (--dask local) is untested (skipped); other executors are tested",
    )
    script = (
        "import logging, time\n"
        "from sim.executors import make_backend\n"
        "names = ['tornado.application', 'distributed.client', 'distributed']\n"
        "backend = make_backend(2, 'local')\n"
        "print('before', [logging.getLogger(n).isEnabledFor(logging.ERROR) for n in names])\n"
        "future = backend.executor.submit(time.sleep, 60)\n"
        "try:\n"
        "    with backend:\n"
        "        raise KeyboardInterrupt\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
        "print('after', [logging.getLogger(n).isEnabledFor(logging.ERROR) for n in names])\n"
        "logging.getLogger('tornado.application').error('LEAKED-MARKER')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "before [True, True, True]"
    assert lines[1] == "after [False, False, False]", done.stdout
    assert "LEAKED-MARKER" not in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
def test_a_signal_while_a_local_cluster_starts_closes_it_and_says_one_line():
    """Interrupted while LocalCluster's constructor waited for its start, the start went on in
    Dask's event loop with no object to close, and at exit Dask's `close_clusters` met workers
    half-started: a 30-line AssertionError followed the command's one line (seen under load).
    Here the SIGTERM is raised as each worker starts, in Dask's event loop."""
    pytest.importorskip(
        "distributed",
        reason="Dask's distributed package is not installed (pip install 'dask[distributed]'): an interrupted "
        "LocalCluster start (--dask local) is untested (skipped); other executors are tested",
    )
    script = f"""
import asyncio, signal, sys
from distributed import Nanny
from distributed.deploy.spec import SpecCluster
from sim.cli import main
start = Nanny.start_unsafe
async def interrupted_start(self):
    signal.raise_signal(signal.SIGTERM)  # handled in the main thread, which waits for the start
    await asyncio.sleep(1)  # a slow start (a loaded machine): still starting as the interrupt unwinds
    return await start(self)
Nanny.start_unsafe = interrupted_start
status = main(["run", {str(TOY)!r}, "--dask", "local", "--workers", "2", "--steps", "3", "--no-plots"])
print(status, [cluster.status.name for cluster in SpecCluster._instances if cluster.status.name != "closed"])
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["143", "[]"], (done.stdout, done.stderr)  # none left open when main returned
    assert done.stderr == "terminated (SIGTERM); no results were written\n"


def test_an_empty_dask_address_is_refused_and_local_is_any_case(capsys):
    # --dask "" (an unset shell variable) ran the job without Dask, as if --dask were not given
    from sim.cli import dask_address, main

    with pytest.raises(SystemExit) as stop:
        main(["run", "toy_two_towns", "--steps", "2", "--dask", ""])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert "argument --dask: an empty address ('')" in err, err
    assert dask_address("LOCAL") == dask_address(" local ") == "local"
    assert dask_address("tcp://h:8786") == "tcp://h:8786"
