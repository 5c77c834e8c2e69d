"""The browser explorer: a Solara page to play a scenario and try its parameters.

    python run.py explore baseline          # or: python -m sim.explorer baseline
    solara run sim.explorer.app             # the same page, with Solara's own server options

`sim.explorer.core` holds the logic (controls from the schema, validation, saving, export,
and the play loop `Runner` that publishes read-only snapshots) and needs no user-interface
packages; `sim.explorer.figures` draws a snapshot as HTML and SVG (the map as a small
image enlarged by the browser, the charts as polylines on fixed axes); `sim.explorer.app`
is the Solara page and `sim.explorer.server` starts it. The
page and the server need the `ui` extra (solara); `serve` and `Page` are imported lazily so
`from sim.explorer import serve` raises ImportError when it is missing.
"""

from __future__ import annotations

__all__ = ["Page", "serve"]


def __getattr__(name: str):
    if name == "serve":
        from sim.explorer.server import serve

        return serve
    if name in ("Page", "page"):
        from sim.explorer.app import Page

        return Page
    raise AttributeError(f"module 'sim.explorer' has no attribute {name!r}")
