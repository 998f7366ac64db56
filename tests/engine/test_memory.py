"""What an engine keeps in memory once executions close."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time

import pytest

import nbconductor as nc
from nbconductor.engine.runtime import WorkflowRuntime
from nbconductor.storage.records import Status


@nc.task
def mem_noop(i: int) -> int:
    return i


@nc.workflow
async def mem_three_steps() -> int:
    return sum([await mem_noop(i) for i in range(3)])


@nc.workflow
async def mem_waits_with_timer() -> str:
    return await asyncio.wait_for(nc.signal("never"), timeout=3600)


def _runtimes_of(execution_id: str) -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, WorkflowRuntime) and o.execution_id == execution_id
    )


@pytest.fixture
def no_cyclic_collector():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


@pytest.mark.duckdb
def test_a_completed_execution_is_freed_without_the_cyclic_collector(engine, no_cyclic_collector):
    # Its runtime and loop used to point at each other: every closed execution stayed
    # in memory until Python's rare full collection (the soak's sawtooth).
    h = engine.start(mem_three_steps)
    assert h.result(10) == 3
    # The engine lets go of a closed execution once its row update is committed, which
    # the engine thread learns in its next tick: the next execution gives it one.
    deadline = time.monotonic() + 10
    while _runtimes_of(h.id) and time.monotonic() < deadline:
        assert engine.start(mem_three_steps).result(10) == 3
    assert _runtimes_of(h.id) == 0


@pytest.mark.duckdb
def test_a_terminated_execution_leaves_its_pending_timer_quietly(engine):
    # Its coroutine is closed after the loop let go of the runtime: the timer that
    # wait_for cancels on the way out reaches the closed loop, which ignores it.
    unraisable: list = []
    previous, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        h = engine.start(mem_waits_with_timer)
        deadline = time.monotonic() + 10
        while h.waiting_for != ["never"] and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        h.terminate("done waiting")
        while h.status is not Status.TERMINATED and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert h.status is Status.TERMINATED
        while _runtimes_of(h.id) and time.monotonic() < deadline:
            assert engine.start(mem_three_steps).result(10) == 3  # a tick to let go
            gc.collect()  # its coroutine is closed when its runtime is freed
        assert _runtimes_of(h.id) == 0
    finally:
        sys.unraisablehook = previous
    assert unraisable == []
