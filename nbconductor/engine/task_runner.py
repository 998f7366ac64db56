"""Running task attempts: the attempt, the task context and heartbeats.

Task code runs outside the engine thread (sync tasks on a runner, see
:mod:`nbconductor.engine.runners`; async tasks on the engine loop). Each attempt reports one outcome to the engine; the engine alone decides
what it means (completed, retried, timed out, ignored because abandoned).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nbconductor.engine import trace_context
from nbconductor.engine.definition import TaskDefinition
from nbconductor.engine.failure import Failure
from nbconductor.engine.payload import PLAIN, Payloads
from nbconductor.errors import NotInTask, StoreError, TaskCancelled


@dataclass(eq=False, slots=True)
class Attempt:
    """One try of one scheduled task.

    Slotted: an attempt per task is the engine's most numerous object after events,
    and a dict of its ~30 fields for each was one more object for every collection.
    """

    execution_id: str
    command: int
    number: int
    definition: TaskDefinition
    input_text: str
    dispatched_at: float  # engine clock, epoch seconds
    clock: Callable[[], datetime] = field(repr=False, default=None)  # the engine's clock
    started_at: datetime | None = None
    last_heartbeat: float | None = None  # engine clock, epoch seconds
    heartbeat_details: Any = None
    heartbeat_text: str | None = None  # heartbeat_details through the codec, once given
    progress: float | None = None
    cancel_requested: bool = False
    abandoned: bool = False  # timed out, cancelled or its execution closed: ignore outcome
    handle: Any = field(default=None, repr=False)  # the asyncio task of an async attempt
    payloads: Payloads = field(default=PLAIN, repr=False)  # its engine's (pickle opt-in)
    workflow: str = ""  # the workflow of the execution that scheduled it
    scheduled_at: datetime | None = None
    previous_details: Any = None  # the previous attempt's last heartbeat details
    stopped: bool = False  # an async attempt's coroutine has returned (finally blocks ran)
    on_stopped: Callable[[], None] | None = field(default=None, repr=False)
    worker: str | None = None  # where it runs, when not on this process's threads
    # In a runner's child process: passes each heartbeat on to the engine's process.
    relay: Callable[[Attempt], None] | None = field(default=None, repr=False)
    # The W3C trace context of its span ({"traceparent": ...}), when instrumented.
    trace_context: dict[str, str] | None = field(default=None, repr=False)
    why_abandoned: str = ""  # what TaskResultIgnored says of a result that came anyway
    # What is not recorded yet of a running attempt (TaskHeartbeat, throttled): its
    # complete output lines (appended on the task's thread, taken on the engine's), the
    # unfinished line of each stream, and whether a record is already on its way.
    # (None until the attempt first writes: most never do, and attempts are many.)
    output: collections.deque | None = field(default=None, repr=False)
    partial_output: dict | None = field(default=None, repr=False)
    on_note: Callable[[Attempt], None] | None = field(default=None, repr=False)
    note_pending: bool = False
    recorded_at: float | None = None  # engine clock, epoch seconds: the last TaskHeartbeat
    recorded_text: str | None = None  # the heartbeat details that record held

    def note(self) -> None:
        """Something to record happened (a heartbeat, output): ask for one record, at
        most one on its way at a time (any thread)."""
        if not self.note_pending and self.on_note is not None:
            self.note_pending = True
            self.on_note(self)

    def note_output(self, stream: str, text: str) -> None:
        """The attempt wrote ``text`` to ``stream`` (on the task's thread): kept to be
        recorded with its next heartbeat record or its outcome."""
        if self.output is None:
            self.partial_output = {}
            self.output = collections.deque(maxlen=MAX_OUTPUT_LINES)
        pending = self.partial_output.pop(stream, "") + text
        *complete, rest = pending.split("\n")
        if rest:
            self.partial_output[stream] = rest[:MAX_OUTPUT_LINE]
        if complete:
            self.output.extend(line[:MAX_OUTPUT_LINE] for line in complete)
            self.note()

    def take_output(self, *, final: bool = False) -> list[str]:
        """The output lines not recorded yet (and the unfinished ones once it ended)."""
        if self.output is None:
            return []
        lines = []
        while self.output:
            lines.append(self.output.popleft())
        if final:  # a timed-out sync attempt may still be writing: copy, then clear
            lines.extend(list(self.partial_output.values()))
            self.partial_output.clear()
        return lines


#: Output lines of one attempt kept between two records (older ones are dropped).
MAX_OUTPUT_LINES = 200
#: Characters of one output line recorded.
MAX_OUTPUT_LINE = 2000


@dataclass(frozen=True)
class TaskInfo:
    """What a running task attempt knows of itself (:func:`task_info`).

    Attributes:
        execution_id: the execution that scheduled the task.
        workflow: that execution's workflow name.
        task: the task's name.
        attempt: 1 on the first attempt, 2 on the first retry, ...
        scheduled_at: when the workflow scheduled the task (the same for every attempt).
        started_at: when this attempt started.
        heartbeat_details: the details of the previous attempt's last
            ``heartbeat(details=...)``, None on the first attempt or when it gave none:
            a retry resumes from the last checkpoint (Temporal's resumable activity).
            When the engine's process died during this attempt, it runs again with
            the same number and gets the details last recorded for it (a running
            attempt's are recorded at most every 0.8 x its heartbeat timeout).
    """

    execution_id: str
    workflow: str
    task: str
    attempt: int
    scheduled_at: datetime | None
    started_at: datetime | None
    heartbeat_details: Any


@dataclass(slots=True)
class Outcome:
    """What an attempt reports back: a result (codec JSON) or what went wrong."""

    attempt: Attempt
    result: str | None = None
    error: Failure | None = None
    started_at: datetime | None = None
    # The history store failed while storing the result (a full disk): not the task's
    # fault, so the engine stops on it as on a failed commit instead of recording a
    # failure.
    store_error: BaseException | None = None


_current: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar(
    "nbconductor_attempt", default=None
)


def current_attempt() -> Attempt | None:
    return _current.get()


def task_info() -> TaskInfo:
    """The running task attempt's execution, workflow, task, attempt number, times and
    the previous attempt's last heartbeat details.

    Example:
        >>> @task(retry=Retry(max_attempts=5))
        ... def load(rows: int) -> int:
        ...     done = task_info().heartbeat_details or 0   # resume from the checkpoint
        ...     for row in range(done, rows):
        ...         ...
        ...         heartbeat(details=row + 1)
        ...     return rows

    Raises:
        NotInTask: called outside a running task attempt.
    """
    attempt = _current.get()
    if attempt is None:
        raise NotInTask(
            "task_info() works only inside a running task attempt; a task function "
            "called directly (e.g. to try it in a cell) has no attempt"
        )
    return TaskInfo(
        execution_id=attempt.execution_id,
        workflow=attempt.workflow,
        task=attempt.definition.name,
        attempt=attempt.number,
        scheduled_at=attempt.scheduled_at,
        started_at=attempt.started_at,
        heartbeat_details=attempt.previous_details,
    )


@contextlib.contextmanager
def attempt_context(attempt: Attempt) -> Iterator[Attempt]:
    """Make ``attempt`` the running one for :func:`heartbeat` and :func:`cancelled`,
    and its trace context the current one (a runner's child process runs each attempt
    in one)."""
    token = _current.set(attempt)
    try:
        with trace_context.attached(attempt.trace_context):
            yield attempt
    finally:
        _current.reset(token)


@contextlib.contextmanager
def attempt_writes(attempt: Attempt) -> Iterator[None]:
    """Make ``attempt`` the running one for what this thread writes to ``sys.stdout``
    inside (an output capture routes it to the attempt's execution); nothing else."""
    token = _current.set(attempt)
    try:
        yield
    finally:
        _current.reset(token)


def heartbeat(details: Any = None, progress: float | None = None) -> None:
    """Tell the engine this task is alive (resets its heartbeat timeout).

    ``details`` is a checkpoint: a value the codec can store. If the attempt fails, the
    next attempt reads the last one from ``task_info().heartbeat_details``, and the
    workflow from ``TaskFailed.last_heartbeat_details``.

    Raises :class:`TaskCancelled` when the workflow no longer wants the result, so a long
    loop that heartbeats stops promptly. Outside a task it does nothing.

    Raises:
        PayloadError: ``details`` cannot be stored.
    """
    attempt = _current.get()
    if attempt is None:
        return
    if details is not None:  # encoded now, so a value that cannot be stored fails here
        attempt.heartbeat_text = attempt.payloads.encode_value(
            details, what=f"the heartbeat details of task {attempt.definition.name}"
        )
    else:
        attempt.heartbeat_text = None
    attempt.last_heartbeat = attempt.clock().timestamp()
    attempt.heartbeat_details = details
    if progress is not None:
        attempt.progress = float(progress)
    attempt.note()
    if attempt.relay is not None:
        attempt.relay(attempt)
    if attempt.cancel_requested:
        raise TaskCancelled(
            f"task {attempt.definition.name!r} was cancelled (its workflow no longer needs it)"
        )


def cancelled() -> bool:
    """True when the running task has been asked to stop (cancel, timeout, terminate).

    Outside a task (a task function called directly, e.g. to try it in a cell) it is
    False, like :func:`heartbeat` does nothing there.
    """
    attempt = _current.get()
    return attempt is not None and attempt.cancel_requested


def _finish(attempt: Attempt, value: Any) -> Outcome:
    try:
        text = attempt.payloads.encode_value(
            value, what=f"the result of task {attempt.definition.name}"
        )
    except StoreError as exc:  # storing a large result failed: the store's trouble
        return Outcome(attempt, started_at=attempt.started_at, store_error=exc)
    except Exception as exc:  # PayloadError, or a value whose own code breaks encoding
        # The attempt must report whatever happens (its pool thread or its task in the
        # engine's task group must not die), and the same code would produce the same
        # value again: no retry.
        error = Failure.from_exception(exc, non_retryable=True)
        return Outcome(attempt, error=error, started_at=attempt.started_at)
    return Outcome(attempt, result=text, started_at=attempt.started_at)


def _failed(attempt: Attempt, exc: BaseException) -> Outcome:
    def encode(details: Any) -> str:  # an ApplicationError's details travel as a value
        return attempt.payloads.encode_value(
            details, what=f"the error details of task {attempt.definition.name}"
        )

    error = Failure.from_exception(exc, encode=encode)
    return Outcome(attempt, error=error, started_at=attempt.started_at)


def run_sync(attempt: Attempt, now: Callable[[], datetime]) -> Outcome:
    """Run a sync attempt on the calling (pool) thread."""
    attempt.started_at = now()
    # attempt_context, spelled out: its two generator-based context managers cost a
    # third of what running a short task costs here.
    token = _current.set(attempt)
    try:
        if attempt.trace_context:
            with trace_context.attached(attempt.trace_context):
                value = _call(attempt)
        else:
            value = _call(attempt)
    except BaseException as exc:  # a task's KeyboardInterrupt is its failure, not ours
        _current.reset(token)
        return _failed(attempt, exc)
    _current.reset(token)
    return _finish(attempt, value)


def _call(attempt: Attempt) -> Any:
    args, kwargs = attempt.payloads.decode_input(attempt.input_text)
    return attempt.definition.fn(*args, **kwargs)


async def run_async(attempt: Attempt, now: Callable[[], datetime]) -> Outcome:
    """Run an async attempt on the engine loop (the contextvar is per asyncio task)."""
    attempt.started_at = now()
    _current.set(attempt)
    try:
        args, kwargs = attempt.payloads.decode_input(attempt.input_text)
        with trace_context.attached(attempt.trace_context):
            value = await attempt.definition.fn(*args, **kwargs)
    except BaseException as exc:
        return _failed(attempt, exc)
    return _finish(attempt, value)
