"""Steering executions from outside: signals, cancel, terminate, updates, queries.

What callers use (``signal``, ``cancel``, ``update``, ...) is thread-safe: it validates
on the caller's thread, hands the change to the engine thread through ``call``, and
returns once it is committed (the causal rule). The engine-thread side
(``deliver_signal``, ``request_cancel``, ``terminate``) is what children, parents and
schedules use too.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from nbconductor.engine.activation import Activations
from nbconductor.engine.command import COMPLETE_UPDATE, Command
from nbconductor.engine.definition import Registry
from nbconductor.engine.failure import Failure
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.live import LiveExecution
from nbconductor.engine.payload import Payloads, event_data, read_data
from nbconductor.engine.roster import Roster
from nbconductor.errors import ExecutionClosed, NbconductorError, UpdateRejected
from nbconductor.storage.records import EventKind, ExecutionRecord, Status

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,99}$")

Call = Callable[..., Any]  # runs a function on the engine thread, returns after its commit


def check_signal_name(name: object, what: str = "signal") -> str:
    """A signal or update name: a short identifier-like string."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} name {name!r} is not valid: use 1-100 letters, digits, '_', '-', '.' "
            "or ':', starting with a letter or '_'"
        )
    return name


class Steering:
    """Signals, cancels, terminations, updates and queries of open executions."""

    def __init__(
        self,
        ledger: Ledger,
        roster: Roster,
        registry: Registry,
        activations: Activations,
        payloads: Payloads,
        call: Call,
    ) -> None:
        self._ledger = ledger
        self._roster = roster
        self._registry = registry
        self._activations = activations
        self._payloads = payloads
        self._call = call
        self._update_waiters: dict[str, Future] = {}
        activations.on_command(COMPLETE_UPDATE, self._update_completed)

    # ------------------------------------------------------------- any thread

    def signal(self, execution_id: str, name: str, value: Any = None) -> None:
        check_signal_name(name)
        text = self._payloads.encode_value(value, what=f"the payload of signal {name!r}")
        self._call(lambda: self.deliver_signal(execution_id, name, text))

    def cancel(self, execution_id: str) -> None:
        self._call(lambda: self.request_cancel(self._roster.open(execution_id)))

    def terminate_by_id(self, execution_id: str, reason: str | None = None) -> None:
        self._call(lambda: self.terminate(self._roster.open(execution_id), reason))

    def update(self, execution_id: str, name: str, value: Any = None, *, timeout: float) -> Any:
        check_signal_name(name, "update")
        text = self._payloads.encode_value(value, what=f"the payload of update {name!r}")
        result: Future = Future()
        self._call(lambda: self._accept_update(execution_id, name, text, value, result))
        return result.result(timeout)

    def query(self, execution_id: str, name: str, *args: Any) -> Any:
        execution_id = self._roster.latest(execution_id)
        record = self._roster.record_of(execution_id)
        definition = self._registry.workflow(record.workflow)
        handler = definition.queries.get(name)
        if handler is None:
            known = ", ".join(sorted(definition.queries)) or "none"
            raise LookupError(f"workflow {record.workflow!r} has no query {name!r} (has: {known})")
        return handler.fn(self.state_of(execution_id), *args)

    def state_of(self, execution_id: str) -> dict:
        execution_id = self._roster.latest(execution_id)
        live = self._roster.get(execution_id)
        if live is not None:  # open, or closing in a commit still under way
            return copy.deepcopy(live.state)
        record = self._roster.record_of(execution_id)
        if not record.status.closed:
            return {}  # starting, or waiting for its definition: no step has run yet
        # Closed: the final state kept in its closing event (read again each time, so
        # every caller gets its own copy).
        event = self._roster.closing_event(execution_id)
        data = read_data(event.data) if event is not None else {}
        if data.get("state") is False:
            raise ExecutionClosed(
                f"execution {execution_id!r} is {record.status.title} and its final state "
                "was not kept: it held a value the codec cannot store. Keep storable "
                "values in nc.state, or return what you need as the workflow's result"
            )
        # No state recorded: it was empty (or closed before final states were kept).
        return self._payloads.payload_field(data, "state") or {}

    def progress_of(self, execution_id: str) -> dict:
        live = self._roster.get(self._roster.latest(execution_id))
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
        live = self._roster.get(self._roster.latest(execution_id))
        return list(live.waiting_signals) if live is not None else []

    def open_executions(self, workflow: str | None = None) -> list[ExecutionRecord]:
        return [
            copy.copy(live.record)
            for live in self._roster.all()
            if workflow is None or live.record.workflow == workflow
        ]

    # ------------------------------------------------------------ engine thread

    def deliver_signal(self, execution_id: str, name: str, text: str) -> None:
        """Record signal ``name`` (payload already encoded) and wake the execution."""
        live = self._roster.open(execution_id)
        event = self._ledger.record(
            live, EventKind.SIGNAL_RECEIVED, name=name, data=event_data(None, payload=text)
        )
        self._activations.activate(live, event)

    def request_cancel(self, live: LiveExecution) -> None:
        """Raise CancelledError at the execution's current await."""
        event = self._ledger.record(live, EventKind.CANCEL_REQUESTED)
        self._activations.activate(live, event)

    def terminate(self, live: LiveExecution, reason: str | None) -> None:
        """Close the execution as Terminated; no more of its code runs."""
        reason = reason or "terminated"
        state = self._activations.final_state(live)
        self._ledger.record(
            live, EventKind.EXECUTION_TERMINATED, data=event_data({"reason": reason}, state=state)
        )
        self._activations.close(live, Status.TERMINATED, error=Failure("Terminated", reason))

    def _accept_update(
        self, execution_id: str, name: str, text: str, value: Any, result: Future
    ) -> None:
        live = self._roster.open(execution_id)
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
        event = self._ledger.record(
            live,
            EventKind.UPDATE_ACCEPTED,
            name=name,
            data=event_data({"update_id": update_id}, payload=text),
        )
        self._activations.activate(live, event)

    def _update_completed(self, live: LiveExecution, command: Command) -> None:
        self._ledger.record(
            live,
            EventKind.UPDATE_COMPLETED,
            name=command.name,
            data=event_data(command.data, result=command.payload),
        )
        self._ledger.after_commit(lambda: self._answer_update(command))

    def _answer_update(self, command: Command) -> None:
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
            future.set_result(self._payloads.decode_value(command.payload))
