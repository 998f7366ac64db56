"""Turning %%workflow / %%task cells into functions, through a real IPython shell."""

from __future__ import annotations

import asyncio
import inspect
import linecache
import re
import traceback

import pytest
from IPython.core.error import UsageError

from nbconductor.errors import DefinitionError
from nbconductor.extension.cell import (
    RETRY_KEYS,
    CellHeader,
    build_function,
    compile_cell,
    normalized_source,
    parse_header,
    usage,
)


def build(shell, line: str, body: str, kind: str = "workflow"):
    return build_function(shell, parse_header(line, kind=kind), body, kind=kind)


def run_in_cell(shell, cell: str, capsys):
    """Run a cell through IPython (history on, as in a kernel); return result and output."""
    result = shell.run_cell(cell, store_history=True)
    out = capsys.readouterr()
    return result, re.sub(r"\x1b\[[0-9;]*m", "", out.out + out.err)


@pytest.fixture
def task_magic(shell):
    """A minimal %%task magic over compile_cell, to drive cells through run_cell."""

    def magic(line: str, cell: str) -> None:
        compiled = compile_cell(shell, parse_header(line, kind="task"), cell, kind="task")
        shell.user_ns[compiled.name] = compiled.function

    shell.register_magic_function(magic, "cell", "task")
    yield
    del shell.magics_manager.magics["cell"]["task"]


# --- parse_header ----------------------------------------------------------------------


def test_header_says_what_each_signal_carries() -> None:
    line = """offer() --signals 'approve={"ok": true, "by": "ann"},withdraw=none,n=int'"""
    header = parse_header(line, kind="workflow")
    assert header.options["signals"] == {
        "approve": {"ok": True, "by": "ann"},
        "withdraw": None,
        "n": int,
    }
    with pytest.raises(UsageError, match="signal 'n': 'integer': write none, str"):
        parse_header("offer() --signals n=integer", kind="workflow")


def test_header_with_every_workflow_option() -> None:
    line = (
        "order(order_id: str, amount: float = 1.0) --timeout 1h --signals approve,reject "
        "--queue fast --retry max_attempts=3,initial=2s --name orders --no-lint"
    )
    header = parse_header(line, kind="workflow")
    assert header == CellHeader(
        kind="workflow",
        name="order",
        params="order_id: str, amount: float = 1.0",
        options={
            "timeout": "1h",
            "signals": ["approve", "reject"],
            "queue": "fast",
            "retry": {"max_attempts": 3, "initial": "2s"},
            "name": "orders",
        },
        lint=False,
        line=line,
        signature="order(order_id: str, amount: float = 1.0)",
    )


def test_header_with_every_task_option() -> None:
    header = parse_header(
        "charge(x) --retry max_attempts=3,initial=2s,backoff=2,max_interval=1m,"
        "non_retryable=ValueError|KeyError --timeout 30s --schedule-to-start 1m "
        "--schedule-to-close '5 minutes' --heartbeat 10s --runner process --queue llm "
        "--priority 2 --name payments.charge",
        kind="task",
    )
    assert header.options == {
        "retry": {
            "max_attempts": 3,
            "initial": "2s",
            "backoff": 2.0,
            "max_interval": "1m",
            "non_retryable": ["ValueError", "KeyError"],
        },
        "timeout": "30s",
        "schedule_to_start": "1m",
        "schedule_to_close": "5 minutes",
        "heartbeat": "10s",
        "runner": "process",
        "queue": "llm",
        "priority": 2,
        "name": "payments.charge",
    }
    assert header.lint  # --no-lint is a workflow option only


@pytest.mark.parametrize(
    ("line", "name", "params", "returns"),
    [
        ("order", "order", "", None),
        ("order()", "order", "", None),
        ("  order ( x )  ", "order", "x", None),
        ("order(x) -> int", "order", "x", "int"),
        ("order(x) -> dict[str, int] --timeout 1h", "order", "x", "dict[str, int]"),
        ('order(x) -> "a --b" --timeout 1h', "order", "x", '"a --b"'),
        (
            'f(s=")", t=(1, (2,)), n=-1, *a, k: "x,y" = {}, **kw)',
            "f",
            's=")", t=(1, (2,)), n=-1, *a, k: "x,y" = {}, **kw',
            None,
        ),
    ],
)
def test_header_forms(line: str, name: str, params: str, returns: str | None) -> None:
    header = parse_header(line, kind="workflow")
    assert (header.name, header.params, header.returns) == (name, params, returns)


