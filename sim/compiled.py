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
- random numbers come from the model's own generators: drawn outside and passed in, or drawn
  inside with numba's ports of numpy's methods through `generator_at`, which give numpy's
  values in numpy's order;
- exponentials, logarithms and powers come from the C library (`exp`, `log`, `power` below,
  and `math` inside kernels), never from numpy's ufuncs, and matrix products are written out:
  numpy has its own SIMD exp and log (and Intel's SVML for power, trigonometry and more) on
  CPUs with AVX-512 only, and BLAS picks its kernels by CPU, so the same seed gave the same run
  only to within a few units in the last place from one CPU to another. glibc's functions
  (2.28 and later) give the same bits on every x86-64 CPU with FMA and AVX2 (Intel since 2013,
  AMD since 2015), the variant glibc picks on those CPUs. SVML is switched off for numba
  (`NUMBA_DISABLE_INTEL_SVML`) for the same reason.

Each kernel is tested against the plain numpy/scipy computation on many random inputs and
on models in the middle of a run (tests/test_fast_paths.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import pickle
import sys
import tempfile
import threading
from pathlib import Path

# Before numba is imported: its loops over math.exp & co. would call Intel's SVML where it is
# installed (conda's icc_rt), whose results depend on the CPU (see the module docstring).
os.environ["NUMBA_DISABLE_INTEL_SVML"] = "1"

import numba  # noqa: E402 - after the setting above
import numpy as np
from numba import njit, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.core.caching import FunctionCache  # noqa: E402
from numba.extending import intrinsic, overload  # noqa: E402
from numba.np.random.generator_core import _bit_gen_type  # noqa: E402

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


class _SelfHealingCache(FunctionCache):
    """numba's on-disk cache of one kernel, which compiles the kernel again when its files are damaged.

    numba unpickles a kernel's index (`.nbi`) and data (`.nbc`) files as they are: one cut short
    (a full disk, a killed copy) raised `UnpicklingError` from every run, with no hint of the
    cache, and one garbled inside its machine code crashed the process (a segmentation fault,
    an illegal instruction) as it was loaded. So each data file is written with a SHA-256 of
    its content ahead of it (`_SIGNED`) and is loaded only if it matches. A cached kernel is
    only a shortcut to the machine code compiling gives again, so a file that cannot be loaded,
    whatever the error, is dropped: its index is removed (so the fresh compilation is written
    under a new index, over the damaged data file) and the kernel is compiled as on a first
    run. One line on stderr says so, once per process. A cache that cannot be written (a full
    disk, a directory where a file should be) is said once too, and the kernel runs uncached.
    """

    def __init__(self, py_func):
        super().__init__(py_func)
        files = self._cache_file  # numba's IndexDataCacheFile: its data files are signed here

        def save_data(name, data):
            payload = files._dump(data)
            with files._open_for_write(files._data_path(name)) as handle:
                handle.write(_SIGNED + hashlib.sha256(payload).digest() + payload)

        def load_data(name):
            with open(files._data_path(name), "rb") as handle:
                raw = handle.read()
            head = len(_SIGNED)
            payload = raw[head + 32 :]
            if raw[:head] != _SIGNED or hashlib.sha256(payload).digest() != raw[head : head + 32]:
                raise _DamagedKernel("the file differs from its checksum")
            return pickle.loads(payload)

        files._save_data, files._load_data = save_data, load_data

    def load_overload(self, sig, target_context):
        _load_arraymath_without_blas_check()
        try:
            return super().load_overload(sig, target_context)
        except Exception as error:  # noqa: BLE001 - any damage: compile again (see the class docstring)
            _say_recompiled(self._py_func, self.cache_path, error)
            with contextlib.suppress(OSError):  # unremovable: save_overload below then skips the cache
                os.unlink(self._cache_file._index_path)
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception as error:  # noqa: BLE001 - a full disk, a damaged index that could not be removed: uncached
            _say_recompiled(self._py_func, self.cache_path, error, written=False)


def _load_arraymath_without_blas_check() -> None:
    """Import numba's `numba.np.arraymath` without its import of `scipy.linalg`, where that saves it.

    As `numba.np.arraymath` loads (at the first kernel a process loads), numba's
    `numba.np.linalg.ensure_blas` imports `scipy.linalg.cython_blas`, only to learn whether BLAS
    is there (`arraymath._HAVE_BLAS`, which decides how numba's `np.convolve` and `np.correlate`
    take inner products). Importing `scipy.linalg` costs about 0.1 s (scipy's array-API layer
    touches every numpy submodule), a tenth of a one-year run on the command line (issue 13),
    and no kernel here calls BLAS. So while arraymath loads, numba's `ensure_blas` is
    `_blas_installed`, which answers the same question from the files scipy installed, and
    runs numba's integer-width guard, without importing scipy.linalg; then numba's own is put
    back. numba's answer, and so every numba function of this process, is what it would
    have been (tests/test_startup.py); `sys.modules` is never touched, so no other thread can
    find scipy.linalg missing, and one that compiles BLAS code meanwhile imports it then, when
    numba binds the BLAS functions. Nothing is done if either module is already imported.
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    with _ARRAYMATH_LOCK:  # (numba's compiler lock is held in load_overload; this holds for any caller)
        if "numba.np.arraymath" in sys.modules:
            return
        from numba.np import linalg as numba_linalg

        ensure_blas = getattr(numba_linalg, "ensure_blas", None)
        if ensure_blas is None or ensure_blas is _blas_installed:  # another numba: leave it to its own check
            return
        numba_linalg.ensure_blas = _blas_installed
        try:
            from numba.np import arraymath
        finally:
            numba_linalg.ensure_blas = ensure_blas
        if getattr(arraymath, "ensure_blas", None) is _blas_installed:  # its `from numba.np.linalg import ...`
            arraymath.ensure_blas = ensure_blas


_ARRAYMATH_LOCK = threading.Lock()


def _blas_installed() -> None:
    """What numba's `ensure_blas` answers, without importing scipy.linalg: ImportError if no `cython_blas`.

    Then numba's check that scipy's BLAS has the integer width numba was built for, as numba's
    own runs it (a RuntimeError if not).
    """
    import importlib.util

    spec = importlib.util.find_spec("scipy")
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    if not any(any((Path(place) / "linalg").glob("cython_blas.*")) for place in places):
        raise ImportError("scipy 0.16+ is required for linear algebra")
    from numba.np import linalg as numba_linalg

    check = getattr(numba_linalg, "_check_lapack_int_width", None)
    if check is not None:
        check()


class _DamagedKernel(Exception):
    """A kernel's cached data file whose content is not what was written (`_SelfHealingCache`)."""


_SIGNED = b"faction-sim kernel sha256\n"  # ahead of the digest and the pickled data in a .nbc file


_said_recompiled = False


def _say_recompiled(function, directory: str, error: Exception, written: bool = True) -> None:
    """One line on stderr, the first time in this process, that a damaged cached kernel is compiled again."""
    global _said_recompiled
    if _said_recompiled:
        return
    _said_recompiled = True
    name = f"{function.__module__}.{function.__qualname__}"
    if not written:
        print(
            f"faction-sim: warning: cannot write the compiled-kernel cache in {directory} ({name}: "
            f"{type(error).__name__}: {error}); the kernel runs without it",
            file=sys.stderr,
        )
        return
    print(
        f"faction-sim: warning: the compiled-kernel cache in {directory} is damaged ({name}: "
        f"{type(error).__name__}: {error}); compiling the kernel again (about 15 s) and replacing its files",
        file=sys.stderr,
    )


def kernel(function):
    """Compile `function` with numba for the model's step (cached per source version, numpy's float rules).

    A damaged cache file of a kernel is compiled again and replaced (`_SelfHealingCache`).
    """
    dispatcher = njit(error_model="numpy", boundscheck=False, nogil=True)(function)
    if CACHE is not None and hasattr(dispatcher, "py_func"):  # (NUMBA_DISABLE_JIT gives the function back)
        # numba offers no option for the cache class of njit: ours is set here, as its enable_caching
        # (cache=True) sets its own, so that one cache is built per kernel at import, not two.
        dispatcher._cache = _SelfHealingCache(dispatcher.py_func)
    return dispatcher


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


@kernel
def numpy_max(x):  # pragma: no cover - compiled
    """`np.max` of a 1-D float64 array of at least one value: NaN if any value is NaN, else the largest."""
    largest = x[0]
    for i in range(1, len(x)):
        if np.isnan(largest):
            break
        if x[i] > largest or np.isnan(x[i]):
            largest = x[i]
    return largest


@kernel
def flagged_rows(mask):  # pragma: no cover - compiled
    """(m,) int64 indices, ascending, where the (N,) bool `mask` is True: `np.flatnonzero(mask)`.

    For masks over the recruits computed in one branch-free pass (which vectorises, unlike a
    pass that also collects the rows). Eight flags are read at a time as one word, so a sparse
    mask (today's movers) costs little more than its words; a dense one (the fighters at their
    post) is collected without a branch per row (each index stored, kept by counting it), since
    its flags change from row to row about as often as not.
    """
    n = len(mask)
    rows = np.empty(n, dtype=np.int64)
    m = 0
    whole = n - n % 8
    words = mask[:whole].view(np.uint64)
    for k in range(len(words)):
        if words[k] != 0:
            for i in range(8 * k, 8 * k + 8):
                rows[m] = i
                m += mask[i]
    for i in range(whole, n):
        rows[m] = i
        m += mask[i]
    return rows[:m].copy()


# --------------------------------------------------------------------------- the C library's functions


@kernel
def _libm_exp(x, out):  # pragma: no cover - compiled
    for i in range(len(x)):
        out[i] = math.exp(x[i])


@kernel
def _libm_log(x, out):  # pragma: no cover - compiled
    # math.log in numba is the C library's log, with no ValueError: log(0) = -inf, log(x < 0) = nan.
    for i in range(len(x)):
        out[i] = math.log(x[i])


@kernel
def _libm_pow(x, y, out):  # pragma: no cover - compiled
    for i in range(len(x)):
        out[i] = math.pow(x[i], y[i])


@kernel
def _libm_pow_scalar(x, y, out):  # pragma: no cover - compiled
    for i in range(len(x)):
        out[i] = math.pow(x[i], y)


def _number(x) -> float | None:
    """The float64 value of x if x is one real number (not an array), else None.

    An int too large for a float becomes +-inf; numpy's timedelta64 (an integer type to
    numpy) is not a number here.
    """
    if isinstance(x, float):  # np.float64 too
        return float(x)
    if isinstance(x, (int, np.integer)) and not isinstance(x, np.timedelta64):  # bool is an int
        try:
            return float(x)
        except OverflowError:
            return math.inf if x > 0 else -math.inf
    if isinstance(x, np.floating):  # float16, float32, longdouble
        with np.errstate(over="ignore"):
            return float(x)
    return None


def _elementwise(function, *args):
    """Apply a 1-D kernel `function(*flat_args, out)` to float64 arrays broadcast together; a float for floats.

    Raises TypeError for anything but real numbers (complex, None, strings, masked arrays),
    which a conversion to float64 would silently turn into wrong numbers.
    """
    given = []
    for arg in args:
        number = _number(arg)
        array = np.asarray(arg if number is None else number)
        if array.dtype.kind not in "biuf" or isinstance(arg, np.ma.MaskedArray):
            kind = "a masked array" if isinstance(arg, np.ma.MaskedArray) else f"dtype {array.dtype}"
            raise TypeError(f"real numbers expected, not {kind}")
        given.append(array)
    with np.errstate(over="ignore"):  # a long double beyond float64's range is +-inf, as a number is
        given = [a.astype(np.float64, copy=False) for a in given]
    # Copies in C order: numba must not be handed a broadcast view (numpy warns on its flags).
    arrays = [np.array(a, order="C") for a in (given if len(given) == 1 else np.broadcast_arrays(*given))]
    shape = arrays[0].shape
    out = np.empty(shape)
    function(*(a.reshape(-1) for a in arrays), out.reshape(-1))
    return float(out) if shape == () else out


def _plain_array(x) -> bool:
    """Whether x is a C-ordered float64 ndarray of one or more dimensions (the model's arrays): the fast path."""
    return type(x) is np.ndarray and x.dtype == np.float64 and x.ndim > 0 and x.flags.c_contiguous


def _exp_number(x: float) -> float:
    try:  # Python's math.exp is the C library's, without numpy's set-up
        return math.exp(x)
    except OverflowError:
        return math.inf


def _log_number(x: float) -> float:
    try:
        return math.log(x)
    except ValueError:  # Python refuses what C answers: log(+-0) = -inf, log(x < 0) = nan
        return -math.inf if x == 0 else math.nan


def _unary(x, on_number, on_array):
    """on_number(x) for a number that is not a NaN, else the kernel on_array(flat x, flat out) over x as float64.

    A NaN is left to the C library (its sign, payload, quieting), where Python's math has its own rules.
    """
    number = _number(x)
    if number is not None and number == number:
        return on_number(number)
    if _plain_array(x):
        out = np.empty(x.shape)
        on_array(x.reshape(-1), out.reshape(-1))
        return out
    return _elementwise(on_array, x)


def exp(x):
    """e**x elementwise, by the C library's `exp`: the same bits on every CPU (numpy's `np.exp` is not).

    Args:
        x: a number or an array of numbers (any shape; converted to float64).

    Returns:
        a float for a number, else a new float64 array of x's shape. Never warns:
        exp(-inf) = 0, exp(large) = inf, exp(nan) = nan, as numpy gives them.

    Raises:
        TypeError: x is not real numbers (complex, None, strings, a masked array, timedelta64).

    Why: numpy computes float64 exp with its own SIMD code on CPUs with AVX-512 and with the
    C library's elsewhere; the two differ by a unit in the last place for some inputs, and a
    year of multiplicative updates carries such differences into the results.
    """
    return _unary(x, _exp_number, _libm_exp)


def log(x):
    """Natural logarithm elementwise, by the C library's `log` (numpy's differs on AVX-512 CPUs).

    Args:
        x: a number or an array of numbers (any shape; converted to float64).

    Returns:
        a float for a number, else a new float64 array of x's shape; log(0) = -inf,
        log(x < 0) = nan, as numpy gives them, without a warning or an error.

    Raises:
        TypeError: x is not real numbers (complex, None, strings, a masked array, timedelta64).
    """
    return _unary(x, _log_number, _libm_log)


def power(x, y):
    """x**y elementwise, by the C library's `pow` (numpy's `**` on arrays uses SVML on AVX-512 CPUs).

    Args:
        x: the base, a number or an array of numbers (converted to float64).
        y: the exponent, likewise; broadcast with x.

    Returns:
        a float for two numbers, else a new float64 array of the broadcast shape; IEEE
        results where Python would raise (0 ** -1 = inf, (-8) ** (1/3) = nan).

    Raises:
        TypeError: x or y is not real numbers (complex, None, strings, a masked array, timedelta64).
    """
    exponent = _number(y)
    if exponent is not None and exponent == exponent:
        base = _number(x)
        if base is not None and base == base:  # Python's math.pow treats NaNs its own way: left to C
            try:
                return math.pow(base, exponent)
            except (OverflowError, ValueError):  # where Python raises, the C library's IEEE answer
                pass
        elif _plain_array(x):
            out = np.empty(x.shape)
            _libm_pow_scalar(x.reshape(-1), exponent, out.reshape(-1))
            return out
    return _elementwise(_libm_pow, x, y)


def logit(p: float) -> float:
    """log(p / (1 - p)) of one probability p in (0, 1), as `scipy.special.logit` computes it (SciPy 1.17).

    Near p = 0.5 the direct formula loses digits, so there it is log1p(s) - log1p(-s) with
    s = 2 (p - 0.5). Written out (mediation's odds) because importing `scipy.special` cost a
    run about 0.2 s, and so that a run's bits do not depend on SciPy's version.

    Raises:
        ZeroDivisionError: p = 1; ValueError: p outside (0, 1) (mediation answers 0 and 1 itself).
    """
    if p < 0.3 or p > 0.65:
        return math.log(p / (1 - p))
    s = 2 * (p - 0.5)
    return math.log1p(s) - math.log1p(-s)


def expit(z: float) -> float:
    """The logistic function 1 / (1 + e**-z) of one number, in [0, 1], as `scipy.special.expit` computes it.

    Never raises: expit(-800) = 0.0, expit(800) = 1.0.
    """
    return 1 / (1 + exp(-z))


# --------------------------------------------------------------------------- drawing inside a kernel

# A kernel may draw from one of the model's generators, exactly as numpy would: numba's
# Generator methods (random, standard_exponential, normal, ...) are ports of numpy's and call
# the generator's own bit generator through its C function pointers, so they give numpy's
# values and advance the Python object's state in place (tests/test_compiled_draws.py). Passing
# the Generator itself costs about 7 us a call (numba reads its ctypes interface every time);
# `generator_addresses` reads it once per generator, and `generator_at` rebuilds numba's
# Generator from those addresses inside the kernel (about 0.2 us). The addresses are valid
# while the Generator lives: the caller keeps it (a process's `rng` argument).

_ADDRESSES: dict[int, tuple[object, np.ndarray]] = {}  # id -> (the generator, kept alive here, its addresses)
_ADDRESSES_KEPT = 64  # generators remembered (a run has 7 streams): older ones are forgotten
_ADDRESSES_LOCK = threading.Lock()


def generator_addresses(rng: np.random.Generator) -> np.ndarray:
    """(6,) uintp addresses of `rng`'s bit generator for `generator_at`: its state and next_* functions.

    Kept for the last `_ADDRESSES_KEPT` generators (with a reference, so that an id is never
    reused while kept). Raises TypeError for an object that is not a numpy Generator.
    """
    key = id(rng)
    kept = _ADDRESSES.get(key)
    if kept is not None and kept[0] is rng:
        return kept[1]
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"generator_addresses needs a numpy.random.Generator, got {type(rng).__name__}")
    import ctypes

    c = rng.bit_generator.ctypes

    def address(pointer):
        return ctypes.cast(pointer, ctypes.c_void_p).value

    addresses = np.array(
        [c.state_address, c.state.value, address(c.next_uint64), address(c.next_uint32), address(c.next_double),
         c.bit_generator.value],
        dtype=np.uintp,
    )  # fmt: skip
    addresses.flags.writeable = False
    with _ADDRESSES_LOCK:
        while len(_ADDRESSES) >= _ADDRESSES_KEPT:
            del _ADDRESSES[next(iter(_ADDRESSES))]
        _ADDRESSES[key] = (rng, addresses)
    return addresses


def generator_at(addresses: np.ndarray) -> np.random.Generator:
    """Inside a kernel: numba's Generator over the bit generator at `addresses` (`generator_addresses`).

    Called from Python (kernels run uncompiled under NUMBA_DISABLE_JIT), the Generator those
    addresses were read from.
    """
    for rng, kept in list(_ADDRESSES.values()):
        if kept is addresses or np.array_equal(kept, addresses):
            return rng
    raise LookupError("generator_at: no generator with these addresses is kept (use generator_addresses)")


@intrinsic
def _generator_at(typingctx, addresses):  # pragma: no cover - compiled
    # numba's Generator is a struct (bit_generator: (parent, state_address, state, the three
    # next_* function pointers, bit_generator), meminfo, parent), as its unboxing builds it
    # (numba/np/random/generator_core.py); here from the six addresses, with no Python object.
    generator_type = types.NumPyRandomGeneratorType("generator")

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        bits = cgutils.create_struct_proxy(_bit_gen_type)(context, builder)
        bits.parent = cgutils.get_null_value(bits.parent.type)
        for k, member in enumerate(_BIT_GENERATOR_MEMBERS):
            setattr(bits, member, builder.load(cgutils.gep(builder, array.data, k)))
        generator = cgutils.create_struct_proxy(generator_type)(context, builder)
        generator.bit_generator = bits._getvalue()
        generator.meminfo = cgutils.get_null_value(generator.meminfo.type)
        generator.parent = cgutils.get_null_value(generator.parent.type)
        return generator._getvalue()

    return generator_type(addresses), codegen


_BIT_GENERATOR_MEMBERS = (
    "state_address", "state", "fnptr_next_uint64", "fnptr_next_uint32", "fnptr_next_double", "bit_generator"
)  # fmt: skip


@overload(generator_at, jit_options={"cache": True})
def _generator_at_compiled(addresses):  # pragma: no cover - compiled
    def implementation(addresses):
        return _generator_at(addresses)

    return implementation


@kernel
def drawn_gumbel(rng, loc, scale):  # pragma: no cover - compiled
    """One Gumbel(loc, scale) draw inside a kernel, as `Generator.gumbel` makes it (numpy's `random_gumbel`).

    U = 1 - next_double, drawn again while U = 1; then loc - scale log(-log U), with the C
    library's log (numpy's npy_log).
    """
    while True:
        u = 1.0 - rng.random()
        if u < 1.0:
            return loc - scale * math.log(-math.log(u))


# --------------------------------------------------------------------------- Bernoulli trials by skipping


def bernoulli_rows(rng, n: int, p: float) -> np.ndarray:
    """(k,) int64 rows, ascending, of n independent Bernoulli(p) trials that came out 1.

    Drawn by geometric skipping (Devroye 1986, *Non-Uniform Random Variate Generation*,
    ch. X.2; Knuth, TAOCP vol. 2, 3.4.1): the number of failures before the next success is
    geometric, K = floor(E / lambda) with E a standard exponential draw and lambda = -log(1 - p),
    since P(K >= k) = P(E >= k lambda) = (1 - p)^k. So a day's trials cost about n x p + 1 draws
    instead of n uniforms: at the baseline's p_reconsider = 0.005 and p_redeploy = 0.05 that is
    about 30 and 300 draws instead of 5,580 each (about a tenth of a simulated year's time).

    Exponentials are taken from `rng` (`standard_exponential`, numpy's ziggurat) in blocks of
    about n p + 4 sqrt(n p) + 16 (at most n + 1), a further block when one runs out; a block's
    unused draws are dropped, so the draws depend only on (rng's state, n, p). p <= 0 (or NaN)
    draws nothing and gives no rows; p >= 1 gives every row. log(1 - p) is the C library's.

    Raises:
        ValueError: n is negative.
    """
    if n < 0:
        raise ValueError(f"bernoulli_rows: n must be >= 0, got {n}")
    rows = np.empty(n, dtype=np.int64)
    rate, block = skip_plan(n, p)
    if block == 0:
        return rows[:0]
    position, count, done = 0, 0, False
    while not done:
        position, count, done = _skip_rows(rng.standard_exponential(block), rate, position, n, rows, count)
    return rows[:count]


@functools.lru_cache(maxsize=256)  # a run asks for the same few (n, p) every day
def skip_plan(n: int, p: float) -> tuple[float, int]:
    """(lambda = -log(1 - p), block size) of `bernoulli_rows` for n >= 0 trials; block 0: no draws, no rows.

    lambda is inf for p >= 1 (every gap 0), and 1.0 where there is nothing to draw.
    """
    if n == 0 or not p > 0:
        return 1.0, 0
    rate = -math.log1p(-p) if p < 1 else math.inf  # lambda > 0; inf: every gap is 0
    expected = n * min(p, 1.0)
    return rate, int(min(n + 1, expected + 4.0 * math.sqrt(expected) + 16.0))


@kernel
def drawn_bernoulli_rows(rng, n, rate, block):  # pragma: no cover - compiled
    """`bernoulli_rows(rng, n, p)` inside a kernel: `rng` from `generator_at`, (rate, block) = `skip_plan(n, p)`.

    The same blocks of exponentials (a block's unused draws dropped), so the same (k,) int64
    rows and the generator left in the same state.
    """
    rows = np.empty(n, dtype=np.int64)
    if block == 0:
        return rows[:0]
    exponentials = np.empty(block)
    position, count, done = 0, 0, False
    while not done:
        for j in range(block):
            exponentials[j] = rng.standard_exponential()
        position, count, done = _skip_rows(exponentials, rate, position, n, rows, count)
    return rows[:count]


@kernel
def _skip_rows(exponentials, rate, position, n, rows, count):  # pragma: no cover - compiled
    # From row `position` on: skip K = floor(e / rate) rows and take the next, for each draw e in
    # turn, until the rows run out (done) or the draws do. The gap is compared with the rows left
    # as a float, so a huge gap (p tiny) never reaches an integer conversion.
    for j in range(len(exponentials)):
        gap = np.floor(exponentials[j] / rate)  # a float >= 0 (0.0 where rate = inf)
        if not gap < n - position:
            return n, count, True
        position += np.int64(gap)
        rows[count] = position
        count += 1
        position += 1
        if position >= n:
            return position, count, True
    return position, count, False


# --------------------------------------------------------------------------- paths on the grid

# The 8 moves on the grid (row step, column step) and their lengths in cells, in the order
# sim.geography used to build scipy's graph; lengths are numpy's hypot (sqrt 2 for a diagonal).
GRID_MOVES = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)], dtype=np.int64)
GRID_MOVE_LENGTHS = np.hypot(GRID_MOVES[:, 0], GRID_MOVES[:, 1]).astype(np.float64)


