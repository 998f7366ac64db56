"""Optional OpenTelemetry traces and metrics: ``pip install "nbconductor[otel]"``.

:func:`instrument` follows an engine's committed history and turns it into spans and
metrics: nothing here is imported by ``import nbconductor``, and the engine runs no
telemetry code unless it is instrumented.

- :mod:`~nbconductor.telemetry.otel`: :func:`instrument`.
"""

from __future__ import annotations

from nbconductor.telemetry.otel import instrument

__all__ = ("instrument",)
