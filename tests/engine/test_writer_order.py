"""The writer's order: events in the order handed; deferred row updates waiting among
them right after them, so that what the events release never waits for an UPDATE."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from nbconductor.engine.writer import Handoff, Writer
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import (
    Batch,
    EventKind,
    EventRecord,
    ExecutionRecord,
    ExecutionUpdate,
    Status,
)
from nbconductor.testing import wait_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class GatedStore(DuckDBStore):
    """A DuckDB store that records what each commit held, and holds commits at a gate."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate.set()
        self.at_gate = threading.Event()
        self.commits: list[tuple[list[int], int]] = []  # (event seqs, row updates)

    def commit(self, batch) -> None:
        if not self.gate.is_set():
            self.at_gate.set()
            assert self.gate.wait(30)
        super().commit(batch)
        self.commits.append(([e.seq for e in batch.events], len(batch.updates)))


def _event(seq: int) -> Batch:
    return Batch(events=[EventRecord("x", seq, EventKind.MARKER_RECORDED, NOW, seq, "m")])


def _row() -> Batch:
    return Batch(updates=[ExecutionUpdate("x", NOW, condition="c")])


def test_events_waiting_behind_a_row_update_are_committed_before_it(tmp_path):
    store = GatedStore(tmp_path / "w.duckdb")
    record = ExecutionRecord("x", "wf", "v1", Status.RUNNING, NOW, NOW)
    store.commit(Batch(new_executions=[record], events=[]))
    store.commits.clear()
    released: list[str] = []
    writer = Writer(store, lambda group: released.extend(h.changed.pop() for h in group), None)
    try:
        store.gate.clear()
        writer.hand(Handoff(_event(1), changed={"events 1"}))
        assert store.at_gate.wait(10)  # its commit has begun: the rest queue behind it
        writer.hand(Handoff(_row(), changed={"row of 1"}, lazy=True))
        writer.hand(Handoff(_event(2), changed={"events 2"}))
        writer.hand(Handoff(_event(3), changed={"events 3"}))
        store.gate.set()
        wait_for(lambda: not writer.busy, what="every handoff committed")
    finally:
        writer.close()
    # The row update follows the events of its own tick, and the events handed after it
    # went ahead of it, merged into one transaction.
    assert store.commits == [([1], 0), ([2, 3], 0), ([], 1)]
    assert released == ["events 1", "events 2", "events 3", "row of 1"]


def test_row_updates_alone_are_committed_together(tmp_path):
    store = GatedStore(tmp_path / "w.duckdb")
    record = ExecutionRecord("x", "wf", "v1", Status.RUNNING, NOW, NOW)
    store.commit(Batch(new_executions=[record], events=[]))
    store.commits.clear()
    writer = Writer(store, lambda group: None, None)
    try:
        store.gate.clear()
        writer.hand(Handoff(_event(1)))
        assert store.at_gate.wait(10)
        writer.hand(Handoff(_row(), lazy=True))
        writer.hand(Handoff(_row(), lazy=True))
        store.gate.set()
        wait_for(lambda: not writer.busy, what="every handoff committed")
    finally:
        writer.close()
    assert store.commits == [([1], 0), ([], 2)]
