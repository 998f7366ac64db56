"""The control socket itself: malformed input, limits, permissions, where it lives."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import wait_waiting

import nbconductor.remote.server as control_server
from nbconductor.engine.engine import Engine
from nbconductor.operations.catalog import check_request
from nbconductor.remote import (
    BadRequest,
    ControlError,
    ControlServer,
    OfflineOperations,
    RemoteError,
    UnsafeSocketPath,
    address,
    connect,
)
from nbconductor.remote.protocol import MAX_REQUEST_BYTES, decode_request


class Raw:
    """A bare connection to a socket: bytes in, response objects out."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")

    def ask(self, data: bytes) -> dict:
        self.sock.sendall(data)
        return self.answer()

    def answer(self) -> dict:
        line = self.file.readline()
        assert line.endswith(b"\n"), f"no response line, got {line!r}"
        return json.loads(line)

    def closed_by_server(self) -> bool:
        try:
            return self.file.readline() == b""
        except ConnectionResetError:
            return True  # closed with our unread bytes still queued

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def live(db, start_host):
    host = start_host(db)
    wait_waiting(db, "a-1", "approve")
    return host


def _error(response: dict) -> tuple[str, str]:
    assert response["ok"] is False, response
    assert set(response) == {"ok", "error"} and set(response["error"]) == {"type", "message"}
    assert "Traceback" not in response["error"]["message"]
    return response["error"]["type"], response["error"]["message"]


def test_malformed_requests_get_structured_errors_and_the_server_keeps_serving(live):
    raw = Raw(live.socket_path)
    cases = [
        (b"not json\n", "BadRequest", "not valid JSON"),
        (b"[1, 2]\n", "BadRequest", "JSON object"),
        (b'{"args": {}}\n', "BadRequest", 'no "op"'),
        (b'{"op": "explode"}\n', "UnknownOperation", "unknown operation 'explode'"),
        (b"{\"op\": \"__import__('os').system('id')\"}\n", "UnknownOperation", "unknown"),
        (b'{"op": 7}\n', "BadRequest", '"op" must be a string'),
        (b'{"op": "show"}\n', "BadRequest", "needs the argument 'id'"),
        (b'{"op": "show", "args": []}\n', "BadRequest", "must be a JSON object"),
        (b'{"op": "show", "args": {"id": 5}}\n', "BadRequest", "must be a string"),
        (b'{"op": "show", "args": {"id": ""}}\n', "BadRequest", "1 to 500 characters"),
        (b'{"op": "list", "args": {"limit": true}}\n', "BadRequest", "must be an integer"),
        (b'{"op": "list", "args": {"limit": "5"}}\n', "BadRequest", "must be an integer"),
        (b'{"op": "list", "args": {"limit": -1}}\n', "BadRequest", "between 0 and"),
        (b'{"op": "list", "args": {"status": ["asleep"]}}\n', "BadRequest", "not a status"),
        (b'{"op": "list", "args": {"since": "monday"}}\n', "BadRequest", "ISO 8601"),
        (b'{"op": "show", "args": {"id": "a-1", "eval": "1"}}\n', "BadRequest", "no argument eval"),
        (b'{"op": "ping", "args": {}, "code": "x"}\n', "BadRequest", "unexpected: code"),
        (b'{"op": "export", "args": {"directory": "rel/dir"}}\n', "BadRequest", "absolute"),
        (b"\xff\xfe\n", "BadRequest", "not UTF-8"),
        (b"[" * 100_000 + b"\n", "BadRequest", "nested too deeply"),
        (b'{"op": "show", "args": {"id": "nope"}}\n', "ExecutionNotFound", "nope"),
        (b'{"op": "signal", "args": {"id": "a-1", "name": "no way"}}\n', "ValueError", "signal"),
        (b'{"op": "sql", "args": {"query": "DROP TABLE events"}}\n', "StoreError", "only"),
        (b'{"op": "start", "args": {"workflow": "os.system"}}\n', "WorkflowNotRegistered", ""),
    ]
    for data, kind, text in cases:
        got_kind, message = _error(raw.ask(data))
        assert (got_kind, text in message) == (kind, True), (data[:60], message)
    # Still the same connection, still serving; and pipelined requests are answered in order.
    raw.sock.sendall(b'{"op": "ping"}\n{"op": "show", "args": {"id": "a-1"}}\n')
    assert raw.answer()["result"]["pid"] == live.process.pid
    assert raw.answer()["result"]["status"] == "running"
    raw.close()
    with connect(live.db) as client:  # a fresh connection works as well
        assert client.call("show", id="a-1")["waiting_signals"] == ["approve"]


