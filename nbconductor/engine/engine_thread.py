"""The engine thread: the one thread that runs ticks, sleeps until there is work, skips
virtual time, and stops gracefully.

Other threads reach it only through the ledger's inbox: :meth:`EngineThread.call` runs
a function there and returns its value once the tick that ran it has committed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import anyio

from nbconductor.engine.ledger import Ledger
from nbconductor.engine.task_dispatch import TaskDispatch
from nbconductor.errors import EngineStopped


class EngineThread:
    """Runs the ledger's ticks on a daemon thread.

    Args:
        ledger: the tick's inbox, heap and batch.
        clock: the engine's clock.
        tasks: task dispatch (the engine loop runs async attempts; stopping waits for
            running attempts).
        time_skipping: with a virtual clock, jump to the next due entry whenever no
            task runs.
        on_start: runs on the thread before the first commit (recovery, schedules).
        on_exit: runs on the thread as it ends, with the error that ended it, if any.
        on_error: runs on the thread with that error first, before ``running`` turns
            false (so whoever sees the engine stopped can read why).
    """

    def __init__(
        self,
        ledger: Ledger,
        clock,
        tasks: TaskDispatch,
        *,
        time_skipping: bool,
        on_start: Callable[[], None],
        on_exit: Callable[[BaseException | None], None],
        on_error: Callable[[BaseException], None] = lambda error: None,
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._tasks = tasks
        self._time_skipping = time_skipping
        self._on_start = on_start
        self._on_exit = on_exit
        self._on_error = on_error
        self._stop_deadline = 0.0
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbconductor-engine")
        self._thread.daemon = True  # see docs/jupyter-platform.md: a kernel must never hang on us

    def start(self) -> None:
        """Start the thread; returns once it has recovered and committed (or failed)."""
        self._thread.start()
        self._ready.wait()

    @property
    def running(self) -> bool:
        """The thread is alive and no stop was requested."""
        return self._thread.is_alive() and not self._ledger.stopping

    @property
    def stopped(self) -> bool:
        """The thread has ended and the store is closed."""
        return self._stopped.is_set()

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``fn`` on the engine thread; return its value once the tick committed.

        Raises:
            EngineStopped: the thread is not running (``fn`` did not run).
            TimeoutError: no answer within ``timeout`` seconds.
        """
        if not self.running:
            raise EngineStopped("this engine is stopped")
        done: Future = Future()
        ledger = self._ledger

        def run() -> None:
            try:
                value = fn()
            except BaseException as exc:  # handed to the caller, not the engine
                done.set_exception(exc)
                return
            ledger.after_commit(lambda: done.set_result(value))

        ledger.post(run)
        return done.result(timeout)

    def stop(self, grace: float, timeout: float) -> bool:
        """Let running tasks finish for ``grace`` seconds, commit, and end the thread.

        Returns whether the thread ended and closed the store within ``grace +
        timeout`` seconds (a large commit or the closing checkpoint may take a while).
        """
        self._ledger.post(lambda: self._begin_stop(grace))
        self._thread.join(grace + timeout)
        return self._stopped.is_set()

    # ------------------------------------------------------------- on the thread

    def _run(self) -> None:
        error = None
        try:
            anyio.run(self._main, backend="asyncio")
        except BaseException as exc:  # recorded, surfaced by status() and the API
            error = exc
            # The task group wraps what ended the ticks: keep the error itself.
            inner = getattr(error, "exceptions", None)  # an exception group's members
            while isinstance(inner, tuple) and len(inner) == 1:
                error = inner[0]
                inner = getattr(error, "exceptions", None)
        finally:
            if error is not None:  # before `running` turns false: who sees it stop sees why
                self._on_error(error)
            self._ledger.stopping = True
            try:
                self._ledger.close()  # what was handed is committed before the store closes
                self._on_exit(error)
            finally:
                self._ready.set()
                self._stopped.set()

    async def _main(self) -> None:
        async with anyio.create_task_group() as attempts:
            self._ledger.bind(asyncio.get_running_loop())
            self._tasks.bind(attempts)
            await self._ticks()
            attempts.cancel_scope.cancel()  # async attempts still running are abandoned

    async def _ticks(self) -> None:
        ledger = self._ledger
        ledger.now = self._clock.now()
        self._on_start()
        ledger.flush()  # recovered and durable before start() returns
        self._ready.set()
        while True:
            self._tick()
            if ledger.stopping and (
                self._tasks.in_flight == 0 or time.monotonic() >= self._stop_deadline
            ):
                ledger.flush()
                return
            if ledger.has_mail:
                continue
            delay = self._next_delay()
            if delay == 0.0:
                continue
            await ledger.wait(delay)

    def _tick(self) -> None:
        ledger = self._ledger
        ledger.now = self._clock.now()
        ledger.run_inbox()
        ledger.run_due()
        ledger.commit()

    def _next_delay(self) -> float | None:
        if self._ledger.stopping:
            return max(0.0, min(self._stop_deadline - time.monotonic(), 0.05))
        due = self._ledger.next_due()
        if due is None:
            return None
        if self._time_skipping and self._tasks.in_flight == 0:
            self._clock.advance_to(datetime.fromtimestamp(due, UTC))
            return 0.0
        return max(0.0, due - self._clock.now().timestamp())

    def _begin_stop(self, grace: float) -> None:
        self._ledger.stopping = True
        self._stop_deadline = time.monotonic() + grace
