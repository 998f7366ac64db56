"""How executions look in a notebook until the widgets arrive: text and small HTML.

Everything shown here is deterministic apart from execution ids and timestamps,
which ``notebooks/sanitize.cfg`` rewrites, so nbval can compare it: a handle's
``text/plain`` is ``<Execution WORKFLOW ID STATUS>``.

The handle's formatters are registered with IPython by the extension (the engine
stays Jupyter-free): :func:`register` on load, :func:`unregister` on unload.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from nbconductor.engine import payload
from nbconductor.engine.failure import summary
from nbconductor.engine.handle import Handle
from nbconductor.storage.records import EventRecord, ExecutionRecord

__all__ = (
    "Table",
    "event_table",
    "execution_table",
    "format_time",
    "handle_html",
    "handle_text",
    "map_traceback",
    "register",
    "unregister",
)

_MAX_CELL = 80  # characters of a value shown in a table cell


class Table:
    """Rows with named columns that display as a text table and an HTML table.

    What ``%conductor list``, ``history`` and (without pandas) ``sql`` return.

    Attributes:
        columns: the column names.
        rows: the rows, each a tuple of values.
    """

    def __init__(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = ""
    ) -> None:
        self.columns = list(columns)
        self.rows = [tuple(row) for row in rows]
        self.empty = empty or "(no rows)"

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index: int) -> tuple:
        return self.rows[index]

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_pandas(self):
        """The table as a pandas DataFrame (needs pandas)."""
        import pandas

        return pandas.DataFrame(self.rows, columns=self.columns)

    def __repr__(self) -> str:
        if not self.rows:
            return self.empty
        cells = [self.columns, *([_cell(v) for v in row] for row in self.rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p><em>{html.escape(self.empty)}</em></p>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return (
            '<table class="nbconductor-table"><thead><tr>'
            f"{head}</tr></thead><tbody>{body}</tbody></table>"
        )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def format_time(value: datetime | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC (the form notebooks/sanitize.cfg rewrites)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S")


# --- executions and events ---------------------------------------------------------------


def execution_table(records: Iterable[ExecutionRecord]) -> Table:
    """``%conductor list``: one row per execution, newest first as given."""
    return Table(
        ["id", "workflow", "status", "created", "closed", "condition"],
        (
            (r.id, r.workflow, r.status.title, r.created_at, r.closed_at, r.condition or "")
            for r in records
        ),
        empty="no executions",
    )


def event_table(events: Iterable[EventRecord]) -> Table:
    """``%conductor history``: one row per recorded event."""
    return Table(
        ["seq", "at", "event", "command", "name", "attempt", "data"],
        (
            (
                e.seq,
                e.at,
                e.kind.value,
                e.command,
                e.name,
                e.attempt,
                "" if e.data in ("{}", "") else e.data,
            )
            for e in events
        ),
        empty="no events",
    )


def decoded(text: str | None, *, input: bool = False) -> str:
    """A stored payload as readable text (the raw text when it cannot be decoded)."""
    if text is None:
        return ""
    try:
        if input:
            args, kwargs = payload.decode_input(text)
            parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
            return "(" + ", ".join(parts) + ")"
        return repr(payload.decode_value(text))
    except Exception:  # an opted-in pickle or a newer codec: show what is stored
        return text


def error_of(record: ExecutionRecord) -> dict:
    """The stored error of a failed execution, as a dict (empty when there is none)."""
    if not record.error:
        return {}
    try:
        value = json.loads(record.error)
    except ValueError:
        return {"message": record.error}
    return value if isinstance(value, dict) else {"message": str(value)}


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def map_traceback(text: str, shell: Any = None) -> str:
    """Name cells the way IPython does: ``File "/tmp/ipykernel_1/123.py", line 4`` of
    a cell becomes ``Cell In[7], line 4``.

    The %%workflow / %%task compiler keeps the cell's own line numbers, so only the
    file name needs mapping. Tracebacks recorded by an earlier kernel name files this
    kernel does not know; they are left as they are.
    """
    compiler = getattr(shell, "compile", None)
    format_name = getattr(compiler, "format_code_name", None)
    if format_name is None:
        return text

    def replace(match: re.Match) -> str:
        named = format_name(match["file"])
        if not named:
            return match[0]
        return f"{named[0]} {named[1]}, line {match['line']}"

    return _FRAME.sub(replace, text)


# --- the handle's display ----------------------------------------------------------------


def handle_text(handle: Handle) -> str:
    """``<Execution order 5b1c... Running>``: workflow, id and status, nothing else."""
    try:
        status = handle.status.title
    except Exception:  # a display must not raise (stopped engine, closed store)
        status = "unknown"
    return f"<Execution {handle.workflow or '?'} {handle.id} {status}>"


def handle_html(handle: Handle, shell: Any = None) -> str:
    """A one-row table: workflow, id, status, and why it waits or how it failed."""
    try:
        status = handle.status.title
    except Exception:
        status = "unknown"
    rows = [("Workflow", handle.workflow or "?"), ("Execution", handle.id), ("Status", status)]
    condition = None
    error: dict = {}
    try:
        condition = handle.condition
        if status not in ("Running", "unknown"):
            error = error_of(handle.describe())
    except Exception:  # the engine may have stopped since the status was read
        pass
    if condition:
        rows.append(("Condition", condition))
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    extra = ""
    if error:
        extra = (
            f"<tr><th style='text-align:left'>Error</th><td>{html.escape(summary(error))}</td></tr>"
        )
        trace = error.get("traceback")
        if trace:
            extra += (
                "<tr><td colspan='2'><details><summary>traceback</summary><pre>"
                f"{html.escape(map_traceback(trace, shell))}</pre></details></td></tr>"
            )
    return f'<table class="nbconductor-execution">{body}{extra}</table>'


_registered: dict[str, Any] = globals().get("_registered") or {}


def register(shell: Any) -> None:
    """Show handles as text and HTML in ``shell`` (idempotent)."""
    formatters = shell.display_formatter.formatters
    plain, rich = formatters["text/plain"], formatters["text/html"]
    if "shell" not in _registered:
        # Keep what was there before us, to put it back on unload.
        _registered["plain"] = plain.type_printers.get(Handle)
        _registered["html"] = rich.type_printers.get(Handle)
    _registered["shell"] = shell
    plain.for_type(Handle, lambda obj, p, cycle: p.text(handle_text(obj)))
    rich.for_type(Handle, lambda obj: handle_html(obj, shell))


def unregister(shell: Any) -> None:
    """Remove the handle's formatters (restoring any that were there before)."""
    if _registered.get("shell") is not shell:
        return
    formatters = shell.display_formatter.formatters
    for key, mime in (("plain", "text/plain"), ("html", "text/html")):
        formatter = formatters[mime]
        formatter.pop(Handle, None)
        previous = _registered.get(key)
        if previous is not None:
            formatter.for_type(Handle, previous)
    _registered.clear()
