"""What the ``nbconductor`` command accepts: every command, its options and help.

The parser only reads the command line; :mod:`nbconductor.cli.runner` runs the
operation each command names. ``--help`` works everywhere (docs/reference.md is
generated from these help texts).
"""

from __future__ import annotations

import argparse

from nbconductor._version import __version__
from nbconductor.cli.completion import SHELLS
from nbconductor.operations.arguments import add_schedule_options
from nbconductor.storage.records import Status

__all__ = ("DB_ENV", "build_parser")

DB_ENV = "NBCONDUCTOR_DB"

_EPILOG = f"""\
history file: --db PATH, else ${DB_ENV}, else the one .nbconductor/*.duckdb in the
current directory.

exit codes:
  0  success
  1  the operation failed (e.g. no such execution, the execution is closed,
     the query was refused)
  2  usage error: bad arguments or JSON, no history file, or no running engine
     where the command needs one (start, schedules changes)
  status: 0 healthy engine, 1 unhealthy engine, 2 no engine holds the file

every command takes --help; --json prints stable JSON (see docs/cli.md)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (``--help`` everywhere)."""
    parser = argparse.ArgumentParser(
        prog="nbconductor",
        description="Inspect and steer nbconductor workflow executions outside the notebook.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"nbconductor {__version__}")
    _common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, *, output: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        _common(sub, top=False, output=output)
        return sub

    sub = command("list", "List executions, newest first.")
    sub.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="only these statuses (repeat or comma-separate): "
        + ", ".join(s.value for s in Status),
    )
    sub.add_argument("--workflow", metavar="NAME", help="only executions of this workflow")
    sub.add_argument("--since", metavar="WHEN", help="started at or after: '2h' ago or ISO time")
    sub.add_argument("--until", metavar="WHEN", help="started before: '30m' ago or ISO time")
    sub.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")

    sub = command("show", "Show one execution: state, input, result or error.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument(
        "--follow",
        action="store_true",
        help="draw a progress bar (tqdm, on stderr) until it closes, then show it; "
        "exit 1 unless it completed",
    )

    sub = command("history", "Show an execution's recorded events.")
    sub.add_argument("id", metavar="ID")

    sub = command(
        "signal",
        "Send a signal to an open execution (recorded for the next engine if none runs).",
    )
    sub.add_argument("id", metavar="ID")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument(
        "payload",
        metavar="PAYLOAD",
        nargs="?",
        help="JSON value (default null); @FILE reads it from a file, @- from stdin",
    )

    sub = command("cancel", "Ask an execution to cancel (it may clean up).")
    sub.add_argument("id", metavar="ID")

    sub = command("terminate", "End an execution at once; none of its code runs any more.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--reason", metavar="TEXT")

    sub = command("start", "Start a workflow registered in the running engine.")
    sub.add_argument("workflow", metavar="WORKFLOW")
    sub.add_argument(
        "args",
        metavar="ARG",
        nargs="*",
        help="positional arguments as JSON; text that is not JSON is a string",
    )
    sub.add_argument(
        "--kw", action="append", default=[], metavar="NAME=VALUE", help="a keyword argument"
    )
    sub.add_argument("--id", metavar="ID", help="execution id (starting an existing id is a no-op)")

    _schedules_parser(command("schedules", "List and change schedules.", output=False))
    _queues_parser(command("queues", "List and change task queues.", output=False))

    sub = command("sql", "Run a read-only SQL query over the history.", output=False)
    sub.add_argument("query", metavar="QUERY", help="one SELECT-like statement; - reads stdin")
    fmt = sub.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    fmt.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    sub = command(
        "prune",
        "Delete closed executions (with their events) older than a cutoff, and give "
        "the space back to the file.",
    )
    sub.add_argument(
        "--closed-before",
        required=True,
        metavar="WHEN",
        help="an age (30d, 12h: closed longer ago than that) or a date/time; an "
        "execution goes with its whole family (parent, children, continue-as-new runs) "
        "once every member closed before then, never while one is open",
    )
    sub.add_argument("--dry-run", action="store_true", help="count them, delete nothing")
    sub.add_argument("--limit", type=int, metavar="N", help="at most about N executions")

    sub = command("export", "Export the history tables as files.")
    sub.add_argument(
        "--parquet", required=True, metavar="DIR", help="write <table>.parquet files into DIR"
    )

    command("status", "Engine health (exit 0 healthy, 1 unhealthy, 2 no engine).")

    # --- worker: runs the notebook in an IPython shell (nbconductor.extension.worker) ---
    sub = commands.add_parser(
        "worker",
        help="Run a notebook headless and serve its executions until stopped.",
        description="Run a notebook headless: its code cells (only those tagged "
        "nbconductor, if any are), then serve its executions, schedules and control "
        "socket until SIGTERM or SIGINT. The history file is the one a kernel would use "
        "(.nbconductor/<notebook>.duckdb beside the notebook) unless --db or "
        f"${DB_ENV} names another. Logs one line per state change to stderr. Exit 0 "
        "after a signal, 1 when a cell failed, 2 when it cannot start (e.g. another "
        "process holds the history file).",
    )
    # Only --db of the common options: the worker answers no engine, it is one.
    sub.add_argument(
        "--db",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"history file (default: ${DB_ENV}, else the notebook's, as a kernel chooses it)",
    )
    sub.add_argument("notebook", metavar="NOTEBOOK.ipynb")
    sub.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="running tasks get this long to finish when stopping (default 10)",
    )
    sub.add_argument(
        "--keep-going", action="store_true", help="carry on when a cell fails (default: exit 1)"
    )
    sub.add_argument(
        "--json-logs", action="store_true", help="log JSON lines to stderr instead of text"
    )

    sub = commands.add_parser(
        "completion",
        help="Print a shell completion script.",
        description='Print a shell completion script: eval "$(nbconductor completion bash)" '
        "in ~/.bashrc, or zsh in ~/.zshrc.",
    )
    sub.add_argument("shell", choices=SHELLS, metavar="SHELL", help=" or ".join(SHELLS))
    return parser


