"""Fixtures for the CLI tests: real history files, engines in subprocesses, the CLI
run in-process with captured output."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from clitools import wait_status, wait_waiting

from nbconductor.cli import main
from nbconductor.remote import connect
from nbconductor.testing import wait_for

HERE = Path(__file__).parent

#: The workflows every engine host imports (written to a temporary directory).
FLOWS = textwrap.dedent(
    """
    import threading

    import nbconductor as nc

    GATE = threading.Event()


    @nc.workflow
    async def approval(order: str) -> dict:
        decision = await nc.signal("approve")
        return {"order": order, "decision": decision}


    @nc.workflow
    async def doubler(x: int, extra: int = 0) -> int:
        return x * 2 + extra


    @nc.workflow
    async def napper(seconds: float) -> str:
        await nc.sleep(seconds)
        return "woke"


    @nc.workflow
    async def blocker() -> str:
        GATE.wait(30)  # a blocking call in workflow code: it holds the engine thread
        return "released"
    """
)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _no_db_from_environment(monkeypatch):
    monkeypatch.delenv("NBCONDUCTOR_DB", raising=False)


@pytest.fixture
def cli(capsys):
    """Run ``nbconductor ARGS`` in-process; returns its exit code and output."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def flows_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("flows")
    (directory / "cli_flows.py").write_text(FLOWS)
    return directory


class EngineHost:
    """An engine with a control server in a child process (tests/cli/cli_engine_host.py)."""

    def __init__(self, db: Path, flows: Path, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.stderr_path = db.with_name(f"{db.name}.host-{os.urandom(3).hex()}.stderr")
        environment = {**os.environ, **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join([str(flows), environment.get("PYTHONPATH", "")])
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / "cli_engine_host.py"), str(db), "cli_flows"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=environment,
            )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self._next(60)
        assert first.startswith("READY "), f"engine host did not start: {self.stderr()}"
        self.socket_path = Path(first.split(" ", 1)[1])

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put("EOF")

    def _next(self, timeout: float) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return "nothing"

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def command(self, text: str) -> None:
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        answer = self._next(30)
        assert answer == f"DONE {text}", f"{answer!r}; {self.stderr()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
            self.process.wait(30)
        assert self.process.returncode == 0, self.stderr()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self.process.stdin.close()
        self.process.stdout.close()


@pytest.fixture
def start_host(flows_dir):
    """``start_host(db)``: an engine host on ``db``; killed at teardown if still running."""
    hosts: list[EngineHost] = []

    def start(db: Path, env: dict[str, str] | None = None) -> EngineHost:
        host = EngineHost(db, flows_dir, env)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.close()


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory, flows_dir) -> Path:
    """A history file left by an engine that stopped, holding:

    - ``a-1``, ``a-2``: approvals waiting for signal ``approve``;
    - ``d-1``: a completed doubler (result 42);
    - ``n-1``: a napper asleep for an hour (one pending timer);
    - schedule ``hourly`` (doubler, paused).
    """
    directory = tmp_path_factory.mktemp("seeded")
    os.chmod(directory, 0o700)
    db = directory / "history.duckdb"
    host = EngineHost(db, flows_dir)
    try:
        with connect(db) as client:
            client.call("start", workflow="approval", args=["A-1"], id="a-1")
            client.call("start", workflow="approval", args=["A-2"], id="a-2")
            client.call("start", workflow="doubler", args=[21], id="d-1")
            client.call("start", workflow="napper", args=[3600], id="n-1")
            client.call(
                "schedules.create",
                id="hourly",
                workflow="doubler",
                every="1h",
                args=[1],
                paused=True,
            )
        wait_waiting(db, "a-1", "approve")
        wait_waiting(db, "a-2", "approve")
        wait_status(db, "d-1", "completed")

        def asleep():
            with connect(db) as client:
                return any(e["kind"] == "TimerStarted" for e in client.call("history", id="n-1"))

        wait_for(asleep, 20, "n-1 to start its timer")
        host.stop()
    finally:
        host.close()
    return db


@pytest.fixture
def db(tmp_path, seeded_db) -> Path:
    """A private copy of the seeded history, in a private directory."""
    os.chmod(tmp_path, 0o700)
    path = tmp_path / "history.duckdb"
    shutil.copy(seeded_db, path)
    return path
