"""The history table's data and HTML: a page of executions, counts over time.

Everything is paged and aggregated in the store: a page is ``list_executions`` with
limit/offset plus ``count_executions``; sorting on another column than the start time,
the workflow names and the chart's bucketed counts are one read-only SQL query each
(``store.sql``), so 100,000 executions never come into Python. The memory store (tests,
users' unit tests) has no SQL; it holds every record in Python already and is sorted
and counted there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from nbconductor.storage.duckdb import sql as duckdb_sql
from nbconductor.storage.records import ExecutionFilter, ExecutionRecord, Status
from nbconductor.widgets.markup import (
    BORDER,
    FONT,
    MONO,
    MUTED,
    badge,
    esc,
    format_duration,
    format_time,
    progress_bar,
    since,
    time_tag,
    tone_color,
)
from nbconductor.widgets.status import badge_for

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = (
    "PAGE_SIZES",
    "RANGES",
    "SORTS",
    "Chart",
    "HistoryPage",
    "HistoryQuery",
    "load_chart",
    "load_page",
    "render",
    "summary_text",
    "workflow_names",
)

#: Columns the table sorts by, and the SQL expression of each.
SORTS = {
    "started": "created_at",
    "id": "id",
    "workflow": "workflow",
    "status": "status",
    "duration": "coalesce(closed_at, ?::TIMESTAMP) - created_at",
}
PAGE_SIZES = (25, 50, 100, 200)
#: Time range presets: how far back from now (None: no bound; "custom": since/until).
RANGES = {"any": None, "1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "custom": None}
_STATUSES = tuple(s.value for s in Status)
_CHART_BUCKETS = 40
_NICE_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                21600, 43200, 86400, 2 * 86400, 7 * 86400, 30 * 86400)  # fmt: skip


@dataclass(frozen=True)
class HistoryQuery:
    """The table's filters, sort and page. Build changes with :meth:`merged`."""

    status: tuple[str, ...] = ()
    workflow: str | None = None
    search: str = ""
    range: str = "any"
    since: datetime | None = None  # with range="custom"
    until: datetime | None = None
    sort: str = "started"
    descending: bool = True
    page: int = 0
    page_size: int = 50

    def merged(self, changes: Mapping[str, Any]) -> HistoryQuery:
        """A copy with ``changes`` applied, validated (the browser sends these).

        ``toggle_sort=COLUMN`` sorts by that column, or flips the order when it is the
        current one; ``toggle_status=STATUS`` adds or removes one status. Any change
        but ``page`` goes back to the first page.

        Raises:
            ValueError: an unknown key or value, naming it.
        """
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "toggle_sort":
                _check(value in SORTS, key, value, SORTS)
                same = value == self.sort
                values["sort"] = value
                values["descending"] = not self.descending if same else value != "workflow"
            elif key == "toggle_status":
                _check(value in _STATUSES, key, value, _STATUSES)
                current = list(values.get("status", self.status))
                values["status"] = tuple(
                    [s for s in current if s != value] if value in current else [*current, value]
                )
            elif key == "status":
                items = [value] if isinstance(value, (str, Status)) else list(value or ())
                names = tuple(_status_value(s) for s in items)
                values["status"] = tuple(s for s in _STATUSES if s in names)
            elif key in ("workflow", "search"):
                text = str(value or "").strip()
                values[key] = (text or None) if key == "workflow" else text
            elif key == "range":
                _check(value in RANGES, key, value, RANGES)
                values[key] = value
            elif key in ("since", "until"):
                values[key] = _as_time(value, key)
                values["range"] = "custom"
            elif key == "sort":
                _check(value in SORTS, key, value, SORTS)
                values[key] = value
            elif key == "descending":
                values[key] = bool(value)
            elif key == "page":
                values[key] = max(0, int(value))
            elif key == "page_size":
                _check(int(value) in PAGE_SIZES, key, value, PAGE_SIZES)
                values[key] = int(value)
            else:
                raise ValueError(
                    f"the history table has no filter {key!r}; use status, workflow, search, "
                    "range, since, until, sort, descending, page or page_size"
                )
        if "page" not in values and values:
            values["page"] = 0
        return replace(self, **values)

    def filter(self, now: datetime) -> ExecutionFilter:
        """The store filter (without limit and offset)."""
        since, until = self.since, self.until
        if self.range != "custom":
            back = RANGES.get(self.range)
            since = now - timedelta(seconds=back) if back else None
            until = None
        return ExecutionFilter(
            status=[Status(s) for s in self.status] or None,
            workflow=self.workflow,
            since=since,
            until=until,
            search=self.search or None,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the filter bar (the ``query`` trait)."""
        return {
            "status": list(self.status),
            "workflow": self.workflow or "",
            "search": self.search,
            "range": self.range,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "sort": self.sort,
            "descending": self.descending,
            "page": self.page,
            "page_size": self.page_size,
        }

    def describe(self) -> str:
        """The filters in words (empty when there are none)."""
        parts = []
        if self.status:
            parts.append("status " + "/".join(self.status))
        if self.workflow:
            parts.append(f"workflow {self.workflow}")
        if self.search:
            parts.append(f"matching {self.search!r}")
        if self.range not in ("any", "custom"):
            parts.append(f"in the last {self.range}")
        elif self.range == "custom" and (self.since or self.until):
            parts.append(
                f"started {format_time(self.since) or '…'} to {format_time(self.until) or '…'}"
            )
        return ", ".join(parts)


def _check(ok: bool, key: str, value: Any, allowed) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r} is not valid; use one of {', '.join(map(str, allowed))}")


def _status_value(value: Any) -> str:
    text = str(getattr(value, "value", value)).lower()
    text = {"timedout": "timed_out", "continuedasnew": "continued_as_new"}.get(text, text)
    _check(text in _STATUSES, "status", value, _STATUSES)
    return text


def _as_time(value: Any, key: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"{key}={value!r} is not a time; give a datetime or ISO 8601 text")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


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


# ================================================================== loading


def load_page(engine: Engine, query: HistoryQuery, now: datetime | None = None) -> HistoryPage:
    """The page ``query`` asks for (clamped to the last page), paged in the store."""
    store = engine.store
    now = now or engine.clock.now()
    f = query.filter(now)
    total = store.count_executions(f)
    pages = max(1, math.ceil(total / query.page_size))
    page = min(query.page, pages - 1)
    offset = page * query.page_size
    sql = getattr(store, "sql", None)
    if query.sort == "started":
        f.limit, f.offset, f.newest_first = query.page_size, offset, query.descending
        rows = store.list_executions(f)
    elif sql is not None:
        rows = _sql_page(sql, f, query, now, offset)
    else:
        rows = _python_page(store.list_executions(f), query, now, offset)
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


def _sql_page(sql, f: ExecutionFilter, query: HistoryQuery, now: datetime, offset: int) -> list:
    where, params = duckdb_sql.where(f)
    order = "DESC" if query.descending else "ASC"
    column = SORTS[query.sort]
    if "?" in column:
        params.append(duckdb_sql.db_time(now))
    text = (
        f"SELECT {duckdb_sql.EXECUTION_COLUMNS} FROM executions{where} "
        f"ORDER BY {column} {order}, created_at {order}, id {order} LIMIT ? OFFSET ?"
    )
    _, rows = sql(text, [*params, query.page_size, offset])
    return [duckdb_sql.execution_row(row) for row in rows]


def _python_page(records: list, query: HistoryQuery, now: datetime, offset: int) -> list:
    def key(r: ExecutionRecord):
        if query.sort == "duration":
            value: Any = ((r.closed_at or now) - r.created_at).total_seconds()
        elif query.sort == "status":
            value = r.status.value
        else:
            value = getattr(r, query.sort)
        return (value, r.created_at, r.id)

    ordered = sorted(records, key=key, reverse=query.descending)
    return ordered[offset : offset + query.page_size]


def load_chart(engine: Engine, query: HistoryQuery, now: datetime | None = None) -> Chart:
    """Executions matching ``query`` counted per time bucket and status (in SQL)."""
    store = engine.store
    f = query.filter(now or engine.clock.now())
    sql = getattr(store, "sql", None)
    if sql is None:
        records = store.list_executions(f)
        if not records:
            return Chart(60.0, (), {})
        low = min(r.created_at for r in records)
        high = max(r.created_at for r in records)
        width = _nice_width((high - low).total_seconds())
        counts: dict[tuple[int, str], int] = {}
        for r in records:
            bucket = math.floor(r.created_at.timestamp() / width)
            counts[bucket, r.status.value] = counts.get((bucket, r.status.value), 0) + 1
        rows = [(b, s, n) for (b, s), n in counts.items()]
    else:
        where, params = duckdb_sql.where(f)
        _, span = sql(f"SELECT min(created_at), max(created_at) FROM executions{where}", params)
        low, high = span[0]
        if low is None:
            return Chart(60.0, (), {})
        width = _nice_width((high - low).total_seconds())
        _, rows = sql(
            "SELECT CAST(floor(epoch(created_at) / ?) AS BIGINT) AS bucket, status, count(*) "
            f"FROM executions{where} GROUP BY 1, 2",
            [width, *params],
        )
    by_bucket: dict[int, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for bucket, status, n in rows:
        by_bucket.setdefault(int(bucket), {})[status] = n
        totals[status] = totals.get(status, 0) + n
    # At least a full chart's width of slots, so that one busy minute is not one wide bar.
    last = max(by_bucket)
    first = min(min(by_bucket), last - _CHART_BUCKETS + 1)
    buckets = tuple(
        (datetime.fromtimestamp(b * width, timezone.utc), by_bucket.get(b, {}))
        for b in range(first, last + 1)
    )
    return Chart(width, buckets, totals)


def _nice_width(span_seconds: float) -> float:
    target = span_seconds / _CHART_BUCKETS
    return float(next((w for w in _NICE_WIDTHS if w >= target), _NICE_WIDTHS[-1]))


def workflow_names(engine: Engine) -> list[str]:
    """The workflow names that have executions (or recorded definitions)."""
    sql = getattr(engine.store, "sql", None)
    if sql is not None:
        _, rows = sql("SELECT DISTINCT workflow FROM executions ORDER BY 1")
        return [r[0] for r in rows]
    return sorted({d.name for d in engine.store.definitions() if d.kind == "workflow"})


# ================================================================== rendering

_COLUMNS = (
    ("id", "Execution", True),
    ("workflow", "Workflow", True),
    ("status", "Status", True),
    ("started", "Started", True),
    ("duration", "Duration", True),
    ("progress", "Progress", False),
    ("parent", "Parent", False),
    ("tags", "Tags", False),
)
_CELL = f"padding:2px 8px;border-bottom:1px solid {BORDER};text-align:left;white-space:nowrap"


def summary_text(page: HistoryPage) -> str:
    """The deterministic ``text/plain``: how many executions match, and the filters."""
    what = page.query.describe()
    noun = "execution" if page.total == 1 else "executions"
    return f"<History: {page.total} {noun}{' (' + what + ')' if what else ''}>"


def render(
    page: HistoryPage, chart: Chart | None = None, *, selected: str | None = None, live: bool = True
) -> str:
    """The table (and with ``chart``, the chart above it) as HTML.

    The static fallback (``live=False``) leaves out the chart, whose buckets depend on
    when executions ran, and shows counts by status instead when given a chart.
    """
    q = page.query
    parts = [f'<div class="nbc-history" data-testid="nbc-history" style="{FONT}">']
    if chart is not None:
        parts.append(_chart(chart, q) if live else _counts(chart))
    plural = "" if page.total == 1 else "s"
    filters = q.describe()
    parts.append(
        f'<div class="nbc-history-summary" style="{MUTED};margin:4px 0">'
        f'<span data-testid="nbc-history-total">{page.total:,}</span> execution{plural}'
        f"{' · ' + esc(filters) if filters else ''}</div>"
    )
    head = []
    for key, label, sortable in _COLUMNS:
        if sortable:
            arrow = (" ▼" if q.descending else " ▲") if q.sort == key else ""
            head.append(
                f'<th data-nbc-action="sort" data-nbc-value="{key}" data-testid="nbc-sort-{key}" '
                f'aria-sort="{_aria(q, key)}" style="{_CELL};cursor:pointer">{label}{arrow}</th>'
            )
        else:
            head.append(f'<th style="{_CELL}">{label}</th>')
    body = [_row(page, r, selected) for r in page.rows]
    if not body:
        body.append(
            f'<tr><td colspan="{len(_COLUMNS)}" style="{_CELL};{MUTED}">'
            "no executions match</td></tr>"
        )
    parts.append(
        '<div style="overflow-x:auto"><table class="nbc-history-table" '
        'style="border-collapse:collapse;width:100%">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
    parts.append(_pager(page, live))
    parts.append("</div>")
    return "".join(parts)


def _aria(q: HistoryQuery, key: str) -> str:
    if q.sort != key:
        return "none"
    return "descending" if q.descending else "ascending"


def _row(page: HistoryPage, r: ExecutionRecord, selected: str | None) -> str:
    live = page.live.get(r.id)
    b = live["badge"] if live else badge_for(r.status)
    if r.closed_at is not None:
        duration = format_duration((r.closed_at - r.created_at).total_seconds())
    else:
        duration = since(r.created_at, page.now)
    progress = ""
    if live is not None:
        if live["fraction"] is not None:
            progress = progress_bar(live["fraction"], testid="nbc-row-progress")
        elif live["tasks"]:
            progress = f"{live['tasks']} task{'s' if live['tasks'] != 1 else ''} running"
    parent = ""
    if r.parent_id:
        parent = (
            f'<a data-nbc-action="open" data-nbc-value="{esc(r.parent_id)}" '
            f'style="cursor:pointer;color:var(--jp-content-link-color,#1976d2)">'
            f"{esc(r.parent_id)}</a>"
        )
    tags = " ".join(f'<code style="{MONO}">{esc(t)}</code>' for t in r.tags)
    mark = ";background:var(--jp-layout-color2,#eee)" if r.id == selected else ""
    return (
        f'<tr class="nbc-row" data-testid="nbc-history-row" data-nbc-action="open" '
        f'data-nbc-value="{esc(r.id)}" data-execution-id="{esc(r.id)}" '
        f'data-status="{esc(r.status.value)}" style="cursor:pointer{mark}">'
        f'<td style="{_CELL}"><code style="{MONO}">{esc(r.id)}</code></td>'
        f'<td style="{_CELL}">{esc(r.workflow)}</td>'
        f'<td style="{_CELL}">{badge(b.label, b.tone, title=b.detail)}</td>'
        f'<td style="{_CELL}">{time_tag(r.created_at)}</td>'
        f'<td style="{_CELL}">{duration}</td>'
        f'<td style="{_CELL};min-width:80px">{progress}</td>'
        f'<td style="{_CELL}">{parent}</td>'
        f'<td style="{_CELL}">{tags}</td></tr>'
    )


def _pager(page: HistoryPage, live: bool) -> str:
    text = f"page {page.page + 1} of {page.pages:,}"
    if not live:
        return f'<div style="{MUTED};margin-top:4px">{text}</div>'

    def button(label: str, target: int, testid: str, enabled: bool) -> str:
        disabled = "" if enabled else " disabled"
        return (
            f'<button class="nbc-page-button" data-nbc-action="page" data-nbc-value="{target}" '
            f'data-testid="{testid}"{disabled}>{label}</button>'
        )

    return (
        '<div class="nbc-pager" style="display:flex;gap:8px;align-items:center;margin-top:4px">'
        f"{button('‹ Previous', page.page - 1, 'nbc-page-prev', page.page > 0)}"
        f'<span data-testid="nbc-page-label" style="{MUTED}">{text}</span>'
        f"{button('Next ›', page.page + 1, 'nbc-page-next', page.page + 1 < page.pages)}"
        "</div>"
    )


def _counts(chart: Chart) -> str:
    if not chart.counts:
        return ""
    items = [f"{chart.counts[s.value]:,} {s.title}" for s in Status if chart.counts.get(s.value)]
    return f'<div class="nbc-history-counts" style="{MUTED}">{esc(", ".join(items))}</div>'


def _chart(chart: Chart, q: HistoryQuery) -> str:
    """Stacked bars of executions started per bucket, coloured by status, with a legend
    whose entries toggle the status filter."""
    if not chart.buckets:
        return ""
    order = [s.value for s in Status]
    peak = max(sum(c.values()) for _, c in chart.buckets) or 1
    height, bar = 48, 10
    rects = []
    for i, (start, counts) in enumerate(chart.buckets):
        y = float(height)
        for status in order:
            n = counts.get(status, 0)
            if not n:
                continue
            h = n / peak * height
            y -= h
            rects.append(
                f'<rect x="{i * bar + 1}" y="{y:.2f}" width="{bar - 2}" height="{h:.2f}" '
                f'style="fill:{tone_color(status)}"></rect>'
            )
        label = ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s)) or "none"
        rects.append(
            f'<rect x="{i * bar}" y="0" width="{bar}" height="{height}" fill="transparent">'
            f"<title>{esc(format_time(start))} UTC: {esc(label)}</title></rect>"
        )
    legend = []
    for status in order:
        n = chart.counts.get(status, 0)
        if not n:
            continue
        active = status in q.status
        legend.append(
            f'<span data-nbc-action="toggle-status" data-nbc-value="{status}" '
            f'data-testid="nbc-chart-status-{status}" style="cursor:pointer;'
            f'{"font-weight:700;" if active else ""}white-space:nowrap">'
            f'<span style="display:inline-block;width:8px;height:8px;border-radius:2px;'
            f'background:{tone_color(status)}"></span> {esc(Status(status).title)} {n:,}</span>'
        )
    first, last = chart.buckets[0][0], chart.buckets[-1][0]
    return (
        '<div class="nbc-chart" data-testid="nbc-chart" style="margin:4px 0">'
        f'<svg viewBox="0 0 {len(chart.buckets) * bar} {height}" preserveAspectRatio="none" '
        f'style="width:100%;height:{height}px;display:block">{"".join(rects)}</svg>'
        f'<div style="display:flex;justify-content:space-between;{MUTED}">'
        f"<span>{time_tag(first)}</span><span>per {format_duration(chart.width)}</span>"
        f"<span>{time_tag(last)}</span></div>"
        f'<div style="display:flex;flex-wrap:wrap;gap:10px">{"".join(legend)}</div></div>'
    )
