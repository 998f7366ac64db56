"""Retention: deleting closed executions older than a cutoff, on demand
(``engine.prune``) or on its own (``Engine(retention="30d")``).

Which executions go is the store's rule (:mod:`nbconductor.storage.retention`: whole
families, never one with an open member). Pruning runs on the caller's thread, or on
the retention thread, never on the engine thread: the store deletes in transactions
of ``batch`` executions and releases its writer lock between them, so the engine's
commits wait for one small transaction at most (0.05-0.3 s for 100 executions; see
benchmarks/bench_prune.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nbconductor.engine.duration import format_duration, parse_duration
from nbconductor.errors import InvalidDuration
from nbconductor.storage.records import PruneReport

__all__ = ("Retention", "RetentionPolicy", "cutoff")

_log = logging.getLogger("nbconductor.engine")


def cutoff(closed_before: Any, now: datetime) -> datetime:
    """The instant before which executions must have closed to be pruned.

    Args:
        closed_before: an age (``"30d"``, ``"12h"``, seconds, a ``timedelta``: closed
            that long before ``now``) or a ``datetime`` (naive is UTC).
        now: the engine clock's time.

    Raises:
        InvalidDuration: neither, naming the value and the accepted forms.
    """
    if isinstance(closed_before, datetime):
        if closed_before.tzinfo is None:
            return closed_before.replace(tzinfo=UTC)
        return closed_before
    try:
        age = parse_duration(closed_before, what="closed_before")
    except InvalidDuration:
        raise InvalidDuration(
            f"closed_before={closed_before!r}: give an age, such as '30d', '12h' or "
            "timedelta(days=30) (executions closed longer ago than that are pruned), or a "
            "datetime"
        ) from None
    return now - timedelta(seconds=age)


@dataclass(frozen=True)
class RetentionPolicy:
    """How an engine prunes on its own: ``Engine(retention=RetentionPolicy("30d"))``;
    ``Engine(retention="30d")`` is the same with the defaults.

    Args:
        keep: how long closed executions are kept (an age: ``"30d"``, a ``timedelta``).
        every: how often the retention thread looks for executions to prune.
        batch: executions deleted per transaction (what the engine may wait for).
    """

    keep: Any
    every: Any = "1h"
    batch: int = 100

    def __post_init__(self) -> None:
        parse_duration(self.keep, what="retention keep")
        if parse_duration(self.every, what="retention every") <= 0:
            raise InvalidDuration(f"retention every={self.every!r} must be more than 0 s")
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise ValueError(f"retention batch={self.batch!r} must be a whole number of 1 or more")

    @classmethod
    def of(cls, value: Any) -> RetentionPolicy | None:
        """The policy that ``Engine(retention=value)`` means (None: no retention)."""
        if value is None or isinstance(value, RetentionPolicy):
            return value
        return cls(value)

    def __str__(self) -> str:
        keep = format_duration(parse_duration(self.keep))
        every = format_duration(parse_duration(self.every))
        return f"keep closed executions {keep}, checked every {every}"


class Retention:
    """The retention thread: every ``policy.every`` it prunes what closed more than
    ``policy.keep`` ago (by the engine's clock), a bounded number per call so that
    stopping never waits long."""

    _PER_CALL = 50  # batches per store.prune call before looking at the stop flag again

    def __init__(
        self,
        policy: RetentionPolicy,
        store: Any,
        clock: Any,
        forget: Callable[[datetime], None] = lambda moment: None,
    ) -> None:
        self.policy = policy
        self._store = store
        self._clock = clock
        self._forget = forget  # the engine's memory of recently closed executions
        self._stop = threading.Event()
        self.passes = 0  # completed passes, for tests and status
        self.pruned = 0  # executions pruned since the engine started
        self.last: PruneReport | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="nbconductor-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current transaction; returns once the thread ended."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        every = parse_duration(self.policy.every)
        while not self._stop.wait(every):
            try:
                self.run_once()
            except Exception as exc:  # a closed store while stopping, a full disk: say so
                if self._stop.is_set():
                    return
                self.error = exc
                _log.warning("retention: pruning failed: %s: %s", type(exc).__name__, exc)
            self.passes += 1

    def run_once(self) -> int:
        """Prune everything due now; the number of executions pruned."""
        keep = parse_duration(self.policy.keep)
        moment = self._clock.now() - timedelta(seconds=keep)
        batch = self.policy.batch
        total = 0
        while not self._stop.is_set():
            report = self._store.prune(moment, limit=batch * self._PER_CALL, batch=batch)
            self.last = report
            self._forget(moment)
            total += report.executions
            if report.executions < batch * self._PER_CALL:
                break
        if total:
            self.pruned += total
            _log.info("retention: pruned %d closed executions", total)
        return total
