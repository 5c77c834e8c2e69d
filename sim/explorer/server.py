"""Start the explorer's Solara server on localhost and print its address.

    from sim.explorer import serve
    serve("baseline", port=8765)        # blocks until Ctrl-C; returns an exit status

The server is `solara run sim.explorer.app:Page` in a child process (production mode, no
auto-reload), bound to 127.0.0.1; the scenario it opens with and the directory it saves
to are passed in environment variables (`SIM_EXPLORER_SCENARIO`, `SIM_EXPLORER_OUT`).

The child dies with the command that started it: it runs as `python -m sim.explorer.server
DRIVER_PID solara ...`, which ends it as soon as that process ends, however it ends (kill -9
of `run.py explore` left the server running, holding its port; `sim.executors.end_with`, as
the pool workers are watched). It has a process group of its own, so a Ctrl-C at the terminal
reaches the command alone, which stops the server (SIGTERM) and exits with status 0: Ctrl-C is
how the explorer is stopped (the server's own "Aborted!" no longer interleaves with it). A
SIGTERM to the command (`kill`, `timeout`, a batch scheduler) stops the server too, and the
command ends as a terminated one does: one line, exit status 143 (`sim.interrupts.EXIT_TERMINATED`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import solara  # noqa: F401  - fail here (ImportError) when the ui extra is not installed

from sim.explorer.core import DEFAULT_SCENARIO, ENV_OUT, ENV_SCENARIO, load_explorable
from sim.interrupts import EXIT_TERMINATED, Terminated

APP = "sim.explorer.app:Page"
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0


def free_port(host: str = HOST) -> int:
    """A TCP port on `host` that the system reports free now (another process may take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on the port (with SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_on_signals() -> dict | None:
    """Turn SIGINT into KeyboardInterrupt and SIGTERM into `sim.interrupts.Terminated`, the first one only.

    The first the interpreter handles decides how the command ends (0 after Ctrl-C, 143 after
    SIGTERM); later ones are ignored while the server is stopped (a SIGTERM followed by a
    Ctrl-C, as `timeout` and a user may send, ended the command with 0 as if only Ctrl-C had
    come). Two that arrive together are handled in signal-number order, SIGINT first. The
    handler stays in place and returns for the later ones: setting SIG_IGN from it made Python
    raise "Signal 15 ignored due to race condition" for one already pending. Returns the
    previous handlers (for `_restore`), or None outside the main thread, where signals are
    left alone.
    """
    first: list[int] = []

    def handler(signum, frame):
        if first:  # stopping already: the first signal decided
            return
        first.append(signum)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    try:
        return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        return None


def _restore(previous: dict | None) -> None:
    """Put back the handlers `_stop_on_signals` replaced."""
    for signum, old in (previous or {}).items():
        signal.signal(signum, old if old is not None else signal.SIG_DFL)


class _Relay:
    """Copies a child's error output to this process's stderr, held back until `release`.

    A thread reads the pipe (so the child never blocks on it) and keeps the lines; `release`
    writes what it kept and then every line as it comes; lines never released are dropped.
    """

    def __init__(self, stream) -> None:
        self._lock = threading.Lock()
        self._held: list[bytes] = []
        self._released = False
        self._thread = threading.Thread(target=self._copy, args=(stream,), name="explorer-stderr", daemon=True)
        self._thread.start()

    def _copy(self, stream) -> None:
        with stream:
            for line in iter(stream.readline, b""):
                with self._lock:
                    if self._released:
                        self._write(line)
                    else:
                        self._held.append(line)

    @staticmethod
    def _write(line: bytes) -> None:
        try:
            sys.stderr.write(line.decode(errors="replace"))
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed: nothing to tell
            pass

    def release(self) -> None:
        """Write the lines kept so far, and from now on each line as it comes."""
        with self._lock:
            for line in self._held:
                self._write(line)
            self._held.clear()
            self._released = True

    def finish(self, timeout: float = 2.0) -> None:
        """Wait (a little) for the child's last lines, once it has ended."""
        self._thread.join(timeout)


def _wait(process: subprocess.Popen) -> int:
    """The process's exit status, waiting in short spells.

    A signal may be delivered to another of this process's threads (numpy's BLAS, pyarrow's);
    its Python handler runs only when the main thread runs Python again, which a blocking
    waitpid never does: two signals sent back to back left the command and its server running.
    """
    while True:
        try:
            return process.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            continue


def server_command(port: int, host: str = HOST, driver_pid: int | None = None) -> list[str]:
    """The command running the explorer's server in a child process that ends with `driver_pid` (default: this one)."""
    return [
        sys.executable,
        "-m",
        "sim.explorer.server",
        str(os.getpid() if driver_pid is None else int(driver_pid)),
        "run",
        APP,
        "--host",
        host,
        "--port",
        str(port),
        "--production",
        "--no-open",
        "--log-level",
        "warning",
    ]


def server_env(scenario: str | None = None, out_dir: str | Path | None = None) -> dict[str, str]:
    """The environment of the server's child process: this one's, plus what the page reads.

    Sets the scenario the page opens with (ENV_SCENARIO, default baseline) and, if given, the
    output directory (ENV_OUT); turns Solara's telemetry off and Matplotlib's backend to Agg
    unless already set, and silences Solara's SameSite cookie warning on localhost.
    """
    env = dict(os.environ)
    env[ENV_SCENARIO] = str(scenario or DEFAULT_SCENARIO)
    if out_dir is not None:
        env[ENV_OUT] = str(out_dir)
    env.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")  # no calls home from a research tool
    env.setdefault("MPLBACKEND", "Agg")
    # Solara warns on every page load over http://127.0.0.1 that it falls back to SameSite=lax
    # cookies; that is what a localhost server wants, so the warning is noise here.
    quiet = "ignore:Cookies with samesite=none require https"
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), quiet]))
    return env


