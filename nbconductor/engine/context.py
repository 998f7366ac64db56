"""What workflow code sees of its execution: an abstract context found on the loop.

The helpers workflow code calls (``sleep``, ``signal``, task calls, ``child``,
``patched``, ...) depend on this small interface only, never on the replay machinery
that implements it (:class:`~nbconductor.engine.runtime.WorkflowRuntime`). Each
execution's deterministic loop carries its context, so :func:`current` finds it from
any code running on that loop, the way Temporal's ``workflow`` module finds its
``_Runtime`` without importing its worker.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NoReturn, Protocol

from nbconductor.errors import NotInWorkflow

PARENT_CLOSE_POLICIES = ("terminate", "request_cancel", "abandon")

_get_running_loop = asyncio.events._get_running_loop


class Callee(Protocol):
    """A task or workflow definition as the context needs it: a name and a signature."""

    name: str
    signature: inspect.Signature


class ChildFutureLike(Protocol):
    """The awaitable result of a child execution, with the child's id."""

    child_id: str

    def __await__(self): ...

    def cancel(self, msg: Any = None) -> bool: ...


class WorkflowContext(ABC):
    """The running execution, as the helpers of workflow code use it."""

    execution_id: str
    replaying: bool  # True while recorded history is being re-applied
    now: datetime  # the time of the event being processed
    rng: random.Random  # seeded per execution: the same numbers on every replay
    state: dict[str, Any]
    progress: tuple[float | None, str | None]

    @abstractmethod
    def schedule_task(self, definition: Callee, args: tuple, kwargs: dict) -> Awaitable[Any]:
        """Schedule a task; the returned future resolves with its result."""

    @abstractmethod
    def start_child(
        self,
        definition: Callee,
        args: tuple,
        kwargs: dict,
        *,
        child_id: str | None,
        parent_close: str,
    ) -> ChildFutureLike:
        """Start a child execution; the returned future resolves with its result."""

    @abstractmethod
    def signal_child(self, child_id: str, name: str, value: Any) -> None:
        """Send a signal to a child execution (recorded in both histories)."""

    @abstractmethod
    def wait_signal(self, name: str) -> asyncio.Future:
        """A future for the next signal called ``name`` (at once if one is buffered)."""

    @abstractmethod
    def wait_condition(self, predicate: Callable[[], bool]) -> asyncio.Future:
        """A future resolved once ``predicate()`` is true after a workflow step."""

    @abstractmethod
    def side_effect(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()`` the first time, its recorded value on every replay."""

    @abstractmethod
    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        """Whether this execution takes the patched branch (see ``nbconductor.patched``)."""

    @abstractmethod
    def continue_as_new(self, args: tuple, kwargs: dict) -> NoReturn:
        """End this run by starting a new one with these arguments (raises)."""

    def child(
        self,
        definition: Callee,
        args: tuple,
        kwargs: dict,
        *,
        child_id: str | None = None,
        parent_close: str = "terminate",
    ) -> ChildHandle:
        """Start a child execution and return its handle."""
        if parent_close not in PARENT_CLOSE_POLICIES:
            raise ValueError(
                f"parent_close={parent_close!r} is not a policy; use one of {PARENT_CLOSE_POLICIES}"
            )
        future = self.start_child(
            definition, args, kwargs, child_id=child_id, parent_close=parent_close
        )
        return ChildHandle(self, future)


class ChildHandle:
    """A child execution started from workflow code: await it for its result."""

    def __init__(self, context: WorkflowContext, future: ChildFutureLike) -> None:
        self._context = context
        self._future = future
        self.id: str = future.child_id

    def __await__(self):
        return self._future.__await__()

    def result(self):
        """The awaitable result (same as awaiting the handle)."""
        return self._future

    def signal(self, name: str, payload: Any = None) -> None:
        """Send a signal to the child (recorded in both histories)."""
        self._context.signal_child(self.id, name, payload)

    def cancel(self) -> None:
        """Ask the child to cancel; awaiting this handle then raises CancelledError."""
        self._future.cancel()


def current() -> WorkflowContext | None:
    """The context of the workflow whose code runs on this thread now, if any."""
    return getattr(_get_running_loop(), "workflow_context", None)


async def run_child(definition: Callee, args: tuple, kwargs: dict) -> Any:
    """What calling a workflow from workflow code does: run it as a child, return its
    result. A coroutine, so the child starts when it is awaited (its command id is
    taken then, as recorded histories expect)."""
    context = current()
    if context is None:  # the coroutine was moved off its workflow's loop
        raise NotInWorkflow(f"workflow {definition.name} runs as a child only inside a workflow")
    child_id = kwargs.pop("id", None)
    parent_close = kwargs.pop("parent_close", "terminate")
    return await context.child(
        definition, args, kwargs, child_id=child_id, parent_close=parent_close
    )
