"""Where the compiled kernels are cached, and that a change to any kernel's source is a new cache.

numba checks only the file a kernel is written in before reusing its cached machine code, so a
kernel calling a helper of `sim.compiled` kept running the helper's old code after it changed
(found by a fresh-user check). The cache is therefore one directory per version of every module
that defines kernels (`sim.compiled.KERNEL_SOURCES`); these tests hold that set complete and
the directory choice robust.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT

from sim import compiled

SIM = PROJECT / "sim"


def test_every_module_with_kernels_is_in_the_versioned_sources():
    with_kernels = {p for p in SIM.rglob("*.py") if re.search(r"^@kernel\b", p.read_text(), re.M)}
    covered = {p for pattern in compiled.KERNEL_SOURCES for p in SIM.glob(pattern)}
    assert with_kernels, "no kernels found: the pattern is stale"
    assert with_kernels <= covered, sorted(str(p.relative_to(SIM)) for p in with_kernels - covered)


def test_the_version_changes_with_any_kernel_source(tmp_path, monkeypatch):
    copy = tmp_path / "sim"
    shutil.copytree(SIM, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(compiled, "PACKAGE", copy)
    first = compiled.source_version()
    assert first == compiled.source_version()  # a pure function of the text
    helper = copy / "compiled.py"
    helper.write_text(helper.read_text().replace("return 0.0 + sums[0]", "return 0.0 + sums[0] * 3.0"))
    second = compiled.source_version()
    assert second != first  # the helper every caller's machine code includes
    (copy / "processes" / "economy.py").write_text((copy / "processes" / "economy.py").read_text() + "\n# a comment\n")
    assert compiled.source_version() not in (first, second)
    (copy / "plots.py").write_text("# no kernels here\n")
    assert compiled.source_version() not in (first, second)  # (unchanged kernels: the same as just before)


def test_the_cache_is_the_first_writable_place_and_named_by_the_version(tmp_path, monkeypatch):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocked))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = compiled.cache_directory()
    assert path == tmp_path / "xdg" / "faction-sim" / "numba" / compiled.source_version()
    assert path.is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert compiled.cache_directory() == tmp_path / "mine" / compiled.source_version()


@pytest.mark.slow
def test_a_changed_helper_is_compiled_again_not_loaded_stale(tmp_path):
    """The fresh-user check's case: edit only sim/compiled.py; the next run must use the edit."""
    clone = tmp_path / "clone"
    shutil.copytree(PROJECT / "sim", clone / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT / "scenarios", clone / "scenarios")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(clone)}
    # A kernel of another module that calls the helper: conflict's ground value is numpy_sum's.
    code = (
        "import numpy as np; from sim.processes.conflict import _pair_ground; "
        "share = np.ones((2, 10, 30)); both = np.empty((10, 30), dtype=bool); "
        "print(repr(_pair_ground(share, share > 0, 0, 1, 0, 1, 0.5, np.ones((10, 30)), both)[0]))"
    )

    def run() -> str:
        done = subprocess.run(  # in the clone: `-c` puts the working directory first on sys.path
            [sys.executable, "-c", code], cwd=clone, env={**_base_env(), **env}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run() == repr(300.0)
    helper = clone / "sim" / "compiled.py"
    helper.write_text(helper.read_text().replace("return 0.0 + sums[0]", "return 0.0 + sums[0] * 3.0"))
    assert run() == repr(900.0)  # not the cached machine code of the old helper


def _base_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR")}


def test_no_writable_place_means_no_cache_not_a_crash(tmp_path, monkeypatch):
    """A read-only install, home and temporary directory: the kernels are compiled in each process."""
    blocked = tmp_path / "a_file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocked))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr(compiled.tempfile, "gettempdir", lambda: str(blocked))
    assert compiled.cache_directory() is None

    def no_temporary_directory():
        raise FileNotFoundError("No usable temporary directory found")  # what tempfile raises then

    monkeypatch.setattr(compiled.tempfile, "gettempdir", no_temporary_directory)
    assert compiled.cache_directory() is None  # not a crash (a fresh-user check's read-only /tmp)
    monkeypatch.setattr(compiled, "CACHE", None)

    def double(x):
        return 2.0 * x

    assert compiled.kernel(double)(21.0) == 42.0  # compiled, not cached


# --------------------------------------------------------------------------- the same bits on every CPU

# The model's modules: outside kernels, none may call numpy's functions that have CPU-specific
# SIMD versions (exp and log with AVX-512, SVML's power, trigonometry and hyperbolics) or BLAS.
MODEL_MODULES = ("processes/*.py", "world.py", "geography.py", "engine.py", "recording.py", "seeding.py")
CPU_SPECIFIC = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "power", "float_power", "sin", "cos", "tan",
    "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "cbrt",
    "logaddexp", "logaddexp2", "dot", "vdot", "matmul", "inner", "tensordot", "einsum", "linalg",
}  # fmt: skip


