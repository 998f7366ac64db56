"""Pipelined commits: the writer commits batch N while the engine computes N+1, and
nothing leaves the engine before the batch that caused it is durable.

The store is a real DuckDB file whose commits can be held at a gate, so each test sees
the moment between "handed to the writer" and "in the file".
"""

from __future__ import annotations

import threading
import time

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import EventKind, Status


class HeldStore(DuckDBStore):
    """A DuckDB store whose commits wait while ``held`` is clear."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.held = threading.Event()
        self.held.set()
        self.waiting = threading.Event()  # a commit waits at the gate

    def commit(self, batch) -> None:
        if not self.held.is_set():
            self.waiting.set()
            assert self.held.wait(30), "the test never released the held commit"
        super().commit(batch)


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        threading.Event().wait(0.001)


started = threading.Event()


@nc.task
def pipe_probe() -> str:
    started.set()
    return "probed"


@nc.workflow
async def pipe_one_task() -> str:
    return await pipe_probe()


@nc.workflow
async def pipe_waits() -> str:
    return await nc.signal("pipe-go")


@pytest.fixture
def held(tmp_path):
    store = HeldStore(tmp_path / "held.duckdb")
    eng = Engine(store, make_default=False)
    yield store, eng
    store.held.set()
    eng.stop(grace=0)


def test_a_task_may_start_before_its_batch_is_durable_but_its_result_waits(held):
    store, eng = held
    started.clear()
    store.held.clear()
    h = eng.start(pipe_one_task, id="pipe-1")
    # The attempt runs while the batch scheduling it is still at the gate...
    assert started.wait(10)
    assert store.waiting.is_set()
    assert store.load_history("pipe-1") == []
    # ...but the result is released only once everything that caused it is durable.
    with pytest.raises(TimeoutError):
        h.result(0.2)
    store.held.set()
    assert h.result(10) == "probed"
    kinds = [e.kind for e in store.load_history("pipe-1")]
    assert kinds[-1] is EventKind.EXECUTION_COMPLETED


def test_a_signal_returns_only_once_it_is_in_the_file(held):
    store, eng = held
    h = eng.start(pipe_waits, id="pipe-2")
    wait_for(lambda: h.waiting_for == ["pipe-go"], "the workflow to wait")
    eng.ping()
    store.held.clear()
    answered = threading.Event()
    caller = threading.Thread(target=lambda: (h.signal("pipe-go", "yes"), answered.set()))
    caller.start()
    assert store.waiting.wait(10)
    assert not answered.wait(0.2)  # the signal's batch is still at the gate
    store.held.set()
    assert answered.wait(10)
    caller.join(10)
    kinds = [e.kind for e in store.load_history("pipe-2")]
    assert EventKind.SIGNAL_RECEIVED in kinds
    assert h.result(10) == "yes"


def test_a_closed_execution_lists_as_closed_once_its_result_is_back(tmp_path):
    # The row's status is written in a transaction after the closing event's; readers
    # through the engine never see the gap.
    with Engine(tmp_path / "rows.duckdb", make_default=False) as eng:
        for i in range(20):
            h = eng.start(pipe_waits, id=f"pipe-row-{i}")
            wait_for(lambda h=h: h.waiting_for == ["pipe-go"], "the workflow to wait")
            h.signal("pipe-go", "ok")
            assert h.result(10) == "ok"
            assert h.status is Status.COMPLETED
            assert eng.describe(h.id).status is Status.COMPLETED
            assert [r.id for r in eng.list(status="completed", limit=1)] == [h.id]
        assert eng.store.counts_by_status() == {Status.COMPLETED: 20}
