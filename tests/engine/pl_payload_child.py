"""Child process of the payload crash test: run pl_pipeline until make's result is
committed, say READY, and wait to be killed (summarize blocks)."""

from __future__ import annotations

import os
import sys
import threading

import pl_payload_workflows as wf

from nbconductor.engine.engine import Engine
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for


def main(db: str, rows: int) -> None:
    os.environ["PL_BLOCK_SUMMARIZE"] = "1"
    engine = Engine(db)
    handle = engine.start(wf.pipeline, rows, id="pl-crash")
    wait_for(
        lambda: any(e.kind is EventKind.TASK_COMPLETED for e in handle.history()),
        timeout=60,
        what="make's result in the file",
    )
    print("READY", flush=True)
    threading.Event().wait(120)  # the parent SIGKILLs us here


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
