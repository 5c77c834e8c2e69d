#!/usr/bin/env python3
"""Command line: `python run.py run|validate|list|plot ...` (see `python run.py --help`)."""

import sys

from sim.cli import exit_on_late_signal, main

if __name__ == "__main__":
    status = main()
    exit_on_late_signal(status)  # the output is complete: a signal while Python shuts down keeps the status
    sys.exit(status)
