"""Record types exchanged between the engine and a store.

Payload fields (``input``, ``result``, ``error``, ``data``) hold text already encoded by
:mod:`nbconductor.storage.codec`; a store keeps them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Status(str, Enum):
    """The life-cycle state of an execution; all but RUNNING are closed."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    CONTINUED_AS_NEW = "continued_as_new"

    @property
    def closed(self) -> bool:
        """True for every status but Running: the execution will not change again."""
        return self is not Status.RUNNING

    @property
    def title(self) -> str:
        """The name people read: ``Completed``, ``TimedOut``, ``ContinuedAsNew``."""
        return {"timed_out": "TimedOut", "continued_as_new": "ContinuedAsNew"}.get(
            self.value, self.value.capitalize()
        )


class EventKind(str, Enum):
    """What an event in an execution's history records."""

    EXECUTION_STARTED = "ExecutionStarted"
    TASK_SCHEDULED = "TaskScheduled"
    TASK_COMPLETED = "TaskCompleted"
    TASK_FAILED = "TaskFailed"  # one failed attempt; data says whether it will be retried
    TASK_CANCEL_REQUESTED = "TaskCancelRequested"
    TIMER_STARTED = "TimerStarted"
    TIMER_FIRED = "TimerFired"
    TIMER_CANCELLED = "TimerCancelled"
    MARKER_RECORDED = "MarkerRecorded"  # side effects, patches
    SIGNAL_RECEIVED = "SignalReceived"
    CANCEL_REQUESTED = "CancelRequested"
    CHILD_STARTED = "ChildStarted"
    CHILD_CLOSED = "ChildClosed"
    CHILD_CANCEL_REQUESTED = "ChildCancelRequested"
    SIGNAL_SENT = "SignalSent"  # to a child execution
    UPDATE_ACCEPTED = "UpdateAccepted"
    UPDATE_COMPLETED = "UpdateCompleted"
    EXECUTION_COMPLETED = "ExecutionCompleted"
    EXECUTION_FAILED = "ExecutionFailed"
    EXECUTION_CANCELLED = "ExecutionCancelled"
    EXECUTION_TERMINATED = "ExecutionTerminated"
    EXECUTION_TIMED_OUT = "ExecutionTimedOut"
    EXECUTION_CONTINUED_AS_NEW = "ExecutionContinuedAsNew"
    # What a running attempt reported (heartbeat details, progress, output), recorded
    # at most once per throttle interval; read after a restart, skipped by replay.
    TASK_HEARTBEAT = "TaskHeartbeat"
    # The result of an attempt the engine had abandoned (timed out, cancelled), which
    # arrived anyway and was not used; skipped by replay.
    TASK_RESULT_IGNORED = "TaskResultIgnored"


ENDING_EVENTS = frozenset(
    {
        EventKind.EXECUTION_COMPLETED,
        EventKind.EXECUTION_FAILED,
        EventKind.EXECUTION_CANCELLED,
        EventKind.EXECUTION_TERMINATED,
        EventKind.EXECUTION_TIMED_OUT,
        EventKind.EXECUTION_CONTINUED_AS_NEW,
    }
)
"""Every event that ends an execution: the last event of a closed execution's history."""

INFO_EVENTS = frozenset({EventKind.TASK_HEARTBEAT, EventKind.TASK_RESULT_IGNORED})
"""Events that say what happened around the workflow's code, not to it: replay skips
them, so recording one (or not, throttled) never changes what the code does."""


@dataclass(slots=True)
class ExecutionRecord:
    """One row of the ``executions`` table."""

    id: str
    workflow: str
    version: str
    status: Status
    created_at: datetime
    updated_at: datetime
    input: str = "null"  # {"args": [...], "kwargs": {...}} through the codec
    closed_at: datetime | None = None
    result: str | None = None
    error: str | None = None
    parent_id: str | None = None
    origin_id: str | None = None  # previous run (continue-as-new) or fork origin
    tags: list[str] = field(default_factory=list)
    condition: str | None = None  # e.g. "blocked: non-determinism ..." while Running

    def copy(self) -> ExecutionRecord:
        """A copy with a list of tags of its own (``dataclasses.replace`` costs ~4 us
        more, and the engine copies each record twice: when it starts, when it closes)."""
        return ExecutionRecord(
            self.id, self.workflow, self.version, self.status, self.created_at,
            self.updated_at, self.input, self.closed_at, self.result, self.error,
            self.parent_id, self.origin_id, list(self.tags), self.condition,
        )  # fmt: skip


