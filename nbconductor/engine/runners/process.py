"""The ``process`` runner: task attempts in a pool of local child processes.

CPU-bound Python runs outside the kernel's GIL, and code that crashes its process (a
segfault in a C extension, ``os._exit``) fails one attempt (``WorkerLost``) instead of
taking the kernel down. Children are plain ``python`` processes started on first use
(not ``multiprocessing``: it would re-import the notebook's ``__main__``), each
talking to one daemon thread of this process over a socket pair, one attempt at a
time. A child exits as soon as its parent does; shutting the runner down kills the
children, so a hung task never holds up the kernel's exit.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection
from pathlib import Path

from nbconductor.engine import shipping
from nbconductor.engine.failure import Failure
from nbconductor.engine.runners import output_relay, remote_attempt
from nbconductor.engine.runners.runner import AttemptEvents
from nbconductor.engine.task_runner import Attempt, Outcome
from nbconductor.errors import StoreError, WorkerLost

_CHILD = "from nbconductor.engine.runners.process_child import main; main()"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
_keys = itertools.count(1)
_runners: weakref.WeakSet[ProcessRunner] = weakref.WeakSet()


@atexit.register
def _kill_children_at_exit() -> None:
    for runner in list(_runners):
        runner.shutdown()


def encode_result(attempt: Attempt, value) -> Outcome:
    """The outcome of an attempt that returned ``value`` (stored text, or the failure
    to encode it: the same code would return the same value, so not retryable)."""
    try:
        text = attempt.payloads.encode_value(
            value, what=f"the result of task {attempt.definition.name}"
        )
    except StoreError as exc:  # storing a large result failed: the store's trouble
        return Outcome(attempt, started_at=attempt.started_at, store_error=exc)
    except Exception as exc:
        error = Failure.from_exception(exc, non_retryable=True)
        return Outcome(attempt, error=error, started_at=attempt.started_at)
    return Outcome(attempt, result=text, started_at=attempt.started_at)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it no longer answers"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _ChildProcess:
    """One child and the socket to it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # The child must import this very nbconductor, wherever it comes from.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        self.pid = self.process.pid
        self.conn = Connection(ours.detach())
        self.send_lock = threading.Lock()
        self._kill_lock = threading.Lock()
        self._killed = False
        self.running: tuple[int, Attempt] | None = None
        self.send(("init", list(sys.path)))

    def send(self, message: tuple) -> None:
        with self.send_lock:
            self.conn.send(message)

    def kill(self) -> None:
        """Kill the child and close its socket, once: an abandoned attempt's stop timer
        and the slot that saw the child die may both get here. Closing the socket twice
        would close an fd number another thread may have been given meanwhile."""
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
            if self.process.poll() is None:
                self.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=2)  # reaped: no zombie left behind
            self.conn.close()

    def run(self, attempt: Attempt, events: AttemptEvents) -> Outcome:
        """Run one attempt in this child and wait for its outcome (or its death)."""
        name = attempt.definition.name
        try:
            fn_data = shipping.ship_function(attempt.definition.fn, name)
            args, kwargs = attempt.payloads.decode_input(attempt.input_text)
            input_data = shipping.dumps((args, kwargs))
        except Exception as exc:  # the same task would fail the same way: no retry
            return Outcome(attempt, error=Failure.from_exception(exc, non_retryable=True))
        key = next(_keys)
        self.running = (key, attempt)
        try:
            self.send(("run", key, name, fn_data, input_data, remote_attempt.identity(attempt)))
            while True:
                message = self.conn.recv()
                kind = message[0]
                if message[1] != key:
                    continue  # a late report of an earlier attempt
                if kind == "started":
                    events.started(attempt, f"pid {message[2]}")
                elif kind == "heartbeat":
                    events.heartbeat(attempt, shipping.loads(message[2]), message[3])
                elif kind == "output":
                    output_relay.write_as(attempt, message[2])
                elif kind == "failed":
                    return Outcome(attempt, error=message[2], started_at=attempt.started_at)
                elif kind == "result":
                    try:
                        value = shipping.loads(message[2])
                    except Exception as exc:
                        error = Failure.from_exception(exc, non_retryable=True)
                        return Outcome(attempt, error=error, started_at=attempt.started_at)
                    return encode_result(attempt, value)
        except (EOFError, OSError):
            return self._lost(attempt)
        finally:
            self.running = None

    def _lost(self, attempt: Attempt) -> Outcome:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        error = WorkerLost(
            f"the process running task {attempt.definition.name!r} (pid {self.pid}) died "
            f"mid-attempt ({_describe_exit(code)}); the task's retry policy decides whether "
            "it runs again"
        )
        return Outcome(attempt, error=Failure.from_exception(error), started_at=attempt.started_at)


