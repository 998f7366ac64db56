"""Benchmarks of the DuckDB history store: commit latency and the reads the UI makes.

Run alone with ``python -m benchmarks.bench_store``; ``run()`` returns the rows for the
suite-wide table.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import (
    Batch,
    EventKind,
    EventRecord,
    ExecutionFilter,
    ExecutionRecord,
    ExecutionUpdate,
    Status,
)

_EXECUTIONS = 100_000
_EVENTS_PER_EXECUTION = 3
_LONG_HISTORY = 3_000
_START = datetime(2025, 1, 1, tzinfo=UTC)


def _median_ms(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _event(execution_id: str, seq: int, at: datetime) -> EventRecord:
    return EventRecord(
        execution_id, seq, EventKind.TASK_COMPLETED, at, command=seq, name="fetch",
        data='{"result":{"rows":12,"ok":true}}',
    )  # fmt: skip


def _status(i: int) -> Status:
    if i % 100 == 0:
        return Status.RUNNING
    return Status.FAILED if i % 10 == 1 else Status.COMPLETED


def _fill(store: DuckDBStore) -> None:
    """100,000 executions with a few events each, then one with a long history."""
    per_batch = 1_000
    for first in range(0, _EXECUTIONS, per_batch):
        batch = Batch()
        for i in range(first, first + per_batch):
            at = _START + timedelta(seconds=i)
            batch.new_executions.append(
                ExecutionRecord(
                    f"order-{i:07d}", f"workflow_{i % 7}", "v1", _status(i), at, at,
                    input='{"args":["A-17",42.0],"kwargs":{}}', tags=[f"customer-{i % 97}"],
                )
            )  # fmt: skip
            batch.events.extend(
                _event(f"order-{i:07d}", seq, at) for seq in range(1, _EVENTS_PER_EXECUTION + 1)
            )
        store.commit(batch)
    at = _START + timedelta(seconds=_EXECUTIONS)
    store.commit(
        Batch(new_executions=[ExecutionRecord("long", "workflow_0", "v1", Status.RUNNING, at, at)])
    )
    # The long history arrives in small ticks, interleaved with nothing else; that is
    # the worst case for reading it back only if the ticks are spread out, so spread it.
    for first in range(1, _LONG_HISTORY + 1, 100):
        store.commit(Batch(events=[_event("long", seq, at) for seq in range(first, first + 100)]))


def run() -> list[tuple[str, float, str]]:
    """Measure the store; returns (name, value, unit) rows."""
    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "bench.duckdb")
        now = datetime.now(UTC)
        seq = itertools.count(1, 2)

        def two_events() -> None:
            s = next(seq)
            store.commit(Batch(events=[_event("hot", s, now), _event("hot", s + 1, now)]))

        results.append(("commit 2 events (median of 500)", _median_ms(two_events, 500), "ms"))
        store.commit(
            Batch(new_executions=[ExecutionRecord("hot", "w", "v1", Status.RUNNING, now, now)])
        )

        def events_and_update() -> None:
            s = next(seq)
            store.commit(
                Batch(
                    updates=[ExecutionUpdate("hot", now, condition="")],
                    events=[_event("hot", s, now), _event("hot", s + 1, now)],
                )
            )

        results.append(
            (
                "commit 2 events + 1 execution update (median of 200)",
                _median_ms(events_and_update, 200),
                "ms",
            )
        )
        big = [_event("bulk", s, now) for s in range(1, 1_001)]
        results.append(
            (
                "commit 1,000 events (median of 20)",
                _median_ms(lambda: store.commit(Batch(events=big)), 20),
                "ms",
            )
        )
        start = time.perf_counter()
        _fill(store)
        results.append(
            ("fill 100,000 executions + 300,000 events", time.perf_counter() - start, "s")
        )
        first_page = ExecutionFilter(limit=50)
        failed_page = ExecutionFilter(status=[Status.FAILED], limit=50)
        searched = ExecutionFilter(search="customer-42", limit=50)
        for name, f in (
            ("list_executions first page of 50, 100k executions", first_page),
            ("list_executions failed, page of 50, 100k executions", failed_page),
            ("list_executions search tag, page of 50, 100k executions", searched),
        ):
            assert len(store.list_executions(f)) == 50
            results.append((name, _median_ms(lambda f=f: store.list_executions(f), 20), "ms"))
        results.append(
            (
                "count_executions failed, 100k executions",
                _median_ms(
                    lambda: store.count_executions(ExecutionFilter(status=[Status.FAILED])), 20
                ),
                "ms",
            )
        )
        assert len(store.load_history("long")) == _LONG_HISTORY
        results.append(
            (
                "load_history of 3,000 events (file with 300k events)",
                _median_ms(lambda: store.load_history("long"), 20),
                "ms",
            )
        )
        assert [e.seq for e in store.load_history("order-0050000", after_seq=1)] == [2, 3]
        results.append(
            (
                "load_history of a 3-event history after seq 1 (file with 300k events)",
                _median_ms(lambda: store.load_history("order-0050000", after_seq=1), 50),
                "ms",
            )
        )
        results.append(
            (
                "get_execution by id, 100k executions",
                _median_ms(lambda: store.get_execution("order-0050000"), 50),
                "ms",
            )
        )
        store.close()
    return results


def main() -> None:
    rows = run()
    width = max(len(name) for name, _, _ in rows)
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:10.3f} {unit}")


if __name__ == "__main__":
    main()
