"""OpenTelemetry spans and metrics from a real engine, into the SDK's in-memory
exporter and reader."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.engine.runners import ProcessRunner
from nbconductor.telemetry import instrument
from nbconductor.testing import wait_for

_TRACER: list = []  # where a task opens its own span (set up once per process)


def span_in_task(name: str) -> tuple[str, str | None]:
    """Open a span as the task's own code would, with OpenTelemetry set up in the
    process it runs in; its (trace id, parent span id) in hex."""
    if not _TRACER:
        _TRACER.append(TracerProvider().get_tracer("user-code"))
    with _TRACER[0].start_as_current_span(name) as span:
        pass
    parent = span.parent
    return format(span.context.trace_id, "032x"), (
        format(parent.span_id, "016x") if parent is not None else None
    )


@nc.task(retry=nc.Retry(initial="10ms", max_attempts=2))
def otel_declines(order: str) -> None:
    raise ValueError(f"declined {order}")


@nc.task
def otel_packs(order: str) -> str:
    return f"packed {order}"


@nc.workflow
async def otel_order(order: str) -> str:
    packed = await otel_packs(order)
    try:
        await otel_declines(order)
    except nc.TaskFailed:
        return f"{packed}, unpaid"
    return packed


@nc.workflow
async def otel_fails() -> None:
    await otel_declines("B")


@pytest.fixture
def otel(tmp_path):
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    engine = Engine(tmp_path / "h.duckdb", make_default=False)
    stop = instrument(engine, tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield engine, exporter, reader
    stop()
    engine.stop()


@pytest.fixture
def otel_procs(tmp_path):
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    runner = ProcessRunner(max_workers=1, stop_grace=1.0)
    engine = Engine(tmp_path / "h.duckdb", runners={"otel_proc": runner}, make_default=False)
    stop = instrument(engine, tracer_provider=tracer_provider)
    yield engine, exporter
    stop()
    engine.stop()
    runner.shutdown()


def _spans(exporter, count):
    return wait_for(
        lambda: (spans := exporter.get_finished_spans()) and len(spans) >= count and spans,
        20,
        f"{count} spans",
    )


def test_a_span_per_execution_and_per_attempt_with_retries_and_errors(otel):
    engine, exporter, reader = otel
    handle = engine.start(otel_order, "A")
    assert handle.result(timeout=20) == "packed A, unpaid"
    spans = _spans(exporter, 4)
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (execution,) = by_name["workflow otel_order"]
    assert execution.attributes["nbconductor.execution_id"] == handle.id
    assert execution.attributes["nbconductor.status"] == "completed"
    (packs,) = by_name["task otel_packs"]
    declines = sorted(
        by_name["task otel_declines"], key=lambda s: s.attributes["nbconductor.attempt"]
    )
    assert [s.attributes["nbconductor.attempt"] for s in declines] == [1, 2]
    assert [s.attributes["nbconductor.retry"] for s in declines] == [True, False]
    for span in (packs, *declines):  # children of the execution's span, in its trace
        assert span.parent.span_id == execution.context.span_id
        assert span.context.trace_id == execution.context.trace_id
        assert execution.start_time <= span.start_time <= span.end_time <= execution.end_time
    failed = declines[-1]
    assert failed.status.status_code is StatusCode.ERROR
    (exception,) = [e for e in failed.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "ValueError"
    assert exception.attributes["exception.message"] == "declined A"
    assert "Traceback" in exception.attributes["exception.stacktrace"]
    assert packs.status.status_code is StatusCode.UNSET

    points = {
        (m.name, tuple(sorted(p.attributes.items()))): p.value
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name != "nbconductor.commit.duration"  # a histogram: no single value
        for p in m.data.data_points
    }
    assert points[("nbconductor.executions.started", (("workflow", "otel_order"),))] == 1
    assert points[("nbconductor.executions.closed", (("status", "completed"),))] == 1
    failed_attempts = (("outcome", "failed"), ("task", "otel_declines"))
    assert points[("nbconductor.task.attempts", failed_attempts)] == 2


def test_a_failed_execution_span_carries_the_error(otel):
    engine, exporter, _ = otel
    with pytest.raises(nc.ExecutionFailed):
        engine.start(otel_fails).result(timeout=20)
    spans = _spans(exporter, 3)
    (execution,) = [s for s in spans if s.name == "workflow otel_fails"]
    assert execution.status.status_code is StatusCode.ERROR
    (exception,) = [e for e in execution.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "TaskFailed"


def test_commit_latency_is_a_histogram_of_seconds_per_transaction(otel):
    engine, _, reader = otel
    seen = []
    unwatch = engine.watch_commits(lambda seconds, events: seen.append((seconds, events)))
    assert engine.start(otel_order, "C").result(timeout=20) == "packed C, unpaid"
    unwatch()
    assert seen and all(0 < seconds < 10 and events >= 0 for seconds, events in seen)
    # started, 2 scheduled, 1 completed, 2 failed attempts, closed: all before the result
    assert sum(events for _, events in seen) == 7
    (metric,) = [
        m
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "nbconductor.commit.duration"
    ]
    assert metric.unit == "s"
    (point,) = metric.data.data_points
    assert point.count >= len(seen)
    assert 0 < point.sum < 10 * point.count


def test_without_instrumenting_nothing_of_opentelemetry_is_imported():
    probe = "import sys, nbconductor; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@nc.task(runner="otel_proc")
def otel_in_child() -> tuple:
    return span_in_task("inside the child")


@nc.task
def otel_on_thread() -> tuple:
    return span_in_task("inside the thread")


@nc.workflow
async def otel_across_runners() -> list:
    return [await otel_in_child(), await otel_on_thread()]


def test_a_span_a_task_opens_on_another_process_is_a_child_of_its_attempt(otel_procs):
    engine, exporter = otel_procs
    h = engine.start(otel_across_runners)
    (child_trace, child_parent), (thread_trace, thread_parent) = h.result(timeout=60)
    spans = _spans(exporter, 3)
    (execution,) = [s for s in spans if s.name == "workflow otel_across_runners"]
    (in_child,) = [s for s in spans if s.name == "task otel_in_child"]
    (on_thread,) = [s for s in spans if s.name == "task otel_on_thread"]
    trace_id = format(execution.context.trace_id, "032x")
    # The W3C traceparent went with the attempt to the child process (and thread).
    assert (child_trace, child_parent) == (trace_id, format(in_child.context.span_id, "016x"))
    assert (thread_trace, thread_parent) == (trace_id, format(on_thread.context.span_id, "016x"))
    assert in_child.attributes["nbconductor.runner"] == "otel_proc"
    assert in_child.attributes["nbconductor.worker"].startswith("pid ")
    assert in_child.parent.span_id == execution.context.span_id


def test_without_instrumenting_an_attempt_carries_no_trace_context(tmp_path):
    runner = ProcessRunner(max_workers=1, stop_grace=1.0)
    engine = Engine(tmp_path / "h.duckdb", runners={"otel_proc": runner}, make_default=False)
    try:
        (_, parent), _ = engine.start(otel_across_runners).result(timeout=60)
        assert parent is None  # the task's span is a root: nothing was propagated
    finally:
        engine.stop()
        runner.shutdown()


OTEL_GATE = threading.Event()


@nc.task(queue="otel_one")
def otel_holds() -> None:
    OTEL_GATE.wait(30)


@nc.workflow
async def otel_queued(n: int) -> None:
    await nc.gather(*[otel_holds() for _ in range(n)])


def test_queue_depth_is_a_gauge_per_queue(otel):
    engine, _, reader = otel
    engine.queues.create("otel_one", concurrency=1)

    def gauges() -> dict:
        return {
            (m.name, dict(p.attributes)["queue"]): p.value
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name.startswith("nbconductor.queue.")
            for p in m.data.data_points
        }

    OTEL_GATE.clear()
    h = engine.start(otel_queued, 4)
    try:
        expected = {
            ("nbconductor.queue.waiting", "otel_one"): 3,
            ("nbconductor.queue.running", "otel_one"): 1,
        }
        wait_for(lambda: gauges() == expected, 20, "one running and three waiting")
    finally:
        OTEL_GATE.set()
    h.result(timeout=30)
    assert gauges()[("nbconductor.queue.waiting", "otel_one")] == 0
