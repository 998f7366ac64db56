"""Handles: what ``start()`` returns, to follow and wait on one execution."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any, Protocol

from nbconductor.engine.failure import summary
from nbconductor.engine.payload import Payloads
from nbconductor.engine.roster import Roster
from nbconductor.engine.roster import next_run as _next_run
from nbconductor.errors import ExecutionFailed
from nbconductor.storage.records import EventRecord, ExecutionRecord, Status
from nbconductor.storage.store import Store

NOTICE_AFTER = 2.0  # seconds a blocking result() waits before saying why it waits


class Steerable(Protocol):
    """What a Handle needs from its engine (the Engine's public surface)."""

    executions: Roster
    store: Store
    payloads: Payloads

    def signal(self, execution_id: str, name: str, payload: Any = None) -> None: ...
    def cancel(self, execution_id: str) -> None: ...
    def terminate(self, execution_id: str, reason: str | None = None) -> None: ...
    def update(
        self, execution_id: str, name: str, payload: Any = None, *, timeout: float
    ) -> Any: ...
    def query(self, execution_id: str, name: str, *args: Any) -> Any: ...
    def state_of(self, execution_id: str) -> dict: ...
    def progress_of(self, execution_id: str) -> dict: ...
    def subscribe(self, callback: Any) -> Any: ...
    def waiting_signals(self, execution_id: str) -> list[str]: ...
    def fork(
        self, execution_id: str, at: int | None = None, *, id: str | None = None
    ) -> Handle: ...
    def history(self, execution_id: str) -> list[EventRecord]: ...
    def describe(self, execution_id: str) -> ExecutionRecord: ...


class Handle:
    """A reference to one execution; cheap to create, safe to use from any thread.

    ``await handle`` waits without blocking the thread's event loop (use it in notebook
    cells: widget clicks keep flowing); ``handle.result(timeout)`` blocks.
    """

    def __init__(self, engine: Steerable, execution_id: str, workflow: str | None) -> None:
        self.engine = engine
        self.id = execution_id
        self.workflow = workflow

    @property
    def status(self) -> Status:
        """Running, Completed, Failed, Cancelled, Terminated or TimedOut: the state of
        the execution, or of the latest run of its continue-as-new chain."""
        return self.engine.executions.status_of(self.latest_run)

    @property
    def latest_run(self) -> str:
        """The id of the chain's latest run (this id unless it continued as new)."""
        return self.engine.executions.latest(self.id)

    @property
    def condition(self) -> str | None:
        """Why an open execution is not progressing (waiting for a definition, blocked)."""
        return self.engine.executions.condition_of(self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the execution to close and return its result.

        Raises:
            ExecutionFailed: it failed, was cancelled, terminated or timed out.
            TimeoutError: still open after ``timeout`` seconds (the execution goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        execution_id = self.id
        while True:
            future = self.engine.executions.result_future(execution_id)
            record = self._wait(future, execution_id, deadline, timeout)
            execution_id = _next_run(record)
            if execution_id is None:
                return _outcome(record, self.engine.payloads)

    def _wait(self, future, execution_id: str, deadline: float | None, timeout) -> Any:
        # Short slices keep the wait interruptible (Interrupt kernel stops the waiting,
        # not the execution), and let us say why an execution does not finish.
        told = False
        started = time.monotonic()
        while True:
            left = 0.25 if deadline is None else min(0.25, max(0.0, deadline - time.monotonic()))
            try:
                return future.result(left)
            except TimeoutError:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                condition = self.engine.executions.condition_of(execution_id)
                waiting = self.engine.waiting_signals(execution_id)
                extra = f" ({condition})" if condition else ""
                if waiting:
                    extra += f"; it is waiting for signal {', '.join(map(repr, waiting))}"
                raise TimeoutError(
                    f"execution {execution_id!r} is still running after {timeout}s{extra}; "
                    "it goes on in the background"
                ) from None
            if not told and time.monotonic() - started > NOTICE_AFTER:
                waiting = self.engine.waiting_signals(execution_id)
                if waiting:
                    told = True
                    names = ", ".join(map(repr, waiting))
                    print(
                        f"execution {execution_id!r} is waiting for signal {names}; send it "
                        "with handle.signal(name, payload). In a notebook, use "
                        "'await handle' instead of handle.result() so the signal buttons "
                        "stay clickable while you wait.",
                        file=sys.stderr,
                    )

    def follow(
        self, *, timeout: float | None = None, file: Any = None, interval: float = 0.5
    ) -> Any:
        """Show a tqdm progress bar until the execution closes, then return its result.

        The bar shows what :func:`nbconductor.progress` reported, the task being run
        (and its attempt), and at the end the result or the error. Needs tqdm
        (``pip install "nbconductor[progress]"``).

        Raises:
            ExecutionFailed: it failed, was cancelled, terminated or timed out.
            TimeoutError: still open after ``timeout`` seconds (the execution goes on).
            ProgressUnavailable: tqdm is not installed.
        """
        from nbconductor.engine.follow import engine_snapshot, follow

        execution_id = self.latest_run
        wake = threading.Event()
        unsubscribe = self.engine.subscribe(lambda ids: wake.set())
        try:
            follow(
                lambda: engine_snapshot(self.engine, execution_id),
                wake=wake,
                interval=interval,
                file=file,
                timeout=timeout,
            )
        finally:
            unsubscribe()
        return self.result(timeout)

    def __await__(self):
        execution_id = self.id
        while True:
            future = self.engine.executions.result_future(execution_id)
            record = yield from asyncio.wrap_future(future).__await__()
            execution_id = _next_run(record)
            if execution_id is None:
                return _outcome(record, self.engine.payloads)

    def signal(self, name: str, payload: Any = None) -> None:
        """Send signal ``name`` (durably); returns once it is recorded."""
        self.engine.signal(self.id, name, payload)

    def cancel(self) -> None:
        """Ask the execution to cancel (it may clean up or compensate first)."""
        self.engine.cancel(self.id)

    def terminate(self, reason: str | None = None) -> None:
        """End the execution at once as Terminated; no more workflow code runs."""
        self.engine.terminate(self.id, reason)

    def update(self, name: str, payload: Any = None, *, timeout: float = 60) -> Any:
        """Run the workflow's update handler ``name``; returns the handler's result."""
        return self.engine.update(self.id, name, payload, timeout=timeout)

    def query(self, name: str, *args: Any) -> Any:
        """Run query handler ``name`` on the workflow's latest state snapshot."""
        return self.engine.query(self.id, name, *args)

    @property
    def state(self) -> dict:
        """A copy of the workflow's ``state`` mapping as of its last step."""
        return self.engine.state_of(self.id)

    @property
    def progress(self) -> dict:
        """``{"fraction", "message", "tasks": [...]}`` for the running execution."""
        return self.engine.progress_of(self.id)

    @property
    def waiting_for(self) -> list[str]:
        """Signal names the execution awaits right now."""
        return self.engine.waiting_signals(self.id)

    def fork(self, at: int | None = None, *, id: str | None = None) -> Handle:
        """A new execution reusing this one's history up to event ``at``; see Engine.fork."""
        return self.engine.fork(self.id, at, id=id)

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


def _outcome(record: ExecutionRecord, payloads: Payloads) -> Any:
    if record.status is Status.COMPLETED:
        return payloads.decode_value(record.result)
    error = json.loads(record.error) if record.error else {}
    detail = f": {summary(error)}" if error else ""
    raise ExecutionFailed(
        f"execution {record.id!r} of workflow {record.workflow!r} ended "
        f"{record.status.title}{detail}",
        status=record.status.value,
        error=error,
        details=payloads.payload_field(error, "details"),
    )
