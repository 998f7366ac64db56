"""Task attempts as the engine sees them: dispatch, outcomes, retries and timeouts.

A mixin of :class:`~nbconductor.engine.engine.Engine`; every method runs on the
engine thread except ``_report``, which pool threads call.
"""

from __future__ import annotations

import asyncio

from nbconductor.engine import payload
from nbconductor.engine.live import LiveExecution, TaskState
from nbconductor.engine.task_runner import Attempt, Outcome, run_async
from nbconductor.storage.records import EventKind


def _iso(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


class TaskDispatch:
    """Starting task attempts and deciding what their outcomes mean."""

    def _dispatch(self, live: LiveExecution, state: TaskState) -> None:
        """Start the next attempt of a task (after the events it follows committed)."""
        if self._stopping or live.tasks.get(state.command) is not state:
            return
        # The registry's current version: re-running a fixed task cell makes the next
        # attempt (a retry, or a fork's re-run) use the fix.
        definition = self.registry.find("task", state.name) or state.definition
        if definition is None:
            self._set_condition(live, f"waiting for the definition of task {state.name!r}")
            return
        state.definition = definition
        state.retry_at = None
        now_ts = self.clock.now().timestamp()
        attempt = Attempt(
            live.id,
            state.command,
            state.failures + 1,
            definition,
            state.input_text,
            now_ts,
            self.clock.now,
        )
        state.current = attempt
        self._in_flight += 1
        options = definition.options
        if options.schedule_to_start is not None:
            self._push(
                now_ts + options.schedule_to_start, "attempt_deadline", attempt, "schedule_to_start"
            )
        if options.start_to_close is not None:
            self._push(
                now_ts + options.start_to_close, "attempt_deadline", attempt, "start_to_close"
            )
        if options.heartbeat is not None:
            self._push(now_ts + options.heartbeat, "attempt_deadline", attempt, "heartbeat")
        if definition.is_async:
            attempt.handle = self._aloop.create_task(self._run_async(attempt))
        else:
            self._runner.submit(attempt, self.clock.now, self._report)

    async def _run_async(self, attempt: Attempt) -> None:
        try:
            outcome = await run_async(attempt, self.clock.now)
        except asyncio.CancelledError:
            return  # abandoned (timeout, cancel, close); the engine already accounted for it
        self._post(lambda: self._on_outcome(outcome))

    def _report(self, outcome: Outcome) -> None:  # called on a pool thread
        self._post(lambda: self._on_outcome(outcome))

    def _abandon(self, attempt: Attempt) -> None:
        if not attempt.abandoned:
            attempt.abandoned = True
            self._in_flight -= 1
            if attempt.handle is not None:
                attempt.handle.cancel()

    def _on_outcome(self, outcome: Outcome) -> None:
        attempt = outcome.attempt
        if attempt.abandoned:
            return  # timed out, cancelled or closed meanwhile: its result no longer counts
        attempt.abandoned = True
        self._in_flight -= 1
        live = self._live.get(attempt.execution_id)
        state = live.tasks.get(attempt.command) if live else None
        if state is None or state.current is not attempt:
            return
        state.current = None
        started = {"started_at": outcome.started_at.isoformat()} if outcome.started_at else {}
        if outcome.error is None:
            del live.tasks[attempt.command]
            event = self._record(
                live,
                EventKind.TASK_COMPLETED,
                command=attempt.command,
                name=state.name,
                attempt=attempt.number,
                data=payload.event_data(started, result=outcome.result),
            )
            self._activate(live, event)
        else:
            self._attempt_failed(live, state, attempt, outcome.error, started)

    def _attempt_failed(
        self, live: LiveExecution, state: TaskState, attempt: Attempt, error: dict, extra: dict
    ) -> None:
        definition = attempt.definition
        retry = definition.options.retry
        state.failures = attempt.number
        retry_at = None
        if (
            not error.get("non_retryable")
            and not error.get("final")
            and retry.is_retryable(error.get("type", ""), error.get("mro", ()))
            and retry.allows(attempt.number)
        ):
            retry_at = self._now.timestamp() + retry.delay(attempt.number)
            s2c = definition.options.schedule_to_close
            if s2c is not None and retry_at >= state.scheduled_at.timestamp() + s2c:
                retry_at = None
        fields = {**extra, "error": error, "final": retry_at is None}
        if retry_at is not None:
            fields["retry_at"] = _iso(retry_at)
        event = self._record(
            live,
            EventKind.TASK_FAILED,
            command=attempt.command,
            name=state.name,
            attempt=attempt.number,
            data=payload.event_data(fields),
        )
        if retry_at is None:
            del live.tasks[attempt.command]
            self._activate(live, event)
        else:
            state.retry_at = retry_at
            self._push(retry_at, "retry", live.id, attempt.command, state)

    def _due_retry(self, execution_id: str, command: int, state: TaskState) -> None:
        live = self._live.get(execution_id)
        if live is not None and live.tasks.get(command) is state and state.retry_at is not None:
            self._dispatch(live, state)

    def _due_attempt_deadline(self, attempt: Attempt, which: str) -> None:
        if attempt.abandoned:
            return
        now_ts = self._now.timestamp()
        options = attempt.definition.options
        if which == "schedule_to_start":
            if attempt.started_at is not None:
                return
            limit = options.schedule_to_start
        elif which == "start_to_close":
            limit = options.start_to_close
            if attempt.started_at is None:  # still queued: check again a full period later
                self._push(now_ts + limit, "attempt_deadline", attempt, which)
                return
            due = attempt.started_at.timestamp() + limit
            if due > now_ts:
                self._push(due, "attempt_deadline", attempt, which)
                return
        else:
            limit = options.heartbeat
            last = attempt.last_heartbeat or (
                attempt.started_at.timestamp() if attempt.started_at else attempt.dispatched_at
            )
            if last + limit > now_ts:
                self._push(last + limit, "attempt_deadline", attempt, which)
                return
        self._timeout_attempt(attempt, which, limit)

    def _timeout_attempt(
        self, attempt: Attempt, which: str, limit: float, *, final: bool = False
    ) -> None:
        live = self._live.get(attempt.execution_id)
        state = live.tasks.get(attempt.command) if live else None
        attempt.cancel_requested = True
        self._abandon(attempt)
        if state is None or state.current is not attempt:
            return
        state.current = None
        label = which.replace("_", "-")
        error = {
            "type": "TaskTimeout",
            "module": "nbconductor.errors",
            "message": f"task {state.name!r} attempt {attempt.number} exceeded its {label} timeout of {limit:g}s",
            "traceback": "",
            "mro": ["NbconductorError", "TimeoutError"],
            "timeout": which,
        }
        if final:
            error["final"] = True
        extra = {"started_at": attempt.started_at.isoformat()} if attempt.started_at else {}
        self._attempt_failed(live, state, attempt, error, extra)

    def _due_schedule_to_close(self, execution_id: str, command: int) -> None:
        live = self._live.get(execution_id)
        state = live.tasks.get(command) if live else None
        if state is None:
            return
        limit = state.definition.options.schedule_to_close
        if state.current is not None:
            self._timeout_attempt(state.current, "schedule_to_close", limit, final=True)
            return
        # Waiting for a retry: fail it for good now.
        attempt = Attempt(
            execution_id,
            command,
            state.failures,
            state.definition,
            state.input_text,
            self._now.timestamp(),
            self.clock.now,
        )
        attempt.abandoned = True
        state.retry_at = None
        error = {
            "type": "TaskTimeout",
            "module": "nbconductor.errors",
            "message": f"task {state.name!r} exceeded its schedule-to-close timeout of {limit:g}s",
            "traceback": "",
            "mro": ["NbconductorError", "TimeoutError"],
            "timeout": "schedule_to_close",
            "final": True,
        }
        self._attempt_failed(live, state, attempt, error, {})