class ProcessRunner:
    """Task attempts in up to ``max_workers`` local child processes (default: one per
    CPU), started on first use.

    Args:
        max_workers: child processes at most; attempts beyond wait for a free one.
        stop_grace: seconds an abandoned attempt (timed out, cancelled) gets to stop on
            its own once ``nc.cancelled()`` is true; then its process is killed.
    """

    def __init__(self, max_workers: int | None = None, *, stop_grace: float = 5.0) -> None:
        self._max = max_workers or os.cpu_count() or 1
        self._stop_grace = stop_grace
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._slots = 0
        self._idle = 0
        self._closed = False
        self._children: set[_ChildProcess] = set()
        _runners.add(self)

    def __repr__(self) -> str:
        return f"ProcessRunner(max_workers={self._max})"

    def submit(self, attempt: Attempt, events: AttemptEvents) -> None:
        """Queue ``attempt`` for the next free child (a new one while under the limit)."""
        with self._lock:
            if self._closed:
                return
            self._queue.put((attempt, events))
            if self._idle > 0:
                self._idle -= 1
            elif self._slots < self._max:
                self._slots += 1
                threading.Thread(
                    target=self._slot, name=f"nbconductor-process-{self._slots}", daemon=True
                ).start()

    def stop(self, attempt: Attempt) -> None:
        """Tell the child running ``attempt`` to stop; kill it after the grace period."""
        with self._lock:
            child = next((c for c in self._children if c.running and c.running[1] is attempt), None)
        if child is None:
            return  # not started yet: the slot skips abandoned attempts
        key = child.running[0] if child.running else None
        try:
            child.send(("cancel", key))
        except OSError:
            return

        def kill_if_still_running() -> None:
            running = child.running
            if running is not None and running[0] == key:
                child.kill()  # its slot reports WorkerLost, which the engine ignores

        timer = threading.Timer(self._stop_grace, kill_if_still_running)
        timer.daemon = True
        timer.start()

    def _slot(self) -> None:
        child: _ChildProcess | None = None
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                attempt, events = item
                if not attempt.abandoned:
                    if child is None or child.process.poll() is not None:
                        child = self._start_child(child)
                    if child is None:
                        return  # shut down meanwhile
                    events.outcome(child.run(attempt, events))
                with self._lock:
                    if self._closed:
                        return
                    self._idle += 1
        finally:
            if child is not None:
                with self._lock:
                    self._children.discard(child)
                child.kill()

    def _start_child(self, old: _ChildProcess | None) -> _ChildProcess | None:
        with self._lock:
            if old is not None:
                self._children.discard(old)
            if self._closed:
                return None
        child = _ChildProcess()
        with self._lock:
            self._children.add(child)
            closed = self._closed
        if closed:
            child.kill()
            return None
        return child

    def shutdown(self) -> None:
        """Kill every child (running attempts are lost: the engine is stopping)."""
        with self._lock:
            self._closed = True
            slots = self._slots
            children = list(self._children)
            self._children.clear()
        for child in children:
            child.kill()
        for _ in range(slots):
            self._queue.put(None)
