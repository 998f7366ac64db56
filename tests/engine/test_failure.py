"""The one failure shape: built from exceptions, stored as JSON, never failing itself."""

from __future__ import annotations

import json
import threading

import pytest

import nbconductor as nc
from nbconductor.engine.failure import Failure, summary
from nbconductor.errors import ApplicationError
from nbconductor.storage.records import EventKind, Status


def raise_and_catch(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def stored(failure: Failure) -> dict:
    """What an execution record's ``error`` column holds, read back."""
    return json.loads(failure.to_json())


def test_an_exception_is_described_with_its_type_message_and_traceback():
    got = stored(Failure.from_exception(raise_and_catch(ValueError("bad amount: -3"))))
    assert (got["type"], got["module"], got["message"]) == (
        "ValueError",
        "builtins",
        "bad amount: -3",
    )
    assert "raise_and_catch" in got["traceback"]
    assert got["traceback"].rstrip().endswith("ValueError: bad amount: -3")
    assert got["mro"] == ["Exception"]  # the bases, for retry policies
    assert "non_retryable" not in got
    assert list(got) == ["type", "module", "message", "traceback", "mro"]  # stored key order


def test_application_error_keeps_non_retryable_and_details():
    exc = raise_and_catch(
        ApplicationError("card declined", non_retryable=True, details={"codes": (51, 5)})
    )
    got = stored(Failure.from_exception(exc))
    assert got["type"] == "ApplicationError"
    assert got["module"] == "nbconductor.errors"
    assert got["non_retryable"] is True
    assert got["details"] == repr({"codes": (51, 5)})


def test_describing_never_fails_on_a_strange_exception():
    class Grumpy(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    failure = Failure.from_exception(Grumpy())
    assert failure.message.startswith("<unprintable ")
    assert failure.message.endswith("Grumpy>")
    odd = Failure.from_exception(ApplicationError("x", details=threading.Lock()))
    assert odd.details.startswith("<unlocked _thread.lock")


def test_interrupts_are_not_retryable():
    failure = Failure.from_exception(raise_and_catch(KeyboardInterrupt()))
    assert failure.non_retryable is True
    assert not failure.retryable
    assert "not retried" in failure.message


def test_engine_failures_have_only_type_and_message():
    assert stored(Failure("Terminated", "no need")) == {"type": "Terminated", "message": "no need"}
    assert summary(Failure("Terminated", "no need")) == "Terminated: no need"
    assert summary({"type": "Terminated"}) == "Terminated"


def test_a_task_timeout_is_a_final_timeout_error():
    failure = Failure.task_timeout("too slow", "schedule_to_close", final=True)
    assert failure.timeout == "schedule_to_close" and failure.final is True
    assert not failure.retryable
    assert Failure.from_dict(failure.to_dict()) == failure


@nc.task(retry=nc.Retry(max_attempts=1))
def refuses(amount: int) -> None:
    raise ValueError(f"bad amount: {amount}")


@nc.workflow
async def pays(amount: int) -> None:
    await refuses(amount)


def test_a_failed_task_and_execution_store_the_same_shape(skipping_engine):
    handle = skipping_engine.start(pays, -3)
    with pytest.raises(nc.ExecutionFailed, match="bad amount: -3"):
        handle.result(timeout=10)
    failed = next(e for e in handle.history() if e.kind is EventKind.TASK_FAILED)
    task_error = json.loads(failed.data)["error"]
    assert list(task_error) == ["type", "module", "message", "traceback", "mro"]
    record = handle.describe()
    assert record.status is Status.FAILED
    assert json.loads(record.error)["type"] == "TaskFailed"
