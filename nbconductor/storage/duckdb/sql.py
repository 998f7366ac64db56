"""The SQL of the DuckDB store: records as rows, batches as statements, filters as
WHERE clauses.

Kept apart from :mod:`nbconductor.storage.duckdb.duckdb_store` (which alone imports
duckdb) so that each module holds one idea: this one is what is written where and how a
filter reads, that one is how the file is written and read. The tables themselves are
in :mod:`nbconductor.storage.duckdb.schema`.

Timestamps are ``TIMESTAMP`` columns holding UTC (not ``TIMESTAMPTZ``: DuckDB's Python
client needs pytz to return those, which would break ``%conductor sql`` for users who
lack it). Payload columns hold the codec's JSON text as ``VARCHAR``: DuckDB's JSON
functions read them all the same (``data->>'$.x'``), while the ``JSON`` type would
reject strings holding lone surrogates, which Python strings can carry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nbconductor.storage.records import (
    SORT_KEYS,
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionUpdate,
    QueueRecord,
    ScheduleRecord,
    Status,
)

__all__ = (
    "EVENT_COLUMNS",
    "EVENT_TABLE_COLUMNS",
    "EXECUTION_COLUMNS",
    "EXECUTION_TABLE_COLUMNS",
    "KINDS",
    "LOAD_HISTORY",
    "PENDING_TIMERS",
    "SCHEDULE_COLUMNS",
    "STATUSES",
    "db_time",
    "definition_statement",
    "event_row",
    "event_rows",
    "execution_row",
    "execution_rows",
    "opt_time",
    "order_by",
    "schedule_row",
    "schedule_statements",
    "update_statement",
    "utc",
    "where",
)

_UTC = UTC


# --- rows and statements --------------------------------------------------------------

KINDS = {kind.value: kind for kind in EventKind}
STATUSES = {status.value: status for status in Status}


def db_time(value: datetime) -> datetime:
    """A naive UTC datetime for a TIMESTAMP column (naive input is taken as UTC)."""
    if value.tzinfo is None:
        return value
    if value.tzinfo is not _UTC:
        value = value.astimezone(_UTC)
    return value.replace(tzinfo=None)


def opt_time(value: datetime | None) -> datetime | None:
    """:func:`db_time` for a nullable column."""
    return None if value is None else db_time(value)


def utc(value: datetime | None) -> datetime | None:
    """A TIMESTAMP read back, as the aware UTC datetime it stands for."""
    return None if value is None else value.replace(tzinfo=_UTC)


def event_row(row: tuple) -> EventRecord:
    """An EventRecord from a row of EVENT_COLUMNS."""
    execution_id, seq, kind, at, command, name, attempt, data = row
    return EventRecord(
        execution_id, seq, KINDS[kind], at.replace(tzinfo=_UTC), command, name, attempt, data
    )


def execution_row(row: tuple) -> ExecutionRecord:
    """An ExecutionRecord from a row of EXECUTION_COLUMNS."""
    (id_, workflow, version, status, created, updated, closed, input_, result, error,
     parent_id, origin_id, tags, condition) = row  # fmt: skip
    return ExecutionRecord(
        id=id_,
        workflow=workflow,
        version=version,
        status=STATUSES[status],
        created_at=created.replace(tzinfo=_UTC),
        updated_at=updated.replace(tzinfo=_UTC),
        input=input_,
        closed_at=utc(closed),
        result=result,
        error=error,
        parent_id=parent_id,
        origin_id=origin_id,
        tags=tags,
        condition=condition,
    )


EXECUTION_COLUMNS = (
    "id, workflow, version, status, created_at, updated_at, closed_at, input, result, "
    "error, parent_id, origin_id, tags, condition"
)
EVENT_COLUMNS = 'execution_id, seq, kind, "at", command, name, attempt, data'

# One execution's events after a seq. DuckDB scans the events_by_execution index only
# for a filter on execution_id alone: with "AND seq > ?" beside it, it scanned the whole
# table (13-16 ms among 1M events instead of 1.5 ms). Selecting the execution's events
# first, materialized, keeps the index scan; the seq filter runs on those few rows.
LOAD_HISTORY = (
    f"WITH history AS MATERIALIZED (SELECT {EVENT_COLUMNS} FROM events WHERE execution_id = $1) "
    "SELECT * FROM history WHERE seq > $2 ORDER BY seq"
)

#: Columns filled by the appenders, in table order (named, so that a later migration
#: adding a column does not shift them).
EXECUTION_TABLE_COLUMNS = [c.strip() for c in EXECUTION_COLUMNS.split(",")]
EVENT_TABLE_COLUMNS = [c.strip().strip('"') for c in EVENT_COLUMNS.split(",")]

_INSERT_DEFINITIONS = (
    "INSERT INTO definitions SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), "
    "unnest($3::VARCHAR[]), unnest($4::VARCHAR[]), unnest($5::TIMESTAMP[]) "
    "ON CONFLICT DO NOTHING"
)
# None leaves a column as it is; condition '' clears it (None means "unchanged").
_UPDATE_ONE = (
    "UPDATE executions SET updated_at = $2, status = coalesce($3, status), "
    "closed_at = coalesce($4, closed_at), result = coalesce($5, result), "
    "error = coalesce($6, error), version = coalesce($7, version), "
    "condition = CASE WHEN $8::VARCHAR IS NULL THEN condition ELSE nullif($8, '') END "
    "WHERE id = $1"
)
_UPDATE_MANY = (
    "UPDATE executions AS e SET updated_at = u.updated_at, "
    "status = coalesce(u.status, e.status), closed_at = coalesce(u.closed_at, e.closed_at), "
    "result = coalesce(u.result, e.result), error = coalesce(u.error, e.error), "
    "version = coalesce(u.version, e.version), condition = CASE WHEN u.condition IS NULL "
    "THEN e.condition ELSE nullif(u.condition, '') END FROM (SELECT unnest($1::VARCHAR[]) "
    "AS id, unnest($2::TIMESTAMP[]) AS updated_at, unnest($3::VARCHAR[]) AS status, "
    "unnest($4::TIMESTAMP[]) AS closed_at, unnest($5::VARCHAR[]) AS result, "
    "unnest($6::VARCHAR[]) AS error, unnest($7::VARCHAR[]) AS version, "
    "unnest($8::VARCHAR[]) AS condition) AS u WHERE e.id = u.id"
)
_UPDATE_FIELDS = ("status", "closed_at", "result", "error", "version", "condition")


def execution_rows(records: list[ExecutionRecord]) -> list[tuple]:
    """Rows for the executions appender."""
    return [
        (r.id, r.workflow, r.version, r.status.value, db_time(r.created_at),
         db_time(r.updated_at), opt_time(r.closed_at), r.input, r.result, r.error,
         r.parent_id, r.origin_id, list(r.tags), r.condition)
        for r in records
    ]  # fmt: skip


def event_rows(records: list[EventRecord]) -> list[tuple]:
    """Rows for the events appender."""
    rows = []
    at = at_db = None
    for e in records:
        if e.at is not at:  # a tick's events share their time: converted once
            at, at_db = e.at, db_time(e.at)
        rows.append(  # _value_: what .value reads through a property (~0.3 us a row)
            (e.execution_id, e.seq, e.kind._value_, at_db, e.command, e.name, e.attempt, e.data)
        )
    return rows


def _merge_updates(updates: list[ExecutionUpdate]) -> list[ExecutionUpdate]:
    """One update per execution, later fields winning: UPDATE ... FROM with a repeated
    id would apply just one of them."""
    merged: dict[str, ExecutionUpdate] = {}
    for upd in updates:
        old = merged.get(upd.id)
        if old is None:
            merged[upd.id] = upd
            continue
        new = ExecutionUpdate(upd.id, upd.updated_at)
        for name in _UPDATE_FIELDS:
            value = getattr(upd, name)
            setattr(new, name, getattr(old, name) if value is None else value)
        merged[upd.id] = new
    return list(merged.values())


def update_statement(updates: list[ExecutionUpdate]) -> tuple[str, list[Any], int]:
    """The updates as one statement: (sql, parameters, rows it must change)."""
    us = _merge_updates(updates)
    columns = [
        [u.id for u in us], [db_time(u.updated_at) for u in us],
        [None if u.status is None else u.status.value for u in us],
        [opt_time(u.closed_at) for u in us], [u.result for u in us],
        [u.error for u in us], [u.version for u in us], [u.condition for u in us],
    ]  # fmt: skip
    if len(us) == 1:
        # A plain UPDATE ... WHERE id = ? costs half of the UPDATE ... FROM form.
        return _UPDATE_ONE, [column[0] for column in columns], 1
    return _UPDATE_MANY, columns, len(us)


def definition_statement(records: list[DefinitionRecord]) -> tuple[str, list[Any]]:
    """Insert the definitions not recorded yet; the first of duplicates wins."""
    first: dict[tuple[str, str, str], DefinitionRecord] = {}
    for d in records:
        first.setdefault((d.name, d.kind, d.version), d)
    ds = list(first.values())
    return _INSERT_DEFINITIONS, [
        [d.name for d in ds], [d.kind for d in ds], [d.version for d in ds],
        [d.source for d in ds], [db_time(d.registered_at) for d in ds],
    ]  # fmt: skip


SCHEDULE_COLUMNS = "id, workflow, spec, state, updated_at"
_UPSERT_SCHEDULES = (
    "INSERT OR REPLACE INTO schedules SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), "
    "unnest($3::VARCHAR[]), unnest($4::VARCHAR[]), unnest($5::TIMESTAMP[])"
)
_DELETE_SCHEDULES = "DELETE FROM schedules WHERE id IN (SELECT unnest($1::VARCHAR[]))"


def schedule_statements(
    records: list[ScheduleRecord], deleted: list[str]
) -> list[tuple[str, list[Any]]]:
    """Insert or replace schedules, then delete some, as (sql, parameters) pairs."""
    out: list[tuple[str, list[Any]]] = []
    if records:
        # The last record of an id wins, as one statement may not touch a row twice.
        ss = list({r.id: r for r in records}.values())
        out.append((_UPSERT_SCHEDULES, [
            [r.id for r in ss], [r.workflow for r in ss], [r.spec for r in ss],
            [r.state for r in ss], [db_time(r.updated_at) for r in ss],
        ]))  # fmt: skip
    if deleted:
        out.append((_DELETE_SCHEDULES, [list(deleted)]))
    return out


QUEUE_COLUMNS = "name, spec, updated_at"
_UPSERT_QUEUES = (
    "INSERT OR REPLACE INTO queues SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), "
    "unnest($3::TIMESTAMP[])"
)
_DELETE_QUEUES = "DELETE FROM queues WHERE name IN (SELECT unnest($1::VARCHAR[]))"
# Ended attempts of a queue's tasks whose event is no older than the window: an
# attempt's event comes after its start, so this holds every start in the window.
QUEUE_STARTS = (
    "SELECT data->>'$.started_at' FROM events "
    "WHERE kind IN ('TaskCompleted', 'TaskFailed') AND \"at\" >= ? "
    "AND data->>'$.queue' = ? AND data->>'$.started_at' IS NOT NULL"
)


def queue_statements(records: list[QueueRecord], deleted: list[str]) -> list[tuple[str, list[Any]]]:
    """Insert or replace queues, then delete some, as (sql, parameters) pairs."""
    out: list[tuple[str, list[Any]]] = []
    if records:
        qs = list({r.name: r for r in records}.values())  # the last record of a name wins
        out.append((_UPSERT_QUEUES, [
            [r.name for r in qs], [r.spec for r in qs], [db_time(r.updated_at) for r in qs],
        ]))  # fmt: skip
    if deleted:
        out.append((_DELETE_QUEUES, [list(deleted)]))
    return out


def queue_row(row: tuple) -> QueueRecord:
    """A QueueRecord from a row of QUEUE_COLUMNS."""
    name, spec, updated_at = row
    return QueueRecord(name, spec, updated_at.replace(tzinfo=_UTC))


def schedule_row(row: tuple) -> ScheduleRecord:
    """A ScheduleRecord from a row of SCHEDULE_COLUMNS."""
    id_, workflow, spec, state, updated_at = row
    return ScheduleRecord(id_, workflow, spec, state, updated_at.replace(tzinfo=_UTC))


def where(f: ExecutionFilter) -> tuple[str, list[Any]]:
    """The filter as a WHERE clause (or "") and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if f.status is not None:
        if not f.status:
            clauses.append("FALSE")
        else:
            clauses.append(f"status IN ({', '.join('?' * len(f.status))})")
            params.extend(Status(s).value for s in f.status)
    if f.workflow is not None:
        clauses.append("workflow = ?")
        params.append(f.workflow)
    if f.since is not None:
        clauses.append("created_at >= ?")
        params.append(db_time(f.since))
    if f.until is not None:
        clauses.append("created_at < ?")
        params.append(db_time(f.until))
    if f.parent_id is not None:
        clauses.append("parent_id = ?")
        params.append(f.parent_id)
    if f.search:
        clauses.append("(contains(id, ?) OR len(list_filter(tags, lambda t: contains(t, ?))) > 0)")
        params.extend((f.search, f.search))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# --- reading ---------------------------------------------------------------------------

