"""Safe, line-aware loading of scenario YAML files.

Scenario files are written by users and must be treated as untrusted input.
This module turns them into plain Python data (dict/list/str/int/float/bool/None)
and remembers, for every key path, which file and line the value came from, so
that later validation can report errors such as::

    scenarios/x.yaml:12: factions.NDF.salary: must be >= 0 (got -5)

Why we walk PyYAML *nodes* instead of calling ``yaml.safe_load``:

* ``safe_load`` throws away positions; the composed node tree still has a
  ``start_mark`` on every node, which gives us line numbers per key path.
* ``safe_load`` expands aliases blindly, so a "billion laughs" document
  (a few hundred bytes that expand to 10**9 values) would exhaust memory and
  time.  The composed node tree keeps aliases as shared nodes (a small DAG),
  so we can measure the expanded size cheaply *before* expanding anything.
* We get to decide exactly which tags are allowed (only plain YAML values),
  and to refuse YAML 1.1 surprises that ``safe_load`` accepts silently:
  timestamps, ``<<`` merge keys, non-text keys such as ``yes:``, and
  duplicate keys (which ``safe_load`` resolves by keeping the last one).

Unquoted scalars are read by the YAML 1.2 core schema (``1e-3`` is a number,
``on`` is not true), and every one that YAML 1.1 would read differently
(``0150`` octal, ``2:30`` base 60, ``yes``/``no``/``on``/``off``/``y``/``n``,
``1_000``, ``0b101``, ``0o17``, ``-0x1F``) is refused with a message saying how
to write the value meant; see :func:`yaml11_surprise`.  The one reading that is
kept although YAML 1.1 differs is an exponent: ``1e5`` and ``1e-3`` are numbers
(YAML 1.1 reads text, which no number field accepts).  :func:`dump_yaml`
writes data so that this loader reads it back unchanged.

Public entry points: :func:`load_yaml` (one file), :func:`load_scenario_document`
(follows ``extends`` chains) and :func:`apply_overrides` (``--set key=value``).
Every failure is reported as a :class:`ScenarioError` holding one or more
:class:`Problem` objects; YAML, Unicode and OS exceptions never escape.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, Union

import yaml
from yaml.composer import ComposerError
from yaml.events import MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sim import keypath
from sim.keypath import describe
from sim.keypath import join as dotted  # public here too: ("a", 0) -> "a.0"

__all__ = [
    "Problem",
    "ScenarioError",
    "SourcedDocument",
    "dotted",
    "load_yaml",
    "load_scenario_document",
    "apply_overrides",
    "check_repeated_overrides",
    "dump_yaml",
    "parse_value",
    "short_override",
    "yaml11_surprise",
]

# --- limits ------------------------------------------------------------------

MAX_FILE_BYTES = 1024 * 1024  # 1 MiB: far larger than any sensible scenario
MAX_VALUES = 100_000  # values after alias expansion (keys count too)
MAX_DEPTH = 64  # nested mappings/lists
MAX_PROBLEMS = 50  # stop reporting after this many problems in one document
MAX_EXTENDS_CHAIN = 32  # files in one `extends` chain
SCENARIO_SUFFIXES = (".yaml", ".yml")  # what an `extends:` target's file name must end in

OVERRIDE_FILE = "--set"  # Problem.file used for command-line overrides
_SET_ORIGIN: tuple[str, int | None] = (OVERRIDE_FILE, None)

# --- tags ----------------------------------------------------------------------

_YAML_TAG = "tag:yaml.org,2002:"
_STR_TAG = _YAML_TAG + "str"
_NULL_TAG = _YAML_TAG + "null"
_MAP_TAG = _YAML_TAG + "map"
_SEQ_TAG = _YAML_TAG + "seq"
_MERGE_TAG = _YAML_TAG + "merge"
_TIMESTAMP_TAG = _YAML_TAG + "timestamp"
_VALUE_TAG = _YAML_TAG + "value"  # what the YAML 1.1 resolver calls a plain '='
_SCALAR_TAGS = frozenset(_YAML_TAG + t for t in ("str", "int", "float", "bool", "null"))
_ALLOWED_TAGS = _SCALAR_TAGS | {_MAP_TAG, _SEQ_TAG}

_MERGE_MESSAGE = (
    "merge keys ('<<') are not supported; write the keys out in full (or quote '<<' if you meant the text)"
)
_DATE_MESSAGE = "dates are not supported here; quote it"
_INT_TAG = _YAML_TAG + "int"
_FLOAT_TAG = _YAML_TAG + "float"
_BOOL_TAG = _YAML_TAG + "bool"
# Our resolver's tag for a plain scalar that YAML 1.1 reads differently from YAML 1.2
# (not a real YAML tag: it never leaves this module except as "refused").
_SURPRISE_TAG = "tag:sim,2024:yaml11-surprise"

PathLike = Union[str, "os.PathLike[str]"]


ECHO_LIMIT = 60  # characters of a bad value echoed in a message; longer ones end in an ellipsis


OVERRIDE_SHOWN_CHARS = 120  # characters of a `--set` shown in labels and footers; the manifest keeps it whole


def short_override(text: str) -> str:
    """A `--set key=value` as labels and figure footers show it: whole up to OVERRIDE_SHOWN_CHARS, else cut.

    A cut one ends in '… (N characters)'. A 10,000-point river given by --set made every
    label of a comparison 200 KB long (its tables 45 MB, its figures unreadable).
    """
    if len(text) <= OVERRIDE_SHOWN_CHARS:
        return text
    return f"{text[: OVERRIDE_SHOWN_CHARS - 1]}… ({len(text):,} characters)"


# A whole number of more digits than this, with at most _MANTISSA_DIGITS before its trailing zeros,
# is echoed with an exponent (10**19 as 1e19, 25 * 10**306 as 25e306); others digit for digit.
_PLAIN_DIGITS = 15
_MANTISSA_DIGITS = 6


def no_decimal_point(value: float) -> str | None:
    """The hint for a whole number written with a decimal point (`1.5e3`, `1500.0`) where a whole number is meant.

    "a whole number has no decimal point: write 1500" (large ones with an exponent: 15e19),
    said alike by the scenario's keys (`sim.scenario`) and the whole-number options
    (`sim.cli.whole_number`); None for a value with a fraction, or no finite number.
    """
    if not math.isfinite(value) or not value.is_integer():
        return None
    from decimal import Decimal

    # the shortest decimals that read back as the float: 1.5e300 is 15e299, not its binary value's 301 digits
    sign, digits, power = Decimal(repr(value)).normalize().as_tuple()
    mantissa = "".join(map(str, digits))
    if value == 0 or len(mantissa) + power <= _PLAIN_DIGITS:
        meant = str(int(value))
    else:
        meant = f"{'-' if sign else ''}{mantissa}e{power}"
    return f"a whole number has no decimal point: write {meant}"


def clipped(value: Any, limit: int = ECHO_LIMIT) -> str:
    """repr(value) cut to `limit` characters with an ellipsis, so a message stays one readable line.

    Text is cut before its repr, so what is shown stays a whole quoted string (no escape cut
    in half): the longest start of it whose repr fits, then the ellipsis.
    """
    text = repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and len(text) > _PLAIN_DIGITS:
        # 1e19 read as a whole number: as the exponent's spelling wrote it, not 20 digits to count
        digits = text.lstrip("-").rstrip("0")
        if len(digits) <= _MANTISSA_DIGITS:
            return f"{'-' if value < 0 else ''}{digits}e{len(text.lstrip('-')) - len(digits)}"
    if len(text) <= limit:
        return text
    if isinstance(value, int) and not isinstance(value, bool):  # 1e61 read as a whole number: not 60 zeros and "…"
        from decimal import Decimal

        return format(Decimal(value).normalize(), ".6g")
    if isinstance(value, str):
        lo, hi = 0, min(len(value), limit)  # repr(value[:n]) grows with n: the largest n that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if len(repr(value[:mid])) <= limit - 1 else (lo, mid - 1)
        return repr(value[:lo]) + "…"
    return text[: limit - 1] + "…"


# --- public types ----------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, located as precisely as we know."""

    file: str  # the path as given by the caller, or "--set" for command-line overrides
    key_path: str  # dotted path, e.g. "factions.NDF.headquarters.0"; "" for the whole document
    line: int | None  # 1-based line number, None when unknown
    message: str  # short, lower-case start, no trailing period

    def __str__(self) -> str:
        """``FILE:LINE: KEY_PATH: MESSAGE``, dropping ``FILE:`` / ``:LINE`` / ``KEY_PATH: `` when unknown.

        One line whatever the key: characters that print as nothing or break the line (a
        byte-order mark or zero-width space in a key, a tab, U+2028) are shown escaped, as
        Python writes them in a string (`visible`), and a key path of over `KEY_LIMIT`
        characters or a message of over `MESSAGE_LIMIT` is shown by its start and its end.
        """
        location = self.file if self.line is None else f"{self.file}:{self.line}"
        key, message = shortened(self.key_path, KEY_LIMIT), shortened(self.message, MESSAGE_LIMIT)
        if not location:  # no file at all (a scenario name that names none)
            text = f"{key}: {message}" if key else message
        elif key:
            text = f"{location}: {key}: {message}"
        else:
            text = f"{location}: {message}"
        return visible(text)


