"""Damaged result files are bad input: every reader refuses them with exit status 2, one line
naming the file and what is wrong, and draws or writes nothing from them (`sim.results`).

Each test damages a copy of a small, whole results directory (a run, a sweep, a calibration's
posterior) in one way and runs one command on it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SCENARIOS, edit_manifest, edit_maps, rehash

import sim
from sim import cli
from sim.results import ResultFileError, journal_line, load_run, read_jsonl, read_result_csv

TOY = SCENARIOS / "toy_two_towns.yaml"
SWEEP_SET = [
    "sweep={design: grid, replicates: 1, parameters: {factions.Red.salary_usd_month: [120, 200]},"
    " outputs: [killed_total, territory_final.Red]}",
    "steps=6",
]
OBSERVED = "event_date,event_type,fatalities,location\n2019-11-03,Battles,1,West town\n"


# --------------------------------------------------------------------------- damage


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def truncate_at(share: float):
    def damage(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: max(1, int(len(data) * share))])

    return damage


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    if path.suffix == ".json":  # where the structure is: damage inside a string value goes unseen
        middle = data.index(b'": ', middle)
    data[middle : middle + 4] = b"#@!%"
    path.write_bytes(bytes(data))


def not_utf8(path: Path) -> None:
    lines = _lines(path)
    lines[1] = lines[1].replace(b",", b",\xe9", 1)
    path.write_bytes(b"".join(lines))


def cut_mid_row(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4])  # the last row loses its end and its newline


def short_row(path: Path) -> None:
    lines = _lines(path)
    lines[1] = lines[1].rsplit(b",", 2)[0] + b"\n"  # a row with fewer fields, newline kept
    path.write_bytes(b"".join(lines))


def delete_row(path: Path) -> None:
    lines = _lines(path)
    del lines[len(lines) // 2]
    path.write_bytes(b"".join(lines))


def extra_field(path: Path) -> None:
    lines = _lines(path)
    lines[2] = lines[2].rstrip(b"\n") + b",1\n"
    path.write_bytes(b"".join(lines))


def duplicate_header(path: Path) -> None:
    lines = _lines(path)
    names = lines[0].rstrip(b"\n").split(b",")
    names[-1] = names[0]
    lines[0] = b",".join(names) + b"\n"
    path.write_bytes(b"".join(lines))


def non_numeric(path: Path) -> None:
    lines = _lines(path)
    fields = lines[1].split(b",")
    fields[2] = b"abc"  # the step (run tables) or seed (sweep tables): numbers
    lines[1] = b",".join(fields)
    path.write_bytes(b"".join(lines))


def replace_array(path: Path) -> None:
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["influence"] = arrays["influence"][:, :, :1]  # one faction fewer than faction_names
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def drop_array(path: Path) -> None:
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files if key != "control"}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def not_a_manifest(path: Path) -> None:
    path.write_text("[1, 2, 3]\n")


def other_kind(path: Path) -> None:
    # A kind no command writes: a known one names the directory as that kind instead
    # (test_a_missing_path_a_file_or_another_kind_of_directory_is_named_as_such).
    manifest = json.loads(path.read_text())
    manifest["kind"] = "faction-sim report"
    path.write_text(json.dumps(manifest))


def steps_nan(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["steps"] = float("nan")
    path.write_text(json.dumps(manifest))  # written as NaN, which Python's json reads back


def nested_too_deeply(path: Path) -> None:
    path.write_text("[" * 100_000)


def edit_a_value(path: Path) -> None:
    text = path.read_text()
    path.write_text(text.replace("label:", "label: x", 1) if "label:" in text else text + "# edited\n")


def format_null(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["format"] = None
    path.write_text(json.dumps(manifest))


MANIFEST_DAMAGE = {
    "manifest truncated at 1 byte": (truncate_at(0.0), "truncated or damaged JSON at line 1"),
    "manifest truncated in the middle": (truncate_at(0.5), "truncated or damaged JSON at line"),
    "manifest truncated before its end": (truncate_at(0.995), "truncated or damaged JSON at line"),
    "manifest garbled": (garble, "truncated or damaged JSON at line"),
    "manifest not UTF-8": (not_utf8, "not UTF-8 (byte offset"),
    "manifest empty": (empty, "empty file"),
    "manifest not an object": (not_a_manifest, "not a JSON object"),
    "manifest of another kind": (other_kind, "manifest (kind: 'faction-sim report')"),
    "manifest steps NaN": (steps_nan, "steps is not a whole number >= 0 (nan)"),
    "manifest nested too deeply": (nested_too_deeply, "damaged JSON (nested too deeply)"),
    "manifest format null": (format_null, "format null is not one this version reads (1 or 2)"),  # was "format None"
}


def byte_order_mark(path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


CSV_DAMAGE = {
    "empty": (empty, "empty file"),
    "not UTF-8": (not_utf8, "not UTF-8 (byte offset"),
    "cut mid-row": (cut_mid_row, "row cut off at line"),
    "a short row": (short_row, "row cut off at line 2"),
    "a row deleted": (delete_row, "rows where manifest.json says"),
    "an extra field": (extra_field, "extra fields on line 3"),
    "a duplicate header": (duplicate_header, "duplicate header"),
    "a non-number": (non_numeric, "non-numeric value 'abc' in numeric column"),
    "a byte-order mark": (byte_order_mark, "starts with a byte-order mark (U+FEFF)"),  # was "missing column"
}
MAPS_DAMAGE = {
    "truncated": (truncate_at(0.5), "damaged archive"),
    "garbled": (garble, "maps.npz: "),
    "empty": (empty, "empty file"),
    "an array replaced": (replace_array, "influence has shape"),
    "an array missing": (drop_array, "missing array control"),
}


def run_cases(files: tuple[str, ...]):
    cases = [pytest.param("manifest.json", fn, msg, id=k) for k, (fn, msg) in MANIFEST_DAMAGE.items()]
    for name in files:
        if name.endswith(".csv"):
            cases += [pytest.param(name, fn, msg, id=f"{name} {k}") for k, (fn, msg) in CSV_DAMAGE.items()]
    cases += [pytest.param("maps.npz", fn, msg, id=f"maps.npz {k}") for k, (fn, msg) in MAPS_DAMAGE.items()]
    cases.append(pytest.param("scenario.yaml", edit_a_value, "differs from the sha256", id="scenario.yaml edited"))
    return cases


def refused(capsys, status: int, path: Path, message: str) -> str:
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.count("\n") == 0, err
    assert str(path) in err and message in err, err
    assert "internal error" not in err
    return err


# --------------------------------------------------------------------------- a run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "run"
    sim.simulate(TOY, seed=5, steps=40, replicates=2).save(out, plots=False)
    assert len(_lines(out / "events.csv")) > 4  # rows to delete and cut
    return out


def damaged_copy(run_dir: Path, tmp_path: Path, name: str, damage) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    damage(copy / name)
    return copy


@pytest.mark.parametrize(("name", "damage", "message"), run_cases(("timeseries.csv", "events.csv")))
def test_plot_refuses_a_damaged_run(run_dir, tmp_path, capsys, name, damage, message):
    copy = damaged_copy(run_dir, tmp_path, name, damage)
    refused(capsys, cli.main(["plot", str(copy)]), copy / name, message)
    assert not (copy / "plots").exists()  # nothing drawn


@pytest.mark.parametrize(("name", "damage", "message"), run_cases(("events.csv",)))
def test_export_acled_refuses_a_damaged_run(run_dir, tmp_path, capsys, name, damage, message):
    copy = damaged_copy(run_dir, tmp_path, name, damage)
    out = tmp_path / "acled.csv"
    refused(capsys, cli.main(["export-acled", str(copy), "--out", str(out)]), copy / name, message)
    assert not out.exists()


@pytest.mark.parametrize(("name", "damage", "message"), run_cases(("events.csv",)))
def test_compare_events_refuses_a_damaged_run(run_dir, tmp_path, capsys, name, damage, message):
    copy = damaged_copy(run_dir, tmp_path, name, damage)
    observed = tmp_path / "observed.csv"
    observed.write_text(OBSERVED)
    out = tmp_path / "cmp"
    refused(capsys, cli.main(["compare-events", str(copy), str(observed), "--out", str(out)]), copy / name, message)
    assert not out.exists()


def test_the_whole_run_still_reads_and_plots(run_dir, tmp_path, capsys):
    copy = damaged_copy(run_dir, tmp_path, "manifest.json", lambda path: None)
    assert cli.main(["plot", str(copy)]) == 0, capsys.readouterr().err
    manifest = json.loads((copy / "manifest.json").read_text())
    run = load_run(copy)
    assert len(run.timeseries) == manifest["files"]["timeseries.csv"]["rows"] > 0
    assert len(run.events) == manifest["files"]["events.csv"]["rows"] > 0


def legacy(path: Path) -> None:
    """A manifest.json as written before manifests recorded their format, kind and files (1 Dec 2026)."""
    manifest = json.loads(path.read_text())
    del manifest["files"], manifest["kind"], manifest["format"]
    manifest["started_utc"], manifest["finished_utc"] = "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:05+00:00"
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (cut_mid_row, "row cut off at line"),
        (short_row, "row cut off at line 2"),
        (extra_field, "extra fields on line 3"),
        (not_utf8, "not UTF-8"),
        (duplicate_header, "duplicate header"),
        (non_numeric, "non-numeric value"),
    ],
)
def test_a_run_written_before_manifests_had_counts_is_checked_without_them(run_dir, tmp_path, capsys, damage, message):
    copy = damaged_copy(run_dir, tmp_path, "timeseries.csv", damage)
    legacy(copy / "manifest.json")
    refused(capsys, cli.main(["plot", str(copy)]), copy / "timeseries.csv", message)


def test_a_run_written_before_manifests_had_counts_still_plots(run_dir, tmp_path, capsys):
    copy = damaged_copy(run_dir, tmp_path, "manifest.json", legacy)
    assert cli.main(["plot", str(copy)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (copy / "plots").iterdir())


# --------------------------------------------------------------------------- the reading layer


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3,4", "row cut off at line 3 (the file does not end with a newline)"),
        ('a,b\n1,"x\n', "row cut off at line"),
        ("a,b\n1,2\n3\n", "row cut off at line 3 (1 fields, the header has 2)"),
        ("a,b\n1,2\n3,4,5\n", "extra fields on line 3 (3 fields, the header has 2)"),
        ('a,b\n1,"x,y",z\n', "extra fields on line 2"),
        ("a,a\n1,2\n", "duplicate header 'a'"),
        ("a,b\n1,2\n3,x\n", "non-numeric value 'x' in numeric column b at line 3"),
        ("a,b\n1,True\n", "non-numeric value 'True' in numeric column b at line 2"),
    ],
)
def test_read_result_csv_says_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(ResultFileError) as caught:
        read_result_csv(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_read_result_csv_checks_rows_and_columns_against_the_manifest(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ResultFileError, match="1 rows where manifest.json says 2"):
        read_result_csv(path, expected_rows=2)
    with pytest.raises(ResultFileError, match="missing column c"):
        read_result_csv(path, expected_columns=["a", "c"])
    with pytest.raises(ResultFileError, match="differs from the sha256"):
        read_result_csv(path, sha256="0" * 64)
    assert read_result_csv(path, expected_rows=1)["b"].tolist() == [2]


def test_plot_refuses_a_replicate_seed_that_is_no_number(run_dir, tmp_path, capsys):
    def seed_text(path: Path) -> None:
        manifest = json.loads(path.read_text())
        manifest["replicates"][0]["seed"] = "abc"
        path.write_text(json.dumps(manifest))

    copy = damaged_copy(run_dir, tmp_path, "manifest.json", seed_text)
    message = "replicates.0.seed is not a whole number >= 0 ('abc')"
    refused(capsys, cli.main(["plot", str(copy)]), copy / "manifest.json", message)
    assert not (copy / "plots").exists()


def plots_a_file(directory: Path) -> None:
    shutil.rmtree(directory / "plots", ignore_errors=True)
    (directory / "plots").write_text("not a folder\n")


def test_plot_refuses_plots_that_is_a_file(run_dir, tmp_path, capsys):
    copy = damaged_copy(run_dir, tmp_path, "plots", lambda path: plots_a_file(path.parent))
    refused(capsys, cli.main(["plot", str(copy)]), copy / "plots", "not a directory (a file)")
    assert (copy / "plots").read_text() == "not a folder\n"


# --------------------------------------------------------------------------- a sweep


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "sweep"
    argv = ["sweep", str(TOY), "--seed", "3", "--out", str(out), "--no-analysis"]
    for setting in SWEEP_SET:
        argv += ["--set", setting]
    assert cli.main(argv) == 0
    assert len(read_jsonl(out / "runs.jsonl")) == 2
    return out


def sweep_cases(files: tuple[str, ...]):
    cases = [pytest.param("manifest.json", fn, msg, id=k) for k, (fn, msg) in MANIFEST_DAMAGE.items()]
    for name in files:
        cases += [pytest.param(name, fn, msg, id=f"{name} {k}") for k, (fn, msg) in CSV_DAMAGE.items()]
    return cases


@pytest.mark.parametrize(("name", "damage", "message"), sweep_cases(("design.csv", "outcomes.csv")))
def test_analyze_refuses_a_damaged_sweep(sweep_dir, tmp_path, capsys, name, damage, message):
    copy = damaged_copy(sweep_dir, tmp_path, name, damage)
    refused(capsys, cli.main(["analyze", str(copy)]), copy / name, message)
    assert not (copy / "summary.csv").exists() and not (copy / "plots").exists()


@pytest.mark.parametrize(("name", "damage", "message"), sweep_cases(("design.csv",)))
def test_sweep_resume_refuses_a_damaged_sweep(sweep_dir, tmp_path, capsys, name, damage, message):
    copy = damaged_copy(sweep_dir, tmp_path, name, damage)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    argv = ["sweep", str(TOY), "--resume", str(copy), "--no-analysis"]
    for setting in SWEEP_SET:
        argv += ["--set", setting]
    refused(capsys, cli.main(argv), copy / name, message)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before  # nothing written


def test_analyze_refuses_replicates_that_are_no_number(sweep_dir, tmp_path, capsys):
    def replicates_text(path: Path) -> None:
        manifest = json.loads(path.read_text())
        manifest["replicates"] = "x"
        path.write_text(json.dumps(manifest))

    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", replicates_text)
    message = "replicates is neither a whole number >= 1 nor a list of replicates ('x')"
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "manifest.json", message)
    assert not (copy / "summary.csv").exists() and not (copy / "plots").exists()


def test_analyze_refuses_plots_that_is_a_file_and_writes_nothing(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "plots", lambda path: plots_a_file(path.parent))
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "plots", "not a directory (a file)")
    assert not (copy / "summary.csv").exists() and (copy / "plots").read_text() == "not a folder\n"


def test_sweep_resume_refuses_a_journal_line_nested_too_deeply(sweep_dir, tmp_path, capsys):
    def nest(path: Path) -> None:
        path.write_bytes(_lines(path)[0] + b"[" * 100_000 + b"\n" + b"".join(_lines(path)[1:]))

    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", nest)
    before = (copy / "runs.jsonl").read_bytes()
    message = "line 2 is not a JSON object (nested too deeply)"
    refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "runs.jsonl", message)
    assert (copy / "runs.jsonl").read_bytes() == before


def journal_to_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def journal_line_too_long(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"x" * (2 * 1024 * 1024) + b"\n")


def journal_too_many_lines(path: Path) -> None:
    path.write_bytes(path.read_bytes() * 11)  # 22 lines: a sweep of 2 runs writes at most 2 * 2 + 16


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(journal_to_dev_zero, "runs.jsonl: is not a regular file", id="a link to /dev/zero"),
        pytest.param(journal_line_too_long, "runs.jsonl: line 3 is longer than 1024 KiB", id="a line too long"),
        pytest.param(journal_too_many_lines, "runs.jsonl: more than 20 lines", id="too many lines"),
    ],
)
@pytest.mark.parametrize("command", ["sweep --resume", "analyze"])
def test_a_journal_that_never_ends_is_refused_without_reading_it_all(
    sweep_dir, tmp_path, capsys, damage, message, command
):
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", damage)
    argv = sweep_argv("--resume", str(copy)) if command == "sweep --resume" else ["analyze", str(copy)]
    refused(capsys, cli.main(argv), copy / "runs.jsonl", message)
    assert not (copy / "summary.csv").exists()


def test_sweep_resume_refuses_a_damaged_journal_line_and_keeps_the_journal(sweep_dir, tmp_path, capsys):
    def damage_first_line(path: Path) -> None:
        lines = _lines(path)
        lines[0] = lines[0][:10] + b"\n"
        path.write_bytes(b"".join(lines))

    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", damage_first_line)
    journal = (copy / "runs.jsonl").read_bytes()
    argv = ["sweep", str(TOY), "--resume", str(copy), "--no-analysis"]
    for setting in SWEEP_SET:
        argv += ["--set", setting]
    refused(capsys, cli.main(argv), copy / "runs.jsonl", "line 1 is not a JSON object")
    assert (copy / "runs.jsonl").read_bytes() == journal  # nothing cut off


def test_a_torn_last_journal_line_is_still_dropped(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(b'{"point": 0}\n{"point": 1}\n{"point": 2, "rep')
    assert read_jsonl(path, repair=True) == [{"point": 0}, {"point": 1}]
    assert path.read_bytes() == b'{"point": 0}\n{"point": 1}\n'


# --------------------------------------------------------------------------- run --posterior


POSTERIOR = "point,rules.clashes.lethality,distance\n3,0.05,0.1\n7,0.06,0.2\n"
INFLUENCE_RULES = ("rules.influence.min_influence", "rules.influence.control_threshold")


def calibration_dir(tmp_path: Path, scenario: str, parameters=("rules.clashes.lethality",)) -> Path:
    directory = tmp_path / "calibration"
    directory.mkdir()
    (directory / "posterior.csv").write_text(POSTERIOR)
    summary = {
        "kind": "faction-sim calibration",
        "scenario": scenario,
        "scenario_file": None,
        "n_accepted": 2,
        "parameters": {p: {} for p in parameters},
    }
    (directory / "calibration.json").write_text(json.dumps(summary))
    return directory


def run_posterior(directory: Path, out: Path, scenario: Path = TOY) -> int:
    return cli.main(["run", str(scenario), "--posterior", str(directory), "--steps", "3", "--out", str(out)])


def test_a_posterior_of_the_same_scenario_runs(tmp_path, capsys):
    directory = calibration_dir(tmp_path, "toy_two_towns")
    assert run_posterior(directory, tmp_path / "o") == 0, capsys.readouterr().err


def test_a_posterior_ensemble_reads_back_with_each_replicates_influence_rules(tmp_path, capsys):
    # Control is checked against influence with the rules each replicate ran with: its draw's, not scenario.yaml's
    directory = calibration_dir(tmp_path, "toy_two_towns", INFLUENCE_RULES)
    (directory / "posterior.csv").write_text(
        f"point,{','.join(INFLUENCE_RULES)},distance\n3,4.0,0.9,0.1\n7,0.05,0.5,0.2\n"
    )
    out = tmp_path / "o"
    argv = ["run", str(TOY), "--posterior", str(directory), "--replicates", "2", "--steps", "10", "--out", str(out)]
    assert cli.main(argv) == 0, capsys.readouterr().err  # its plots read it back
    run = load_run(out)
    assert run.manifest["replicates"][0]["posterior_set"] == ["rules.influence.min_influence=4.0",
                                                              "rules.influence.control_threshold=0.9"]  # fmt: skip

    def unreadable(manifest: dict) -> None:
        manifest["replicates"][1]["posterior_set"] = ["rules.influence.min_influence=lots"]

    copy = damaged_copy(out, tmp_path, "manifest.json", _manifest_edit(unreadable))
    message = "replicates.1.posterior_set gives rules.influence.min_influence 'lots', not a number"
    refused(capsys, cli.main(["plot", str(copy)]), copy / "manifest.json", message)


def test_a_posterior_fitted_to_another_scenario_is_refused_naming_both(tmp_path, capsys):
    directory = calibration_dir(tmp_path, "baseline")
    err = refused(capsys, run_posterior(directory, tmp_path / "o"), directory / "posterior.csv", "fitted to scenario")
    assert "'baseline'" in err and "'toy_two_towns'" in err
    assert not (tmp_path / "o").exists()


def test_a_posterior_with_other_parameters_than_its_calibration_is_refused(tmp_path, capsys):
    directory = calibration_dir(tmp_path, "toy_two_towns", ("rules.clashes.p_max",))
    status = run_posterior(directory, tmp_path / "o")
    refused(capsys, status, directory / "posterior.csv", "belongs to another calibration")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("posterior.csv", cut_mid_row, "row cut off at line"),
        ("posterior.csv", extra_field, "extra fields on line 3"),
        ("posterior.csv", not_utf8, "not UTF-8"),
        ("posterior.csv", duplicate_header, "duplicate header"),
        ("posterior.csv", delete_row, "1 rows where calibration.json says 2"),
        ("calibration.json", truncate_at(0.5), "truncated or damaged JSON"),
        ("calibration.json", other_kind, "not a calibration manifest"),
    ],
)
def test_run_posterior_refuses_a_damaged_calibration(tmp_path, capsys, name, damage, message):
    directory = calibration_dir(tmp_path, "toy_two_towns")
    damage(directory / name)
    refused(capsys, run_posterior(directory, tmp_path / "o"), directory / name, message)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- robustness and calibration --resume


@pytest.fixture(scope="module")
def robustness_dir(tmp_path_factory) -> tuple[Path, object]:
    from sim.robustness import plan_robustness, start_robustness

    plan = plan_robustness("baseline", variants=["salary_parity"], steps=3, points=3, replicates=1, seed=5)
    directory = start_robustness(plan, tmp_path_factory.mktemp("damaged") / "robustness")
    rows = [{"point": p, "replicate": 0, "scenario": "baseline", "status": "ok"} for p in range(2)]
    (directory / "runs.jsonl").write_bytes(b"".join(journal_line(r) for r in rows))  # as Journal writes
    return directory, plan


def damage_first_line(path: Path) -> None:
    lines = _lines(path)
    lines[0] = lines[0][:10] + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("manifest.json", truncate_at(0.5), "truncated or damaged JSON"),
        ("design.csv", cut_mid_row, "row cut off at line"),
        ("design.csv", delete_row, "2 rows where manifest.json says 3"),
        ("design.csv", extra_field, "extra fields on line 3"),
        ("runs.jsonl", damage_first_line, "line 1 is not a JSON object"),
    ],
)
def test_robustness_resume_refuses_a_damaged_job(robustness_dir, tmp_path, name, damage, message):
    from sim.robustness import run_robustness

    directory, plan = robustness_dir
    copy = damaged_copy(directory, tmp_path, name, damage)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    with pytest.raises(ResultFileError) as caught:
        run_robustness(copy, plan, workers=1)
    assert str(caught.value).startswith(f"{copy / name}: ") and message in str(caught.value)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


def test_calibrate_resume_refuses_a_damaged_spec(tmp_path, capsys):
    (tmp_path / "calibration_spec.json").write_text('{"kind": "faction-sim calibration", "scen')
    status = cli.main(["calibrate", "calibrate_baseline", "--resume", str(tmp_path)])
    refused(capsys, status, tmp_path / "calibration_spec.json", "truncated or damaged JSON")


# --------------------------------------------------------------------------- journal checksums


def edit_journal_value(path: Path) -> None:
    """The tester's edit: line 2's first number of an outcome rewritten by hand (sed)."""
    lines = _lines(path)
    row = json.loads(lines[1])
    key = next(k for k, v in row.items() if isinstance(v, (int, float)) and k not in ("point", "replicate", "seed"))
    pattern = rb'("' + re.escape(key.encode()) + rb'": *)[-0-9.eE+a-zA-Z]+'
    lines[1] = re.sub(pattern, rb"\g<1>12345.0", lines[1], count=1)
    assert b"12345.0" in lines[1]
    path.write_bytes(b"".join(lines))


def sweep_argv(*extra: str) -> list[str]:
    argv = ["sweep", str(TOY), *extra, "--no-analysis"]
    for setting in SWEEP_SET:
        argv += ["--set", setting]
    return argv


def _first_line_only(path: Path) -> None:
    path.write_bytes(_lines(path)[0])


@pytest.mark.parametrize("command", ["sweep --resume", "analyze"])
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(Path.unlink, "missing (the record of the job's finished runs, made at its start)", id="deleted"),
        pytest.param(_first_line_only, "holds 1 of the 2 finished runs manifest.json counted", id="cut short"),
        pytest.param(lambda path: path.write_bytes(b""), "holds 0 of the 2 finished runs", id="emptied"),
    ],
)
def test_a_journal_that_lost_finished_runs_is_refused(sweep_dir, tmp_path, capsys, damage, message, command):
    # --resume ran the lost runs again without saying so (a sweep's days of work), and analyze
    # checked outcomes.csv against less of the journal than it came from.
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", damage)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    argv = sweep_argv("--resume", str(copy)) if command == "sweep --resume" else ["analyze", str(copy)]
    err = refused(capsys, cli.main(argv), copy / "runs.jsonl", message)
    assert "restore it, or start the job again in a new directory (--out)" in err
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before  # nothing written or run
    assert not (copy / "plots").exists()


def test_a_sweep_that_never_ran_has_an_empty_journal_and_resumes(tmp_path, capsys):
    from sim.scenario import load_scenario
    from sim.sweep import start_sweep

    config = load_scenario(TOY, overrides=SWEEP_SET)
    directory = start_sweep(
        config,
        out=tmp_path / "new",
        root_seed=3,
        steps=None,
        scenario_file=TOY,
        overrides=SWEEP_SET,
        executor_name="test",
    )
    manifest = json.loads((directory / "manifest.json").read_text())
    assert (directory / "runs.jsonl").read_bytes() == b"" and manifest["journal"] == "runs.jsonl"
    assert "journal_runs" not in manifest  # nothing counted before a session ends
    assert cli.main(sweep_argv("--resume", str(directory))) == 0, capsys.readouterr().err
    assert len(read_jsonl(directory / "runs.jsonl")) == 2
    assert json.loads((directory / "manifest.json").read_text())["journal_runs"] == 2


@pytest.mark.parametrize("damage", [Path.unlink, _first_line_only], ids=["deleted", "cut short"])
def test_a_robustness_journal_that_lost_finished_runs_is_refused(tmp_path, damage):
    from sim.robustness import analyse_robustness, plan_robustness, run_robustness, start_robustness

    plan = plan_robustness("baseline", variants=["salary_parity"], steps=3, points=2, replicates=1, seed=5)
    directory = start_robustness(plan, tmp_path / "robustness")
    assert (directory / "runs.jsonl").read_bytes() == b""
    run_robustness(directory, plan, workers=1)
    assert json.loads((directory / "manifest.json").read_text())["journal_runs"] == 4  # 2 points x 2 scenarios
    damage(directory / "runs.jsonl")
    for job in (lambda: run_robustness(directory, plan, workers=1), lambda: analyse_robustness(directory)):
        with pytest.raises(ResultFileError, match=r"runs.jsonl: (missing|holds 1 of the 4 finished runs)"):
            job()
    assert not (directory / "summary.csv").exists()


def test_journal_lines_carry_a_checksum_and_read_back_exactly_as_journaled(tmp_path):
    from sim.sweep import Journal, read_journal

    rows = [{"point": 0, "replicate": 0, "x": 0.1, "nan": float("nan"), "name": "NA", "y": 10**18 + 1}]
    journal = Journal(tmp_path)
    journal.append(rows[0])
    journal.close()
    line = json.loads((tmp_path / "runs.jsonl").read_bytes())
    assert len(line["#sha256"]) == 64
    (back,) = read_journal(tmp_path)
    assert "#sha256" not in back and json.dumps(back) == json.dumps(rows[0])


def test_sweep_resume_refuses_an_edited_journal_value_and_keeps_outcomes(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", edit_journal_value)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    err = refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "runs.jsonl", "line 2: content differs")
    assert "from its checksum" in err
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before  # outcomes.csv untouched
    assert b"12345" not in (copy / "outcomes.csv").read_bytes()


def test_analyze_refuses_a_sweep_with_an_edited_journal_value(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", edit_journal_value)
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "runs.jsonl", "line 2: content differs from its checksum")
    assert not (copy / "summary.csv").exists() and not (copy / "plots").exists()


def test_robustness_resume_refuses_an_edited_journal_value(robustness_dir, tmp_path):
    from sim.robustness import run_robustness

    directory, plan = robustness_dir

    def edit(path: Path) -> None:
        lines = _lines(path)
        lines[1] = lines[1].replace(b'"point": 1', b'"point": 2')
        path.write_bytes(b"".join(lines))

    copy = damaged_copy(directory, tmp_path, "runs.jsonl", edit)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    with pytest.raises(ResultFileError) as caught:
        run_robustness(copy, plan, workers=1)
    assert str(caught.value) == (
        f"{copy / 'runs.jsonl'}: line 2: content differs from its checksum (changed or damaged since it was written)"
    )
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


LONG_ERROR = "RuntimeError: " + "x" * 586  # 600 characters: a run keeps 500 (`sim.sweep.ERROR_CHARS`)
LONG_ERROR_SHOWN = '"RuntimeError: ' + "x" * 42 + "... (600 characters), longer than the 500 a run records"


def resigned_journal_line(line: int, **values):
    """A damage to runs.jsonl: line `line`'s keys set to `values` (JSON texts; None deletes the key), its checksum
    updated (as a forger, or a tool, would), and a torn last line after it (which a refusal must not cut off).
    """

    def damage(path: Path) -> None:
        lines = _lines(path)
        row = json.loads(lines[line - 1])
        del row["#sha256"]
        for key, text in values.items():
            key = key.replace("__", ".")
            row.pop(key) if text is None else row.update({key: json.loads(text)})
        lines[line - 1] = journal_line(row)
        path.write_bytes(b"".join(lines) + b'{"point": 1, "repl')

    return damage


def resigned_journal_lines(**values):
    """`resigned_journal_line` on every line (no torn line after them)."""

    def damage(path: Path) -> None:
        lines = []
        for line in _lines(path):
            row = json.loads(line)
            del row["#sha256"]
            for key, text in values.items():
                key = key.replace("__", ".")
                row.pop(key) if text is None else row.update({key: json.loads(text)})
            lines.append(journal_line(row))
        path.write_bytes(b"".join(lines))

    return damage


@pytest.mark.parametrize("command", ["sweep --resume", "analyze"])
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(resigned_journal_line(2, killed_total="Infinity"),
                     "line 2: killed_total is Infinity, not an outcome (finite, at most 1e+100 in size, or empty)",
                     id="outcome Infinity"),
        pytest.param(resigned_journal_line(2, territory_final__Red="-1e308"),
                     "line 2: territory_final.Red is -1e+308, not an outcome", id="outcome -1e308"),
        pytest.param(resigned_journal_line(1, killed_total='"12"'), 'line 1: killed_total is "12", not an outcome',
                     id="outcome a text"),
        pytest.param(resigned_journal_line(2, seed="NaN"), "line 2: seed is NaN, not a whole number in [0, ",
                     id="seed NaN"),
        pytest.param(resigned_journal_line(2, point="-1"), "line 2: point is -1, not a whole number in [0, 1e+15]",
                     id="point -1"),
        pytest.param(resigned_journal_line(2, point="7"), "line 2: point 7, replicate 0 is not in design.csv",
                     id="point not in the design"),
        pytest.param(resigned_journal_line(2, seed="5"), "line 2: seed is 5, not design.csv's ", id="another seed"),
        pytest.param(resigned_journal_line(2, replicate=None), "line 2: replicate is missing", id="no replicate"),
        # it resumed, then analyze refused the outcomes.csv it wrote (an empty killed_total for a finished run)
        pytest.param(resigned_journal_line(2, killed_total=None),
                     "line 2: killed_total is missing, where the run finished (status ok)", id="no outcome"),
        # it resumed into an outcomes.csv with an empty elapsed_s, which analyze then refused
        pytest.param(resigned_journal_line(2, elapsed_s=None), "line 2: elapsed_s is missing", id="no elapsed_s"),
        pytest.param(resigned_journal_line(1, status='"done"'), 'line 1: status is "done", not "ok" or "failed"',
                     id="status"),
        pytest.param(resigned_journal_line(2, elapsed_s="-0.5"), "line 2: elapsed_s is -0.5, not a number >= 0",
                     id="elapsed_s -0.5"),
        # a failed run records no outcomes and says why (`run_task`); both lines resumed and were analysed
        pytest.param(resigned_journal_line(2, status='"failed"', error='"RuntimeError: simulated crash"'),
                     "line 2: killed_total is 0.0, not empty (a failed run records no outcomes)",
                     id="failed with outcomes"),
        pytest.param(resigned_journal_line(2, status='"failed"', error='""', killed_total=None,
                                           territory_final__Red=None),
                     'line 2: error is "", where the run failed (status failed; a failed run records why)',
                     id="failed without error"),
        # without an error on any line, --resume's outcomes.csv was an internal error (KeyError)
        pytest.param(resigned_journal_lines(error=None), "line 1: error is missing", id="no error"),
        # a run keeps at most 500 characters of its error (`run_task`): a longer one resumed and was analysed
        pytest.param(resigned_journal_line(2, status='"failed"', error=json.dumps(LONG_ERROR),
                                           killed_total=None, territory_final__Red=None),
                     f"line 2: error is {LONG_ERROR_SHOWN}",
                     id="failed with a 600-character error"),
        # a finished run records no error (`run_task` writes ""): it resumed and was analysed as it stood
        pytest.param(resigned_journal_line(2, error='"RuntimeError: x"'),
                     'line 2: error is "RuntimeError: x", where the run finished (status ok; it records no error)',
                     id="ok with an error"),
    ],
)  # fmt: skip
def test_journal_lines_no_run_wrote_are_refused_whatever_their_checksums(
    sweep_dir, tmp_path, capsys, damage, message, command
):
    # An Infinity (checksum updated) went through --resume into outcomes.csv, which analyze then
    # refused, blaming the file the command had written; a point -1 or a missing replicate was an
    # internal error, a point outside the design a row that analyze refused in outcomes.csv too.
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", damage)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    argv = sweep_argv("--resume", str(copy)) if command == "sweep --resume" else ["analyze", str(copy)]
    refused(capsys, cli.main(argv), copy / "runs.jsonl", message)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before  # nothing written or cut off
    assert not (copy / "plots").exists()


def test_a_journal_line_with_an_empty_outcome_still_resumes(sweep_dir, tmp_path, capsys):
    # NaN is an outcome's "empty" (a share of no clashes): taken, as outcomes.csv takes it
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", resigned_journal_line(2, territory_final__Red="NaN"))
    (copy / "outcomes.csv").unlink()  # as the journal of a sweep killed before it wrote one (else it differs from it)
    assert cli.main(sweep_argv("--resume", str(copy))) == 0, capsys.readouterr().err
    assert cli.main(["analyze", str(copy)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"outcome.killed_total": "Infinity"}, "line 2: outcome.killed_total is Infinity, not an outcome",
                     id="outcome Infinity"),
        pytest.param({"scenario": '"Ghost"'}, 'line 2: scenario is "Ghost", not one of the job\'s scenarios',
                     id="unknown scenario"),
        pytest.param({"pattern.x": "1"}, "line 2: pattern.x is 1, not true, false or null", id="pattern 1"),
        pytest.param({"point": "1.5"}, "line 2: point is 1.5, not a whole number in [0, 1e+15]", id="point 1.5"),
        pytest.param({"outcome.killed_total": "-3"},
                     "line 2: outcome.killed_total is -3, not a whole number in [0, 1e+15] (what killed_total holds)",
                     id="outcome -3"),
        pytest.param({"status": '"failed"', "error": '"RuntimeError: x"', "outcome.killed_total": "3"},
                     "line 2: outcome.killed_total is 3, not empty (a failed run records no outcomes)",
                     id="failed with an outcome"),
        pytest.param({"status": '"failed"'},
                     "line 2: error is missing, where the run failed (status failed; a failed run records why)",
                     id="failed without error"),
        pytest.param({"error": '"RuntimeError: x"'},
                     'line 2: error is "RuntimeError: x", where the run finished (status ok; it records no error)',
                     id="ok with an error"),
    ],
)  # fmt: skip
def test_robustness_refuses_a_journal_line_no_run_wrote(robustness_dir, tmp_path, values, message):
    from sim.robustness import analyse_robustness, run_robustness

    directory, plan = robustness_dir
    copy = damaged_copy(directory, tmp_path, "runs.jsonl", resigned_journal_line(2, **values))
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    for job in (lambda: run_robustness(copy, plan, workers=1), lambda: analyse_robustness(copy)):
        with pytest.raises(ResultFileError) as caught:
            job()
        assert str(caught.value).startswith(f"{copy / 'runs.jsonl'}: {message}"), str(caught.value)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


def old_sweep(directory: Path) -> None:
    """A sweep as written before journals had checksums (1 Dec 2026): no `format`, journal lines without one."""
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["format"]
    for key in ("journal", "journal_runs"):  # nor the journal's records (`sim.sweep.check_journal_kept`)
        del manifest[key]
    manifest["started_utc"] = "2026-12-01T10:00:00+00:00"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    strip_checksums(directory / "runs.jsonl")


def strip_checksums(path: Path) -> None:
    rows = [json.loads(line) for line in _lines(path)]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "#sha256"}) + "\n" for r in rows))


def test_an_old_journal_without_checksums_still_resumes(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", lambda path: None)
    old_sweep(copy)
    lines = _lines(copy / "runs.jsonl")
    (copy / "runs.jsonl").write_bytes(lines[0])  # one run left to do
    assert cli.main(sweep_argv("--resume", str(copy))) == 0, capsys.readouterr().err
    new = _lines(copy / "runs.jsonl")
    assert new[0] == lines[0] and b'"#sha256"' in new[1]  # the old line kept, the new one checksummed
    assert len(read_jsonl(copy / "runs.jsonl")) == 2
    outcomes = pd.read_csv(copy / "outcomes.csv")
    assert len(outcomes) == 2 and "#sha256" not in outcomes.columns
    assert cli.main(["analyze", str(copy)]) == 0, capsys.readouterr().err


def test_deleting_format_and_the_checksums_does_not_switch_the_journal_check_off(sweep_dir, tmp_path, capsys):
    def drop_format(path: Path) -> None:
        manifest = json.loads(path.read_text())
        del manifest["format"]
        path.write_text(json.dumps(manifest))

    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", drop_format)
    strip_checksums(copy / "runs.jsonl")
    before = (copy / "runs.jsonl").read_bytes()
    message = "line 1: has no checksum in a journal of a format-2 directory"
    refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "runs.jsonl", message)
    assert (copy / "runs.jsonl").read_bytes() == before


def test_a_line_without_checksum_after_checksummed_ones_is_refused(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(journal_line({"point": 0}) + b'{"point": 1}\n')
    with pytest.raises(ResultFileError, match=r"runs.jsonl: line 2: has no checksum after checksummed lines"):
        read_jsonl(path)


def test_a_format_2_journal_without_checksums_is_refused(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", strip_checksums)
    refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "runs.jsonl", "line 1: has no checksum")


def test_a_torn_last_checksummed_line_is_still_dropped(tmp_path):
    path = tmp_path / "runs.jsonl"
    whole = journal_line({"point": 0}) + journal_line({"point": 1})
    path.write_bytes(whole + journal_line({"point": 2})[:-9])
    assert read_jsonl(path, repair=True) == [{"point": 0}, {"point": 1}]
    assert path.read_bytes() == whole


# --------------------------------------------------------------------------- manifest `files`


def drop_files(path: Path) -> None:
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))


def files_not_a_dict(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["files"] = []
    path.write_text(json.dumps(manifest))


def drop_a_checksum(path: Path) -> None:
    manifest = json.loads(path.read_text())
    del manifest["files"]["events.csv"]["sha256"]
    path.write_text(json.dumps(manifest))


def drop_files_and_format(path: Path) -> None:
    """Also the `format` deleted: the run's `kind` still marks a manifest that records `files`."""
    manifest = json.loads(path.read_text())
    del manifest["files"], manifest["format"]
    path.write_text(json.dumps(manifest))


