"""Describing exceptions as plain, storable dicts (type, message, traceback)."""

from __future__ import annotations

import traceback as tb

from nbconductor.errors import ApplicationError


def describe_exception(exc: BaseException) -> dict:
    """A JSON-friendly description of ``exc``: what the history and the UI show."""
    frames = tb.format_exception(type(exc), exc, exc.__traceback__)
    info = {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": str(exc),
        "traceback": "".join(frames),
        "mro": [c.__name__ for c in type(exc).__mro__[1:] if c not in (object, BaseException)],
    }
    if isinstance(exc, ApplicationError):
        info["non_retryable"] = exc.non_retryable
        if exc.details is not None:
            info["details"] = repr(exc.details)
    if not isinstance(exc, Exception):
        # KeyboardInterrupt, SystemExit & co. are not errors a retry can fix.
        info["non_retryable"] = True
        info["message"] = (
            f"{type(exc).__name__} raised inside a task ({exc}); it was recorded as a "
            "failure and not retried"
        )
    return info


def summary(error: dict) -> str:
    """``'ValueError: bad input'``."""
    message = error.get("message", "")
    return f"{error.get('type', 'Error')}: {message}" if message else error.get("type", "Error")
