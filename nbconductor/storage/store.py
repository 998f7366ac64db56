"""The Store protocol: what the engine needs from a history store."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from nbconductor.storage.records import (
    Batch,
    DefinitionRecord,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    ScheduleRecord,
    Status,
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
        """Executions matching the filter, newest first unless asked otherwise."""

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

    def close(self) -> None:
        """Flush and release the file; later calls fail."""
