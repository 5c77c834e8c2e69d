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
        "print(repr(_pair_ground(share, share, 0, 1, 0.5, 1, np.ones((10, 30)), both)[0]))"
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