def _cpu_specific_calls(path):
    import ast

    found = []

    def visit(node, in_kernel):
        if isinstance(node, ast.FunctionDef):
            in_kernel = in_kernel or any(getattr(d, "id", None) == "kernel" for d in node.decorator_list)
        if not in_kernel:
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("np", "numpy", "scipy")
                and node.attr in CPU_SPECIFIC
            ):
                found.append(f"{path.name}:{node.lineno} np.{node.attr}")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                found.append(f"{path.name}:{node.lineno} @")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
                if not (isinstance(node.right, ast.Constant) and isinstance(node.right.value, int)):
                    found.append(f"{path.name}:{node.lineno} ** (numpy's on arrays; power() instead)")
        for child in ast.iter_child_nodes(node):
            visit(child, in_kernel)

    visit(ast.parse(path.read_text()), False)
    return found


def test_the_model_calls_no_numpy_function_whose_bits_depend_on_the_cpu():
    """Outside kernels, exp, log and pow are `sim.compiled`'s (the C library's), products written out."""
    paths = sorted({p for pattern in MODEL_MODULES for p in SIM.glob(pattern)})
    assert len(paths) >= 15, paths
    found = [hit for path in paths for hit in _cpu_specific_calls(path)]
    assert not found, found


def test_the_ast_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import numpy as np\n"
        "@kernel\ndef fine(x):\n    return np.exp(x) ** 0.5\n"
        "def bad(x, a):\n    return np.exp(x) + np.log1p(x) + a @ x + x ** 0.5 + x ** 2\n"
    )
    pow_note = "** (numpy's on arrays; power() instead)"
    assert _cpu_specific_calls(sample) == [
        "sample.py:6 np.exp",
        "sample.py:6 np.log1p",
        "sample.py:6 @",
        f"sample.py:6 {pow_note}",
    ]


@pytest.mark.parametrize(("ours", "theirs"), [(compiled.exp, "exp"), (compiled.log, "log")])
def test_exp_and_log_are_the_c_librarys_bit_for_bit(ours, theirs):
    import math

    import numpy as np

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 20, 20_000), rng.uniform(-745, 709, 20_000)])
    if theirs == "log":
        x = np.concatenate([np.abs(x), 10.0 ** rng.uniform(-300, 300, 5000)])
    expected = np.array([getattr(math, theirs)(v) for v in x])
    assert ours(x).tobytes() == expected.tobytes()
    assert ours(x.reshape(5, -1)).tobytes() == expected.tobytes() and ours(x.reshape(5, -1)).shape == (5, len(x) // 5)
    assert isinstance(ours(1.5), float) and ours(1.5) == getattr(math, theirs)(1.5)
    assert ours(x[::3]).tobytes() == expected[::3].tobytes()  # strided input


def test_the_c_librarys_functions_follow_numpys_rules_at_the_edges_without_warnings():
    import warnings

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compiled.exp(-np.inf) == 0.0 and compiled.exp(1000.0) == np.inf and np.isnan(compiled.exp(np.nan))
        assert compiled.log(0.0) == -np.inf and np.isnan(compiled.log(-1.0)) and compiled.log(np.inf) == np.inf
        assert compiled.power(0.0, -1.0) == np.inf and np.isnan(compiled.power(-8.0, 1 / 3))
        assert compiled.power(np.array([[2.0], [3.0]]), np.array([1.0, 2.0, 0.5])).shape == (2, 3)
        assert compiled.power(2.0, 10) == 1024.0 and compiled.power(np.array([1.1]), 365)[0] == 1.1**365


def test_numba_does_not_use_intel_svml():
    """SVML's vector exp & co. depend on the CPU; numba uses them where conda's icc_rt is installed."""
    import numba

    assert not numba.config.USING_SVML
    out = subprocess.run(
        [sys.executable, "-c", "import sim.compiled, numba, os; print(os.environ['NUMBA_DISABLE_INTEL_SVML'])"],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "NUMBA_DISABLE_INTEL_SVML": "0"},
    )  # fmt: skip
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize("bad", [1 + 1j, None, "1", ["1"], object()])
def test_anything_but_real_numbers_is_refused_not_turned_into_wrong_numbers(bad):
    """Complex, None and strings would become float64 quietly (the imaginary part dropped, NaN, parsed)."""
    import numpy as np

    for call in (lambda: compiled.exp(bad), lambda: compiled.log(bad), lambda: compiled.power(2.0, bad)):
        with pytest.raises(TypeError, match="real numbers expected"):
            call()
    with pytest.raises(TypeError, match="masked array"):
        compiled.exp(np.ma.array([1.0, 2.0], mask=[0, 1]))
    assert compiled.exp(np.float32(1.0)) == compiled.exp(1) == compiled.exp(True)  # ints, bools, float32: fine


