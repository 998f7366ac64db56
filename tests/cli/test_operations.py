"""The one command surface: the operations, their table renderer and where they sit.

``%conductor``, the ``nbconductor`` command and the control socket all run
``nbconductor.operations``; these tests pin what the surfaces share.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbconductor as nc
from nbconductor.engine.engine import Engine
from nbconductor.operations import EngineOperations, OfflineOperations, Table
from nbconductor.operations.table import format_time, history_table

PACKAGE = Path(nc.__file__).parent


@nc.workflow(name="surface_double")
async def double(x: int) -> int:
    return 2 * x


def test_the_table_renders_aligned_text_with_cut_cells():
    table = Table(["id", "n", "data"], [("a", 1, {"k": [1, "é"]}), ("bb", None, "x\ny" * 50)])
    assert (
        repr(table).splitlines()
        == [
            "id  n  data",
            "--  -  " + "-" * 80,
            'a   1  {"k":[1,"é"]}',  # JSON for structures, not Python's repr
            "bb     " + ("x y" * 27)[:79] + "…",  # one line per row, cut at 80 characters
        ]
    )
    assert table.records()[0] == {"id": "a", "n": 1, "data": {"k": [1, "é"]}}
    assert repr(Table(["id"], [], empty="no executions")) == "no executions"


def test_the_table_renders_escaped_html():
    html = Table(["<b>"], [("<script>",)])._repr_html_()
    assert html == (
        '<table class="nbconductor-table"><thead><tr><th>&lt;b&gt;</th></tr></thead>'
        "<tbody><tr><td>&lt;script&gt;</td></tr></tbody></table>"
    )
    assert Table(["a"], [], empty="no events")._repr_html_() == "<p><em>no events</em></p>"


def test_times_show_in_utc_to_the_second():
    paris = timezone(timedelta(hours=2))
    assert format_time(datetime(2024, 5, 1, 12, 0, 3, 999, tzinfo=paris)) == "2024-05-01 10:00:03"
    assert format_time("2024-05-01T12:00:03.5+02:00") == "2024-05-01 10:00:03"
    assert format_time(None) == "" and format_time("not a time") == "not a time"


def test_an_engine_and_its_file_answer_with_the_same_shapes(tmp_path):
    db = tmp_path / "history.duckdb"
    engine = Engine(db, make_default=False)
    try:
        assert engine.start(double, 21, id="d-1").result(timeout=10) == 42
        engine.ping()  # the completion is committed
        live = EngineOperations(engine)
        listed, shown = live.call("list"), live.call("show", id="d-1")
        events = live.call("history", id="d-1")
    finally:
        engine.stop(grace=1)
    with OfflineOperations(db) as offline:
        assert offline.call("list") == listed
        assert offline.call("history", id="d-1") == events
        stored = offline.call("show", id="d-1")
    engine_only = ("waiting_signals", "progress")
    assert {k: v for k, v in stored.items() if k not in engine_only} == {
        k: v for k, v in shown.items() if k not in engine_only
    }
    assert shown["result"] == 42
    table = history_table(events)
    assert [row[2] for row in table] == ["ExecutionStarted", "ExecutionCompleted"]
    assert table[1][6] == {"result": 42}


def _imports(package: str) -> set[str]:
    found = set()
    for path in (PACKAGE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found


def test_the_command_layers_import_downwards():
    def reaches(package: str, *prefixes: str) -> set[str]:
        return {
            n for n in _imports(package) if n.split(".")[0] in prefixes or n.startswith(prefixes)
        }

    jupyter = ("IPython", "ipywidgets", "ipykernel", "traitlets")
    upper = (
        "nbconductor.remote",
        "nbconductor.cli",
        "nbconductor.extension",
        "nbconductor.widgets",
    )
    assert reaches("operations", *jupyter, *upper) == set()
    assert reaches("remote", *jupyter, *upper[1:]) == set()


def test_the_command_does_not_load_jupyter():
    code = (
        "import sys, nbconductor.cli, nbconductor.remote\n"
        "print(','.join(m for m in ('IPython', 'ipywidgets', 'ipykernel') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
