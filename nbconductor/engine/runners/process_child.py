"""The program a process-runner child runs: attempts one at a time, told over a socket.

Started by :mod:`nbconductor.engine.runners.process` as
``python -c "...process_child import main; main()" FD``. A reader thread takes the
parent's messages (``run``, ``cancel``); the main thread runs attempts and reports
``started``, ``heartbeat`` and ``output`` (throttled) and ``result``/``failed``. When the parent goes
away (its socket closes) the child exits at once: no orphan keeps running.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import queue
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

from nbconductor.engine import shipping
from nbconductor.engine.failure import Failure
from nbconductor.engine.runners import output_relay, remote_attempt
from nbconductor.engine.task_runner import Attempt, attempt_context
from nbconductor.errors import TaskNotLoadable

HEARTBEAT_INTERVAL = 0.1
"""At most this many seconds between two heartbeats sent to the parent: a task may
heartbeat in a tight loop, the socket and the engine need not see each one."""


class _Child:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.send_lock = threading.Lock()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.current: tuple[int, Attempt] | None = None
        self.last_sent = 0.0
        self.pending: tuple | None = None

    def send(self, message: tuple) -> None:
        with self.send_lock:
            self.conn.send(message)

    def read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone: stop whatever runs, now
            if message[0] == "run":
                self.jobs.put(message)
            elif message[0] == "cancel":
                current = self.current
                if current is not None and current[0] == message[1]:
                    current[1].cancel_requested = True

    def relay(self, attempt: Attempt) -> None:
        """Called by nc.heartbeat() in the task: pass it on, at most every interval."""
        key = self.current[0] if self.current else None
        try:
            details = shipping.dumps(attempt.heartbeat_details)
        except Exception:
            details = shipping.dumps(repr(attempt.heartbeat_details))
        self.pending = ("heartbeat", key, details, attempt.progress)
        now = time.monotonic()
        if now - self.last_sent >= HEARTBEAT_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            message, self.pending = self.pending, None
            self.last_sent = time.monotonic()
            self.send(message)

    def run(self, message: tuple) -> None:
        _, key, name, fn_data, input_data, identity = message
        self.send(("started", key, os.getpid()))
        try:
            fn, args, kwargs = remote_attempt.load_call(
                name,
                fn_data,
                input_data,
                place=f"in process {os.getpid()}",
                remedy="Install it where the task runs",
            )
        except TaskNotLoadable as error:
            self.send(("failed", key, Failure.from_exception(error, non_retryable=True)))
            return
        attempt = remote_attempt.rebuild(identity, name, self.relay)
        self.current = (key, attempt)
        try:
            with (
                output_relay.relaying(lambda pieces: self.send(("output", key, pieces)), 0.1),
                attempt_context(attempt),
            ):
                value = fn(*args, **kwargs)
                if inspect.iscoroutine(value):
                    value = asyncio.run(value)
        except BaseException as exc:  # the task's SystemExit is its failure, not ours
            self.current = None
            self.flush()
            self.send(("failed", key, Failure.from_exception(exc)))
            return
        self.current = None
        self.flush()
        try:
            data = shipping.dumps(value)
        except Exception as exc:
            error = Failure.from_exception(exc, non_retryable=True)
            self.send(("failed", key, error))
            return
        self.send(("result", key, data))


def main() -> None:
    """Serve attempts on the socket whose descriptor is the first argument."""
    # Ctrl-C in a terminal reaches the whole process group; the engine, not the
    # keyboard, decides when an attempt stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(int(sys.argv[1]))
    _, path = conn.recv()
    sys.path[:] = [*path, *(p for p in sys.path if p not in path)]
    output_relay.install()  # what attempts print goes back to the engine's process
    child = _Child(conn)
    threading.Thread(target=child.read, name="nbconductor-child-reader", daemon=True).start()
    while True:
        child.run(child.jobs.get())