FILES_DAMAGE = [
    pytest.param(drop_files, "`files` is missing", id="files deleted"),
    pytest.param(files_not_a_dict, "`files` is not an object", id="files not an object"),
    pytest.param(drop_a_checksum, "files.events.csv has no valid sha256", id="a sha256 deleted"),
    pytest.param(drop_files_and_format, "`files` is missing", id="files and format deleted"),
]


@pytest.mark.parametrize(("damage", "message"), FILES_DAMAGE)
def test_a_new_format_run_without_files_is_refused(run_dir, tmp_path, capsys, damage, message):
    copy = damaged_copy(run_dir, tmp_path, "manifest.json", damage)
    manifest = copy / "manifest.json"
    refused(capsys, cli.main(["plot", str(copy)]), manifest, message)
    assert not (copy / "plots").exists()
    out = tmp_path / "acled.csv"
    refused(capsys, cli.main(["export-acled", str(copy), "--out", str(out)]), manifest, message)
    assert not out.exists()
    observed = tmp_path / "observed.csv"
    observed.write_text(OBSERVED)
    status = cli.main(["compare-events", str(copy), str(observed), "--out", str(tmp_path / "cmp")])
    refused(capsys, status, manifest, message)
    assert not (tmp_path / "cmp").exists()


def test_a_new_format_sweep_without_files_is_refused(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", drop_files)
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "manifest.json", "`files` is missing")
    refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "manifest.json", "`files` is missing")


