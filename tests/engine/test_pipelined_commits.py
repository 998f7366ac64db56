"""Pipelined commits: the writer commits batch N while the engine computes N+1, and
nothing leaves the engine before the batch that caused it is durable.

The store is a real DuckDB file whose commits can be held at a gate, so each test sees
the moment between "handed to the writer" and "in the file".
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

import nbconductor as nc
from nbconductor.engine import roster as roster_module
from nbconductor.engine.engine import Engine
from nbconductor.engine.failure import Failure
from nbconductor.engine.payload import event_data
from nbconductor.errors import ExecutionFailed
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import Batch, EventKind, EventRecord, ExecutionRecord, Status


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
    wait_for(store.waiting.is_set, "the writer to reach the gate")
    assert store.load_history("pipe-1") == []
    # ...but the result is released only once everything that caused it is durable.
    with pytest.raises(TimeoutError):
        h.result(0.2)
    store.held.set()
    assert h.result(10) == "probed"
    kinds = [e.kind for e in store.load_history("pipe-1")]
    assert kinds[-1] is EventKind.EXECUTION_COMPLETED


def test_a_new_execution_is_stored_as_it_started_even_if_it_closed_before_the_commit(held):
    # The writer builds rows after the engine thread moved on: the row of a new
    # execution must be the record as it was recorded (Running), not as it is by then.
    store, eng = held
    started.clear()
    store.held.clear()
    h = eng.start(pipe_one_task, id="pipe-3")
    assert started.wait(10)
    wait_for(lambda: eng.executions.get("pipe-3").record.status.closed, "the close")
    real_commit = DuckDBStore.commit
    one_more = threading.Event()

    def commit_once(batch) -> None:  # the held batch goes in; everything after waits
        if one_more.is_set():
            assert store.held.wait(30)
        one_more.set()
        real_commit(store, batch)

    store.commit = commit_once
    store.held.set()
    store.held.clear()
    wait_for(lambda: store.get_execution("pipe-3") is not None, "the first commit")
    record = store.get_execution("pipe-3")
    assert record.status is Status.RUNNING and record.closed_at is None
    store.held.set()
    assert h.result(10) == "probed"
    wait_for(lambda: store.get_execution("pipe-3").closed_at is not None, "the row's update")


@nc.workflow
async def pipe_nothing(i: int) -> int:
    return i


class RowsHeldStore(DuckDBStore):
    """A DuckDB store that holds back the row updates of closed executions."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.rows = threading.Event()

    def commit(self, batch) -> None:
        if batch.updates and not batch.events:
            assert self.rows.wait(30), "the test never released the rows"
        super().commit(batch)


def test_results_are_answered_while_the_row_of_a_closed_execution_is_unwritten(
    tmp_path, monkeypatch
):
    # The roster keeps no recently closed record here (as after 1,024 more closed) and
    # the row is not written yet: the store still says Running, the engine must not
    # believe it (the benchmark that starts 10,000 executions at once hung on this).
    monkeypatch.setattr(roster_module, "_RECENT", 0)
    store = RowsHeldStore(tmp_path / "rows-held.duckdb")
    eng = Engine(store, make_default=False)
    try:
        h = eng.start(pipe_nothing, 7)
        wait_for(
            lambda: store.get_execution(h.id) is not None and not eng.executions.holds(h.id),
            "the execution to close",
        )
        assert store.get_execution(h.id).status is Status.RUNNING  # its row is held back
        assert h.result(5) == 7
        assert h.status is Status.COMPLETED
        assert eng.describe(h.id).status is Status.COMPLETED
    finally:
        store.rows.set()
        eng.stop(grace=0)


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
        assert eng.status()["counts"] == {"completed": 20}


def test_a_crash_between_the_closing_event_and_its_row_is_repaired_on_open(tmp_path):
    # What the file holds when the process dies after the closing event's transaction
    # and before the row's: the engine that opens it writes the row from the event.
    path = tmp_path / "crashed.duckdb"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    failure = Failure("ValueError", "no stock")
    store = DuckDBStore(path)
    batch = Batch()
    for execution_id, kind, data in (
        ("pipe-crash-ok", EventKind.EXECUTION_COMPLETED, '{"result":{"n":1}}'),
        ("pipe-crash-bad", EventKind.EXECUTION_FAILED, event_data({"error": failure.to_dict()})),
    ):
        batch.new_executions.append(
            ExecutionRecord(execution_id, "pipe_waits", "v0", Status.RUNNING, at, at, "[]")
        )
        batch.events += [
            EventRecord(execution_id, 1, EventKind.EXECUTION_STARTED, at, None, "pipe_waits"),
            EventRecord(execution_id, 2, kind, at, data=data),
        ]
    store.commit(batch)
    store.close()
    with Engine(path, make_default=False) as eng:
        assert eng.recovered == []
        assert eng.get("pipe-crash-ok").result(10) == {"n": 1}
        with pytest.raises(ExecutionFailed, match="no stock"):
            eng.get("pipe-crash-bad").result(10)
        assert eng.describe("pipe-crash-bad").status is Status.FAILED
        assert eng.status()["counts"] == {"completed": 1, "failed": 1}
