"""What the ``nbconductor`` command accepts on its command line: JSON arguments,
status lists, and times given as "2h ago" or a date."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nbconductor.engine.duration import parse_duration
from nbconductor.errors import InvalidDuration, NbconductorError
from nbconductor.storage.records import Status

__all__ = ("UsageError", "loose_json", "parse_when", "read_json_argument", "statuses")


class UsageError(NbconductorError, ValueError):
    """The command line is not valid; see ``nbconductor COMMAND --help``."""


def read_json_argument(text: str, what: str) -> Any:
    """A JSON value from the command line, ``@FILE`` or ``@-`` (stdin).

    Raises:
        UsageError: the file cannot be read, or the text is not JSON (with the position).
    """
    source = what
    if text.startswith("@"):
        name = text[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{what}: cannot read {name}: {exc}") from None
        source = f"{what} (from {'stdin' if name == '-' else name})"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (quote a string as JSON: '\"text\"')" if exc.pos == 0 else ""
        raise UsageError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
            f"(character {exc.pos}){hint}"
        ) from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply") from None


def loose_json(text: str) -> Any:
    """A JSON value, or the text itself when it is not JSON (``A-17`` is a string)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


def statuses(values: list[str]) -> list[str]:
    valid = {s.value: s.value for s in Status}
    valid.update({s.title.lower(): s.value for s in Status})
    out = []
    for value in values:
        for item in value.split(","):
            key = item.strip().lower()
            if key not in valid:
                raise UsageError(
                    f"--status {item!r}: use one of {', '.join(s.value for s in Status)}"
                )
            out.append(valid[key])
    return sorted(set(out), key=out.index)


def parse_when(text: str, what: str, *, now: datetime | None = None) -> str:
    """A duration ago (``2h``, ``1 day``) or an ISO date/time (local time when it has no
    zone), as ISO 8601 in UTC.

    Raises:
        UsageError: neither form.
    """
    now = now or datetime.now(timezone.utc)
    try:
        return (now - timedelta(seconds=parse_duration(text, what=what))).isoformat()
    except InvalidDuration:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{what} {text!r}: give a duration ago (30m, 2h, 1 day) or a date/time "
            "(2024-05-01, 2024-05-01T12:00, 2024-05-01T12:00+02:00)"
        ) from None
    return moment.astimezone(timezone.utc).isoformat()
