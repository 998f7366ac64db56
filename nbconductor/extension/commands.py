"""What the ``%conductor`` subcommands do: run the shared operations, and choose how a
notebook shows their results.

The work is done by :mod:`nbconductor.operations`, the same operations the
``nbconductor`` command and the control socket run, with the same checks, results and
errors, and the same table renderer and time-expression parser. What is particular to
a kernel is only here: live views instead of tables, payloads shown as the Python
values they are, tracebacks that name cells, the output an execution printed in this
kernel, and ``resume`` and ``fork``, which act on the kernel's own code.

Each function takes the kernel's engine and returns text to print or an object for the
cell to display. The magic (:mod:`nbconductor.extension.magics`) only parses arguments.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from nbconductor.engine.engine import Engine
from nbconductor.engine.failure import summary
from nbconductor.engine.handle import Handle
from nbconductor.extension import widget_bridge
from nbconductor.extension.display import decoded, map_traceback
from nbconductor.extension.output import execution_log
from nbconductor.extension.session import kernel_engine, shown_path, socket_path, state
from nbconductor.operations.arguments import UsageError, parse_when, schedule_changes, statuses
from nbconductor.operations.engine_operations import EngineOperations
from nbconductor.operations.table import (
    Table,
    executions_table,
    format_time,
    history_table,
    queues_table,
    schedules_table,
)
from nbconductor.operations.text import (
    cancel_text,
    prune_text,
    queue_text,
    schedule_change_text,
    schedule_text,
    signal_text,
    terminate_text,
)
from nbconductor.storage.records import Status

__all__ = (
    "cancel",
    "fork",
    "history",
    "list_executions",
    "prune",
    "queues",
    "resume",
    "runner",
    "schedule",
    "schedules",
    "show",
    "signal",
    "sql",
    "status",
    "terminate",
)

#: The live history table pages in these sizes; ``--limit`` picks the first that fits.
_PAGE_SIZES = (25, 50, 100, 200)


def _operations(engine: Engine) -> EngineOperations:
    socket = socket_path()
    return EngineOperations(engine, socket_path=str(socket) if socket else None)


# --- status, list, show, history -------------------------------------------------------


def status() -> str:
    """Engine health: thread, history file, control socket, executions by state,
    timers, tasks, and any problem the health check found."""
    kernel = state()
    engine = kernel_engine()
    path = shown_path(kernel.path) if kernel.path else "(none chosen)"
    if engine is None:
        lines = ["engine: not running", f"history: {path}"]
        crashed = kernel.engine.error if kernel.engine is not None else None
        if crashed is not None:  # the engine thread ended on an error
            lines.append(f"the engine thread ended with {crashed!r}")
        lines.append(
            kernel.problem
            or "start it with `%conductor start`, or choose a file with `%conductor db PATH`"
        )
        return "\n".join(lines)
    health = _operations(engine).call("status")
    counts = health.get("counts") or {}
    by_state = ", ".join(f"{Status(k).title} {n}" for k, n in sorted(counts.items()) if n)
    timers = f"pending timers: {_n(health.get('pending_timers'))}"
    if health.get("due_timers") is not None:
        timers += f" ({health['due_timers']} due)"
    lines = [
        "engine: running (thread alive)" if health["healthy"] else "engine: running, unhealthy",
        f"history: {path}" + (f" ({kernel.reason})" if kernel.reason else ""),
        _socket_line(),
        f"started: {format_time(health['started_at'])} UTC",
        f"executions: {by_state or 'none'}",
        f"open: {_n(health.get('open_executions'))} "
        f"(waiting for a definition: {_n(health.get('waiting_for_definition'))}, "
        f"blocked: {_n(health.get('blocked'))})",
        timers,
        f"running tasks: {_n(health.get('running_tasks'))}",
        f"schedules: {_n(health.get('schedules'))}",
    ]
    lines.extend(f"problem: {problem}" for problem in health.get("problems") or ())
    return "\n".join(lines)


def _n(value: Any) -> str:
    return "?" if value is None else str(value)


def _socket_line() -> str:
    """Where the ``nbconductor`` command reaches this engine, or why it cannot."""
    socket = socket_path()
    if socket is not None:
        return f"control socket: {socket} (for the `nbconductor` command)"
    why = state().socket_problem or "no control server runs"
    return f"control socket: none; the `nbconductor` command cannot reach this kernel ({why})"


def list_executions(
    engine: Engine,
    *,
    status: str | None = None,
    workflow: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 20,
    text: bool = False,
) -> Any:
    """``%conductor list``: executions, newest first, as the live history table or
    (``text``) as a :class:`~nbconductor.operations.table.Table`.

    Args:
        engine: the kernel's engine.
        status: statuses, comma-separated.
        workflow: only executions of this workflow.
        since: started at or after: a duration ago (``2h``) or a date/time.
        until: started before, in the same forms.
        limit: rows (the live table shows the first page size that holds them).
        text: a table instead of the live view.
    """
    chosen = statuses([status]) if status else None
    times = {
        key: parse_when(value, f"--{key}")
        for key, value in (("since", since), ("until", until))
        if value
    }
    if text:
        query: dict[str, Any] = {"limit": limit}
        if chosen:
            query["status"] = chosen
        if workflow:
            query["workflow"] = workflow
        query.update((key, moment.isoformat()) for key, moment in times.items())
        return executions_table(_operations(engine).call("list", **query))
    page_size = next((n for n in _PAGE_SIZES if n >= limit), _PAGE_SIZES[-1])
    filters = {"status": chosen, "workflow": workflow, "page_size": page_size, **times}
    return widget_bridge.history(engine, **{k: v for k, v in filters.items() if v is not None})


def show(engine: Engine, execution_id: str, *, shell: Any = None) -> str:
    """``%conductor show``: one execution: state, input, result or error (its traceback
    naming cells), and what it printed in this kernel."""
    x = _operations(engine).call("show", id=execution_id)
    state_ = Status(x["status"])
    lines = [
        f"execution {x['id']}",
        f"  workflow:  {x['workflow']} (version {x['version']})",
        f"  status:    {state_.title}",
        f"  created:   {format_time(x['created_at'])} UTC",
    ]
    if x["closed_at"] is not None:
        lines.append(f"  closed:    {format_time(x['closed_at'])} UTC")
    if x["condition"]:
        lines.append(f"  condition: {x['condition']}")
    names = (x.get("waiting_signals") or []) if state_ is Status.RUNNING else []
    if names:
        lines.append(f"  waiting for signal{'s' * (len(names) != 1)}: {', '.join(names)}")
    lines.append(f"  input:     {decoded(_stored(x['input']), input=True)}")
    if state_ is Status.COMPLETED:
        lines.append(f"  result:    {decoded(_stored(x['result']))}")
    error = x["error"]
    if error and not isinstance(error, dict):
        error = {"message": str(error)}
    if error:
        lines.append(f"  error:     {summary(error)}")
        trace = error.get("traceback")
        if trace:
            lines.append("  traceback:")
            lines.extend(
                "    " + line for line in map_traceback(trace, shell).rstrip().splitlines()
            )
    log = execution_log(execution_id)
    if log:
        lines.append(f"  output ({len(log)} line{'s' * (len(log) != 1)}):")
        lines.extend("    " + line for line in log)
    else:
        lines.append("  output:    (none captured in this kernel)")
    return "\n".join(lines)


def _stored(value: Any) -> str | None:
    """A payload of a result shape as the text the history stores (compact JSON)."""
    return None if value is None else json.dumps(value, separators=(",", ":"))


def history(engine: Engine, execution_id: str) -> Table:
    """``%conductor history``: the execution's recorded events."""
    return history_table(_operations(engine).call("history", id=execution_id))


