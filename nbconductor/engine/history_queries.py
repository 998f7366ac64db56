"""What an engine answers about its history as data: lists of executions, their
events, user SQL, prune, and the engine's status with counts from the store.

These run on the caller's thread against the store (never through the engine
thread). A read first waits, briefly, until every batch handed to the writer is in
the file, so that it sees what the engine has already released.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from nbconductor.engine.ledger import Ledger
from nbconductor.engine.retention import cutoff
from nbconductor.engine.roster import Roster
from nbconductor.engine.task_dispatch import TaskDispatch
from nbconductor.errors import StoreError
from nbconductor.storage.records import (
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    PruneReport,
    Status,
)
from nbconductor.storage.store import Store

__all__ = ("HistoryQueries",)


class HistoryQueries:
    """The Engine's ``list``, ``history``, ``sql``, ``prune`` and ``status``.

    Args:
        written: waits until the writer has written every handed batch.
    """

    def __init__(
        self,
        store: Store,
        roster: Roster,
        ledger: Ledger,
        tasks: TaskDispatch,
        now: Callable[[], datetime],
        written: Callable[[], None],
    ) -> None:
        self._store = store
        self._roster = roster
        self._ledger = ledger
        self._tasks = tasks
        self._now = now
        self._written = written

    def list(
        self,
        status: str | Status | list | None,
        name: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        offset: int,
    ) -> list[ExecutionRecord]:
        if status is not None:
            items = status if isinstance(status, (list, tuple, set)) else [status]
            status = [_status(s) for s in items]
        self._written()
        return self._store.list_executions(
            ExecutionFilter(
                status=status, workflow=name, since=since, until=until, limit=limit, offset=offset
            )
        )

    def history(self, execution_id: str) -> list[EventRecord]:
        return self._store.load_history(execution_id)

    def sql(self, query: str, params: list[Any] | None) -> Any:
        self._written()  # what the engine released is in the file the query reads
        return self._store.relation(query, params)

    def prune(
        self,
        closed_before: str | float | timedelta | datetime,
        dry_run: bool,
        limit: int | None,
    ) -> PruneReport:
        moment = cutoff(closed_before, self._now())
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit={limit!r}: give a whole number of 1 or more, or None")
        # An execution whose result was released may not have its closed row in the
        # file yet, and prune chooses by the rows.
        self._written()
        report = self._store.prune(moment, dry_run=dry_run, limit=limit)
        if not dry_run:  # nor may the engine answer for them from memory any more
            self._roster.forget_closed_before(moment)
        return report

    def status(self, *, running: bool, error: BaseException | None, started_at: datetime) -> dict:
        live = self._roster.all()
        try:
            self._written()
            counts = {s.value: n for s, n in self._store.counts_by_status().items()}
        except StoreError:  # closed after a failure: the error says why
            counts = None
        return {
            "running": running,
            "error": f"{type(error).__name__}: {error}" if error else None,
            "store": self._store.path,
            "started_at": started_at,
            "open_executions": len(live),
            "waiting_for_definition": sum(
                1 for x in live if x.condition and x.condition.startswith("waiting")
            ),
            "blocked": sum(1 for x in live if x.condition and x.condition.startswith("blocked")),
            "pending_timers": sum(len(x.timers) for x in live),
            "running_tasks": self._tasks.in_flight,
            "faults": list(self._ledger.faults),
            "counts": counts,
        }


def _status(value) -> Status:
    if isinstance(value, Status):
        return value
    try:
        return Status(str(value).lower().replace("timedout", "timed_out"))
    except ValueError:
        valid = ", ".join(s.value for s in Status)
        raise ValueError(f"unknown status {value!r}; use one of: {valid}") from None