def test_an_old_format_run_without_kind_and_files_still_plots(run_dir, tmp_path, capsys):
    copy = damaged_copy(run_dir, tmp_path, "manifest.json", legacy)
    assert "format" not in json.loads((copy / "manifest.json").read_text())
    assert cli.main(["plot", str(copy)]) == 0, capsys.readouterr().err
    assert cli.main(["export-acled", str(copy), "--out", str(tmp_path / "acled.csv")]) == 0


def drop_files_kind_and_format(path: Path) -> None:
    """Every mark of format 2 deleted from a manifest written now: it must not pass for an old one."""
    manifest = json.loads(path.read_text())
    for key in ("files", "kind", "format", "fingerprint"):
        manifest.pop(key, None)
    path.write_text(json.dumps(manifest))


def test_deleting_files_kind_and_format_together_does_not_switch_the_checks_off(run_dir, tmp_path, capsys):
    copy = damaged_copy(run_dir, tmp_path, "manifest.json", drop_files_kind_and_format)
    table = copy / "timeseries.csv"
    lines = table.read_text().split("\n")
    fields = lines[1].split(",")
    fields[-1] = "12345"  # still a whole CSV: only the sha256 finds the edit
    table.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]))
    message = "`format` and `files` are missing, and it was not written before manifests had them"
    refused(capsys, cli.main(["plot", str(copy)]), copy / "manifest.json", message)
    assert not (copy / "plots").exists()
    out = tmp_path / "acled.csv"
    refused(capsys, cli.main(["export-acled", str(copy), "--out", str(out)]), copy / "manifest.json", message)
    assert not out.exists()


