"""Where many runs execute: one bounded, streaming map over any `concurrent.futures` executor.

Every command that runs many models (`run.py run --replicates`, `validate-patterns`,
`calibrate`, `sweep`) goes through `map_unordered`, over one of three backends built by
`make_backend(workers, dask)`:

- serial: `InlineExecutor`, which runs each call in this process when it is submitted;
- processes: a `ProcessPoolExecutor` started with `process_context()` (forkserver/spawn);
- dask: `Client.get_executor(pure=False, retries=...)` of an existing scheduler
  (`dask="tcp://host:8786"`) or of a `LocalCluster` started here (`dask="local"`).

The map keeps at most `window` calls in flight (memory stays bounded however many runs
there are), pulls the next item only when a result has been yielded, and yields
`(index, result)` pairs as calls finish, so a caller can journal results at once and order
them afterwards. On Dask, many items are sent `group_size` at a time as one task (Dask's own
cost, ~10 ms a task, is then paid once per group); results are still yielded one per item.
Where a call runs never changes its result: every run's randomness comes from its own seed
(`sim.seeding`), so serial, process and Dask execution agree bit for bit, grouped or not.

This module imports nothing from `sim` (it runs functions, it does not know models).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from sim.interrupts import raise_pending

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")

WINDOW_PER_WORKER = 4  # calls in flight per worker: keeps workers busy, memory bounded
DASK_RETRIES = 2  # a call whose worker dies (or that raises) is tried again this many times
CONNECT_TIMEOUT_S = 5.0  # an unreachable scheduler is reported after this long
HANDSHAKE_GRACE_S = 5.0  # beyond the connect timeout: a peer that accepts but never speaks Dask
WORKER_WAIT_S = 30.0  # a scheduler with no workers is reported after this long
PARENT_POLL_S = 1.0  # where a process cannot be watched directly, how often a worker looks for its driver
ORPHAN_EXIT_STATUS = 70  # what a worker whose driver died exits with (EX_SOFTWARE; never seen by the driver)
# Runs sent to Dask as one task, at most. Dask costs ~10 ms a task (scheduler round trip,
# serialisation; measured in a 2-worker LocalCluster sweep of one-year runs of ~70 ms): 8 runs
# a task bring that to ~1.3 ms a run (<2%), and larger groups gain little more while they
# lengthen the tail (one worker finishing a last group alone) and what an interrupt or a dead
# worker loses (a group in flight is redone whole).
GROUP_MAX = 8


class ExecutorError(Exception):
    """A backend cannot start (Dask missing, scheduler unreachable); the CLI exits with status 2."""


def process_context():
    """Start worker processes with forkserver (spawn where unavailable), not fork.

    Forking a process that runs threads (pandas, BLAS, a progress bar) can deadlock the child;
    Python 3.12+ warns about it and 3.14 no longer forks by default.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block (they stay pending, and arrive after it), in the main thread.

    For recording an interrupt: GNU `timeout`, Slurm and a second Ctrl-C signal twice (the
    process, then its group), and the second signal, raised inside the handler of the first,
    cut short the manifest it was writing ("running", with no count of the journal's runs).
    Elsewhere than the main thread (which alone runs Python's signal handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = {signal.SIGINT, signal.SIGTERM}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ours)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _start_forkserver_deaf_to_signals() -> None:
    """Start this process's forkserver (once) ignoring SIGINT and SIGTERM, as its workers then do.

    Ctrl-C, `timeout`, batch schedulers (Slurm) and `kill -- -PGID` signal the whole process
    group. The forkserver is in it, and a process pool takes the end of its forkserver for the
    death of every worker (a BrokenProcessPool under the driver, and a thread traceback from the
    pool's management thread). An ignored signal stays ignored across fork and exec, so the
    forkserver and every worker forked from it ignore these signals from birth; only the driver
    reacts, and it stops them (`Backend.close`) or they end with it (`exit_with_driver`; the
    forkserver exits when its driver has gone). The driver ignores them only while the
    forkserver starts, with them blocked: one that arrives meanwhile stays pending and is
    delivered to the driver's own handler once that is back.
    """
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        forkserver.ensure_running()
        return
    ours = {signal.SIGINT, signal.SIGTERM}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ours)
    arrived = signal.sigpending() & ours  # setting SIG_IGN would discard them: raised again below
    handlers = {sig: signal.getsignal(sig) for sig in ours}
    try:
        for sig in ours:
            signal.signal(sig, signal.SIG_IGN)
        forkserver.ensure_running()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    for sig in arrived:
        signal.raise_signal(sig)


def _driver_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a process of another user: our driver's pid was reused
        return True
    return False


def _wait_for_exit(pid: int) -> None:
    """Return once process `pid` has ended (at once if it already has)."""
    try:
        # Linux >= 5.3: a pidfd names this very process, so a reused pid cannot fool it, and
        # it becomes readable when the process ends, however it ends (kill -9 included).
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # not Linux, or an old kernel: look every PARENT_POLL_S
        # A child of the driver itself (spawn) sees it go as a change of parent, which a
        # reused pid or a driver that is dead but not yet reaped cannot hide.
        child = os.getppid() == pid
        while not (child and os.getppid() != pid) and not _driver_is_gone(pid):
            time.sleep(PARENT_POLL_S)
        return
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while not poller.poll():
        pass


def exit_with_driver(driver_pid: int) -> None:
    """Make this worker process exit as soon as process `driver_pid` (the command) ends.

    The `initializer` of the process pool's workers. A worker's parent is the forkserver,
    not the command, and holds the pool's pipes open itself, so without this a killed command
    (kill -9, an out-of-memory kill, a closed terminal) left its workers, and with them the
    forkserver and the resource tracker (which exit when the last worker has gone), running
    for ever. A daemon thread waits for the driver to end and then ends the process at once:
    its run is lost with the driver that would have recorded it.

    It also makes the worker ignore SIGINT and SIGTERM. Ctrl-C, `timeout`, batch schedulers
    (Slurm) and `kill -- -PGID` signal the whole process group: a worker killed by the signal
    would break the pool under the driver (a BrokenProcessPool instead of a clean interrupt,
    and a manifest left "running"). Only the driver reacts; it stops its workers itself
    (`Backend.close`, with SIGKILL) or they exit with it through the thread started here.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    end_with(driver_pid)


def end_with(driver_pid: int) -> None:
    """End this process (status `ORPHAN_EXIT_STATUS`) as soon as process `driver_pid` ends, however it ends.

    A daemon thread waits for it (a pidfd on Linux >= 5.3, else a poll every `PARENT_POLL_S`
    seconds). Used by `exit_with_driver` and by the explorer's server process
    (`sim.explorer.server`), whose driver is the `explore` command.
    """

    def watch() -> None:
        _wait_for_exit(driver_pid)
        os._exit(ORPHAN_EXIT_STATUS)

    threading.Thread(target=watch, name="exit-with-driver", daemon=True).start()


def show_progress() -> bool:
    """Progress bars only on an interactive terminal; batch jobs and CI stay quiet."""
    return sys.stderr.isatty()


def default_workers() -> int:
    """Local worker processes when none are asked for: the CPU count, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def progress_bar(total: int, desc: str, unit: str = "run", initial: int = 0) -> tqdm | QuietBar:
    """A tqdm bar on a terminal; a silent `QuietBar` otherwise (tqdm, ~0.1 s to import, is then not imported)."""
    if not show_progress():
        return QuietBar(total=total, n=initial)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit)


