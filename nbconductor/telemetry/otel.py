"""Spans and metrics from an engine's committed history (OpenTelemetry).

One span per execution (``workflow NAME``, from its start to its close) and, as its
child, one span per task attempt (``task NAME``, from the attempt's dispatch to its
outcome) with the attempt number, its runner and queue, whether a retry follows, and
the error recorded as an ``exception`` event (type, message, traceback) with status
ERROR. Metrics: the counters ``nbconductor.executions.started``,
``nbconductor.executions.closed`` (attribute ``status``) and
``nbconductor.task.attempts`` (attribute ``outcome``), and the gauges
``nbconductor.queue.waiting`` and ``nbconductor.queue.running`` (attribute ``queue``), and the histogram
``nbconductor.commit.duration`` (seconds per transaction of the history file, from
:meth:`Engine.watch_commits`).

An attempt's span is opened when the attempt is dispatched (``Engine.on_dispatch``, on
the engine thread) and its W3C ``traceparent`` travels with the attempt, so a span the
task opens, on a thread, a child process or a Dask worker with OpenTelemetry set up,
is the attempt span's child. Everything else is built from what the history recorded,
after each commit, on a thread of its own: the engine thread only hands over the
changed execution ids.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Status as SpanStatus
from opentelemetry.trace import StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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
        # Open spans, shared with the engine thread (on_dispatch): under the lock.
        self.lock = threading.Lock()
        self.spans: dict[str, trace.Span] = {}  # open executions' spans
        self.attempt_spans: dict[tuple[str, int, int], trace.Span] = {}  # dispatched
        meter.create_observable_gauge(
            "nbconductor.queue.waiting",
            callbacks=[lambda options: self._queues(options, "waiting")],
            description="task attempts waiting for room in each queue",
        )
        meter.create_observable_gauge(
            "nbconductor.queue.running",
            callbacks=[lambda options: self._queues(options, "running")],
            description="task attempts of each queue running",
        )
        self.queue: queue.SimpleQueue[frozenset[str] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="nbconductor-otel", daemon=True)

    def _run(self) -> None:
        while (ids := self.queue.get()) is not None:
            for execution_id in sorted(ids):
                try:
                    self._advance(execution_id)
                except Exception:  # telemetry must never disturb the engine
                    continue

    def _queues(self, options: CallbackOptions, which: str) -> list[Observation]:
        try:
            infos = self.engine.queues.list()
        except Exception:  # a stopped engine: no queues to report
            return []
        return [Observation(getattr(q, which), {"queue": q.name}) for q in infos]

    def _execution_span(self, execution_id: str, workflow: str, at: datetime) -> trace.Span:
        """The execution's span, opened now if it is not yet (hold the lock)."""
        span = self.spans.get(execution_id)
        if span is None:
            span = self.spans[execution_id] = self.tracer.start_span(
                f"workflow {workflow}",
                start_time=_ns(at),
                attributes={
                    "nbconductor.execution_id": execution_id,
                    "nbconductor.workflow": workflow,
                },
            )
        return span

    def dispatched(self, record: Any, attempt: Any) -> None:
        """On the engine thread: open the attempt's span, give the attempt its context."""
        options = attempt.definition.options
        attributes = {
            "nbconductor.execution_id": record.id,
            "nbconductor.task": attempt.definition.name,
            "nbconductor.attempt": attempt.number,
            "nbconductor.runner": options.runner,
        }
        if options.queue is not None:
            attributes["nbconductor.queue"] = options.queue
        with self.lock:
            parent = self._execution_span(record.id, record.workflow, record.created_at)
            span = self.tracer.start_span(
                f"task {attempt.definition.name}",
                context=trace.set_span_in_context(parent),
                start_time=int(attempt.dispatched_at * 1e9),
                attributes=attributes,
            )
            self.attempt_spans[(record.id, attempt.command, attempt.number)] = span
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
        attempt.trace_context = carrier

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
            with self.lock:  # opened already if an attempt was dispatched first
                self._execution_span(execution_id, record.workflow, event.at)
            self.started.add(1, {"workflow": record.workflow})
        elif event.kind in (EventKind.TASK_COMPLETED, EventKind.TASK_FAILED):
            self._attempt(execution_id, event)
        elif event.kind in _CLOSING:
            status = _CLOSING[event.kind]
            with self.lock:
                span = self.spans.pop(execution_id, None)
                # Attempts that recorded no outcome (abandoned as the execution closed).
                orphans = [k for k in self.attempt_spans if k[0] == execution_id]
                abandoned = [self.attempt_spans.pop(k) for k in orphans]
            for attempt_span in abandoned:
                attempt_span.set_attribute("nbconductor.abandoned", True)
                attempt_span.end(end_time=_ns(event.at))
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
        failed = event.kind is EventKind.TASK_FAILED
        retry = bool(failed and not data.get("final"))
        key = (execution_id, event.command, event.attempt or 1)
        with self.lock:
            span = self.attempt_spans.pop(key, None)
            parent = self.spans.get(execution_id)
        if span is not None:  # opened at dispatch, its context sent with the attempt
            span.set_attribute("nbconductor.retry", retry)
        else:  # dispatched before instrument() was called
            started = data.get("started_at")
            start = _ns(datetime.fromisoformat(started)) if started else _ns(event.at)
            context = trace.set_span_in_context(parent) if parent is not None else None
            span = self.tracer.start_span(
                f"task {event.name}",
                context=context,
                start_time=start,
                attributes={
                    "nbconductor.execution_id": execution_id,
                    "nbconductor.task": event.name or "",
                    "nbconductor.attempt": event.attempt or 1,
                    "nbconductor.retry": retry,
                },
            )
        if data.get("worker"):
            span.set_attribute("nbconductor.worker", str(data["worker"]))
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
    no_hook = engine.on_dispatch(follower.dispatched)
    commits = meter.create_histogram(
        "nbconductor.commit.duration",
        unit="s",
        description="time to commit one transaction of the history file",
    )
    unwatch = engine.watch_commits(lambda seconds, events: commits.record(seconds))

    def stop() -> None:
        unwatch()
        no_hook()
        unsubscribe()
        follower.queue.put(None)
        follower.thread.join(5.0)

    return stop
