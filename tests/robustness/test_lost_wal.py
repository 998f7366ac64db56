"""A crash leaves a WAL beside the file; losing it loses the commits since the last
checkpoint, and nothing else: the file opens and its executions resume from there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import nbconductor as nc
from nbconductor.engine.engine import Engine

CHILD = textwrap.dedent(
    """
    import sys
    import nbconductor as nc
    from nbconductor.engine.engine import Engine

    @nc.workflow
    async def waits_for_go() -> str:
        return await nc.signal("go")

    eng = Engine(sys.argv[1])
    if sys.argv[2] == "first":
        eng.start(waits_for_go, id="checkpointed")
        eng.stop(grace=0)  # a clean stop checkpoints: this one is in the file itself
        eng = Engine(sys.argv[1])
    eng.start(waits_for_go, id="in-the-wal-only")
    eng.signal("in-the-wal-only", "never", None)  # returns once its tick committed
    print("committed", flush=True)
    sys.stdin.read()
    """
)


@nc.workflow
async def waits_for_go() -> str:
    return await nc.signal("go")


def test_losing_the_wal_after_a_crash_keeps_the_checkpointed_history(tmp_path):
    db = tmp_path / "history.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), "first"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "committed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    wal = tmp_path / "history.duckdb.wal"
    assert wal.exists()  # the crash left commits in the WAL only
    os.unlink(wal)
    eng = Engine(db, make_default=False)
    try:
        ids = {r.id for r in eng.store.open_executions()}
        assert ids == {"checkpointed"}  # the WAL's commits are gone, the rest is whole
        eng.signal("checkpointed", "go", "on")
        assert eng.get("checkpointed").result(timeout=10) == "on"
    finally:
        eng.stop(grace=0)
