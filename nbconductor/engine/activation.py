"""Activations: starting executions, running their code, carrying out their commands,
closing them.

Runs on the engine thread. Each activation's events are appended to the tick's batch in
the order replay expects: the event that caused it, then the commands it issued. The
commands of other features (tasks, children, updates) are carried out by the handlers
those features register with :meth:`Activations.on_command`; what must happen when an
execution closes, by the listeners registered with :meth:`Activations.on_close`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nbconductor import logs
from nbconductor.engine.command import (
    CANCEL,
    CANCEL_TIMER,
    COMPLETE,
    FAIL,
    MARKER,
    START_TIMER,
    Command,
)
from nbconductor.engine.definition import WorkflowDefinition
from nbconductor.engine.failure import Failure
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.live import LiveExecution
from nbconductor.engine.payload import Payloads, event_data, read_data
from nbconductor.engine.roster import Roster
from nbconductor.engine.runtime import WorkflowRuntime
from nbconductor.storage.records import EventKind, EventRecord, ExecutionRecord, Status
from nbconductor.storage.store import Store

CommandHandler = Callable[[LiveExecution, Command], None]
# Called as listener(live, status, result, error) when an execution closes.
CloseListener = Callable[[LiveExecution, Status, "str | None", "str | None"], None]

_CLOSING = {
    COMPLETE: (EventKind.EXECUTION_COMPLETED, Status.COMPLETED),
    FAIL: (EventKind.EXECUTION_FAILED, Status.FAILED),
    CANCEL: (EventKind.EXECUTION_CANCELLED, Status.CANCELLED),
}


_CLOSED_AS = {
    EventKind.EXECUTION_COMPLETED: Status.COMPLETED,
    EventKind.EXECUTION_FAILED: Status.FAILED,
    EventKind.EXECUTION_CANCELLED: Status.CANCELLED,
    EventKind.EXECUTION_TERMINATED: Status.TERMINATED,
    EventKind.EXECUTION_TIMED_OUT: Status.TIMED_OUT,
    EventKind.EXECUTION_CONTINUED_AS_NEW: Status.CONTINUED_AS_NEW,
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Activations:
    """What happens to an execution between the event that wakes it and the commit."""

    def __init__(self, ledger: Ledger, roster: Roster, store: Store, payloads: Payloads) -> None:
        self._ledger = ledger
        self._roster = roster
        self._store = store
        self._payloads = payloads
        self._handlers: dict[str, CommandHandler] = {}
        self._close_listeners: list[CloseListener] = []

    def on_command(self, kind: str, handler: CommandHandler) -> None:
        """Let ``handler(live, command)`` carry out commands of this kind."""
        self._handlers[kind] = handler

    def on_close(self, listener: CloseListener) -> None:
        """Call ``listener(live, status, result, error)`` whenever an execution closes,
        in the tick that closes it (listeners run in the order they were added)."""
        self._close_listeners.append(listener)

    # ------------------------------------------------------------------ starting

    def start(
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
        ledger, roster = self._ledger, self._roster
        try:
            if ledger.stopping or roster.get(execution_id) is not None:
                return False
            if explicit and self._store.get_execution(execution_id) is not None:
                # Idempotent start: it exists and is closed (open ones are in the roster).
                ledger.after_commit(lambda: roster.resolve(execution_id))
                return False
            now = ledger.now
            record = ExecutionRecord(
                id=execution_id,
                workflow=definition.name,
                version=definition.version,
                status=Status.RUNNING,
                created_at=now,
                updated_at=now,
                input=text,
                parent_id=parent[0] if parent else None,
                origin_id=origin_id,
                tags=list(tags or ()),
            )
            live = LiveExecution(record, parent=parent, parent_close=parent_close)
            roster.add(live)
            ledger.add_execution(record)
            fields: dict[str, Any] = {"workflow": definition.name, "version": definition.version}
            if definition.timeout is not None:
                fields["timeout"] = definition.timeout
            if parent is not None:
                fields["parent"] = list(parent)
                fields["parent_close"] = parent_close
            if origin_id is not None:
                fields["continued_from"] = origin_id
            ledger.record(
                live,
                EventKind.EXECUTION_STARTED,
                name=definition.name,
                data=event_data(fields, input=text),
            )
            self.arm_execution_timeout(live, definition)
            live.runtime = WorkflowRuntime(
                execution_id, definition, text, now, payloads=self._payloads
            )
            live.runtime.recorded_version = definition.version
            self.run_code(live, live.runtime.start)
            return True
        finally:
            roster.taken(execution_id)

    def arm_execution_timeout(self, live: LiveExecution, definition: WorkflowDefinition) -> None:
        if definition.timeout is not None:
            self._ledger.push(
                live.record.created_at.timestamp() + definition.timeout,
                self._execution_timed_out,
                live.id,
            )

    def arm_timer(self, live: LiveExecution, command: int, due: float) -> None:
        """A durable timer of the execution fires at ``due`` (epoch seconds)."""
        live.timers[command] = due
        self._ledger.push(due, self._timer_fired, live.id, command)

    # ------------------------------------------------------------------ commands

    def carry_out(self, live: LiveExecution, commands: list[Command]) -> None:
        """Record each command and do what it asks; stop at the one that closes."""
        ledger = self._ledger
        handlers = self._handlers
        for command in commands:
            kind = command.kind
            handler = handlers.get(kind)
            if handler is not None:
                handler(live, command)
                if live.record.status.closed:  # continue-as-new closed this run
                    return
            elif kind is START_TIMER:
                due = command.data["fire_at"]
                ledger.record(
                    live,
                    EventKind.TIMER_STARTED,
                    command=command.id,
                    data=event_data({"fire_at": due, "due": _iso(due)}),
                )
                self.arm_timer(live, command.id, due)
            elif kind is CANCEL_TIMER:
                live.timers.pop(command.id, None)
                ledger.record(live, EventKind.TIMER_CANCELLED, command=command.id)
            elif kind is MARKER:
                ledger.record(
                    live,
                    EventKind.MARKER_RECORDED,
                    command=command.id,
                    name=command.name,
                    data=event_data(None, value=command.payload),
                )
            elif kind in _CLOSING:
                event_kind, status = _CLOSING[kind]
                state = self.final_state(live)
                if kind is COMPLETE:
                    data = event_data(None, result=command.payload, state=state)
                    ledger.record(live, event_kind, data=data)
                    self.close(live, status, result=command.payload)
                else:
                    failure = command.failure
                    error = failure.to_dict() if failure is not None else None
                    data = event_data({"error": error} if error else None, state=state)
                    ledger.record(live, event_kind, data=data)
                    self.close(live, status, error=failure)
                return
            else:
                raise AssertionError(f"no handler for command {command.describe()}")

    def final_state(self, live: LiveExecution) -> str | None:
        """The execution's ``state`` as codec text, for its closing event (embedded as
        ``state``): a closed execution answers ``handle.state`` and queries from it.

        None for an empty state (nothing to keep); ``false`` when the state holds a
        value the codec cannot store, so the closed execution says it was not kept."""
        runtime = live.runtime
        state = runtime.state if runtime is not None else live.state
        if not state:
            return None
        try:
            return self._payloads.encode_value(state, what="the workflow's final state")
        except Exception:  # PayloadError, or a value whose own code breaks encoding
            return "false"

    def close(
        self,
        live: LiveExecution,
        status: Status,
        *,
        result: str | None = None,
        error: Failure | None = None,
    ) -> None:
        """Close an open execution: record its final state, stop its work, tell the
        close listeners, and answer whoever waits once it is committed."""
        now = self._ledger.now
        error_text = error.to_json() if error is not None else None
        # The closing event is in this tick's batch; the row follows in a transaction
        # of its own, so the result is released without waiting for an UPDATE.
        self._ledger.update(
            live,
            later=True,
            status=status,
            closed_at=now,
            result=result,
            error=error_text,
            condition="" if live.condition else None,
        )
        live.record.status = status
        live.record.result = result  # a continued run names its next one before commit
        logs.execution_closed(live.id, live.record.workflow, status, error)
        for listener in self._close_listeners:
            listener(live, status, result, error)
        live.timers.clear()
        if live.runtime is not None:
            live.runtime.close()
        closed = live.record.copy()
        closed.closed_at = closed.updated_at = now
        closed.result, closed.error, closed.condition = result, error_text, None
        self._ledger.after_commit(lambda: self._roster.resolve(live.id, closed))
        self._ledger.after_later(lambda: self._roster.row_written(live.id))

    def finish_row(self, record: ExecutionRecord, closing: EventRecord) -> None:
        """Write the row of an execution whose closing event is in the file but whose
        row update was lost in a crash (it is committed just after the event)."""
        data = read_data(closing.data)
        status = _CLOSED_AS[closing.kind]
        result = error = None
        if closing.kind is EventKind.EXECUTION_COMPLETED and "result" in data:
            result = json.dumps(data["result"], separators=(",", ":"))
        elif closing.kind is EventKind.EXECUTION_CONTINUED_AS_NEW:
            result = json.dumps({"next_id": data.get("next_id")})
        elif closing.kind is EventKind.EXECUTION_TERMINATED:
            error = Failure("Terminated", data.get("reason")).to_json()
        elif closing.kind is EventKind.EXECUTION_TIMED_OUT:
            error = Failure("ExecutionTimedOut", "the workflow's execution timeout elapsed")
            error = error.to_json()
        elif data.get("error"):
            error = Failure.from_dict(data["error"]).to_json()
        live = LiveExecution(record)
        self._ledger.update(
            live, status=status, closed_at=closing.at, result=result, error=error, condition=""
        )
        logs.execution_closed(record.id, record.workflow, status, None)

    # ------------------------------------------------------------ due heap items

    def _timer_fired(self, execution_id: str, command: int) -> None:
        live = self._roster.get(execution_id)
        if live is None or live.timers.pop(command, None) is None:
            return
        event = self._ledger.record(live, EventKind.TIMER_FIRED, command=command)
        self.activate(live, event)

    def _execution_timed_out(self, execution_id: str) -> None:
        live = self._roster.get(execution_id)
        if live is None:
            return
        data = event_data(None, state=self.final_state(live))
        self._ledger.record(live, EventKind.EXECUTION_TIMED_OUT, data=data)
        self.close(
            live,
            Status.TIMED_OUT,
            error=Failure("ExecutionTimedOut", "the workflow's execution timeout elapsed"),
        )

    # ---------------------------------------------------------------- activation

    def activate(self, live: LiveExecution, event: EventRecord, result: str | None = None) -> None:
        """Apply one recorded event to the execution's code and carry out what it asks
        (``result``: a TaskCompleted's result text, when the caller has it at hand)."""
        runtime = live.runtime
        if runtime is None or runtime.closed:
            return
        self.run_code(live, runtime.activate, event, result)

    def run_code(self, live: LiveExecution, step: Callable[..., None], *args: Any) -> None:
        """Run one activation of workflow code and carry out what it asked for.

        Workflow errors end up in its coroutine; anything escaping here is a bug in
        code run outside it (or in the engine). It parks this execution as blocked
        instead of stopping every other one; re-running the definition retries it.
        """
        runtime = live.runtime
        try:
            step(*args)
            commands = runtime.take_commands()
        except Exception as exc:
            self._raise_store_failure()
            self.park(live, exc, "running workflow code")
            return
        self._raise_store_failure()
        try:  # parked if one of its commands cannot be carried out: nothing one
            self.carry_out(live, commands)  # execution asks for may stop the engine
        except Exception as exc:
            self.park(live, exc, "carrying out what its workflow code asked for")
        self.snapshot(live)

    def _raise_store_failure(self) -> None:
        # Storing a large value failed (a full disk): the history cannot go on, so the
        # engine stops on it as on a failed commit, whatever the workflow code did.
        failure = self._payloads.store_failure
        if failure is not None:
            raise failure

    def park_faulted(self, error: BaseException, args: tuple) -> None:
        """The ledger's ``on_fault``: an error escaped a tick item (on the engine thread).
        Park the execution it concerns, when the item names one; the engine and the
        others go on."""
        live = None
        if args:
            first = args[0]
            key = first if isinstance(first, str) else getattr(first, "execution_id", None)
            live = self._roster.get(key) if isinstance(key, str) else None
        if live is not None:
            self.park(live, error, "the engine handled its timers")

    def park(self, live: LiveExecution, exc: BaseException, doing: str) -> None:
        """Stop running the execution's code after an error outside it, and say why in
        its condition; the other executions go on. Re-running the definition (or
        restarting the engine) replays it and tries again."""
        runtime = live.runtime
        live.runtime = None
        if runtime is not None:
            runtime.close()
        if live.record.status.closed:
            return
        self._ledger.set_condition(
            live,
            f"blocked: {type(exc).__name__} while {doing}: {exc}. Fix the cause and re-run "
            "the workflow's definition (or restart the engine), or terminate the execution",
        )

    def snapshot(self, live: LiveExecution) -> None:
        """Refresh what other threads read of the execution (signals, progress, state)."""
        runtime = live.runtime
        if runtime is None:
            return
        if runtime.signal_waiters or live.waiting_signals:  # most never wait for one
            live.waiting_signals = runtime.waiting_signals()
        live.progress = runtime.progress
        if runtime.state or live.state:
            try:
                live.state = copy.deepcopy(runtime.state)
            except Exception:  # an uncopyable value: readers get a shallow copy
                live.state = dict(runtime.state)
