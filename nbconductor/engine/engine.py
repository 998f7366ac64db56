"""The Engine: one background thread that runs every execution durably.

The engine thread owns all mutable state. Each *tick* it takes what arrived (starts,
task outcomes, due timers), activates the executions concerned, commits every event of
the tick in one transaction (group commit), and only then dispatches what those events
allow (task attempts, results to waiting callers): the causal rule.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import copy
import heapq
import itertools
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio

from nbconductor.engine import payload
from nbconductor.engine.activation import Activation
from nbconductor.engine.clock import SystemClock
from nbconductor.engine.control import Control
from nbconductor.engine.default import clear_default_engine, set_default_engine
from nbconductor.engine.default import default_engine as default_engine  # re-exported
from nbconductor.engine.definition import REGISTRY, Registry, WorkflowDefinition
from nbconductor.engine.handle import Handle
from nbconductor.engine.live import LiveExecution
from nbconductor.engine.recovery import Recovery
from nbconductor.engine.schedules.scheduler import Schedules
from nbconductor.engine.task_dispatch import TaskDispatch
from nbconductor.engine.task_runner import ThreadRunner
from nbconductor.errors import EngineStopped, ExecutionNotFound
from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionUpdate,
    Status,
)
from nbconductor.storage.store import Store

_running_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _stop_engines_at_exit() -> None:
    # Python joins non-daemon threads before atexit; ours is a daemon, so this is the
    # moment to commit and close the file (docs/jupyter-platform.md). SIGKILL needs no help.
    for engine in list(_running_engines):
        with contextlib.suppress(Exception):
            engine.stop(grace=2.0)


def _open_store(path_or_store: str | Path | Store | None) -> Store:
    if path_or_store is None:
        from nbconductor.storage.memory import MemoryStore

        return MemoryStore()
    if isinstance(path_or_store, (str, Path)):
        from nbconductor.storage.duckdb.duckdb_store import DuckDBStore

        return DuckDBStore(str(path_or_store))
    return path_or_store


class Engine(Activation, TaskDispatch, Recovery, Control):
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
            unpickle them when read. Off by default: unpickling a file runs code. Once
            one engine opts in, the whole process has.

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
    ) -> None:
        if allow_pickle:
            payload.allow_pickle = True  # process-wide, see payload.allow_pickle
        self.store: Store = _open_store(store)
        self.clock = clock or SystemClock()
        self.registry = registry
        self.time_skipping = time_skipping and getattr(self.clock, "virtual", False)
        self._runner = ThreadRunner(task_workers)
        self._live: dict[str, LiveExecution] = {}
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._order = itertools.count()
        self._waiters: dict[str, list[Future]] = {}
        self._update_waiters: dict[str, Future] = {}
        self._recently_closed: collections.OrderedDict[str, ExecutionRecord] = (
            collections.OrderedDict()
        )
        self._accepted: set[str] = set()  # started by a caller, not yet taken by the thread
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[set[str]], None]] = []
        self._recorded_definitions = {(d.kind, d.name, d.version) for d in self.store.definitions()}
        self._batch = Batch()
        self._after_commit: list[Callable[[], None]] = []
        self._changed: set[str] = set()
        self._in_flight = 0
        self._now = self.clock.now()
        self._sleeping = False
        self._stopping = False
        self._stop_deadline: float | None = None
        self.error: BaseException | None = None
        # The executions that were open when this engine started (what it recovered).
        self.recovered: list[ExecutionRecord] = []
        self.schedules = Schedules(self)
        self.started_at = self.clock.now()
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, name="nbconductor-engine")
        self._thread.daemon = True  # see docs/jupyter-platform.md: a kernel must never hang on us
        self.registry.add_listener(self._on_register)
        self._thread.start()
        _running_engines.add(self)
        self._ready.wait()
        if self.error is not None:
            raise self.error
        if make_default:
            set_default_engine(self)

    # ================================================================== public API

    @property
    def running(self) -> bool:
        """True while the engine thread runs and no stop was requested."""
        return self._thread.is_alive() and not self._stopping

    def start(
        self, workflow: WorkflowDefinition | str, *args: Any, id: str | None = None, **kwargs: Any
    ) -> Handle:
        """Start an execution of ``workflow``; returns its handle at once.

        Starting with an ``id`` that already exists returns that execution's handle and
        starts nothing (idempotent start).
        """
        self._check_running()
        definition = self.registry.workflow(workflow) if isinstance(workflow, str) else workflow
        if not isinstance(definition, WorkflowDefinition):
            raise TypeError(
                f"start() needs a workflow (an @workflow function or its name), got {workflow!r}"
            )
        text = payload.encode_call(
            definition.signature, args, kwargs, what=f"workflow {definition.name}"
        )
        execution_id = id if id is not None else str(uuid.uuid4())
        if not isinstance(execution_id, str) or not execution_id:
            raise ValueError(f"an execution id is a non-empty string, got {execution_id!r}")
        if id is not None:
            existing = self._existing(execution_id)
            if existing is not None:  # idempotent start: that execution, whatever it runs
                return Handle(self, execution_id, existing)
        with self._lock:
            self._accepted.add(execution_id)
        self._post(lambda: self._start(execution_id, definition, text, explicit=id is not None))
        return Handle(self, execution_id, definition.name)

    def _existing(self, execution_id: str) -> str | None:
        """The workflow name of an execution with this id, if one exists (or starts)."""
        live = self._live.get(execution_id)
        if live is not None:
            return live.record.workflow
        record = self.store.get_execution(execution_id)
        return record.workflow if record is not None else None

    def get(self, execution_id: str) -> Handle:
        """The handle of an existing execution.

        Raises:
            ExecutionNotFound: no execution has that id.
        """
        live = self._live.get(execution_id)
        if live is not None:
            return Handle(self, execution_id, live.record.workflow)
        if execution_id in self._accepted:
            return Handle(self, execution_id, None)
        record = self.store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(
                f"no execution with id {execution_id!r} in {self.store.path or 'this store'}"
            )
        return Handle(self, execution_id, record.workflow)

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
        if status is not None:
            items = status if isinstance(status, (list, tuple, set)) else [status]
            status = [_status(s) for s in items]
        return self.store.list_executions(
            ExecutionFilter(
                status=status, workflow=name, since=since, until=until, limit=limit, offset=offset
            )
        )

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
        live = self._live.get(execution_id)
        if live is not None and live.record.status is Status.RUNNING:
            record = copy.copy(live.record)  # may not be committed yet: it was just started
            record.tags = list(record.tags)
            record.condition = live.condition
            return record
        record = self.store.get_execution(execution_id)
        if record is None:
            if execution_id in self._accepted:
                raise ExecutionNotFound(
                    f"execution {execution_id!r} is starting; ask again in a moment"
                )
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        live = self._live.get(execution_id)
        if live is not None:
            record.condition = live.condition
        return record

    def history(self, execution_id: str) -> list[EventRecord]:
        """The execution's recorded events, in order (committed ones only)."""
        return self.store.load_history(execution_id)

    def status(self) -> dict:
        """Health and counts: thread alive, store, executions by state, timers, tasks."""
        live = list(self._live.values())
        return {
            "running": self.running,
            "error": repr(self.error) if self.error else None,
            "store": self.store.path,
            "started_at": self.started_at,
            "open_executions": len(live),
            "waiting_for_definition": sum(
                1 for x in live if x.condition and x.condition.startswith("waiting")
            ),
            "blocked": sum(1 for x in live if x.condition and x.condition.startswith("blocked")),
            "pending_timers": sum(len(x.timers) for x in live),
            "running_tasks": self._in_flight,
            "counts": {s.value: n for s, n in self.store.counts_by_status().items()},
        }

    def subscribe(self, callback: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``callback(changed_ids)`` on the engine thread after each commit.

        Returns a function that unsubscribes. Callbacks must be quick and not block.
        """
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def stop(self, grace: float = 2.0) -> None:
        """Stop the engine: running tasks get ``grace`` seconds to finish, history is
        committed and the store closed. Unfinished executions resume on the next start."""
        if self._stopped.is_set():
            return
        self._post(lambda: self._begin_stop(grace))
        self._thread.join(grace + 5.0)
        self.registry.remove_listener(self._on_register)
        clear_default_engine(self)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"<nbconductor.Engine {state} on {self.store.path or 'memory'}: {len(self._live)} open>"
        )

    # ------------------------------------------------------------- for handles

    def _result_future(self, execution_id: str) -> Future:
        future: Future = Future()
        with self._lock:
            if execution_id in self._live or execution_id in self._accepted:
                self._waiters.setdefault(execution_id, []).append(future)
                return future
            recent = self._recently_closed.get(execution_id)
        if recent is not None:  # spares a store read for the common start-then-wait
            future.set_result(recent)
            return future
        record = self.store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        if record.status.closed:
            future.set_result(record)
            return future
        with self._lock:  # open in the store but not loaded here (no definition yet)
            self._waiters.setdefault(execution_id, []).append(future)
        return future

    def _status_of(self, execution_id: str) -> Status:
        if execution_id in self._live or execution_id in self._accepted:
            return Status.RUNNING
        record = self.store.get_execution(execution_id)
        if record is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        return record.status

    def _condition_of(self, execution_id: str) -> str | None:
        live = self._live.get(execution_id)
        return live.condition if live is not None else None

    # ================================================================ engine thread

    def _check_running(self) -> None:
        if not self.running:
            raise EngineStopped(
                f"this engine is stopped{f' ({self.error!r})' if self.error else ''}; "
                "create a new Engine on the same history to carry on"
            )

    def _post(self, fn: Callable[[], None]) -> None:
        self._inbox.append(fn)
        if self._sleeping:
            self._sleeping = False
            with contextlib.suppress(RuntimeError):  # loop closed: the engine has stopped
                self._aloop.call_soon_threadsafe(self._wake.set)

    def _thread_main(self) -> None:
        try:
            anyio.run(self._main, backend="asyncio")
        except BaseException as exc:  # recorded, surfaced by status() and the API
            self.error = exc
        finally:
            self._ready.set()
            self._stopping = True
            self._fail_waiters()
            self._runner.shutdown()
            try:
                self.store.close()
            finally:
                self._stopped.set()

    async def _main(self) -> None:
        self._aloop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._now = self.clock.now()
        self._record_definitions(self.registry.all())
        self._recover()
        self.schedules._load()
        self._commit()
        self._ready.set()
        while True:
            self._tick()
            if self._stopping and (self._in_flight == 0 or time.monotonic() >= self._stop_deadline):
                self._commit()
                return
            if self._inbox:
                continue
            delay = self._next_delay()
            if delay == 0.0:
                continue
            self._sleeping = True
            if self._inbox:
                self._sleeping = False
                continue
            with anyio.move_on_after(delay if delay is not None else 3600.0):
                await self._wake.wait()
            self._sleeping = False
            self._wake.clear()

    def _next_delay(self) -> float | None:
        if not self._heap and not self._stopping:
            return None
        if self._stopping:
            return max(0.0, min(self._stop_deadline - time.monotonic(), 0.05))
        if self.time_skipping and self._in_flight == 0:
            self.clock.advance_to(datetime.fromtimestamp(self._heap[0][0], timezone.utc))
            return 0.0
        return max(0.0, self._heap[0][0] - self.clock.now().timestamp())

    def _tick(self) -> None:
        self._now = self.clock.now()
        inbox = self._inbox
        while inbox:
            inbox.popleft()()
        now_ts = self._now.timestamp()
        heap = self._heap
        while heap and heap[0][0] <= now_ts:
            _, _, kind, key = heapq.heappop(heap)
            getattr(self, "_due_" + kind)(*key)
        self._commit()

    def _commit(self) -> None:
        batch = self._batch
        if batch:
            self._batch = Batch()
            self.store.commit(batch)  # an error here stops the engine: state is in the file
        after, self._after_commit = self._after_commit, []
        for fn in after:
            fn()
        if self._changed and self._subscribers:
            changed, self._changed = self._changed, set()
            for callback in list(self._subscribers):
                with contextlib.suppress(Exception):  # a broken view must not stop the engine
                    callback(changed)
        else:
            self._changed.clear()

    def _push(self, due: float, kind: str, *key: Any) -> None:
        heapq.heappush(self._heap, (due, next(self._order), kind, key))

    # ---------------------------------------------------------------- recording

    def _record(
        self,
        live: LiveExecution,
        kind: EventKind,
        *,
        command: int | None = None,
        name: str | None = None,
        attempt: int | None = None,
        data: str = "{}",
    ) -> EventRecord:
        event = EventRecord(live.id, live.next_seq, kind, self._now, command, name, attempt, data)
        live.next_seq += 1
        self._batch.events.append(event)
        self._changed.add(live.id)
        return event

    def _record_definitions(self, definitions) -> None:
        for d in definitions:
            key = (d.kind, d.name, d.version)
            if key not in self._recorded_definitions:
                self._recorded_definitions.add(key)
                self._batch.definitions.append(
                    DefinitionRecord(d.name, d.kind, d.version, d.source, self._now)
                )

    def _update(self, live: LiveExecution, **fields: Any) -> None:
        self._batch.updates.append(ExecutionUpdate(live.id, self._now, **fields))
        self._changed.add(live.id)

    # ---------------------------------------------------------------- stopping

    def _begin_stop(self, grace: float) -> None:
        self._stopping = True
        self._stop_deadline = time.monotonic() + grace

    def _fail_waiters(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(
                        EngineStopped(
                            "the engine stopped before this execution closed; it resumes when an engine opens its history again"
                        )
                    )


def _status(value) -> Status:
    if isinstance(value, Status):
        return value
    try:
        return Status(str(value).lower().replace("timedout", "timed_out"))
    except ValueError:
        valid = ", ".join(s.value for s in Status)
        raise ValueError(f"unknown status {value!r}; use one of: {valid}") from None
