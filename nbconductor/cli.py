"""The ``nbconductor`` command: operations outside the notebook.

Each command reaches the engine that holds the history file through its control
socket, or, when no engine holds it, opens the file itself: read-only for reads;
signals, cancels and terminations are written durably and the next engine delivers
them. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from nbconductor._version import __version__
from nbconductor.engine.schedules.spec import CATCHUP_POLICIES, OVERLAP_POLICIES
from nbconductor.errors import NbconductorError
from nbconductor.remote import render
from nbconductor.remote.arguments import (
    UsageError,
    loose_json,
    parse_when,
    read_json_argument,
    statuses,
)
from nbconductor.remote.operations import Operations, open_operations
from nbconductor.remote.protocol import BadRequest, NoEngine, RemoteError
from nbconductor.storage.records import Status

__all__ = ("EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "UsageError", "build_parser", "main")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
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


# --- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (``--help`` everywhere)."""
    parser = argparse.ArgumentParser(
        prog="nbconductor",
        description="Inspect and steer nbconductor workflow executions outside the notebook.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nbconductor {__version__}")
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
    sub.set_defaults(run=_cmd_list)

    sub = command("show", "Show one execution: state, input, result or error.")
    sub.add_argument("id", metavar="ID")
    sub.set_defaults(run=_cmd_show)

    sub = command("history", "Show an execution's recorded events.")
    sub.add_argument("id", metavar="ID")
    sub.set_defaults(run=_cmd_history)

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
    sub.set_defaults(run=_cmd_signal)

    sub = command("cancel", "Ask an execution to cancel (it may clean up).")
    sub.add_argument("id", metavar="ID")
    sub.set_defaults(run=_cmd_cancel)

    sub = command("terminate", "End an execution at once; none of its code runs any more.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--reason", metavar="TEXT")
    sub.set_defaults(run=_cmd_terminate)

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
    sub.set_defaults(run=_cmd_start)

    _schedules_parser(command("schedules", "List and change schedules.", output=False))

    sub = command("sql", "Run a read-only SQL query over the history.", output=False)
    sub.add_argument("query", metavar="QUERY", help="one SELECT-like statement; - reads stdin")
    fmt = sub.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    fmt.add_argument("--json", action="store_true", help="print JSON")
    sub.set_defaults(run=_cmd_sql)

    sub = command("export", "Export the history tables as files.")
    sub.add_argument(
        "--parquet", required=True, metavar="DIR", help="write <table>.parquet files into DIR"
    )
    sub.set_defaults(run=_cmd_export)

    sub = command("status", "Engine health (exit 0 healthy, 1 unhealthy, 2 no engine).")
    sub.set_defaults(run=_cmd_status)

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
    sub.set_defaults(run=_cmd_worker, needs_db=False)
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
    if not top and output:
        parser.add_argument("--json", action="store_true", help="print stable JSON")


def _schedules_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=help)
        _common(sub, top=False)
        return sub

    parser.set_defaults(run=_cmd_schedules, action="list", json=False)
    action("list", "List schedules.")
    sub = action("show", "One schedule, its next fires and what its policies do.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--n", type=int, default=5, help="how many upcoming fires (default 5)")
    sub = action("create", "Create a schedule (needs a running engine).")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("workflow", metavar="WORKFLOW")
    _schedule_options(sub)
    sub.add_argument("--paused", action="store_true", default=None, help="create it paused")
    sub = action("update", "Change a schedule's options; the others stay.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--workflow", metavar="NAME")
    _schedule_options(sub)
    sub = action("delete", "Delete a schedule; the runs it started stay.")
    sub.add_argument("id", metavar="ID")
    sub = action("pause", "Stop firing until resumed.")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--note", metavar="TEXT", help="why (shown in the schedule)")
    sub = action("resume", "Fire again from now on.")
    sub.add_argument("id", metavar="ID")
    sub = action("trigger", "Fire once now (the overlap policy applies).")
    sub.add_argument("id", metavar="ID")