# --- acting on executions --------------------------------------------------------------


def signal(engine: Engine, execution_id: str, name: str, payload: Any = None) -> str:
    """``%conductor signal``: deliver a signal (durably) to an open execution."""
    return signal_text(
        _operations(engine).call("signal", id=execution_id, name=name, payload=payload)
    )


def cancel(engine: Engine, execution_id: str) -> str:
    """``%conductor cancel``: ask the workflow to stop (it may clean up)."""
    return cancel_text(_operations(engine).call("cancel", id=execution_id))


def terminate(engine: Engine, execution_id: str, reason: str | None = None) -> str:
    """``%conductor terminate``: stop an execution at once; no more of its code runs."""
    result = _operations(engine).call("terminate", id=execution_id, reason=reason)
    return terminate_text(result, reason)


def resume(engine: Engine) -> str:
    """``%conductor resume``: look again at every open execution and carry on those
    whose definitions are now in this kernel (waiting or blocked ones)."""
    records = engine.list(status=Status.RUNNING, limit=None)
    if not records:
        return "no open executions"
    engine.rescan()  # returns once the engine replayed (or re-blocked) each of them
    lines = [f"{len(records)} open execution{'s' * (len(records) != 1)}:"]
    for record in records:
        condition = engine.get(record.id).condition
        lines.append(f"  {record.id}  {record.workflow}  {condition or 'running'}")
    return "\n".join(lines)


def fork(engine: Engine, execution_id: str, at: int | None = None) -> Handle:
    """``%conductor fork``: re-run an execution from a step with the current code."""
    return engine.fork(execution_id, at)