KEY_LIMIT = 200  # characters of a key path shown in a problem; a longer one keeps its start and end
MESSAGE_LIMIT = 600  # the same for a message (which may quote the key, or list the keys it knows)


def shortened(text: str, limit: int) -> str:
    """`text` if it has at most `limit` characters, else its start and its last fifth around an ellipsis."""
    if len(text) <= limit:
        return text
    tail = limit // 5
    return f"{text[: limit - tail - 1]}…{text[-tail:]}"


def visible(text: str) -> str:
    r"""Text with every character that is not printable written as its Python escape.

    Not printable (`str.isprintable`): controls, format characters (a byte-order mark, a
    zero-width space), line and paragraph separators, spaces other than ' '. They become
    ``\t``, ``\x85``, ``\u200b``, ...; printable text in any script is unchanged.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ScenarioError(Exception):
    """One or more problems with a scenario. str() = one line per problem."""

    problems: list[Problem]

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        # Pass the list (not the text) to Exception so the error pickles and
        # re-raises correctly across processes (e.g. multiprocessing workers).
        super().__init__(self.problems)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


@dataclass
class SourcedDocument:
    """Plain YAML data plus the (file, line) each key path came from."""

    data: dict  # plain python: dict/list/str/int/float/bool/None only
    origins: dict[tuple, tuple[str, int | None]]  # key-path tuple -> (file, line)
    main_file: str  # the file the caller asked for
    files: tuple[str, ...] = ()  # the `extends:` chain, the first base first and main_file last (if known)

    def where(self, path: tuple) -> tuple[str, int | None]:
        """The (file, line) a key path came from.

        Falls back to the nearest ancestor of `path` that has an origin, and finally to
        (main_file, None).
        """
        path = tuple(path)
        for end in range(len(path), -1, -1):
            origin = self.origins.get(path[:end])
            if origin is not None:
                return origin
        return (self.main_file, None)

    def problem(self, path: tuple, message: str) -> Problem:
        """Build a Problem located via where(); key_path is the dotted form of path."""
        file, line = self.where(path)
        return Problem(file, dotted(path), line, message)


# --- plain scalars: YAML 1.2 core schema, YAML 1.1's surprises refused ----------------

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), ASCII digits only.
_CORE_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_CORE_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
# `1e5`, `2E+3`: a whole number written with an exponent reads as an integer, so that it
# serves where an integer is expected (`steps: 1e3`) as well as where a float is (the schema
# turns ints into floats). Up to the largest float (1e308): beyond, a float would be inf, and
# `1e999999` would build a huge int; within, `1e61` for an integer key is out of its range, as
# `1e18` is, rather than "not a valid integer" (a float beyond int64).
_WHOLE_EXPONENT = re.compile(r"^([-+]?[0-9]{1,18})[eE]\+?([0-9]{1,3})$")
_WHOLE_EXPONENT_MAX = 10**308
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9]+$")
# Numbers only YAML 1.1 reads (PyYAML's patterns), and how to name them in a message.
_YAML11_ONLY = (
    (re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$"), "a base-60 number"),
    (re.compile(r"^[-+]?0b[0-1_]+$"), "a binary number"),
    (re.compile(r"^[-+]0x[0-9a-fA-F_]+$"), "a signed hex number"),
)
# Text in YAML 1.1 but a number in YAML 1.2 that can only mean that number: an exponent, or a
# sign before a bare fraction.
_EXPONENT_OR_SIGNED = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$|^[-+]\.[0-9]+$")
# YAML 1.1 booleans (its spec lists y/n too, PyYAML leaves them out); refused in any case.
_YES_WORDS = frozenset({"yes", "on", "y"})
_NO_WORDS = frozenset({"no", "off", "n"})
# YAML 1.1's spec (not PyYAML) reads `y`/`n` as booleans too; as a value `y` likely means yes,
# but as a key it is a coordinate or a name, and keys are text, so these few are kept there.
_KEY_WORDS = frozenset({"y", "Y", "n", "N"})
_YAML11 = yaml.resolver.Resolver()  # PyYAML's YAML 1.1 implicit resolution, to compare with


def _core_tag(text: str) -> str:
    """The YAML 1.2 core-schema tag of a plain scalar (integral `1e5` counts as an int)."""
    if _CORE_NULL.match(text):
        return _NULL_TAG
    if _CORE_BOOL.match(text):
        return _BOOL_TAG
    if _CORE_INT.match(text):
        return _INT_TAG
    if _CORE_FLOAT.match(text):
        whole = _WHOLE_EXPONENT.match(text)
        if whole and abs(int(whole[1]) * 10 ** int(whole[2])) <= _WHOLE_EXPONENT_MAX:
            return _INT_TAG
        return _FLOAT_TAG
    return _STR_TAG


_YAML11_CONSTRUCTOR = yaml.constructor.SafeConstructor()  # PyYAML's YAML 1.1 values, to compare with
_YAML11_NUMBER = {
    _INT_TAG: _YAML11_CONSTRUCTOR.construct_yaml_int,
    _FLOAT_TAG: _YAML11_CONSTRUCTOR.construct_yaml_float,
}


def _yaml11_value(text: str, tag: str) -> Any:
    """What PyYAML's `safe_load` makes of a plain scalar that YAML 1.1 resolves to `tag` (int or float).

    Its constructor applied to the scalar alone: `safe_load` itself would parse `text` as a
    whole document, ~100 times slower, once for every number of a scenario file.
    """
    return _YAML11_NUMBER[tag](ScalarNode(tag, text))


def yaml11_surprise(text: str) -> str | None:
    """Why the unquoted scalar `text` is refused, or None when it reads as one would expect.

    A scalar is refused when YAML 1.1 (PyYAML's `safe_load`, many other tools) and YAML 1.2
    read it as different values, except for exponents (`1e5`, `1e-3`: YAML 1.1 reads text,
    which no number field takes, so the number is what the writer meant). The message starts
    with the scalar and says what to write instead, e.g. ``0150: a leading zero makes YAML 1.1
    read an octal number (104); write 150 (or quote it "0150" if you mean text)``.
    """
    try:
        return _surprise(text)
    except ValueError:  # int() refuses more than 4300 decimal digits (sys.get_int_max_str_digits)
        return f"{text[:20]}...: a number with {len(text)} characters is too long; quote it if you mean text"


def _surprise(text: str) -> str | None:
    tag11 = _YAML11.resolve(ScalarNode, text, (True, False))
    if tag11 == _MERGE_TAG:
        return _MERGE_MESSAGE
    if tag11 == _TIMESTAMP_TAG:
        return _DATE_MESSAGE
    as_text = f"(or quote it {json.dumps(text, ensure_ascii=False)} if you mean text)"
    word = text.lower()
    if word in _YES_WORDS or word in _NO_WORDS:
        meant = "true" if word in _YES_WORDS else "false"
        return f"{text}: YAML 1.1 reads {meant}, YAML 1.2 text; booleans are only true/false: write {meant} {as_text}"
    tag12 = _core_tag(text)
    if _LEADING_ZERO.match(text):
        decimal = int(text, 10)
        read = f"an octal number ({_yaml11_value(text, tag11)})" if tag11 == _INT_TAG else f"text, YAML 1.2 {decimal}"
        return f"{text}: a leading zero makes YAML 1.1 read {read}; write {decimal} {as_text}"
    if tag11 in (_INT_TAG, _FLOAT_TAG):
        old = _yaml11_value(text, tag11)
        if "_" in text:
            return f"{text}: YAML 1.1 reads the number {old}, YAML 1.2 text; write {old} without '_' {as_text}"
        how = next((how for pattern, how in _YAML11_ONLY if pattern.match(text)), None)
        if how is not None:
            return f"{text}: YAML 1.1 reads {how} ({old}), YAML 1.2 text; write {old} {as_text}"
        if tag12 in (_INT_TAG, _FLOAT_TAG):
            try:
                new = _construct(tag12, text)
            except ValueError:  # beyond a float (1.0e+400): reading it says so, in both versions alike
                return None
            if old == new or (old != old and new != new):  # noqa: PLR0124 - NaN is not equal to itself
                return None  # e.g. 0x1F, +5, 01.5, .nan: both read the same number
    elif tag12 == _INT_TAG and text.startswith("0o"):
        octal = int(text[2:], 8)
        return f"{text}: YAML 1.2 reads an octal number ({octal}), YAML 1.1 text; write {octal} {as_text}"
    elif tag11 == tag12 or tag11 == _VALUE_TAG:
        return None  # the same reading; or '=', YAML 1.1's "value key", text in YAML 1.2 and here
    elif tag11 == _STR_TAG and tag12 in (_INT_TAG, _FLOAT_TAG) and _EXPONENT_OR_SIGNED.match(text):
        return None  # 1e5, 1.5e3, -.5: YAML 1.1 text (its patterns want '.' and a signed exponent)
    return f"{text}: YAML 1.1 and YAML 1.2 read this differently {as_text}"


def _surprise_meant(text: str) -> Any:
    """The number `yaml11_surprise` says to write for `text`, else None.

    `0150`: 150, `1_000`: 1000, `2:30`: 150, `0o17`: 15; None for `on` or `2019-11-01`.
    """
    try:
        if _LEADING_ZERO.match(text):
            return int(text, 10)
        tag11 = _YAML11.resolve(ScalarNode, text, (True, False))
        if tag11 in (_INT_TAG, _FLOAT_TAG) and ("_" in text or any(pattern.match(text) for pattern, _ in _YAML11_ONLY)):
            return _yaml11_value(text, tag11)
        if text.startswith("0o") and _core_tag(text) == _INT_TAG:
            return int(text[2:], 8)
    except ValueError:  # more digits than int() reads: `yaml11_surprise` says so
        return None
    return None


def _surprise_reading(text: str) -> str:
    """What a refused plain scalar reads as, in words, for 'keys must be text' messages."""
    if text.lower() in _YES_WORDS | _NO_WORDS:
        return "true/false"
    tag11 = _YAML11.resolve(ScalarNode, text, (True, False))
    return {
        _INT_TAG: "a number",
        _FLOAT_TAG: "a number",
        _TIMESTAMP_TAG: "a date",
        _MERGE_TAG: "a merge key",
    }.get(tag11, "a number")  # otherwise YAML 1.1 reads text and YAML 1.2 a number (0o17, 08)


# The only plain scalars starting with an ASCII letter that YAML 1.1 or 1.2 read as anything
# but text, in lower case: booleans and null (every number, date, merge key or `=` starts with
# a digit, a sign, '.', '<' or '='; PyYAML picks its patterns by the first character).
_LETTER_WORDS = _YES_WORDS | _NO_WORDS | {"true", "false", "null"}
_CACHED_TAG_LENGTH = 64  # longer scalars are rare and not kept (a bounded cache of short ones)
# A decimal number as people and `sim.design.format_value` write it (no leading zero, sign "-" only): both YAML versions
# read the same number, or YAML 1.1 reads text where an exponent has no '.' or sign (`1e5`),
# which is accepted as the number; so its tag is the core schema's. Up to 40 characters: a
# longer one takes the full path, which refuses integers too long for Python's int().
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_DECIMAL_LENGTH = 40


def _plain_tag(text: str) -> str:
    """How this module resolves a plain (unquoted, untagged) scalar: a core tag, or _SURPRISE_TAG.

    Called for every plain scalar read and every string written (about 3,500 for the baseline
    scenario's load and its copy in the results), so the common cases are quick: text that
    starts with a letter and is no boolean or null word is text in both YAML versions (their
    patterns end in `$`, which also matches before a final newline: such text takes the full
    path), a plain decimal number (`_DECIMAL`) has its core-schema tag, and other short
    scalars' answers are remembered.
    """
    first = text[:1]
    if first.isascii() and first.isalpha() and "\n" not in text and text.lower() not in _LETTER_WORDS:
        return _STR_TAG
    if len(text) <= _DECIMAL_LENGTH and _DECIMAL.fullmatch(text):
        return _core_tag(text)  # the numbers of a polygon or a river are mostly distinct: not cached
    if len(text) <= _CACHED_TAG_LENGTH:
        return _short_plain_tag(text)
    return _resolve_plain_tag(text)


def _resolve_plain_tag(text: str) -> str:
    """`_plain_tag` in full: a core tag, or _SURPRISE_TAG where the two YAML versions differ."""
    return _SURPRISE_TAG if yaml11_surprise(text) is not None else _core_tag(text)


_short_plain_tag = functools.lru_cache(maxsize=4096)(_resolve_plain_tag)


# Why a number written in decimals (`1e400`, `-1e400`) is refused: float() makes it ±inf,
# which the schema would report as "got inf", a value the user never wrote.
_BEYOND_FLOAT = f"beyond the range of a float, ±{sys.float_info.max:.3g}"
_BELOW = f"nearer 0 than a float can be, {math.ulp(0.0):.2g}: it would read as 0; write 0 if that is meant"


# A whole number as written in decimals (digits, or digits with an exponent): `_whole_beyond_range` reads its size.
_WHOLE_WRITTEN = re.compile(r"^([-+]?)0*([0-9]*?)(0*)(?:[eE]\+?([0-9]+))?$")


def _whole_beyond_range(path: tuple, text: str) -> str | None:
    """Why `text`, a whole number too large to read, is refused at a whole-number key: out of its range.

    A whole number beyond a float (`1e400`, `1e5000`) or of more digits than Python reads
    (5,000 nines) given for a key that takes whole numbers (`steps`) is out of that key's range,
    as `1e61` is and as the `--steps` option says (`sim.cli.bounded_int`), not "not a finite
    number". The value is echoed as written. None for any other text or key (a decimal key
    keeps its "beyond the range of a float").
    """
    whole = _WHOLE_WRITTEN.match(text)
    if whole is None:
        return None
    sign, digits, zeros, power = whole.groups()
    if not digits:  # zero, however written, is read
        return None
    # the number of digits, from the exponent's own digits: `1e99999999999` is not built
    magnitude = len(digits) + len(zeros) + (int(power[:20]) if power else 0)
    if magnitude <= 308 and len(text) <= 4300:
        return None
    from sim.schema import whole_number_key_bounds  # here: only for such a number; the schema imports this module

    bounds = whole_number_key_bounds(dotted(path))
    if bounds is None:
        return None
    bound = bounds[0] if sign == "-" else bounds[1]
    if not math.isfinite(bound):
        return None
    side = "greater" if sign == "-" else "less"
    return f"input should be {side} than or equal to {bound} (got {_echo(text)})"


@functools.lru_cache(maxsize=1024)
def _number_rule(key: str) -> tuple[type, dict[str, float]] | None:
    from sim.schema import number_key_rule  # here: only for a number a hint or a decimal point is about

    return number_key_rule(key)


def _number_rule_at(path: tuple) -> tuple[type, dict[str, float]] | None:
    """`_number_rule` of the key at `path` (list positions as 0: every item of a list has the same rule)."""
    return _number_rule(dotted(tuple(0 if isinstance(part, int) else part for part in path)))


# A bound the schema checks, as pydantic words its refusal (and a test that the value breaks it).
_BOUND_WORDS = (
    ("ge", "greater than or equal to", lambda value, bound: value < bound),
    ("gt", "greater than", lambda value, bound: value <= bound),
    ("le", "less than or equal to", lambda value, bound: value > bound),
    ("lt", "less than", lambda value, bound: value >= bound),
)


def _refused_number(path: tuple, meant: Any, written: str) -> str | None:
    """Why the schema would refuse the number `meant` at key `path`, echoing `written`; None if it would not.

    For a scalar refused with a hint to write the number meant (`00`: "write 0", `1.5e9`: "write
    1500000000"): where the key's range (or its whole numbers) leave that number out, the hint
    would name a value refused in turn, so the number is refused as the schema refuses any such
    ("input should be greater than or equal to 1 (got 00)"), as the options do (`sim.cli.bounded_int`).
    """
    if isinstance(meant, bool) or not isinstance(meant, (int, float)) or not math.isfinite(meant):
        return None
    rule = _number_rule_at(path)
    if rule is None:
        return None
    plain, bounds = rule
    if plain is int and not float(meant).is_integer():
        return f"input should be a valid integer (got {_echo(written)})"
    for name, words, breaks in _BOUND_WORDS:
        if name in bounds and breaks(meant, bounds[name]):
            return f"input should be {words} {bounds[name]} (got {_echo(written)})"
    return None


def _decimal_point_refused(path: tuple, value: Any, written: str) -> str | None:
    """Why a number with a decimal point (`1.5e3`, `90.5`) is refused at a whole-number key, echoed as written.

    The schema refuses a float there, but sees only the float: it echoed `--set steps=1.5e3`
    as "got 1500.0" (and `1.5e18` as "got 1.5e+18") where `--steps 1.5e3` echoes what was
    written. "input should be a valid integer (got 1.5e3; a whole number has no decimal point:
    write 1500)", or for a whole number outside the key's range what the range says of any such
    ("input should be less than or equal to 100000 (got 1.5e9)": no hint names a value the key
    refuses in turn). None for any other value or key.
    """
    if type(value) is not float or not math.isfinite(value):  # .nan, .inf: the schema says what is wrong
        return None
    rule = _number_rule_at(path)
    if rule is None or rule[0] is not int:
        return None
    if _core_tag(written) != _FLOAT_TAG:  # `!!float 2`: the tag made it a float
        written = f"!!float {written}"
    if value.is_integer() and (why := _refused_number(path, int(value), written)):
        return why
    hint = no_decimal_point(value)
    return f"input should be a valid integer (got {_echo(written)}{f'; {hint}' if hint else ''})"


def _echo(text: str) -> str:
    """Scalar text as written, cut to ECHO_LIMIT characters (a message stays one line)."""
    return text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 1] + "…"


def _construct(tag: str, text: str) -> Any:
    """The value of a scalar with a standard tag, by the YAML 1.2 core schema; ValueError if invalid or beyond a float.

    Also serves explicit tags, so `!!int 0x1F` and `!!float 1` work as in YAML 1.2.
    """
    if tag == _STR_TAG:
        return text
    if tag == _NULL_TAG and _CORE_NULL.match(text):
        return None
    if tag == _BOOL_TAG and _CORE_BOOL.match(text):
        return text.lower() == "true"
    if tag in (_INT_TAG, _FLOAT_TAG):
        number: int | float | None = None
        if _CORE_INT.match(text):
            base = {"0o": 8, "0x": 16}.get(text[:2], 10)
            number = int(text[2:] if base != 10 else text, base)
        elif _CORE_FLOAT.match(text):
            whole = _WHOLE_EXPONENT.match(text)
            if tag == _INT_TAG and whole:
                number = int(whole[1]) * 10 ** int(whole[2])
            elif tag == _FLOAT_TAG:
                special = text.lower().lstrip("+")
                if special in (".inf", "-.inf", ".nan"):  # Python's float() wants no dot
                    number = float(special.replace(".", ""))
                else:
                    number = float(text)
                    if math.isinf(number):  # 1e400 reads as inf: echo what was written, not "inf"
                        raise ValueError(f"input should be a finite number (got {_echo(text)}, {_BEYOND_FLOAT})")
                    if number == 0.0 and any(d in "123456789" for d in text.lower().partition("e")[0]):
                        # 1e-400 reads as 0.0: a value the user did not write, which a rate or a
                        # width of 0 would then be taken as (or be refused as "got 0.0")
                        raise ValueError(f"input should be a number a float can hold (got {_echo(text)}, {_BELOW})")
        if number is not None:
            return float(number) if tag == _FLOAT_TAG else number
    raise ValueError(f"{text!r} is not a valid {_short_tag(tag)}")


# --- composing -------------------------------------------------------------------


class _ResolvesYaml12:
    """Mixed into a PyYAML loader: plain scalars are resolved by :func:`_plain_tag` (YAML 1.2, or refused)."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return _plain_tag(value)
        return yaml.resolver.Resolver.resolve(self, kind, value, implicit)


class _ScenarioLoader(_ResolvesYaml12, yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 core resolution that refuses to nest deeper than MAX_DEPTH.

    PyYAML's composer is recursive, so a file made of 100,000 ``[`` would hit
    RecursionError before we ever saw a node.  Counting here turns that into a
    clean Problem with a line number.  Plain scalars are resolved by
    :func:`_plain_tag` (YAML 1.2, or refused); construction of values is done by
    us, scalar by scalar (:func:`_construct`).
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self._nesting = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        is_collection = isinstance(event, (MappingStartEvent, SequenceStartEvent))
        if is_collection:
            self._nesting += 1
            if self._nesting > MAX_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            if is_collection:
                self._nesting -= 1


def _tidy(message: str) -> str:
    """Make a PyYAML message fit the Problem style (one line, no trailing period)."""
    message = " ".join(message.split())
    return message.rstrip(".") or "invalid YAML"


def _long_key(text: str, line: int) -> bool:
    """Whether line `line` (1-based) of `text` holds a key longer than YAML's 1,024 characters before its ':'."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return False
    here = lines[line - 1]
    colon = min((i for i in (here.find(": "), len(here) - 1 if here.endswith(":") else -1) if i >= 0), default=-1)
    return colon - (len(here) - len(here.lstrip())) > 1024


def _yaml_error_problem(
    error: Exception, file: str, key_path: str, text: str, report_lines: bool
) -> Problem:
    """Turn a PyYAML exception into a Problem with the best line we can find."""
    line: int | None = None
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        if error.context_mark is not None and "end of stream" in (error.problem or ""):
            mark = error.context_mark  # an unclosed quote or bracket: where it opened, not the file's end
        if mark is not None:
            line = mark.line + 1
        if error.problem and error.context:
            message = f"{error.context}, {error.problem}"
        else:
            message = error.problem or error.context or str(error).splitlines()[0]
    elif isinstance(error, yaml.reader.ReaderError):
        # Raised for control characters; it carries an offset, not a mark.
        line = text.count("\n", 0, error.position) + 1
        char = error.character
        code = char if isinstance(char, int) else ord(char) if char else 0
        message = f"character U+{code:04X} is not allowed in YAML text"
    else:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
    message = _tidy(message)
    if "could not find expected ':'" in message and line is not None and _long_key(text, line):
        message += " (a key is at most 1,024 characters long in YAML: this one is longer)"
    if "character '\\t'" in message:  # PyYAML's words for a tab it refuses, which few readers can see
        message += " (a tab is not allowed here: use spaces, or put the value in quotes)"
    return Problem(file, key_path, line if report_lines else None, message)


if getattr(yaml, "__with_libyaml__", False):

    class _FastScenarioLoader(_ResolvesYaml12, yaml.CSafeLoader):
        """libyaml's parser and composer (about ten times faster than PyYAML's own) with :func:`_plain_tag`.

        Used for a document libyaml reads; anything it refuses, and any tree deeper than
        MAX_DEPTH (libyaml itself stops at 1,000 levels), is read again by
        :class:`_ScenarioLoader`, whose messages are the ones reported (:func:`_compose_fast`).
        """

else:  # a PyYAML built without libyaml: PyYAML's own parser for everything
    _FastScenarioLoader = None


# Where PyYAML refuses what libyaml reads (a tab after or inside a plain value, a byte-order
# mark or a Unicode line break inside the text, a comment right after a block scalar's `|`):
# such a file keeps PyYAML's reading, so libyaml never makes a file valid that was not.
_PYYAML_STRICTER = re.compile(r"[\t\x85\u2028\u2029\ufeff]|[|>][-+0-9]*#")


def _height(root: Node) -> int:
    """How many collections deep the tree goes (an alias counts as its anchor's node; a cycle as infinite)."""
    heights: dict[int, float] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, ScalarNode) or (id(node) in heights and not children_done):
            heights.setdefault(id(node), 0)
            continue
        children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
        if children_done:
            heights[id(node)] = 1 + max((heights.get(id(c), math.inf) for c in children), default=0)
        else:
            heights[id(node)] = math.inf  # on the path: an alias back to it is a cycle
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in heights)
    return heights[id(root)]


