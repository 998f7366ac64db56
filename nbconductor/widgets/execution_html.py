"""An execution as HTML: header, progress, signals, result or error, log, timeline.

:func:`render` draws an :class:`~nbconductor.widgets.execution_snapshot.ExecutionSnapshot`;
the same HTML is the live view's picture and the static ``text/html`` fallback
(``live=False``: no buttons, no running clocks).
"""

from __future__ import annotations

import json
from datetime import datetime

from nbconductor.storage.records import Status
from nbconductor.widgets import hooks
from nbconductor.widgets.execution_snapshot import ExecutionSnapshot
from nbconductor.widgets.markup import (
    BORDER,
    FONT,
    MONO,
    MUTED,
    badge,
    esc,
    format_duration,
    progress_bar,
    since,
    time_tag,
    tone_color,
    until,
)
from nbconductor.widgets.timeline import Step

__all__ = ("render", "snapshot_text")


def snapshot_text(snapshot: ExecutionSnapshot) -> str:
    """The deterministic ``text/plain``: workflow and status, no id and no time."""
    status = snapshot.status.title if snapshot.status is not None else "Starting"
    return f"<Execution {snapshot.workflow}: {status}>"


def render(snapshot: ExecutionSnapshot, *, live: bool = True) -> str:
    """The execution as HTML.

    Args:
        snapshot: what to show.
        live: draw the timeline as a time-scaled Gantt picture (the live view). The
            static fallback (``live=False``) lists the steps with their durations
            instead: a picture's geometry depends on timing and would make a saved
            notebook's output differ on every run (nbval compares ``text/html``).
    """
    s = snapshot
    parts = [
        f'<div class="nbc-execution" data-testid="nbc-execution" '
        f'data-execution-id="{esc(s.id)}" data-status="{esc(s.badge.tone)}" style="{FONT}">',
        _header(s, live),
    ]
    if s.input is not None:
        parts.append(
            '<div class="nbc-input" data-testid="nbc-input" style="margin-top:2px">'
            f'<span style="{MUTED}">Input</span> '
            f'<code style="{MONO};white-space:pre-wrap">{esc(s.input)}</code></div>'
        )
    parts.append(_progress(s))
    if s.steps or s.hidden:
        parts.append(_gantt(s) if live else _step_list(s))
    if s.result is not None:
        parts.append(
            '<div class="nbc-result" data-testid="nbc-result" style="margin-top:6px">'
            f'<span style="{MUTED}">Result</span> '
            f'<code style="{MONO};white-space:pre-wrap">{esc(s.result)}</code></div>'
        )
    if s.error:
        parts.append(_error(s.error))
    if s.log:
        parts.append(
            '<details class="nbc-log" data-testid="nbc-log" data-nbc-key="log" '
            'style="margin-top:6px"><summary style="cursor:pointer">'
            f"Output ({len(s.log)} lines)</summary>"
            f'<pre data-nbc-scroll="log" style="{MONO};max-height:16em;overflow:auto;margin:4px 0">'
            f"{esc(chr(10).join(s.log))}</pre></details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _link(execution_id: str, text: str | None = None) -> str:
    """A reference to another execution; clicking it in the live view opens its view."""
    return (
        f'<a class="nbc-link" data-nbc-action="open" data-nbc-value="{esc(execution_id)}" '
        f'data-testid="nbc-execution-link" style="cursor:pointer;'
        f'color:var(--jp-content-link-color,#1976d2)">{esc(text or execution_id)}</a>'
    )


def _header(s: ExecutionSnapshot, live: bool) -> str:
    b = s.badge
    detail = ""
    if b.detail:
        detail = f' <span class="nbc-badge-detail" style="{MUTED}">{esc(b.detail)}</span>'
    if b.until is not None:
        word = "until" if b.tone == "sleeping" else "at"
        # A countdown only where the browser keeps it counting: in a saved output
        # "in 59 min 56 s" would change from run to run, the due time does not.
        countdown = f" ({until(b.until, s.now)})" if live else ""
        detail += (
            f' <span class="nbc-badge-detail" style="{MUTED}">{word} {time_tag(b.until)}'
            f"{countdown}</span>"
        )
    facts = []
    if s.version:
        facts.append(f'version <code style="{MONO}">{esc(s.version[:12])}</code>')
    if s.started is not None:
        facts.append(f"started {time_tag(s.started)}")
        if s.closed is not None:
            facts.append(f"took {format_duration((s.closed - s.started).total_seconds())}")
        else:
            facts.append(f"running for {since(s.started, s.now)}")
    if s.parent_id:
        facts.append(f"child of {_link(s.parent_id)}")
    if s.origin_id:
        facts.append(f"from {_link(s.origin_id)}")
    if s.next_id:
        facts.append(f"continued as {_link(s.next_id)}")
    if s.tags:
        facts.append(" ".join(f'<code style="{MONO}">{esc(t)}</code>' for t in s.tags))
    return (
        '<div class="nbc-header" style="display:flex;flex-wrap:wrap;gap:4px 10px;'
        'align-items:baseline">'
        f'<strong class="nbc-workflow" data-testid="nbc-workflow">{esc(s.workflow)}</strong>'
        f'<code class="nbc-id" data-testid="nbc-execution-id" style="{MONO}">{esc(s.id)}</code>'
        f"<span>{badge(b.label, b.tone, title=b.detail)}{detail}</span></div>"
        f'<div class="nbc-facts" style="{MUTED};margin-top:2px">{" · ".join(facts)}</div>'
    )


def _progress(s: ExecutionSnapshot) -> str:
    if s.status is None:
        return ""
    tone = "completed" if s.status is Status.COMPLETED else s.badge.tone
    # The percentage only when the workflow reports it, and no "3/3 tasks" either: the
    # tasks scheduled so far say nothing of those still to come.
    label = f"{round(s.fraction * 100)}%" if s.explicit_progress else ""
    if s.tasks_total:
        done = f"{s.tasks_done} task{'s' * (s.tasks_done != 1)} done"
        if s.tasks_total > s.tasks_done:
            done += f", {s.tasks_total - s.tasks_done} open"
        label += f"{' · ' if label else ''}{done}"
    message = ""
    if s.message:
        dot = " · " if label else ""
        message = (
            f'{dot}<span class="nbc-message" data-testid="nbc-message">{esc(s.message)}</span>'
        )
    return (
        '<div style="display:flex;align-items:center;gap:8px;margin-top:6px">'
        f'<div style="flex:1">{progress_bar(s.fraction, tone=tone)}</div>'
        f'<span style="{MUTED};white-space:nowrap">{esc(label)}{message}</span></div>'
    )


def _error(error: dict) -> str:
    kind = error.get("type", "Error")
    message = error.get("message", "")
    trace = error.get("traceback") or ""
    body = (
        '<div class="nbc-error" data-testid="nbc-error" style="margin-top:6px;'
        "padding:4px 8px;border-left:3px solid var(--jp-error-color1,#d32f2f);"
        'background:var(--jp-layout-color2,#f5f5f5)">'
        f"<strong>{esc(kind)}</strong>{': ' + esc(message) if message else ''}"
    )
    if error.get("details") is not None:  # an ApplicationError's details, as stored
        details = json.dumps(error["details"], ensure_ascii=False)
        body += f'<div style="{MONO}">details: {esc(details)}</div>'
    if trace:
        body += (
            '<details data-nbc-key="traceback"><summary style="cursor:pointer">Traceback'
            f'</summary><pre style="{MONO};white-space:pre-wrap;margin:4px 0">'
            f"{esc(hooks.holder.traceback_mapper(trace))}</pre></details>"
        )
    return body + "</div>"


# ---------------------------------------------------------------- timeline


# No "▶" for tasks: it read as an expander that did nothing (attempts have their own).
_KIND_ICON = {"task": "⚙", "timer": "◷", "signal": "✉", "child": "↳", "update": "✎", "cancel": "✖"}
_STATE_TONE = {
    "scheduled": "running",
    "retrying": "retrying",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "pending": "sleeping",
    "fired": "sleeping",
    "open": "running",
    "received": "waiting",
    "terminated": "terminated",
    "timed_out": "timed_out",
    "continued_as_new": "continued_as_new",
}


def _running_by_command(s: ExecutionSnapshot) -> dict[str, dict]:
    return {f"task:{t['command']}": t for t in s.running}


def _step_label(step: Step, running: dict | None, s: ExecutionSnapshot, live: bool) -> str:
    icon = _KIND_ICON.get(step.kind, "•")
    name = _link(step.link, step.name) if step.kind == "child" and step.link else esc(step.name)
    if step.kind == "timer" and step.waits_for:
        return _signal_timeout_label(step, icon, s, live)
    bits = [f'<span style="{MUTED}">{icon}</span> {name}']
    if step.kind == "task" and len(step.attempts) + (1 if running else 0) > 1:
        tries = len(step.attempts) + (1 if running and running.get("running") else 0)
        bits.append(f'<span style="{MUTED}">×{tries}</span>')
    state = step.state
    if running is not None and running.get("running"):
        state = "running"
    end = step.end
    if step.point:
        duration = ""
    elif end is not None:
        duration = format_duration((end - step.start).total_seconds())
    elif step.kind == "timer" and step.due is not None:
        duration = until(step.due, s.now) if live else f"until {time_tag(step.due)}"
    else:
        duration = since(step.start, s.now) if s.closed is None else ""
    bits.append(f'<span class="nbc-step-state" style="{MUTED}">{esc(state)}</span>')
    if duration:
        bits.append(f'<span style="{MUTED}">{duration}</span>')
    if step.detail:
        bits.append(f'<span style="{MUTED}" title="{esc(step.detail)}">{esc(step.detail)}</span>')
    if running is not None and running.get("progress") is not None:
        bits.append(
            f'<span style="display:inline-block;width:80px;vertical-align:middle">'
            f"{progress_bar(running['progress'], testid='nbc-task-progress', height=6)}</span>"
        )
    if running is not None and running.get("details") is not None:
        details = str(running["details"])
        bits.append(f'<span style="{MUTED}">{esc(details[:80])}</span>')
    elif step.heartbeat and step.end is None:  # recorded: a restart since, no new one yet
        bits.append(
            f'<span data-testid="nbc-recorded-heartbeat" style="{MUTED}">last heartbeat: '
            f"{esc(step.heartbeat[:80])}</span>"
        )
    return " ".join(bits)


def _signal_timeout_label(step: Step, icon: str, s: ExecutionSnapshot, live: bool) -> str:
    """A signal's timeout says what it waits for: "waiting for signal approve, gives
    up in 1 d 23 h", not "sleep pending"."""
    signal = esc(step.waits_for)
    head = f'<span style="{MUTED}">{icon}</span>'
    if step.open:
        if step.due is None:
            when = ""
        elif live:
            when = f", gives up {until(step.due, s.now)}"
        else:
            when = f", gives up at {time_tag(step.due)}"
        return f"{head} waiting for signal {signal}{when}"
    outcome = "received" if step.state == "cancelled" else "gave up"
    if step.state == "fired":
        outcome = "timed out"
    return (
        f"{head} timeout of signal {signal} "
        f'<span class="nbc-step-state" style="{MUTED}">{outcome}</span>'
    )


def _attempts(step: Step, running: dict | None) -> str:
    """A task's attempts, collapsed under "N attempts", when there was more than one or
    one failed: when each ran, how long, how it ended, when the next one is due."""
    if step.kind != "task":
        return ""
    live = running is not None and running.get("running")
    if (
        len(step.attempts) + (1 if live else 0) < 2
        and all(a.ok for a in step.attempts)
        and not step.ignored
    ):
        return ""
    rows = []
    for attempt in step.attempts:
        took = format_duration((attempt.end - attempt.start).total_seconds())
        if attempt.ok:
            outcome = "succeeded"
        else:
            outcome = f"failed: {esc(attempt.error)}"
            if attempt.retry_at is not None:
                outcome += f"; next attempt at {time_tag(attempt.retry_at)}"
        rows.append(
            f'<li data-testid="nbc-attempt" data-ok="{str(attempt.ok).lower()}">attempt '
            f"{attempt.number}: started {time_tag(attempt.start)}, took {took}, {outcome}</li>"
        )
    if live:
        details = running.get("details")
        heartbeat = f", last heartbeat: {esc(str(details)[:200])}" if details is not None else ""
        rows.append(
            f'<li data-testid="nbc-attempt" data-ok="running">attempt {len(step.attempts) + 1}: '
            f"running{heartbeat}</li>"
        )
    rows += [
        f'<li data-testid="nbc-ignored-result" style="{MUTED}">{esc(line)}</li>'
        for line in step.ignored
    ]
    count = len(step.attempts) + (1 if live else 0)
    return (
        f'<details class="nbc-attempts" data-testid="nbc-attempts" '
        f'data-nbc-key="attempts:{esc(step.key)}" style="margin:0 0 2px 1.5em;{MUTED}">'
        f'<summary style="cursor:pointer">{count} attempts</summary>'
        f'<ul style="margin:2px 0 2px 1.2em;padding:0">{"".join(rows)}</ul></details>'
    )


def _hidden_line(hidden: dict[str, int]) -> str:
    total = sum(hidden.values())
    what = ", ".join(f"{n} {k}" for k, n in sorted(hidden.items()))
    return f'<div style="{MUTED};padding:2px 0">{total} earlier steps not shown ({esc(what)})</div>'


def _step_list(s: ExecutionSnapshot) -> str:
    """The static timeline: one line per step, no time geometry."""
    running = _running_by_command(s)
    rows = [_hidden_line(s.hidden)] if s.hidden else []
    for step in s.steps:
        rows.append(
            f'<li class="nbc-step" data-testid="nbc-step" data-kind="{esc(step.kind)}" '
            f'data-state="{esc(step.state)}" style="list-style:none;padding:1px 0">'
            f"{_step_label(step, running.get(step.key), s, live=False)}"
            f"{_attempts(step, running.get(step.key))}</li>"
        )
    return (
        f'<ul class="nbc-timeline" data-testid="nbc-timeline" style="margin:6px 0 0 0;'
        f'padding:4px 0;border-top:1px solid {BORDER}">{"".join(rows)}</ul>'
    )


def _gantt(s: ExecutionSnapshot) -> str:
    """The live timeline: each step a bar on a shared time axis (attempts as segments)."""
    running = _running_by_command(s)
    t0 = s.started or (s.steps[0].start if s.steps else s.now)
    t1 = s.closed or s.now
    span = max((t1 - t0).total_seconds(), 1e-3)

    def x(at: datetime) -> float:
        return max(0.0, min(100.0, (at - t0).total_seconds() / span * 100))

    rows = [_hidden_line(s.hidden)] if s.hidden else []
    for step in s.steps:
        live_task = running.get(step.key)
        bars = []
        if step.point:
            bars.append(_mark(x(step.start), _STATE_TONE.get(step.state, "pending"), step.name))
        else:
            bars.extend(_step_bars(step, live_task, t1, x))
        rows.append(
            f'<div class="nbc-step" data-testid="nbc-step" data-kind="{esc(step.kind)}" '
            f'data-state="{esc(step.state)}" style="display:flex;align-items:center;gap:8px;'
            'min-height:18px">'
            '<div style="flex:0 0 45%;overflow:hidden;white-space:nowrap;text-overflow:ellipsis">'
            f"{_step_label(step, live_task, s, live=True)}</div>"
            f'<div class="nbc-track" style="flex:1;position:relative;height:10px;'
            f'background:var(--jp-layout-color2,#f3f3f3);border-radius:2px">{"".join(bars)}'
            "</div></div>"
        )
        rows.append(_attempts(step, live_task))
    if s.steps:
        rows.append(_axis(span))
    return (
        '<div class="nbc-timeline nbc-gantt" data-testid="nbc-timeline" '
        f'style="margin-top:6px;padding-top:4px;border-top:1px solid {BORDER}">'
        f"{''.join(rows)}</div>"
    )


def _axis(span: float) -> str:
    """The time axis under the bars: the execution's start, the middle and the end, as
    times since the start (the bars' track, 55 % of the width, is what it measures)."""
    ticks = "".join(
        f'<span style="position:absolute;left:{pos}%;transform:translateX(-{pos}%);'
        'white-space:nowrap">'
        f"{'0' if pos == 0 else format_duration(span * pos / 100)}</span>"
        for pos in (0, 50, 100)
    )
    return (
        '<div class="nbc-axis" data-testid="nbc-axis" style="display:flex;gap:8px;'
        f'min-height:14px;{MUTED};font-size:smaller">'
        '<div style="flex:0 0 45%;text-align:right">since the start</div>'
        f'<div style="flex:1;position:relative;border-top:1px solid {BORDER}">{ticks}</div></div>'
    )


def _step_bars(step: Step, live_task: dict | None, t1: datetime, x) -> list[str]:
    """Finished attempts as solid segments, then what is still going on, striped."""
    bars = []
    cursor = step.start
    for attempt in step.attempts:
        title = f"attempt {attempt.number}: {'ok' if attempt.ok else attempt.error}"
        tone = "completed" if attempt.ok else "failed"
        bars.append(_bar(x(max(attempt.start, cursor)), x(attempt.end), tone, title))
        cursor = attempt.end
    if step.end is None:
        if step.kind != "task":
            tone = _STATE_TONE.get(step.state, "pending")
        elif live_task is not None and live_task.get("running"):
            tone = "running"
        else:
            tone = "pending"  # queued, or waiting to retry
        title = f"waiting for signal {step.waits_for}" if step.waits_for else step.state
        bars.append(_bar(x(cursor), x(t1), tone, title, open=True))
    elif not step.attempts:
        bars.append(
            _bar(x(step.start), x(step.end), _STATE_TONE.get(step.state, "pending"), step.state)
        )
    return bars


def _bar(left: float, right: float, tone: str, title: str, *, open: bool = False) -> str:
    width = max(right - left, 0.6)
    left = min(left, 100 - width)
    stripes = " nbc-bar-open" if open else ""
    return (
        f'<div class="nbc-bar{stripes}" title="{esc(title)}" style="position:absolute;'
        f"top:1px;bottom:1px;left:{left:.2f}%;width:{width:.2f}%;"
        f'border-radius:2px;background-color:{tone_color(tone)}"></div>'
    )


def _mark(left: float, tone: str, title: str) -> str:
    return (
        f'<div class="nbc-mark" title="{esc(title)}" style="position:absolute;top:0;bottom:0;'
        f'left:calc({min(left, 99.0):.2f}% - 1px);width:3px;background:{tone_color(tone)}">'
        "</div>"
    )
