"""Text for people: each operation's result as a sentence or a detail view.

Tables are in :mod:`nbconductor.operations.table`. Everything here reads the plain-JSON
results of the operations (:mod:`nbconductor.operations.shapes`), so a result reads the
same whichever way it was run. No third-party dependencies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbconductor.engine.duration import format_duration
from nbconductor.operations.table import when_text

__all__ = (
    "cancel_text",
    "execution_text",
    "export_text",
    "prune_text",
    "schedule_change_text",
    "schedule_text",
    "signal_text",
    "start_text",
    "status_text",
    "terminate_text",
)


def _payload(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- executions ------------------------------------------------------------------------


def execution_text(x: dict[str, Any]) -> str:
    """``show``: one execution, payloads as the JSON the history holds."""
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
            if error.get("details") is not None:  # an ApplicationError's details
                lines.append(f"  details:    {_payload(error['details'])}")
            trace = error.get("traceback")
            if trace:
                lines.append("  traceback:")
                lines.extend("    " + t for t in str(trace).rstrip().splitlines())
        else:
            lines.append(f"  error:      {error}")
    return "\n".join(lines)


# --- what an action did ----------------------------------------------------------------


def signal_text(result: dict[str, Any]) -> str:
    """``signal 'approve' sent to order-17``, or that it waits for the next engine."""
    what = f"signal {result['signal']!r}"
    return _delivery(result, f"{what} sent to {result['id']}", what)


def cancel_text(result: dict[str, Any]) -> str:
    """``cancel requested for order-17``, or that it waits for the next engine."""
    return _delivery(result, f"cancel requested for {result['id']}", "cancel request")


def _delivery(result: dict[str, Any], delivered: str, what: str) -> str:
    if result.get("delivered"):
        return delivered
    return (
        f"{what} recorded for {result['id']}; no engine holds the history, so the next "
        "engine to open it delivers it"
    )


def terminate_text(result: dict[str, Any], reason: str | None = None) -> str:
    """``terminated order-17 (duplicate)``."""
    return f"terminated {result['id']}" + (f" ({reason})" if reason else "")


def start_text(result: dict[str, Any]) -> str:
    """``started order-17 (order)``, or that the engine accepted it but is busy."""
    if result.get("recorded", True):
        return f"started {result['id']} ({result['workflow']})"
    return (
        f"accepted {result['id']} ({result['workflow']}); the engine is busy and has not "
        "recorded the start yet (see `nbconductor status`)"
    )


def schedule_change_text(action: str, result: dict[str, Any]) -> str:
    """What ``schedules create|update|delete|pause|resume|trigger`` did."""
    if action in ("create", "update"):
        return schedule_text(result)
    if action == "delete":
        return f"deleted schedule {result['id']}"
    if action == "pause":
        return f"paused schedule {result['id']}"
    if action == "resume":
        return f"resumed schedule {result['id']}: next {result['next_fire']}"
    if result.get("started"):
        return f"started {result['started']}"
    return f"schedule {result['id']} fired, but its overlap policy started no run now"


def export_text(result: dict[str, Any]) -> str:
    """``export``: where each table's file went and how many rows it holds."""
    lines = [f"exported to {result['directory']}:"]
    for item in result["tables"].values():
        lines.append(f"  {Path(item['path']).name}  {item['rows']} rows")
    return "\n".join(lines)


def prune_text(result: dict[str, Any]) -> str:
    """``prune``: what went (or would go), what stayed, and the file's size."""
    n, events = result["executions"], result["events"]
    verb = "would prune" if result["dry_run"] else "pruned"
    when = result["closed_before"].replace("T", " ")[:16]
    lines = [
        f"{verb} {n} execution{'s' * (n != 1)} ({events} event{'s' * (events != 1)}) "
        f"closed before {when} UTC"
    ]
    if result["kept"]:
        lines.append(
            f"kept {result['kept']} closed before then: a parent, child or later run of "
            "theirs is still open or closed later"
        )
    before, after = result.get("bytes_before"), result.get("bytes_after")
    if before is not None and after is not None and not result["dry_run"]:
        lines.append(f"history file: {_size(before)} -> {_size(after)}")
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if n < 1000 or unit == "MB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def queue_text(queue: dict[str, Any]) -> str:
    """``concurrency 8, rate 60/minute`` (or ``no limits``): a queue's limits; a burst
    above 1 follows the rate (``rate 60/minute, burst 5``)."""
    parts = []
    if queue.get("concurrency") is not None:
        parts.append(f"concurrency {queue['concurrency']}")
    if queue.get("rate"):
        parts.append(f"rate {queue['rate']}")
        if (queue.get("burst") or 1) > 1:
            parts.append(f"burst {queue['burst']}")
    return ", ".join(parts) or "no limits"


# --- schedules -------------------------------------------------------------------------


def schedule_text(s: dict[str, Any]) -> str:
    """``schedules show`` (and what a create or update made): one schedule, its next
    fires and what its policies do."""
    lines = [
        f"schedule {s['id']}",
        f"  workflow:   {s['workflow']}",
        f"  when:       {when_text(s)}",
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
    """``status``: the engine's health, or the file's counts when no engine holds it."""
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
