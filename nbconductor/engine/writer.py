"""The commit pipeline: a thread that commits the engine's batches while the engine
thread computes the next ones.

The engine thread hands each tick's batch over (:meth:`Writer.hand`) and carries on;
the writer commits what it was handed in the order it was handed, merging batches that
queued up while it was busy into one transaction (group commit across ticks), and
reports each group once it is durable (``on_written``). Batches are never reordered
and never skipped: after a failed commit nothing later is written, and the error is
kept for the engine thread to raise.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nbconductor.storage.records import Batch
from nbconductor.storage.store import Store

__all__ = ("Handoff", "Writer")

# How many handed batches may wait before hand() blocks the engine thread: enough to
# keep the writer busy, few enough that memory and the data a crash loses stay small.
_MAX_WAITING = 256


@dataclass(slots=True)
class Handoff:
    """One tick's batch, and what to release once it is durable."""

    batch: Batch
    after: list[Callable[[], None]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    # A lazy handoff holds only deferred row updates: it starts a transaction of its
    # own, so that what is released does not wait on it.
    lazy: bool = False


def _merge(group: list[Handoff]) -> Batch:
    if len(group) == 1:
        return group[0].batch
    merged = Batch()
    for handoff in group:
        b = handoff.batch
        merged.new_executions += b.new_executions
        merged.updates += b.updates
        merged.events += b.events
        merged.definitions += b.definitions
        merged.schedules += b.schedules
        merged.deleted_schedules += b.deleted_schedules
        merged.queues += b.queues
        merged.deleted_queues += b.deleted_queues
    return merged


def _ends_group(batch: Batch) -> bool:
    # A store applies upserts before deletes: a delete followed by a save of the same
    # schedule or queue must stay in separate transactions.
    return bool(batch.deleted_schedules or batch.deleted_queues)


class Writer:
    """Commits handed batches in order on a thread of its own.

    Args:
        store: where batches are committed.
        on_written: called on the writer thread with each committed group, in order.
        on_failed: called on the writer thread once a commit failed.
    """

    def __init__(
        self,
        store: Store,
        on_written: Callable[[list[Handoff]], None],
        on_failed: Callable[[], None],
    ) -> None:
        self._store = store
        self._on_written = on_written
        self._on_failed = on_failed
        self._waiting: collections.deque[Handoff] = collections.deque()
        self._state = threading.Condition()
        self._handed = 0  # handoffs received
        self._written = 0  # handoffs committed (or dropped after a failure)
        self._closing = False
        self.error: BaseException | None = None
        #: Called on the writer thread after each commit with (seconds it took, events
        #: it wrote): the commit-latency metric (see Engine.watch_commits).
        self.listeners: list[Callable[[float, int], None]] = []
        self._thread: threading.Thread | None = None

    def hand(self, handoff: Handoff) -> None:
        """Queue a batch for commit (engine thread); blocks while too many wait."""
        with self._state:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nbconductor-writer", daemon=True
                )
                self._thread.start()
            while len(self._waiting) >= _MAX_WAITING and self.error is None:
                self._state.wait()
            self._waiting.append(handoff)
            self._handed += 1
            self._state.notify_all()

    @property
    def busy(self) -> bool:
        """Whether something handed is not committed yet."""
        return self._written != self._handed

    def wait_written(self, timeout: float | None = None) -> bool:
        """Wait until everything handed so far is committed (or the writer failed)."""
        with self._state:
            target = self._handed
            return self._state.wait_for(
                lambda: self._written >= target or self.error is not None, timeout
            )

    def commit_now(self, batch: Batch) -> None:
        """Commit on the calling thread (the engine's), when nothing is in flight and
        nothing would run meanwhile: two thread hand-offs cost more than they save.

        Raises:
            StoreError: the commit failed (kept, so nothing later is written).
        """
        started = time.perf_counter()
        try:
            self._store.commit(batch)
        except BaseException as exc:
            with self._state:
                self.error = exc
                self._state.notify_all()
            raise
        self._report(batch, time.perf_counter() - started)

    def _report(self, batch: Batch, took: float) -> None:
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):  # a broken metric must not stop a commit
                listener(took, len(batch.events))

    def close(self) -> None:
        """Commit what is waiting, then end the thread."""
        with self._state:
            self._closing = True
            self._state.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        state = self._state
        while True:
            with state:
                while not self._waiting and not self._closing:
                    state.wait()
                if not self._waiting:
                    return
                group = [self._waiting.popleft()]
                lazy = group[0].lazy
                while (
                    self._waiting
                    and self._waiting[0].lazy == lazy
                    and not _ends_group(group[-1].batch)
                ):
                    group.append(self._waiting.popleft())
                state.notify_all()  # room for hand()
            batch = _merge(group)
            started = time.perf_counter()
            try:
                self._store.commit(batch)
            except BaseException as exc:  # kept for the engine thread, which stops
                with state:
                    self.error = exc
                    self._written = self._handed
                    self._waiting.clear()
                    state.notify_all()
                self._on_failed()
                return
            if self.listeners and batch:
                self._report(batch, time.perf_counter() - started)
            self._on_written(group)
            with state:
                self._written += len(group)
                state.notify_all()
            # Not kept while waiting for the next batch: its events would outlive their
            # commit (into the collector's older generations, or for as long as idle).
            group = batch = None
