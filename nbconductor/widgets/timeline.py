"""An execution's steps (tasks, timers, signals, children) built from its history.

:class:`Timeline` takes events in seq order and may be fed incrementally
(``store.load_history(id, after_seq=timeline.last_seq)``), so a view of a long-running
execution reads each event once.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from nbconductor.engine import payload
from nbconductor.engine.failure import summary
from nbconductor.storage.records import ENDING_EVENTS, EventKind, EventRecord

__all__ = ("MAX_OUTPUT_LINES", "AttemptSpan", "Step", "Timeline")

#: Recorded output lines a timeline keeps (the most recent ones).
MAX_OUTPUT_LINES = 1000


@dataclass
class AttemptSpan:
    """One finished attempt of a task: when it ran and how it ended."""

    number: int
    start: datetime
    end: datetime
    ok: bool
    error: str = ""
    retry_at: datetime | None = None


@dataclass
class Step:
    """One row of the timeline.

    Attributes:
        key: unique within the execution (``task:3``, ``timer:4``, ``signal:12``).
        kind: ``task``, ``timer``, ``signal``, ``child``, ``update`` or ``cancel``.
        state: ``scheduled``, ``retrying``, ``completed``, ``failed``, ``cancelled``
            (tasks); ``pending``, ``fired``, ``cancelled`` (timers); ``open``,
            ``completed``, ``failed``, ... (children); ``received`` (point events).
        due: a timer's fire time, or when a failed task retries.
        link: the execution id a child step points to.
        waits_for: for a timer that is a signal's timeout, the signal's name (the
            history does not say why a timer started: known when the signal cancelled
            it, or while the execution waits for that signal with this timer open).
        heartbeat: a task's last recorded heartbeat details, as text ("" for none).
        ignored: a task's results that came from abandoned attempts, one line each.
    """

    key: str
    kind: str
    name: str
    start: datetime
    end: datetime | None = None
    state: str = "scheduled"
    attempts: list[AttemptSpan] = field(default_factory=list)
    detail: str = ""
    due: datetime | None = None
    link: str | None = None
    waits_for: str = ""
    heartbeat: str = ""
    ignored: list[str] = field(default_factory=list)

    @property
    def point(self) -> bool:
        """A step that happens at one instant (a signal, an update, a cancel request)."""
        return self.kind in ("signal", "update", "cancel")

    @property
    def open(self) -> bool:
        return self.end is None and not self.point


class Timeline:
    """The steps of one execution, in the order they began."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.last_seq = 0
        self.started: datetime | None = None
        self.closed: datetime | None = None
        self._signal: tuple[int, str] = (0, "")  # the last SignalReceived: seq, name
        # What task attempts printed, as recorded (TaskHeartbeat and attempt outcomes).
        self.output: collections.deque[str] = collections.deque(maxlen=MAX_OUTPUT_LINES)

    # ------------------------------------------------------------------ reading

    def apply(self, events: Iterable[EventRecord]) -> bool:
        """Take new events (seq > last_seq, in order); returns whether any were new."""
        changed = False
        for event in events:
            if event.seq <= self.last_seq:
                continue  # a re-read overlapping what we have
            self.last_seq = event.seq
            changed = True
            self._apply(event)
        return changed

    def _apply(self, event: EventRecord) -> None:
        kind = event.kind
        if kind is EventKind.EXECUTION_STARTED:
            self.started = event.at
        elif kind in ENDING_EVENTS:
            self.closed = event.at
            self._close_open(event.at)
        elif kind is EventKind.TASK_SCHEDULED:
            key = f"task:{event.command}"
            self.steps[key] = Step(key, "task", event.name or "?", event.at)
        elif kind in (EventKind.TASK_COMPLETED, EventKind.TASK_FAILED):
            self._task_outcome(event)
        elif kind is EventKind.TASK_HEARTBEAT:
            data = payload.read_data(event.data)
            self.output.extend(str(line) for line in data.get("output") or ())
            step = self.steps.get(f"task:{event.command}")
            if step is not None and data.get("details") is not None:
                step.heartbeat = _value_text(data["details"])
        elif kind is EventKind.TASK_RESULT_IGNORED:
            step = self.steps.get(f"task:{event.command}")
            if step is not None:
                data = payload.read_data(event.data)
                step.ignored.append(
                    f"attempt {event.attempt}: its {data.get('outcome', 'result')} result "
                    f"came after {data.get('reason', 'it was abandoned')}, and was ignored"
                )
        elif kind is EventKind.TASK_CANCEL_REQUESTED:
            step = self.steps.get(f"task:{event.command}")
            if step is not None and step.end is None:
                step.state, step.end, step.due = "cancelled", event.at, None
        elif kind is EventKind.TIMER_STARTED:
            data = payload.read_data(event.data)
            key = f"timer:{event.command}"
            due = _parse(data.get("due"))
            self.steps[key] = Step(key, "timer", "sleep", event.at, state="pending", due=due)
        elif kind in (EventKind.TIMER_FIRED, EventKind.TIMER_CANCELLED):
            step = self.steps.get(f"timer:{event.command}")
            if step is not None:
                step.end = event.at
                step.state = "fired" if kind is EventKind.TIMER_FIRED else "cancelled"
                seq, name = self._signal
                if kind is EventKind.TIMER_CANCELLED and seq == event.seq - 1:
                    step.waits_for = name  # the signal came first: this was its timeout
        elif kind is EventKind.SIGNAL_RECEIVED:
            key = f"signal:{event.seq}"
            self._signal = (event.seq, event.name or "?")
            detail = _preview(payload.read_data(event.data).get("payload"))
            self.steps[key] = Step(key, "signal", event.name or "?", event.at, state="received")
            self.steps[key].detail = detail
        elif kind is EventKind.UPDATE_ACCEPTED:
            key = f"update:{event.seq}"
            self.steps[key] = Step(key, "update", event.name or "?", event.at, state="received")
        elif kind is EventKind.CANCEL_REQUESTED:
            key = f"cancel:{event.seq}"
            self.steps[key] = Step(key, "cancel", "cancel requested", event.at, state="received")
        elif kind is EventKind.CHILD_STARTED:
            data = payload.read_data(event.data)
            key = f"child:{event.command}"
            child = data.get("child_id")
            self.steps[key] = Step(key, "child", event.name or "?", event.at, state="open")
            self.steps[key].link = child
        elif kind is EventKind.CHILD_CLOSED:
            step = self.steps.get(f"child:{event.command}")
            if step is not None:
                data = payload.read_data(event.data)
                step.end = event.at
                step.state = data.get("status", "closed")
                if data.get("error"):
                    step.detail = _error_text(data["error"])

    def _task_outcome(self, event: EventRecord) -> None:
        step = self.steps.get(f"task:{event.command}")
        if step is None:
            return
        data = payload.read_data(event.data)
        self.output.extend(str(line) for line in data.get("output") or ())
        ok = event.kind is EventKind.TASK_COMPLETED
        previous = step.attempts[-1].end if step.attempts else step.start
        started = _parse(data.get("started_at")) or previous
        error = "" if ok else _error_text(data.get("error") or {})
        retry_at = None if ok or data.get("final") else _parse(data.get("retry_at"))
        number = event.attempt or len(step.attempts) + 1
        step.attempts.append(AttemptSpan(number, started, event.at, ok, error, retry_at))
        if ok:
            # An earlier attempt's error is history now, not the step's outcome.
            step.state, step.end, step.due, step.detail = "completed", event.at, None, ""
        elif retry_at is not None:
            step.state, step.due, step.detail = "retrying", retry_at, error
        else:
            step.state, step.end, step.due, step.detail = "failed", event.at, None, error

    def _close_open(self, at: datetime) -> None:
        for step in self.steps.values():
            if step.end is None and not step.point:
                step.end = at
                if step.kind in ("task", "timer"):  # a child keeps its own state
                    step.state = "cancelled"

    # ------------------------------------------------------------------ summaries

    @property
    def tasks_total(self) -> int:
        return sum(1 for s in self.steps.values() if s.kind == "task")

    @property
    def tasks_done(self) -> int:
        return sum(
            1
            for s in self.steps.values()
            if s.kind == "task" and s.state in ("completed", "failed", "cancelled")
        )

    def open_timers(self) -> list[datetime]:
        """Due times of the timers that have neither fired nor been cancelled."""
        return [s.due for s in self.steps.values() if s.kind == "timer" and s.open and s.due]

    def counts(self) -> dict[str, int]:
        """Steps by kind and state, e.g. ``{"task completed": 3, "timer fired": 1}``."""
        out: dict[str, int] = {}
        for step in self.steps.values():
            key = f"{step.kind} {step.state}"
            out[key] = out.get(key, 0) + 1
        return out


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _error_text(error: dict) -> str:
    """``'ApplicationError: declined {"code": 51}'``: the summary, with any details."""
    text = summary(error)
    if error.get("details") is not None:
        text += " " + _preview(error["details"], 200)
    return text


def _value_text(value: object, limit: int = 200) -> str:
    """A stored value (codec JSON embedded in the event) as ``str()`` shows it live."""
    try:
        text = str(payload.PLAIN.payload_field({"value": value}, "value"))
    except Exception:  # an opted-in pickle or a type this process cannot import
        return _preview(value, limit)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _preview(value: object, limit: int = 60) -> str:
    """A short readable form of a signal payload (codec JSON embedded in the event)."""
    if value is None:
        return ""
    import json

    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
