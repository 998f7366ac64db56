"""A short GIL switch interval while this process talks to DuckDB.

DuckDB's Python client runs a statement with the GIL released, but takes it back many
times on the way (to check for Ctrl-C between steps of the query: about a dozen times
for a two-row append). Each time, if another thread is running Python, the statement
waits for that thread to give the GIL up, which Python asks of it only after the
switch interval (5 ms by default). So while anything else in the kernel computes (the
engine thread under load, a task running Python on a thread, the user's own code), a
commit of two events took ~60 ms instead of ~1 ms, and a workflow stepped at 16 ms a
step instead of 0.2.

While a statement runs, the interval is set to 0.1 ms, and restored when the last
statement running ends: the waits shrink to a few tenths of a millisecond, and the
threads that compute only share the GIL more finely for that time (measured: a workflow
stepping beside a busy thread at 1.7 ms a step instead of 16, the busy thread
slowed by about a quarter while the workflow ran). The interval is process-wide; it is
only ever lowered for the duration of a statement, and not restored if something else
changed it meanwhile.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("SHORT_INTERVAL", "short_switch_interval")

#: Seconds: the switch interval while a DuckDB statement runs.
SHORT_INTERVAL = 0.0001

_lock = threading.Lock()
_depth = 0
_saved = 0.005


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """Run DuckDB statements inside: the GIL comes back to them quickly."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = sys.getswitchinterval()
            if _saved > SHORT_INTERVAL:
                sys.setswitchinterval(SHORT_INTERVAL)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            # Restore only what we lowered: a value set meanwhile by someone else stays.
            if _depth == 0 and _saved > SHORT_INTERVAL and _is_ours():
                sys.setswitchinterval(_saved)


def _is_ours() -> bool:
    # getswitchinterval() returns the value rounded to microseconds.
    return abs(sys.getswitchinterval() - SHORT_INTERVAL) < 1e-6