def test_deleting_a_sweeps_files_fingerprint_and_format_does_not_switch_the_checks_off(sweep_dir, tmp_path, capsys):
    def drop(path: Path) -> None:  # its kind kept: a sweep's manifest must have it
        manifest = json.loads(path.read_text())
        del manifest["files"], manifest["fingerprint"], manifest["format"]
        path.write_text(json.dumps(manifest))

    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", drop)
    message = "`format` and `files` are missing"
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "manifest.json", message)
    assert not (copy / "summary.csv").exists()


# --------------------------------------------------------------------------- not a directory of the kind read

# Every command that reads an output directory, as its arguments around the directory `d`
# (outputs under `tmp`), and the kind of directory it reads. `compare` and `run --posterior`
# also take files (a scenario, a posterior.csv), so a missing path or a file is not theirs to
# call "no such directory".
READERS = {
    "plot": (lambda d, tmp: ["plot", d], "run"),
    "export-acled": (lambda d, tmp: ["export-acled", d, "--out", tmp / "acled.csv"], "run"),
    "compare-events": (lambda d, tmp: ["compare-events", d, tmp / "observed.csv", "--out", tmp / "out"], "run"),
    "compare": (lambda d, tmp: ["compare", d, d, "--no-plots", "--out", tmp / "out"], "run"),
    "analyze": (lambda d, tmp: ["analyze", d], "sweep"),
    "sweep --resume": (lambda d, tmp: ["sweep", TOY, "--resume", d, "--no-analysis"], "sweep"),
    "run --posterior": (lambda d, tmp: ["run", TOY, "--posterior", d, "--out", tmp / "out"], "calibration"),
    "calibrate --resume": (lambda d, tmp: ["calibrate", "calibrate_baseline", "--resume", d], "calibration"),
    "robustness --resume": (lambda d, tmp: ["robustness", "baseline", "--resume", d], "robustness"),
}
TAKES_FILES = ("compare", "run --posterior")