# Line breaks to YAML 1.1 (PyYAML, libyaml) and not to YAML 1.2: in a comment or a value they
# cut the line there, so every later line number was off and the error read "expected
# '<document start>'" (seen with a pasted "…" decoded as Latin-1, U+0085).
_YAML11_BREAK = re.compile("[\x85\u2028\u2029]")
_YAML11_BREAK_NAMES = {"\x85": ("U+0085 (next line)", "\\N"), "\u2028": ("U+2028 (line separator)", "\\L"),
                       "\u2029": ("U+2029 (paragraph separator)", "\\P")}  # fmt: skip


# Control characters other than tab and newline: the stream may not hold them raw (the reader
# refuses them), but a double-quoted escape ("\e[31m", "\x07") puts them in a value, and a
# label or name is printed to terminals, tables and figures, where they act or show as boxes.
# U+0085 (next line, YAML's \N escape) is a line break, as \n is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]")


def _control_message(char: str) -> str:
    return (
        f"control character U+{ord(char):04X} in the text (an escape such as \\e or \\x1b in a double-quoted "
        "string): text may hold tabs and line breaks, no other control characters; delete it"
    )


def _yaml11_break_problem(text: str, at: int, file: str, key_path: str, report_lines: bool) -> Problem:
    """The problem of a YAML 1.1 line break at `at` in `text`, at its line as counted by newlines."""
    name, escape = _YAML11_BREAK_NAMES[text[at]]
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    message = (
        f"{name} at column {column}: YAML 1.1 reads it as a line break, YAML 1.2 does not; delete it, "
        f'or write it as {escape} in a double-quoted string ("...{escape}...")'
    )
    return Problem(file, key_path, line if report_lines else None, message)


