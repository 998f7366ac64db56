"""What a task queue allows: pure values, parsed and checked here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from nbconductor.engine.duration import parse_duration
from nbconductor.errors import QueueError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,99}$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(.+?)\s*$")
_PERIODS = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip


def check_queue_name(name: object) -> str:
    """``name`` if it can name a queue; otherwise a clear error."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise QueueError(
            f"{name!r} is not a queue name: use letters, digits and '_.:-', starting with a "
            "letter or '_' (at most 100 characters)"
        )
    return name


def parse_rate(rate: str) -> tuple[int, float]:
    """``"60/minute"`` → (60, 60.0): at most that many starts per that many seconds.

    The period is a unit (second, minute, hour, day) or a duration (``"10/30s"``).

    Raises:
        QueueError: the rate cannot be read.
    """
    match = _RATE.match(rate) if isinstance(rate, str) else None
    if match is None:
        raise QueueError(
            f"rate={rate!r}: write starts per period, such as '60/minute', '20/second', "
            "'1000/hour' or '10/30s'"
        )
    limit, period_text = int(match.group(1)), match.group(2).lower()
    period = _PERIODS.get(period_text)
    if period is None:
        try:
            period = parse_duration(period_text, what=f"the period of rate={rate!r}")
        except Exception as exc:
            raise QueueError(str(exc)) from None
    if limit < 1 or period <= 0:
        raise QueueError(f"rate={rate!r}: the count and the period must both be above zero")
    return limit, period


@dataclass(frozen=True)
class QueueSpec:
    """A queue's limits. ``None`` means no limit of that kind.

    Attributes:
        name: how tasks name it (``@task(queue="llm")``).
        concurrency: attempts of its tasks running at once, at most.
        rate: attempts started per period, at most (``"60/minute"``), paced evenly:
            one start every period/count.
        burst: starts the rate lets through at once after a quiet spell (1: none).
    """

    name: str
    concurrency: int | None = None
    rate: str | None = None
    burst: int = 1

    @classmethod
    def create(
        cls,
        name: str,
        *,
        concurrency: int | None = None,
        rate: str | None = None,
        burst: int | None = None,
    ):
        """A checked spec.

        Raises:
            QueueError: a bad name, a concurrency or burst below 1, an unreadable rate,
                a burst without a rate.
        """
        check_queue_name(name)
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise QueueError(
                f"queue {name!r}: concurrency={concurrency!r} must be a whole number of 1 "
                "or more (or None for no limit)"
            )
        if rate is not None:
            parse_rate(rate)
        if burst is None:
            burst = 1
        elif isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise QueueError(
                f"queue {name!r}: burst={burst!r} must be a whole number of 1 or more "
                "(starts let through at once; 1 paces every start)"
            )
        elif burst > 1 and rate is None:
            raise QueueError(
                f"queue {name!r}: burst={burst} needs a rate to burst above (give rate=...)"
            )
        return cls(name, concurrency, rate, burst)

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """(starts, period seconds), or None without a rate limit."""
        return parse_rate(self.rate) if self.rate is not None else None

    @property
    def interval(self) -> float | None:
        """Seconds between two paced starts (period / count), or None without a rate."""
        limit = self.rate_limit
        return limit[1] / limit[0] if limit is not None else None

    def to_json(self) -> str:
        """The stored form (the ``spec`` column of the ``queues`` table)."""
        return json.dumps({"concurrency": self.concurrency, "rate": self.rate, "burst": self.burst})

    @classmethod
    def from_json(cls, name: str, text: str) -> QueueSpec:
        """A spec back from its stored form (one stored before bursts has burst 1)."""
        data = json.loads(text)
        return cls(name, data.get("concurrency"), data.get("rate"), data.get("burst") or 1)

    def describe(self) -> str:
        """``"concurrency 8, rate 60/minute"`` (or ``"no limits"``)."""
        parts = []
        if self.concurrency is not None:
            parts.append(f"concurrency {self.concurrency}")
        if self.rate is not None:
            parts.append(f"rate {self.rate}")
            if self.burst > 1:
                parts.append(f"burst {self.burst}")
        return ", ".join(parts) or "no limits"
