"""Interrupts Python swallowed: the command line's Ctrl-C or SIGTERM, raised again at a safe point.

A signal's Python handler runs at the interpreter's next check, wherever that is. When it
falls inside a finalizer or a garbage-collection callback (a `__del__`, a weakref callback:
seen while a sweep drew its plots, and as a process pool started), the handler's
KeyboardInterrupt cannot propagate: Python prints "Exception ignored in ..." and goes on, and
the command would run to its end and exit 0 as if never interrupted.

So the command line's handlers (`sim.cli.main`, for SIGINT and SIGTERM) note each interrupt
here before raising it (`note`). An interrupt that reaches the command's handler is
`forget`-ten; one still noted at a safe point (`raise_pending`: after each run of a map, each
step of a single run, each figure written) was swallowed, and is raised there again: the
command stops as on any Ctrl-C, one line, exit 130 or 143 (Python's own report of the
swallowed exception is left out: `quiet_unraisable`). Nothing is noted outside
`sim.cli.main` (a notebook's, or a test's, own handlers never note), so library use is
unaffected.
"""

from __future__ import annotations

import threading

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM (the shell's convention)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a command stops as on Ctrl-C.

    Every `finally` runs (files closed, worker processes stopped, staging directories removed,
    claims released), manifests say "interrupted", and finished runs are kept. Raised by the
    command line's handler (`sim.cli`) and by the explorer's (`sim.explorer.server`).
    """


_NOTED: list[KeyboardInterrupt] = []  # the interrupts raised by the CLI's handlers and not seen arriving


def note(interrupt: KeyboardInterrupt) -> KeyboardInterrupt:
    """Remember `interrupt` (about to be raised by a signal handler) and return it."""
    _NOTED.append(interrupt)
    return interrupt


def forget() -> None:
    """The interrupt arrived where it is handled (or the command ended): nothing is pending."""
    _NOTED.clear()


def pending() -> KeyboardInterrupt | None:
    """The first interrupt noted and not forgotten, if any."""
    return _NOTED[0] if _NOTED else None


def quiet_unraisable(previous):
    """A `sys.unraisablehook` that skips the noted interrupts (they are raised again) and passes the rest to `previous`.

    Python prints a swallowed exception with its traceback ("Exception ignored in ..."); for a
    noted interrupt the command's one line says what happened instead.
    """

    def hook(unraisable) -> None:
        if any(unraisable.exc_value is noted for noted in _NOTED):
            return
        previous(unraisable)

    return hook


def raise_pending() -> None:
    """Raise a noted interrupt that never arrived (swallowed in a finalizer); nothing otherwise.

    Called at safe points in the main thread, in normal flow (not while an exception unwinds:
    that one, if it is the interrupt, arrives by itself). Other threads leave it to the main one.
    """
    if _NOTED and threading.current_thread() is threading.main_thread():
        interrupt = _NOTED[0]
        _NOTED.clear()
        raise interrupt
