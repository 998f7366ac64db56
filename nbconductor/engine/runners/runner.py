"""The one interface between the engine and whatever runs task attempts.

The engine submits an attempt (its encoded input, its identity, its options, hence its
deadlines) with an :class:`AttemptEvents` to report to; the runner reports
``started(worker)``, ``heartbeat(details, progress)`` and exactly one ``outcome``,
from any thread. ``stop`` asks a running attempt to stop: the engine has already
abandoned it, so whatever it still reports is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from nbconductor.engine.task_runner import Attempt, Outcome


class AttemptEvents(Protocol):
    """What a runner reports about an attempt; every method may be called on any thread."""

    now: Callable[[], datetime]  # the engine's clock

    def started(self, attempt: Attempt, worker: str) -> None:
        """The attempt's code started on ``worker`` (a thread, a pid, a Dask worker)."""

    def heartbeat(self, attempt: Attempt, details: Any, progress: float | None) -> None:
        """The task called ``nc.heartbeat()`` where it runs."""

    def outcome(self, outcome: Outcome) -> None:
        """The attempt ended: its result or what went wrong (reported exactly once)."""


class Runner(Protocol):
    """Runs task attempts somewhere and reports what happens to them."""

    def submit(self, attempt: Attempt, events: AttemptEvents) -> None:
        """Start ``attempt`` when there is room; never blocks the engine thread."""

    def stop(self, attempt: Attempt) -> None:
        """Ask a submitted attempt to stop (``nc.cancelled()`` turns true where it runs)."""

    def shutdown(self) -> None:
        """Release threads, processes or clients; must not wait for running attempts."""
