"""The magics: ``%%workflow``, ``%%task`` and ``%conductor`` (alias ``%wf``).

Argument parsing only; the work is done by plain functions in
:mod:`~nbconductor.extension.define` (the cell magics),
:mod:`~nbconductor.extension.commands` (``%conductor``'s subcommands, over the
operations the ``nbconductor`` command runs too) and
:mod:`~nbconductor.extension.lifecycle` (start, stop, db). Bad arguments raise IPython's
``UsageError``, which IPython shows as a message, never a traceback; so do the
engine's own errors (unknown execution id, closed execution, stopped engine).
"""

from __future__ import annotations

import argparse
import ast
import json
import linecache
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, magics_class, no_var_expand
from IPython.display import display
from IPython.utils.text import DollarFormatter

from nbconductor.errors import NbconductorError
from nbconductor.extension import commands, define, lifecycle
from nbconductor.extension.cell_header import usage
from nbconductor.extension.session import require_engine
from nbconductor.operations.arguments import add_schedule_options

__all__ = ("NbconductorMagics", "conductor", "register", "unregister")

_SUBCOMMANDS = {
    "status": "engine health: thread, history file, counts by state, timers, running tasks",
    "list": "executions, newest first: "
    "list [--status S[,S]] [--workflow N] [--since 2h] [--until WHEN] [--limit N]",
    "show": "one execution: state, input, result or error, captured output: show ID",
    "history": "the recorded events of an execution: history ID",
    "signal": "send a signal: signal ID NAME [PAYLOAD as JSON or a Python literal]",
    "cancel": "ask an execution to stop (its code may clean up): cancel ID",
    "terminate": "stop an execution at once: terminate ID [REASON]",
    "resume": "look again at open executions and resume those that can go on",
    "schedules": "the schedules (live view; --text for a table)",
    "schedule": "manage one schedule: "
    "schedule create|update|pause|resume|trigger|delete|describe ID ...",
    "queues": "task queues: queues [create|update|delete NAME] [--concurrency N] [--rate R] [--burst N]",
    "runner": "where tasks run: runner add NAME ADDRESS|process, runner list",
    "fork": "re-run an execution from a step with the current code: fork ID [--at N]",
    "sql": "read-only SQL over the history (tables executions, events, definitions, "
    "schedules, queues), as a DuckDB relation (.df(), .pl(), .arrow()): sql QUERY",
    "prune": "delete closed executions older than a cutoff: "
    "prune --closed-before 30d [--dry-run] [--limit N]",
    "start": "start the engine",
    "stop": "stop the engine: stop [--grace S] (open executions resume at the next start)",
    "db": "show the history file, or move the engine to another: db [PATH]",
}


