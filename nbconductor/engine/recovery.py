"""Recovery: loading open executions from history and resuming them by replay.

Runs on the engine thread. An execution whose workflow is not registered waits for its
definition; one whose history no longer matches the code is parked as blocked until the
code matches again. Fork reuses the same path: a copied history prefix is resumed.
"""

from __future__ import annotations

from nbconductor import logs
from nbconductor.engine import payload
from nbconductor.engine.activation import Activations
from nbconductor.engine.definition import Definition, Registry
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.live import LiveExecution, open_children, pending_work
from nbconductor.engine.payload import Payloads
from nbconductor.engine.roster import Roster
from nbconductor.engine.runtime import replay
from nbconductor.engine.task_dispatch import TaskDispatch
from nbconductor.errors import NonDeterminismError
from nbconductor.storage.records import ENDING_EVENTS, EventRecord, ExecutionRecord
from nbconductor.storage.store import Store


class Recovery:
    """Resuming executions from their recorded histories."""

    def __init__(
        self,
        ledger: Ledger,
        roster: Roster,
        store: Store,
        registry: Registry,
        activations: Activations,
        tasks: TaskDispatch,
        payloads: Payloads,
    ) -> None:
        self._ledger = ledger
        self._roster = roster
        self._store = store
        self._registry = registry
        self._activations = activations
        self._tasks = tasks
        self._payloads = payloads

    def recover(self) -> list[ExecutionRecord]:
        """Load and resume every open execution of the store; returns their records."""
        records = self._store.open_executions()
        if not records:
            return []
        logs.recovered(len(records))
        histories = self._store.histories([r.id for r in records])
        resumed = []
        for record in records:
            history = histories.get(record.id, [])
            if history and history[-1].kind in ENDING_EVENTS:
                # Closed, but the crash came between its closing event and its row.
                self._activations.finish_row(record, history[-1])
                continue
            resumed.append(record)
            live = LiveExecution(record, next_seq=(history[-1].seq + 1) if history else 1)
            self._roster.add(live)
            # Links first: a child may close while its parent still waits for its code.
            started = payload.read_data(history[0].data) if history else {}
            if started.get("parent"):
                live.parent = tuple(started["parent"])
                live.parent_close = started.get("parent_close", "terminate")
            live.children = open_children(history)
            self.resume(live, history)
        return resumed

    def rescan(self) -> list[str]:
        """Try again every open execution that does not run its code; their ids."""
        resumed = []
        for live in self._roster.all():
            if live.runtime is None:
                self.resume(live)
                if live.runtime is not None:
                    resumed.append(live.id)
        return resumed

    def resume(self, live: LiveExecution, history: list[EventRecord] | None = None) -> None:
        """Rebuild the execution's code by replay and carry on its open work."""
        definition = self._registry.find("workflow", live.record.workflow)
        if definition is None:
            self._ledger.set_condition(
                live, f"waiting for the definition of workflow {live.record.workflow!r}"
            )
            return
        if history is None:
            history = self._store.load_history(live.id)
        try:
            runtime, commands = replay(definition, history, payloads=self._payloads)
        except NonDeterminismError as exc:
            self._ledger.set_condition(live, f"blocked: {exc}")
            return
        except Exception as exc:  # e.g. a payload it cannot decode: park this one only
            self._ledger.set_condition(
                live, f"blocked: {type(exc).__name__} while replaying its history: {exc}"
            )
            return
        live.runtime = runtime
        if live.condition:
            self._ledger.set_condition(live, "")
        if definition.version != live.record.version:
            self._ledger.update(live, version=definition.version)
            live.record.version = definition.version
        try:
            tasks, timers = pending_work(history)
            for state in tasks.values():
                self._tasks.resume(live, state)
            for command, due in timers.items():
                self._activations.arm_timer(live, command, due)
            self._activations.arm_execution_timeout(live, definition)
            self._activations.carry_out(live, commands)
        except Exception as exc:  # this execution only: the engine and the others go on
            self._activations.park(live, exc, "resuming its open work")
            return
        self._activations.snapshot(live)

    def definition_registered(self, definition: Definition) -> None:
        """A definition was (re)registered: resume what waited for it."""
        for live in self._roster.all():
            if (
                definition.kind == "workflow"
                and live.record.workflow == definition.name
                and live.runtime is None
            ):
                self.resume(live)
            elif definition.kind == "task" and live.runtime is not None:
                for state in live.tasks.values():
                    if (
                        state.name == definition.name
                        and state.definition is None
                        and state.current is None
                        and state.retry_at is None
                    ):
                        self._ledger.after_commit(
                            lambda live=live, state=state: self._tasks.dispatch(live, state)
                        )
                        if live.condition and live.condition.startswith(
                            "waiting for the definition of task"
                        ):
                            self._ledger.set_condition(live, "")
