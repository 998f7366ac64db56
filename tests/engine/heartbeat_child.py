"""Child process for the heartbeat-record test: run a task until its checkpoint and
output are recorded, say READY, wait to be killed."""

from __future__ import annotations

import json
import os
import sys
import threading

import heartbeat_workflows as wf

from nbconductor.engine.engine import Engine
from nbconductor.extension.output import OutputCapture
from nbconductor.storage.records import EventKind
from nbconductor.testing import wait_for


def recorded(history) -> bool:
    for event in history:
        if event.kind is EventKind.TASK_HEARTBEAT:
            data = json.loads(event.data)
            if data.get("details") == 3 and "row 2 done" in data.get("output", []):
                return True
    return False


def main(db: str) -> None:
    os.environ["HB_RECORD_CHILD"] = "1"
    OutputCapture().install()  # what %load_ext does: task prints go to the attempt
    engine = Engine(db)
    handle = engine.start(wf.hb_record_resumes, 3, id="hb-1")
    wait_for(lambda: recorded(handle.history()), timeout=60, what="the recorded checkpoint")
    sys.__stdout__.write("READY\n")
    sys.__stdout__.flush()
    threading.Event().wait(120)  # the parent SIGKILLs us here


if __name__ == "__main__":
    main(sys.argv[1])
