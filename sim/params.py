"""What a scenario parameter means: the listing and the full entry behind `run.py params`.

Everything shown is read from the schema (`sim.schema`: unit, type, range, default, help)
through the rows that also make the parameter tables of docs/ODD.md (`sim.docs.parameter_rows`),
and from the chosen scenario (its values and its `provenance:` citations). No description of
a parameter is written here.

    run.py params                      # every parameter: key, unit, default, range, source, help
    run.py params salary               # those whose key or help mentions "salary"
    run.py params 'rules.clashes.*'    # a glob on the key path
    run.py params factions.IRGC.salary_usd_month    # one parameter in full
    run.py params factions.<faction>.salary_usd_month --scenario toy_two_towns

A key path is written as for `--set` (`factions.IRGC.salary_usd_month`), or in the generic
form of the tables, with a placeholder for the entry (`factions.<faction>.salary_usd_month`).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim import schema as schema_module
from sim.docs import ROOT, SECTION_TITLES, expand_key, format_value, parameter_rows, provenance_source
from sim.scenario import load_scenario, missing_entry
from sim.schema import Scenario, field_words
from sim.suggest import close_matches, did_you_mean
from sim.yaml_source import Problem, ScenarioError

WIDTH = 100  # columns of the text output: it fits a 100-column terminal
FORMATS = ("text", "markdown", "csv")
ODD_FILE = ROOT / "docs" / "ODD.md"
ODD_PARAMETERS = "§7.14 Parameters"  # the ODD section the generated tables sit in (sim.docs)
_SEGMENT = re.compile(r"<[^>]*>|[^.]+")  # a key path's segments; a placeholder may hold dots (<key.path>)
_GLOB = re.compile(r"[*?\[]")
# Unit words that end many field names (salary_usd_month): left out of a label made from the name.
_UNIT_WORDS = frozenset({"usd", "month", "day", "days", "cells", "km"})


class UnknownParameter(ScenarioError):
    """A key path that names no parameter of the schema (exit 2, as any ScenarioError)."""


@dataclass(frozen=True)
class Value:
    """A parameter's value in one scenario, for one entry (one faction, site...) or the only one."""

    key: str  # the concrete key path, as for --set: factions.IRGC.salary_usd_month
    entry: str  # the entry's name(s), e.g. "IRGC"; "" for a key without placeholder
    value: Any
    source: str  # the scenario's provenance text for it (sim.docs.provenance_source)


@dataclass(frozen=True)
class Parameter:
    """One parameter of the schema, with its values in a scenario.

    `key` is the generic key path (`factions.<faction>.salary_usd_month`); `section` the
    table it belongs to (`factions`, `rules.clashes`, `run` for top-level keys); `model` and
    `field` the schema class that declares it and its name there.
    """

    key: str
    section: str
    model: str
    field: str
    label: str
    type: str
    unit: str
    default: str  # as the tables print it; "required" if the scenario must give it
    range: str  # the interval validation accepts, e.g. "[0, 1]"; "" if none
    help: str
    values: tuple[Value, ...]  # in the chosen scenario, one per entry it holds

    def matches(self, pattern: str) -> bool:
        """Case-insensitive: a glob (`*`, `?`, `[...]`) on the key path, else a substring of it or of the help.

        The key path is tried in its generic form and in each concrete form of the scenario
        (`factions.IRGC.salary_usd_month`); a glob also matches single words of the help.
        """
        wanted = pattern.casefold()
        keys = [self.key.casefold(), *(v.key.casefold() for v in self.values)]
        words = f"{self.label} {self.help}".casefold()
        if _GLOB.search(pattern):
            return any(fnmatch.fnmatchcase(k, wanted) for k in keys) or any(
                fnmatch.fnmatchcase(w, wanted) for w in re.findall(r"[\w-]+", words)
            )
        return any(wanted in k for k in keys) or wanted in words

    def source_summary(self) -> str:
        """The kinds of source of the scenario's values, short: `article §9, assumption`; "" if it sets none."""
        kinds: dict[str, list[str]] = {}
        for v in self.values:  # one entry per kind, the article's paragraphs merged: "article §5 §10"
            kind, *paragraphs = short_source(v.source).split()
            kinds.setdefault(kind, []).extend(paragraphs)
        return ", ".join(
            " ".join([kind, *sorted(set(paragraphs), key=lambda p: int(p[1:]))]) for kind, paragraphs in kinds.items()
        )