def _compose_fast(text: str) -> tuple[Any, Node | None] | None:
    """(loader, root node) by libyaml, or None where it is missing or refuses the text (then PyYAML reads it)."""
    if _FastScenarioLoader is None or _PYYAML_STRICTER.search(text):
        return None
    loader = None
    try:
        loader = _FastScenarioLoader(text)
        root = loader.get_single_node()
        if root is not None and _height(root) > MAX_DEPTH:  # PyYAML's composer says where, as before
            loader.dispose()
            return None
        return loader, root
    except Exception:  # noqa: BLE001 - anything libyaml refuses (incl. text it cannot encode) gets PyYAML's message
        if loader is not None:
            loader.dispose()
        return None


def _compose(
    text: str, file: str, *, report_lines: bool, key_path: str = ""
) -> tuple[_ScenarioLoader | None, Node | None, list[Problem]]:
    """Parse text into a node tree (no values are constructed yet).

    Returns (loader, root node or None for an empty stream, problems).  When
    problems is non-empty the loader has been disposed and is None.
    """
    if (odd := _YAML11_BREAK.search(text)) is not None:
        return None, None, [_yaml11_break_problem(text, odd.start(), file, key_path, report_lines)]
    fast = _compose_fast(text)
    if fast is not None:
        return fast[0], fast[1], []
    loader: _ScenarioLoader | None = None
    try:
        loader = _ScenarioLoader(text)  # the Reader checks characters here already
        node = loader.get_single_node()
    except yaml.YAMLError as error:
        problem = _yaml_error_problem(error, file, key_path, text, report_lines)
    except RecursionError:  # defensive: the depth cap should make this unreachable
        problem = Problem(file, key_path, None, f"nested more than {MAX_DEPTH} levels deep")
    else:
        return loader, node, []
    if loader is not None:
        loader.dispose()
    return None, None, [problem]


