"""What a command line holds, read the same by ``%conductor`` and the ``nbconductor``
command: times given as "2h" ago or a date (:func:`parse_when`, the one time
expression parser), status lists, JSON arguments, and the options of a schedule."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nbconductor.engine.duration import parse_duration
from nbconductor.engine.schedules.spec import CATCHUP_POLICIES, OVERLAP_POLICIES
from nbconductor.errors import InvalidDuration, NbconductorError
from nbconductor.storage.records import Status

__all__ = (
    "UsageError",
    "add_schedule_options",
    "loose_json",
    "parse_when",
    "read_json_argument",
    "schedule_changes",
    "statuses",
)


class UsageError(NbconductorError, ValueError):
    """A command line is not valid; its ``--help`` says what it takes."""


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
    """Status values from ``--status`` options (repeated or comma-separated, values or
    titles in any case), in the order given, each once.

    Raises:
        UsageError: naming the one that is not a status, and the valid ones.
    """
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


def parse_when(text: str, what: str, *, now: datetime | None = None) -> datetime:
    """A duration ago (``2h``, ``1 day``) or an ISO date/time (local time when it has no
    zone), as an aware datetime in UTC.

    Args:
        text: what was typed.
        what: the option, for the message (``--since``).
        now: the time durations count back from (default: now).

    Raises:
        UsageError: neither form.
    """
    now = now or datetime.now(UTC)
    try:
        return (now - timedelta(seconds=parse_duration(text, what=what))).astimezone(UTC)
    except InvalidDuration:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{what} {text!r}: give a duration ago (30m, 2h, 1 day) or a date/time "
            "(2024-05-01, 2024-05-01T12:00, 2024-05-01T12:00+02:00)"
        ) from None
    return moment.astimezone(UTC)


# --- schedules -------------------------------------------------------------------------


def add_schedule_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``schedules create`` / ``update`` (``%conductor schedule`` too)."""
    add = parser.add_argument
    add("--cron", metavar="EXPR", help="cron expression, quoted: '0 9 * * MON-FRI'")
    add("--every", metavar="DURATION", help="an interval instead of cron: 15m, 1h")
    add("--timezone", metavar="ZONE", help="the cron expression's time zone (UTC)")
    add("--args", metavar="JSON", help="positional arguments, a JSON array")
    add("--kwargs", metavar="JSON", help="keyword arguments, a JSON object")
    add("--jitter", metavar="DURATION", help="random delay per fire, up to this")
    add(
        "--overlap",
        choices=OVERLAP_POLICIES,
        metavar="POLICY",
        help="when a fire finds a run still open: " + ", ".join(OVERLAP_POLICIES),
    )
    add(
        "--catchup",
        choices=CATCHUP_POLICIES,
        metavar="POLICY",
        help="fires missed while no engine ran: " + ", ".join(CATCHUP_POLICIES),
    )
    add("--catchup-window", metavar="DURATION", help="how old a missed fire may be, or 'none'")
    add("--start-at", metavar="ISO", help="no fire before this time")
    add("--end-at", metavar="ISO", help="no fire after this time")
    add("--note", metavar="TEXT", help="a note shown with the schedule")


def schedule_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The options given with :func:`add_schedule_options` (and ``--paused``), as the
    arguments of ``schedules.create`` / ``schedules.update``; those not given are left out.

    Raises:
        UsageError: ``--args`` or ``--kwargs`` is not JSON.
    """
    changes: dict[str, Any] = {}
    for name in ("cron", "every", "timezone", "jitter", "overlap", "catchup", "note"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "paused", None):
        changes["paused"] = True
    if args.args is not None:
        changes["args"] = read_json_argument(args.args, "--args")
    if args.kwargs is not None:
        changes["kwargs"] = read_json_argument(args.kwargs, "--kwargs")
    window = args.catchup_window
    if window is not None:
        changes["catchup_window"] = None if window.strip().lower() == "none" else window
    for name in ("start_at", "end_at"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    return changes
