"""The ``nbconductor`` command: each command runs one operation and prints its result.

The history file's engine is reached through its control socket, or, when no engine
holds the file, the file is opened directly (:func:`~nbconductor.remote.open_operations`).
Results print as the tables and sentences of :mod:`nbconductor.operations`, the same
``%conductor`` shows, or with ``--json`` as their stable JSON. See docs/cli.md.
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

from nbconductor.cli.completion import completion_script
from nbconductor.cli.parser import DB_ENV, build_parser
from nbconductor.errors import NbconductorError
from nbconductor.operations import table, text
from nbconductor.operations.arguments import (
    UsageError,
    loose_json,
    parse_when,
    read_json_argument,
    schedule_changes,
    statuses,
)
from nbconductor.operations.catalog import BadRequest, NoEngine
from nbconductor.operations.interface import Operations
from nbconductor.remote.protocol import RemoteError
from nbconductor.remote.remote_operations import open_operations

__all__ = ("EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main", "resolve_db")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        # A usage error like any other: usage and the reason on stderr, nothing on stdout.
        parser.print_usage(sys.stderr)
        print("nbconductor: error: a command is required (see --help)", file=sys.stderr)
        return EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    try:
        if args.command == "worker":
            return _worker(args)
        if args.command == "completion":
            sys.stdout.write(completion_script(parser, args.shell))
            return EXIT_OK
        db = resolve_db(args.db)
        with open_operations(db, timeout=args.timeout) as ops:
            if args.command != "status" and not ops.live and not db.is_file():
                raise UsageError(f"there is no nbconductor history at {db}")
            return _COMMANDS[args.command](ops, args, sys.stdout)
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


def _emit(out: TextIO, as_json: bool, result: Any, shown: Callable[[Any], object]) -> None:
    if as_json:
        out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(f"{shown(result)}\n")


# --- commands --------------------------------------------------------------------------


def _list(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit must be 0 or more, not {args.limit}")
    query: dict[str, Any] = {"limit": args.limit}
    if args.status:
        query["status"] = statuses(args.status)
    if args.workflow:
        query["workflow"] = args.workflow
    if args.since:
        query["since"] = parse_when(args.since, "--since").isoformat()
    if args.until:
        query["until"] = parse_when(args.until, "--until").isoformat()
    _emit(out, args.json, ops.call("list", **query), table.executions_table)
    return EXIT_OK


def _show(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    if not args.follow:
        _emit(out, args.json, ops.call("show", id=args.id), text.execution_text)
        return EXIT_OK
    from nbconductor.engine.follow import CLOSED, follow

    shown = ops.call("show", id=args.id)
    if not ops.live and shown["status"] not in CLOSED:
        raise UsageError(
            f"--follow needs a running engine: none holds the file, so execution "
            f"{args.id!r} stays {shown['status']}; start one (open the notebook, or "
            "nbconductor worker) or drop --follow"
        )
    shown = follow(lambda: ops.call("show", id=args.id), file=sys.stderr)
    _emit(out, args.json, shown, text.execution_text)
    return EXIT_OK if shown["status"] == "completed" else EXIT_FAILED


def _history(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    _emit(out, args.json, ops.call("history", id=args.id), table.history_table)
    return EXIT_OK


def _signal(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    payload = None if args.payload is None else read_json_argument(args.payload, "PAYLOAD")
    result = ops.call("signal", id=args.id, name=args.name, payload=payload)
    _emit(out, args.json, result, text.signal_text)
    return EXIT_OK


def _cancel(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    _emit(out, args.json, ops.call("cancel", id=args.id), text.cancel_text)
    return EXIT_OK


def _terminate(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    result = ops.call("terminate", id=args.id, reason=args.reason)
    _emit(out, args.json, result, lambda r: text.terminate_text(r, args.reason))
    return EXIT_OK


def _start(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
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
    _emit(out, args.json, ops.call("start", **request), text.start_text)
    return EXIT_OK


def _schedules(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    action = args.action
    if action == "list":
        _emit(out, args.json, ops.call("schedules.list"), table.schedules_table)
        return EXIT_OK
    if action == "show":
        result = ops.call("schedules.show", id=args.id, n=args.n)
        _emit(out, args.json, result, text.schedule_text)
        return EXIT_OK
    if action == "create":
        options = schedule_changes(args)
        result = ops.call("schedules.create", id=args.id, workflow=args.workflow, **options)
    elif action == "update":
        options = schedule_changes(args)
        if args.workflow is not None:
            options["workflow"] = args.workflow
        if not options:
            raise UsageError("schedules update: give at least one option to change")
        result = ops.call("schedules.update", id=args.id, **options)
    elif action == "pause":
        result = ops.call("schedules.pause", id=args.id, note=args.note)
    else:  # delete, resume, trigger
        result = ops.call(f"schedules.{action}", id=args.id)
    _emit(out, args.json, result, lambda r: text.schedule_change_text(action, r))
    return EXIT_OK


def _sql(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
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
        rows = result["rows"]
        if rows:
            out.write(f"{table.Table(result['columns'], rows)}\n")
        out.write(f"({len(rows)} row{'s' * (len(rows) != 1)})\n")
    return EXIT_OK


def _prune(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    # The age counts back from this machine's clock; the engine gets an instant.
    closed_before = parse_when(args.closed_before, "--closed-before")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {args.limit}")
    request: dict[str, Any] = {"closed_before": closed_before.isoformat(), "dry_run": args.dry_run}
    if args.limit is not None:
        request["limit"] = args.limit
    _emit(out, args.json, ops.call("prune", **request), text.prune_text)
    return EXIT_OK


def _export(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    # The engine may run in another working directory: send an absolute path.
    directory = str(Path(args.parquet).expanduser().resolve())
    result = ops.call("export", directory=directory, format="parquet")
    _emit(out, args.json, result, text.export_text)
    return EXIT_OK


def _status(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    result = ops.call("status")
    _emit(out, args.json, result, text.status_text)
    if not result.get("engine"):
        return EXIT_FAILED if result.get("held_by") else EXIT_USAGE
    return EXIT_OK if result.get("healthy") else EXIT_FAILED


def _queues(ops: Operations, args: argparse.Namespace, out: TextIO) -> int:
    action = args.action
    if action == "list":
        _emit(out, args.json, ops.call("queues.list"), table.queues_table)
        return EXIT_OK
    if action == "delete":
        result = ops.call("queues.delete", name=args.name)
        _emit(out, args.json, result, lambda r: f"deleted queue {r['name']}")
        return EXIT_OK
    limits = {}
    if args.concurrency is not None:
        limits["concurrency"] = args.concurrency
    if args.rate is not None:
        limits["rate"] = args.rate
    if args.burst is not None:
        limits["burst"] = args.burst
    if action == "update":
        if args.no_concurrency:
            limits["concurrency"] = None
        if args.no_rate:
            limits["rate"] = None
        if not limits:
            raise UsageError("queues update: give at least one limit to change")
    result = ops.call(f"queues.{action}", name=args.name, **limits)
    _emit(out, args.json, result, lambda r: f"{action}d queue {r['name']}: {text.queue_text(r)}")
    return EXIT_OK


_COMMANDS: dict[str, Callable[[Operations, argparse.Namespace, TextIO], int]] = {
    "list": _list,
    "show": _show,
    "history": _history,
    "signal": _signal,
    "cancel": _cancel,
    "terminate": _terminate,
    "start": _start,
    "schedules": _schedules,
    "queues": _queues,
    "sql": _sql,
    "prune": _prune,
    "export": _export,
    "status": _status,
}


def _worker(args: argparse.Namespace) -> int:
    # Imported here: the worker runs the notebook in an IPython shell, which no other
    # command loads.
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
