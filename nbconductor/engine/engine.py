"""The Engine: one background thread that runs every execution durably.

The engine thread owns all mutable state. Each *tick* it takes what arrived (starts,
task outcomes, due timers), activates the executions concerned, commits every event of
the tick in one transaction (group commit), and only then dispatches what those events
allow (task attempts, results to waiting callers): the causal rule.

The Engine is the composition root: it builds its collaborators, each with what it
needs passed in, and answers the public API by delegating to them. The
:class:`~nbconductor.engine.ledger.Ledger` holds the tick, the
:class:`~nbconductor.engine.roster.Roster` the open executions,
:class:`~nbconductor.engine.activation.Activations` runs workflow code, and tasks,
steering, children, recovery, fork and schedules plug into it;
:class:`~nbconductor.engine.history_queries.HistoryQueries` answers what is asked of
the history as data (list, sql, prune, status) on the caller's thread.
"""

from __future__ import annotations

import atexit
import contextlib
import time
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nbconductor.engine.activation import Activations
from nbconductor.engine.clock import SystemClock
from nbconductor.engine.default import clear_default_engine, set_default_engine
from nbconductor.engine.definition import REGISTRY, Definition, Registry, WorkflowDefinition
from nbconductor.engine.engine_thread import EngineThread
from nbconductor.engine.fork import fork
from nbconductor.engine.handle import Handle
from nbconductor.engine.history_queries import HistoryQueries
from nbconductor.engine.ledger import Ledger
from nbconductor.engine.lineage import Lineage
from nbconductor.engine.payload import Payloads, check_inline_limit
from nbconductor.engine.queues.admission import Admission
from nbconductor.engine.queues.queue_api import Queues
from nbconductor.engine.recovery import Recovery
from nbconductor.engine.retention import Retention, RetentionPolicy
from nbconductor.engine.roster import Roster
from nbconductor.engine.runners import Runner, RunnerSet
from nbconductor.engine.schedules.firing import Firing
from nbconductor.engine.schedules.scheduler import Schedules
from nbconductor.engine.steering import Steering
from nbconductor.engine.task_dispatch import TaskDispatch
from nbconductor.errors import (
    EngineStopped,
    ExecutionAlreadyExists,
    ExecutionNotFound,
    StopTimedOut,
)
from nbconductor.storage.opening import open_store
from nbconductor.storage.records import (
    EventRecord,
    ExecutionRecord,
    PruneReport,
    Status,
)
from nbconductor.storage.store import Store
from nbconductor.storage.values import DEFAULT_INLINE_LIMIT

_running_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _stop_engines_at_exit() -> None:
    # Python joins non-daemon threads before atexit; ours is a daemon, so this is the
    # moment to commit and close the file (docs/jupyter-platform.md). SIGKILL needs no help.
    for engine in list(_running_engines):
        with contextlib.suppress(Exception):
            engine.stop(grace=2.0, timeout=5.0)  # a kernel is killed a few seconds later anyway


