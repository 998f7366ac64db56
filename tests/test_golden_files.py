"""Golden history files: DuckDB files an earlier version wrote, today's engine resumes.

tests/golden/files/<version>/frame_result.duckdb.gz was written by
tests/golden/record_file.py with that version (and gzipped: an almost empty DuckDB
file is mostly zero blocks). It holds one execution of ``golden_frame_file`` open at
its wait for a signal, after a task returned a pandas frame in that version's payload
format. Today's engine must replay it, deliver the frame to the next task, and finish.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from golden import workflows

import nbconductor as nc

FILES = sorted((Path(__file__).resolve().parent / "golden" / "files").glob("*/*.duckdb.gz"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_file_resumes_with_its_frame(path: Path, tmp_path: Path) -> None:
    db = tmp_path / "history.duckdb"
    with gzip.open(path) as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    with nc.Engine(db, make_default=False) as engine:
        handle = engine.get("golden-frame-file")
        nc.testing.wait_for(lambda: handle.waiting_for == ["factor"], what="the replayed wait")
        handle.signal("factor", 2)
        result = handle.result(timeout=60)
        names = [e.name for e in engine.history("golden-frame-file")]
    assert result == {"total": 2 * sum(range(48)), "rows": 48, "last": "row-47"}
    assert names.count("golden_make_frame") == 2  # scheduled and completed once: not re-run
    assert names.count("golden_sum_frame") == 2


def test_golden_files_exist() -> None:
    assert FILES, "no golden history file found under tests/golden/files/"
    assert workflows.golden_frame_file.name == "golden_frame_file"