class _HelpShown(Exception):
    """argparse printed a help text; the magic returns quietly."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as UsageError and never exits the kernel."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(
            f"{self.prog}: {message}\n\n{self.format_usage().strip()}\n(see `{self.prog} --help`)"
        )

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if status:
            raise UsageError(message or f"{self.prog}: bad arguments")
        raise _HelpShown


def _parser() -> _Parser:
    parser = _Parser(
        prog="%conductor",
        description="Look at and control nbconductor executions (alias: %wf).",
        epilog="subcommands:\n"
        + "\n".join(f"  {name:<10} {text}" for name, text in _SUBCOMMANDS.items())
        + "\n\n`%conductor SUBCOMMAND --help` for one subcommand's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("subcommand", choices=list(_SUBCOMMANDS), metavar="SUBCOMMAND")
    return parser


def _sub(name: str) -> _Parser:
    parser = _Parser(prog=f"%conductor {name}", description=_SUBCOMMANDS[name], allow_abbrev=False)
    add = parser.add_argument
    if name == "list":
        add(
            "--status",
            metavar="S[,S]",
            help="running, completed, failed, cancelled, terminated, timed_out",
        )
        add("--workflow", "--name", dest="workflow", metavar="N", help="workflow name")
        add("--since", metavar="WHEN", help="started at or after: 2h (ago), or a date/time")
        add("--until", metavar="WHEN", help="started before: 30m (ago), or a date/time")
        add("--limit", type=_positive_int, default=20, metavar="N", help="rows per page (20)")
        add("--text", action="store_true", help="a plain table instead of the live view")
    elif name in ("show", "history", "cancel"):
        add("id", metavar="ID", help="execution id")
    elif name == "signal":
        add("id", metavar="ID", help="execution id")
        add("name", metavar="NAME", help="signal name")
        add(
            "payload",
            nargs="?",
            metavar="PAYLOAD",
            help="JSON or a Python literal (the rest of the line)",
        )
    elif name == "terminate":
        add("id", metavar="ID", help="execution id")
        add("reason", nargs="?", metavar="REASON", help="why (the rest of the line)")
    elif name == "sql":
        add("query", nargs="?", metavar="QUERY", help="one SELECT statement (the rest of the line)")
    elif name == "prune":
        add(
            "--closed-before",
            required=True,
            metavar="WHEN",
            help="an age (30d, 12h) or a date/time; whole families (parent, children, "
            "continue-as-new runs) go once every member closed before then",
        )
        add("--dry-run", action="store_true", help="count them, delete nothing")
        add("--limit", type=_positive_int, metavar="N", help="at most about N executions")
    elif name == "stop":
        add(
            "--grace",
            type=_seconds,
            default=lifecycle.GRACE,
            metavar="S",
            help=f"seconds running tasks get to finish ({lifecycle.GRACE:g})",
        )
    elif name == "schedules":
        add("--text", action="store_true", help="a plain table instead of the live view")
    elif name == "schedule":
        add("action", choices=_SCHEDULE_ACTIONS)
        add("id", metavar="ID", help="schedule id")
        add("workflow", nargs="?", metavar="WORKFLOW", help="workflow name (create, update)")
        add_schedule_options(parser)
        add("--paused", action="store_true", default=None, help="create it paused")
    elif name == "queues":
        add("action", nargs="?", choices=("list", "create", "update", "delete"))
        add("name", nargs="?", metavar="NAME", help="queue name")
        add("--concurrency", type=int, metavar="N", help="attempts at once (0: no limit)")
        add("--rate", metavar="N/PERIOD", help="starts per period, paced, e.g. 60/minute (none)")
        add("--burst", type=int, metavar="N", help="starts the rate lets through at once (1)")
    elif name == "runner":
        add("action", choices=("add", "list"))
        add("name", nargs="?", metavar="NAME", help="the name tasks give as runner=")
        add("target", nargs="?", metavar="ADDRESS", help="a Dask scheduler, or 'process'")
    elif name == "fork":
        add("id", metavar="ID", help="execution id")
        add(
            "--at",
            type=_positive_int,
            metavar="N",
            help="last event to reuse (default: just before the first task that failed for good)",
        )
    elif name == "db":
        add("path", nargs="?", metavar="PATH", help="history file to use from now on")
    return parser


_SCHEDULE_ACTIONS = ("create", "update", "pause", "resume", "trigger", "delete", "describe")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return value


# Subcommands whose last argument is the raw rest of the line (JSON, SQL, prose),
# with the number of words before it.
_RAW_TAIL = {"signal": 2, "terminate": 1, "sql": 0}


def _expand(shell: Any, text: str) -> str:
    """IPython's ``$name`` / ``{expr}`` expansion, against the user namespace only.

    The magics are ``no_var_expand`` so that JSON payloads and SQL keep their braces;
    ids and names are expanded here instead, so ``%conductor show {run.id}`` works.
    """
    if shell is None or ("$" not in text and "{" not in text):
        return text
    try:
        return DollarFormatter().vformat(text, args=[], kwargs=dict(shell.user_ns))
    except Exception:  # as IPython does: leave what does not expand as written
        return text


def _split(name: str, rest: str, shell: Any = None) -> list[str]:
    if name in _RAW_TAIL:
        count = _RAW_TAIL[name]
        words = rest.split(None, count)
        words[: min(count, len(words))] = [_expand(shell, w) for w in words[:count]]
        if rest.strip() in ("-h", "--help") or any(w in ("-h", "--help") for w in words[:count]):
            return ["--help"]
        if len(words) > count:
            # The tail stays one argument, quotes and all; "--" keeps a tail that
            # starts with "-" from being read as an option.
            return [*words[:count], "--", words[count]]
        return words
    try:
        return shlex.split(_expand(shell, rest))
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"%conductor {name}: cannot split {rest.strip()!r}: {exc}") from None


def _payload(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise UsageError(
            f"%conductor signal: the payload {text!r} is neither JSON nor a Python literal; "
            'quote text, e.g. \'"yes"\' or {"approved": true}'
        ) from None


def conductor(line: str, cell: str | None = None, *, shell: Any = None) -> Any:
    """Run one ``%conductor`` command line; returns what the cell should display.

    With a cell (``%%conductor sql``), the cell is the rest of the line.
    """
    name, _, rest = line.strip().partition(" ")
    if cell is not None:
        if name != "sql":
            raise UsageError("%%conductor: only `%%conductor sql` takes a cell (the query)")
        rest = f"{rest} {cell}".strip()
    try:
        if not name or name in ("-h", "--help", "help"):
            _parser().print_help()
            return None
        _parser().parse_args([name])  # an unknown subcommand: usage with the choices
        args = _sub(name).parse_args(_split(name, rest, shell))
        return _run(name, args, shell)
    except _HelpShown:
        return None
    except (NbconductorError, ValueError) as exc:
        # An unknown id, a closed execution, a stopped engine, an invalid signal name:
        # the user's input, so a message rather than a traceback.
        raise UsageError(f"%conductor {name}: {exc}") from None


def _run(name: str, args: argparse.Namespace, shell: Any) -> Any:
    if name == "status":
        print(commands.status())
        return None
    if name in ("start", "stop", "db"):
        if name == "start":
            print(lifecycle.start_engine())
        elif name == "stop":
            print(lifecycle.stop_engine(args.grace))
        else:
            print(lifecycle.switch_db(args.path))
        return None
    engine = require_engine()
    if name == "list":
        return commands.list_executions(
            engine,
            status=args.status,
            workflow=args.workflow,
            since=args.since,
            until=args.until,
            limit=args.limit,
            text=args.text,
        )
    if name == "history":
        return commands.history(engine, args.id)
    if name == "schedules":
        return commands.schedules(engine, text=args.text)
    if name == "queues":
        shown = commands.queues(engine, args)
        if isinstance(shown, str):  # what a change did: a sentence, not a value
            print(shown)
            return None
        return shown
    if name == "runner":
        print(commands.runner(engine, args.action, args.name, args.target))
        return None
    if name == "schedule":
        return _shown(commands.schedule(engine, args.action, args.id, args))
    if name == "fork":
        return commands.fork(engine, args.id, args.at)
    if name == "sql":
        if not args.query:
            raise UsageError(
                "%conductor sql: give a query, e.g. %conductor sql SELECT * FROM executions"
            )
        return commands.sql(engine, args.query)
    if name == "prune":
        print(commands.prune(engine, args.closed_before, dry_run=args.dry_run, limit=args.limit))
        return None
    if name == "show":
        print(commands.show(engine, args.id, shell=shell))
    elif name == "signal":
        print(commands.signal(engine, args.id, args.name, _payload(args.payload)))
    elif name == "cancel":
        print(commands.cancel(engine, args.id))
    elif name == "terminate":
        print(commands.terminate(engine, args.id, args.reason))
    else:  # resume
        print(commands.resume(engine))
    return None


def _shown(result: Any) -> Any:
    """Text is printed (a sentence, not an output value); anything else is displayed."""
    if isinstance(result, str):
        print(result)
        return None
    return result


def _displayed_wherever_it_stands(shell: Any, value: Any) -> Any:
    """Display ``value`` now when the magic is a statement of its own before the cell's end.

    IPython displays only the value of a cell's last expression, so a ``%conductor list``
    followed by more code would show nothing. Its value is displayed here instead, and
    ``None`` returned so that nothing shows twice; an assignment (``rows = %conductor
    sql ...``) and the cell's last line keep the value as IPython would.
    """
    if value is None or shell is None:
        return value
    if getattr(shell, "ast_node_interactivity", "last_expr") not in (
        "last_expr",
        "last_expr_or_assign",
    ):
        return value  # "all": IPython displays every expression itself
    statement = _calling_statement(shell)
    if statement is None:
        return value
    body, index = statement
    if isinstance(body[index], ast.Expr) and index < len(body) - 1:
        display(value)
        return None
    return value


def _calling_statement(shell: Any) -> tuple[list[ast.stmt], int] | None:
    """The cell's top-level statements and the index of the one running this magic."""
    frame = sys._getframe(1)
    # The cell's code runs as a module whose globals are the user namespace; the
    # frames between it and here are IPython's run_line_magic and this module.
    while frame is not None and not (
        frame.f_code.co_name == "<module>" and frame.f_globals is shell.user_ns
    ):
        frame = frame.f_back
    if frame is None:
        return None
    # IPython caches each cell's transformed source in linecache for tracebacks.
    source = "".join(linecache.getlines(frame.f_code.co_filename))
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    line = frame.f_lineno
    for index, statement in enumerate(body):
        if statement.lineno <= line <= (statement.end_lineno or statement.lineno):
            return body, index
    return None


