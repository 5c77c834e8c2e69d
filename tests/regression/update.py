"""Re-pin the regression figures on purpose: `make regression-update`.

Prints every figure that changed, then rewrites `tests/regression/pinned.json`. Commit the
new file with a message that says why the numbers changed.
"""

from __future__ import annotations

import json
import sys

from tests.regression.figures import PINNED, STEPS, all_figures, differences, load_pinned


def main() -> int:
    new = {"steps": STEPS, "runs": all_figures()}
    old = load_pinned() if PINNED.exists() else {"runs": {}}
    lines = differences(old.get("runs", {}), new["runs"])
    if not lines and old.get("steps") == STEPS:
        print(f"regression figures unchanged ({len(new['runs'])} runs); {PINNED} left as it is")
        return 0
    for line in lines:
        print(line)
    PINNED.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
    print(f"{len(lines)} figure(s) changed; wrote {PINNED}. Commit it with the reason.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
