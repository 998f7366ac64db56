"""Task queues: concurrency never exceeded, rate limits that hold across a restart,
priority, schedule-to-start covering the wait, and the wait shown as a condition.

Limits are checked from the history (attempts' ``started_at`` and the time their
outcome was recorded), not from the engine's own counters.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest

import nbconductor as nc
from nbconductor.engine.clock import VirtualClock
from nbconductor.engine.engine import Engine
from nbconductor.engine.payload import read_data
from nbconductor.errors import QueueError, TaskFailed
from nbconductor.storage.records import EventKind
from nbconductor.testing import TimeSkippingEngine, advance, wait_for

GATE = threading.Event()


@pytest.fixture(autouse=True)
def _open_gate():
    GATE.clear()
    yield
    GATE.set()


def attempts(history) -> list[tuple[datetime, datetime, str]]:
    """(started, ended, task) of every attempt that ran, by start."""
    out = []
    for e in history:
        if e.kind in (EventKind.TASK_COMPLETED, EventKind.TASK_FAILED):
            data = read_data(e.data)
            if "started_at" in data:
                out.append((datetime.fromisoformat(data["started_at"]), e.at, e.name))
    return sorted(out)


def condition(eng, handle) -> str:
    record = eng.store.get_execution(handle.id)  # None until its start is committed
    return (record.condition if record else None) or ""


def most_at_once(spans) -> int:
    points = [(s, 1) for s, _, _ in spans] + [(e, -1) for _, e, _ in spans]
    best = now = 0
    for _, step in sorted(points):  # an end sorts before a start at the same instant
        now += step
        best = max(best, now)
    return best


@nc.task(queue="three")
def work(i: int) -> int:
    time.sleep(0.05)  # the work being simulated: long enough for attempts to overlap
    return i


@nc.workflow
async def queued_fan_out(n: int) -> int:
    return sum(await nc.gather(*[work(i) for i in range(n)]))


def test_concurrency_is_never_exceeded_and_is_reached(tmp_path):
    eng = Engine(tmp_path / "h.duckdb", make_default=False)
    try:
        eng.queues.create("three", concurrency=3)
        h = eng.start(queued_fan_out, 12)
        assert h.result(timeout=30) == sum(range(12))
        assert most_at_once(attempts(h.history())) == 3
        assert [(q.name, q.running, q.waiting) for q in eng.queues.list()] == [("three", 0, 0)]
    finally:
        eng.stop(grace=0)


@nc.task(queue="slow")
def instant(i: int) -> int:
    return i


@nc.workflow
async def many_instant(n: int) -> list:
    return await nc.gather(*[instant(i) for i in range(n)])


def test_a_rate_limit_paces_starts_evenly_on_a_virtual_clock():
    eng = TimeSkippingEngine()
    try:
        eng.queues.create("slow", rate="2/minute")
        began = eng.clock.now()
        h = eng.start(many_instant, 7)
        assert h.result(timeout=30) == list(range(7))
        starts = [s for s, _, _ in attempts(h.history())]
        # One start every 30 s, the first at once: never two in any minute's window.
        assert [(s - began).total_seconds() for s in starts] == [30.0 * i for i in range(7)]
        for start in starts:
            assert len([s for s in starts if start <= s < start + timedelta(minutes=1)]) <= 2
    finally:
        eng.stop(grace=0)


def test_a_burst_lets_that_many_start_at_once_then_paces_the_rest():
    eng = TimeSkippingEngine()
    try:
        eng.queues.create("slow", rate="2/minute", burst=3)
        began = eng.clock.now()
        h = eng.start(many_instant, 6)
        assert h.result(timeout=30) == list(range(6))
        offsets = [(s - began).total_seconds() for s, _, _ in attempts(h.history())]
        assert offsets == [0.0, 0.0, 0.0, 30.0, 60.0, 90.0]
        assert eng.queues.get("slow").burst == 3
    finally:
        eng.stop(grace=0)


def test_a_faster_rate_is_not_held_to_the_old_pace():
    eng = TimeSkippingEngine()
    try:
        eng.queues.create("slow", rate="1/hour")
        began = eng.clock.now()
        assert eng.start(many_instant, 1).result(timeout=30) == [0]  # next slot in an hour
        eng.queues.update("slow", rate="10/second")
        h = eng.start(many_instant, 2)
        assert h.result(timeout=30) == [0, 1]
        offsets = [(s - began).total_seconds() for s, _, _ in attempts(h.history())]
        assert offsets == [0.1, 0.2]  # one interval of the new rate, not the old hour
    finally:
        eng.stop(grace=0)


def test_a_rate_limit_holds_across_a_restart(tmp_path):
    path = tmp_path / "h.duckdb"
    clock = VirtualClock()
    eng = Engine(path, clock=clock, make_default=False)
    try:
        eng.queues.create("slow", rate="3/minute")  # one start every 20 s
        assert eng.start(many_instant, 1).result(timeout=30) == [0]
    finally:
        eng.stop(grace=0)
    eng = Engine(path, clock=clock, make_default=False)  # same instant: next slot in 20 s
    try:
        assert [(q.name, q.rate) for q in eng.queues.list()] == [("slow", "3/minute")]
        h = eng.start(many_instant, 1)
        wait_for(
            lambda: condition(eng, h) == "waiting for queue slow: 0 running, next slot in 20s",
            what="the wait to show as the execution's condition",
        )
        advance(eng, clock.now() + timedelta(seconds=19))
        assert h.status == nc.Status.RUNNING
        advance(eng, clock.now() + timedelta(seconds=2))
        assert h.result(timeout=30) == [0]
        assert eng.store.get_execution(h.id).condition is None
    finally:
        eng.stop(grace=0)


@nc.task(queue="one")
def hold() -> str:
    GATE.wait(30)
    return "held"


@nc.task(queue="one", priority=5)
def low() -> str:
    return "low"


@nc.task(queue="one", priority=1)
def high() -> str:
    return "high"


@nc.task(queue="one")
def default_priority() -> str:
    return "default"


@nc.workflow
async def by_priority() -> list:
    return await nc.gather(hold(), low(), high(), default_priority())


def test_waiting_attempts_start_by_priority_and_the_wait_is_visible():
    eng = Engine(None, make_default=False)
    try:
        eng.queues.create("one", concurrency=1)
        h = eng.start(by_priority)
        wait_for(
            lambda: condition(eng, h) == "waiting for queue one: 1 running",
            what="the wait to show as the execution's condition",
        )
        assert [(q.running, q.waiting) for q in eng.queues.list()] == [(1, 3)]
        GATE.set()
        assert h.result(timeout=30) == ["held", "low", "high", "default"]
        order = [name for _, _, name in attempts(h.history())]
        assert order == ["hold", "default_priority", "high", "low"]
    finally:
        eng.stop(grace=0)


@nc.task(queue="one", schedule_to_start=0.3, retry=nc.Retry(max_attempts=1))
def impatient() -> str:
    return "ran"


@nc.workflow
async def waits_too_long() -> str:
    blocker = hold()
    try:
        return await impatient()
    except TaskFailed as exc:
        GATE.set()
        await blocker
        return exc.error_type


def test_schedule_to_start_covers_the_time_waiting_in_the_queue():
    eng = Engine(None, make_default=False)
    try:
        eng.queues.create("one", concurrency=1)
        h = eng.start(waits_too_long)
        assert h.result(timeout=30) == "TaskTimeout"
        failed = [read_data(e.data) for e in h.history() if e.kind is EventKind.TASK_FAILED]
        assert [f["error"]["timeout"] for f in failed] == ["schedule_to_start"]
    finally:
        eng.stop(grace=0)


@nc.task(queue="missing")
def queued_lost() -> int:
    return 1


@nc.workflow
async def uses_missing() -> str:
    try:
        return str(await queued_lost())
    except TaskFailed as exc:
        return f"{exc.error_type}: {exc.error_message}"


def test_an_unknown_queue_fails_the_task_naming_the_known_ones():
    eng = Engine(None, make_default=False)
    try:
        eng.queues.create("llm", concurrency=2)
        out = eng.start(uses_missing).result(timeout=30)
        assert out.startswith("QueueError: task 'queued_lost' names queue 'missing'")
        assert "(queues: llm)" in out
    finally:
        eng.stop(grace=0)


def test_queues_are_created_updated_and_deleted_with_clear_errors():
    eng = Engine(None, make_default=False)
    try:
        info = eng.queues.create("llm", concurrency=8, rate="60/minute")
        assert (info.concurrency, info.rate) == (8, "60/minute")
        with pytest.raises(QueueError, match="exists already"):
            eng.queues.create("llm")
        assert eng.queues.update("llm", rate=None).concurrency == 8
        assert eng.queues.get("llm").rate is None
        with pytest.raises(QueueError, match="'60 a minute'"):
            eng.queues.update("llm", rate="60 a minute")
        with pytest.raises(QueueError, match="concurrency=0"):
            eng.queues.create("zero", concurrency=0)
        with pytest.raises(QueueError, match="burst=4 needs a rate"):
            eng.queues.create("bursty", burst=4)
        with pytest.raises(QueueError, match="burst=0 must be a whole number"):
            eng.queues.create("bursty", rate="1/second", burst=0)
        assert eng.queues.update("llm", rate="5/second", burst=5).burst == 5
        assert eng.queues.update("llm", rate=None).burst == 1  # the burst goes with the rate
        eng.queues.delete("llm")
        with pytest.raises(QueueError, match=r"no queue named 'llm' \(queues: none\)"):
            eng.queues.delete("llm")
    finally:
        eng.stop(grace=0)


def test_a_rate_limit_on_the_real_clock():
    eng = Engine(None, make_default=False)
    try:
        eng.queues.create("slow", rate="20/second")
        began = time.monotonic()
        h = eng.start(many_instant, 30)
        assert h.result(timeout=30) == list(range(30))
        elapsed = time.monotonic() - began
        # One start every 50 ms, the first at once: the last at 1.45 s, never sooner.
        assert 1.45 <= elapsed < 5, elapsed
        starts = [s for s, _, _ in attempts(h.history())]
        # Evenly: the recorded starts (taken a moment after admission, so with some
        # jitter) span the 29 intervals, and no quarter second holds more than 5 + 1.
        assert (starts[-1] - starts[0]).total_seconds() >= 1.44, starts
        for start in starts:
            assert len([s for s in starts if start <= s < start + timedelta(seconds=0.25)]) <= 6
    finally:
        eng.stop(grace=0)


@nc.task(queue="one", heartbeat=0.2, retry=nc.Retry(max_attempts=1))
def beats_once_started() -> str:
    return "ran"


@nc.workflow
async def heartbeat_after_the_wait() -> list:
    return await nc.gather(hold(), beats_once_started())


def test_a_heartbeat_timeout_starts_counting_when_the_attempt_starts():
    eng = Engine(None, make_default=False)
    try:
        eng.queues.create("one", concurrency=1)
        h = eng.start(heartbeat_after_the_wait)
        wait_for(lambda: condition(eng, h).startswith("waiting for queue one"), what="the wait")
        # Waiting three heartbeat periods in the queue is not a missed heartbeat.
        deadline = time.monotonic() + 0.6
        wait_for(lambda: time.monotonic() >= deadline, what="three heartbeat periods")
        GATE.set()
        assert h.result(timeout=30) == ["held", "ran"]
    finally:
        eng.stop(grace=0)
