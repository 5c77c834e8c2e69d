"""Compiled kernels of the day's inner loops (numba), bit for bit what numpy and scipy compute.

A process whose work is a chain of many small numpy calls spends most of its time in the
calls themselves (a few microseconds each, about 220 a day before this module); a kernel does
the same arithmetic in one call. Kernels are compiled on first use and kept on disk, so only
the first run on a machine (and the first after the source changes, or in a new checkout)
pays the compile time, about 15 s; `benchmarks/bench_model.py` reports it separately.

Where they are kept (`cache_directory`): `$NUMBA_CACHE_DIR/<version>` if that variable is
set, else `$XDG_CACHE_HOME/faction-sim/numba/<version>` (`~/.cache/...`), else
`faction-sim-numba-<uid>/<version>` in Python's temporary directory (`tempfile.gettempdir()`:
$TMPDIR, /tmp, /var/tmp, ...); the first of these that can be written. numba files each
kernel under its source file's path, so a new checkout compiles its own. <version> is a hash
of the text of every module that defines kernels (`KERNEL_SOURCES`): numba checks only the
file a kernel is written in, so a kernel that calls `numpy_sum` here would otherwise keep
running its old machine code after this file changed. With no writable place at all the
kernels are compiled in every process (a one-line warning says so).

Rules every kernel here follows, so that the regression pin (tests/regression/pinned.json)
stays the same and a seed gives the same run with or without compiled code paths:

- the same operations in the same order as the numpy/scipy code it stands for (floating-point
  addition is not associative): scipy's symmetric correlation adds the outermost taps first;
  a reduction over a faction axis adds faction 0, then 1, ...; `np.sum` over a contiguous row
  of 8 or more values adds pairwise (numpy's `pairwise_sum`), so kernels take such sums from
  numpy rather than loop over them;
- no fast-math (no fused multiply-add, no reassociation): `error_model="numpy"` also keeps
  numpy's behaviour for a division by zero (inf or nan, no exception);
- random numbers are drawn outside, by the model's own generators, and passed in.

Each kernel is tested against the plain numpy/scipy computation on many random inputs and
on models in the middle of a run (tests/test_fast_paths.py).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
from numba import njit

PACKAGE = Path(__file__).resolve().parent
# Every module that defines kernels (a test checks that no other module does).
KERNEL_SOURCES = ("compiled.py", "world.py", "recording.py", "processes/*.py")


def source_version() -> str:
    """12 hex digits of a SHA-256 over the path and text of each module in `KERNEL_SOURCES`."""
    digest = hashlib.sha256()
    for pattern in KERNEL_SOURCES:
        for path in sorted(PACKAGE.glob(pattern)):
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def cache_directory() -> Path | None:
    """The writable directory this version's kernels are cached in (see the module docstring), or None."""
    version = source_version()
    bases = [Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get("NUMBA_CACHE_DIR") else []
    try:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        bases.append(home / "faction-sim" / "numba")
    except (RuntimeError, KeyError):  # no home directory to be found
        pass
    user_id = os.getuid() if hasattr(os, "getuid") else "user"
    try:
        bases.append(Path(tempfile.gettempdir()) / f"faction-sim-numba-{user_id}")
    except OSError:  # no usable temporary directory either (tempfile raises FileNotFoundError)
        pass
    for base in bases:
        path = base / version
        try:
            path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()  # writable, not merely present
        except OSError:
            continue
        return path
    return None


CACHE = cache_directory()
if CACHE is not None:
    numba.config.CACHE_DIR = str(CACHE)  # read when each kernel below is defined, before any is compiled
else:  # one line on stderr (a warnings.warn would add a second, with the importing line)
    print(
        "faction-sim: warning: no writable directory for compiled kernels (tried NUMBA_CACHE_DIR, the user's "
        "cache directory and the temporary directory); they are compiled again in every process (about 15 s)",
        file=sys.stderr,
    )


def kernel(function):
    """Compile `function` with numba for the model's step (cached per source version, numpy's float rules)."""
    return njit(cache=CACHE is not None, error_model="numpy", boundscheck=False, nogil=True)(function)


@kernel
def _pairwise_block(x, lo, n):  # pragma: no cover - compiled
    # numpy's pairwise_sum (numpy/_core/src/umath/loops_utils.h.src) for n <= 128 values of
    # x[lo:lo + n]: fewer than 8 one by one; else 8 running sums combined as a tree.
    if n < 8:
        total = -0.0
        for i in range(lo, lo + n):
            total += x[i]
        return total
    r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
    r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += x[lo + i]
        r1 += x[lo + i + 1]
        r2 += x[lo + i + 2]
        r3 += x[lo + i + 3]
        r4 += x[lo + i + 4]
        r5 += x[lo + i + 5]
        r6 += x[lo + i + 6]
        r7 += x[lo + i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += x[lo + i]
        i += 1
    return total


@kernel
def numpy_sum(x):  # pragma: no cover - compiled
    """`np.sum` of a 1-D float64 array, bit for bit: 0.0 plus numpy's pairwise sum of its values.

    Above 128 values numpy splits the range in two (the first half a multiple of 8 long), sums
    each half the same way and adds the two; done here with a stack of ranges (numba cannot
    cache a recursive function called from other modules' kernels).
    """
    task_lo = np.empty(256, dtype=np.int64)
    task_n = np.empty(256, dtype=np.int64)  # -1: add the last two sums
    sums = np.empty(256)
    n_tasks, n_sums = 1, 0
    task_lo[0], task_n[0] = 0, len(x)
    while n_tasks:
        n_tasks -= 1
        lo, n = task_lo[n_tasks], task_n[n_tasks]
        if n < 0:
            n_sums -= 1
            sums[n_sums - 1] = sums[n_sums - 1] + sums[n_sums]
        elif n <= 128:
            sums[n_sums] = _pairwise_block(x, lo, n)
            n_sums += 1
        else:
            half = n // 2
            half -= half % 8
            task_lo[n_tasks], task_n[n_tasks] = 0, -1  # then add them,
            task_lo[n_tasks + 1], task_n[n_tasks + 1] = lo + half, n - half  # the second half,
            task_lo[n_tasks + 2], task_n[n_tasks + 2] = lo, half  # the first half first
            n_tasks += 3
    return 0.0 + sums[0]