def shortest_path_lengths(passable: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """(K, H x W) shortest route lengths in cells from each source cell to every cell (Dijkstra's algorithm).

    passable: (H, W) bool; sources: (K,) flat cell indices (row x W + col), each in 0..H x W - 1.
    A route takes the 8 moves `GRID_MOVES` (a diagonal is sqrt 2 cells long) onto passable
    cells only; the source itself may be impassable (one can always leave it). inf where no
    route goes.

    The same numbers as `scipy.sparse.csgraph.dijkstra` on the graph of those moves: a cell's
    length is the smallest of (a neighbour's length + the move's length) over the neighbours
    settled before it, whatever order ties are settled in, so a binary heap gives what scipy's
    Fibonacci heap gives (tests/test_startup.py compares them). Written here rather than called
    from scipy because importing `scipy.sparse` for it took about 0.1 s of every run's start-up
    (issue 13's one-second run).

    Raises:
        ValueError: a source that is not a whole number within the grid (`grid_cells`), or a
            `passable` that is not 2-D.
    """
    if np.ndim(passable) != 2:
        raise ValueError(f"passable must be a 2-D (H, W) array, got shape {np.shape(passable)}")
    passable = np.ascontiguousarray(passable, dtype=np.bool_)
    n = passable.size
    sources = grid_cells(sources, n)
    out = np.empty((len(sources), n))
    capacity = len(GRID_MOVES) * n + 1  # each settled cell pushes at most once per move, the source once
    # The heap is allocated here, not in the kernel, where tracemalloc (sim.limits' estimates) sees it.
    heap_length, heap_cell = np.empty(capacity), np.empty(capacity, dtype=np.int64)
    _grid_dijkstra(passable, sources, GRID_MOVES, GRID_MOVE_LENGTHS, heap_length, heap_cell, np.empty(n, np.bool_), out)
    return out


def grid_cells(sources, n: int) -> np.ndarray:
    """(K,) int64 flat cell indices from whole numbers in 0..n - 1 (any integer, bool or whole float dtype).

    Raises:
        ValueError: anything else (a fraction, inf, NaN, a number off the grid however large).
    """
    try:
        values = np.asarray(sources).reshape(-1)
        if values.dtype == object:  # Python ints beyond 64 bits, Fractions, or not numbers at all
            values = np.array([v if float(v) != int(v) else int(v) for v in values.tolist()], dtype=object)
    except (OverflowError, ValueError, TypeError) as error:
        raise ValueError(f"source cells must be whole numbers in 0..{n - 1}: {error}") from None
    if values.dtype != object and values.dtype.kind not in "buif":
        raise ValueError(f"source cells must be whole numbers in 0..{n - 1}, got {values.dtype} values")
    if len(values):
        with np.errstate(invalid="ignore"):  # NaN compares False: not whole
            if values.dtype == object:  # whole ones were made ints above
                whole = np.array([isinstance(v, int) for v in values.tolist()])
            else:
                whole = values == np.trunc(values) if values.dtype.kind == "f" else True
            inside = (values >= 0) & (values < n)
        if not np.all(whole & inside):
            listed = values.tolist()
            raise ValueError(f"source cells must be whole numbers in 0..{n - 1}, got {min(listed)}..{max(listed)}")
    return values.astype(np.int64)


@kernel
def _grid_dijkstra(passable, sources, moves, lengths, heap_length, heap_cell, settled, out):  # pragma: no cover
    # Dijkstra from each source in turn with a binary heap (lazy deletion: a cell may sit in the
    # heap several times; its first pop has its smallest length), into out[k].
    height, width = passable.shape
    n = height * width
    ground = passable.reshape(n)
    for k in range(len(sources)):
        dist = out[k]
        for c in range(n):
            dist[c] = np.inf
            settled[c] = False
        dist[sources[k]] = 0.0
        heap_length[0], heap_cell[0] = 0.0, sources[k]
        size = 1
        while size:
            length, cell = heap_length[0], heap_cell[0]
            # pop the smallest: the last entry sifted down from the root
            size -= 1
            last_length, last_cell = heap_length[size], heap_cell[size]
            i = 0
            while True:
                child = 2 * i + 1
                if child >= size:
                    break
                if child + 1 < size and heap_length[child + 1] < heap_length[child]:
                    child += 1
                if heap_length[child] < last_length:
                    heap_length[i], heap_cell[i] = heap_length[child], heap_cell[child]
                    i = child
                else:
                    break
            if size:
                heap_length[i], heap_cell[i] = last_length, last_cell
            if settled[cell]:
                continue  # an older, longer entry of a cell settled since
            settled[cell] = True
            row, col = cell // width, cell % width
            for m in range(len(moves)):
                r, c = row + moves[m, 0], col + moves[m, 1]
                if r < 0 or r >= height or c < 0 or c >= width:
                    continue
                to = r * width + c
                if settled[to] or not ground[to]:
                    continue
                candidate = length + lengths[m]
                if candidate < dist[to]:
                    dist[to] = candidate
                    # push: sift up from the end
                    j = size
                    size += 1
                    while j > 0:
                        parent = (j - 1) // 2
                        if heap_length[parent] > candidate:
                            heap_length[j], heap_cell[j] = heap_length[parent], heap_cell[parent]
                            j = parent
                        else:
                            break
                    heap_length[j], heap_cell[j] = candidate, to