def test_numbers_and_arrays_take_different_paths_to_the_same_bits():
    """A number goes through Python's math (the same C library), an array through a kernel, any other
    array (ints, strided, broadcast) through a conversion first; all agree bit for bit, edges included."""
    import itertools

    import numpy as np

    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(0, 30, 3000), [0.0, -0.0, 1e-320, -1e-320, 709.8, -745.2, np.inf, -np.inf, np.nan]])
    for function in (compiled.exp, compiled.log):
        arrays = function(x), function(x[::-1].copy())[::-1], function(x.reshape(3, -1).T.copy().T)
        numbers = np.array([function(float(v)) for v in x])
        assert all(a.reshape(-1).tobytes() == numbers.tobytes() for a in arrays)
    specials = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 3.0, -3.0, 1e308, -1e308, np.inf, -np.inf, np.nan]
    bases, exponents = np.array(specials + list(rng.normal(0, 5, 30))), [*specials, 365, -1, 2, 0.3]
    for y in exponents:
        numbers = np.array([compiled.power(float(b), y) for b in bases])
        assert compiled.power(bases, y).tobytes() == numbers.tobytes(), y
        assert compiled.power(bases, np.full(len(bases), float(y))).tobytes() == numbers.tobytes(), y
    pairs = list(itertools.product(specials, repeat=2))
    assert compiled.power(np.array([b for b, _ in pairs]), np.array([e for _, e in pairs])).tobytes() == np.array(
        [compiled.power(b, e) for b, e in pairs]
    ).tobytes()
    # Numbers are float64 first: an int beyond its range is +-inf, in every position and path
    assert compiled.exp(-(10**400)) == 0.0 and compiled.exp(10**400) == np.inf and compiled.log(10**400) == np.inf
    assert compiled.power(2.0, 10**400) == compiled.power(-2.0, 10**400 + 1) == compiled.power(10**300, 2) == np.inf
    assert compiled.power(1.0, 10**400) == 1.0 and compiled.power(0, -(2**64)) == np.inf
    assert compiled.power(np.array([1.0, 2.0]), 10**400).tolist() == [1.0, np.inf]
    assert compiled.power(2**64, np.array([2.0]))[0] == compiled.power(2**64, 2.0) == 2.0**128


def test_nans_long_doubles_and_odd_inputs_take_one_answer_on_every_path():
    """From a fresh-user check: Python's math treats NaNs its own way (a -nan kept, a signalling
    NaN not quieted, pow(1, nan) = 1), so NaNs go to the C library on every path; long doubles
    are float64 first; timedelta64 is not a number; broadcasting never warns."""
    import struct
    import warnings

    import numpy as np

    def bits(v):
        return struct.pack("<d", v)

    negative_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0]
    signalling = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000001))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for nan in (negative_nan, signalling):
            for x, y in [(nan, 1.0), (nan, -3.0), (2.0, nan), (1.0, nan), (nan, 0.0), (nan, nan)]:
                number = compiled.power(x, y)
                assert bits(number) == bits(compiled.power(np.array([x]), y)[0]) == bits(
                    compiled.power(np.array([x]), np.array([y]))[0]
                ), (x, y)
            assert bits(compiled.log(nan)) == bits(compiled.log(np.array([nan]))[0])
            assert bits(compiled.exp(nan)) == bits(compiled.exp(np.array([nan]))[0])
        tiny, huge = np.longdouble("1e-400"), np.longdouble("1e400")
        assert compiled.log(tiny) == compiled.log(np.array([tiny]))[0] == -np.inf
        assert compiled.exp(huge) == compiled.exp(np.array([huge]))[0] == np.inf
        read_only = np.array([2.0])
        read_only.flags.writeable = False
        for x, y in [(read_only, np.array(3.0)), (np.ones((1, 3)), np.ones(3)), (np.float32(2), np.array([1.0]))]:
            assert compiled.power(x, y).tolist() == np.power(np.asarray(x, dtype=float), y).tolist()
    for td in (np.timedelta64(1), np.array([np.timedelta64(1)])):
        with pytest.raises(TypeError, match="real numbers expected"):
            compiled.exp(td)
        with pytest.raises(TypeError, match="real numbers expected"):
            compiled.power(2.0, td)


