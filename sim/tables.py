"""A run's two tables as CSV text, written straight from what the runs recorded (no pandas).

`timeseries.csv` and `events.csv` of a results directory (`sim.results.write_run_files`) are
these bytes. They were written with pandas' `DataFrame.to_csv`; importing pandas took about
a third of a second of a one-year `run.py run` (issue 13, target 2), so the text is made here
with the same rules, and a run's command does not import pandas at all:

- columns: `replicate`, `seed`, then the run's own: the timeseries' `step` and figures in
  the recorder's order (`sim.recording.Recorder.columns`); the events' fields in order of
  first appearance over all runs' events (the model's begin `step`, `event`);
- whole numbers as integers, other numbers as the shortest text that reads back as the same
  float64 (Python's and numpy's `repr`, as pandas writes them), NaN and missing fields empty;
- an events field whose numbers are all whole (counts, with gaps where an event lacks
  them) is written as integers, as `sim.runner.events_table` makes such columns Int64,
  over all runs at once;
- text quoted only where the CSV needs it (Python's `csv` module, pandas' own writer);
  a field holding any text (or True/False) is a text column, as `text_columns` reports.

Where this differs from the pandas files (on purpose; the values read back are the same):
pandas judged each run's events apart and then joined them, so a count field that one run
lacked altogether (a short or quiet run) became floats, written `1.0`; here it is `1`. And
`step` of a run set where some run had no events was listed among the text columns; here it
is a number. Tests (tests/test_tables.py) hold the timeseries and real runs' events to
pandas' bytes, those two cases to the rules above, and both tables to the values
`sim.runner.stack_results` gives, read back through `sim.results.read_result_csv`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.runner import RunResult
    from sim.schema import Scenario


@dataclass(frozen=True)
class CsvTable:
    """One table as CSV: its UTF-8 bytes, data rows and the names of its text columns."""

    data: bytes
    rows: int
    text_columns: list[str]


def _number_text(values: np.ndarray) -> list[str]:
    """(n,) int or float array -> its cells: integers as such, floats by repr, NaN empty."""
    if values.dtype.kind in "iu":
        return values.astype(str).tolist()
    cells = values.astype(str)  # numpy's shortest round-trip text, as pandas writes float64
    cells[np.isnan(values)] = ""
    return cells.tolist()


def _write(header: Sequence[str], columns: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # pandas' to_csv: QUOTE_MINIMAL, '"', "\n" on POSIX
    writer.writerow(header)
    writer.writerows(zip(*columns))
    return buffer.getvalue().encode("utf-8")


def timeseries_csv(results: Sequence[RunResult]) -> CsvTable:
    """`timeseries.csv` of runs of one scenario: one row per run and step, `replicate`, `seed`, `step`, figures.

    Raises:
        ValueError: no runs, or runs that recorded different columns (not one scenario).
    """
    if not results:
        raise ValueError("no runs to write")
    names = list(results[0].recorded.columns)
    columns: list[list[str]] = [[] for _ in range(3 + len(names))]
    text: set[str] = set()
    for result in results:
        recorded = result.recorded
        if list(recorded.columns) != names:
            raise ValueError("runs of different scenarios: their timeseries have different columns")
        arrays = recorded.arrays(names)
        n = len(arrays["step"])
        columns[0] += [str(int(result.replicate))] * n
        columns[1] += [str(int(result.seed))] * n
        columns[2] += _number_text(arrays["step"])
        for k, name in enumerate(names, start=3):
            values = arrays[name]
            if values.dtype == object:  # control labels
                columns[k] += ["" if v is None else str(v) for v in values.tolist()]
                text.add(name)
            else:
                columns[k] += _number_text(values)
    header = ["replicate", "seed", "step", *names]
    return CsvTable(_write(header, columns), len(columns[0]), [c for c in header if c in text])


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _missing(value) -> bool:
    """An events field an event lacks (None) or holds as NaN: an empty cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _field_text(values: list) -> tuple[list[str], bool]:
    """One events field over every event (None where an event lacks it) -> (cells, is text)."""
    present = [v for v in values if not _missing(v)]
    if present and all(_is_number(v) for v in present):
        integers = all(isinstance(v, (int, np.integer)) for v in present)  # any size, written exactly
        whole = integers or all(float(v).is_integer() and abs(v) <= 2**53 for v in present)  # exact both ways
        if whole:
            return ["" if _missing(v) else str(int(v)) for v in values], False
        cells = _number_text(np.array([np.nan if v is None else float(v) for v in values], dtype=float))
        return cells, False
    return ["" if _missing(v) else str(v) for v in values], bool(present)


