"""Following a running execution with a tqdm progress bar, in a script or a terminal.

:meth:`Handle.follow <nbconductor.Handle.follow>` and ``nbconductor show ID --follow``
both draw one bar: the workflow's progress (what :func:`nbconductor.progress`
reported; a bar without a total while it reported none), the task being run and its
attempt, and at the end the result or the error. tqdm is optional
(``pip install "nbconductor[progress]"``) and imported only when following.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from nbconductor.errors import NbconductorError

__all__ = ("CLOSED", "ProgressUnavailable", "engine_snapshot", "follow")

# Until the workflow reports a fraction there is no total: time and what it does only.
_NO_TOTAL = "{desc}: {elapsed}{postfix}"
_WITH_TOTAL = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}"

#: Closed statuses, as the ``show`` shape spells them.
CLOSED = frozenset({"completed", "failed", "cancelled", "terminated", "timed_out"})


class ProgressUnavailable(NbconductorError, ImportError):
    """Following needs tqdm, which is not installed."""


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        raise ProgressUnavailable(
            'following an execution draws a tqdm progress bar: pip install "nbconductor[progress]" '
            "(or pip install tqdm)"
        ) from None
    return tqdm


def _doing(shown: dict) -> str:
    """``task charge (attempt 2)`` or the workflow's message; "" when neither."""
    progress = shown.get("progress") or {}
    tasks = progress.get("tasks") or []
    parts = []
    if progress.get("message"):
        parts.append(str(progress["message"]))
    for task in tasks[:2]:
        attempt = task.get("attempt") or 1
        again = f" (attempt {attempt})" if attempt > 1 else ""
        parts.append(f"task {task.get('task')}{again}")
    if len(tasks) > 2:
        parts.append(f"+{len(tasks) - 2} tasks")
    return ", ".join(parts)


def _ending(shown: dict) -> str:
    status = shown.get("status")
    if status == "completed":
        return f"completed: {shown.get('result')!r}"
    error = shown.get("error") or {}
    if isinstance(error, dict) and error.get("message"):
        return f"{status}: {error.get('type', 'Error')}: {error['message']}"
    return str(status)


def follow(
    snapshot: Callable[[], dict],
    *,
    wake: threading.Event | None = None,
    interval: float = 0.5,
    file: TextIO | None = None,
    timeout: float | None = None,
) -> dict:
    """Draw the execution ``snapshot()`` describes until it closes; its last snapshot.

    Args:
        snapshot: the execution as the ``show`` operation shapes it (``id``,
            ``workflow``, ``status``, ``progress``, ``result``, ``error``).
        wake: set to redraw at once (on a commit); else every ``interval`` seconds.
        interval: seconds between redraws when nothing wakes it.
        file: where the bar goes (tqdm's default: stderr).
        timeout: give up after this many seconds (the execution goes on).

    Raises:
        ProgressUnavailable: tqdm is not installed.
        TimeoutError: still open after ``timeout`` seconds.
    """
    tqdm = _tqdm()
    wake = wake or threading.Event()
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = snapshot()
    bar = tqdm(
        total=None,
        desc=f"{shown.get('workflow')} {shown.get('id')}",
        file=file,
        bar_format=_NO_TOTAL,
        dynamic_ncols=True,
    )
    try:
        while True:
            fraction = (shown.get("progress") or {}).get("fraction")
            if fraction is not None and bar.total is None:
                bar.bar_format = _WITH_TOTAL
                bar.reset(total=100)
            if bar.total is not None and fraction is not None:
                bar.n = round(100 * float(fraction))
            if shown.get("status") in CLOSED:
                if shown.get("status") == "completed" and bar.total is not None:
                    bar.n = bar.total
                bar.set_postfix_str(_ending(shown), refresh=False)
                bar.refresh()
                return shown
            bar.set_postfix_str(_doing(shown), refresh=False)
            bar.refresh()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"execution {shown.get('id')!r} is still {shown.get('status')} after "
                    f"{timeout}s; it goes on in the background"
                )
            wake.wait(interval)
            wake.clear()
            shown = snapshot()
    finally:
        bar.close()


def engine_snapshot(engine: Any, execution_id: str) -> dict:
    """The execution as :func:`follow` reads it, from an engine in this process."""
    try:
        record = engine.describe(execution_id)
    except NbconductorError:  # accepted, not committed yet
        return {"id": execution_id, "workflow": None, "status": "starting", "progress": None}
    status = record.status.value
    shown: dict[str, Any] = {"id": record.id, "workflow": record.workflow, "status": status}
    if status in CLOSED:
        shown["result"] = _loads(record.result)
        shown["error"] = _loads(record.error)
    else:
        shown["progress"] = engine.progress_of(execution_id)
    return shown


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
