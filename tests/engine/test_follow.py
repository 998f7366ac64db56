"""Following an execution with a tqdm bar: progress, the task being run, the ending."""

from __future__ import annotations

import io
import threading

import pytest

import nbconductor as nc
from nbconductor.engine.follow import follow
from nbconductor.testing import wait_for

GATE = threading.Event()


@nc.task
def waits_for_gate(order: str) -> str:
    GATE.wait(20)
    return f"shipped {order}"


@nc.task(retry=nc.Retry(max_attempts=1))
def breaks(order: str) -> None:
    raise ValueError(f"no stock for {order}")


@nc.workflow
async def ships(order: str) -> str:
    nc.progress(0.5, "packing")
    return await waits_for_gate(order)


@nc.workflow
async def fails_to_ship(order: str) -> None:
    await breaks(order)


class Screen(io.StringIO):
    """What tqdm drew, readable from another thread."""


@pytest.fixture
def gate():
    GATE.clear()
    yield GATE
    GATE.set()


def test_follow_shows_progress_the_task_and_the_result(engine, gate):
    handle = engine.start(ships, "A-1")
    screen = Screen()
    outcome: list = []
    follower = threading.Thread(
        target=lambda: outcome.append(handle.follow(file=screen, interval=0.05, timeout=20))
    )
    follower.start()
    wait_for(lambda: "task waits_for_gate" in screen.getvalue(), 20, "the task in the bar")
    assert " 50%|" in screen.getvalue() and "packing" in screen.getvalue()
    gate.set()
    follower.join(20)
    assert outcome == ["shipped A-1"]
    assert "100%|" in screen.getvalue()
    assert "completed: 'shipped A-1'" in screen.getvalue()


def test_follow_ends_with_the_error_and_raises(engine):
    handle = engine.start(fails_to_ship, "A-2")
    screen = Screen()
    with pytest.raises(nc.ExecutionFailed):
        handle.follow(file=screen, interval=0.05, timeout=20)
    assert "failed: TaskFailed" in screen.getvalue()
    assert "no stock for A-2" in screen.getvalue()


def test_follow_gives_up_after_its_timeout_and_the_execution_goes_on(engine, gate):
    handle = engine.start(ships, "A-3")
    with pytest.raises(TimeoutError, match="goes on in the background"):
        handle.follow(file=Screen(), interval=0.01, timeout=0.2)
    gate.set()
    assert handle.result(timeout=20) == "shipped A-3"


def test_follow_without_a_fraction_draws_no_percentage():
    shots = iter(
        [
            {"id": "x", "workflow": "w", "status": "running", "progress": {"tasks": []}},
            {"id": "x", "workflow": "w", "status": "completed", "result": 3},
        ]
    )
    screen = Screen()
    shown = follow(lambda: next(shots), file=screen, interval=0.01)
    assert shown["status"] == "completed"
    assert "%|" not in screen.getvalue() and "completed: 3" in screen.getvalue()