def short_source(text: str) -> str:
    """A provenance text shortened to its kind, with the article's paragraphs: `article §9 §10`, `assumption`."""
    match = re.match(r"\s*([A-Za-z]+)", text)
    kind = match.group(1).lower() if match else "?"
    if kind == "article":
        paragraphs = dict.fromkeys(re.findall(r"§\d+", text.split(":", 1)[0]))
        return " ".join(["article", *paragraphs]) if paragraphs else "article"
    return kind


def _label(model: str, field: str) -> str:
    """The field's label: its `label` extra where it has one, else `sim.schema.field_words` (title or help)."""
    declaring = getattr(schema_module, model, None)
    fields = getattr(declaring, "model_fields", None) if isinstance(declaring, type) else None
    info = fields.get(field) if isinstance(fields, dict) else None
    if info is not None:
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        return str(extra.get("label") or field_words(info, field))
    words = field.split("_")
    while len(words) > 1 and words[-1] in _UNIT_WORDS:  # the unit is shown beside the label
        words.pop()
    return " ".join(words)


def parameters(scenario: Scenario) -> list[Parameter]:
    """Every parameter of the schema, in the order of docs/ODD.md's tables, with its values in `scenario`.

    Args:
        scenario: The scenario whose values and citations are shown.

    Returns:
        One `Parameter` per row of `sim.docs.parameter_rows` (248 for the current schema).
    """
    data = scenario.model_dump()
    out = []
    for row in parameter_rows(scenario):
        values = tuple(
            Value(path, ".".join(labels), value, provenance_source(scenario.provenance, path))
            for labels, path, value in expand_key(row["key"], data)
        )
        out.append(
            Parameter(
                key=row["key"],
                section=row["section"],
                model=row["model"],
                field=row["field"],
                label=_label(row["model"], row["field"]),
                type=row["type"],
                unit=row["unit"],
                default=row["default"],
                range=row["range"],
                help=row["description"],
                values=values,
            )
        )
    return out


def segments(key: str) -> list[str]:
    """A key path's segments; a placeholder such as `<key.path>` is one segment."""
    return _SEGMENT.findall(key)


def _is_placeholder(segment: str) -> bool:
    return segment.startswith("<") and segment.endswith(">")


def find(params: Sequence[Parameter], key: str, scenario: Scenario) -> Parameter:
    """The parameter a key path names: concrete (`factions.IRGC.posture`) or generic (`factions.<x>.posture`).

    Raises:
        UnknownParameter: no parameter has that key path (the message suggests the closest
            key paths).
        ScenarioError: it names an entry the scenario lacks ("scenario 'baseline' has no
            faction 'IRGX' (did you mean 'IRGC'? ...)"). One problem, file `params`.
    """
    wanted = segments(key.strip())
    for param in params:
        have = segments(param.key)
        if len(have) != len(wanted):
            continue
        if all(h == w or (_is_placeholder(h) and w) for h, w in zip(have, wanted)):
            concrete = [w for h, w in zip(have, wanted) if _is_placeholder(h) and not _is_placeholder(w)]
            why = missing_entry(scenario.model_dump(), ".".join(wanted)) if concrete else None
            if why:
                raise ScenarioError([Problem("params", key, None, why)])
            return param
    raise UnknownParameter([Problem("params", key, None, _unknown_key_message(key, params))])


