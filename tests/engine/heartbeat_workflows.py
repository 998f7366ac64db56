"""Definitions shared by the heartbeat-record tests and their child process
(tests/engine/heartbeat_child.py): the same names and code on both sides of a crash."""

from __future__ import annotations

import os
import threading

import nbconductor as nc

GATE = threading.Event()  # in the test process: holds the resumed attempt while it is read


@nc.task(heartbeat="1s", retry=nc.Retry(initial="10ms", max_attempts=3))
def hb_record_rows(rows: int) -> list:
    info = nc.task_info()
    start = info.heartbeat_details or 0
    if os.environ.get("HB_RECORD_CHILD"):
        for row in range(start, rows):
            print(f"row {row} done")
            nc.heartbeat(details=row + 1)  # a checkpoint: the next run starts after it
        while True:  # in the child: alive, checkpointed, until the test kills the process
            nc.heartbeat(details=rows)
            threading.Event().wait(0.1)
    while not GATE.wait(0.1):  # in the test process: alive until the view was read
        nc.heartbeat()
    return [info.attempt, start]


@nc.workflow
async def hb_record_resumes(rows: int) -> list:
    return await hb_record_rows(rows)
