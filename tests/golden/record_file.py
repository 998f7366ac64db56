"""Record a golden history *file* (a DuckDB file, not a JSON export): run by hand.

From the repository root::

    python tests/golden/record_file.py   # then gzip -9 tests/golden/files/<version>/*.duckdb

The file holds one execution of ``golden_frame_file`` (tests/golden/workflows.py) left
open at its wait for the ``factor`` signal, after ``golden_make_frame`` returned a
pandas frame: the payload format the recording version wrote sits in the file as it
wrote it. tests/test_golden_files.py opens a copy with today's engine, which must
replay the execution, read the frame, and finish it. A file that exists is never
overwritten.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbconductor as nc
from nbconductor.testing import wait_for

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"


def main() -> int:
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    workflows = importlib.import_module("golden.workflows")
    target = FILES / nc.__version__ / "frame_result.duckdb"
    if target.exists():
        print(f"kept      {target} (recorded files are never rewritten)")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with nc.Engine(target, make_default=False) as engine:
        handle = engine.start(workflows.golden_frame_file, 48, id="golden-frame-file")
        wait_for(lambda: handle.waiting_for == ["factor"], what="the wait for 'factor'")
    print(f"recorded  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