@dataclass
class QuietBar:
    """The progress bar of a job off a terminal: counts what it is told (`n` of `total`) and shows nothing.

    Has the part of tqdm's interface the project uses (`update`, `set_postfix`, `close`, a
    context manager), so code that advances a bar need not know whether it is shown.
    """

    total: int
    n: int = 0

    def update(self, n: int = 1) -> None:
        """Count n more done."""
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> QuietBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (Ctrl-C, or the CLI's SIGTERM `Terminated`) behind `error`, if any.

    A signal's handler runs at the interpreter's next check, which can fall inside a call from
    native code: a numba-compiled kernel's dispatcher then returns with the handler's exception
    set, and Python reports a SystemError ("... returned a result with an exception set") whose
    `__cause__` is the interrupt. A handler of `Exception` that records a failed run would
    swallow the interrupt and the job would go on (seen in CI: a SIGTERM'd sweep finished with
    "1 of 24 runs failed" and exit 0). Whoever catches `Exception` around a run asks this first
    and raises what it returns.

    Follows `__cause__` and `__context__` (`exception_chain`).
    """
    return next((link for link in exception_chain(error) if isinstance(link, KeyboardInterrupt)), None)


def exception_chain(error: BaseException | None, limit: int = 16) -> Iterator[BaseException]:
    """`error`, then what it was raised from or during (`__cause__`, else `__context__`), and so on.

    At most `limit` exceptions, each once: a chain can loop (an exception re-raised in its own
    handler) and is untrusted here (it may come from a library's log record).
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen and len(seen) < limit:
        yield error
        seen.add(id(error))
        error = error.__cause__ or error.__context__


class InlineExecutor(Executor):
    """A `concurrent.futures.Executor` that runs each call in this process, when submitted.

    The serial backend: the same map drives it as the parallel ones. An exception of the
    call is stored in its future (raised by `result()`); KeyboardInterrupt propagates, also
    when it arrives wrapped in another error (`interrupt_behind`).
    """

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        """Call `fn(*args, **kwargs)` now and return a future already done with its result or exception."""
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - handed to the caller through the future
            if (interrupt := interrupt_behind(error)) is not None:
                raise interrupt from None
            future.set_exception(error)
        return future


def group_size(n_items: int, workers: int) -> int:
    """Items per task for `n_items` items on `workers` workers: 1 to `GROUP_MAX`, 1 for few items.

    The largest k <= GROUP_MAX that still leaves at least `WINDOW_PER_WORKER` (4) groups per
    worker, so that the window (`WINDOW_PER_WORKER` tasks per worker) stays full and a worker
    that finishes early finds another group to take (load balance). E.g. 2 workers: k = 1 up
    to 15 items, 4 for 32, 8 from 64 on.
    """
    return max(1, min(GROUP_MAX, n_items // (WINDOW_PER_WORKER * max(1, workers))))


def run_group(fn: Callable[[T], R], items: list[T]) -> list[R]:
    """`[fn(item) for item in items]`, in order: one task of a grouped map (module level: it pickles).

    Raises:
        Whatever `fn` raised; the group's earlier results are then lost with it.
    """
    return [fn(item) for item in items]


def map_unordered(
    executor: Executor,
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    window: int,
    bar: tqdm | QuietBar | None = None,
    group: int = 1,
) -> Iterator[tuple[int, R]]:
    """Call `fn(item)` for every item on `executor`; yield `(index, result)` as calls finish.

    Args:
        executor: any `concurrent.futures.Executor` (process pool, Dask `ClientExecutor`,
            `InlineExecutor`). `fn` and the items must pickle for out-of-process executors.
        fn: the call; a module-level function, or `functools.partial` of one.
        items: consumed lazily: at most `window` tasks (`window * group` items) are in
            flight at once.
        window: the largest number of tasks submitted and not yet yielded (>= 1).
        bar: a progress bar advanced once per item (`progress_bar`), or None.
        group: items per task (>= 1; the last task may hold fewer). A task of several items
            (`run_group`) calls `fn` on each in turn in one worker, and its results are
            yielded, and the bar advanced, together when it returns: a group interrupted
            (Ctrl-C, `close()`) is lost whole, and `--resume` runs all its items again.
            Results do not depend on it (each item's call is the same call).

    Yields:
        `(index, result)`: the item's position in `items` and what `fn` returned, one pair per
        item, in order of completion (use the index to order results).

    Raises:
        Whatever `fn` raised, when its task's result comes up; the tasks still pending are then
        cancelled (as when the caller stops iterating early). ValueError: window or group < 1.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if group < 1:
        raise ValueError(f"group must be >= 1, got {group}")
    numbered = enumerate(items)
    pending: dict[Future, list[int]] = {}
    try:
        while True:
            while len(pending) < window:
                batch = list(islice(numbered, group))
                if not batch:
                    break
                indices = [index for index, _ in batch]
                if group == 1:  # one item, one plain call: what a process pool or a serial run gets
                    pending[executor.submit(fn, batch[0][1])] = indices
                else:
                    pending[executor.submit(run_group, fn, [item for _, item in batch])] = indices
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                indices = pending.pop(future)
                results = future.result()
                for index, result in zip(indices, [results] if group == 1 else results, strict=True):
                    if bar is not None:
                        bar.update()
                    raise_pending()  # a Ctrl-C Python swallowed in a finalizer meanwhile (sim.interrupts)
                    yield index, result
    finally:
        for future in pending:
            future.cancel()


@dataclass
class Backend:
    """A ready executor (from `make_backend`) with what it is and how to close it.

    Use as a context manager, or call `close()`: it stops worker processes or a LocalCluster
    and disconnects from a scheduler (an external cluster keeps running).
    """

    executor: Executor
    kind: str  # "serial" | "processes" | "dask"
    workers: int  # worker processes (for Dask: workers connected when it started)
    address: str | None = None  # the Dask scheduler ("local" for a LocalCluster)
    client: Any = field(default=None, repr=False)  # the Dask `Client`, for Dask only
    _cluster: Any = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def label(self) -> str:
        """'serial', 'processes:4' or 'dask:<address>' (for manifests)."""
        if self.kind == "dask":
            return f"dask:{self.address}"
        return "serial" if self.kind == "serial" else f"processes:{self.workers}"

    @property
    def window(self) -> int:
        """Tasks in flight: 1 serially (each result is handed on as soon as it exists)."""
        return 1 if self.kind == "serial" else WINDOW_PER_WORKER * self.workers

    def group(self, n_items: int | None) -> int:
        """Items per task for a map of `n_items` items (None: not known): `group_size` on Dask, else 1.

        Only Dask groups: its ~10 ms a task is ~14% of a one-year run of ~70 ms, while a
        process pool's cost a task is far smaller, and a serial run hands each result on at once.
        """
        if self.kind != "dask" or n_items is None:
            return 1
        return group_size(n_items, self.workers)

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], bar: tqdm | QuietBar | None = None
    ) -> Iterator[tuple[int, R]]:
        """`map_unordered` on this backend with its window; on Dask, items in groups of `group(len(items))`.

        Items without a length (a generator) go one per task. A group in flight when the map
        is interrupted is lost whole (its runs are redone on `--resume`); see `map_unordered`.
        """
        n_items = len(items) if isinstance(items, Sized) else None
        return map_unordered(self.executor, fn, items, window=self.window, bar=bar, group=self.group(n_items))

    def close(self) -> None:
        """Cancel what has not started, stop workers and clusters; safe to call twice.

        Called normally, it lets the runs in flight finish. Called while an exception unwinds
        (Ctrl-C, SIGTERM, an error; e.g. from a `finally:` block or `with`), it stops the
        worker processes at once instead: their runs would not be recorded anyway.
        """
        if self._closed:
            return
        self._closed = True
        if self.kind == "dask":
            _quiet_dask_teardown(unwinding=sys.exc_info()[0] is not None)
            self.executor.shutdown(wait=False)  # cancels the futures still on the cluster
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()
        elif self.kind == "processes" and sys.exc_info()[0] is not None:
            _stop_workers(self.executor)
        else:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_DASK_LOGGERS = ("distributed", "tornado", "bokeh")  # the loggers of a Dask cluster and its event loop


def _quiet_dask_teardown(unwinding: bool) -> None:
    """Raise this process's Dask and Tornado log levels for good: a closing cluster is done talking.

    `silence_logs` quiets a LocalCluster only until it closes; while closing, and after
    `close()` returns, Dask's threads log each connection they drop ("Batched Comm Closed",
    INFO, with a traceback), which in a batch log reads as a failure of the job. After a
    signal or an error (`unwinding`) even their errors are about the teardown, not the runs
    (those are recorded, or not, by the caller). Called once per Dask backend, when it closes.
    """
    level = logging.CRITICAL if unwinding else logging.ERROR
    # Dask's logging config gives some children levels of their own ("tornado.application: error",
    # "distributed.client: warning"), which a parent's level does not override: after Ctrl-C a
    # future cancelled here was logged by tornado.application with a 20-line traceback.
    known = [name for name in logging.root.manager.loggerDict if name.split(".")[0] in _DASK_LOGGERS]
    for name in {*_DASK_LOGGERS, *known}:
        logging.getLogger(name).setLevel(level)
    _drop_closed_connections()  # a connection the closing itself ends is not an error of the job


def _drop_closed_connections() -> None:
    """Add one `DroppedCommFilter` to each handler of Dask's logger and the root logger, once."""
    dropped = DroppedCommFilter()
    for name in ("distributed", ""):  # Dask's own handler, and the root's if logging was configured
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, DroppedCommFilter) for f in handler.filters):
                handler.addFilter(dropped)


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """Shut a process pool down without waiting for the calls running in its workers.

    The workers ignore SIGTERM (`exit_with_driver`), so they are killed (SIGKILL). Every call
    not finished then fails with BrokenProcessPool, set by the pool's management thread. Before
    Python 3.12 that thread raises InvalidStateError (printed as a thread traceback, its clean-up
    left undone) on a future already cancelled, e.g. by `map_unordered` as the exception
    unwound (fixed in 3.12): a cancelled call still queued therefore gets a fresh future
    nobody waits on, and nothing is cancelled here (all calls fail with BrokenProcessPool).
    """
    kill = getattr(executor, "kill_workers", None)  # Python 3.14+
    if kill is not None:
        kill()
        return
    for item in list((getattr(executor, "_pending_work_items", None) or {}).values()):
        if item.future.cancelled():
            item.future = Future()
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False)
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=5)


