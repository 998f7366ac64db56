"""``%%workflow`` and ``%%task`` cells in a real IPython shell: defining and running,
the determinism lint, errors that point at cell lines, and what a (re)definition
announces about the executions it affects or resumes."""

from __future__ import annotations

import os

import pytest
from IPython.core.error import UsageError
from shelltools import define_pair, run, unique

import nbconductor
from nbconductor.engine.definition import REGISTRY
from nbconductor.extension.output import execution_log
from nbconductor.testing import wait_for


def test_define_start_and_wait(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    assert isinstance(
        loaded_shell.user_ns[flow], nbconductor.engine().registry.workflow(flow).__class__
    )
    result, out = run(loaded_shell, capsys, f"run = {flow}.start(3)\nrun.result(timeout=10)")
    assert result.success, out
    assert result.result == 30
    result, out = run(loaded_shell, capsys, f"await {flow}(4)")
    assert result.success, out
    assert result.result == 60


def test_the_lint_warns_and_no_lint_silences(loaded_shell, capsys):
    name = unique("clock")
    cell = f"%%workflow {name}()\nimport time\nstarted = time.time()\nreturn 1\n"
    result, out = run(loaded_shell, capsys, cell)
    assert result.success  # a warning, not a refusal
    assert "may not replay the same way" in out
    assert "line 3: time.time() makes replay non-deterministic" in out
    result, out = run(loaded_shell, capsys, cell.replace("()\n", "() --no-lint\n", 1))
    assert result.success and "may not replay" not in out


def test_a_syntax_error_points_at_the_cell_line(loaded_shell, capsys):
    result, out = run(loaded_shell, capsys, f"%%workflow {unique('broken')}(x)\na = 1\nb = (1\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert f"Cell In[{result.execution_count}], line 3" in out


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%workflow w(x) --queue gpu\nreturn x\n", "--queue is not supported for workflows"),
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
def test_bad_definitions_are_usage_errors(loaded_shell, capsys, cell, message):
    result, out = run(loaded_shell, capsys, cell)
    assert isinstance(result.error_in_exec, UsageError)
    assert message in out and "Traceback" not in out


def test_a_single_async_def_cell_and_task_options(loaded_shell, capsys):
    task_name, flow_name = unique("double"), unique("twice")
    result, out = run(
        loaded_shell,
        capsys,
        f"%%task --retry max_attempts=2,initial=1s --timeout 5s\ndef {task_name}(x):\n    return 2 * x\n",
    )
    assert result.success, out
    definition = loaded_shell.user_ns[task_name]
    assert definition.options.retry.max_attempts == 2 and definition.options.start_to_close == 5
    result, out = run(
        loaded_shell,
        capsys,
        f"%%workflow --timeout 1h\nasync def {flow_name}(x):\n    return await {task_name}(x)\n",
    )
    assert result.success, out
    assert loaded_shell.user_ns[flow_name].timeout == 3600
    assert loaded_shell.user_ns[flow_name].source.startswith("%%workflow --timeout 1h\n")
    run(loaded_shell, capsys, f"r = {flow_name}.start(21).result(timeout=10)")
    assert loaded_shell.user_ns["r"] == 42


@pytest.mark.slow
def test_a_cell_defined_task_runs_in_a_child_process_through_a_queue(loaded_shell, capsys):
    task_name, flow_name, queue = unique("pid_of"), unique("in_child"), unique("q")
    create = f"import nbconductor\nnbconductor.engine().queues.create({queue!r}, concurrency=1)"
    result, out = run(loaded_shell, capsys, create)
    assert result.success, out
    result, out = run(
        loaded_shell,
        capsys,
        # A class and a global defined in the cell travel with the task (by value).
        "class Box:\n    def __init__(self, v):\n        self.v = v\nOFFSET = 1\n",
    )
    assert result.success, out
    result, out = run(
        loaded_shell,
        capsys,
        f"%%task {task_name}(x) --runner process --queue {queue} --priority 2\n"
        "import os\nreturn os.getpid(), Box(x + OFFSET).v\n",
    )
    assert result.success, out
    options = loaded_shell.user_ns[task_name].options
    assert (options.runner, options.queue, options.priority) == ("process", queue, 2)
    run(loaded_shell, capsys, f"%%workflow {flow_name}(x)\nreturn await {task_name}(x)\n")
    result, out = run(loaded_shell, capsys, f"pid, v = {flow_name}.start(41).result(timeout=60)")
    assert result.success, out
    assert loaded_shell.user_ns["v"] == 42
    assert loaded_shell.user_ns["pid"] != os.getpid()


def test_redefinition_shows_the_new_version_and_the_open_executions_it_affects(
    loaded_shell, capsys
):
    task, flow = define_pair(loaded_shell, capsys, wait_on_gate=True)
    run(loaded_shell, capsys, f"run = {flow}.start(3)")
    run_id = loaded_shell.user_ns["run"].id
    old = REGISTRY.workflow(flow).version
    wait_for(lambda: nbconductor.engine().status()["running_tasks"], 10, "the blocked task")
    changed = (
        f"%%workflow {flow}(n: int)\ntotal = 0\nfor i in range(n):\n"
        f"    total += await {task}(i)\nreturn total + 1\n"
    )
    result, out = run(loaded_shell, capsys, changed)
    assert result.success, out
    new = REGISTRY.workflow(flow).version
    assert f"workflow {flow}: new version {new} (was {old})" in out
    assert "  -return total\n  +return total + 1" in out  # what changed, as a diff
    assert f"This affects 1 open execution started with version {old}: {run_id}" in out
    # A task's new version: the executions with an attempt of it still to come.
    old_task = REGISTRY.find("task", task).version
    result, out = run(loaded_shell, capsys, f"%%task {task}(i: int)\nreturn i * 100\n")
    assert result.success, out
    assert f"task {task}: new version {REGISTRY.find('task', task).version} (was {old_task})" in out
    assert (
        f"1 open execution has task {task} pending; its next attempts run this version: {run_id}"
        in out
    )
    loaded_shell.user_ns["gate"].set()
    # The workflow kept the code it started with; step 1's running attempt finished
    # with the old task code, step 2 ran the new one.
    assert loaded_shell.user_ns["run"].result(timeout=10) == 0 + 10 + 200
    # Running the same cell again changes nothing and says nothing.
    _, again = run(loaded_shell, capsys, changed)
    assert again == ""


def test_a_new_version_is_compared_with_the_history_after_a_restart(loaded_shell, capsys):
    name = unique("versioned")
    run(loaded_shell, capsys, f"%%workflow {name}()\nreturn 1\n")
    old = REGISTRY.workflow(name).version
    engine = nbconductor.engine()
    wait_for(lambda: engine.store.definitions(name), 10, "the definition to be recorded")
    REGISTRY.forget("workflow", name)  # as after a kernel restart
    _, out = run(loaded_shell, capsys, f"%%workflow {name}()\nreturn 2\n")
    new = REGISTRY.workflow(name).version
    assert f"workflow {name}: new version {new} (was {old} in the history)" in out


def test_executions_waiting_for_their_definition_resume_when_the_cell_runs(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys, wait_on_gate=True)
    run(loaded_shell, capsys, f"run = {flow}.start(3)")
    run_id = loaded_shell.user_ns["run"].id
    wait_for(lambda: execution_log(run_id), 10, "the workflow's first output")
    _, out = run(loaded_shell, capsys, "%conductor stop --grace 0.05")  # the task stays blocked
    assert "engine stopped" in out and "1 open execution resumes when it starts again" in out
    # As after a kernel restart: the definitions are gone from the process.
    workflow_cell = REGISTRY.workflow(flow).source
    REGISTRY.forget("workflow", flow)
    loaded_shell.user_ns["gate"].set()
    _, out = run(loaded_shell, capsys, "%conductor start")
    assert f"1 execution is waiting for its definition: {flow} ×1" in out
    body = workflow_cell.split("\n", 1)[1]
    result, out = run(loaded_shell, capsys, f"%%workflow {flow}(n: int)\n{body}")
    assert result.success, out
    assert f"{flow}: resuming 1 execution that waited for this definition: {run_id}" in out
    assert "waiting for the definition" not in out  # replayed before the cell ended
    handle = nbconductor.engine().get(run_id)
    assert handle.result(timeout=10) == 30
    # The replay ran the workflow's print again, but the log holds it once.
    assert execution_log(run_id).count("flow starts 3") == 1


def test_resume_replays_blocked_executions_whose_code_is_back(loaded_shell, capsys):
    task, flow = define_pair(loaded_shell, capsys, wait_on_gate=True)
    original = REGISTRY.workflow(flow)
    run(loaded_shell, capsys, f"run = {flow}.start(3, id='blocked-1')")
    wait_for(lambda: nbconductor.engine().status()["running_tasks"], 10, "the blocked task")
    run(loaded_shell, capsys, "%conductor stop --grace 0.05")
    # Code that no longer matches the history: the restarted engine parks the execution.
    run(loaded_shell, capsys, f"%%workflow {flow}(n: int)\nreturn await {task}(99)\n")
    _, out = run(loaded_shell, capsys, "%conductor start")
    wait_for(
        lambda: (nbconductor.engine().get("blocked-1").condition or "").startswith("blocked"),
        10,
        "the execution to be blocked",
    )
    _, out = run(loaded_shell, capsys, "%conductor resume")
    assert "blocked-1" in out and "blocked: " in out
    # The old code is back (quietly, as an import of the old module would do it).
    REGISTRY.restore(original)
    loaded_shell.user_ns["gate"].set()
    _, out = run(loaded_shell, capsys, "%conductor resume")
    assert f"1 open execution:\n  blocked-1  {flow}  running" in out
    assert nbconductor.engine().get("blocked-1").result(timeout=10) == 30


def test_exceptions_show_the_defining_cells_line(loaded_shell, capsys):
    name = unique("fails")
    defined, _ = run(
        loaded_shell, capsys, f"%%workflow {name}()\nx = 1\n\nraise ValueError('bad order')\n"
    )
    run(loaded_shell, capsys, f"run = {name}.start()")
    handle = loaded_shell.user_ns["run"]
    with pytest.raises(nbconductor.ExecutionFailed):
        handle.result(timeout=10)
    _, out = run(loaded_shell, capsys, "%conductor show {run.id}")
    assert "status:    Failed" in out and "ValueError: bad order" in out
    assert f"Cell In[{defined.execution_count}], line 4" in out
    published = []
    loaded_shell.display_pub.publish = lambda data, **kw: published.append(data)
    try:
        loaded_shell.display_formatter.format(handle)  # the view's saved snapshot is shown
    finally:
        del loaded_shell.display_pub.publish
    [snapshot] = published
    assert "ValueError: bad order" in snapshot["text/html"]
    assert f"Cell In[{defined.execution_count}], line 4" in snapshot["text/html"]
