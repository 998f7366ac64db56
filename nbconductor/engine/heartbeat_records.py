"""Heartbeat records: what a running attempt reported (its heartbeat details, progress
and printed output), appended to its execution's history as TaskHeartbeat events, at
most once per :func:`record_interval`.

A retry resumes from the last recorded checkpoint, and a view shows the recorded
output, so what is recorded must be durable before a heartbeat timeout can fire; every
heartbeat a chatty task sends is not worth a commit. An attempt's ``on_note`` (from any
thread) arms one record; the record itself runs on the engine thread when it falls due
and goes into that tick's batch.
"""

from __future__ import annotations

from nbconductor.engine.ledger import Ledger
from nbconductor.engine.payload import event_data
from nbconductor.engine.roster import Roster
from nbconductor.engine.task_runner import Attempt
from nbconductor.storage.records import EventKind

__all__ = ("HEARTBEAT_RECORD_INTERVAL", "HeartbeatRecords", "record_interval")

#: Seconds between two TaskHeartbeat records of an attempt with no heartbeat timeout
#: (with one, 0.8 of it, as Temporal throttles). See :func:`record_interval`.
HEARTBEAT_RECORD_INTERVAL = 10.0


def record_interval(options) -> float:
    """How often at most a running attempt's heartbeat details and output are recorded:
    0.8 x its heartbeat timeout, so a checkpoint is durable before the timeout can
    fire, else :data:`HEARTBEAT_RECORD_INTERVAL`."""
    if options.heartbeat is not None:
        return 0.8 * options.heartbeat
    return HEARTBEAT_RECORD_INTERVAL


class HeartbeatRecords:
    """Throttled TaskHeartbeat records of running attempts.

    Args:
        ledger: the engine's ledger (its batch, heap and inbox).
        roster: the open executions, to check an attempt is still current.
    """

    def __init__(self, ledger: Ledger, roster: Roster) -> None:
        self._ledger = ledger
        self._roster = roster

    def noted(self, attempt: Attempt) -> None:
        """A heartbeat or output to record (any thread; at most one per record)."""
        self._ledger.post(self._arm_record, attempt)

    def _arm_record(self, attempt: Attempt) -> None:
        if attempt.abandoned:
            return
        started = attempt.started_at.timestamp() if attempt.started_at else attempt.dispatched_at
        last = attempt.recorded_at if attempt.recorded_at is not None else started
        due = max(self._ledger.now.timestamp(), last + record_interval(attempt.definition.options))
        self._ledger.push(due, self._record_heartbeat, attempt)

    def _record_heartbeat(self, attempt: Attempt) -> None:
        """Append what the running attempt reported since its last record to the tick's
        batch (committed with everything else of the tick)."""
        attempt.note_pending = False  # before reading: a later note arms the next record
        if attempt.abandoned:
            return  # its outcome (or timeout) took what it had
        live = self._roster.get(attempt.execution_id)
        state = live.tasks.get(attempt.command) if live else None
        if state is None or state.current is not attempt:
            return
        output = attempt.take_output()
        text = attempt.heartbeat_text
        # Checked now: the next check is an interval away, so a task that heartbeats
        # the same details in a loop costs one look per interval, not a wake-up each.
        attempt.recorded_at = self._ledger.now.timestamp()
        if not output and text == attempt.recorded_text:
            return  # the same checkpoint again: nothing new to keep
        fields: dict = {}
        if attempt.progress is not None:
            fields["progress"] = attempt.progress
        if output:
            fields["output"] = output
        self._ledger.record(
            live,
            EventKind.TASK_HEARTBEAT,
            command=attempt.command,
            name=state.name,
            attempt=attempt.number,
            data=event_data(fields, details=text),
        )
        attempt.recorded_text = text
