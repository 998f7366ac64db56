"""Steering executions from outside and between executions.

A mixin of :class:`~nbconductor.engine.engine.Engine`. The public methods are
thread-safe: they validate on the caller's thread, hand the change to the engine
thread, and return once it is committed (the causal rule). Interactions between
executions (a child closing, a parent closing, a signal to a child) are posted to the
engine's inbox so that each activation's commands are recorded before the next event.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from concurrent.futures import Future
from typing import Any

from nbconductor.engine import payload as _payload
from nbconductor.engine.live import LiveExecution
from nbconductor.errors import (
    ExecutionClosed,
    ExecutionNotFound,
    NbconductorError,
    UpdateRejected,
)
from nbconductor.storage.records import EventKind, ExecutionRecord, Status

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,99}$")


def check_signal_name(name: object, what: str = "signal") -> str:
    """A signal or update name: a short identifier-like string."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} name {name!r} is not valid: use 1-100 letters, digits, '_', '-', '.' "
            "or ':', starting with a letter or '_'"
        )
    return name


class Control:
    """Signals, cancel, terminate, updates, queries, children, continue-as-new, fork."""

    # ---------------------------------------------------------------- public API

    def signal(self, execution_id: str, name: str, payload: Any = None) -> None:
        """Send signal ``name`` with a payload to an open execution (durably).

        Raises:
            ExecutionNotFound: no such execution.
            ExecutionClosed: it has already closed.
        """
        check_signal_name(name)
        text = _payload.encode_value(payload, what=f"the payload of signal {name!r}")
        self._call(lambda: self._signal(execution_id, name, text))

    def cancel(self, execution_id: str) -> None:
        """Ask an execution to cancel: CancelledError is raised at its current await, so
        it can clean up; it ends Cancelled unless it completes otherwise."""
        self._call(lambda: self._request_cancel(self._open(execution_id)))

    def terminate(self, execution_id: str, reason: str | None = None) -> None:
        """End an execution at once as Terminated; no more of its code runs."""
        self._call(lambda: self._terminate(self._open(execution_id), reason))

    def update(
        self, execution_id: str, name: str, payload: Any = None, *, timeout: float = 60
    ) -> Any:
        """Run the workflow's update handler ``name`` and return its result.

        Raises:
            UpdateRejected: the validator refused it (nothing recorded), or there is no
                such update.
            NbconductorError: the handler raised (its error is in the message).
        """
        check_signal_name(name, "update")
        text = _payload.encode_value(payload, what=f"the payload of update {name!r}")
        result: Future = Future()
        self._call(lambda: self._accept_update(execution_id, name, text, payload, result))
        return result.result(timeout)

    def query(self, execution_id: str, name: str, *args: Any) -> Any:
        """Run query handler ``name`` against the execution's latest state snapshot."""
        record = self._record_of(execution_id)
        definition = self.registry.workflow(record.workflow)
        handler = definition.queries.get(name)
        if handler is None:
            known = ", ".join(sorted(definition.queries)) or "none"
            raise LookupError(f"workflow {record.workflow!r} has no query {name!r} (has: {known})")
        return handler.fn(self.state_of(execution_id), *args)

    def state_of(self, execution_id: str) -> dict:
        """A copy of the workflow's ``state`` mapping as of its last step."""
        live = self._live.get(execution_id)
        if live is None:
            self._record_of(execution_id)
            return {}
        return copy.deepcopy(live.state)

    def progress_of(self, execution_id: str) -> dict:
        """Workflow progress (fraction, message) and each running task's heartbeat."""
        live = self._live.get(execution_id)
        if live is None:
            return {"fraction": None, "message": None, "tasks": []}
        tasks = []
        for state in list(live.tasks.values()):
            attempt = state.current
            tasks.append(
                {
                    "command": state.command,
                    "task": state.name,
                    "attempt": attempt.number if attempt else state.failures + 1,
                    "running": attempt is not None and attempt.started_at is not None,
                    "progress": attempt.progress if attempt else None,
                    "details": attempt.heartbeat_details if attempt else None,
                    "retry_at": state.retry_at,
                }
            )
        fraction, message = live.progress
        return {"fraction": fraction, "message": message, "tasks": tasks}

    def waiting_signals(self, execution_id: str) -> list[str]:
        """Signal names the execution is awaiting right now (empty if closed)."""
        live = self._live.get(execution_id)
        return list(live.waiting_signals) if live is not None else []

    def open_executions(self, workflow: str | None = None) -> list[ExecutionRecord]:
        """Open executions held by this engine (optionally of one workflow)."""
        return [
            copy.copy(live.record)
            for live in list(self._live.values())
            if workflow is None or live.record.workflow == workflow
        ]

    def fork(self, execution_id: str, at: int | None = None, *, id: str | None = None):
        """Start a new execution that reuses ``execution_id``'s history up to event
        ``at`` and runs live from there. By default ``at`` is just before the first task
        that failed for good, so fixing a task and forking re-runs only from there.

        Returns the new execution's Handle.
        """
        from nbconductor.engine.handle import Handle

        record = self._record_of(execution_id)
        new_id = id or f"{execution_id}-fork-{uuid.uuid4().hex[:8]}"
        self._call(lambda: self._fork(record, at, new_id))
        return Handle(self, new_id, record.workflow)

    # ----------------------------------------------------------------- helpers

    def _call(self, fn, timeout: float = 30.0) -> Any:
        """Run ``fn`` on the engine thread; return its value once the tick committed."""
        self._check_running()
        done: Future = Future()

        def run() -> None:
            try:
                value = fn()
            except BaseException as exc:  # handed to the caller, not the engine
                done.set_exception(exc)
                return
            self._after_commit.append(lambda: done.set_result(value))

        self._post(run)
        return done.result(timeout)

    def _record_of(self, execution_id: str) -> ExecutionRecord:
        live = self._live.get(execution_id)
        if live is not None:
            return live.record
        record = self.store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        return record

    def _open(self, execution_id: str) -> LiveExecution:
        live = self._live.get(execution_id)
        if live is not None and not live.record.status.closed:
            return live
        record = self.store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        raise ExecutionClosed(
            f"execution {execution_id!r} is already {record.status.title}; only open "
            "executions take signals, cancels and updates"
        )

    def _snapshot(self, live: LiveExecution) -> None:
        runtime = live.runtime
        if runtime is None:
            return
        live.waiting_signals = runtime.waiting_signals()
        live.progress = runtime.progress
        if runtime.state or live.state:
            try:
                live.state = copy.deepcopy(runtime.state)
            except Exception:  # an uncopyable value: readers get a shallow copy
                live.state = dict(runtime.state)

    # ------------------------------------------------------------ engine thread

    def _signal(self, execution_id: str, name: str, text: str) -> None:
        live = self._open(execution_id)
        event = self._record(
            live,
            EventKind.SIGNAL_RECEIVED,
            name=name,
            data=_payload.event_data(None, payload=text),
        )
        self._activate(live, event)

    def _request_cancel(self, live: LiveExecution) -> None:
        event = self._record(live, EventKind.CANCEL_REQUESTED)
        self._activate(live, event)

    def _terminate(self, live: LiveExecution, reason: str | None) -> None:
        reason = reason or "terminated"
        self._record(
            live, EventKind.EXECUTION_TERMINATED, data=_payload.event_data({"reason": reason})
        )
        error = {"type": "Terminated", "message": reason}
        self._close(live, Status.TERMINATED, error=json.dumps(error))

    def _accept_update(
        self, execution_id: str, name: str, text: str, value: Any, result: Future
    ) -> None:
        live = self._open(execution_id)
        if live.runtime is None:
            raise UpdateRejected(
                f"execution {execution_id!r} is not running its code ({live.condition}); "
                "updates need a running workflow"
            )
        handler = live.runtime.definition.updates.get(name)
        if handler is None:
            known = ", ".join(sorted(live.runtime.definition.updates)) or "none"
            raise UpdateRejected(
                f"workflow {live.record.workflow!r} has no update {name!r} (has: {known})"
            )
        if handler.validator is not None:
            try:
                handler.validator(copy.deepcopy(live.state), value)
            except Exception as exc:
                raise UpdateRejected(f"update {name!r} rejected: {exc}") from exc
        update_id = uuid.uuid4().hex
        self._update_waiters[update_id] = result
        event = self._record(
            live,
            EventKind.UPDATE_ACCEPTED,
            name=name,
            data=_payload.event_data({"update_id": update_id}, payload=text),
        )
        self._activate(live, event)

    def _update_completed(self, command) -> None:
        """After commit: hand the update's result (or error) to whoever is waiting."""
        future = self._update_waiters.pop(command.data["update_id"], None)
        if future is None or future.done():
            return
        error = command.data.get("error")
        if error:
            future.set_exception(
                NbconductorError(
                    f"update {command.name!r} failed: {error.get('type')}: {error.get('message')}"
                )
            )
        else:
            future.set_result(_payload.decode_value(command.payload))

    # ------------------------------------------------------------------ children

    def _start_child(self, live: LiveExecution, command) -> None:
        child_id = command.data["child_id"]
        live.children[command.id] = child_id
        self._record(
            live,
            EventKind.CHILD_STARTED,
            command=command.id,
            name=command.name,
            data=_payload.event_data(
                {"child_id": child_id, "parent_close": command.data["parent_close"]},
                input=command.payload,
            ),
        )
        definition = self.registry.workflow(command.name)
        started = self._start(
            child_id,
            definition,
            command.payload,
            explicit=True,
            parent=(live.id, command.id),
            parent_close=command.data["parent_close"],
        )
        if not started:
            error = {
                "type": "ExecutionAlreadyExists",
                "message": f"an execution with id {child_id!r} already exists; give the "
                "child another id",
            }
            self._post(
                lambda: self._child_closed(
                    live.id, command.id, child_id, Status.FAILED, None, error
                )
            )

    def _child_closed(
        self,
        parent_id: str,
        command: int,
        child_id: str,
        status: Status,
        result: str | None,
        error: dict | None,
    ) -> None:
        parent = self._live.get(parent_id)
        if parent is None or parent.children.pop(command, None) is None:
            return  # the parent closed first, or abandoned the child
        fields: dict = {"child_id": child_id, "status": status.value}
        if error:
            fields["error"] = error
        event = self._record(
            parent,
            EventKind.CHILD_CLOSED,
            command=command,
            data=_payload.event_data(fields, result=result),
        )
        self._activate(parent, event)

    def _after_close_links(self, live: LiveExecution, status: Status, result, error) -> None:
        """Tell the parent, apply parent-close policies to open children."""
        if live.parent is not None and status is not Status.CONTINUED_AS_NEW:
            parent_id, command = live.parent
            error_dict = json.loads(error) if error else None
            self._post(
                lambda: self._child_closed(parent_id, command, live.id, status, result, error_dict)
            )
        for child_id in live.children.values():
            self._post(lambda child_id=child_id: self._apply_parent_close(child_id, live.id))
        live.children.clear()

    def _apply_parent_close(self, child_id: str, parent_id: str) -> None:
        child = self._live.get(child_id)
        if child is None or child.record.status.closed:
            return
        if child.parent_close == "terminate":
            self._terminate(child, f"parent execution {parent_id!r} closed")
        elif child.parent_close == "request_cancel":
            self._request_cancel(child)
        child.parent = None  # abandoned (or handled): it no longer reports back

    def _cancel_child(self, live: LiveExecution, command) -> None:
        child_id = command.data["child_id"]
        self._record(
            live,
            EventKind.CHILD_CANCEL_REQUESTED,
            command=command.id,
            data=_payload.event_data({"child_id": child_id}),
        )

        def deliver() -> None:
            child = self._live.get(child_id)
            if child is not None and not child.record.status.closed:
                self._request_cancel(child)

        self._post(deliver)

    def _signal_child(self, live: LiveExecution, command) -> None:
        child_id = command.data["child_id"]
        self._record(
            live,
            EventKind.SIGNAL_SENT,
            command=command.id,
            name=command.name,
            data=_payload.event_data({"child_id": child_id}, payload=command.payload),
        )

        def deliver() -> None:
            child = self._live.get(child_id)
            if child is not None and not child.record.status.closed:
                self._signal(child_id, command.name, command.payload)

        self._post(deliver)

    # ---------------------------------------------------------- continue as new

    def _continue_as_new(self, live: LiveExecution, command) -> None:
        next_id = _next_run_id(live.id)
        self._record(
            live,
            EventKind.EXECUTION_CONTINUED_AS_NEW,
            data=_payload.event_data({"next_id": next_id}, input=command.payload),
        )
        parent, parent_close = live.parent, live.parent_close
        parent_live = self._live.get(parent[0]) if parent is not None else None
        if parent_live is not None:  # the parent now waits on the next run
            parent_live.children[parent[1]] = next_id
        self._close(live, Status.CONTINUED_AS_NEW, result=json.dumps({"next_id": next_id}))
        definition = self.registry.workflow(live.record.workflow)
        self._start(
            next_id,
            definition,
            command.payload,
            explicit=False,
            parent=parent,
            parent_close=parent_close,
            origin_id=live.id,
        )

    # ---------------------------------------------------------------------- fork

    def _fork(self, origin: ExecutionRecord, at: int | None, new_id: str) -> None:
        if new_id in self._live or self.store.get_execution(new_id) is not None:
            raise ValueError(f"an execution with id {new_id!r} already exists")
        history = self.store.load_history(origin.id)
        closing = {
            EventKind.EXECUTION_COMPLETED,
            EventKind.EXECUTION_FAILED,
            EventKind.EXECUTION_CANCELLED,
            EventKind.EXECUTION_TERMINATED,
            EventKind.EXECUTION_TIMED_OUT,
            EventKind.EXECUTION_CONTINUED_AS_NEW,
        }
        if at is None:
            at = _default_fork_point(history, closing)
        if not 1 <= at <= len(history) or any(e.kind in closing for e in history[:at]):
            last = next((e.seq for e in history if e.kind in closing), len(history) + 1) - 1
            raise ValueError(
                f"fork point at={at} is not valid for {origin.id!r}: pick an event number "
                f"from 1 to {last} (before the execution closed)"
            )
        from nbconductor.storage.records import EventRecord

        first = history[0]
        started = _payload.read_data(first.data)
        started.pop("parent", None)
        started["forked_from"] = [origin.id, at]
        started.setdefault("seed_id", origin.id)
        copied = [
            EventRecord(new_id, e.seq, e.kind, e.at, e.command, e.name, e.attempt, e.data)
            for e in history[1:at]
        ]
        copied.insert(
            0,
            EventRecord(
                new_id,
                1,
                first.kind,
                first.at,
                None,
                first.name,
                None,
                json.dumps(started, separators=(",", ":")),
            ),
        )
        record = ExecutionRecord(
            id=new_id,
            workflow=origin.workflow,
            version=origin.version,
            status=Status.RUNNING,
            created_at=self._now,
            updated_at=self._now,
            input=origin.input,
            origin_id=origin.id,
        )
        self._batch.new_executions.append(record)
        self._batch.events.extend(copied)
        live = LiveExecution(record, next_seq=at + 1)
        self._live[new_id] = live
        self._changed.add(new_id)
        self._resume(live, copied)


def _default_fork_point(history, closing) -> int:
    for event in history:
        if event.kind is EventKind.TASK_FAILED and _payload.read_data(event.data).get("final"):
            return event.seq - 1
    for event in history:
        if event.kind in closing:
            return event.seq - 1
    return len(history)


def _next_run_id(execution_id: str) -> str:
    match = re.search(r"#(\d+)$", execution_id)
    if match:
        return f"{execution_id[: match.start()]}#{int(match.group(1)) + 1}"
    return f"{execution_id}#2"
