"""A truncated history file gives an error that names the file and what to do, from the
engine and from the CLI, and is left as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import StoreError


@nc.workflow
async def numbered(i: int) -> int:
    return i


@pytest.fixture(scope="module")
def full_history(tmp_path_factory):
    path = tmp_path_factory.mktemp("full") / "history.duckdb"
    eng = Engine(path, make_default=False)
    handles = [eng.start(numbered, i) for i in range(300)]
    for h in handles:
        h.result(timeout=30)
    eng.stop(grace=0)
    return path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("keep", [0.5, 4096, 10000])
def test_a_truncated_file_is_reported_and_left_alone(full_history, tmp_path, keep):
    damaged = tmp_path / "history.duckdb"
    data = full_history.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    damaged.write_bytes(data[:cut])
    before = _digest(damaged)
    with pytest.raises(StoreError) as info:
        Engine(damaged, make_default=False)
    message = str(info.value)
    assert str(damaged) in message
    assert "damaged" in message and "backup" in message
    assert _digest(damaged) == before
    done = subprocess.run(
        [sys.executable, "-m", "nbconductor.cli", "--db", str(damaged), "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "damaged" in done.stderr + done.stdout
    assert _digest(damaged) == before
