"""What the status badge of an execution says, derived from the engine's live state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from nbconductor.storage.records import Status

__all__ = ("Badge", "badge_for")


@dataclass(frozen=True)
class Badge:
    """The label, colour tone and detail shown on an execution's status badge.

    Attributes:
        label: ``Running``, ``Waiting for signal``, ``Sleeping``, ``Completed``, ...
        tone: a key of :data:`nbconductor.widgets.markup.TONES`.
        detail: what it waits for (signal names, a condition); may be empty.
        until: when it sleeps or retries until, if it does.
    """

    label: str
    tone: str
    detail: str = ""
    until: datetime | None = None

    @property
    def closed(self) -> bool:
        return self.tone in _CLOSED_TONES


_CLOSED_TONES = {s.value for s in Status if s.closed}


def badge_for(
    status: Status | None,
    *,
    condition: str | None = None,
    waiting_signals: Sequence[str] = (),
    tasks: Sequence[dict] = (),
    open_timers: Sequence[datetime] = (),
) -> Badge:
    """The badge of an execution.

    Closed statuses come from the record. A running execution is, in this order of
    precedence: Blocked (its code raised outside its coroutine), Waiting for definition
    (not loaded yet), Waiting for signal, Retrying (a task waits to retry), Sleeping
    (an open timer and no task scheduled), else Running.

    Args:
        status: the record's status; None while the start is not recorded yet.
        condition: the live condition (``"blocked: ..."``, ``"waiting for ..."``).
        waiting_signals: signal names it awaits now.
        tasks: ``engine.progress_of(id)["tasks"]``.
        open_timers: due times of its timers that have not fired.

    Example:
        >>> badge_for(Status.RUNNING, waiting_signals=["approve"]).label
        'Waiting for signal'
    """
    if status is None:
        return Badge("Starting", "starting")
    if status.closed:
        return Badge(status.title, status.value)
    if condition and condition.startswith("blocked"):
        return Badge("Blocked", "blocked", condition.partition(":")[2].strip() or condition)
    if condition and condition.startswith("waiting"):
        return Badge("Waiting for definition", "waiting", condition)
    if waiting_signals:
        return Badge("Waiting for signal", "waiting", ", ".join(waiting_signals))
    retries = [t for t in tasks if t.get("retry_at") and not t.get("running")]
    if retries:
        first = min(retries, key=lambda t: t["retry_at"])
        due = datetime.fromtimestamp(first["retry_at"], UTC)
        return Badge("Retrying", "retrying", f"{first['task']} attempt {first['attempt']}", due)
    if open_timers and not tasks:
        return Badge("Sleeping", "sleeping", "", min(open_timers))
    return Badge("Running", "running")