# --- measuring (alias-bomb and depth guard) ---------------------------------------


class _Refused(Exception):
    """Internal: the node tree must not be expanded at all."""

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.problem = problem


def _check_expansion(root: Node, file: str, report_lines: bool, prefix: tuple) -> Problem | None:
    """Refuse trees that would expand to too many values or nest too deeply.

    Aliases make the node tree a DAG (or even a cycle: ``&a [*a]``).  We compute
    each distinct node's expanded size and height once (memoised by identity),
    so this costs time proportional to the *text*, not to the expansion: a
    9-level "billion laughs" is rejected after visiting ~100 nodes. Too many values
    are blamed on aliases only where the values written out are within the limit.
    """
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, container height)
    active: set[int] = set()  # nodes on the current path, to detect alias cycles
    uses = [0]  # nodes visited again: each is an alias (the composer makes a new node for anything else)

    def refuse(node: Node, path: tuple, message: str) -> NoReturn:
        line = node.start_mark.line + 1 if report_lines else None
        raise _Refused(Problem(file, dotted(prefix + path), line, message))

    def visit(node: Node, depth: int, path: tuple) -> tuple[int, int]:
        # depth = number of collections enclosing node
        key = id(node)
        if key in memo:
            size, height = memo[key]
            uses[0] += 1
        elif key in active:
            refuse(node, path, "this value contains itself through an alias")
        elif isinstance(node, ScalarNode):
            size, height = 1, 0
            memo[key] = (size, height)
        else:
            if depth + 1 > MAX_DEPTH:
                refuse(node, path, f"nested more than {MAX_DEPTH} levels deep")
            active.add(key)
            size, height = 1, 0
            if isinstance(node, SequenceNode):
                children = [(item, path + (index,)) for index, item in enumerate(node.value)]
            else:
                children = []
                for key_node, value_node in node.value:
                    label = key_node.value if isinstance(key_node, ScalarNode) else "?"
                    children.append((key_node, path))
                    children.append((value_node, path + (label,)))
            for child, child_path in children:
                child_size, child_height = visit(child, depth + 1, child_path)
                size += child_size
                height = max(height, child_height)
            height += 1
            active.discard(key)
            memo[key] = (size, height)
        if depth + height > MAX_DEPTH:
            refuse(node, path, f"nested more than {MAX_DEPTH} levels deep")
        return size, height

    try:
        size, _ = visit(root, 0, ())
    except _Refused as refused:
        return refused.problem
    if size > MAX_VALUES:
        written = len(memo)  # the values written out (what an alias names is counted once)
        if uses[0] and written <= MAX_VALUES:  # only its aliases make it too large
            message = f"document expands to more than {MAX_VALUES} values (alias bomb?)"
        else:
            message = f"document has {written:,} values, more than the limit of {MAX_VALUES:,} (keys count too)"
        return Problem(file, dotted(prefix), None, message)
    return None


# --- building plain data -----------------------------------------------------------


class _TooManyProblems(Exception):
    """Internal: stop walking, enough has been reported."""


def _short_tag(tag: str) -> str:
    """'tag:yaml.org,2002:python/name:os.system' -> '!!python/name:os.system'."""
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


def _tag_message(tag: str, node: Node) -> str:
    if tag in _ALLOWED_TAGS:  # a standard tag on the wrong kind of node, e.g. `!!str {a: 1}`
        return f"tag '{_short_tag(tag)}' cannot be used on {_describe_node(node)}"
    return f"tag '{_short_tag(tag)}' is not allowed in a scenario (only plain YAML values)"


