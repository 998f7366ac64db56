"""What a schedule decides, as pure functions of the time passed in.

:class:`ScheduleSpec` (defined in :mod:`nbconductor.engine.schedules.spec`,
re-exported here) holds a validated schedule. The decision functions hold no
state and read no clock; the engine keeps the state (the last
nominal time it handled, the open and buffered runs) and asks:

- :func:`due_fires`: which nominal fire times to start now (catch-up, window, pause);
- :func:`next_fire`: when to wake up next;
- :func:`overlap_decision`: what to do with a fire while an earlier run is open;
- :func:`fire_id` and :func:`jitter_offset`: the execution id and start delay of a
  fire, both derived from the schedule id and the nominal time only, so a crash
  right after firing never starts a duplicate;
- :func:`describe`: the next fire times and a plain-words account of the policies.

The semantics are documented for users in ``docs/schedules.md``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from nbconductor.engine.duration import format_duration
from nbconductor.engine.schedules.cron import format_instant, load_zone, to_utc
from nbconductor.engine.schedules.spec import (
    CATCHUP_POLICIES,
    DEFAULT_CATCHUP_WINDOW,
    OVERLAP_POLICIES,
    ScheduleSpec,
    check_schedule_id,
)
from nbconductor.errors import ScheduleError

__all__ = (
    "CATCHUP_POLICIES",
    "DEFAULT_CATCHUP_WINDOW",
    "MAX_FIRES_PER_CALL",
    "ON_TIME_GRACE",
    "OVERLAP_POLICIES",
    "Decision",
    "ScheduleDescription",
    "ScheduleSpec",
    "UpcomingFire",
    "describe",
    "due_fires",
    "fire_id",
    "jitter_offset",
    "next_fire",
    "overlap_decision",
    "release_buffered",
)

ON_TIME_GRACE = 60.0
"""Seconds a fire may be late and still count as on time rather than missed."""
MAX_FIRES_PER_CALL = 1000
"""At most this many fires come back from one :func:`due_fires` call (oldest first)."""

_ONE_MICROSECOND = timedelta(microseconds=1)


# --- identities ------------------------------------------------------------------------


def fire_id(schedule_id: str, nominal: datetime) -> str:
    """The execution id of a schedule's fire: ``"{schedule_id}@{nominal in UTC}"``.

    Example:
        >>> from datetime import timezone
        >>> fire_id("daily-report", datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc))
        'daily-report@2026-11-23T08:00:00Z'
    """
    check_schedule_id(schedule_id)
    return f"{schedule_id}@{format_instant(nominal)}"


def jitter_offset(schedule_id: str, nominal: datetime, jitter_seconds: float) -> float:
    """The start delay of a fire, in ``[0, jitter_seconds)``, the same on every call.

    Derived from a hash of :func:`fire_id`, so a restarted engine delays a fire
    by the same amount, and different schedules firing together spread out.
    """
    if jitter_seconds < 0:
        raise ScheduleError(f"jitter {jitter_seconds!r} must be >= 0")
    if jitter_seconds == 0:
        return 0.0
    digest = hashlib.sha256(fire_id(schedule_id, nominal).encode()).digest()
    fraction = (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)  # [0, 1)
    # The product can round up to jitter_seconds itself; keep the interval half-open.
    return min(fraction * jitter_seconds, math.nextafter(jitter_seconds, 0.0))


# --- when to fire ----------------------------------------------------------------------


def next_fire(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first nominal fire strictly after ``after`` within start_at/end_at, or None.

    Pausing does not change the answer: a paused schedule still shows what it
    would do; :func:`due_fires` is what starts nothing.
    """
    after = to_utc(after, "after")
    if spec.start_at is not None and after < spec.start_at:
        after = spec.start_at - _ONE_MICROSECOND  # start_at itself may fire
    fire = spec.trigger.next_after(after)
    if spec.end_at is not None and fire > spec.end_at:
        return None
    return fire


