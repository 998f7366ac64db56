"""Executions that start executions: child workflows and continue-as-new runs.

Runs on the engine thread. Interactions between executions (a child closing, a
parent's close policy, a signal to a child) are posted to the ledger's inbox, so each
activation's commands are recorded before the next event of another execution.
"""

from __future__ import annotations

import json
import re

from nbconductor.engine.activation import Activations
from nbconductor.engine.command import CANCEL_CHILD, CONTINUE, SIGNAL_CHILD, START_CHILD, Command
from nbconductor.engine.definition import Registry
from nbconductor.engine.failure import Failure
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.live import LiveExecution
from nbconductor.engine.payload import event_data
from nbconductor.engine.roster import Roster
from nbconductor.engine.steering import Steering
from nbconductor.storage.records import EventKind, Status


class Lineage:
    """Children (start, cancel, signal, close, parent-close policies) and continue-as-new."""

    def __init__(
        self,
        ledger: Ledger,
        roster: Roster,
        registry: Registry,
        activations: Activations,
        steering: Steering,
    ) -> None:
        self._ledger = ledger
        self._roster = roster
        self._registry = registry
        self._activations = activations
        self._steering = steering
        activations.on_command(START_CHILD, self._start_child)
        activations.on_command(CANCEL_CHILD, self._cancel_child)
        activations.on_command(SIGNAL_CHILD, self._signal_child)
        activations.on_command(CONTINUE, self._continue_as_new)
        activations.on_close(self._closed)

    # ------------------------------------------------------------------ children

    def _start_child(self, live: LiveExecution, command: Command) -> None:
        child_id = command.data["child_id"]
        live.children[command.id] = child_id
        self._ledger.record(
            live,
            EventKind.CHILD_STARTED,
            command=command.id,
            name=command.name,
            data=event_data(
                {"child_id": child_id, "parent_close": command.data["parent_close"]},
                input=command.payload,
            ),
        )
        definition = self._registry.workflow(command.name)
        started = self._activations.start(
            child_id,
            definition,
            command.payload,
            explicit=True,
            parent=(live.id, command.id),
            parent_close=command.data["parent_close"],
        )
        if not started:
            record = self._roster.find(child_id)
            held_by = f" of workflow {record.workflow!r}" if record is not None else ""
            error = Failure(
                "ExecutionAlreadyExists",
                f"child workflow {command.name!r} cannot start as {child_id!r}: an execution"
                f"{held_by} already has that id; give the child another id",
            )
            self._ledger.post(
                lambda: self._child_closed(
                    live.id, command.id, child_id, Status.FAILED, None, error, command.name
                )
            )

    def _child_closed(
        self,
        parent_id: str,
        command: int,
        child_id: str,
        status: Status,
        result: str | None,
        error: Failure | None,
        workflow: str | None = None,
    ) -> None:
        parent = self._roster.get(parent_id)
        if parent is None or parent.children.pop(command, None) is None:
            return  # the parent closed first, or abandoned the child
        fields: dict = {"child_id": child_id, "status": status.value}
        if error is not None:
            fields["error"] = error.to_dict()
        event = self._ledger.record(
            parent,
            EventKind.CHILD_CLOSED,
            command=command,
            name=workflow,  # the child's workflow, so messages can name it
            data=event_data(fields, result=result),
        )
        self._activations.activate(parent, event)

    def _closed(
        self, live: LiveExecution, status: Status, result: str | None, error: Failure | None
    ) -> None:
        """Tell the parent, apply parent-close policies to open children."""
        post = self._ledger.post
        if live.parent is not None and status is not Status.CONTINUED_AS_NEW:
            parent_id, command = live.parent
            workflow = live.record.workflow
            post(
                lambda: self._child_closed(
                    parent_id, command, live.id, status, result, error, workflow
                )
            )
        if live.children:  # most have none: no view and iterator for every close
            for child_id in live.children.values():
                post(lambda child_id=child_id: self._apply_parent_close(child_id, live.id))
            live.children.clear()

    def _apply_parent_close(self, child_id: str, parent_id: str) -> None:
        child = self._roster.get(child_id)
        if child is None or child.record.status.closed:
            return
        if child.parent_close == "terminate":
            self._steering.terminate(child, f"parent execution {parent_id!r} closed")
        elif child.parent_close == "request_cancel":
            self._steering.request_cancel(child)
        child.parent = None  # abandoned (or handled): it no longer reports back

    def _cancel_child(self, live: LiveExecution, command: Command) -> None:
        child_id = command.data["child_id"]
        self._ledger.record(
            live,
            EventKind.CHILD_CANCEL_REQUESTED,
            command=command.id,
            data=event_data({"child_id": child_id}),
        )

        def deliver() -> None:  # to the latest run, if the child continued as new
            child = self._roster.get(self._roster.latest(child_id))
            if child is not None and not child.record.status.closed:
                self._steering.request_cancel(child)

        self._ledger.post(deliver)

    def _signal_child(self, live: LiveExecution, command: Command) -> None:
        child_id = command.data["child_id"]
        self._ledger.record(
            live,
            EventKind.SIGNAL_SENT,
            command=command.id,
            name=command.name,
            data=event_data({"child_id": child_id}, payload=command.payload),
        )

        def deliver() -> None:  # to the latest run, if the child continued as new
            child = self._roster.get(self._roster.latest(child_id))
            if child is not None and not child.record.status.closed:
                self._steering.deliver_signal(child.id, command.name, command.payload)

        self._ledger.post(deliver)

    # ---------------------------------------------------------- continue as new

    def _continue_as_new(self, live: LiveExecution, command: Command) -> None:
        next_id = next_run_id(live.id)
        self._ledger.record(
            live,
            EventKind.EXECUTION_CONTINUED_AS_NEW,
            data=event_data(
                {"next_id": next_id},
                input=command.payload,
                state=self._activations.final_state(live),
            ),
        )
        parent, parent_close = live.parent, live.parent_close
        parent_live = self._roster.get(parent[0]) if parent is not None else None
        if parent_live is not None:  # the parent now waits on the next run
            parent_live.children[parent[1]] = next_id
        self._activations.close(
            live, Status.CONTINUED_AS_NEW, result=json.dumps({"next_id": next_id})
        )
        definition = self._registry.workflow(live.record.workflow)
        self._activations.start(
            next_id,
            definition,
            command.payload,
            explicit=False,
            parent=parent,
            parent_close=parent_close,
            origin_id=live.id,
        )


def next_run_id(execution_id: str) -> str:
    """``ID#2`` after ``ID``, ``ID#3`` after ``ID#2``: a continue-as-new chain's ids."""
    match = re.search(r"#(\d+)$", execution_id)
    if match:
        return f"{execution_id[: match.start()]}#{int(match.group(1)) + 1}"
    return f"{execution_id}#2"
