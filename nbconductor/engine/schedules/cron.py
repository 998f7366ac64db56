"""Triggers: the instants at which a schedule fires, computed without a clock.

Two kinds of trigger answer the same questions (:meth:`Trigger.next_after`,
:meth:`Trigger.fires_between`, :meth:`Trigger.last_between`), always with
timezone-aware UTC datetimes in and out, and always with the time passed in:

- :class:`CronTrigger` reads a five-field cron expression as *wall-clock* times
  in a time zone ("0 9 * * MON-FRI" in Europe/Paris is 09:00 Paris time, summer
  and winter).
- :class:`IntervalTrigger` fires every N seconds of *elapsed* time from an anchor
  instant; it never looks at a wall clock, so DST does not affect it.

This is the only module of the package that imports croniter, and only when a cron
expression is checked or iterated: ``import nbconductor`` does not pay for it (it
was a quarter of the import time). croniter is used
for one thing: the sequence of matching wall-clock times, computed on *naive*
datetimes. Turning a wall-clock time into an instant is done here, with
``zoneinfo``, so that the daylight-saving behaviour is ours and is fixed:

- **Spring forward (gap)**: a wall-clock time that does not exist that day
  fires once, at the first instant after the gap (the transition itself).
  Europe/Paris, 2026-03-29, ``30 2 * * *`` fires at 03:00 CEST (01:00 UTC).
  Several nominal times in one gap (``*/15 2 * * *``) collapse into that single
  fire. This is what cron (Vixie/ISC) and croniter do.
- **Fall back (overlap)**: a wall-clock time that occurs twice fires once, at its
  first occurrence. Europe/Paris, 2026-10-25, ``30 2 * * *`` fires at 02:30 CEST
  (00:30 UTC) and not again at 02:30 CET. The consequence for frequent
  expressions: ``0 * * * *`` does not fire during the repeated hour's second
  pass. croniter fires both occurrences; this module corrects that.

Both rules make the mapping from wall-clock time to instant non-decreasing, so
fire times are strictly increasing and every fire has a distinct instant (the
basis of deterministic fire ids).
"""

from __future__ import annotations

import difflib
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from nbconductor.engine.duration import format_duration, parse_duration
from nbconductor.errors import InvalidDuration, ScheduleError

if TYPE_CHECKING:
    from croniter import CroniterError

__all__ = (
    "EPOCH",
    "MINIMUM_INTERVAL",
    "UTC",
    "CronTrigger",
    "IntervalTrigger",
    "Trigger",
    "format_instant",
    "load_zone",
    "resolve_local",
    "to_utc",
)

UTC = UTC
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINIMUM_INTERVAL = 1.0
"""The shortest interval trigger, in seconds: every fire is a durable execution."""

_ZONE_EXAMPLES = "use an IANA name such as 'Europe/Paris', 'America/New_York' or 'UTC'"
_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L (last day) or 15W (nearest weekday)"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT (0 and 7 are Sunday), MON#2 or L5"),
)
_FIELD_FORM = "minute hour day-of-month month day-of-week"
# croniter splits fields on ASCII whitespace only; so do we, so that what we
# validate is exactly what croniter later parses.
_FIELD_RE = re.compile(r"\S+", re.ASCII)
# croniter's Jenkins-style 'H' (hashed) and 'R' (random) values.
_HASHED_RE = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
# Any expression that fires at all fires within croniter's 50-year search from here.
_PROBE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
# A range 'a-b' (names allowed) with an optional step; croniter reads a reversed range
# as wrapping round ('1-0' is every minute), which cron itself refuses.
_RANGE_RE = re.compile(r"^([0-9A-Za-z]+)-([0-9A-Za-z]+)(/\d+)?$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = {
    "month": {name: str(i) for i, name in enumerate(_MONTHS, 1)},
    "day-of-week": {name: str(i) for i, name in enumerate(_DAYS)},
}


# --- time zones and instants -----------------------------------------------------------


