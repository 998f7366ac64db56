"""The one table renderer: rows under named columns, as aligned text and as HTML.

``%conductor`` returns a :class:`Table` (a notebook shows its HTML, a terminal and
nbval its text); the ``nbconductor`` command prints its text. The tables of
executions, events and schedules are built here from the plain-JSON shapes of
:mod:`nbconductor.operations.shapes`, so a result looks the same whether it came from
an engine in this process, over the socket or from the file.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from nbconductor.engine.duration import format_duration

__all__ = (
    "Table",
    "executions_table",
    "format_time",
    "history_table",
    "schedules_table",
    "when_text",
)

_MAX_CELL = 80  # characters of a value shown in a cell; --json shows them whole


class Table:
    """Rows with named columns that display as a text table and an HTML table.

    What ``%conductor list --text``, ``history``, ``schedules --text`` and ``sql``
    return, and what the ``nbconductor`` command prints.

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

    def __iter__(self) -> Iterator[tuple]:
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
        text = format_time(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    text = text.replace("\n", " ")  # one line per row, whatever the value holds
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def format_time(value: datetime | str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, from a datetime or ISO 8601 text (the form
    notebook-sources/sanitize.cfg rewrites). Text that is not a time is returned as it is."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


# --- the operations' tables ------------------------------------------------------------


def executions_table(items: list[dict[str, Any]]) -> Table:
    """``list``: one row per execution, in the order given (newest first)."""
    return Table(
        ["id", "workflow", "status", "created", "closed", "condition"],
        (
            (
                x["id"],
                x["workflow"],
                x["status"],
                format_time(x["created_at"]),
                format_time(x["closed_at"]),
                x.get("condition") or "",
            )
            for x in items
        ),
        empty="no executions",
    )


def history_table(events: list[dict[str, Any]]) -> Table:
    """``history``: one row per recorded event."""
    return Table(
        ["seq", "at", "event", "command", "name", "attempt", "data"],
        (
            (
                e["seq"],
                format_time(e["at"]),
                e["kind"],
                e["command"],
                e["name"],
                e["attempt"],
                "" if e["data"] in ({}, None, "") else e["data"],
            )
            for e in events
        ),
        empty="no events",
    )


def schedules_table(items: list[dict[str, Any]]) -> Table:
    """``schedules list``: one row per schedule."""
    return Table(
        ["id", "workflow", "when", "state", "next", "last", "open", "fired", "skipped", "waiting"],
        (
            (
                s["id"],
                s["workflow"],
                when_text(s),
                "paused" if s["paused"] else "active",
                format_time(s["next_fire"]),
                format_time(s["last_nominal"]),
                len(s["open_runs"]),
                s["fired"],
                s["skipped"],
                s.get("waiting") or "",
            )
            for s in items
        ),
        empty="no schedules",
    )


def _rate_cell(queue: dict[str, Any]) -> str:
    if not queue["rate"]:
        return ""
    burst = queue.get("burst") or 1
    return f"{queue['rate']} (burst {burst})" if burst > 1 else queue["rate"]


def queues_table(items: list[dict[str, Any]]) -> Table:
    """``queues list``: one row per queue (running and waiting need an engine)."""
    return Table(
        ["name", "concurrency", "rate", "running", "waiting"],
        (
            (
                q["name"],
                "" if q["concurrency"] is None else q["concurrency"],
                _rate_cell(q),
                "" if q["running"] is None else q["running"],
                "" if q["waiting"] is None else q["waiting"],
            )
            for q in items
        ),
        empty="no queues",
    )


def when_text(schedule: dict[str, Any]) -> str:
    """``0 9 * * MON-FRI (Europe/Paris)`` or ``every 15m``: when a schedule fires."""
    if schedule.get("cron"):
        return f"{schedule['cron']} ({schedule['timezone']})"
    if schedule.get("every"):
        return f"every {format_duration(schedule['every'])}"
    return ""
