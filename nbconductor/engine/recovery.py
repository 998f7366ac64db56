"""Recovery: loading open executions from history and resuming them by replay.

A mixin of :class:`~nbconductor.engine.engine.Engine`; runs on the engine thread.
An execution whose workflow is not registered waits for its definition; one whose
history no longer matches the code is parked as blocked until the code matches again.
"""

from __future__ import annotations

from nbconductor.engine import payload
from nbconductor.engine.live import LiveExecution, open_children, pending_work
from nbconductor.engine.runtime import replay
from nbconductor.errors import NonDeterminismError
from nbconductor.storage.records import EventRecord


class Recovery:
    """Resuming executions from their recorded histories."""

    def rescan(self) -> list[str]:
        """Try again every open execution that is not running its code (waiting for
        a definition, or blocked): what ``%conductor resume`` does.

        Returns the ids of the executions that run their code again.
        """

        def run() -> list[str]:
            resumed = []
            for live in list(self._live.values()):
                if live.runtime is None:
                    self._resume(live)
                    if live.runtime is not None:
                        resumed.append(live.id)
            return resumed

        return self._call(run)

    def _recover(self) -> None:
        records = self.store.open_executions()
        self.recovered = list(records)
        if not records:
            return
        histories = self.store.histories([r.id for r in records])
        for record in records:
            history = histories.get(record.id, [])
            live = LiveExecution(record, next_seq=(history[-1].seq + 1) if history else 1)
            self._live[record.id] = live
            # Links first: a child may close while its parent still waits for its code.
            started = payload.read_data(history[0].data) if history else {}
            if started.get("parent"):
                live.parent = tuple(started["parent"])
                live.parent_close = started.get("parent_close", "terminate")
            live.children = open_children(history)
            self._resume(live, history)

    def _resume(self, live: LiveExecution, history: list[EventRecord] | None = None) -> None:
        definition = self.registry.find("workflow", live.record.workflow)
        if definition is None:
            self._set_condition(
                live, f"waiting for the definition of workflow {live.record.workflow!r}"
            )
            return
        if history is None:
            history = self.store.load_history(live.id)
        try:
            runtime, commands = replay(definition, history)
        except NonDeterminismError as exc:
            self._set_condition(live, f"blocked: {exc}")
            return
        except Exception as exc:  # e.g. a payload it cannot decode: park this one only
            self._set_condition(
                live, f"blocked: {type(exc).__name__} while replaying its history: {exc}"
            )
            return
        live.runtime = runtime
        if live.condition:
            self._set_condition(live, "")
        if definition.version != live.record.version:
            self._update(live, version=definition.version)
            live.record.version = definition.version
        tasks, timers = pending_work(history)
        for command, state in tasks.items():
            live.tasks[command] = state
            if state.retry_at is not None:
                self._push(state.retry_at, "retry", live.id, command, state)
            else:
                self._after_commit.append(
                    lambda live=live, state=state: self._dispatch(live, state)
                )
        for command, due in timers.items():
            live.timers[command] = due
            self._push(due, "timer", live.id, command)
        self._arm_execution_timeout(live, definition)
        self._carry_out(live, commands)
        self._snapshot(live)

    def _set_condition(self, live: LiveExecution, condition: str) -> None:
        live.condition = condition or None
        self._update(live, condition=condition)

    def _on_register(self, definition, previous) -> None:  # any thread
        if self._stopped.is_set():
            return
        self._post(lambda: self._definition_registered(definition))

    def _definition_registered(self, definition) -> None:
        self._record_definitions([definition])
        if definition.kind == "workflow":
            self.schedules._on_registered(definition)
        for live in list(self._live.values()):
            if (
                definition.kind == "workflow"
                and live.record.workflow == definition.name
                and live.runtime is None
            ):
                self._resume(live)
            elif definition.kind == "task" and live.runtime is not None:
                for state in live.tasks.values():
                    if (
                        state.name == definition.name
                        and state.definition is None
                        and state.current is None
                        and state.retry_at is None
                    ):
                        self._after_commit.append(
                            lambda live=live, state=state: self._dispatch(live, state)
                        )
                        if live.condition and live.condition.startswith(
                            "waiting for the definition of task"
                        ):
                            self._set_condition(live, "")