def _unknown_key_message(key: str, params: Sequence[Parameter]) -> str:
    """Not a parameter: the closest key path in the same form (generic, or concrete as for --set)."""
    if "." not in key:
        return "no parameter key path or help text matches this; run.py params lists them all"
    generic = any(_is_placeholder(s) for s in segments(key))
    candidates = [p.key for p in params] if generic else [v.key for p in params for v in p.values]
    # A typo is most often in the last segment: compare it with its siblings first, so
    # `factions.IRGC.salry` finds `salary_usd_month`, which the whole path's similarity misses.
    parent, _, last = key.rpartition(".")
    siblings = [c.rpartition(".")[2] for c in candidates if c.rpartition(".")[0] == parent]
    # ... and with its leading words too: a name's unit words (`_usd_month`) drown a short typo.
    forms = {"_".join(s.split("_")[:k]): s for s in reversed(siblings) for k in range(len(s.split("_")), 0, -1)}
    near = [forms[f] for f in close_matches(last, forms, n=1)]
    guess = f" (did you mean '{parent}.{near[0]}'?)" if near else did_you_mean(key, candidates, n=1)
    return f"not a scenario parameter{guess}; search keys and help with: run.py params WORD"


def select(params: Sequence[Parameter], query: str | None, scenario: Scenario) -> tuple[list[Parameter], bool]:
    """The parameters a `run.py params` argument asks for, and whether it named one key path (the full entry).

    An exact key path gives that parameter; anything else is a pattern (`Parameter.matches`).

    Raises:
        ScenarioError: nothing matches (with the closest key paths), or a key path names an
            entry the scenario lacks.
    """
    if not query:
        return list(params), False
    try:
        return [find(params, query, scenario)], True
    except UnknownParameter:
        found = [p for p in params if p.matches(query)]
        if found:
            return found, False
        if _GLOB.search(query):
            message = "no parameter key path or help word matches this pattern; run.py params lists them all"
            raise ScenarioError([Problem("params", query, None, message)]) from None
        raise


# --------------------------------------------------------------------------- rendering