@dataclass(slots=True)
class ExecutionUpdate:
    """Changed fields of an existing execution; ``None`` leaves a field as it is.

    ``condition`` uses ``""`` to clear it, since ``None`` means "unchanged".
    """

    id: str
    updated_at: datetime
    status: Status | None = None
    closed_at: datetime | None = None
    result: str | None = None
    error: str | None = None
    condition: str | None = None
    version: str | None = None


@dataclass(slots=True)
class EventRecord:
    """One row of the ``events`` table: an entry of an execution's append-only history.

    ``seq`` counts from 1 within the execution. ``command`` is the id of the workflow
    command the event belongs to (task, timer, marker, child), when it belongs to one.
    """

    execution_id: str
    seq: int
    kind: EventKind
    at: datetime
    command: int | None = None
    name: str | None = None
    attempt: int | None = None
    data: str = "{}"


@dataclass(slots=True)
class DefinitionRecord:
    """One row of the ``definitions`` table: a version of a workflow or task's source."""

    name: str
    kind: str  # "workflow" | "task"
    version: str
    source: str
    registered_at: datetime


@dataclass(slots=True)
class ScheduleRecord:
    """One row of the ``schedules`` table: a schedule's spec and its firing state.

    ``spec`` and ``state`` are codec JSON text; the store keeps them as they are.
    """

    id: str
    workflow: str
    spec: str
    state: str
    updated_at: datetime


@dataclass(slots=True)
class QueueRecord:
    """One row of the ``queues`` table: a task queue's limits.

    ``spec`` is codec JSON text (``{"concurrency": 8, "rate": "60/minute"}``); the store
    keeps it as it is.
    """

    name: str
    spec: str
    updated_at: datetime


@dataclass(slots=True)
class Batch:
    """Everything one engine tick writes; a store commits it in one transaction."""

    new_executions: list[ExecutionRecord] = field(default_factory=list)
    updates: list[ExecutionUpdate] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    definitions: list[DefinitionRecord] = field(default_factory=list)
    schedules: list[ScheduleRecord] = field(default_factory=list)  # inserted or replaced
    deleted_schedules: list[str] = field(default_factory=list)
    queues: list[QueueRecord] = field(default_factory=list)  # inserted or replaced
    deleted_queues: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.new_executions
            or self.updates
            or self.events
            or self.definitions
            or self.schedules
            or self.queues
            or self.deleted_queues
            or self.deleted_schedules
        )


#: What listed executions can be ordered by (:attr:`ExecutionFilter.sort`).
SORT_KEYS = ("started", "id", "workflow", "status", "duration")


@dataclass(slots=True)
class ExecutionFilter:
    """Filters, order and page for listing executions; every field is optional.

    Executions are ordered by ``sort`` (one of :data:`SORT_KEYS`), then by start time,
    then by id, all descending when ``newest_first`` (the default) and ascending
    otherwise. ``duration`` counts a running execution's time up to ``now`` (the
    current time when None).
    """

    status: list[Status] | None = None
    workflow: str | None = None
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    parent_id: str | None = None
    search: str | None = None  # substring of id or a tag
    limit: int | None = None
    offset: int = 0
    newest_first: bool = True
    sort: str = "started"
    now: datetime | None = None  # for sort="duration"


@dataclass(frozen=True, slots=True)
class TimerCounts:
    """Timers of running executions that started and neither fired nor were cancelled."""

    pending: int
    due: int  # of those, the ones whose fire time has come (an engine fires them at once)


@dataclass(slots=True)
class PruneReport:
    """What :meth:`Store.prune` deleted (or, with ``dry_run``, would delete).

    ``kept`` counts executions closed before the cutoff that stay because a member of
    their family (parent, child, continue-as-new run) is still open or closed later.
    ``bytes_before``/``bytes_after`` are the history file's size (None in memory);
    ``payloads`` is what collecting unreferenced stored values freed (with ``dry_run``,
    what it would free: the values only the executions that would go refer to).
    """

    closed_before: datetime
    dry_run: bool
    executions: int = 0
    events: int = 0
    kept: int = 0
    bytes_before: int | None = None
    bytes_after: int | None = None
    payloads: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    ids: list[str] = field(default_factory=list)  # the first few pruned ids, for people
