"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from sim.scenario import load_scenario

PROJECT = Path(__file__).resolve().parent.parent
SCENARIOS = PROJECT / "scenarios"


def scenario(*overrides: str, name: str = "baseline"):
    """The named scenario with `key.path=value` overrides (as on the command line)."""
    return load_scenario(SCENARIOS / f"{name}.yaml", list(overrides))


def writing_commands(out, results, observed, sweep_sets: list[str]) -> dict[str, list[str]]:
    """`run.py` argument lists of every command that writes a new output directory `out`, kept small.

    `results` is a run's results directory (for compare-events), `observed` an ACLED-layout
    CSV, `sweep_sets` the `--set KEY=VALUE ...` arguments that give the toy scenario a sweep.
    """
    toy, few = str(SCENARIOS / "toy_two_towns.yaml"), ["--replicates", "2", "--steps", "5"]
    return {
        "run": ["run", toy, "--steps", "5", "--out", str(out)],
        "sweep": ["sweep", toy, *sweep_sets, "--out", str(out)],
        "validate-patterns": ["validate-patterns", "baseline", *few, "--out", str(out)],
        "compare-variants": ["compare-variants", "baseline", "--variant", "salary_parity", *few, "--out", str(out)],
        "compare": ["compare", toy, toy, *few, "--out", str(out)],
        "calibrate": ["calibrate", "calibrate_baseline", "--out", str(out)],
        "robustness": ["robustness", "baseline", "--points", "2", "--replicates", "1", "--steps", "5",
                       "--out", str(out)],
        "compare-events": ["compare-events", str(results), str(observed), "--out", str(out)],
    }


def every_outcome_name(config) -> list[str]:
    """Every outcome name of every kind with each subject the scenario allows (pairs and flows both ways)."""
    from sim.outcomes import KINDS

    factions = list(config.factions)
    militias = [n for n, f in config.factions.items() if f.kind == "militia"]
    subjects = {
        None: [None], "faction": factions, "militia": militias, "site": list(config.sites), "days": ["7", "30"],
        "pair": [f"{a}~{b}" for a, b in config.hostilities] + [f"{b}~{a}" for a, b in config.hostilities],
        "flow": [f"{a}>{b}" for a in militias for b in militias if a != b],
        "holding": [f"{f}@{s}" for f in factions for s in config.sites]
                   + [f"{'|'.join(militias)}@{next(iter(config.sites))}"],
    }  # fmt: skip
    return [kind if s is None else f"{kind}.{s}" for kind, spec in KINDS.items() for s in subjects[spec.subject]]


def toy_calibration(samples: int) -> str:
    """A scenario file (text, to be written next to a copy of the toy) with a tiny ABC calibration."""
    return f"""\
extends: toy_two_towns.yaml
name: toy_calibration
steps: 8
calibration:
  design: random
  samples: {samples}
  accept: 0.5
  parameters:
    rules.clashes.lethality: {{low: 0.01, high: 0.08}}
  statistics:
    - {{outcome: killed_total, target: 5, scale: 2}}
"""


# --- editing a results directory behind its checksums (a forger's, or a tool's, edits)


def edit_manifest(directory: Path, edit) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def rehash(directory: Path, name: str) -> None:
    """Record `name`'s present sha256 (and rows) in the manifest: an edit that the checksums do not find."""
    data = (directory / name).read_bytes()

    def edit(manifest: dict) -> None:
        record = manifest["files"][name]
        record["sha256"] = hashlib.sha256(data).hexdigest()
        if "rows" in record:
            record["rows"] = data.count(b"\n") - 1

    edit_manifest(directory, edit)


def edit_maps(directory: Path, edit) -> None:
    path = directory / "maps.npz"
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    edit(arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    rehash(directory, "maps.npz")
