"""A deterministic asyncio event loop for one execution: no I/O, no wall clock.

``call_later``/``call_at`` become durable timers (commands to the engine), so
``asyncio.sleep``, ``wait_for``, ``gather``, ``wait`` and cancellation keep their usual
meaning inside workflow code while every source of time is recorded history.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import sys
from typing import Any, Protocol

from nbconductor.engine.duration import check_delay

_get_running_loop = asyncio.events._get_running_loop
_set_running_loop = asyncio.events._set_running_loop


class LoopDriver(Protocol):
    """What the loop needs from the execution that drives it (the replay runtime)."""

    now_ts: float  # the workflow's current time, epoch seconds

    def start_timer(self, timer: DurableTimer) -> None: ...

    def cancel_timer(self, timer: DurableTimer) -> None: ...

    def on_loop_error(self, context: dict) -> None: ...


class _ClosedDriver:
    """What a closed loop answers to in place of its runtime: the last time, and no-ops.

    A runtime holds its loop and the loop its runtime; were the loop to keep pointing
    back, every closed execution (its runtime, futures, RNG state: ~10 KB) would wait
    for Python's rare full collection instead of being freed when the engine drops it.
    Ten bursts of 500 executions peaked at 133-137 MB of RSS with the cycle, 122-124 MB
    without (at a steady 20 executions/s the collector kept up either way).
    """

    __slots__ = ("now_ts",)

    def __init__(self, now_ts: float) -> None:
        self.now_ts = now_ts

    def start_timer(self, timer: DurableTimer) -> None:
        pass  # a closed execution's commands are never taken

    def cancel_timer(self, timer: DurableTimer) -> None:
        pass

    def on_loop_error(self, context: dict) -> None:
        pass


class DurableTimer(asyncio.TimerHandle):
    """A timer handle that knows the id of the command that started it."""

    command: int


class WorkflowTask(asyncio.Task):
    """A task whose hash is its creation order, so sets of tasks iterate the same way on
    every replay (plain tasks hash by memory address)."""

    def __init__(self, coro, *, loop, name=None, context=None, order: int) -> None:
        # Task.__init__ adds the task to asyncio's registry of all tasks (a WeakSet),
        # whose weak reference keeps the hash it had then: its identity, unique. Hashed
        # by order there, the first tasks of all open executions (order 1 each) would
        # share one hash, and every start would walk all of them (O(open executions)).
        self._hash = id(self)
        if context is None:  # Python 3.10's Task takes no context argument
            super().__init__(coro, loop=loop, name=name)
        else:
            super().__init__(coro, loop=loop, name=name, context=context)
        self._hash = order  # nothing else has seen the task yet

    def __hash__(self) -> int:
        return self._hash


async def _awaiting(awaitable) -> Any:
    return await awaitable


class WorkflowLoop(asyncio.AbstractEventLoop):
    """The loop that workflow code runs on, driven by the execution's runtime.

    ``workflow_context`` is what :func:`nbconductor.engine.context.current` finds on
    the running loop: the driver, when it implements the workflow context.
    """

    def __init__(self, driver: LoopDriver) -> None:
        self.runtime = driver
        self.workflow_context = driver
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._closed = False
        self._order = itertools.count(1)

    # --- what the runtime calls -------------------------------------------------------

    def run_until_quiet(self) -> None:
        """Run ready callbacks until none are left (one activation)."""
        previous = _get_running_loop()
        hooks = sys.get_asyncgen_hooks()
        _set_running_loop(self)
        # Async generators in workflow code belong to this loop, not the engine's.
        sys.set_asyncgen_hooks(firstiter=None, finalizer=self._finalize_asyncgen)
        try:
            ready = self._ready
            while ready:
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
        finally:
            sys.set_asyncgen_hooks(*hooks)
            _set_running_loop(previous)

    def call_in_context(self, fn):
        """Call ``fn`` as workflow code (helpers like ``state`` work inside it)."""
        previous = _get_running_loop()
        _set_running_loop(self)
        try:
            return fn()
        finally:
            _set_running_loop(previous)

    def _finalize_asyncgen(self, agen) -> None:
        if not self._closed:
            self.create_task(agen.aclose())

    def fire(self, timer: DurableTimer) -> None:
        if not timer._cancelled:
            self._ready.append(timer)

    # --- asyncio.AbstractEventLoop ----------------------------------------------------

    def time(self) -> float:
        return self.runtime.now_ts

    def call_soon(self, callback, *args: Any, context=None) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(self, delay: float, callback, *args: Any, context=None) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback, *args: Any, context=None) -> asyncio.TimerHandle:
        # Refused here, in the workflow code that asked for the wait, so that the error
        # fails this execution instead of reaching the engine as an unstorable due time.
        check_delay(when - self.time(), what="a workflow timer (sleep, wait_for, timeout)")
        timer = DurableTimer(when, callback, args, self, context)
        timer._scheduled = True  # so that cancel() reports back to _timer_handle_cancelled
        self.runtime.start_timer(timer)
        return timer

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.runtime.cancel_timer(handle)  # type: ignore[arg-type]

    def create_future(self) -> asyncio.Future:
        return asyncio.Future(loop=self)

    def create_task(self, coro, *, name=None, context=None) -> asyncio.Task:
        if not asyncio.iscoroutine(coro) and hasattr(coro, "__await__"):
            # A task call or a child handle is already scheduled (its command was
            # issued when it was called, which fixes the order); Temporal code hands
            # such awaitables to create_task and TaskGroup, so wrap them in a coroutine.
            coro = _awaiting(coro)
        return WorkflowTask(coro, loop=self, name=name, context=context, order=next(self._order))

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return not self._closed

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()
        # Break the runtime <-> loop cycle (see _ClosedDriver); no workflow code runs on
        # a closed loop, and what its leftover tasks may still call is answered here.
        self.runtime = _ClosedDriver(self.runtime.now_ts)
        self.workflow_context = None

    def call_exception_handler(self, context: dict) -> None:
        self.runtime.on_loop_error(context)

    def default_exception_handler(self, context: dict) -> None:
        self.runtime.on_loop_error(context)

    def call_soon_threadsafe(self, callback, *args: Any, context=None):
        raise RuntimeError(
            "workflow code cannot be woken from other threads; use a task for I/O "
            "and signals for outside input"
        )

    def run_in_executor(self, executor, func, *args):
        raise RuntimeError(
            "run_in_executor is not allowed in workflow code: it is not replayable; "
            "put the work in a task"
        )
