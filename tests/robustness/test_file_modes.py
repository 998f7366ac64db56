"""Every file of a history is owner-only from its first byte, even in a folder others
can read: a process polls the folder while stores create, write and checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC

import pytest

from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import Batch, EventKind, EventRecord, ExecutionRecord, Status

POLLER = textwrap.dedent(
    """
    import os, sys
    folder, stop = sys.argv[1], sys.argv[2]
    seen, exposed = set(), set()
    print("polling", flush=True)
    while not os.path.exists(stop):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue  # gone between the listing and the stat (the WAL comes and goes)
            seen.add(entry.name)
            if mode & 0o077:
                exposed.add(f"{entry.name}:{oct(mode & 0o777)}")
    print("seen", *sorted(seen))
    print("exposed", *sorted(exposed))
    """
)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual umask: files readable by everyone
    yield
    os.umask(old)


def _batch(n: int, at) -> Batch:
    run = ExecutionRecord(f"e{n}", "order", "v1", Status.RUNNING, at, at)
    events = [EventRecord(f"e{n}", i, EventKind.TASK_COMPLETED, at, data='{"x":1}') for i in (1, 2)]
    return Batch(new_executions=[run], events=events)


def test_no_history_file_is_ever_readable_by_others(tmp_path, open_umask):
    from datetime import datetime

    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)  # an existing world-readable folder keeps its mode
    stop = tmp_path / "stop"
    poller = subprocess.Popen(
        [sys.executable, "-c", POLLER, str(folder), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert poller.stdout.readline().strip() == "polling"
        at = datetime.now(UTC)
        for n in range(20):
            # Each round creates the WAL again (close checkpoints and deletes it); the
            # first also creates the database file.
            store = DuckDBStore(folder / "history.duckdb")
            store.commit(_batch(n, at))
            store.close()
    finally:
        stop.touch()
        out, _ = poller.communicate(timeout=30)
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())
    assert "history.duckdb.wal" in lines["seen"].split()  # the poller did see the WAL
    assert lines["exposed"] == "", f"files readable by others: {lines['exposed']}"
    assert oct(os.stat(folder / "history.duckdb").st_mode & 0o777) == "0o600"