def _ended(returncode: int) -> str:
    """'stopped (killed by SIGKILL)' for a child ended by a signal (a negative status), else 'exited with status N'."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"stopped (killed by {name})"


class PortTaken(RuntimeError):
    """The server could not listen: another process answers on its port (it took it after `port_is_free`)."""


def listens_on(process: subprocess.Popen | int, port: int) -> bool | None:
    """Whether the process (or one of its children) has a TCP socket listening on `port`; None if it cannot be told.

    Read with psutil (a dependency of Dask's distributed, declared in pyproject.toml): False
    once the process has ended; None where the system does not show its sockets.
    """
    import psutil

    pid = process if isinstance(process, int) else process.pid
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            sockets = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
            if any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port for s in sockets):
                return True
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except (psutil.AccessDenied, NotImplementedError):
        return None
    return False


def _answers(url: str) -> bool:
    """Whether an HTTP server answers `url` with status 200."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_until_up(url: str, process: subprocess.Popen | None = None, timeout: float = START_TIMEOUT_S) -> None:
    """Return when `url` answers, from `process` when given; raise RuntimeError if it exits or time runs out.

    With a process, an answer counts only once the process listens on the url's port
    (`listens_on`): another explorer started at the same moment on the same port passes
    `port_is_free` too, and its page would otherwise be taken for this one's. Raises
    `PortTaken` (a RuntimeError) when the process exits while another server answers there.
    """
    port = urllib.parse.urlsplit(url).port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            if port is not None and _answers(url):
                raise PortTaken(f"port {port} is in use by another server; choose another or leave --port out")
            raise RuntimeError(f"the explorer's server {_ended(process.returncode)}")
        if _answers(url) and (process is None or port is None or listens_on(process, port) is not False):
            return
        time.sleep(0.25)
    raise RuntimeError(f"the explorer's server did not answer at {url} within {timeout:.0f} s")


def serve(
    scenario: str | None = None,
    port: int | None = None,
    open_browser: bool = False,
    host: str = HOST,
    out_dir: str | Path | None = None,
) -> int:
    """Run the explorer on http://host:port/ until interrupted; return an exit status (0 on Ctrl-C, 143 on SIGTERM).

    The scenario (a name in `scenarios/` or a path) is validated first: a bad one raises
    ScenarioError (the command line reports it, exit status 2) before any server starts.
    `port=None` picks a free port. Saved scenarios and exported data go to `out_dir`
    (default `results/explorer/` under the working directory).
    """
    scenario = str(scenario or DEFAULT_SCENARIO)
    load_explorable(scenario)
    if port:
        port = int(port)
        if not 0 < port <= 65535:  # TCP ports; bind() would raise OverflowError
            print(f"error: port {port} is not a TCP port (1..65535, or 0 for a free one)", file=sys.stderr)
            return 2
        if not port_is_free(port, host):
            print(f"error: port {port} on {host} is in use; choose another or leave --port out", file=sys.stderr)
            return 2
    else:
        port = free_port(host)
    url = f"http://{host}:{port}/"
    # A process group of its own: the terminal's Ctrl-C is this command's to handle (it stops the server).
    # Its output: Solara's banner ("starting at <url>", printed before it listens) dropped, its
    # error output held until the server is up (`_Relay`): the loser of a race for the port
    # says one line, not uvicorn's bind error too.
    process = subprocess.Popen(
        server_command(port, host), env=server_env(scenario, out_dir), process_group=0,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    relay = _Relay(process.stderr)
    previous = _stop_on_signals()
    try:
        wait_until_up(url, process)
        relay.release()
        print(f"explorer: {url}  (scenario {scenario}; Ctrl-C to stop)", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        status = _wait(process)
        if status < 0:  # killed by a signal: say so, and exit 1 (sys.exit(-9) would give a bare 247)
            print(f"error: the explorer's server {_ended(status)}", file=sys.stderr)
            return 1
        return status
    except KeyboardInterrupt as interrupt:  # Ctrl-C is how the explorer is stopped: handled (sim.interrupts)
        from sim import interrupts

        interrupts.forget()
        if isinstance(interrupt, Terminated):  # stopped from outside: say so, and end as a terminated command
            print("terminated (SIGTERM); the explorer's server is stopped", file=sys.stderr)
            return EXIT_TERMINATED
        return 0
    except PortTaken as error:  # as when the port was in use before: the same status
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # what the server said first: why it did not start
        relay.release()
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        relay.finish()
        _restore(previous)  # after the server is stopped: a second signal meanwhile is ignored


def _server_process(argv: list[str]) -> None:
    """`python -m sim.explorer.server DRIVER_PID SOLARA_ARGS...`: Solara's command line, ending when the driver does."""
    from sim.executors import end_with

    end_with(int(argv[0]))
    sys.argv = ["solara", *argv[1:]]
    from solara.__main__ import main

    main()


if __name__ == "__main__":
    _server_process(sys.argv[1:])
