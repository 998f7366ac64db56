"""Activations: starting executions, carrying out their commands, closing them.

A mixin of :class:`~nbconductor.engine.engine.Engine`; runs on the engine thread.
Each activation's events are appended to the tick's batch in the order replay
expects: the event that caused it, then the commands it issued.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from nbconductor.engine import payload
from nbconductor.engine.definition import WorkflowDefinition
from nbconductor.engine.live import LiveExecution, TaskState
from nbconductor.engine.runtime import (
    CANCEL,
    CANCEL_CHILD,
    CANCEL_TASK,
    CANCEL_TIMER,
    COMPLETE,
    COMPLETE_UPDATE,
    CONTINUE,
    FAIL,
    MARKER,
    SCHEDULE_TASK,
    SIGNAL_CHILD,
    START_CHILD,
    START_TIMER,
    Command,
    WorkflowRuntime,
)
from nbconductor.storage.records import EventKind, EventRecord, ExecutionRecord, Status

_CLOSING = {
    COMPLETE: (EventKind.EXECUTION_COMPLETED, Status.COMPLETED),
    FAIL: (EventKind.EXECUTION_FAILED, Status.FAILED),
    CANCEL: (EventKind.EXECUTION_CANCELLED, Status.CANCELLED),
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class Activation:
    """What happens to an execution between the event that wakes it and the commit."""

    # ------------------------------------------------------------------ starting

    def _start(
        self,
        execution_id: str,
        definition: WorkflowDefinition,
        text: str,
        *,
        explicit: bool,
        parent: tuple[str, int] | None = None,
        parent_close: str = "terminate",
        origin_id: str | None = None,
        tags: list[str] | None = None,
    ) -> bool:
        """Record and run the first activation of a new execution.

        Returns False when an execution with that id exists already (idempotent start).
        """
        try:
            if self._stopping or execution_id in self._live:
                return False
            if explicit and self.store.get_execution(execution_id) is not None:
                # Idempotent start: it exists and is closed (open ones are in _live).
                self._after_commit.append(lambda: self._resolve_waiters(execution_id))
                return False
            record = ExecutionRecord(
                id=execution_id,
                workflow=definition.name,
                version=definition.version,
                status=Status.RUNNING,
                created_at=self._now,
                updated_at=self._now,
                input=text,
                parent_id=parent[0] if parent else None,
                origin_id=origin_id,
                tags=list(tags or ()),
            )
            live = LiveExecution(record, parent=parent, parent_close=parent_close)
            self._live[execution_id] = live
            self._batch.new_executions.append(record)
            fields: dict[str, Any] = {"workflow": definition.name, "version": definition.version}
            if definition.timeout is not None:
                fields["timeout"] = definition.timeout
            if parent is not None:
                fields["parent"] = list(parent)
                fields["parent_close"] = parent_close
            if origin_id is not None:
                fields["continued_from"] = origin_id
            self._record(
                live,
                EventKind.EXECUTION_STARTED,
                name=definition.name,
                data=payload.event_data(fields, input=text),
            )
            self._arm_execution_timeout(live, definition)
            live.runtime = WorkflowRuntime(execution_id, definition, text, self._now)
            live.runtime.recorded_version = definition.version
            self._run_code(live, live.runtime.start)
            return True
        finally:
            with self._lock:
                self._accepted.discard(execution_id)

    def _arm_execution_timeout(self, live: LiveExecution, definition: WorkflowDefinition) -> None:
        if definition.timeout is not None:
            self._push(
                live.record.created_at.timestamp() + definition.timeout,
                "execution_timeout",
                live.id,
            )

    # ------------------------------------------------------------------ commands

    def _carry_out(self, live: LiveExecution, commands: list[Command]) -> None:
        for command in commands:
            kind = command.kind
            if kind is SCHEDULE_TASK:
                state = TaskState(
                    command.id, command.name, command.payload, self._now, command.definition
                )
                live.tasks[command.id] = state
                self._record(
                    live,
                    EventKind.TASK_SCHEDULED,
                    command=command.id,
                    name=command.name,
                    data=payload.event_data(None, input=command.payload),
                )
                self._after_commit.append(
                    lambda live=live, state=state: self._dispatch(live, state)
                )
                s2c = command.definition.options.schedule_to_close
                if s2c is not None:
                    self._push(
                        self._now.timestamp() + s2c, "schedule_to_close", live.id, command.id
                    )
            elif kind is START_TIMER:
                due = command.data["fire_at"]
                live.timers[command.id] = due
                self._record(
                    live,
                    EventKind.TIMER_STARTED,
                    command=command.id,
                    data=payload.event_data({"fire_at": due, "due": _iso(due)}),
                )
                self._push(due, "timer", live.id, command.id)
            elif kind is CANCEL_TIMER:
                live.timers.pop(command.id, None)
                self._record(live, EventKind.TIMER_CANCELLED, command=command.id)
            elif kind is CANCEL_TASK:
                state = live.tasks.pop(command.id, None)
                if state is not None and state.current is not None:
                    state.current.cancel_requested = True
                    self._abandon(state.current)
                self._record(live, EventKind.TASK_CANCEL_REQUESTED, command=command.id)
            elif kind is MARKER:
                self._record(
                    live,
                    EventKind.MARKER_RECORDED,
                    command=command.id,
                    name=command.name,
                    data=payload.event_data(None, value=command.payload),
                )
            elif kind is START_CHILD:
                self._start_child(live, command)
            elif kind is CANCEL_CHILD:
                self._cancel_child(live, command)
            elif kind is SIGNAL_CHILD:
                self._signal_child(live, command)
            elif kind is COMPLETE_UPDATE:
                self._record(
                    live,
                    EventKind.UPDATE_COMPLETED,
                    name=command.name,
                    data=payload.event_data(command.data, result=command.payload),
                )
                self._after_commit.append(lambda c=command: self._update_completed(c))
            elif kind is CONTINUE:
                self._continue_as_new(live, command)
                return
            elif kind in _CLOSING:
                event_kind, status = _CLOSING[kind]
                if kind is COMPLETE:
                    self._record(
                        live, event_kind, data=payload.event_data(None, result=command.payload)
                    )
                    self._close(live, status, result=command.payload)
                else:
                    error = command.data.get("error")
                    self._record(
                        live,
                        event_kind,
                        data=payload.event_data({"error": error} if error else None),
                    )
                    self._close(live, status, error=_json(error) if error else None)
                return

    def _close(
        self,
        live: LiveExecution,
        status: Status,
        *,
        result: str | None = None,
        error: str | None = None,
    ) -> None:
        self._update(
            live,
            status=status,
            closed_at=self._now,
            result=result,
            error=error,
            condition="" if live.condition else None,
        )
        live.record.status = status
        for state in live.tasks.values():
            if state.current is not None:
                state.current.cancel_requested = True
                self._abandon(state.current)
        live.tasks.clear()
        live.timers.clear()
        if live.runtime is not None:
            live.runtime.close()
        self._after_close_links(live, status, result, error)
        if "@" in live.id:
            self.schedules._on_closed(live.id)
        closed = copy.copy(live.record)
        closed.closed_at = closed.updated_at = self._now
        closed.result, closed.error, closed.condition = result, error, None
        self._after_commit.append(lambda: self._resolve_waiters(live.id, closed))

    def _resolve_waiters(self, execution_id: str, record: ExecutionRecord | None = None) -> None:
        """Hand a closed execution's record to everyone waiting on it (after commit)."""
        with self._lock:
            self._live.pop(execution_id, None)
            waiters = self._waiters.pop(execution_id, [])
            if record is not None:
                self._recently_closed[execution_id] = record
                if len(self._recently_closed) > 1024:
                    self._recently_closed.popitem(last=False)
        if record is None and waiters:
            record = self.store.get_execution(execution_id)
        for future in waiters:
            if not future.done():
                future.set_result(record)

    # ------------------------------------------------------------ due heap items

    def _due_timer(self, execution_id: str, command: int) -> None:
        live = self._live.get(execution_id)
        if live is None or live.timers.pop(command, None) is None:
            return
        event = self._record(live, EventKind.TIMER_FIRED, command=command)
        self._activate(live, event)

    def _due_schedule(self, schedule_id: str, generation: int) -> None:
        self.schedules._due(schedule_id, generation)

    def _due_execution_timeout(self, execution_id: str) -> None:
        live = self._live.get(execution_id)
        if live is None:
            return
        self._record(live, EventKind.EXECUTION_TIMED_OUT)
        error = {"type": "ExecutionTimedOut", "message": "the workflow's execution timeout elapsed"}
        self._close(live, Status.TIMED_OUT, error=_json(error))

    # ---------------------------------------------------------------- activation

    def _activate(self, live: LiveExecution, event: EventRecord) -> None:
        runtime = live.runtime
        if runtime is None or runtime.closed:
            return
        self._run_code(live, lambda: runtime.activate(event))

    def _run_code(self, live: LiveExecution, step: Callable[[], None]) -> None:
        """Run one activation of workflow code and carry out what it asked for.

        Workflow errors end up in its coroutine; anything escaping here is a bug in
        code run outside it (or in the engine). It parks this execution as blocked
        instead of stopping every other one; re-running the definition retries it.
        """
        runtime = live.runtime
        try:
            step()
            commands = runtime.take_commands()
        except Exception as exc:
            runtime.close()
            live.runtime = None
            self._set_condition(
                live, f"blocked: {type(exc).__name__} while running workflow code: {exc}"
            )
            return
        self._carry_out(live, commands)
        self._snapshot(live)
