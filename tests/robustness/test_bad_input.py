"""The bad-input matrix: files, CLI arguments, socket lines, payloads, durations and cron
strings. Each case gets a clear error (never a traceback) and leaves the file as it was."""

from __future__ import annotations

import hashlib
import socket

import pytest

import nbconductor as nc
from nbconductor.cli import main
from nbconductor.engine.duration import parse_duration
from nbconductor.engine.engine import Engine
from nbconductor.engine.schedules.spec import ScheduleSpec
from nbconductor.errors import InvalidDuration, NbconductorError, PayloadError, ScheduleError
from nbconductor.remote import ControlServer
from nbconductor.testing import wait_for


@nc.workflow
async def waits_for_item(n: int) -> object:
    return await nc.signal("item")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A history file with one open execution, and no engine holding it."""
    path = tmp_path_factory.mktemp("bad") / "history.duckdb"
    eng = Engine(path, make_default=False)
    h = eng.start(waits_for_item, 1, id="open-1")
    wait_for(lambda: h.waiting_for == ["item"], what="the signal wait")
    eng.stop(grace=0)
    return path


def _digest(path) -> str:
    files = sorted(path.parent.glob(path.name + "*"))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


CLI_CASES = [
    (["signal", "nope", "item", '"a"'], "nope"),
    (["signal", "open-1", "item", "{not json"], "JSON"),
    (["signal", "open-1", "bad name!", '"a"'], "signal"),
    (["list", "--limit", "-1"], "limit"),
    (["list", "--status", "asleep"], "asleep"),
    (["list", "--since", "monday"], "monday"),
    (["show", ""], "id"),
    (["sql", "DROP TABLE events"], "only"),
    (["sql", "SELECT * FROM read_text('/etc/hostname')"], "read_text"),
    (["sql", "SELECT 1; SELECT 2"], "one SQL statement"),
    (["history", "nope"], "nope"),
    (["terminate", "nope"], "nope"),
]


@pytest.mark.parametrize(("argv", "said"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_bad_cli_arguments(history, capsys, argv, said):
    before = _digest(history)
    code = main(["--db", str(history), *argv])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code != 0
    assert said in output
    assert "Traceback" not in output
    assert _digest(history) == before


FILE_CASES = {
    "random bytes": b"\x00\x01not a database" * 1000,
    "a text file": b"id,status\n1,running\n",
    "a duckdb header only": b"DUCK" + b"\x00" * 100,
}


@pytest.mark.parametrize("content", FILE_CASES.values(), ids=FILE_CASES.keys())
def test_files_that_are_not_histories(tmp_path, capsys, content):
    path = tmp_path / "history.duckdb"
    path.write_bytes(content)
    with pytest.raises(NbconductorError) as info:
        Engine(path, make_default=False)
    assert str(path) in str(info.value)
    code = main(["--db", str(path), "list"])
    captured = capsys.readouterr()
    assert code != 0 and "Traceback" not in captured.out + captured.err
    assert path.read_bytes() == content


@pytest.mark.parametrize("value", ["abc", -1, "1e400", "5 fortnights", "", None, [1], True])
def test_bad_durations(value):
    with pytest.raises(InvalidDuration, match="sleep"):
        parse_duration(value, what="sleep()")


@pytest.mark.parametrize(
    "cron", ["1-0 * * * *", "* * *", "61 * * * *", "* * * * * * *", "*/0 * * * *", "", "@never"]
)
def test_bad_cron_strings(cron):
    with pytest.raises(ScheduleError):
        ScheduleSpec.create("s", "wf", cron=cron, known_workflows={"wf"})


class Opaque:
    pass


def test_bad_payloads_leave_the_file_unchanged(history):
    eng = Engine(history, make_default=False)
    try:
        with pytest.raises(PayloadError, match="Opaque"):
            eng.start(waits_for_item, Opaque())
        with pytest.raises(PayloadError, match="Opaque"):
            eng.signal("open-1", "item", {"x": Opaque()})
        with pytest.raises(TypeError):
            eng.start(waits_for_item, 1, 2, 3)
        assert eng.get("open-1").waiting_for == ["item"]
    finally:
        eng.stop(grace=0)


SOCKET_LINES = [
    b"not json\n",
    b'{"op": "signal", "args": {"id": "open-1", "name": "bad name!", "payload": 1}}\n',
    b'{"op": "sql", "args": {"query": "SELECT * FROM \'/etc/passwd\'"}}\n',
    b'{"op": "start", "args": {"workflow": "waits_for_item", "args": "x"}}\n',
    b'{"op": "cancel", "args": {"id": "nope"}}\n',
]


def test_bad_socket_lines(tmp_path):
    eng = Engine(tmp_path / "history.duckdb", make_default=False)
    server = ControlServer(eng, tmp_path / "sock" / "control.sock").start()
    try:
        h = eng.start(waits_for_item, 1, id="open-1")
        wait_for(lambda: h.waiting_for == ["item"], what="the signal wait")
        wait_for(lambda: len(eng.history("open-1")) >= 1, what="the start to commit")
        before = [(e.seq, e.kind) for e in eng.history("open-1")]
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(str(server.socket_path))
        raw.settimeout(10)
        reader = raw.makefile("rb")
        try:
            for line in SOCKET_LINES:
                raw.sendall(line)
                answer = reader.readline()
                assert b'"ok":false' in answer.replace(b" ", b""), (line, answer)
                assert b"Traceback" not in answer
        finally:
            reader.close()
            raw.close()
        assert [(e.seq, e.kind) for e in eng.history("open-1")] == before
        assert eng.running
    finally:
        server.stop()
        eng.stop(grace=0)
