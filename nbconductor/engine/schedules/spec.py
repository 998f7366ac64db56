"""A schedule's definition: what to start, when, and its overlap and catch-up policies.

:class:`ScheduleSpec` is validated on construction (so an invalid one cannot
exist), built from what users write by :meth:`ScheduleSpec.create`, and
round-trips through plain JSON for the ``schedules`` table. The decisions taken
from it live in :mod:`nbconductor.engine.schedules.policy`; the semantics are
documented for users in ``docs/schedules.md``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nbconductor.engine.duration import parse_duration
from nbconductor.engine.schedules.cron import (
    EPOCH,
    MINIMUM_INTERVAL,
    CronTrigger,
    IntervalTrigger,
    Trigger,
    format_instant,
    load_zone,
    resolve_local,
    to_utc,
)
from nbconductor.errors import InvalidDuration, ScheduleError, WorkflowNotRegistered

__all__ = (
    "CATCHUP_POLICIES",
    "DEFAULT_CATCHUP_WINDOW",
    "OVERLAP_POLICIES",
    "ScheduleSpec",
    "check_schedule_id",
)

OVERLAP_POLICIES = (
    "skip",
    "buffer_one",
    "buffer_all",
    "cancel_other",
    "terminate_other",
    "allow_all",
)
CATCHUP_POLICIES = ("none", "latest", "all")
DEFAULT_CATCHUP_WINDOW = 86400.0
"""One day: missed fires older than this are skipped unless the schedule says otherwise."""

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
_FORMAT = 1
_ONE_MICROSECOND = timedelta(microseconds=1)


# --- the schedule ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """A validated schedule. Build one with :meth:`create`; change one with :meth:`update`.

    Exactly one of ``cron`` (an expression read in ``timezone``) and ``every`` (an
    interval in seconds, counted from ``start_at`` or else the Unix epoch) is set.
    ``jitter`` and ``catchup_window`` are seconds (``catchup_window`` None: no
    limit); ``start_at``/``end_at`` are UTC instants bounding the fires
    (both inclusive). ``trigger`` is derived from the rest.
    """

    id: str
    workflow: str
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    args: tuple = field(default=(), hash=False)
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    jitter: float = 0.0
    overlap: str = "skip"
    catchup: str = "latest"
    catchup_window: float | None = DEFAULT_CATCHUP_WINDOW
    start_at: datetime | None = None
    end_at: datetime | None = None
    paused: bool = False
    note: str = ""
    trigger: Trigger = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Checked here, not only in create(), so that no invalid spec can exist.
        check_schedule_id(self.id)
        if not isinstance(self.workflow, str) or not self.workflow.strip():
            raise ScheduleError(
                f"schedule {self.id!r}: workflow {self.workflow!r} is not a workflow name"
            )
        if (self.cron is None) == (self.every is None):
            given = "both" if self.cron is not None else "neither"
            raise ScheduleError(
                f"schedule {self.id!r}: give exactly one of cron= (e.g. '0 9 * * MON-FRI') "
                f"and every= (e.g. '15 minutes'); {given} was given"
            )
        _check_choice(self.id, "overlap", self.overlap, OVERLAP_POLICIES)
        _check_choice(self.id, "catchup", self.catchup, CATCHUP_POLICIES)
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter < math.inf:
            raise ScheduleError(f"schedule {self.id!r}: jitter {self.jitter!r} must be >= 0")
        window = self.catchup_window
        if window is not None and (not isinstance(window, (int, float)) or not window >= 0):
            raise ScheduleError(
                f"schedule {self.id!r}: catchup_window {window!r} must be >= 0 or None"
            )
        for name in ("start_at", "end_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, to_utc(value, f"schedule {self.id!r}: {name}"))
        if self.start_at and self.end_at and self.end_at < self.start_at:
            raise ScheduleError(
                f"schedule {self.id!r}: end_at {format_instant(self.end_at)} is before "
                f"start_at {format_instant(self.start_at)}; end_at must be at or after start_at"
            )
        if not isinstance(self.args, tuple) or not isinstance(self.kwargs, dict):
            raise ScheduleError(
                f"schedule {self.id!r}: args must be a tuple and kwargs a dict, "
                f"not {type(self.args).__name__} and {type(self.kwargs).__name__}"
            )
        if not all(isinstance(key, str) for key in self.kwargs):
            raise ScheduleError(f"schedule {self.id!r}: kwargs keys must be strings")
        if not isinstance(self.paused, bool) or not isinstance(self.note, str):
            raise ScheduleError(f"schedule {self.id!r}: paused must be a bool and note a str")
        # An interval schedule has a zone too: describe() shows its fires in local time.
        zone = load_zone(self.timezone)
        trigger: Trigger
        if self.cron is not None:
            trigger = CronTrigger(self.cron, zone)
            object.__setattr__(self, "cron", trigger.expression)
        else:
            trigger = IntervalTrigger(self.every, self.start_at or EPOCH)
            object.__setattr__(self, "every", trigger.every_seconds)
        object.__setattr__(self, "timezone", zone.key)
        object.__setattr__(self, "trigger", trigger)

    @classmethod
    def create(
        cls,
        id: str,
        workflow: str,
        *,
        cron: str | None = None,
        every: float | timedelta | str | None = None,
        timezone: str = "UTC",
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        jitter: float | timedelta | str = 0,
        overlap: str = "skip",
        catchup: str = "latest",
        catchup_window: float | timedelta | str | None = DEFAULT_CATCHUP_WINDOW,
        start_at: datetime | str | None = None,
        end_at: datetime | str | None = None,
        paused: bool = False,
        note: str = "",
        known_workflows: Collection[str] | None = None,
    ) -> ScheduleSpec:
        """Validate the arguments as users write them and return the schedule.

        Durations take seconds, a ``timedelta`` or text (``"30s"``, ``"1h"``).
        ``start_at``/``end_at`` take aware datetimes or ISO 8601 text; a naive one
        is read as wall-clock time in ``timezone`` (with the DST rules of
        :func:`~nbconductor.engine.schedules.cron.resolve_local`). With ``known_workflows``,
        the workflow name must be one of them.

        Example:
            >>> spec = ScheduleSpec.create(
            ...     "daily-report", "report", cron="0 9 * * MON-FRI",
            ...     timezone="Europe/Paris", jitter="30s", catchup_window="1h",
            ... )
            >>> spec.jitter, spec.catchup_window
            (30.0, 3600.0)

        Raises:
            ScheduleError: naming the bad value and what is expected.
            WorkflowNotRegistered: if ``workflow`` is not in ``known_workflows``.
        """
        check_schedule_id(id)
        where = f"schedule {id!r}"
        if known_workflows is not None and workflow not in known_workflows:
            close = difflib.get_close_matches(str(workflow), list(known_workflows), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(known_workflows)) or "none"
            raise WorkflowNotRegistered(
                f"{where}: no workflow named {workflow!r} is registered{hint} "
                f"(registered: {known}); run the cell that defines it first"
            )
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
            raise ScheduleError(f"{where}: args {args!r} must be a list or tuple")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise ScheduleError(f"{where}: kwargs {kwargs!r} must be a dict")
        if cron is not None and every is not None:
            # Say it before parsing either, whatever their values.
            raise ScheduleError(
                f"{where}: give exactly one of cron= and every=; both were given "
                f"(cron={cron!r}, every={every!r})"
            )
        seconds = None if every is None else _seconds(every, f"{where}: every")
        if seconds is not None and seconds < MINIMUM_INTERVAL:
            # Checked again by the trigger; here the message can quote what was written.
            raise ScheduleError(
                f"{where}: every: {every!r} is too short; the shortest interval is "
                f"{MINIMUM_INTERVAL:g} second (each fire starts a durable execution)"
            )
        zone_name = load_zone(timezone).key
        return cls(
            id=id,
            workflow=workflow,
            cron=cron,
            every=seconds,
            timezone=zone_name,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            jitter=_seconds(jitter, f"{where}: jitter"),
            overlap=overlap,
            catchup=catchup,
            catchup_window=None
            if catchup_window is None
            else _seconds(catchup_window, f"{where}: catchup_window"),
            start_at=_instant(start_at, zone_name, f"{where}: start_at"),
            end_at=_instant(end_at, zone_name, f"{where}: end_at"),
            paused=paused,
            note=note,
        )

    def update(self, **changes: Any) -> ScheduleSpec:
        """Return a new, validated spec with ``changes`` applied (same names as :meth:`create`).

        Setting ``cron`` clears ``every`` and the other way round, unless both are given.

        Raises:
            ScheduleError: for an unknown field, a changed id, or an invalid value.
        """
        current = self._fields()
        unknown = set(changes) - set(current) - {"known_workflows"}
        if unknown:
            raise ScheduleError(
                f"schedule {self.id!r}: cannot update {', '.join(sorted(unknown))}; "
                f"the fields are {', '.join(sorted(current))}"
            )
        if "id" in changes and changes["id"] != self.id:
            raise ScheduleError(
                f"schedule {self.id!r}: the id cannot change (to {changes['id']!r}); "
                "delete the schedule and create a new one"
            )
        if changes.get("cron") is not None and "every" not in changes:
            current["every"] = None
        if changes.get("every") is not None and "cron" not in changes:
            current["cron"] = None
        current.update(changes)
        return ScheduleSpec.create(**current)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (args and kwargs as given), for the ``schedules`` table.

        ``args`` and ``kwargs`` are passed through unchanged: they are plain JSON
        when the workflow's arguments are; richer values need the payload codec.
        """
        return {
            "format": _FORMAT,
            **self._fields(),
            "args": list(self.args),
            "start_at": None if self.start_at is None else format_instant(self.start_at),
            "end_at": None if self.end_at is None else format_instant(self.end_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScheduleSpec:
        """Rebuild (and re-validate) a spec from :meth:`to_dict`'s output.

        Raises:
            ScheduleError: for an unknown format version or unknown keys.
        """
        values = dict(data)
        version = values.pop("format", _FORMAT)
        if version != _FORMAT:
            raise ScheduleError(
                f"schedule data has format {version!r}; this nbconductor reads format "
                f"{_FORMAT}: upgrade nbconductor"
            )
        unknown = set(values) - (set(cls.__dataclass_fields__) - {"trigger"})
        if unknown:
            raise ScheduleError(f"schedule data has unknown keys: {', '.join(sorted(unknown))}")
        return cls.create(**values)

    def _fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "cron": self.cron,
            "every": self.every,
            "timezone": self.timezone,
            "args": self.args,
            "kwargs": dict(self.kwargs),
            "jitter": self.jitter,
            "overlap": self.overlap,
            "catchup": self.catchup,
            "catchup_window": self.catchup_window,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "paused": self.paused,
            "note": self.note,
        }


def _seconds(value: float | timedelta | str, what: str) -> float:
    # One exception type for every invalid schedule, so that callers (and the
    # UI) catch ScheduleError alone; the duration parser's message is kept.
    try:
        return parse_duration(value, what=what)
    except InvalidDuration as exc:
        raise ScheduleError(str(exc)) from exc


def check_schedule_id(schedule_id: object) -> None:
    """Raise a ScheduleError unless ``schedule_id`` is 1-200 of ``A-Z a-z 0-9 - _ . :``."""
    if not isinstance(schedule_id, str) or not _ID_RE.match(schedule_id):
        raise ScheduleError(
            f"schedule id {schedule_id!r} is not valid; use 1 to 200 letters, digits "
            "and - _ . : (e.g. 'daily-report')"
        )


def _check_choice(schedule_id: str, name: str, value: object, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ScheduleError(
            f"schedule {schedule_id!r}: unknown {name} policy {value!r}; "
            f"choose one of {', '.join(valid)}"
        )


def _instant(value: datetime | str | None, zone_name: str, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ScheduleError(
                f"{what}: cannot read {value!r} as a time; write ISO 8601 such as "
                "'2026-11-23T09:00:00+01:00' or pass a datetime"
            ) from None
    if not isinstance(value, datetime):
        raise ScheduleError(f"{what}: {value!r} is not a datetime or ISO 8601 text")
    if value.tzinfo is None:
        return resolve_local(value, load_zone(zone_name))
    return to_utc(value, what)
