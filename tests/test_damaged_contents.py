"""What a results directory says is checked, not only that its files are whole (`sim.results`).

A results directory from someone else can carry checksums that match edited contents, or
none at all: every reader (plot, export-acled, compare-events, compare) refuses a manifest
that could switch the checksums off, a manifest that disagrees with its runs, and values
out of their range (exit status 2, one line naming the file), and writes nothing.

Each test edits a copy of a small, whole results directory and runs the readers on it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS, edit_manifest, edit_maps, every_outcome_name, rehash

import sim
from sim import cli
from sim.schema import TERRAINS

TOY = SCENARIOS / "toy_two_towns.yaml"
OBSERVED = "event_date,event_type,fatalities,location\n2019-11-03,Battles,1,West town\n"
STEPS = 60


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("contents") / "run"
    sim.simulate(TOY, seed=3, steps=STEPS, replicates=2).save(out, plots=False)
    return out


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    return copy


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


# --------------------------------------------------------------------------- the manifest against itself and the runs


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(lambda m: m.update(replicates=[]), "replicates is not a list of one or more", id="no replicates"),
        pytest.param(
            lambda m: m["replicates"][1].update(replicate=m["replicates"][0]["replicate"]),
            "replicates repeat a seed or a replicate number (replicates.1.replicate 0",
            id="a replicate number twice",
        ),
        pytest.param(lambda m: m.update(n_replicates=3), "n_replicates is 3, but replicates lists 2",
                     id="n_replicates"),  # fmt: skip
        pytest.param(lambda m: m.update(steps=STEPS + 1), f"steps is {STEPS + 1}, but timeseries.csv", id="steps 41"),
        pytest.param(lambda m: m.update(steps=10**12), "steps is 1000000000000, but timeseries.csv", id="steps 1e12"),
        pytest.param(lambda m: m.update(steps=STEPS - 1), f"are not steps 0 to {STEPS - 1}", id="steps 39"),
        pytest.param(lambda m: m.pop("steps"), "steps is missing", id="steps missing"),
    ],
)
def test_every_reader_checks_the_manifest_alike(run_dir, tmp_path, capsys, edit, message):
    copy = copy_of(run_dir, tmp_path)
    edit_manifest(copy, edit)
    all_refuse(capsys, copy, tmp_path, copy / "manifest.json", message)


def test_a_replicate_missing_from_the_timeseries_is_refused(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    table = copy / "timeseries.csv"
    lines = table.read_text().split("\n")
    table.write_text("\n".join([lines[0], *(line for line in lines[1:] if not line.startswith("1,"))]))
    rehash(copy, "timeseries.csv")
    all_refuse(capsys, copy, tmp_path, copy / "manifest.json", "replicate 1 has no rows in timeseries.csv")


def test_steps_of_one_replicate_that_differ_blame_the_table(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    table = copy / "timeseries.csv"
    lines = table.read_text().split("\n")
    last_of_0 = max(k for k, line in enumerate(lines) if line.startswith("0,"))
    del lines[last_of_0]
    table.write_text("\n".join(lines))
    rehash(copy, "timeseries.csv")
    all_refuse(capsys, copy, tmp_path, table, f"the rows of replicate 0 are not steps 0 to {STEPS} (they end at")


# --------------------------------------------------------------------------- the timeseries' columns


def edit_columns(directory: Path, change, *, rehashed: bool = True) -> None:
    """Rewrite timeseries.csv's columns with `change(rows)` (rows: lists of fields, the header first); rehash."""
    path = directory / "timeseries.csv"
    rows = [line.split(",") for line in path.read_text().split("\n")[:-1]]  # the toy's fields hold no commas
    path.write_text("\n".join(",".join(row) for row in change(rows)) + "\n")
    if rehashed:
        rehash(directory, "timeseries.csv")


def drop(*columns: str):
    def change(rows):
        keep = [k for k, name in enumerate(rows[0]) if name not in columns]
        return [[row[k] for k in keep] for row in rows]

    return change


