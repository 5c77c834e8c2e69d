"""Dotted key paths over nested plain data: `factions.NDF.headquarters.0`.

One path syntax serves the whole project: `--set key.path=value` overrides, provenance keys,
swept and calibrated parameters, and the explorer's controls. A path is a string of
segments joined by `.` (or a tuple of segments); a segment indexes a mapping by key, or a
list by a non-negative item number written in ASCII digits (`0`, `12`).

    data = {"a": {"b": [{"c": 1}]}}
    keypath.get(data, "a.b.0.c")          # 1
    keypath.exists(data, "a.b.1.c")       # False
    keypath.set(data, "a.b.0.c", 2)       # ("a", "b", 0, "c"): where the value went
    keypath.set(data, "x.y", 3, create=True)   # creates the mapping x

This module sits below every other `sim` module and imports none of them.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Sequence
from typing import Any

__all__ = ["KeyPathError", "describe", "exists", "get", "join", "parts", "set"]

Path = str | Sequence[str | int]


class KeyPathError(LookupError):
    """A key path that does not lead anywhere in the data.

    Attributes:
        path: the path asked for, dotted.
        at: the segments resolved before the failure (list items as `int`).
        message: one lower-case line saying what is wrong, e.g.
            `index 5 is out of range (factions.NDF.headquarters has 2 items)`.
    """

    def __init__(self, path: str, at: tuple, message: str):
        self.path = path
        self.at = at
        self.message = message
        super().__init__(path, at, message)

    def __str__(self) -> str:
        return self.message


def join(path: Sequence[str | int]) -> str:
    """("a", 0, "b") -> "a.0.b"."""
    return ".".join(str(part) for part in path)


def parts(path: Path) -> tuple[str, ...]:
    """The segments of a path: "a.b.0" -> ("a", "b", "0"); a tuple is taken as its segments.

    Raises:
        KeyPathError: the path is empty or has an empty segment ("a..b", ".a").
    """
    segments = tuple(path.split(".")) if isinstance(path, str) else tuple(str(p) for p in path)
    if not segments or not all(segments):
        text = path if isinstance(path, str) else join(path)
        raise KeyPathError(text, (), f"empty key in path {text!r}")
    return segments


def describe(value: Any) -> str:
    """A plain value described for messages: `a number (3)`, `text ('x')`, `a mapping`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"true/false ({value!r})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"text ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _index(segment: str) -> int | None:
    # ASCII digits only: str.isdigit() accepts '²', which int() refuses.
    return int(segment) if segment.isascii() and segment.isdigit() else None


def _step(node: Any, segment: str, at: tuple, text: str, verb: str) -> tuple[Any, str | int]:
    """The child of `node` named by `segment`, and the segment as resolved (int for a list)."""
    where = join(at) or "the top level"
    if isinstance(node, dict):
        if segment not in node:
            raise KeyPathError(text, at, f"no key {segment!r} in {where}")
        return node[segment], segment
    if isinstance(node, list):
        index = _index(segment)
        if index is None:
            raise KeyPathError(text, at, f"{where} is a list; use an item number instead of {segment!r}")
        if index >= len(node):
            raise KeyPathError(text, at, f"index {index} is out of range ({where} has {len(node)} items)")
        return node[index], index
    message = f"cannot {verb} {segment!r} inside {where}: it is {describe(node)}, not a mapping or list"
    raise KeyPathError(text, at, message)


def get(data: Any, path: Path) -> Any:
    """The value at `path` in nested dicts and lists.

    Raises:
        KeyPathError: a key is missing, an item number is out of range or not a number, or
            a segment reaches inside a value that is not a mapping or list.
    """
    segments = parts(path)
    text = join(segments)
    node, at = data, ()
    for segment in segments:
        node, resolved = _step(node, segment, at, text, "look up")
        at += (resolved,)
    return node


def exists(data: Any, path: Path) -> bool:
    """Whether `get(data, path)` would find a value (False for a malformed path too)."""
    try:
        get(data, path)
    except KeyPathError:
        return False
    return True


def unshare(data: Any, path: Path, copied: builtins.set[int]) -> None:
    """Copy, in place, the mappings and lists along `path` (all but its last segment) not yet in `copied`.

    For a document made from another by changing a few paths: the new one starts as a copy of
    the top level only (its id in `copied`), and before a value is put at a path, each
    container on the way is replaced by a shallow copy of itself (its id added to `copied`),
    so the original never changes and the containers off those paths are shared, not copied.
    Stops where the path does not go on (a missing key or item: `set` reports or creates it).
    """
    node = data
    for segment in parts(path)[:-1]:
        if isinstance(node, dict) and segment in node:
            key: str | int = segment
        elif isinstance(node, list) and (index := _index(segment)) is not None and index < len(node):
            key = index
        else:
            return
        child = node[key]
        if not isinstance(child, (dict, list)):
            return
        if id(child) not in copied:
            child = copy.copy(child)
            node[key] = child
            copied.add(id(child))
        node = child


def set(data: Any, path: Path, value: Any, *, create: bool = False) -> tuple[str | int, ...]:
    """Put `value` at `path`, in place; return the path as resolved (list items as `int`).

    The last segment may name a new key of a mapping, or replace an existing list item
    (lists never grow). With `create=True`, missing mappings along the way are created
    (`{}`); otherwise a missing key before the last segment is an error. Nothing is changed
    when an error is raised.

    Raises:
        KeyPathError: as for `get`, for any segment but the last one's key.
    """
    segments = parts(path)
    text = join(segments)
    node, at = data, ()
    for position, segment in enumerate(segments[:-1]):
        if create and isinstance(node, dict) and segment not in node:
            # Only fresh mappings lie beyond this point, so nothing can fail after it.
            for missing in segments[position:-1]:
                node[missing] = {}
                node = node[missing]
                at += (missing,)
            break
        node, resolved = _step(node, segment, at, text, "set")
        at += (resolved,)
    last = segments[-1]
    if isinstance(node, dict):
        node[last] = value
        return (*at, last)
    if isinstance(node, list):
        _, index = _step(node, last, at, text, "set")
        node[index] = value
        return (*at, index)
    _step(node, last, at, text, "set")  # raises: not a container
    raise AssertionError("unreachable")
