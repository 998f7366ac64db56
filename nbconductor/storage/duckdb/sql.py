"""The SQL of the DuckDB store: schema and migrations, batches as statements, rows.

Kept apart from :mod:`nbconductor.storage.duckdb.duckdb_store` (which alone imports duckdb) so
that each module holds one idea: this one is what is written where, that one is how the
file is opened, locked, written and read.

Timestamps are ``TIMESTAMP`` columns holding UTC (not ``TIMESTAMPTZ``: DuckDB's Python
client needs pytz to return those, which would break ``%conductor sql`` for users who
lack it). Payload columns hold the codec's JSON text as ``VARCHAR``: DuckDB's JSON
functions read them all the same (``data->>'$.x'``), while the ``JSON`` type would
reject strings holding lone surrogates, which Python strings can carry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from nbconductor._version import __version__
from nbconductor.storage.records import (
    DefinitionRecord,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionUpdate,
    ScheduleRecord,
    Status,
)

__all__ = (
    "APPLICATION",
    "EVENT_COLUMNS",
    "EVENT_TABLE_COLUMNS",
    "EXECUTION_COLUMNS",
    "EXECUTION_TABLE_COLUMNS",
    "KINDS",
    "MIGRATIONS",
    "SCHEDULE_COLUMNS",
    "STATUSES",
    "db_time",
    "definition_statement",
    "event_row",
    "event_rows",
    "execution_row",
    "execution_rows",
    "opt_time",
    "schedule_row",
    "schedule_statements",
    "update_statement",
    "utc",
    "where",
)

_UTC = timezone.utc
APPLICATION = "nbconductor"


# --- schema ----------------------------------------------------------------------------

# Indexes, as measured (see benchmarks/bench_store.py):
# - events(execution_id): load_history of a short history among 1M events 1.0 ms with
#   it, 3.1 ms without; 3,000 events 7 ms vs 13 ms; its cost per 2-event commit is lost
#   in the noise. A PRIMARY KEY (execution_id, seq) instead costs ~0.1 ms more per
#   commit and DuckDB uses it less well for these lookups (1.7 ms), so seq uniqueness
#   is left to the engine, which guarantees it.
# - executions(id) PRIMARY KEY: rejects a duplicate id inside the transaction and
#   serves get_execution (0.6 ms at 100k executions).
# - None on executions(status) or (created_at): with them a status update costs 2.3 ms
#   instead of 1.6 ms (an indexed column is updated as delete + insert) and
#   open_executions 19 ms instead of 10 ms at 100k executions. Executions are appended
#   in created_at order, so DuckDB's zone maps already prune since/until scans.

_SCHEMA_V1 = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE executions (
    id VARCHAR PRIMARY KEY,
    workflow VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    input VARCHAR NOT NULL,
    result VARCHAR,
    error VARCHAR,
    parent_id VARCHAR,
    origin_id VARCHAR,
    tags VARCHAR[] NOT NULL,
    condition VARCHAR
);
CREATE TABLE events (
    execution_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    "at" TIMESTAMP NOT NULL,
    command INTEGER,
    name VARCHAR,
    attempt INTEGER,
    data VARCHAR NOT NULL
);
CREATE INDEX events_by_execution ON events (execution_id);
CREATE TABLE definitions (
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (name, kind, version)
);
COMMENT ON TABLE executions IS 'nbconductor executions; timestamps are UTC, payloads JSON text';
COMMENT ON TABLE events IS 'nbconductor histories; "at" is UTC, data is JSON text';
"""


def _create_v1(con: Any) -> None:
    """Version 1: the initial schema."""
    con.execute(_SCHEMA_V1)
    con.execute(
        "INSERT INTO meta VALUES ('application', ?), ('created_by', ?), ('schema_version', '0')",
        [APPLICATION, __version__],
    )


def _add_schedules(con: Any) -> None:
    """Version 2: schedules, their specs and firing state (codec JSON text)."""
    con.execute(
        "CREATE TABLE schedules (id VARCHAR PRIMARY KEY, workflow VARCHAR NOT NULL, "
        "spec VARCHAR NOT NULL, state VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)"
    )


#: Forward migrations: ``MIGRATIONS[n - 1]`` turns schema version n - 1 into version n.
#: Each runs in its own transaction with the update of ``meta.schema_version``.
MIGRATIONS: list[Callable[[Any], None]] = [_create_v1, _add_schedules]


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
    return [
        (e.execution_id, e.seq, e.kind.value, db_time(e.at), e.command, e.name, e.attempt,
         e.data)
        for e in records
    ]  # fmt: skip


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
