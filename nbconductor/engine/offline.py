"""Steering executions while no engine holds their history file.

Used by the CLI when no kernel or worker has the file open: a signal or cancel
request is appended to the execution's history as the event an engine would have
recorded, so the next engine to open the file replays it and delivers it. Terminate
closes the execution directly, since it runs no workflow code anyway.

The id of a continue-as-new chain addresses its latest run, as it does for an engine
(:meth:`Roster.latest <nbconductor.engine.roster.Roster.latest>`).

Such an event is marked ``"offline": true``: it lands at the end of the history, after
which the next engine records the commands its delivery caused. When several arrive
before an engine runs, the commands of the first come after the later ones, so replay
lets an offline event pass commands still waiting to be matched (see ``replay``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nbconductor.engine import payload
from nbconductor.engine.failure import Failure
from nbconductor.engine.roster import next_run
from nbconductor.engine.steering import check_signal_name
from nbconductor.errors import ExecutionClosed, ExecutionNotFound
from nbconductor.storage.records import Batch, EventKind, EventRecord, ExecutionUpdate, Status
from nbconductor.storage.store import Store

# The mark replay looks for (see the module docstring).
OFFLINE = {"offline": True}


def _open_record(store: Store, execution_id: str):
    """The record of the latest run of ``execution_id``'s chain, which must be open."""
    record = store.get_execution(execution_id)
    if record is None:
        raise ExecutionNotFound(f"no execution with id {execution_id!r} in {store.path}")
    seen = {record.id}
    following = next_run(record)
    while following is not None and following not in seen:
        newer = store.get_execution(following)
        if newer is None:  # the next run was not recorded: the chain ends here
            break
        record = newer
        seen.add(record.id)
        following = next_run(record)
    if record.status.closed:
        run = "" if record.id == execution_id else f" (its latest run {record.id!r})"
        raise ExecutionClosed(
            f"execution {execution_id!r}{run} is already {record.status.title}; only open "
            "executions take signals, cancels and terminations"
        )
    return record


def _append(store: Store, execution_id: str, kind: EventKind, *, name=None, data="{}", update=None):
    history = store.load_history(execution_id)
    now = datetime.now(UTC)
    seq = (history[-1].seq if history else 0) + 1
    batch = Batch(events=[EventRecord(execution_id, seq, kind, now, None, name, None, data)])
    if update is not None:
        batch.updates.append(ExecutionUpdate(execution_id, now, **update))
    store.commit(batch)


def signal(store: Store, execution_id: str, name: str, value: Any = None) -> None:
    """Record signal ``name`` for an open execution; the next engine delivers it."""
    check_signal_name(name)
    text = payload.encode_value(value, what=f"the payload of signal {name!r}")
    execution_id = _open_record(store, execution_id).id
    _append(
        store,
        execution_id,
        EventKind.SIGNAL_RECEIVED,
        name=name,
        data=payload.event_data(OFFLINE, payload=text),
    )


def cancel(store: Store, execution_id: str) -> None:
    """Record a cancel request; the next engine raises CancelledError in the workflow."""
    execution_id = _open_record(store, execution_id).id
    _append(store, execution_id, EventKind.CANCEL_REQUESTED, data=payload.event_data(OFFLINE))


def terminate(store: Store, execution_id: str, reason: str | None = None) -> None:
    """Close an open execution as Terminated right away."""
    execution_id = _open_record(store, execution_id).id
    reason = reason or "terminated"
    now = datetime.now(UTC)
    _append(
        store,
        execution_id,
        EventKind.EXECUTION_TERMINATED,
        data=payload.event_data({"reason": reason}),
        update={
            "status": Status.TERMINATED,
            "closed_at": now,
            "error": Failure("Terminated", reason).to_json(),
        },
    )