def _connect(client_class, address: str, timeout_s: float):
    """A Dask Client connected to `address`, or ExecutorError within timeout + HANDSHAKE_GRACE_S.

    Dask's own timeout covers opening the connection but not the handshake, so a port that
    accepts and never answers (a dashboard, another service) would hang the command, and one
    that answers something else can fail with any error; the connection is therefore made on
    a helper thread and given a deadline, and every failure becomes one ExecutorError.
    """
    box: dict = {}

    def connect() -> None:
        try:
            box["client"] = client_class(address, timeout=f"{timeout_s}s")
        except BaseException as error:  # reported below, whatever the peer sent
            box["error"] = error

    thread = threading.Thread(target=connect, name="dask-connect", daemon=True)
    thread.start()
    thread.join(timeout_s + HANDSHAKE_GRACE_S)
    if thread.is_alive():
        raise ExecutorError(
            f"no Dask scheduler answered at {address} within {timeout_s + HANDSHAKE_GRACE_S:g} s "
            "(is it the scheduler's address, e.g. tcp://host:8786, and not its dashboard?)"
        )
    if "error" in box:
        error = box["error"]
        if isinstance(error, ValueError):  # Dask parses the address first: nothing was tried
            reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else "not an address"
            raise ExecutorError(
                f"--dask {address}: not a scheduler address ({reason}); give one such as tcp://host:8786"
            ) from None
        raise ExecutorError(
            f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s ({type(error).__name__})"
        ) from None
    return box["client"]


