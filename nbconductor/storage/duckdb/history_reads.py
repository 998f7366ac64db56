"""The read queries of a history file: executions, histories, definitions, schedules,
queues, counts and timers, as the Store protocol asks for them.

Written against one method, ``_query(sql, params) -> rows``, which
:class:`~nbconductor.storage.duckdb.duckdb_store.DuckDBStore` (the one subclass)
answers on a reader cursor of its own, so a read never waits for the writer. The SQL
text and the row conversions are in :mod:`nbconductor.storage.duckdb.sql`. This module
does not import duckdb.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from nbconductor.storage.duckdb import sql as duckdb_sql
from nbconductor.storage.records import (
    DefinitionRecord,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    QueueRecord,
    ScheduleRecord,
    Status,
    TimerCounts,
)

__all__ = ("HistoryReads",)

_UTC = UTC


class HistoryReads(ABC):
    """The Store protocol's read queries over the history tables."""

    @abstractmethod
    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run one read-only statement; its rows."""

    @abstractmethod
    def _check_open(self) -> None:
        """Raise StoreError when the store is closed (for reads that need no query)."""

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """The execution with this id, or None."""
        rows = self._query(
            f"SELECT {duckdb_sql.EXECUTION_COLUMNS} FROM executions WHERE id = ?", [execution_id]
        )
        return duckdb_sql.execution_row(rows[0]) if rows else None

    def list_executions(self, filter: ExecutionFilter | None = None) -> list[ExecutionRecord]:
        """Executions matching the filter, in its order (newest first by default), paged
        by its limit and offset.

        Raises:
            ValueError: the filter's ``sort`` is not one of ``SORT_KEYS``.
        """
        f = filter or ExecutionFilter()
        where, params = duckdb_sql.where(f)
        order, order_params = duckdb_sql.order_by(f)
        params.extend(order_params)
        query = f"SELECT {duckdb_sql.EXECUTION_COLUMNS} FROM executions{where}{order}"
        if f.limit is not None:
            query += " LIMIT ?"
            params.append(max(f.limit, 0))
        if f.offset:
            query += " OFFSET ?"
            params.append(max(f.offset, 0))
        return [duckdb_sql.execution_row(row) for row in self._query(query, params)]

    def count_executions(self, filter: ExecutionFilter | None = None) -> int:
        """How many executions match the filter (limit/offset ignored)."""
        where, params = duckdb_sql.where(filter or ExecutionFilter())
        return self._query(f"SELECT count(*) FROM executions{where}", params)[0][0]

    def open_executions(self) -> list[ExecutionRecord]:
        """Every execution whose status is Running, oldest first."""
        return self.list_executions(ExecutionFilter(status=[Status.RUNNING], newest_first=False))

    def load_history(self, execution_id: str, after_seq: int = 0) -> list[EventRecord]:
        """The execution's events with seq > after_seq, in seq order."""
        rows = self._query(duckdb_sql.LOAD_HISTORY, [execution_id, after_seq])
        return [duckdb_sql.event_row(row) for row in rows]

    def histories(self, execution_ids: list[str]) -> dict[str, list[EventRecord]]:
        """Histories of several executions in one read (used by recovery)."""
        out: dict[str, list[EventRecord]] = {i: [] for i in execution_ids}
        if not out:
            self._check_open()
            return out
        rows = self._query(
            f"SELECT {duckdb_sql.EVENT_COLUMNS} FROM events WHERE execution_id IN "
            "(SELECT unnest($1::VARCHAR[])) ORDER BY execution_id, seq",
            [list(out)],
        )
        for row in rows:
            out[row[0]].append(duckdb_sql.event_row(row))
        return out

    def counts_by_status(self) -> dict[Status, int]:
        """Number of executions per status (statuses with none are left out)."""
        rows = self._query("SELECT status, count(*) FROM executions GROUP BY status")
        return {duckdb_sql.STATUSES[status]: n for status, n in rows}

    def definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        """Recorded definition versions, oldest first."""
        where, params = ("", []) if name is None else (" WHERE name = ?", [name])
        rows = self._query(
            "SELECT name, kind, version, source, registered_at FROM definitions"
            f"{where} ORDER BY registered_at, rowid",
            params,
        )
        return [DefinitionRecord(n, k, v, s, at.replace(tzinfo=_UTC)) for n, k, v, s, at in rows]

    def schedules(self) -> list[ScheduleRecord]:
        """Every stored schedule, by id."""
        rows = self._query(f"SELECT {duckdb_sql.SCHEDULE_COLUMNS} FROM schedules ORDER BY id")
        return [duckdb_sql.schedule_row(row) for row in rows]

    def workflow_names(self) -> list[str]:
        """The names of the workflows that have executions, sorted."""
        return [
            name for (name,) in self._query("SELECT DISTINCT workflow FROM executions ORDER BY 1")
        ]

    def created_span(
        self, filter: ExecutionFilter | None = None
    ) -> tuple[datetime, datetime] | None:
        """The earliest and the latest start of the matching executions (None if none match)."""
        where, params = duckdb_sql.where(filter or ExecutionFilter())
        ((low, high),) = self._query(
            f"SELECT min(created_at), max(created_at) FROM executions{where}", params
        )
        return None if low is None else (duckdb_sql.utc(low), duckdb_sql.utc(high))

    def counts_over_time(
        self, width: float, filter: ExecutionFilter | None = None
    ) -> dict[datetime, dict[Status, int]]:
        """Matching executions counted by status per bucket of ``width`` seconds of start time.

        Buckets are keyed by their start (UTC, a multiple of ``width`` since the epoch),
        in time order; buckets with no execution are left out.

        Raises:
            ValueError: ``width`` is not positive.
        """
        if not width > 0:
            raise ValueError(f"a bucket width must be a positive number of seconds, not {width!r}")
        where, params = duckdb_sql.where(filter or ExecutionFilter())
        rows = self._query(
            "SELECT CAST(floor(epoch(created_at) / ?) AS BIGINT) AS bucket, status, count(*) "
            f"FROM executions{where} GROUP BY 1, 2 ORDER BY 1, 2",
            [width, *params],
        )
        out: dict[datetime, dict[Status, int]] = {}
        for bucket, status, n in rows:
            start = datetime.fromtimestamp(bucket * width, _UTC)
            out.setdefault(start, {})[duckdb_sql.STATUSES[status]] = n
        return out

    def queues(self) -> list[QueueRecord]:
        """Every stored task queue, by name."""
        rows = self._query(f"SELECT {duckdb_sql.QUEUE_COLUMNS} FROM queues ORDER BY name")
        return [duckdb_sql.queue_row(row) for row in rows]

    def queue_starts(self, queue: str, since: datetime) -> list[datetime]:
        """When the ended attempts of ``queue``'s tasks started, at or after ``since``."""
        since = since if since.tzinfo else since.replace(tzinfo=_UTC)
        rows = self._query(duckdb_sql.QUEUE_STARTS, [duckdb_sql.db_time(since), queue])
        starts = []
        for (text,) in rows:
            started = datetime.fromisoformat(text)
            started = started if started.tzinfo else started.replace(tzinfo=_UTC)
            if started >= since:
                starts.append(started)
        return sorted(starts)

    def pending_timers(self, now: datetime | None = None) -> TimerCounts:
        """Timers of running executions that have neither fired nor been cancelled, and how
        many of them are due at ``now`` (the current time when None)."""
        now = now or datetime.now(_UTC)
        at = (now if now.tzinfo else now.replace(tzinfo=_UTC)).timestamp()  # naive: UTC
        ((pending, due),) = self._query(duckdb_sql.PENDING_TIMERS, [at])
        return TimerCounts(int(pending), int(due))
