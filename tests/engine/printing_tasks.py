"""A task that prints, and the check that what it printed reached the engine's process:
shared by the process-runner and Dask tests (the task body is plain: each test module
registers it under its own runner)."""

from __future__ import annotations

from pathlib import Path

from nbconductor.engine.payload import read_data
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for

PRINTED = [("stdout", "loading rows"), ("stderr", "warning: 2 rows skipped"), ("stdout", "done")]


def chatty_body(gate: str) -> int:
    import os
    import sys
    import threading

    print("loading rows")
    print("warning: 2 rows skipped", file=sys.stderr)
    while not os.path.exists(gate):  # the first lines show while the task still runs
        threading.Event().wait(0.02)
    print("done", end="")
    return 7


def check_printed_lines_arrive(start, gate: Path, timeout: float) -> None:
    """Start the workflow (``start(gate)`` gives its handle) with the notebook's output
    capture installed: the lines printed before the task waits show while it runs, all
    of them are in the log with their streams, and the history records them."""
    from nbconductor.extension import output

    output.install()
    try:
        h = start(str(gate))
        wait_for(
            lambda: output.execution_log(h.id) == [line for _, line in PRINTED[:2]],
            what="the lines printed before the task waits",
            timeout=timeout,
        )
        gate.touch()
        assert h.result(timeout=timeout) == 7
        assert output.execution_log(h.id, streams=True) == PRINTED
    finally:
        output.uninstall()
    # Recorded as for a task on a thread (after a restart the view shows it).
    recorded = [
        line
        for e in h.history()
        if e.kind in (EventKind.TASK_HEARTBEAT, EventKind.TASK_COMPLETED)
        for line in read_data(e.data).get("output", [])
    ]
    assert recorded == [line for _, line in PRINTED]
