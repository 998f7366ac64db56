"""Fixtures for engine tests: engines on the memory store (DuckDB files for the tests
marked ``duckdb``, and for every test with NBCONDUCTOR_TEST_STORE=duckdb), and a
time-skipping one.

The store contract suite (tests/storage) proves the memory store behaves as DuckDB
does; the ``duckdb`` subset runs representative engine paths on a real file.
"""

from __future__ import annotations

import os
import threading

import pytest

from nbconductor.engine.clock import VirtualClock
from nbconductor.engine.definition import REGISTRY
from nbconductor.engine.engine import Engine
from nbconductor.engine.payload import Payloads
from nbconductor.engine.runtime import replay
from nbconductor.storage.records import ExecutionFilter


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "duckdb: the engine fixture uses a real DuckDB file")


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "history.duckdb"


@pytest.fixture
def engine(request, db_path):
    """A real engine: on the memory store, or on a DuckDB file for tests marked duckdb."""
    on_file = (
        request.node.get_closest_marker("duckdb") is not None
        or os.environ.get("NBCONDUCTOR_TEST_STORE") == "duckdb"
    )
    eng = Engine(db_path if on_file else None)
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
        replay(definition, store.load_history(record.id), payloads=Payloads(store=store))


@pytest.fixture
def gate():
    """An event that blocked tasks wait on; always released at teardown."""
    event = threading.Event()
    yield event
    event.set()
