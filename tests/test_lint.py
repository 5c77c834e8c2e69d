"""The code passes the project's ruff rules (pyproject.toml): style, imports, bugbear, Google-style
docstrings on every public function of `sim/` (D), and current Python idioms (UP)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).with_name("ruff")


def test_ruff_passes():
    ruff = str(RUFF) if RUFF.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.skip(
            "ruff is not installed (pip install -e '.[dev]', or pip install ruff): the style check is skipped; "
            "it does not affect what the model computes"
        )
    result = subprocess.run(
        [ruff, "check", "sim", "tests", "benchmarks", "run.py"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
