"""A normal (non-editable) install carries every package of `sim`, the explorer included.

The test builds what `pip install .` would install from a copy of the project: offline, a
wheel (`pip wheel --no-deps --no-build-isolation --no-index`) where the installed setuptools
is one the project builds with (>= 77, see pyproject.toml); otherwise pip builds the wheel in
an isolated environment, as `pip install .` itself does (this fetches setuptools from the
package index).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def _build_mode() -> str:
    """'offline-wheel' with a setuptools the project builds with here, else 'isolated'."""
    try:
        import setuptools
    except ImportError:
        return "isolated"
    major = int(setuptools.__version__.split(".")[0])
    return "offline-wheel" if major >= 77 else "isolated"


def installed_files(tmp_path: Path) -> set[str]:
    """Paths (`sim/explorer/app.py`, ...) of the Python files a non-editable install gets."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    shutil.copytree(PROJECT / "sim", source / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)]
    if _build_mode() == "offline-wheel":
        command += ["--no-build-isolation", "--no-index"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if name.endswith(".py")}


def test_a_non_editable_install_contains_every_sim_module_and_the_explorer(tmp_path):
    files = installed_files(tmp_path)
    expected = {p.relative_to(PROJECT).as_posix() for p in (PROJECT / "sim").rglob("*.py")}
    assert {"sim/explorer/__init__.py", "sim/explorer/app.py", "sim/explorer/core.py"} <= files
    assert expected - files == set(), sorted(expected - files)


def test_an_installed_package_uses_the_working_directory_not_site_packages(tmp_path):
    """Outside a checkout, scenarios and results are looked for in the directory the command runs in."""
    site = tmp_path / "site"
    shutil.copytree(PROJECT / "sim", site / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    (work / "scenarios").mkdir(parents=True)
    shutil.copy2(PROJECT / "scenarios" / "toy_two_towns.yaml", work / "scenarios" / "toy_two_towns.yaml")
    code = (
        "import sim, sim.results as r, sim.scenario as s; "
        "print(r.RESULTS_DIR); print(s.SCENARIO_DIR); "
        "print(sim.simulate('toy_two_towns', steps=3).save(plots=False))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.split("\n")
    assert Path(out[0]) == work / "results" and Path(out[1]) == work / "scenarios"
    assert Path(out[2]).is_relative_to(work / "results") and (Path(out[2]) / "timeseries.csv").exists()
    assert not (site / "results").exists()
