"""Outcome expressions: arithmetic over outcome names, for patterns written as data.

A pattern in a scenario's `validation:` section measures each run by an expression such as

    defections.NDF>IRGC / fighters_initial.NDF
    min(kept_share.IRGC, kept_share.NDF)
    clashes_near.buqrus - clashes_near_median

Grammar (the usual precedence; no comparisons: a pattern compares the value with its bounds):

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := NUMBER | OUTCOME | FUNCTION "(" expression ("," expression)* ")"
                  | "(" expression ")" | "-" factor
    FUNCTION   := min | max | abs

An OUTCOME is an outcome name of `sim.outcomes` (`kind` or `kind.subject`; a subject may
hold `>` `@` `~` `|`, so `defections.NDF>IRGC` is one name, not a comparison); a name with
other characters, such as a faction called `Liwa-1`, is written in backticks:
`` `kept_share.Liwa-1` ``. Nothing is
evaluated by Python's `eval`: a scenario file is untrusted input.

Missing data (one rule, shared with `sim.outcomes`): an outcome is NaN where the run has
nothing to measure (a share of no clashes, a ratio to zero); anything computed from a NaN is
NaN, and so is a division by zero. A pattern whose expression is NaN in a run is not shown
by that run (`sim.patterns`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Expression", "ExpressionError", "parse_expression"]

MAX_LENGTH = 500  # characters: a pattern's measure is a line, not a program
MAX_DEPTH = 20  # nested parentheses and function calls
FUNCTIONS = {"min": min, "max": max, "abs": abs}

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_>@~|]+)?)"
    r"|`(?P<quoted>[^`]+)`"
    r"|(?P<op>[-+*/(),]))",
    re.ASCII,  # ASCII digits and spaces only: '\u0663' is not 3, and a line separator is not a space
)
_SPACE = " \t\n\r\f\v"  # what \s matches under re.ASCII


class ExpressionError(ValueError):
    """An expression that does not parse; the message says where and why."""


@dataclass(frozen=True)
class Expression:
    """A parsed outcome expression: its text, its tree, and the outcome names it reads.

    The tree is nested tuples: ("num", value), ("out", name), ("neg", node),
    ("bin", op, left, right) or ("call", function, (args...)).
    """

    text: str
    tree: tuple
    outcomes: tuple[str, ...]

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The expression's value given each outcome's value; NaN if any input is NaN or a division is by zero.

        Raises:
            KeyError: an outcome the expression reads is missing from `values`.
        """
        return _evaluate(self.tree, values)

    @property
    def is_outcome(self) -> bool:
        """Whether the expression is one outcome name alone."""
        return self.tree[0] == "out"


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip(_SPACE) == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"unexpected {text[position:].strip(_SPACE)[:10]!r} at character {position + 1}")
        kind = match.lastgroup
        value, start = match.group(kind), match.start(kind)
        if kind == "quoted":  # a name with characters the bare form cannot hold, such as '-'
            kind, value = "outcome", value.strip()
        tokens.append((kind, value, start))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.names: list[str] = []

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ExpressionError(f"the expression ends early{f' (expected {value!r})' if value else ''}")
        if value is not None and token[1] != value:
            raise ExpressionError(f"expected {value!r} at character {token[2] + 1}, found {token[1]!r}")
        self.i += 1
        return token

    def parse(self) -> tuple:
        tree = self.expression(0)
        extra = self.peek()
        if extra is not None:
            raise ExpressionError(f"unexpected {extra[1]!r} at character {extra[2] + 1}")
        return tree

    def expression(self, depth: int) -> tuple:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} deep")
        node = self.term(depth)
        while (token := self.peek()) is not None and token[1] in "+-" and token[0] == "op":
            self.take()
            node = ("bin", token[1], node, self.term(depth))
        return node

    def term(self, depth: int) -> tuple:
        node = self.factor(depth)
        while (token := self.peek()) is not None and token[1] in "*/" and token[0] == "op":
            self.take()
            node = ("bin", token[1], node, self.factor(depth))
        return node

    def factor(self, depth: int) -> tuple:
        kind, value, position = self.take()
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise ExpressionError(f"number {value!r} at character {position + 1} is not finite")
            return ("num", number)
        if kind == "outcome":
            self.names.append(value)
            return ("out", value)
        if kind == "name":
            following = self.peek()
            if following is not None and following[1] == "(":
                if value not in FUNCTIONS:
                    raise ExpressionError(f"unknown function {value!r}; known: {', '.join(FUNCTIONS)}")
                self.take("(")
                args = [self.expression(depth + 1)]
                while (token := self.peek()) is not None and token[1] == ",":
                    self.take()
                    args.append(self.expression(depth + 1))
                self.take(")")
                if value == "abs" and len(args) != 1:
                    raise ExpressionError("abs takes one argument")
                if value in ("min", "max") and len(args) < 2:
                    raise ExpressionError(f"{value} takes two or more arguments")
                return ("call", value, tuple(args))
            self.names.append(value)
            return ("out", value)
        if value == "(":
            node = self.expression(depth + 1)
            self.take(")")
            return node
        if value == "-":
            return ("neg", self.factor(depth + 1))
        raise ExpressionError(f"unexpected {value!r} at character {position + 1}")


def parse_expression(text: str) -> Expression:
    """Parse an outcome expression (see the module notes).

    Raises:
        ExpressionError: empty, longer than MAX_LENGTH characters, nested too deep, or not
            in the grammar; the message gives the character where it went wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters")
    parser = _Parser(text)
    tree = parser.parse()
    _check_constants(tree)
    return Expression(text=text.strip(), tree=tree, outcomes=tuple(dict.fromkeys(parser.names)))


def _outcomes_in(node: tuple) -> bool:
    if node[0] == "out":
        return True
    if node[0] == "num":
        return False
    if node[0] == "neg":
        return _outcomes_in(node[1])
    if node[0] == "call":
        return any(_outcomes_in(a) for a in node[2])
    return _outcomes_in(node[2]) or _outcomes_in(node[3])


def _check_constants(node: tuple) -> None:
    """Refuse a part made of numbers alone that is not a finite number (1/0, 1e308*1e308)."""
    if not _outcomes_in(node):
        value = _evaluate(node, {})
        if not math.isfinite(value):
            raise ExpressionError("a part made of numbers alone is not a finite number (a division by zero?)")
        return
    if node[0] == "bin" and node[1] == "/" and not _outcomes_in(node[3]) and _evaluate(node[3], {}) == 0:
        raise ExpressionError("a division by zero (a divisor made of numbers alone is 0)")
    children = {"neg": lambda n: [n[1]], "call": lambda n: list(n[2]), "bin": lambda n: [n[2], n[3]]}
    for child in children.get(node[0], lambda n: [])(node):
        _check_constants(child)


def _evaluate(node: tuple, values: Mapping[str, float]) -> float:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "out":
        return float(values[node[1]])
    if kind == "neg":
        return -_evaluate(node[1], values)
    if kind == "call":
        args = [_evaluate(a, values) for a in node[2]]
        if any(math.isnan(a) for a in args):
            return float("nan")
        return float(FUNCTIONS[node[1]](*args))
    op, left, right = node[1], _evaluate(node[2], values), _evaluate(node[3], values)
    if math.isnan(left) or math.isnan(right):
        return float("nan")
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    elif right == 0:
        return float("nan")  # a ratio to nothing is undefined, not infinite
    else:
        result = left / right
    return result if math.isfinite(result) else float("nan")