@pytest.mark.parametrize("command", READERS)
def test_a_missing_path_a_file_or_another_kind_of_directory_is_named_as_such(
    run_dir, sweep_dir, tmp_path, capsys, command
):
    argv, kind = READERS[command]
    (tmp_path / "observed.csv").write_text(OBSERVED)

    def refuse(directory: Path, message: str) -> None:
        before = sorted(p.relative_to(directory) for p in directory.rglob("*")) if directory.is_dir() else None
        refused(capsys, cli.main([str(a) for a in argv(directory, tmp_path)]), directory, message)
        assert not (tmp_path / "out").exists() and not (tmp_path / "acled.csv").exists()
        if before is not None:  # nothing written in it (compare-events' default output is inside)
            assert sorted(p.relative_to(directory) for p in directory.rglob("*")) == before

    if command not in TAKES_FILES:
        refuse(tmp_path / "nowhere", "nowhere: no such directory")
        refuse(tmp_path / "observed.csv", "observed.csv: not a directory (a file)")
    if kind == "run":  # a sweep given where a run's results are read: what it is, and what reads it
        refuse(sweep_dir, "sweep: a sweep directory, not a run's results directory (run.py analyze reads it)")
    else:
        refuse(run_dir, f"run: a run's results directory, not a {kind} directory (run.py plot, compare, export-acled")


