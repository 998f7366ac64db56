"""Live views of executions, their history and schedules, for Jupyter.

Every view is an ipywidgets widget whose ``_repr_mimebundle_`` also carries a
deterministic ``text/plain`` and a static ``text/html`` snapshot, so a saved notebook,
GitHub's renderer and nbval show something meaningful without a kernel.

Example:
    >>> from nbconductor import widgets
    >>> widgets.execution_view(engine, handle.id)          # a handle's live view
    >>> widgets.history_table(engine, status=["failed"])   # %conductor list
    >>> widgets.schedules_view(engine)                     # %conductor schedules

Hooks the extension sets (module attributes, read at each use):

- ``log_source(execution_id) -> list[str]``: what the execution printed (the
  collapsible log); by default there is none.
- ``traceback_mapper(text) -> str``: rewrites a traceback's file names to cells
  (``Cell In[7], line 4``); by default the text is left as it is.
- ``snapshot_publisher(bundle, display_id, update)``: displays (or updates) the
  output that keeps a view's last state in the notebook (``saved_snapshot``); by
  default None, and a view's own bundle carries its ``text/html``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbconductor.widgets import hooks
from nbconductor.widgets.execution_html import render, snapshot_text
from nbconductor.widgets.execution_snapshot import ExecutionReader
from nbconductor.widgets.execution_view import ExecutionView
from nbconductor.widgets.history_html import render as render_history
from nbconductor.widgets.history_html import summary_text
from nbconductor.widgets.history_page import load_chart, load_page
from nbconductor.widgets.history_query import HistoryQuery
from nbconductor.widgets.history_table import HistoryTable
from nbconductor.widgets.schedules_view import (
    SchedulePreview,
    SchedulesView,
    cron_preview,
    preview_html,
    schedules_text,
)
from nbconductor.widgets.schedules_view import snapshot_html as _schedules_html

if TYPE_CHECKING:
    from nbconductor.engine.engine import Engine

__all__ = (
    "ExecutionView",
    "HistoryTable",
    "SchedulePreview",
    "SchedulesView",
    "cron_preview",
    "cron_preview_html",
    "execution_snapshot_html",
    "execution_snapshot_text",
    "execution_view",
    "history_snapshot_html",
    "history_snapshot_text",
    "history_table",
    "log_source",
    "schedule_preview",
    "schedules_snapshot_html",
    "schedules_snapshot_text",
    "schedules_view",
    "snapshot_publisher",
    "traceback_mapper",
)


#: ``execution_id -> list[str]``: the lines an execution printed (set by the extension).
log_source: Callable[[str], list[str]] = hooks.no_log
#: ``traceback text -> text`` naming cells instead of compiled file names.
traceback_mapper: Callable[[str], str] = hooks.unchanged
#: ``(bundle, display_id, update) -> None``: display or update a view's saved snapshot.
snapshot_publisher: Callable[[dict[str, Any], str, bool], None] | None = None
# The views read the hooks from this package at each use, through hooks.holder: they
# cannot import the package that imports them.
hooks.holder = sys.modules[__name__]


# ---------------------------------------------------------------- execution


def execution_view(engine: Engine, execution_id: str) -> ExecutionView:
    """The live view of one execution (what a handle displays).

    Raises:
        ExecutionNotFound: no execution has that id.
    """
    return ExecutionView(engine, execution_id)


def execution_snapshot_html(engine: Engine, execution_id: str) -> str:
    """The execution as static HTML: header, progress, steps, result or error, log."""
    return render(ExecutionReader(engine, execution_id).read(), live=False)


def execution_snapshot_text(engine: Engine, execution_id: str) -> str:
    """``<Execution WORKFLOW: STATUS>``: deterministic, with no id and no time."""
    return snapshot_text(ExecutionReader(engine, execution_id).read())


# ---------------------------------------------------------------- history


def history_table(engine: Engine, **filters: Any) -> HistoryTable:
    """The live history table (``%conductor list``).

    Args:
        engine: whose executions to list.
        **filters: ``status`` (a name or a list), ``workflow``, ``search`` (part of an
            id or a tag), ``range`` (``1h``, ``24h``, ``7d``), ``since``/``until``,
            ``sort`` (``started``, ``id``, ``workflow``, ``status``, ``duration``),
            ``descending``, ``page``, ``page_size``.

    Raises:
        ValueError: an unknown filter or value.
    """
    return HistoryTable(engine, **filters)


def history_snapshot_html(engine: Engine, **filters: Any) -> str:
    """The first page of the history table as static HTML (counts instead of a chart)."""
    query = HistoryQuery().merged(filters)
    now = engine.clock.now()
    return render_history(load_page(engine, query, now), load_chart(engine, query, now), live=False)


def history_snapshot_text(engine: Engine, **filters: Any) -> str:
    """``<History: N executions (filters)>``."""
    return summary_text(load_page(engine, HistoryQuery().merged(filters)))


# ---------------------------------------------------------------- schedules


def schedules_view(engine: Engine) -> SchedulesView:
    """The live schedules view (``%conductor schedules``)."""
    return SchedulesView(engine)


def schedules_snapshot_html(engine: Engine) -> str:
    """Every schedule as static HTML."""
    return _schedules_html(engine)


def schedules_snapshot_text(engine: Engine) -> str:
    """``<Schedules: N (ids)>``."""
    return schedules_text(engine.schedules.list())


def schedule_preview(**fields: Any) -> SchedulePreview:
    """Fields for a cron expression or an interval, a zone and the policies, showing the
    next fire times and what the policies would do (for writing a new schedule).

    With ``engine=``, also the workflow (chosen among those defined), the schedule's
    id and its arguments as a JSON list, and a button that creates the schedule.
    Giving both ``cron`` and ``every`` is shown as an error, not resolved silently.
    """
    return SchedulePreview(**fields)


def cron_preview_html(**options: Any) -> str:
    """:func:`cron_preview` as HTML."""
    return preview_html(cron_preview(**options))
