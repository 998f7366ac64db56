"""Definitions shared by the recovery tests and the child processes they SIGKILL.

Every task run is appended to the file named by RECOVERY_LOG, so tests can tell
which tasks ran again after a crash. RECOVERY_BLOCK_AT=i makes task i hang (in the
child only), which is where the child is killed "during a task".
"""

from __future__ import annotations

import os
import threading
import uuid

import nbconductor as nc

HANG = threading.Event()


@nc.task
def unique(i: int) -> str:
    with open(os.environ["RECOVERY_LOG"], "a") as log:
        log.write(f"run {i}\n")
    if os.environ.get("RECOVERY_BLOCK_AT") == str(i):
        HANG.wait(120)
    return f"{i}-{uuid.uuid4()}"


@nc.workflow
async def durable_pipeline(n: int, pause: float) -> list[str]:
    results = []
    for i in range(n):
        results.append(await unique(i))
        if i == 1:
            await nc.sleep(pause)
    return results
