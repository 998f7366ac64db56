"""The W3C trace context an attempt carries (``traceparent``), made current where the
attempt runs, so that a span the task opens is a child of its attempt's span.

An engine instrumented with OpenTelemetry (:mod:`nbconductor.telemetry`) gives each
attempt a carrier when it is dispatched; the process and Dask runners ship it with the
attempt. Where the attempt runs, the context is attached only if a carrier came and
OpenTelemetry is installed there: otherwise nothing of it is imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def attached(carrier: dict[str, str] | None) -> Iterator[None]:
    """Within the block, the context ``carrier`` (W3C ``traceparent``) is the current
    OpenTelemetry context; without a carrier or OpenTelemetry, nothing happens."""
    if not carrier:
        yield
        return
    try:
        from opentelemetry import context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:  # not installed where the task runs: nobody to tell
        yield
        return
    token = context.attach(TraceContextTextMapPropagator().extract(carrier))
    try:
        yield
    finally:
        context.detach(token)
