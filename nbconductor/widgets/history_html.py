"""The history table as HTML: the chart, the filter summary, the rows and the pager.

The same HTML is the live widget's picture and the static ``text/html`` fallback
(``live=False``: counts instead of the chart, no buttons).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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

__all__ = ("Bulk", "render", "summary_text")

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


@dataclass(frozen=True)
class Bulk:
    """The live table's bulk actions: the rows ticked, the action awaiting confirmation
    (``cancel`` or ``terminate``) and what the last one did."""

    checked: frozenset[str] = frozenset()
    confirming: str | None = None
    notice: str = ""


def render(
    page: HistoryPage,
    chart: Chart | None = None,
    *,
    selected: str | None = None,
    live: bool = True,
    bulk: Bulk | None = None,
) -> str:
    """The table (and with ``chart``, the chart above it) as HTML.

    The static fallback (``live=False``) leaves out the chart, whose buckets depend on
    when executions ran, and shows counts by status instead when given a chart. The
    live table (with ``bulk``) has a box on each open execution's row and, once some
    are ticked, buttons to cancel or terminate them that ask first.
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
    if bulk is not None:
        parts.append(_bulk_bar(bulk))
    head = []
    if bulk is not None:
        openable = [r.id for r in page.rows if not r.status.closed]
        every = bool(openable) and all(i in bulk.checked for i in openable)
        head.append(
            f'<th style="{_CELL}"><input type="checkbox" class="nbc-check" '
            f'data-nbc-action="check-page" data-nbc-value="{"none" if every else "all"}" '
            f'data-testid="nbc-check-page" title="tick every open execution on this page"'
            f"{' checked' if every else ''}{'' if openable else ' disabled'}></th>"
        )
    for key, label, sortable in _COLUMNS:
        if sortable:
            arrow = (" ▼" if q.descending else " ▲") if q.sort == key else ""
            head.append(
                f'<th data-nbc-action="sort" data-nbc-value="{key}" data-testid="nbc-sort-{key}" '
                f'aria-sort="{_aria(q, key)}" style="{_CELL};cursor:pointer">{label}{arrow}</th>'
            )
        else:
            head.append(f'<th style="{_CELL}">{label}</th>')
    body = [_row(page, r, selected, live, bulk) for r in page.rows]
    if not body:
        body.append(
            f'<tr><td colspan="{len(_COLUMNS) + (bulk is not None)}" style="{_CELL};{MUTED}">'
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


def _bulk_bar(bulk: Bulk) -> str:
    """Cancel or terminate the ticked executions, after a confirmation."""
    n = len(bulk.checked)
    parts = [
        '<div class="nbc-bulk" data-testid="nbc-bulk" style="display:flex;gap:8px;'
        'align-items:center;flex-wrap:wrap;margin:4px 0">'
    ]
    noun = "execution" if n == 1 else "executions"
    if bulk.confirming and n:
        verb = bulk.confirming
        warning = (
            "none of their code runs after this"
            if verb == "terminate"
            else "each is asked to stop at its next step"
        )
        parts.append(
            f'<span data-testid="nbc-bulk-question">{verb.title()} {n} {noun}? {warning}.</span>'
            f'<button class="nbc-page-button" data-nbc-action="bulk-confirm" '
            f'data-nbc-value="{verb}" data-testid="nbc-bulk-confirm">Yes, {verb} {n}</button>'
            '<button class="nbc-page-button" data-nbc-action="bulk-keep" '
            'data-testid="nbc-bulk-keep">No, keep them</button>'
        )
    elif n:
        parts.append(
            f'<span style="{MUTED}">{n} {noun} ticked</span>'
            '<button class="nbc-page-button" data-nbc-action="bulk" data-nbc-value="cancel" '
            f'data-testid="nbc-bulk-cancel">Cancel {n}…</button>'
            '<button class="nbc-page-button" data-nbc-action="bulk" data-nbc-value="terminate" '
            f'data-testid="nbc-bulk-terminate">Terminate {n}…</button>'
            '<button class="nbc-page-button" data-nbc-action="check-page" data-nbc-value="clear" '
            'data-testid="nbc-bulk-clear">Untick all</button>'
        )
    if bulk.notice:
        parts.append(
            f'<span data-testid="nbc-bulk-notice" style="{MUTED}">{esc(bulk.notice)}</span>'
        )
    parts.append("</div>")
    return "".join(parts) if n or bulk.notice else ""


def _row(
    page: HistoryPage,
    r: ExecutionRecord,
    selected: str | None,
    live_view: bool,
    bulk: Bulk | None = None,
) -> str:
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
    check = ""
    if bulk is not None:
        box = ""
        if not r.status.closed:  # only an open execution can be cancelled or terminated
            ticked = r.id in bulk.checked
            box = (
                f'<input type="checkbox" class="nbc-check" data-nbc-action="check" '
                f'data-nbc-value="{esc(r.id)}" data-testid="nbc-row-check" '
                f'title="tick for Cancel / Terminate"{" checked" if ticked else ""}>'
            )
        check = f'<td style="{_CELL}">{box}</td>'
    return (
        f'<tr class="nbc-row" data-testid="nbc-history-row" data-nbc-action="open" '
        f'data-nbc-value="{esc(r.id)}" data-execution-id="{esc(r.id)}" '
        f"{'data-selected ' if r.id == selected else ''}"
        f'data-status="{esc(r.status.value)}" style="cursor:pointer{mark}">{check}'
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
