"""Helpers of the Store tests: a fixed instant, builders of executions and events, and a
child process that reports its progress."""

from __future__ import annotations

import selectors
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from nbconductor.storage.records import EventKind, EventRecord, ExecutionRecord, Status

T0 = datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)


def execution(id: str, *, minutes: float = 0, **changes) -> ExecutionRecord:
    """A running execution of ``order`` started ``minutes`` after T0, with ``changes``."""
    at = T0 + timedelta(minutes=minutes)
    rec = ExecutionRecord(id, "order", "v1", Status.RUNNING, at, at)
    return replace(rec, **changes)


def event(execution_id: str, seq: int, kind: EventKind = EventKind.TASK_COMPLETED, **changes):
    """Event ``seq`` of an execution, ``seq`` seconds after T0, with ``changes``."""
    rec = EventRecord(execution_id, seq, kind, T0 + timedelta(seconds=seq))
    return replace(rec, **changes)


class Child:
    """A Python subprocess that reports progress line by line on stdout."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def expect(self, line: str, timeout: float = 60.0) -> None:
        """Wait (with a deadline) until the child prints ``line``."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=deadline - time.monotonic()):
                    got = self.proc.stdout.readline()
                    if got.strip() == line:
                        return
                    if not got:
                        break
        self.proc.kill()
        _, err = self.proc.communicate()
        raise AssertionError(f"child did not print {line!r}; stderr:\n{err}")

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("done\n", timeout=60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == -9
