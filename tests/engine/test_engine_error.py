"""An engine that stopped on an error says which as soon as it says it is not running."""

from __future__ import annotations

import threading

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.errors import StoreError
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.testing import wait_for


class FailingStore(DuckDBStore):
    """Storing a large value fails (a full disk); commits can be held at a gate."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate.set()
        self.at_gate = threading.Event()

    def commit(self, batch) -> None:
        if not self.gate.is_set():
            self.at_gate.set()
            assert self.gate.wait(30), "the test never released the held commit"
        super().commit(batch)

    def put_payload(self, stored) -> bool:
        raise StoreError("the disk is full (test)")


@nc.task
def error_large_result() -> str:
    return "x" * 200


@nc.workflow
async def error_stores_large() -> str:
    return await error_large_result()


def test_the_error_is_there_once_the_engine_is_not_running(tmp_path):
    # Ending, the engine thread waits for the writer to commit what it was handed; a
    # caller that saw running turn false then read error as None (a disk-full test
    # failed that way 1 run in 10).
    store = FailingStore(tmp_path / "failing.duckdb")
    eng = Engine(store, make_default=False, inline_limit=100)
    try:
        store.gate.clear()  # the batch scheduling the task waits at the gate
        eng.start(error_stores_large)
        assert store.at_gate.wait(10)
        wait_for(lambda: not eng.running, what="the engine to stop on the failed store")
        assert isinstance(eng.error, StoreError)
        assert "disk is full" in str(eng.error)
    finally:
        store.gate.set()
        eng.stop(grace=0)
