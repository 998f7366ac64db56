"""Workflows of the payload tests, importable by the test and by its child process."""

from __future__ import annotations

import os
import threading

import numpy as np
import pandas as pd

import nbconductor as nc

_BLOCK = threading.Event()


def frame_of(rows: int) -> pd.DataFrame:
    ids = np.arange(rows, dtype="int64")
    return pd.DataFrame({"a": ids, "x": ids * 0.5, "s": [f"k{i % 7}" for i in range(rows)]})


@nc.task(name="pl_make")
def make(rows: int) -> pd.DataFrame:
    log = os.environ.get("PL_MAKE_LOG")
    if log:
        with open(log, "a") as out:
            out.write("make\n")
    return frame_of(rows)


@nc.task(name="pl_summarize")
def summarize(frame: pd.DataFrame) -> int:
    if os.environ.get("PL_BLOCK_SUMMARIZE"):
        _BLOCK.wait()  # the child process is killed here
    return int(frame["a"].sum())


@nc.workflow(name="pl_pipeline")
async def pipeline(rows: int) -> int:
    frame = await make(rows)
    return await summarize(frame)
