"""Fork: a new execution that reuses another's history up to an event, then runs live.

By default the cut is just before the first task that failed for good, so fixing a task
and forking re-runs only from there. Runs on the engine thread.
"""

from __future__ import annotations

import json

from nbconductor.engine.ledger import Ledger
from nbconductor.engine.live import LiveExecution
from nbconductor.engine.payload import read_data
from nbconductor.engine.recovery import Recovery
from nbconductor.engine.roster import Roster
from nbconductor.storage.records import (
    ENDING_EVENTS,
    EventKind,
    EventRecord,
    ExecutionRecord,
    Status,
)
from nbconductor.storage.store import Store


def fork(
    origin: ExecutionRecord,
    at: int | None,
    new_id: str,
    *,
    store: Store,
    ledger: Ledger,
    roster: Roster,
    recovery: Recovery,
) -> None:
    """Copy ``origin``'s history up to event ``at`` into ``new_id`` and resume it.

    Raises:
        ValueError: ``new_id`` exists, or ``at`` is not a point before the origin closed.
    """
    if roster.get(new_id) is not None or store.get_execution(new_id) is not None:
        raise ValueError(f"an execution with id {new_id!r} already exists")
    history = store.load_history(origin.id)
    if at is None:
        at = default_fork_point(history)
    if not 1 <= at <= len(history) or any(e.kind in ENDING_EVENTS for e in history[:at]):
        last = next((e.seq for e in history if e.kind in ENDING_EVENTS), len(history) + 1) - 1
        raise ValueError(
            f"fork point at={at} is not valid for {origin.id!r}: pick an event number "
            f"from 1 to {last} (before the execution closed)"
        )
    first = history[0]
    started = read_data(first.data)
    started.pop("parent", None)
    started["forked_from"] = [origin.id, at]
    started.setdefault("seed_id", origin.id)
    copied = [
        EventRecord(new_id, e.seq, e.kind, e.at, e.command, e.name, e.attempt, e.data)
        for e in history[1:at]
    ]
    copied.insert(
        0,
        EventRecord(
            new_id,
            1,
            first.kind,
            first.at,
            None,
            first.name,
            None,
            json.dumps(started, separators=(",", ":")),
        ),
    )
    record = ExecutionRecord(
        id=new_id,
        workflow=origin.workflow,
        version=origin.version,
        status=Status.RUNNING,
        created_at=ledger.now,
        updated_at=ledger.now,
        input=origin.input,
        origin_id=origin.id,
    )
    ledger.add_execution(record, copied)
    live = LiveExecution(record, next_seq=at + 1)
    roster.add(live)
    recovery.resume(live, copied)


def default_fork_point(history: list[EventRecord]) -> int:
    """Just before the first task that failed for good, else before the end."""
    for event in history:
        if event.kind is EventKind.TASK_FAILED and read_data(event.data).get("final"):
            return event.seq - 1
    for event in history:
        if event.kind in ENDING_EVENTS:
            return event.seq - 1
    return len(history)