def rename(old: str, new: str):
    def change(rows):
        rows[0] = [new if name == old else name for name in rows[0]]
        return rows

    return change


def add(column: str, value: str):
    return lambda rows: [rows[0] + [column]] + [row + [value] for row in rows[1:]]


def repeat(column: str):
    def change(rows):
        k = rows[0].index(column)
        return [row + [row[k]] for row in rows]

    return change


def rename_faction(old: str, new: str):
    """Every column of faction `old` (its figures, defections, pairs, alignments) named for `new`."""
    subject = re.compile(rf"(?<=[.~>]){old}\b|\b{old}(?=[~>])")

    def change(rows):
        rows[0] = [subject.sub(new, name) for name in rows[0]]
        return rows

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(drop("fighters.Blue"), "timeseries.csv: missing column fighters.Blue", id="fighters dropped"),
        pytest.param(drop("control.bridge"), "missing column control.bridge", id="control dropped"),
        pytest.param(drop("step"), "missing column step", id="step dropped"),
        pytest.param(drop("insurgent_cells", "clashes"), "missing columns clashes, insurgent_cells",
                     id="two dropped"),
        pytest.param(rename("fighters.Blue", "fighters.Green"), "missing column fighters.Blue", id="fighters renamed"),
        pytest.param(rename("killed.Red", "killed.Cells"), "missing column killed.Red", id="killed given to Cells"),
        pytest.param(rename("control.bridge", "control.atlantis"), "missing column control.bridge",
                     id="control renamed"),
        pytest.param(rename_faction("Blue", "Green"),
                     "missing columns fighters.Blue, wounded_now.Blue, territory.Blue, budget.Blue, arrears.Blue and "
                     "13 more", id="a faction renamed"),
        pytest.param(add("bogus", "0"), "unknown column 'bogus', not one of the columns a run of scenario.yaml records",
                     id="unknown column"),
        pytest.param(add("fighters.Ghost", "5"), "unknown column 'fighters.Ghost'", id="a faction's column added"),
        pytest.param(add("control.atlantis", "Blue"), "unknown column 'control.atlantis'", id="a site's added"),
        pytest.param(add("", ""), "unknown column ''", id="a nameless column"),
        pytest.param(repeat("fighters.Blue"), "duplicate header 'fighters.Blue'", id="a column twice"),
    ],
)  # fmt: skip
def test_a_column_of_the_timeseries_deleted_renamed_or_added_is_refused(run_dir, tmp_path, capsys, change, message):
    # Deleted or renamed (checksum updated), a figure was plotted as absent (the plots leave out
    # a column that is not there); compare takes figures by prefix, so an added `killed.X` was
    # summed into the militias' killed. Every reader now wants the columns a run of the scenario records.
    copy = copy_of(run_dir, tmp_path)
    edit_columns(copy, change)
    all_refuse(capsys, copy, tmp_path, copy / "timeseries.csv", message)