def events_csv(results: Sequence[RunResult]) -> CsvTable:
    """`events.csv` of runs: one row per event, `replicate`, `seed`, then `step`, `event` and the fields.

    A run without events adds no rows; with no events at all the file is the header
    `replicate,seed,step,event`. Text columns: the fields with any text (names, outcomes,
    True/False), and `event`.
    """
    fields: dict[str, None] = {}
    rows: list[tuple[int, int, dict]] = []
    for result in results:
        if not result.event_records:  # an empty table still has these columns (`sim.runner.events_table`)
            fields.update(dict.fromkeys(("step", "event")))
        for record in result.event_records:
            fields.update(dict.fromkeys(record))
            rows.append((int(result.replicate), int(result.seed), record))
    header = ["replicate", "seed", *fields]
    columns = [[str(r) for r, _, _ in rows], [str(s) for _, s, _ in rows]]
    text = []
    for name in fields:
        cells, is_text = _field_text([record.get(name) for _, _, record in rows])
        columns.append(cells)
        if is_text or name == "event":
            text.append(name)
    return CsvTable(_write(header, columns), len(rows), text)


# --------------------------------------------------------------------------- what the columns hold


@dataclass(frozen=True)
class Range:
    """The values a numeric column may hold: finite, within [low, high], whole numbers if `whole`."""

    low: float = -math.inf
    high: float = math.inf
    whole: bool = False

    def describe(self) -> str:
        """"a whole number in [0, 1e+15]", "a number in [0, 1]", "a number >= 0", "a finite number"."""
        kind = "a whole number" if self.whole else "a number"
        if self.low > -math.inf and self.high < math.inf:
            return f"{kind} in [{self.low:g}, {self.high:g}]"
        if self.low > -math.inf:
            return f"{kind} >= {self.low:g}"
        return f"{kind}" if self.whole else "a finite number"

    def outside(self, values) -> np.ndarray:
        """A boolean array: where `values` (numbers) are not finite (NaN too), or outside [low, high], or not whole.

        Whole numbers are checked only if `whole`; an array of integers is compared exactly.
        """
        values = np.asarray(values)
        if values.dtype.kind in "iu":
            return (values < self.low) | (values > self.high)
        values = values.astype(float)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (values < self.low) | (values > self.high)
            if self.whole:
                bad |= np.isfinite(values) & (values != np.floor(values))
        return bad


# People, events, cells: whole numbers, at most 1e15, far above any count a run makes (the
# schema's towns hold at most 2e10 people); every whole number below 2**53 = 9.0e15 is exact
# as a float, so a count read from a CSV is the count written.
MAX_COUNT = 1e15
COUNT = Range(0, MAX_COUNT, True)
SHARE = Range(0, 1)  # 0-1
NON_NEGATIVE = Range(0)  # USD, tension index, insurgent cells
FINITE = Range()  # any finite number (a budget)

# A militia's own figures, in the recorder's order (`sim.recording.build_reporters`), and the
# daily tallies (`sim.recording.DAILY_TALLIES`): the names of the columns (`timeseries_columns`).
MILITIA_FIGURES = (
    "wounded_now", "territory", "budget", "arrears", "salary", "salary_offered", "hiring", "joined", "desertions",
    "killed", "wounded",
)  # fmt: skip
TALLY_FIGURES = (
    "clashes", "clashes_at_sites", "meetings", "agreements", "failures", "escalations", "lootings",
    "insurgent_attacks", "new_headquarters",
)  # fmt: skip

# The recorder's figures (`sim.recording.build_reporters`: columns `figure.subject`, or the
# daily tallies by name) and what each holds, as its reporter's docstring says. Readers of
# a run's timeseries.csv check it against these (`sim.results`); tests/test_damaged_contents.py
# checks that every column the recorder makes has its entry here.
FIGURE_RANGES: dict[str, Range] = {
    "fighters": COUNT,
    "wounded_now": COUNT,
    "joined": COUNT,
    "desertions": COUNT,
    "killed": COUNT,
    "wounded": COUNT,
    "defections": COUNT,
    "territory": SHARE,
    "hiring": SHARE,
    "calm": SHARE,
    "alignment": SHARE,
    "budget": FINITE,
    "arrears": NON_NEGATIVE,
    "salary": NON_NEGATIVE,
    "salary_offered": NON_NEGATIVE,
    "tension": NON_NEGATIVE,
    "insurgent_cells": NON_NEGATIVE,
    **dict.fromkeys(TALLY_FIGURES, COUNT),
}  # fmt: skip
CONTROL_FIGURE = "control"  # `control.<site>`: a faction's name, "contested" or "none" (`sim.recording.site_control`)
# Figures the recorder added after its first version (2026-12-01: the offered salary and the
# hiring share of each militia): a directory written before manifests had a format (format 1)
# may lack them, and is still read (`sim.results.load_run`).
LATER_FIGURES = ("salary_offered", "hiring")