def _describe_node(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        _YAML_TAG + "int": "a number",
        _YAML_TAG + "float": "a number",
        _YAML_TAG + "bool": "true/false",
        _NULL_TAG: "null",
        _TIMESTAMP_TAG: "a date",
    }.get(node.tag, _surprise_reading(node.value) if node.tag == _SURPRISE_TAG else "a plain value")


class _Builder:
    """Walks a (pre-measured) node tree into plain data plus an origins map.

    Origins are recorded relative to the walked node; ``prefix`` is only used
    to give problems their full key path (for ``--set`` values).
    """

    def __init__(self, loader: _ScenarioLoader, file: str, *, report_lines: bool, prefix: tuple = ()):
        self.loader = loader
        self.file = file
        self.report_lines = report_lines
        self.prefix = prefix
        self.origins: dict[tuple, tuple[str, int | None]] = {}
        self.problems: list[Problem] = []
        # An aliased node is walked once per use; report each of its problems once.
        self._reported: set[tuple[int, str]] = set()

    def build(self, node: Node) -> Any:
        try:
            return self._value(node, ())
        except _TooManyProblems:
            return None

    # helpers

    def _line(self, node: Node) -> int | None:
        return node.start_mark.line + 1 if self.report_lines else None

    def _report(self, node: Node, path: tuple, message: str) -> None:
        seen = (id(node), message)
        if seen in self._reported:
            return
        self._reported.add(seen)
        self.problems.append(Problem(self.file, dotted(self.prefix + path), self._line(node), message))
        if len(self.problems) >= MAX_PROBLEMS:
            stop = f"too many problems; stopped after {MAX_PROBLEMS}"
            self.problems.append(Problem(self.file, "", None, stop))
            raise _TooManyProblems

    # walking

    def _value(self, node: Node, path: tuple) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                self._report(node, path, _tag_message(node.tag, node))
                return None
            items = []
            for index, item in enumerate(node.value):
                item_path = path + (index,)
                self.origins[item_path] = (self.file, self._line(item))
                items.append(self._value(item, item_path))
            return items
        if isinstance(node, MappingNode):
            if node.tag != _MAP_TAG:
                self._report(node, path, _tag_message(node.tag, node))
                return None
            mapping: dict[str, Any] = {}
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node, path)
                if key is None:
                    continue
                key_path = path + (key,)
                if key in first_line:
                    where = f" (first at line {first_line[key]})" if self.report_lines else ""
                    self._report(key_node, key_path, f"duplicate key {key!r}{where}")
                    continue
                first_line[key] = key_node.start_mark.line + 1
                # The key's line, not the value's: for a nested block mapping the
                # value starts on the next line, but users look for "NDF:".
                self.origins[key_path] = (self.file, self._line(key_node))
                mapping[key] = self._value(value_node, key_path)
            return mapping
        self._report(node, path, "unsupported YAML node")  # not reachable with PyYAML's node types
        return None

    def _key(self, node: Node, parent: tuple) -> str | None:
        """The text of a mapping key, or None (after reporting) when it is not plain text."""
        if not isinstance(node, ScalarNode):
            message = f"keys must be text; quote it ({_describe_node(node)} cannot be a key)"
            self._report(node, parent, message)
            return None
        where = parent + (node.value,)
        if node.tag == _STR_TAG:
            return node.value  # a str-tagged scalar constructs to exactly its text
        if node.tag == _SURPRISE_TAG and node.value in _KEY_WORDS:
            return node.value  # `x: 1, y: 2`: both YAML 1.1 readers in use and YAML 1.2 read text
        if node.tag == _MERGE_TAG or (node.tag == _SURPRISE_TAG and node.value == "<<"):
            self._report(node, where, _MERGE_MESSAGE)
        elif node.tag in _SCALAR_TAGS or node.tag in (_TIMESTAMP_TAG, _SURPRISE_TAG):
            message = f"keys must be text; quote it ({node.value!r} reads as {_describe_node(node)})"
            self._report(node, where, message)
        else:
            self._report(node, where, _tag_message(node.tag, node))
        return None

    def _scalar(self, node: ScalarNode, path: tuple) -> Any:
        tag = node.tag
        # Only a double-quoted scalar's escapes make control characters (the reader refuses raw
        # ones), so plain numbers, the bulk of a polygon file, are not searched.
        if node.style == '"' and (control := _CONTROL.search(node.value)) is not None:
            self._report(node, path, _control_message(control.group()))
            return None
        if tag == _MERGE_TAG:
            self._report(node, path, _MERGE_MESSAGE)
            return None
        if tag == _TIMESTAMP_TAG:
            self._report(node, path, _DATE_MESSAGE)
            return None
        surprise = tag in (_INT_TAG, _FLOAT_TAG, _BOOL_TAG) and _plain_tag(node.value) == _SURPRISE_TAG
        if tag == _SURPRISE_TAG or surprise:
            # Plain `0150`, `on`, `2:30`, ... and explicit `!!int 0150`, `!!bool yes` alike.
            where = self.prefix + path
            why = (
                _whole_beyond_range(where, node.value)
                or _refused_number(where, _surprise_meant(node.value), node.value)
                or yaml11_surprise(node.value)
            )
            self._report(node, path, why or "unsupported scalar")
            return None
        if tag not in _SCALAR_TAGS:
            self._report(node, path, _tag_message(tag, node))
            return None
        try:
            value = _construct(tag, node.value)
        except ValueError as error:  # e.g. `!!int abc`, `!!int ""`, `!!bool maybe`, 5000 digits, 1e400
            self._report(node, path, _whole_beyond_range(self.prefix + path, node.value) or str(error))
            return None
        if type(value) is float and (why := _decimal_point_refused(self.prefix + path, value, node.value)):
            self._report(node, path, why)
            return None
        return value


def _build(
    loader: _ScenarioLoader, root: Node, file: str, *, report_lines: bool, prefix: tuple = ()
) -> tuple[Any, dict[tuple, tuple[str, int | None]], list[Problem]]:
    """Measure, then build (value, relative origins, problems) for a composed node."""
    refused = _check_expansion(root, file, report_lines, prefix)
    if refused is not None:
        return None, {}, [refused]
    builder = _Builder(loader, file, report_lines=report_lines, prefix=prefix)
    value = builder.build(root)
    return value, builder.origins, builder.problems


# --- files -----------------------------------------------------------------------


def _as_text_path(path: PathLike) -> str:
    file = os.fspath(path)
    return os.fsdecode(file) if isinstance(file, bytes) else file


def _stat_regular_file(file: str) -> tuple[os.stat_result | None, str | None]:
    """(os.stat of `file`, None) if it is a regular file, else (None, why not: 'no such file', ...)."""
    try:
        info = os.stat(file)
    except (FileNotFoundError, NotADirectoryError):
        return None, "no such file"
    except ValueError:  # e.g. an embedded NUL in the name
        return None, "not a valid file name"
    except OSError as error:
        return None, f"cannot read the file ({error.strerror or error})"
    if stat.S_ISDIR(info.st_mode):
        return None, "is a directory, not a file"
    if not stat.S_ISREG(info.st_mode):  # FIFOs and devices could block or never end
        return None, "is not a regular file"
    return info, None


def not_a_regular_file(file: str | os.PathLike) -> str | None:
    """Why `file` cannot be read as a file, or None if it is a regular file.

    One phrase: "no such file", "is a directory, not a file", "is not a regular file" (a FIFO,
    a device), "cannot read the file (Too many levels of symbolic links)"...
    """
    return _stat_regular_file(os.fspath(file))[1]


