"""OpenTelemetry spans and metrics from a real engine, into the SDK's in-memory
exporter and reader."""

from __future__ import annotations

import subprocess
import sys

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
from nbconductor.telemetry import instrument
from nbconductor.testing import wait_for


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
