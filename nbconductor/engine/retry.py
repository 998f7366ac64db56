"""Retry policy for task attempts (Temporal's defaults)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from nbconductor.engine.duration import MAX_SECONDS, optional_duration, parse_duration
from nbconductor.errors import DefinitionError


@dataclass(frozen=True)
class Retry:
    """How a failed task attempt is retried.

    Args:
        initial: wait before the first retry (default 1 s).
        backoff: factor applied to the wait after each failure (default 2.0).
        max_interval: longest wait between attempts (default 100 × ``initial``).
        max_attempts: attempts in all, the first included; 0 means unlimited.
        non_retryable: exception type names (or types) that fail the task at once.

    Example:
        >>> Retry(initial="2s", max_attempts=5, non_retryable=[ValueError]).delay(3)
        8.0
    """

    initial: float | str | timedelta = 1.0
    backoff: float = 2.0
    max_interval: float | str | timedelta | None = None
    max_attempts: int = 0
    non_retryable: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        initial = parse_duration(self.initial, what="Retry(initial=...)")
        if initial <= 0:
            raise DefinitionError(f"Retry(initial={self.initial!r}) must be greater than zero")
        object.__setattr__(self, "initial", initial)
        max_interval = optional_duration(self.max_interval, what="Retry(max_interval=...)")
        # The default stays within the range every duration has.
        default_max = min(100 * initial, MAX_SECONDS)
        object.__setattr__(self, "max_interval", max_interval or default_max)
        if (
            isinstance(self.backoff, bool)
            or not isinstance(self.backoff, (int, float))
            or not math.isfinite(self.backoff)
            or self.backoff < 1
        ):
            raise DefinitionError(
                f"Retry(backoff={self.backoff!r}) must be a finite number >= 1 (e.g. 2.0)"
            )
        object.__setattr__(self, "backoff", float(self.backoff))
        if not isinstance(self.max_attempts, int) or self.max_attempts < 0:
            raise DefinitionError(
                f"Retry(max_attempts={self.max_attempts!r}) must be 0 (unlimited) or more"
            )
        object.__setattr__(self, "non_retryable", _type_names(self.non_retryable))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        try:
            grown = self.initial * self.backoff ** (attempt - 1)
        except OverflowError:  # many attempts: the wait has long reached its maximum
            return self.max_interval
        return min(grown, self.max_interval)

    def allows(self, attempt: int) -> bool:
        """Whether another attempt may follow failed attempt number ``attempt``."""
        return self.max_attempts == 0 or attempt < self.max_attempts

    def is_retryable(self, error_type: str, error_mro: Iterable[str] = ()) -> bool:
        """False when the error (or one of its bases, by name) is listed as non-retryable."""
        names = {error_type, *error_mro}
        return not any(n in names for n in self.non_retryable)

    def to_dict(self) -> dict:
        """The policy as plain JSON values (seconds for durations)."""
        return {
            "initial": self.initial,
            "backoff": self.backoff,
            "max_interval": self.max_interval,
            "max_attempts": self.max_attempts,
            "non_retryable": list(self.non_retryable),
        }


def _type_names(items) -> tuple[str, ...]:
    if isinstance(items, (str, type)):
        items = [items]
    names = []
    for item in items or ():
        if isinstance(item, type):
            names.append(item.__name__)
        elif isinstance(item, str) and item:
            names.append(item.rsplit(".", 1)[-1])
        else:
            raise DefinitionError(
                f"Retry(non_retryable=...): {item!r} is neither an exception type nor its name"
            )
    return tuple(names)


DEFAULT_RETRY = Retry()
