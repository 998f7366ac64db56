"""What the engine logs through ``logging``: one ERROR per failure, warnings for parked
executions, the story at INFO; the worker's JSON formatter over the same records."""

from __future__ import annotations

import json
import logging

import pytest

import nbconductor as nc
from nbconductor.engine.definition import Registry
from nbconductor.engine.engine import Engine
from nbconductor.logs import JsonFormatter
from nbconductor.testing import wait_for


@nc.task(retry=nc.Retry(initial="10ms", max_attempts=3))
def logged_decline(order: str) -> None:
    raise ValueError(f"card declined for {order}")


@nc.workflow
async def pays_by_card(order: str) -> None:
    await logged_decline(order)


@nc.workflow
async def refunds_declined(order: str) -> str:
    try:
        await logged_decline(order)
    except nc.TaskFailed:
        return "refunded"
    return "paid"


@nc.workflow
async def raises_in_workflow() -> None:
    raise KeyError("no such customer")


def _records(caplog, level=logging.INFO):
    return [r for r in caplog.records if r.name.startswith("nbconductor") and r.levelno >= level]


def test_a_failing_task_is_one_error_record_with_its_traceback(skipping_engine, caplog):
    caplog.set_level(logging.INFO, logger="nbconductor")
    handle = skipping_engine.start(pays_by_card, "A-1")
    with pytest.raises(nc.ExecutionFailed):
        handle.result(timeout=20)
    errors = _records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert "task logged_decline attempt 3" in message and handle.id in message
    assert "ValueError: card declined for A-1" in message
    assert "Traceback (most recent call last)" in message  # where it failed
    assert errors[0].nbconductor["event"] == "task_failed"
    # The retries are told at INFO, the execution's failure (caused by the task) at WARNING.
    retries = [r for r in _records(caplog) if r.nbconductor.get("event") == "task_retry"]
    assert [r.nbconductor["attempt"] for r in retries] == [1, 2]
    assert all(r.levelno == logging.INFO for r in retries)
    closed = [r for r in _records(caplog) if r.nbconductor.get("event") == "execution_closed"]
    assert [(r.levelno, r.nbconductor["status"]) for r in closed] == [(logging.WARNING, "failed")]


def test_a_failure_the_workflow_handles_is_still_the_tasks_error(skipping_engine, caplog):
    caplog.set_level(logging.INFO, logger="nbconductor")
    assert skipping_engine.start(refunds_declined, "A-2").result(timeout=20) == "refunded"
    assert len(_records(caplog, logging.ERROR)) == 1
    closed = [r for r in _records(caplog) if r.nbconductor.get("event") == "execution_closed"]
    assert [(r.levelno, r.nbconductor["status"]) for r in closed] == [(logging.INFO, "completed")]


def test_workflow_code_that_raises_is_the_executions_error(skipping_engine, caplog):
    caplog.set_level(logging.INFO, logger="nbconductor")
    handle = skipping_engine.start(raises_in_workflow)
    with pytest.raises(nc.ExecutionFailed):
        handle.result(timeout=20)
    (error,) = _records(caplog, logging.ERROR)
    assert error.getMessage().startswith(
        f"execution {handle.id} (raises_in_workflow) failed: KeyError"
    )


def test_a_healthy_run_logs_nothing_at_warning(skipping_engine, caplog):
    caplog.set_level(logging.INFO, logger="nbconductor")

    @nc.workflow
    async def fine() -> int:
        return 1

    assert skipping_engine.start(fine).result(timeout=20) == 1
    assert _records(caplog, logging.WARNING) == []


def test_recovery_and_a_missing_definition_across_a_restart(tmp_path, caplog, registry):
    caplog.set_level(logging.INFO, logger="nbconductor")

    @nc.workflow
    async def logged_waits() -> str:
        return await nc.signal("go")

    db = tmp_path / "h.duckdb"
    first = Engine(db, make_default=False)
    first.start(logged_waits, id="w-1")
    wait_for(lambda: "go" in first.waiting_signals("w-1"), 10, "w-1 to wait")
    first.stop()
    caplog.clear()
    # A new engine whose registry lacks the workflow: recovered, then parked at INFO.
    second = Engine(db, registry=Registry(), make_default=False)
    try:
        wait_for(lambda: second.describe("w-1").condition, 10, "w-1 to be parked")
        messages = [(r.levelno, r.getMessage()) for r in _records(caplog)]
        assert (logging.INFO, "recovering 1 open execution") in messages
        parked = "execution w-1 (logged_waits) parked: waiting for the definition of workflow 'logged_waits'"
        assert (logging.INFO, parked) in messages
        assert _records(caplog, logging.WARNING) == []
    finally:
        second.stop()


def test_the_json_formatter_puts_the_fields_at_the_top_level(skipping_engine, caplog):
    caplog.set_level(logging.INFO, logger="nbconductor")
    handle = skipping_engine.start(pays_by_card, "A-3")
    with pytest.raises(nc.ExecutionFailed):
        handle.result(timeout=20)
    (error,) = _records(caplog, logging.ERROR)
    line = json.loads(JsonFormatter().format(error))
    assert line["level"] == "ERROR" and line["logger"] == "nbconductor.engine"
    assert line["execution_id"] == handle.id and line["task"] == "logged_decline"
    assert line["event"] == "task_failed" and line["time"].endswith("Z")
