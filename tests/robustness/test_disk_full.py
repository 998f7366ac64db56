"""A full disk (a real one: a small tmpfs) stops the engine with ENOSPC said plainly,
keeps what was committed, and status() reports it instead of raising."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import StoreError
from nbconductor.testing import wait_for


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


@nc.workflow
async def sized(i: int, size: int) -> str:
    return "y" * size + str(i)


def test_a_full_disk_says_enospc_and_keeps_the_committed_history(small_disk, tmp_path):
    eng = Engine(small_disk / "history.duckdb", make_default=False)
    kept = [eng.start(sized, i, 10, id=f"small-{i}") for i in range(5)]
    for h in kept:
        assert h.result(timeout=10).startswith("y")
    for i in range(40):  # about 8 MB of results for a 3 MB disk
        if not eng.running:
            break
        eng.start(sized, i, 200_000)
    wait_for(lambda: not eng.running, what="the engine to stop on the full disk")
    assert isinstance(eng.error, StoreError)
    assert "ENOSPC" in str(eng.error) and "No space left on device" in str(eng.error)
    assert "no transaction is active" not in str(eng.error)
    status = eng.status()  # does not raise
    assert not status["running"] and "ENOSPC" in status["error"]
    eng.stop(grace=0)

    # What was committed is kept: the files, moved to a disk with room, open and hold it.
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    for f in small_disk.iterdir():
        shutil.copy(f, roomy / f.name)
    again = Engine(roomy / "history.duckdb", make_default=False)
    try:
        for i in range(5):
            assert again.get(f"small-{i}").result(timeout=10) == "y" * 10 + str(i)
    finally:
        again.stop(grace=0)
