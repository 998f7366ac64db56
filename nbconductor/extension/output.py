"""Keep what tasks and workflows print out of whichever cell happens to be running.

Output printed from a background thread lands in the cell that ran last (see
docs/jupyter-platform.md), so while the extension is loaded ``sys.stdout`` and
``sys.stderr`` are proxies: a write made by a task attempt
(:func:`~nbconductor.engine.task_runner.current_attempt`) or by workflow code
(:func:`~nbconductor.engine.context.current`) goes into that execution's
log, every other write goes to the original stream unchanged. Writes made while a
workflow replays its history are dropped: that code already printed them once.

The log is in memory and bounded (the last :data:`MAX_LINES` lines of each of the
last :data:`MAX_EXECUTIONS` executions); ``%conductor show ID`` prints it and the
widgets read it with :func:`execution_log`. What a task attempt writes is also handed
to the attempt, which the engine records in the history (``TaskHeartbeat``, throttled,
and the attempt's outcome), so a view after a restart still shows it.

What a task prints in a process-runner child or on a Dask worker comes back and is
written here as if printed on a thread (see
:mod:`nbconductor.engine.runners.output_relay`). Output written below Python's
``sys.stdout`` (C extensions, subprocesses writing to file descriptor 1) is not seen.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from nbconductor.engine.context import current as current_workflow
from nbconductor.engine.task_runner import current_attempt

__all__ = (
    "MAX_EXECUTIONS",
    "MAX_LINES",
    "OutputCapture",
    "capture",
    "execution_log",
    "install",
    "installed",
    "uninstall",
)

#: Lines kept per execution (older lines are dropped first).
MAX_LINES = 1000
#: Executions whose logs are kept (the least recently written are dropped first).
MAX_EXECUTIONS = 1000

_DROP = object()  # route(): a replaying workflow wrote this; it was printed before


def _route() -> str | object | None:
    """Where a write made on this thread, in this context, belongs.

    Returns the execution id whose log it goes to, ``_DROP``, or None (the cell's).
    """
    attempt = current_attempt()
    if attempt is not None:
        return attempt.execution_id
    runtime = current_workflow()
    if runtime is not None:
        return _DROP if runtime.replaying else runtime.execution_id
    return None


class _Log:
    """One execution's captured lines and the unfinished line of each stream."""

    __slots__ = ("lines", "partial")

    def __init__(self, max_lines: int) -> None:
        self.lines: collections.deque[tuple[str, str]] = collections.deque(maxlen=max_lines)
        self.partial: dict[str, str] = {}

    def write(self, stream: str, text: str) -> None:
        pending = self.partial.pop(stream, "") + text
        *complete, rest = pending.split("\n")
        self.lines.extend((stream, line) for line in complete)
        if rest:
            self.partial[stream] = rest

    def entries(self) -> list[tuple[str, str]]:
        return [*self.lines, *self.partial.items()]


class OutputCapture:
    """The per-execution logs, and the stream proxies that fill them.

    Args:
        max_lines: lines kept per execution.
        max_executions: executions whose logs are kept.
    """

    def __init__(self, max_lines: int = MAX_LINES, max_executions: int = MAX_EXECUTIONS) -> None:
        self.max_lines = max_lines
        self.max_executions = max_executions
        self._logs: collections.OrderedDict[str, _Log] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []

    # -- the logs -------------------------------------------------------------------

    def append(self, execution_id: str, stream: str, text: str) -> None:
        """Add ``text`` written to ``stream`` ("stdout"/"stderr") to an execution's log."""
        with self._lock:
            log = self._logs.get(execution_id)
            if log is None:
                log = self._logs[execution_id] = _Log(self.max_lines)
                while len(self._logs) > self.max_executions:
                    self._logs.popitem(last=False)
            else:
                self._logs.move_to_end(execution_id)
            log.write(stream, text)
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):  # a broken view must not break the task
                listener(execution_id)

    def log(self, execution_id: str, *, streams: bool = False) -> list[Any]:
        """The execution's captured lines, oldest first (an unfinished last line too).

        Args:
            execution_id: the execution.
            streams: return ``(stream, line)`` pairs instead of bare lines.
        """
        with self._lock:
            log = self._logs.get(execution_id)
            entries = log.entries() if log is not None else []
        return entries if streams else [line for _, line in entries]

    def clear(self, execution_id: str | None = None) -> None:
        """Forget one execution's log, or all of them."""
        with self._lock:
            if execution_id is None:
                self._logs.clear()
            else:
                self._logs.pop(execution_id, None)

    def add_listener(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(execution_id)`` after each captured write (on the writer's
        thread; keep it quick). Returns a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    # -- the proxies ----------------------------------------------------------------

    def install(self) -> None:
        """Put proxies in front of ``sys.stdout`` and ``sys.stderr`` (idempotent)."""
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if isinstance(current, CapturingStream) and current.capture is self:
                current.active = True
                continue
            if current is None:  # pythonw and friends: nothing to wrap
                continue
            setattr(sys, name, CapturingStream(current, name, self))

    def uninstall(self) -> None:
        """Put the original streams back.

        When something replaced ``sys.stdout`` after the proxy was installed (and
        holds on to the proxy, as ``capture_output`` does while a cell runs), the
        proxy cannot be taken out of that chain; it is made transparent instead.
        """
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if isinstance(current, CapturingStream) and current.capture is self:
                current.active = False
                setattr(sys, name, current.original)
            else:
                for proxy in _proxies_of(current, self):
                    proxy.active = False

    def installed(self) -> bool:
        """Whether ``sys.stdout`` is currently this capture's active proxy."""
        current = sys.stdout
        return isinstance(current, CapturingStream) and current.capture is self and current.active


def _proxies_of(stream: object, capture: OutputCapture) -> Iterable[CapturingStream]:
    # Only the direct chain of proxies is followed; other wrappers are opaque.
    seen = 0
    while isinstance(stream, CapturingStream) and seen < 10:
        if stream.capture is capture:
            yield stream
        stream, seen = stream.original, seen + 1


class CapturingStream:
    """A text stream proxy: routes task/workflow writes to a log, the rest through.

    Every attribute it does not define (``flush``, ``fileno``, ``encoding``,
    ipykernel's ``set_parent``...) is the original stream's.
    """

    def __init__(self, original: TextIO, name: str, capture: OutputCapture) -> None:
        self.original = original
        self.name = name
        self.capture = capture
        self.active = True

    def write(self, text: str) -> int:
        if self.active and text:
            target = _route()
            if target is _DROP:
                return len(text)
            if target is not None:
                self.capture.append(target, self.name, text)  # type: ignore[arg-type]
                attempt = current_attempt()
                if attempt is not None:  # recorded with its heartbeats: survives a restart
                    attempt.note_output(self.name, text)
                return len(text)
        return self.original.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)

    def __repr__(self) -> str:
        return f"<nbconductor capturing {self.name} over {self.original!r}>"


# A process-wide capture; `globals().get` keeps it (and its logs) across a reload of
# this module, which re-executes the module in the same namespace.
capture: OutputCapture = globals().get("capture") or OutputCapture()


def install() -> None:
    """Route task and workflow output of this process into execution logs."""
    capture.install()


def uninstall() -> None:
    """Stop routing; the logs collected so far stay readable."""
    capture.uninstall()


def installed() -> bool:
    """Whether the output proxies are in place."""
    return capture.installed()


def execution_log(execution_id: str, *, streams: bool = False) -> list[Any]:
    """What an execution's tasks and workflow code printed in this process.

    Args:
        execution_id: the execution.
        streams: return ``(stream, line)`` pairs (stream is "stdout" or "stderr").

    Returns:
        The last :data:`MAX_LINES` lines, oldest first; an empty list when it printed
        nothing (or printed before this kernel started).

    Example:
        >>> execution_log(run.id)
        ['charging A-17', 'charged 42.0']
    """
    return capture.log(execution_id, streams=streams)
