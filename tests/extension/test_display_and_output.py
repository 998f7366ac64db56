"""How executions show in a notebook (the live view, its text and HTML snapshot, the
plain formatters) and where what tasks and workflows print goes (each execution's
log, not the running cell)."""

from __future__ import annotations

from shelltools import define_pair, run

import nbconductor
from nbconductor.extension import display, output
from nbconductor.extension.output import execution_log


def test_handle_displays_as_deterministic_text_and_a_small_table(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    run(loaded_shell, capsys, f"run = {flow}.start(2, id='display-1')\nrun.result(timeout=10)")
    handle = loaded_shell.user_ns["run"]
    data, _ = loaded_shell.display_formatter.format(handle)
    # Beside its live view, no status: the view's saved snapshot says how it stands.
    assert data["text/plain"] == f"<Execution {flow} display-1>"
    assert display.handle_text(handle) == f"<Execution {flow} display-1 Completed>"
    # In a list it has no view of its own: the status is back.
    listed, _ = loaded_shell.display_formatter.format([handle])
    assert listed["text/plain"] == f"[<Execution {flow} display-1 Completed>]"
    # The table is for a handle shown without its live view (no engine running).
    table = display.handle_html(handle, loaded_shell)
    assert "<table" in table and "display-1" in table and "Completed" in table


def test_handles_display_as_the_live_view_after_its_saved_snapshot(
    loaded_shell, capsys, monkeypatch
):
    _task, flow = define_pair(loaded_shell, capsys)
    run(loaded_shell, capsys, f"run = {flow}.start(2, id='shown-1')\nrun.result(timeout=10)")
    published = []
    monkeypatch.setattr(
        loaded_shell.display_pub, "publish", lambda data, **kw: published.append((data, kw))
    )
    data, _ = loaded_shell.display_formatter.format(loaded_shell.user_ns["run"])
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith(f"<Execution {flow}")
    # The snapshot is an output of its own, with a display id to keep it current; the
    # widget's output has no HTML of its own (the plain formatter's table would stay
    # "Running" in a saved notebook).
    assert "text/html" not in data
    [(snapshot, options)] = published
    assert "shown-1" in snapshot["text/html"] and "Completed" in snapshot["text/html"]
    assert options["transient"]["display_id"].startswith("nbc-")

    table = nbconductor.history(status="completed")
    assert "1 execution" in table._repr_mimebundle_()["text/plain"]


def test_task_and_workflow_output_goes_to_the_execution_log_not_the_cell(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    result, out = run(
        loaded_shell, capsys, f"print('cell output')\nrun = {flow}.start(2)\nrun.result(timeout=10)"
    )
    assert result.success
    assert "cell output" in out
    assert "step" not in out and "flow starts" not in out
    run_id = loaded_shell.user_ns["run"].id
    assert execution_log(run_id) == ["flow starts 2", "step 0", "step 1"]
    assert execution_log(run_id, streams=True)[0] == ("stdout", "flow starts 2")
    _, shown = run(loaded_shell, capsys, "%conductor show {run.id}")
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