def _common(parser: argparse.ArgumentParser, *, top: bool, output: bool = True) -> None:
    # Accepted before and after the command; a subcommand's value wins only if given.
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--db", metavar="PATH", default=default, help=f"history file (default: ${DB_ENV})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=60.0 if top else argparse.SUPPRESS,
        help="wait this long for the engine's answer (default 60)",
    )
    if top or output:
        # A subparser's own default would overwrite a --json given before the command.
        parser.add_argument(
            "--json",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="print stable JSON",
        )


def _queues_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=help)
        _common(sub, top=False)
        if name != "list":
            sub.add_argument("name", metavar="NAME")
        return sub

    def limits(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--concurrency", type=int, metavar="N", help="attempts at once, at most")
        sub.add_argument(
            "--rate", metavar="N/PERIOD", help="starts per period, paced evenly, e.g. 60/minute"
        )
        sub.add_argument(
            "--burst", type=int, metavar="N", help="starts the rate lets through at once (1)"
        )

    parser.set_defaults(action="list", json=False)
    action("list", "List queues: limits, and attempts running and waiting.")
    limits(action("create", "Create a queue (needs a running engine)."))
    sub = action("update", "Change a queue's limits; the others stay.")
    limits(sub)
    sub.add_argument("--no-concurrency", action="store_true", help="remove the concurrency limit")
    sub.add_argument("--no-rate", action="store_true", help="remove the rate limit")
    action("delete", "Delete a queue; attempts waiting in it start at once.")


def _schedules_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=help)
        _common(sub, top=False)
        return sub

    parser.set_defaults(action="list")
    action("list", "List schedules.")
    sub = action("show", "One schedule, its next fires and what its policies do.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--n", type=int, default=5, help="how many upcoming fires (default 5)")
    sub = action("create", "Create a schedule (needs a running engine).")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("workflow", metavar="WORKFLOW")
    add_schedule_options(sub)
    sub.add_argument("--paused", action="store_true", default=None, help="create it paused")
    sub = action("update", "Change a schedule's options; the others stay.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--workflow", metavar="NAME")
    add_schedule_options(sub)
    sub = action("delete", "Delete a schedule; the runs it started stay.")
    sub.add_argument("id", metavar="ID")
    sub = action("pause", "Stop firing until resumed.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--note", metavar="TEXT", help="why (shown in the schedule)")
    sub = action("resume", "Fire again from now on.")
    sub.add_argument("id", metavar="ID")
    sub = action("trigger", "Fire once now (the overlap policy applies).")
    sub.add_argument("id", metavar="ID")
