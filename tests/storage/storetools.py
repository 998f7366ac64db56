"""Records for the Store tests: a fixed instant and builders of executions and events."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from nbconductor.storage.records import EventKind, EventRecord, ExecutionRecord, Status

T0 = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=timezone.utc)


def execution(id: str, *, minutes: float = 0, **changes) -> ExecutionRecord:
    """A running execution of ``order`` started ``minutes`` after T0, with ``changes``."""
    at = T0 + timedelta(minutes=minutes)
    rec = ExecutionRecord(id, "order", "v1", Status.RUNNING, at, at)
    return replace(rec, **changes)


def event(execution_id: str, seq: int, kind: EventKind = EventKind.TASK_COMPLETED, **changes):
    """Event ``seq`` of an execution, ``seq`` seconds after T0, with ``changes``."""
    rec = EventRecord(execution_id, seq, kind, T0 + timedelta(seconds=seq))
    return replace(rec, **changes)
