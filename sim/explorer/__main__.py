"""`python -m sim.explorer [SCENARIO] [--port N] [--open]`: the explorer without run.py."""

from __future__ import annotations

import argparse
import sys

from sim.cli import PORTS, bounded_int
from sim.explorer.server import serve
from sim.yaml_source import ScenarioError


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: `sys.argv[1:]`) and serve the explorer; return the exit status.

    0 when stopped with Ctrl-C, 143 on SIGTERM, 2 for a bad scenario or a port in use, 1 if the server fails
    to start, else the server's own exit status (`sim.explorer.server.serve`).
    """
    parser = argparse.ArgumentParser(prog="python -m sim.explorer", description=__doc__, allow_abbrev=False)
    parser.add_argument("scenario", nargs="?", default=None, help="scenario name or path (default baseline)")
    parser.add_argument(
        "--port", type=bounded_int(*PORTS), default=None, help="localhost port, 0..65535 (default or 0: a free one)"
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    args = parser.parse_args(argv)
    try:
        return serve(args.scenario, port=args.port, open_browser=args.open)
    except ScenarioError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
