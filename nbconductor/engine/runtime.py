"""Replay runtime: drives one execution's workflow code, one event at a time.

The runtime turns history events into workflow progress and workflow actions into
commands (:mod:`nbconductor.engine.command`). Live, the engine records each command as
an event; on replay the same
commands must come out in the same order, or the history no longer describes this code
(a :class:`NonDeterminismError`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import random as _random
from datetime import datetime
from typing import Any, NoReturn

from nbconductor.engine import payload
from nbconductor.engine.arguments import check_call
from nbconductor.engine.command import (
    CANCEL,
    CANCEL_CHILD,
    CANCEL_TASK,
    CANCEL_TIMER,
    CLOSING_EVENTS,
    COMMAND_EVENTS,
    COMPLETE,
    COMPLETE_UPDATE,
    CONTINUE,
    FAIL,
    MARKER,
    RECORDED_AS,
    SCHEDULE_TASK,
    SIGNAL_CHILD,
    START_CHILD,
    START_TIMER,
    Command,
    describe_event,
)
from nbconductor.engine.context import WorkflowContext
from nbconductor.engine.definition import TaskDefinition, WorkflowDefinition
from nbconductor.engine.failure import Failure, child_failed, task_failed
from nbconductor.engine.future import ChildFuture, TaskFuture
from nbconductor.engine.loop import DurableTimer, WorkflowLoop
from nbconductor.engine.payload import PLAIN, Payloads
from nbconductor.errors import (
    ContinueAsNew,
    NonDeterminismError,
    PayloadError,
)
from nbconductor.storage.records import INFO_EVENTS, EventKind, EventRecord


class WorkflowRuntime(WorkflowContext):
    """One execution's workflow code, its deterministic loop and its pending commands:
    the :class:`~nbconductor.engine.context.WorkflowContext` of a replayed execution."""

    def __init__(
        self,
        execution_id: str,
        definition: WorkflowDefinition,
        input_text: str,
        started_at: datetime,
        *,
        markers: dict[int, EventRecord] | None = None,
        seed_id: str | None = None,
        payloads: Payloads = PLAIN,
    ) -> None:
        self.execution_id = execution_id
        self.payloads = payloads
        self.definition = definition
        self.input_text = input_text
        self.loop = WorkflowLoop(self)
        self.pending: collections.deque[Command] = collections.deque()
        self.tasks: dict[int, TaskFuture] = {}
        self.timers: dict[int, DurableTimer] = {}
        self.markers = markers or {}
        self.max_recorded_command = 0  # highest command id in the replayed history
        self.children: dict[int, ChildFuture] = {}
        self.signal_buffer: dict[str, collections.deque] = {}
        self.signal_waiters: dict[str, collections.deque[asyncio.Future]] = {}
        self.conditions: list[tuple[Any, asyncio.Future]] = []
        self.state: dict[str, Any] = {}
        self.patches: dict[str, bool] = {}  # patched() answers, one per patch id
        self.progress: tuple[float | None, str | None] = (None, None)
        self.closed = False
        self.replaying = False
        self._next_id = 1
        # A fork keeps its origin's seed, so random()/uuid4() replay the copied history.
        self._seed_id = seed_id or execution_id
        self._rng: _random.Random | None = None
        self.set_time(started_at)
        self.main: asyncio.Task | None = None

    @property
    def rng(self) -> _random.Random:
        """The execution's random numbers, seeded from its id: made on first use, since
        most workflows never ask, and seeding was a tenth of the cost of a start."""
        if self._rng is None:
            seed = hashlib.sha256(self._seed_id.encode()).digest()
            self._rng = _random.Random(int.from_bytes(seed[:8], "big"))
        return self._rng

    # --- driving ----------------------------------------------------------------------

    def set_time(self, at: datetime) -> None:
        self.now = at
        self.now_ts = at.timestamp()

    def start(self) -> None:
        """The first activation: run the workflow function until it waits."""
        args, kwargs = self.payloads.decode_input(self.input_text, lazy=True)
        self.main = self.loop.create_task(self.definition.fn(*args, **kwargs))
        self.main.add_done_callback(self._on_main_done)
        self._run()

    def _run(self) -> None:
        """Run to quiescence, re-checking wait_condition predicates each time."""
        self.loop.run_until_quiet()
        while self.conditions:
            met = self.loop.call_in_context(self._conditions_met)
            if not met:
                return
            self.loop.run_until_quiet()

    def _conditions_met(self) -> bool:
        changed = False
        for item in list(self.conditions):
            predicate, future = item
            if future.done():
                self.conditions.remove(item)
                continue
            try:
                if not predicate():
                    continue
            except Exception as exc:  # the predicate's error belongs to the waiting code
                future.set_exception(exc)
            else:
                future.set_result(True)
            self.conditions.remove(item)
            changed = True
        return changed

    def activate(self, event: EventRecord, result: str | None = None) -> None:
        """Apply one result event (task outcome, timer fired) and run to quiescence.

        ``result``: a TaskCompleted's result text as its outcome brought it (the event
        embeds the same text; decoding it directly spares parsing the event's data and
        encoding the result again)."""
        if self.closed:
            return
        self.set_time(event.at)
        kind = event.kind
        if kind is EventKind.TASK_COMPLETED:
            future = self.tasks.pop(event.command, None)
            if future is not None and not future.done():
                if result is not None:
                    value = self.payloads.decode_value(result, lazy=True)
                else:
                    data = payload.read_data(event.data)
                    value = self.payloads.payload_field(data, "result", lazy=True)
                future.set_result(value)
        elif kind is EventKind.TASK_FAILED:
            data = payload.read_data(event.data)
            if not data.get("final"):
                return  # a retry follows; workflow code does not see it
            future = self.tasks.pop(event.command, None)
            if future is not None and not future.done():
                checkpoint = self.payloads.payload_field(data, "last_heartbeat_details")
                details = self.payloads.payload_field(data.get("error") or {}, "details")
                future.set_exception(task_failed(event, data, checkpoint, details))
        elif kind is EventKind.TIMER_FIRED:
            timer = self.timers.pop(event.command, None)
            if timer is not None:
                self.loop.fire(timer)
        elif kind is EventKind.SIGNAL_RECEIVED:
            data = payload.read_data(event.data)
            self._deliver_signal(
                event.name or "", self.payloads.payload_field(data, "payload", lazy=True)
            )
        elif kind is EventKind.CANCEL_REQUESTED:
            if self.main is not None and not self.main.done():
                self.main.cancel()
        elif kind is EventKind.CHILD_CLOSED:
            future = self.children.pop(event.command, None)
            if future is not None and not future.done():
                data = payload.read_data(event.data)
                if future.cancel_requested:
                    future.child_closed()
                elif data.get("status") == "completed":
                    future.set_result(self.payloads.payload_field(data, "result", lazy=True))
                else:
                    details = self.payloads.payload_field(data.get("error") or {}, "details")
                    future.set_exception(child_failed(event, data, future.workflow, details))
        elif kind is EventKind.UPDATE_ACCEPTED:
            data = payload.read_data(event.data)
            self._start_update(
                event.name or "",
                data["update_id"],
                self.payloads.payload_field(data, "payload", lazy=True),
            )
        self._run()

    def take_commands(self) -> list[Command]:
        commands = list(self.pending)
        self.pending.clear()
        return commands

    def match(self, event: EventRecord, version: str | None = None) -> None:
        """Replay: the next command the code issued must be the one ``event`` recorded."""
        if not self.pending:
            raise self._mismatch(
                event, describe_event(event), "nothing (the code issued no such command)"
            )
        command = self.pending.popleft()
        if (
            RECORDED_AS[command.kind] is not event.kind
            or command.id != event.command
            or (command.name or None) != (event.name or None)
        ):
            raise self._mismatch(event, describe_event(event), command.describe())

    def _mismatch(self, event: EventRecord, expected: str, got: str) -> NonDeterminismError:
        recorded = getattr(self, "recorded_version", None) or "?"
        return NonDeterminismError(
            f"execution {self.execution_id!r} of workflow {self.definition.name!r} no longer "
            f"replays: at history event #{event.seq} the history has {expected}, but the "
            f"current code (version {self.definition.version}; the execution started with "
            f"version {recorded}) issued {got}. Restore the previous code, guard the change "
            "with patched(), or terminate the execution."
        )

    def close(self) -> None:
        """Drop the workflow's coroutines without running more of its code."""
        self.closed = True
        self.loop.close()
        if self.main is not None and not self.main.done():
            # Closing the coroutine frame runs no workflow code past its current await
            # except finally blocks; the task object itself is discarded.
            self.main._log_destroy_pending = False

    # --- what workflow code calls -----------------------------------------------------

    def next_id(self) -> int:
        ident = self._next_id
        self._next_id += 1
        return ident

    def _encode_call(self, signature, args: tuple, kwargs: dict, what: str) -> str | None:
        """The arguments of the next command as stored text, or None while replaying a
        command the history holds: its recorded event has them, and matching compares
        kind, id and name only, so large arguments are neither encoded nor hashed."""
        if self.replaying and self._next_id <= self.max_recorded_command:
            check_call(signature, args, kwargs, what)
            return None
        return self.payloads.encode_call(signature, args, kwargs, what=what)

    def schedule_task(self, definition: TaskDefinition, args: tuple, kwargs: dict) -> TaskFuture:
        text = self._encode_call(definition.signature, args, kwargs, f"task {definition.name}")
        command = self.next_id()
        future = TaskFuture(loop=self.loop)
        future.runtime = self
        future.command = command
        self.tasks[command] = future
        self.pending.append(
            Command(SCHEDULE_TASK, command, definition.name, text, definition=definition)
        )
        return future

    def cancel_task(self, future: TaskFuture) -> None:
        if self.tasks.pop(future.command, None) is not None:
            self.pending.append(Command(CANCEL_TASK, future.command))

    def start_timer(self, timer: DurableTimer) -> None:
        timer.command = self.next_id()
        self.timers[timer.command] = timer
        self.pending.append(Command(START_TIMER, timer.command, data={"fire_at": timer.when()}))

    def cancel_timer(self, timer: DurableTimer) -> None:
        if self.timers.pop(timer.command, None) is not None:
            self.pending.append(Command(CANCEL_TIMER, timer.command))

    def side_effect(self, fn, what: str) -> Any:
        command = self.next_id()
        recorded = self.markers.get(command)
        if recorded is not None:
            value_text = payload.read_data(recorded.data).get("value")
            value = self.payloads.payload_field({"value": value_text}, "value", lazy=True)
            text = None
        else:
            value = fn()
            text = self.payloads.encode_value(value, what=what)
        self.pending.append(Command(MARKER, command, "side_effect", text))
        return value

    def wait_signal(self, name: str) -> asyncio.Future:
        future = self.loop.create_future()
        buffered = self.signal_buffer.get(name)
        if buffered:
            future.set_result(buffered.popleft())
        else:
            self.signal_waiters.setdefault(name, collections.deque()).append(future)
        return future

    def _deliver_signal(self, name: str, value: Any) -> None:
        waiters = self.signal_waiters.get(name)
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(value)
                return
        self.signal_buffer.setdefault(name, collections.deque()).append(value)

    def waiting_signals(self) -> list[str]:
        """Names of the signals the workflow is awaiting right now."""
        if not self.signal_waiters:
            return []  # most workflows, after every activation
        return sorted(
            name for name, q in self.signal_waiters.items() if any(not f.done() for f in q)
        )

    def wait_condition(self, predicate) -> asyncio.Future:
        future = self.loop.create_future()
        self.conditions.append((predicate, future))
        return future

    def start_child(
        self,
        definition: WorkflowDefinition,
        args: tuple,
        kwargs: dict,
        *,
        child_id: str | None,
        parent_close: str,
    ) -> ChildFuture:
        text = self._encode_call(
            definition.signature, args, kwargs, f"child workflow {definition.name}"
        )
        command = self.next_id()
        future = ChildFuture(loop=self.loop)
        future.runtime = self
        future.command = command
        future.child_id = child_id or f"{self.execution_id}/{command}"
        future.workflow = definition.name
        self.children[command] = future
        data = {"child_id": future.child_id, "parent_close": parent_close}
        self.pending.append(Command(START_CHILD, command, definition.name, text, data))
        return future

    def cancel_child(self, future: ChildFuture) -> None:
        # The future stays in ``children``: its ChildClosed event finishes it.
        if future.command in self.children:
            self.pending.append(
                Command(CANCEL_CHILD, self.next_id(), data={"child_id": future.child_id})
            )

    def signal_child(self, child_id: str, name: str, value: Any) -> None:
        text = None
        if not (self.replaying and self._next_id <= self.max_recorded_command):
            text = self.payloads.encode_value(value, what=f"signal {name!r} to {child_id}")
        data = {"child_id": child_id}
        self.pending.append(Command(SIGNAL_CHILD, self.next_id(), name, text, data))

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        name = f"patch:{patch_id}"
        upcoming = self._next_id
        recorded = self.markers.get(upcoming)
        if recorded is not None and recorded.name == name:
            # The history answers (a history recorded before answers were memoized may
            # hold a marker after an earlier unpatched answer: it replays as recorded).
            self.patches.setdefault(patch_id, True)
            self.pending.append(Command(MARKER, self.next_id(), name))
            return True
        if deprecated:
            return False  # a deprecated patch records nothing new
        known = self.patches.get(patch_id)
        if known is None:
            # One answer per execution and patch id, as Temporal memoizes it: an
            # execution that took the old branch during replay keeps taking it live.
            known = not (self.replaying and upcoming <= self.max_recorded_command)
            self.patches[patch_id] = known
        if not known:
            return False  # this execution was recorded before the patch existed
        self.pending.append(Command(MARKER, self.next_id(), name))
        return True

    def continue_as_new(self, args: tuple, kwargs: dict) -> NoReturn:
        text = self.payloads.encode_call(
            self.definition.signature,
            args,
            kwargs,
            what=f"continue_as_new of {self.definition.name}",
        )
        raise ContinueAsNew(text)

    def _start_update(self, name: str, update_id: str, value: Any) -> None:
        handler = self.definition.updates.get(name)

        async def run() -> None:
            data: dict = {"update_id": update_id}
            text = None
            try:
                if handler is None:
                    raise LookupError(f"workflow {self.definition.name!r} has no update {name!r}")
                result = handler.fn(value)
                if asyncio.iscoroutine(result):
                    result = await result
                text = self.payloads.encode_value(result, what=f"the result of update {name!r}")
            except asyncio.CancelledError:
                data["error"] = Failure("CancelledError", "the workflow closed").to_dict()
            except Exception as exc:
                data["error"] = Failure.from_exception(exc, encode=self._encode).to_dict()
            self.pending.append(Command(COMPLETE_UPDATE, None, name, text, data))

        self.loop.create_task(run())

    def on_loop_error(self, context: dict) -> None:
        # Unretrieved exceptions of abandoned workflow sub-tasks end up here; the
        # execution's outcome is decided by its main coroutine, so nothing to record.
        pass

    # --- the end ----------------------------------------------------------------------

    def _on_main_done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            self.pending.append(Command(CANCEL))
            return
        exc = task.exception()
        if isinstance(exc, ContinueAsNew):
            self.pending.append(Command(CONTINUE, payload=exc.input_text))
            return
        if exc is None:
            try:
                text = self.payloads.encode_value(
                    task.result(), what=f"the result of workflow {self.definition.name}"
                )
            except PayloadError as err:
                self.pending.append(Command(FAIL, failure=Failure.from_exception(err)))
                return
            self.pending.append(Command(COMPLETE, payload=text))
        else:
            failure = Failure.from_exception(exc, encode=self._encode)
            self.pending.append(Command(FAIL, failure=failure))

    def _encode(self, value: Any) -> str:
        return self.payloads.encode_value(value, what="the details of the workflow's error")


