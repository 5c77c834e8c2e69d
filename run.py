#!/usr/bin/env python3
"""Command line: `python run.py run|validate|list|plot ...` (see `python run.py --help`)."""

from sim.cli import finish, main

if __name__ == "__main__":
    finish(main())  # exits with main's status, skipping Python's slow teardown (see sim.cli.finish)
