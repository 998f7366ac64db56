"""Retention: prune 100,000 closed executions from a history file.

The file is built fast, by direct appends through the store (``DuckDBStore.commit`` in
batches of 5,000 executions with 8 events each: started, three tasks scheduled and
completed, completed), not by running workflows; 1,000 open executions stay. Reported:
the prune's time, the longest the writer lock was held by one delete transaction (what
an engine's commit may wait for), the file's size before and after, and its size after
writing as much history again (DuckDB's checkpoint frees the deleted blocks for reuse
and truncates only free blocks at the file's end, so reuse is what reclaiming means).

Run alone with ``python -m benchmarks.bench_prune [N]``.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import Batch, EventKind, EventRecord, ExecutionRecord, Status

_START = datetime(2025, 1, 1, tzinfo=UTC)
_KINDS = (
    [EventKind.EXECUTION_STARTED]
    + [EventKind.TASK_SCHEDULED, EventKind.TASK_COMPLETED] * 3
    + [EventKind.EXECUTION_COMPLETED]
)


def _fill(store: DuckDBStore, prefix: str, n: int, *, status: Status = Status.COMPLETED) -> None:
    for first in range(0, n, 5000):
        records, events = [], []
        for i in range(first, min(n, first + 5000)):
            at = _START + timedelta(seconds=i)
            id_ = f"{prefix}-{i:07d}"
            closed = at + timedelta(seconds=1) if status.closed else None
            records.append(
                ExecutionRecord(
                    id_, "orders", "v1", status, at, at, input=f'{{"args":["A-{i}",{i}.5]}}',
                    closed_at=closed, result=f'"receipt-{i}"' if status.closed else None,
                )
            )  # fmt: skip
            events.extend(
                EventRecord(
                    id_, seq, kind, at, command=seq // 2 or None,
                    name="charge" if "Task" in kind.value else None,
                    data=f'{{"order":"A-{i}","amount":{i}.5,"step":{seq}}}',
                )
                for seq, kind in enumerate(_KINDS, start=1)
            )  # fmt: skip
        store.commit(Batch(new_executions=records, events=events))


def measure(n: int = 100_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "prune.duckdb")
        try:
            started = time.perf_counter()
            _fill(store, "old", n)
            _fill(store, "open", 1000, status=Status.RUNNING)
            store._checkpoint()
            built = time.perf_counter() - started
            # An engine's commit during the prune: how long does it wait for the lock?
            waits: list[float] = []
            stop = threading.Event()

            def writer() -> None:
                i = 0
                while not stop.is_set():
                    t = time.perf_counter()
                    store.commit(
                        Batch(
                            events=[
                                EventRecord(
                                    "open-0000000", 100 + i, EventKind.SIGNAL_RECEIVED, _START
                                )
                            ]
                        )
                    )
                    waits.append(time.perf_counter() - t)
                    i += 1
                    stop.wait(0.01)

            thread = threading.Thread(target=writer)
            thread.start()
            report = store.prune(_START + timedelta(days=3650))
            stop.set()
            thread.join()
            _fill(store, "again", n)
            store._checkpoint()
            refilled = store._file_bytes()
            return {
                "executions": report.executions,
                "events": report.events,
                "build_s": built,
                "prune_s": report.seconds,
                "per_1000_s": report.seconds / max(1, report.executions) * 1000,
                "max_commit_wait_s": max(waits) if waits else 0.0,
                "mb_before": report.bytes_before / 1e6,
                "mb_after": report.bytes_after / 1e6,
                "mb_after_refill": refilled / 1e6,
            }
        finally:
            store.close()


def run() -> list[tuple[str, float, str]]:
    m = measure()
    return [
        ("prune 100k closed executions (s)", m["prune_s"], "report"),
        ("prune: longest commit wait during it (s)", m["max_commit_wait_s"], "one batch"),
        ("prune: file before (MB)", m["mb_before"], ""),
        ("prune: file after (MB)", m["mb_after"], ""),
        ("prune: after refilling 100k (MB)", m["mb_after_refill"], "<= before (reused)"),
    ]


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for key, value in measure(count).items():
        print(f"{key:20} {value:12.3f}")
