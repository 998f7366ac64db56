"""Records as the plain JSON the control socket and ``nbconductor --json`` print.

These shapes are a stable interface for scripts (documented in docs/cli.md): fields
are only ever added. Times are ISO 8601 in UTC; payloads (input, result, error, event
data) are embedded as the JSON the history holds, so values the codec tags (datetimes,
Decimals, ...) keep their ``{"__nbc__": ...}`` form rather than losing their type.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from nbconductor.engine.schedules.scheduler import ScheduleInfo
from nbconductor.storage.records import EventRecord, ExecutionRecord

__all__ = ("event_view", "execution_view", "iso", "jsonable", "queue_view", "schedule_view")


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC (a naive datetime is taken as UTC, as the store keeps them)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _embedded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON (should not happen): show it as it is


def execution_view(record: ExecutionRecord) -> dict[str, Any]:
    """One execution; ``input`` is ``{"args": [...], "kwargs": {...}}``."""
    return {
        "id": record.id,
        "workflow": record.workflow,
        "version": record.version,
        "status": record.status.value,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "closed_at": iso(record.closed_at),
        "input": _embedded(record.input),
        "result": _embedded(record.result),
        "error": _embedded(record.error),
        "parent_id": record.parent_id,
        "origin_id": record.origin_id,
        "tags": list(record.tags),
        "condition": record.condition or None,
    }


def event_view(event: EventRecord) -> dict[str, Any]:
    """One history event, as ``nbconductor.testing.export_history`` writes it."""
    return {
        "execution_id": event.execution_id,
        "seq": event.seq,
        "kind": event.kind.value,
        "at": iso(event.at),
        "command": event.command,
        "name": event.name,
        "attempt": event.attempt,
        "data": _embedded(event.data),
    }


def schedule_view(info: ScheduleInfo) -> dict[str, Any]:
    """One schedule: its spec and where its firing stands."""
    spec = info.spec
    return {
        "id": spec.id,
        "workflow": spec.workflow,
        "cron": spec.cron,
        "every": spec.every,
        "timezone": spec.timezone,
        "args": jsonable(list(spec.args)),
        "kwargs": jsonable(dict(spec.kwargs)),
        "jitter": spec.jitter,
        "overlap": spec.overlap,
        "catchup": spec.catchup,
        "catchup_window": spec.catchup_window,
        "start_at": iso(spec.start_at),
        "end_at": iso(spec.end_at),
        "paused": spec.paused,
        "note": spec.note,
        "next_fire": iso(info.next_fire),
        "last_nominal": iso(info.last_nominal),
        "open_runs": list(info.open_runs),
        "buffered": [iso(b) for b in info.buffered],
        "fired": info.fired,
        "skipped": info.skipped,
        "waiting": info.waiting,
    }


def queue_view(info: Any) -> dict[str, Any]:
    """A queue's limits and, with an engine, how many attempts run and wait in it
    (``None`` when read from a file no engine holds)."""
    return {
        "name": info.name,
        "concurrency": info.concurrency,
        "rate": info.rate,
        "burst": getattr(info, "burst", 1),
        "running": getattr(info, "running", None),
        "waiting": getattr(info, "waiting", None),
    }


def prune_view(report: Any) -> dict[str, Any]:
    """A :class:`~nbconductor.storage.records.PruneReport` as JSON."""
    return {
        "closed_before": iso(report.closed_before),
        "dry_run": report.dry_run,
        "executions": report.executions,
        "events": report.events,
        "kept": report.kept,
        "bytes_before": report.bytes_before,
        "bytes_after": report.bytes_after,
        "payloads": dict(report.payloads),
        "seconds": round(report.seconds, 3),
        "ids": list(report.ids),
    }


def jsonable(value: Any) -> Any:
    """``value`` with everything JSON lacks turned into text: times (ISO, naive ones
    taken as UTC, as in the history's TIMESTAMP columns), Decimals (exact text),
    UUIDs, bytes (base64), non-finite floats ("NaN", "Infinity"), sets and tuples
    (arrays). Used for SQL result rows, whose values are whatever DuckDB returns."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)