def _read_text(file: str) -> str:
    """Read a scenario file as text, or raise ScenarioError (never OSError/UnicodeError)."""

    def fail(message: str, line: int | None = None) -> NoReturn:
        raise ScenarioError([Problem(file, "", line, message)])

    info, why_not = _stat_regular_file(file)
    if info is None:
        fail(why_not)
    if info.st_size > MAX_FILE_BYTES:
        fail(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        with open(file, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows meanwhile
    except OSError as error:
        fail(f"cannot read the file ({error.strerror or error})")
    if len(raw) > MAX_FILE_BYTES:
        fail(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        return raw.decode("utf-8-sig")  # tolerate a UTF-8 byte-order mark
    except UnicodeDecodeError as error:
        fail("not UTF-8 text", line=raw.count(b"\n", 0, error.start) + 1)


def load_yaml(path: PathLike) -> SourcedDocument:
    """Load one scenario file safely (no ``extends`` processing).

    Raises ScenarioError listing every problem found.
    """
    file = _as_text_path(path)
    text = _read_text(file)
    loader, root, problems = _compose(text, file, report_lines=True)
    if problems:
        raise ScenarioError(problems)
    assert loader is not None
    try:
        # An empty stream gives no node; a bare `---` gives an empty null scalar.
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL_TAG and root.value == ""):
            raise ScenarioError([Problem(file, "", None, "the file is empty")])
        if not isinstance(root, MappingNode):
            line = root.start_mark.line + 1
            message = f"the top level must be a mapping of keys to values (got {_describe_node(root)})"
            raise ScenarioError([Problem(file, "", line, message)])
        data, origins, problems = _build(loader, root, file, report_lines=True)
    finally:
        loader.dispose()
    if problems:
        raise ScenarioError(problems)
    return SourcedDocument(data=data, origins=origins, main_file=file, files=(file,))


# --- extends ---------------------------------------------------------------------


def load_scenario_document(path: PathLike) -> SourcedDocument:
    """Load a scenario file, resolving its ``extends`` chain.

    ``extends: other.yaml`` (relative to the extending file's directory) loads
    the parent first and deep-merges this file over it: mappings merge key by
    key, lists and scalars replace.  Origins follow the file that supplied each
    value.  The ``extends`` key is removed from the result.

    The target must be a regular file whose name (and, through a symlink, whose real
    name) ends in ``.yaml`` or ``.yml``; anything else is refused in one problem at the
    ``extends`` line, without reading it.
    """
    return _load_extending(_as_text_path(path), [])


def _load_extending(file: str, chain: list[tuple[str, str]]) -> SourcedDocument:
    """Load file and its ancestors; chain holds (display path, real path) of the files extending it."""
    doc = load_yaml(file)
    if "extends" not in doc.data:
        return doc

    def fail(message: str) -> NoReturn:
        raise ScenarioError([doc.problem(("extends",), message)])

    here = chain + [(file, os.path.realpath(file))]
    target = doc.data["extends"]
    if not isinstance(target, str) or not target.strip():
        fail(f"must be the name of another scenario file (got {describe(target)})")
    # Scenario files are untrusted: `extends: /etc/shadow` would read any file and echo its lines
    # in the problems found there. Only a scenario file (by its name, and by the name of the file
    # a symlink leads to) is read; the refusal is this one line, none of the target's content.
    if not _is_scenario_file_name(target):
        fail(f"cannot extend {target!r}: not a scenario file (its name must end in {' or '.join(SCENARIO_SUFFIXES)})")
    parent_file = os.path.join(os.path.dirname(file), target)
    # Checked before realpath(): a NUL in the name makes realpath raise.
    _, why_not = _stat_regular_file(parent_file)
    if why_not is not None:
        fail(f"cannot extend {target!r}: {why_not} (looked for {parent_file})")
    parent_file = _tidy_path(parent_file)
    parent_real = os.path.realpath(parent_file)
    if not _is_scenario_file_name(parent_real):
        fail(
            f"cannot extend {target!r}: it is a link to {parent_real}, not a scenario file "
            f"(its name must end in {' or '.join(SCENARIO_SUFFIXES)})"
        )
    real_paths = [real for _, real in here]
    if parent_real in real_paths:
        cycle = [display for display, _ in here[real_paths.index(parent_real):]] + [parent_file]
        fail("extends cycle: " + " -> ".join(cycle))
    if len(here) >= MAX_EXTENDS_CHAIN:
        fail(f"too many levels of extends (more than {MAX_EXTENDS_CHAIN} files)")

    parent = _load_extending(parent_file, here)
    child_data = {key: value for key, value in doc.data.items() if key != "extends"}
    child_origins = {path: origin for path, origin in doc.origins.items() if path[:1] != ("extends",)}
    if "name" not in child_data and "name" in parent.data:
        # Not the parent's name: results/<name>/, figure footers and manifests would present a
        # changed scenario as its parent. A file that extends another is named by its file name
        # (where no file of the chain names it, validation says that the name is missing).
        # (`toy sweep.yaml` is `toy_sweep`: a character a name cannot hold becomes '_'.)
        stem = os.path.splitext(os.path.basename(file))[0]
        name = re.sub(r"[^A-Za-z0-9_\-]+", "_", stem)
        if not _NAME.fullmatch(name):
            fail(
                f"this file sets no `name:` and its file name {stem!r} does not make a scenario name "
                "(a letter, then letters, digits, '_' or '-', at most 64): add `name:`"
            )
        child_data = {"name": name, **child_data}
        child_origins[("name",)] = doc.where(("extends",))
    replaced: set[tuple] = set()
    data = _deep_merge(parent.data, child_data, (), replaced)
    # Parent origins survive unless the child replaced that value or an ancestor
    # of it (e.g. a parent list's item 2 after the child gave a shorter list).
    origins = {
        path: origin
        for path, origin in parent.origins.items()
        if not any(path[:end] in replaced for end in range(1, len(path) + 1))
    }
    origins.update(child_origins)
    return SourcedDocument(data=data, origins=origins, main_file=file, files=(*parent.files, file))


def _is_scenario_file_name(name: str) -> bool:
    """Whether the file name `name` ends in a scenario file's suffix (`.yaml`/`.yml`, any case)."""
    return os.path.splitext(name)[1].lower() in SCENARIO_SUFFIXES


# What `sim.schema.Identifier` accepts: the name a file without `name:` takes from its file name.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")


def _tidy_path(path: str) -> str:
    """Drop `x/../` and `./` from path for readable messages, if that names the same file.

    normpath() is purely textual and can be wrong when a directory is a
    symlink, so only use it when the file system agrees.
    """
    tidy = os.path.normpath(path)
    if tidy == path:
        return path
    try:
        return tidy if os.path.samefile(tidy, path) else path
    except (OSError, ValueError):
        return path


def _deep_merge(base: Any, over: Any, path: tuple, replaced: set[tuple]) -> Any:
    """Merge over onto base: mappings recursively, anything else replaces.

    Both inputs are freshly built documents that are discarded afterwards, so
    sharing sub-objects with them is safe.  Paths whose value was replaced are
    added to ``replaced`` so their old origins can be dropped.
    """
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _deep_merge(base[key], value, path + (key,), replaced) if key in base else value
        return merged
    replaced.add(path)
    return over


# --- --set overrides ----------------------------------------------------------------


def apply_overrides(doc: SourcedDocument, assignments: list[str]) -> SourcedDocument:
    """Apply ``key.path=value`` assignments and return a NEW document (doc is not changed).

    Values are YAML scalars or flow collections parsed with the same safe rules
    as files.  Digit-only segments index lists; missing mappings are created.
    Overridden values get the origin ("--set", None).  All problems are
    collected and raised together as one ScenarioError.
    """
    if isinstance(assignments, (str, bytes)):
        raise TypeError("assignments must be a list of 'key.path=value' strings, not a single string")
    # The new document shares what the assignments do not touch: only its top level and the
    # mappings and lists on the assigned paths are copies (`keypath.unshare`). A deep copy
    # of the whole scenario was most of a sweep's per-run cost of applying a design point.
    data = copy.copy(doc.data)
    copied = {id(data)}
    origins = dict(doc.origins)
    problems: list[Problem] = []
    for assignment in assignments:
        problems.extend(_apply_one(data, origins, assignment, copied))
    if problems:
        raise ScenarioError(problems)
    return SourcedDocument(data=data, origins=origins, main_file=doc.main_file, files=doc.files)


def override_key(assignment) -> tuple | None:
    """The key path (segments) an override `key.path=value` sets, as `apply_overrides` reads it; None if malformed.

    Spaces and tabs around '=' do not count; any other character belongs to the key. A
    malformed assignment (no text, no '=', a bad key path) gives None: checks that look at
    keys leave it to `apply_overrides`, which says what is wrong with it.
    """
    if not isinstance(assignment, str) or "=" not in assignment:
        return None
    try:
        return keypath.parts(assignment.split("=", 1)[0].strip(" \t"))
    except keypath.KeyPathError:
        return None


def check_repeated_overrides(assignments: Iterable[str], option: str = OVERRIDE_FILE) -> None:
    """Refuse a key given by two assignments (`--set steps=10 --set steps=20`), as a file's duplicate key is.

    Applied in order, the last would win unseen. Keys are compared as key paths (spaces around
    '=' do not count); malformed assignments are left to `apply_overrides`.

    Args:
        assignments: `key.path=value` strings, as given.
        option: the option as the user wrote it, e.g. "--set" or "--set-for 2".

    Raises:
        ScenarioError: one problem per repeated key, e.g. "--set: steps: given twice (--set
            steps=10 and --set steps=20); give it once".
    """
    first: dict[tuple, str] = {}
    problems = []
    for assignment in assignments:
        if (segments := override_key(assignment)) is None:
            continue
        if segments not in first:
            first[segments] = assignment
            continue
        both = f"{option} {short_override(first[segments])} and {option} {short_override(assignment)}"
        problems.append(Problem(option.split(" ")[0], dotted(segments), None, f"given twice ({both}); give it once"))
    if problems:
        raise ScenarioError(problems)


def _apply_one(
    data: dict, origins: dict[tuple, tuple[str, int | None]], assignment: Any, copied: set[int]
) -> list[Problem]:
    """Apply one assignment in place (copying the shared containers on its path first: `copied`); return its problems.

    With problems, data holds the same values as before (perhaps in copied containers).
    """

    def problem(key_path: str, message: str) -> list[Problem]:
        return [Problem(OVERRIDE_FILE, key_path, None, message)]

    if not isinstance(assignment, str):
        return problem("", f"expected text like key.path=value, got {clipped(assignment)}")
    if "=" not in assignment:
        return problem("", f"expected key.path=value, got {clipped(assignment)} (no '=')")
    raw_path, value_text = assignment.split("=", 1)
    raw_path = raw_path.strip(" \t")  # spaces around '=' only: any other character belongs to the key
    if not raw_path:
        return problem("", f"missing key path before '=' in {clipped(assignment)}")
    try:
        segments = keypath.parts(raw_path)
    except keypath.KeyPathError as error:
        return problem(raw_path, error.message)

    value, value_origins, value_problems = _parse_override_value(value_text, segments)
    if value_problems:
        return value_problems

    # Mappings missing along the path are created; they get the override's origin too.
    first_created = next(
        (end for end in range(1, len(segments)) if not keypath.exists(data, segments[:end])), len(segments)
    )
    keypath.unshare(data, segments, copied)
    try:
        path = keypath.set(data, segments, value, create=True)
    except keypath.KeyPathError as error:
        return problem(raw_path, error.message)
    for end in range(first_created, len(segments)):
        origins[path[:end]] = _SET_ORIGIN

    for stale in [known for known in origins if known[: len(path)] == path]:
        del origins[stale]
    origins[path] = _SET_ORIGIN
    for relative in value_origins:
        origins[path + relative] = _SET_ORIGIN
    return []


def _parse_override_value(text: str, segments: tuple) -> tuple[Any, dict[tuple, Any], list[Problem]]:
    """Parse the right-hand side of ``--set`` with the same safe rules as files."""
    if _DECIMAL.fullmatch(text):  # as `sim.design.format_value` writes the values of a sweep's points
        # What the parser below would do with this scalar (tag it as the loader's resolver does,
        # then construct it), without the parser: a sweep applies several such values per run,
        # at a third of a millisecond each through the parser.
        tag = _plain_tag(text)
        if tag in (_INT_TAG, _FLOAT_TAG):
            try:
                value = _construct(tag, text)
            except ValueError:
                pass  # the parser's path reports it
            else:
                if type(value) is not float or not (why := _decimal_point_refused(segments, value, text)):
                    return value, {}, []
                return None, {}, [Problem(OVERRIDE_FILE, dotted(segments), None, why)]
    key_path = dotted(segments)
    loader, root, problems = _compose(text, OVERRIDE_FILE, report_lines=False, key_path=key_path)
    if problems:
        return None, {}, problems
    assert loader is not None
    try:
        if root is None:
            if text.strip():  # e.g. `color=#ff0000`: YAML reads '#...' as a comment
                message = f"{clipped(text.strip())} is only a YAML comment; quote it if '#' is part of the value"
                return None, {}, [Problem(OVERRIDE_FILE, key_path, None, message)]
            return None, {}, []  # `key=` means null, as in YAML
        if isinstance(root, (MappingNode, SequenceNode)) and not root.flow_style:
            # `name=Note: x` would silently become a mapping; make the user say what they mean.
            message = (
                f"{clipped(text.strip())} reads as block YAML ('key: value' or '- item'); "
                "quote it, or write a flow value such as [1, 2] or {a: 1}"
            )
            return None, {}, [Problem(OVERRIDE_FILE, key_path, None, message)]
        return _build(loader, root, OVERRIDE_FILE, report_lines=False, prefix=segments)
    finally:
        loader.dispose()


def parse_value(text: str) -> Any:
    """A ``--set`` right-hand side as plain data, read exactly as ``apply_overrides`` reads it.

    Raises:
        ScenarioError: the text is not a value this module accepts (file ``--set``, no key path).
    """
    value, _, problems = _parse_override_value(text, ())
    if problems:
        raise ScenarioError(problems)
    return value


# --- writing YAML that reads back unchanged ---------------------------------------------


_LINE_BREAKS = frozenset("\x85\u2028\u2029")  # line breaks in YAML besides \n and \r


class _WritesReadableStrings:
    """Mixed into a PyYAML dumper: quote every string this module would not read back as itself.

    PyYAML quotes what YAML 1.1 reads as non-text (``'on'``, ``'0150'``) but writes
    ``1e5``, ``y`` and ``08`` plain. Here a string is written plain only when both this
    module and YAML 1.1 read it back as text, so ``yaml.safe_load`` reads the output right too.
    """

    def represent_str(self, data: str) -> Node:
        if any(ch in _LINE_BREAKS for ch in data):
            # PyYAML writes these raw inside single quotes, where YAML folds them to a space;
            # double quotes escape them.
            return self.represent_scalar(_STR_TAG, data, style='"')
        return yaml.representer.SafeRepresenter.represent_str(self, data)

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        yaml11 = yaml.resolver.Resolver.resolve(self, kind, value, implicit)
        if kind is ScalarNode and implicit[0]:
            ours = _plain_tag(value)
            return ours if ours != _STR_TAG else yaml11
        return yaml11


class _ScenarioDumper(_WritesReadableStrings, yaml.SafeDumper):
    """``yaml.SafeDumper`` (PyYAML's own emitter) writing strings that read back as themselves."""


_ScenarioDumper.add_representer(str, _ScenarioDumper.represent_str)
if getattr(yaml, "__with_libyaml__", False):

    class _FastScenarioDumper(_WritesReadableStrings, yaml.CSafeDumper):
        """The same with libyaml's emitter, about three times as fast.

        Every scenario's text is PyYAML's emitter's, character for character (tested); other
        text may differ in style (libyaml escapes characters beyond U+FFFF), never in what reads back.
        """

    _FastScenarioDumper.add_representer(str, _FastScenarioDumper.represent_str)
else:  # a PyYAML built without libyaml
    _FastScenarioDumper = _ScenarioDumper


def dump_yaml(data: Any, **options: Any) -> str:
    """``yaml.safe_dump(data, **options)`` whose output :func:`load_yaml` reads back as ``data``.

    Args:
        data: plain data (dict/list/str/int/float/bool/None).
        options: as for ``yaml.safe_dump`` (``sort_keys``, ``allow_unicode``, ``width``, ...).

    Returns:
        The YAML text.
    """
    if options.get("width") is not None:  # libyaml takes a C int: 2**31 - 1 is as unlimited as 2**31
        options["width"] = min(options["width"], 2**31 - 1)
    return yaml.dump(data, Dumper=_FastScenarioDumper, **options)
