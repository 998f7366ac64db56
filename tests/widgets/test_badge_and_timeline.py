"""Pure pieces: the status badge's rules and the timeline built from history events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from nbconductor.storage.records import EventKind, EventRecord, Status
from nbconductor.widgets import execution_snapshot
from nbconductor.widgets.markup import format_duration
from nbconductor.widgets.status import badge_for
from nbconductor.widgets.timeline import Timeline

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize("status", [s for s in Status if s.closed])
def test_closed_statuses_come_from_the_record(status):
    badge = badge_for(status, waiting_signals=["x"], condition="blocked: y")
    assert (badge.label, badge.tone) == (status.title, status.value)
    assert badge.closed


def test_running_precedence():
    retry = {"task": "t", "attempt": 2, "running": False, "retry_at": at(5).timestamp()}
    running = {"task": "t", "attempt": 1, "running": True, "retry_at": None}
    everything = {
        "condition": "blocked: NameError while running workflow code: x",
        "waiting_signals": ["go"],
        "tasks": [retry],
        "open_timers": [at(60)],
    }
    assert badge_for(None).label == "Starting"
    assert badge_for(Status.RUNNING, **everything).label == "Blocked"
    everything["condition"] = "waiting for the definition of workflow 'w'"
    assert badge_for(Status.RUNNING, **everything).label == "Waiting for definition"
    everything["condition"] = None
    assert badge_for(Status.RUNNING, **everything).label == "Waiting for signal"
    everything["waiting_signals"] = []
    b = badge_for(Status.RUNNING, **everything)
    assert (b.label, b.detail, b.until) == ("Retrying", "t attempt 2", at(5))
    everything["tasks"] = []
    b = badge_for(Status.RUNNING, **everything)
    assert (b.label, b.until) == ("Sleeping", at(60))
    everything["tasks"] = [running]
    assert badge_for(Status.RUNNING, **everything).label == "Running"  # a timeout timer
    assert badge_for(Status.RUNNING).label == "Running"


def event(seq, kind, t, command=None, name=None, attempt=None, **data):
    return EventRecord("e", seq, kind, at(t), command, name, attempt, json.dumps(data))


HISTORY = [
    event(1, EventKind.EXECUTION_STARTED, 0, name="w"),
    event(2, EventKind.TASK_SCHEDULED, 0, 1, "fetch"),
    event(3, EventKind.TASK_FAILED, 2, 1, "fetch", 1, started_at=at(1).isoformat(),
          error={"type": "IOError", "message": "down"}, final=False,
          retry_at=at(4).isoformat()),
    event(4, EventKind.TASK_COMPLETED, 6, 1, "fetch", 2, started_at=at(4).isoformat()),
    event(5, EventKind.TIMER_STARTED, 6, 2, fire_at=at(66).timestamp(), due=at(66).isoformat()),
    event(6, EventKind.SIGNAL_RECEIVED, 10, name="go", payload={"by": "ann"}),
    event(7, EventKind.TIMER_CANCELLED, 10, 2),
    event(8, EventKind.CHILD_STARTED, 10, 3, "sub", child_id="e-child"),
    event(9, EventKind.CHILD_CLOSED, 12, 3, child_id="e-child", status="failed",
          error={"type": "ValueError", "message": "bad"}),
    event(10, EventKind.TASK_SCHEDULED, 12, 4, "never"),
    event(11, EventKind.EXECUTION_FAILED, 13),
]  # fmt: skip


def test_timeline_from_history():
    timeline = Timeline()
    assert timeline.apply(HISTORY)
    steps = timeline.steps
    fetch = steps["task:1"]
    assert fetch.state == "completed" and fetch.end == at(6)
    assert [(a.number, a.start, a.end, a.ok) for a in fetch.attempts] == [
        (1, at(1), at(2), False),
        (2, at(4), at(6), True),
    ]
    assert fetch.attempts[0].error == "IOError: down" and fetch.attempts[0].retry_at == at(4)
    timer = steps["timer:2"]
    assert (timer.state, timer.due, timer.end) == ("cancelled", at(66), at(10))
    signal = steps["signal:6"]
    assert signal.point and signal.name == "go" and signal.detail == '{"by":"ann"}'
    child = steps["child:3"]
    assert (child.state, child.link, child.detail) == ("failed", "e-child", "ValueError: bad")
    assert steps["task:4"].state == "cancelled"  # still open when the execution closed
    assert (timeline.tasks_done, timeline.tasks_total) == (2, 2)
    assert timeline.started == at(0) and timeline.closed == at(13)
    assert timeline.open_timers() == []


def test_timeline_reads_incrementally_like_at_once():
    whole = Timeline()
    whole.apply(HISTORY)
    pieces = Timeline()
    for i in range(0, len(HISTORY), 3):
        pieces.apply(HISTORY[: i + 3])  # overlapping re-reads are ignored
    assert pieces.steps == whole.steps and pieces.last_seq == 11
    assert not pieces.apply(HISTORY)  # nothing new


def test_a_long_timeline_is_cut_to_the_latest_steps():
    events = [event(1, EventKind.EXECUTION_STARTED, 0)]
    for i in range(200):
        events.append(event(2 + 2 * i, EventKind.TASK_SCHEDULED, i, i, "t"))
        events.append(event(3 + 2 * i, EventKind.TASK_COMPLETED, i + 0.5, i, "t", 1))
    events.append(event(500, EventKind.TIMER_STARTED, 300, 999, due=at(900).isoformat()))
    timeline = Timeline()
    timeline.apply(events)
    steps, hidden = execution_snapshot._visible_steps(timeline)
    assert len(steps) == execution_snapshot.MAX_STEPS
    assert steps[-1].key == "timer:999"  # open steps are always kept
    assert hidden == {"task completed": 201 - execution_snapshot.MAX_STEPS}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0123, "12 ms"), (4.25, "4.2 s"), (42, "42 s"), (185, "3 min 5 s"),
     (7500, "2 h 5 min"), (3 * 86400 + 4 * 3600, "3 d 4 h")],
)  # fmt: skip
def test_durations_read_well(seconds, text):
    assert format_duration(seconds) == text