def test_every_kind_of_output_directory_is_named():
    import sim.calibration
    import sim.comparison
    import sim.robustness
    import sim.sweep
    from sim.results import DIRECTORY_KINDS, RUN_KIND

    kinds = {RUN_KIND, sim.sweep.KIND, sim.calibration.KIND, sim.robustness.KIND, sim.comparison.KIND}
    assert set(DIRECTORY_KINDS) == kinds


def test_a_path_with_a_newline_or_an_escape_sequence_is_shown_escaped_on_one_line(tmp_path, capsys):
    # results_dir_problem's messages printed the path raw: two lines, or a terminal escape obeyed.
    weird = tmp_path / "miss\nsecond\x1b[31m"
    assert cli.main(["plot", str(weird)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err, err
    assert err == f"error: {tmp_path}/miss\\nsecond\\x1b[31m: no such directory\n"


def test_files_that_are_loops_or_directories_are_named_as_such(tmp_path, capsys):
    # They were all "no such file".
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    loop, folder = tmp_path / "loop-a", tmp_path / "folder"
    folder.mkdir()
    assert cli.main(["validate", str(loop)]) == 2
    assert capsys.readouterr().err == f"{loop}: cannot read the file (Too many levels of symbolic links)\n"
    run = tmp_path / "run"
    assert cli.main(["run", "toy_two_towns", "--steps", "2", "--no-plots", "--out", str(run)]) == 0
    capsys.readouterr()
    looping = "cannot read the file (Too many levels of symbolic links)"
    for observed, why in ((loop, looping), (folder, "is a directory, not a file")):
        assert cli.main(["compare-events", str(run), str(observed)]) == 2
        assert capsys.readouterr().err == f"error: {observed}: {why}\n"
    assert cli.main(["run", "toy_two_towns", "--steps", "2", "--no-plots", "--posterior", str(loop)]) == 2
    assert capsys.readouterr().err == f"error: {loop}: cannot read the file (Too many levels of symbolic links)\n"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("events-")) == []  # no comparison begun in the run


def _resigned(edit):
    """A damage to a CSV (outcomes.csv, timeseries.csv) that also updates its sha256 in manifest.json (as a forger,
    or a tool, would).
    """

    def damage(path: Path) -> None:
        lines = path.read_text().splitlines(keepends=True)
        header = lines[0].rstrip("\n").split(",")
        lines[1:] = edit(header, lines[1:])
        text = "".join(lines)
        path.write_text(text)
        manifest_path = path.parent / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["files"][path.name]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        manifest["files"][path.name]["rows"] = len(lines) - 1
        manifest_path.write_text(json.dumps(manifest))

    return damage


def test_an_outcomes_csv_without_its_error_column_is_refused(sweep_dir, tmp_path, capsys):
    # Every sweep writes it; without it, a failed run's row has no error (it was analysed as it stood)
    def drop_error(path: Path) -> None:
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        path.write_text(frame.drop(columns="error").to_csv(index=False))
        rehash(path.parent, path.name)

    copy = damaged_copy(sweep_dir, tmp_path, "outcomes.csv", drop_error)
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "outcomes.csv", "missing column error")
    assert not (copy / "summary.csv").exists()


def _set_field(column: str, value: str, line: int = 0, **more: str):
    """An edit of outcomes.csv's data row `line`: `column` set to `value` (and each of `more`: `__` for `.`)."""

    def edit(header: list[str], rows: list[str]) -> list[str]:
        fields = rows[line].rstrip("\n").split(",")
        for name, text in {column: value, **more}.items():
            fields[header.index(name.replace("__", "."))] = text
        rows[line] = ",".join(fields) + "\n"
        return rows

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set_field("killed_total", "inf"), "line 2, column killed_total: inf is not an outcome (finite"),
        (_set_field("killed_total", "1e308"), "line 2, column killed_total: 1e+308 is not an outcome"),
        (_set_field("killed_total", "12345"), "line 2, column killed_total: 12345.0 where runs.jsonl recorded"),
        (_set_field("factions.Red.salary_usd_month", "999"), "column factions.Red.salary_usd_month: 999"),
        (_set_field("seed", "7"), "line 2, column seed: 7 where design.csv has"),
        (_set_field("point", "5"), "line 2: point 5, replicate 0 is not in design.csv"),
        (lambda header, rows: [rows[0], rows[0]], "line 3: point 0, replicate 0 is listed twice"),
        # analysed as a failed run where no journal had the run
        (_set_field("status", "error"), "line 2, column status: 'error' is not 'ok' or 'failed'"),
        (_set_field("status", "failed", error="RuntimeError: x", killed_total="", territory_final__Red=""),
         "line 2, column status: differs from runs.jsonl"),
        # rows deleted (their count updated too) were left out of the summaries without a word
        (lambda header, rows: rows[1:], "point 0, replicate 0 of design.csv is missing (missing: 1 of its 2 runs)"),
        # a failed run records no outcomes and says why (`run_task`): both were analysed where no journal had the run
        (_set_field("status", "failed", error="RuntimeError: simulated crash"),
         "line 2, column killed_total: 0.0 is not empty (a failed run records no outcomes)"),
        (_set_field("status", "failed", error="", killed_total="", territory_final__Red=""),
         "line 2, column error: empty, where the run failed (status failed; a failed run records why)"),
        (_set_field("status", "failed", error="  ", killed_total="", territory_final__Red=""),
         "line 2, column error: empty, where the run failed"),
        # a finished run records no error (`run_task` writes ""): analysed as it stood
        (_set_field("error", "RuntimeError: x"),
         'line 2, column error: "RuntimeError: x", where the run finished (status ok; it records no error)'),
        # a run keeps at most 500 characters of its error (`run_task`): a longer one was analysed as it stood
        (_set_field("status", "failed", error=LONG_ERROR, killed_total="", territory_final__Red=""),
         f"line 2, column error: {LONG_ERROR_SHOWN}"),
    ],
    ids=["inf", "huge", "edited", "parameter", "seed", "point", "twice", "status", "status not the journal's",
         "rows deleted", "failed with outcomes", "failed without error", "failed with a blank error",
         "ok with an error", "failed with a 600-character error"],
)  # fmt: skip
def test_analyze_refuses_outcomes_its_design_and_journal_did_not_give(sweep_dir, tmp_path, capsys, edit, message):
    # With its checksum updated, an edited outcomes.csv was analysed as it stood (an inf,
    # 1e308 with an overflow warning, a parameter value off the design, another run's seed)
    copy = damaged_copy(sweep_dir, tmp_path, "outcomes.csv", _resigned(edit))
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "outcomes.csv", message)
    assert not (copy / "summary.csv").exists() and not (copy / "plots").exists()
    (copy / "runs.jsonl").unlink()
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "runs.jsonl", "missing (the record of the job's finished")
    # A sweep from before journals were recorded in manifest.json, without its journal: the
    # design and the ranges still hold outcomes.csv to account.
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["journal"], manifest["journal_runs"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    if "runs.jsonl" not in message:
        refused(capsys, cli.main(["analyze", str(copy)]), copy / "outcomes.csv", message)


def test_a_failed_runs_error_that_differs_from_its_journals_is_refused(sweep_dir, tmp_path, capsys):
    # The status and outputs of each row were held to runs.jsonl, its error not: a failed run's
    # error edited in outcomes.csv (its checksum updated) was analysed as it stood.
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy)
    first = pd.read_csv(copy / "outcomes.csv", nrows=1).iloc[0]
    line = 1 + next(n for n, row in enumerate(read_jsonl(copy / "runs.jsonl"))
                    if (row["point"], row["replicate"]) == (first["point"], first["replicate"]))  # fmt: skip
    gone = {name: None for name in ("killed_total", "territory_final__Red")}
    failed = {"status": '"failed"', "error": '"RuntimeError: simulated crash"', **gone}
    resigned_journal_line(line, **failed)(copy / "runs.jsonl")
    (copy / "runs.jsonl").write_bytes(b"".join(_lines(copy / "runs.jsonl")[:-1]))  # without the torn line
    empty = {"killed_total": "", "territory_final__Red": ""}
    as_logged = _set_field("status", "failed", error="RuntimeError: simulated crash", **empty)
    _resigned(as_logged)(copy / "outcomes.csv")
    edit_manifest(copy, lambda m: m.update(n_failed=1))  # as a sweep with that failed run counts it
    assert cli.main(["analyze", str(copy)]) == 0, capsys.readouterr().err  # the same error in both: a failed run
    capsys.readouterr()
    _resigned(_set_field("status", "failed", error="RuntimeError: another crash", **empty))(copy / "outcomes.csv")
    message = "line 2, column error: differs from runs.jsonl"
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "outcomes.csv", message)