@pytest.mark.parametrize("line", ["", "   ", "--timeout 1h", "  --queue q"])
def test_header_without_a_name_means_one_def_in_the_cell(line: str) -> None:
    header = parse_header(line, kind="workflow")
    assert header.name is None and header.params is None and header.signature is None


@pytest.mark.parametrize(
    ("line", "kind", "expected"),
    [
        ("order(x) --bogus 1", "workflow", "unrecognized arguments: --bogus"),
        ("order(x) extra", "workflow", "unrecognized arguments: extra"),
        ("order(x) --heartbeat 1s", "workflow", "unrecognized arguments: --heartbeat"),
        ("charge(x) --signals a", "task", "unrecognized arguments: --signals"),
        ("charge(x) --no-lint", "task", "unrecognized arguments: --no-lint"),
        ("charge(x) --sched 1s", "task", "unrecognized arguments: --sched"),
        ("order(x) --timeout", "workflow", "argument --timeout: expected one argument"),
        ("order(x) --timeout ''", "workflow", "a duration is required"),
        ("order(x) --signals a,,b", "workflow", "write names separated by commas"),
        ("order(x) --name 'unclosed", "workflow", "cannot split the options"),
        ("charge --retry attempts=3", "task", "valid keys: " + ", ".join(RETRY_KEYS)),
        ("charge --retry max_attempts", "task", "is not KEY=VALUE"),
        ("charge --retry max_attempts=x", "task", "max_attempts must be an integer >= 0"),
        ("charge --retry max_attempts=-1", "task", "max_attempts must be an integer >= 0"),
        ("charge --retry backoff=0.5", "task", "backoff must be a number >= 1"),
        ("charge --retry backoff=nan", "task", "backoff must be a number >= 1"),
        ("charge --retry non_retryable=Value-Error", "task", "non_retryable must be"),
        ("charge --retry initial=1s,initial=2s", "task", "'initial' is given twice"),
        ("order(x", "workflow", "is not closed"),
        ("1order(x)", "workflow", "must start with the function's name"),
        ("class(x)", "workflow", "must start with the function's name"),
        ("order(x) -> ", "workflow", "cannot read the return annotation"),
    ],
)
def test_bad_header_is_a_usage_error(line: str, kind: str, expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_header(line, kind=kind)
    assert expected in str(caught.value)


def test_usage_error_for_options_carries_the_usage_text() -> None:
    with pytest.raises(UsageError) as caught:
        parse_header("order --bogus", kind="workflow")
    message = str(caught.value)
    assert message.startswith("%%workflow: unrecognized arguments: --bogus")
    assert "usage: %%workflow [NAME[(PARAMS)] [-> RETURNS]] [options]" in message
    assert "--signals A,B" in message and "non_retryable" in message


def test_usage_lists_each_kinds_options() -> None:
    assert "--heartbeat" in usage("task") and "--heartbeat" not in usage("workflow")
    assert "--no-lint" in usage("workflow") and "--no-lint" not in usage("task")


# --- the NAME(PARAMS) form ---------------------------------------------------------------


def test_workflow_body_with_top_level_await_and_return(shell) -> None:
    shell.run_cell("import asyncio\nBONUS = 10")
    fn = build(
        shell,
        "order(order_id: str, amount: float)",
        "await asyncio.sleep(0)\nif amount > 100:\n    return 'big'\nreturn f'{order_id}:{amount + BONUS}'\n",
    )
    assert inspect.iscoroutinefunction(fn)
    assert fn.__name__ == "order"
    assert fn.__globals__ is shell.user_ns
    assert asyncio.run(fn("A-17", 42.0)) == "A-17:52.0"
    assert asyncio.run(fn("A-18", 500)) == "big"
    # Globals are read when the body runs, as for any function defined in a cell.
    shell.user_ns["BONUS"] = 0
    assert asyncio.run(fn("A-19", 1.0)) == "A-19:1.0"


def test_the_name_is_left_for_the_caller_to_bind(shell) -> None:
    shell.user_ns["order"] = "previous value"
    compiled = compile_cell(
        shell, parse_header("order()", kind="workflow"), "return 1\n", kind="workflow"
    )
    assert compiled.name == "order"
    assert shell.user_ns["order"] == "previous value"


def test_workflows_are_async_even_without_await(shell) -> None:
    fn = build(shell, "order()", "return 1\n")
    assert inspect.iscoroutinefunction(fn)
    assert asyncio.run(fn()) == 1


def test_params_with_defaults_annotations_star_args_and_kwargs(shell) -> None:
    fn = build(
        shell,
        "collect(a: int, /, b: str = 'x', *args: int, flag: bool = False, **kwargs) -> tuple",
        "return (a, b, args, flag, kwargs)\n",
    )
    signature = inspect.signature(fn)
    assert str(signature) == (
        "(a: int, /, b: str = 'x', *args: int, flag: bool = False, **kwargs) -> tuple"
    )
    assert asyncio.run(fn(1, "y", 2, 3, flag=True, z=4)) == (1, "y", (2, 3), True, {"z": 4})
    assert asyncio.run(fn(1)) == (1, "x", (), False, {})


def test_name_only_header_gives_a_function_without_params(shell) -> None:
    fn = build(shell, "nightly --timeout 1h", "return 'ok'\n")
    assert str(inspect.signature(fn)) == "()"
    assert asyncio.run(fn()) == "ok"
    assert inspect.signature(build(shell, "typed -> int", "return 1\n")).return_annotation is int


def test_task_body_without_await_is_a_plain_function(shell) -> None:
    fn = build(
        shell, "double(x: int)", "async def inner():\n    await thing()\nreturn x * 2\n", "task"
    )
    assert not inspect.iscoroutinefunction(fn)
    assert fn(21) == 42


@pytest.mark.parametrize(
    "body",
    [
        "await asyncio.sleep(0)\nreturn x",
        "async with lock:\n    pass\nreturn x",
        "async for item in source():\n    pass\nreturn x",
        "values = [await asyncio.sleep(0, v) for v in (1, 2)]\nreturn x",
    ],
)
def test_task_body_that_awaits_is_async(shell, body: str) -> None:
    shell.run_cell("import asyncio\nlock = asyncio.Lock()\nasync def source():\n    yield 1")
    fn = build(shell, "fetch(x)", body, "task")
    assert inspect.iscoroutinefunction(fn)
    assert asyncio.run(fn(7)) == 7


def test_docstring_empty_body_and_multiline_strings_are_kept(shell) -> None:
    fn = build(
        shell, "doc()", '"""Explains."""\nsql = """\nSELECT 1\n  FROM t\n"""\nreturn sql\n', "task"
    )
    assert fn.__doc__ == "Explains."
    assert fn() == "\nSELECT 1\n  FROM t\n"  # not indented like the cached source
    assert build(shell, "nothing()", "", "task")() is None
    assert build(shell, "comments_only()", "# to do\n", "task")() is None


def test_getsource_returns_the_function(shell) -> None:
    fn = build(shell, "order(x: int) -> int", "y = x + 1\n\nreturn y\n")
    assert (
        inspect.getsource(fn) == "async def order(x: int) -> int:\n    y = x + 1\n\n    return y\n"
    )
    assert fn.__code__.co_firstlineno == 1


def test_ipython_syntax_in_the_body_is_transformed(shell) -> None:
    shell.run_cell("answer = 42")
    fn = build(shell, "names()", "found = %who_ls int\nreturn found\n", "task")
    assert "answer" in fn()


def test_future_annotations_of_the_session_apply(shell) -> None:
    shell.run_cell("from __future__ import annotations")
    fn = build(shell, "typed(x: NotDefinedAnywhere) -> AlsoNot", "return x\n", "task")
    assert fn.__annotations__ == {"x": "NotDefinedAnywhere", "return": "AlsoNot"}


def test_kind_must_match_the_header(shell) -> None:
    with pytest.raises(ValueError, match="parsed for %%task, not %%workflow"):
        build_function(shell, parse_header("t()", kind="task"), "pass\n", kind="workflow")


# --- line numbers ------------------------------------------------------------------------


def test_syntax_error_in_the_body_reports_the_cells_line(shell) -> None:
    body = "a = 1\nb = (a +\n        2))\nreturn b\n"  # the stray ')' is on cell line 4
    with pytest.raises(SyntaxError) as caught:
        build(shell, "order()", body)
    err = caught.value
    assert err.lineno == 4
    assert err.text == "        2))\n"
    assert err.offset == 11  # the second ')'
    assert err.filename in shell.compile._filename_map
    assert linecache.getline(err.filename, 4) == "        2))\n"
    assert linecache.getline(err.filename, 1) == "%%workflow order()\n"


def test_syntax_error_at_body_line_3(shell) -> None:
    with pytest.raises(SyntaxError) as caught:
        build(shell, "t(x)", "a = 1\nb = 2\nc d\n", "task")
    assert (caught.value.lineno, caught.value.text) == (4, "c d\n")


def test_syntax_error_found_by_the_compiler_reports_the_cells_line(shell) -> None:
    # 'break' outside a loop passes the parser; the compiler refuses it.
    with pytest.raises(SyntaxError, match="'break' outside loop") as caught:
        build(shell, "order()", "x = 1\n\nbreak\n")
    assert (caught.value.lineno, caught.value.offset, caught.value.text) == (4, 1, "break\n")


def test_syntax_error_in_the_params_points_at_the_magic_line(shell) -> None:
    with pytest.raises(SyntaxError) as caught:
        build(shell, "order(x y) --timeout 1h", "return 1\n")
    err = caught.value
    assert err.lineno == 1
    assert err.text == "%%workflow order(x y) --timeout 1h\n"
    assert err.text[err.offset - 1] == "y"


def test_duplicate_param_points_at_the_magic_line(shell) -> None:
    with pytest.raises(SyntaxError, match="duplicate argument") as caught:
        build(shell, "t(x, x)", "return x\n", "task")
    assert caught.value.lineno == 1 and caught.value.text == "%%task t(x, x)\n"


def test_runtime_error_at_body_line_4_shows_the_cell_line(shell) -> None:
    fn = build(shell, "order(x)", "a = 1\nb = 2\ny = x / 0\nreturn y\n")
    with pytest.raises(ZeroDivisionError) as caught:
        asyncio.run(fn(1))
    frame = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert frame.filename == fn.__code__.co_filename
    assert frame.filename in shell.compile._filename_map
    assert (frame.lineno, frame.line, frame.name) == (4, "y = x / 0", "order")


def test_line_numbers_survive_leading_blank_lines_and_folded_magics(shell) -> None:
    # IPython drops leading blank lines and folds a continued %magic into one line;
    # the lines after must keep their numbers.
    body = "\n\nfound = %who_ls \\\n    int\nboom = 1 / 0\n"
    fn = build(shell, "t()", body, "task")
    with pytest.raises(ZeroDivisionError) as caught:
        fn()
    frame = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert (frame.lineno, frame.line) == (6, "boom = 1 / 0")


def test_indented_body_is_dedented_and_errors_point_at_the_raw_column(shell) -> None:
    assert build(shell, "t()", "  a = 1\n  return a\n", "task")() == 1
    with pytest.raises(SyntaxError) as caught:
        build(shell, "t()", "  a = 1\n  b c\n", "task")
    assert (caught.value.lineno, caught.value.text, caught.value.offset) == (3, "  b c\n", 5)


def test_through_run_cell_the_traceback_names_the_defining_cell(shell, task_magic, capsys) -> None:
    defined, _ = run_in_cell(shell, "%%task divide(x)\nhalf = x / 2\n\nreturn x / 0\n", capsys)
    assert defined.success
    failed, output = run_in_cell(shell, "divide(1)", capsys)
    assert isinstance(failed.error_in_exec, ZeroDivisionError)
    # While a cell runs IPython has already counted the next one; the cell is In[N].
    assert f"Cell In[{defined.execution_count}], line 4, in divide(x)" in output
    assert re.search(r"----> 4\s+return x / 0", output)


def test_through_run_cell_a_syntax_error_names_the_cell_and_line(shell, task_magic, capsys) -> None:
    result, output = run_in_cell(shell, "%%task broken()\na = 1\nb = (1\n", capsys)
    assert isinstance(result.error_in_exec, SyntaxError)
    assert f"Cell In[{result.execution_count}], line 3" in output
    assert "b = (1" in output and "'(' was never closed" in output


# --- the one-def form --------------------------------------------------------------------


def test_single_async_def_cell(shell) -> None:
    cell = "import math\n\nasync def area(r: float) -> float:\n    return math.pi * r * r\n"
    compiled = compile_cell(shell, parse_header("", kind="workflow"), cell, kind="workflow")
    assert compiled.name == "area"
    assert asyncio.run(compiled.function(1.0)) == pytest.approx(3.14159, rel=1e-5)
    assert "math" in shell.user_ns  # the cell's other statements ran in the user namespace
    assert "area" not in shell.user_ns  # binding it is the caller's job
    assert inspect.getsource(compiled.function).startswith("async def area(r: float)")
    assert compiled.source.splitlines()[0] == "# %%workflow"


def test_single_def_cell_applies_decorators_and_restores_the_name(shell) -> None:
    shell.run_cell("def tag(fn):\n    fn.tagged = True\n    return fn")
    shell.user_ns["charge"] = "old"
    fn = build(shell, "--retry max_attempts=2", "@tag\ndef charge(x):\n    return x + 1\n", "task")
    assert fn.tagged and fn(1) == 2
    assert shell.user_ns["charge"] == "old"


def test_single_def_cell_runtime_error_line(shell) -> None:
    fn = build(shell, "", "\ndef t():\n    return 1 / 0\n", "task")
    with pytest.raises(ZeroDivisionError) as caught:
        fn()
    frame = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == (fn.__code__.co_filename, 4)


def test_single_def_cell_syntax_error_line(shell) -> None:
    with pytest.raises(SyntaxError) as caught:
        build(shell, "", "def t():\n    retur n 1\n", "task")
    assert (caught.value.lineno, caught.value.text) == (3, "    retur n 1\n")


def test_cell_without_a_def_is_refused(shell) -> None:
    with pytest.raises(DefinitionError, match="holds no function definition") as caught:
        build(shell, "", "x = 1\n")
    assert "%%workflow NAME(PARAMS)" in str(caught.value)


def test_cell_with_several_defs_is_refused(shell) -> None:
    with pytest.raises(DefinitionError) as caught:
        build(shell, "", "async def a():\n    pass\n\nasync def b():\n    pass\n")
    assert "2 functions at its top level: a (line 2), b (line 5)" in str(caught.value)
    assert "defines exactly one" in str(caught.value)


def test_a_named_header_over_a_def_of_that_name_is_refused(shell) -> None:
    with pytest.raises(DefinitionError, match="the magic line names order and the cell defines"):
        build(shell, "order --timeout 1h", "async def order(x):\n    return x\n")


def test_indentation_errors_keep_their_type(shell) -> None:
    with pytest.raises(IndentationError) as caught:
        build(shell, "t()", "if True:\nreturn 1\n", "task")
    assert (caught.value.lineno, caught.value.text) == (3, "return 1\n")


def test_a_failing_def_cell_leaves_the_name_as_it_was(shell) -> None:
    shell.user_ns["charge"] = "old"
    with pytest.raises(ZeroDivisionError):
        build(shell, "", "def charge():\n    pass\n\nboom = 1 / 0\n", "task")
    assert shell.user_ns["charge"] == "old"


def test_workflow_def_must_be_async(shell) -> None:
    with pytest.raises(DefinitionError, match=r"`def order` .* must be `async def order`"):
        build(shell, "", "def order():\n    pass\n")


# --- normalized_source -------------------------------------------------------------------


def test_normalized_source_ignores_cosmetic_whitespace() -> None:
    header = parse_header("order(x) --timeout 1h", kind="workflow")
    one = normalized_source(header, "\n\na = 1   \n\n\n\nreturn a\t\n\n")
    two = normalized_source(header, "a = 1\r\n\r\nreturn a\r\n")
    assert one == two == "%%workflow order(x) --timeout 1h\na = 1\n\nreturn a\n"


def test_normalized_source_changes_with_the_code_and_the_header() -> None:
    header = parse_header("order(x)", kind="workflow")
    base = normalized_source(header, "return x\n")
    assert normalized_source(header, "return x + 1\n") != base
    assert normalized_source(parse_header("order(x, y)", kind="workflow"), "return x\n") != base
    assert normalized_source(parse_header("order(x)", kind="task"), "return x\n") != base
    assert normalized_source(parse_header("", kind="task"), "def f(): pass").startswith("%%task\n")
