"""``%conductor sql`` as a DuckDB relation, and ``%conductor prune``, in a real IPython
shell."""

from __future__ import annotations

import pytest
from shelltools import define_pair, run


def test_sp_sql_magic_returns_a_relation_that_converts_and_displays(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    result, out = run(loaded_shell, capsys, f"{flow}.start(2, id='sp-sql-1').result(timeout=10)")
    assert result.success, out
    result, out = run(
        loaded_shell,
        capsys,
        "rel = %conductor sql SELECT id, status FROM executions WHERE id = 'sp-sql-1'\n"
        "frame, polars_frame, table = rel.df(), rel.pl(), rel.arrow().read_all()",
    )
    assert result.success, out
    ns = loaded_shell.user_ns
    assert ns["frame"].to_dict("records") == [{"id": "sp-sql-1", "status": "completed"}]
    assert ns["polars_frame"].to_dicts() == [{"id": "sp-sql-1", "status": "completed"}]
    assert ns["table"].column_names == ["id", "status"]
    # A notebook shows it as a table (DuckDB's HTML), and as text where HTML is not shown.
    data, _metadata = loaded_shell.display_formatter.format(ns["rel"])
    assert "<table" in data["text/html"] and "sp-sql-1" in data["text/html"]
    assert "sp-sql-1" in data["text/plain"]
    result, out = run(loaded_shell, capsys, "rel.query('t', 'DELETE FROM executions')")
    assert not result.success and "reads only" in out


def test_sp_prune_magic_reports_and_deletes_closed_executions(loaded_shell, capsys):
    _task, flow = define_pair(loaded_shell, capsys)
    result, out = run(loaded_shell, capsys, f"{flow}.start(1, id='sp-prune-1').result(timeout=10)")
    assert result.success, out
    _, out = run(loaded_shell, capsys, "%conductor prune --closed-before 2100-01-01 --dry-run")
    assert "would prune 1 execution (" in out
    _, out = run(loaded_shell, capsys, "%conductor show sp-prune-1")
    assert "Completed" in out
    _, out = run(loaded_shell, capsys, "%conductor prune --closed-before 0s")
    assert "pruned 1 execution (" in out and "history file:" in out
    _, out = run(loaded_shell, capsys, "%conductor show sp-prune-1")
    assert "no execution with id 'sp-prune-1'" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("prune", "the following arguments are required: --closed-before"),
        ("prune --closed-before soon", "--closed-before 'soon': give a duration ago"),
        ("prune --closed-before 1d --limit 0", "give 1 or more"),
    ],
)
def test_sp_prune_magic_bad_input_is_a_message(loaded_shell, capsys, line, message):
    _, out = run(loaded_shell, capsys, f"%conductor {line}")
    assert message in out
    assert "Traceback" not in out
