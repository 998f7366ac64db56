"""What a task prints where another process runs it, sent back to the engine.

A process-runner child or a Dask worker installs :func:`install` once: its
``sys.stdout`` and ``sys.stderr`` become proxies, and what an attempt writes inside
:func:`relaying` is buffered and handed to ``send`` in pieces (``[(stream, text),
...]``), at most every ``interval`` seconds and once more when the attempt ends. Writes
outside an attempt pass through. The engine's process writes the pieces with
:func:`write_as`, as the task's own code would have written them there: the notebook's
output capture puts them in the execution's log and the history records them with the
attempt's heartbeats, as for a task on a thread.

Output written below Python's ``sys.stdout`` (C code, subprocesses writing to file
descriptor 1) is not seen, as in the engine's own process.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from nbconductor.engine.task_runner import Attempt, attempt_writes

__all__ = ("MAX_PENDING", "install", "relaying", "write_as")

Pieces = list[tuple[str, str]]

#: Characters an attempt may have waiting to be sent; beyond it the oldest text goes
#: (a task printing in a tight loop must not fill the worker's memory).
MAX_PENDING = 256 * 1024


class _Sink:
    """One attempt's output on its way to the engine (any thread of the attempt)."""

    def __init__(self, send: Callable[[Pieces], None], interval: float) -> None:
        self._send = send
        self._interval = interval
        self._lock = threading.Lock()
        self._pieces: Pieces = []
        self._size = 0
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self.closed = False

    def write(self, stream: str, text: str) -> None:
        with self._lock:
            if self.closed:
                return
            self._pieces.append((stream, text))
            self._size += len(text)
            while self._size > MAX_PENDING and len(self._pieces) > 1:
                self._size -= len(self._pieces.pop(0)[1])
            wait = self._last + self._interval - time.monotonic()
            if wait > 0:
                # Held back: sent by a timer, so that a line printed before a long
                # computation shows while it runs, not after.
                if self._timer is None:
                    self._timer = threading.Timer(wait, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def flush(self) -> None:
        with self._lock:
            pieces, self._pieces, self._size = self._pieces, [], 0
            self._timer = None
            self._last = time.monotonic()
        if pieces:
            with contextlib.suppress(Exception):  # output must never fail the task
                self._send(pieces)

    def close(self) -> Pieces:
        """End the attempt's output: later writes (a thread the task left running) are
        dropped; what was not sent yet is returned."""
        with self._lock:
            self.closed = True
            timer, self._timer = self._timer, None
            pieces, self._pieces, self._size = self._pieces, [], 0
        if timer is not None:
            timer.cancel()
        return pieces


_sink: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar(
    "nbconductor_output_sink", default=None
)


class _Relayed:
    """A ``sys.stdout``/``sys.stderr`` proxy: an attempt's writes to its sink, the rest
    to the original stream (whose other attributes it passes on)."""

    def __init__(self, original: TextIO, name: str) -> None:
        self.original = original
        self.name = name

    def write(self, text: str) -> int:
        sink = _sink.get()
        if sink is None or not text:
            return self.original.write(text)
        sink.write(self.name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


_install_lock = threading.Lock()


def install() -> None:
    """Put the proxies in front of this process's streams (idempotent)."""
    with _install_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if current is not None and not isinstance(current, _Relayed):
                setattr(sys, name, _Relayed(current, name))


@contextlib.contextmanager
def relaying(
    send: Callable[[Pieces], None], interval: float, *, rest: Pieces | None = None
) -> Iterator[None]:
    """Send what the attempt running inside writes to ``send``. What is left when it
    ends is sent too, or added to ``rest`` when given (for a runner whose messages may
    overtake each other, to travel with the result)."""
    sink = _Sink(send, interval)
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)
        left = sink.close()
        if rest is not None:
            rest.extend(left)
        elif left:
            with contextlib.suppress(Exception):
                send(left)


def write_as(attempt: Attempt, pieces: Any) -> None:
    """Write what ``attempt`` printed elsewhere to this process's streams, as its own
    code would have. Pieces that are not ``(stream, text)`` pairs are ignored."""
    if not isinstance(pieces, (list, tuple)):  # Dask's messages turn lists into tuples
        return
    with attempt_writes(attempt):
        for piece in pieces:
            if not (isinstance(piece, (tuple, list)) and len(piece) == 2):
                continue
            stream, text = piece
            if isinstance(text, str) and stream in ("stdout", "stderr"):
                (sys.stderr if stream == "stderr" else sys.stdout).write(text)
