"""The worker's state-change log: one line per change on stderr, or JSON lines.

2026-11-22T17:00:00Z execution order-17 (order) running -> completed
"""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import re
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from nbconductor.engine.engine import Engine
from nbconductor.storage.records import ExecutionRecord, Status

# Closed executions remembered so that a late notice about one is not logged as new.
_REMEMBERED_CLOSED = 10_000
# A schedule's fire: "SCHEDULE@2026-11-23T08:00:00Z" (see schedule_policy.fire_id).
_FIRE_ID = re.compile(r"^(?P<schedule>.+)@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StateLog:
    """One line per state change on ``stream``: ``TIME what happened``, or JSON lines.

    Every JSON line has ``time`` and ``event``; the other keys depend on the event and
    are always present:

    - ``worker``: ``state`` (``starting``, ``ready``, ``stopping``, ``stopped``,
      ``failed``, ``warning``), ``message``, ``pid``, ``notebook``, ``db``, ``socket``;
    - ``cell``: ``cell`` (its 1-based position in the notebook), ``first_line``,
      ``status`` (``failed``), ``error`` (``{"type", "message"}``);
    - ``execution``: ``id``, ``workflow``, ``from`` (a status, or ``new``), ``to``,
      ``schedule`` (the schedule whose fire started it, else null).

    Args:
        stream: where lines go (flushed after each).
        json_lines: JSON objects instead of text.
    """

    def __init__(self, stream: TextIO, *, json_lines: bool = False) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self._lock = threading.Lock()
        self._known: collections.OrderedDict[str, Status] = collections.OrderedDict()
        self._queue: queue.SimpleQueue[frozenset[str] | None] = queue.SimpleQueue()
        self._unresolved: set[str] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    def emit(self, event: str, text: str, **fields: Any) -> None:
        """Write one line: ``text`` after the time, or ``fields`` as JSON."""
        now = _now_text()
        if self.json_lines:
            line = json.dumps({"time": now, "event": event, **fields}, default=str)
        else:
            line = f"{now} {text}"
        with self._lock, contextlib.suppress(OSError, ValueError):  # a closed stderr
            self.stream.write(line + "\n")
            self.stream.flush()

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
