"""The history table as HTML: the chart, the filter summary, the rows and the pager.

The same HTML is the live widget's picture and the static ``text/html`` fallback
(``live=False``: counts instead of the chart, no buttons).
"""

from __future__ import annotations

import json

from nbconductor.engine.failure import summary
from nbconductor.storage.records import ExecutionRecord, Status
from nbconductor.widgets.history_page import Chart, HistoryPage
from nbconductor.widgets.history_query import HistoryQuery
from nbconductor.widgets.markup import (
    BORDER,
    FONT,
    MONO,
    MUTED,
    ago,
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

__all__ = ("render", "summary_text")

_COLUMNS = (
    ("id", "Execution", True),
    ("workflow", "Workflow", True),
    ("status", "Status", True),
    ("started", "Started", True),
    ("duration", "Duration", True),
    ("progress", "Progress", False),
    ("condition", "Condition", False),
    ("error", "Error", False),
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
    body = [_row(page, r, selected, live) for r in page.rows]
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


def _error_summary(r: ExecutionRecord) -> str:
    if not r.error or r.status is Status.CONTINUED_AS_NEW:
        return ""
    try:
        value = json.loads(r.error)
    except ValueError:
        return r.error
    return summary(value) if isinstance(value, dict) else str(value)


def _row(page: HistoryPage, r: ExecutionRecord, selected: str | None, live_view: bool) -> str:
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
    # Why an open execution does not progress (blocked, waiting for its definition or
    # for a queue), and how a closed one failed, without opening it.
    condition = esc(r.condition) if r.condition and not r.status.closed else ""
    error = _error_summary(r)
    error_cell = (
        f'<span title="{esc(error)}" style="color:var(--jp-error-color1,#d32f2f)">'
        f"{esc(error if len(error) <= 90 else error[:89] + '…')}</span>"
        if error
        else ""
    )
    # Relative in the live view ("3 min ago"); the saved snapshot keeps the exact time,
    # which the notebook tests can compare.
    started = ago(r.created_at, page.now) if live_view else time_tag(r.created_at)
    mark = ";background:var(--jp-layout-color2,#eee)" if r.id == selected else ""
    return (
        f'<tr class="nbc-row" data-testid="nbc-history-row" data-nbc-action="open" '
        f'data-nbc-value="{esc(r.id)}" data-execution-id="{esc(r.id)}" '
        f'data-status="{esc(r.status.value)}" style="cursor:pointer{mark}">'
        f'<td style="{_CELL}"><code style="{MONO}">{esc(r.id)}</code></td>'
        f'<td style="{_CELL}">{esc(r.workflow)}</td>'
        f'<td style="{_CELL}">{badge(b.label, b.tone, title=b.detail)}</td>'
        f'<td style="{_CELL}">{started}</td>'
        f'<td style="{_CELL}">{duration}</td>'
        f'<td style="{_CELL};min-width:80px">{progress}</td>'
        f'<td style="{_CELL}" data-testid="nbc-row-condition">{condition}</td>'
        f'<td style="{_CELL}" data-testid="nbc-row-error">{error_cell}</td>'
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
