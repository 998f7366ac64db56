"""Out-of-range durations are refused where they are given, and nothing one execution
does can stop the engine."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import nbconductor as nc
from nbconductor.engine import offline
from nbconductor.engine.command import SCHEDULE_TASK
from nbconductor.engine.duration import parse_duration
from nbconductor.engine.engine import Engine
from nbconductor.engine.schedules.spec import ScheduleSpec
from nbconductor.errors import DefinitionError, ExecutionFailed, InvalidDuration, ScheduleError
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.testing import wait_for

RANGE = "at most 100 years"


@pytest.mark.parametrize(
    "value", [1e12, "1e12", float("inf"), float("nan"), "999999 weeks", timedelta(days=10**8)]
)
def test_durations_out_of_range_are_refused_with_the_range(value):
    with pytest.raises(InvalidDuration, match=RANGE):
        parse_duration(value, what="sleep()")


def test_the_longest_duration_is_accepted():
    assert parse_duration("5217 weeks") == 5217 * 604800.0


def test_retry_and_schedule_refuse_out_of_range_durations():
    with pytest.raises(InvalidDuration, match=RANGE):
        nc.Retry(initial=1e12)
    with pytest.raises(InvalidDuration, match=RANGE):
        nc.Retry(max_interval="1e30")
    with pytest.raises(DefinitionError, match="finite"):
        nc.Retry(backoff=float("inf"))
    with pytest.raises(ScheduleError, match=RANGE):
        ScheduleSpec.create("s", "wf", every=1e30, known_workflows={"wf"})


def test_retry_delays_stay_within_range_after_many_attempts():
    policy = nc.Retry(initial="2600 weeks", backoff=10.0)
    assert policy.max_interval == parse_duration("36525 days")
    assert policy.delay(100_000) == policy.max_interval  # no OverflowError


@nc.task
def noted(value: str) -> str:
    return value


@nc.workflow
async def sleeps_forever(how: str) -> str:
    await noted("before")
    if how == "nc":
        await nc.sleep(1e12)
    elif how == "inf":
        await asyncio.sleep(float("inf"))
    elif how == "timeout":
        async with asyncio.timeout(1e15):
            await nc.signal("never")
    return "woke"


@nc.workflow
async def quick() -> str:
    return await noted("quick")


@pytest.mark.parametrize("how", ["nc", "inf", "timeout"])
def test_an_out_of_range_wait_fails_its_execution_and_the_engine_goes_on(db_path, how):
    eng = Engine(db_path)
    try:
        h = eng.start(sleeps_forever, how)
        with pytest.raises(ExecutionFailed, match="at most 100 years"):
            h.result(timeout=10)
        assert eng.running
        assert eng.start(quick).result(timeout=10) == "quick"
    finally:
        eng.stop(grace=0)
    eng = Engine(db_path)  # and the file opens again
    try:
        assert eng.running
        assert eng.start(quick).result(timeout=10) == "quick"
    finally:
        eng.stop(grace=0)


@nc.workflow
async def waits_as_told() -> str:
    seconds = await nc.signal("seconds")
    await noted("told")
    await asyncio.sleep(seconds)
    return "done"


def test_an_out_of_range_wait_after_an_offline_signal_does_not_stop_start_up(db_path):
    eng = Engine(db_path)
    h = eng.start(waits_as_told, id="told")
    wait_for(lambda: h.waiting_for == ["seconds"], what="the signal wait")
    eng.stop(grace=0)
    store = DuckDBStore(db_path)
    try:
        offline.signal(store, "told", "seconds", 1e12)
    finally:
        store.close()
    for _ in range(2):  # every later start-up too
        eng = Engine(db_path)
        try:
            assert eng.running
            with pytest.raises(ExecutionFailed, match="at most 100 years"):
                eng.get("told").result(timeout=10)
            assert eng.start(quick).result(timeout=10) == "quick"
        finally:
            eng.stop(grace=0)


def test_an_error_carrying_out_one_execution_parks_it_only(db_path):
    # Fault injection: the task handler fails for one task name, as any engine bug
    # caused by one execution's commands would.
    eng = Engine(db_path)
    activations = eng._activations
    real = activations._handlers[SCHEDULE_TASK]

    def failing(live, command):
        if live.record.workflow == "sleeps_forever":
            raise RuntimeError("injected fault")
        real(live, command)

    activations.on_command(SCHEDULE_TASK, failing)
    try:
        bad = eng.start(sleeps_forever, "nc")
        wait_for(lambda: "injected fault" in (bad.condition or ""), what="the parked one")
        assert bad.condition.startswith("blocked: RuntimeError")
        assert eng.running
        assert eng.start(quick).result(timeout=10) == "quick"
        assert eng.status()["blocked"] == 1
    finally:
        eng.stop(grace=0)
