"""Spans and metrics from an engine's committed history (OpenTelemetry).

One span per execution (``workflow NAME``, from its start to its close) and, as its
child, one span per task attempt (``task NAME``, from the attempt's start to its
outcome) with the attempt number, whether a retry follows, and the error recorded as
an ``exception`` event (type, message, traceback) with status ERROR. Metrics: the
counters ``nbconductor.executions.started``, ``nbconductor.executions.closed``
(attribute ``status``) and ``nbconductor.task.attempts`` (attribute ``outcome``), and
the histogram ``nbconductor.commit.duration`` (seconds per transaction of the history
file, from :meth:`Engine.watch_commits`).

The spans are built from what the history recorded, after each commit, on a thread of
their own: the engine thread only hands over the changed execution ids, and a span's
times are the recorded ones. What is not done yet: propagating the trace context to
tasks on other runners and a queue-depth gauge.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status as SpanStatus
from opentelemetry.trace import StatusCode

from nbconductor.storage.records import EventKind, EventRecord

__all__ = ("instrument",)

_SCOPE = "nbconductor"
_CLOSING = {
    EventKind.EXECUTION_COMPLETED: "completed",
    EventKind.EXECUTION_FAILED: "failed",
    EventKind.EXECUTION_CANCELLED: "cancelled",
    EventKind.EXECUTION_TERMINATED: "terminated",
    EventKind.EXECUTION_TIMED_OUT: "timed_out",
    EventKind.EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1e9)


def _data(event: EventRecord) -> dict:
    try:
        value = json.loads(event.data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Follower:
    def __init__(self, engine: Any, tracer: trace.Tracer, meter: metrics.Meter) -> None:
        self.engine = engine
        self.tracer = tracer
        self.started = meter.create_counter("nbconductor.executions.started")
        self.closed = meter.create_counter("nbconductor.executions.closed")
        self.attempts = meter.create_counter("nbconductor.task.attempts")
        self.seen: dict[str, int] = {}  # execution id -> last seq turned into telemetry
        self.spans: dict[str, trace.Span] = {}  # open executions' spans
        self.queue: queue.SimpleQueue[frozenset[str] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="nbconductor-otel", daemon=True)

    def _run(self) -> None:
        while (ids := self.queue.get()) is not None:
            for execution_id in sorted(ids):
                try:
                    self._advance(execution_id)
                except Exception:  # telemetry must never disturb the engine
                    continue

    def _advance(self, execution_id: str) -> None:
        last = self.seen.get(execution_id, 0)
        for event in self.engine.history(execution_id):
            if event.seq <= last:
                continue
            self._event(execution_id, event)
            self.seen[execution_id] = event.seq

    def _event(self, execution_id: str, event: EventRecord) -> None:
        if event.kind is EventKind.EXECUTION_STARTED:
            record = self.engine.describe(execution_id)
            span = self.tracer.start_span(
                f"workflow {record.workflow}",
                start_time=_ns(event.at),
                attributes={
                    "nbconductor.execution_id": execution_id,
                    "nbconductor.workflow": record.workflow,
                },
            )
            self.spans[execution_id] = span
            self.started.add(1, {"workflow": record.workflow})
        elif event.kind in (EventKind.TASK_COMPLETED, EventKind.TASK_FAILED):
            self._attempt(execution_id, event)
        elif event.kind in _CLOSING:
            status = _CLOSING[event.kind]
            span = self.spans.pop(execution_id, None)
            self.closed.add(1, {"status": status})
            if span is None:
                return
            span.set_attribute("nbconductor.status", status)
            if status in ("failed", "timed_out", "terminated"):
                error = _error_of(self.engine.describe(execution_id).error)
                if error:
                    _record_error(span, error, event.at)
                span.set_status(SpanStatus(StatusCode.ERROR, status))
            span.end(end_time=_ns(event.at))

    def _attempt(self, execution_id: str, event: EventRecord) -> None:
        data = _data(event)
        started = data.get("started_at")
        start = _ns(datetime.fromisoformat(started)) if started else _ns(event.at)
        parent = self.spans.get(execution_id)
        context = trace.set_span_in_context(parent) if parent is not None else None
        failed = event.kind is EventKind.TASK_FAILED
        span = self.tracer.start_span(
            f"task {event.name}",
            context=context,
            start_time=start,
            attributes={
                "nbconductor.execution_id": execution_id,
                "nbconductor.task": event.name or "",
                "nbconductor.attempt": event.attempt or 1,
                "nbconductor.retry": bool(failed and not data.get("final")),
            },
        )
        self.attempts.add(1, {"task": event.name or "", "outcome": "failed" if failed else "ok"})
        if failed:
            error = data.get("error") or {}
            _record_error(span, error, event.at)
            span.set_status(SpanStatus(StatusCode.ERROR, error.get("type", "error")))
        span.end(end_time=_ns(event.at))


def _error_of(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {"type": "Error", "message": text}
    return value if isinstance(value, dict) else {}


def _record_error(span: trace.Span, error: dict, at: datetime) -> None:
    # The semantic conventions' exception event (what span.record_exception writes),
    # from the recorded failure: the exception object itself is long gone.
    span.add_event(
        "exception",
        {
            "exception.type": str(error.get("type", "Error")),
            "exception.message": str(error.get("message", "")),
            "exception.stacktrace": str(error.get("traceback") or ""),
        },
        timestamp=_ns(at),
    )


def instrument(
    engine: Any,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Callable[[], None]:
    """Emit spans and metrics for ``engine``'s executions from now on.

    Args:
        engine: a running :class:`nbconductor.Engine`.
        tracer_provider: where spans go (default: OpenTelemetry's global provider).
        meter_provider: where metrics go (default: the global provider).

    Returns:
        A function that stops the instrumentation. The spans of executions still open
        then are not ended, so not exported: their attempts' spans are.
    """
    tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
    meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
    follower = _Follower(engine, tracer, meter)
    follower.thread.start()
    unsubscribe = engine.subscribe(lambda ids: follower.queue.put(frozenset(ids)))
    commits = meter.create_histogram(
        "nbconductor.commit.duration",
        unit="s",
        description="time to commit one transaction of the history file",
    )
    unwatch = engine.watch_commits(lambda seconds, events: commits.record(seconds))

    def stop() -> None:
        unwatch()
        unsubscribe()
        follower.queue.put(None)
        follower.thread.join(5.0)

    return stop
