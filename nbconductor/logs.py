"""What nbconductor logs, through :mod:`logging`, and at which level.

Every record goes to a logger under ``nbconductor`` (``nbconductor.engine`` for
executions and tasks, ``nbconductor.remote`` for the control socket, ...), so an
application configures them like any other: ``logging.getLogger("nbconductor")``.
The package adds only a ``NullHandler``, as a library should: nothing is printed until
the application configures logging (``logging.basicConfig(level="INFO")``), so a
notebook's cells do not fill with log lines. The headless worker configures it: its
stderr carries these records (as JSON lines with ``--json-logs``).

The levels are chosen so that WARNING and above is trouble, and INFO tells the story:

- ERROR: a task failed for good (after its retries; with its traceback); an execution
  failed because its workflow code raised (not because a task or child did: that one
  was logged already). One failure, one ERROR record.
- WARNING: an execution is parked as blocked (its history does not match its code, or
  its code failed outside its coroutine); it timed out or was terminated; it failed
  because a task or child it awaited failed.
- INFO: an attempt failed and will be retried; an execution waits for its definition,
  or runs again after it was parked; open executions recovered at start; executions
  completed or cancelled; a control connection dropped.

:class:`JsonFormatter` prints records as JSON lines (the worker's ``--json-logs``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ("JsonFormatter", "engine_log")

#: Executions, tasks, recovery: the engine's logger.
engine_log = logging.getLogger("nbconductor.engine")
# Without it, Python's last-resort handler would print WARNING and above on stderr:
# in a kernel, into whichever cell runs.
logging.getLogger("nbconductor").addHandler(logging.NullHandler())


class _Failure(Protocol):  # nbconductor.engine.failure.Failure, without importing it
    type: str
    message: str
    traceback: str | None


def task_failed(
    execution_id: str, workflow: str, task: str, attempt: int, error: _Failure, retry_at: Any
) -> None:
    """A task attempt failed: INFO when a retry follows, else ERROR with the traceback."""
    where = f"task {task} attempt {attempt} of execution {execution_id} ({workflow})"
    fields = {"execution_id": execution_id, "workflow": workflow, "task": task}
    if retry_at is not None:
        engine_log.info(
            "%s failed, retry at %s: %s: %s",
            where,
            retry_at,
            error.type,
            error.message,
            extra={"nbconductor": {**fields, "attempt": attempt, "event": "task_retry"}},
        )
        return
    trace = f"\n{error.traceback.rstrip()}" if error.traceback else ""
    engine_log.error(
        "%s failed for good: %s: %s%s",
        where,
        error.type,
        error.message,
        trace,
        extra={"nbconductor": {**fields, "attempt": attempt, "event": "task_failed"}},
    )


#: Failures whose cause was logged already (as the task's or child's own failure).
_CAUSED_BY_AWAITED = frozenset({"TaskFailed", "ChildFailed"})


def execution_closed(execution_id: str, workflow: str, status: Any, error: _Failure | None) -> None:
    """An execution closed: ERROR for a failure of its own code, WARNING for other
    trouble (timed out, terminated, a failure it awaited), INFO otherwise."""
    value = getattr(status, "value", str(status))
    level = logging.INFO
    if value == "failed":
        caused = error is not None and error.type in _CAUSED_BY_AWAITED
        level = logging.WARNING if caused else logging.ERROR
    elif value in ("timed_out", "terminated"):
        level = logging.WARNING
    if not engine_log.isEnabledFor(level):  # most closes, unlogged: build no record
        return
    why = f": {error.type}: {error.message}" if error is not None else ""
    engine_log.log(
        level,
        "execution %s (%s) %s%s",
        execution_id,
        workflow,
        value,
        why,
        extra={
            "nbconductor": {
                "execution_id": execution_id,
                "workflow": workflow,
                "status": value,
                "event": "execution_closed",
            }
        },
    )


def execution_parked(execution_id: str, workflow: str, condition: str, before: str | None) -> None:
    """An execution's condition changed: WARNING when blocked, INFO when it waits for
    its definition or runs again. Unchanged conditions (a rescan) log nothing."""
    if (condition or None) == before:
        return
    fields = {"execution_id": execution_id, "workflow": workflow, "event": "execution_parked"}
    if not condition:
        engine_log.info(
            "execution %s (%s) runs again", execution_id, workflow, extra={"nbconductor": fields}
        )
        return
    level = logging.WARNING if condition.startswith("blocked") else logging.INFO
    engine_log.log(
        level,
        "execution %s (%s) parked: %s",
        execution_id,
        workflow,
        condition,
        extra={"nbconductor": fields},
    )


def recovered(count: int) -> None:
    """Open executions found at start."""
    engine_log.info(
        "recovering %d open execution%s",
        count,
        "s" * (count != 1),
        extra={"nbconductor": {"count": count, "event": "recovered"}},
    )


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``exception`` when there is one, and the record's ``nbconductor``
    fields (``execution_id``, ``workflow``, ``task``, ``event``, ...) at the top level.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        fields = getattr(record, "nbconductor", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if k not in line})
        return json.dumps(line, default=str)
