"""The history table's data: a page of executions and the chart of them over time.

Everything is paged, sorted and counted in the store (``list_executions`` with limit
and offset, ``count_executions``, ``created_span``, ``counts_over_time``), so 100,000
executions never come into Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from nbconductor.storage.records import ExecutionRecord, Status
from nbconductor.widgets.history_query import HistoryQuery
from nbconductor.widgets.status import badge_for

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = ("Chart", "HistoryPage", "load_chart", "load_page")

_CHART_BUCKETS = 40
_NICE_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                21600, 43200, 86400, 2 * 86400, 7 * 86400, 30 * 86400)  # fmt: skip


@dataclass(frozen=True)
class HistoryPage:
    """One page of the table: its rows, the count of all matches, the page number."""

    query: HistoryQuery
    rows: tuple[ExecutionRecord, ...]
    total: int
    page: int
    pages: int
    now: datetime
    live: Mapping[str, dict] = field(default_factory=dict)  # running rows: badge & progress


@dataclass(frozen=True)
class Chart:
    """Executions started per time bucket, by status."""

    width: float  # seconds per bucket
    buckets: tuple[tuple[datetime, Mapping[str, int]], ...]
    counts: Mapping[str, int]  # totals by status


def load_page(engine: Engine, query: HistoryQuery, now: datetime | None = None) -> HistoryPage:
    """The page ``query`` asks for (clamped to the last page), paged in the store."""
    engine.flush()  # a closed execution's row follows its result by one commit
    store = engine.store
    now = now or engine.clock.now()
    f = query.filter(now)
    total = store.count_executions(f)
    pages = max(1, math.ceil(total / query.page_size))
    page = min(query.page, pages - 1)
    f.limit, f.offset = query.page_size, page * query.page_size
    rows = store.list_executions(f)
    live = {}
    for record in rows:
        if record.status is Status.RUNNING:
            progress = engine.progress_of(record.id)
            waiting = engine.waiting_signals(record.id)
            live[record.id] = {
                "badge": badge_for(
                    record.status,
                    condition=record.condition,
                    waiting_signals=waiting,
                    tasks=progress["tasks"],
                ),
                "fraction": progress["fraction"],
                "tasks": sum(1 for t in progress["tasks"] if t.get("running")),
            }
    return HistoryPage(query, tuple(rows), total, page, pages, now, live)


def load_chart(engine: Engine, query: HistoryQuery, now: datetime | None = None) -> Chart:
    """Executions matching ``query`` counted per time bucket and status (in the store)."""
    store = engine.store
    f = query.filter(now or engine.clock.now())
    span = store.created_span(f)
    if span is None:
        return Chart(60.0, (), {})
    width = _nice_width((span[1] - span[0]).total_seconds())
    by_bucket: dict[int, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for start, counts in store.counts_over_time(width, f).items():
        slot = by_bucket[round(start.timestamp() / width)] = {}
        for status, n in counts.items():
            slot[status.value] = n
            totals[status.value] = totals.get(status.value, 0) + n
    # At least a full chart's width of slots, so that one busy minute is not one wide bar.
    last = max(by_bucket)
    first = min(min(by_bucket), last - _CHART_BUCKETS + 1)
    buckets = tuple(
        (datetime.fromtimestamp(b * width, UTC), by_bucket.get(b, {}))
        for b in range(first, last + 1)
    )
    return Chart(width, buckets, totals)


def _nice_width(span_seconds: float) -> float:
    target = span_seconds / _CHART_BUCKETS
    return float(next((w for w in _NICE_WIDTHS if w >= target), _NICE_WIDTHS[-1]))
