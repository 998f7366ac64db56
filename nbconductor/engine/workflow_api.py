"""The functions workflow code calls: durable time, determinism helpers, combinators.

Each finds the running execution's :class:`~nbconductor.engine.context.WorkflowContext`
on the deterministic loop it runs on; called anywhere else they raise
:class:`NotInWorkflow` with what to do instead.
"""

from __future__ import annotations

import asyncio
import uuid as _uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from nbconductor.engine import context
from nbconductor.engine.context import ChildHandle, WorkflowContext
from nbconductor.engine.definition import REGISTRY, WorkflowDefinition
from nbconductor.engine.duration import parse_duration
from nbconductor.errors import ContinueAsNew, NotInWorkflow

T = TypeVar("T")


def _context(helper: str, instead: str) -> WorkflowContext:
    ctx = context.current()
    if ctx is None:
        raise NotInWorkflow(
            f"nbconductor.{helper}() only works inside a running workflow; {instead}"
        )
    return ctx


async def sleep(duration) -> None:
    """Wait durably: the timer is recorded, so the wait survives restarts.

    Example:
        >>> await sleep("1 day")
    """
    _context("sleep", "outside one use time.sleep or asyncio.sleep")
    await asyncio.sleep(parse_duration(duration, what="sleep()"))


async def sleep_until(when: datetime) -> None:
    """Wait durably until ``when`` (a timezone-aware datetime; naive means UTC)."""
    ctx = _context("sleep_until", "outside one compute the delay and sleep")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delay = (when - ctx.now).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


def now() -> datetime:
    """The workflow's current time (UTC): the time of the event being processed.

    The same value on every replay, unlike ``datetime.now()``.
    """
    return _context("now", "outside one use datetime.now(timezone.utc)").now


def random() -> float:
    """A random float in [0, 1) that is the same on every replay of this execution."""
    return _context("random", "outside one use the random module").rng.random()


def uuid4() -> _uuid.UUID:
    """A random UUID that is the same on every replay of this execution."""
    rng = _context("uuid4", "outside one use uuid.uuid4()").rng
    return _uuid.UUID(int=rng.getrandbits(128), version=4)


def side_effect(fn: Callable[[], T]) -> T:
    """Run ``fn`` once and record its result; replays return the recorded value.

    For small non-deterministic reads (a config value, a hostname). Its result must be
    storable. Anything slow or fallible belongs in a task.
    """
    ctx = _context("side_effect", "outside one just call the function")
    return ctx.side_effect(fn, what=f"the side_effect result of {fn!r}")


async def gather(*aws: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
    """Run awaitables (task calls, coroutines) concurrently; results in argument order."""
    _context("gather", "outside one use asyncio.gather")
    return list(await asyncio.gather(*aws, return_exceptions=return_exceptions))


async def race(*aws: Awaitable[T]) -> T:
    """The result of the first awaitable to finish; the others are cancelled.

    Example:
        >>> winner = await race(fetch_primary(), fetch_mirror())
    """
    _context("race", "outside one use asyncio.wait(..., return_when=FIRST_COMPLETED)")
    if not aws:
        raise ValueError("race() needs at least one awaitable")
    futures = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # The winner is known, or the race itself was cancelled (a deadline around it,
        # a workflow cancel): either way the others stop. In argument order, so the
        # cancel commands replay alike.
        for future in futures:
            if not future.done():
                future.cancel()
    return next(f for f in futures if f.done() and not f.cancelled()).result()


# --- signals and conditions -----------------------------------------------------------


async def signal(name: str, timeout=None) -> Any:
    """Wait for the next signal called ``name`` and return its payload.

    Signals that arrived earlier wait in the history and are delivered in order. With a
    ``timeout`` (durable, like ``sleep``), returns ``None`` when it elapses first.

    Example:
        >>> decision = await signal("approve", timeout="24h")
        >>> if decision is None: ...   # nobody approved in time
    """
    ctx = _context("signal", "send signals with engine.signal(id, name, payload)")
    future = ctx.wait_signal(name)
    if future.done() or timeout is None:
        return await future
    try:
        return await asyncio.wait_for(future, parse_duration(timeout, what="signal timeout"))
    except TimeoutError:
        return None


async def signals(name: str):
    """Every signal called ``name``, as an async iterator (it never ends by itself).

    Example:
        >>> async for item in signals("item"):
        ...     if item is None: break
    """
    while True:
        yield await signal(name)


async def wait_condition(predicate: Callable[[], bool], timeout=None) -> bool:
    """Wait until ``predicate()`` is true; it is re-checked after every workflow step.

    Returns True when the condition was met, False when the (durable) timeout elapsed.
    """
    ctx = _context("wait_condition", "outside one poll the condition yourself")
    if predicate():
        return True
    future = ctx.wait_condition(predicate)
    if future.done() or timeout is None:
        return await future
    try:
        return await asyncio.wait_for(future, parse_duration(timeout, what="condition timeout"))
    except TimeoutError:
        return False


class _State(MutableMapping):
    """The running workflow's ``state`` mapping: write progress and facts here; the UI
    and query handlers read a snapshot of it taken after each workflow step."""

    def _data(self) -> dict:
        return _context("state", "read it with handle.state").state

    def __getitem__(self, key):
        return self._data()[key]

    def __setitem__(self, key, value) -> None:
        self._data()[key] = value

    def __delitem__(self, key) -> None:
        del self._data()[key]

    def __iter__(self):
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        ctx = context.current()
        return f"<workflow state {ctx.state!r}>" if ctx else "<workflow state>"


state = _State()


def progress(fraction: float | None = None, message: str | None = None) -> None:
    """Report the workflow's progress (0.0 to 1.0) and what it is doing now.

    Shown in the execution view; not recorded in history (it is re-derived on replay).
    """
    ctx = _context("progress", "from a task use nbconductor.heartbeat(progress=...)")
    if fraction is not None and not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"progress() takes a fraction between 0 and 1, got {fraction!r}")
    ctx.progress = (None if fraction is None else float(fraction), message)