# The expression each sort key orders by; "?" is ExecutionFilter.now.
_SORT_COLUMNS = {
    "id": "id",
    "workflow": "workflow",
    "status": "status",
    "duration": "coalesce(closed_at, ?::TIMESTAMP) - created_at",
}


def order_by(f: ExecutionFilter) -> tuple[str, list[Any]]:
    """The filter's order as an ORDER BY clause and its parameters.

    Raises:
        ValueError: the sort key is not one of ``SORT_KEYS``.
    """
    if f.sort not in SORT_KEYS:
        raise ValueError(f"cannot sort executions by {f.sort!r}; use one of {', '.join(SORT_KEYS)}")
    order = "DESC" if f.newest_first else "ASC"
    if f.sort == "started":
        return f" ORDER BY created_at {order}, id {order}", []
    params = [db_time(f.now or datetime.now(_UTC))] if f.sort == "duration" else []
    return f" ORDER BY {_SORT_COLUMNS[f.sort]} {order}, created_at {order}, id {order}", params


#: Timers started and neither fired nor cancelled, of running executions: ``pending``,
#: and of those the ones whose time ($1, epoch seconds) has come.
PENDING_TIMERS = """
SELECT count(*) AS pending,
       count(*) FILTER (WHERE TRY_CAST(s.data->>'$.fire_at' AS DOUBLE) <= $1) AS due
FROM events s JOIN executions x ON x.id = s.execution_id
WHERE x.status = 'running' AND s.kind = 'TimerStarted'
  AND NOT EXISTS (
    SELECT 1 FROM events f
    WHERE f.execution_id = s.execution_id AND f.command = s.command
      AND f.kind IN ('TimerFired', 'TimerCancelled'))
"""


# What the retention rule (nbconductor.storage.retention) reads: the executions closed
# before the cutoff, and every execution linked to one of them (parent, child, previous
# or next run). A family with a member that is open or closed later is connected to its
# old members, so one of those links reaches such a member: these rows suffice to
# decide, without reading every execution of a large file.
PRUNE_CANDIDATES = """
WITH old AS (
    SELECT id, status, closed_at, parent_id, origin_id FROM executions
    WHERE status <> 'running' AND closed_at < $1
)
SELECT * FROM old
UNION
SELECT id, status, closed_at, parent_id, origin_id FROM executions
WHERE id IN (SELECT parent_id FROM old) OR id IN (SELECT origin_id FROM old)
   OR parent_id IN (SELECT id FROM old) OR origin_id IN (SELECT id FROM old)
"""
