"""The extension through a real IPython shell: load, %%workflow / %%task, %conductor,
display, output capture, and the engine's life cycle within one process.

Kernel-level behaviour (restarts, SIGKILL, interrupts) is in test_kernel.py.
"""

from __future__ import annotations

import itertools
import re
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import nbconductor
from nbconductor.engine.definition import REGISTRY
from nbconductor.engine.handle import Handle
from nbconductor.errors import EngineStopped
from nbconductor.extension import commands, display, lifecycle, output
from nbconductor.extension.output import execution_log
from nbconductor.storage.duckdb.duckdb_store import DuckDBStore
from nbconductor.testing import wait_for

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_names = itertools.count()


@pytest.fixture(scope="module")
def ipython(tmp_path_factory: pytest.TempPathFactory) -> InteractiveShell:
    """The process's shell (IPython keeps a singleton), its profile and history out of ~."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    ipython_dir = str(tmp_path_factory.mktemp("ipython"))
    return InteractiveShell.instance(config=config, ipython_dir=ipython_dir)


@pytest.fixture
def shell(ipython, tmp_path, monkeypatch, capsys):
    """The shell with nbconductor loaded on a fresh history file.

    capsys is set up first, so the output proxies wrap pytest's capture and are taken
    out again before it is torn down.
    """
    monkeypatch.setenv("NBCONDUCTOR_DB", str(tmp_path / "history.duckdb"))
    monkeypatch.chdir(tmp_path)
    saved = dict(ipython.user_ns)
    ipython.user_ns["gate"] = threading.Event()  # tasks that must wait block on it
    ipython.run_line_magic("load_ext", "nbconductor")
    capsys.readouterr()
    yield ipython
    ipython.user_ns["gate"].set()
    if "nbconductor" in ipython.extension_manager.loaded:
        ipython.run_line_magic("unload_ext", "nbconductor")
    elif lifecycle.state().engine is not None:  # a test left an engine without the extension
        lifecycle.stop_engine()
    ipython.user_ns.clear()
    ipython.user_ns.update(saved)
    capsys.readouterr()


def run(shell, capsys, code: str):
    """Run a cell the way a kernel does; return the result and everything printed."""
    if "nbconductor" in shell.extension_manager.loaded:
        # pytest's capture puts its own sys.stdout back whenever it resumes (between
        # fixture setup and the test, for instance), dropping the proxy the extension
        # installed; a kernel never does that. Installing again is idempotent.
        output.install()
    result = shell.run_cell(code, store_history=True)
    captured = capsys.readouterr()
    return result, _ANSI.sub("", captured.out + captured.err)


def unique(prefix: str) -> str:
    """A workflow/task name no other test registered (the registry is process-wide)."""
    return f"{prefix}_{next(_names)}"


def define_pair(shell, capsys, *, wait_on_gate: bool = False, extra_body: str = ""):
    """A task `NAME_step(i)` and a workflow `NAME(n)` summing its results; their names."""
    task_name, flow_name = unique("step"), unique("flow")
    block = "    gate.wait(10)\n" if wait_on_gate else ""
    result, out = run(
        shell,
        capsys,
        f"%%task {task_name}(i: int)\nprint('step', i)\nif i == 1:\n{block or '    pass'}\nreturn i * 10\n",
    )
    assert result.success, out
    result, out = run(
        shell,
        capsys,
        f"%%workflow {flow_name}(n: int)\nprint('flow starts', n)\ntotal = 0\n"
        f"for i in range(n):\n    total += await {task_name}(i)\n{extra_body}return total\n",
    )
    assert result.success, out
    return task_name, flow_name


# --- loading ----------------------------------------------------------------------------


def test_load_starts_the_engine_on_the_chosen_file(ipython, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBCONDUCTOR_DB", str(tmp_path / "chosen.duckdb"))
    monkeypatch.chdir(tmp_path)
    try:
        result, out = run(ipython, capsys, "%load_ext nbconductor")
        assert result.success
        assert "nbconductor: engine started; history in chosen.duckdb (from NBCONDUCTOR_DB)" in out
        engine = nbconductor.engine()
        assert engine is lifecycle.kernel_engine()
        assert engine.store.path == str(tmp_path / "chosen.duckdb")
        # Loading twice is harmless: IPython says so, and a direct second load reuses all.
        _, again = run(ipython, capsys, "%load_ext nbconductor")
        assert "already loaded" in again
        nbconductor.load_ipython_extension(ipython)
        assert nbconductor.engine() is engine
        assert capsys.readouterr().out == ""
    finally:
        ipython.run_line_magic("unload_ext", "nbconductor")
    assert "engine stopped; history committed to chosen.duckdb" in capsys.readouterr().out
    assert not engine.running


def test_without_a_notebook_path_the_default_file_is_used_and_said(
    ipython, tmp_path, monkeypatch, capsys
):
    for name in ("NBCONDUCTOR_DB", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        _, out = run(ipython, capsys, "%load_ext nbconductor")
    finally:
        ipython.run_line_magic("unload_ext", "nbconductor")
    assert "history in .nbconductor/default.duckdb" in out
    assert "the notebook's path was not detected" in out
    assert "%conductor db PATH" in out
    assert (tmp_path / ".nbconductor" / "default.duckdb").exists()
    assert (tmp_path / ".nbconductor").stat().st_mode & 0o777 == 0o700


def test_reload_keeps_the_same_engine(shell, capsys):
    engine = nbconductor.engine()
    result, out = run(shell, capsys, "%reload_ext nbconductor")
    assert result.success, out
    assert nbconductor.engine() is engine and engine.running
    assert "conductor" in shell.magics_manager.magics["line"]


def test_unload_stops_the_engine_and_removes_everything(shell, capsys):
    engine = nbconductor.engine()
    output.install()  # see run(): pytest replaced sys.stdout after the fixture loaded us
    assert output.installed()
    run(shell, capsys, "%unload_ext nbconductor")
    assert not engine.running
    assert not output.installed()
    assert not isinstance(sys.stdout, output.CapturingStream)
    assert "conductor" not in shell.magics_manager.magics["line"]
    assert "workflow" not in shell.magics_manager.magics["cell"]
    assert Handle not in shell.display_formatter.formatters["text/html"].type_printers
    with pytest.raises(EngineStopped):
        nbconductor.engine()


def test_a_locked_history_file_leaves_the_extension_loaded_without_engine(
    ipython, tmp_path, monkeypatch, capsys
):
    path = tmp_path / "taken.duckdb"
    holder = DuckDBStore(path)  # the store refuses a second writer, in-process or not
    monkeypatch.setenv("NBCONDUCTOR_DB", str(path))
    monkeypatch.chdir(tmp_path)
    try:
        result, out = run(ipython, capsys, "%load_ext nbconductor")
        assert result.success  # a message, not a traceback
        assert "Traceback" not in out
        assert "could not open its history file" in out
        assert "%conductor db other.duckdb" in out and "NBCONDUCTOR_DB" in out
        assert "nbconductor" in ipython.extension_manager.loaded
        with pytest.raises(EngineStopped):
            nbconductor.engine()
        _, status = run(ipython, capsys, "%conductor status")
        assert "engine: not running" in status and "could not open" in status
        failed, listed = run(ipython, capsys, "%conductor list")
        assert isinstance(failed.error_in_exec, UsageError)
        assert "could not open its history file" in listed
        _, switched = run(ipython, capsys, "%conductor db other.duckdb")
        assert "engine started; history in other.duckdb" in switched
        assert nbconductor.engine().store.path == str(tmp_path / "other.duckdb")
    finally:
        holder.close()
        ipython.run_line_magic("unload_ext", "nbconductor")


# --- defining and running ------------------------------------------------------------------


def test_define_start_and_wait(shell, capsys):
    _task, flow = define_pair(shell, capsys)
    assert isinstance(shell.user_ns[flow], nbconductor.engine().registry.workflow(flow).__class__)
    result, out = run(shell, capsys, f"run = {flow}.start(3)\nrun.result(timeout=10)")
    assert result.success, out
    assert result.result == 30
    result, out = run(shell, capsys, f"await {flow}(4)")
    assert result.success, out
    assert result.result == 60


def test_handle_displays_as_deterministic_text_and_a_small_table(shell, capsys):
    _task, flow = define_pair(shell, capsys)
    run(shell, capsys, f"run = {flow}.start(2, id='display-1')\nrun.result(timeout=10)")
    data, _ = shell.display_formatter.format(shell.user_ns["run"])
    assert data["text/plain"] == f"<Execution {flow} display-1 Completed>"
    assert "<table" in data["text/html"] and "display-1" in data["text/html"]
    assert "Completed" in data["text/html"]


def test_the_lint_warns_and_no_lint_silences(shell, capsys):
    name = unique("clock")
    cell = f"%%workflow {name}()\nimport time\nstarted = time.time()\nreturn 1\n"
    result, out = run(shell, capsys, cell)
    assert result.success  # a warning, not a refusal
    assert "may not replay the same way" in out
    assert "line 3: time.time() makes replay non-deterministic" in out
    result, out = run(shell, capsys, cell.replace("()\n", "() --no-lint\n", 1))
    assert result.success and "may not replay" not in out


def test_a_syntax_error_points_at_the_cell_line(shell, capsys):
    result, out = run(shell, capsys, f"%%workflow {unique('broken')}(x)\na = 1\nb = (1\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert f"Cell In[{result.execution_count}], line 3" in out


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%workflow w(x) --queue gpu\nreturn x\n", "--queue is not supported yet"),
        (
            "%%workflow w(x) --retry max_attempts=2\nreturn x\n",
            "--retry is not supported for workflows",
        ),
        ("%%workflow w(x) --timeout soon\nreturn x\n", "cannot read 'soon' as a duration"),
        ("%%workflow w(x) --bogus\nreturn x\n", "unrecognized arguments: --bogus"),
        ("%%workflow\nx = 1\n", "holds no function definition"),
        ("%%task t(x) --retry initial=0s\nreturn x\n", "must be greater than zero"),
    ],
)
def test_bad_definitions_are_usage_errors(shell, capsys, cell, message):
    result, out = run(shell, capsys, cell)
    assert isinstance(result.error_in_exec, UsageError)
    assert message in out and "Traceback" not in out


def test_a_single_async_def_cell_and_task_options(shell, capsys):
    task_name, flow_name = unique("double"), unique("twice")
    result, out = run(
        shell,
        capsys,
        f"%%task --retry max_attempts=2,initial=1s --timeout 5s\ndef {task_name}(x):\n    return 2 * x\n",
    )
    assert result.success, out
    definition = shell.user_ns[task_name]
    assert definition.options.retry.max_attempts == 2 and definition.options.start_to_close == 5
    result, out = run(
        shell,
        capsys,
        f"%%workflow --timeout 1h\nasync def {flow_name}(x):\n    return await {task_name}(x)\n",
    )
    assert result.success, out
    assert shell.user_ns[flow_name].timeout == 3600
    assert shell.user_ns[flow_name].source.startswith("%%workflow --timeout 1h\n")
    run(shell, capsys, f"r = {flow_name}.start(21).result(timeout=10)")
    assert shell.user_ns["r"] == 42


def test_redefinition_shows_the_new_version_and_the_open_executions_it_affects(shell, capsys):
    task, flow = define_pair(shell, capsys, wait_on_gate=True)
    run(shell, capsys, f"run = {flow}.start(3)")
    run_id = shell.user_ns["run"].id
    old = REGISTRY.workflow(flow).version
    wait_for(lambda: nbconductor.engine().status()["running_tasks"], 10, "the blocked task")
    changed = (
        f"%%workflow {flow}(n: int)\ntotal = 0\nfor i in range(n):\n"
        f"    total += await {task}(i)\nreturn total + 1\n"
    )
    result, out = run(shell, capsys, changed)
    assert result.success, out
    new = REGISTRY.workflow(flow).version
    assert f"workflow {flow}: new version {new} (was {old})" in out
    assert "  -return total\n  +return total + 1" in out  # what changed, as a diff
    assert f"This affects 1 open execution started with version {old}: {run_id}" in out
    # A task's new version: the executions with an attempt of it still to come.
    old_task = REGISTRY.find("task", task).version
    result, out = run(shell, capsys, f"%%task {task}(i: int)\nreturn i * 100\n")
    assert result.success, out
    assert f"task {task}: new version {REGISTRY.find('task', task).version} (was {old_task})" in out
    assert (
        f"1 open execution has task {task} pending; its next attempts run this version: {run_id}"
        in out
    )
    shell.user_ns["gate"].set()
    # The workflow kept the code it started with; step 1's running attempt finished
    # with the old task code, step 2 ran the new one.
    assert shell.user_ns["run"].result(timeout=10) == 0 + 10 + 200
    # Running the same cell again changes nothing and says nothing.
    _, again = run(shell, capsys, changed)
    assert again == ""


def test_a_new_version_is_compared_with_the_history_after_a_restart(shell, capsys):
    name = unique("versioned")
    run(shell, capsys, f"%%workflow {name}()\nreturn 1\n")
    old = REGISTRY.workflow(name).version
    engine = nbconductor.engine()
    wait_for(lambda: engine.store.definitions(name), 10, "the definition to be recorded")
    REGISTRY.forget("workflow", name)  # as after a kernel restart
    _, out = run(shell, capsys, f"%%workflow {name}()\nreturn 2\n")
    new = REGISTRY.workflow(name).version
    assert f"workflow {name}: new version {new} (was {old} in the history)" in out


def test_executions_waiting_for_their_definition_resume_when_the_cell_runs(shell, capsys):
    _task, flow = define_pair(shell, capsys, wait_on_gate=True)
    run(shell, capsys, f"run = {flow}.start(3)")
    run_id = shell.user_ns["run"].id
    wait_for(lambda: execution_log(run_id), 10, "the workflow's first output")
    _, out = run(shell, capsys, "%conductor stop --grace 0.05")  # the task stays blocked
    assert "engine stopped" in out and "1 open execution resumes when it starts again" in out
    # As after a kernel restart: the definitions are gone from the process.
    workflow_cell = REGISTRY.workflow(flow).source
    REGISTRY.forget("workflow", flow)
    shell.user_ns["gate"].set()
    _, out = run(shell, capsys, "%conductor start")
    assert f"1 execution is waiting for its definition: {flow} ×1" in out
    body = workflow_cell.split("\n", 1)[1]
    result, out = run(shell, capsys, f"%%workflow {flow}(n: int)\n{body}")
    assert result.success, out
    assert f"{flow}: resuming 1 execution that waited for this definition: {run_id}" in out
    assert "waiting for the definition" not in out  # replayed before the cell ended
    handle = nbconductor.engine().get(run_id)
    assert handle.result(timeout=10) == 30
    # The replay ran the workflow's print again, but the log holds it once.
    assert execution_log(run_id).count("flow starts 3") == 1


def test_resume_replays_blocked_executions_whose_code_is_back(shell, capsys):
    task, flow = define_pair(shell, capsys, wait_on_gate=True)
    original = REGISTRY.workflow(flow)
    run(shell, capsys, f"run = {flow}.start(3, id='blocked-1')")
    wait_for(lambda: nbconductor.engine().status()["running_tasks"], 10, "the blocked task")
    run(shell, capsys, "%conductor stop --grace 0.05")
    # Code that no longer matches the history: the restarted engine parks the execution.
    run(shell, capsys, f"%%workflow {flow}(n: int)\nreturn await {task}(99)\n")
    _, out = run(shell, capsys, "%conductor start")
    wait_for(
        lambda: (nbconductor.engine().get("blocked-1").condition or "").startswith("blocked"),
        10,
        "the execution to be blocked",
    )
    _, out = run(shell, capsys, "%conductor resume")
    assert "blocked-1" in out and "blocked: " in out
    # The old code is back (quietly, as an import of the old module would do it).
    REGISTRY.restore(original)
    shell.user_ns["gate"].set()
    _, out = run(shell, capsys, "%conductor resume")
    assert f"1 open execution:\n  blocked-1  {flow}  running" in out
    assert nbconductor.engine().get("blocked-1").result(timeout=10) == 30


def test_exceptions_show_the_defining_cells_line(shell, capsys):
    name = unique("fails")
    defined, _ = run(
        shell, capsys, f"%%workflow {name}()\nx = 1\n\nraise ValueError('bad order')\n"
    )
    run(shell, capsys, f"run = {name}.start()")
    handle = shell.user_ns["run"]
    with pytest.raises(nbconductor.ExecutionFailed):
        handle.result(timeout=10)
    _, out = run(shell, capsys, "%conductor show {run.id}")
    assert "status:    Failed" in out and "ValueError: bad order" in out
    assert f"Cell In[{defined.execution_count}], line 4" in out
    data, _ = shell.display_formatter.format(handle)
    assert "ValueError: bad order" in data["text/html"]
    assert f"Cell In[{defined.execution_count}], line 4" in data["text/html"]


# --- output capture ------------------------------------------------------------------------


def test_task_and_workflow_output_goes_to_the_execution_log_not_the_cell(shell, capsys):
    _task, flow = define_pair(shell, capsys)
    result, out = run(
        shell, capsys, f"print('cell output')\nrun = {flow}.start(2)\nrun.result(timeout=10)"
    )
    assert result.success
    assert "cell output" in out
    assert "step" not in out and "flow starts" not in out
    run_id = shell.user_ns["run"].id
    assert execution_log(run_id) == ["flow starts 2", "step 0", "step 1"]
    assert execution_log(run_id, streams=True)[0] == ("stdout", "flow starts 2")
    _, shown = run(shell, capsys, "%conductor show {run.id}")
    assert "output (3 lines):\n    flow starts 2\n    step 0\n    step 1" in shown


def test_the_log_is_bounded_and_keeps_unfinished_lines():
    capture = output.OutputCapture(max_lines=3, max_executions=2)
    for i in range(5):
        capture.append("a", "stdout", f"line {i}\n")
    capture.append("a", "stderr", "no newline yet")
    assert capture.log("a") == ["line 2", "line 3", "line 4", "no newline yet"]
    capture.append("b", "stdout", "b\n")
    capture.append("c", "stdout", "c\n")
    assert capture.log("a") == []  # the least recently written execution went first
    assert capture.log("c") == ["c"]


# --- %conductor ----------------------------------------------------------------------------


def test_status_list_show_history_and_sql(shell, capsys):
    _task, flow = define_pair(shell, capsys)
    run(shell, capsys, f"run = {flow}.start(2, id='listed-1')\nrun.result(timeout=10)")
    _, out = run(shell, capsys, "%conductor status")
    assert "engine: running (thread alive)" in out
    assert "history: history.duckdb (from NBCONDUCTOR_DB)" in out
    assert "executions: Completed 1" in out and "running tasks: 0" in out
    result, out = run(shell, capsys, f"%conductor list --status completed --name {flow} --since 1h")
    live = result.result
    assert live is not None, out  # the live history table, with a text snapshot for nbval
    assert "1 execution" in live._repr_mimebundle_()["text/plain"]
    assert "listed-1" in live._repr_mimebundle_()["text/html"]
    result, _ = run(
        shell, capsys, f"%conductor list --text --status completed --name {flow} --since 1h"
    )
    table = result.result
    assert isinstance(table, display.Table)
    assert [r["id"] for r in table.records()] == ["listed-1"]
    assert "listed-1" in repr(table) and "<table" in table._repr_html_()
    result, _ = run(shell, capsys, "%wf list --text --status failed")
    assert len(result.result) == 0 and repr(result.result) == "no executions"
    _, out = run(shell, capsys, "%conductor show listed-1")
    assert "status:    Completed" in out and "input:     (2)" in out and "result:    10" in out
    result, _ = run(shell, capsys, "%conductor history listed-1")
    kinds = [row[2] for row in result.result]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
    result, _ = run(
        shell, capsys, "%conductor sql SELECT id, status FROM executions WHERE id = 'listed-1'"
    )
    rows = result.result
    assert list(rows.columns) == ["id", "status"] and len(rows) == 1
    result, _ = run(shell, capsys, "%%conductor sql\nSELECT count(*) AS n\nFROM executions")
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
        ("sql SELECT nope FROM nowhere", "query failed"),
        ("show 'unclosed", "cannot split"),
        ("stop --grace soon", "'soon' is not a number of seconds"),
    ],
)
def test_bad_arguments_give_a_usage_message_never_a_traceback(shell, capsys, line, message):
    result, out = run(shell, capsys, f"%conductor {line}")
    assert isinstance(result.error_in_exec, UsageError), out
    assert message in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "line", ["", "--help", "help", "list --help", "signal -h", "sql --help", "db --help"]
)
def test_help_is_printed_not_raised(shell, capsys, line):
    result, out = run(shell, capsys, f"%conductor {line}")
    assert result.success, out
    assert "usage: %conductor" in out


def test_cancel_and_terminate_an_open_execution(shell, capsys):
    _task, flow = define_pair(shell, capsys, wait_on_gate=True)
    run(shell, capsys, f"a = {flow}.start(3, id='to-terminate')")
    wait_for(lambda: nbconductor.engine().status()["running_tasks"], 10, "the blocked task")
    result, out = run(shell, capsys, "%conductor terminate to-terminate enough of this")
    assert result.success, out
    assert "terminated to-terminate (enough of this)" in out
    assert nbconductor.engine().describe("to-terminate").status.title == "Terminated"
    result, out = run(shell, capsys, "%conductor cancel to-terminate")
    assert isinstance(result.error_in_exec, UsageError) and "already Terminated" in out
    result, out = run(shell, capsys, "%conductor signal to-terminate go")
    assert isinstance(result.error_in_exec, UsageError) and "already Terminated" in out


def test_signal_show_and_cancel_an_execution_waiting_for_a_signal(shell, capsys):
    name = unique("approval")
    run(
        shell,
        capsys,
        f"%%workflow {name}()\nimport nbconductor as nc\nreturn await nc.signal('approve')\n",
    )
    run(shell, capsys, f"a = {name}.start(id='approve-1')\nb = {name}.start(id='approve-2')")
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
    _, out = run(shell, capsys, "%conductor show approve-1")
    assert "waiting for signal: approve" in out
    result, out = run(
        shell, capsys, '%conductor signal approve-1 approve {"ok": true, "by": "ann"}'
    )
    assert result.success, out
    assert "signal 'approve' sent to approve-1" in out
    assert shell.user_ns["a"].result(timeout=10) == {"ok": True, "by": "ann"}
    result, out = run(shell, capsys, "%wf cancel approve-2")
    assert result.success and "cancel requested for approve-2" in out
    with pytest.raises(nbconductor.ExecutionFailed, match="Cancelled"):
        shell.user_ns["b"].result(timeout=10)


def test_operations_the_engine_lacks_say_so():
    class Bare:
        store = None

    with pytest.raises(commands.NotAvailable, match="sending signals is not available"):
        commands.send_signal(Bare(), "x", "go")
    with pytest.raises(commands.NotAvailable, match="terminating executions is not available"):
        commands.terminate(Bare(), "x")
    assert commands.schedules(Bare()) == "no schedules"


def test_schedules_are_listed_one_row_each():
    from types import SimpleNamespace as NS

    nightly = NS(
        id="nightly", workflow="report", cron="0 2 * * *", every=None, timezone="UTC", paused=False
    )
    often = NS(id="often", workflow="poll", cron=None, every=900.0, paused=True)
    infos = [
        NS(
            spec=nightly,
            next_fire=datetime(2024, 5, 2, 2, tzinfo=timezone.utc),
            last_nominal=None,
            open_runs=("r1",),
            fired=3,
            skipped=0,
            waiting=None,
        ),
        NS(
            spec=often,
            next_fire=None,
            last_nominal=None,
            open_runs=(),
            fired=0,
            skipped=1,
            waiting="waiting for the definition of workflow 'poll'",
        ),
    ]
    engine = NS(schedules=NS(list=lambda: infos))
    table = commands.schedules(engine)
    assert [row[:4] for row in table] == [
        ("nightly", "report", "0 2 * * * (UTC)", ""),
        ("often", "poll", "every 15m", "yes"),
    ]
    assert "2024-05-02 02:00:00" in repr(table)
    assert commands.schedules(NS(schedules=NS(list=list))) == "no schedules"


def test_resume_schedules_stop_start_and_db(shell, tmp_path, capsys):
    _, out = run(shell, capsys, "%conductor resume")
    assert "no open executions" in out
    result, out = run(shell, capsys, "%conductor schedules")
    assert result.success, out
    _, out = run(shell, capsys, "%conductor db")
    assert "history in history.duckdb (from NBCONDUCTOR_DB); the engine is running" in out
    _, out = run(shell, capsys, "%conductor stop")
    assert "engine stopped; history committed to history.duckdb" in out
    _, out = run(shell, capsys, "%conductor status")
    assert "engine: not running" in out
    result, out = run(shell, capsys, "%conductor list")
    assert isinstance(result.error_in_exec, UsageError) and "%conductor start" in out
    _, out = run(shell, capsys, "%conductor start")
    assert "engine started; history in history.duckdb" in out
    _, out = run(shell, capsys, "%conductor start")
    assert "already running" in out
    _, out = run(shell, capsys, "%conductor db elsewhere/second.duckdb")
    assert "engine stopped" in out and "history in elsewhere/second.duckdb" in out
    assert nbconductor.engine().store.path == str(tmp_path / "elsewhere" / "second.duckdb")
    _, out = run(shell, capsys, "%conductor db elsewhere/second.duckdb")
    assert "already using" in out
    holder = DuckDBStore(tmp_path / "taken.duckdb")
    try:  # a file that cannot be opened leaves the engine where it was
        _, out = run(shell, capsys, "%conductor db taken.duckdb")
    finally:
        holder.close()
    assert "could not open taken.duckdb" in out
    assert "The engine stays on elsewhere/second.duckdb" in out
    assert nbconductor.engine().store.path == str(tmp_path / "elsewhere" / "second.duckdb")


def test_parse_since_reads_durations_ago_and_dates():
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert commands.parse_since("2h", now=now) == now - timedelta(hours=2)
    assert commands.parse_since("2024-04-30T10:00+00:00", now=now) == datetime(
        2024, 4, 30, 10, 0, tzinfo=timezone.utc
    )
    with pytest.raises(ValueError, match="give a duration ago"):
        commands.parse_since("whenever", now=now)


def test_handles_display_as_the_live_view_with_a_text_snapshot(shell, capsys):
    _task, flow = define_pair(shell, capsys)
    run(shell, capsys, f"run = {flow}.start(2, id='shown-1')\nrun.result(timeout=10)")
    data, _ = shell.display_formatter.format(shell.user_ns["run"])
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith(f"<Execution {flow}")
    assert "shown-1" in data["text/html"]
    import nbconductor

    table = nbconductor.history(status="completed")
    assert "1 execution" in table._repr_mimebundle_()["text/plain"]


def test_schedule_and_fork_subcommands(shell, capsys):
    _task, flow = define_pair(shell, capsys)
    _, out = run(
        shell, capsys, f'%conductor schedule create nightly {flow} --cron "0 3 * * *" --args "[1]"'
    )
    assert "schedule nightly created; next fire" in out
    _, out = run(shell, capsys, "%conductor schedule pause nightly --note maintenance")
    assert "paused" in out
    _, out = run(shell, capsys, "%conductor schedule describe nightly")
    assert '"paused": true' in out
    result, _ = run(shell, capsys, "%conductor schedule trigger nightly")
    assert result.result.result(timeout=10) is not None
    _, out = run(shell, capsys, "%conductor schedule delete nightly")
    assert "deleted" in out
    failed, out = run(shell, capsys, "%conductor schedule create bad nope_flow --every 1h")
    assert isinstance(failed.error_in_exec, UsageError) and "nope_flow" in out
    run(shell, capsys, f"origin = {flow}.start(3, id='fork-origin')\norigin.result(timeout=10)")
    result, _ = run(shell, capsys, "%conductor fork fork-origin --at 3")
    forked = result.result
    assert forked.result(timeout=10) == shell.user_ns["origin"].result(timeout=10)
    assert forked.describe().origin_id == "fork-origin"
