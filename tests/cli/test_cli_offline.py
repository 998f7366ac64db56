"""Every command against a real history file that no engine holds."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from clitools import wait_status

import nbconductor as nc
from nbconductor.cli import UsageError, build_parser, parse_when, resolve_db
from nbconductor.storage.records import Status
from nbconductor.testing import wait_for


def test_list_shows_a_table_and_stable_json(cli, db):
    table = cli("--db", db, "list")
    assert table.code == 0, table.err
    header, rule, *rows = table.out.splitlines()
    # The table %conductor list --text shows in a notebook (one renderer for both).
    assert header.split()[:3] == ["id", "workflow", "status"]
    assert set(rule) <= {"-", " "}
    assert len(rows) == 4
    # Columns line up: every row's status starts where the header's does.
    column = header.index("status")
    assert {row[column:].split()[0] for row in rows} == {"running", "completed"}

    listed = cli("--db", db, "list", "--json").json
    assert sorted(x["id"] for x in listed) == ["a-1", "a-2", "d-1", "n-1"]
    first = next(x for x in listed if x["id"] == "d-1")
    assert list(first) == [
        "id",
        "workflow",
        "version",
        "status",
        "created_at",
        "updated_at",
        "closed_at",
        "input",
        "result",
        "error",
        "parent_id",
        "origin_id",
        "tags",
        "condition",
    ]
    assert first["result"] == 42
    assert first["input"] == {"args": [21], "kwargs": {}}
    assert first["created_at"].endswith("+00:00")


def test_list_filters(cli, db):
    def ids(*argv):
        result = cli("--db", db, "list", "--json", *argv)
        assert result.code == 0, result.err
        return sorted(x["id"] for x in result.json)

    assert ids("--status", "completed") == ["d-1"]
    assert ids("--status", "running,completed", "--workflow", "approval") == ["a-1", "a-2"]
    assert ids("--workflow", "napper") == ["n-1"]
    assert ids("--since", "1 day") == ["a-1", "a-2", "d-1", "n-1"]
    assert ids("--until", "2000-01-01") == []
    assert len(ids("--limit", "2")) == 2
    # --db after the command works as well.
    assert cli("list", "--db", db, "--json").code == 0

    bad = cli("--db", db, "list", "--status", "sleeping")
    assert bad.code == 2
    assert "sleeping" in bad.err and "running" in bad.err
    assert cli("--db", db, "list", "--since", "yesterday-ish").code == 2


def test_show_and_history(cli, db):
    shown = cli("--db", db, "show", "d-1")
    assert shown.code == 0
    assert "status:     completed" in shown.out and "result:     42" in shown.out

    detail = cli("--db", db, "show", "a-1", "--json").json
    assert detail["status"] == "running"
    assert detail["waiting_signals"] == []  # only a running engine knows

    history = cli("--db", db, "history", "d-1", "--json").json
    assert [e["kind"] for e in history] == ["ExecutionStarted", "ExecutionCompleted"]
    assert history[1]["data"] == {"result": 42}
    assert list(history[0]) == [
        "execution_id",
        "seq",
        "kind",
        "at",
        "command",
        "name",
        "attempt",
        "data",
    ]
    table = cli("--db", db, "history", "n-1")
    assert "TimerStarted" in table.out

    missing = cli("--db", db, "show", "nope")
    assert missing.code == 1
    assert "no execution with id 'nope'" in missing.err
    missing_json = cli("--db", db, "history", "nope", "--json")
    assert missing_json.code == 1
    assert '"type": "ExecutionNotFound"' in missing_json.err


def test_reads_leave_the_file_untouched(cli, db):
    before = db.stat().st_mtime_ns, db.stat().st_size
    for argv in (["list"], ["show", "a-1"], ["history", "a-1"], ["sql", "SELECT 1"], ["status"]):
        cli("--db", db, *argv)
    assert (db.stat().st_mtime_ns, db.stat().st_size) == before


def test_signal_is_recorded_and_the_next_engine_delivers_it(cli, db, start_host):
    sent = cli("--db", db, "signal", "a-1", "approve", '{"by": "ops"}')
    assert sent.code == 0, sent.err
    assert "recorded for a-1" in sent.out and "next engine" in sent.out
    history = cli("--db", db, "history", "a-1", "--json").json
    assert history[-1]["kind"] == "SignalReceived"
    assert history[-1]["data"] == {"offline": True, "payload": {"by": "ops"}}

    host = start_host(db)
    done = wait_status(db, "a-1", "completed")
    assert done["result"] == {"order": "A-1", "decision": {"by": "ops"}}
    host.stop()


def test_signal_payload_forms(cli, db, tmp_path, monkeypatch):
    payload_file = tmp_path / "payload.json"
    payload_file.write_text('[1, 2, {"three": 3}]')
    assert cli("--db", db, "signal", "a-1", "approve", f"@{payload_file}", "--json").json == {
        "id": "a-1",
        "signal": "approve",
        "delivered": False,
    }
    assert cli("--db", db, "signal", "a-2", "approve").code == 0  # no payload: null
    history = cli("--db", db, "history", "a-1", "--json").json
    assert history[-1]["data"] == {"offline": True, "payload": [1, 2, {"three": 3}]}
    assert cli("--db", db, "history", "a-2", "--json").json[-1]["data"] == {
        "offline": True,
        "payload": None,
    }

    invalid = cli("--db", db, "signal", "a-1", "approve", '{"by": ops}')
    assert invalid.code == 2
    assert "not valid JSON" in invalid.err and "line 1, column 8" in invalid.err
    bare = cli("--db", db, "signal", "a-1", "approve", "yes")
    assert bare.code == 2 and "quote a string" in bare.err
    bad_file = tmp_path / "bad.json"
    bad_file.write_text("{\n  1: 2\n}")
    from_file = cli("--db", db, "signal", "a-1", "approve", f"@{bad_file}")
    assert from_file.code == 2
    assert "bad.json" in from_file.err and "line 2, column 3" in from_file.err
    assert cli("--db", db, "signal", "a-1", "approve", "@/no/such/file").code == 2
    assert cli("--db", db, "signal", "a-1", "not a name!").code == 1
    closed = cli("--db", db, "signal", "d-1", "approve", "1")
    assert closed.code == 1 and "already Completed" in closed.err


def test_cancel_and_terminate(cli, db, start_host):
    cancelled = cli("--db", db, "cancel", "n-1")
    assert cancelled.code == 0, cancelled.err
    assert "cancel request recorded" in cancelled.out
    assert cli("--db", db, "history", "n-1", "--json").json[-1]["kind"] == "CancelRequested"

    terminated = cli("--db", db, "terminate", "a-2", "--reason", "duplicate order", "--json")
    assert terminated.code == 0, terminated.err
    assert terminated.json == {"id": "a-2", "terminated": True}
    shown = cli("--db", db, "show", "a-2", "--json").json
    assert shown["status"] == "terminated"
    assert shown["error"] == {"type": "Terminated", "message": "duplicate order"}
    assert cli("--db", db, "terminate", "a-2").code == 1  # closed already

    host = start_host(db)  # the next engine carries out the cancel request
    wait_status(db, "n-1", "cancelled")
    host.stop()


def test_sql_is_read_only(cli, db):
    table = cli("--db", db, "sql", "SELECT id, status FROM executions ORDER BY id")
    assert table.code == 0, table.err
    assert table.out.splitlines()[0].split() == ["id", "status"]
    assert table.out.rstrip().endswith("(4 rows)")

    as_json = cli(
        "--db",
        db,
        "sql",
        "--json",
        "SELECT count(*) AS n, max(created_at) > '2000-01-01' AS t FROM executions",
    )
    assert as_json.json == {"columns": ["n", "t"], "rows": [[4, True]]}

    as_csv = cli("--db", db, "sql", "--csv", "SELECT id, tags FROM executions WHERE id = 'd-1'")
    assert as_csv.out.splitlines() == ["id,tags", "d-1,[]"]

    for statement in ("DROP TABLE events", "DELETE FROM executions", "SELECT 1; SELECT 2"):
        refused = cli("--db", db, "sql", statement)
        assert refused.code == 1, statement
        assert "nbconductor: error:" in refused.err
    assert cli("--db", db, "sql", "SELECT count(*) FROM events").code == 0
    broken = cli("--db", db, "sql", "SELEKT 1")
    assert broken.code == 1 and "syntax" in broken.err.lower()


def test_export_parquet(cli, db, tmp_path):
    target = tmp_path / "out" / "parquet"
    result = cli("--db", db, "export", "--parquet", target, "--json")
    assert result.code == 0, result.err
    tables = result.json["tables"]
    assert set(tables) == {"executions", "events", "definitions", "schedules", "queues", "payloads"}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
    with duckdb.connect() as con:
        for name, item in tables.items():
            path = target / f"{name}.parquet"
            assert item["path"] == str(path)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            (count,) = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
            assert count == item["rows"]
        assert tables["executions"]["rows"] == 4
        ids = con.execute(
            "SELECT DISTINCT execution_id FROM read_parquet(?) ORDER BY 1",
            [str(target / "events.parquet")],
        ).fetchall()
        assert [i for (i,) in ids] == ["a-1", "a-2", "d-1", "n-1"]
    assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no partial files
    again = cli("--db", db, "export", "--parquet", target)  # replaces the files
    assert again.code == 0 and "events.parquet" in again.out


def test_status_without_an_engine_exits_2(cli, db, tmp_path):
    result = cli("--db", db, "status")
    assert result.code == 2
    assert "engine:     none" in result.out
    assert "timers:     1 pending, 0 due" in result.out
    status = cli("--db", db, "status", "--json").json
    assert status["engine"] is False and status["held_by"] is None
    assert status["open_executions"] == 3
    assert status["counts"] == {"running": 3, "completed": 1}
    assert status["schedules"] == 1
    assert cli("--db", tmp_path / "missing.duckdb", "status").code == 2


def test_engine_only_commands_say_so(cli, db):
    for argv in (
        ["start", "doubler", "1"],
        ["schedules", "create", "x", "doubler", "--every", "1h"],
        ["schedules", "pause", "hourly"],
        ["schedules", "trigger", "hourly"],
    ):
        result = cli("--db", db, *argv)
        assert result.code == 2, argv
        assert "needs a running engine" in result.err
    listed = cli("--db", db, "schedules", "list", "--json")
    assert listed.code == 0
    (hourly,) = listed.json
    assert hourly["id"] == "hourly" and hourly["paused"] is True and hourly["every"] == 3600
    assert "hourly" in cli("--db", db, "schedules").out


def test_choosing_the_history_file(cli, db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    none = cli("list")
    assert none.code == 2 and "--db PATH" in none.err
    monkeypatch.setenv("NBCONDUCTOR_DB", str(db))
    assert cli("list", "--json").code == 0
    monkeypatch.delenv("NBCONDUCTOR_DB")
    folder = tmp_path / ".nbconductor"
    folder.mkdir()
    os.replace(db, folder / "orders.duckdb")
    assert len(cli("list", "--json").json) == 4
    (folder / "other.duckdb").write_bytes(b"")
    several = cli("list")
    assert several.code == 2
    assert "orders.duckdb" in several.err and "other.duckdb" in several.err
    assert resolve_db("x.duckdb", {}, tmp_path) == tmp_path / "x.duckdb"
    assert resolve_db(None, {"NBCONDUCTOR_DB": "/a/b.duckdb"}, tmp_path) == Path("/a/b.duckdb")
    missing = cli("--db", tmp_path / "nope.duckdb", "list")
    assert missing.code == 2 and "no nbconductor history" in missing.err
    assert not (tmp_path / "nope.duckdb").exists()
    assert cli("--db", tmp_path / "nope.duckdb", "signal", "a-1", "approve").code == 2
    assert not (tmp_path / "nope.duckdb").exists()


def test_parse_when_reads_durations_ago_and_dates():
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_when("2h", "--since", now=now) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    moment = parse_when("2024-05-01T12:00+02:00", "--since")
    assert moment.isoformat() == "2024-05-01T10:00:00+00:00"
    # Without a zone a date/time is local time, given back in UTC.
    local = datetime(2024, 5, 1, 12, 0).astimezone()
    assert parse_when("2024-05-01T12:00", "--until") == local.astimezone(UTC)
    with pytest.raises(UsageError, match="--since 'whenever': give a duration ago"):
        parse_when("whenever", "--since", now=now)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["list"],
        ["show"],
        ["history"],
        ["signal"],
        ["cancel"],
        ["terminate"],
        ["start"],
        ["schedules"],
        *[["schedules", a] for a in ("list", "show", "create", "update", "delete")],
        *[["schedules", a] for a in ("pause", "resume", "trigger")],
        ["sql"],
        ["export"],
        ["status"],
        ["worker"],
    ],
)
def test_help_everywhere(cli, argv):
    result = cli(*argv, "--help")
    assert result.code == 0
    assert result.out.startswith("usage: nbconductor")


def test_top_level_help_documents_exit_codes(cli):
    text = cli("--help").out
    assert "exit codes:" in text
    assert "2  usage error" in text and "status: 0 healthy engine" in text
    assert cli().code == 2  # no command: help, usage exit code
    assert cli("frobnicate").code == 2
    assert cli("--db", "x", "show").code == 2  # missing ID
    assert {a.dest for a in build_parser()._actions} >= {"db", "timeout", "command"}


def test_show_follow_needs_an_engine_for_an_open_execution(cli, db):
    refused = cli("--db", db, "show", "a-1", "--follow")
    assert refused.code == 2
    assert "--follow needs a running engine" in refused.err
    done = cli("--db", db, "show", "d-1", "--follow")  # closed: shown, nothing to follow
    assert done.code == 0 and "completed" in done.out


@nc.workflow
async def cli_offline_rounds(n: int) -> str:
    if n < 2:
        await nc.signal("next")
        nc.continue_as_new(n + 1)
    return await nc.signal("done")


def test_signal_cancel_and_terminate_reach_the_latest_run_of_a_chain(cli, tmp_path):
    os.chmod(tmp_path, 0o700)
    db = tmp_path / "chains.duckdb"
    with nc.Engine(db) as eng:
        for chain in ("sig", "can", "ter"):
            h = eng.start(cli_offline_rounds, 1, id=chain)
            wait_for(lambda h=h: h.waiting_for == ["next"], what=f"{chain}: round 1")
            h.signal("next")
            wait_for(lambda h=h: h.waiting_for == ["done"], what=f"{chain}: round 2")
    # No engine holds the file now: the CLI writes to it, addressing each chain by its id.
    sent = cli("--db", db, "signal", "sig", "done", '"by cli"')
    assert sent.code == 0, sent.err
    assert cli("--db", db, "history", "sig#2", "--json").json[-1]["data"] == {
        "offline": True,
        "payload": "by cli",
    }
    assert cli("--db", db, "cancel", "can").code == 0
    terminated = cli("--db", db, "terminate", "ter", "--reason", "enough")
    assert terminated.code == 0, terminated.err
    assert cli("--db", db, "show", "ter#2", "--json").json["status"] == "terminated"
    assert cli("--db", db, "show", "ter", "--json").json["status"] == "continued_as_new"
    again = cli("--db", db, "terminate", "ter")
    assert again.code == 1 and "latest run 'ter#2'" in again.err
    with nc.Engine(db) as eng:  # the next engine delivers what the CLI recorded
        assert eng.get("sig").result(timeout=10) == "by cli"
        with pytest.raises(nc.ExecutionFailed, match="Cancelled"):
            eng.get("can").result(timeout=10)
        assert eng.describe("can#2").status is Status.CANCELLED
