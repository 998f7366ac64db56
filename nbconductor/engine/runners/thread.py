"""The default runner: sync task attempts on a pool of daemon threads in this process."""

from __future__ import annotations

import collections
import queue
import threading

from nbconductor.engine.runners.runner import AttemptEvents
from nbconductor.engine.task_runner import Attempt, run_sync


class ThreadRunner:
    """Sync task attempts on a pool of daemon threads; outcomes go to the attempt's events.

    Not concurrent.futures' pool: its threads are joined at interpreter exit, so one
    hung task would keep a kernel from restarting. A task thread that never returns
    is abandoned (its attempt timed out); it must never hold up the process.

    No lock on the way of an attempt: under the GIL, a lock that a descheduled thread
    holds costs whoever waits for it a switch interval (5 ms), and 32 threads taking one
    after each attempt made the engine thread wait in ``submit``. An idle worker leaves
    a token in a deque before it waits on the queue; ``submit`` (on the engine thread
    only) takes one token per attempt, and starts a thread when it finds none (while
    under the limit), so there are always as many waiting or starting workers as
    queued attempts until the limit. ``deque.append``/``pop`` are atomic.
    """

    def __init__(self, max_workers: int = 32) -> None:
        self._max = max_workers
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle: collections.deque[None] = collections.deque()  # a token per idle worker
        self._lock = threading.Lock()  # starting a thread and shutting down only
        self._threads = 0
        self._closed = False

    def submit(self, attempt: Attempt, events: AttemptEvents) -> None:
        """Queue ``attempt`` for the next free thread (a new one while under the limit)."""
        if self._closed:
            return
        try:
            self._idle.pop()  # an idle worker takes it
        except IndexError:
            if self._threads < self._max:
                self._start_worker()
            # else: every worker is busy; the first to finish takes it
        self._queue.put((attempt, events))

    def _start_worker(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._threads += 1
            threading.Thread(
                target=self._work, name=f"nbconductor-task-{self._threads}", daemon=True
            ).start()

    @property
    def threads(self) -> int:
        """How many task threads this runner started."""
        return self._threads

    @property
    def idle(self) -> int:
        """How many of them wait for an attempt that no attempt was queued for yet."""
        return len(self._idle)

    def stop(self, attempt: Attempt) -> None:
        """Nothing to do: a thread cannot be killed; the task sees ``nc.cancelled()``."""

    def _work(self) -> None:
        get, idle = self._queue.get, self._idle
        while True:
            item = get()
            if item is None:
                return
            attempt, events = item
            events.outcome(run_sync(attempt, events.now))
            if self._closed:
                return
            idle.append(None)

    def shutdown(self) -> None:
        """Let every idle thread end; busy ones end when their attempt returns."""
        with self._lock:
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._queue.put(None)
