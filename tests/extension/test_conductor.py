"""``%conductor`` (and ``%wf``) in a real IPython shell: the subcommands that run the
shared operations (status, list, show, history, signal, cancel, terminate, schedules,
sql), fork, and usage errors shown as messages, never tracebacks."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError
from shelltools import define_pair, run, unique

import nbconductor
from nbconductor.engine.engine import Engine
from nbconductor.errors import StoreError
from nbconductor.extension import commands
from nbconductor.operations.table import Table
from nbconductor.testing import wait_for


def test_status_list_show_history_and_sql(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    run(loaded_shell, capsys, f"run = {flow}.start(2, id='listed-1')\nrun.result(timeout=10)")
    _, out = run(loaded_shell, capsys, "%conductor status")
    assert "engine: running (thread alive)" in out
    assert "history: history.duckdb (from NBCONDUCTOR_DB)" in out
    assert "executions: Completed 1" in out and "running tasks: 0" in out
    result, out = run(
        loaded_shell, capsys, f"%conductor list --status completed --name {flow} --since 1h"
    )
    live = result.result
    assert live is not None, out  # the live history table, with a text snapshot for nbval
    assert "1 execution" in live._repr_mimebundle_()["text/plain"]
    assert "listed-1" in live.snapshot_html()  # shown as an output of its own
    result, _ = run(
        loaded_shell, capsys, f"%conductor list --text --status completed --name {flow} --since 1h"
    )
    table = result.result
    assert isinstance(table, Table)
    assert [r["id"] for r in table.records()] == ["listed-1"]
    assert "listed-1" in repr(table) and "<table" in table._repr_html_()
    # The same filters and time expressions as `nbconductor list`.
    result, _ = run(loaded_shell, capsys, f"%conductor list --text --workflow {flow} --until 1h")
    assert len(result.result) == 0  # started within the hour, not before it
    result, _ = run(
        loaded_shell, capsys, f"%conductor list --text --workflow {flow} --until 2999-01-01"
    )
    assert [r["id"] for r in result.result.records()] == ["listed-1"]
    result, _ = run(loaded_shell, capsys, "%wf list --text --status failed")
    assert len(result.result) == 0 and repr(result.result) == "no executions"
    _, out = run(loaded_shell, capsys, "%conductor show listed-1")
    assert "status:    Completed" in out and "input:     (2)" in out and "result:    10" in out
    result, _ = run(loaded_shell, capsys, "%conductor history listed-1")
    kinds = [row[2] for row in result.result]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
    result, _ = run(
        loaded_shell,
        capsys,
        "%conductor sql SELECT id, status FROM executions WHERE id = 'listed-1'",
    )
    rows = result.result
    assert list(rows.columns) == ["id", "status"] and len(rows) == 1
    result, _ = run(loaded_shell, capsys, "%%conductor sql\nSELECT count(*) AS n\nFROM executions")
    assert len(result.result) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bogus", "invalid choice: 'bogus'"),
        ("list --limit x", "'x' is not a whole number"),
        ("list --limit 0", "give 1 or more"),
        ("list --status sleeping", "'sleeping'"),
        ("list --since yesterdayish", "give a duration ago"),
        ("show", "the following arguments are required: ID"),
        ("show no-such-id", "no execution with id 'no-such-id'"),
        ("history no-such-id", "no execution with id 'no-such-id'"),
        ("signal no-such-id", "the following arguments are required: NAME"),
        ("signal no-such-id go {not json", "neither JSON nor a Python literal"),
        ("signal no-such-id go 1", "no-such-id"),
        ("signal no-such-id bad!name", "is not valid"),
        ("cancel no-such-id", "no-such-id"),
        ("terminate no-such-id because", "no-such-id"),
        ("sql", "give a query"),
        ("sql DELETE FROM executions", "only queries that read are allowed"),
        ("sql SELECT nope FROM nowhere", "not a table of the history file"),
        ("show 'unclosed", "cannot split"),
        ("stop --grace soon", "'soon' is not a number of seconds"),
    ],
)
def test_bad_arguments_give_a_usage_message_never_a_traceback(loaded_shell, capsys, line, message):
    result, out = run(loaded_shell, capsys, f"%conductor {line}")
    assert isinstance(result.error_in_exec, UsageError), out
    assert message in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "line", ["", "--help", "help", "list --help", "signal -h", "sql --help", "db --help"]
)
def test_help_is_printed_not_raised(loaded_shell, capsys, line):
    result, out = run(loaded_shell, capsys, f"%conductor {line}")
    assert result.success, out
    assert "usage: %conductor" in out


def test_cancel_and_terminate_an_open_execution(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys, wait_on_gate=True)
    run(loaded_shell, capsys, f"a = {flow}.start(3, id='to-terminate')")
    wait_for(lambda: nbconductor.engine().status()["running_tasks"], 10, "the blocked task")
    result, out = run(loaded_shell, capsys, "%conductor terminate to-terminate enough of this")
    assert result.success, out
    assert "terminated to-terminate (enough of this)" in out
    assert nbconductor.engine().describe("to-terminate").status.title == "Terminated"
    result, out = run(loaded_shell, capsys, "%conductor cancel to-terminate")
    assert isinstance(result.error_in_exec, UsageError) and "already Terminated" in out
    result, out = run(loaded_shell, capsys, "%conductor signal to-terminate go")
    assert isinstance(result.error_in_exec, UsageError) and "already Terminated" in out


def test_signal_show_and_cancel_an_execution_waiting_for_a_signal(loaded_shell, capsys):
    name = unique("approval")
    run(
        loaded_shell,
        capsys,
        f"%%workflow {name}()\nimport nbconductor as nc\nreturn await nc.signal('approve')\n",
    )
    run(loaded_shell, capsys, f"a = {name}.start(id='approve-1')\nb = {name}.start(id='approve-2')")
    engine = nbconductor.engine()
    for ident in ("approve-1", "approve-2"):
        # waiting_signals is live state, set before the tick's commit: wait for both.
        wait_for(
            lambda i=ident: (
                engine.waiting_signals(i) == ["approve"]
                and engine.store.get_execution(i) is not None
            ),
            10,
            "the signal wait",
        )
    _, out = run(loaded_shell, capsys, "%conductor show approve-1")
    assert "waiting for signal: approve" in out
    result, out = run(
        loaded_shell, capsys, '%conductor signal approve-1 approve {"ok": true, "by": "ann"}'
    )
    assert result.success, out
    assert "signal 'approve' sent to approve-1" in out
    assert loaded_shell.user_ns["a"].result(timeout=10) == {"ok": True, "by": "ann"}
    result, out = run(loaded_shell, capsys, "%wf cancel approve-2")
    assert result.success and "cancel requested for approve-2" in out
    with pytest.raises(nbconductor.ExecutionFailed, match="Cancelled"):
        loaded_shell.user_ns["b"].result(timeout=10)


def test_sql_on_a_history_in_memory_says_so():
    engine = Engine(None, make_default=False)
    try:
        with pytest.raises(
            StoreError, match=r"in memory, which SQL cannot query; .*Engine\(.history.duckdb.\)"
        ):
            commands.sql(engine, "SELECT 1")
    finally:
        engine.stop(grace=0)


def test_schedules_are_listed_one_row_each(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    _, out = run(
        loaded_shell,
        capsys,
        f'%conductor schedule create nightly {flow} --cron "0 2 * * *" --args [1]',
    )
    assert "schedule nightly" in out, out
    _, out = run(
        loaded_shell,
        capsys,
        f"%conductor schedule create often {flow} --every 15m --args [1] --paused",
    )
    assert "state:      paused" in out, out
    result, out = run(loaded_shell, capsys, "%conductor schedules --text")
    table = result.result
    assert isinstance(table, Table), out
    assert [row[:4] for row in table] == [
        ("nightly", flow, "0 2 * * * (UTC)", "active"),
        ("often", flow, "every 15m", "paused"),
    ]
    assert re.search(r"nightly .* \d{4}-\d\d-\d\d 02:00:00", repr(table))  # next fire, UTC
    for name in ("nightly", "often"):
        run(loaded_shell, capsys, f"%conductor schedule delete {name}")
    result, _ = run(loaded_shell, capsys, "%conductor schedules --text")
    assert len(result.result) == 0 and repr(result.result) == "no schedules"


def test_schedule_and_fork_subcommands(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    _, out = run(
        loaded_shell,
        capsys,
        f'%conductor schedule create nightly {flow} --cron "0 3 * * *" --args "[1]"',
    )
    assert f"schedule nightly\n  workflow:   {flow}\n  when:       0 3 * * * (UTC)" in out
    assert "next fire:" in out and "arguments:  [1] {}" in out
    _, out = run(loaded_shell, capsys, "%conductor schedule pause nightly --note maintenance")
    assert "paused schedule nightly" in out
    _, out = run(loaded_shell, capsys, "%conductor schedule describe nightly")
    assert "state:      paused (maintenance)" in out and "until it is resumed" in out
    _, out = run(loaded_shell, capsys, "%conductor schedule update nightly --every 1h")
    assert "when:       every 1h" in out
    result, _ = run(loaded_shell, capsys, "%conductor schedule trigger nightly")
    assert result.result.result(timeout=10) is not None
    _, out = run(loaded_shell, capsys, "%conductor schedule delete nightly")
    assert "deleted" in out
    failed, out = run(loaded_shell, capsys, "%conductor schedule create bad nope_flow --every 1h")
    assert isinstance(failed.error_in_exec, UsageError) and "nope_flow" in out
    run(
        loaded_shell,
        capsys,
        f"origin = {flow}.start(3, id='fork-origin')\norigin.result(timeout=10)",
    )
    result, _ = run(loaded_shell, capsys, "%conductor fork fork-origin --at 3")
    forked = result.result
    assert forked.result(timeout=10) == loaded_shell.user_ns["origin"].result(timeout=10)
    assert forked.describe().origin_id == "fork-origin"


def test_a_table_magic_before_the_cells_end_is_displayed_there(loaded_shell, capsys):
    """IPython displays only a cell's last value; the tables of %conductor show anyway."""
    _task, flow = define_pair(loaded_shell, capsys)
    run(loaded_shell, capsys, f"run = {flow}.start(1, id='shown-mid')\nrun.result(timeout=10)")
    result, out = run(
        loaded_shell, capsys, "%conductor list --text\nafter = 1\n%wf history shown-mid\nafter"
    )
    assert "shown-mid" in out, out  # the list, displayed where it stands
    assert "ExecutionCompleted" in out, out  # the history too
    assert result.result == 1  # the cell's own last value is untouched
    # An assignment keeps the value and shows nothing; the last line is displayed once.
    result, out = run(loaded_shell, capsys, "rows = %conductor list --text\n%conductor list --text")
    assert isinstance(loaded_shell.user_ns["rows"], Table)
    assert out.count("shown-mid") == 1, out
    assert isinstance(result.result, Table)