def _schedule_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--cron", metavar="EXPR", help="cron expression, e.g. '0 9 * * MON-FRI'")
    sub.add_argument("--every", metavar="DURATION", help="interval, e.g. '15 minutes'")
    sub.add_argument("--timezone", metavar="ZONE", help="zone of the cron expression")
    sub.add_argument("--args", metavar="JSON", help="positional arguments, a JSON array")
    sub.add_argument("--kwargs", metavar="JSON", help="keyword arguments, a JSON object")
    sub.add_argument("--jitter", metavar="DURATION")
    sub.add_argument("--overlap", choices=OVERLAP_POLICIES)
    sub.add_argument("--catchup", choices=CATCHUP_POLICIES)
    sub.add_argument("--catchup-window", metavar="DURATION", help="a duration, or 'none'")
    sub.add_argument("--start-at", metavar="ISO")
    sub.add_argument("--end-at", metavar="ISO")
    sub.add_argument("--note", metavar="TEXT")


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    try:
        if not getattr(args, "needs_db", True):
            return args.run(None, args, sys.stdout)
        db = resolve_db(args.db)
        ops = open_operations(db, timeout=args.timeout)
        with ops:
            if args.command != "status" and not ops.live and not db.is_file():
                raise UsageError(f"there is no nbconductor history at {db}")
            return args.run(ops, args, sys.stdout)
    except (UsageError, BadRequest, NoEngine) as exc:
        return _fail(exc, EXIT_USAGE, as_json)
    except (NbconductorError, ValueError, TypeError, LookupError, OSError) as exc:
        return _fail(exc, EXIT_FAILED, as_json)
    except KeyboardInterrupt:
        return 130


def _fail(exc: BaseException, code: int, as_json: bool) -> int:
    kind = exc.type if isinstance(exc, RemoteError) else type(exc).__name__
    if as_json:
        print(json.dumps({"error": {"type": kind, "message": str(exc)}}), file=sys.stderr)
    else:
        print(f"nbconductor: error: {exc}", file=sys.stderr)
    return code