def _cut(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_list(params: Iterable[Parameter], scenario_name: str, fmt: str = "text") -> str:
    """The listing: per parameter its key, unit, default, range, source and a line of help.

    Args:
        params: The parameters to list.
        scenario_name: The scenario the sources are read from (named in the header).
        fmt: `text` (two lines per parameter, at most `WIDTH` columns), `markdown` (a table)
            or `csv` (key, unit, default, range, source, help).
    """
    params = list(params)
    header = ["key", "unit", "default", "range", f"source ({scenario_name})", "help"]
    rows = [[p.key, p.unit, p.default, p.range, p.source_summary(), p.help] for p in params]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(h.capitalize() for h in header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            cells = [f"`{row[0]}`", *row[1:]]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"
    key_w, unit_w, default_w = 44, 16, 12
    range_w = WIDTH - key_w - unit_w - default_w - 3
    lines = [
        f"{'KEY':<{key_w}} {'UNIT':<{unit_w}} {'DEFAULT':>{default_w}} {'RANGE':<{range_w}}".rstrip(),
        f"    help [source in {scenario_name}]",
        "",
    ]
    for p in params:
        first = (
            f"{_cut(p.key, key_w):<{key_w}} {_cut(p.unit, unit_w):<{unit_w}} "
            f"{_cut(p.default, default_w):>{default_w}} {_cut(p.range, range_w)}"
        )
        source = p.source_summary()
        lines.append(first.rstrip())
        lines.append("    " + _cut(p.help + (f" [{source}]" if source else ""), WIDTH - 4))
    count = f"{len(params)} parameter" + ("" if len(params) == 1 else "s")
    lines += ["", f"{count}. One in full: run.py params KEY (e.g. {params[0].key})."]
    return "\n".join(lines) + "\n"


def odd_sections(param: Parameter, odd_file: Path = ODD_FILE) -> list[str]:
    """Where docs/ODD.md speaks of the parameter: its table in §7.14, and the ODD process section(s) of its rules.

    The process sections are those the declaring schema class's docstring cites (`ODD §7.7`),
    named by their heading in `odd_file` where the file is there.
    """
    table = SECTION_TITLES.get(param.section, param.section)
    where = [f'{ODD_PARAMETERS}, table "{table}"']
    declaring = getattr(schema_module, param.model, None)
    cited = re.findall(r"§(\d+(?:\.\d+)?)", re.split(r";", (getattr(declaring, "__doc__", "") or ""))[0])
    headings = {}
    try:
        for line in odd_file.read_text(encoding="utf-8").splitlines():
            match = re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ([^(]+)", line)
            if match:
                headings[match.group(1)] = match.group(2).strip()
    except OSError:  # an installed package has no docs/: the numbers alone
        pass
    if "ODD" in (getattr(declaring, "__doc__", "") or ""):
        where += [f"§{n} {headings.get(n, '')}".rstrip() for n in dict.fromkeys(cited)]
    return where


def render_detail(param: Parameter, scenario_name: str, asked: str = "") -> str:
    """One parameter in full: label, help, unit, type, range, default, its values in the scenario with citations.

    Args:
        param: The parameter.
        scenario_name: The scenario its values come from.
        asked: The key path as asked; a concrete one (`factions.IRGC.posture`) shows that
            entry's value and citation, and the other entries' values on one line.

    Returns:
        Text at most `WIDTH` columns wide (long citations wrap).
    """
    indent = " " * 14

    def block(name: str, text: str) -> list[str]:
        return textwrap.wrap(
            text, WIDTH, initial_indent=f"  {name:<11} ", subsequent_indent=indent, break_on_hyphens=False
        ) or [f"  {name}"]

    lines = [param.key, ""]
    lines += block("label", param.label + (f" ({param.unit})" if param.unit else ""))
    lines += block("meaning", param.help or "(no help text in the schema)")
    lines += block("unit", param.unit or "none (a count, name, flag or text)")
    lines += block("type", param.type)
    lines += block("range", param.range or "any value of the type")
    if param.default.startswith("required"):
        lines += block("default", f"none: {param.default} (the scenario must give it)")
    else:
        lines += block("default", f"{param.default} (the schema's, used where a scenario does not set it)")
    shown = [v for v in param.values if v.key == asked] or list(param.values)
    others = [v for v in param.values if v not in shown]
    if param.values:
        lines.append(f"  in scenario '{scenario_name}' (values, then their source in its provenance):")
        by_source: dict[str, list[Value]] = {}
        for v in shown:  # entries citing the same source are listed together, the source once
            by_source.setdefault(v.source, []).append(v)
        for source, values in by_source.items():
            text = "; ".join((f"{v.entry}: " if v.entry else "") + format_value(v.value, 60) for v in values)
            lines += textwrap.wrap(text, WIDTH, initial_indent="    ", subsequent_indent="    ")
            lines += textwrap.wrap(
                f"source: {source}", WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 8, break_on_hyphens=False
            )
        if others:
            rest = ", ".join(f"{v.entry} {format_value(v.value, 30)}" for v in others)
            lines += textwrap.wrap(f"(others: {rest})", WIDTH, initial_indent="    ", subsequent_indent="     ")
        example = shown[0].key
    else:
        lines.append(f"  in scenario '{scenario_name}': not set (the scenario has no such entry or section)")
        example = param.key
    if param.type == "text":  # quoted, so that YAML reads it as text (an unquoted date is refused)
        lines += block("set with", f"--set {example}='\"VALUE\"'")
    else:
        lines += block("set with", f"--set {example}=VALUE")
    lines += block("docs", "docs/ODD.md " + "; ".join(odd_sections(param)))
    return "\n".join(lines) + "\n"


def cli_params(args) -> int:
    """`run.py params [PATTERN | KEY] [--scenario NAME] [--format text|markdown|csv]`: print, return 0.

    Raises:
        ScenarioError: an unknown scenario, a key path or pattern that matches nothing (exit 2).
    """
    scenario = load_scenario(args.scenario)
    params = parameters(scenario)
    chosen, one = select(params, args.query, scenario)
    if one and args.format == "text":
        print(render_detail(chosen[0], scenario.name, args.query.strip()), end="")
    else:
        print(render_list(chosen, scenario.name, args.format), end="")
    return 0
