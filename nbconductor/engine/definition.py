"""Workflow and task definitions, the decorators that make them, and the registry."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from nbconductor.engine import context
from nbconductor.engine.default import default_engine
from nbconductor.engine.duration import optional_duration
from nbconductor.engine.queues.spec import check_queue_name
from nbconductor.engine.retry import DEFAULT_RETRY, Retry
from nbconductor.engine.shipping import ship_function
from nbconductor.engine.signal_payload import declared_signals
from nbconductor.errors import DefinitionError, WorkflowNotRegistered


def normalized_source(fn: Callable, source: str | None = None) -> str:
    """The function's source without indentation and trailing-space noise."""
    if source is None:
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            # No source (defined by exec without a file): fall back to the bytecode.
            code = fn.__code__
            source = f"<bytecode {code.co_code.hex()} {code.co_consts!r} {code.co_names!r}>"
    lines = [line.rstrip() for line in textwrap.dedent(source).strip().splitlines()]
    return "\n".join(line for line in lines if line)


def version_of(source: str) -> str:
    """A short, stable hash of normalized source: the definition's version."""
    return hashlib.sha256(source.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TaskOptions:
    """Retry policy and timeouts (seconds or None) of a task."""

    retry: Retry = DEFAULT_RETRY
    start_to_close: float | None = None
    schedule_to_start: float | None = None
    schedule_to_close: float | None = None
    heartbeat: float | None = None
    runner: str = "thread"  # the name of the runner its attempts go to
    queue: str | None = None  # the queue its attempts wait in for admission
    priority: int = 0  # in its queue: lower starts first
    resources: tuple[tuple[str, float], ...] = ()  # what a Dask worker must have, per attempt


def _describe(definition, fn: Callable, name: str, source: str | None) -> None:
    """Version the source and look like the wrapped function (docs, help, inspect)."""
    definition.source = normalized_source(fn, source)
    definition.version = version_of(definition.source)
    definition.signature = inspect.signature(fn)
    definition.__wrapped__ = fn
    definition.__doc__ = fn.__doc__
    definition.__name__ = getattr(fn, "__name__", name)
    definition.__qualname__ = getattr(fn, "__qualname__", name)
    definition.__module__ = getattr(fn, "__module__", __name__)


class TaskDefinition:
    """A registered task. Inside a workflow, calling it schedules it; elsewhere it just runs."""

    kind = "task"

    def __init__(
        self, fn: Callable, *, name: str, options: TaskOptions, source: str | None = None
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"@task needs a function, got {fn!r}")
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        _describe(self, fn, name, source)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        workflow_context = context.current()
        if workflow_context is None:
            return self.fn(*args, **kwargs)
        return workflow_context.schedule_task(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name} version {self.version}>"


class WorkflowDefinition:
    """A registered workflow: an ``async def`` that decides what happens."""

    kind = "workflow"

    def __init__(
        self,
        fn: Callable,
        *,
        name: str,
        timeout: float | None = None,
        signals: Any = (),
        source: str | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise DefinitionError(
                f"@workflow needs an 'async def' function; {getattr(fn, '__name__', fn)!r} "
                "is a plain function. Write it as 'async def' and 'await' its tasks."
            )
        self.fn = fn
        self.name = name
        self.timeout = timeout
        # Names, and what those declared with a payload carry (for the view's forms).
        self.signals, self.signal_payloads = declared_signals(signals)
        self.queries: dict[str, Handler] = {}
        self.updates: dict[str, Handler] = {}
        _describe(self, fn, name, source)

    def query(self, fn: Callable | None = None, *, name: str | None = None):
        """Declare a query handler: ``fn(state, *args)`` reads the workflow's ``state``.

        It runs on the caller's thread against a snapshot of the state taken after the
        workflow's last step, so it never races with workflow code.

        Example:
            >>> @order.query
            ... def stage(state):
            ...     return state.get("stage")
        """

        def wrap(f: Callable) -> Callable:
            self.queries[name or f.__name__] = Handler(f, None)
            return f

        return wrap(fn) if fn is not None else wrap

    def update(self, fn: Callable | None = None, *, name: str | None = None, validator=None):
        """Declare an update handler: a signal that returns a value.

        ``fn(payload)`` runs inside the workflow (it may await tasks and change
        ``state``); ``validator(state, payload)`` runs first and rejects the update by
        raising, in which case nothing is recorded.
        """

        def wrap(f: Callable) -> Callable:
            self.updates[name or f.__name__] = Handler(f, validator)
            return f

        return wrap(fn) if fn is not None else wrap

    def start(self, *args: Any, id: str | None = None, engine=None, **kwargs: Any):
        """Start an execution on ``engine`` (default: this process's engine); returns a Handle."""
        return (engine or default_engine()).start(self, *args, id=id, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any):
        """Outside a workflow: start an execution and return its (awaitable) handle."""
        if context.current() is not None:
            return context.run_child(self, args, kwargs)
        return self.start(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<workflow {self.name} version {self.version}>"


@dataclass(frozen=True)
class Handler:
    """A query or update handler, with the update's optional validator."""

    fn: Callable
    validator: Callable | None


Definition = TaskDefinition | WorkflowDefinition


@dataclass
class Registry:
    """Definitions by name, process-wide; engines listen for new registrations."""

    _items: dict[tuple[str, str], Definition] = field(default_factory=dict)
    _listeners: list[Callable[[Definition, Definition | None], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, definition: Definition) -> Definition:
        with self._lock:
            key = (definition.kind, definition.name)
            previous = self._items.get(key)
            self._items[key] = definition
            listeners = list(self._listeners)
        for listener in listeners:
            listener(definition, previous)
        return definition

    def workflow(self, name: str) -> WorkflowDefinition:
        found = self._items.get(("workflow", name))
        if found is None:
            known = ", ".join(sorted(n for k, n in self._items if k == "workflow")) or "none"
            raise WorkflowNotRegistered(
                f"no workflow named {name!r} is registered in this process (registered: "
                f"{known}); run the cell that defines it first"
            )
        return found  # type: ignore[return-value]

    def find(self, kind: str, name: str) -> Definition | None:
        return self._items.get((kind, name))

    def all(self) -> list[Definition]:
        with self._lock:
            return list(self._items.values())

    def forget(self, kind: str, name: str) -> Definition | None:
        """Remove a definition without telling listeners, as a restarted process has
        forgotten it; returns what was registered (None if nothing was)."""
        with self._lock:
            return self._items.pop((kind, name), None)

    def restore(self, definition: Definition) -> None:
        """Put a definition back without telling listeners (as importing the module
        that holds it again would, before anyone asks the engine to look)."""
        with self._lock:
            self._items[(definition.kind, definition.name)] = definition

    @contextlib.contextmanager
    def isolated(self) -> Iterator[Registry]:
        """Undo, at the end of the block, every definition registered or forgotten in it
        (listeners are not told): a test leaves the registry as it found it."""
        with self._lock:
            saved = dict(self._items)
        try:
            yield self
        finally:
            with self._lock:
                self._items.clear()
                self._items.update(saved)

    def add_listener(self, listener: Callable[[Definition, Definition | None], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)


REGISTRY = Registry()


def _priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise DefinitionError(
            f"priority= is a whole number (lower starts first; 0 by default), got {priority!r}"
        )
    return priority


def _runner_name(runner: object) -> str:
    if not isinstance(runner, str) or not runner.strip():
        raise DefinitionError(
            f"runner= names where a task runs: 'thread' (the default), 'process', or a "
            f"name given to engine.add_runner(...); got {runner!r}"
        )
    return runner


def task(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout=None,
    start_to_close=None,
    schedule_to_start=None,
    schedule_to_close=None,
    heartbeat=None,
    runner: str = "thread",
    queue: str | None = None,
    priority: int = 0,
    resources: dict[str, float] | None = None,
    source: str | None = None,
):
    """Declare a task: the unit of work a workflow schedules. Sync or async functions.

    ``timeout`` is the start-to-close timeout of one attempt (``start_to_close`` is the
    same); durations are seconds, timedeltas or strings like ``"30s"``.

    ``runner`` says where its attempts run: ``"thread"`` (the default, a thread of this
    process), ``"process"`` (a local child process: CPU-bound work, crash-prone C
    extensions) or the name of a runner added to the engine (``engine.add_runner``).
    A task for another process must be picklable with the globals it uses; a variable
    that is not is named when the task is defined.

    ``queue`` makes its attempts wait for room in an engine's queue
    (``engine.queues.create("llm", concurrency=8, rate="60/minute")``); among waiting
    attempts, a lower ``priority`` starts first (0, the default, before 1).
    ``resources`` (``{"GPU": 1}``) places attempts on Dask workers that have them.

    Example:
        >>> @task(retry=Retry(max_attempts=3), timeout="30s")
        ... def fetch(i: int) -> int:
        ...     return i * 2
        >>> fetch(4)  # outside a workflow it simply runs
        8
    """

    def wrap(f: Callable) -> TaskDefinition:
        if timeout is not None and start_to_close is not None:
            raise DefinitionError("give either timeout= or start_to_close=, not both")
        if retry is not None and not isinstance(retry, Retry):
            raise DefinitionError(f"retry= needs a Retry(...), got {retry!r}")
        options = TaskOptions(
            retry=retry or DEFAULT_RETRY,
            start_to_close=optional_duration(
                timeout if timeout is not None else start_to_close, what="task timeout"
            ),
            schedule_to_start=optional_duration(schedule_to_start, what="schedule_to_start"),
            schedule_to_close=optional_duration(schedule_to_close, what="schedule_to_close"),
            heartbeat=optional_duration(heartbeat, what="heartbeat timeout"),
            runner=_runner_name(runner),
            queue=check_queue_name(queue) if queue is not None else None,
            priority=_priority(priority),
            resources=tuple(sorted((resources or {}).items())),
        )
        defn = TaskDefinition(f, name=name or f.__name__, options=options, source=source)
        if options.runner != "thread":
            # Fail at the definition, naming the variable, rather than at each attempt.
            ship_function(f, defn.name)
        return REGISTRY.register(defn)  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap


def workflow(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    timeout=None,
    signals=(),
    source: str | None = None,
):
    """Declare a workflow: an ``async def`` whose every step is recorded and replayable.

    ``signals`` names the signals it waits for (``"approve,cancel"``), or says what
    each carries, so that its view shows a form for it: ``None`` (nothing: a bare
    button), ``str``/``int``/``float``/``bool`` or an example value, a dict example
    or a dataclass (a form with one field per key; the payload is a dict).

    Example:
        >>> @workflow(timeout="1 day")
        ... async def pipeline(n: int) -> int:
        ...     return sum(await gather(*[fetch(i) for i in range(n)]))
        >>> @workflow(signals={"approve": {"ok": True, "by": "ann"}, "withdraw": None})
        ... async def offer() -> str: ...
    """

    def wrap(f: Callable) -> WorkflowDefinition:
        defn = WorkflowDefinition(
            f,
            name=name or getattr(f, "__name__", "workflow"),
            timeout=optional_duration(timeout, what="workflow timeout"),
            signals=signals,
            source=source,
        )
        return REGISTRY.register(defn)  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap
