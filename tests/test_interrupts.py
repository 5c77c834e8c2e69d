"""Interrupts Python swallowed in a finalizer are raised again at the next safe point (`sim.interrupts`).

A signal handler that runs inside a `__del__` or a garbage-collection callback cannot stop the
program: Python prints "Exception ignored in ..." and goes on. The command line notes each
interrupt its handlers raise; the map over runs, a single run's steps and every figure
written raise a noted interrupt that never arrived. Each case runs the command in its own
process (signal handlers are process-wide), with a finalizer that sends SIGTERM and keeps
running so that the handler runs inside it.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from helpers import PROJECT, SCENARIOS

from sim import interrupts

TOY = str(SCENARIOS / "toy_two_towns.yaml")

# A finalizer whose SIGTERM handler runs inside it (the loop's backward jumps let Python run
# the handler there), as one in a garbage-collection callback would.
TRAP = """
import signal, sys
import sim.runner, sim.api, sim.figures

class Trap:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)
        for _ in range(100000):
            pass

def spring():
    trap = Trap()
    del trap
"""


def run_script(body: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", TRAP + body], cwd=PROJECT, capture_output=True, text=True, timeout=300
    )


def test_noted_interrupts_are_raised_once_at_a_safe_point_and_forgotten_when_they_arrive():
    interrupts.forget()
    interrupts.raise_pending()  # nothing noted: nothing raised
    first = interrupts.note(KeyboardInterrupt())
    assert interrupts.pending() is first
    with pytest.raises(KeyboardInterrupt) as raised:
        interrupts.raise_pending()
    assert raised.value is first and interrupts.pending() is None
    interrupts.raise_pending()  # raised once only
    interrupts.note(KeyboardInterrupt())
    elsewhere = []
    worker = threading.Thread(target=lambda: elsewhere.append(interrupts.raise_pending()))
    worker.start()
    worker.join()
    assert elsewhere == [None] and interrupts.pending() is not None  # left to the main thread
    interrupts.forget()
    assert interrupts.pending() is None


def test_an_interrupt_swallowed_between_runs_stops_the_command_at_the_next_run(tmp_path):
    out = tmp_path / "run"
    done = run_script(f"""
real = sim.runner.run_model
def run_model(*args, **kwargs):
    result = real(*args, **kwargs)
    spring()
    return result
sim.runner.run_model = run_model
from sim.cli import main
sys.exit(main(["run", {TOY!r}, "--replicates", "3", "--workers", "1", "--steps", "5", "--no-plots",
               "--out", {str(out)!r}]))
""")
    assert done.returncode == 143, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # no "Exception ignored in ..." report
    assert done.stderr.startswith("terminated (SIGTERM)")
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_an_interrupt_swallowed_during_one_run_stops_it_at_the_next_step(tmp_path):
    out = tmp_path / "run"
    done = run_script(f"""
steps = []
real_step = sim.engine.Engine.step
def step(self):
    real_step(self)
    steps.append(1)
    if len(steps) == 3:
        spring()
import sim.engine
sim.engine.Engine.step = step
from sim.cli import main
status = main(["run", {TOY!r}, "--steps", "50", "--no-plots", "--out", {str(out)!r}])
print(len(steps))
sys.exit(status)
""")
    assert done.returncode == 143, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout.strip() == "3"  # stopped right after the step it was swallowed in
    assert not out.exists() or not any(out.iterdir())


def test_an_interrupt_swallowed_while_plots_are_drawn_stops_at_the_next_figure(tmp_path):
    out = tmp_path / "run"
    done = run_script(f"""
real = sim.figures.save_png
drawn = []
def save_png(fig, path, *args, **kwargs):
    if not drawn:
        spring()
    drawn.append(path)
    return real(fig, path, *args, **kwargs)
sim.figures.save_png = save_png
import sim.plots
for name in dir(sim.plots):
    if getattr(sim.plots, name) is real:
        setattr(sim.plots, name, save_png)
from sim.cli import main
status = main(["run", {TOY!r}, "--steps", "5", "--out", {str(out)!r}])
print(len(drawn))
sys.exit(status)
""")
    assert done.returncode == 143, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout.strip() == "1"  # the first figure, then stopped
    assert not out.exists() or not any(out.iterdir())  # the run's directory is staged: all or nothing


def test_an_interrupt_swallowed_after_the_last_safe_point_is_reported_with_the_output_complete(tmp_path):
    out = tmp_path / "run"
    done = run_script(f"""
real = sim.api.Simulation.save
def save(self, *args, **kwargs):
    path = real(self, *args, **kwargs)
    spring()
    return path
