"""Admission control on the engine thread: which waiting attempt of a queue starts next.

An attempt of a queued task is created when it is dispatched (so its schedule-to-start
timeout covers the wait) and waits here until its queue has room: fewer than
``concurrency`` of its attempts running, and its rate's next slot reached. Waiting
attempts start by priority (lower first), then in arrival order.

A rate is paced, not windowed (GCRA, a leaky bucket): ``rate="20/second"`` starts one
attempt every 50 ms, so 100 attempts take 5 s, where a sliding window would let 20 start
at once and finish in 4. ``burst=B`` lets B start at once after a quiet spell. The
state is one instant, the theoretical arrival time (TAT): a start is allowed once
``now >= TAT - (B - 1) * interval``, and moves TAT to ``max(TAT, now) + interval``.

The TAT is rebuilt from the history (``Store.queue_starts``, the last starts) when the
engine starts, so a rate limit holds across a restart; while running, the engine keeps
it itself.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nbconductor.engine.duration import format_duration
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.live import LiveExecution
from nbconductor.engine.queues.spec import QueueSpec
from nbconductor.engine.task_runner import Attempt
from nbconductor.storage.records import QueueRecord
from nbconductor.storage.store import Store

WAITING = "waiting for queue "  # how a queue's wait shows in an execution's condition


@dataclass(eq=False)
class _Queue:
    spec: QueueSpec
    running: set[Attempt] = field(default_factory=set)
    tat: float = float("-inf")  # theoretical arrival time of the next start, epoch seconds
    waiting: list = field(default_factory=list)  # heap of (priority, seq, attempt, live, go)
    wake_at: float | None = None  # a pump is pushed on the timer heap for then


@dataclass(frozen=True)
class QueueInfo:
    """A queue's limits and what is happening in it now.

    Attributes:
        name: the queue's name.
        concurrency: attempts running at once, at most (None: no limit).
        rate: starts per period, paced evenly (``"60/minute"``; None: no limit).
        running: attempts of its tasks running now.
        waiting: attempts waiting for room.
        burst: starts the rate lets through at once after a quiet spell.
    """

    name: str
    concurrency: int | None
    rate: str | None
    running: int
    waiting: int
    burst: int = 1


class Admission:
    """The queues of one engine and the attempts waiting in them (engine thread only)."""

    def __init__(self, ledger: Ledger, store: Store) -> None:
        self._ledger = ledger
        self._store = store
        self._queues: dict[str, _Queue] = {}
        self._seq = itertools.count()

    # ---------------------------------------------------------------- the queues

    def load(self) -> None:
        """The stored queues, their pacing rebuilt from the last recorded starts (a restart)."""
        now = self._ledger.now
        for record in self._store.queues():
            spec = QueueSpec.from_json(record.name, record.spec)
            queue = self._queues[spec.name] = _Queue(spec)
            self._seed_starts(queue, now)

    def _seed_starts(self, queue: _Queue, now: datetime) -> None:
        spec = queue.spec
        interval = spec.interval
        if interval is None:
            return
        # Starts older than this cannot hold TAT above now - (burst - 1) * interval.
        lookback = max(spec.rate_limit[1], spec.burst * interval)
        since = datetime.fromtimestamp(now.timestamp() - lookback, UTC)
        for start in sorted(s.timestamp() for s in self._store.queue_starts(spec.name, since)):
            queue.tat = max(queue.tat, start) + interval

    def infos(self) -> list[QueueInfo]:
        """Every queue, by name, with its running and waiting counts."""
        return [
            QueueInfo(
                q.spec.name,
                q.spec.concurrency,
                q.spec.rate,
                len(q.running),
                sum(1 for item in q.waiting if not item[2].abandoned),
                q.spec.burst,
            )
            for _, q in sorted(self._queues.items())
        ]

    def get(self, name: str) -> QueueSpec | None:
        queue = self._queues.get(name)
        return queue.spec if queue else None

    def names(self) -> list[str]:
        return sorted(self._queues)

    def save(self, spec: QueueSpec) -> None:
        """Create or change a queue (recorded in this tick's batch); waiting attempts
        start at once if the new limits leave room."""
        self._ledger.save_queue(QueueRecord(spec.name, spec.to_json(), self._ledger.now))
        queue = self._queues.get(spec.name)
        if queue is None:
            queue = self._queues[spec.name] = _Queue(spec)
            self._seed_starts(queue, self._ledger.now)
        else:
            queue.spec = spec  # the starts it paced stay paced (TAT kept) ...
            interval = spec.interval
            if interval is not None:  # ... but a faster rate is not held to the old pace
                queue.tat = min(queue.tat, self._ledger.now.timestamp() + interval)
        self._pump(queue)

    def delete(self, name: str) -> None:
        """Forget a queue; attempts waiting in it start (they are no longer limited)."""
        self._ledger.delete_queue(name)
        queue = self._queues.pop(name, None)
        if queue is None:
            return
        waiting, queue.waiting = queue.waiting, []
        for _, _, attempt, live, go in sorted(waiting):
            if not attempt.abandoned:
                self._started(live, go)

    # -------------------------------------------------------------- the attempts

    def enqueue(
        self, live: LiveExecution, attempt: Attempt, priority: int, go: Callable[[], None]
    ) -> bool:
        """Start ``attempt`` (call ``go``) when its queue has room; False if the queue
        does not exist."""
        queue = self._queues.get(attempt.definition.options.queue)
        if queue is None:
            return False
        heapq.heappush(queue.waiting, (priority, next(self._seq), attempt, live, go))
        self._pump(queue)
        return True

    def release(self, attempt: Attempt) -> None:
        """``attempt`` ended or was abandoned: its slot is free."""
        queue = self._queues.get(attempt.definition.options.queue)
        if queue is not None and attempt in queue.running:
            queue.running.discard(attempt)
            self._pump(queue)

    def _pump(self, queue: _Queue) -> None:
        spec = queue.spec
        interval = spec.interval
        now = self._ledger.now.timestamp()
        waiting = queue.waiting
        while waiting:
            if waiting[0][2].abandoned:  # timed out or cancelled while it waited
                heapq.heappop(waiting)
                continue
            if spec.concurrency is not None and len(queue.running) >= spec.concurrency:
                self._show_wait(queue, None)
                return
            if interval is not None:
                free_at = queue.tat - (spec.burst - 1) * interval
                if now < free_at:
                    if queue.wake_at is None or queue.wake_at > free_at:
                        queue.wake_at = free_at
                        self._ledger.push(free_at, self._wake, queue, free_at)
                    self._show_wait(queue, free_at - now)
                    return
                queue.tat = max(queue.tat, now) + interval
            _, _, attempt, live, go = heapq.heappop(waiting)
            queue.running.add(attempt)
            self._started(live, go)

    def _wake(self, queue: _Queue, due: float) -> None:
        if queue.wake_at == due:
            queue.wake_at = None
        if self._queues.get(queue.spec.name) is queue:
            self._pump(queue)

    def _started(self, live: LiveExecution, go: Callable[[], None]) -> None:
        if live.condition is not None and live.condition.startswith(WAITING):
            self._ledger.set_condition(live, "")
        go()

    def _show_wait(self, queue: _Queue, next_slot: float | None) -> None:
        text = f"{WAITING}{queue.spec.name}: {len(queue.running)} running"
        if next_slot is not None:
            text += f", next slot in {format_duration(max(next_slot, 0.0))}"
        seen: set[str] = set()
        for _, _, attempt, live, _ in queue.waiting:
            if attempt.abandoned or live.id in seen:
                continue
            seen.add(live.id)
            if live.condition != text and (
                live.condition is None or live.condition.startswith(WAITING)
            ):
                self._ledger.set_condition(live, text)
