"""Child process for recovery tests: run until a point, say READY, wait to be killed."""

from __future__ import annotations

import os
import sys
import threading

import recovery_workflows as wf

from nbconductor.engine.engine import Engine
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for


def reached(events, point: str) -> bool:
    kinds = [(e.kind, e.command) for e in events]
    if point == "during_task":  # task 2 (command 4, after the timer) hangs in the child
        with open(os.environ["RECOVERY_LOG"]) as log:
            return (EventKind.TASK_SCHEDULED, 4) in kinds and "run 2" in log.read()
    if point == "during_sleep":
        return any(k is EventKind.TIMER_STARTED for k, _ in kinds)
    if point == "after_task":  # task 0 completed and committed, task 1 scheduled
        return (EventKind.TASK_COMPLETED, 1) in kinds
    raise ValueError(point)


def main(db: str, point: str, pause: float) -> None:
    engine = Engine(db)
    handle = engine.start(wf.durable_pipeline, 4, pause, id="wf-1")
    wait_for(lambda: reached(handle.history(), point), timeout=60, what=point)
    print("READY", flush=True)
    threading.Event().wait(120)  # the parent SIGKILLs us here


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
