"""Running workflows: sequence, parallelism, race, retries, helpers, idempotent start."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

import nbconductor as nc
from nbconductor.errors import ExecutionFailed, PayloadError, TaskFailed
from nbconductor.storage.records import EventKind, Status

calls: dict[str, int] = {}
lock = threading.Lock()


def count(name: str) -> int:
    with lock:
        calls[name] = calls.get(name, 0) + 1
        return calls[name]


@nc.task
def double(i: int) -> int:
    return i * 2


@nc.task
async def async_triple(i: int) -> int:
    await asyncio.sleep(0)  # a real await: the attempt yields to the engine loop
    return i * 3


@nc.workflow
async def sequence(n: int) -> list[int]:
    return [await double(i) for i in range(n)]


@pytest.mark.duckdb
def test_sequential_tasks(engine):
    h = engine.start(sequence, 5)
    assert h.result(timeout=10) == [0, 2, 4, 6, 8]
    assert h.status is Status.COMPLETED
    kinds = [e.kind for e in h.history()]
    assert kinds[0] is EventKind.EXECUTION_STARTED
    assert kinds.count(EventKind.TASK_SCHEDULED) == 5
    assert kinds.count(EventKind.TASK_COMPLETED) == 5
    assert kinds[-1] is EventKind.EXECUTION_COMPLETED
    assert [e.seq for e in h.history()] == list(range(1, len(kinds) + 1))


@nc.workflow
async def fan_out(n: int) -> int:
    doubled = await nc.gather(*[double(i) for i in range(n)])
    tripled = await asyncio.gather(*[async_triple(i) for i in range(n)])
    return sum(doubled) + sum(tripled)


@pytest.mark.duckdb
def test_gather_of_50(engine):
    h = engine.start(fan_out, 50)
    assert h.result(timeout=10) == sum(range(50)) * 5
    scheduled = [e for e in h.history() if e.kind is EventKind.TASK_SCHEDULED]
    assert len(scheduled) == 100
    assert [e.command for e in scheduled] == list(range(1, 101))


@nc.task
def slow(gate_name: str) -> str:
    GATES[gate_name].wait(10)
    return gate_name


GATES: dict[str, threading.Event] = {}


@nc.workflow
async def racer() -> str:
    return await nc.race(slow("never"), double(21))


def test_race_returns_first_and_cancels_the_rest(engine):
    GATES["never"] = threading.Event()
    try:
        h = engine.start(racer)
        assert h.result(timeout=10) == 42
        kinds = [(e.kind, e.command) for e in h.history()]
        assert (EventKind.TASK_CANCEL_REQUESTED, 1) in kinds
        assert (EventKind.TASK_COMPLETED, 1) not in kinds
    finally:
        GATES["never"].set()


@nc.task(retry=nc.Retry(initial="2s", backoff=3.0, max_attempts=4))
def fails_three_times(key: str) -> str:
    n = count(key)
    if n <= 3:
        raise ConnectionError(f"attempt {n} failed")
    return f"ok after {n}"


@nc.workflow
async def retrying(key: str) -> str:
    return await fails_three_times(key)


def test_retries_wait_durably_with_backoff(skipping_engine):
    h = skipping_engine.start(retrying, "retry-backoff")
    assert h.result(timeout=10) == "ok after 4"
    failures = [e for e in h.history() if e.kind is EventKind.TASK_FAILED]
    assert [e.attempt for e in failures] == [1, 2, 3]
    from nbconductor.engine.payload import read_data

    waits = []
    for e in failures:
        data = read_data(e.data)
        assert data["final"] is False
        assert data["error"]["type"] == "ConnectionError"
        waits.append((_parse(data["retry_at"]) - e.at).total_seconds())
    assert waits == [2.0, 6.0, 18.0]
    completed = next(e for e in h.history() if e.kind is EventKind.TASK_COMPLETED)
    assert completed.attempt == 4


def _parse(text):
    from datetime import datetime

    return datetime.fromisoformat(text)


@nc.task(retry=nc.Retry(initial=0.01, max_attempts=2))
def always_fails() -> None:
    raise KeyError("missing")


@nc.task(retry=nc.Retry(initial=0.01, non_retryable=[ValueError]))
def bad_input() -> None:
    raise ValueError("not a number")


@nc.task(retry=nc.Retry(initial=0.01))
def app_error() -> None:
    raise nc.ApplicationError("card declined", non_retryable=True)


@nc.workflow
async def catches() -> dict:
    out = {}
    for name, fn in (("exhausted", always_fails), ("non_retryable", bad_input), ("app", app_error)):
        try:
            await fn()
        except TaskFailed as exc:
            out[name] = (exc.attempts, exc.error_type, exc.error_message)
    return out


def test_workflow_catches_task_failed(skipping_engine):
    result = skipping_engine.start(catches).result(timeout=10)
    assert result == {
        "exhausted": (2, "KeyError", "'missing'"),
        "non_retryable": (1, "ValueError", "not a number"),
        "app": (1, "ApplicationError", "card declined"),
    }


@nc.workflow
async def uncaught() -> None:
    await always_fails()


def test_uncaught_task_failure_fails_the_execution(skipping_engine):
    h = skipping_engine.start(uncaught)
    with pytest.raises(ExecutionFailed, match="TaskFailed") as info:
        h.result(timeout=10)
    assert info.value.status == "failed"
    assert "KeyError" in info.value.error["message"]
    assert h.status is Status.FAILED


@nc.task
def interrupts() -> None:
    raise KeyboardInterrupt


@nc.workflow
async def interrupted() -> str:
    try:
        await interrupts()
    except TaskFailed as exc:
        return exc.error_message
    return "no error"


def test_base_exception_in_task_is_a_recorded_failure_not_retried(engine):
    message = engine.start(interrupted).result(timeout=10)
    assert "KeyboardInterrupt" in message and "not retried" in message


@pytest.mark.duckdb
def test_idempotent_start(engine):
    first = engine.start(sequence, 2, id="same-id")
    second = engine.start(sequence, 3, id="same-id")
    assert first == second
    assert first.result(timeout=10) == [0, 2]
    third = engine.start(sequence, 4, id="same-id")
    assert third.result(timeout=10) == [0, 2]
    assert len(engine.list(name="sequence")) == 1


@nc.workflow
async def helpers() -> dict:
    first = nc.now()
    await nc.sleep(timedelta(hours=1))
    return {
        "now": [first.isoformat(), nc.now().isoformat()],
        "random": nc.random(),
        "uuid": str(nc.uuid4()),
        "side": nc.side_effect(lambda: count("side-effect")),
    }


def test_deterministic_helpers(skipping_engine):
    result = skipping_engine.start(helpers, id="helpers-1").result(timeout=10)
    t0, t1 = (_parse(t) for t in result["now"])
    assert t1 - t0 == timedelta(hours=1)
    again = skipping_engine.start(helpers, id="helpers-2").result(timeout=10)
    assert again["uuid"] != result["uuid"]  # seeded per execution


def test_unserializable_argument_names_it(engine):
    with pytest.raises(PayloadError, match="argument 'n'"):
        engine.start(sequence, threading.Lock())


def test_wrong_arguments_fail_at_start(engine):
    with pytest.raises(TypeError, match="sequence"):
        engine.start(sequence, 1, 2, 3)


@nc.workflow
async def returns_lock():
    return threading.Lock()


@pytest.mark.duckdb
def test_unserializable_result_fails_the_execution(engine):
    with pytest.raises(ExecutionFailed, match="PayloadError"):
        engine.start(returns_lock).result(timeout=10)


@pytest.mark.duckdb
def test_list_get_and_describe(engine):
    handles = [engine.start(sequence, 1, id=f"list-{i}") for i in range(3)]
    for h in handles:
        h.result(timeout=10)
    assert {r.id for r in engine.list(status="completed")} >= {"list-0", "list-1", "list-2"}
    assert engine.list(status="running") == []
    assert len(engine.list(name="sequence", limit=2)) == 2
    assert engine.get("list-1").result(timeout=1) == [0]
    assert engine.describe("list-2").status is Status.COMPLETED
    with pytest.raises(nc.ExecutionNotFound):
        engine.get("nope")
    with pytest.raises(ValueError, match="unknown status"):
        engine.list(status="sleeping")


def test_await_handle_on_another_loop(engine):
    async def main():
        return await engine.start(sequence, 3)

    assert asyncio.run(main()) == [0, 2, 4]


def test_seven_day_sleep_finishes_at_once_with_time_skipping(skipping_engine):
    @nc.workflow(name="week_long")
    async def week_long() -> str:
        await nc.sleep("7 days")
        await asyncio.sleep(3600)
        return "done"

    h = skipping_engine.start(week_long)
    assert h.result(timeout=5) == "done"
    history = h.history()
    fired = [e.at - history[0].at for e in history if e.kind is EventKind.TIMER_FIRED]
    assert fired == [timedelta(days=7), timedelta(days=7, hours=1)]


class Opaque:
    def __init__(self, value):
        self.value = value


@nc.task
def unwrap(box: Opaque) -> int:
    return box.value


@nc.workflow
async def opaque_flow(box: Opaque) -> int:
    return await unwrap(box)


def test_pickle_is_opt_in(db_path):
    from nbconductor.engine.engine import Engine

    plain = Engine(None, make_default=False)
    try:
        with pytest.raises(PayloadError, match="allow_pickle=True"):
            plain.start(opaque_flow, Opaque(7))
    finally:
        plain.stop(grace=0)
    opted = Engine(db_path, make_default=False, allow_pickle=True)
    try:
        assert opted.start(opaque_flow, Opaque(7)).result(timeout=10) == 7
    finally:
        opted.stop(grace=0)


def test_pickle_opt_in_belongs_to_the_engine_that_chose_it():
    """One engine opting in does not make another one pickle or unpickle."""
    from nbconductor.engine.engine import Engine
    from nbconductor.storage.memory import MemoryStore

    store = MemoryStore()
    opted = Engine(store, make_default=False, allow_pickle=True)
    plain = Engine(None, make_default=False)
    try:
        handle = opted.start(opaque_flow, Opaque(7))
        assert handle.result(timeout=10) == 7
        with pytest.raises(PayloadError, match="allow_pickle=True"):
            plain.start(opaque_flow, Opaque(7))  # pickling refused
        with pytest.raises(PayloadError, match="allow_pickle=True"):
            plain.payloads.decode_input(store.get_execution(handle.id).input)  # unpickling
        assert opted.payloads.decode_input(store.get_execution(handle.id).input)[0][0].value == 7
    finally:
        opted.stop(grace=0)
        plain.stop(grace=0)


def test_idempotent_start_answers_with_the_existing_execution_at_once(engine):
    first = engine.start(sequence, 1, id="exists-1")
    first.result(timeout=10)
    with pytest.raises(nc.ExecutionAlreadyExists):  # another workflow, same id
        engine.start(fan_out, 3, id="exists-1")
    again = engine.start(sequence, 3, id="exists-1")
    assert again.workflow == "sequence"
    assert again.status is Status.COMPLETED  # no "Running" moment
    assert again.result(timeout=1) == [0]


@nc.workflow
async def raced_with_deadline() -> str:
    try:
        return await asyncio.wait_for(nc.race(slow("a"), slow("b")), timeout=0.2)
    except TimeoutError:
        return "deadline"


def test_a_cancelled_race_cancels_its_contenders(engine):
    GATES["a"], GATES["b"] = threading.Event(), threading.Event()
    try:
        h = engine.start(raced_with_deadline)
        assert h.result(timeout=10) == "deadline"
        cancelled = [e.command for e in h.history() if e.kind is EventKind.TASK_CANCEL_REQUESTED]
        assert cancelled == [1, 2]
    finally:
        GATES["a"].set()
        GATES["b"].set()
