"""The reads the operations make of a history store beyond its record methods: a
person's SQL query, and the count of pending and due timers (the store's own query).

Both the engine's operations and the offline ones use them, so that ``sql`` and
``status`` answer the same whichever of the two runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbconductor.errors import StoreError
from nbconductor.operations.shapes import jsonable

__all__ = ("due_timers", "run_sql", "sql_result", "timer_counts")


def run_sql(store: Any, query: str) -> tuple[list[str], list[Sequence[Any]]]:
    """A read-only query over the history: its column names and rows, values as the
    store returns them (datetimes, Decimals, ...).

    Raises:
        StoreError: the store keeps its history in memory (no SQL), or refused the query.
    """
    run = getattr(store, "sql", None)
    if run is None:
        raise StoreError("this engine's history is in memory; it does not answer SQL")
    columns, rows = run(query)
    return list(columns), list(rows)


def sql_result(store: Any, query: str) -> dict[str, Any]:
    """The ``sql`` operation's result: ``{"columns": [...], "rows": [[...], ...]}`` in
    plain JSON (see :func:`~nbconductor.operations.shapes.jsonable`)."""
    columns, rows = run_sql(store, query)
    return {"columns": columns, "rows": [jsonable(list(row)) for row in rows]}


def timer_counts(store: Any) -> tuple[int | None, int | None]:
    """(pending, due) timers of open executions; (None, None) when the store cannot say."""
    try:
        timers = store.pending_timers()
    except StoreError:
        return None, None
    return timers.pending, timers.due


def due_timers(store: Any) -> int | None:
    """Timers whose time has come, or None for a store without SQL."""
    return timer_counts(store)[1] if hasattr(store, "sql") else None
