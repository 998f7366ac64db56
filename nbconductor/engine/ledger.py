"""The ledger of the engine thread's tick: what arrived, what is due, what to commit.

Each tick the engine runs what other threads posted to the *inbox*, then what fell due
on the *timer heap*, and collaborators append what those caused to the *batch*. The
batch is handed to the writer thread (:mod:`nbconductor.engine.writer`), which commits
it in one transaction (with any batches that queued up behind it) while the engine
thread goes on to the next tick. Only once it is durable do the *after-commit*
callbacks run (answering callers, releasing results) and the subscribers hear which
executions changed: nothing leaves the engine before the events that caused it are in
the file (the causal rule). What is at-least-once anyway (a task attempt) may start
as soon as its batch is handed over (:meth:`Ledger.soon`); see "Pipelined commits" in
docs/architecture.md.

Everything here runs on the engine thread, except :meth:`Ledger.post`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import anyio

from nbconductor import logs
from nbconductor.engine.live import LiveExecution
from nbconductor.engine.writer import Handoff, Writer
from nbconductor.errors import PayloadNotStored
from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionRecord,
    ExecutionUpdate,
    QueueRecord,
    ScheduleRecord,
)
from nbconductor.storage.store import Store


class Ledger:
    """The inbox, the timer heap and the batch of the tick being built.

    Args:
        store: where batches are committed.
        now: the engine's time when the first tick starts.
    """

    def __init__(self, store: Store, now: datetime) -> None:
        self.store = store
        self.now = now  # the time of the tick; every event of the tick carries it
        self.stopping = False  # no new work starts once the engine is stopping
        self.subscribers: list[Callable[[set[str]], None]] = []
        # (function, arguments): a task outcome is posted as a pair, not as a closure
        # (one object instead of four, per task, for every collection to go through).
        self._inbox: collections.deque[tuple[Callable[..., None], tuple]] = collections.deque()
        self._heap: list[tuple[float, int, Callable[..., None], tuple]] = []
        self._order = itertools.count()
        self._batch = Batch()
        self._after_commit: list[Callable[[], None]] = []
        self._soon: list[tuple[Callable[..., None], tuple]] = []
        self._changed: set[str] = set()
        self._later: list[ExecutionUpdate] = []  # row updates for a transaction of their own
        self._later_after: list[Callable[[], None]] = []
        self._released: collections.deque[list[Handoff]] = collections.deque()
        self.writer = Writer(store, self._written, self._writer_failed)
        self._recorded_definitions = {(d.kind, d.name, d.version) for d in store.definitions()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._sleeping = False
        # The last errors that escaped an inbox, heap or after-commit item (status()
        # shows them), and who hears of each: fault(error, the item's arguments).
        self.faults: list[str] = []
        self.on_fault: Callable[[BaseException, tuple], None] = lambda exc, args: None

    # --------------------------------------------------------------- the inbox

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the engine thread in the next tick (any thread may call it)."""
        self._inbox.append((fn, args))
        if self._sleeping:
            self._sleeping = False
            with contextlib.suppress(RuntimeError):  # loop closed: the engine has stopped
                self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def has_mail(self) -> bool:
        """Whether something was posted that the next tick will run, or recorded (by an
        after-commit callback, e.g. a queue's wait) that the next tick must commit."""
        return bool(self._inbox) or bool(self._batch)

    def run_inbox(self) -> None:
        self._run_items(_drain(self._inbox))

    def _run_items(self, items: Iterable[tuple[Callable[..., None], tuple]]) -> None:
        # _guarded, inlined in one loop: several items a task go through here.
        for fn, args in items:
            try:
                fn(*args)
            except PayloadNotStored:
                raise
            except Exception as exc:
                self._fault(exc, args)

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        # Nothing one execution does may stop the engine: an error escaping an inbox or
        # heap item goes to on_fault (which parks the execution it concerns, if any).
        try:
            fn(*args)
        except PayloadNotStored:
            raise  # the store cannot take values: the engine stops, as on a failed commit
        except Exception as exc:
            self._fault(exc, args)

    def _fault(self, exc: Exception, args: tuple) -> None:
        self.faults.append(f"{type(exc).__name__}: {exc}")
        del self.faults[:-20]
        self.on_fault(exc, args)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The engine loop that :meth:`wait` sleeps on (called on that loop)."""
        self._loop = loop
        self._wake = asyncio.Event()

    async def wait(self, delay: float | None) -> None:
        """Sleep until something is posted or ``delay`` seconds pass (None: an hour)."""
        self._sleeping = True
        if self._inbox:  # posted between the tick and now: no sleep
            self._sleeping = False
            return
        with anyio.move_on_after(delay if delay is not None else 3600.0):
            await self._wake.wait()
        self._sleeping = False
        self._wake.clear()

    # ----------------------------------------------------------- the timer heap

    def push(self, due: float, fn: Callable[..., None], *args: Any) -> None:
        """Call ``fn(*args)`` in the first tick at or after ``due`` (epoch seconds)."""
        heapq.heappush(self._heap, (due, next(self._order), fn, args))

    def next_due(self) -> float | None:
        """When the earliest heap entry falls due (epoch seconds), if any."""
        return self._heap[0][0] if self._heap else None

    def run_due(self) -> None:
        now_ts = self.now.timestamp()
        heap = self._heap
        while heap and heap[0][0] <= now_ts:
            _, _, fn, args = heapq.heappop(heap)
            self._guarded(fn, *args)

    # ---------------------------------------------------------------- the batch

    def record(
        self,
        live: LiveExecution,
        kind: EventKind,
        *,
        command: int | None = None,
        name: str | None = None,
        attempt: int | None = None,
        data: str = "{}",
    ) -> EventRecord:
        """Append the execution's next event to the batch."""
        execution_id, seq = live.record.id, live.next_seq
        event = EventRecord(execution_id, seq, kind, self.now, command, name, attempt, data)
        live.next_seq = seq + 1
        self._batch.events.append(event)
        self._changed.add(execution_id)
        return event

    def update(self, live: LiveExecution, *, later: bool = False, **fields: Any) -> None:
        """Change fields of the execution's stored record (status, condition, ...).

        ``later``: commit the row update in a transaction of its own right after this
        tick's, so that what this tick releases does not wait for an UPDATE (the events
        say the same; see "No UPDATE on the hot path" in docs/architecture.md).
        """
        update = ExecutionUpdate(live.id, self.now, **fields)
        (self._later if later else self._batch.updates).append(update)
        self._changed.add(live.id)

    def after_later(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this tick's ``later`` row updates are committed."""
        self._later_after.append(fn)

    def set_condition(self, live: LiveExecution, condition: str) -> None:
        """Say why an open execution does not progress ("" once it does again)."""
        logs.execution_parked(live.id, live.record.workflow, condition, live.condition)
        live.condition = condition or None
        self.update(live, condition=condition)

    def add_execution(self, record: ExecutionRecord, events: Iterable[EventRecord] = ()) -> None:
        """A new execution's record (and events already numbered, as a fork copies)."""
        # A copy: the writer turns it into a row later, while the engine thread may
        # already be changing the live record (closing it, even, when its first task
        # ran before the batch was committed).
        self._batch.new_executions.append(record.copy())
        self._batch.events.extend(events)
        self._changed.add(record.id)

    def record_definitions(self, definitions: Iterable[Any]) -> None:
        """Store the source of definitions this file has not seen in this version."""
        for d in definitions:
            key = (d.kind, d.name, d.version)
            if key not in self._recorded_definitions:
                self._recorded_definitions.add(key)
                self._batch.definitions.append(
                    DefinitionRecord(d.name, d.kind, d.version, d.source, self.now)
                )

    def save_schedule(self, record: ScheduleRecord) -> None:
        self._batch.schedules.append(dataclasses.replace(record))  # as now, not at commit

    def delete_schedule(self, schedule_id: str) -> None:
        self._batch.deleted_schedules.append(schedule_id)

    def save_queue(self, record: QueueRecord) -> None:
        self._batch.queues.append(dataclasses.replace(record))

    def delete_queue(self, name: str) -> None:
        self._batch.deleted_queues.append(name)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this tick's batch is committed (and every batch before it)."""
        self._after_commit.append(fn)

    def soon(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` as soon as this tick's batch is handed to the writer, before
        it is durable: only for work that is at-least-once anyway (starting a task
        attempt, which recovery issues again if the batch is lost in a crash)."""
        self._soon.append((fn, args))

    def commit(self) -> None:
        """Hand the batch to the writer, then start what may start before it is durable.

        Its after-commit callbacks and the subscribers run in a later tick, once the
        writer has committed it (:meth:`run_released`).

        Raises:
            StoreError: an earlier commit failed; the engine stops (the file keeps
                everything committed before it).
        """
        writer = self.writer
        if writer.error is not None:
            raise writer.error
        batch, after, changed = self._batch, self._after_commit, self._changed
        if batch:
            self._batch, self._after_commit, self._changed = Batch(), [], set()
            if self._soon or writer.busy or self._released:
                writer.hand(Handoff(batch, after, changed))
            else:
                # Nothing to overlap the commit with (no attempt to start, nothing in
                # flight): commit here and release at once, sparing two thread hops
                # (a signal that ends its workflow, say).
                writer.commit_now(batch)
                self._released.append([Handoff(batch, after, changed)])
                self.run_released()
        elif after or changed:
            self._after_commit, self._changed = [], set()
            if writer.busy or self._released:  # released in order, behind what is in flight
                writer.hand(Handoff(batch, after, changed))
            else:  # nothing recorded and nothing in flight: release now
                self._released.append([Handoff(batch, after, changed)])
                self.run_released()
        if self._later:
            later, self._later = self._later, []
            after_later, self._later_after = self._later_after, []
            ids = {u.id for u in later}  # views read the row: tell them again once it is in
            writer.hand(Handoff(Batch(updates=later), after_later, ids, lazy=True))
        soon, self._soon = self._soon, []
        self._run_items(soon)

    def flush(self) -> None:
        """Commit everything recorded and wait for it, running what each commit releases
        (which may record more), until nothing is left (starting and stopping)."""
        while True:
            self.commit()
            if not self.writer.busy and not self._released:
                return
            self.writer.wait_written()
            if self.writer.error is not None:
                raise self.writer.error
            self.run_released()

    def close(self) -> None:
        """Commit what was handed and end the writer thread (the engine thread ends)."""
        self.writer.close()

    def _written(self, group: list[Handoff]) -> None:  # on the writer thread
        self._released.append(group)
        self.post(self.run_released)

    def _writer_failed(self) -> None:  # on the writer thread: wake the engine to stop
        self.post(lambda: None)

    def run_released(self) -> None:
        """Run the after-commit callbacks of committed batches, then tell subscribers
        which executions changed."""
        released = self._released
        changed: set[str] = set()
        while released:
            for handoff in released.popleft():
                for fn in handoff.after:
                    self._guarded(fn)
                changed |= handoff.changed
        if changed and self.subscribers:
            for callback in list(self.subscribers):
                with contextlib.suppress(Exception):  # a broken view must not stop the engine
                    callback(changed)


def _drain(inbox: collections.deque) -> Iterator[Any]:
    """Pop the inbox's items until it is empty (other threads may append meanwhile)."""
    while inbox:
        yield inbox.popleft()
