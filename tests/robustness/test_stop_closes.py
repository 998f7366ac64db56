"""stop() returns once the history file is closed, or says that it timed out."""

from __future__ import annotations

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import StopTimedOut
from nbconductor.testing import wait_for


@nc.workflow
async def bulky(i: int) -> str:
    return "x" * 2000 + str(i)


def _busy_engine(path) -> Engine:
    eng = Engine(path, make_default=False)
    for i in range(3000):  # one large commit, in flight when stop() is called
        eng.start(bulky, i)
    return eng


def test_stop_returns_once_the_file_is_closed(db_path):
    eng = _busy_engine(db_path)
    eng.stop(grace=0)
    again = Engine(db_path, make_default=False)  # no StoreLocked: the file is free
    try:
        assert again.running
    finally:
        again.stop(grace=0)


def test_stop_says_when_it_timed_out(db_path):
    eng = _busy_engine(db_path)
    with pytest.raises(StopTimedOut, match="did not close its history file within 0s"):
        eng.stop(grace=0, timeout=0)
    wait_for(lambda: eng._thread.stopped, what="the file to close in the background")
    again = Engine(db_path, make_default=False)
    again.stop(grace=0)
