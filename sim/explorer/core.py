"""The explorer's logic, with no user interface: controls, validation, saving, export, playing.

Everything the browser page does to a scenario goes through a `Session`, and everything it
does to a running model through a `Runner`, so both can be tested without a browser or Solara:

    session = Session("baseline")
    session.propose("factions.IRGC.salary_usd_month", "250")   # True: valid, applied
    session.propose("factions.IRGC.salary_usd_month", "-5")    # False: refused, see session.problems
    model = session.new_model()                                 # ExplorerModel of the valid values
    session.save_scenario()                                     # results/explorer/baseline_explorer-<ts>.yaml

    runner = Runner(session.new_model, on_snapshot=draw)        # one page's play loop
    runner.play(); runner.pause(); runner.step(); runner.restart(); runner.close()

The controls come from one table (`CONTROL_TABLE`): each row maps a control to a scenario
key path (with `{militia}`, `{patron}`, `{supply_patron}` or `{tribe}` expanded for the
chosen scenario). Ranges, units and help texts are read from the pydantic fields of
`sim.schema`, never written here; a candidate scenario is validated in full with
`scenario_from_dict` before any model is rebuilt, and its problems are worded with the
fields' labels.

A `Runner` steps its model in one thread of its own and, after each finished step,
publishes a `Snapshot` (copies of the recorded series and of the grid, read-only): the page
draws only snapshots, never the live model, so a redraw cannot read a half-recorded step.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import itertools
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic.fields import FieldInfo

from sim import keypath
from sim.model import CorridorModel
from sim.results import RESULTS_DIR, atomic_write_bytes, rerun_command
from sim.scenario import (
    DEFAULT_SCENARIO,
    SCENARIO_DIR,
    load_scenario,
    resolve_scenario_path,
    scenario_from_dict,
    scenario_to_dict,
)
from sim.schema import Scenario, schema_field
from sim.yaml_source import ScenarioError, dump_yaml

ENV_SCENARIO = "SIM_EXPLORER_SCENARIO"  # the scenario the page opens with (set by `serve`)
ENV_OUT = "SIM_EXPLORER_OUT"  # where saved scenarios and exported data go (default: DEFAULT_OUT)
DEFAULT_OUT = RESULTS_DIR / "explorer"  # the project's results directory, wherever the server was started
SOURCE = "explorer"  # the "file" named in problem lines of values set on the page
PROVENANCE_NOTE = "assumption: set in the explorer"
NAME_SUFFIX = "_explorer"
RECENT_CLASH_STEPS = 14  # clashes of the last two weeks are marked on the map
EVENT_KINDS = ("meeting", "clash", "insurgent_attack", "new_headquarters", "looting")  # shown in the events panel


# --------------------------------------------------------------------------- the control table


@dataclass(frozen=True)
class ControlSpec:
    """One row of the control table.

    `key` and `label` may hold `{militia}` (each faction of kind militia), `{patron}` (each
    patron), `{supply_patron}` (each patron with a supply crossing) or `{tribe}` (each
    tribe); the control is repeated for each. `label` may also hold `{label}`, the entity's
    own label. `group` titles the panel the control sits in.

    Slider range: from the schema field's bounds (ge/gt .. le/lt). Where the field has no
    upper bound, or one far beyond anything sensible (salary <= 100,000 USD), `span` gives
    the slider's top as `span` x the scenario's value, at least `floor` (and never above
    the schema's bound). The typed field next to the slider accepts anything the schema
    accepts, beyond the slider too.
    """

    key: str
    label: str
    group: str
    span: float | None = None
    floor: float = 0.0


MILITIA_GROUP = "{militia}"  # replaced by "NAME: label"
CONTROL_TABLE: tuple[ControlSpec, ...] = (
    # schema le=100,000 USD/month: slider to 3x the scenario's salary (at least 500)
    ControlSpec("factions.{militia}.salary_usd_month", "{militia} salary", MILITIA_GROUP, span=3, floor=500),
    ControlSpec("factions.{militia}.privileges", "{militia} privileges", MILITIA_GROUP),
    ControlSpec("factions.{militia}.exempts_conscription", "{militia} exempts from conscription", MILITIA_GROUP),
    # funding has no upper bound: slider to 3x the scenario's value (at least 5,000 USD/day)
    ControlSpec("patrons.{patron}.funding_usd_day", "{patron} funding", "Patrons", span=3, floor=5000),
    ControlSpec("patrons.{supply_patron}.supply_open", "{supply_patron} supply route open", "Patrons"),
    ControlSpec("patrons.{patron}.green_light", "{patron} green light to escalate", "Patrons"),
    # no upper bound on the meeting schedule: slider to 3x the scenario's value (at least 90 / 30 days)
    ControlSpec("rules.mediation.interval_days", "Scheduled meeting every", "Mediation", span=3, floor=90),
    ControlSpec("rules.mediation.min_days_between", "Minimum gap between meetings", "Mediation", span=3, floor=30),
    ControlSpec("rules.mediation.p_success_base", "Base chance of agreement", "Mediation"),
    # no upper bound on insurgent growth: slider to 3x the scenario's value (at least 1 / 0.1)
    ControlSpec("rules.insurgency.growth_per_clash", "Insurgent growth per clash", "Insurgency", span=3, floor=1),
    ControlSpec(
        "rules.insurgency.base_growth_per_day", "Insurgent growth without rivalry", "Insurgency", span=3, floor=0.1
    ),
    # a probability (0-1) but typically ~0.02/day: slider zoomed to 3x the scenario's value (at least 0.1)
    ControlSpec("tribes.{tribe}.responsiveness", "{label}: responsiveness", "Tribal leaders", span=3, floor=0.1),
)

PLACEHOLDERS = ("militia", "patron", "supply_patron", "tribe")


@dataclass(frozen=True)
class Control:
    """A control on the page, for one scenario: its key path, range, default and help."""

    key: str
    label: str  # with the unit, e.g. "IRGC salary (USD/month)"
    group: str
    kind: Literal["bool", "int", "float"]
    default: Any  # the scenario's value
    low: float | None  # slider range (None for switches)
    high: float | None
    step: float | None
    unit: str
    help: str  # the schema's description
    allowed: str  # the schema's bounds in words, e.g. ">= 0 and <= 1"
    slider_note: str  # how the slider's top was chosen, "" where it is the schema's bound

    @property
    def full_help(self) -> str:
        """The control's tooltip: the schema's help, then the allowed range and the slider note where there are ones."""
        parts = [self.help]
        if self.allowed:
            parts.append(f"allowed: {self.allowed}")
        if self.slider_note:
            parts.append(self.slider_note)
        return "; ".join(parts)


def field_bounds(field: FieldInfo) -> dict[str, float]:
    """{'ge'|'gt'|'le'|'lt': bound} of a pydantic field."""
    bounds = {}
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(item, name, None)
            if value is not None:
                bounds[name] = value
    return bounds


def nice_step(span: float) -> float:
    """A 1-2-5 step giving about 100 slider positions over `span`."""
    if span <= 0:
        return 1.0
    raw = span / 100
    exponent = math.floor(math.log10(raw))
    mantissa = raw / 10**exponent
    factor = 1 if mantissa < 2 else 2 if mantissa < 5 else 5
    return round(factor * 10**exponent, 12)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def make_control(spec: ControlSpec, key: str, label: str, group: str, default: Any) -> Control:
    """A control for one key path, with its range, step and help derived from the schema field."""
    field, kind_type = schema_field(key)
    unit = (field.json_schema_extra or {}).get("unit", "") if isinstance(field.json_schema_extra, dict) else ""
    help_text = field.description or ""
    if kind_type is bool:
        return Control(key, label, group, "bool", bool(default), None, None, None, unit, help_text, "", "")
    if kind_type not in (int, float):
        raise TypeError(f"{key}: a control needs a bool, int or float field, not {kind_type}")
    kind = "int" if kind_type is int else "float"
    b = field_bounds(field)
    words = []
    if "ge" in b:
        words.append(f">= {_number(b['ge'])}")
    if "gt" in b:
        words.append(f"> {_number(b['gt'])}")
    if "le" in b:
        words.append(f"<= {_number(b['le'])}")
    if "lt" in b:
        words.append(f"< {_number(b['lt'])}")
    low = float(b.get("ge", b.get("gt", 0.0)))
    bound = b.get("le", b.get("lt"))
    note = ""
    if spec.span is None:
        if bound is None:
            raise ValueError(f"{key}: the schema gives no upper bound, so the control table needs a span")
        high = float(bound)
    else:
        high = max(spec.span * float(default), spec.floor)
        if bound is not None:
            high = min(high, float(bound))
        note = (
            f"slider up to {_number(spec.span)}x the scenario's value (at least {_number(spec.floor)}); "
            "type larger values"
        )
    step = 1.0 if kind == "int" else nice_step(high - low)
    if "gt" in b:
        low += step
    if "lt" in b and high >= b["lt"]:
        high -= step
    if kind == "int":
        low, high, step = math.ceil(low), math.floor(high), 1
    elif spec.span is not None:  # a relative top ends on the step grid, within the schema's bound
        high = math.ceil(high / step - 1e-9) * step
        high = round(min(high, float(bound)) if bound is not None else high, 12)
    default = int(default) if kind == "int" else float(default)
    suffix = f" ({unit})" if unit else ""
    return Control(
        key, label + suffix, group, kind, default, low, high, step, unit, help_text, " and ".join(words), note
    )


def _entities(scenario: Scenario) -> dict[str, list[tuple[str, str]]]:
    """(name, label) of the entities each placeholder stands for in this scenario."""
    return {
        "militia": [(n, f.label) for n, f in scenario.factions.items() if f.kind == "militia"],
        "patron": [(n, p.label) for n, p in scenario.patrons.items()],
        "supply_patron": [(n, p.label) for n, p in scenario.patrons.items() if p.supply_crossing is not None],
        "tribe": [(n, t.label) for n, t in scenario.tribes.items()],
    }


def build_controls(scenario: Scenario) -> list[Control]:
    """The control table expanded for one scenario, with the scenario's values as defaults."""
    entities = _entities(scenario)
    data = scenario_to_dict(scenario)
    controls = []
    for spec in CONTROL_TABLE:
        used = [p for p in PLACEHOLDERS if "{" + p + "}" in spec.key]
        if len(used) > 1:
            raise ValueError(f"{spec.key}: one placeholder per row")
        rows = [(None, None)] if not used else entities[used[0]]
        for name, long_label in rows:
            fill = {p: name for p in PLACEHOLDERS}
            key, label = spec.key.format(**fill), spec.label.format(**fill, label=long_label)
            if spec.group == MILITIA_GROUP:
                group = f"{name}: {long_label}" if long_label and long_label != name else str(name)
            else:
                group = spec.group
            controls.append(make_control(spec, key, label, group, keypath.get(data, key)))
    return controls


# --------------------------------------------------------------------------- scenarios


# Sections that describe an experiment over many runs (`run.py sweep`, `run.py calibrate`),
# not one model: scenarios holding one are not offered, and the explorer drops them.
DESIGN_SECTIONS = tuple(name for name in ("sweep", "calibration") if name in Scenario.model_fields)


def _designs(scenario: Scenario) -> list[str]:
    return [name for name in DESIGN_SECTIONS if getattr(scenario, name) is not None]


@cache
def _explorable(path: str, mtime: float) -> tuple[str, str] | None:
    try:
        scenario = load_scenario(path)
    except ScenarioError:
        return None
    if _designs(scenario):
        return None
    return Path(path).stem, scenario.description


def list_explorable(directory: Path = SCENARIO_DIR) -> list[tuple[str, str]]:
    """(name, description) of the scenarios in `directory` the explorer can open, by file name.

    Invalid scenarios and sweep or calibration designs are left out. Each file's check is
    cached until the file changes.
    """
    rows = []
    for path in sorted(directory.glob("*.yaml")):
        row = _explorable(str(path), path.stat().st_mtime)
        if row is not None:
            rows.append(row)
    return rows


def load_explorable(ref: str) -> Scenario:
    """A scenario by name or path, without sweep or calibration sections (the explorer runs one model)."""
    scenario = load_scenario(ref)
    designs = _designs(scenario)
    return scenario.model_copy(update=dict.fromkeys(designs)) if designs else scenario


# --------------------------------------------------------------------------- parsing typed values


class InputProblem(ValueError):
    """A value typed into a field that is not even a number."""


def parse_input(control: Control, raw: Any) -> Any:
    """A slider's, switch's or text field's value as the type the scenario key expects.

    Only the form is checked here (a number, true/false); the range is the schema's job.
    Integral numbers typed into an integer field become ints; other numbers stay floats so
    the schema can refuse them with its own message.
    """
    if control.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise InputProblem(f"expected on or off, got {raw!r}")
    if isinstance(raw, bool):
        raise InputProblem(f"expected a number, got {raw!r}")
    if isinstance(raw, (int, float)):
        value: int | float = raw
    else:
        text = str(raw).strip().replace(",", "").replace("_", "")
        if not text:
            raise InputProblem("a number is needed")
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise InputProblem(f"{str(raw).strip()!r} is not a number") from None
    if control.kind == "float":
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def format_value(value: Any) -> str:
    """A value as shown in a text field and written in notes."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


SEED_CONTROL = Control(
    "seed", "Seed", "Run", "int", 0, None, None, None, "", "root random seed", ">= 0 and < 2**63", ""
)


# --------------------------------------------------------------------------- the session


@dataclass(frozen=True)
class Saved:
    """A file the page wrote: where, and its bytes (offered for download too)."""

    path: Path
    data: bytes

    @property
    def filename(self) -> str:
        """The file's name without its directory (for the download button)."""
        return self.path.name

    @property
    def shown_path(self) -> str:
        """The path relative to the working directory when inside it (as `run.py` takes it)."""
        try:
            return str(self.path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(self.path.resolve())


def output_dir() -> Path:
    """Where saved scenarios and CSV exports go; never the current directory by surprise.

    $SIM_EXPLORER_OUT (set by `serve(out_dir=...)`) if set, else `results/explorer/` of the project.
    """
    return Path(os.environ.get(ENV_OUT) or DEFAULT_OUT)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _unique(directory: Path, stem: str, suffix: str) -> Path:
    path = directory / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = directory / f"{stem}-{n}{suffix}"
        n += 1
    return path


class Session:
    """One page's state: the chosen scenario, the controls' last valid values, the seed.

    `scenario` is always a valid `Scenario` (the one the running model was built from).
    Values that fail validation are kept as `drafts` (what was typed) with their `problems`
    (one line per problem, led by the field's label as its control shows it, e.g.
    "IRGC salary (USD/month): input should be greater than or equal to 0") and change
    nothing else.
    """

    def __init__(self, ref: str | None = None):
        self.select(ref or os.environ.get(ENV_SCENARIO) or DEFAULT_SCENARIO)

    # -- choosing a scenario

    def select(self, ref: str) -> None:
        """Load a scenario (name or path); its values become the controls' defaults."""
        scenario = load_explorable(ref)  # raises ScenarioError before anything changes
        self.ref = str(ref)
        self.origin = scenario
        self.base = scenario_to_dict(scenario)
        self.controls = build_controls(scenario)
        self.values = {c.key: c.default for c in self.controls}
        self.seed = int(scenario.seed)
        self.scenario = scenario
        self.drafts: dict[str, str] = {}
        self.field_problems: dict[str, list[str]] = {}

    def restore_defaults(self) -> None:
        """Back to the chosen scenario's values and seed."""
        self.values = {c.key: c.default for c in self.controls}
        self.seed = int(self.origin.seed)
        self.scenario = self.origin
        self.drafts.clear()
        self.field_problems.clear()

    @property
    def name(self) -> str:
        """The chosen scenario's `name` (not the file name)."""
        return self.origin.name

    @property
    def source_path(self) -> Path:
        """The chosen scenario's YAML file (`sim.scenario.resolve_scenario_path` of its reference)."""
        return resolve_scenario_path(self.ref)

    def control(self, key: str) -> Control:
        """The control of a key path, or the seed's for "seed".

        Raises:
            KeyError: the page has no control for `key`.
        """
        if key == "seed":
            return SEED_CONTROL
        for control in self.controls:
            if control.key == key:
                return control
        raise KeyError(key)

    # -- proposing values

    @property
    def problems(self) -> list[str]:
        """Every problem of the values currently refused (empty when all fields are applied)."""
        return [line for lines in self.field_problems.values() for line in lines]

    def candidate(self, values: dict[str, Any] | None = None, seed: int | None = None) -> dict:
        """The full scenario document for these control values and seed (not yet validated)."""
        data = copy.deepcopy(self.base)
        for name in DESIGN_SECTIONS:
            data.pop(name, None)
        for key, value in (self.values if values is None else values).items():
            keypath.set(data, key, value)
        data["seed"] = self.seed if seed is None else seed
        return data

    def validate(self, values: dict[str, Any], seed: Any) -> Scenario:
        """Validate a whole candidate scenario; raises ScenarioError with one Problem per line."""
        return scenario_from_dict(self.candidate(values, seed), source=SOURCE)

    def propose(self, key: str, raw: Any) -> bool:
        """Try a new value for a control ("seed" for the seed).

        Returns True when the whole candidate scenario is valid: the value is applied and a
        new model should be built. Returns False when it is refused: `problems` says why,
        the typed text is kept in `drafts[key]`, and the scenario, values and seed are
        unchanged (so is the running model).
        """
        control = self.control(key)
        try:
            value = parse_input(control, raw)
        except InputProblem as problem:
            return self._refuse(key, raw, [f"{control.label}: {problem}"])
        values, seed = dict(self.values), self.seed
        if key == "seed":
            seed = value
        else:
            values[key] = value
        try:
            scenario = self.validate(values, seed)
        except ScenarioError as error:
            return self._refuse(key, raw, [self.describe_problem(p) for p in error.problems])
        self.values, self.seed, self.scenario = values, int(seed), scenario
        self.drafts.pop(key, None)
        self.field_problems.pop(key, None)
        return True

    def describe_problem(self, problem) -> str:
        """One line for the page: the field's label as on its control (the key path only where no control has it)."""
        key = problem.key_path
        try:
            where = self.control(key).label
        except KeyError:
            where = key or "the scenario"
        return f"{where}: {problem.message}"

    def _refuse(self, key: str, raw: Any, lines: list[str]) -> bool:
        self.drafts[key] = raw if isinstance(raw, str) else format_value(raw)
        self.field_problems[key] = lines
        return False

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """Controls (and the seed) whose value differs from the scenario's: key -> (scenario value, value now)."""
        out = {
            k: (c.default, self.values[k])
            for k, c in ((c.key, c) for c in self.controls)
            if self.values[k] != c.default
        }
        if self.seed != self.origin.seed:
            out["seed"] = (self.origin.seed, self.seed)
        return out

    # -- the model

    def new_model(self) -> ExplorerModel:
        """A new model of the current valid scenario and seed (`ExplorerModel`)."""
        return ExplorerModel(source=self)

    # -- saving and export

    def scenario_document(self) -> dict:
        """The current scenario, fully resolved, named `<name>_explorer`, with provenance notes."""
        doc = scenario_to_dict(self.scenario)
        for name in DESIGN_SECTIONS:
            doc.pop(name, None)
        name = self.name if self.name.endswith(NAME_SUFFIX) else self.name + NAME_SUFFIX
        if len(name) > 64:
            name = self.name[: 64 - len(NAME_SUFFIX)] + NAME_SUFFIX
        doc["name"] = name
        changes = self.changes()
        summary = ", ".join(f"{key} {format_value(new)}" for key, (_, new) in changes.items()) or "no changes"
        description = f"{self.origin.description} [explorer: {summary}]"
        doc["description"] = description if len(description) <= 300 else description[:297] + "..."
        provenance = dict(doc.get("provenance") or {})
        for key, (old, _) in changes.items():
            provenance[key] = f"{PROVENANCE_NOTE} (scenario {self.name} had {format_value(old)})"
        doc["provenance"] = provenance
        return doc

    def scenario_yaml(self, path_hint: str = "") -> bytes:
        """The current scenario as UTF-8 YAML (`scenario_document`), led by comments.

        The comments say when and from which scenario it was saved and list the changed
        values; `path_hint`, if given, is the path shown in the "Run it with" line.
        """
        doc = self.scenario_document()
        changes = self.changes()
        lines = [
            f"# Saved by the browser explorer on {datetime.now(UTC).isoformat(timespec='seconds')}",
            f"# from scenario '{self.name}' ({self.ref}); the full resolved scenario, defaults filled in.",
        ]
        if changes:
            lines.append("# Changed in the explorer:")
            lines += [f"#   {k}: {format_value(old)} -> {format_value(new)}" for k, (old, new) in changes.items()]
        else:
            lines.append("# No parameter was changed in the explorer.")
        if path_hint:
            lines.append(f"# Run it with: {rerun_command(['python', 'run.py', 'run', path_hint])}")
        body = dump_yaml(doc, sort_keys=False, allow_unicode=True, width=100)
        return ("\n".join(lines) + "\n" + body).encode("utf-8")

    def save_scenario(self, directory: Path | None = None) -> Saved:
        """Write the current scenario as YAML that `run.py run` accepts; return where."""
        directory = output_dir() if directory is None else Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = _unique(directory, f"{self.scenario_document()['name']}-{_stamp()}", ".yaml")
        shown = Saved(path, b"").shown_path
        data = self.scenario_yaml(path_hint=shown)
        atomic_write_bytes(path, data)
        return Saved(path, data)

    def export_timeseries(self, model: CorridorModel, directory: Path | None = None) -> Saved:
        """Write the run's time series (one row per step) as CSV; return where."""
        directory = output_dir() if directory is None else Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        frame = timeseries_frame(model)
        stem = f"{self.scenario_document()['name']}-seed{model.run_seed}-day{model.steps}-{_stamp()}-timeseries"
        path = _unique(directory, stem, ".csv")
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        data = buffer.getvalue().encode("utf-8")
        atomic_write_bytes(path, data)
        return Saved(path, data)


_BUILDS = itertools.count(1)


class ExplorerModel(CorridorModel):
    """A CorridorModel built from a session's current (valid) scenario and seed.

    `build` numbers the models of this process (1, 2, ...), so the page tells one run from
    the next (`Snapshot.run`). Stepping is the page's `Runner`'s business, not the model's.
    """

    def __init__(self, source: Session):
        super().__init__(source.scenario, seed=source.scenario.seed)
        self.build = next(_BUILDS)


# --------------------------------------------------------------------------- reading a model


def timeseries_frame(model: CorridorModel) -> pd.DataFrame:
    """The model's recorded figures so far, one row per step, led by replicate (0), seed and step.

    The layout of a results directory's timeseries.csv (step 0 is the initial state).
    """
    frame = model.datacollector.get_model_vars_dataframe().copy()
    frame.index.name = "step"
    frame = frame.reset_index()
    frame.insert(0, "seed", int(model.run_seed))
    frame.insert(0, "replicate", 0)
    return frame


def _site_label(model: CorridorModel, name: str | None) -> str | None:
    if not name:
        return None
    try:
        return model.geo.site_labels[model.geo.site_names.index(name)]
    except ValueError:
        return name


def describe_event(model: CorridorModel, event: dict) -> str | None:
    """One line of text for an event of the kinds in EVENT_KINDS (None for other kinds)."""
    kind, day = event.get("event"), event.get("step")
    where = _site_label(model, event.get("site"))
    near = f" near {where}" if where else (f" at cell ({event['row']}, {event['col']})" if "row" in event else "")
    a, b = event.get("side_a"), event.get("side_b")
    if kind == "meeting":
        venue = f" at {where}" if where else ""
        chance = event.get("p_success", 0)
        return f"day {day}: meeting {a}\u2013{b}{venue}: {event.get('outcome')} (chance of agreement {chance:.0%})"
    if kind == "clash":
        return (
            f"day {day}: clash {a} vs {b}{near}: {a} {event.get('killed_a', 0)} killed, {event.get('wounded_a', 0)} "
            f"wounded; {b} {event.get('killed_b', 0)} killed, {event.get('wounded_b', 0)} wounded; "
            f"{event.get('winner')} prevailed"
        )
    if kind == "insurgent_attack":
        return (
            f"day {day}: {a} attack on {b}{near}: "
            f"{event.get('killed_b', 0)} killed, {event.get('wounded_b', 0)} wounded"
        )
    if kind == "new_headquarters":
        return f"day {day}: {event.get('faction')} opened a headquarters at {where}"
    if kind == "looting":
        return f"day {day}: looting by {event.get('faction')} at {where}"
    return None


def latest_events(model: CorridorModel, n: int = 12) -> list[str]:
    """The newest `n` meetings, clashes, insurgent attacks, new headquarters and lootings."""
    lines = []
    for event in reversed(model.events):
        if event.get("event") in EVENT_KINDS:
            lines.append(describe_event(model, event))
            if len(lines) >= n:
                break
    return lines


DEFECTION_COLUMN = re.compile(r"^defections\.(?P<a>[^>]+)>(?P<b>.+)$")


def defection_totals(model: CorridorModel) -> dict[str, int]:
    """'A>B' -> fighters who left A for B so far (only the pairs with any)."""
    frame = model.datacollector.get_model_vars_dataframe()
    out = {}
    for column in frame.columns:
        if DEFECTION_COLUMN.match(column):
            total = int(frame[column].sum())
            if total:
                out[column.split(".", 1)[1]] = total
    return out


# --------------------------------------------------------------------------- playing a model


@dataclass(frozen=True)
class Snapshot:
    """What the page draws: a copy of a model's state after a finished step, never changed.

    `series` maps each recorded column (the DataCollector's names, e.g. `fighters.IRGC`) to a
    read-only float array of length `day + 1` (day 0 is the initial state). `control` (H, W)
    and `share` (F, H, W) are read-only copies of the grid (`share`: each faction's share of
    the cell's influence, 0..1). `clashes` (n, 2) are the row, col of the clashes of the last
    RECENT_CLASH_STEPS days; `events` the newest lines of `latest_events`; `error` is one line
    when the model's step failed (the run is then paused).
    """

    run: int  # the model's build number: tells one run from the next
    day: int
    series: dict[str, Any]
    control: Any
    share: Any
    clashes: Any
    events: tuple[str, ...]
    defections: dict[str, int]
    error: str | None = None
    info: Any = None  # what the Runner's `describe(model)` said of the run (fixed facts, same object all run)
    seq: int = 0  # publication order within a Runner: a drawing of an older snapshot must not replace a newer one


def _frozen(array) -> Any:
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


class _Series:
    """The model's recorded numeric columns as growing float arrays (one row appended per step)."""

    def __init__(self, model: CorridorModel):
        variables = model.datacollector.model_vars
        # numeric columns only (site control is recorded as a faction's name)
        self.columns = [c for c, v in variables.items() if v and isinstance(v[0], (int, float, np.number))]
        self.data = np.zeros((len(self.columns), 512))
        self.n = 0
        for row in range(len(variables[self.columns[0]]) if self.columns else 0):
            self._append([variables[c][row] for c in self.columns])

    def _append(self, values) -> None:
        if self.n == self.data.shape[1]:
            self.data = np.concatenate([self.data, np.zeros_like(self.data)], axis=1)
        self.data[:, self.n] = np.asarray(values, dtype=float)
        self.n += 1

    def record(self, model: CorridorModel) -> None:
        """Append the model's newest recorded row (after `model.step()`)."""
        variables = model.datacollector.model_vars
        self._append([variables[c][-1] for c in self.columns])

    def frozen(self) -> dict[str, Any]:
        block = _frozen(self.data[:, : self.n])
        return dict(zip(self.columns, block, strict=True))


def take_snapshot(
    model: CorridorModel, series: _Series, run: int, error: str | None = None, info: Any = None
) -> Snapshot:
    """A Snapshot of `model` now (call it only between steps)."""
    influence = np.asarray(model.influence, dtype=float)
    total = influence.sum(axis=0)
    share = np.divide(influence, total, out=np.zeros_like(influence), where=total > 0)
    frame = series.frozen()
    defections = {}
    for column, values in frame.items():
        if DEFECTION_COLUMN.match(column) and values.sum() > 0:
            defections[column.split(".", 1)[1]] = int(values.sum())
    cells = [(r, c) for step, r, c in model.recent_clash_cells if step > model.steps - RECENT_CLASH_STEPS]
    return Snapshot(
        run=run,
        day=int(model.steps),
        series=frame,
        control=_frozen(model.control),
        share=_frozen(share),
        clashes=_frozen(np.array(cells, dtype=int).reshape(-1, 2)),
        events=tuple(latest_events(model, 12)),
        defections=defections,
        error=error,
        info=info,
    )


_STEPPING: set = set()  # the Runners' stepping threads now alive (any page of this process)
_STEPPING_LOCK = threading.Lock()
ENV_STATUS = "SIM_EXPLORER_STATUS"  # if set: a JSON file kept up to date with the live stepping threads (tests)
DEFAULT_SPEED = 15.0  # days per second while playing: a year in about 25 s
MAX_SPEED = 60.0
END_GRACE_S = 0.5  # s: a press this soon after Play paused itself at the run's end is the Pause shown (`Runner.press`)


def live_stepping_threads() -> int:
    """How many Runner stepping threads are alive in this process (0 when nothing plays)."""
    with _STEPPING_LOCK:
        return len(_STEPPING)


def _stepping_changed(thread, alive: bool) -> None:
    with _STEPPING_LOCK:
        (_STEPPING.add if alive else _STEPPING.discard)(thread)
        n = len(_STEPPING)
        path = os.environ.get(ENV_STATUS)
        if path:
            atomic_write_bytes(Path(path), json.dumps({"stepping_threads": n}).encode())


class Runner:
    """Plays one model for one page: one stepping thread, snapshots out, nothing shared live.

    Stepping and drawing never race: the thread steps the model and, with the lock still
    held, records the step into a `Snapshot` (copies, read-only); the page draws only
    snapshots. `on_snapshot(snapshot)`, if given, is called after each published snapshot
    (outside the lock, in the thread that made it: the stepping thread while playing).

        runner = Runner(session.new_model, on_snapshot=print)
        runner.play(); ...; runner.pause()   # no step starts after pause() returns
        runner.step()                        # one day; returns its snapshot
        runner.restart()                     # a new model (day 0); the old run becomes `previous`
        runner.close()                       # stops the thread, lets go of the model

    The stepping thread exists only while playing (it ends on pause or close), so a closed
    or paused page holds no thread (`live_stepping_threads` counts them). `speed` is the
    target in days per second (the page offers 1..MAX_SPEED; `math.inf`: as fast as it can);
    a slow step or redraw just plays slower, it never makes up for lost time in a burst.
    `describe(model)`, if given, is called once per model; its result rides along in every
    snapshot of that run (`Snapshot.info`: the run's fixed facts, for drawing).

    Play pauses by itself on reaching the run's last day (`end_day`: the scenario's `steps`),
    as the run on the command line ends there; pressed again at or past that day, it plays on
    (so does Step), beyond what the scenario describes.

    A step that raises pauses the run and publishes the last good snapshot with `error` set.
    """

    def __init__(self, build, on_snapshot=None, speed: float = DEFAULT_SPEED, describe=None):
        self._build = build
        self._describe = describe
        self.on_snapshot = on_snapshot
        self.speed = speed
        self._cond = threading.Condition(threading.RLock())
        self._seq = itertools.count(1)
        self._thread = None
        self._playing = False
        self._closed = False
        self._ended_at: float | None = None  # when Play last paused itself at the run's end (`press`)
        self.previous: Snapshot | None = None  # the last snapshot of the run before the last restart
        with self._cond:
            self._new_model()
            self._publish(self._take())

    # -- state

    @property
    def snapshot(self) -> Snapshot:
        """The newest snapshot (of a finished step, or of day 0)."""
        with self._cond:
            return self._snapshot

    @property
    def playing(self) -> bool:
        """Whether Play is on (the thread steps until pause or close)."""
        return self._playing

    @property
    def end_day(self) -> int | None:
        """The current run's last day (its scenario's `steps`), where Play pauses; None for a model without one."""
        return self._end_day

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    @property
    def model(self) -> CorridorModel | None:
        """The live model (None once closed). Read it only with the runner paused."""
        return self._model

    @contextlib.contextmanager
    def locked(self):
        """`with runner.locked() as model:` the live model (None once closed), with no step under way meanwhile."""
        with self._cond:
            yield self._model

    def wait_for(self, day: int, timeout: float = 60.0) -> Snapshot:
        """The first snapshot with `day` >= `day` (or the newest when `timeout` s pass first)."""
        with self._cond:
            self._cond.wait_for(lambda: self._snapshot.day >= day or self._closed, timeout)
            return self._snapshot

    # -- internals (called with the lock held)

    def _new_model(self) -> None:
        self._model = self._build()
        self._series = _Series(self._model)
        self._run = getattr(self._model, "build", id(self._model))
        self._info = self._describe(self._model) if self._describe is not None else None
        steps = getattr(getattr(self._model, "config", None), "steps", None)
        self._end_day = int(steps) if steps is not None else None

    def _take(self, error: str | None = None) -> Snapshot:
        snapshot = take_snapshot(self._model, self._series, self._run, error, self._info)
        return dataclasses.replace(snapshot, seq=next(self._seq))

    def _publish(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._ended_at = None  # a newer day or run than the end Play paused at (`press`): a press is a press
        self._cond.notify_all()

    def _step_locked(self) -> Snapshot:
        try:
            self._model.step()
            self._series.record(self._model)
            snapshot = self._take()
        except Exception as error:  # noqa: BLE001 - shown on the page; the run pauses
            self._playing = False
            failure = f"the model's step failed: {type(error).__name__}: {error}"
            snapshot = dataclasses.replace(self._snapshot, error=failure, seq=next(self._seq))
        self._publish(snapshot)
        return snapshot

    def _notify(self, snapshot: Snapshot) -> None:
        if self.on_snapshot is not None:
            self.on_snapshot(snapshot)

    # -- controls

    def step(self) -> Snapshot:
        """Step one day now (also while playing: it takes its turn with the thread); return its snapshot."""
        with self._cond:
            if self._closed:
                return self._snapshot
            snapshot = self._step_locked()
        self._notify(snapshot)
        return snapshot

    def play(self) -> None:
        """Start stepping in the runner's thread at `speed` days per second."""
        with self._cond:
            if self._closed or self._playing:
                return
            self._playing = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="explorer-stepping", daemon=True)
                _stepping_changed(self._thread, True)
                self._thread.start()

    def press(self) -> bool:
        """The Play/Pause button: pause if playing, else play; returns whether it plays now.

        A press that meets the run's end (Play paused itself there less than `END_GRACE_S` ago,
        and nothing was published since: no Step, Reset or new run) is the Pause the user saw on
        the button, not a Play: the page shows the pause a few milliseconds late, and a Pause
        pressed as the last day came played the run on past it.
        """
        with self._cond:
            if self._playing:
                self.pause()
                return False
            if self._ended_at is not None and time.monotonic() - self._ended_at < END_GRACE_S:
                self._ended_at = None  # one press only: pressed again, it plays on past the end
                return False
            self.play()
            return self._playing

    def pause(self) -> None:
        """Stop playing; once this returns no further step starts (a step under way has finished)."""
        with self._cond:
            self._playing = False
            self._cond.notify_all()

    def restart(self, build=None) -> Snapshot:
        """A new model from `build` (default: the same builder) at day 0; the current run becomes `previous`.

        Play goes on if it was on.
        """
        with self._cond:
            if self._closed:
                return self._snapshot
            if build is not None:
                self._build = build
            self.previous = self._snapshot
            old = self._model
            self._new_model()
            old.close()
            snapshot = self._take()
            self._publish(snapshot)
        self._notify(snapshot)
        return snapshot

    def close(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Stop for good: the thread ends (joined when `wait`, unless called from it), the model is let go."""
        with self._cond:
            self._closed = True
            self._playing = False
            self.on_snapshot = None
            thread = self._thread
            if self._model is not None:
                self._model.close()
            self._model = None
            self._cond.notify_all()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        me = threading.current_thread()
        due = time.monotonic()
        try:
            while True:
                with self._cond:
                    while True:
                        if self._closed or not self._playing:
                            self._thread = None
                            return
                        wait = due - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)  # pause() and close() wake it
                    snapshot = self._step_locked()
                    if snapshot.day == self._end_day:  # the run's end: pause (Play from here on plays past it)
                        self._playing = False
                        self._ended_at = time.monotonic()
                    interval = 1.0 / self.speed if self.speed > 0 else 0.0
                self._notify(snapshot)
                now = time.monotonic()
                due = max(due + interval, now - interval)  # keep pace, but do not run to catch up after a slow redraw
        except Exception:  # noqa: BLE001 - a drawing failure pauses the run instead of killing the thread silently
            with self._cond:
                self._playing = False
                self._thread = None
                if self._closed:  # the page went away while drawing: nothing left to report to
                    return
            raise
        finally:
            _stepping_changed(me, False)
