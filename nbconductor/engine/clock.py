"""Where the engine gets the time: the system clock, or a virtual one for tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime


class SystemClock:
    """Wall-clock time in UTC."""

    virtual = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to (or when a time-skipping engine is idle)."""

    virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            self._now = self._now.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        """Move forward to ``when``; never backwards."""
        with self._lock:
            if when > self._now:
                self._now = when