# An outcome outside what its kind holds (`sim.outcomes.KINDS[...].values`), as outcomes.csv writes it and as the
# journal does, and what the message says it should be.
OUTSIDE_THEIR_KIND = [
    pytest.param("killed_total", "-3", "-3", "not a whole number in [0, 1e+15] (what killed_total holds)",
                 id="killed_total -3"),
    pytest.param("killed_total", "2.5", "2.5", "not a whole number in [0, 1e+15] (what killed_total holds)",
                 id="killed_total 2.5"),
    pytest.param("killed_total", "", "NaN",
                 "not a whole number in [0, 1e+15] (what killed_total holds; empty only where its run failed)",
                 id="killed_total empty"),
    pytest.param("territory_final.Red", "1.5", "1.5", "not a number in [0, 1] (what territory_final.Red holds)",
                 id="territory 1.5"),
    pytest.param("elapsed_s", "-1", "-1", "not a number >= 0", id="elapsed_s -1"),
]  # fmt: skip


@pytest.mark.parametrize(("column", "text", "json_text", "message"), OUTSIDE_THEIR_KIND)
def test_analyze_refuses_outcomes_outside_what_their_kind_holds(sweep_dir, tmp_path, capsys, column, text,
                                                                json_text, message):  # fmt: skip
    # A killed_total of -3 (or 2.5, or none for a run that finished) in outcomes.csv, its checksum updated,
    # was analysed as it stood: only finite and within 1e100 was asked of an outcome.
    copy = damaged_copy(sweep_dir, tmp_path, "outcomes.csv", _resigned(_set_field(column, text)))
    err = refused(capsys, cli.main(["analyze", str(copy)]), copy / "outcomes.csv", f"line 2, column {column}: ")
    assert message in err, err
    assert not (copy / "summary.csv").exists() and not (copy / "plots").exists()


@pytest.mark.parametrize("command", ["sweep --resume", "analyze"])
@pytest.mark.parametrize(("column", "text", "json_text", "message"), OUTSIDE_THEIR_KIND[:-1])  # elapsed_s: above
def test_a_journal_line_outside_what_its_outcome_holds_is_refused(sweep_dir, tmp_path, capsys, column, text,
                                                                  json_text, message, command):  # fmt: skip
    damage = resigned_journal_line(2, **{column.replace(".", "__"): json_text})
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", damage)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    argv = sweep_argv("--resume", str(copy)) if command == "sweep --resume" else ["analyze", str(copy)]
    err = refused(capsys, cli.main(argv), copy / "runs.jsonl", f"line 2: {column} is {json_text}, ")
    assert message in err, err
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before  # nothing written or cut off


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("point", "-1", "line 2, column point: -1 is not a whole number in [0, 1e+15]"),
        ("replicate", "0.5", "line 2, column replicate: 0.5 is not a whole number in [0, 1e+15]"),
        ("seed", "-7", "line 2, column seed: -7 is not a whole number in [0, 9.22337e+18]"),
    ],
)
@pytest.mark.parametrize("command", ["sweep --resume", "analyze"])
def test_a_design_with_ids_or_seeds_no_design_has_is_refused(sweep_dir, tmp_path, capsys, column, value, message,
                                                             command):  # fmt: skip
    # Accepted with its checksum updated: analyze took a seed of -7 (outcomes.csv and the journal edited alike)
    copy = damaged_copy(sweep_dir, tmp_path, "design.csv", _resigned(_set_field(column, value)))
    argv = sweep_argv("--resume", str(copy)) if command == "sweep --resume" else ["analyze", str(copy)]
    refused(capsys, cli.main(argv), copy / "design.csv", message)
    assert not (copy / "summary.csv").exists() and not (copy / "plots").exists()


def test_a_robustness_design_with_a_negative_point_is_refused(robustness_dir, tmp_path):
    from sim.robustness import run_robustness

    directory, plan = robustness_dir
    copy = damaged_copy(directory, tmp_path, "design.csv", _resigned(_set_field("point", "-1")))
    with pytest.raises(ResultFileError) as caught:
        run_robustness(copy, plan, workers=1)
    assert str(caught.value) == f"{copy / 'design.csv'}: line 2, column point: -1 is not a whole number in [0, 1e+15]"


def test_a_value_of_5001_digits_is_echoed_cut_short_naming_its_line_and_column(run_dir, tmp_path, capsys):
    # The whole value was printed: a 5 KB line of nines before the column and line it was in.
    copy = damaged_copy(run_dir, tmp_path, "timeseries.csv", _resigned(_set_field("fighters.Blue", "9" * 5001, 1)))
    err = refused(capsys, cli.main(["plot", str(copy)]), copy / "timeseries.csv", "column fighters.Blue at line 3")
    assert len(err) < 700 and "a whole number of 5,001 digits" in err, len(err)


def test_analyze_takes_a_sweep_as_written(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "outcomes.csv", lambda path: None)
    assert cli.main(["analyze", str(copy)]) == 0, capsys.readouterr().err
    assert (copy / "summary.csv").exists()


def test_a_whole_number_too_long_for_python_is_refused_in_one_line(run_dir, sweep_dir, tmp_path, capsys):
    # Python refuses to read a whole number of over 4,300 digits: every reader said "internal error"
    def long_number(path: Path) -> None:
        text = path.read_text()
        path.write_text(text.replace("{", '{"workers": 1' + "0" * 5000 + ", ", 1))

    copy = damaged_copy(run_dir, tmp_path, "manifest.json", long_number)
    refused(capsys, cli.main(["plot", str(copy)]), copy / "manifest.json", "a whole number of 5,001 digits")
    shutil.rmtree(copy)
    copy = damaged_copy(sweep_dir, tmp_path, "runs.jsonl", long_number)  # its first line
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "runs.jsonl", "line 1 is not a JSON object (a whole")


@pytest.mark.parametrize("kind", ["a directory", "a link to /dev/zero"])
def test_a_result_file_of_another_kind_is_named_as_such(run_dir, tmp_path, capsys, kind):
    # it was "not a complete results directory (missing events.csv)": the file is there, of the wrong kind
    def replace(path: Path) -> None:
        path.unlink()
        path.mkdir() if kind == "a directory" else path.symlink_to("/dev/zero")

    copy = damaged_copy(run_dir, tmp_path, "events.csv", replace)
    expected = "a directory" if kind == "a directory" else "not a regular file"
    for command in ("plot", "export-acled"):
        refused(capsys, cli.main([command, str(copy)]), copy / "events.csv", f"{expected}")
    assert not (copy / "plots").exists() and not (copy / "acled_events.csv").exists()


def test_a_runs_scenario_yaml_that_extends_another_file_is_refused(run_dir, tmp_path, capsys):
    # written whole: an `extends:` (checksum updated) made plot read a file outside the directory
    outside = tmp_path / "elsewhere.yaml"
    shutil.copy(run_dir / "scenario.yaml", outside)

    def extending(path: Path) -> None:
        text = f"extends: {outside}\n" + path.read_text()
        path.write_text(text)
        manifest = json.loads((path.parent / "manifest.json").read_text())
        manifest["files"]["scenario.yaml"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        (path.parent / "manifest.json").write_text(json.dumps(manifest))

    copy = damaged_copy(run_dir, tmp_path, "scenario.yaml", extending)
    for command in ("plot", "export-acled"):
        refused(capsys, cli.main([command, str(copy)]), copy / "scenario.yaml", f"extends {outside}; a run's")


def _resigned_maps(edit):
    """A damage to maps.npz's arrays (`edit(arrays)` in place) that also updates its sha256 in manifest.json."""
    return lambda path: edit_maps(path.parent, edit)


def _cut_terrain(arrays):
    arrays["terrain"] = arrays["terrain"][:-1]


def _move_a_site(arrays):
    arrays["site_rows"] = arrays["site_rows"] + 1


def _snapshots_reversed(arrays):
    arrays["snapshot_steps"] = arrays["snapshot_steps"][::-1].copy()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(_cut_terrain, "control's grid is 12 x 24 cells, terrain's 11 x 24", id="terrain cut"),
        pytest.param(_move_a_site, "site_rows and site_cols put 'west_town' at row 7", id="a site moved"),
        pytest.param(_snapshots_reversed, "snapshot_steps are [40, 20, 0], not the run's start", id="snapshots"),
    ],
)
def test_maps_edited_with_their_checksum_updated_are_refused(run_dir, tmp_path, capsys, edit, message):
    # Accepted before: the terrain cut blamed `control` with a garbled shape; a site drawn a
    # cell off and snapshots out of order were plotted as they stood.
    copy = damaged_copy(run_dir, tmp_path, "maps.npz", _resigned_maps(edit))
    refused(capsys, cli.main(["plot", str(copy)]), copy / "maps.npz", message)
    assert not (copy / "plots").exists()