# --- schedules -------------------------------------------------------------------------


def schedules(engine: Engine, *, text: bool = False) -> Any:
    """``%conductor schedules``: the live schedules view, or (``text``) one row per
    schedule."""
    if not text:
        view = widget_bridge.schedules(engine)
        if view is not None:
            return view
    return schedules_table(_operations(engine).call("schedules.list"))


def schedule(engine: Engine, action: str, schedule_id: str, args: argparse.Namespace) -> Any:
    """``%conductor schedule ACTION ID ...``: create, update, pause, resume, trigger,
    delete or describe one schedule. Returns what the cell shows: a sentence or the
    schedule's text, or the handle of the run a trigger started."""
    ops = _operations(engine)
    if action == "describe":
        return schedule_text(ops.call("schedules.show", id=schedule_id))
    if action == "create":
        if not args.workflow:
            raise UsageError("schedule create ID WORKFLOW --cron EXPR | --every DURATION")
        options = schedule_changes(args)
        result = ops.call("schedules.create", id=schedule_id, workflow=args.workflow, **options)
    elif action == "update":
        options = schedule_changes(args)
        if args.workflow:
            options["workflow"] = args.workflow
        if not options:
            raise UsageError("schedule update: give at least one option to change")
        result = ops.call("schedules.update", id=schedule_id, **options)
    elif action == "pause":
        result = ops.call("schedules.pause", id=schedule_id, note=args.note)
    else:  # resume, trigger, delete
        result = ops.call(f"schedules.{action}", id=schedule_id)
        if action == "trigger" and result["started"]:
            return engine.get(result["started"])
    return schedule_change_text(action, result)


# --- queues and runners ------------------------------------------------------------------


def queues(engine: Engine, args: argparse.Namespace) -> Any:
    """``%conductor queues [create|update|delete NAME] [--concurrency N] [--rate R]
    [--burst N]``:
    the queues as a table, or a sentence saying what changed."""
    ops = _operations(engine)
    action = args.action or "list"
    if action == "list":
        return queues_table(ops.call("queues.list"))
    if not args.name:
        raise UsageError(f"queues {action} NAME [--concurrency N] [--rate N/PERIOD]")
    if action == "delete":
        ops.call("queues.delete", name=args.name)
        return f"deleted queue {args.name}"
    limits: dict[str, Any] = {}
    if args.concurrency is not None:
        limits["concurrency"] = None if args.concurrency == 0 else args.concurrency
    if args.rate is not None:
        limits["rate"] = None if args.rate == "none" else args.rate
    if getattr(args, "burst", None) is not None:
        limits["burst"] = args.burst
    if action == "update" and not limits:
        raise UsageError(
            "queues update: give --concurrency N, --rate R or --burst N (0 / none removes)"
        )
    result = ops.call(f"queues.{action}", name=args.name, **limits)
    return f"{action}d queue {result['name']}: {queue_text(result)}"


def runner(engine: Engine, action: str, name: str | None, target: str | None) -> str:
    """``%conductor runner add NAME ADDRESS|process`` (a Dask scheduler's address, or
    a new local process pool), or ``%conductor runner list``."""
    if action == "list":
        return "runners: " + ", ".join(engine.runners.names())
    if not name or not target:
        raise UsageError("runner add NAME ADDRESS|process (e.g. tcp://10.0.0.5:8786)")
    from nbconductor.engine.runners import DaskRunner, ProcessRunner

    made = ProcessRunner() if target == "process" else DaskRunner(target)
    engine.add_runner(name, made)
    return f"runner {name}: {made!r}; tasks use it with @task(runner={name!r})"


# --- SQL -------------------------------------------------------------------------------


def sql(engine: Engine, query: str) -> Any:
    """``%conductor sql``: a read-only query over the history, as the lazy DuckDB
    relation :meth:`Engine.sql` returns (``.df()``, ``.pl()``, ``.arrow()``,
    ``.fetchall()``); the notebook shows its first rows as a table."""
    return engine.sql(query)


# --- retention ---------------------------------------------------------------------------


def prune(
    engine: Engine, closed_before: str, *, dry_run: bool = False, limit: int | None = None
) -> str:
    """``%conductor prune --closed-before 30d [--dry-run] [--limit N]``: the ``prune``
    operation on the kernel's engine, told in a sentence."""
    moment = parse_when(closed_before, "--closed-before", now=engine.clock.now())
    request: dict[str, Any] = {"closed_before": moment.isoformat(), "dry_run": dry_run}
    if limit is not None:
        request["limit"] = limit
    return prune_text(_operations(engine).call("prune", **request))
