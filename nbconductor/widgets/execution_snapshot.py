"""An execution as a view shows it: its state read from the engine at one moment.

:class:`ExecutionReader` reads one execution (its record, its history incrementally,
its live progress) into an immutable :class:`ExecutionSnapshot`;
:mod:`nbconductor.widgets.execution_html` draws a snapshot, and the widget
(:mod:`nbconductor.widgets.execution_view`) wires both to the engine's change notices
and to its buttons.
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from nbconductor.engine import payload
from nbconductor.errors import ExecutionNotFound
from nbconductor.storage.records import ExecutionRecord, Status
from nbconductor.widgets import hooks
from nbconductor.widgets.status import Badge, badge_for
from nbconductor.widgets.timeline import Step, Timeline

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = ("MAX_LOG_LINES", "MAX_STEPS", "ExecutionReader", "ExecutionSnapshot")

#: Timeline rows drawn; older steps are summed up in one line (a view of an execution
#: with thousands of tasks must stay small enough to resend ten times a second).
MAX_STEPS = 60
#: Log lines shown (the most recent ones).
MAX_LOG_LINES = 200
_MAX_RESULT = 2000

# Bounded reprs: a result holding a million items must not cost a million reprs.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _MAX_RESULT
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 100
_REPR.maxlevel = 4


@dataclass(frozen=True)
class ExecutionSnapshot:
    """Everything a view shows of one execution at one moment."""

    id: str
    workflow: str
    status: Status | None  # None: the start is not recorded yet
    badge: Badge
    now: datetime
    version: str = ""
    started: datetime | None = None
    closed: datetime | None = None
    fraction: float | None = None
    explicit_progress: bool = False  # reported by the workflow's progress()
    message: str = ""
    tasks_done: int = 0
    tasks_total: int = 0
    running: tuple[dict, ...] = ()  # engine.progress_of(id)["tasks"]
    steps: tuple[Step, ...] = ()
    hidden: dict[str, int] = field(default_factory=dict)  # steps left out, by kind and state
    waiting: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()  # declared ones, then any other awaited now (stable order)
    result: str | None = None
    input: str | None = None  # the call's arguments, as "(1, 'a', key=2)"
    error: dict = field(default_factory=dict)
    log: tuple[str, ...] = ()
    parent_id: str | None = None
    origin_id: str | None = None
    next_id: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def closed_status(self) -> bool:
        return self.status is not None and self.status.closed


class ExecutionReader:
    """Reads one execution's state from an engine, its history incrementally.

    Not thread-safe: one thread (the view's refresher) calls :meth:`read`.
    """

    def __init__(self, engine: Engine, execution_id: str, workflow: str | None = None) -> None:
        self.engine = engine
        self.id = execution_id
        self.workflow = workflow or "?"
        self.timeline = Timeline()

    def read(self) -> ExecutionSnapshot:
        """The execution as it is now (one record read, new events only)."""
        engine = self.engine
        now = engine.clock.now()
        try:
            record = engine.describe(self.id)
        except ExecutionNotFound:
            # Accepted by start() but not recorded yet: the next commit brings it.
            return ExecutionSnapshot(self.id, self.workflow, None, badge_for(None), now)
        self.workflow = record.workflow
        self.timeline.apply(engine.store.load_history(self.id, after_seq=self.timeline.last_seq))
        if record.status.closed:
            progress = {"fraction": None, "message": None, "tasks": []}
            waiting: list[str] = []
        else:
            progress = engine.progress_of(self.id)
            waiting = engine.waiting_signals(self.id)
        tasks = progress["tasks"]
        badge = badge_for(
            record.status,
            condition=record.condition,
            waiting_signals=waiting,
            tasks=tasks,
            open_timers=self.timeline.open_timers(),
        )
        fraction, message = _overall_progress(record, progress, self.timeline)
        steps, hidden = _visible_steps(self.timeline)
        _name_signal_timeouts(steps, waiting)
        error = _error_of(record)
        return ExecutionSnapshot(
            id=self.id,
            workflow=record.workflow,
            status=record.status,
            badge=badge,
            now=now,
            version=record.version,
            started=record.created_at,
            closed=record.closed_at,
            fraction=fraction,
            explicit_progress=progress.get("fraction") is not None,
            message=message,
            tasks_done=self.timeline.tasks_done,
            tasks_total=self.timeline.tasks_total,
            running=tuple(tasks),
            steps=steps,
            hidden=hidden,
            waiting=tuple(waiting),
            signals=tuple(dict.fromkeys([*self._declared(record), *waiting])),
            result=_result_text(record),
            input=_input_text(record),
            error=error,
            # This kernel's capture, else (after a restart) what tasks printed, recorded.
            log=tuple(_log_lines(self.id) or list(self.timeline.output)[-MAX_LOG_LINES:]),
            parent_id=record.parent_id,
            origin_id=record.origin_id,
            next_id=_next_id(record),
            tags=tuple(record.tags),
        )

    def _declared(self, record: ExecutionRecord) -> tuple[str, ...]:
        if record.status.closed:
            return ()
        definition = self.engine.registry.find("workflow", record.workflow)
        return tuple(getattr(definition, "signals", ()) or ())


def _overall_progress(
    record: ExecutionRecord, progress: dict, timeline: Timeline
) -> tuple[float | None, str]:
    """Explicit ``progress()`` when the workflow reports it; else full once completed and
    unknown before (the tasks scheduled so far say nothing of those still to come)."""
    message = progress.get("message") or ""
    if record.status is Status.COMPLETED:
        return 1.0, message
    fraction = progress.get("fraction")
    if fraction is not None:
        return fraction, message
    if not message:
        running = [t for t in progress.get("tasks", ()) if t.get("running")]
        if running:
            names = ", ".join(dict.fromkeys(t["task"] for t in running))
            message = f"running {names}"
    return None, message


def _name_signal_timeouts(steps: tuple[Step, ...], waiting: list[str]) -> None:
    """The one open timer of an execution waiting for signals is their timeout.

    The history does not say why a timer started; ``nc.signal(name, timeout=...)``
    starts one while it waits, and a workflow rarely also sleeps meanwhile.
    """
    timers = [s for s in steps if s.kind == "timer" and s.open]
    if waiting and len(timers) == 1:
        timers[0].waits_for = ", ".join(waiting)


def _visible_steps(timeline: Timeline) -> tuple[tuple[Step, ...], dict[str, int]]:
    """Copies of the steps to draw (the timeline goes on changing its own) and the
    counts of those left out."""
    steps = list(timeline.steps.values())
    if len(steps) <= MAX_STEPS:
        return tuple(replace(s, attempts=list(s.attempts)) for s in steps), {}
    # Open steps first (the latest ones, for a gather of 1,000 tasks), then the most
    # recent closed ones.
    keep = {s.key for s in steps if s.open}
    if len(keep) > MAX_STEPS:
        keep = set([s.key for s in steps if s.open][-MAX_STEPS:])
    for step in reversed(steps):
        if len(keep) >= MAX_STEPS:
            break
        keep.add(step.key)
    hidden: dict[str, int] = {}
    for step in steps:
        if step.key not in keep:
            label = f"{step.kind} {step.state}"
            hidden[label] = hidden.get(label, 0) + 1
    return tuple(replace(s, attempts=list(s.attempts)) for s in steps if s.key in keep), hidden


def _result_text(record: ExecutionRecord) -> str | None:
    if record.status is not Status.COMPLETED:
        return None
    try:
        value = payload.decode_value(record.result)
    except Exception:  # an opted-in pickle or a type this process cannot import
        return record.result
    text = _REPR.repr(value)
    return text if len(text) <= _MAX_RESULT else text[: _MAX_RESULT - 1] + "…"


def _input_text(record: ExecutionRecord) -> str | None:
    try:
        value = payload.decode_value(record.input)
    except Exception:  # an opted-in pickle or a type this process cannot import
        return record.input
    if not isinstance(value, dict):
        return None
    parts = [_REPR.repr(a) for a in value.get("args", ())]
    parts += [f"{k}={_REPR.repr(v)}" for k, v in dict(value.get("kwargs", {})).items()]
    text = f"({', '.join(parts)})"
    return text if len(text) <= _MAX_RESULT else text[: _MAX_RESULT - 1] + "…"


def _error_of(record: ExecutionRecord) -> dict:
    if not record.error or record.status is Status.CONTINUED_AS_NEW:
        return {}
    try:
        value = json.loads(record.error)
    except ValueError:
        return {"message": record.error}
    return value if isinstance(value, dict) else {"message": str(value)}


def _next_id(record: ExecutionRecord) -> str | None:
    if record.status is Status.CONTINUED_AS_NEW and record.result:
        try:
            return json.loads(record.result).get("next_id")
        except ValueError:
            return None
    return None


def _log_lines(execution_id: str) -> list[str]:
    try:
        lines = list(hooks.holder.log_source(execution_id) or ())
    except Exception as exc:  # a broken hook must not break the view
        return [f"(the log could not be read: {type(exc).__name__}: {exc})"]
    return [str(line) for line in lines[-MAX_LOG_LINES:]]
