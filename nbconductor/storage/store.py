"""The Store protocol: what the engine and its readers need from a history store.

Every query a caller needs is a method here, answered by the store (in SQL by the
DuckDB store, in Python by the memory store): nothing outside ``nbconductor.storage``
writes SQL, and a large history is paged and counted where it lives.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    PruneReport,
    QueueRecord,
    ScheduleRecord,
    Status,
    TimerCounts,
)


@runtime_checkable
class Store(Protocol):
    """A durable, append-only history of executions.

    The engine thread is the only writer. Readers (widgets, magics, the CLI) may call
    the read methods from other threads at any time; they never block the writer.
    """

    path: str | None

    def commit(self, batch: Batch) -> None:
        """Write the whole batch atomically: all of it is durable, or none of it."""

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """The execution with this id, or None."""

    def list_executions(self, filter: ExecutionFilter | None = None) -> list[ExecutionRecord]:
        """Executions matching the filter, in its order (newest first by default), paged
        by its limit and offset.

        Raises:
            ValueError: the filter's ``sort`` is not one of ``SORT_KEYS``.
        """

    def count_executions(self, filter: ExecutionFilter | None = None) -> int:
        """How many executions match the filter (limit/offset ignored)."""

    def open_executions(self) -> list[ExecutionRecord]:
        """Every execution whose status is Running, oldest first."""

    def load_history(self, execution_id: str, after_seq: int = 0) -> list[EventRecord]:
        """The execution's events with seq > after_seq, in seq order."""

    def histories(self, execution_ids: list[str]) -> dict[str, list[EventRecord]]:
        """Histories of several executions in one read (used by recovery)."""

    def counts_by_status(self) -> dict[Status, int]:
        """Number of executions per status."""

    def definitions(self, name: str | None = None) -> list[DefinitionRecord]:
        """Recorded definition versions, oldest first."""

    def schedules(self) -> list[ScheduleRecord]:
        """Every stored schedule, by id."""

    def queues(self) -> list[QueueRecord]:
        """Every stored task queue, by name."""

    def queue_starts(self, queue: str, since: datetime) -> list[datetime]:
        """When the ended attempts of ``queue``'s tasks started, those at or after
        ``since``, oldest first: what a queue's rate limit counts after a restart.

        An attempt is counted from its ``TaskCompleted``/``TaskFailed`` event, whose
        data carries ``queue`` and ``started_at``.
        """

    def workflow_names(self) -> list[str]:
        """The names of the workflows that have executions, sorted."""

    def created_span(
        self, filter: ExecutionFilter | None = None
    ) -> tuple[datetime, datetime] | None:
        """The earliest and the latest start of the matching executions (None if none match)."""

    def counts_over_time(
        self, width: float, filter: ExecutionFilter | None = None
    ) -> dict[datetime, dict[Status, int]]:
        """Matching executions counted by status per bucket of ``width`` seconds of start time.

        Buckets are keyed by their start (UTC, a multiple of ``width`` since the epoch),
        in time order; buckets with no execution are left out.

        Raises:
            ValueError: ``width`` is not positive.
        """

    def pending_timers(self, now: datetime | None = None) -> TimerCounts:
        """Timers of running executions that have neither fired nor been cancelled, and how
        many of them are due at ``now`` (the current time when None)."""

    def export_parquet(self, directory: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
        """Write ``<table>.parquet`` for each history table into ``directory``.

        Returns:
            ``{table: {"path": ..., "rows": n}}``.

        Raises:
            StoreError: this store cannot export Parquet, or writing failed.
        """

    def relation(self, query: str, params: list[Any] | None = None) -> Any:
        """One read-only SQL query as a lazy DuckDB relation (``.df()``, ``.pl()``,
        ``.arrow()``) on a connection of its own, never the writer's.

        Raises:
            StoreError: the query would write or read anything but the history tables,
                or this store has no SQL (the memory store: the message names the fix).
        """

    def prune(
        self,
        closed_before: datetime,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        batch: int = 100,
        reclaim: bool = True,
    ) -> PruneReport:
        """Delete executions closed before ``closed_before`` with their events, whole
        families at a time, never one with an open member (the rule is in
        :mod:`nbconductor.storage.retention`); with ``dry_run`` only count them.

        Deletes run in transactions of about ``batch`` executions, so a writer waits
        for one batch at most; ``reclaim`` gives the freed space back to the file.
        """

    def close(self) -> None:
        """Flush and release the file; later calls fail."""
