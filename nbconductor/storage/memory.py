"""An in-memory store: the same contract as the DuckDB store, nothing durable.

For fast tests, and for users' own tests of their workflows.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nbconductor.errors import PayloadError, StoreError
from nbconductor.storage.records import (
    SORT_KEYS,
    Batch,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    PruneReport,
    QueueRecord,
    ScheduleRecord,
    Status,
    TimerCounts,
)
from nbconductor.storage.retention import prunable
from nbconductor.storage.values import StoredValue

_UTC = UTC


def _copied_table(table: Any) -> Any:
    import pyarrow as pa  # only reached with a table in hand, so pyarrow is installed

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    with pa.ipc.open_stream(sink.getvalue()) as reader:
        return reader.read_all()


# A reference as the codec writes it (the DuckDB store's payload_refs finds the same).
_REF = re.compile(r'"__nbc__":"ref","kind":"[a-z]+","hash":"([0-9a-f]{32})"')


class MemoryStore:
    """Keeps history in dictionaries; commits are atomic under one lock."""

    path: str | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executions: dict[str, ExecutionRecord] = {}
        self._events: dict[str, list[EventRecord]] = {}
        self._definitions: list[DefinitionRecord] = []
        self._schedules: dict[str, ScheduleRecord] = {}
        self._queues: dict[str, QueueRecord] = {}
        self._payloads: dict[str, StoredValue] = {}
        self._stored_at: dict[str, float] = {}  # monotonic; see delete_unreferenced_payloads
        self.payload_grace = 600.0  # as the DuckDB store's
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise StoreError("this store is closed")

    def commit(self, batch: Batch) -> None:
        with self._lock:
            self._check()
            new_ids: set[str] = set()
            for rec in batch.new_executions:
                if rec.id in self._executions or rec.id in new_ids:
                    raise StoreError(f"execution {rec.id!r} already exists")
                new_ids.add(rec.id)
            executions = dict(self._executions)
            for rec in batch.new_executions:
                executions[rec.id] = _copy(rec)
            for upd in batch.updates:
                old = executions.get(upd.id)
                if old is None:
                    raise StoreError(f"update of unknown execution {upd.id!r}")
                rec = _copy(old)
                rec.updated_at = upd.updated_at
                for name in ("status", "closed_at", "result", "error", "version"):
                    value = getattr(upd, name)
                    if value is not None:
                        setattr(rec, name, value)
                if upd.condition is not None:
                    rec.condition = upd.condition or None
                executions[upd.id] = rec
            self._executions = executions
            # Copies, like a real store: changing a record after commit changes no history.
            for ev in batch.events:
                self._events.setdefault(ev.execution_id, []).append(copy.copy(ev))
            for schedule in batch.schedules:
                self._schedules[schedule.id] = copy.copy(schedule)
            for schedule_id in batch.deleted_schedules:
                self._schedules.pop(schedule_id, None)
            for queue in batch.queues:
                self._queues[queue.name] = copy.copy(queue)
            for name in batch.deleted_queues:
                self._queues.pop(name, None)
            if not batch.definitions:
                return
            known = {(d.name, d.kind, d.version) for d in self._definitions}
            for d in batch.definitions:
                key = (d.name, d.kind, d.version)
                if key not in known:  # a version is recorded once, when first seen
                    known.add(key)
                    self._definitions.append(copy.copy(d))

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        with self._lock:
            self._check()
            rec = self._executions.get(execution_id)
            return _copy(rec) if rec else None

    def _matching(self, f: ExecutionFilter) -> list[ExecutionRecord]:
        out = []
        for rec in self._executions.values():
            if f.status is not None and rec.status not in f.status:
                continue
            if f.workflow is not None and rec.workflow != f.workflow:
                continue
            if f.since is not None and rec.created_at < f.since:
                continue
            if f.until is not None and rec.created_at >= f.until:
                continue
            if f.parent_id is not None and rec.parent_id != f.parent_id:
                continue
            if f.search and not (f.search in rec.id or any(f.search in tag for tag in rec.tags)):
                continue
            out.append(rec)
        out.sort(key=_sort_key(f), reverse=f.newest_first)
        return out

    def list_executions(self, filter: ExecutionFilter | None = None) -> list[ExecutionRecord]:
        f = filter or ExecutionFilter()
        with self._lock:
            self._check()
            rows = self._matching(f)
        end = None if f.limit is None else f.offset + f.limit
        return [_copy(r) for r in rows[f.offset : end]]

    def count_executions(self, filter: ExecutionFilter | None = None) -> int:
        with self._lock:
            self._check()
            return len(self._matching(filter or ExecutionFilter()))

    def open_executions(self) -> list[ExecutionRecord]:
        return self.list_executions(ExecutionFilter(status=[Status.RUNNING], newest_first=False))

    def load_history(self, execution_id: str, after_seq: int = 0) -> list[EventRecord]:
        with self._lock:
            self._check()
            events = self._events.get(execution_id, ())
            return [copy.copy(e) for e in _in_order(events) if e.seq > after_seq]

    def histories(self, execution_ids: list[str]) -> dict[str, list[EventRecord]]:
        with self._lock:
            self._check()
            return {
                i: [copy.copy(e) for e in _in_order(self._events.get(i, ()))] for i in execution_ids
            }

    def counts_by_status(self) -> dict[Status, int]:
        with self._lock:
            self._check()
            return dict(Counter(r.status for r in self._executions.values()))

    def definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        with self._lock:
            self._check()
            found = [copy.copy(d) for d in self._definitions if name is None or d.name == name]
        return sorted(found, key=lambda d: d.registered_at)  # stable: ties keep commit order

    def schedules(self) -> list[ScheduleRecord]:
        with self._lock:
            self._check()
            return [copy.copy(self._schedules[k]) for k in sorted(self._schedules)]

    def queues(self) -> list[QueueRecord]:
        with self._lock:
            self._check()
            return [copy.copy(self._queues[k]) for k in sorted(self._queues)]

    def queue_starts(self, queue: str, since: datetime) -> list[datetime]:
        since = since if since.tzinfo else since.replace(tzinfo=_UTC)
        ended = (EventKind.TASK_COMPLETED, EventKind.TASK_FAILED)
        with self._lock:
            self._check()
            events = [e for history in self._events.values() for e in history if e.kind in ended]
        starts = []
        for event in events:
            data = json.loads(event.data)
            if data.get("queue") != queue or not data.get("started_at"):
                continue
            started = datetime.fromisoformat(data["started_at"])
            started = started if started.tzinfo else started.replace(tzinfo=_UTC)
            if started >= since:
                starts.append(started)
        return sorted(starts)

    def workflow_names(self) -> list[str]:
        with self._lock:
            self._check()
            return sorted({r.workflow for r in self._executions.values()})

    def created_span(
        self, filter: ExecutionFilter | None = None
    ) -> tuple[datetime, datetime] | None:
        with self._lock:
            self._check()
            starts = [r.created_at for r in self._matching(filter or ExecutionFilter())]
        return (min(starts), max(starts)) if starts else None

    def counts_over_time(
        self, width: float, filter: ExecutionFilter | None = None
    ) -> dict[datetime, dict[Status, int]]:
        _check_width(width)
        with self._lock:
            self._check()
            rows = self._matching(filter or ExecutionFilter())
        counts: dict[int, Counter[Status]] = {}
        for r in rows:
            counts.setdefault(math.floor(r.created_at.timestamp() / width), Counter())[
                r.status
            ] += 1
        return {datetime.fromtimestamp(b * width, _UTC): dict(counts[b]) for b in sorted(counts)}

    def pending_timers(self, now: datetime | None = None) -> TimerCounts:
        now = now or datetime.now(_UTC)
        at = (now if now.tzinfo else now.replace(tzinfo=_UTC)).timestamp()  # naive: UTC
        with self._lock:
            self._check()
            running = [i for i, r in self._executions.items() if r.status is Status.RUNNING]
            histories = [list(self._events.get(i, ())) for i in running]
        pending = due = 0
        for events in histories:
            ended = {
                e.command
                for e in events
                if e.kind in (EventKind.TIMER_FIRED, EventKind.TIMER_CANCELLED)
            }
            for e in events:
                if e.kind is EventKind.TIMER_STARTED and (
                    e.command is None or e.command not in ended
                ):
                    pending += 1
                    fire_at = _fire_at(e.data)
                    due += fire_at is not None and fire_at <= at
        return TimerCounts(pending, due)

    def export_parquet(self, directory: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
        raise StoreError("MemoryStore cannot export Parquet; only a DuckDB history file can")

    # -- stored values ------------------------------------------------------------------

    def put_payload(self, stored: StoredValue) -> bool:
        """Keep a large value once by its hash; True when this call added it."""
        with self._lock:
            self._check()
            if stored.hash in self._payloads:
                self._stored_at[stored.hash] = time.monotonic()
                return False
        # A copy, like a real store: the caller's frame or array (which Arrow may share
        # memory with) can change afterwards without changing what is stored.
        kept = copy.copy(stored)
        if stored.table is not None:
            kept.table = _copied_table(stored.table)
        else:
            kept.blob = bytes(memoryview(stored.blob).cast("B"))
        with self._lock:
            self._payloads.setdefault(stored.hash, kept)
            self._stored_at[stored.hash] = time.monotonic()
        return True

    def get_payload(self, digest: str) -> StoredValue:
        """The stored value ``digest``.

        Raises:
            PayloadError: nothing is stored under ``digest``.
        """
        with self._lock:
            self._check()
            stored = self._payloads.get(digest)
        if stored is None:
            raise PayloadError(f"the stored value {digest} is not in this store (was it pruned?)")
        return stored

    def payload_preview(self, digest: str, rows: int = 5) -> tuple[list[str], list[tuple]] | None:
        """Column names and the first ``rows`` rows of a value stored as a table."""
        stored = self.get_payload(digest)
        if stored.table is None:
            return None
        head = stored.table.slice(0, rows).to_pylist()
        columns = stored.table.column_names
        return columns, [tuple(row[c] for c in columns) for row in head]

    def delete_unreferenced_payloads(
        self, *, dry_run: bool = False, older_than: float = 600.0
    ) -> dict[str, int]:
        """Delete the stored values nothing references any more (after a prune), stored
        more than ``older_than`` seconds ago (a running task's result is stored before
        its event)."""
        with self._lock:
            self._check()
            return self._delete_unreferenced(dry_run, older_than)

    def _delete_unreferenced(
        self, dry_run: bool, older_than: float = 600.0, without: frozenset[str] = frozenset()
    ) -> dict[str, int]:
        # Under the lock. ``without``: count as if these executions were gone (dry run).
        texts = [e.data for i, events in self._events.items() if i not in without for e in events]
        for rec in self._executions.values():
            if rec.id not in without:
                texts.extend(t for t in (rec.input, rec.result, rec.error) if t)
        for sched in self._schedules.values():
            texts.extend((sched.spec, sched.state))
        used = {m for text in texts if '"ref"' in text for m in _REF.findall(text)}
        cutoff = time.monotonic() - older_than
        orphans = [h for h in self._payloads if h not in used and self._stored_at[h] < cutoff]
        freed = sum(self._payloads[h].nbytes for h in orphans)
        if not dry_run:
            for digest in orphans:
                del self._payloads[digest]
                del self._stored_at[digest]
        return {"payloads": len(orphans), "bytes": int(freed)}

    def relation(self, query: str, params: list[Any] | None = None) -> Any:
        raise StoreError(
            "this engine keeps its history in memory, which SQL cannot query; give the "
            "engine a history file to query it: Engine('history.duckdb') (in a notebook, "
            "%load_ext nbconductor does)"
        )

    def prune(
        self,
        closed_before: datetime,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        batch: int = 100,
        reclaim: bool = True,
    ) -> PruneReport:
        started = time.perf_counter()
        cutoff = closed_before if closed_before.tzinfo else closed_before.replace(tzinfo=_UTC)
        report = PruneReport(closed_before=cutoff, dry_run=dry_run)
        with self._lock:
            self._check()
            rows = [
                (r.id, r.status, r.closed_at, r.parent_id, r.origin_id)
                for r in self._executions.values()
            ]
            doomed, report.kept = prunable(rows, cutoff, limit)
            report.executions = len(doomed)
            report.ids = doomed[:20]
            report.events = sum(len(self._events.get(i, ())) for i in doomed)
            if dry_run and doomed:
                report.payloads = self._delete_unreferenced(
                    True, self.payload_grace, without=frozenset(doomed)
                )
            if not dry_run and doomed:
                executions = dict(self._executions)
                for execution_id in doomed:
                    del executions[execution_id]
                    self._events.pop(execution_id, None)
                self._executions = executions
                report.payloads = self._collect_unreferenced_payloads()
        report.seconds = time.perf_counter() - started
        return report

    def _collect_unreferenced_payloads(self) -> dict[str, int]:
        """Delete stored values no remaining event or execution refers to; what was freed.

        The one call site for the payload store's collection (issue #16), as in the
        DuckDB store. Runs under the lock.
        """
        return self._delete_unreferenced(False, self.payload_grace)

    def close(self) -> None:
        with self._lock:
            self._closed = True


def _copy(rec: ExecutionRecord) -> ExecutionRecord:
    """A copy that shares no mutable state (tags) with the original."""
    out = copy.copy(rec)
    out.tags = list(rec.tags)
    return out


def _sort_key(f: ExecutionFilter) -> Callable[[ExecutionRecord], tuple]:
    """The order of the DuckDB store's ORDER BY: the sort column, start time, id."""
    if f.sort not in SORT_KEYS:
        raise ValueError(f"cannot sort executions by {f.sort!r}; use one of {', '.join(SORT_KEYS)}")
    if f.sort == "started":
        return lambda r: (r.created_at, r.id)
    if f.sort == "duration":
        now = f.now or datetime.now(_UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=_UTC)
        return lambda r: ((r.closed_at or now) - r.created_at, r.created_at, r.id)
    if f.sort == "status":
        return lambda r: (r.status.value, r.created_at, r.id)
    name = f.sort
    return lambda r: (getattr(r, name), r.created_at, r.id)


def _check_width(width: float) -> None:
    if not width > 0:
        raise ValueError(f"a bucket width must be a positive number of seconds, not {width!r}")


def _fire_at(data: str) -> float | None:
    """A TimerStarted event's fire time in epoch seconds, as the DuckDB store's
    ``TRY_CAST(data->>'$.fire_at' AS DOUBLE)`` reads it (None when it cannot)."""
    try:
        value = json.loads(data).get("fire_at")
        if isinstance(value, bool):
            return None
        return float(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _in_order(events: list[EventRecord] | tuple[()]) -> list[EventRecord]:
    """Events in seq order (the engine appends them in order, so this is one pass)."""
    return sorted(events, key=lambda e: e.seq)
