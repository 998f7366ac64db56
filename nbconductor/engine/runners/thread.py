"""The default runner: sync task attempts on a pool of daemon threads in this process."""

from __future__ import annotations

import queue
import threading

from nbconductor.engine.runners.runner import AttemptEvents
from nbconductor.engine.task_runner import Attempt, run_sync


class ThreadRunner:
    """Sync task attempts on a pool of daemon threads; outcomes go to the attempt's events.

    Not concurrent.futures' pool: its threads are joined at interpreter exit, so one
    hung task would keep a kernel from restarting. A task thread that never returns
    is abandoned (its attempt timed out); it must never hold up the process.
    """

    def __init__(self, max_workers: int = 32) -> None:
        self._max = max_workers
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(self, attempt: Attempt, events: AttemptEvents) -> None:
        """Queue ``attempt`` for the next free thread (a new one while under the limit)."""
        with self._lock:
            if self._closed:
                return
            self._queue.put((attempt, events))
            if self._idle > 0:
                self._idle -= 1  # an idle worker takes it
            elif self._threads < self._max:
                self._threads += 1
                threading.Thread(
                    target=self._work, name=f"nbconductor-task-{self._threads}", daemon=True
                ).start()
            # else: every worker is busy; the first to finish takes it

    def stop(self, attempt: Attempt) -> None:
        """Nothing to do: a thread cannot be killed; the task sees ``nc.cancelled()``."""

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            attempt, events = item
            events.outcome(run_sync(attempt, events.now))
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def shutdown(self) -> None:
        """Let every idle thread end; busy ones end when their attempt returns."""
        with self._lock:
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._queue.put(None)