def due_fires(
    spec: ScheduleSpec,
    last_nominal: datetime | None,
    now: datetime,
    *,
    grace: float = ON_TIME_GRACE,
    limit: int = MAX_FIRES_PER_CALL,
) -> list[datetime]:
    """The nominal fire times to start at ``now``, oldest first.

    ``last_nominal`` is where the previous call left off: the latest nominal time
    the caller has handled (started, buffered or skipped). For a schedule that
    never fired, pass the time it was created; on resume, the time it was resumed
    (fires missed while paused are not caught up). ``None`` means "no history":
    only on-time fires count. The caller then sets ``last_nominal`` to the last
    time returned; with no time returned it may keep it, as the answer does not
    change until a new fire is due.

    A fire at most ``grace`` seconds old is *on time*; older ones were *missed*
    (the kernel was closed, or the engine stopped). Then, by ``spec.catchup``:

    - ``none``: only the on-time fires;
    - ``latest``: one fire, the most recent one due (on time or missed within
      ``catchup_window``); the older ones are skipped;
    - ``all``: every fire due within ``catchup_window`` (never less than
      ``grace``), oldest first, at most ``limit`` per call.

    Paused schedules return nothing; fires outside start_at/end_at do not exist.
    """
    now = to_utc(now, "now")
    if spec.paused:
        return []
    # ``lower`` is an exclusive bound; the microsecond makes "at most N seconds
    # old" and "from start_at" inclusive.
    floor = now - timedelta(seconds=grace) - _ONE_MICROSECOND
    lower = floor if last_nominal is None else to_utc(last_nominal, "last_nominal")
    if spec.start_at is not None:
        lower = max(lower, spec.start_at - _ONE_MICROSECOND)
    if spec.catchup == "none":
        lower = max(lower, floor)
    elif spec.catchup_window is not None:
        oldest = now - timedelta(seconds=max(spec.catchup_window, grace))
        lower = max(lower, oldest - _ONE_MICROSECOND)
    until = now if spec.end_at is None else min(now, spec.end_at)
    if until <= lower:
        return []
    if spec.catchup == "latest":
        latest = spec.trigger.last_between(lower, until)
        return [] if latest is None else [latest]
    return list(spec.trigger.fires_between(lower, until, limit=limit))


# --- overlapping runs ------------------------------------------------------------------


class Decision(str, Enum):
    """What to do with a due fire, given the schedule's runs that are still open."""

    START = "start"
    """Start this fire's execution now."""
    SKIP = "skip"
    """Do not start it; it is recorded as skipped."""
    BUFFER = "buffer"
    """Keep it; start it when the open runs (and earlier buffered fires) are done."""
    CANCEL_THEN_START = "cancel_then_start"
    """Request cancellation of the open runs; start this fire once they have closed."""
    TERMINATE_THEN_START = "terminate_then_start"
    """Terminate the open runs (no more of their code runs), then start this fire."""


def overlap_decision(policy: str, open_runs: int, buffered: int) -> Decision:
    """Decide what a due fire does, given the schedule's open runs and buffered fires.

    With no open run and nothing buffered every policy starts the fire. Otherwise:
    ``skip`` skips; ``buffer_one`` buffers it when nothing is buffered yet and
    skips it otherwise (at most one waits); ``buffer_all`` buffers it (fires then
    start one at a time, in order); ``cancel_other`` / ``terminate_other`` end the
    open runs and then start it; ``allow_all`` starts it.

    Raises:
        ScheduleError: for an unknown policy or a negative count.
    """
    if policy not in OVERLAP_POLICIES:
        raise ScheduleError(
            f"unknown overlap policy {policy!r}; choose one of {', '.join(OVERLAP_POLICIES)}"
        )
    if open_runs < 0 or buffered < 0:
        raise ScheduleError(f"open_runs ({open_runs}) and buffered ({buffered}) must be >= 0")
    if policy == "allow_all" or (open_runs == 0 and buffered == 0):
        return Decision.START
    if policy == "buffer_one":
        return Decision.BUFFER if buffered == 0 else Decision.SKIP
    if policy == "buffer_all":
        return Decision.BUFFER
    if open_runs == 0:
        # Buffered fires left over from an earlier buffering policy (the policy
        # was updated); nothing is open, so nothing to wait for or to end.
        return Decision.START
    if policy == "cancel_other":
        return Decision.CANCEL_THEN_START
    if policy == "terminate_other":
        return Decision.TERMINATE_THEN_START
    return Decision.SKIP


def release_buffered(open_runs: int, buffered: int) -> int:
    """How many buffered fires to start now: the oldest one, once nothing is open."""
    return 1 if open_runs == 0 and buffered > 0 else 0


# --- description -----------------------------------------------------------------------


@dataclass(frozen=True)
class UpcomingFire:
    """One future fire: nominal time (UTC and local), execution id and jittered start."""

    nominal: datetime
    local: datetime
    execution_id: str
    starts_at: datetime

    def to_dict(self) -> dict[str, str]:
        """Plain JSON values for the UI."""
        return {
            "nominal": format_instant(self.nominal),
            "local": self.local.isoformat(),
            "execution_id": self.execution_id,
            "starts_at": format_instant(self.starts_at),
        }


