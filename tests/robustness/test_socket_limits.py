"""The control socket stays usable: idle connections cannot lock the CLI out, and an
oversize request gets RequestTooLarge, not a broken pipe."""

from __future__ import annotations

import socket
import time

import pytest

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.remote import Client, ControlServer, RequestTooLarge
from nbconductor.remote.server import MAX_CONNECTIONS
from nbconductor.testing import wait_for


@nc.workflow
async def waits() -> object:
    return await nc.signal("go")


@pytest.fixture
def served(tmp_path):
    eng = Engine(tmp_path / "history.duckdb", make_default=False)
    server = ControlServer(eng, tmp_path / "sock" / "control.sock").start()
    yield eng, server
    server.stop()
    eng.stop(grace=0)


def test_idle_connections_do_not_lock_the_cli_out(served):
    _, server = served
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(server.socket_path))
            idle.append(s)
        wait_for(
            lambda: len(server._connections) >= MAX_CONNECTIONS,
            what="the server to hold every idle connection",
        )
        began = time.monotonic()
        with Client(server.socket_path, timeout=10) as client:
            assert client.call("ping")["pid"] > 0
        assert time.monotonic() - began < 5
    finally:
        for s in idle:
            s.close()


def test_an_oversize_live_signal_gets_request_too_large(served):
    eng, server = served
    h = eng.start(waits, id="w")
    wait_for(lambda: h.waiting_for == ["go"], what="the signal wait")
    with (
        Client(server.socket_path, timeout=10) as client,
        pytest.raises(RequestTooLarge, match="larger than"),
    ):
        client.call("signal", id="w", name="go", payload="x" * (2 << 20))
    # Sent raw (no client-side check): the server answers before it closes.
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(server.socket_path))
    raw.settimeout(10)
    try:
        try:
            raw.sendall(b'{"op": "signal", "args": {"payload": "' + b"x" * (2 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail("the server hung up before answering")
        answer = raw.recv(1 << 16)
        assert b"RequestTooLarge" in answer
    finally:
        raw.close()
    with Client(server.socket_path, timeout=10) as client:
        client.call("signal", id="w", name="go", payload="small")
    assert h.result(timeout=10) == "small"
