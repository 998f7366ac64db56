"""Helpers shared by the CLI tests (imported by name: test modules cannot import
``conftest`` reliably when several test folders have one)."""

from __future__ import annotations

from pathlib import Path

from nbconductor.remote import RemoteError, connect
from nbconductor.testing import wait_for


def wait_status(db: Path, execution_id: str, status: str, timeout: float = 20.0) -> dict:
    """Wait until the execution has ``status`` (asked through the engine's socket)."""

    def reached():
        with connect(db) as client:
            try:
                shown = client.call("show", id=execution_id)
            except RemoteError as exc:
                # Between engine.start() and its commit the engine may not know the id
                # yet (a start is fire-and-forget).
                if exc.type == "ExecutionNotFound":
                    return None
                raise
        return shown if shown["status"] == status else None

    return wait_for(reached, timeout, f"{execution_id} to be {status}")


def wait_waiting(db: Path, execution_id: str, signal_name: str) -> None:
    def waiting():
        with connect(db) as client:
            try:
                return signal_name in client.call("show", id=execution_id)["waiting_signals"]
            except RemoteError as exc:
                if exc.type == "ExecutionNotFound":
                    return False  # not recorded yet: start is fire-and-forget
                raise

    wait_for(waiting, 20, f"{execution_id} to wait for signal {signal_name}")
