"""Commands: what workflow code asks the engine for, and the event that records each.

The replay runtime turns workflow actions into commands; live, the engine records each
as its event and carries it out; on replay the recorded events must match the commands
the code issues, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbconductor.engine.definition import TaskDefinition
from nbconductor.engine.failure import Failure
from nbconductor.storage.records import ENDING_EVENTS, EventKind, EventRecord

# Command kinds, and the event that records each.
SCHEDULE_TASK = "schedule task"
START_TIMER = "start timer"
CANCEL_TIMER = "cancel timer"
CANCEL_TASK = "cancel task"
MARKER = "record marker"
START_CHILD = "start child"
CANCEL_CHILD = "cancel child"
SIGNAL_CHILD = "signal child"
COMPLETE_UPDATE = "complete update"
COMPLETE = "complete execution"
FAIL = "fail execution"
CANCEL = "cancel execution"
CONTINUE = "continue as new"

RECORDED_AS = {
    SCHEDULE_TASK: EventKind.TASK_SCHEDULED,
    START_TIMER: EventKind.TIMER_STARTED,
    CANCEL_TIMER: EventKind.TIMER_CANCELLED,
    CANCEL_TASK: EventKind.TASK_CANCEL_REQUESTED,
    MARKER: EventKind.MARKER_RECORDED,
    START_CHILD: EventKind.CHILD_STARTED,
    CANCEL_CHILD: EventKind.CHILD_CANCEL_REQUESTED,
    SIGNAL_CHILD: EventKind.SIGNAL_SENT,
    COMPLETE_UPDATE: EventKind.UPDATE_COMPLETED,
    COMPLETE: EventKind.EXECUTION_COMPLETED,
    FAIL: EventKind.EXECUTION_FAILED,
    CANCEL: EventKind.EXECUTION_CANCELLED,
    CONTINUE: EventKind.EXECUTION_CONTINUED_AS_NEW,
}
COMMAND_EVENTS = frozenset(RECORDED_AS.values())
# The ending events that workflow code itself records (the others come from outside).
CLOSING_EVENTS = ENDING_EVENTS & COMMAND_EVENTS


@dataclass(slots=True)
class Command:
    """Something workflow code asked for; the executor records and carries it out."""

    kind: str
    id: int | None = None
    name: str | None = None
    payload: str | None = None  # codec JSON: task input, marker value, result
    data: dict = field(default_factory=dict)
    definition: TaskDefinition | None = None
    failure: Failure | None = None  # why the execution fails (a FAIL command)

    def describe(self) -> str:
        target = f" {self.name!r}" if self.name else ""
        ident = f" (command {self.id})" if self.id is not None else ""
        return f"{self.kind}{target}{ident}"


def describe_event(event: EventRecord) -> str:
    name = f" {event.name!r}" if event.name else ""
    ident = f" (command {event.command})" if event.command is not None else ""
    return f"{event.kind.value}{name}{ident}"
