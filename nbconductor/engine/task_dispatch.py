"""Task attempts as the engine sees them: dispatch, outcomes, retries and timeouts.

Carries out the task commands of workflow code (schedule, cancel). Every method runs on
the engine thread except the outcome reports, which pool threads and async attempts
post to the ledger's inbox. An attempt starts only after the events it follows are
committed (it is dispatched from an after-commit callback).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import anyio
from anyio.abc import TaskGroup

from nbconductor import logs
from nbconductor.engine.activation import Activations
from nbconductor.engine.command import CANCEL_TASK, SCHEDULE_TASK, Command
from nbconductor.engine.definition import Registry
from nbconductor.engine.failure import Failure
from nbconductor.engine.heartbeat_records import HeartbeatRecords
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.live import LiveExecution, TaskState
from nbconductor.engine.payload import Payloads, event_data
from nbconductor.engine.queues.admission import Admission
from nbconductor.engine.roster import Roster
from nbconductor.engine.runners import RunnerSet
from nbconductor.engine.task_runner import Attempt, Outcome, run_async
from nbconductor.errors import PayloadError, QueueError, UnknownRunner
from nbconductor.storage.records import EventKind, ExecutionRecord, Status

#: Seconds a timed-out async attempt gets to run its cleanup (``finally``, ``except
#: CancelledError``) before the workflow sees the timeout anyway (docs/concepts.md).
CLEANUP_GRACE = 5.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class TaskDispatch:
    """Starting task attempts and deciding what their outcomes mean."""

    def __init__(
        self,
        ledger: Ledger,
        roster: Roster,
        registry: Registry,
        clock,
        runners: RunnerSet,
        activations: Activations,
        payloads: Payloads,
        admission: Admission,
    ) -> None:
        self._ledger = ledger
        self._admission = admission
        self._queued: set[Attempt] = set()  # waiting for room in their queue
        self._roster = roster
        self._registry = registry
        self._clock = clock
        self._runners = runners
        self._thread_runner = runners.thread
        self.now = clock.now  # what runners stamp started attempts with
        self._activations = activations
        self._payloads = payloads
        self._task_group: TaskGroup | None = None
        self.in_flight = 0  # attempts started and not yet accounted for
        # Called with (execution record, attempt) as each attempt is dispatched
        # (Engine.on_dispatch): telemetry gives the attempt its trace context here.
        self.dispatch_hooks: list[Callable[[ExecutionRecord, Attempt], None]] = []
        # Bound once: a bound method made per task is one more object per task.
        self._dispatch = self.dispatch
        self._take_outcome = self._on_outcome
        self._note = HeartbeatRecords(ledger, roster).noted
        activations.on_command(SCHEDULE_TASK, self._schedule)
        activations.on_command(CANCEL_TASK, self._cancel)
        activations.on_close(self._execution_closed)

    def bind(self, task_group: TaskGroup) -> None:
        """The engine loop's task group, where async attempts run (and are cancelled
        with it when the engine stops)."""
        self._task_group = task_group

    # ------------------------------------------------------------------ commands

    def _schedule(self, live: LiveExecution, command: Command) -> None:
        ledger = self._ledger
        state = TaskState(command.id, command.name, command.payload, ledger.now, command.definition)
        live.tasks[command.id] = state
        ledger.record(
            live,
            EventKind.TASK_SCHEDULED,
            command=command.id,
            name=command.name,
            data=event_data(None, input=command.payload),
        )
        ledger.soon(self._dispatch, live, state)
        s2c = command.definition.options.schedule_to_close
        if s2c is not None:
            ledger.push(
                ledger.now.timestamp() + s2c, self._schedule_to_close_due, live.id, command.id
            )

    def _cancel(self, live: LiveExecution, command: Command) -> None:
        state = live.tasks.pop(command.id, None)
        if state is not None and state.current is not None:
            state.current.cancel_requested = True
            self.abandon(state.current, "the workflow cancelled the task")
        self._ledger.record(live, EventKind.TASK_CANCEL_REQUESTED, command=command.id)

    def _execution_closed(self, live: LiveExecution, status: Status, result, error) -> None:
        for state in live.tasks.values():
            if state.current is not None:
                state.current.cancel_requested = True
                self.abandon(state.current, "its execution closed")
        live.tasks.clear()

    # ------------------------------------------------------------------ attempts

    def resume(self, live: LiveExecution, state: TaskState) -> None:
        """Carry on a task a recovered history left open: its retry waits, or it runs."""
        live.tasks[state.command] = state
        if state.retry_at is not None:
            self._ledger.push(state.retry_at, self._retry_due, live.id, state.command, state)
        else:
            self._ledger.soon(self._dispatch, live, state)

    def dispatch(self, live: LiveExecution, state: TaskState) -> None:
        """Start the next attempt of a task (once the events it follows are handed to the
        writer: an attempt may start before they are durable, see Ledger.soon)."""
        if self._ledger.stopping or live.tasks.get(state.command) is not state:
            return
        # The registry's current version: re-running a fixed task cell makes the next
        # attempt (a retry, or a fork's re-run) use the fix.
        definition = self._registry.find("task", state.name) or state.definition
        if definition is None:
            self._ledger.set_condition(live, f"waiting for the definition of task {state.name!r}")
            return
        state.definition = definition
        state.retry_at = None
        now = self._clock.now
        now_ts = now().timestamp()
        attempt = Attempt(
            live.id,
            state.command,
            state.failures + 1,
            definition,
            state.input_text,
            now_ts,
            now,
            payloads=self._payloads,
            workflow=live.record.workflow,
            scheduled_at=state.scheduled_at,
            previous_details=(
                None
                if state.heartbeat_text is None
                else self._payloads.decode_value(state.heartbeat_text)
            ),
            on_note=self._note,
        )
        state.current = attempt
        if self.dispatch_hooks:
            for hook in self.dispatch_hooks:
                try:
                    hook(live.record, attempt)
                except Exception:  # an observer must never stop an attempt
                    continue
        options = definition.options
        push = self._ledger.push
        if options.schedule_to_start is not None:
            push(now_ts + options.schedule_to_start, self._deadline, attempt, "schedule_to_start")
        if options.start_to_close is not None:
            push(now_ts + options.start_to_close, self._deadline, attempt, "start_to_close")
        if options.heartbeat is not None:
            push(now_ts + options.heartbeat, self._deadline, attempt, "heartbeat")
        if options.queue is None:
            self.in_flight += 1
            self._submit(attempt)
            return
        # Waiting for room is not running: the attempt counts as in flight (and may
        # keep a time-skipping clock from jumping) only once admitted.
        self._queued.add(attempt)
        if not self._admission.enqueue(
            live, attempt, options.priority, lambda: self._admitted(attempt)
        ):
            self._queued.discard(attempt)
            known = ", ".join(self._admission.names()) or "none"
            error = QueueError(
                f"task {state.name!r} names queue {options.queue!r}, which this engine does "
                f"not have (queues: {known}); create it with engine.queues.create"
            )
            self.in_flight += 1
            self.outcome(Outcome(attempt, error=Failure.from_exception(error, non_retryable=True)))

    def _admitted(self, attempt: Attempt) -> None:
        self._queued.discard(attempt)
        self.in_flight += 1
        self._submit(attempt)

    def _submit(self, attempt: Attempt) -> None:
        definition = attempt.definition
        where = definition.options.runner
        if where == "thread":
            if definition.is_async:
                # A scope of its own, so abandoning the attempt (timeout, cancel, close)
                # cancels it alone.
                attempt.handle = scope = anyio.CancelScope()
                self._task_group.start_soon(self._run_async, attempt, scope)
            else:
                self._thread_runner.submit(attempt, self)
            return
        try:
            runner = self._runners.get(where)
        except UnknownRunner as exc:
            self.outcome(Outcome(attempt, error=Failure.from_exception(exc, non_retryable=True)))
            return
        attempt.handle = _Stopper(runner, attempt)  # abandon() asks the runner to stop it
        runner.submit(attempt, self)

    async def _run_async(self, attempt: Attempt, scope: anyio.CancelScope) -> None:
        if not attempt.abandoned:  # else abandoned before it started: none of its code runs
            outcome = None
            with scope:
                outcome = await run_async(attempt, self._clock.now)
            if not scope.cancel_called:
                self._ledger.post(lambda: self._on_outcome(outcome))
            elif outcome is not None and outcome.error is None:
                # Abandoned (the engine accounted for it), yet it returned a value.
                self._ledger.post(lambda: self._result_ignored(outcome))
        attempt.stopped = True
        if attempt.on_stopped is not None:  # a timeout waits for the cleanup to end
            self._ledger.post(attempt.on_stopped)

    # ------------------------------------------- what runners report (any thread)

    def started(self, attempt: Attempt, worker: str) -> None:
        """A runner started ``attempt`` on ``worker``."""
        attempt.worker = worker
        attempt.started_at = self._clock.now()

    def heartbeat(self, attempt: Attempt, details, progress: float | None) -> None:
        """A heartbeat from where ``attempt`` runs (another process, another machine)."""
        attempt.last_heartbeat = self._clock.now().timestamp()
        attempt.heartbeat_details = details
        # Stored as on the thread runner, so that a retry resumes from this checkpoint.
        try:
            attempt.heartbeat_text = (
                None
                if details is None
                else attempt.payloads.encode_value(
                    details, what=f"the heartbeat details of task {attempt.definition.name}"
                )
            )
        except PayloadError:  # arrived as a repr from the worker: shown, not resumed from
            attempt.heartbeat_text = None
        if progress is not None:
            attempt.progress = float(progress)
        attempt.note()

    def outcome(self, outcome: Outcome) -> None:
        """An attempt ended; the engine thread decides what that means."""
        self._ledger.post(self._take_outcome, outcome)

    def abandon(self, attempt: Attempt, why: str) -> None:
        """Stop counting an attempt: its outcome, if it ever comes, is ignored (and
        recorded as such, with ``why``, while its execution is open)."""
        if not attempt.abandoned:
            attempt.abandoned = True
            attempt.why_abandoned = why
            if attempt in self._queued:  # never admitted: its queue drops it
                self._queued.discard(attempt)
                return
            self.in_flight -= 1
            if attempt.definition.options.queue is not None:
                self._admission.release(attempt)
            if attempt.handle is not None:
                attempt.handle.cancel()

    def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.store_error is not None:
            raise outcome.store_error  # ends the engine, as a failed commit does
        attempt = outcome.attempt
        if attempt.abandoned:
            # Timed out, cancelled or closed meanwhile: its result no longer counts.
            self._result_ignored(outcome)
            return
        attempt.abandoned = True
        self.in_flight -= 1
        queue = attempt.definition.options.queue
        if queue is not None:
            self._admission.release(attempt)
        live = self._roster.get(attempt.execution_id)
        state = live.tasks.get(attempt.command) if live else None
        if state is None or state.current is not attempt:
            return
        state.current = None
        started_at, result = outcome.started_at, outcome.result
        if (
            outcome.error is None
            and result is not None
            and started_at is not None
            and attempt.worker is None
            and attempt.output is None  # it never wrote (see take_output)
            and queue is None
        ):
            # The common case, spelled out: what event_data would make of it (an ISO
            # time needs no JSON escaping), without a dict to build and encode per task.
            data = f'{{"started_at":"{started_at.isoformat()}","result":{result}}}'
            self._completed(live, state, attempt, data, result)
            return
        started = {"started_at": started_at.isoformat()} if started_at else {}
        if attempt.worker is not None:
            started["worker"] = attempt.worker
        output = attempt.take_output(final=True)
        if output:  # what it printed since its last TaskHeartbeat
            started["output"] = output
        if queue is not None and started_at:
            started["queue"] = queue  # counted by the queue's rate after a restart
        if outcome.error is None:
            self._completed(live, state, attempt, event_data(started, result=result), result)
        else:
            self._attempt_failed(live, state, attempt, outcome.error, started)

    def _completed(
        self,
        live: LiveExecution,
        state: TaskState,
        attempt: Attempt,
        data: str,
        result: str | None,
    ) -> None:
        del live.tasks[attempt.command]
        event = self._ledger.record(
            live,
            EventKind.TASK_COMPLETED,
            command=attempt.command,
            name=state.name,
            attempt=attempt.number,
            data=data,
        )
        self._activations.activate(live, event, result)

    def _attempt_failed(
        self, live: LiveExecution, state: TaskState, attempt: Attempt, error: Failure, extra: dict
    ) -> None:
        definition = attempt.definition
        retry = definition.options.retry
        state.failures = attempt.number
        now_ts = self._ledger.now.timestamp()
        retry_at = None
        if (
            error.retryable
            and retry.is_retryable(error.type, error.mro or ())
            and retry.allows(attempt.number)
        ):
            retry_at = now_ts + retry.delay(attempt.number)
            s2c = definition.options.schedule_to_close
            if s2c is not None and retry_at >= state.scheduled_at.timestamp() + s2c:
                retry_at = None
        fields = {**extra, "error": error.to_dict(), "final": retry_at is None}
        if retry_at is not None:
            fields["retry_at"] = _iso(retry_at)
        if attempt.heartbeat_text is not None:  # the next attempt resumes from it
            state.heartbeat_text = attempt.heartbeat_text
        event = self._ledger.record(
            live,
            EventKind.TASK_FAILED,
            command=attempt.command,
            name=state.name,
            attempt=attempt.number,
            data=event_data(fields, last_heartbeat_details=attempt.heartbeat_text),
        )
        logs.task_failed(
            live.id, live.record.workflow, state.name, attempt.number, error, fields.get("retry_at")
        )
        if retry_at is None:
            del live.tasks[attempt.command]
            self._activations.activate(live, event)
        else:
            state.retry_at = retry_at
            self._ledger.push(retry_at, self._retry_due, live.id, attempt.command, state)

    def _result_ignored(self, outcome: Outcome) -> None:
        """Record that an abandoned attempt's result came and was not used (only while
        its execution is open: nothing follows a closed execution's last event)."""
        attempt = outcome.attempt
        live = self._roster.get(attempt.execution_id)
        if live is None or live.record.status.closed:
            return
        fields = {
            "reason": attempt.why_abandoned or "it was abandoned",
            "outcome": "completed" if outcome.error is None else "failed",
            "runner": attempt.definition.options.runner,
        }
        if attempt.worker is not None:
            fields["worker"] = attempt.worker
        if outcome.error is not None:
            fields["error"] = {"type": outcome.error.type, "message": outcome.error.message}
        self._ledger.record(
            live,
            EventKind.TASK_RESULT_IGNORED,
            command=attempt.command,
            name=attempt.definition.name,
            attempt=attempt.number,
            data=event_data(fields),
        )

    # ------------------------------------------------------------ due heap items

    def _retry_due(self, execution_id: str, command: int, state: TaskState) -> None:
        live = self._roster.get(execution_id)
        if live is not None and live.tasks.get(command) is state and state.retry_at is not None:
            self.dispatch(live, state)

    def _deadline(self, attempt: Attempt, which: str) -> None:
        if attempt.abandoned:
            return
        now_ts = self._ledger.now.timestamp()
        options = attempt.definition.options
        if which == "schedule_to_start":
            if attempt.started_at is not None:
                return
            limit = options.schedule_to_start
        elif which == "start_to_close":
            limit = options.start_to_close
            if attempt.started_at is None:  # still queued: check again a full period later
                self._ledger.push(now_ts + limit, self._deadline, attempt, which)
                return
            due = attempt.started_at.timestamp() + limit
            if due > now_ts:
                self._ledger.push(due, self._deadline, attempt, which)
                return
        else:
            limit = options.heartbeat
            if attempt.started_at is None:
                # Not started (waiting in its queue, for a child process or a Dask
                # worker): nothing can heartbeat yet; schedule_to_start bounds the wait.
                self._ledger.push(now_ts + limit, self._deadline, attempt, which)
                return
            last = attempt.last_heartbeat or attempt.started_at.timestamp()
            if last + limit > now_ts:
                self._ledger.push(last + limit, self._deadline, attempt, which)
                return
        self._timeout_attempt(attempt, which, limit)

    def _timeout_attempt(
        self, attempt: Attempt, which: str, limit: float, *, final: bool = False
    ) -> None:
        live = self._roster.get(attempt.execution_id)
        state = live.tasks.get(attempt.command) if live else None
        attempt.cancel_requested = True
        self.abandon(attempt, f"it exceeded its {which.replace('_', '-')} timeout")
        if state is None or state.current is not attempt:
            return
        cleaning = attempt.handle is not None and not attempt.stopped
        recorded = False

        def record() -> None:
            nonlocal recorded
            if recorded:
                return  # the cleanup ended and the grace ran out: whichever came first
            recorded = True
            if cleaning:
                self.in_flight -= 1
            if live.tasks.get(attempt.command) is state and state.current is attempt:
                self._record_timeout(live, state, attempt, which, limit, final)
            # else the task was cancelled or its execution closed meanwhile

        if cleaning:
            # An async attempt is being cancelled: its finally blocks run before the
            # workflow sees the timeout (Temporal waits for a cancelled activity too),
            # for at most CLEANUP_GRACE seconds. Its cleanup counts as running code, so a
            # time-skipping clock does not jump past the grace before the cleanup ran.
            self.in_flight += 1
            attempt.on_stopped = record
            self._ledger.push(self._ledger.now.timestamp() + CLEANUP_GRACE, record)
        else:
            record()

    def _record_timeout(
        self,
        live: LiveExecution,
        state: TaskState,
        attempt: Attempt,
        which: str,
        limit: float,
        final: bool,
    ) -> None:
        state.current = None
        label = which.replace("_", "-")
        error = Failure.task_timeout(
            f"task {state.name!r} attempt {attempt.number} exceeded its {label} timeout "
            f"of {limit:g}s",
            which,
            final=True if final else None,
        )
        extra = {"started_at": attempt.started_at.isoformat()} if attempt.started_at else {}
        output = attempt.take_output(final=True)
        if output:
            extra["output"] = output
        if attempt.started_at and attempt.definition.options.queue is not None:
            extra["queue"] = attempt.definition.options.queue  # it started: the rate counts it
        self._attempt_failed(live, state, attempt, error, extra)

    def _schedule_to_close_due(self, execution_id: str, command: int) -> None:
        live = self._roster.get(execution_id)
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
            self._ledger.now.timestamp(),
            self._clock.now,
            payloads=self._payloads,
        )
        attempt.abandoned = True
        state.retry_at = None
        error = Failure.task_timeout(
            f"task {state.name!r} exceeded its schedule-to-close timeout of {limit:g}s",
            "schedule_to_close",
            final=True,
        )
        self._attempt_failed(live, state, attempt, error, {})


class _Stopper:
    """An attempt's handle on a runner: cancelling it asks the runner to stop it."""

    __slots__ = ("attempt", "runner")

    def __init__(self, runner, attempt: Attempt) -> None:
        self.runner = runner
        self.attempt = attempt

    def cancel(self) -> None:
        self.runner.stop(self.attempt)