def load_zone(name: str | ZoneInfo) -> ZoneInfo:
    """Return the IANA time zone ``name`` (a ``ZoneInfo`` passes through).

    Raises:
        ScheduleError: naming the unknown zone, with a close match when there is one.
    """
    if isinstance(name, ZoneInfo):
        if name.key is None:
            raise ScheduleError(
                f"time zone {name!r} was loaded from a file and has no name; {_ZONE_EXAMPLES}"
            )
        name = name.key
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"time zone {name!r} is not a time zone name; {_ZONE_EXAMPLES}")
    if name == "localtime":
        # /etc/localtime differs between machines; a stored schedule must mean one thing.
        raise ScheduleError(
            "time zone 'localtime' depends on the machine and cannot be stored; " + _ZONE_EXAMPLES
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory such as 'Europe'; ValueError: malformed keys like '../x'.
        pass
    raise ScheduleError(f"unknown time zone {name!r}{_zone_hint(name)}; {_ZONE_EXAMPLES}")


@functools.lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {key.lower(): key for key in available_timezones()}


def _zone_hint(name: str) -> str:
    names = _zone_names()
    exact = names.get(name.strip().lower())
    if exact:
        return f" (did you mean {exact!r}?)"
    # 'Paris' -> 'Europe/Paris': people often write the city alone.
    cities = sorted(key for low, key in names.items() if low.rsplit("/", 1)[-1] == name.lower())
    if cities:
        return f" (did you mean {' or '.join(repr(city) for city in cities[:3])}?)"
    close = difflib.get_close_matches(name.strip().lower(), list(names), n=1, cutoff=0.75)
    return f" (did you mean {names[close[0]]!r}?)" if close else ""


def to_utc(value: datetime, what: str = "time") -> datetime:
    """Return the aware datetime ``value`` in UTC.

    Raises:
        ScheduleError: if ``value`` is not a datetime or is naive (a naive time has
            no single meaning across time zones).
    """
    if not isinstance(value, datetime):
        raise ScheduleError(f"{what}: {value!r} is not a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(
            f"{what}: {value!r} has no time zone; pass an aware datetime, "
            "e.g. datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)"
        )
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """``2026-11-23T08:00:00Z``: an instant in UTC, microseconds only when present."""
    utc = to_utc(value)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def resolve_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """Return the instant (UTC) at which the wall-clock time ``wall`` happens in ``zone``.

    ``wall``'s own ``tzinfo`` and ``fold`` are ignored. A time that occurs twice
    (fall back) resolves to its first occurrence; a time that does not exist
    (spring forward) resolves to the first instant after the gap.

    Example:
        >>> paris = ZoneInfo("Europe/Paris")
        >>> resolve_local(datetime(2026, 3, 29, 2, 30), paris).isoformat()
        '2026-03-29T01:00:00+00:00'
    """
    naive = wall.replace(tzinfo=None, fold=0)
    # fold=0 is the earlier reading of an ambiguous time (PEP 495).
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # In a gap, fold=0 reads the time with the offset from before the transition,
    # which lands after it, and fold=1 with the offset from after, which lands
    # before it. The transition is the first instant whose wall clock has passed
    # ``naive``; tzdata transitions fall on whole seconds, so bisect on seconds.
    low = int(naive.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp()) - 1
    high = int(first.timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) > naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


# --- triggers --------------------------------------------------------------------------


class Trigger(ABC):
    """When a schedule fires: a strictly increasing sequence of UTC instants."""

    @abstractmethod
    def next_after(self, t: datetime) -> datetime:
        """Return the first fire strictly after ``t`` (aware), in UTC."""

    @abstractmethod
    def describe(self) -> str:
        """A short human description, e.g. ``"cron '0 9 * * MON-FRI' in Europe/Paris"``."""

    def fires_between(
        self, after: datetime, until: datetime, limit: int | None = None
    ) -> Iterator[datetime]:
        """Yield the fires ``f`` with ``after < f <= until``, oldest first, at most ``limit``.

        Example:
            >>> t = CronTrigger("0 9 * * *", "UTC")
            >>> [f.hour for f in t.fires_between(EPOCH, EPOCH + timedelta(days=2))]
            [9, 9]
        """
        current, end = to_utc(after, "after"), to_utc(until, "until")
        count = 0
        while limit is None or count < limit:
            current = self.next_after(current)
            if current > end:
                return
            yield current
            count += 1

    def last_between(self, after: datetime, until: datetime) -> datetime | None:
        """Return the latest fire ``f`` with ``after < f <= until``, or None.

        Costs a few small searches however far apart ``after`` and ``until`` are,
        so catching up after a long downtime stays cheap.
        """
        lower, end = to_utc(after, "after"), to_utc(until, "until")
        span = timedelta(minutes=1)
        while True:
            # Search windows that double backwards from ``until``: the first window
            # holding a fire holds few of them, as the half after them was empty.
            start = max(lower, end - span)
            fires = list(self.fires_between(start, end))
            if fires or start <= lower:
                return fires[-1] if fires else None
            span *= 2


@dataclass(frozen=True)
class CronTrigger(Trigger):
    """Fires at the wall-clock times a five-field cron expression names, in a time zone.

    ``timezone`` is an IANA name or a ``ZoneInfo``; it is stored as the name.

    Fields: minute, hour, day-of-month, month, day-of-week, with ``*``, lists,
    ranges, steps, names (``JAN``, ``MON``), ``L``, ``W`` and ``#``, plus the
    aliases ``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
    ``@yearly``/``@annually``. When both day fields are restricted, a day matches
    either (classic cron). There is no seconds or year field: cron schedules
    have minute resolution; use :class:`IntervalTrigger` for shorter periods.
    Hashed and random values (``H``, ``R``) are refused: fire times must come out
    the same every time they are computed.

    Example:
        >>> t = CronTrigger("0 9 * * MON-FRI", "Europe/Paris")
        >>> t.next_after(datetime(2026, 11, 20, 12, 0, tzinfo=UTC)).isoformat()
        '2026-11-23T08:00:00+00:00'

    Raises:
        ScheduleError: for a bad expression (quoting it and naming the bad field)
            or an unknown time zone.
    """

    expression: str
    timezone: str = "UTC"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = load_zone(self.timezone)
        object.__setattr__(self, "expression", _check_expression(self.expression))
        object.__setattr__(self, "timezone", zone.key)
        object.__setattr__(self, "_zone", zone)
        try:
            self.next_after(_PROBE_FROM)
        except ScheduleError:
            raise ScheduleError(
                f"cron expression {self.expression!r} never fires; check that its "
                "day-of-month and month fields can meet"
            ) from None

    @property
    def zone(self) -> ZoneInfo:
        """The time zone the expression's wall-clock times are read in."""
        return self._zone

    def next_after(self, t: datetime) -> datetime:
        """Return the first fire strictly after ``t``, in UTC (see the module's DST rules)."""
        return next(self._instants(to_utc(t, "t")))

    def fires_between(
        self, after: datetime, until: datetime, limit: int | None = None
    ) -> Iterator[datetime]:
        """Yield the fires ``f`` with ``after < f <= until``, oldest first, at most ``limit``."""
        end = to_utc(until, "until")
        for count, instant in enumerate(self._instants(to_utc(after, "after"))):
            if instant > end or (limit is not None and count >= limit):
                return
            yield instant

    def describe(self) -> str:
        """``"cron '0 9 * * MON-FRI' in Europe/Paris"``."""
        return f"cron {self.expression!r} in {self.timezone}"

    def _instants(self, after: datetime) -> Iterator[datetime]:
        """Fire instants strictly after ``after`` (UTC), strictly increasing, endless."""
        from croniter import CroniterBadDateError, croniter

        wall = after.astimezone(self._zone).replace(tzinfo=None)
        # croniter gets naive wall-clock times, so it does pure calendar arithmetic
        # and its own DST handling (which fires repeated times twice) never runs.
        walls = croniter(self.expression, wall, ret_type=datetime)
        last = after
        while True:
            try:
                candidate = walls.get_next()
            except CroniterBadDateError:
                raise ScheduleError(
                    f"cron expression {self.expression!r} has no fire time within 50 years "
                    f"after {format_instant(last)}"
                ) from None
            instant = resolve_local(candidate, self._zone)
            # Equal instants: several gap times collapsed into one fire. Earlier
            # instants: ``after`` lies in the second pass of a repeated hour, whose
            # wall-clock times already fired on their first occurrence.
            if instant > last:
                last = instant
                yield instant


@dataclass(frozen=True)
class IntervalTrigger(Trigger):
    """Fires every ``every_seconds`` of elapsed time: at ``anchor + k * every`` for integer k.

    The default anchor, the Unix epoch, aligns fires to round times in UTC
    (``every="15 minutes"`` fires at :00, :15, :30, :45), independently of when
    the schedule was created. Elapsed time ignores time zones and DST: ``every=
    "1 day"`` is 24 hours, so in a DST zone its local time moves by an hour twice
    a year; use a cron expression for "every day at 09:00 local time".

    Example:
        >>> t = IntervalTrigger("15 minutes")
        >>> t.next_after(datetime(2026, 1, 5, 9, 7, tzinfo=UTC)).isoformat()
        '2026-01-05T09:15:00+00:00'

    Raises:
        ScheduleError: if ``every_seconds`` is not a duration or is shorter than
            :data:`MINIMUM_INTERVAL`, or if the anchor is naive.
    """

    every_seconds: float
    anchor: datetime = EPOCH
    _step: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            seconds = parse_duration(self.every_seconds, what="every")
        except InvalidDuration as exc:
            raise ScheduleError(str(exc)) from exc
        if seconds < MINIMUM_INTERVAL:
            raise ScheduleError(
                f"every: {self.every_seconds!r} is too short; the shortest interval is "
                f"{MINIMUM_INTERVAL:g} second (each fire starts a durable execution)"
            )
        step = timedelta(seconds=seconds)  # exact microseconds from here on: no drift
        object.__setattr__(self, "every_seconds", step.total_seconds())
        object.__setattr__(self, "anchor", to_utc(self.anchor, "anchor"))
        object.__setattr__(self, "_step", step)

    def next_after(self, t: datetime) -> datetime:
        """Return ``anchor + k * every`` for the smallest k that is strictly after ``t``."""
        periods = (to_utc(t, "t") - self.anchor) // self._step  # floor, also before anchor
        return self.anchor + (periods + 1) * self._step

    def last_between(self, after: datetime, until: datetime) -> datetime | None:
        """Return the latest fire ``f`` with ``after < f <= until``, or None."""
        periods = (to_utc(until, "until") - self.anchor) // self._step
        latest = self.anchor + periods * self._step
        return latest if latest > to_utc(after, "after") else None

    def describe(self) -> str:
        """``"every 15m"`` (with the anchor when it is not the epoch)."""
        text = f"every {format_duration(self.every_seconds)}"
        return text if self.anchor == EPOCH else f"{text} from {format_instant(self.anchor)}"


# --- cron expression checks ------------------------------------------------------------


def _check_expression(expression: object) -> str:
    """Return ``expression`` with its whitespace normalized, or raise a ScheduleError."""
    if not isinstance(expression, str):
        raise ScheduleError(
            f"cron expression {expression!r} is not a string; write e.g. '0 9 * * MON-FRI'"
        )
    fields = _FIELD_RE.findall(expression)
    text = " ".join(fields)
    if len(fields) == 1 and fields[0].startswith("@"):
        if fields[0].lower() not in _ALIASES:
            raise ScheduleError(
                f"cron expression {expression!r}: unknown alias {fields[0]!r}; "
                f"the aliases are {', '.join(_ALIASES)}"
            )
        return text
    if len(fields) != len(_FIELDS):
        raise ScheduleError(
            f"cron expression {expression!r} has {len(fields)} field"
            f"{'' if len(fields) == 1 else 's'}; expected 5: {_FIELD_FORM} "
            "(e.g. '0 9 * * MON-FRI'). Seconds and year fields are not supported; "
            "for periods under a minute use every= instead"
        )
    for (name, _allowed), value in zip(_FIELDS, fields, strict=True):
        if any(_HASHED_RE.match(part) for part in value.split(",")):
            raise ScheduleError(
                f"cron expression {expression!r}: {name} field {value!r} uses hashed or "
                "random values (H, R), which are not supported because fire times must "
                "be the same every time they are computed; write explicit values"
            )
    for (name, _allowed), value in zip(_FIELDS, fields, strict=True):
        _check_ranges(expression, name, value)
    from croniter import CroniterError, croniter

    for index, ((name, allowed), value) in enumerate(zip(_FIELDS, fields, strict=True)):
        # Check each field alone, the others '*', to say which field is wrong;
        # croniter's own message quotes the whole expression without saying.
        probe = ["*"] * len(_FIELDS)
        probe[index] = value
        try:
            croniter.expand(" ".join(probe))
        except CroniterError as exc:
            raise ScheduleError(
                f"cron expression {expression!r}: {name} field {value!r} is not valid"
                f"{_field_reason(exc)}; expected {allowed}, with lists (1,5), "
                "ranges (1-5) and steps (*/15)"
            ) from None
    try:
        # strict=True also refuses days the months never have ('0 0 31 2 *').
        croniter.expand(text, strict=True)
    except CroniterError as exc:
        reason = str(exc).rsplit("acceptable.", 1)[-1].strip() or str(exc)
        raise ScheduleError(f"cron expression {expression!r} is not valid: {reason}") from None
    return text


def _check_ranges(expression: str, name: str, value: str) -> None:
    """Refuse a reversed range such as '1-0' or 'FRI-MON', which cron does not wrap."""
    names = _NAMES.get(name, {})
    for part in value.split(","):
        match = _RANGE_RE.match(part)
        if not match:
            continue
        low, high = (names.get(v.upper(), v) for v in match.group(1, 2))
        if not (low.isdigit() and high.isdigit()):
            continue  # not numbers or known names: the check below names what is wrong
        if int(low) > int(high):
            a, b = match.group(1, 2)
            raise ScheduleError(
                f"cron expression {expression!r}: {name} field {value!r} has the reversed "
                f"range {a}-{b}; write it low to high ({b}-{a}), or as two ranges to wrap "
                "round (e.g. 22-23,0-2 for hours)"
            )


def _field_reason(exc: CroniterError) -> str:
    """A short reason from croniter's message, whose wording quotes the probe expression."""
    from croniter import CroniterUnsupportedSyntaxError

    message = str(exc)
    if isinstance(exc, CroniterUnsupportedSyntaxError):
        return " (plain days cannot be mixed with MON#2-style days)"
    if "out of range" in message or "out of bands" in message:
        return " (out of range)"
    if "step '0'" in message:
        return " (a step of 0)"
    return ""
