"""The control socket's wire protocol: JSON lines, every request checked field by field.

A connection carries any number of requests, one per line, each answered by one line
in order::

    -> {"op": "signal", "args": {"id": "order-17", "name": "approve", "payload": true}}
    <- {"ok": true, "result": {"id": "order-17", "signal": "approve"}}
    -> {"op": "show", "args": {"id": "nope"}}
    <- {"ok": false, "error": {"type": "ExecutionNotFound", "message": "no execution ..."}}

Lines are UTF-8 JSON objects of at most :data:`MAX_REQUEST_BYTES`. Each request is
checked against :data:`~nbconductor.operations.catalog.OPERATIONS`, the same contract
``%conductor`` and the ``nbconductor`` command run under, before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nbconductor.operations.catalog import (
    BadRequest,
    ControlError,
    UnknownOperation,
    check_request,
    json_type,
)

__all__ = (
    "IDLE_TIMEOUT",
    "MAX_REQUEST_BYTES",
    "PROTOCOL_VERSION",
    "RemoteError",
    "RequestTooLarge",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_result",
    "error_type",
)

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
"""Longest request line, newline included (1 MiB)."""
IDLE_TIMEOUT = 60.0
"""Seconds a server keeps an idle connection open; clients reconnect after half."""


class RequestTooLarge(BadRequest):
    """The request is larger than the control socket accepts (1 MiB)."""


class RemoteError(ControlError):
    """The engine refused or failed a request; ``type`` is the error's class name there."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(message)
        self.type = type


# --- encoding --------------------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    # ASCII output: strings holding lone surrogates (Python allows them) stay encodable.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def encode_request(op: str, args: Mapping[str, Any] | None = None) -> bytes:
    """One request line."""
    return _dumps({"op": op, "args": dict(args or {})})


def decode_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """Parse and validate one request line.

    Returns:
        The operation and its checked arguments (see :func:`check_request`).

    Raises:
        BadRequest: the line is not UTF-8 JSON, not an object, or has other fields.
        UnknownOperation: see :func:`check_request`.
    """
    try:
        request = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the request is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadRequest("the request is nested too deeply") from None
    if not isinstance(request, dict):
        raise BadRequest(
            f'a request is a JSON object {{"op": ..., "args": {{...}}}}, not {json_type(request)}'
        )
    extra = sorted(str(k)[:60] for k in request if k not in ("op", "args"))
    if extra:
        raise BadRequest(f'a request has only "op" and "args"; unexpected: {", ".join(extra)}')
    if "op" not in request:
        raise BadRequest('the request has no "op"')
    op = request["op"]
    return op, check_request(op, request.get("args", {}))


def encode_result(result: Any) -> bytes:
    """A success response line."""
    return _dumps({"ok": True, "result": result})


def encode_error(type: str, message: str) -> bytes:
    """An error response line."""
    return _dumps({"ok": False, "error": {"type": type, "message": message}})


def error_type(exc: BaseException) -> str:
    """The name an error goes by on the wire."""
    return type(exc).__name__


def decode_response(line: bytes) -> Any:
    """The result of a response line.

    Raises:
        RemoteError: the response is an error (with its type and message), or is not
            a response at all.
    """
    try:
        response = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RemoteError("ProtocolError", f"the engine sent a malformed response: {exc}") from None
    if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
        raise RemoteError("ProtocolError", "the engine sent something that is not a response")
    if response["ok"]:
        return response.get("result")
    error = response.get("error")
    if not isinstance(error, dict):
        raise RemoteError("ProtocolError", "the engine sent an error response without an error")
    return _raise(error)


def _raise(error: dict) -> Any:
    kind = str(error.get("type") or "Error")
    message = str(error.get("message") or kind)
    raise {
        "BadRequest": BadRequest,
        "UnknownOperation": UnknownOperation,
        "RequestTooLarge": RequestTooLarge,
    }.get(kind, lambda m: RemoteError(kind, m))(message)
