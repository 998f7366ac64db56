"""One background thread that refreshes every live view, each at most ~10 times a second.

The engine calls its subscribers on the engine thread after each commit; a view's
subscriber only *marks* the view dirty here (a dict write under a lock). The
coalescer's thread then calls ``view.refresh()``: it reads the new state and writes
the widget's traits, so each widget has one writer (docs/jupyter-platform.md: traitlets have
no locks). A burst of a thousand notices costs one refresh per interval.

Limits keep a page with fifty live views responsive, since refreshes hold the GIL that
the kernel's main thread needs for the user's cells: a view is refreshed at most once
per ``interval``, or less often when its refresh is slow (a history table over a big
file: at most ``duty`` of the time goes to any one view), and the thread rests after
each round in proportion to the time the round took (at most ``duty`` of one core goes
to refreshing).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from nbconductor.errors import EngineStopped, StoreError

__all__ = ("Coalescer", "Refreshable", "shared")

log = logging.getLogger(__name__)


class Refreshable(Protocol):
    """What a coalescer refreshes."""

    def refresh(self) -> float | None:
        """Bring the view up to date; return seconds until it wants a poll, or None."""


class Coalescer:
    """Refreshes dirty views from one daemon thread, rate-limited per view.

    Args:
        interval: the least time between two refreshes of one view (seconds).
        duty: the largest share of time the thread spends refreshing.

    Example:
        >>> c = Coalescer()
        >>> unsubscribe = engine.subscribe(lambda ids: c.mark(view) if view.id in ids else None)
    """

    def __init__(self, interval: float = 0.1, duty: float = 0.25) -> None:
        self.interval = interval
        self.duty = duty
        self._cond = threading.Condition(threading.Lock())
        self._due: dict[Refreshable, float] = {}  # dirty views -> monotonic time due
        self._last: dict[Refreshable, float] = {}  # when each view was last refreshed
        self._gap: dict[Refreshable, float] = {}  # least time between two refreshes
        self._rest_until = 0.0
        self._changed: set[Refreshable] = set()  # marked for a change, not only a poll
        self._busy: set[Refreshable] = set()  # being refreshed right now
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.rounds = 0  # refresh rounds run, for tests and diagnostics

    def mark(self, view: Refreshable, delay: float = 0.0, *, urgent: bool = False) -> None:
        """Ask for ``view`` to be refreshed after ``delay`` seconds (thread-safe, quick).

        Marks coalesce: a view already due sooner keeps its time. ``urgent`` (a user's
        click) skips the per-view interval, not the rest after a round.
        """
        now = time.monotonic()
        with self._cond:
            if self._stopped:
                return
            if delay <= 0:
                self._changed.add(view)
            due = now + delay
            if not urgent:
                gap = self._gap.get(view, self.interval)
                due = max(due, self._last.get(view, -1e9) + gap)
            current = self._due.get(view)
            if current is not None and current <= due:
                return
            self._due[view] = due
            if self._thread is None or not self._thread.is_alive():
                # First use, or the thread died: views must never silently freeze.
                self._thread = threading.Thread(
                    target=self._run, name="nbconductor-widgets", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 2.0) -> bool:
        """Refresh now every view marked for a change (not those only waiting for their
        next poll) and wait until that is done; whether it was within ``timeout``.

        Called before an engine stops: a change committed just before (the last cells
        of a Run All) would otherwise never reach the views, which cannot read a
        stopped engine.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            targets = {view for view in self._changed if view in self._due}
            if not targets or self._thread is None or not self._thread.is_alive():
                return not targets
            now = time.monotonic()
            for view in targets:
                self._due[view] = now
            self._rest_until = 0.0
            self._cond.notify_all()
            while targets & (self._changed | self._busy):
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    return False
                self._cond.wait(left)
            return True

    def forget(self, view: Refreshable) -> None:
        """Stop refreshing ``view`` (it closed); a pending mark is dropped."""
        with self._cond:
            self._changed.discard(view)
            self._due.pop(view, None)
            self._last.pop(view, None)
            self._gap.pop(view, None)

    def pending(self, view: Refreshable) -> bool:
        """Whether ``view`` is waiting for a refresh."""
        with self._cond:
            return view in self._due

    def stop(self) -> None:
        """End the thread (tests); marks made afterwards are ignored."""
        with self._cond:
            self._stopped = True
            self._due.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    # ---------------------------------------------------------------- the thread

    def _take_ready(self) -> list[Refreshable] | None:
        """Wait until some views are due; None when stopped."""
        with self._cond:
            while True:
                if self._stopped:
                    return None
                now = time.monotonic()
                if not self._due:
                    self._cond.wait()
                    continue
                wake = max(min(self._due.values()), self._rest_until)
                if wake > now:
                    self._cond.wait(wake - now)
                    continue
                ready = [view for view, due in self._due.items() if due <= now]
                for view in ready:
                    del self._due[view]
                    self._last[view] = now
                    self._changed.discard(view)
                    self._busy.add(view)
                return ready

    def _run(self) -> None:
        while True:
            ready = self._take_ready()
            if ready is None:
                return
            started = time.monotonic()
            for view in ready:
                begun = time.monotonic()
                try:
                    poll = view.refresh()
                except (StoreError, EngineStopped):
                    # Its engine stopped (unload, %conductor stop): the view keeps what
                    # it shows; displaying the handle again reconnects.
                    self.forget(view)
                    poll = None
                except Exception:  # one broken view must not stop the others
                    log.exception("refreshing %r failed", view)
                    poll = None
                cost = time.monotonic() - begun
                with self._cond:
                    self._busy.discard(view)
                    self._cond.notify_all()  # flush() waits for it
                    if view in self._last:  # not forgotten meanwhile
                        self._gap[view] = max(self.interval, cost / self.duty)
                if poll is not None:
                    self.mark(view, poll)
            # Drop the references before sleeping: a parked thread must not keep the
            # last views (and their engines) alive.
            ready = view = None
            spent = time.monotonic() - started
            self.rounds += 1
            with self._cond:
                self._rest_until = time.monotonic() + spent * (1 / self.duty - 1)


_shared: Coalescer | None = None
_shared_lock = threading.Lock()


def shared() -> Coalescer:
    """The process's coalescer, shared by every view (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Coalescer()
        return _shared