def test_an_oversized_request_is_refused_and_the_connection_closed(live):
    raw = Raw(live.socket_path)
    chunk = b" " * (1 << 16)
    try:
        for _ in range(MAX_REQUEST_BYTES // len(chunk) + 1):
            raw.sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may hang up before the last bytes are sent
    kind, message = _error(raw.answer())
    assert kind == "RequestTooLarge" and str(MAX_REQUEST_BYTES) in message
    assert raw.closed_by_server()
    raw.close()
    # A request just under the limit is read whole (and refused for what it says).
    raw = Raw(live.socket_path)
    padding = " " * (MAX_REQUEST_BYTES - 100)
    kind, _ = _error(raw.ask(f'{{"op": "explode"{padding}}}\n'.encode()))
    assert kind == "UnknownOperation"
    raw.close()
    with connect(live.db) as client:
        assert client.call("ping")["pid"] == live.process.pid


def test_the_client_checks_arguments_before_sending(live):
    with connect(live.db) as client:
        with pytest.raises(BadRequest, match="must be a string"):
            client.call("show", id=5)
        with pytest.raises(BadRequest, match="unknown operation"):
            client.call("shutdown")
        with pytest.raises(RemoteError) as caught:
            client.call("cancel", id="d-1")
        assert caught.value.type == "ExecutionClosed"
        assert client.call("ping")["protocol"] == 1


def test_offline_operations_check_arguments_the_same_way(db):
    with OfflineOperations(db) as ops, pytest.raises(BadRequest, match="between 0 and"):
        ops.call("list", limit=-5)
    assert check_request("list", {"status": ["running"]})["status"][0].value == "running"
    with pytest.raises(BadRequest):
        decode_request(b'{"op": "list", "args": {"offset": 1.5}}\n')


def test_socket_history_and_directory_permissions(db, live):
    socket_info = os.stat(live.socket_path)
    assert stat.S_ISSOCK(socket_info.st_mode)
    assert stat.S_IMODE(socket_info.st_mode) == 0o600
    assert socket_info.st_uid == os.getuid()
    assert stat.S_IMODE(os.stat(live.socket_path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert live.socket_path == db.with_name(".history.duckdb.sock")
    assert not address.pointer_path(db).exists()  # beside the file: no pointer needed


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a client as another user")
def test_another_user_cannot_connect(live):
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "except PermissionError:\n"
        "    print('refused')\n"
        "else:\n"
        "    print('connected')\n"
    )
    # The venv's interpreter may not be open to others; any Python will do here.
    python = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin") or sys.executable
    try:
        done = subprocess.run(
            [python, "-c", probe, str(live.socket_path)],
            user=65534,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except PermissionError:
        pytest.skip(f"uid 65534 may not run {python}")
    if done.returncode != 0 and "refused" not in done.stdout:
        pytest.skip(f"could not run Python as uid 65534: {done.stderr[-300:]}")
    assert done.stdout.strip() == "refused"


@pytest.mark.parametrize("why", ["path too long", "directory not private"])
def test_fallback_to_a_runtime_directory_with_a_pointer(
    why, cli, seeded_db, tmp_path, start_host, monkeypatch
):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    if why == "path too long":
        home = tmp_path / ("d" * 60) / ("e" * 60)
        home.mkdir(parents=True, mode=0o700)
    else:
        home = tmp_path / "shared"
        home.mkdir()
        os.chmod(home, 0o755)
    db = home / "history.duckdb"
    shutil.copy(seeded_db, db)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))  # the CLI looks there too
    host = start_host(db, env)
    assert host.socket_path.parent == runtime / "nbconductor"
    assert stat.S_IMODE(os.stat(host.socket_path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(host.socket_path).st_mode) == 0o600
    assert len(os.fsencode(host.socket_path)) <= address.MAX_SOCKET_PATH
    pointer = address.pointer_path(db)
    assert stat.S_IMODE(os.stat(pointer).st_mode) == 0o600
    assert json.loads(pointer.read_text())["socket"] == str(host.socket_path)
    status = cli("--db", db, "status", "--json")
    assert status.code == 0 and status.json["socket"] == str(host.socket_path)
    pointer.unlink()  # found by its hashed name all the same
    assert cli("--db", db, "status").code == 0
    host.stop()
    assert not host.socket_path.exists()


def test_unsafe_socket_directories_are_refused(tmp_path, monkeypatch):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    with pytest.raises(UnsafeSocketPath, match="mode 777"):
        address.check_private_dir(open_dir)
    group = tmp_path / "group"
    group.mkdir()
    os.chmod(group, 0o770)
    with pytest.raises(UnsafeSocketPath, match="written by group"):
        address.check_private_dir(group)
    readable = tmp_path / "readable"
    readable.mkdir()
    os.chmod(readable, 0o755)
    address.check_private_dir(readable)  # ours and only readable: tightened
    assert stat.S_IMODE(os.stat(readable).st_mode) == 0o700
    link = tmp_path / "link"
    link.symlink_to(readable)
    with pytest.raises(UnsafeSocketPath, match="not a directory"):
        address.check_private_dir(link)
    made = address.check_private_dir(tmp_path / "new" / "dir", create=True)
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    if os.getuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(UnsafeSocketPath, match="belongs to uid 65534"):
            address.check_private_dir(foreign)

    # An unsafe $XDG_RUNTIME_DIR/nbconductor is skipped for the next candidate.
    (open_dir / "nbconductor").mkdir()
    os.chmod(open_dir / "nbconductor", 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(open_dir))
    assert address.runtime_dirs() == [
        open_dir / "nbconductor",
        Path("/tmp") / f"nbconductor-{os.getuid()}",
    ]
    fallback = tmp_path / "fallback"  # stands in for /tmp/nbconductor-<uid>
    monkeypatch.setattr(address, "runtime_dirs", lambda: [open_dir / "nbconductor", fallback])
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    path, beside = address.choose_socket_path(shared / "h.duckdb")
    assert not beside
    assert path.parent == fallback
    assert stat.S_IMODE(os.stat(fallback).st_mode) == 0o700


def test_an_untrusted_socket_is_not_used(db, tmp_path):
    planted = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    os.chmod(db.parent, 0o755)  # a directory others can read: its socket is not trusted
    try:
        planted.bind(str(address.beside_path(db)))
        planted.listen(1)
        assert connect(db) is None
    finally:
        planted.close()
        os.chmod(db.parent, 0o700)


@pytest.fixture
def memory_engine():
    engine = Engine(None, make_default=False)
    yield engine
    engine.stop(grace=0)


def test_server_lifecycle_on_an_explicit_path(memory_engine, tmp_path, monkeypatch):
    with pytest.raises(ControlError, match="in memory"):
        ControlServer(memory_engine).start()
    path = tmp_path / "ctl" / "engine.sock"
    first = ControlServer(memory_engine, path).start()
    assert first.running and stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    with pytest.raises(ControlError, match="already serves"):
        ControlServer(memory_engine, path).start()
    first.stop()
    assert not path.exists() and not first.running

    # A socket file left behind (its server gone) is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    assert path.exists()
    with ControlServer(memory_engine, path) as second:
        raw = Raw(path)
        assert raw.ask(b'{"op": "ping"}\n')["ok"] is True
        # A request that stalls halfway is dropped after the request timeout.
        monkeypatch.setattr(control_server, "REQUEST_TIMEOUT", 0.2)
        stalled = Raw(path)
        stalled.sock.sendall(b'{"op": "pi')
        kind, _ = _error(stalled.answer())
        assert kind == "RequestTimeout" and stalled.closed_by_server()
        stalled.close()
        assert raw.ask(b'{"op": "sql", "args": {"query": "SELECT 1"}}\n')["error"]["type"] == (
            "StoreError"
        )
        raw.close()
    assert not path.exists() and not second.running
    regular = tmp_path / "ctl" / "file.sock"
    regular.write_text("not a socket")
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(memory_engine, regular).start()
    with pytest.raises(UnsafeSocketPath, match="longer than"):
        ControlServer(memory_engine, tmp_path / ("x" * 120) / "s.sock").start()
