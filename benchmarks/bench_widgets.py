"""Widget benchmarks, Python side: the history table over 100,000 executions, the
execution view's latency, and the main thread's responsiveness under 50 live views.

Targets (issue 7): history table first page of 100,000 executions <= 300 ms; filter
change <= 150 ms; task finishing -> view showing it <= 250 ms. These rows measure the
kernel's share (queries, rendering, the coalescer's delay); the browser's share is
measured by the browser tests. Run alone: ``python -m benchmarks.bench_widgets``.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.storage.records import Batch, ExecutionRecord, Status
from nbconductor.widgets.coalescer import Coalescer
from nbconductor.widgets.execution_view import ExecutionView
from nbconductor.widgets.history_table import HistoryTable

_EXECUTIONS = 100_000
_START = datetime(2025, 1, 1, tzinfo=UTC)
_GATE = threading.Event()


@nc.task
def bw_gated() -> int:
    _GATE.wait(30)
    return 1


@nc.task
def bw_quick(i: int) -> int:
    return i


@nc.workflow
async def bw_one_task() -> int:
    return await bw_gated()


@nc.workflow
async def bw_many_steps(n: int) -> int:
    total = 0
    for i in range(n):
        total += await bw_quick(i)
    return total


def _median_ms(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _status(i: int) -> Status:
    if i % 1000 == 0:
        return Status.RUNNING
    return (Status.FAILED, Status.CANCELLED, Status.COMPLETED)[min(i % 10, 2)]


def _fill(path: Path) -> None:
    store = DuckDBStore(path)
    for first in range(0, _EXECUTIONS, 10_000):
        batch = Batch()
        for i in range(first, first + 10_000):
            at = _START + timedelta(seconds=i)
            status = _status(i)
            batch.new_executions.append(
                ExecutionRecord(
                    f"order-{i:07d}", f"workflow_{i % 7}", "v1", status, at, at,
                    closed_at=None if status is Status.RUNNING else at + timedelta(seconds=i % 13),
                    tags=[f"customer-{i % 97}"],
                )
            )  # fmt: skip
        store.commit(batch)
    store.close()


def _history_rows(engine: Engine) -> list[tuple[str, float, str]]:
    coalescer = Coalescer()
    rows = []
    try:
        rows.append(
            (
                "history table: first page of 100,000 executions (count, page, chart, render)",
                _median_ms(lambda: HistoryTable(engine, coalescer=coalescer, live=False), 10),
                "ms",
            )
        )
        table = HistoryTable(engine, coalescer=coalescer, live=False)
        filters = iter([{"status": ["failed"]}, {"status": []}] * 100)
        rows.append(
            (
                "history table: filter change (status), refresh with chart",
                _median_ms(lambda: (table.apply(**next(filters)), table.refresh()), 10),
                "ms",
            )
        )
        searches = iter(["customer-4", "customer-42"] * 100)
        rows.append(
            (
                "history table: text search change",
                _median_ms(lambda: (table.apply(search=next(searches)), table.refresh()), 10),
                "ms",
            )
        )
        table.apply(search="")
        pages = iter(range(1, 1000))
        rows.append(
            (
                "history table: next page (chart cached)",
                _median_ms(lambda: (table.apply(page=next(pages)), table.refresh()), 10),
                "ms",
            )
        )
        sorts = iter(["duration", "workflow"] * 100)
        rows.append(
            (
                "history table: sort by another column (SQL ORDER BY)",
                _median_ms(lambda: (table.apply(toggle_sort=next(sorts)), table.refresh()), 10),
                "ms",
            )
        )
    finally:
        coalescer.stop()
    return rows


def _view_latency(engine: Engine, repeat: int = 20) -> float:
    """Median ms from a task returning to its execution view showing Completed."""
    coalescer = Coalescer()
    latencies = []
    try:
        for _ in range(repeat):
            _GATE.clear()
            handle = engine.start(bw_one_task)
            view = ExecutionView(engine, handle.id, coalescer=coalescer)
            deadline = time.monotonic() + 10
            while not view.snapshot or not view.snapshot.running:
                if time.monotonic() > deadline:
                    raise TimeoutError("the task never started")
                time.sleep(0.002)
            done = threading.Event()
            view.panel.observe(
                lambda _c, v=view, done=done: (
                    done.set() if 'data-status="completed"' in v.panel.html else None
                ),
                names="html",
            )
            released = time.perf_counter()
            _GATE.set()
            if not done.wait(10):
                raise TimeoutError("the view never showed the completion")
            latencies.append((time.perf_counter() - released) * 1000)
            view.close()
    finally:
        _GATE.set()
        coalescer.stop()
    return statistics.median(latencies)


def _responsiveness(engine: Engine, views: int = 50) -> tuple[float, float]:
    """p95 overshoot of a 5 ms sleep on the main thread, without and with 50 live views
    of executions running 200 steps each."""

    def overshoot(duration: float) -> float:
        samples = []
        end = time.monotonic() + duration
        while time.monotonic() < end:
            start = time.perf_counter()
            time.sleep(0.005)
            samples.append((time.perf_counter() - start - 0.005) * 1000)
        return statistics.quantiles(samples, n=20)[-1]

    quiet = overshoot(1.0)
    coalescer = Coalescer()
    try:
        handles = [engine.start(bw_many_steps, 200) for _ in range(views)]
        open_views = [ExecutionView(engine, h.id, coalescer=coalescer) for h in handles]
        busy = overshoot(1.0)
        for h in handles:
            h.result(timeout=120)
        for view in open_views:
            view.close()
    finally:
        coalescer.stop()
    return quiet, busy


def run() -> list[tuple[str, float, str]]:
    """Measure the widgets; returns (name, value, unit) rows."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        _fill(path)
        engine = Engine(path, make_default=False)
        try:
            rows = _history_rows(engine)
            rows.append(
                (
                    "execution view: task finished -> view shows it (median of 20)",
                    _view_latency(engine),
                    "ms",
                )
            )
            quiet, busy = _responsiveness(engine)
            rows.append(("main thread: 5 ms sleep overshoot p95, idle", quiet, "ms"))
            rows.append(
                ("main thread: 5 ms sleep overshoot p95, 50 live views running", busy, "ms")
            )
        finally:
            engine.stop(grace=0)
    return rows


def main() -> None:
    rows = run()
    width = max(len(name) for name, _, _ in rows)
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:10.3f} {unit}")


if __name__ == "__main__":
    main()