@magics_class
class NbconductorMagics(Magics):
    """nbconductor's magics; each one parses its arguments and calls a plain function."""

    @no_var_expand  # `{...}` in parameter defaults must not be expanded by IPython
    @cell_magic
    def workflow(self, line: str, cell: str) -> None:
        define.define_cell(self.shell, "workflow", line, cell)

    @no_var_expand
    @cell_magic
    def task(self, line: str, cell: str) -> None:
        define.define_cell(self.shell, "task", line, cell)

    @no_var_expand  # JSON payloads and SQL keep their braces and dollars
    @line_cell_magic
    def conductor(self, line: str, cell: str | None = None) -> Any:
        value = conductor(line, cell, shell=self.shell)
        return value if cell is not None else _displayed_wherever_it_stands(self.shell, value)

    @no_var_expand
    @line_cell_magic
    def wf(self, line: str, cell: str | None = None) -> Any:
        value = conductor(line, cell, shell=self.shell)
        return value if cell is not None else _displayed_wherever_it_stands(self.shell, value)


NbconductorMagics.workflow.__doc__ = (
    "Define a workflow from a cell (the body of an async def).\n\n" + usage("workflow")
)
NbconductorMagics.task.__doc__ = "Define a task from a cell.\n\n" + usage("task")
NbconductorMagics.conductor.__doc__ = _parser().format_help()
NbconductorMagics.wf.__doc__ = "Alias of %conductor.\n\n" + _parser().format_help()

_NAMES = {"cell": ("workflow", "task", "conductor", "wf"), "line": ("conductor", "wf")}


def register(shell: Any) -> None:
    """Register the magics with ``shell`` (again on reload: the newest class wins)."""
    shell.register_magics(NbconductorMagics)


def unregister(shell: Any) -> None:
    """Remove the magics (IPython has no public way to remove magics)."""
    manager = shell.magics_manager
    for kind, names in _NAMES.items():
        table = manager.magics.get(kind, {})
        for name in names:
            owner = getattr(table.get(name), "__self__", None)
            # By class name: after a module reload the class is a new object.
            if type(owner).__name__ == NbconductorMagics.__name__:
                del table[name]
    manager.registry.pop(NbconductorMagics.__name__, None)