def _manifest_edit(edit):
    """A damage to manifest.json: `edit(manifest)` in place (`helpers.edit_manifest`)."""
    return lambda path: edit_manifest(path.parent, edit)


@pytest.mark.parametrize("scenario", [5, "another_name"])
def test_a_manifest_naming_another_scenario_than_its_scenario_yaml_is_refused(run_dir, tmp_path, capsys, scenario):
    copy = damaged_copy(run_dir, tmp_path, "manifest.json", _manifest_edit(lambda m: m.update(scenario=scenario)))
    message = f"scenario is {scenario!r}, not scenario.yaml's"
    refused(capsys, cli.main(["plot", str(copy)]), copy / "manifest.json", message)


def test_a_csv_far_larger_than_its_rows_allow_is_refused_before_it_is_read(run_dir, tmp_path, capsys):
    # A 3 GiB timeseries.csv was read whole (28 s and 6.4 GB of memory) before being refused.
    copy = damaged_copy(run_dir, tmp_path, "timeseries.csv", lambda path: os.truncate(path, 3 * 1024**3))  # sparse
    message = "3,221,225,472 bytes, more than 82 rows"
    err = refused(capsys, cli.main(["plot", str(copy)]), copy / "timeseries.csv", message)
    assert "fields can take" in err and not (copy / "plots").exists()


@pytest.mark.parametrize(
    "value", ["2", -1, 1.5, True, None, 3], ids=["text", "negative", "float", "bool", "null", "more"]
)
def test_a_journal_count_no_job_writes_is_refused(sweep_dir, tmp_path, capsys, value):
    # A count of another type (or past the job's runs) switched the journal check off: a cut journal resumed unsaid.
    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", _manifest_edit(lambda m: m.update(journal_runs=value)))
    for argv in (sweep_argv("--resume", str(copy)), ["analyze", str(copy)]):
        err = refused(capsys, cli.main(argv), copy / "manifest.json", "journal_runs is ")
        assert "not a count of the job's runs (0 to 2" in err


def test_a_finished_sweep_without_its_journal_count_is_refused(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", _manifest_edit(lambda m: m.pop("journal_runs")))
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "manifest.json", "journal_runs is missing")


def test_a_row_count_edited_to_a_million_is_refused_without_running_out_of_memory(run_dir, tmp_path, capsys):
    # The rows bound the bytes a CSV may take: a million rows set aside gigabytes before a byte was read.
    def rows(manifest: dict) -> None:
        manifest["files"]["timeseries.csv"]["rows"] = 1_000_000
        manifest["files"]["events.csv"]["rows"] = 1_000_000

    copy = damaged_copy(run_dir, tmp_path, "manifest.json", _manifest_edit(rows))
    refused(capsys, cli.main(["plot", str(copy)]), copy / "timeseries.csv", "82 rows where manifest.json says 1000000")

    events_rows = _manifest_edit(lambda m: m["files"]["events.csv"].update(rows=1_000_000))
    copy = damaged_copy(run_dir, tmp_path / "events", "manifest.json", events_rows)
    refused(capsys, cli.main(["plot", str(copy)]), copy / "events.csv", "rows where manifest.json says 1000000")


@pytest.mark.parametrize("digits", [309, 4000])
def test_a_whole_number_beyond_a_float_is_named_as_such(run_dir, tmp_path, capsys, digits):
    # pandas raised OverflowError for it: "internal error" from every reader.
    copy = damaged_copy(run_dir, tmp_path, "timeseries.csv", _resigned(_set_field("fighters.Blue", "9" * digits, 1)))
    message = f"a whole number of {digits:,} digits, beyond a float's range"
    refused(capsys, cli.main(["plot", str(copy)]), copy / "timeseries.csv", message)


def test_a_huge_timeseries_is_refused_unread_whatever_row_count_its_manifest_gives(run_dir, tmp_path, capsys):
    # The row count (edited to 20,000) set the bound: a 3 GiB file was read whole (15 s, 6.5 GB) before being refused.
    def huge(path: Path) -> None:
        os.truncate(path, 3 * 1024**3)
        manifest = json.loads((path.parent / "manifest.json").read_text())
        manifest["files"]["timeseries.csv"]["rows"] = 20_000
        (path.parent / "manifest.json").write_text(json.dumps(manifest))

    copy = damaged_copy(run_dir, tmp_path, "timeseries.csv", huge)
    refused(capsys, cli.main(["plot", str(copy)]), copy / "timeseries.csv", "3,221,225,472 bytes, more than 82 rows")


# --------------------------------------------------------------------------- the failed-run count


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1, "n_failed is 1, but outcomes.csv has 0 failed runs (changed or damaged)"),
        (2, "n_failed is 2, but outcomes.csv has 0 failed runs"),
        (3, "n_failed is 3, not a count of the job's runs (0 to 2)"),
        (-1, "n_failed is -1, not a count of the job's runs (0 to 2)"),
        ("0", "n_failed is \"0\", not a count of the job's runs"),
        (None, "n_failed is null, not a count of the job's runs"),
        (0.0, "n_failed is 0.0, not a count of the job's runs"),
    ],
    ids=["one", "all", "more than its runs", "negative", "text", "null", "float"],
)
def test_a_failed_count_that_disagrees_with_outcomes_is_refused(sweep_dir, tmp_path, capsys, value, message):
    # helper-b: a manifest saying runs failed where outcomes.csv has none was analysed as if all were well.
    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", _manifest_edit(lambda m: m.update(n_failed=value)))
    refused(capsys, cli.main(["analyze", str(copy)]), copy / "manifest.json", message)
    assert not (copy / "summary.csv").exists() and not (copy / "plots").exists()


def test_a_robustness_jobs_failed_count_that_disagrees_with_its_journal_is_refused(tmp_path):
    from sim.robustness import analyse_robustness, plan_robustness, run_robustness, start_robustness

    plan = plan_robustness("baseline", variants=["salary_parity"], steps=3, points=2, replicates=1, seed=5)
    directory = start_robustness(plan, tmp_path / "robustness")
    run_robustness(directory, plan, workers=1)
    assert json.loads((directory / "manifest.json").read_text())["n_failed"] == 0
    for value, message in ((1, "n_failed is 1, but runs.jsonl has 0 failed runs"),
                           (5, "n_failed is 5, not a count of the job's runs (0 to 4)")):  # fmt: skip
        edit_manifest(directory, lambda m, value=value: m.update(n_failed=value))
        with pytest.raises(ResultFileError) as caught:
            analyse_robustness(directory, plots=False)
        assert str(caught.value).startswith(f"{directory / 'manifest.json'}: ") and message in str(caught.value)
    assert not (directory / "summary.csv").exists()


# --------------------------------------------------------------------------- --resume over the outcomes it wrote


def _edit_outcome(path: Path) -> None:
    lines = _lines(path)
    fields = lines[1].decode().split(",")
    fields[-2] = "0.123456"  # the row's last outcome (a share, before elapsed_s)
    lines[1] = ",".join(fields).encode()
    path.write_bytes(b"".join(lines))


def test_sweep_resume_refuses_an_outcomes_csv_changed_since_the_sweep_wrote_it(sweep_dir, tmp_path, capsys):
    # helper-b: --resume wrote outcomes.csv anew from the journal, so an edited one was overwritten without a word.
    copy = damaged_copy(sweep_dir, tmp_path, "outcomes.csv", _edit_outcome)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    err = refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "outcomes.csv", "differs from the sha256")
    assert err.endswith("restore it, or delete it and --resume writes it again from runs.jsonl"), err
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before  # nothing written
    rehash(copy, "outcomes.csv")  # its checksum updated too: held to the journal
    message = "column territory_final.Red: 0.123456 where runs.jsonl recorded"
    refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "outcomes.csv", message)
    assert b"0.123456" in (copy / "outcomes.csv").read_bytes()


def test_sweep_resume_refuses_a_failed_count_its_outcomes_do_not_bear_out(sweep_dir, tmp_path, capsys):
    copy = damaged_copy(sweep_dir, tmp_path, "manifest.json", _manifest_edit(lambda m: m.update(n_failed=1)))
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    message = "n_failed is 1, but outcomes.csv has 0 failed runs (changed or damaged)"
    err = refused(capsys, cli.main(sweep_argv("--resume", str(copy))), copy / "manifest.json", message)
    assert "restore" not in err
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


def test_sweep_resume_takes_outcomes_the_journal_gives_or_none(sweep_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(sweep_dir, copy)
    written = (copy / "outcomes.csv").read_bytes()
    assert cli.main(sweep_argv("--resume", str(copy))) == 0, capsys.readouterr().err  # unchanged: resumes
    assert (copy / "outcomes.csv").read_bytes() == written
    (copy / "outcomes.csv").unlink()  # deleted: written again from the journal
    assert cli.main(sweep_argv("--resume", str(copy))) == 0, capsys.readouterr().err
    assert (copy / "outcomes.csv").read_bytes() == written
    # Written from the journal, then interrupted before manifest.json recorded it: resumes.
    edit_manifest(copy, lambda m: m.update(status="interrupted") or m["files"]["outcomes.csv"].update(sha256="0" * 64))
    assert cli.main(sweep_argv("--resume", str(copy))) == 0, capsys.readouterr().err
    assert (copy / "outcomes.csv").read_bytes() == written
