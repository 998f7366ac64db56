"""The worker's log: one line per state change on stderr, or JSON lines.

2026-11-22T17:00:00Z execution order-17 (order) running -> completed

The lines are :mod:`logging` records of the ``nbconductor.worker`` logger, and the
handler the worker puts on the ``nbconductor`` logger prints them together with the
engine's own records (failures, parked executions, recoveries: see
:mod:`nbconductor.logs`): as text, or with ``--json-logs`` through
:class:`~nbconductor.logs.JsonFormatter`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from nbconductor.engine.engine import Engine
from nbconductor.logs import JsonFormatter
from nbconductor.storage.records import ExecutionRecord, Status

# Closed executions remembered so that a late notice about one is not logged as new.
_REMEMBERED_CLOSED = 10_000
# A schedule's fire: "SCHEDULE@2026-11-23T08:00:00Z" (see schedule_policy.fire_id).
_FIRE_ID = re.compile(r"^(?P<schedule>.+)@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


_log = logging.getLogger("nbconductor.worker")


class _TextFormatter(logging.Formatter):
    """``TIME message``, with the level named when it is not INFO."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        text = f"{when:%Y-%m-%dT%H:%M:%SZ} {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StreamHandler(logging.StreamHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        pass  # a closed stderr: a log line must never stop the worker


class StateLog:
    """One line per state change on ``stream``: ``TIME what happened``, or JSON lines.

    Every JSON line has ``time``, ``level``, ``logger``, ``message`` and, for the
    worker's own lines, ``event``; the other keys depend on the event and are always
    present:

    - ``worker``: ``state`` (``starting``, ``ready``, ``stopping``, ``stopped``,
      ``failed``, ``warning``), ``message``, ``pid``, ``notebook``, ``db``, ``socket``;
    - ``cell``: ``cell`` (its 1-based position in the notebook), ``first_line``,
      ``status`` (``failed``), ``error`` (``{"type", "message"}``);
    - ``execution``: ``id``, ``workflow``, ``from`` (a status, or ``new``), ``to``,
      ``schedule`` (the schedule whose fire started it, else null).

    The engine's records (:mod:`nbconductor.logs`) carry ``event`` too
    (``task_failed``, ``execution_parked``, ...), with ``execution_id`` and ``workflow``.

    Args:
        stream: where lines go (flushed after each).
        json_lines: JSON objects instead of text.
    """

    def __init__(self, stream: TextIO, *, json_lines: bool = False) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self.handler = _StreamHandler(stream)
        self.handler.setFormatter(JsonFormatter() if json_lines else _TextFormatter())
        self._level: int | None = None
        self._known: collections.OrderedDict[str, Status] = collections.OrderedDict()
        self._queue: queue.SimpleQueue[frozenset[str] | None] = queue.SimpleQueue()
        self._unresolved: set[str] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    def attach(self) -> None:
        """Print every ``nbconductor`` record at INFO and above on the stream."""
        root = logging.getLogger("nbconductor")
        if self._level is None:
            self._level = root.level
            root.setLevel(logging.INFO)
            root.addHandler(self.handler)

    def detach(self) -> None:
        """Undo :meth:`attach`."""
        root = logging.getLogger("nbconductor")
        if self._level is not None:
            root.removeHandler(self.handler)
            root.setLevel(self._level)
            self._level = None

    def emit(self, event: str, text: str, **fields: Any) -> None:
        """Log one line: ``text``, with ``fields`` for the JSON form."""
        _log.info("%s", text, extra={"nbconductor": {"event": event, **fields}})

    # -- executions -------------------------------------------------------------------

    def watch(self, engine: Engine) -> None:
        """Log each status change of ``engine``'s executions from now on.

        Call it before anything runs on the engine: the open executions it finds are
        the baseline, so that resuming one is not logged as new.
        """
        for record in engine.list(status=Status.RUNNING, limit=None):
            self._known[record.id] = record.status
        # On the engine thread after each commit: only hand the ids over.
        self._unsubscribe = engine.subscribe(lambda ids: self._queue.put(frozenset(ids)))
        self._thread = threading.Thread(
            target=self._follow, args=(engine.describe,), name="nbconductor-worker-log", daemon=True
        )
        self._thread.start()

    def close(self, db: Path | None = None) -> None:
        """Stop watching, after logging what is still queued.

        Call it after the engine stopped. Statuses that could not be read while the
        engine closed its store are read from ``db`` (read-only) now.
        """
        if self._thread is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._queue.put(None)
        self._thread.join(5.0)
        self._thread = None
        if self._unresolved and db is not None:
            from nbconductor.storage.duckdb.duckdb_store import DuckDBStore

            # Best effort: a log line must never keep the worker from exiting.
            with contextlib.suppress(Exception), DuckDBStore(db, read_only=True) as store:
                self._report(set(self._unresolved), store.get_execution)

    def _follow(self, lookup: Callable[[str], ExecutionRecord | None]) -> None:
        while True:
            ids = self._queue.get()
            if ids is None:
                return
            batch = set(ids)
            while True:  # coalesce what else has arrived: one lookup per execution
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._report(batch, lookup)
                    return
                batch |= more
            self._report(batch, lookup)

    def _report(self, ids: set[str], lookup: Callable[[str], ExecutionRecord | None]) -> None:
        for execution_id in sorted(ids):
            try:
                record = lookup(execution_id)
            except Exception:  # the store closed under us as the engine stopped
                self._unresolved.add(execution_id)
                continue
            self._unresolved.discard(execution_id)
            if record is not None:
                self._changed(record)

    def _changed(self, record: ExecutionRecord) -> None:
        previous = self._known.get(record.id)
        status = record.status
        if previous is status:
            return
        self._known[record.id] = status
        if status.closed:
            self._known.move_to_end(record.id)
            while len(self._known) > _REMEMBERED_CLOSED:
                oldest = next(iter(self._known))
                if not self._known[oldest].closed:
                    break  # open ones stay; the bound applies to closed ones only
                self._known.popitem(last=False)
        fire = _FIRE_ID.match(record.id) if previous is None else None
        schedule = fire["schedule"] if fire else None
        before = previous.value if previous is not None else "new"
        text = f"execution {record.id} ({record.workflow}) {before} -> {status.value}"
        if schedule is not None:
            text += f" (schedule {schedule} fired)"
        self.emit(
            "execution",
            text,
            id=record.id,
            workflow=record.workflow,
            **{"from": before, "to": status.value},
            schedule=schedule,
        )
