"""The futures workflow code awaits for a task or a child: they know the command that
started them, hash by it (deterministic set order on replay), and turn ``cancel()`` into
a command for the engine."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class FutureOwner(Protocol):
    """What the futures report a cancel to (the replay runtime)."""

    def cancel_task(self, future: TaskFuture) -> None: ...

    def cancel_child(self, future: ChildFuture) -> None: ...


class TaskFuture(asyncio.Future):
    """The result of a scheduled task; cancelling it asks the engine to cancel the task."""

    # Slots: one future per task, and without them its two fields took a dict apiece
    # (one more object for the collector to walk while the task runs).
    __slots__ = ("command", "runtime")

    runtime: FutureOwner
    command: int

    def __hash__(self) -> int:  # deterministic set order on replay
        return -self.command

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        self.runtime.cancel_task(self)
        return super().cancel(msg)


class ChildFuture(asyncio.Future):
    """The result of a child execution; cancelling it asks the child to cancel.

    The future stays pending until the child has closed (Temporal's default,
    "wait for the cancellation to complete"), so a parent cancelled while it awaits a
    child closes after the child's cleanup, not in the middle of it; then awaiting it
    raises CancelledError, whatever the child's outcome.
    """

    runtime: FutureOwner
    command: int
    child_id: str
    workflow: str  # the child's workflow name
    cancel_requested = False
    _cancel_message: Any = None

    def __hash__(self) -> int:
        return -self.command

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        if not self.cancel_requested:
            self.cancel_requested = True
            self._cancel_message = msg
            self.runtime.cancel_child(self)
        return True  # asyncio waits for the future to finish, as with a shielded await

    def child_closed(self) -> None:
        """The child closed after a cancel request: awaiting code sees CancelledError."""
        super().cancel(self._cancel_message)
