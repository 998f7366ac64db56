"""Every operation and what it accepts: the one contract of ``%conductor``, the
``nbconductor`` command and the control socket.

:data:`OPERATIONS` lists every operation and the type, size and range of each of its
arguments. :func:`check_request` refuses an unknown operation, an unknown or missing
argument, or a value of the wrong type with a ``BadRequest``-family error before
anything runs, whichever way the request came: typed in a notebook, on a command line
or over the socket. Values are data only: nothing is ever evaluated, imported or
unpickled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nbconductor.engine.schedules.spec import CATCHUP_POLICIES, OVERLAP_POLICIES
from nbconductor.errors import NbconductorError
from nbconductor.storage.records import Status

__all__ = (
    "OPERATIONS",
    "BadRequest",
    "ControlError",
    "Field",
    "NoEngine",
    "UnknownOperation",
    "check_request",
    "json_type",
)


# --- errors ----------------------------------------------------------------------------


class ControlError(NbconductorError):
    """A control request could not be carried out."""


class BadRequest(ControlError, ValueError):
    """The request is malformed: not JSON, not an object, or an argument is invalid."""


class UnknownOperation(BadRequest):
    """The request names an operation the control socket does not have."""


class NoEngine(ControlError, RuntimeError):
    """No engine holds this history file; this operation needs a running one."""


# --- argument schema -------------------------------------------------------------------

_ID_MAX = 500
_NAME_MAX = 200
_TEXT_MAX = 4000


@dataclass(frozen=True)
class Field:
    """One argument: its check (raising ValueError with the reason) and whether it is
    required. ``check`` returns the value to use, e.g. a datetime parsed from text."""

    check: Callable[[Any], Any]
    required: bool = False


def _text(max_len: int, *, choices: tuple[str, ...] | None = None, nullable: bool = False):
    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {json_type(value)}")
        if not value or len(value) > max_len:
            raise ValueError(f"must be 1 to {max_len} characters long (got {len(value)})")
        if choices is not None and value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    return check


def _integer(low: int, high: int, *, nullable: bool = False):
    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        # bool is an int in Python but not in JSON: true is not a count.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, not {json_type(value)}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high} (got {value})")
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {json_type(value)}")
    return value


def _duration(*, nullable: bool = False):
    """Seconds (a number) or text such as "15 minutes"; the engine parses it."""

    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"must be seconds or text like '15 minutes', not {json_type(value)}")
        if isinstance(value, str) and not 0 < len(value) <= _NAME_MAX:
            raise ValueError(f"must be 1 to {_NAME_MAX} characters long")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    return check


def _instant(*, nullable: bool = True):
    """ISO 8601 text; one without a zone is UTC."""

    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            raise ValueError("must be an ISO 8601 date/time string")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date/time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    return check


def _statuses(value: Any) -> list[Status]:
    if not isinstance(value, list) or len(value) > len(Status):
        raise ValueError(f"must be a list of at most {len(Status)} statuses")
    valid = [s.value for s in Status]
    out = []
    for item in value:
        if not isinstance(item, str) or item not in valid:
            raise ValueError(f"{item!r} is not a status; use one of {', '.join(valid)}")
        out.append(Status(item))
    return out


def _json_list(value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError(f"must be a JSON array, not {json_type(value)}")
    return value


def _json_object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, not {json_type(value)}")
    return value


def _absolute_path(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 4096 or "\0" in value:
        raise ValueError("must be a path of 1 to 4096 characters")
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path (got {value!r})")
    return value


def _any_json(value: Any) -> Any:
    return value  # already parsed from JSON: plain data, bounded by the request size


_ID = Field(_text(_ID_MAX), required=True)
_SCHEDULE_ID = Field(_text(_NAME_MAX), required=True)
_SCHEDULE_OPTIONS = {
    "cron": Field(_text(_NAME_MAX, nullable=True)),
    "every": Field(_duration(nullable=True)),
    "timezone": Field(_text(64)),
    "args": Field(_json_list),
    "kwargs": Field(_json_object),
    "jitter": Field(_duration()),
    "overlap": Field(_text(32, choices=OVERLAP_POLICIES)),
    "catchup": Field(_text(32, choices=CATCHUP_POLICIES)),
    "catchup_window": Field(_duration(nullable=True)),
    "start_at": Field(_instant()),
    "end_at": Field(_instant()),
    "paused": Field(_boolean),
    "note": Field(_text(_TEXT_MAX)),
}

_QUEUE_LIMITS = {
    "concurrency": Field(_integer(1, 1_000_000, nullable=True)),
    "rate": Field(_text(64, nullable=True)),
    "burst": Field(_integer(1, 1_000_000, nullable=True)),
}

OPERATIONS: dict[str, dict[str, Field]] = {
    "ping": {},
    "status": {},
    "list": {
        "status": Field(_statuses),
        "workflow": Field(_text(_NAME_MAX, nullable=True)),
        "since": Field(_instant()),
        "until": Field(_instant()),
        "limit": Field(_integer(0, 1_000_000, nullable=True)),
        "offset": Field(_integer(0, 1_000_000_000)),
    },
    "show": {"id": _ID},
    "history": {"id": _ID},
    "signal": {"id": _ID, "name": Field(_text(100), required=True), "payload": Field(_any_json)},
    "cancel": {"id": _ID},
    "terminate": {"id": _ID, "reason": Field(_text(_TEXT_MAX, nullable=True))},
    "start": {
        "workflow": Field(_text(_NAME_MAX), required=True),
        "args": Field(_json_list),
        "kwargs": Field(_json_object),
        "id": Field(_text(_ID_MAX, nullable=True)),
    },
    "schedules.list": {},
    "schedules.show": {"id": _SCHEDULE_ID, "n": Field(_integer(1, 100))},
    "schedules.create": {
        "id": _SCHEDULE_ID,
        "workflow": Field(_text(_NAME_MAX), required=True),
        **_SCHEDULE_OPTIONS,
    },
    "schedules.update": {
        "id": _SCHEDULE_ID,
        "workflow": Field(_text(_NAME_MAX)),
        **_SCHEDULE_OPTIONS,
    },
    "schedules.delete": {"id": _SCHEDULE_ID},
    "schedules.pause": {"id": _SCHEDULE_ID, "note": Field(_text(_TEXT_MAX, nullable=True))},
    "schedules.resume": {"id": _SCHEDULE_ID},
    "schedules.trigger": {"id": _SCHEDULE_ID},
    "queues.list": {},
    "queues.create": {"name": Field(_text(100), required=True), **_QUEUE_LIMITS},
    "queues.update": {"name": Field(_text(100), required=True), **_QUEUE_LIMITS},
    "queues.delete": {"name": Field(_text(100), required=True)},
    "sql": {"query": Field(_text(100_000), required=True)},
    "prune": {
        "closed_before": Field(_instant(nullable=False), required=True),
        "dry_run": Field(_boolean),
        "limit": Field(_integer(1, 1_000_000_000, nullable=True)),
    },
    "export": {
        "directory": Field(_absolute_path, required=True),
        "format": Field(_text(16, choices=("parquet",))),
    },
}
"""Every operation and its arguments (see docs/cli.md for what each returns)."""


def json_type(value: Any) -> str:
    """How JSON calls the type of ``value`` ("a string", "an array", ...), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_request(op: Any, args: Any) -> dict[str, Any]:
    """Validate an operation and its arguments; return the arguments as the handlers take
    them (ISO times parsed, statuses as :class:`Status`).

    Raises:
        UnknownOperation: ``op`` is not in :data:`OPERATIONS`.
        BadRequest: naming the argument and what is wrong with it.
    """
    if not isinstance(op, str):
        raise BadRequest(f'"op" must be a string naming the operation, not {json_type(op)}')
    schema = OPERATIONS.get(op)
    if schema is None:
        known = ", ".join(sorted(OPERATIONS))
        shown = op if len(op) <= 60 else op[:60] + "..."
        raise UnknownOperation(f"unknown operation {shown!r}; the operations are: {known}")
    if not isinstance(args, Mapping):
        raise BadRequest(f'"args" of {op} must be a JSON object, not {json_type(args)}')
    unknown = sorted(str(k)[:60] for k in args if k not in schema)
    if unknown:
        allowed = ", ".join(sorted(schema)) or "none"
        raise BadRequest(f"{op} takes no argument {', '.join(unknown)} (it takes: {allowed})")
    out: dict[str, Any] = {}
    for name, field in schema.items():
        if name not in args:
            if field.required:
                raise BadRequest(f"{op} needs the argument {name!r}")
            continue
        try:
            out[name] = field.check(args[name])
        except ValueError as exc:
            raise BadRequest(f"{op}: argument {name!r} {exc}") from None
    return out