def test_the_schedules_view_shows_a_resume_made_just_before_the_engine_stops(loaded_shell, capsys):
    """Run All on 05-schedules: [20] showed "Paused" for good, because [21]'s resume
    never reached the view before the last cell stopped the engine."""
    _task, flow = define_pair(loaded_shell, capsys)
    result, out = run(
        loaded_shell,
        capsys,
        f"import nbconductor\nschedules = nbconductor.engine().schedules\n"
        f"schedules.create('office', '{flow}', every='1 hour', args=[1])\n"
        "schedules.pause('office', note='closed')",
    )
    assert result.success, out
    result, _ = run(loaded_shell, capsys, "%conductor schedules")
    view = result.result
    assert "Paused" in view._cards["office"].panel.html
    result, out = run(loaded_shell, capsys, "schedules.resume('office')\n%unload_ext nbconductor")
    assert result.success, out
    assert "Active" in view._cards["office"].panel.html


def test_queues_and_runners_from_the_magic(loaded_shell, capsys):
    name = unique("llm")
    _, out = run(
        loaded_shell, capsys, f"%conductor queues create {name} --concurrency 8 --rate 60/minute"
    )
    assert out.strip() == f"created queue {name}: concurrency 8, rate 60/minute"
    _, out = run(loaded_shell, capsys, f"%conductor queues update {name} --burst 3")
    assert out.strip() == f"updated queue {name}: concurrency 8, rate 60/minute, burst 3"
    result, out = run(loaded_shell, capsys, "%conductor queues")
    assert (name, 8, "60/minute (burst 3)", 0, 0) in list(result.result), out
    _, out = run(loaded_shell, capsys, f"%conductor queues update {name} --rate none")
    assert out.strip() == f"updated queue {name}: concurrency 8"
    result, out = run(loaded_shell, capsys, "%conductor queues")
    assert isinstance(result.result, Table), out
    assert (name, 8, "", 0, 0) in list(result.result)
    result, out = run(loaded_shell, capsys, "%conductor queues create bad --rate lots")
    assert isinstance(result.error_in_exec, UsageError) and "rate='lots'" in out
    _, out = run(loaded_shell, capsys, f"%conductor queues delete {name}")
    assert out.strip() == f"deleted queue {name}"

    runner = unique("procs")
    _, out = run(loaded_shell, capsys, f"%conductor runner add {runner} process")
    assert out.startswith(f"runner {runner}: ProcessRunner(")
    _, out = run(loaded_shell, capsys, "%conductor runner list")
    assert runner in out and "thread" in out and "process" in out
