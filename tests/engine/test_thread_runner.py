"""The thread runner on its own: a thread per concurrent attempt up to its limit, idle
threads reused, and a hung attempt never holding back the others."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from nbconductor.engine.definition import TaskDefinition, TaskOptions
from nbconductor.engine.payload import encode_input
from nbconductor.engine.runners.thread import ThreadRunner
from nbconductor.engine.task_runner import Attempt
from nbconductor.testing import wait_for


class _Events:
    """Collects outcomes as the engine would (from whichever thread reports them)."""

    def __init__(self) -> None:
        self.outcomes: list = []
        self.now = lambda: datetime.now(UTC)

    def outcome(self, outcome) -> None:
        self.outcomes.append(outcome)


def _attempt(fn, i: int) -> Attempt:
    definition = TaskDefinition(fn, name=f"t{i}", options=TaskOptions())
    return Attempt("e", i, 1, definition, encode_input((i,), {}, what="t"), time.time())


def _task_threads() -> int:
    return sum(t.name.startswith("nbconductor-task") for t in threading.enumerate())


def test_attempts_that_wait_each_get_a_thread_up_to_the_limit(gate):
    runner, events = ThreadRunner(max_workers=4), _Events()
    running = []
    before = _task_threads()

    def blocked(i: int) -> int:
        running.append(i)
        gate.wait(10)
        return i

    for i in range(6):
        runner.submit(_attempt(blocked, i), events)
    # Four run at once (no attempt waits behind a busy thread while under the limit).
    wait_for(lambda: len(running) == 4, what="four attempts running")
    assert _task_threads() - before == 5  # and the thread that starts them
    gate.set()
    wait_for(lambda: len(events.outcomes) == 6, what="every outcome")
    assert sorted(int(o.result) for o in events.outcomes) == list(range(6))
    runner.shutdown()
    wait_for(lambda: _task_threads() == before, what="the threads to end")


def test_an_idle_thread_takes_the_next_attempt():
    runner, events = ThreadRunner(max_workers=8), _Events()
    for i in range(20):
        runner.submit(_attempt(lambda i: i, i), events)
        wait_for(lambda i=i: len(events.outcomes) == i + 1, what="the outcome")
        wait_for(lambda: runner.idle == 1, what="the worker to be idle again")
    assert runner.threads == 1
    runner.shutdown()


def test_a_hung_attempt_leaves_the_other_threads_working(gate):
    runner, events = ThreadRunner(max_workers=2), _Events()
    runner.submit(_attempt(lambda i: gate.wait(10) and i, 0), events)
    for i in range(1, 11):
        runner.submit(_attempt(lambda i: i, i), events)
    wait_for(lambda: len(events.outcomes) == 10, what="the other attempts' outcomes")
    assert sorted(int(o.result) for o in events.outcomes) == list(range(1, 11))
    gate.set()
    wait_for(lambda: len(events.outcomes) == 11, what="the hung attempt's outcome")
    runner.shutdown()
