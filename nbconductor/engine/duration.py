"""Durations as users write them: seconds, ``timedelta`` or strings like ``"5 minutes"``."""

from __future__ import annotations

import re
from datetime import timedelta

from nbconductor.errors import InvalidDuration

_UNITS = {
    "ms": 0.001,
    "msec": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
# The longest duration anything accepts: 100 years. Far beyond any real wait, and far
# inside what datetime can add to now (year 9999), so no wait overflows a timestamp.
MAX_SECONDS = 36525 * 86400.0
RANGE = "zero or more, at most 100 years (3155760000 seconds)"

_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)\s*,?")


def parse_duration(value: float | int | timedelta | str, *, what: str = "duration") -> float:
    """Return ``value`` as a number of seconds (>= 0).

    Accepts a number of seconds, a ``timedelta``, or a string of one or more
    number-unit parts: ``"30s"``, ``"5 minutes"``, ``"1 day"``, ``"1h 30m"``, ``"250ms"``.

    Raises:
        InvalidDuration: naming ``what`` and the value, with the accepted forms.
    """
    if isinstance(value, bool):
        raise InvalidDuration(f"{what}: {value!r} is not a duration; use seconds or '30s'")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value, what)
    else:
        raise InvalidDuration(
            f"{what}: {value!r} ({type(value).__name__}) is not a duration; "
            "use seconds, a timedelta or a string like '30s', '5 minutes', '1 day'"
        )
    if seconds != seconds or seconds < 0 or seconds > MAX_SECONDS:
        raise InvalidDuration(f"{what}: {value!r} must be a finite duration of {RANGE}")
    return seconds


def check_delay(delay: float, *, what: str = "a timer") -> None:
    """Refuse a wait that is not a number of seconds within the allowed range.

    Negative delays are allowed (they fire at once, as asyncio's do).

    Raises:
        InvalidDuration: naming ``what`` and the delay, with the allowed range.
    """
    if not delay == delay or abs(delay) > MAX_SECONDS:  # NaN, infinities, overflow
        raise InvalidDuration(
            f"{what}: a wait of {delay!r} seconds is out of range; a duration is {RANGE}"
        )


def _parse_text(text: str, what: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    total, pos = 0.0, 0
    while pos < len(stripped):
        match = _PART.match(stripped, pos)
        if not match or match.group(2).lower() not in _UNITS:
            raise InvalidDuration(
                f"{what}: cannot read {text!r} as a duration; write a number and a unit "
                "such as '30s', '5 minutes', '1h 30m', '1 day' (units: ms, s, m, h, d, w)"
            )
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    if pos == 0:
        raise InvalidDuration(f"{what}: an empty string is not a duration; write e.g. '30s'")
    return total


def optional_duration(value, *, what: str) -> float | None:
    """Like :func:`parse_duration`, but ``None`` stays ``None`` (no limit)."""
    return None if value is None else parse_duration(value, what=what)


def format_duration(seconds: float) -> str:
    """A short human form: ``'250ms'``, ``'42s'``, ``'5m 3s'``, ``'2h 5m'``, ``'3d 4h'``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{round(seconds)}s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"
