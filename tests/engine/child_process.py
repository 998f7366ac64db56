"""Run a script in a child Python process until it prints READY, then SIGKILL it: the
crash the recovery tests resume from."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).parent


def kill_when_ready(
    script: str, args: list[str], errors: Path, env: dict[str, str] | None = None, timeout=60.0
) -> None:
    """Start ``tests/engine/SCRIPT ARGS``, wait (up to ``timeout``) for its READY line,
    and kill it with SIGKILL. The child's stderr goes to ``errors``, shown if it never
    gets ready. ``env`` adds variables; this folder is put on the child's PYTHONPATH."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    with errors.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(HERE / script), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in child.stdout], daemon=True)
    reader.start()
    try:
        try:
            ready = lines.get(timeout=timeout).strip()
        except queue.Empty:
            ready = "nothing"
        assert ready == "READY", errors.read_text()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        reader.join(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
