#!/usr/bin/env python3
"""Command line: `python run.py run|validate|list|plot ...` (see `python run.py --help`)."""

import sys

from sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
