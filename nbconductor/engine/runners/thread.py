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

    ``submit`` runs on the engine thread and never waits for another thread (under the
    GIL, whatever waits for another thread may wait a switch interval, 5 ms):

    - no lock: an idle worker leaves a token in ``_idle`` before it waits on the
      queue, and ``submit`` takes one per attempt (``deque.append``/``pop`` are
      atomic).
    - no ``Thread.start``, which waits until the new thread runs: an attempt that
      finds no idle worker, while the pool is under its limit, asks the starter
      thread for one more. A burst of attempts costs the engine thread a queue put
      each, not a thread start each.

    So while under the limit there are as many idle or starting workers as queued
    attempts, and an attempt never waits behind a busy one.
    """

    def __init__(self, max_workers: int = 32) -> None:
        self._max = max_workers
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle: collections.deque[None] = collections.deque()  # a token per idle worker
        self._owed: queue.SimpleQueue = queue.SimpleQueue()  # a request per worker to start
        self._starter: threading.Thread | None = None
        self._lock = threading.Lock()  # counting started threads, and shutting down
        self._threads = 0
        self._closed = False

    def submit(self, attempt: Attempt, events: AttemptEvents) -> None:
        """Queue ``attempt`` for the next free thread (a new one while under the limit)."""
        if self._closed:
            return
        self._queue.put((attempt, events))
        idle = self._idle
        if idle:  # only this thread takes tokens: one seen here is there to take
            idle.pop()  # an idle worker takes it
            return
        if self._threads + self._owed.qsize() < self._max:
            self._owed.put(True)
            if self._starter is None:  # once per runner (the only start it waits for)
                self._starter = threading.Thread(
                    target=self._start_workers, name="nbconductor-task-threads", daemon=True
                )
                self._starter.start()
        # else: every worker is busy; the first to finish takes it

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

    def _start_workers(self) -> None:
        """The starter thread: start a worker per request, until shut down."""
        while self._owed.get():
            with self._lock:
                if self._closed or self._threads >= self._max:
                    continue
                self._threads += 1
                number = self._threads
            try:
                threading.Thread(
                    target=self._work, name=f"nbconductor-task-{number}", daemon=True
                ).start()
            except RuntimeError:  # the process may start no more threads: those there
                with self._lock:  # take the queued attempts in turn
                    self._threads -= 1

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
        self._owed.put(False)
        for _ in range(threads):
            self._queue.put(None)