# --- a damaged cache ----------------------------------------------------------------

_EXP = (  # a kernel that compiles in about a second
    "import numpy as np; from sim import compiled; out = np.empty(3); "
    "compiled._libm_exp(np.arange(3.0), out); print(out[2])"
)


def _python(code: str, cache, cwd=None) -> subprocess.CompletedProcess:
    env = {**_base_env(), "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(PROJECT)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd or PROJECT, env=env, capture_output=True, text=True, timeout=600
    )


def _cut(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(min(path.stat().st_size - 1, 40))


def _garble(path: Path) -> None:  # inside the machine code: loading it crashed the process (SIGSEGV, SIGILL)
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(bytes(range(64)))


@pytest.mark.parametrize(
    ("suffix", "damage"),
    [(".1.nbc", _cut), (".nbi", _cut), (".1.nbc", _garble)],
    ids=["nbc cut", "nbi cut", "nbc garbled"],
)
def test_a_damaged_cached_kernel_is_compiled_again_and_its_files_replaced(tmp_path, suffix, damage):
    """A cache file cut short made every run fail with `internal error: UnpicklingError: pickle data was truncated`."""
    first = _python(_EXP, tmp_path)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    (damaged,) = tmp_path.glob(f"*/sim_*/compiled._libm_exp-*{suffix}")
    size = damaged.stat().st_size
    damage(damaged)
    again = _python(_EXP, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout  # the same kernel, compiled anew
    (line,) = again.stderr.splitlines()  # one line, naming the directory and the kernel
    assert line.startswith(f"faction-sim: warning: the compiled-kernel cache in {damaged.parent} is damaged")
    assert "sim.compiled._libm_exp" in line and "compiling the kernel again" in line
    assert damaged.stat().st_size == size  # replaced whole...
    healed = _python(_EXP, tmp_path)
    assert healed.returncode == 0 and healed.stderr == "" and healed.stdout == first.stdout  # ...and loaded again


def test_a_cache_that_cannot_be_written_runs_the_kernel_uncached_with_one_line(tmp_path):
    """A directory where the kernel's index should be: a warning, then exit status 1 and a second, contrary line."""
    first = _python(_EXP, tmp_path)
    (index,) = tmp_path.glob("*/sim_*/compiled._libm_exp-*.nbi")
    index.unlink()
    index.mkdir()
    again = _python(_EXP, tmp_path)
    assert again.returncode == 0 and again.stdout == first.stdout, again.stderr
    (line,) = again.stderr.splitlines()
    assert "sim.compiled._libm_exp" in line and str(index.parent) in line, line


def test_an_error_inside_numbas_cache_is_told_as_a_damaged_cache_to_delete(tmp_path, capsys, monkeypatch):
    """The CLI's last resort, should numba fail reading its cache anyway: which directory to delete, on one line."""
    import argparse

    from numba.core.caching import IndexDataCacheFile

    from sim import cli

    monkeypatch.delenv("SIM_DEBUG", raising=False)
    cache = IndexDataCacheFile(cache_path=str(tmp_path), filename_base="kernel-1.py311", source_stamp=(0, 0))
    (tmp_path / "kernel-1.py311.nbi").write_bytes(b"\x80\x05\x95")  # a pickle cut short
    with pytest.raises(Exception) as raised:
        cache.load("key")
    assert cli._internal(raised.value, argparse.Namespace()) == cli.EXIT_INTERNAL
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: the compiled-kernel cache at {compiled.CACHE} is damaged (") and "rm -r" in line
    assert cli.damaged_kernel_cache(ValueError("elsewhere")) is None


@pytest.mark.slow
def test_a_run_with_a_damaged_cached_kernel_runs(tmp_path):
    """The fresh-user check's case: `world._census`'s cached kernel cut to 100 bytes; `run.py run` then failed."""
    cache = tmp_path / "cache"
    command = (
        "import sys; from sim.cli import main; "
        "sys.exit(main(['run', 'toy_two_towns', '--steps', '2', '--no-plots', '--out', sys.argv[1]]))"
    )

    def run(out: str) -> subprocess.CompletedProcess:
        env = {**_base_env(), "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(PROJECT)}
        return subprocess.run(
            [sys.executable, "-c", command, str(tmp_path / out)], cwd=PROJECT, env=env, capture_output=True,
            text=True, timeout=600,
        )

    assert run("first").returncode == 0
    (census,) = cache.glob("*/sim_*/world._census-*.nbc")
    with census.open("r+b") as handle:
        handle.truncate(100)
    done = run("second")
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "is damaged (sim.world._census" in done.stderr, done.stderr
    assert (tmp_path / "second" / "manifest.json").is_file()
