"""Pruning a history file: which closed executions go, in batches, then the space back.

What may go is decided in :mod:`nbconductor.storage.retention` (whole families whose
every member closed before the cutoff). This module runs a prune over the store's
primitives, passed in: a read, a delete of some executions in one transaction, the
collection of stored values left unreferenced, a checkpoint, and the file's size.
It does not import duckdb: the store runs the statements.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nbconductor.storage.duckdb import sql as duckdb_sql
from nbconductor.storage.records import PruneReport
from nbconductor.storage.retention import prunable

__all__ = ("PRUNE_BATCH", "prune")

#: Executions deleted per transaction by :meth:`DuckDBStore.prune`.
PRUNE_BATCH = 100
_REPORTED_IDS = 20

_UTC = UTC


def prune(
    closed_before: datetime,
    *,
    dry_run: bool,
    limit: int | None,
    batch: int,
    reclaim: bool,
    query: Callable[[str, list[Any]], list[tuple]],
    delete: Callable[[list[str]], int],
    collect_payloads: Callable[..., dict[str, int]],
    checkpoint: Callable[[], None],
    file_bytes: Callable[[], int | None],
) -> PruneReport:
    """Delete the prunable executions closed before ``closed_before`` (naive is UTC),
    ``batch`` per ``delete`` call; see :meth:`DuckDBStore.prune` for the arguments."""
    started = time.perf_counter()
    cutoff = closed_before if closed_before.tzinfo else closed_before.replace(tzinfo=_UTC)
    report = PruneReport(closed_before=cutoff, dry_run=dry_run)
    report.bytes_before = file_bytes()
    # Read outside the writer lock: a due family is closed and can gain no member
    # (a closed execution starts nothing; a continue-as-new run is created in the
    # transaction that closes the previous one), so the choice stays valid.
    rows = query(duckdb_sql.PRUNE_CANDIDATES, [duckdb_sql.db_time(cutoff)])
    family = [
        (id_, duckdb_sql.STATUSES[status], duckdb_sql.utc(closed), parent_id, origin_id)
        for id_, status, closed, parent_id, origin_id in rows
    ]
    doomed, report.kept = prunable(family, cutoff, limit)
    report.ids = doomed[:_REPORTED_IDS]
    report.executions = len(doomed)
    if dry_run:
        if doomed:
            ((report.events,),) = query(
                "SELECT count(*) FROM events WHERE execution_id IN (SELECT unnest($1::VARCHAR[]))",
                [doomed],
            )
            report.payloads = collect_payloads(doomed)  # counted, not deleted
        report.bytes_after = report.bytes_before
        report.seconds = time.perf_counter() - started
        return report
    for first in range(0, len(doomed), max(1, batch)):
        report.events += delete(doomed[first : first + max(1, batch)])
    if doomed:
        report.payloads = collect_payloads()
        if reclaim:
            checkpoint()
    report.bytes_after = file_bytes()
    report.seconds = time.perf_counter() - started
    return report