class DroppedCommFilter(logging.Filter):
    """Drop log records about a closed connection (Dask's CommClosedError, Tornado's StreamClosedError).

    Installed in the worker processes of a LocalCluster started here (`dask_setup`). Their
    scheduler lives in the driver, so a connection to it closes only when the driver closes
    the cluster; a worker whose heartbeat is in flight at that moment logs "Failed to
    communicate with scheduler during heartbeat." at ERROR, with two tracebacks, and in a
    batch log that reads as a failed job (seen in CI, rarely, under load). The runs' own
    errors reach the driver with their results, not through these logs, and every other
    record passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record whose exception, or one it was raised from, is a closed connection."""
        error = record.exc_info[1] if record.exc_info else None
        closed = ("CommClosedError", "StreamClosedError")
        return not any(type(link).__name__ in closed for link in exception_chain(error))


def dask_setup(worker=None) -> None:
    """Prepare a LocalCluster worker process as it starts (Dask calls this: `preload=["sim.executors"]`).

    Ctrl-C reaches every process of the terminal's group, these workers too, and each printed
    a KeyboardInterrupt traceback; the driver stops the cluster itself, so the workers ignore
    SIGINT. SIGTERM stays: it is how the nannies stop their workers. A closed connection to the
    scheduler is the driver closing the cluster, so its records are dropped (`DroppedCommFilter`)
    from every handler Dask logs through; the driver does the same when it closes a cluster.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _drop_closed_connections()


def _start_local_cluster(cluster_class, **options):
    """`cluster_class(**options)` (a LocalCluster), started on a helper thread; a Ctrl-C or SIGTERM meanwhile closes it.

    Interrupted in the main thread, a LocalCluster's constructor leaves its start running in
    Dask's event loop and no object to close: at exit Dask's `close_clusters` then met workers
    half-started and printed a 30-line AssertionError after the command's one line. Here the
    interrupt stops the wait, not the start: the start is let finish (at most `START_LIMIT_S`),
    the cluster closed, and the interrupt raised again. (The wait is on an Event: before Python
    3.13 a signal handler's exception inside `Thread.join` can mark a running thread stopped.)
    """
    box: dict = {}
    done = threading.Event()

    def start() -> None:
        try:
            box["cluster"] = cluster_class(**options)
        except BaseException as error:  # raised below, in the caller's thread
            box["error"] = error
        finally:
            done.set()

    threading.Thread(target=start, name="dask-local-cluster", daemon=True).start()
    try:
        while not done.wait(0.1):  # a wait with a timeout lets a signal's handler run in between
            pass
    except BaseException:
        _quiet_dask_teardown(unwinding=True)
        _finish_and_close(done, box)
        raise
    if "error" in box:
        raise box["error"]
    return box["cluster"]


START_LIMIT_S = 60.0  # an interrupted LocalCluster start is waited for this long, then closed


def _finish_and_close(done: threading.Event, box: dict) -> None:
    """Wait (up to START_LIMIT_S) for an interrupted start, then close the cluster; a second interrupt gives up."""
    try:
        done.wait(START_LIMIT_S)
    except BaseException:  # a second Ctrl-C: stop waiting; multiprocessing still ends the workers at exit
        return
    if "cluster" in box:
        _close_quietly(box["cluster"])


def _close_quietly(cluster) -> None:
    """Close a LocalCluster while an exception unwinds: what fails in closing is not the command's error."""
    _quiet_dask_teardown(unwinding=True)
    try:
        cluster.close()
    except Exception:  # noqa: BLE001, S110 - the command's own exception is the one to report
        pass


def _dask_backend(address: str, workers: int, connect_timeout_s: float, retries: int) -> Backend:
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ExecutorError("Dask is not installed: pip install 'dask[distributed]'") from error
    cluster = None
    if address == "local":
        cluster = _start_local_cluster(
            LocalCluster,
            n_workers=workers,
            threads_per_worker=1,  # one model per process: the models are CPU-bound Python
            processes=True,
            dashboard_address=":0",  # any free port: never clash with another cluster
            silence_logs=logging.ERROR,  # no shutdown chatter in batch logs
            preload=[__name__],  # dask_setup in each worker process (preload_nanny would run here)
        )
        try:
            client = Client(cluster)
        except BaseException:
            _close_quietly(cluster)
            raise
    else:
        client = _connect(Client, address, connect_timeout_s)
        if not client.scheduler_info().get("workers"):
            try:  # runs submitted to a scheduler without workers would wait forever
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except (TimeoutError, OSError):
                client.close()
                raise ExecutorError(
                    f"the Dask scheduler at {address} has no workers (waited {WORKER_WAIT_S:g} s); "
                    f"start some with `dask worker {address}`"
                ) from None
    n_workers = max(1, len(client.scheduler_info().get("workers", {})) or workers)
    # pure=False: two calls with equal arguments are two runs, not one cached result.
    executor = client.get_executor(pure=False, retries=retries)
    return Backend(executor, "dask", n_workers, address, client=client, _cluster=cluster)


def make_backend(
    workers: int = 1,
    dask: str | None = None,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    retries: int = DASK_RETRIES,
) -> Backend:
    """The backend for `--workers N [--dask ADDRESS]`; connect or start workers now.

    Args:
        workers: local worker processes (>= 1; 1 means serial, in this process), or the
            number of LocalCluster workers with `dask="local"`.
        dask: None (local), "local" (start a Dask LocalCluster) or a scheduler address
            such as "tcp://host:8786".
        connect_timeout_s: how long to try to reach a scheduler before giving up.
        retries: how many times Dask re-runs a call whose worker died or that raised.

    Returns:
        A `Backend`; close it (or use `with`) when done.

    Raises:
        ExecutorError: Dask is not installed, or the scheduler cannot be reached in time.
    """
    workers = max(1, int(workers))
    if dask:
        return _dask_backend(dask, workers, connect_timeout_s, retries)
    if workers == 1:
        return Backend(InlineExecutor(), "serial", 1)
    context = process_context()
    if context.get_start_method() == "forkserver":
        _start_forkserver_deaf_to_signals()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=exit_with_driver,  # no worker outlives this process
        initargs=(os.getpid(),),
    )
    return Backend(pool, "processes", workers)
