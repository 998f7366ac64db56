"""Run every benchmark and print one table of results: ``python -m benchmarks``.

Each module under benchmarks/ has ``run() -> list[(name, value, target)]``; the
numbers are reported, never asserted (speed targets live in the issues).
"""

from __future__ import annotations

import importlib
import sys

MODULES = ("bench_engine", "bench_store", "bench_widgets", "bench_runners", "bench_prune")


def main(argv: list[str]) -> int:
    chosen = argv or list(MODULES)
    print(f"{'benchmark':44} {'value':>12}   target")
    for name in chosen:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ImportError as exc:
            print(f"{name}: not available ({exc})")
            continue
        for row in module.run():
            label, value, *rest = row
            target = rest[0] if rest else ""
            print(f"{label:44} {value:12.3f}   {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
