"""The long crash-torture run: ``python -m benchmarks.torture --kills 500``.

Kills the torture workload (tests/torture/) at random moments as many times as asked,
finishes it, checks the invariants, and prints the figures and any violation.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "torture"))

from torture_harness import main

if __name__ == "__main__":
    sys.exit(main())
