"""What the history keeps of task attempts beyond their outcomes: the heartbeat details
and output of a running attempt (``TaskHeartbeat``, throttled), which survive a crash,
and the results of abandoned attempts that came anyway (``TaskResultIgnored``)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from pathlib import Path

import heartbeat_workflows as hbw
import pytest
from child_process import kill_when_ready

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.engine.heartbeat_records import HEARTBEAT_RECORD_INTERVAL, record_interval
from nbconductor.engine.runners import ProcessRunner
from nbconductor.storage.records import EventKind
from nbconductor.testing import replay, wait_for
from nbconductor.widgets.execution_html import render
from nbconductor.widgets.execution_snapshot import ExecutionReader


def of_kind(history, kind: EventKind) -> list:
    return [e for e in history if e.kind is kind]


# --- heartbeats are recorded, throttled -------------------------------------------------

CHATTY = {"gate": threading.Event(), "beats": 0}


@nc.task(heartbeat="500ms")
def hb_record_chatty() -> int:
    while not CHATTY["gate"].is_set():
        CHATTY["beats"] += 1
        nc.heartbeat(details={"beat": CHATTY["beats"]})
    return CHATTY["beats"]


@nc.workflow
async def hb_record_chatter() -> int:
    return await hb_record_chatty()


def test_a_chatty_task_is_recorded_at_most_once_per_interval(engine):
    CHATTY.update(gate=threading.Event(), beats=0)
    h = engine.start(hb_record_chatter)
    try:
        wait_for(
            lambda: len(of_kind(h.history(), EventKind.TASK_HEARTBEAT)) >= 3,
            timeout=20,
            what="three heartbeat records",
        )
    finally:
        CHATTY["gate"].set()
    beats = h.result(timeout=10)
    records = of_kind(h.history(), EventKind.TASK_HEARTBEAT)
    assert beats > 10 * len(records)  # thousands of heartbeats, a few records
    interval = record_interval(hb_record_chatty.options)
    assert interval == pytest.approx(0.4)  # 0.8 x the heartbeat timeout
    scheduled = of_kind(h.history(), EventKind.TASK_SCHEDULED)[0]
    times = [scheduled.at] + [e.at for e in records]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap >= interval - 0.005 for gap in gaps), gaps
    details = [json.loads(e.data)["details"]["beat"] for e in records]
    assert details == sorted(details) and len(set(details)) == len(details)
    assert all(e.attempt == 1 and e.name == "hb_record_chatty" for e in records)
    assert record_interval(hb_record_rows_without_timeout.options) == HEARTBEAT_RECORD_INTERVAL


@nc.task
def hb_record_rows_without_timeout() -> None:
    return None


# --- across a crash: the view, the history and the retry see the last checkpoint ------


def kill_child_when_recorded(db: Path, tmp_path: Path) -> None:
    kill_when_ready("heartbeat_child.py", [str(db)], tmp_path / "child.stderr")


def test_a_running_attempts_checkpoint_and_output_survive_a_crash(tmp_path):
    db = tmp_path / "history.duckdb"
    kill_child_when_recorded(db, tmp_path)
    hbw.GATE.clear()
    with Engine(db, make_default=False) as eng:
        h = eng.get("hb-1")
        try:
            wait_for(
                lambda: any(t["running"] for t in eng.progress_of("hb-1")["tasks"]),
                what="the attempt run again after the crash",
            )
            # The view of the new engine: the attempt that was running when the process
            # died, its last checkpoint and what it printed.
            snapshot = ExecutionReader(eng, "hb-1").read()
            assert snapshot.log == ("row 0 done", "row 1 done", "row 2 done")
            html = render(snapshot, live=False)
            assert 'data-testid="nbc-recorded-heartbeat"' in html
            assert "last heartbeat: 3" in html
        finally:
            hbw.GATE.set()
        # The attempt that ran again resumed from the last durable checkpoint.
        assert h.result(timeout=20) == [1, 3]
        records = of_kind(h.history(), EventKind.TASK_HEARTBEAT)
        assert json.loads(records[-1].data)["details"] == 3
        assert [e.attempt for e in records] == [1] * len(records)
    with Engine(db, make_default=False) as eng:  # the history replays with its records
        assert eng.get("hb-1").result(timeout=5) == [1, 3]
        replay(eng.history("hb-1"), hbw.hb_record_resumes)


# --- late results of abandoned attempts are recorded as ignored ---------------------------


@pytest.fixture(scope="module")
def slow_stopping_procs():
    runner = ProcessRunner(max_workers=2, stop_grace=30.0)  # the late result gets to come
    yield runner
    runner.shutdown()


@nc.task(runner="proc", timeout="300ms", retry=nc.Retry(initial="10ms", max_attempts=2))
def ignored_slow_first(gate: str) -> str:
    import os as os_
    import threading as threading_

    if nc.task_info().attempt == 1:
        while not os_.path.exists(gate):  # in the child process: wait for the test
            threading_.Event().wait(0.02)
        return "late"
    return "second"


@nc.workflow
async def ignored_keeps_open(gate: str) -> str:
    value = await ignored_slow_first(gate)
    await nc.signal("finish")
    return value


@pytest.mark.slow
def test_a_late_result_from_a_timed_out_process_attempt_is_recorded_as_ignored(
    slow_stopping_procs, tmp_path
):
    gate = tmp_path / "gate"
    with Engine(tmp_path / "h.duckdb", runners={"proc": slow_stopping_procs}) as eng:
        h = eng.start(ignored_keeps_open, str(gate))
        wait_for(lambda: h.waiting_for == ["finish"], timeout=60, what="the retry's result")
        gate.touch()  # attempt 1, abandoned at its timeout, now returns after all
        wait_for(
            lambda: of_kind(h.history(), EventKind.TASK_RESULT_IGNORED),
            timeout=30,
            what="the ignored result",
        )
        (ignored,) = of_kind(h.history(), EventKind.TASK_RESULT_IGNORED)
        assert (ignored.name, ignored.attempt) == ("ignored_slow_first", 1)
        data = json.loads(ignored.data)
        assert data["reason"] == "it exceeded its start-to-close timeout"
        assert data["outcome"] == "completed" and data["runner"] == "proc"
        assert data["worker"].startswith("pid ")
        html = render(ExecutionReader(eng, h.id).read(), live=False)
        assert "attempt 1: its completed result came after it exceeded its" in html
        h.signal("finish")
        assert h.result(timeout=10) == "second"  # the retry's result, not the late one
        replay(h.history(), ignored_keeps_open)


SYNC_GATE = threading.Event()


@nc.task(timeout="200ms", retry=nc.Retry(max_attempts=1))
def ignored_sync_overrun() -> str:
    SYNC_GATE.wait(30)
    return "late"


@nc.workflow
async def ignored_sync_keeps_open() -> str:
    try:
        await ignored_sync_overrun()
    except nc.TaskFailed as exc:
        await nc.signal("finish")
        return exc.error_type
    return "on time"


def test_a_late_result_from_a_timed_out_thread_attempt_is_recorded_as_ignored(engine):
    SYNC_GATE.clear()
    h = engine.start(ignored_sync_keeps_open)
    try:
        wait_for(lambda: h.waiting_for == ["finish"], what="the timeout")
    finally:
        SYNC_GATE.set()
    wait_for(lambda: of_kind(h.history(), EventKind.TASK_RESULT_IGNORED), what="the late result")
    (ignored,) = of_kind(h.history(), EventKind.TASK_RESULT_IGNORED)
    assert json.loads(ignored.data) == {
        "reason": "it exceeded its start-to-close timeout",
        "outcome": "completed",
        "runner": "thread",
    }
    h.signal("finish")
    assert h.result(timeout=10) == "TaskTimeout"


@nc.task(timeout="200ms", retry=nc.Retry(max_attempts=1))
async def ignored_async_stubborn() -> str:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        return "late anyway"  # swallows its cancellation and returns a value
    return "on time"


@nc.workflow
async def ignored_async_keeps_open() -> str:
    try:
        await ignored_async_stubborn()
    except nc.TaskFailed as exc:
        await nc.signal("finish")
        return exc.error_type
    return "on time"


def test_a_value_from_a_cancelled_async_attempt_is_recorded_as_ignored(engine):
    h = engine.start(ignored_async_keeps_open)
    wait_for(lambda: h.waiting_for == ["finish"], what="the timeout")
    (ignored,) = of_kind(h.history(), EventKind.TASK_RESULT_IGNORED)
    assert json.loads(ignored.data)["outcome"] == "completed"
    h.signal("finish")
    assert h.result(timeout=10) == "TaskTimeout"


@nc.task(runner="proc", heartbeat="500ms")
def hb_record_in_a_child(gate: str) -> int:
    import os as os_
    import threading as threading_

    beats = 0
    while not os_.path.exists(gate):  # in the child process: checkpoint until told
        beats += 1
        nc.heartbeat(details={"beats": beats})
        threading_.Event().wait(0.01)
    return beats


@nc.workflow
async def hb_record_child_flow(gate: str) -> int:
    return await hb_record_in_a_child(gate)


@pytest.mark.slow
def test_heartbeats_from_a_child_process_are_recorded(slow_stopping_procs, tmp_path):
    gate = tmp_path / "gate"
    with Engine(tmp_path / "h.duckdb", runners={"proc": slow_stopping_procs}) as eng:
        h = eng.start(hb_record_child_flow, str(gate))
        try:
            wait_for(
                lambda: of_kind(h.history(), EventKind.TASK_HEARTBEAT),
                timeout=60,
                what="a heartbeat record from the child",
            )
        finally:
            gate.touch()
        beats = h.result(timeout=30)
        records = of_kind(h.history(), EventKind.TASK_HEARTBEAT)
        recorded = [json.loads(e.data)["details"]["beats"] for e in records]
        assert 0 < recorded[-1] <= beats