@dataclass(frozen=True)
class ScheduleDescription:
    """What :func:`describe` returns: the trigger, the next fires and an explanation."""

    schedule_id: str
    workflow: str
    trigger: str
    timezone: str
    paused: bool
    upcoming: tuple[UpcomingFire, ...]
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values for the UI."""
        return {
            "schedule_id": self.schedule_id,
            "workflow": self.workflow,
            "trigger": self.trigger,
            "timezone": self.timezone,
            "paused": self.paused,
            "upcoming": [fire.to_dict() for fire in self.upcoming],
            "explanation": self.explanation,
        }


_OVERLAP_TEXT = {
    "skip": "If the previous run is still open when a fire is due, that fire is skipped.",
    "buffer_one": (
        "If the previous run is still open when a fire is due, the fire waits and starts "
        "when that run closes; only one fire waits, later ones are skipped meanwhile."
    ),
    "buffer_all": (
        "If the previous run is still open when a fire is due, the fire waits; waiting "
        "fires start one at a time, in order, as runs close."
    ),
    "cancel_other": (
        "If the previous run is still open when a fire is due, that run is cancelled "
        "(it may clean up) and the new run starts once it has closed."
    ),
    "terminate_other": (
        "If the previous run is still open when a fire is due, that run is terminated "
        "(none of its code runs any more) and the new run starts."
    ),
    "allow_all": "Runs may overlap: every fire starts a run, whatever is still open.",
}


def _catchup_text(spec: ScheduleSpec, grace: float) -> str:
    window = (
        "however long ago"
        if spec.catchup_window is None
        else f"if it is at most {format_duration(max(spec.catchup_window, grace))} old"
    )
    if spec.catchup == "none":
        return (
            f"Fires missed while the kernel was closed are skipped: a fire starts only if "
            f"it is at most {format_duration(grace)} late."
        )
    if spec.catchup == "latest":
        return (
            "After downtime, only the most recent missed fire starts, "
            f"{window}; older missed fires are skipped."
        )
    span = (
        "however long ago"
        if spec.catchup_window is None
        else f"in the last {format_duration(max(spec.catchup_window, grace))}"
    )
    return f"After downtime, every fire missed {span} starts, oldest first; older ones are skipped."


def describe(
    spec: ScheduleSpec, now: datetime, n: int = 5, *, grace: float = ON_TIME_GRACE
) -> ScheduleDescription:
    """The next ``n`` fires after ``now`` and a one-paragraph account of the policies.

    Example:
        >>> from datetime import timezone
        >>> spec = ScheduleSpec.create("r", "report", cron="0 9 * * *", timezone="Europe/Paris")
        >>> d = describe(spec, datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc), n=1)
        >>> d.upcoming[0].local.isoformat()
        '2026-11-24T09:00:00+01:00'
    """
    zone = load_zone(spec.timezone)
    upcoming: list[UpcomingFire] = []
    cursor = to_utc(now, "now")
    while len(upcoming) < n:
        nominal = next_fire(spec, cursor)
        if nominal is None:
            break
        upcoming.append(
            UpcomingFire(
                nominal=nominal,
                local=nominal.astimezone(zone),
                execution_id=fire_id(spec.id, nominal),
                starts_at=nominal + timedelta(seconds=jitter_offset(spec.id, nominal, spec.jitter)),
            )
        )
        cursor = nominal
    parts = [f"Starts workflow {spec.workflow!r} on {spec.trigger.describe()}."]
    if spec.cron is not None and spec.timezone != "UTC":
        parts.append(
            "A local time skipped by a DST change fires at the end of the gap; "
            "a local time repeated by one fires once, at its first occurrence."
        )
    if spec.start_at or spec.end_at:
        window = " and ".join(
            text
            for text in (
                spec.start_at and f"from {format_instant(spec.start_at)}",
                spec.end_at and f"until {format_instant(spec.end_at)}",
            )
            if text
        )
        parts.append(f"It fires only {window}.")
    if spec.jitter:
        parts.append(
            f"Each start is delayed by up to {format_duration(spec.jitter)} "
            "(a fixed amount per fire)."
        )
    parts.append(_OVERLAP_TEXT[spec.overlap])
    parts.append(_catchup_text(spec, grace))
    if not upcoming:
        parts.append("It has no fires left.")
    if spec.paused:
        note = f" ({spec.note})" if spec.note else ""
        parts.append(f"It is paused{note}: nothing starts until it is resumed.")
    return ScheduleDescription(
        schedule_id=spec.id,
        workflow=spec.workflow,
        trigger=spec.trigger.describe(),
        timezone=spec.timezone,
        paused=spec.paused,
        upcoming=tuple(upcoming),
        explanation=" ".join(parts),
    )