def replay(
    definition: WorkflowDefinition, history: list[EventRecord], *, payloads: Payloads = PLAIN
) -> tuple[WorkflowRuntime, list[Command]]:
    """Rebuild an execution's runtime from its history.

    Returns the runtime, positioned after the last event, and the commands the code
    issued that the history does not hold yet (they still have to be recorded).

    Raises:
        NonDeterminismError: the code issued other commands than the history recorded.
    """
    if not history or history[0].kind is not EventKind.EXECUTION_STARTED:
        raise ValueError("a history starts with an ExecutionStarted event")
    first = history[0]
    started = payload.read_data(first.data)
    markers = {e.command: e for e in history if e.kind is EventKind.MARKER_RECORDED}
    runtime = WorkflowRuntime(
        first.execution_id,
        definition,
        _embedded(first.data, "input"),
        first.at,
        markers=markers,
        seed_id=started.get("seed_id"),
        payloads=payloads,
    )
    runtime.recorded_version = started.get("version")
    runtime.max_recorded_command = max(
        (e.command for e in history if e.command is not None and e.kind in COMMAND_EVENTS),
        default=0,
    )
    runtime.replaying = True
    runtime.start()
    for event in history[1:]:
        if event.kind in INFO_EVENTS:
            continue  # heartbeats and ignored results: nothing the workflow's code saw
        if event.kind in COMMAND_EVENTS:
            runtime.match(event)
            if event.kind in CLOSING_EVENTS:
                runtime.closed = True
        elif runtime.pending and not _recorded_offline(event):
            command = runtime.pending[0]
            raise runtime._mismatch(
                event,
                describe_event(event),
                f"{command.describe()} first, which the history does not have",
            )
        else:
            runtime.activate(event)
    runtime.replaying = False
    return runtime, runtime.take_commands()


def _recorded_offline(event: EventRecord) -> bool:
    """Whether ``event`` was appended by a steering call while no engine held the file.

    Such an event may precede the commands an earlier event caused (the engine records
    them only when it next opens the file), so it is applied with those commands still
    waiting to be matched: the workflow code's state does not depend on when they were
    recorded.
    """
    return event.kind in OFFLINE_KINDS and payload.read_data(event.data).get("offline") is True


OFFLINE_KINDS = frozenset({EventKind.SIGNAL_RECEIVED, EventKind.CANCEL_REQUESTED})


def _embedded(data_text: str, key: str) -> str:
    """The codec JSON text of an embedded payload field."""
    data = payload.read_data(data_text)
    return json.dumps(data.get(key), separators=(",", ":"))
