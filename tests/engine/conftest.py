"""Fixtures for engine tests: engines on real DuckDB files, and a time-skipping one."""

from __future__ import annotations

import os
import threading

import pytest

from nbconductor.engine.clock import VirtualClock
from nbconductor.engine.executor import Engine


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "history.duckdb"


@pytest.fixture
def engine(db_path):
    """A real engine on a real DuckDB file (NBCONDUCTOR_TEST_STORE=memory for a quick run)."""
    eng = Engine(None if os.environ.get("NBCONDUCTOR_TEST_STORE") == "memory" else db_path)
    yield eng
    eng.stop(grace=0)


@pytest.fixture
def skipping_engine():
    """In memory, virtual clock that jumps to the next timer whenever all is idle."""
    eng = Engine(None, clock=VirtualClock(), time_skipping=True)
    yield eng
    eng.stop(grace=0)


@pytest.fixture
def gate():
    """An event that blocked tasks wait on; always released at teardown."""
    event = threading.Event()
    yield event
    event.set()