def test_the_timeseries_columns_in_another_order_still_read(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    edit_columns(copy, lambda rows: [row[:3] + row[3:][::-1] for row in rows])
    all_accept(capsys, copy, tmp_path)


LATER = ("salary_offered.Blue", "hiring.Blue", "salary_offered.Red", "hiring.Red")


def test_a_run_from_before_the_later_figures_still_reads(run_dir, tmp_path, capsys):
    # Runs written before the recorder had the offered salary and the hiring share (1 Dec 2026,
    # format 1) lack those columns: still read, and only those may be missing.
    def old(manifest: dict) -> None:
        format_1_without_files(manifest)
        del manifest["kind"]
        manifest["started_utc"], manifest["finished_utc"] = "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:05+00:00"

    for columns, accepted in ((LATER, True), ((*LATER, "budget.Blue"), False)):
        where = tmp_path / str(accepted)
        where.mkdir()
        copy = copy_of(run_dir, where)
        edit_manifest(copy, old)
        edit_columns(copy, drop(*columns), rehashed=False)  # a format-1 manifest has no checksums
        if accepted:
            all_accept(capsys, copy, where)
            capsys.readouterr()  # what the readers said
        else:
            all_refuse(capsys, copy, where, copy / "timeseries.csv", "missing column budget.Blue")


def test_a_run_of_format_2_without_the_later_figures_is_refused(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    edit_columns(copy, drop(*LATER))
    all_refuse(capsys, copy, tmp_path, copy / "timeseries.csv", f"missing columns {', '.join(LATER)}")


# --------------------------------------------------------------------------- values out of range

TIMESERIES = "timeseries.csv"
EVENTS = "events.csv"


def first_event(kind: str):
    return lambda fields: fields["event"] == kind


@pytest.mark.parametrize(
    ("name", "column", "value", "where", "message"),
    [
        pytest.param(TIMESERIES, "fighters.Blue", "inf", None,
                     "fighters.Blue at line 2 is inf, not a whole number in [0, 1e+15]", id="inf fighters"),
        pytest.param(TIMESERIES, "fighters.Blue", "-5", None, "is -5, not a whole number in [0, 1e+15]",
                     id="negative fighters"),
        pytest.param(TIMESERIES, "fighters.Blue", "2.5", None, "is 2.5, not a whole number in [0, 1e+15]",
                     id="half a fighter"),
        pytest.param(TIMESERIES, "budget.Blue", "1e308", None, None, id="1e308 budget is a finite number"),
        pytest.param(TIMESERIES, "budget.Blue", "-inf", None, "is -inf, not a finite number", id="budget -inf"),
        pytest.param(TIMESERIES, "territory.Blue", "1.5", None, "is 1.5, not a number in [0, 1]", id="share 1.5"),
        pytest.param(TIMESERIES, "tension.Blue~Red", "", None, "is empty, not a number >= 0", id="tension NaN"),
        pytest.param(TIMESERIES, "replicate", "99", None, "replicate at line 2 is 99, not one of manifest.json's",
                     id="replicate 99"),
        pytest.param(TIMESERIES, "seed", "12", None, "seed at line 2 is 12, not the seed manifest.json gives",
                     id="another seed"),
        pytest.param(TIMESERIES, "step", "9999", None, f"the rows of replicate 0 are not steps 0 to {STEPS} in order",
                     id="step 9999"),
        pytest.param(TIMESERIES, "control.bridge", "Ghost", None,
                     "control.bridge at line 2 is 'Ghost', not a faction of the scenario", id="control Ghost"),
        pytest.param(EVENTS, "step", "9999", None, f"step at line 2 is 9999, not a whole number in [0, {STEPS}]",
                     id="event step 9999"),
        pytest.param(EVENTS, "replicate", "99", None, "replicate at line 2 is 99", id="event replicate 99"),
        pytest.param(EVENTS, "event", "alien_landing", None, "event at line 2 is 'alien_landing', not an event type",
                     id="unknown event type"),
        pytest.param(EVENTS, "side_a", "Ghost", first_event("clash"), "side_a at line", id="unknown faction"),
        pytest.param(EVENTS, "site", "atlantis", first_event("clash"), "is 'atlantis', not a site of the scenario",
                     id="unknown site"),
        pytest.param(EVENTS, "row", "500", first_event("clash"), "row at line", id="clash off the grid"),
        pytest.param(EVENTS, "killed_a", "-1", first_event("clash"), "is -1, not a whole number in [0, 1e+15]",
                     id="negative killed"),
        pytest.param(EVENTS, "killed_a", "inf", first_event("clash"), "is inf, not a whole number in [0, 1e+15]",
                     id="infinite killed"),
        pytest.param(EVENTS, "killed_b", "1e300", first_event("clash"), "is 1e+300, not a whole number in [0, 1e+15]",
                     id="1e300 killed"),  # export-acled wrote a 301-digit fatalities
    ],
)  # fmt: skip
def test_values_out_of_their_range_are_refused_whatever_the_checksums(
    run_dir, tmp_path, capsys, name, column, value, where, message
):
    copy = copy_of(run_dir, tmp_path)
    edit_csv(copy, name, column, value, where=where)
    if message is None:
        all_accept(capsys, copy, tmp_path)
    else:
        all_refuse(capsys, copy, tmp_path, copy / name, message)


def set_array(key: str, change):
    def edit(arrays: dict) -> None:
        arrays[key] = change(arrays[key].copy())

    return edit


def poke(value, index=(0,)):
    def change(array):
        array[index] = value
        return array

    return change


def first_clash_at(row: int, col: int):
    def change(clash):
        clash[0, 2:] = row, col
        return clash

    return change


def drop_array(key: str):
    def edit(arrays: dict) -> None:
        del arrays[key]

    return edit


def add_array(key: str, value):
    def edit(arrays: dict) -> None:
        arrays[key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(set_array("control", poke(99, (0, 0, 0, 0))), "control holds 99, not a control code (-2 to 2",
                     id="control code 99"),
        pytest.param(set_array("influence", poke(np.nan, (0, 0, 0, 0, 0))), "influence holds NaN, not a number >= 0",
                     id="influence NaN"),
        pytest.param(set_array("influence", poke(-1.0, (0, 0, 0, 0, 0))), "influence holds -1, not a number >= 0",
                     id="influence negative"),
        pytest.param(set_array("clash_cells", poke(500, (0, 2))), "clash_cells' rows holds 500, not a row of the grid",
                     id="clash cell off the grid"),
        pytest.param(set_array("clash_cells", poke(7, (0, 0))), "clash_cells holds replicate 7",
                     id="clash cell of replicate 7"),
        pytest.param(set_array("snapshot_steps", poke(9999, (2,))),
                     f"snapshot_steps holds 9999, not a step from 0 to {STEPS}",
                     id="snapshot step 9999"),
        pytest.param(set_array("terrain", poke(40, (0, 0))), "terrain holds 40, not a terrain code", id="terrain 40"),
        pytest.param(set_array("terrain", lambda a: np.full_like(a, TERRAINS.index("impassable"))),
                     "terrain differs from scenario.yaml's in 286 of 288 cells (first at row 0, column 0: impassable "
                     "where scenario.yaml gives rural)", id="terrain all impassable"),
        pytest.param(set_array("terrain", lambda a: np.where(a == TERRAINS.index("impassable"),
                                                             TERRAINS.index("rural"), a).astype(a.dtype)),
                     "terrain differs from scenario.yaml's in 2 of 288 cells (first at row 0, column 12: rural where "
                     "scenario.yaml gives impassable)", id="impassable cells opened"),
        pytest.param(set_array("site_cols", poke(-3)), "site_cols holds -3, not a column of the grid", id="site off"),
        pytest.param(set_array("control", lambda a: a.astype(float)), "control holds float64, not whole numbers",
                     id="control as floats"),
        pytest.param(set_array("faction_names", lambda a: a[::-1].copy()), "faction_names are not those of scenario",
                     id="factions reordered"),
        # accepted before, and drawn: a site's label or kind, a faction's label not the scenario's
        pytest.param(set_array("site_labels", poke("Atlantis")),
                     "site_labels gives 'Atlantis' for site 'west_town', where scenario.yaml gives 'West town'",
                     id="a site's label"),
        pytest.param(set_array("site_kinds", poke("crossing")),
                     "site_kinds gives 'crossing' for site 'west_town', where scenario.yaml gives 'town'",
                     id="a site's kind"),
        pytest.param(set_array("faction_labels", lambda a: a[::-1].copy()),
                     "faction_labels gives 'Insurgent cells' for faction 'Blue', where scenario.yaml gives 'Blue",
                     id="faction labels reordered"),
        pytest.param(set_array("faction_labels", lambda a: a[:1].copy()),
                     "faction_labels holds 1 label, not one per faction of scenario.yaml (3)", id="a faction label"),
        # every run writes these: without site_labels plot failed (KeyError); without clash_cells it drew no clash
        pytest.param(drop_array("site_labels"), "missing array site_labels", id="no site_labels"),
        pytest.param(drop_array("clash_cells"), "missing array clash_cells", id="no clash_cells"),
        # accepted before: the writer's arrays and their dtypes are fixed; another array, or influence in float64
        # (twice the bytes, and not the float32 that the control check allows for), was written by something else
        pytest.param(add_array("notes", np.zeros(3)), "array 'notes' is none that a run writes (terrain, control, ",
                     id="an extra array"),
        pytest.param(set_array("influence", lambda a: a.astype(np.float64)),
                     "influence holds float64, not float32 as a run writes", id="influence as float64"),
        pytest.param(set_array("control", lambda a: a.astype(np.int64)), "control holds int64, not int16 as a run "
                     "writes", id="control as int64"),
        # accepted before: clash cells that are not events.csv's clashes were drawn as clashes
        pytest.param(set_array("clash_cells", lambda a: a[:0].copy()), "clash_cells lacks the clash of replicate 1 "
                     "on step 41 at row 8, column 12", id="clash_cells emptied"),
        pytest.param(set_array("clash_cells", first_clash_at(0, 12)), "clash_cells holds a clash of replicate 1 on "
                     "step 41 at row 0, column 12", id="a clash moved onto impassable ground"),
        pytest.param(set_array("clash_cells", lambda a: np.concatenate([a, a[:1]])), "events.csv does not log",
                     id="a clash drawn twice"),
        # accepted before, and drawn: control the stored influence does not give, influence where the model puts none
        pytest.param(set_array("control", poke(0, (0, 2, 0, 12))), "control gives 'Blue' at row 0, column 12 "
                     f"(replicate 0, step {STEPS}, impassable ground), where the influence stored there gives none",
                     id="control on impassable ground"),
        pytest.param(set_array("influence", poke(50.0, (0, 2, 0, 0, 12))), "influence holds 50 for 'Blue' at row 0, "
                     f"column 12 (replicate 0, step {STEPS}): impassable ground where no clash was",
                     id="influence on impassable ground"),
        pytest.param(set_array("control", poke(1, (0, 2, 2, 2))), f"control gives 'Red' at row 2, column 2 (replicate "
                     f"0, step {STEPS}), where the influence stored there gives 'Blue' (control_threshold 0.6, "
                     "min_influence 0.5", id="a cell given to another faction"),
        pytest.param(set_array("control", poke(0, (0, 2, 4, 9))), "control gives 'Blue' at row 4, column 9 (replicate "
                     f"0, step {STEPS}), where the influence stored there gives contested", id="a contested cell held"),
        pytest.param(set_array("control", lambda a: np.where(a == 0, 1, np.where(a == 1, 0, a)).astype(a.dtype)),
                     "control gives 'Red' at row 2, column 2 (replicate 0, step 0), where the influence stored there "
                     "gives 'Blue'", id="Blue's and Red's cells swapped"),
        pytest.param(set_array("influence", lambda a: a * 2), "control gives none at row 1, column 3 (replicate 0, "
                     "step 0), where the influence stored there gives 'Blue'", id="influence doubled"),
        pytest.param(set_array("influence", lambda a: a / 2), "control gives 'Blue' at row 2, column 2 (replicate 0, "
                     "step 0), where the influence stored there gives none", id="influence halved"),
    ],
)  # fmt: skip
def test_maps_out_of_their_range_are_refused_whatever_the_checksums(run_dir, tmp_path, capsys, edit, message):
    # Terrain of valid codes was not compared with the scenario's: all of it impassable (checksum
    # updated) was plotted as such, and exported, compared, as if the run had that grid.
    copy = copy_of(run_dir, tmp_path)
    with np.load(run_dir / "maps.npz") as data:
        assert len(data["clash_cells"]) and data["control"].shape[2:] == (12, 24)
    edit_maps(copy, edit)
    all_refuse(capsys, copy, tmp_path, copy / "maps.npz", message)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_what_the_model_writes_for_every_shipped_scenario_reads_back(path, tmp_path):
    # The checks of what the files hold must never refuse a run as the model writes it
    out = tmp_path / "run"
    sim.simulate(path, seed=11, steps=40, replicates=2).save(out, plots=False)
    from sim.results import load_run

    run = load_run(out)
    assert run.maps["control"].shape[:2] == (2, 3)


def test_a_clash_on_impassable_ground_leaves_influence_and_control_there_that_read_back(tmp_path, monkeypatch):
    # Before 2026-12-05 a front cell on impassable ground could see a clash (now its chance is 0:
    # `conflict.clash_ground`); results written then hold the winner's influence there, and the
    # control it gave, and still read back. Emulated by letting every cell see a clash.
    from sim.geography import build_geography
    from sim.processes import conflict
    from sim.results import load_run

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(conflict, "clash_ground", lambda world: np.ones(world.geo.n_cells, dtype=bool))
        sim.simulate("syria_wide", seed=11, steps=20, replicates=2).save(out, plots=False)
    run = load_run(out)
    impassable = ~build_geography(run.config).passable
    clash = run.maps["clash_cells"]
    assert [1, 10, 37, 81] in clash[impassable[clash[:, 2], clash[:, 3]]].tolist()  # replicate 1, step 10
    assert list(run.maps["snapshot_steps"]) == [0, 10, 20]
    influence, control = run.maps["influence"][1], run.maps["control"][1]
    assert (influence[1, :, 37, 81] > 0).any() and control[1, 37, 81] == -1  # that day: influence, no new control
    assert control[2, 37, 81] >= 0 and impassable[37, 81]  # ten days later: held
    # the same run now: no clash there, and no influence on impassable ground at all
    now = tmp_path / "now"
    sim.simulate("syria_wide", seed=11, steps=20, replicates=2).save(now, plots=False)
    run = load_run(now)
    clash = run.maps["clash_cells"]
    assert len(clash) and not impassable[clash[:, 2], clash[:, 3]].any()
    assert not run.maps["influence"][:, :, :, impassable].any()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_run_without_clashes_reads_back_whatever_columns_its_events_have(seed, tmp_path):
    # a day without clashes: events.csv without row and col (seed 1: defections only; seed 2: no event at all)
    out = tmp_path / "run"
    sim.simulate(TOY, seed=seed, steps=1, replicates=2).save(out, plots=False)
    from sim.results import load_run

    run = load_run(out)
    assert "row" not in run.events.columns and not len(run.maps["clash_cells"])


def test_a_scenario_that_does_not_validate_is_refused_by_plot_as_by_the_others(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    path = copy / "scenario.yaml"
    text = path.read_text()
    assert "salary_usd_month: 120" in text
    path.write_text(text.replace("salary_usd_month: 120", "salary_usd_month: -120", 1))
    rehash(copy, "scenario.yaml")
    all_refuse(capsys, copy, tmp_path, path, "salary_usd_month")


# --------------------------------------------------------------------------- the ranges are the recorder's


def test_every_recorded_column_and_event_has_its_range(run_dir):
    import re

    from sim.results import load_run
    from sim.tables import EVENT_FIELDS, EVENT_KINDS, figure_range

    run = load_run(run_dir)
    control = [c for c in run.timeseries.columns[3:] if c.startswith("control.")]
    assert control and all(figure_range(c) is not None for c in run.timeseries.columns[3:] if c not in control)
    assert set(run.events.columns[4:]) <= set(EVENT_FIELDS)
    emitted = set()
    for source in (Path(sim.__file__).parent / "processes").glob("*.py"):
        emitted |= set(re.findall(r'world\.event\(\s*"(\w+)"', source.read_text()))
    assert emitted == set(EVENT_KINDS)


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [("toy_two_towns", ["steps=120"]), ("toy_two_towns", ["steps=1"]), ("baseline", ["steps=60"]),
     ("isis_resurgence", ["steps=60", "rules.insurgency.attack_rate=0.05"])],
)  # fmt: skip
def test_every_outcome_of_real_runs_is_what_its_kind_says_it_holds(scenario, overrides):
    # Readers refuse an outcome outside its kind's values, or empty where a finished run never leaves it
    # (sim.sweep.outcome_problem): every value real runs give must pass, or a sweep could not be analysed.
    from sim.outcomes import KINDS, compute_outcomes, parse
    from sim.runner import run_model
    from sim.scenario import load_scenario
    from sim.sweep import outcome_problem

    config = load_scenario(SCENARIOS / f"{scenario}.yaml", overrides)
    for seed in (1, 2):
        run = run_model(config, seed)
        for name in every_outcome_name(config):
            try:
                value = compute_outcomes([name], run.table, run.events, run.meta)[name]
            except KeyError:  # a subject the run did not record: a failed run in a sweep, not a value
                continue
            assert outcome_problem(name, [value], [True]) is None, (name, value, KINDS[parse(name)[0]].values)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [*((path.stem, []) for path in sorted(SCENARIOS.glob("*.yaml"))),
     ("toy_two_towns", ["hostilities=[[Red, Blue], [Cells, Blue]]"])],
)  # fmt: skip
def test_the_timeseries_columns_a_reader_wants_are_the_recorders(name, overrides):
    # Readers want exactly `timeseries_columns(config)`: were it to differ from what the recorder
    # writes, they would refuse the program's own runs.
    from sim.model import CorridorModel
    from sim.scenario import load_scenario
    from sim.tables import timeseries_columns

    config = load_scenario(SCENARIOS / f"{name}.yaml", overrides)
    assert timeseries_columns(config) == CorridorModel(config, seed=1).datacollector.columns


