"""Testing support: a time-skipping engine and a history replayer.

Example:
    >>> from nbconductor.testing import TimeSkippingEngine, export_history, replay
    >>> with TimeSkippingEngine() as eng:
    ...     h = eng.start(reminder, "bob")     # sleeps a week, done in milliseconds
    ...     assert h.result(timeout=5) == "reminded bob"
    ...     recorded = export_history(h.history())
    >>> replay(recorded, reminder)            # raises NonDeterminismError if code changed
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from nbconductor.engine.clock import VirtualClock
from nbconductor.engine.definition import WorkflowDefinition
from nbconductor.engine.engine import Engine
from nbconductor.engine.runtime import replay as _replay
from nbconductor.storage.records import EventKind, EventRecord
from nbconductor.storage.store import Store

__all__ = (
    "TimeSkippingEngine",
    "VirtualClock",
    "advance",
    "export_history",
    "load_history",
    "replay",
    "wait_for",
)


class TimeSkippingEngine(Engine):
    """An engine on a virtual clock that jumps to the next due timer whenever every
    execution is idle (no task running), so week-long sleeps finish at once.

    Args:
        store: None (in memory, the default), a path or a Store.
        start: the virtual clock's starting time.
    """

    def __init__(
        self, store: str | Path | Store | None = None, *, start: datetime | None = None, **kw
    ) -> None:
        kw.setdefault("make_default", False)
        super().__init__(store, clock=VirtualClock(start), time_skipping=True, **kw)


def export_history(events: list[EventRecord]) -> str:
    """A history as JSON text (a list of events), for golden files and :func:`replay`."""
    return json.dumps(
        [
            {
                "execution_id": e.execution_id,
                "seq": e.seq,
                "kind": e.kind.value,
                "at": e.at.isoformat(),
                "command": e.command,
                "name": e.name,
                "attempt": e.attempt,
                "data": json.loads(e.data),
            }
            for e in events
        ],
        indent=1,
    )


def load_history(source: str | os.PathLike | list) -> list[EventRecord]:
    """Events from JSON text, a JSON file path, a list of dicts or of EventRecords."""
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and not source.lstrip().startswith("[")
    ):
        source = Path(source).read_text()
    items = json.loads(source) if isinstance(source, str) else source
    events = []
    for item in items:
        if isinstance(item, EventRecord):
            events.append(item)
            continue
        data = item.get("data", {})
        events.append(
            EventRecord(
                item["execution_id"],
                item["seq"],
                EventKind(item["kind"]),
                datetime.fromisoformat(item["at"]),
                item.get("command"),
                item.get("name"),
                item.get("attempt"),
                data if isinstance(data, str) else json.dumps(data, separators=(",", ":")),
            )
        )
    return events


def replay(history, workflow: WorkflowDefinition, *, store=None) -> None:
    """Check that ``workflow``'s current code reproduces a recorded history.

    Args:
        history: the recorded events (or their export).
        workflow: the definition to check.
        store: the history store holding the stored values (DataFrames, arrays) the
            history references, for workflow code that uses them; without it such
            values are :class:`~nbconductor.storage.codec.UnloadedValue` previews.

    Raises:
        NonDeterminismError: the code now issues other commands than were recorded,
            with the expected and actual command and both versions in the message.
    """
    from nbconductor.engine.payload import PLAIN, Payloads

    payloads = PLAIN if store is None else Payloads(store=store)
    _replay(workflow, load_history(history), payloads=payloads)


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy, and return that.

    Raises:
        AssertionError: naming ``what``, when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.005)


def advance(engine: Engine, when: datetime) -> None:
    """Move a VirtualClock engine's clock to ``when`` and let the engine act on it.

    Returns once everything that fell due (timers, retries, schedule fires) has been
    processed and committed; tasks it started may still be running.
    """
    if not getattr(engine.clock, "virtual", False):
        raise TypeError("advance() needs an engine built with clock=VirtualClock(...)")
    engine.clock.advance_to(when)
    engine.ping(timeout=30.0)
    engine.ping(timeout=30.0)  # what the first tick posted (buffered starts) is done too
