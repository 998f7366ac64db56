"""Each task timeout kind, heartbeats and the workflow execution timeout (real clock)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.engine.payload import read_data
from nbconductor.errors import ExecutionFailed, TaskFailed
from nbconductor.storage.records import EventKind, Status
from nbconductor.testing import wait_for

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release_blocked_tasks():
    RELEASE.clear()
    yield
    RELEASE.set()


def timeouts_in(history) -> list[tuple[int, str, bool]]:
    out = []
    for e in history:
        if e.kind is EventKind.TASK_FAILED:
            data = read_data(e.data)
            out.append((e.attempt, data["error"].get("timeout"), data["final"]))
    return out


@nc.task(timeout=0.2, retry=nc.Retry(initial=0.01, max_attempts=2))
def hangs() -> str:
    RELEASE.wait(30)
    return "late"


@nc.workflow
async def start_to_close() -> str:
    try:
        return await hangs()
    except TaskFailed as exc:
        return f"{exc.error_type} after {exc.attempts}"


@pytest.mark.duckdb
def test_start_to_close_timeout_is_retried_then_fails(engine):
    h = engine.start(start_to_close)
    assert h.result(timeout=10) == "TaskTimeout after 2"
    assert timeouts_in(h.history()) == [(1, "start_to_close", False), (2, "start_to_close", True)]


@nc.task(heartbeat=0.3, retry=nc.Retry(max_attempts=1))
def beats_then_stalls(beats: int) -> str:
    for i in range(beats):
        nc.heartbeat(details=i, progress=i / beats)
        RELEASE.wait(0.05)
    RELEASE.wait(30)
    return "late"


@nc.workflow
async def heartbeating() -> str:
    try:
        return await beats_then_stalls(10)
    except TaskFailed as exc:
        return exc.error_message


def test_heartbeat_timeout(engine):
    message = engine.start(heartbeating).result(timeout=10)
    assert "heartbeat timeout of 0.3s" in message


@nc.task
def blocker() -> str:
    RELEASE.wait(30)
    return "released"


@nc.task(schedule_to_start=0.2, retry=nc.Retry(max_attempts=1))
def queued() -> str:
    return "ran"


@nc.workflow
async def starved() -> str:
    first = blocker()  # occupies the only worker
    try:
        await queued()
    except TaskFailed as exc:
        RELEASE.set()
        await first
        return exc.error_message
    return "not starved"


def test_schedule_to_start_timeout(db_path):
    eng = Engine(db_path, task_workers=1)
    try:
        message = eng.start(starved).result(timeout=10)
        assert "schedule-to-start timeout of 0.2s" in message
    finally:
        eng.stop(grace=0)


@nc.task(schedule_to_close=0.3, retry=nc.Retry(initial=0.05, backoff=1.0))
def never_succeeds() -> None:
    raise ConnectionError("down")


@nc.workflow
async def bounded_retries() -> str:
    try:
        await never_succeeds()
    except TaskFailed as exc:
        return f"{exc.error_type}: {exc.error_message}"
    return "succeeded"


def test_schedule_to_close_bounds_all_retries(engine):
    h = engine.start(bounded_retries)
    result = h.result(timeout=10)
    failures = timeouts_in(h.history())
    assert failures[-1][2] is True  # the last failure is final
    assert len(failures) >= 2
    assert result.startswith(("TaskTimeout", "ConnectionError"))


@nc.workflow(timeout=0.3)
async def too_slow() -> str:
    await nc.sleep("1 hour")
    return "never"


def test_workflow_execution_timeout(engine):
    h = engine.start(too_slow)
    with pytest.raises(ExecutionFailed, match="TimedOut"):
        h.result(timeout=10)
    assert h.status is Status.TIMED_OUT
    assert h.history()[-1].kind is EventKind.EXECUTION_TIMED_OUT


@nc.workflow
async def sleeps_briefly() -> str:
    await nc.sleep(0.05)
    return "woke"


def test_cancel_flag_reaches_running_task(engine):
    seen = threading.Event()

    @nc.task(name="watches_cancel", timeout=0.2, retry=nc.Retry(max_attempts=1))
    def watches_cancel() -> str:
        while not nc.cancelled():
            RELEASE.wait(0.01)
        seen.set()
        return "stopped"

    @nc.workflow(name="cancels_task")
    async def cancels_task() -> str:
        try:
            await watches_cancel()
        except TaskFailed:
            return "timed out"
        return "finished"

    assert engine.start(cancels_task).result(timeout=10) == "timed out"
    assert seen.wait(5), "the task never saw its cancellation"


def test_a_hung_task_does_not_keep_the_process_alive(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "hung.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, threading, nbconductor as nc

            @nc.task(timeout=0.1, retry=nc.Retry(max_attempts=1))
            def hang():
                threading.Event().wait(600)

            @nc.workflow
            async def flow():
                try:
                    await hang()
                except nc.TaskFailed:
                    return "timed out"

            eng = nc.Engine(sys.argv[1])
            print(eng.start(flow).result(30), flush=True)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "h.duckdb")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "timed out"


ASYNC_RUNS: list[str] = []


@nc.task(timeout="0.3s", retry=nc.Retry(max_attempts=1))
async def overstays() -> str:
    ASYNC_RUNS.append("started")
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        ASYNC_RUNS.append("cancelled")
        raise
    return "late"


@nc.workflow
async def waits_for_overstay() -> str:
    try:
        return await overstays()
    except nc.TaskFailed as exc:
        return exc.error_type


def test_an_async_task_past_its_timeout_is_cancelled(engine):
    assert engine.start(waits_for_overstay).result(timeout=10) == "TaskTimeout"
    wait_for(lambda: ASYNC_RUNS == ["started", "cancelled"], what="the attempt's cancellation")
    assert engine.status()["running_tasks"] == 0