@pytest.mark.parametrize(("threshold", "min_influence"), [(0.6, 0.5), (0.5, 0.0), (1.0, 3.0), (0.75, 1e-9)])
def test_the_control_the_model_computes_passes_from_influence_rounded_to_float32(threshold, min_influence):
    # maps.npz keeps influence as float32: the model's control must pass from it (at step 0 some
    # shares sit on the threshold, topped up to 1 + 1e-9 times it, which float32 rounds below),
    # and no other code away from a boundary (rows 0 to 25 are built on one).
    from sim.processes.influence import control_map, hold_top_up
    from sim.results import possible_control

    rng = np.random.default_rng(7)
    n_f, height, width = 4, 40, 40
    influence = rng.exponential(5.0, (n_f, height, width)) * (rng.random((n_f, height, width)) < 0.6)
    influence[1, :5] = influence[0, :5]  # ties: the first leads
    influence[2, 5:10] = 10.0 ** rng.uniform(-300, -30, (5, width))  # far below float32's least
    influence[:, 10:15] *= min_influence / max(influence[:, 10:15].sum(axis=0).max(), 1e-300)  # totals near the least
    hostile = np.zeros((n_f, n_f), dtype=bool)
    for a, b in [(0, 1), (0, 3), (1, 3), (2, 3)]:
        hostile[a, b] = hostile[b, a] = True
    for row in range(15, 25):  # held just enough, as on day 0 (`honour_initial_control`)
        for col in range(width):
            holder = int(rng.integers(n_f))
            cell = influence[:, row, col]
            influence[holder, row, col] += hold_top_up(cell, holder, hostile, threshold, min_influence)
    control, _ = control_map(influence, hostile, threshold, min_influence)
    stored = influence.astype(np.float32)
    assert possible_control(stored, control, hostile, threshold, min_influence).all()
    codes = [possible_control(stored, np.full_like(control, c), hostile, threshold, min_influence)
             for c in range(-2, n_f)]  # fmt: skip
    assert np.sum(codes, axis=0)[25:].max() == 1  # cells away from a boundary: one code only