def figure_range(column: str) -> Range | None:
    """What a timeseries column holds (`FIGURE_RANGES`, by the head of its name); None: a control or unknown column."""
    return FIGURE_RANGES.get(column) or FIGURE_RANGES.get(column.split(".", 1)[0])


def timeseries_columns(config: Scenario) -> list[str]:
    """The figure columns a run of `config` records, in the recorder's order (`sim.recording.Recorder.columns`).

    Made from the scenario alone (no model; readers of a run need none): every faction's
    `fighters`; each militia's own figures; `territory.contested`; the defections between
    militias; the tension and calm of each hostile pair of militias; each site's control;
    each tribe's alignment with each militia; the daily tallies; `insurgent_cells` where a
    faction is the insurgents. timeseries.csv holds `replicate`, `seed`, `step` and these.
    tests/test_damaged_contents.py holds them to the recorder's for every scenario in scenarios/.
    """
    names = list(config.factions)
    militias = [name for name in names if config.factions[name].kind == "militia"]
    columns: list[str] = []
    for name in names:
        columns.append(f"fighters.{name}")
        if name in militias:
            columns += [f"{head}.{name}" for head in MILITIA_FIGURES]
    columns.append("territory.contested")
    columns += [f"defections.{a}>{b}" for a in militias for b in militias if a != b]
    # Hostile pairs as the world orders them (`sim.world.build_world`: by faction index, each
    # once); the insurgents' pairs hold no militia pair's figures.
    order = {name: k for k, name in enumerate(names)}
    pairs = {tuple(sorted(pair, key=order.__getitem__)) for pair in config.hostilities}
    for a, b in sorted(pairs, key=lambda pair: (order[pair[0]], order[pair[1]])):
        if a != b and a in militias and b in militias:
            columns += [f"tension.{a}~{b}", f"calm.{a}~{b}"]
    columns += [f"{CONTROL_FIGURE}.{site}" for site in config.sites]
    columns += [f"alignment.{tribe}.{name}" for tribe in config.tribes for name in militias]
    columns += TALLY_FIGURES
    if any(config.factions[name].kind == "insurgent" for name in names):
        columns.append("insurgent_cells")
    return columns


# The model's events (`sim.world.World.event` calls in sim/processes/) and their fields:
# "faction" (a faction's name), "site" (a site's name), "row" / "col" (a cell of the grid),
# "text", or the Range of a number. An event lacks the fields of other kinds (empty cells).
EVENT_KINDS = ("clash", "defection", "insurgent_attack", "looting", "meeting", "new_headquarters", "salary_review")
# The fields every event of a kind has (`world.event` in sim/processes/: always given, never
# None); readers refuse an events.csv that lacks one for an event of that kind (tests check
# these against the calls).
EVENT_REQUIRED: dict[str, tuple[str, ...]] = {
    "clash": ("row", "col", "side_a", "side_b", "fighters_a", "fighters_b", "killed_a", "wounded_a", "killed_b",
              "wounded_b", "winner", "ground"),
    "insurgent_attack": ("row", "col", "side_a", "side_b", "killed_b", "wounded_b"),
    "meeting": ("side_a", "side_b", "outcome", "p_success", "tension"),
    "defection": ("from_faction", "to_faction", "count"),
    "salary_review": ("faction", "salary_before", "salary_after"),
    "new_headquarters": ("faction", "site"),
    "looting": ("faction", "site"),
}  # fmt: skip
EVENT_FIELDS: dict[str, str | Range] = {
    "faction": "faction",
    "from_faction": "faction",
    "to_faction": "faction",
    "side_a": "faction",
    "side_b": "faction",
    "winner": "faction",
    "site": "site",
    "row": "row",
    "col": "col",
    "count": COUNT,
    "fighters_a": COUNT,
    "fighters_b": COUNT,
    "killed_a": COUNT,
    "killed_b": COUNT,
    "wounded_a": COUNT,
    "wounded_b": COUNT,
    "p_success": SHARE,
    "tension": NON_NEGATIVE,
    "salary_before": NON_NEGATIVE,
    "salary_after": NON_NEGATIVE,
    "outcome": "text",
    "ground": "text",
    "partition": "text",
}
