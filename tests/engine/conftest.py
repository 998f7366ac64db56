"""Fixtures for engine tests: engines on real DuckDB files, and a time-skipping one."""

from __future__ import annotations

import os
import threading

import pytest

from nbconductor.engine.clock import VirtualClock
from nbconductor.engine.definition import REGISTRY
from nbconductor.engine.engine import Engine
from nbconductor.engine.runtime import replay
from nbconductor.storage.records import ExecutionFilter


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "history.duckdb"


@pytest.fixture
def engine(db_path):
    """A real engine on a real DuckDB file (NBCONDUCTOR_TEST_STORE=memory for a quick run)."""
    eng = Engine(None if os.environ.get("NBCONDUCTOR_TEST_STORE") == "memory" else db_path)
    yield eng
    try:
        assert_histories_replay(eng.store)
    finally:
        eng.stop(grace=0)


@pytest.fixture
def skipping_engine():
    """In memory, virtual clock that jumps to the next timer whenever all is idle."""
    eng = Engine(None, clock=VirtualClock(), time_skipping=True)
    yield eng
    try:
        assert_histories_replay(eng.store)
    finally:
        eng.stop(grace=0)


def assert_histories_replay(store) -> None:
    """Every history a test produced replays against the code that produced it: the
    determinism check behind every engine feature, without a restart per test."""
    for record in store.list_executions(ExecutionFilter(limit=None)):
        definition = REGISTRY.find("workflow", record.workflow)
        if definition is None or definition.version != record.version:
            continue  # the test redefined this workflow on purpose
        replay(definition, store.load_history(record.id))


@pytest.fixture
def gate():
    """An event that blocked tasks wait on; always released at teardown."""
    event = threading.Event()
    yield event
    event.set()
