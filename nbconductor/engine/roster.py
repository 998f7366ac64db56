"""The roster of executions an engine holds: open ones, accepted ones, and who waits.

An execution is *accepted* from the moment ``start()`` returns its handle until the
engine thread takes it in (the next tick), then *live* until it closes. Callers on any
thread ask the roster about an execution and get a future for its closed record; the
engine thread adds and removes executions and resolves those futures after the commit
that closed them.
"""

from __future__ import annotations

import collections
import copy
import json
import threading
from concurrent.futures import Future
from datetime import datetime

from nbconductor.engine.live import LiveExecution
from nbconductor.errors import EngineStopped, ExecutionClosed, ExecutionNotFound
from nbconductor.storage.records import EventRecord, ExecutionRecord, Status
from nbconductor.storage.store import Store

_RECENT = 1024  # closed records kept to answer a start-then-wait without a store read


class Roster:
    """Open executions by id, and the callers waiting for them to close.

    Reads (``get``, ``holds``, ``status_of``, ...) are safe from any thread; changes
    happen on the engine thread.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._live: dict[str, LiveExecution] = {}
        # Started by a caller, not yet taken in by the engine thread: the record the
        # start will write, so a fresh handle reads as Running from its first moment.
        self._accepted: dict[str, ExecutionRecord] = {}
        self._waiters: dict[str, list[Future]] = {}
        self._recently_closed: collections.OrderedDict[str, ExecutionRecord] = (
            collections.OrderedDict()
        )
        # Closed here, their row not in the file yet (it follows the closing event in a
        # transaction of its own): until it is, the store would still say Running.
        self._unwritten: dict[str, ExecutionRecord] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- any thread

    def get(self, execution_id: str) -> LiveExecution | None:
        """The open execution with this id, if this engine holds it."""
        return self._live.get(execution_id)

    def all(self) -> list[LiveExecution]:
        """Every open execution (a copy of the list)."""
        return list(self._live.values())

    def __len__(self) -> int:
        return len(self._live)

    def holds(self, execution_id: str) -> bool:
        """Whether the execution is open here or accepted and about to start."""
        return execution_id in self._accepted or execution_id in self._live  # see find()

    def is_accepted(self, execution_id: str) -> bool:
        return execution_id in self._accepted

    def accept(self, record: ExecutionRecord) -> None:
        """A caller started this execution; the engine thread takes it in its next tick."""
        with self._lock:
            self._accepted.setdefault(record.id, record)

    def accepted(self, execution_id: str) -> ExecutionRecord | None:
        """The record of an accepted start the engine thread has not taken in yet."""
        return self._accepted.get(execution_id)

    def record_of(self, execution_id: str) -> ExecutionRecord:
        """The execution's record: live if open here, starting, or as stored.

        Raises:
            ExecutionNotFound: no execution has that id.
        """
        record = self.find(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        return record

    def find(self, execution_id: str) -> ExecutionRecord | None:
        """The execution's record (live, starting or stored), or None if there is none."""
        # Readers take no lock, so the order matters: the engine thread adds a started
        # execution to the live ones before it drops the accepted start, and keeps a
        # closed one's record before it drops the live one. Reading the accepted start
        # first, then the live one, then the stored one, cannot miss it in between.
        accepted = self._accepted.get(execution_id)
        live = self._live.get(execution_id)
        if live is not None:
            return live.record
        return accepted or self.stored(execution_id)

    def workflow_of(self, execution_id: str) -> str | None:
        """The workflow name of an execution with this id, if one exists (or starts)."""
        record = self.find(execution_id)
        return record.workflow if record is not None else None

    def describe(self, execution_id: str) -> ExecutionRecord:
        """The execution's record as stored, with the live condition if it is open.

        Raises:
            ExecutionNotFound: no execution has that id.
        """
        accepted = self._accepted.get(execution_id)  # first: see find()
        record = self.snapshot_of(execution_id)
        if record is not None:  # may not be committed yet: it was just started
            return record
        record = self.stored(execution_id)
        if record is None:
            live = self._live.get(execution_id)
            if live is not None:  # closed here, neither written nor resolved yet
                record = copy.copy(live.record)
                record.tags = list(record.tags)
                return record
            if accepted is not None:  # starting: the record its start will write
                return copy.copy(accepted)
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        live = self._live.get(execution_id)
        if live is not None:
            record.condition = live.condition
        return record

    def latest(self, execution_id: str) -> str:
        """The id of the latest run of ``execution_id``'s continue-as-new chain: the id
        itself unless that run continued as new (as Temporal's run-less handles)."""
        seen = {execution_id}
        while True:
            live = self._live.get(execution_id)
            if execution_id in self._accepted or (
                live is not None and not live.record.status.closed
            ):
                return execution_id
            record = live.record if live is not None else self.stored(execution_id)
            following = next_run(record) if record is not None else None
            if following is None or following in seen:
                return execution_id
            seen.add(following)
            execution_id = following

    def stored(self, execution_id: str) -> ExecutionRecord | None:
        """The execution's record as stored, or as it closed here recently: a closed
        execution's row is written just after its closing event, so the store may
        still say Running for a moment after its result was released."""
        recent = self._unwritten.get(execution_id) or self._recently_closed.get(execution_id)
        if recent is not None:
            return recent
        record = self._store.get_execution(execution_id)
        if record is None:  # it closed while the store was read, its row not yet written
            record = self._unwritten.get(execution_id) or self._recently_closed.get(execution_id)
        return record

    def closing_event(self, execution_id: str) -> EventRecord | None:
        """The last recorded event of the execution (its closing event once closed)."""
        history = self._store.load_history(execution_id)
        return history[-1] if history else None

    def status_of(self, execution_id: str) -> Status:
        """Running while held here, else the stored status."""
        if self.holds(execution_id):
            return Status.RUNNING
        record = self.stored(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        return record.status

    def condition_of(self, execution_id: str) -> str | None:
        """Why an open execution does not progress, if it does not."""
        live = self._live.get(execution_id)
        return live.condition if live is not None else None

    def snapshot_of(self, execution_id: str) -> ExecutionRecord | None:
        """A copy of a running execution's record with its live condition (it may not be
        committed yet), or None when it is not running here."""
        live = self._live.get(execution_id)
        if live is None or live.record.status is not Status.RUNNING:
            return None
        record = copy.copy(live.record)
        record.tags = list(record.tags)
        record.condition = live.condition
        return record

    def result_future(self, execution_id: str) -> Future:
        """A future resolved with the execution's record once it is closed."""
        future: Future = Future()
        with self._lock:
            if execution_id in self._live or execution_id in self._accepted:
                self._waiters.setdefault(execution_id, []).append(future)
                return future
            recent = self._unwritten.get(execution_id) or self._recently_closed.get(execution_id)
        if recent is not None:  # spares a store read for the common start-then-wait
            future.set_result(recent)
            return future
        record = self._store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        if record.status.closed:
            future.set_result(record)
            return future
        with self._lock:  # open in the store but not loaded here (no definition yet)
            self._waiters.setdefault(execution_id, []).append(future)
        return future

    # -------------------------------------------------------------- engine thread

    def add(self, live: LiveExecution) -> None:
        self._live[live.id] = live

    def taken(self, execution_id: str) -> None:
        """The engine thread took in (or refused) an accepted start."""
        with self._lock:
            self._accepted.pop(execution_id, None)

    def open(self, execution_id: str) -> LiveExecution:
        """The open execution with this id, or the open latest run of its
        continue-as-new chain.

        Raises:
            ExecutionNotFound: no execution has that id.
            ExecutionClosed: it (the chain's latest run) has closed.
        """
        execution_id = self.latest(execution_id)
        live = self._live.get(execution_id)
        if live is not None and not live.record.status.closed:
            return live
        record = self.stored(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        raise ExecutionClosed(
            f"execution {execution_id!r} is already {record.status.title}; only open "
            "executions take signals, cancels and updates"
        )

    def forget_closed_before(self, moment: datetime) -> None:
        """Drop the closed records kept here that a prune at ``moment`` may have deleted:
        the engine must not answer for a deleted execution from memory. (A record kept
        in the store because its family is open is read from there again.)"""
        with self._lock:
            for execution_id, record in list(self._recently_closed.items()):
                if record.closed_at is not None and record.closed_at < moment:
                    del self._recently_closed[execution_id]

    def resolve(self, execution_id: str, record: ExecutionRecord | None = None) -> None:
        """Drop a closed execution and hand its record to everyone waiting (after the
        commit that closed it). Without ``record`` it is read from the store."""
        with self._lock:
            # Readers take no lock: the closed record is in place before the live one
            # goes, so that a lookup between the two still finds the execution.
            if record is not None:
                if record.status.closed:
                    self._unwritten[execution_id] = record
                self._recently_closed[execution_id] = record
                if len(self._recently_closed) > _RECENT:
                    self._recently_closed.popitem(last=False)
            self._live.pop(execution_id, None)
            waiters = self._waiters.pop(execution_id, [])
        if record is None and waiters:
            record = self.stored(execution_id)
        for future in waiters:
            if not future.done():
                future.set_result(record)

    def row_written(self, execution_id: str) -> None:
        """The closed execution's row is in the file: the store answers for it now."""
        with self._lock:
            self._unwritten.pop(execution_id, None)

    def fail_waiters(self) -> None:
        """The engine stopped: everyone still waiting gets EngineStopped."""
        with self._lock:
            waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(
                        EngineStopped(
                            "the engine stopped before this execution closed; it resumes when "
                            "an engine opens its history again"
                        )
                    )


def next_run(record: ExecutionRecord) -> str | None:
    """The id of the run that continued this one, if it continued as new."""
    if record.status is Status.CONTINUED_AS_NEW and record.result:
        return json.loads(record.result).get("next_id")
    return None
