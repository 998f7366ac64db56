"""Every command against a history file held by an engine in another process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from clitools import wait_status, wait_waiting

from nbconductor.remote import connect
from nbconductor.testing import wait_for


@pytest.fixture
def live(db, start_host):
    """An engine host on the seeded copy, with a-1 and a-2 replayed and waiting again."""
    host = start_host(db)
    wait_waiting(db, "a-1", "approve")
    return host


def test_signal_from_the_cli_completes_a_waiting_execution(cli, db, live):
    shown = cli("--db", db, "show", "a-1")
    assert "waiting:    signal approve" in shown.out
    sent = cli("--db", db, "signal", "a-1", "approve", '{"by": "cli"}')
    assert sent.code == 0, sent.err
    assert sent.out.strip() == "signal 'approve' sent to a-1"
    # The engine answers once the tick that recorded the signal has committed, and the
    # workflow's completion is recorded in that same tick.
    done = cli("--db", db, "show", "a-1", "--json").json
    assert done["status"] == "completed"
    assert done["result"] == {"order": "A-1", "decision": {"by": "cli"}}
    again = cli("--db", db, "signal", "a-1", "approve", "1", "--json")
    assert again.code == 1
    assert json.loads(again.err)["error"]["type"] == "ExecutionClosed"


def test_reads_through_the_engine(cli, db, live):
    listed = cli("--db", db, "list", "--json", "--status", "running")
    assert sorted(x["id"] for x in listed.json) == ["a-1", "a-2", "n-1"]
    assert cli("--db", db, "show", "a-2", "--json").json["waiting_signals"] == ["approve"]
    kinds = [e["kind"] for e in cli("--db", db, "history", "n-1", "--json").json]
    assert kinds == ["ExecutionStarted", "TimerStarted"]
    missing = cli("--db", db, "history", "nope")
    assert missing.code == 1 and "no execution with id 'nope'" in missing.err


def test_cancel_and_terminate(cli, db, live):
    cancelled = cli("--db", db, "cancel", "n-1", "--json")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.json == {"id": "n-1", "cancel_requested": True, "delivered": True}
    wait_status(db, "n-1", "cancelled")

    terminated = cli("--db", db, "terminate", "a-2", "--reason", "duplicate")
    assert terminated.code == 0 and terminated.out.strip() == "terminated a-2 (duplicate)"
    shown = cli("--db", db, "show", "a-2", "--json").json
    assert shown["status"] == "terminated"
    assert shown["error"]["message"] == "duplicate"
    assert cli("--db", db, "cancel", "a-2").code == 1


def test_start_a_registered_workflow(cli, db, live):
    started = cli("--db", db, "start", "doubler", "20", "--kw", "extra=2", "--id", "s-1", "--json")
    assert started.code == 0, started.err
    assert started.json == {"id": "s-1", "workflow": "doubler", "recorded": True}
    assert wait_status(db, "s-1", "completed")["result"] == 42

    unknown = cli("--db", db, "start", "nosuch")
    assert unknown.code == 1 and "no workflow named 'nosuch'" in unknown.err
    wrong = cli("--db", db, "start", "doubler", "1", "2", "3")
    assert wrong.code == 1 and "doubler" in wrong.err
    assert cli("--db", db, "start", "doubler", "--kw", "not-a-name").code == 2


def test_schedules(cli, db, live):
    created = cli(
        "--db", db, "schedules", "create", "often", "doubler", "--every", "1h", "--args", "[5]"
    )
    assert created.code == 0, created.err
    assert "schedule often" in created.out and "every 1h" in created.out

    listed = cli("--db", db, "schedules", "list", "--json").json
    assert [s["id"] for s in listed] == ["hourly", "often"]
    often = listed[1]
    assert often["args"] == [5] and often["paused"] is False and often["next_fire"]
    assert "often" in cli("--db", db, "schedules").out

    shown = cli("--db", db, "schedules", "show", "often", "--n", "3", "--json").json
    assert len(shown["describe"]["upcoming"]) == 3

    paused = cli("--db", db, "schedules", "pause", "often", "--note", "maintenance", "--json")
    assert paused.json["paused"] is True and paused.json["note"] == "maintenance"
    assert paused.json["next_fire"] is None
    resumed = cli("--db", db, "schedules", "resume", "often", "--json")
    assert resumed.json["paused"] is False and resumed.json["next_fire"]

    triggered = cli("--db", db, "schedules", "trigger", "often", "--json")
    assert triggered.code == 0, triggered.err
    run = triggered.json["started"]
    assert run.startswith("often@")
    assert wait_status(db, run, "completed")["result"] == 10

    updated = cli("--db", db, "schedules", "update", "often", "--every", "2h", "--json")
    assert updated.json["every"] == 7200
    assert cli("--db", db, "schedules", "update", "often").code == 2  # nothing to change

    deleted = cli("--db", db, "schedules", "delete", "often")
    assert deleted.code == 0 and "deleted schedule often" in deleted.out
    assert [s["id"] for s in cli("--db", db, "schedules", "list", "--json").json] == ["hourly"]

    bad_cron = cli("--db", db, "schedules", "create", "bad", "doubler", "--cron", "61 * * * *")
    assert bad_cron.code == 1 and "minute field" in bad_cron.err
    duplicate = cli("--db", db, "schedules", "create", "hourly", "doubler", "--every", "1h")
    assert duplicate.code == 1 and "exists already" in duplicate.err
    assert cli("--db", db, "schedules", "trigger", "nope").code == 1
    assert cli("--db", db, "schedules", "create", "x", "doubler", "--args", "[1").code == 2


def test_sql_and_export_while_the_engine_holds_the_file(cli, db, live, tmp_path):
    rows = cli("--db", db, "sql", "--json", "SELECT count(*) FROM executions").json["rows"]
    assert rows == [[4]]
    refused = cli("--db", db, "sql", "DROP TABLE events")
    assert refused.code == 1 and "only queries that read" in refused.err
    copy = cli("--db", db, "sql", f"COPY events TO '{tmp_path / 'x.csv'}'")
    assert copy.code == 1 and not (tmp_path / "x.csv").exists()

    exported = cli("--db", db, "export", "--parquet", tmp_path / "export", "--json")
    assert exported.code == 0, exported.err
    assert exported.json["tables"]["events"]["rows"] > 0
    with duckdb.connect() as con:
        (count,) = con.execute(
            "SELECT count(*) FROM read_parquet(?)",
            [str(tmp_path / "export" / "executions.parquet")],
        ).fetchone()
    assert count == 4


def test_status_of_a_healthy_engine(cli, db, live):
    result = cli("--db", db, "status")
    assert result.code == 0, result.err
    assert result.out.startswith("engine:     healthy, pid ")
    status = cli("--db", db, "status", "--json").json
    assert status["healthy"] is True and status["problems"] == []
    assert status["pid"] == live.process.pid
    assert status["socket"] == str(live.socket_path) == str(db.with_name(".history.duckdb.sock"))
    assert status["db"] == str(db)
    assert status["uptime_seconds"] >= 0
    assert status["open_executions"] == 3
    assert status["pending_timers"] == 1 and status["due_timers"] == 0
    assert status["running_tasks"] == 0
    assert status["schedules"] == 1


def test_status_is_unhealthy_when_the_history_becomes_unusable(cli, db, live):
    live.command("lose-store")

    def stopped():
        return not cli("--db", db, "status", "--json").json["running"]

    wait_for(stopped, 20, "the engine thread to stop on the store error")
    result = cli("--db", db, "status")
    assert result.code == 1
    assert "UNHEALTHY" in result.out
    assert "StoreError" in result.out  # the error the engine stopped on


def test_status_is_unhealthy_when_workflow_code_blocks_the_engine(cli, db, live):
    started = cli("--db", db, "start", "blocker", "--id", "b-1")
    assert started.code == 0, started.err
    assert "has not recorded the start yet" in started.out  # the engine thread is stuck
    result = cli("--db", db, "status", "--json")
    assert result.code == 1
    assert result.json["responsive"] is False
    assert any("did not answer" in p for p in result.json["problems"])
    live.command("release")
    wait_status(db, "b-1", "completed")
    assert cli("--db", db, "status").code == 0


def test_a_killed_engine_leaves_a_stale_socket_that_means_no_engine(cli, db, live, start_host):
    socket_path = live.socket_path
    live.kill()
    assert socket_path.exists()  # nobody removed it
    assert connect(db) is None  # connection refused: no engine

    status = cli("--db", db, "status")
    assert status.code == 2 and "engine:     none" in status.out
    assert len(cli("--db", db, "list", "--json").json) == 4  # offline fallback
    sent = cli("--db", db, "signal", "a-1", "approve", '"late"')
    assert sent.code == 0 and "recorded" in sent.out

    start_host(db)  # binds over the stale socket, replays, delivers the signal
    assert wait_status(db, "a-1", "completed")["result"]["decision"] == "late"


def test_stopping_the_engine_removes_its_socket(cli, db, live):
    socket_path = live.socket_path
    assert cli("--db", db, "status").code == 0
    live.stop()
    assert not socket_path.exists()
    assert cli("--db", db, "status").code == 2


def test_the_installed_console_script(db, live):
    script = Path(sys.executable).with_name("nbconductor")
    assert script.exists(), "the package is not installed with its console script"
    done = subprocess.run(
        [script, "--db", db, "status", "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pid"] == live.process.pid
    sent = subprocess.run(
        [script, "signal", "a-1", "approve", "@-", "--db", db],
        input='{"via": "stdin"}',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    assert wait_status(db, "a-1", "completed")["result"]["decision"] == {"via": "stdin"}


def test_show_follow_draws_until_the_execution_closes(cli, db, live):
    follower = subprocess.Popen(
        [sys.executable, "-m", "nbconductor.cli", "--db", str(db), "show", "a-1", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = cli("--db", db, "signal", "a-1", "approve", '{"by": "follow"}')
        assert sent.code == 0, sent.err
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert "approval a-1" in err and "completed: " in err  # the bar, on stderr
    assert "completed" in out and "follow" in out  # then the execution, as show prints it


def test_show_follow_fails_when_the_execution_fails(cli, db, live):
    cli("--db", db, "terminate", "a-2", "--reason", "stock gone")
    result = cli("--db", db, "show", "a-2", "--follow")
    assert result.code == 1
    assert "terminated" in result.err


def test_queues_through_the_engine_then_from_the_file(cli, db, live):
    created = cli(
        "--db", db, "queues", "create", "llm", "--concurrency", "8", "--rate", "60/minute"
    )
    assert created.code == 0, created.err
    assert created.out.strip() == "created queue llm: concurrency 8, rate 60/minute"
    listed = cli("--db", db, "queues", "list", "--json").json
    assert listed == [
        {
            "name": "llm",
            "concurrency": 8,
            "rate": "60/minute",
            "burst": 1,
            "running": 0,
            "waiting": 0,
        }
    ]
    bursty = cli("--db", db, "queues", "update", "llm", "--burst", "4")
    assert bursty.out.strip() == "updated queue llm: concurrency 8, rate 60/minute, burst 4"
    updated = cli("--db", db, "queues", "update", "llm", "--no-rate", "--json")
    assert updated.json["rate"] is None and updated.json["concurrency"] == 8
    assert cli("--db", db, "queues", "update", "llm").code == 2  # nothing to change
    bad = cli("--db", db, "queues", "create", "x", "--rate", "lots")
    assert bad.code == 1 and "rate='lots'" in bad.err
    cli("--db", db, "queues", "create", "gone")
    assert cli("--db", db, "queues", "delete", "gone").out.strip() == "deleted queue gone"
    missing = cli("--db", db, "queues", "delete", "gone")
    assert missing.code == 1 and "no queue named 'gone'" in missing.err
    live.stop()
    # With no engine, the stored queues are still listed (without counts).
    offline = cli("--db", db, "queues", "list", "--json")
    assert offline.code == 0, offline.err
    assert offline.json == [
        {
            "name": "llm",
            "concurrency": 8,
            "rate": None,
            "burst": 1,
            "running": None,
            "waiting": None,
        }
    ]
    refused = cli("--db", db, "queues", "create", "later")
    assert refused.code != 0 and "needs a running engine" in refused.err
