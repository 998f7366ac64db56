"""The engine's in-memory state of one open execution."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from nbconductor.engine import payload
from nbconductor.engine.definition import TaskDefinition
from nbconductor.engine.runtime import WorkflowRuntime
from nbconductor.engine.task_runner import Attempt
from nbconductor.storage.records import EventKind, EventRecord, ExecutionRecord


@dataclass(eq=False, slots=True)
class TaskState:
    """A scheduled task of an open execution, until it completes or fails for good."""

    command: int
    name: str
    input_text: str
    scheduled_at: datetime
    definition: TaskDefinition | None = None
    failures: int = 0  # failed attempts so far
    current: Attempt | None = None
    retry_at: float | None = None  # epoch seconds when a retry is waiting
    heartbeat_text: str | None = None  # the last checkpoint of an earlier attempt (codec)


@dataclass(eq=False, slots=True)
class LiveExecution:
    """An open execution: its record, its replayed code, its tasks and timers."""

    record: ExecutionRecord
    next_seq: int = 1
    runtime: WorkflowRuntime | None = None
    tasks: dict[int, TaskState] = field(default_factory=dict)
    timers: dict[int, float] = field(default_factory=dict)  # command -> due (epoch s)
    condition: str | None = None  # why it does not run: no definition, non-determinism
    parent: tuple[str, int] | None = None  # (parent execution id, its START_CHILD command)
    parent_close: str = "terminate"
    children: dict[int, str] = field(default_factory=dict)  # open children: command -> id
    # What other threads may read at any time, refreshed after each activation.
    waiting_signals: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    progress: tuple[float | None, str | None] = (None, None)

    @property
    def id(self) -> str:
        return self.record.id


def pending_work(history: list[EventRecord]) -> tuple[dict[int, TaskState], dict[int, float]]:
    """Tasks and timers a history left open: what a recovering engine must carry on.

    Returns task states (with failures counted and any waiting retry time) and
    timers (command -> due time).
    """
    # A first pass by kind only: of a long history almost every task and timer is
    # closed, and parsing their JSON was most of this function's time (10,000
    # completed tasks: ~120 ms). Only what is still open is parsed, in order.
    open_tasks: dict[int, list[EventRecord]] = {}
    open_timers: dict[int, EventRecord] = {}
    for event in history:
        kind = event.kind
        if kind is EventKind.TASK_SCHEDULED:
            open_tasks[event.command] = [event]
        elif kind is EventKind.TASK_FAILED or kind is EventKind.TASK_HEARTBEAT:
            events = open_tasks.get(event.command)
            if events is not None:
                events.append(event)
        elif kind in (EventKind.TASK_COMPLETED, EventKind.TASK_CANCEL_REQUESTED):
            open_tasks.pop(event.command, None)
        elif kind is EventKind.TIMER_STARTED:
            open_timers[event.command] = event
        elif kind in (EventKind.TIMER_FIRED, EventKind.TIMER_CANCELLED):
            open_timers.pop(event.command, None)
    tasks: dict[int, TaskState] = {}
    for command, events in open_tasks.items():
        state = _open_task(events)
        if state is not None:
            tasks[command] = state
    timers = {
        command: payload.read_data(event.data)["fire_at"] for command, event in open_timers.items()
    }
    return tasks, timers


def _open_task(events: list[EventRecord]) -> TaskState | None:
    """The state of a task from its TaskScheduled event and the failures and heartbeats
    that followed it; None once a failure was final."""
    scheduled = events[0]
    data = payload.read_data(scheduled.data)
    state = TaskState(
        scheduled.command, scheduled.name or "", _json(data.get("input")), scheduled.at
    )
    for event in events[1:]:
        data = payload.read_data(event.data)
        if event.kind is EventKind.TASK_HEARTBEAT:
            # The last durable checkpoint of an attempt that was running when the engine
            # went away: the attempt that runs again resumes from it.
            if data.get("details") is not None:
                state.heartbeat_text = _json(data["details"])
            continue
        if data.get("final"):
            return None
        state.failures = event.attempt or state.failures + 1
        details = data.get("last_heartbeat_details")
        if details is not None:  # else the checkpoint before it still holds
            state.heartbeat_text = _json(details)
        retry_at = data.get("retry_at")
        state.retry_at = datetime.fromisoformat(retry_at).timestamp() if retry_at else None
    return state


def open_children(history: list[EventRecord]) -> dict[int, str]:
    """Children started by this history that have not closed: command -> child id."""
    children: dict[int, str] = {}
    for event in history:
        if event.kind is EventKind.CHILD_STARTED:
            children[event.command] = payload.read_data(event.data)["child_id"]
        elif event.kind is EventKind.CHILD_CLOSED:
            children.pop(event.command, None)
    return children


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))