class Engine:
    """Runs workflow executions durably, recording every step in a history store.

    Args:
        store: a history file path (DuckDB, created if missing), a Store, or None for an
            in-memory store (nothing survives the process).
        clock: where time comes from (tests use a VirtualClock).
        task_workers: threads for sync task attempts.
        time_skipping: with a virtual clock, jump to the next due timer whenever every
            execution is idle (see nbconductor.testing).
        make_default: become the engine that ``nbconductor.engine()`` returns.
        allow_pickle: store values the codec cannot (arbitrary objects) by pickle, and
            unpickle them when read. Off by default: unpickling a file runs code. Only
            this engine does it; other engines in the process still refuse.
        runners: where tasks may run besides the built-in ``"thread"`` and ``"process"``
            runners, by name (``{"cluster": DaskRunner(client)}``); a task picks one with
            ``@task(runner=NAME)``.
        retention: prune on its own: closed executions older than this (``"30d"``, a
            ``timedelta``, or a :class:`RetentionPolicy` saying how often and in what
            batches) are deleted by a background thread, never the engine thread (see
            :meth:`prune` and docs/operations.md).
        inline_limit: bytes and strings longer than this many bytes (characters) are
            stored apart from the events, once per content, like DataFrames, Arrow
            tables and numpy arrays always are (64 KiB by default).

    Example:
        >>> eng = Engine("history.duckdb")
        >>> h = eng.start(pipeline, 5, id="p-1")   # idempotent on id
        >>> h.result(timeout=60)
    """

    def __init__(
        self,
        store: str | Path | Store | None = None,
        *,
        clock=None,
        task_workers: int = 32,
        registry: Registry = REGISTRY,
        time_skipping: bool = False,
        make_default: bool = True,
        allow_pickle: bool = False,
        runners: dict[str, Runner] | None = None,
        retention: str | float | timedelta | RetentionPolicy | None = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        policy = RetentionPolicy.of(retention)  # bad input fails before the file opens
        check_inline_limit(inline_limit)
        self.store: Store = open_store(store)
        self.clock = clock or SystemClock()
        self.registry = registry
        self.time_skipping = time_skipping and getattr(self.clock, "virtual", False)
        # Stores that cannot keep values apart (a user's own Store) get them inline.
        keeps_values = callable(getattr(self.store, "put_payload", None))
        self.payloads = Payloads(
            allow_pickle=allow_pickle,
            store=self.store if keeps_values else None,
            inline_limit=inline_limit,
        )
        self.error: BaseException | None = None
        # The executions that were open when this engine started (what it recovered).
        self.recovered: list[ExecutionRecord] = []
        self.started_at = self.clock.now()
        self._build(task_workers, runners)
        self._thread = EngineThread(
            self._ledger,
            self.clock,
            self._tasks,
            time_skipping=self.time_skipping,
            on_start=self._on_start,
            on_exit=self._on_exit,
            on_error=self._on_error,
        )
        self.registry.add_listener(self._on_register)
        self._retention = (
            Retention(policy, self.store, self.clock, self.executions.forget_closed_before)
            if policy
            else None
        )
        self._thread.start()
        _running_engines.add(self)
        if self.error is not None:
            raise self.error
        if self._retention is not None:
            self._retention.start()
        if make_default:
            set_default_engine(self)

    def _build(self, task_workers: int, runners: dict[str, Runner] | None) -> None:
        """Wire the collaborators; each gets what it uses, and nothing else."""
        store, registry, payloads = self.store, self.registry, self.payloads
        self._ledger = ledger = Ledger(store, self.clock.now())
        # The open executions: Handles and views read them from any thread.
        self.executions = roster = Roster(store)
        self.runners = RunnerSet(task_workers, runners)
        self._activations = activations = Activations(ledger, roster, store, payloads)
        self._admission = admission = Admission(ledger, store)
        self.queues = Queues(admission, self._call)
        self._tasks = TaskDispatch(
            ledger, roster, registry, self.clock, self.runners, activations, payloads, admission
        )
        self._steering = steering = Steering(
            ledger, roster, registry, activations, payloads, self._call
        )
        self._lineage = Lineage(ledger, roster, registry, activations, steering)
        self._firing = Firing(
            ledger=ledger,
            roster=roster,
            store=store,
            registry=registry,
            activations=activations,
            steering=steering,
            payloads=payloads,
        )
        self.schedules = Schedules(
            self._firing,
            store=store,
            registry=registry,
            clock=self.clock,
            payloads=payloads,
            call=self._call,
            handle=lambda execution_id, workflow: Handle(self, execution_id, workflow),
            written=self.flush,
        )
        self._recovery = Recovery(
            ledger, roster, store, registry, activations, self._tasks, payloads
        )
        self._queries = HistoryQueries(
            store, roster, ledger, self._tasks, self.clock.now, self.flush
        )
        ledger.on_fault = activations.park_faulted

    # ================================================================== public API

    def add_runner(self, name: str, runner: Runner) -> None:
        """Let tasks declared with ``@task(runner=name)`` run on ``runner``.

        Example:
            >>> eng.add_runner("gpu", nc.DaskRunner("tcp://10.0.0.5:8786"))
        """
        self.runners.add(name, runner)

    @property
    def running(self) -> bool:
        """True while the engine thread runs and no stop was requested."""
        return self._thread.running

    def start(
        self, workflow: WorkflowDefinition | str, *args: Any, id: str | None = None, **kwargs: Any
    ) -> Handle:
        """Start an execution of ``workflow``; returns its handle at once.

        Starting with an ``id`` that already exists returns that execution's handle and
        starts nothing (idempotent start), whether it is open or closed.

        Raises:
            ExecutionAlreadyExists: the id belongs to an execution of another workflow.
        """
        self._check_running()
        definition = self.registry.workflow(workflow) if isinstance(workflow, str) else workflow
        if not isinstance(definition, WorkflowDefinition):
            raise TypeError(
                f"start() needs a workflow (an @workflow function or its name), got {workflow!r}"
            )
        text = self.payloads.encode_call(
            definition.signature, args, kwargs, what=f"workflow {definition.name}"
        )
        execution_id = id if id is not None else str(uuid.uuid4())
        if not isinstance(execution_id, str) or not execution_id:
            raise ValueError(f"an execution id is a non-empty string, got {execution_id!r}")
        if id is not None:
            existing = self.executions.workflow_of(execution_id)
            if existing == definition.name:  # idempotent start: that execution
                return Handle(self, execution_id, existing)
            if existing is not None:
                raise ExecutionAlreadyExists(
                    f"execution id {execution_id!r} belongs to an execution of workflow "
                    f"{existing!r}, not {definition.name!r}; start {definition.name!r} "
                    "under another id"
                )
        now = self.clock.now()
        self.executions.accept(
            ExecutionRecord(
                id=execution_id,
                workflow=definition.name,
                version=definition.version,
                status=Status.RUNNING,
                created_at=now,
                updated_at=now,
                input=text,
            )
        )
        # The function and its arguments, not a closure (five objects fewer a start).
        self._ledger.post(self._start_posted, execution_id, definition, text, id is not None)
        return Handle(self, execution_id, definition.name)

    def _start_posted(
        self, execution_id: str, definition: WorkflowDefinition, text: str, explicit: bool
    ) -> None:
        self._activations.start(execution_id, definition, text, explicit=explicit)

    def get(self, execution_id: str) -> Handle:
        """The handle of an existing execution.

        Raises:
            ExecutionNotFound: no execution has that id.
        """
        workflow = self.executions.workflow_of(execution_id)
        if workflow is None:
            raise ExecutionNotFound(
                f"no execution with id {execution_id!r} in {self.store.path or 'this store'}"
            )
        return Handle(self, execution_id, workflow)

    def list(
        self,
        *,
        status: str | Status | list | None = None,
        name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Executions, newest first, filtered by status, workflow name and start time.

        At most ``limit`` records (100 by default; ``limit=None`` for all of them),
        from ``offset`` on, so a large history is read a page at a time.
        """
        return self._queries.list(status, name, since, until, limit, offset)

    def ping(self, timeout: float = 5.0) -> float:
        """Round trip through the engine thread; returns the seconds it took.

        Everything handed to the engine before the call has been processed and
        committed when it returns (a barrier).

        Raises:
            TimeoutError: the engine thread did not answer in time (it is stuck).
        """
        started = time.perf_counter()
        self._call(lambda: None, timeout=timeout)
        return time.perf_counter() - started

    def describe(self, execution_id: str) -> ExecutionRecord:
        """The execution's record as stored, with the live condition if it is open."""
        return self.executions.describe(execution_id)

    def history(self, execution_id: str) -> list[EventRecord]:
        """The execution's recorded events, in order (committed ones only)."""
        return self._queries.history(execution_id)

    def sql(self, query: str, params: list[Any] | None = None):
        """A read-only SQL query over the history, as a lazy DuckDB relation.

        Turn it into what you need: ``.df()`` (pandas), ``.pl()`` (polars), ``.arrow()``
        (an Arrow reader; ``.to_arrow_table()`` a table), ``.fetchall()``; refine it
        with ``.filter()``, ``.aggregate()``, ``.limit()``. A notebook shows it as a
        table. It runs on a connection of its own, when asked, and sees what was
        committed by then. Tables: ``executions``, ``events``, ``definitions``,
        ``schedules``, ``queues``.

        Raises:
            StoreError: the query writes, reads files, URLs or other databases, or does
                not bind; or the history is in memory (give the engine a file).

        Example:
            >>> engine.sql("SELECT status, count(*) AS n FROM executions GROUP BY 1").df()
        """
        return self._queries.sql(query, params)

    def prune(
        self,
        closed_before: str | float | timedelta | datetime = "30d",
        *,
        dry_run: bool = False,
        limit: int | None = None,
    ) -> PruneReport:
        """Delete executions that closed before ``closed_before`` with their events, and
        give the space back to the file; with ``dry_run``, only count them.

        An execution goes with its whole family (parent, children, continue-as-new
        runs) once every member has closed before the cutoff: never an open execution,
        nor one whose parent, child or later run is still open (docs/operations.md).
        Runs on the calling thread in small transactions, so the engine carries on.

        Args:
            closed_before: an age by the engine's clock (``"30d"``, ``"12h"``, a
                ``timedelta``) or a ``datetime``.
            dry_run: report what would be deleted, delete nothing.
            limit: at most about this many executions (whole families).

        Returns:
            What was deleted: executions, events, the file's bytes before and after.

        Raises:
            InvalidDuration: ``closed_before`` is neither an age nor a datetime.
        """
        return self._queries.prune(closed_before, dry_run, limit)

    def status(self) -> dict:
        """Health and counts: thread alive, store, executions by state, timers, tasks.

        Never raises because the store failed: ``error`` says why the engine stopped
        (e.g. ENOSPC, a full disk) and ``counts`` is None when the file cannot be read.
        """
        return self._queries.status(
            running=self.running, error=self.error, started_at=self.started_at
        )

    def subscribe(self, callback: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``callback(changed_ids)`` on the engine thread after each commit.

        Returns a function that unsubscribes. Callbacks must be quick and not block.
        """
        subscribers = self._ledger.subscribers
        subscribers.append(callback)
        return lambda: subscribers.remove(callback) if callback in subscribers else None

    def on_dispatch(self, hook: Callable[[Any, Any], None]) -> Callable[[], None]:
        """Call ``hook(execution_record, attempt)`` on the engine thread as each task
        attempt is dispatched, before it goes to its runner (or waits in its queue).

        The hook may set ``attempt.trace_context`` (a W3C carrier, ``{"traceparent":
        ...}``): the attempt carries it to its thread, child process or Dask worker,
        where it is the current OpenTelemetry context while the task runs. This is how
        :func:`nbconductor.telemetry.instrument` parents the spans a task opens. A hook
        must be quick; its errors are ignored.

        Returns a function that removes the hook.
        """
        hooks = self._tasks.dispatch_hooks
        hooks.append(hook)
        return lambda: hooks.remove(hook) if hook in hooks else None

    def watch_commits(self, callback: Callable[[float, int], None]) -> Callable[[], None]:
        """Call ``callback(seconds, events)`` after each commit of the history file, with
        how long the transaction took and how many events it wrote (on the writer
        thread: keep it quick). Returns a function that stops the calls.

        Example:
            >>> stop = eng.watch_commits(lambda s, n: print(f"{n} events in {s * 1000:.1f} ms"))
        """
        listeners = self._ledger.writer.listeners
        listeners.append(callback)
        return lambda: callback in listeners and listeners.remove(callback)

    @property
    def subscribers(self) -> tuple[Callable[[set[str]], None], ...]:
        """The callbacks :meth:`subscribe` added that have not unsubscribed."""
        return tuple(self._ledger.subscribers)

    def stop(self, grace: float = 2.0, timeout: float = 60.0) -> None:
        """Stop the engine: running tasks get ``grace`` seconds to finish, history is
        committed and the store closed. Unfinished executions resume on the next start.

        Returns once the history file is closed (another engine may open it then).

        Raises:
            StopTimedOut: the file was not closed within ``grace + timeout`` seconds
                (a very large commit or checkpoint); it closes in the background.
        """
        if self._thread.stopped:
            return
        if self._retention is not None:  # before the store closes under it
            self._retention.stop()
        closed = self._thread.stop(grace, timeout)
        self.registry.remove_listener(self._on_register)
        clear_default_engine(self)
        if not closed:
            raise StopTimedOut(
                f"the engine on {self.store.path} did not close its history file within "
                f"{grace + timeout:g}s (a large commit or checkpoint is still running); it "
                "closes in the background. Wait before opening the file again, or call "
                "stop() with a longer timeout."
            )

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = self.store.path or "memory"
        return f"<nbconductor.Engine {state} on {where}: {len(self.executions)} open>"

    def rescan(self) -> list[str]:
        """Try again every open execution that is not running its code (waiting for
        a definition, or blocked): what ``%conductor resume`` does.

        Returns the ids of the executions that run their code again.
        """
        return self._call(self._recovery.rescan)

    # ------------------------------------------------------------------ steering

    def signal(self, execution_id: str, name: str, payload: Any = None) -> None:
        """Send signal ``name`` with a payload to an open execution (durably).

        Raises:
            ExecutionNotFound: no such execution.
            ExecutionClosed: it has already closed.
        """
        self._steering.signal(execution_id, name, payload)

    def cancel(self, execution_id: str) -> None:
        """Ask an execution to cancel: CancelledError is raised at its current await, so
        it can clean up; it ends Cancelled unless it completes otherwise."""
        self._steering.cancel(execution_id)

    def terminate(self, execution_id: str, reason: str | None = None) -> None:
        """End an execution at once as Terminated; no more of its code runs."""
        self._steering.terminate_by_id(execution_id, reason)

    def update(
        self, execution_id: str, name: str, payload: Any = None, *, timeout: float = 60
    ) -> Any:
        """Run the workflow's update handler ``name`` and return its result.

        Raises:
            UpdateRejected: the validator refused it (nothing recorded), or there is no
                such update.
            NbconductorError: the handler raised (its error is in the message).
        """
        return self._steering.update(execution_id, name, payload, timeout=timeout)

    def query(self, execution_id: str, name: str, *args: Any) -> Any:
        """Run query handler ``name`` against the execution's latest state snapshot."""
        return self._steering.query(execution_id, name, *args)

    def state_of(self, execution_id: str) -> dict:
        """A copy of the workflow's ``state`` mapping as of its last step."""
        return self._steering.state_of(execution_id)

    def progress_of(self, execution_id: str) -> dict:
        """Workflow progress (fraction, message) and each running task's heartbeat."""
        return self._steering.progress_of(execution_id)

    def waiting_signals(self, execution_id: str) -> list[str]:
        """Signal names the execution is awaiting right now (empty if closed)."""
        return self._steering.waiting_signals(execution_id)

    def open_executions(self, workflow: str | None = None) -> list[ExecutionRecord]:
        """Open executions held by this engine (optionally of one workflow)."""
        return self._steering.open_executions(workflow)

    def fork(self, execution_id: str, at: int | None = None, *, id: str | None = None):
        """Start a new execution that reuses ``execution_id``'s history up to event
        ``at`` and runs live from there. By default ``at`` is just before the first task
        that failed for good, so fixing a task and forking re-runs only from there.

        Returns the new execution's Handle.
        """
        record = self.executions.record_of(execution_id)
        new_id = id or f"{execution_id}-fork-{uuid.uuid4().hex[:8]}"
        self._call(
            lambda: fork(
                record,
                at,
                new_id,
                store=self.store,
                ledger=self._ledger,
                roster=self.executions,
                recovery=self._recovery,
            )
        )
        return Handle(self, new_id, record.workflow)

    # ================================================================ engine thread

    def _check_running(self) -> None:
        if not self.running:
            raise EngineStopped(
                f"this engine is stopped{f' ({self.error!r})' if self.error else ''}; "
                "create a new Engine on the same history to carry on"
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything this engine has released (results, acknowledged
        signals, closed executions' rows) is in the history file, so that a direct read
        of the file (SQL, the store, another process) sees it. Commits run on a writer
        thread a step behind the engine, and a closed execution's row follows its
        closing event by one commit. Returns False if ``timeout`` ran out first.
        """
        return self._ledger.writer.wait_written(timeout=timeout)

    def _call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``fn`` on the engine thread; return its value once the tick committed."""
        self._check_running()
        return self._thread.call(fn, timeout)

    def _on_start(self) -> None:  # on the engine thread, before its first commit
        self._ledger.record_definitions(self.registry.all())
        self._admission.load()  # before recovery re-dispatches queued tasks
        self.recovered = self._recovery.recover()
        self._firing.load()

    def _on_error(self, error: BaseException) -> None:  # the engine thread failed
        self.error = error

    def _on_exit(self, error: BaseException | None) -> None:  # the engine thread ends
        # Its error, if any, was set by _on_error already (before it read as stopped).
        if self._retention is not None:
            self._retention.stop()
        self.executions.fail_waiters()
        self.runners.shutdown()
        self.store.close()

    def _on_register(self, definition: Definition, previous: Definition | None) -> None:
        # Called on the registering thread.
        if self._thread.stopped:
            return
        self._ledger.post(lambda: self._definition_registered(definition))

    def _definition_registered(self, definition: Definition) -> None:
        self._ledger.record_definitions([definition])
        if definition.kind == "workflow":
            self._firing.definition_registered(definition)
        self._recovery.definition_registered(definition)
