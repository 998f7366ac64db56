"""Handles: what ``start()`` returns, to follow and wait on one execution."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from nbconductor.engine import payload
from nbconductor.engine.failure import summary
from nbconductor.errors import ExecutionFailed
from nbconductor.storage.records import EventRecord, ExecutionRecord, Status

if TYPE_CHECKING:
    from nbconductor.engine.executor import Engine


class Handle:
    """A reference to one execution; cheap to create, safe to use from any thread.

    ``await handle`` waits without blocking the thread's event loop (use it in notebook
    cells: widget clicks keep flowing); ``handle.result(timeout)`` blocks.
    """

    def __init__(self, engine: Engine, execution_id: str, workflow: str | None) -> None:
        self.engine = engine
        self.id = execution_id
        self.workflow = workflow

    @property
    def status(self) -> Status:
        """Running, Completed, Failed, Cancelled, Terminated, TimedOut or ContinuedAsNew."""
        return self.engine._status_of(self.id)

    @property
    def condition(self) -> str | None:
        """Why an open execution is not progressing (waiting for a definition, blocked)."""
        return self.engine._condition_of(self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the execution to close and return its result.

        Raises:
            ExecutionFailed: it failed, was cancelled, terminated or timed out.
            TimeoutError: still open after ``timeout`` seconds (the execution goes on).
        """
        future = self.engine._result_future(self.id)
        try:
            record = future.result(timeout)
        except TimeoutError:
            condition = self.condition
            extra = f" ({condition})" if condition else ""
            raise TimeoutError(
                f"execution {self.id!r} is still running after {timeout}s{extra}; it goes on "
                "in the background"
            ) from None
        return _outcome(record)

    def __await__(self):
        future = self.engine._result_future(self.id)
        record = yield from asyncio.wrap_future(future).__await__()
        return _outcome(record)

    def history(self) -> list[EventRecord]:
        """The recorded events of this execution, in order."""
        return self.engine.history(self.id)

    def describe(self) -> ExecutionRecord:
        """The execution's stored record (status, times, input, result, error)."""
        return self.engine.describe(self.id)

    def __repr__(self) -> str:
        try:
            status = self.status.title
        except Exception:  # a repr must not raise (stopped engine, closed store)
            status = "unknown"
        return f"<Execution {self.workflow or '?'} {self.id} {status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Handle) and other.id == self.id and other.engine is self.engine

    def __hash__(self) -> int:
        return hash(self.id)


def _outcome(record: ExecutionRecord) -> Any:
    if record.status is Status.COMPLETED:
        return payload.decode_value(record.result)
    error = json.loads(record.error) if record.error else {}
    detail = f": {summary(error)}" if error else ""
    raise ExecutionFailed(
        f"execution {record.id!r} of workflow {record.workflow!r} ended "
        f"{record.status.title}{detail}",
        status=record.status.value,
        error=error,
    )
