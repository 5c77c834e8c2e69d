"""Suggestions for misspelled names ("did you mean ...?"), in one place.

Every message about a name that is not known (a scenario, a key of a scenario section, a
faction, site or tribe, an outcome) ends the same way, so a typo is answered by its likely
correction and the list to choose from:

    did_you_mean("baselin", ["baseline", "toy_two_towns"])    # " (did you mean 'baseline'?)"
    unknown("IRGX", ["IRGC", "NDF"], "factions")
    # "(did you mean 'IRGC'? factions: IRGC, NDF)"

Close names are found with `difflib.get_close_matches` (Ratcliff/Obershelp similarity, at least
0.6 by default), compared without regard to case so that `irgc` finds `IRGC`. This module
sits below every other `sim` module and imports none of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches", "did_you_mean", "known_list", "unknown"]

MAX_LISTED = 20  # names listed in a message before "... (N in all)": it stays one readable line


def close_matches(name: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The known names most like `name`, best first (at most `n`; empty if none is close).

    Args:
        name: The name as written.
        choices: The known names (any iterable of text; duplicates are ignored).
        n: At most this many suggestions.
        cutoff: The lowest similarity (0-1, `difflib.SequenceMatcher.ratio`) still suggested.

    Returns:
        Known names in their own spelling, the most similar first; an exact match (ignoring
        case) always comes first.
    """
    known = list(dict.fromkeys(str(c) for c in choices))
    by_folded: dict[str, str] = {}
    for choice in known:
        by_folded.setdefault(choice.casefold(), choice)
    folded = str(name).casefold()
    found = difflib.get_close_matches(folded, list(by_folded), n=n, cutoff=cutoff)
    return [by_folded[f] for f in found]


def did_you_mean(name: str, choices: Iterable[str], n: int = 2) -> str:
    """` (did you mean 'X'?)` (or `'X' or 'Y'`, up to `n`) for a misspelled name, "" if no known name is close."""
    found = close_matches(name, choices, n=n)
    if not found:
        return ""
    return " (did you mean " + " or ".join(f"'{f}'" for f in found) + "?)"


def known_list(choices: Iterable[str], limit: int = MAX_LISTED) -> str:
    """The known names as `a, b, c`, cut after `limit` with `... (N in all)`; `none` if there are none."""
    names = list(dict.fromkeys(str(c) for c in choices))
    if not names:
        return "none"
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names)} in all)"


def unknown(name: str, choices: Iterable[str], what: str) -> str:
    """`(did you mean 'X'? WHAT: a, b, c)`: the suggestion and the list, in one parenthesis.

    Args:
        name: The name as written.
        choices: The known names.
        what: What the list holds, in the plural (`factions`, `scenarios`, `valid keys`).
    """
    names = list(choices)
    found = close_matches(name, names, n=2)
    guess = ("did you mean " + " or ".join(f"'{f}'" for f in found) + "? ") if found else ""
    return f"({guess}{what}: {known_list(names)})"