def resolve_db(
    option: str | None, environ: dict[str, str] | None = None, cwd: Path | None = None
) -> Path:
    """The history file: ``--db``, else ``$NBCONDUCTOR_DB``, else the only
    ``.nbconductor/*.duckdb`` in the working directory.

    Raises:
        UsageError: none of those gives exactly one file (the candidates are listed).
    """
    environ = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else cwd
    chosen = option or environ.get(DB_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        return (path if path.is_absolute() else base / path).resolve()
    found = sorted((base / ".nbconductor").glob("*.duckdb"))
    if len(found) == 1:
        return found[0].resolve()
    if not found:
        raise UsageError(
            f"no history file given and none found in {base / '.nbconductor'}; "
            f"pass --db PATH or set {DB_ENV}"
        )
    listed = "\n  ".join(str(p) for p in found)
    raise UsageError(f"several history files; choose one with --db PATH:\n  {listed}")


def _emit(out: TextIO, as_json: bool, result: Any, text: Callable[[Any], str]) -> None:
    if as_json:
        out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(text(result) + "\n")


# --- commands --------------------------------------------------------------------------


def _cmd_list(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    query: dict[str, Any] = {"limit": args.limit}
    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit must be 0 or more, not {args.limit}")
    if args.status:
        query["status"] = statuses(args.status)
    if args.workflow:
        query["workflow"] = args.workflow
    if args.since:
        query["since"] = parse_when(args.since, "--since")
    if args.until:
        query["until"] = parse_when(args.until, "--until")
    _emit(out, args.json, ops.call("list", **query), render.executions_table)
    return EXIT_OK


def _cmd_show(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    _emit(out, args.json, ops.call("show", id=args.id), render.execution_text)
    return EXIT_OK


def _cmd_history(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    _emit(out, args.json, ops.call("history", id=args.id), render.history_table)
    return EXIT_OK


def _cmd_signal(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    payload = None if args.payload is None else read_json_argument(args.payload, "PAYLOAD")
    result = ops.call("signal", id=args.id, name=args.name, payload=payload)
    _emit(out, args.json, result, lambda r: _delivery(r, f"signal {args.name!r}", "sent to"))
    return EXIT_OK


def _cmd_cancel(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    result = ops.call("cancel", id=args.id)
    _emit(out, args.json, result, lambda r: _delivery(r, "cancel request", "delivered to"))
    return EXIT_OK


def _delivery(result: dict[str, Any], what: str, verb: str) -> str:
    if result.get("delivered"):
        return f"{what} {verb} {result['id']}"
    return (
        f"{what} recorded for {result['id']}; no engine holds the history, so the next "
        "engine to open it delivers it"
    )


def _cmd_terminate(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    result = ops.call("terminate", id=args.id, reason=args.reason)
    _emit(out, args.json, result, lambda r: f"terminated {r['id']}")
    return EXIT_OK


def _cmd_start(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    positional = [loose_json(a) for a in args.args]
    keywords: dict[str, Any] = {}
    for item in args.kw:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"--kw {item!r}: write NAME=VALUE, e.g. --kw amount=42.5")
        keywords[name] = loose_json(value)
    request: dict[str, Any] = {"workflow": args.workflow, "args": positional, "kwargs": keywords}
    if args.id:
        request["id"] = args.id
    result = ops.call("start", **request)

    def text(r: dict[str, Any]) -> str:
        if r.get("recorded", True):
            return f"started {r['id']} ({r['workflow']})"
        return (
            f"accepted {r['id']} ({r['workflow']}); the engine is busy and has not "
            "recorded the start yet (see `nbconductor status`)"
        )

    _emit(out, args.json, result, text)
    return EXIT_OK


def _cmd_schedules(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    action = args.action
    if action == "list":
        _emit(out, args.json, ops.call("schedules.list"), render.schedules_table)
        return EXIT_OK
    if action == "show":
        result = ops.call("schedules.show", id=args.id, n=args.n)
        _emit(out, args.json, result, render.schedule_text)
    elif action in ("create", "update"):
        options = _schedule_changes(args)
        if action == "create":
            result = ops.call("schedules.create", id=args.id, workflow=args.workflow, **options)
        else:
            if not options:
                raise UsageError("schedules update: give at least one option to change")
            result = ops.call("schedules.update", id=args.id, **options)
        _emit(out, args.json, result, render.schedule_text)
    elif action == "delete":
        result = ops.call("schedules.delete", id=args.id)
        _emit(out, args.json, result, lambda r: f"deleted schedule {r['id']}")
    elif action == "pause":
        result = ops.call("schedules.pause", id=args.id, note=args.note)
        _emit(out, args.json, result, lambda r: f"paused schedule {r['id']}")
    elif action == "resume":
        result = ops.call("schedules.resume", id=args.id)
        _emit(
            out, args.json, result, lambda r: f"resumed schedule {r['id']}: next {r['next_fire']}"
        )
    else:  # trigger
        result = ops.call("schedules.trigger", id=args.id)
        _emit(
            out,
            args.json,
            result,
            lambda r: (
                f"started {r['started']}"
                if r["started"]
                else f"schedule {r['id']} fired, but its overlap policy started no run now"
            ),
        )
    return EXIT_OK


def _schedule_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ("cron", "every", "timezone", "jitter", "overlap", "catchup", "note"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "workflow", None) is not None and args.action == "update":
        changes["workflow"] = args.workflow
    if getattr(args, "paused", None):
        changes["paused"] = True
    if args.args is not None:
        changes["args"] = read_json_argument(args.args, "--args")
    if args.kwargs is not None:
        changes["kwargs"] = read_json_argument(args.kwargs, "--kwargs")
    window = args.catchup_window
    if window is not None:
        changes["catchup_window"] = None if window.strip().lower() == "none" else window
    for name in ("start_at", "end_at"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    return changes


def _cmd_sql(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    query = sys.stdin.read() if args.query == "-" else args.query
    result = ops.call("sql", query=query)
    if args.json:
        out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    elif args.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result["columns"])
        for row in result["rows"]:
            writer.writerow([json.dumps(v) if isinstance(v, (dict, list)) else v for v in row])
    else:
        out.write(render.table(result["columns"], result["rows"]) + "\n")
        count = len(result["rows"])
        out.write(f"({count} row{'s' * (count != 1)})\n")
    return EXIT_OK


def _cmd_export(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    # The engine may run in another working directory: send an absolute path.
    directory = str(Path(args.parquet).expanduser().resolve())
    result = ops.call("export", directory=directory, format="parquet")

    def text(r: dict[str, Any]) -> str:
        lines = [f"exported to {r['directory']}:"]
        for item in r["tables"].values():
            lines.append(f"  {Path(item['path']).name}  {item['rows']} rows")
        return "\n".join(lines)

    _emit(out, args.json, result, text)
    return EXIT_OK


def _cmd_status(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    result = ops.call("status")
    _emit(out, args.json, result, render.status_text)
    if not result.get("engine"):
        return EXIT_FAILED if result.get("held_by") else EXIT_USAGE
    return EXIT_OK if result.get("healthy") else EXIT_FAILED


# --- worker: the notebook in an IPython shell, served until stopped ---------------------


def _cmd_worker(ops: None, args: argparse.Namespace, out: TextIO) -> int:
    # Imported here: the worker loads IPython, which no other command needs.
    from nbconductor.extension.worker import run_worker

    if args.grace < 0:
        raise UsageError(f"--grace must be 0 or more seconds, not {args.grace:g}")
    return run_worker(
        args.notebook,
        db=args.db,
        grace=args.grace,
        keep_going=args.keep_going,
        json_logs=args.json_logs,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
