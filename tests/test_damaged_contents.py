"""What a results directory says is checked, not only that its files are whole (`sim.results`).

A results directory from someone else can carry checksums that match edited contents, or
none at all: every reader (plot, export-acled, compare-events, compare) refuses a manifest
that could switch the checksums off, a manifest that disagrees with its runs, and values
out of their range (exit status 2, one line naming the file), and writes nothing.

Each test edits a copy of a small, whole results directory and runs the readers on it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import SCENARIOS

import sim
from sim import cli

TOY = SCENARIOS / "toy_two_towns.yaml"
OBSERVED = "event_date,event_type,fatalities,location\n2019-11-03,Battles,1,West town\n"
STEPS = 40


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("contents") / "run"
    sim.simulate(TOY, seed=5, steps=STEPS, replicates=2).save(out, plots=False)
    return out


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    return copy


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


def edit_csv(directory: Path, name: str, column: str, value: str, row: int = 0, *, where=None) -> None:
    """Set `column` of data row `row` (or of the first row where `where(fields)` holds) to `value`; rehash."""
    path = directory / name
    lines = path.read_text().split("\n")
    header = lines[0].split(",")
    k = header.index(column)
    rows = [n for n in range(1, len(lines) - 1) if where is None or where(dict(zip(header, lines[n].split(","))))]
    n = rows[row]
    fields = lines[n].split(",")
    fields[k] = value
    lines[n] = ",".join(fields)
    path.write_text("\n".join(lines))
    rehash(directory, name)


def edit_maps(directory: Path, edit) -> None:
    path = directory / "maps.npz"
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    edit(arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    rehash(directory, "maps.npz")


def readers(directory: Path, tmp_path: Path, other: Path | None = None) -> dict[str, list[str]]:
    """Each reader of a run's directory, as its command line (outputs under `tmp_path`)."""
    observed = tmp_path / "observed.csv"
    observed.write_text(OBSERVED)
    compare = ["compare", str(directory), str(other or directory), "--no-plots", "--out", str(tmp_path / "cmp")]
    return {
        "plot": ["plot", str(directory)],
        "export-acled": ["export-acled", str(directory), "--out", str(tmp_path / "acled.csv")],
        "compare-events": ["compare-events", str(directory), str(observed), "--out", str(tmp_path / "events")],
        "compare": compare,
    }


def all_refuse(capsys, directory: Path, tmp_path: Path, path: Path, message: str) -> None:
    """Every reader refuses `directory`: exit 2, one line naming `path` and saying `message`; nothing written."""
    for name, argv in readers(directory, tmp_path).items():
        status = cli.main(argv)
        err = capsys.readouterr().err.strip()
        assert status == 2, (name, err)
        assert err.count("\n") == 0, (name, err)
        assert str(path) in err and message in err, (name, err)
        assert "internal error" not in err and "Traceback" not in err, (name, err)
        assert "RuntimeWarning" not in err, (name, err)
    assert not (directory / "plots").exists()
    for out in ("acled.csv", "events", "cmp"):
        assert not (tmp_path / out).exists(), out


def all_accept(capsys, directory: Path, tmp_path: Path) -> None:
    for name, argv in readers(directory, tmp_path).items():
        assert cli.main(argv) == 0, (name, capsys.readouterr().err)


# --------------------------------------------------------------------------- an explicit format 1


def format_1_without_files(manifest: dict) -> None:
    manifest["format"] = 1
    del manifest["files"]


def test_writing_format_1_and_deleting_files_does_not_switch_the_checksums_off(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    edit_manifest(copy, format_1_without_files)
    all_refuse(capsys, copy, tmp_path, copy / "manifest.json", "`files` is missing")


def test_format_1_is_not_believed_of_a_manifest_that_started_recently_without_kind(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)

    def edit(manifest: dict) -> None:
        format_1_without_files(manifest)
        del manifest["kind"]

    edit_manifest(copy, edit)
    all_refuse(capsys, copy, tmp_path, copy / "manifest.json", "`files` is missing")


def test_a_genuinely_old_manifest_that_says_format_1_still_reads(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)

    def old(manifest: dict) -> None:
        format_1_without_files(manifest)
        del manifest["kind"]
        manifest["started_utc"], manifest["finished_utc"] = "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:05+00:00"

    edit_manifest(copy, old)
    all_accept(capsys, copy, tmp_path)


def test_a_sweep_that_says_format_1_still_needs_journal_checksums(tmp_path, capsys):
    from sim.sweep import journal_signed

    fresh = {"format": 1, "fingerprint": {}, "started_utc": "2027-01-01T00:00:00+00:00"}
    assert journal_signed(fresh)
    assert journal_signed({**fresh, "started_utc": "2026-12-01T10:00:00+00:00"})  # its fingerprint is new
    old = {"format": 1, "started_utc": "2026-12-01T10:00:00+00:00"}
    assert not journal_signed(old)


# --------------------------------------------------------------------------- the JSON itself


def test_a_key_given_twice_in_the_manifest_is_refused(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    path = copy / "manifest.json"
    text = path.read_text()
    assert text.count(f'"steps": {STEPS},') == 1
    path.write_text(text.replace(f'"steps": {STEPS},', f'"steps": {STEPS}, "steps": {STEPS + 1},'))
    all_refuse(capsys, copy, tmp_path, path, "the key 'steps' is given twice in one object")


def test_a_huge_manifest_is_refused_before_it_is_read(run_dir, tmp_path, capsys):
    from sim import results

    copy = copy_of(run_dir, tmp_path)
    path = copy / "manifest.json"
    with open(path, "ab") as handle:  # a sparse file one byte over the cap
        handle.truncate(results.MAX_JSON_FILE + 1)
    all_refuse(capsys, copy, tmp_path, path, "larger than 64 MiB")
