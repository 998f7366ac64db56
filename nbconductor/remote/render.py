"""Text for people: the CLI's aligned tables and detail views of the plain-JSON results.

Everything here reads the shapes of :mod:`nbconductor.remote.shapes` (and the results
of :mod:`nbconductor.remote.operations`), so a result renders the same whether it
came over the socket or from the file. No third-party dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from nbconductor.engine.duration import format_duration

__all__ = (
    "execution_text",
    "executions_table",
    "history_table",
    "schedule_text",
    "schedules_table",
    "short_time",
    "status_text",
    "table",
)

_CELL_MAX = 60


def _cell(value: Any, limit: int = _CELL_MAX) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    text = " ".join(text.split())  # one line per row, whatever the value holds
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, limit: int = _CELL_MAX) -> str:
    """Rows under a header, each column as wide as its widest cell; numbers aligned
    right. Cells are cut at ``limit`` characters (``--json`` shows them whole)."""
    body = [[_cell(v, limit) for v in row] for row in rows]
    header = [str(c) for c in columns]
    widths = [len(h) for h in header]
    numeric = [True] * len(header)
    for row in body:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    for raw in body:
        for i, text in enumerate(raw):
            if text and not _is_number(text):
                numeric[i] = False

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(row) for row in body)
    return "\n".join(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def short_time(text: str | None) -> str:
    """``2024-05-01 12:00:03`` from an ISO time (UTC), for table cells."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _payload(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- executions ------------------------------------------------------------------------