sim.api.Simulation.save = save
from sim.cli import main
sys.exit(main(["run", {TOY!r}, "--steps", "5", "--no-plots", "--out", {str(out)!r}]))
""")
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip() == "terminated (SIGTERM) as the command ended; its output is complete"
    assert (out / "manifest.json").is_file()


def test_a_handled_interrupt_is_not_reported_again_and_signal_handlers_are_put_back(tmp_path):
    """A command that handles Ctrl-C itself (the explorer returns 0) ends as it says; main() restores
    SIGINT's and SIGTERM's handlers and Python's unraisable hook, and notes nothing outside itself.
    Other exceptions Python swallows are still reported."""
    done = run_script("""
from sim import interrupts
import sim.cli
before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook)
class Broken:
    def __del__(self):
        raise ValueError("a finalizer's own error")
def other(args):
    broken = Broken()
    del broken
    return 0
sim.cli.COMMANDS["validate"] = other
assert sim.cli.main(["validate", "baseline"]) == 0
def handled(args):
    try:
        signal.raise_signal(signal.SIGINT)
        for _ in range(100000):
            pass
    except KeyboardInterrupt:
        interrupts.forget()
    return 0
sim.cli.COMMANDS["list"] = handled
status = sim.cli.main(["list"])
after = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook)
print(status, before == after, interrupts.pending())
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "True", "None"]
    assert "a finalizer's own error" in done.stderr  # reported as Python reports it


def test_a_signal_while_python_shuts_down_after_the_command_keeps_its_status(tmp_path):
    """Seen by a fresh-user check: in the second after run.py printed its result, Python shutting
    down, a SIGTERM killed the process silently (status -15) though the output was complete."""
    out = tmp_path / "run"
    script = f"""
import atexit, os, signal, sys, time
sys.argv = ["run.py", "run", {TOY!r}, "--steps", "3", "--no-plots", "--out", {str(out)!r}]
atexit.register(lambda: time.sleep(30))  # a slow shutdown: the window, stretched
atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))  # runs first (last registered)
import runpy
runpy.run_path("run.py", run_name="__main__")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.strip() == str(out) and done.stderr == ""
    assert (out / "manifest.json").is_file()


def test_run_py_does_what_pythons_exit_does_and_skips_the_teardown(tmp_path):
    """`sim.cli.finish`: threads that are not daemons finish first, then the atexit callbacks run
    (in Python's order), buffered output is flushed and the command's status kept; the modules
    are not torn down (an object freed only then is never finalized: LLVM's teardown skipped)."""
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    script = f"""
import atexit, pathlib, sys, threading, time
marks = pathlib.Path({str(marks)!r})
sys.argv = ["run.py", "run", {TOY!r}, "--steps", "3", "--no-plots", "--out", {str(out)!r}]
def late():
    time.sleep(1.0)
    (marks / "thread").write_text("done")
threading.Thread(target=late).start()
atexit.register(lambda: (marks / "atexit").write_text(str(sum(not t.daemon for t in threading.enumerate()))))
class Probe:
    def __del__(self):
        (marks / "teardown").write_text("ran")
sys.modules["probe_freed_at_teardown"] = Probe()
sys.stdout.write("buffered ")  # a pipe: block-buffered, written only when flushed
import runpy
runpy.run_path("run.py", run_name="__main__")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.split() == ["buffered", str(out)] and done.stderr == ""
    assert (marks / "thread").read_text() == "done"  # joined before the atexit callbacks ...
    assert (marks / "atexit").read_text() == "1"  # ... which saw no thread but the main one left
    assert not (marks / "teardown").exists()
    assert (out / "manifest.json").is_file()

    failed = subprocess.run(
        [sys.executable, "run.py", "run", str(tmp_path / "missing.yaml")], cwd=PROJECT, capture_output=True, text=True
    )
    assert failed.returncode == 2 and failed.stdout == "" and len(failed.stderr.splitlines()) == 1


def test_output_run_py_cannot_flush_as_it_ends_is_not_lost_in_silence(tmp_path):
    """`finish` ends with os._exit: stdout left buffered (a file or a pipe) that could not be
    written on a full disk was lost with status 0 and nothing said (Python's exit says so, 120)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # block-buffered, as for most users
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "run.py", "list"], cwd=PROJECT, stdout=full, stderr=subprocess.PIPE, text=True, env=env
        )
    assert done.returncode == 2 and done.stderr == "error: cannot write stdout: No space left on device\n"
    gone = subprocess.run(  # the reader gone away: as a command killed by SIGPIPE, quietly
        f"{sys.executable} run.py list | true; echo ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", cwd=PROJECT, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert gone.stdout.strip() == "141" and gone.stderr == ""
