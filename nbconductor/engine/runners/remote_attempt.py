"""An attempt as another process sees it.

The process and Dask runners ship who an attempt is (execution, workflow, attempt
number, when it was scheduled, the previous attempt's last heartbeat details, its trace
context) with its code, so that ``nc.task_info()``, ``nc.heartbeat()``,
``nc.cancelled()`` and OpenTelemetry spans answer the same wherever the task runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nbconductor.engine import shipping
from nbconductor.engine.task_runner import Attempt
from nbconductor.errors import TaskNotLoadable


class _Named:
    """What task-side helpers read of a definition: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


def _now() -> datetime:
    return datetime.now(UTC)


def load_call(
    name: str, fn_data: bytes, input_data: bytes, *, place: str, remedy: str
) -> tuple[Callable[..., Any], tuple, dict]:
    """The task function and its arguments, unpickled where the attempt runs.

    Raises:
        TaskNotLoadable: naming the missing module; a retry would fail the same way.
    """
    try:
        fn = shipping.loads(fn_data)
        args, kwargs = shipping.loads(input_data)
    except Exception as exc:
        missing = getattr(exc, "name", None)
        where = f"module {missing!r} is missing" if missing else f"{type(exc).__name__}: {exc}"
        raise TaskNotLoadable(
            f"task {name!r} cannot be loaded {place}: {where}. {remedy} "
            "(a retry would fail the same way)"
        ) from None
    return fn, args, kwargs


def identity(attempt: Attempt) -> bytes:
    """Who ``attempt`` is, as bytes for :func:`rebuild` in another process."""
    fields = {
        "execution_id": attempt.execution_id,
        "command": attempt.command,
        "number": attempt.number,
        "workflow": attempt.workflow,
        "scheduled_at": attempt.scheduled_at,
        "trace_context": attempt.trace_context,
    }
    try:
        return shipping.dumps({**fields, "previous_details": attempt.previous_details})
    except Exception:  # details that cannot travel arrive as their repr, not as an error
        return shipping.dumps({**fields, "previous_details": repr(attempt.previous_details)})


def rebuild(data: bytes, name: str, relay: Callable[[Attempt], None]) -> Attempt:
    """The attempt :func:`identity` described, started now, heartbeats sent by ``relay``."""
    fields = shipping.loads(data)
    attempt = Attempt(
        fields["execution_id"],
        fields["command"],
        fields["number"],
        _Named(name),
        "",
        0.0,
        _now,
        workflow=fields["workflow"],
        scheduled_at=fields["scheduled_at"],
        previous_details=fields["previous_details"],
        relay=relay,
        trace_context=fields.get("trace_context"),
    )
    attempt.started_at = _now()
    return attempt