def executions_table(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no executions"
    rows = [
        (
            x["id"],
            x["workflow"],
            x["status"],
            short_time(x["created_at"]),
            short_time(x["closed_at"]),
            x.get("condition") or "",
        )
        for x in items
    ]
    return table(["ID", "WORKFLOW", "STATUS", "CREATED (UTC)", "CLOSED (UTC)", "CONDITION"], rows)


def execution_text(x: dict[str, Any]) -> str:
    lines = [
        f"execution {x['id']}",
        f"  workflow:   {x['workflow']} (version {x['version']})",
        f"  status:     {x['status']}",
        f"  created:    {x['created_at']}",
        f"  updated:    {x['updated_at']}",
    ]
    if x.get("closed_at"):
        lines.append(f"  closed:     {x['closed_at']}")
    if x.get("condition"):
        lines.append(f"  condition:  {x['condition']}")
    for key, label in (("parent_id", "parent"), ("origin_id", "origin")):
        if x.get(key):
            lines.append(f"  {label + ':':<11} {x[key]}")
    if x.get("tags"):
        lines.append(f"  tags:       {', '.join(x['tags'])}")
    if x.get("waiting_signals"):
        lines.append(f"  waiting:    signal {', '.join(x['waiting_signals'])}")
    progress = x.get("progress") or {}
    if progress.get("fraction") is not None or progress.get("message"):
        fraction = progress.get("fraction")
        shown = f"{fraction:.0%}" if isinstance(fraction, (int, float)) else ""
        lines.append(f"  progress:   {shown} {progress.get('message') or ''}".rstrip())
    for task in progress.get("tasks") or ():
        state = "running" if task.get("running") else "waiting"
        lines.append(f"  task:       {task.get('task')} attempt {task.get('attempt')} ({state})")
    lines.append(f"  input:      {_payload(x['input'])}")
    if x["status"] == "completed" or x.get("result") is not None:
        lines.append(f"  result:     {_payload(x['result'])}")
    error = x.get("error")
    if error:
        if isinstance(error, dict):
            summary = f"{error.get('type', 'Error')}: {error.get('message', '')}".rstrip(": ")
            lines.append(f"  error:      {summary}")
            trace = error.get("traceback")
            if trace:
                lines.append("  traceback:")
                lines.extend("    " + t for t in str(trace).rstrip().splitlines())
        else:
            lines.append(f"  error:      {error}")
    return "\n".join(lines)


def history_table(events: list[dict[str, Any]]) -> str:
    if not events:
        return "no events"
    rows = [
        (
            e["seq"],
            short_time(e["at"]),
            e["kind"],
            e["command"],
            e["name"] or "",
            e["attempt"],
            e["data"] if e["data"] not in ({}, None) else "",
        )
        for e in events
    ]
    return table(["SEQ", "AT (UTC)", "KIND", "CMD", "NAME", "ATTEMPT", "DATA"], rows)


# --- schedules -------------------------------------------------------------------------


def _when(s: dict[str, Any]) -> str:
    if s.get("cron"):
        return f"{s['cron']} ({s['timezone']})"
    if s.get("every"):
        return f"every {format_duration(s['every'])}"
    return ""


def schedules_table(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no schedules"
    rows = [
        (
            s["id"],
            s["workflow"],
            _when(s),
            "paused" if s["paused"] else "active",
            short_time(s["next_fire"]),
            short_time(s["last_nominal"]),
            len(s["open_runs"]),
            s["fired"],
            s["skipped"],
            s.get("waiting") or "",
        )
        for s in items
    ]
    columns = ["ID", "WORKFLOW", "WHEN", "STATE", "NEXT (UTC)", "LAST (UTC)", "OPEN", "FIRED"]
    return table([*columns, "SKIPPED", "WAITING"], rows)


def schedule_text(s: dict[str, Any]) -> str:
    lines = [
        f"schedule {s['id']}",
        f"  workflow:   {s['workflow']}",
        f"  when:       {_when(s)}",
        f"  state:      {'paused' if s['paused'] else 'active'}"
        + (f" ({s['note']})" if s.get("note") else ""),
        f"  next fire:  {s['next_fire'] or '-'}",
        f"  last fire:  {s['last_nominal'] or '-'}",
        f"  policies:   overlap {s['overlap']}, catch-up {s['catchup']}",
        f"  arguments:  {_payload(s['args'])} {_payload(s['kwargs'])}",
        f"  runs:       {s['fired']} fired, {s['skipped']} skipped, {len(s['open_runs'])} open",
    ]
    if s.get("waiting"):
        lines.append(f"  waiting:    {s['waiting']}")
    described = s.get("describe") or {}
    upcoming = described.get("upcoming") or ()
    if upcoming:
        lines.append("  upcoming:")
        lines.extend(f"    {f['nominal']}  ({f['local']})  {f['execution_id']}" for f in upcoming)
    if described.get("explanation"):
        lines.append("  " + str(described["explanation"]).replace("\n", "\n  "))
    return "\n".join(lines)


# --- health ----------------------------------------------------------------------------


def status_text(s: dict[str, Any]) -> str:
    if not s.get("engine"):
        lines = [f"engine:     none ({s['db']})"]
        if s.get("held_by"):
            lines[0] = f"engine:     not answering ({s['db']})"
            lines.append(f"  {s.get('problem')}")
            lines.append(
                "  the process holding the file does not answer on a control socket; "
                "it may be an engine without one, or stuck"
            )
            return "\n".join(lines)
        if s.get("problem"):
            lines.append(f"  {s['problem']}")
            return "\n".join(lines)
        counts = s.get("counts") or {}
        lines.append(f"executions: {_counts(counts)}")
        lines.append(f"open:       {s.get('open_executions', 0)} (resume when an engine starts)")
        lines.append(
            f"timers:     {_n(s.get('pending_timers'))} pending, {_n(s.get('due_timers'))} due"
        )
        lines.append(f"schedules:  {_n(s.get('schedules'))}")
        return "\n".join(lines)
    state = "healthy" if s.get("healthy") else "UNHEALTHY"
    lines = [
        f"engine:     {state}, pid {s['pid']}, up {format_duration(s['uptime_seconds'] or 0)}"
        f" (nbconductor {s['version']})",
        f"history:    {s['db']}",
        f"socket:     {s['socket']}",
        f"executions: {_counts(s.get('counts') or {})}",
        f"open:       {_n(s.get('open_executions'))} (blocked {_n(s.get('blocked'))}, "
        f"waiting for a definition {_n(s.get('waiting_for_definition'))})",
        f"timers:     {_n(s.get('pending_timers'))} pending, {_n(s.get('due_timers'))} due",
        f"tasks:      {_n(s.get('running_tasks'))} running",
        f"schedules:  {_n(s.get('schedules'))}",
    ]
    lines.extend(f"problem:    {p}" for p in s.get("problems") or ())
    return "\n".join(lines)


def _n(value: Any) -> str:
    return "?" if value is None else str(value)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "none"
