"""The one shape of a failure: what history, execution records and the UI show of an
error (type, message, traceback, ...), built here and nowhere else.

Tasks, children, executions, updates and offline writes all describe what went wrong
with a :class:`Failure`; it is stored as a JSON object whose keys are the fields that
are set, in field order (the format recorded histories hold).
"""

from __future__ import annotations

import dataclasses
import json
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbconductor.errors import ApplicationError, ChildFailed, TaskFailed
from nbconductor.storage.records import EventRecord


@dataclass(frozen=True)
class Failure:
    """What went wrong, as stored: only the fields that are set are written.

    Attributes:
        type: the exception's class name (``"ValueError"``) or the engine's name for
            the failure (``"TaskTimeout"``, ``"Terminated"``, ...).
        message: what happened, in words.
        module: the module of the exception's class.
        traceback: the formatted traceback ("" when there is none).
        mro: the class's base names, so retry policies can match on a base class.
        non_retryable: a retry cannot fix it.
        details: an ApplicationError's details as the codec's JSON (decode them with
            the engine's payloads; histories recorded before 0.2 hold their ``repr``).
        timeout: which task timeout elapsed (``"start_to_close"``, ...).
        final: no retry follows, whatever the retry policy says.
    """

    type: str
    message: str
    module: str | None = None
    traceback: str | None = None
    mro: tuple[str, ...] | None = None
    non_retryable: bool | None = None
    details: Any = None
    timeout: str | None = None
    final: bool | None = None

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        *,
        non_retryable: bool | None = None,
        encode: Callable[[Any], str] | None = None,
    ) -> Failure:
        """Describe ``exc``; never raises, whatever the exception does.

        ``non_retryable=True`` marks a failure that the same code would repeat.
        ``encode`` turns an ApplicationError's details into codec text (the engine's
        payloads); details it cannot encode, or without it, are kept as their ``repr``.
        """
        kind = type(exc)
        try:
            message = str(exc)
        except Exception:  # recording an error must not fail on a strange exception
            message = f"<unprintable {kind.__qualname__}>"
        try:
            text = "".join(tb.format_exception(kind, exc, exc.__traceback__))
        except Exception:
            text = ""
        mro = tuple(c.__name__ for c in kind.__mro__[1:] if c not in (object, BaseException))
        details = None
        if isinstance(exc, ApplicationError):
            non_retryable = non_retryable or exc.non_retryable
        # A TaskFailed or ChildFailed the workflow lets through carries the details of
        # the ApplicationError behind it on to the caller (Temporal's cause chain).
        carries = isinstance(exc, (ApplicationError, TaskFailed, ChildFailed))
        if carries and exc.details is not None:
            details = _details(exc.details, encode)
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit & co. are not errors a retry can fix.
            non_retryable = True
            message = (
                f"{kind.__name__} raised inside a task ({message}); it was recorded as a "
                "failure and not retried"
            )
        return cls(
            type=kind.__name__,
            message=message,
            module=kind.__module__,
            traceback=text,
            mro=mro,
            non_retryable=non_retryable,
            details=details,
        )

    @classmethod
    def task_timeout(cls, message: str, which: str, *, final: bool | None = None) -> Failure:
        """A task attempt (or the task as a whole) ran out of time."""
        return cls(
            type="TaskTimeout",
            message=message,
            module="nbconductor.errors",
            traceback="",
            mro=("NbconductorError", "TimeoutError"),
            timeout=which,
            final=final,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        """Read a stored failure back (unknown keys are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        if values.get("mro") is not None:
            values["mro"] = tuple(values["mro"])
        values.setdefault("type", "Error")
        values.setdefault("message", "")
        return cls(**values)

    @property
    def retryable(self) -> bool:
        """Not marked non-retryable nor final (the retry policy decides the rest)."""
        return not self.non_retryable and not self.final

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the fields that are set, in field order."""
        out: dict[str, Any] = {"type": self.type}
        if self.module is not None:
            out["module"] = self.module
        out["message"] = self.message
        for name in ("traceback", "mro", "non_retryable", "details", "timeout", "final"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if name == "mro" else value
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text (an execution record's ``error``)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def summary(self) -> str:
        """``'ValueError: bad input'``."""
        return summary(self.to_dict())


def _details(value: Any, encode: Callable[[Any], str] | None) -> Any:
    if encode is not None:
        try:
            return json.loads(encode(value))
        except Exception:  # recording an error must not fail on its details
            pass
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__qualname__}>"


def summary(error: dict | Failure) -> str:
    """``'ValueError: bad input'`` for a stored failure."""
    if isinstance(error, Failure):
        error = error.to_dict()
    message = error.get("message", "")
    return f"{error.get('type', 'Error')}: {message}" if message else error.get("type", "Error")


def task_failed(
    event: EventRecord, data: dict, last_heartbeat_details: Any = None, details: Any = None
) -> TaskFailed:
    """What awaiting a task that failed for good raises in workflow code
    (``last_heartbeat_details`` and the error's ``details`` decoded from the event by the
    caller's codec)."""
    error = data.get("error") or {}
    attempts = event.attempt or 0
    return TaskFailed(
        f"task {event.name!r} failed after {attempts} attempt{'s' * (attempts != 1)}: "
        f"{summary(error)}",
        task=event.name or "",
        attempts=attempts,
        error_type=error.get("type", ""),
        error_message=error.get("message", ""),
        traceback=error.get("traceback", ""),
        last_heartbeat_details=last_heartbeat_details,
        details=details,
    )


def child_failed(
    event: EventRecord, data: dict, workflow: str | None = None, details: Any = None
) -> ChildFailed:
    """What awaiting a child that did not complete raises in workflow code.

    ``workflow`` names the child when the event does not (histories recorded before
    ChildClosed carried the child's workflow name)."""
    error = data.get("error") or {}
    status = data.get("status", "failed")
    detail = f": {summary(error)}" if error else ""
    return ChildFailed(
        f"child workflow {event.name or workflow!r} ({data.get('child_id')}) ended "
        f"{status}{detail}",
        child_id=data.get("child_id", ""),
        status=status,
        error=error,
        details=details,
    )
