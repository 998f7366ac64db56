"""The history table: ``%conductor list`` and ``nbconductor.history()``, live.

The filter bar, sort headers, pager and rows live in the browser (``static/panel.js``)
and send their requests as messages; the kernel's main thread only records a request
(:meth:`HistoryTable.apply`) and marks the table dirty. The coalescer's thread applies
the requests, queries the store and writes the traits: one writer. A row click opens
that execution's view, which the browser places under the row; ticked rows can be
cancelled or terminated together, after a confirmation.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nbconductor.storage.records import Status
from nbconductor.widgets.coalescer import Coalescer, shared
from nbconductor.widgets.execution_view import ExecutionView
from nbconductor.widgets.history_html import Bulk, render, summary_text
from nbconductor.widgets.history_page import Chart, HistoryPage, load_chart, load_page
from nbconductor.widgets.history_query import PAGE_SIZES, RANGES, SORTS, HistoryQuery
from nbconductor.widgets.panel import Panel
from nbconductor.widgets.snapshot_view import SnapshotView

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = ("CHART_EVERY", "HistoryTable")

#: Seconds between two reloads of the chart while executions keep changing (the page
#: itself follows every change, at most ~10 times a second).
CHART_EVERY = 1.0


class HistoryTable(SnapshotView):
    """A live, paged, filterable table of executions with a chart of them over time.

    Create it with :func:`nbconductor.widgets.history_table`.

    Attributes:
        panel: the table, chart and filter bar (an anywidget model).
        detail: the execution view opened by a row click.
        page: the page shown (rows, total, page number) as last loaded.
        query: the filters, sort and page applied.
        refreshes: how many times the table re-read the store.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        coalescer: Coalescer | None = None,
        live: bool = True,
        **filters: Any,
    ) -> None:
        self.engine = engine
        self.query = HistoryQuery().merged(filters)  # ValueError for a bad filter
        self.refreshes = 0
        self.page: HistoryPage | None = None
        self.chart: Chart | None = None
        self.selected: str | None = None
        self._coalescer = coalescer or shared()
        self._lock = threading.Lock()  # one refresh at a time: one writer
        self._pending: list[dict[str, Any]] = []  # requests in arrival order
        self._chart_dirty = False  # executions changed since the chart was loaded
        self._pending_lock = threading.Lock()
        self._chart_at = -1e9
        self._chart_query: HistoryQuery | None = None
        self._ended = False
        # Bulk actions (kernel's main thread writes, under _pending_lock): the ticked
        # open executions, the action awaiting confirmation, what the last one did.
        self._checked: set[str] = set()
        self._confirming: str | None = None
        self._notice = ""
        self.panel = Panel(kind="history", on_action=self._on_panel_action)
        self.detail = w.VBox([])
        self.detail.add_class("nbc-detail")
        super().__init__([self.panel, self.detail])
        self.add_class("nbc-history-view")
        self._unsubscribe = engine.subscribe(self._on_engine_change) if live else None
        self.refresh()

    # ---------------------------------------------------------------- requests

    def apply(self, **changes: Any) -> None:
        """Change filters, sort or page (thread-safe); the table updates shortly after.

        Takes the names of :meth:`HistoryQuery.merged`, e.g.
        ``table.apply(status=["failed"], search="order-")``.

        Raises:
            ValueError: an unknown filter or value.
        """
        self.query.merged(changes)  # validate on the caller's thread
        with self._pending_lock:
            self._pending.append(changes)
        self._coalescer.mark(self, urgent=True)

    def _on_panel_action(self, action: str, value: Any) -> None:
        # The kernel's main thread: a request from the browser.
        try:
            if action == "query" and isinstance(value, dict):
                self.apply(**value)
            elif action == "sort":
                self.apply(toggle_sort=value)
            elif action == "toggle-status":
                self.apply(toggle_status=value)
            elif action == "page":
                self.apply(page=int(value))
            elif action == "open" and isinstance(value, str):
                self.open_execution(value)
            elif action in ("check", "check-page", "bulk", "bulk-keep", "bulk-confirm"):
                self._bulk_action(action, value)
        except (ValueError, TypeError):
            pass  # a stale or tampered request from the page: nothing to do

    @property
    def checked(self) -> frozenset[str]:
        """The executions ticked for a bulk Cancel / Terminate."""
        with self._pending_lock:
            return frozenset(self._checked)

    def _bulk_action(self, action: str, value: Any) -> None:
        # The kernel's main thread. Ticking, asking and keeping only change what the
        # table shows; a confirmation asks the engine, one execution at a time.
        with self._pending_lock:
            if action == "check" and isinstance(value, str):
                self._checked ^= {value}
                self._notice = ""
            elif action == "check-page":
                page_ids = {
                    r.id for r in (self.page.rows if self.page else ()) if not r.status.closed
                }
                if value == "all":
                    self._checked |= page_ids
                elif value == "none":
                    self._checked -= page_ids
                else:
                    self._checked.clear()
                self._confirming = None
            elif action == "bulk" and value in ("cancel", "terminate") and self._checked:
                self._confirming = value
            elif action == "bulk-keep":
                self._confirming = None
            elif action == "bulk-confirm" and value == self._confirming:
                targets, self._checked, self._confirming = sorted(self._checked), set(), None
                self._notice = self._stop_all(value, targets)
        self._coalescer.mark(self, urgent=True)

    def _stop_all(self, action: str, targets: list[str]) -> str:
        done, refused = 0, []
        for execution_id in targets:
            try:
                if action == "cancel":
                    self.engine.cancel(execution_id)
                else:
                    self.engine.terminate(execution_id, "terminated from the history table")
                done += 1
            except Exception as exc:  # closed meanwhile, engine stopped: say which
                refused.append(f"{execution_id} ({type(exc).__name__})")
        verb = "cancelled" if action == "cancel" else "terminated"
        notice = f"{verb} {done} of {len(targets)}"
        if refused:
            notice += "; not " + verb + ": " + ", ".join(refused)
        return notice

    def _on_engine_change(self, changed: set[str]) -> None:
        self._chart_dirty = True  # engine thread: only mark
        self._coalescer.mark(self)

    def open_execution(self, execution_id: str) -> ExecutionView | None:
        """Show an execution's view below the table; the one shown already closes it."""
        current = self.detail.children[0] if self.detail.children else None
        if current is not None:
            current.close()
        if isinstance(current, ExecutionView) and current.id == execution_id:
            self.detail.children = ()
            self.selected = None
            return None
        view = ExecutionView(self.engine, execution_id, coalescer=self._coalescer)
        self.detail.children = (view,)
        self.selected = execution_id
        self._coalescer.mark(self, urgent=True)  # highlight the row
        return view

    # ---------------------------------------------------------------- refreshing

    def refresh(self) -> float | None:
        """Apply pending requests, reload the page (and the chart when due), update the
        widget. Returns seconds until the chart wants reloading, or None."""
        with self._lock:
            if self._ended:
                return None
            with self._pending_lock:
                pending, self._pending = self._pending, []
            query = self.query
            for changes in pending:  # in order: two clicks on a header sort twice
                # Validated when asked; failing now means a race with another change.
                with contextlib.suppress(ValueError):
                    query = query.merged(changes)
            now = self.engine.clock.now()
            page = load_page(self.engine, query, now)
            self.refreshes += 1
            poll = None
            chart = self.chart
            stale = time.monotonic() - self._chart_at
            if self._chart_query != _chart_key(query) or (
                self._chart_dirty and stale >= CHART_EVERY
            ):
                self._chart_dirty = False
                chart = load_chart(self.engine, query, now)
                self._chart_query, self._chart_at = _chart_key(query), time.monotonic()
                options = _options(self.engine)
                if options != self.panel.options:
                    self.panel.options = options
            elif self._chart_dirty:
                poll = CHART_EVERY - stale  # reload it once the interval is over
            applied = {**query.to_json(), "page": page.page}
            if applied != self.panel.query:
                self.panel.query = applied
            with self._pending_lock:
                # A ticked execution that closed meanwhile has nothing left to stop.
                self._checked -= {r.id for r in page.rows if r.status.closed}
                bulk = Bulk(frozenset(self._checked), self._confirming, self._notice)
            html = render(page, chart, selected=self.selected, bulk=bulk)
            if html != self.panel.html:
                self.panel.html = html
            # Published last: whoever sees this page sees the widget showing it.
            self.query, self.chart, self.page = query, chart, page
            due = self._save()
            polls = [t for t in (poll, due) if t]
            return min(polls) if polls else None

    # ---------------------------------------------------------------- display

    def text(self) -> str:
        """The deterministic ``text/plain``: the count of matches and the filters."""
        page = getattr(self, "page", None)
        return summary_text(page) if page else "<History>"

    def snapshot_html(self) -> str:
        """The static ``text/html``: the current page, counts instead of the chart."""
        return render(self.page, self.chart, live=False) if self.page else ""

    def close(self) -> None:
        """Stop following the engine and close the widgets."""
        if not hasattr(self, "_lock"):  # __init__ raised (ipywidgets' __del__ calls this)
            super().close()
            return
        with self._lock:
            self._ended = True
        self._stop_following()
        for child in self.detail.children:
            child.close()
        self.panel.close()
        self.detail.close()
        super().close()


def _chart_key(query: HistoryQuery) -> HistoryQuery:
    """The part of the query the chart depends on (not the sort or the page)."""
    return query.merged({"sort": "started", "descending": True, "page": 0})


def _options(engine: Engine) -> dict[str, Any]:
    return {
        "workflows": engine.store.workflow_names(),
        "statuses": [[s.value, s.title] for s in Status],
        "ranges": list(RANGES),
        "sorts": list(SORTS),
        "page_sizes": list(PAGE_SIZES),
    }