def test_the_fields_every_event_has_are_the_ones_the_model_gives(run_dir):
    import ast

    from sim.tables import EVENT_REQUIRED

    given: dict[str, set[str]] = {}
    for source in (Path(sim.__file__).parent / "processes").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "event" and node.args:
                given.setdefault(node.args[0].value, set()).update(k.arg for k in node.keywords)
    assert set(EVENT_REQUIRED) == set(given)
    for kind, fields in EVENT_REQUIRED.items():
        assert set(fields) <= given[kind], (kind, set(fields) - given[kind])


def _blue_and_red_swapped(arrays: dict) -> None:
    """Blue's and Red's control and influence given to each other: control still follows from influence."""
    control = arrays["control"]
    arrays["control"] = np.where(control == 0, 1, np.where(control == 1, 0, control)).astype(control.dtype)
    arrays["influence"] = arrays["influence"][:, :, [1, 0, 2]].copy()


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        pytest.param("maps.npz", lambda copy: edit_maps(copy, _blue_and_red_swapped),
                     "control at step 0 of replicate 0 gives 'Blue' 68 of the 286 passable cells, where "
                     "timeseries.csv's territory.Blue at line 2 says 0.2202797202797203 (the two disagree)",
                     id="Blue and Red swapped in the maps"),
        pytest.param(TIMESERIES, lambda copy: edit_csv(copy, TIMESERIES, "control.east_town", "Blue", row=STEPS),
                     f"control at step {STEPS} of replicate 0 gives site east_town (row 6, column 19) to 'Red', where "
                     f"timeseries.csv's control.east_town at line {STEPS + 2} says 'Blue'", id="a site's holder"),
        pytest.param(TIMESERIES, lambda copy: edit_csv(copy, TIMESERIES, "territory.contested", "0.5", row=30),
                     "control at step 30 of replicate 0 gives 'contested'", id="contested share"),
    ],
)  # fmt: skip
def test_the_maps_control_is_timeseries_csvs_at_each_snapshot(run_dir, tmp_path, capsys, name, edit, message):
    # Accepted before: both hold the day's control (territory shares, the sites' holders); a
    # relabelling of control with its influence alike passes every check of the maps alone.
    copy = copy_of(run_dir, tmp_path)
    edit(copy)
    all_refuse(capsys, copy, tmp_path, copy / "maps.npz", message)


def test_a_clash_moved_in_events_csv_is_refused_as_disagreeing_with_the_maps(run_dir, tmp_path, capsys):
    copy = copy_of(run_dir, tmp_path)
    with np.load(run_dir / "maps.npz") as data:
        replicate, step, row, col = data["clash_cells"][0]
    edit_csv(copy, EVENTS, "col", str((col + 5) % 24), where=first_event("clash"))
    message = f"clash_cells holds a clash of replicate {replicate} on step {step} at row {row}, column {col} that "
    all_refuse(capsys, copy, tmp_path, copy / "maps.npz", message + "events.csv does not log (")


@pytest.mark.parametrize("column", ["killed_b", "side_a"])
def test_a_field_deleted_from_events_is_refused_whatever_the_checksums(run_dir, tmp_path, capsys, column):
    # without killed_b, export-acled wrote fatalities 0 for the clashes that had killed
    copy = copy_of(run_dir, tmp_path)
    path = copy / EVENTS
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.drop(columns=[column]).to_csv(path, index=False)
    rehash(copy, EVENTS)
    all_refuse(capsys, copy, tmp_path, path, f"has no {column}")