# --- children and continue-as-new ----------------------------------------------------


def start_child(
    workflow, *args: Any, id: str | None = None, parent_close: str = "terminate", **kwargs: Any
) -> ChildHandle:
    """Start a child workflow and return its handle at once.

    ``parent_close`` says what happens to the child if this execution closes first:
    ``"terminate"`` (default), ``"request_cancel"`` or ``"abandon"``.
    """
    ctx = _context("start_child", "outside one use engine.start()")
    definition = _workflow_definition(workflow)
    return ctx.child(definition, args, kwargs, child_id=id, parent_close=parent_close)


async def child(workflow, *args: Any, **kwargs: Any) -> Any:
    """Run a child workflow and wait for its result (raises ChildFailed if it fails)."""
    return await start_child(workflow, *args, **kwargs)


def _workflow_definition(workflow):
    if isinstance(workflow, WorkflowDefinition):
        return workflow
    if isinstance(workflow, str):
        return REGISTRY.workflow(workflow)
    raise TypeError(f"expected a workflow (an @workflow function or its name), got {workflow!r}")


def continue_as_new(*args: Any, **kwargs: Any) -> NoReturn:
    """End this run and start a fresh one of the same workflow with new arguments.

    The history starts again empty (keep long loops bounded); a handle's result is the
    result of the chain's last run. Nothing after this call runs.
    """
    _context("continue_as_new", "outside one start a new execution").continue_as_new(args, kwargs)


# --- versioning ------------------------------------------------------------------------


def patched(patch_id: str) -> bool:
    """True for executions that reach this point with the new code, False for those
    recorded before the change (so they replay the old branch).

    Example:
        >>> if patched("send-receipt"):
        ...     await send_receipt(order)
    """
    return _context("patched", "it guards changed workflow code").patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark a patch whose old branch is gone: keeps executions that recorded the patch
    replaying once every execution without it has closed."""
    _context("deprecate_patch", "it guards changed workflow code").patched(
        patch_id, deprecated=True
    )


# --- sagas -----------------------------------------------------------------------------


class Saga:
    """Compensations that undo completed steps when a later one fails or is cancelled.

    Compensations run as tasks in reverse order (or all at once with
    ``parallel_compensation=True``), each with its task's retry policy; a compensation
    that fails is recorded and the others still run. The original error is re-raised.

    Example:
        >>> async with Saga() as saga:
        ...     payment = await charge(order)
        ...     saga.add(refund, payment)
        ...     await reserve(order)
        ...     saga.add(release, order)
        ...     await ship(order)
    """

    def __init__(self, *, parallel_compensation: bool = False) -> None:
        self.parallel_compensation = parallel_compensation
        self._steps: list[tuple[Any, tuple, dict]] = []
        self.compensation_errors: list[BaseException] = []

    def add(self, compensation, *args: Any, **kwargs: Any) -> None:
        """Register how to undo the step that just succeeded."""
        self._steps.append((compensation, args, kwargs))

    async def compensate(self) -> None:
        """Run the registered compensations now (also done automatically on failure)."""
        steps, self._steps = list(reversed(self._steps)), []
        if self.parallel_compensation:
            results = await asyncio.gather(
                *[fn(*a, **kw) for fn, a, kw in steps], return_exceptions=True
            )
            self.compensation_errors += [r for r in results if isinstance(r, BaseException)]
            return
        for fn, args, kwargs in steps:
            try:
                await fn(*args, **kwargs)
            except Exception as exc:  # recorded in history as a failed task; go on
                self.compensation_errors.append(exc)

    async def __aenter__(self) -> Saga:
        _context("Saga", "sagas compensate workflow steps")
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and not issubclass(exc_type, ContinueAsNew):
            await self.compensate()
        return False
